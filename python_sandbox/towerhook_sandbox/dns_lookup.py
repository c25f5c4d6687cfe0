"""``dns`` as snippets get it: answers and errors as plain copies.

dnspython's answers hold the whole response message, and every record, name server and
message holds enum members whose class maps (``_member_map_``...) are process-wide dicts a
snippet could change; its exceptions hold messages and the resolver's errors, and their
classes a shared ``supp_kwargs`` set. Snippets get instead:

- ``Answer``: ``qname``, ``rdtype``, ``rdclass``, ``canonical_name``, ``rrset``,
  ``expiration``, ``nameserver``, ``port``; ``len()``, iteration and indexing over its
  records. (No ``response``: the raw message stays inside.)
- ``RRset``: ``name``, ``ttl``, ``rdtype``, ``rdclass``, ``covers``, records,
  ``to_text()``.
- ``Record``: the record's own fields (``address``; ``preference``/``exchange``;
  ``strings``; ``target``...), ``rdtype``, ``rdclass``, ``to_text()``, ``str()``.
- Names stay ``dns.name.Name`` objects (immutable, hold only their labels); type and
  class codes are ints whose ``name`` is the mnemonic (``A``, ``IN``).
- Errors are copies of dnspython's exception classes (same names and hierarchy, message
  only) under the ``dns.exception.DNSException`` snippets get, so ``except
  dns.exception.DNSException`` catches them.

``resolve``/``query`` use dnspython's default resolver (the host's configuration), with
``lifetime`` bounded by the snippet's remaining time.
"""

import enum

from . import guard
from .loading import load
from .mirror import Mirror, detached, reraise_timeout


class DNSException(Exception):
    """dnspython's DNSException as snippets get it: a message, nothing else."""


DNSException.__module__ = "dns.exception"

_mirror = Mirror(
    lambda: load("dns.exception", "dns.exception", "dnspython").DNSException, DNSException
)

# resolve/query(qname, rdtype, rdclass, tcp, source, raise_on_no_answer, source_port,
# lifetime, ...)
_LIFETIME_POSITION = 7


def _call(function, args, kwargs):
    failure = None
    try:
        return function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reaches the snippet as a copy
        failure = exc
    reraise_timeout(failure)
    root = _mirror._real_root()
    if isinstance(failure, root):
        narrow = _mirror.narrow(failure)
    else:
        narrow = detached(failure, DNSException)
    failure = None
    raise narrow


def _lookup(name):
    def lookup(*args, **kwargs):
        if len(args) > _LIFETIME_POSITION:
            args = list(args)
            args[_LIFETIME_POSITION] = guard.bounded(args[_LIFETIME_POSITION])
        else:
            kwargs["lifetime"] = guard.bounded(kwargs.get("lifetime"))
        resolver = load("dns.resolver", "dns.resolver", "dnspython")
        return Answer(_call(getattr(resolver, name), args, kwargs))

    lookup.__name__ = lookup.__qualname__ = name
    return lookup


resolve = _lookup("resolve")
query = _lookup("query")


def from_address(text, v4_origin=None, v6_origin=None):
    reversename = load("dns.reversename", "dns.reversename", "dnspython")
    kwargs = {}
    if v4_origin is not None:
        kwargs["v4_origin"] = v4_origin
    if v6_origin is not None:
        kwargs["v6_origin"] = v6_origin
    return _call(reversename.from_address, (text,), kwargs)


def to_address(name, v4_origin=None, v6_origin=None):
    reversename = load("dns.reversename", "dns.reversename", "dnspython")
    kwargs = {}
    if v4_origin is not None:
        kwargs["v4_origin"] = v4_origin
    if v6_origin is not None:
        kwargs["v6_origin"] = v6_origin
    return _call(reversename.to_address, (name,), kwargs)


# --- codes

_ENUMS = {}


class Code(int):
    """A DNS type or class code: an int whose ``name`` is its mnemonic."""

    __slots__ = ()

    @property
    def name(self):
        real = _ENUMS.get(type(self))
        try:
            return real(int(self)).name
        except Exception:  # noqa: BLE001 - a code dnspython has no name for
            return "TYPE%d" % int(self)

    def __repr__(self):
        return "<%s.%s: %d>" % (type(self).__name__, self.name, int(self))

    def __str__(self):
        return str(int(self))

    __format__ = int.__format__


