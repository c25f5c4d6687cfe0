"""Odoo objects over RPC: ``env``, ``user``, ``uid``, ``tower``, ``tower_servers``...

The Rust host hands each call a *bridge* (``context["odoo"]``) with three methods:

- ``execute(kind, model, method, ids, args, kwargs)`` → ``("ok", value)`` or
  ``("error", exception_name, message)``. ``ids`` is a list of ints for a call on
  records, None for a call on the model; ``args``/``kwargs`` hold JSON values only; the
  host picks the credentials from ``kind`` (``"authenticator"``: towerhook's service user,
  ``"webhook"``: the webhook's run-as user). It may raise ``SnippetTimeout`` (never caught
  here).
- ``user(kind)`` → ``(uid, login)``; ``login`` may be None.
- ``context(kind)`` → the base context (lang, tz... may be empty).

``bind(bridge, kind)`` builds the seven names for one snippet run, plus the session the
runner closes when the run ends (objects smuggled out of a run, e.g. from the
authenticator to the webhook code through ``payload``, refuse to work afterwards). Nothing
reaches the bridge until the snippet uses a name: ``uid`` comes from ``user(kind)``,
everything else is lazy.

What snippets get behaves like Odoo's ORM as far as RPC allows:

- ``env[model]`` is the model (an empty recordset); ``env.user``, ``env.uid``,
  ``env.context``, ``env.lang``, ``env.ref(xmlid)``, ``env.company``, ``env.companies``.
- Model and record methods: ``search``, ``search_read``, ``search_count``, ``browse`` (no
  RPC), ``create``, ``read``, ``write``, ``unlink``, ``copy``, ``exists``, ``name_search``,
  ``get_by_reference`` (a search on ``reference``, limit 1), and any other public method,
  sent as is (records in the arguments travel as ids; results come back as Odoo sends them
  over RPC).
- Records: field values are read on first use, for the whole prefetch set at once (the
  recordset the record came from, up to 1000 records), and cached for the run; a call that
  may change data (anything but the read-only methods) empties the cache. many2one,
  one2many, many2many and reference fields give records (the type comes from
  ``fields_get``, asked once per model and run); date and datetime fields give
  ``datetime.date``/``datetime.datetime`` values.
- Recordset protocol: iteration, ``len``, truth, ``in``, ``==``, ``+ | & -``, ``<``...
  (subsets), indexing and slicing, ``ids``, ``id``, ``mapped``, ``filtered``, ``sorted``,
  ``ensure_one``, ``with_context``, ``with_company``, ``display_name``, ``_name``.
- Refused without RPC: private methods (AccessError, as Odoo's RPC says it), ``sudo()``,
  ``with_user()`` and ``env(user=...)`` (a UserError explaining that an RPC client cannot
  change whose rights it uses), and in-process-only ORM calls (``env.cr``...).
- Refused without RPC, with an AccessError: the companion addon's ``towerhook_*`` methods
  on any model (towerhook's service user may call them, and authenticators run as that
  user: ``towerhook_secret_values`` would hand any webhook's secrets to any snippet), and
  every method of the models that hold secret values (``SECRET_MODELS``). Secrets reach
  code only through ``#!cxtower.secret.REF!#`` placeholders, as in the module.
- Errors from Odoo raise the sandbox classes of the same name (AccessError, MissingError,
  ValidationError, UserError, AccessDenied, RedirectWarning), Python's ValueError,
  KeyError, TypeError, AttributeError, or a UserError ``"<name>: <message>"`` for anything
  else (towerhook's own ``towerhook.*`` errors: the message alone).

Sandbox safety: the objects snippets get (Environment, Recordset, Method) keep everything
in name-mangled slots (``_Recordset__core``...), which safe_eval's name check and the
format-string check refuse, and expose only public, harmless attributes; string paths
given to ``mapped``/``filtered``/``sorted`` and string keys are looked up as fields only,
never with ``getattr``. The session (bridge, kind, caches) is never handed out. Objects
work only in the run that received them, on its thread (``guard.state.session``): after
the run, in the webhook code when they came from the authenticator, and in another call
running at the same time (had a snippet parked them somewhere shared) they refuse.
"""

import datetime as _dt
import json as _json

from . import guard
from .exceptions import (
    AccessDenied,
    AccessError,
    MissingError,
    RedirectWarning,
    UserError,
    ValidationError,
)
from .validation import is_forbidden_name

AUTHENTICATOR = "authenticator"
PREFETCH_MAX = 1000

