"""pytz and dateutil as snippets get them: nothing they hand out is shared state a
snippet could change.

- pytz zones are cached process-wide (``pytz.timezone`` returns the same objects to every
  call), and their transition tables are plain lists and a dict shared by all instances
  of a zone. ``timezone()`` freezes a zone the first time it hands it out: the tables
  become tuples and the ``_tzinfos`` dict a read-only view, so that ``localize``,
  ``normalize``, ``fromutc`` and ``datetime`` arithmetic work as before and nothing can
  be changed in place. Freezing is idempotent, done once per zone under a lock.
- ``dateutil.tz.tzoffset`` and ``tzstr`` objects share a class-level lock (their instance
  cache): a snippet holding it would block every later parse with an offset, in every
  thread, inside C where the time limit cannot land. The parser functions therefore
  return datetimes whose fixed offsets are ``tzoffset`` look-alikes of this module
  (immutable, no lock); ``tzinfos`` given as strings (POSIX TZ rules, built as ``tzstr``)
  are refused. ``tzutc``/``UTC`` and ``tzlocal`` hold nothing shared that can change and
  are handed out as they are.
- ``dateutil.rrule``: ``rrulestr`` is a module-level parser instance with its own maps
  (``_freq_map``...), and rule objects built with ``cache=True`` hold a lock. Snippets get
  narrow ``rrule``/``rruleset`` wrappers with the public API (iteration, indexing, ``in``,
  ``count``, ``before``, ``after``, ``xafter``, ``between``, ``replace``, ``str``, and
  ``rrule``/``rdate``/``exrule``/``exdate`` on sets) and a ``rrulestr`` function giving
  them. TZIDs in rule strings are looked up, as in Odoo, with dateutil's own ``gettz``
  (whose zones are cached process-wide: each is frozen like pytz's, its ``_ttinfo_list``
  becoming a tuple; rule-string zones that would be built as ``tzstr`` are refused).
- ``relativedelta`` objects and the weekday constants (``MO``...) hold only numbers; they
  are handed out as they are.
"""

import datetime as _dt
import sys
import threading
import types

from .exceptions import UserError
from .loading import load

_freeze_lock = threading.Lock()
# Zones already frozen (names), read without the lock: a set lookup on the hot path.
_frozen_zones = set()
_ZERO = _dt.timedelta(0)


# --- pytz


def timezone(zone):
    """pytz's ``timezone``: the (frozen) tz object for an IANA zone name."""
    tz = load("pytz", "timezone", "pytz").timezone(zone)
    if tz.zone not in _frozen_zones:
        _freeze(tz)
    return tz


def _freeze(tz):
    with _freeze_lock:
        if tz.zone in _frozen_zones:
            return
        cls = type(tz)
        for name in ("_utc_transition_times", "_transition_info"):
            table = cls.__dict__.get(name)
            if type(table) is list:
                setattr(cls, name, tuple(table))
        tzinfos = tz.__dict__.get("_tzinfos")
        if type(tzinfos) is dict:
            # One view for all instances: pytz's fromutc checks that two instances of a
            # zone share the same _tzinfos object.
            frozen = types.MappingProxyType(tzinfos)
            for instance in list(tzinfos.values()):
                instance._tzinfos = frozen
        _frozen_zones.add(tz.zone)


# --- dateutil.tz / dateutil.parser


class tzoffset(_dt.tzinfo):  # noqa: N801 - the name snippets know from dateutil
    """dateutil's ``tzoffset`` (same behaviour) without its shared instance cache and
    lock."""

    __slots__ = ("_name", "_offset")

    def __init__(self, name, offset):
        if isinstance(offset, _dt.timedelta):
            offset = offset.total_seconds()
        self._name = name
        self._offset = _dt.timedelta(seconds=int(offset))

    def utcoffset(self, dt):
        return self._offset

    def dst(self, dt):
        return _ZERO

    def tzname(self, dt):
        return self._name

    def fromutc(self, dt):
        if not isinstance(dt, _dt.datetime):
            raise TypeError("fromutc() requires a datetime argument")
        if dt.tzinfo is not self:
            raise ValueError("dt.tzinfo is not self")
        return dt + self._offset

    def is_ambiguous(self, dt):
        return False

    def __eq__(self, other):
        if isinstance(other, tzoffset) or isinstance(other, _dateutil_tz("tzoffset")):
            return self._offset == other._offset
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # as dateutil's

    def __repr__(self):
        return "tzoffset(%r, %d)" % (self._name, int(self._offset.total_seconds()))


class _Never:
    pass


def _dateutil_tz(name):
    """A class of dateutil.tz when it is loaded (a class nothing is an instance of when
    it is not)."""
    return getattr(sys.modules.get("dateutil.tz"), name, _Never)


def _safe_tzinfo(tzinfo):
    """``tzinfo`` as a snippet may hold it (see the module docstring)."""
    if tzinfo is None or isinstance(tzinfo, tzoffset):
        return tzinfo
    if isinstance(tzinfo, _dateutil_tz("tzoffset")):
        return tzoffset(tzinfo._name, tzinfo._offset)
    if isinstance(tzinfo, _dateutil_tz("tzstr")):
        raise UserError(_NO_TZSTR)
    return tzinfo


_NO_TZSTR = (
    "time zones given as TZ rule strings are not available in towerhook: give an offset "
    "in seconds or a timezone('Area/City') object instead"
)


