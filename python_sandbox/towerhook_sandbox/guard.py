"""The time limit as the sandbox sees it.

The host hands each call a guard (``enter(kind)``, ``leave()``, ``remaining()``) and
injects ``SnippetTimeout`` into the snippet's thread once the deadline has passed. Helpers
that block (sleep, HTTP, DNS) read the running snippet's guard from here, so that they wait
in short slices or pass a bounded timeout down: an injected exception only lands while
Python bytecode runs, never inside a blocking C call.
"""

import functools
import threading

from .exceptions import SnippetTimeout

INFINITY = float("inf")


class NoGuard:
    """No time limit (standalone use and tests that do not test time limits)."""

    __slots__ = ()

    def enter(self, kind):
        pass

    def leave(self):
        pass

    def remaining(self):
        return INFINITY


NO_GUARD = NoGuard()

# Per thread: ``guard``, the guard of the snippet running in this thread (None between
# snippets), ``session``, the Odoo session of that run (``orm.Session``; None when it has
# none or between snippets: the Odoo objects refuse to work in any other run), and
# ``uncatchable`` (below). The runner clears them with plain attribute stores, which a
# pending asynchronous exception cannot interrupt half-way (it only lands at calls and
# jumps).
state = threading.local()


def remaining():
    """Seconds left for the running snippet (infinite when none is limited)."""
    guard = getattr(state, "guard", None)
    if guard is None:
        return INFINITY
    return guard.remaining()


def check():
    """Raises SnippetTimeout unless a snippet is running with time left in this thread.

    Compiled into the start of every ``finally`` block of a snippet: a ``finally`` that
    ends with ``continue``/``break``/``return`` would otherwise swallow the timeout each
    time the host re-injects it. Outside a snippet's run (a generator of the snippet
    finalized after the call), the snippet's code must not run at all: nothing would stop
    a loop there.
    """
    guard = getattr(state, "guard", None)
    if guard is None or guard.remaining() <= 0:
        raise SnippetTimeout()


# What no ``except`` clause of a snippet may catch: the timeout while the snippet runs
# (``state.uncatchable``, set by the runner), everything outside its run, where even
# evaluating the clause's type is snippet code that nothing would stop. A C-level call, so
# that matching an exception adds no Python frame.
uncatchable = functools.partial(getattr, state, "uncatchable", BaseException)


def begin(guard, session=None):
    """Marks this thread as running a snippet under ``guard`` with the Odoo ``session``
    of its run, if any (the runner undoes it)."""
    state.guard = guard
    if session is not None:
        # Set only for runs that have one, cleared by the runner after them: between runs
        # it is always None, at the cost of nothing for runs without Odoo objects.
        state.session = session
    state.uncatchable = SnippetTimeout


def bounded(timeout):
    """``min(timeout or remaining, remaining)``, None when neither limits anything.

    Raises SnippetTimeout when no time is left. A ``(connect, read)`` pair is bounded
    element by element; a value that is not a number is left for the library to refuse.
    """
    left = remaining()
    if left <= 0:
        raise SnippetTimeout()
    if isinstance(timeout, tuple):
        return tuple(_bound_one(part, left) for part in timeout)
    return _bound_one(timeout, left)


def _bound_one(timeout, left):
    if timeout is not None and not isinstance(timeout, (int, float)):
        return timeout
    if left == INFINITY:
        return timeout
    return min(timeout or left, left)
