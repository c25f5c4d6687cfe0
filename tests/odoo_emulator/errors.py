"""Exceptions the emulator raises, named the way Odoo serialises them.

Odoo turns any exception reaching the RPC layer into `{"name": "<module>.<Class>", ...}`
(odoo/http.py `serialize_exception`), an XML-RPC fault code
(odoo/addons/base/controllers/rpc.py `xmlrpc_handle_exception_int`) or, on JSON-2, an HTTP
status taken from the exception's `http_status` (odoo/http.py `Json2Dispatcher.handle_error`,
odoo/exceptions.py in 19.0). Plain Python errors (ValueError, AttributeError, TypeError...)
are raised as themselves: Odoo reports them as `builtins.ValueError` etc.
"""

# XML-RPC fault codes, as in odoo/addons/base/controllers/rpc.py
FAULT_APPLICATION_ERROR = 1
FAULT_WARNING = 2
FAULT_ACCESS_DENIED = 3
FAULT_ACCESS_ERROR = 4


class UserError(Exception):
    odoo_name = "odoo.exceptions.UserError"
    http_status = 422  # UNPROCESSABLE_ENTITY (odoo/exceptions.py, 18.0+)
    fault_code = FAULT_WARNING
    suppress_traceback = False

    def __init__(self, message):
        super().__init__(message)


class ValidationError(UserError):
    odoo_name = "odoo.exceptions.ValidationError"


class MissingError(UserError):
    odoo_name = "odoo.exceptions.MissingError"
    http_status = 404


class AccessError(UserError):
    odoo_name = "odoo.exceptions.AccessError"
    http_status = 403
    fault_code = FAULT_ACCESS_ERROR


class AccessDenied(UserError):
    """Bad credentials. Odoo strips its traceback before showing it."""

    odoo_name = "odoo.exceptions.AccessDenied"
    http_status = 403
    fault_code = FAULT_ACCESS_DENIED
    suppress_traceback = True

    def __init__(self, message="Access Denied"):
        super().__init__(message)


class DatabaseError(Exception):
    """A psycopg2 error escaping to the RPC layer (e.g. an unknown database name)."""

    odoo_name = "psycopg2.OperationalError"


class HttpException(Exception):
    """A werkzeug HTTPException as the JSON-2 dispatcher serialises it."""

    def __init__(self, code, name, description, headers=None):
        super().__init__(description)
        self.code = code
        self.odoo_name = "werkzeug.exceptions." + name
        self.description = description
        self.headers = headers or []


class InjectedError(Exception):
    """An error a test asked for through the control API, with any name and class."""

    def __init__(self, name, message, kind="server"):
        super().__init__(message)
        self.odoo_name = name
        self.http_status = {"user": 422, "validation": 422, "missing": 404, "access": 403,
                            "denied": 403}.get(kind, 500)
        self.fault_code = {"user": FAULT_WARNING, "validation": FAULT_WARNING,
                           "missing": FAULT_WARNING, "access": FAULT_ACCESS_ERROR,
                           "denied": FAULT_ACCESS_DENIED}.get(kind, FAULT_APPLICATION_ERROR)
        self.suppress_traceback = kind == "denied"


def exception_name(exc):
    """`module.Class` as Odoo's serialize_exception writes it (builtins.ValueError...)."""
    name = getattr(exc, "odoo_name", None)
    if name:
        return name
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def exception_message(exc):
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)


def traceback_text(exc):
    """A traceback shaped like Python's, ending with the line clients usually parse.

    The frames of the real server are not reproducible; one placeholder frame stands in
    for them. Exceptions whose traceback Odoo suppresses (AccessDenied) get only the
    last line, as `traceback.format_exception` prints for a traceback-less exception.
    """
    name = exception_name(exc)
    if name.startswith("builtins."):
        name = name[len("builtins."):]
    last = f"{name}: {exception_message(exc)}\n"
    if getattr(exc, "suppress_traceback", False):
        return last
    return ("Traceback (most recent call last):\n"
            '  File "/opt/odoo/odoo/service/model.py", line 1, in execute_cr\n'
            "    (frames of the emulated server are not reproduced)\n" + last)


def serialize_exception(exc, message=None, arguments=None):
    """The `data` object of Odoo's JSON-RPC errors and the body of JSON-2 errors."""
    return {
        "name": exception_name(exc),
        "message": exception_message(exc) if message is None else message,
        "arguments": list(exc.args) if arguments is None else list(arguments),
        "context": getattr(exc, "context", {}) or {},
        "debug": traceback_text(exc),
    }


def fault_code_for(exc):
    """xmlrpc_handle_exception_int: access error 4, denied 3, user errors 2, else 1."""
    return getattr(exc, "fault_code", FAULT_APPLICATION_ERROR)
