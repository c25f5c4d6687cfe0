"""Narrow copies of a library's exception classes.

A library's exception carries the library's objects (requests: the request, the response
and through them the connection pool; dnspython: messages, enum classes, name servers).
Snippets get instead an instance of a class of the same name and the same hierarchy (so
that messages read the same and ``except`` on the exposed root class still works) holding
only the message text. The copy is raised outside the library's ``except`` block, so it
does not even keep the original as its context.
"""

import builtins
import threading

from .exceptions import SnippetTimeout, caused_by_timeout

_PLAIN = (str, int, float, bool, bytes, type(None))


class Mirror:
    """Narrow classes for the subclasses of ``real_root()`` (loaded on first use), rooted
    at ``narrow_root``."""

    def __init__(self, real_root, narrow_root):
        self._real_root = real_root
        self._narrow_root = narrow_root
        self._classes = {}
        self._lock = threading.Lock()

    def narrow_class(self, real):
        found = self._classes.get(real)
        if found is None:
            with self._lock:
                found = self._build(real)
        return found

    def _build(self, real):
        found = self._classes.get(real)
        if found is not None:
            return found
        root = self._real_root()
        if real is root:
            found = self._narrow_root
        else:
            bases = []
            for base in real.__bases__:
                if issubclass(base, root):
                    bases.append(self._build(base))
                else:
                    plain = _builtin_ancestor(base)
                    if plain is not None and not any(issubclass(b, plain) for b in bases):
                        bases.append(plain)
            found = _make_class(real, bases)
        self._classes[real] = found
        return found

    def narrow(self, exc, **attributes):
        """The snippet's copy of ``exc`` (a subclass of the real root)."""
        cls = self.narrow_class(type(exc))
        copy = cls(str(exc))
        for name, value in attributes.items():
            setattr(copy, name, value)
        return copy


def _make_class(real, bases):
    namespace = {"__module__": real.__module__, "__qualname__": real.__qualname__}
    try:
        return type(real.__name__, tuple(bases), namespace)
    except TypeError:  # no consistent order with the plain bases: keep the library's own
        own = tuple(base for base in bases if base.__module__ != "builtins")
        return type(real.__name__, own, namespace)


def _builtin_ancestor(cls):
    for ancestor in cls.__mro__:
        if getattr(builtins, ancestor.__name__, None) is ancestor:
            return ancestor
    return None


def detached(exc, fallback):
    """A copy of a non-library exception holding plain values only.

    Built-in exceptions keep their class and their arguments when those are plain values
    (text, numbers); anything else becomes ``fallback(str(exc))``.
    """
    cls = type(exc)
    if getattr(builtins, cls.__name__, None) is cls:
        args = exc.args if all(type(arg) in _PLAIN for arg in exc.args) else (str(exc),)
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - a class that wants other arguments
            pass
    return fallback(str(exc))


def reraise_timeout(exc):
    """Raises SnippetTimeout when ``exc`` came from one (the snippet's time is up)."""
    if isinstance(exc, SnippetTimeout) or caused_by_timeout(exc):
        raise SnippetTimeout()