# Odoo exception paths (``data.name`` of a JSON-RPC error) → the class snippets catch.
ERRORS = {
    "odoo.exceptions.AccessError": AccessError,
    "odoo.exceptions.MissingError": MissingError,
    "odoo.exceptions.ValidationError": ValidationError,
    "odoo.exceptions.UserError": UserError,
    "odoo.exceptions.AccessDenied": AccessDenied,
    "odoo.exceptions.RedirectWarning": RedirectWarning,
    "builtins.ValueError": ValueError,
    "builtins.KeyError": KeyError,
    "builtins.TypeError": TypeError,
    "builtins.AttributeError": AttributeError,
}
TOWERHOOK_ERRORS = "towerhook."

PRIVATE = "Private methods (such as %s) cannot be called remotely."
RESERVED_PREFIX = "towerhook_"
RESERVED = "towerhook's own methods (such as %s) cannot be called from webhook code."
# Cetmix Tower's models that hold secret values (keys, their values, the vault).
SECRET_MODELS = frozenset(
    ["cx.tower.key", "cx.tower.key.value", "cx.tower.vault", "cx.tower.vault.mixin"]
)
SECRET_MODEL = (
    "You are not allowed to access '%s' records: they hold secret values, which webhook "
    "code gets only through #!cxtower.secret.REFERENCE!# placeholders."
)
EXPECTED_SINGLETON = "Expected singleton: %s"

# Methods that cannot change data: the record cache survives them.
READ_ONLY = frozenset(
    [
        "read",
        "search",
        "search_read",
        "search_count",
        "fields_get",
        "name_search",
        "name_get",
        "default_get",
        "read_group",
        "check_access_rights",
        "check_access_rule",
        "check_object_reference",
        "has_group",
    ]
)
# Methods Odoo decorates with @api.model: sent without ids even when called on records.
MODEL_METHODS = frozenset(
    [
        "name_search",
        "name_create",
        "default_get",
        "fields_get",
        "read_group",
        "check_access_rights",
    ]
)
# Names known not to be fields: no fields_get needed to know that they are methods.
RECORD_METHODS = frozenset(
    [
        "name_get",
        "action_archive",
        "action_unarchive",
        "toggle_active",
        "check_access_rule",
        "message_post",
        "message_subscribe",
        "run_command",
        "run_flight_plan",
    ]
)
# ORM calls that only make sense inside the Odoo process.
IN_PROCESS_ONLY = frozenset(
    [
        "with_env",
        "with_prefetch",
        "new",
        "invalidate_recordset",
        "invalidate_model",
        "flush_recordset",
        "flush_model",
        "modified",
        "pool",
    ]
)
ENV_IN_PROCESS_ONLY = frozenset(
    [
        "cr",
        "registry",
        "su",
        "transaction",
        "all",
        "cache",
        "flush_all",
        "invalidate_all",
        "clear",
        "reset",
        "args",
    ]
)
RELATIONAL = frozenset(["many2one", "one2many", "many2many"])
_NULL = {"integer": 0, "float": 0.0, "monetary": 0.0}
DISPLAY_NAME = ("char", None)

_MISSING = object()  # the record was not returned by read: deleted
_SUSPECT = object()  # a prefetch including the record failed: read it alone


# The names bound to models, and their models.
MODEL_NAMES = {
    "tower": "cetmix.tower",
    "tower_servers": "cx.tower.server",
    "tower_commands": "cx.tower.command",
    "tower_plans": "cx.tower.plan",
}


def bind(bridge, kind, wanted=None):
    """``(names, session)``: the Odoo names of one snippet run, and its session.

    ``wanted``: the names the snippet uses (default: all seven); only those are built.
    """
    uid, login = bridge.user(kind)
    if type(uid) is not int:
        uid = int(uid)
    session = Session(bridge, kind, uid, login)
    names = {"uid": uid}
    if wanted is None or len(wanted) > 1 or "uid" not in wanted:
        core = session.core({})
        for name in wanted or ("user", "env", *MODEL_NAMES):
            if name == "user":
                names[name] = core.user()
            elif name == "env":
                names[name] = core.env
            elif name in MODEL_NAMES:
                names[name] = Recordset(core, MODEL_NAMES[name], (), None, True)
    return names, session