_CODES = {}


def _code(value):
    """``value`` (an IntEnum member of dnspython) as a Code; other values unchanged."""
    real = type(value)
    if not isinstance(value, enum.Enum):
        return value
    cls = _CODES.get(real)
    if cls is None:
        cls = type(real.__name__, (Code,), {"__slots__": (), "__module__": real.__module__})
        _ENUMS[cls] = real
        _CODES[real] = cls
    return cls(int(value))


def _plain(value):
    """A field value as snippets get it: plain values, names, codes, tuples of those."""
    if value is None or type(value) in (str, int, float, bool, bytes):
        return value
    if isinstance(value, enum.Enum):
        return _code(value)
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    name_class = getattr(load("dns.name", "dns.name", "dnspython"), "Name")
    if type(value) is name_class:
        return value
    to_text = getattr(value, "to_text", None)
    return to_text() if callable(to_text) else str(value)


# --- answers


class Record:
    """One record (rdata) of an answer: its fields as plain values."""

    __slots__ = ("__fields", "__text", "__kind")

    def __init__(self, rdata):
        fields = {}
        for cls in type(rdata).__mro__:
            for slot in cls.__dict__.get("__slots__", ()):
                if slot not in fields and not slot.startswith("_"):
                    fields[slot] = _plain(getattr(rdata, slot, None))
        self.__fields = fields
        self.__text = rdata.to_text()
        self.__kind = "%s %s" % (
            fields["rdclass"].name if "rdclass" in fields else "?",
            fields["rdtype"].name if "rdtype" in fields else "?",
        )

    def __getattr__(self, name):
        if name.startswith("_Record__"):
            raise AttributeError(name)
        try:
            return self.__fields[name]
        except KeyError:
            message = "%r object has no attribute %r" % (self.__kind, name)
            raise AttributeError(message) from None

    def to_text(self, *args, **kwargs):
        return self.__text

    def __str__(self):
        return self.__text

    def __repr__(self):
        return "<DNS %s rdata: %s>" % (self.__kind, self.__text)

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        return (self.__kind, self.__text) == (other.__kind, other.__text)

    def __hash__(self):
        return hash((self.__kind, self.__text))


class RRset:
    """The records of an answer with their owner name and TTL."""

    __slots__ = ("name", "ttl", "rdtype", "rdclass", "covers", "__records", "__text")

    def __init__(self, real):
        self.name = real.name
        self.ttl = real.ttl
        self.rdtype = _code(real.rdtype)
        self.rdclass = _code(real.rdclass)
        self.covers = _code(real.covers)
        self.__records = tuple(Record(rdata) for rdata in real)
        self.__text = real.to_text()

    def __iter__(self):
        return iter(self.__records)

    def __len__(self):
        return len(self.__records)

    def __getitem__(self, index):
        return self.__records[index]

    def __contains__(self, item):
        return item in self.__records

    def to_text(self, *args, **kwargs):
        return self.__text

    def __str__(self):
        return self.__text

    def __repr__(self):
        return "<DNS %s %s %s RRset: %r>" % (
            self.name,
            self.rdclass.name,
            self.rdtype.name,
            [str(record) for record in self.__records],
        )


class Answer:
    """What ``resolve``/``query`` return (see the module docstring)."""

    __slots__ = (
        "qname",
        "rdtype",
        "rdclass",
        "canonical_name",
        "rrset",
        "expiration",
        "nameserver",
        "port",
    )

    def __init__(self, real):
        self.qname = real.qname
        self.rdtype = _code(real.rdtype)
        self.rdclass = _code(real.rdclass)
        self.canonical_name = real.canonical_name
        self.rrset = None if real.rrset is None else RRset(real.rrset)
        self.expiration = real.expiration
        self.nameserver = real.nameserver
        self.port = real.port

    def __len__(self):
        return 0 if self.rrset is None else len(self.rrset)

    def __iter__(self):
        return iter(()) if self.rrset is None else iter(self.rrset)

    def __getitem__(self, index):
        if self.rrset is None:
            raise IndexError("answer has no records")
        return self.rrset[index]

    def __repr__(self):
        return "<dns answer %s %s: %d record(s)>" % (
            self.qname,
            self.rdtype.name,
            len(self),
        )
