"""The libraries of the module's eval context, wrapped as Odoo/Cetmix wrap them.

Each library is a stand-in exposing only the attributes the module exposes
(``wrap_module`` in Odoo's safe_eval, ``_get_python_command_libraries`` in Cetmix Tower);
any other attribute is absent. Differences, all deliberate:

- ``json`` also has ``loads`` (towerhook extension; Cetmix exposes ``dumps`` only).
- ``AccessError``, ``ValidationError`` and ``MissingError`` sit next to ``UserError``
  (towerhook extension), so that ``except AccessError:`` works on what the Odoo objects
  raise.
- Blocking calls respect the snippet's deadline: ``time.sleep`` sleeps in slices of at most
  50 ms and raises SnippetTimeout when no time is left; ``requests`` calls get
  ``timeout=min(timeout or default, remaining)`` (default: towerhook's
  ``outbound_timeout_seconds``); ``dns.resolver`` calls get ``lifetime`` bounded by the
  remaining time.
- ``tldextract.extract`` never touches the network or the disk: it uses the Public Suffix
  List snapshot bundled with the tldextract package, and no cache directory.
- Third-party packages are imported on first use. A missing package does not stop
  towerhook from starting; the snippet that uses it fails with a UserError naming the
  package to install.
- ``dateutil.tz.gettz`` is ``pytz.timezone`` as in Odoo 17/18, without Odoo's pytz alias
  patch (old zone names Odoo maps to current ones are unknown here).

Isolation: snippets of every webhook share this process, and a snippet may read any
attribute without a double underscore and change any container it reaches in place
(``obj._table[0] = x``, ``lst.append``). So nothing a library hands out may lead to
process-wide state (a module, a changeable class, a socket, a lock, a connection pool, a
session, a shared list or dict). Per library (``tests/test_reachability.py`` walks what
each hands out):

- ``requests``: towerhook sends (a session of its own per request, environment ignored,
  towerhook's proxy and default timeout) and the snippet gets a narrow ``Response`` and
  narrow exceptions (``outbound.py``).
- ``timezone``/``dateutil.tz.gettz``: pytz zones are process-wide singletons; each is
  frozen the first time it is handed out (tables as tuples, read-only ``_tzinfos``), so
  it keeps working unchanged and cannot be changed (``dates.py``).
- ``dateutil.parser``: the real functions, except that a fixed offset comes back as an
  immutable ``tzoffset`` of ``dates.py`` instead of dateutil's, whose class holds a
  process-wide lock.
- ``dateutil.rrule``: ``rrule``, ``rruleset`` and ``rrulestr`` are narrow wrappers
  (``rrulestr`` is a shared parser instance, and cached rules hold a lock); the constants
  are ints and dateutil's immutable weekdays.
- ``dateutil.relativedelta``, ``dateutil.tz.UTC``/``tzutc``: dateutil's own objects; they
  hold numbers and nothing shared that can change.
- ``dns``: narrow answers, records and exceptions (``dns_lookup.py``); reverse names are
  dnspython's immutable ``Name`` objects.
- ``tldextract`` (a new result of strings per call), ``hashlib``/``hmac`` (C hash
  objects, hmac objects holding them), ``json``, ``time``, ``datetime`` (immutable
  built-in types): as they are.
"""

import time as _time

from . import dates, dns_lookup, guard, outbound
from .exceptions import (
    AccessError,
    MissingError,
    SnippetTimeout,
    UserError,
    ValidationError,
)
from .float_utils import float_compare
from .loading import load

SLEEP_SLICE = 0.05


class Library:
    """Stands in for a module: only the listed attributes exist.

    ``attributes`` maps each exposed name to None (the module's own attribute) or to a
    function of the module that builds what the snippet gets. The module is imported on
    the first attribute read. Internal state lives in name-mangled attributes, whose names
    contain a double underscore and so cannot be read by a snippet.
    """

    def __init__(self, title, module_name, package, attributes):
        self.__title = title
        self.__module_name = module_name
        self.__package = package
        self.__attributes = dict(attributes)

    def __getattr__(self, name):
        if name.startswith("_Library__") or name not in self.__attributes:
            # Odoo's wrapper class is named wrap_module; snippets may match its message.
            raise AttributeError("'wrap_module' object has no attribute %r" % name)
        module = load(self.__module_name, self.__title, self.__package)
        build = self.__attributes[name]
        value = getattr(module, name) if build is None else build(module)
        self.__dict__[name] = value
        return value

    def __repr__(self):
        return "<wrapped %r>" % self.__title


class Namespace:
    """A plain namespace of libraries (Cetmix's ``dns`` is a SimpleNamespace)."""

    def __init__(self, **members):
        self.__dict__.update(members)

    def __repr__(self):
        return "namespace(%s)" % ", ".join("%s=%r" % item for item in self.__dict__.items())


# --- time