class Session:
    """One snippet run's link to Odoo. Never handed to snippet code.

    The runner sets ``bridge`` to None when the run ends (a plain store): every later use
    of the run's objects is refused.
    """

    __slots__ = ("bridge", "kind", "uid", "login", "base", "fields", "values", "cores")

    def __init__(self, bridge, kind, uid, login):
        self.bridge = bridge
        self.kind = kind
        self.uid = uid
        self.login = login
        self.base = None  # bridge.context(kind), on first use
        self.fields = {}  # model → {field: {"type", "relation"}}
        self.values = {}  # context key → model → id → {field: cooked value}
        self.cores = {}  # context key → Core

    def core(self, extra):
        key = _json.dumps(extra, sort_keys=True) if extra else ""
        core = self.cores.get(key)
        if core is None:
            core = self.cores[key] = Core(self, extra, key)
        return core

    def live_bridge(self):
        bridge = self.bridge
        if bridge is None or getattr(guard.state, "session", None) is not self:
            raise UserError(
                "Odoo objects of the %s code can only be used while it runs, by the call "
                "that received them" % self.kind
            )
        return bridge

    def base_context(self):
        base = self.base
        if base is None:
            base = self.live_bridge().context(self.kind)
            base = self.base = dict(base) if base else {}
        return base

    def who(self):
        if self.login:
            return "%r (uid %s)" % (self.login, self.uid)
        return "uid %s" % self.uid

    def rights(self):
        if self.kind == AUTHENTICATOR:
            return "towerhook's service user %s" % self.who()
        return "the webhook's Run as User %s" % self.who()


class Core:
    """The internals behind one Environment (a session and a context). Never handed out."""

    __slots__ = ("session", "extra", "key", "env", "full")

    def __init__(self, session, extra, key):
        self.session = session
        self.extra = extra  # the context the snippet set (JSON values)
        self.key = key
        self.full = None  # base context + extra, on first use
        self.env = Environment(self)

    def context(self):
        full = self.full
        if full is None:
            full = dict(self.session.base_context())
            full.update(self.extra)
            self.full = full
        return full

    def with_extra(self, extra):
        return self.session.core(extra)

    def user(self):
        return Recordset(self, "res.users", (self.session.uid,), None, False)

    def execute(self, model, method, ids, args, kwargs, context=None):
        """Calls ``model.method`` through the bridge; raises Odoo's errors."""
        refuse_reserved(model, method)
        session = self.session
        bridge = session.live_bridge()
        merged = self.context()
        if context or "context" in kwargs:
            merged = dict(merged)
            if context:
                merged.update(context)
            given = kwargs.get("context")
            if given:
                if type(given) is not dict:
                    raise TypeError("context must be a dict")
                merged.update(given)
        if merged:
            kwargs["context"] = dict(merged)  # the bridge gets its own copy
        else:
            kwargs.pop("context", None)
        answer = bridge.execute(session.kind, model, method, ids, args, kwargs)
        if method not in READ_ONLY:
            session.values.clear()
        return _answer(answer)

    def fields(self, model):
        found = self.session.fields.get(model)
        if found is None:
            answer = self.execute(
                model, "fields_get", None, [], {"attributes": ["type", "relation"]}
            )
            found = {}
            if type(answer) is dict:
                for name, info in answer.items():
                    if type(info) is dict:
                        found[name] = (info.get("type"), info.get("relation") or None)
            self.session.fields[model] = found
        return found

    def cache(self, model):
        values = self.session.values
        by_model = values.get(self.key)
        if by_model is None:
            by_model = values[self.key] = {}
        cache = by_model.get(model)
        if cache is None:
            cache = by_model[model] = {}
        return cache

    def fetch(self, model, own, prefetch, name, info):
        """The cooked value of field ``name`` of record ``own`` (read with its prefetch)."""
        cache = self.cache(model)
        entry = cache.get(own)
        if entry is None or name not in entry:
            self.read_batch(model, own, prefetch, name, info, cache)
            entry = cache[own]
        elif entry[name] is _SUSPECT:
            self.read_batch(model, own, (own,), name, info, cache)
        value = entry[name]
        if value is _MISSING:
            raise MissingError(
                "Record does not exist or has been deleted.\n(Record: %s(%d,), User: %s)"
                % (model, own, self.session.uid)
            )
        return value

    def read_batch(self, model, own, prefetch, name, info, cache):
        batch = [own]
        if len(prefetch) > 1:
            seen = {own}
            for other in prefetch:
                if other in seen:
                    continue
                seen.add(other)
                entry = cache.get(other)
                if entry is None or name not in entry:
                    batch.append(other)
                    if len(batch) >= PREFETCH_MAX:
                        break
        try:
            rows = self.execute(model, "read", batch, [[name]], {})
        except (AccessError, MissingError):
            # As Odoo does when prefetching fails: retry with the record alone. The others
            # are read alone too when their turn comes (one of them failed the batch).
            if len(batch) == 1:
                raise
            for other in batch[1:]:
                entry = cache.get(other)
                if entry is None:
                    entry = cache[other] = {}
                entry[name] = _SUSPECT
            batch = [own]
            rows = self.execute(model, "read", batch, [[name]], {})
        if type(rows) is not list:
            rows = []
        self.store(model, batch, rows, name, info, cache)

    def store(self, model, batch, rows, name, info, cache):
        ftype, relation = info
        got = {}
        for row in rows:
            if type(row) is dict and type(row.get("id")) is int:
                got[row["id"]] = row.get(name, False)
        if ftype in RELATIONAL:
            cooked = {}
            together = []
            for rid, raw in got.items():
                ids = _relational_ids(raw)
                cooked[rid] = ids
                together.extend(ids)
            prefetch = tuple(dict.fromkeys(together))
            for rid, ids in cooked.items():
                got[rid] = (ids, prefetch)
            if ftype == "many2one" and relation:
                # [id, display name]: the comodel's display_name comes for free.
                names = self.cache(relation)
                for raw in _pairs(rows, name):
                    names.setdefault(raw[0], {}).setdefault("display_name", raw[1])
        elif ftype == "reference":
            for rid, raw in got.items():
                got[rid] = _reference(raw)
        elif ftype == "date":
            for rid, raw in got.items():
                got[rid] = _date(raw)
        elif ftype == "datetime":
            for rid, raw in got.items():
                got[rid] = _datetime(raw)
        for rid in batch:
            entry = cache.get(rid)
            if entry is None:
                entry = cache[rid] = {}
            entry[name] = got.get(rid, _MISSING)

    def vals(self, model, vals):
        """``vals`` for create/write: records become what the field expects."""
        if type(vals) is not dict:
            return _marshal(vals)
        out = {}
        fields = None
        for key, value in vals.items():
            if type(key) is not str:
                raise TypeError("field names must be strings, not %s" % type(key).__name__)
            if isinstance(value, Recordset):
                if fields is None:
                    fields = self.fields(model)
                out[key] = _record_value(fields.get(key, (None, None))[0], value)
            else:
                out[key] = _marshal(value)
        return out

    def refuse_sudo(self):
        session = self.session
        raise UserError(
            "sudo() is not available in towerhook: code runs over RPC with the rights of "
            "%s, and an RPC client cannot raise them. Give that user the access rights "
            "the code needs instead." % session.rights()
        )

    def refuse_user(self):
        session = self.session
        raise UserError(
            "with_user() is not available in towerhook: code runs over RPC with the "
            "credentials of %s and cannot act as another user." % session.rights()
        )


