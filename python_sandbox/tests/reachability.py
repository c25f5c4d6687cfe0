"""What a snippet can reach from an object, and what it must never reach.

A snippet follows attributes whose names safe_eval allows (no double underscore, none of
the unsafe attributes) and items of containers; it cannot assign attributes, but it can
change containers in place. ``reach`` walks exactly that graph (bounded), ``problems``
names what must not be in it:

- a module, or a class whose attributes can change (a Python class, as opposed to the
  immutable built-in types such as ``datetime.datetime``), unless it is a root the
  snippet is given on purpose (``allowed_classes``);
- an operating-system or process-wide primitive: a socket, a file, a lock or anything
  built on one, a connection, a connection pool or pool manager, a transport adapter, an
  HTTP session, an SSL context, a DNS resolver or its cache, a cookie jar;
- a mutable container (list, dict, set, bytearray, deque, any mutable mapping, sequence
  or set) that is not the snippet's own: the same object reached in two separate calls,
  or one held by a library module or class.

The walker does not call methods; tests add the results of the methods snippets call as
roots of their own.
"""

import collections
import collections.abc
import http.client
import http.cookiejar
import io
import queue
import socket
import ssl
import sys
import threading
import types
import warnings

from towerhook_sandbox.validation import is_forbidden_name

IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE (3.10+)
DEPTH = 7
MAX_OBJECTS = 20000
MAX_ITEMS = 300

LEAVES = frozenset(
    [str, bytes, int, float, complex, bool, type(None), type(Ellipsis), range]
)
MUTABLE = (
    list,
    dict,
    set,
    bytearray,
    collections.deque,
    collections.abc.MutableMapping,
    collections.abc.MutableSequence,
    collections.abc.MutableSet,
)
_LOCK_TYPES = (
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Semaphore,
    threading.Event,
    queue.Queue,
)
_PRIMITIVES = [
    socket.socket,
    ssl.SSLContext,
    ssl.SSLObject,
    io.IOBase,
    http.client.HTTPConnection,
    http.client.HTTPResponse,
    http.cookiejar.CookieJar,
    *_LOCK_TYPES,
]


def _optional_primitives():
    found = []
    for module_name, names in (
        ("requests", ["Session"]),
        ("requests.adapters", ["BaseAdapter"]),
        ("urllib3", ["PoolManager", "HTTPConnectionPool", "BaseHTTPResponse"]),
        ("urllib3.connection", ["HTTPConnection"]),
        ("urllib3.connectionpool", ["ConnectionPool"]),
        ("dns.resolver", ["BaseResolver", "Cache", "LRUCache"]),
    ):
        module = sys.modules.get(module_name)
        for name in names:
            value = getattr(module, name, None)
            if isinstance(value, type):
                found.append(value)
    return tuple(found)


# Names of the primitives above, for library classes the isinstance checks do not know.
_PRIMITIVE_WORDS = (
    "socket",
    "lock",
    "pool",
    "adapter",
    "session",
    "connection",
    "queue",
    "semaphore",
    "condition",
    "resolver",
    "cookiejar",
)


def reach(root, depth=DEPTH, extra_names=None, leaves=None):
    """``{id: (path, object)}`` of everything a snippet reaches from ``root``.

    ``extra_names(obj)`` may list attribute names ``dir()`` does not show (objects whose
    attributes come from ``__getattr__``); ``leaves``, a list, gets every text, number...
    met on the way as ``(path, value)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated properties read on the way
        return _reach(root, depth, extra_names, leaves)


def _reach(root, depth, extra_names, leaves):
    seen = {id(root): ("root", root)}
    frontier = [("root", root)]
    for _level in range(depth):
        following = []
        for path, obj in frontier:
            for step, child in _children(obj, extra_names):
                if type(child) in LEAVES:
                    if leaves is not None:
                        leaves.append((path + step, child))
                    continue
                if id(child) in seen:
                    continue
                if len(seen) >= MAX_OBJECTS:
                    return seen
                child_path = path + step
                seen[id(child)] = (child_path, child)
                following.append((child_path, child))
        frontier = following
    return seen


def _children(obj, extra_names):
    if isinstance(obj, (collections.abc.Mapping, types.MappingProxyType)):
        try:
            items = list(obj.items())[:MAX_ITEMS]
        except Exception:  # noqa: BLE001 - a mapping that cannot list itself
            items = []
        for key, value in items:
            yield "[%r]" % (key,), value
            if type(key) not in LEAVES:
                yield "<key %r>" % (key,), key
    elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
        for index, value in enumerate(list(obj)[:MAX_ITEMS]):
            yield "[%d]" % index, value
    names = set()
    try:
        names.update(dir(obj))
    except Exception:  # noqa: BLE001
        pass
    if extra_names is not None:
        names.update(extra_names(obj) or ())
    for name in sorted(names):
        if is_forbidden_name(name):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # noqa: BLE001 - what a snippet would get as an exception
            continue
        yield "." + name, value


def module_state():
    """Ids of the mutable containers library modules (and their classes) hold."""
    prefixes = (
        "requests",
        "urllib3",
        "pytz",
        "dateutil",
        "dns",
        "tldextract",
        "idna",
        "certifi",
        "charset_normalizer",
        "http",
        "json",
        "hmac",
        "hashlib",
        "towerhook_sandbox",
        "email",
        "ssl",
        "socket",
    )
    ids = set()
    for name, module in list(sys.modules.items()):
        if module is None or not name.split(".")[0] in prefixes:
            continue
        for value in list(vars(module).values()):
            _note_state(value, ids)
            if isinstance(value, type) and not value.__flags__ & IMMUTABLE_TYPE:
                for member in list(vars(value).values()):
                    _note_state(member, ids)
            elif not isinstance(value, (type, types.ModuleType)) and hasattr(
                value, "__dict__"
            ):
                try:
                    for member in list(vars(value).values()):
                        _note_state(member, ids)
                except TypeError:
                    pass
    return ids


def _note_state(value, ids):
    if isinstance(value, MUTABLE):
        ids.add(id(value))


def problems(reached, other_call=None, allowed_classes=(), state=None):
    """Descriptions of what ``reached`` must not contain (empty when all is well).

    ``other_call``: what the same code reached in another call (to find shared
    containers); ``state``: ``module_state()``."""
    primitives = tuple(_PRIMITIVES) + _optional_primitives()
    found = []
    for path, obj in reached.values():
        what = _danger(obj, primitives, allowed_classes)
        if what is None and isinstance(obj, MUTABLE):
            if other_call is not None and id(obj) in other_call:
                what = "a mutable %s shared between calls" % type(obj).__name__
            elif state is not None and id(obj) in state:
                what = "a mutable %s held by a library" % type(obj).__name__
        if what is not None:
            found.append("%s: %s" % (path, what))
    return sorted(found)


def _danger(obj, primitives, allowed_classes):
    if isinstance(obj, types.ModuleType):
        return "a module"
    if isinstance(obj, type):
        if obj in allowed_classes or obj.__flags__ & IMMUTABLE_TYPE:
            return None
        return "a class (%s.%s)" % (obj.__module__, obj.__qualname__)
    if isinstance(obj, primitives):
        return "a %s.%s" % (type(obj).__module__, type(obj).__qualname__)
    if not isinstance(obj, BaseException):
        name = type(obj).__name__.lower()
        for word in _PRIMITIVE_WORDS:
            if word in name:
                return "a %s.%s" % (type(obj).__module__, type(obj).__qualname__)
    return None