def sleep(seconds):
    """``time.sleep`` in short slices, so the host's timeout can land between them."""
    if not isinstance(seconds, (int, float)):
        raise TypeError(
            "%r object cannot be interpreted as an integer" % type(seconds).__name__
        )
    if seconds != seconds:
        raise ValueError("Invalid value NaN (not a number)")
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = _time.monotonic() + seconds
    while True:
        left = end - _time.monotonic()
        if left <= 0:
            return
        remaining = guard.remaining()
        if remaining <= 0:
            raise SnippetTimeout()
        _time.sleep(min(left, SLEEP_SLICE, remaining))


# --- tldextract, offline

_extractor = None


def _offline_extract(module):
    def extract(url, include_psl_private_domains=None):
        global _extractor
        if _extractor is None:
            # No suffix list URLs and no cache directory: the bundled snapshot only.
            _extractor = module.TLDExtract(
                cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True
            )
        return _extractor(url, include_psl_private_domains=include_psl_private_domains)

    return extract


# --- pytz

timezone = dates.timezone


# --- the libraries

_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_HASHES = [
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sha3_224",
    "sha3_256",
    "sha3_384",
    "sha3_512",
    "shake_128",
    "shake_256",
    "blake2b",
    "blake2s",
    "md5",
    "new",
]


def _dateutil():
    def sub(name, attributes, extra=None):
        exposed = dict.fromkeys(attributes)
        exposed.update(extra or {})
        return lambda _module: Library(
            "dateutil." + name, "dateutil." + name, "python-dateutil", exposed
        )

    return Library(
        "dateutil",
        "dateutil",
        "python-dateutil",
        {
            "tz": sub("tz", ["UTC", "tzutc"], {"gettz": lambda _m: timezone}),
            "parser": sub(
                "parser",
                [],
                {"isoparse": lambda _m: dates.isoparse, "parse": lambda _m: dates.parse},
            ),
            "relativedelta": sub("relativedelta", ["relativedelta", *_WEEKDAYS]),
            "rrule": sub(
                "rrule",
                [
                    "YEARLY",
                    "MONTHLY",
                    "WEEKLY",
                    "DAILY",
                    "HOURLY",
                    "MINUTELY",
                    "SECONDLY",
                    *_WEEKDAYS,
                ],
                {
                    "rrule": lambda _m: dates.rrule,
                    "rruleset": lambda _m: dates.rruleset,
                    "rrulestr": lambda _m: dates.rrulestr,
                },
            ),
        },
    )


def build():
    """A fresh set of library names, as the module puts them in the eval context."""
    return {
        "time": Library(
            "time",
            "time",
            None,
            {"time": None, "strptime": None, "strftime": None, "sleep": lambda _m: sleep},
        ),
        "datetime": Library(
            "datetime",
            "datetime",
            None,
            dict.fromkeys(
                [
                    "date",
                    "datetime",
                    "time",
                    "timedelta",
                    "timezone",
                    "tzinfo",
                    "MAXYEAR",
                    "MINYEAR",
                ]
            ),
        ),
        "dateutil": _dateutil(),
        "timezone": timezone,
        "requests": Library(
            "requests",
            "requests",
            "requests",
            {
                name: (lambda _module, name=name: getattr(outbound, name))
                for name in ("post", "get", "delete", "request")
            },
        ),
        "json": Library("json", "json", None, {"dumps": None, "loads": None}),
        "float_compare": float_compare,
        "UserError": UserError,
        # towerhook extension: Odoo's errors a snippet may catch from the Odoo objects.
        "AccessError": AccessError,
        "ValidationError": ValidationError,
        "MissingError": MissingError,
        "hashlib": Library("hashlib", "hashlib", None, dict.fromkeys(_HASHES)),
        "hmac": Library("hmac", "hmac", None, {"new": None, "compare_digest": None}),
        "tldextract": Library(
            "tldextract", "tldextract", "tldextract", {"extract": _offline_extract}
        ),
        "dns": Namespace(
            resolver=Library(
                "dns.resolver",
                "dns.resolver",
                "dnspython",
                {
                    "resolve": lambda _m: dns_lookup.resolve,
                    "query": lambda _m: dns_lookup.query,
                },
            ),
            reversename=Library(
                "dns.reversename",
                "dns.reversename",
                "dnspython",
                {
                    "from_address": lambda _m: dns_lookup.from_address,
                    "to_address": lambda _m: dns_lookup.to_address,
                },
            ),
            exception=Library(
                "dns.exception",
                "dns.exception",
                "dnspython",
                {"DNSException": lambda _m: dns_lookup.DNSException},
            ),
        ),
    }


def preload(names):
    """Imports what ``names`` need now, so the first calls do not pay for it.

    Missing packages are skipped silently here; they are reported to the snippets that
    use them. Also loads tldextract's suffix list snapshot.
    """
    for value in names.values():
        _preload(value)
    try:
        names["tldextract"].extract("example.com")
    except UserError:
        pass


def _preload(value):
    if isinstance(value, Namespace):
        for member in vars(value).values():
            _preload(member)
    elif isinstance(value, Library):
        try:
            for name in value._Library__attributes:
                _preload(getattr(value, name))
        except UserError:
            pass