def _pairs(rows, name):
    for row in rows:
        if type(row) is dict:
            raw = row.get(name)
            if type(raw) is list and len(raw) == 2 and type(raw[0]) is int:
                yield raw


class Environment:
    """What a snippet knows as ``env``."""

    __slots__ = ("__core",)

    def __init__(self, core):
        self.__core = core

    def __getitem__(self, model):
        if type(model) is not str:
            raise KeyError(model)
        return Recordset(self.__core, model, (), None, True)

    def __call__(self, cr=None, user=None, context=None, su=None):
        core = self.__core
        if user is not None:
            core.refuse_user()
        if su:
            core.refuse_sudo()
        if cr is not None:
            raise UserError("env(cr=...) is not available in towerhook: code runs over RPC")
        if context is None:
            return self
        return core.with_extra(_context(context)).env

    def __getattr__(self, name):
        if name in ENV_IN_PROCESS_ONLY:
            raise UserError(
                "env.%s is not available in towerhook: code reaches Odoo over RPC, not "
                "inside the Odoo process" % name
            )
        raise AttributeError("'Environment' object has no attribute %r" % name)

    def __repr__(self):
        return "Environment(uid=%s)" % self.__core.session.uid

    @property
    def uid(self):
        return self.__core.session.uid

    @property
    def user(self):
        return self.__core.user()

    @property
    def context(self):
        return dict(self.__core.context())

    @property
    def lang(self):
        return self.__core.context().get("lang") or False

    @property
    def company(self):
        core = self.__core
        companies = core.context().get("allowed_company_ids")
        if companies:
            return Recordset(core, "res.company", (int(companies[0]),), None, False)
        return core.user().company_id

    @property
    def companies(self):
        core = self.__core
        companies = core.context().get("allowed_company_ids")
        if companies:
            return Recordset(core, "res.company", _ids(companies), None, False)
        return core.user().company_ids

    def ref(self, xml_id, raise_if_not_found=True):
        """The record of an external id (``module.name``), over RPC.

        Uses ``ir.model.data.check_object_reference``: one call, Odoo's cached xmlid lookup
        (the one env.ref uses), no read right on ir.model.data needed, and Odoo's own
        "External ID not found" text. It also checks that the user may see the record.
        """
        core = self.__core
        module, dot, name = str(xml_id).partition(".")
        if not dot:
            if raise_if_not_found:
                raise ValueError("External ID not found in the system: %s" % xml_id)
            return None
        try:
            found = core.execute(
                "ir.model.data", "check_object_reference", None, [module, name, True], {}
            )
        except ValueError:
            if raise_if_not_found:
                raise
            return None
        if type(found) is list and len(found) == 2 and type(found[1]) is int:
            return Recordset(core, found[0], (found[1],), None, False)
        if raise_if_not_found:
            raise ValueError("External ID not found in the system: %s" % xml_id)
        return None


