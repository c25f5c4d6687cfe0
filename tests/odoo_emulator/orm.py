"""A small in-memory ORM that behaves like Odoo's for what reaches it over RPC.

- `Database`: rows per model, many2many relation tables, id sequences, credentials, a
  clock, and one transaction at a time (a lock) with an undo log so a failing call leaves
  nothing behind, as Odoo rolls back the cursor. Id sequences are not rolled back, like
  PostgreSQL sequences.
- `Environment`: (database, uid, context, superuser flag), as `odoo.api.Environment`.
- `BaseModel`: a recordset class; its public methods are what RPC can call. Access rights
  come from the `ir.model.access` rows, checked as `ir.model.access.check` does.
- `call_kw`: `odoo.service.model.execute_kw` + `odoo.api.call_kw` (ids as first
  positional argument of record methods, `context` kwarg, recordset downgrade).
"""
import datetime as dt
import inspect
import re
import threading
from collections import defaultdict
from contextlib import contextmanager

import fields as F
from errors import AccessError, MissingError, UserError, ValidationError

SUPERUSER_ID = 1

# ---------------------------------------------------------------------------------------
# method decorators (odoo.api)
# ---------------------------------------------------------------------------------------


def model(method):
    """@api.model: called without ids."""
    method._api = "model"
    return method


def model_create_multi(method):
    """@api.model_create_multi: create(dict) answers an id, create([dict]) a list of ids."""
    method._api = "model_create"
    return method


def private(method):
    """@api.private (Odoo 18+): public name, yet not callable over RPC."""
    method._api_private = True
    return method


def since(major):
    """Method exists only from this Odoo major version on."""
    def deco(method):
        method._since = major
        return method
    return deco


def until(major):
    """Method exists only up to this Odoo major version (removed afterwards)."""
    def deco(method):
        method._until = major
        return method
    return deco


def requires_group(xmlid):
    """Guard a public method by a group, the way a companion addon would check
    `self.env.user.has_group(...)` before doing something with sudo."""
    def deco(method):
        def guarded(self, *args, **kwargs):
            if not self.env.su and not self.env.user_has_group(xmlid):
                raise AccessError(
                    f"You are not allowed to call '{self._name}.{method.__name__}'; "
                    f"it requires the group '{xmlid}'.")
            return method(self, *args, **kwargs)
        guarded.__name__ = method.__name__
        guarded.__signature__ = inspect.signature(method)
        for attr in ("_api", "_since", "_until"):
            if hasattr(method, attr):
                setattr(guarded, attr, getattr(method, attr))
        guarded._requires_group = xmlid
        return guarded
    return deco


# ---------------------------------------------------------------------------------------
# clock and storage
# ---------------------------------------------------------------------------------------


class Clock:
    """UTC time for create_date/write_date, controllable by tests.

    By default the real time with microseconds (PostgreSQL's now()), so two edits in the
    same second read back with equal write_date, as on a real server. `fixed` freezes
    it; `offset` shifts it; `distinct` makes every transaction at least one second later
    than the previous one, so every write_date differs when read back.
    """

    def __init__(self):
        self.fixed = None
        self.offset = dt.timedelta(0)
        self.distinct = False
        self.last = None
        self._lock = threading.Lock()

    def now(self):
        with self._lock:
            base = self.fixed if self.fixed is not None else dt.datetime.utcnow() + self.offset
            if self.distinct and self.last is not None:
                floor = self.last.replace(microsecond=0) + dt.timedelta(seconds=1)
                if base < floor:
                    base = floor
            self.last = base
            if self.fixed is not None:
                self.fixed = base
            return base

    def peek(self):
        """The current time without side effects (no "distinct" step, nothing remembered):
        for checks such as an API key's expiry."""
        with self._lock:
            return self.fixed if self.fixed is not None else dt.datetime.utcnow() + self.offset

    def describe(self):
        return {
            "now": (self.fixed or dt.datetime.utcnow() + self.offset).isoformat(" "),
            "fixed": self.fixed is not None,
            "offset_seconds": self.offset.total_seconds(),
            "distinct": self.distinct,
        }


class Transaction:
    def __init__(self):
        self.now = None   # taken from the clock on first use (cr.now() is lazy too)
        self.undo = []
        # cr.postcommit: callables run once the transaction committed (not on rollback);
        # `data` lets them aggregate, as odoo.tools.Callbacks.data
        self.postcommit = []
        self.data = {}


