"""The Odoo objects of the module's eval context: ``uid``, ``user``, ``env``, ``tower``,
``tower_servers``, ``tower_commands``, ``tower_plans``.

Without an Odoo connection each name holds a stand-in that raises a UserError saying so
as soon as a snippet does anything with it (reads an attribute, calls it, compares it,
prints it...). A call may bring the real objects in ``context["odoo"]``, in one of three
forms:

- a bridge (an object with ``execute``, ``user`` and ``context``; the Rust host's form):
  the names are built for the snippet's kind by the ORM proxy of ``orm.py``, over RPC
  (the module runs authenticators with sudo, here towerhook's service user, and webhooks
  as their Run as User; the host picks the credentials from the kind);
- a mapping of these names to objects;
- a callable ``odoo(kind)`` returning that mapping for the snippet kind.

Names it provides replace the stand-ins; other names in a mapping are ignored.
"""

from . import orm
from .exceptions import UserError

NAMES = ("uid", "user", "env", "tower", "tower_servers", "tower_commands", "tower_plans")


def _refuse(method_name):
    def refuse(self, *args, **kwargs):
        raise UserError(object.__getattribute__(self, "_Unavailable__message"))

    refuse.__name__ = method_name
    return refuse


class Unavailable:
    """Stands in for an Odoo object towerhook cannot provide."""

    __slots__ = ("__message",)

    def __init__(self, message):
        self.__message = message

    __getattr__ = _refuse("__getattr__")
    __call__ = _refuse("__call__")
    __getitem__ = _refuse("__getitem__")
    __iter__ = _refuse("__iter__")
    __len__ = _refuse("__len__")
    __contains__ = _refuse("__contains__")
    __bool__ = _refuse("__bool__")
    __eq__ = _refuse("__eq__")
    __ne__ = _refuse("__ne__")
    __lt__ = _refuse("__lt__")
    __le__ = _refuse("__le__")
    __gt__ = _refuse("__gt__")
    __ge__ = _refuse("__ge__")
    __hash__ = _refuse("__hash__")
    __int__ = _refuse("__int__")
    __index__ = _refuse("__index__")
    __float__ = _refuse("__float__")
    __str__ = _refuse("__str__")
    __repr__ = _refuse("__repr__")
    __format__ = _refuse("__format__")
    __add__ = __radd__ = _refuse("__add__")
    __sub__ = __rsub__ = _refuse("__sub__")
    __mul__ = __rmul__ = _refuse("__mul__")
    __truediv__ = __rtruediv__ = _refuse("__truediv__")
    __mod__ = __rmod__ = _refuse("__mod__")


_cache = {}


def placeholders(source):
    """Stand-ins for every Odoo name, for calls served from ``source`` (e.g. ``"yaml"``)."""
    found = _cache.get(source)
    if found is None:
        found = {
            name: Unavailable(
                "%s is not available: towerhook runs this webhook without an Odoo "
                "connection (source %r)" % (name, source)
            )
            for name in NAMES
        }
        _cache[source] = found
    return found


def provide(odoo, kind, wanted=None):
    """``(names, session)``: the Odoo names ``context["odoo"]`` provides for a snippet of
    ``kind``, and, for a bridge, the session to close once the snippet's run is over
    (``session.bridge = None``), else None. ``wanted``: the names the snippet uses; a
    bridge builds only those (a mapping gives what it has)."""
    if getattr(odoo, "execute", None) is not None:
        return orm.bind(odoo, kind, wanted)
    if callable(odoo):
        odoo = odoo(kind)
    return {name: odoo[name] for name in NAMES if name in odoo}, None


def provided(odoo, kind):
    """The Odoo names ``context["odoo"]`` provides for a snippet of ``kind``.

    For a bridge, prefer ``provide``: its session must be closed after the run.
    """
    if odoo is None:
        return None
    return provide(odoo, kind)[0]