class Recordset:
    """An Odoo model or recordset, as snippets know it."""

    __slots__ = ("__core", "__model", "__ids", "__prefetch", "__is_model")

    def __init__(self, core, model, ids, prefetch, is_model):
        self.__core = core
        self.__model = model
        self.__ids = ids
        self.__prefetch = prefetch
        self.__is_model = is_model

    # ---- internals (names a snippet cannot spell)

    def __browse(self, ids, prefetch=None):
        prefetch = prefetch or self.__prefetch or self.__ids
        return Recordset(self.__core, self.__model, ids, prefetch, False)

    def __same_model(self, other, operator):
        if not isinstance(other, Recordset) or other.__model != self.__model:
            raise TypeError("inconsistent models in: %s %s %s" % (self, operator, other))
        return other.__ids

    def __field_info(self, name):
        info = self.__core.fields(self.__model).get(name)
        if info is None:
            raise KeyError(name)
        return info

    def __value(self, name, info):
        ids = self.__ids
        if len(ids) != 1:
            if not ids:
                return self.__null(info)
            raise ValueError(EXPECTED_SINGLETON % (self,))
        core = self.__core
        cooked = core.fetch(self.__model, ids[0], self.__prefetch or ids, name, info)
        ftype, relation = info
        if ftype in RELATIONAL:
            return Recordset(core, relation, cooked[0], cooked[1], False)
        if ftype == "reference":
            if not cooked:
                return False
            return Recordset(core, cooked[0], (cooked[1],), None, False)
        if type(cooked) in (list, dict):
            return _copy(cooked)
        return cooked

    def __null(self, info):
        ftype, relation = info
        if ftype in RELATIONAL:
            return Recordset(self.__core, relation, (), None, False)
        return _NULL.get(ftype, False)

    def __path(self, path):
        names = path.split(".")
        for name in names:
            _check_public(name)
        return names

    def __mapped_field(self, name):
        if name == "id":
            return list(self.__ids)
        info = self.__field_info(name)
        records = [self.__browse((rid,)) for rid in self.__ids]
        if info[0] in RELATIONAL:
            ids = []
            prefetch = ()
            for record in records:
                value = record.__value(name, info)
                ids.extend(value.__ids)
                prefetch = value.__prefetch or prefetch
            return Recordset(
                self.__core, info[1], tuple(dict.fromkeys(ids)), prefetch or None, False
            )
        return [record.__value(name, info) for record in records]

    def __item(self, name):
        _check_public(name)
        if name == "id":
            return self.id
        return self.__value(name, self.__field_info(name))

    # ---- attribute access: fields and methods

    def __getattr__(self, name):
        if name[:2] == "__" or name.startswith("_Recordset__"):
            raise AttributeError(name)
        if name[:1] == "_" or name == "init":
            raise AccessError(PRIVATE % name)
        if name.startswith(RESERVED_PREFIX):
            raise AccessError(RESERVED % name)
        core = self.__core
        if name in IN_PROCESS_ONLY:
            raise UserError(
                "%s() is not available in towerhook: code reaches Odoo over RPC, not "
                "inside the Odoo process" % name
            )
        if name in MODEL_METHODS:
            return Method(core, self.__model, name, None)
        if not self.__is_model and name not in RECORD_METHODS:
            if name == "display_name":
                # On every model; no fields_get needed (and often primed by a many2one).
                return self.__value(name, DISPLAY_NAME)
            info = core.fields(self.__model).get(name)
            if info is not None:
                return self.__value(name, info)
        ids = None if self.__is_model else list(self.__ids)
        return Method(core, self.__model, name, ids)

    # ---- recordset protocol

    def __repr__(self):
        return "%s%r" % (self.__model, self.__ids)

    __str__ = __repr__

    def __len__(self):
        return len(self.__ids)

    def __bool__(self):
        return bool(self.__ids)

    def __iter__(self):
        prefetch = self.__prefetch or self.__ids
        core = self.__core
        model = self.__model
        return iter([Recordset(core, model, (rid,), prefetch, False) for rid in self.__ids])

    def __contains__(self, item):
        if isinstance(item, Recordset) and item.__model == self.__model:
            return len(item.__ids) == 1 and item.__ids[0] in self.__ids
        if isinstance(item, str):
            return item in self.__core.fields(self.__model)
        raise TypeError("unsupported operand types in: %r in %r" % (item, self))

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.__item(key)
        if isinstance(key, slice):
            return self.__browse(self.__ids[key])
        return self.__browse((self.__ids[key],))

    def __eq__(self, other):
        if not isinstance(other, Recordset):
            return NotImplemented
        return self.__model == other.__model and set(self.__ids) == set(other.__ids)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash((self.__model, frozenset(self.__ids)))

    def __lt__(self, other):
        return set(self.__ids) < set(self.__same_model(other, "<"))

    def __le__(self, other):
        return set(self.__ids) <= set(self.__same_model(other, "<="))

    def __gt__(self, other):
        return set(self.__ids) > set(self.__same_model(other, ">"))

    def __ge__(self, other):
        return set(self.__ids) >= set(self.__same_model(other, ">="))

    def __int__(self):
        return self.id or 0

    def __add__(self, other):
        ids = self.__ids + self.__same_model(other, "+")
        return self.__browse(ids, ids)

    def __or__(self, other):
        ids = tuple(dict.fromkeys(self.__ids + self.__same_model(other, "|")))
        return self.__browse(ids, ids)

    def __and__(self, other):
        keep = set(self.__same_model(other, "&"))
        return self.__browse(tuple(dict.fromkeys(i for i in self.__ids if i in keep)))

    def __sub__(self, other):
        drop = set(self.__same_model(other, "-"))
        return self.__browse(tuple(i for i in self.__ids if i not in drop))

    # ---- identity

    @property
    def ids(self):
        return list(self.__ids)

    @property
    def id(self):
        ids = self.__ids
        if not ids:
            return False
        if len(ids) == 1:
            return ids[0]
        raise ValueError(EXPECTED_SINGLETON % (self,))

    @property
    def _name(self):
        return self.__model

    @property
    def env(self):
        return self.__core.env

    def ensure_one(self):
        if len(self.__ids) != 1:
            raise ValueError(EXPECTED_SINGLETON % (self,))
        return self

    def browse(self, ids=None):
        return Recordset(self.__core, self.__model, _ids(ids), None, False)

    # ---- client-side helpers

    def mapped(self, func):
        if not func:
            return self
        if isinstance(func, str):
            result = self
            for name in self.__path(func):
                result = result.__mapped_field(name)
            return result
        if self.__ids:
            values = [func(record) for record in self]
            if values and all(isinstance(value, Recordset) for value in values):
                first = values[0]
                ids = []
                for value in values:
                    ids.extend(first.__same_model(value, "|"))
                return first.__browse(tuple(dict.fromkeys(ids)))
            return values
        value = func(self)
        return value if isinstance(value, Recordset) else []

    def filtered(self, func):
        if isinstance(func, str):
            path = func
            return self.__browse(
                tuple(r.__ids[0] for r in self if any(r.mapped(path)))
            )
        return self.__browse(tuple(r.__ids[0] for r in self if func(r)))

    def sorted(self, key=None, reverse=False):
        if key is None:
            found = self.search([("id", "in", list(self.__ids))]) if self.__ids else self
            ids = found.__ids
            return self.__browse(tuple(reversed(ids)) if reverse else ids)
        if isinstance(key, str):
            name = key
            key = lambda record: record.__item(name)  # noqa: E731
        return self.__browse(
            tuple(r.__ids[0] for r in sorted(self, key=key, reverse=reverse))
        )

    def exists(self):
        ids = self.__ids
        if not ids:
            return self
        found = self.__core.execute(
            self.__model,
            "search",
            None,
            [[["id", "in", list(ids)]]],
            {},
            {"active_test": False},
        )
        keep = set(found) if type(found) is list else set()
        return self.__browse(tuple(i for i in ids if i in keep))

    # ---- context and user

    def with_context(self, *args, **kwargs):
        if len(args) > 1:
            raise TypeError("with_context() takes at most one positional argument")
        core = self.__core
        current = core.extra
        extra = dict(_context(args[0])) if args else dict(current)
        extra.update(_context(kwargs))
        if "allowed_company_ids" not in extra and "allowed_company_ids" in current:
            extra["allowed_company_ids"] = current["allowed_company_ids"]
        core = core.with_extra(extra)
        return Recordset(core, self.__model, self.__ids, self.__prefetch, self.__is_model)

    def with_company(self, company):
        if not company:
            return self
        company_id = int(company)
        allowed = list(self.__core.context().get("allowed_company_ids") or [])
        if allowed and allowed[0] == company_id:
            return self
        if company_id in allowed:
            allowed.remove(company_id)
        allowed.insert(0, company_id)
        return self.with_context(allowed_company_ids=allowed)

    def sudo(self, flag=True):
        if not flag:
            return self
        self.__core.refuse_sudo()

    def with_user(self, user):
        self.__core.refuse_user()

    # ---- model methods

    def search(self, domain, offset=0, limit=None, order=None, **kwargs):
        options = {}
        if offset:
            options["offset"] = offset
        if limit is not None:
            options["limit"] = limit
        if order is not None:
            options["order"] = order
        options.update(kwargs)
        found = self.__core.execute(
            self.__model, "search", None, [_marshal(domain)], _marshal(options)
        )
        if type(found) is list:
            ids = _ids(found)
            return Recordset(self.__core, self.__model, ids, None, False)
        return found  # search(..., count=True) on Odoo 16

    def search_read(
        self, domain=None, fields=None, offset=0, limit=None, order=None, **kwargs
    ):
        options = {}
        if fields is not None:
            options["fields"] = fields
        if offset:
            options["offset"] = offset
        if limit is not None:
            options["limit"] = limit
        if order is not None:
            options["order"] = order
        options.update(kwargs)
        return self.__core.execute(
            self.__model, "search_read", None, [_marshal(domain or [])], _marshal(options)
        )

    def search_count(self, domain, limit=None, **kwargs):
        options = dict(kwargs)
        if limit is not None:
            options["limit"] = limit
        return self.__core.execute(
            self.__model, "search_count", None, [_marshal(domain)], _marshal(options)
        )

    def get_by_reference(self, reference):
        """Cetmix's ``get_by_reference``, done here: its result (a recordset) does not
        travel over RPC."""
        return self.search([("reference", "=", reference)], limit=1)

    def create(self, vals_list):
        core = self.__core
        model = self.__model
        if isinstance(vals_list, (list, tuple)):
            payload = [core.vals(model, vals) for vals in vals_list]
        else:
            payload = core.vals(model, vals_list)
        created = core.execute(model, "create", None, [payload], {})
        return Recordset(core, model, _ids(created), None, False)

    # ---- record methods

    def read(self, fields=None, load="_classic_read"):
        if not self.__ids:
            return []
        args = [] if fields is None else [_marshal(fields)]
        options = {} if load == "_classic_read" else {"load": load}
        return self.__core.execute(self.__model, "read", list(self.__ids), args, options)

    def write(self, vals):
        if not self.__ids:
            return True
        core = self.__core
        return core.execute(
            self.__model, "write", list(self.__ids), [core.vals(self.__model, vals)], {}
        )

    def unlink(self):
        if not self.__ids:
            return True
        return self.__core.execute(self.__model, "unlink", list(self.__ids), [], {})

    def copy(self, default=None):
        core = self.__core
        args = [] if default is None else [core.vals(self.__model, default)]
        copied = core.execute(self.__model, "copy", list(self.__ids), args, {})
        return Recordset(core, self.__model, _ids(copied), None, False)