class Database:
    def __init__(self, name, version):
        from registry import build_registry  # late import: model modules import orm
        self.name = name
        self.version = version
        self.major = int(str(version).split(".")[0])
        self.lock = threading.RLock()
        self.clock = Clock()
        self.addons = set()          # companion addons installed (see addon_sidecar.py)
        self.notifications = []      # change notifications the sidecar addon sent
        self.registry = build_registry(self.major, self.addons)
        self.tables = {name: {} for name in self.registry}
        self.rels = defaultdict(set)
        self.sequences = defaultdict(int)
        self.passwords = {}          # uid -> password
        self.api_keys = {}           # key -> uid
        self.api_key_expiry = {}     # key -> naive UTC datetime; absent: the key never expires
        self.tx = None
        self.request = None          # information about the RPC request being served

    def rebuild_registry(self):
        """New model classes after an addon was installed or removed (Odoo reloads its
        registry then). Rows are kept; fields an addon removed must be cleared first."""
        from registry import build_registry
        self.registry = build_registry(self.major, self.addons)

    # transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self, request=None):
        with self.lock:
            if self.tx is not None:          # nested: join the running transaction
                yield self.tx
                return
            tx = self.tx = Transaction()
            self.request = request
            try:
                yield tx
            except BaseException:
                self._rollback()
                raise
            finally:
                self.tx = None
                self.request = None
        for callback in tx.postcommit:   # committed: run the post-commit hooks
            callback()

    def _rollback(self):
        for entry in reversed(self.tx.undo):
            kind = entry[0]
            if kind == "row":
                _, model_name, rec_id, old = entry
                if old is None:
                    self.tables[model_name].pop(rec_id, None)
                else:
                    self.tables[model_name][rec_id] = old
            else:
                _, relation, pair, present = entry
                if present:
                    self.rels[relation].add(pair)
                else:
                    self.rels[relation].discard(pair)

    def now(self):
        """The transaction's timestamp: every record written in one call shares it."""
        if self.tx is None:
            return self.clock.now()
        if self.tx.now is None:
            self.tx.now = self.clock.now()
        return self.tx.now

    # rows ------------------------------------------------------------------------------

    def _log(self, entry):
        if self.tx is not None:
            self.tx.undo.append(entry)

    def next_id(self, model_name, wanted=None):
        if wanted is not None:
            self.sequences[model_name] = max(self.sequences[model_name], wanted)
            return wanted
        self.sequences[model_name] += 1
        return self.sequences[model_name]

    def insert(self, model_name, row, wanted_id=None):
        rec_id = self.next_id(model_name, wanted_id)
        if rec_id in self.tables[model_name]:
            raise ValueError(f"id {rec_id} already used in {model_name}")
        self._log(("row", model_name, rec_id, None))
        self.tables[model_name][rec_id] = dict(row)
        return rec_id

    def update(self, model_name, rec_id, changes):
        old = self.tables[model_name][rec_id]
        self._log(("row", model_name, rec_id, old))
        self.tables[model_name][rec_id] = {**old, **changes}

    def delete(self, model_name, rec_id):
        old = self.tables[model_name].pop(rec_id, None)
        if old is not None:
            self._log(("row", model_name, rec_id, old))

    # many2many relations: pairs stored in the relation's own column order ---------------

    @staticmethod
    def _pair(field, rec_id, other_id):
        return (rec_id, other_id) if field.column1 < field.column2 else (other_id, rec_id)

    def m2m_get(self, field, rec_id):
        own = 0 if field.column1 < field.column2 else 1
        return [pair[1 - own] for pair in self.rels[field.relation] if pair[own] == rec_id]

    def m2m_add(self, field, rec_id, other_id):
        pair = self._pair(field, rec_id, other_id)
        if pair not in self.rels[field.relation]:
            self._log(("rel", field.relation, pair, False))
            self.rels[field.relation].add(pair)

    def m2m_remove(self, field, rec_id, other_id):
        pair = self._pair(field, rec_id, other_id)
        if pair in self.rels[field.relation]:
            self._log(("rel", field.relation, pair, True))
            self.rels[field.relation].discard(pair)

    def m2m_purge(self, model_name, ids):
        """Delete relation rows of deleted records (ON DELETE CASCADE on rel tables)."""
        for model_cls in self.registry.values():
            for field in model_cls._fields.values():
                if field.type != "many2many":
                    continue
                own = 0 if field.column1 < field.column2 else 1
                other = 1 - own
                for pair in list(self.rels[field.relation]):
                    if (model_cls._name == model_name and pair[own] in ids) or \
                            (field.comodel_name == model_name and pair[other] in ids):
                        self._log(("rel", field.relation, pair, True))
                        self.rels[field.relation].discard(pair)

    # credentials -----------------------------------------------------------------------

    def check_password_or_key(self, uid, secret):
        """res.users._check_credentials with interactive=False: password, else API key."""
        if not secret or not isinstance(secret, str):
            return False
        if self.passwords.get(uid) == secret:
            return True
        return self.api_key_uid(secret) == uid

    def api_key_uid(self, key):
        """The user of a valid API key, or None: unknown keys and keys past their
        expiration date do not authenticate (res.users.apikeys._check_credentials)."""
        if not isinstance(key, str):
            return None
        uid = self.api_keys.get(key)
        expires = self.api_key_expiry.get(key)
        if uid is None or (expires is not None and expires < self.clock.peek()):
            return None
        return uid

    def add_api_key(self, key, uid, expires=None):
        """Register an API key of user `uid`, valid until `expires` (naive UTC datetime or
        None: no expiry). From 18.0 on, Odoo refuses a key without expiration date to a
        user who is not an administrator (Settings), so this does too."""
        if not key or not isinstance(key, str):
            raise ValueError("an API key is a non-empty string")
        if expires is None and self.major >= 18 and \
                not self.env().user_has_group("base.group_system", uid=uid):
            login = self.tables["res.users"].get(uid, {}).get("login")
            raise ValueError(
                f"API keys of users who are not administrators must have an expiration "
                f"date from Odoo 18.0 on (user {login!r}): give \"expires\"")
        self.api_keys[key] = uid
        if expires is None:
            self.api_key_expiry.pop(key, None)
        else:
            self.api_key_expiry[key] = expires

    def revoke_api_key(self, key):
        self.api_key_expiry.pop(key, None)
        return self.api_keys.pop(key, None) is not None

    def env(self, uid=SUPERUSER_ID, context=None, su=None):
        return Environment(self, uid, context or {}, su)


# ---------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------


class Environment:
    def __init__(self, db, uid, context, su=None):
        self.db = db
        self.uid = uid
        self.context = dict(context)
        # uid 1 always runs in superuser mode (odoo.api.Environment)
        self.su = (uid == SUPERUSER_ID) if su is None else bool(su)

    def __call__(self, user=None, context=None, su=None):
        uid = self.uid if user is None else user
        return Environment(self.db, uid, self.context if context is None else context,
                           self.su if su is None else su)

    def __getitem__(self, model_name):
        cls = self.db.registry[model_name]
        return cls(self, ())

    def __contains__(self, model_name):
        return model_name in self.db.registry

    def get(self, model_name):
        return self[model_name] if model_name in self.db.registry else None

    def sudo(self, flag=True):
        return self(su=flag)

    @property
    def major(self):
        return self.db.major

    @property
    def user(self):
        return self(su=True)["res.users"].browse(self.uid)

    def now(self):
        return self.db.now()

    def ref(self, xmlid, raise_if_not_found=True):
        res = self["ir.model.data"]._xmlid_lookup(xmlid)
        if res is None:
            if raise_if_not_found:
                raise ValueError(f"External ID not found in the system: {xmlid}")
            return None
        model_name, res_id = res
        return self[model_name].browse(res_id)

    def user_group_ids(self, uid=None):
        """Groups of a user with every implied group (res.users.all_group_ids)."""
        uid = self.uid if uid is None else uid
        users = self.db.registry["res.users"]
        direct = self.db.m2m_get(users._fields[users._groups_field(self.major)], uid)
        groups = self.db.tables["res.groups"]
        implied_field = self.db.registry["res.groups"]._fields["implied_ids"]
        seen, todo = set(), list(direct)
        while todo:
            gid = todo.pop()
            if gid in seen or gid not in groups:
                continue
            seen.add(gid)
            todo.extend(self.db.m2m_get(implied_field, gid))
        return seen

    def user_has_group(self, xmlid, uid=None):
        res = self["ir.model.data"]._xmlid_lookup(xmlid)
        return bool(res) and res[1] in self.user_group_ids(uid)


