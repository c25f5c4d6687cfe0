"""Exceptions shared by the sandbox and the snippets.

The Odoo-like classes mirror ``odoo.exceptions``: snippets get ``UserError`` by name (and,
as a towerhook extension, ``AccessError``, ``ValidationError`` and ``MissingError``), and
the runner lets the text of the whole family through unchanged, as ``safe_eval`` does.
The Odoo proxy (``orm.py``) raises them for the errors Odoo answers over RPC.
"""


class SnippetTimeout(BaseException):
    """A snippet ran past its wall-clock limit.

    The host injects it into the snippet's thread (``PyThreadState_SetAsyncExc``); the
    sandbox raises it itself from blocking helpers once no time is left. A BaseException,
    so that ``except Exception`` in a snippet cannot swallow it.
    """


class UserError(Exception):
    """Odoo's user-facing error: its text reaches the caller unchanged."""

    def __init__(self, message):
        super().__init__(message)


class RedirectWarning(Exception):
    """Odoo's warning that offers a redirection; its text passes through like UserError."""


class AccessDenied(UserError):
    """Odoo: login or password refused."""

    def __init__(self, message="Access Denied"):
        super().__init__(message)


class AccessError(UserError):
    """Odoo: access rights forbid the operation."""


class MissingError(UserError):
    """Odoo: the record does not exist (any more)."""


class ValidationError(UserError):
    """Odoo: a constraint refused the values."""


def caused_by_timeout(exc):
    """Whether ``exc`` is, or was raised while handling, a SnippetTimeout: a timeout that
    a library caught and replaced by its own error still means the snippet ran out of
    time."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SnippetTimeout):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


# Exceptions whose text safe_eval lets through as is (Odoo 17/18 _BUBBLEUP_EXCEPTIONS,
# minus the werkzeug and psycopg2 ones, which cannot occur here).
PASSTHROUGH = (UserError, RedirectWarning, ZeroDivisionError)