class Method:
    """A public Odoo method of a model or recordset, called over RPC."""

    __slots__ = ("__core", "__model", "__name", "__ids")

    def __init__(self, core, model, name, ids):
        self.__core = core
        self.__model = model
        self.__name = name
        self.__ids = ids

    def __call__(self, *args, **kwargs):
        ids = self.__ids
        return self.__core.execute(
            self.__model,
            self.__name,
            None if ids is None else list(ids),
            _marshal(args),
            _marshal(kwargs),
        )

    def __repr__(self):
        return "<Odoo method %s.%s>" % (self.__model, self.__name)


# ---- values to and from Odoo


def _answer(answer):
    if type(answer) in (tuple, list) and answer:
        status = answer[0]
        if status == "ok" and len(answer) == 2:
            return answer[1]
        if status == "error" and len(answer) == 3:
            raise error(answer[1], answer[2])
    raise UserError("towerhook: unexpected answer from the Odoo bridge: %r" % (answer,))


def error(name, message):
    """The exception a snippet sees for Odoo's ``name`` and ``message``."""
    message = "" if message is None else str(message)
    name = str(name)
    found = ERRORS.get(name)
    if found is not None:
        return found(message)
    if name.startswith(TOWERHOOK_ERRORS):
        return UserError(message)
    return UserError("%s: %s" % (name, message))