# ---------------------------------------------------------------------------------------
# domains
# ---------------------------------------------------------------------------------------

TERM_OPERATORS = ("=", "!=", "<=", "<", ">", ">=", "=?", "=like", "=ilike", "like",
                  "not like", "ilike", "not ilike", "in", "not in", "child_of", "parent_of",
                  "any", "not any")
TRUE_LEAF = (1, "=", 1)
FALSE_LEAF = (0, "=", 1)


def is_leaf(token):
    return isinstance(token, (list, tuple)) and len(token) == 3


def normalize_domain(domain):
    """Add the implicit '&' operators (odoo.osv.expression.normalize_domain)."""
    if not domain:
        return [TRUE_LEAF]
    arity = {"!": 1, "&": 2, "|": 2}
    result, expected = [], 1
    for token in domain:
        if expected == 0:
            result[0:0] = ["&"]
            expected = 1
        if isinstance(token, (list, tuple)):
            expected -= 1
        else:
            expected += arity.get(token, 0) - 1
        result.append(token)
    assert expected == 0, f"This domain is syntactically not correct: {domain}"
    return result


def like_regex(pattern, insensitive, wrap):
    """SQL LIKE pattern -> regex; `like`/`ilike` wrap the value in % as Odoo does."""
    out, escape = [], False
    for ch in str(pattern):
        if escape:
            out.append(re.escape(ch))
            escape = False
        elif ch == "\\":
            escape = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if wrap:
        body = ".*" + body + ".*"
    return re.compile(body, re.S | (re.I if insensitive else 0))


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------

ACCESS_VERBS = {"read": "access", "write": "modify", "create": "create", "unlink": "delete"}
MAGIC_FIELDS = ("create_uid", "create_date", "write_uid", "write_date")
# Context key letting fixtures and the control API set the magic fields, as Odoo's
# superuser may while loading data; RPC callers' values for them are dropped.
KEEP_MAGIC = "emulator_keep_magic_fields"


def _pg_table(model_name):
    return model_name.replace(".", "_")


