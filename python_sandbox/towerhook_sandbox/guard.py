"""The time limit as the sandbox sees it.

The host hands each call a guard (``enter(kind)``, ``leave()``, ``remaining()``) and
injects ``SnippetTimeout`` into the snippet's thread once the deadline has passed. Helpers
that block (sleep, HTTP, DNS) read the running snippet's guard from here, so that they wait
in short slices or pass a bounded timeout down: an injected exception only lands while
Python bytecode runs, never inside a blocking C call.
"""

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

_current = threading.local()


def set_current(guard):
    _current.guard = guard


def remaining():
    """Seconds left for the running snippet (infinite when none is limited)."""
    guard = getattr(_current, "guard", None)
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
    guard = getattr(_current, "guard", None)
    if guard is None or guard.remaining() <= 0:
        raise SnippetTimeout()


def uncatchable():
    """What no ``except`` clause of a snippet may catch: the timeout while the snippet
    runs, and everything outside its run (where even evaluating the clause's type is
    snippet code that nothing would stop)."""
    if getattr(_current, "guard", None) is None:
        return BaseException
    return SnippetTimeout


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