def refuse_reserved(model, method):
    """AccessError for what no snippet may call (see the module docstring)."""
    if str(method).startswith(RESERVED_PREFIX):
        raise AccessError(RESERVED % method)
    if str(model).strip() in SECRET_MODELS:
        raise AccessError(SECRET_MODEL % str(model).strip())


def _check_public(name):
    if not name or name[:1] == "_" or is_forbidden_name(name):
        raise KeyError(name)


def _ids(value):
    if not value:
        return ()
    if type(value) is int:
        return (value,)
    if isinstance(value, Recordset):
        return value._Recordset__ids
    if isinstance(value, (list, tuple)):
        for item in value:
            if type(item) is not int:
                raise ValueError("record ids must be integers, not %r" % (item,))
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return (int(value),)
    raise ValueError("record ids must be integers, not %r" % (value,))


def _relational_ids(raw):
    if not raw:
        return ()
    if type(raw) is int:
        return (raw,)
    if type(raw) is list:
        if len(raw) == 2 and type(raw[0]) is int and type(raw[1]) is str:
            return (raw[0],)  # many2one: [id, display name]
        return tuple(item for item in raw if type(item) is int)
    return ()


def _reference(raw):
    if isinstance(raw, str) and "," in raw:
        model, _comma, rid = raw.partition(",")
        if rid.strip().isdigit():
            return (model.strip(), int(rid))
    return False