class BaseModel:
    _name = None
    _description = None
    _module = "base"
    _order = "id"
    _rec_name = None          # defaults to 'name' when the model has such a field
    _abstract = False
    _log_access = True
    _sql_constraints = []     # (name, (field, ...), message): UNIQUE constraints
    _constraints = []         # (method name, (field, ...)): python constraints
    _fields = {}

    def __init__(self, env, ids):
        self.env = env
        self._ids = tuple(ids)

    # recordset basics (private over RPC) -----------------------------------------------

    @property
    def ids(self):
        return list(self._ids)

    @property
    def id(self):
        return self._ids[0] if self._ids else False

    def __iter__(self):
        for rec_id in self._ids:
            yield self.__class__(self.env, (rec_id,))

    def __len__(self):
        return len(self._ids)

    def __bool__(self):
        return bool(self._ids)

    def __repr__(self):
        return f"{self._name}{self._ids!r}"

    @private
    def browse(self, ids=()):
        if isinstance(ids, bool) or ids is None:
            ids = ()
        elif isinstance(ids, int):
            ids = (ids,)
        return self.__class__(self.env, tuple(ids))

    @private
    def with_env(self, env):
        return self.__class__(env, self._ids)

    @private
    def sudo(self, flag=True):
        return self.with_env(self.env.sudo(flag))

    @private
    def with_user(self, uid):
        return self.with_env(self.env(user=uid, su=False))

    @private
    def with_context(self, *args, **kwargs):
        context = dict(args[0]) if args else dict(self.env.context)
        context.update(kwargs)
        return self.with_env(self.env(context=context))

    @private
    def ensure_one(self):
        if len(self._ids) != 1:
            raise ValueError(f"Expected singleton: {self!r}")
        return self

    @private
    def exists(self):
        table = self.env.db.tables[self._name]
        return self.browse([i for i in self._ids if i in table])

    def _table(self):
        return self.env.db.tables[self._name]

    # field values ------------------------------------------------------------------------

    @classmethod
    def _rec_name_field(cls):
        if cls._rec_name:
            return cls._rec_name
        return "name" if "name" in cls._fields else None

    def _get(self, rec_id, fname):
        """The cache-format value of one field of one record."""
        if fname == "id":
            return rec_id
        field = self._fields[fname]
        if field.compute:
            return getattr(self.browse(rec_id), field.compute)()
        if field.type == "many2many":
            comodel = self.env.sudo()[field.comodel_name]
            ids = [i for i in self.env.db.m2m_get(field, rec_id) if i in comodel._table()]
            return comodel._sorted_ids(ids)
        if field.type == "one2many":
            comodel = self.env.sudo()[field.comodel_name]
            return comodel._search([(field.inverse_name, "=", rec_id)])
        row = self._table().get(rec_id)
        if row is None:
            raise MissingError(self._missing_message([rec_id]))
        value = row.get(fname)
        return False if value is None and field.type == "boolean" else value

    def __getitem__(self, fname):
        self.ensure_one()
        return self._get(self._ids[0], fname)

    def _compute_display_name(self):
        rec_name = self._rec_name_field()
        if rec_name:
            value = self._get(self.id, rec_name)
            if isinstance(self._fields[rec_name], F.Many2one):
                return self.env.sudo()[self._fields[rec_name].comodel_name] \
                    ._display_name_of(value) if value else False
            return value or False
        return f"{self._name},{self.id}"

    def _display_name_of(self, rec_id):
        if rec_id not in self._table():
            return False
        return self.browse(rec_id)._compute_display_name()

    def _missing_message(self, ids):
        # As seen from a real server: "(Record: res.partner(999999999,), User: 2)"
        return ("Record does not exist or has been deleted.\n"
                f"(Record: {self._name}{tuple(ids)!r}, User: {self.env.uid})")

    # access rights -------------------------------------------------------------------------

    def _access_allowed(self, operation):
        if self.env.su:
            return True
        db = self.env.db
        model_row = self.env["ir.model"]._model_id(self._name)
        groups = self.env.user_group_ids()
        for row in db.tables["ir.model.access"].values():
            if row.get("active", True) and row.get("model_id") == model_row \
                    and row.get("perm_" + operation) \
                    and (row.get("group_id") is None or row.get("group_id") in groups):
                return True
        return False

    def _access_group_names(self, operation):
        """ir.model.access.group_names_with_access: "Category/Group" (no spaces around the
        slash, unlike the group's full name), or the bare name for a group without
        category; ordered by category name then group name, uncategorised groups last."""
        db = self.env.db
        model_row = self.env["ir.model"]._model_id(self._name)
        categories = db.tables["ir.module.category"]
        groups = db.tables["res.groups"]
        found = []
        for row in db.tables["ir.model.access"].values():
            group = groups.get(row.get("group_id"))
            if not (row.get("active", True) and row.get("model_id") == model_row
                    and row.get("perm_" + operation) and group):
                continue
            category = categories.get(group.get("category_id"), {}).get("name")
            found.append((category is None, category or "", group.get("name") or "",
                          f"{category}/{group.get('name')}" if category else group.get("name")))
        names = []
        for *_key, name in sorted(found):
            if name not in names:
                names.append(name)
        return names

    def _make_access_error(self, operation):
        """ir.model.access._make_access_error (wording of Odoo 17/18)."""
        allowed = self._access_group_names(operation)
        head = (f"You are not allowed to {ACCESS_VERBS[operation]} "
                f"'{self._description or self._name}' ({self._name}) records.")
        if allowed:
            info = "This operation is allowed for the following groups:\n" + \
                "\n".join(f"\t- {name}" for name in allowed)
        else:
            info = "No group currently allows this operation."
        return AccessError(
            f"{head}\n\n{info}\n\nContact your administrator to request access if necessary.")

    def _check_access(self, operation):
        if not self._access_allowed(operation):
            raise self._make_access_error(operation)

    # search --------------------------------------------------------------------------------

    def _active_domain(self, domain):
        if "active" in self._fields and self.env.context.get("active_test", True):
            if not any(is_leaf(t) and t[0] == "active" for t in domain):
                return [("active", "=", True)] + list(domain)
        return list(domain)

    def _search(self, domain, offset=0, limit=None, order=None):
        """Ids matching the domain (no access check: callers do it)."""
        domain = self._active_domain(domain or [])
        matcher = self._compile(normalize_domain(domain))
        ids = [rec_id for rec_id in self._table() if matcher(rec_id)]
        ids = self._sorted_ids(ids, order)
        if offset:
            ids = ids[offset:]
        if limit:
            ids = ids[:limit]
        return ids

    def _parse_order(self, order):
        terms = []
        for part in (order or self._order or "id").split(","):
            words = part.strip().split()
            if not words:
                continue
            fname = words[0].strip('"')
            direction = words[1].lower() if len(words) > 1 else "asc"
            if fname not in self._fields or direction not in ("asc", "desc"):
                raise ValueError(f"Invalid field {fname!r} on model {self._name!r}")
            nulls = None
            if len(words) > 3 and words[2].lower() == "nulls":
                nulls = words[3].lower()
            terms.append((fname, direction, nulls))
        return terms

    def _sorted_ids(self, ids, order=None):
        ids = sorted(ids)  # tie-break by id (PostgreSQL gives no order for ties)
        for fname, direction, nulls in reversed(self._parse_order(order)):
            descending = direction == "desc"
            if fname == "id":
                ids.sort(reverse=descending)
                continue
            field = self._fields[fname]
            keys = {i: field.sort_key(self._get(i, fname), self.env) for i in ids}
            if field.type == "boolean":
                keys = {i: bool(k) for i, k in keys.items()}
            null = {i for i, k in keys.items()
                    if k is None or (k is False and field.type != "boolean")}
            present = [i for i in ids if i not in null]
            present.sort(key=lambda i: _sortable(keys[i]), reverse=descending)
            missing = [i for i in ids if i in null]
            # PostgreSQL: NULLs sort last ascending, first descending
            nulls_first = nulls == "first" if nulls else descending
            ids = missing + present if nulls_first else present + missing
        return ids

    def _compile(self, tokens):
        """Prefix-notation domain -> predicate on record ids."""
        pos = 0

        def parse():
            nonlocal pos
            token = tokens[pos]
            pos += 1
            if token == "!":
                inner = parse()
                return lambda rec_id: not inner(rec_id)
            if token in ("&", "|"):
                left = parse()
                right = parse()
                if token == "&":
                    return lambda rec_id: left(rec_id) and right(rec_id)
                return lambda rec_id: left(rec_id) or right(rec_id)
            return self._leaf_predicate(token)

        predicate = parse()
        return predicate

    def _leaf_predicate(self, leaf):
        if not is_leaf(leaf):
            raise ValueError(f"Invalid leaf {leaf}")
        left, operator, value = leaf
        if (left, operator, value) == TRUE_LEAF:
            return lambda rec_id: True
        if (left, operator, value) == FALSE_LEAF:
            return lambda rec_id: False
        operator = str(operator).lower()
        if operator not in TERM_OPERATORS or not isinstance(left, str):
            raise ValueError(f"Invalid leaf {leaf}")
        path = left.split(".")
        fname = path[0]
        if fname not in self._fields:
            # odoo.osv.expression: "Invalid field res.partner.nope in leaf ('nope', '=', 1)"
            raise ValueError(f"Invalid field {self._name}.{fname} in leaf {tuple(leaf)!r}")
        field = self._fields[fname]
        get = (lambda rec_id: self._get(rec_id, fname))

        if operator == "=?":
            if value is None or value is False:
                return lambda rec_id: True
            operator = "="

        if len(path) > 1 or operator in ("any", "not any"):
            if not field.relational:
                raise ValueError(f"Invalid field {self._name}.{left} in leaf {tuple(leaf)!r}")
            comodel = self.env.sudo()[field.comodel_name].with_context(active_test=False)
            if operator in ("any", "not any"):
                sub = set(comodel._search(value if len(path) == 1
                                          else [(".".join(path[1:]), "any", value)]))
                positive = operator == "any"
            else:
                sub = set(comodel._search([(".".join(path[1:]), operator, value)]))
                positive = True
            if field.type == "many2one":
                test = (lambda rec_id: get(rec_id) in sub)
            else:
                test = (lambda rec_id: bool(sub.intersection(get(rec_id) or [])))
            return test if positive else (lambda rec_id: not test(rec_id))

        if field.relational:
            return self._relational_predicate(field, get, operator, value, leaf)
        if operator in ("child_of", "parent_of"):
            items = value if isinstance(value, (list, tuple)) else [value]
            if fname == "id" and "parent_id" in self._fields:
                items = list(self._family(set(items), operator == "child_of"))
            operator, value = "in", items
        return _scalar_predicate(field, get, operator, value)

    def _relational_predicate(self, field, get, operator, value, leaf):
        comodel = self.env.sudo()[field.comodel_name]
        many = field.type != "many2one"

        def to_ids(val, op):
            """Ids a leaf value designates: ids as such, names through a name search."""
            items = val if isinstance(val, (list, tuple)) else [val]
            items = [v for v in items if v is not False and v is not None]
            found = {v for v in items if isinstance(v, int) and not isinstance(v, bool)}
            names = [v for v in items if not isinstance(v, int)]
            if names:
                name_field = comodel._rec_name_field() or "id"
                name_op = {"like": "like", "not like": "like", "ilike": "ilike",
                           "not ilike": "ilike", "=like": "=like",
                           "=ilike": "=ilike"}.get(op, "=")
                for v in names:
                    found.update(comodel.with_context(active_test=False)._search(
                        [(name_field, name_op, v)]))
            return found

        if operator in ("child_of", "parent_of"):
            ids = to_ids(value, "=") or set()
            if "parent_id" in comodel._fields:
                ids = comodel._family(ids, operator == "child_of")
            operator = "in"
            value = list(ids)

        negative = operator in ("!=", "not in", "not like", "not ilike")
        if operator in ("=", "!=") and (value is False or value is None):
            empty = (lambda rec_id: not get(rec_id))
            return empty if operator == "=" else (lambda rec_id: not empty(rec_id))
        if operator in ("<", ">", "<=", ">="):
            if many:
                raise ValueError(f"Invalid leaf {leaf}")
            return _scalar_predicate(field, get, operator, value)
        ids = to_ids(value, operator) or set()
        if isinstance(value, (list, tuple)) and False in value:
            ids_with_null = True
        else:
            ids_with_null = False

        def positive(rec_id):
            current = get(rec_id)
            if many:
                return bool(ids.intersection(current or []))
            if current is None:
                return ids_with_null
            return current in ids

        if negative:
            return lambda rec_id: not positive(rec_id)
        return positive

    def _family(self, ids, children):
        """child_of / parent_of closure over parent_id."""
        result = set(ids)
        changed = True
        while changed:
            changed = False
            for rec_id, row in self._table().items():
                parent = row.get("parent_id")
                if children and parent in result and rec_id not in result:
                    result.add(rec_id)
                    changed = True
                if not children and rec_id in result and parent and parent not in result:
                    result.add(parent)
                    changed = True
        return result

    # reading ---------------------------------------------------------------------------------

    def _read_fields(self, fnames):
        if not fnames:
            return [name for name in self._fields]
        names = []
        for fname in fnames:
            if fname not in self._fields:
                raise ValueError(f"Invalid field {fname!r} on model {self._name!r}")
            if fname not in names:
                names.append(fname)
        return names

    def _read(self, fnames, load="_classic_read"):
        table = self._table()
        result = []
        for rec_id in self._ids:
            if rec_id not in table:
                continue  # read() silently skips deleted records
            vals = {"id": rec_id}
            for fname in fnames:
                if fname == "id":
                    continue
                field = self._fields[fname]
                vals[fname] = field.convert_to_read(self._get(rec_id, fname), self.env, load)
            result.append(vals)
        return result

    # writing ---------------------------------------------------------------------------------

    def _check_unknown(self, vals):
        for fname in vals:
            if fname not in self._fields:
                raise ValueError(f"Invalid field {fname!r} on model {self._name!r}")

    def _drop_bad_names(self, vals):
        """models._prepare_create_values / write: 'id', 'parent_path' and the log access
        columns given by the caller are discarded."""
        bad = {"id", "parent_path"}
        if not self.env.context.get(KEEP_MAGIC):
            bad.update(MAGIC_FIELDS)
        return {k: v for k, v in vals.items() if k not in bad}

    def _default_values(self, vals):
        defaults = {}
        for fname, field in self._fields.items():
            if fname in vals or field.default is None:
                continue
            default = field.default
            defaults[fname] = default(self.env) if callable(default) else default
        return {**defaults, **vals}

    def _convert_row_values(self, vals):
        """Validate and convert values stored on the row; returns (row, x2many values)."""
        row, x2many = {}, {}
        for fname, value in vals.items():
            if fname == "id":
                continue
            field = self._fields[fname]
            if field.type in ("one2many", "many2many"):
                if not field.compute:
                    x2many[fname] = value
                continue
            if field.compute:
                continue  # computed without inverse: Odoo ignores the value
            cached = field.convert_to_cache(value, self.env)
            if field.type == "many2one" and cached is not None:
                if cached not in self.env.db.tables[field.comodel_name]:
                    raise ValidationError(self._fk_message(self._name, fname))
            row[fname] = cached
        return row, x2many

    def _fk_message(self, model_name, fname):
        # odoo.service.model._as_validation_error, FOREIGN_KEY_VIOLATION
        cls = self.env.db.registry[model_name]
        return ("The operation cannot be completed: another model requires the record being "
                "deleted. If possible, archive it instead.\n\n"
                f"Model: {cls._description} ({model_name})\n"
                f"Constraint: {_pg_table(model_name)}_{fname}_fkey\n")

    def _not_null_message(self, fname):
        # odoo.service.model._as_validation_error, NOT_NULL_VIOLATION
        field = self._fields[fname]
        return ("The operation cannot be completed:\n"
                "- Create/update: a mandatory field is not set.\n"
                "- Delete: another model requires the record being deleted. If possible, "
                "archive it instead.\n\n"
                f"Model: {self._description} ({self._name})\n"
                f"Field: {field.string} ({fname})\n")

    def _check_required(self, row):
        for fname, field in self._fields.items():
            if field.required and field.stored_on_row and field.type != "boolean" \
                    and row.get(fname) is None:
                raise ValidationError(self._not_null_message(fname))

    def _write_x2many(self, rec_id, x2many):
        for fname, value in x2many.items():
            field = self._fields[fname]
            comodel = self.env[field.comodel_name]
            for op, arg, vals in F.parse_x2many_commands(field, value):
                if field.type == "many2many":
                    self._apply_m2m(field, rec_id, comodel, op, arg, vals)
                else:
                    self._apply_o2m(field, rec_id, comodel, op, arg, vals)

    def _apply_m2m(self, field, rec_id, comodel, op, arg, vals):
        db = self.env.db
        table = db.tables[field.comodel_name]
        if op == "create":
            db.m2m_add(field, rec_id, comodel._create([vals])[0])
        elif op == "update":
            comodel.browse(arg).write(vals)
        elif op == "delete":
            comodel.browse(arg).unlink()
        elif op == "unlink":
            db.m2m_remove(field, rec_id, arg)
        elif op == "link":
            if arg not in table:
                raise ValidationError(self._fk_message(self._name, field.name))
            db.m2m_add(field, rec_id, arg)
        elif op in ("clear", "set"):
            for other in db.m2m_get(field, rec_id):
                db.m2m_remove(field, rec_id, other)
            for other in (arg or []) if op == "set" else []:
                if other not in table:
                    raise ValidationError(self._fk_message(self._name, field.name))
                db.m2m_add(field, rec_id, other)

    def _apply_o2m(self, field, rec_id, comodel, op, arg, vals):
        inverse = field.inverse_name
        if op == "create":
            comodel._create([{**vals, inverse: rec_id}])
        elif op == "update":
            comodel.browse(arg).write(vals)
        elif op in ("delete",):
            comodel.browse(arg).unlink()
        elif op == "unlink":
            comodel.browse(arg).write({inverse: False})
        elif op == "link":
            comodel.browse(arg).write({inverse: rec_id})
        elif op in ("clear", "set"):
            current = set(comodel.with_context(active_test=False)._search(
                [(inverse, "=", rec_id)]))
            keep = set(arg or []) if op == "set" else set()
            comodel.browse(sorted(current - keep)).write({inverse: False})
            if keep - current:
                comodel.browse(sorted(keep - current)).write({inverse: rec_id})

    def _prepare_create_vals(self, vals):
        """Hook: model-specific create() override before defaults (e.g. references)."""
        return vals

    def _prepare_write_vals(self, vals):
        return vals

    def _post_create(self, vals_list):
        """Hook after create (inverse fields, implied groups, ...)."""

    def _post_write(self, vals):
        """Hook after write."""

    def _pre_unlink(self):
        """Hook before the rows are deleted (e.g. vault entries of secrets)."""

    def _validate(self, fnames):
        """Python constraints, then UNIQUE constraints (Odoo flushes after _validate)."""
        for method, watched in self._constraints:
            if not watched or set(watched) & set(fnames):
                getattr(self, method)()
        table = self._table()
        for _name, cols, message in self._sql_constraints:
            if not set(cols) & set(fnames):
                continue
            for rec_id in self._ids:
                key = tuple(table[rec_id].get(c) for c in cols)
                if any(k is None for k in key):
                    continue  # NULLs never collide in a UNIQUE constraint
                for other_id, row in table.items():
                    if other_id != rec_id and tuple(row.get(c) for c in cols) == key:
                        raise ValidationError(f"The operation cannot be completed: {message}")

    def _create(self, vals_list, wanted_ids=None):
        """Create records without access check; returns the new ids."""
        db = self.env.db
        now = db.now()
        ids = []
        for index, vals in enumerate(vals_list):
            if not isinstance(vals, dict):
                raise ValueError(f"Wrong value for create: {vals!r}")
            self._check_unknown(vals)
            vals = self._prepare_create_vals(dict(vals))
            vals = self._drop_bad_names(self._default_values(vals))
            row, x2many = self._convert_row_values(vals)
            for fname, field in self._fields.items():
                if field.stored_on_row and fname not in row and fname not in MAGIC_FIELDS \
                        and fname != "id":
                    row[fname] = None if field.type != "boolean" else False
            if self._log_access:
                row.setdefault("create_uid", self.env.uid)
                row.setdefault("create_date", now)
                row.setdefault("write_uid", self.env.uid)
                row.setdefault("write_date", now)
                for fname in MAGIC_FIELDS:
                    if row.get(fname) is None:
                        row[fname] = self.env.uid if fname.endswith("uid") else now
            self._check_required(row)
            wanted = wanted_ids[index] if wanted_ids else None
            rec_id = db.insert(self._name, row, wanted)
            self.browse(rec_id)._write_x2many(rec_id, x2many)
            ids.append(rec_id)
        records = self.browse(ids)
        records._post_create(vals_list)
        records._validate(set(self._fields))
        return ids

    def _write(self, vals):
        """Write without access check (the records must exist)."""
        db = self.env.db
        self._check_unknown(vals)
        missing = [i for i in self._ids if i not in self._table()]
        if missing:
            raise MissingError(self._missing_message(missing))
        vals = self._drop_bad_names(self._prepare_write_vals(dict(vals)))
        row_changes, x2many = self._convert_row_values(vals)
        now = db.now()
        for rec_id in self._ids:
            changes = dict(row_changes)
            if self._log_access:
                changes.setdefault("write_uid", self.env.uid)
                changes.setdefault("write_date", now)
            db.update(self._name, rec_id, changes)
            self._check_required(self._table()[rec_id])
            self.browse(rec_id)._write_x2many(rec_id, x2many)
        self._post_write(vals)
        self._validate(set(vals))
        return True

    def _unlink(self):
        db = self.env.db
        ids = {i for i in self._ids if i in self._table()}
        if not ids:
            return True
        # foreign keys pointing here: ondelete cascade / restrict / set null
        for model_cls in db.registry.values():
            for fname, field in model_cls._fields.items():
                if field.type != "many2one" or field.comodel_name != self._name \
                        or not field.stored_on_row:
                    continue
                refs = [rid for rid, row in db.tables[model_cls._name].items()
                        if row.get(fname) in ids]
                if model_cls._name == self._name:
                    refs = [rid for rid in refs if rid not in ids]
                if not refs:
                    continue
                if field.ondelete == "cascade":
                    model_cls(self.env.sudo(), refs)._unlink()
                elif field.ondelete == "restrict":
                    raise ValidationError(self._fk_message(model_cls._name, fname))
                else:
                    for rid in refs:
                        if rid in db.tables[model_cls._name]:
                            db.update(model_cls._name, rid, {fname: None})
        self.browse(sorted(ids))._pre_unlink()
        db.m2m_purge(self._name, ids)
        xmlids = db.tables["ir.model.data"]
        for data_id, row in list(xmlids.items()):
            if row.get("model") == self._name and row.get("res_id") in ids:
                db.delete("ir.model.data", data_id)
        for rec_id in ids:
            db.delete(self._name, rec_id)
        return True

    # ---------------------------------------------------------------------------------------
    # public ORM methods (callable over RPC)
    # ---------------------------------------------------------------------------------------

    @model
    def search(self, domain, offset=0, limit=None, order=None):
        self._check_access("read")
        return self._search(domain, offset, limit, order)

    @model
    def search_count(self, domain, limit=None):
        self._check_access("read")
        return len(self._search(domain, limit=limit))

    @model
    def search_read(self, domain=None, fields=None, offset=0, limit=None, order=None,
                    **read_kwargs):
        self._check_access("read")
        fnames = self._read_fields(fields)
        ids = self._search(domain or [], offset, limit, order)
        return self.browse(ids)._read(fnames, **read_kwargs)

    def read(self, fields=None, load="_classic_read"):
        self._check_access("read")
        return self._read(self._read_fields(fields), load)

    @model_create_multi
    def create(self, vals_list):
        self._check_access("create")
        if isinstance(vals_list, dict):
            vals_list = [vals_list]
        return self.browse(self._create(list(vals_list)))

    def write(self, vals):
        self._check_access("write")
        if not isinstance(vals, dict):
            raise ValueError(f"Wrong value for write: {vals!r}")
        return self._write(vals)

    def unlink(self):
        self._check_access("unlink")
        return self._unlink()

    @model
    def fields_get(self, allfields=None, attributes=None):
        result = {}
        for fname, field in self._fields.items():
            if allfields and fname not in allfields:
                continue
            desc = field.describe()
            if attributes:
                desc = {k: v for k, v in desc.items() if k in attributes}
            result[fname] = desc
        return result

    @model
    def check_access_rights(self, operation, raise_exception=True):
        if operation not in ACCESS_VERBS:
            raise ValueError(f"Invalid access operation {operation!r}")
        allowed = self._access_allowed(operation)
        if not allowed and raise_exception:
            raise self._make_access_error(operation)
        return allowed

    @since(18)
    def has_access(self, operation):
        return self._access_allowed(operation)

    @since(18)
    def check_access(self, operation):
        if not self._access_allowed(operation):
            raise self._make_access_error(operation)

    @model
    def name_search(self, name="", domain=None, operator="ilike", limit=100):
        self._check_access("read")
        rec_name = self._rec_name_field() or "id"
        search = list(domain or [])
        if name or operator not in ("ilike", "like", "=like", "=ilike"):
            search = ["&", (rec_name, operator, name)] + search if search else \
                [(rec_name, operator, name)]
        ids = self._search(search, limit=limit)
        return [[rec_id, self._display_name_of(rec_id)] for rec_id in ids]

    @until(16)
    def name_get(self):
        self._check_access("read")
        return [[rec_id, self._display_name_of(rec_id)] for rec_id in self._ids
                if rec_id in self._table()]

    @model
    def default_get(self, fields_list):
        self._check_unknown(fields_list)
        result = {}
        for fname in fields_list:
            default = self._fields[fname].default
            if default is not None:
                result[fname] = default(self.env) if callable(default) else default
        return result

    def action_archive(self):
        if "active" not in self._fields:
            raise AttributeError(f"The method 'action_archive' does not exist on the model "
                                 f"'{self._name}'")
        return self.write({"active": False})

    def action_unarchive(self):
        if "active" not in self._fields:
            raise AttributeError(f"The method 'action_unarchive' does not exist on the model "
                                 f"'{self._name}'")
        return self.write({"active": True})