def _safe_datetime(value):
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        safe = _safe_tzinfo(value.tzinfo)
        if safe is not value.tzinfo:
            return value.replace(tzinfo=safe)
    return value


def _safe_tzinfos(tzinfos):
    """A ``tzinfos`` argument whose answers never build dateutil's shared objects."""
    if tzinfos is None:
        return None

    def lookup(name, offset):
        if callable(tzinfos):
            found = tzinfos(name, offset)
        else:
            found = tzinfos.get(name)
        if found is None or isinstance(found, _dt.tzinfo):
            return _safe_tzinfo(found)
        if isinstance(found, str):
            raise UserError(_NO_TZSTR)
        if isinstance(found, int) and not isinstance(found, bool):
            return tzoffset(name, found)
        raise TypeError("Offset must be tzinfo subclass, tz string, or int offset.")

    return lookup


def parse(timestr, parserinfo=None, **kwargs):
    """dateutil's ``parser.parse``; fixed offsets come back as safe ``tzoffset``."""
    module = load("dateutil.parser", "dateutil.parser", "python-dateutil")
    if "tzinfos" in kwargs:
        kwargs["tzinfos"] = _safe_tzinfos(kwargs["tzinfos"])
    result = module.parse(timestr, parserinfo, **kwargs)
    if isinstance(result, tuple):  # fuzzy_with_tokens=True
        return (_safe_datetime(result[0]),) + tuple(result[1:])
    return _safe_datetime(result)


def isoparse(dt_str):
    """dateutil's ``parser.isoparse``; fixed offsets come back as safe ``tzoffset``."""
    module = load("dateutil.parser", "dateutil.parser", "python-dateutil")
    return _safe_datetime(module.isoparse(dt_str))


# --- dateutil.rrule


def _rule_zone(name):
    """The zone of a TZID in a rule string: dateutil's ``gettz`` (as Odoo's rrulestr
    uses), frozen."""
    zone = load("dateutil.tz", "dateutil.tz", "python-dateutil").gettz(name)
    if isinstance(zone, _dateutil_tz("tzfile")) and type(zone._ttinfo_list) is list:
        # Only compared in tzfile.__eq__; the zone is shared by every later lookup.
        zone._ttinfo_list = tuple(zone._ttinfo_list)
    return _safe_tzinfo(zone)



def _rrule_module():
    return load("dateutil.rrule", "dateutil.rrule", "python-dateutil")


class _RuleBase:
    """What rrule and rruleset share (dateutil's rrulebase API) around the real rule,
    kept in a slot whose name a snippet cannot spell."""

    __slots__ = ("__real",)

    def __init__(self, real):
        self.__real = real

    def __iter__(self):
        return iter(self.__real)

    def __getitem__(self, item):
        return self.__real[item]

    def __contains__(self, item):
        return item in self.__real

    def count(self):
        return self.__real.count()

    def before(self, dt, inc=False):
        return self.__real.before(dt, inc)

    def after(self, dt, inc=False):
        return self.__real.after(dt, inc)

    def xafter(self, dt, count=None, inc=False):
        return _generate(self.__real.xafter(dt, count, inc))

    def between(self, after, before, inc=False, count=1):
        return self.__real.between(after, before, inc, count)

    def __str__(self):
        return str(self.__real)


def _generate(iterator):
    # dateutil's generator, behind one of ours (no attribute of either leads anywhere).
    yield from iterator


def _real(rule):
    return rule._RuleBase__real


def _wrap_rule(real):
    cls = rruleset if isinstance(real, _rrule_module().rruleset) else rrule
    wrapped = object.__new__(cls)
    _RuleBase.__init__(wrapped, real)
    return wrapped


def _unwrap_rule(rule):
    if isinstance(rule, _RuleBase):
        return _real(rule)
    raise TypeError("expected an rrule or rruleset, not %s" % type(rule).__name__)


class rrule(_RuleBase):  # noqa: N801 - the name snippets know from dateutil
    """dateutil's ``rrule`` (same arguments), as a narrow wrapper."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        _RuleBase.__init__(self, _rrule_module().rrule(*args, **kwargs))

    def replace(self, **kwargs):
        return _wrap_rule(_real(self).replace(**kwargs))

    def __repr__(self):
        return "<rrule %s>" % str(_real(self)).replace("\n", " ")


class rruleset(_RuleBase):  # noqa: N801 - the name snippets know from dateutil
    """dateutil's ``rruleset``, as a narrow wrapper."""

    __slots__ = ()

    def __init__(self, cache=False):
        _RuleBase.__init__(self, _rrule_module().rruleset(cache))

    def rrule(self, rrule):
        _real(self).rrule(_unwrap_rule(rrule))

    def rdate(self, rdate):
        _real(self).rdate(rdate)

    def exrule(self, exrule):
        _real(self).exrule(_unwrap_rule(exrule))

    def exdate(self, exdate):
        _real(self).exdate(exdate)

    def __repr__(self):
        return "<rruleset>"

    __str__ = __repr__


def rrulestr(s, **kwargs):
    """dateutil's ``rrulestr``: an rrule or rruleset wrapper for an RFC 5545 text."""
    if "tzinfos" in kwargs:
        kwargs["tzinfos"] = _safe_tzinfos(kwargs["tzinfos"])
    if kwargs.get("tzids") is None:
        kwargs["tzids"] = _rule_zone
    return _wrap_rule(_rrule_module().rrulestr(s, **kwargs))