def _date(raw):
    if isinstance(raw, str):
        try:
            return _dt.date.fromisoformat(raw[:10])
        except ValueError:
            return raw
    return raw


def _datetime(raw):
    if isinstance(raw, str):
        try:
            return _dt.datetime.fromisoformat(raw)
        except ValueError:
            return raw
    return raw


def _copy(value):
    return _json.loads(_json.dumps(value))


def _record_value(ftype, records):
    ids = records._Recordset__ids
    if ftype == "many2one":
        if len(ids) > 1:
            raise ValueError(EXPECTED_SINGLETON % (records,))
        return ids[0] if ids else False
    if ftype in ("one2many", "many2many"):
        return [[6, 0, list(ids)]]
    if ftype == "reference":
        if len(ids) > 1:
            raise ValueError(EXPECTED_SINGLETON % (records,))
        return "%s,%s" % (records._Recordset__model, ids[0]) if ids else False
    return _marshal(records)


def _context(value):
    if not isinstance(value, dict):
        raise TypeError("a context must be a dict, not %s" % type(value).__name__)
    return _marshal(value)


def _marshal(value):
    """``value`` as JSON values: records become ids, tuples lists, dates strings."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is list or kind is tuple:
        return [_marshal(item) for item in value]
    if kind is dict:
        return {_key(key): _marshal(item) for key, item in value.items()}
    if isinstance(value, Recordset):
        ids = value._Recordset__ids
        return ids[0] if len(ids) == 1 else list(ids)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, _dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise TypeError("bytes sent to Odoo must be UTF-8 text") from None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_marshal(item) for item in value]
    if isinstance(value, dict):
        return {_key(key): _marshal(item) for key, item in value.items()}
    raise TypeError("%s values cannot be sent to Odoo" % type(value).__name__)


def _key(key):
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (int, float, bool)) or key is None:
        return _json.dumps(key)
    raise TypeError("keys sent to Odoo must be strings, not %s" % type(key).__name__)