def _sortable(value):
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, (dt.datetime, dt.date)):
        return (2, value.isoformat())
    return (3, str(value))


def _coerce(field, value):
    """A domain value in the field's cache type, for comparisons."""
    if value is None or value is False and field.type != "boolean":
        return None
    try:
        if field.type == "datetime":
            return F.parse_datetime(value)
        if field.type == "date":
            return F.parse_date(value)
        if field.type in ("integer", "id") and not isinstance(value, bool):
            return int(value)
        if field.type == "float":
            return float(value)
        if field.type == "boolean":
            return bool(value)
    except (TypeError, ValueError):
        return value
    return value


def _scalar_predicate(field, get, operator, value):
    if operator in ("like", "ilike", "=like", "=ilike", "not like", "not ilike"):
        base = operator.replace("not ", "")
        regex = like_regex(value if value is not False else "", base in ("ilike", "=ilike"),
                           wrap=not base.startswith("="))

        def matches(rec_id):
            current = get(rec_id)
            if current is None or current is False and field.type != "boolean":
                return False
            return bool(regex.fullmatch(str(current)))
        if operator.startswith("not"):
            # Odoo: "(col NOT ILIKE v OR col IS NULL)"
            return lambda rec_id: not matches(rec_id)
        return matches

    if operator in ("in", "not in"):
        items = value if isinstance(value, (list, tuple)) else [value]
        with_null = any(v is False or v is None for v in items) and field.type != "boolean"
        wanted = {_coerce(field, v) for v in items if not (v is False or v is None)
                  or field.type == "boolean"}

        def member(rec_id):
            current = get(rec_id)
            if field.type == "boolean":
                return bool(current) in wanted
            if current is None:
                return with_null
            return current in wanted
        if operator == "in":
            return member
        return lambda rec_id: not member(rec_id)

    if field.type == "boolean":
        target = bool(value)
        if operator == "=":
            return lambda rec_id: bool(get(rec_id)) == target
        if operator == "!=":
            return lambda rec_id: bool(get(rec_id)) != target

    target = _coerce(field, value)
    if operator == "=":
        if target is None:
            return lambda rec_id: get(rec_id) is None
        return lambda rec_id: get(rec_id) == target
    if operator == "!=":
        if target is None:
            return lambda rec_id: get(rec_id) is not None
        # Odoo: "(col != v OR col IS NULL)"
        return lambda rec_id: get(rec_id) != target

    compare = {"<": lambda a, b: a < b, ">": lambda a, b: a > b,
               "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}[operator]

    def ordered(rec_id):
        current = get(rec_id)
        if current is None or target is None:
            return False  # comparisons with NULL are never true
        try:
            return compare(current, target)
        except TypeError:
            return compare(str(current), str(target))
    return ordered


# ---------------------------------------------------------------------------------------
# execute_kw / call_kw
# ---------------------------------------------------------------------------------------

PRIVATE_RE = re.compile(r"^(_.*|init)$")


def get_public_method(recs, name, major):
    """The method RPC may call, with the errors of the emulated version.

    16/17: odoo.models.check_method_name + odoo.api.call_kw;
    18/19: odoo.service.model.get_public_method.
    """
    model_name = recs._name
    method = getattr(type(recs), name, None) if isinstance(name, str) else None
    gated = method is not None and (
        getattr(method, "_since", 0) > major or getattr(method, "_until", 99) < major)
    if major <= 17:
        if PRIVATE_RE.match(name):
            raise AccessError(f"Private methods (such as {name}) cannot be called remotely.")
        if method is None or not callable(method) or gated or isinstance(method, property) \
                or getattr(method, "_api_private", False):
            raise AttributeError(
                f"The method '{name}' does not exist on the model '{model_name}'")
        return method
    private_msg = f"Private methods (such as '{model_name}.{name}') cannot be called remotely."
    if name.startswith("_"):
        raise AccessError(private_msg)
    if method is None or not callable(method) or gated or isinstance(method, property):
        raise AttributeError(f"The method '{model_name}.{name}' does not exist")
    if getattr(method, "_api_private", False):
        raise AccessError(private_msg)
    return method


def rename_version_kwargs(recs, name, kwargs, major):
    """Keyword names that differ between versions (the reason to pass the domain
    positionally): 16 names the domain of search/search_count `args` and still has
    search(count=True); name_search's filter is `args` up to 17, `domain` from 18."""
    kwargs = dict(kwargs)
    renames = {}
    if major <= 16:
        renames.update({("search", "args"): "domain", ("search_count", "args"): "domain"})
    if major <= 17:
        renames[("name_search", "args")] = "domain"
    for (method, old), new in renames.items():
        if name == method:
            if new in kwargs:
                raise TypeError(f"{recs._name}.{method}() got an unexpected keyword "
                                f"argument '{new}'")
            if old in kwargs:
                kwargs[new] = kwargs.pop(old)
    return kwargs


def call_kw(env, model_name, name, args, kwargs):
    """Run one RPC method call; returns the result as Odoo would hand it to the encoder."""
    major = env.major
    if major <= 17 and isinstance(name, str) and PRIVATE_RE.match(name):
        # 16/17 check the method name before looking up the model (service/model.py)
        raise AccessError(f"Private methods (such as {name}) cannot be called remotely.")
    recs = env.get(model_name)
    if recs is None:
        raise UserError(f"Object {model_name} doesn't exist")
    method = get_public_method(recs, name, major)
    args = list(args or [])
    kwargs = rename_version_kwargs(recs, name, kwargs or {}, major)
    context = kwargs.pop("context", None) or {}
    count = kwargs.pop("count", False) if major <= 16 and name == "search" else False
    api = getattr(method, "_api", None)
    if api not in ("model", "model_create"):
        ids, args = args[0], args[1:]   # IndexError when missing, as in Odoo
        recs = recs.browse(ids)
    recs = recs.with_context(**context) if context else recs
    result = method(recs, *args, **kwargs)
    if count:
        return len(result)
    if api == "model_create":
        vals = args[0] if args else kwargs.get("vals_list")
        return result.id if isinstance(vals, dict) else result.ids
    return result
