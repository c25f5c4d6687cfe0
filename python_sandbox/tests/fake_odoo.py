"""A fake of the Rust host's Odoo bridge, backed by a small in-memory Odoo.

It answers like Odoo over JSON-RPC: many2one values as ``[id, display name]`` or False,
x2many values as id lists, empty values False, ``create`` with one dict → an id, errors as
``("error", "<python path>", "<message>")``. Every call is recorded with the kind, the uid
the host would use for it, and the arguments exactly as the proxy sent them (checked to be
JSON), so that tests can assert what reached Odoo and as whom.
"""

import copy
import json

ACCESS = "odoo.exceptions.AccessError"
MISSING = "odoo.exceptions.MissingError"
USER_ERROR = "odoo.exceptions.UserError"
VALIDATION = "odoo.exceptions.ValidationError"

SERVICE_UID, SERVICE_LOGIN = 2, "towerhook"
WEBHOOK_UID, WEBHOOK_LOGIN = 6, "webhook_bot"

# model: (description, {field: (type, relation)})
MODELS = {
    "res.partner": (
        "Contact",
        {
            "name": ("char", None),
            "email": ("char", None),
            "is_company": ("boolean", None),
            "active": ("boolean", None),
            "country_id": ("many2one", "res.country"),
            "parent_id": ("many2one", "res.partner"),
            "category_id": ("many2many", "res.partner.category"),
            "child_ids": ("one2many", "res.partner"),
            "date": ("date", None),
            "credit_limit": ("float", None),
            "color": ("integer", None),
        },
    ),
    "res.country": ("Country", {"name": ("char", None), "code": ("char", None)}),
    "res.partner.category": ("Contact Tag", {"name": ("char", None)}),
    "res.company": ("Companies", {"name": ("char", None)}),
    "res.users": (
        "User",
        {
            "name": ("char", None),
            "login": ("char", None),
            "partner_id": ("many2one", "res.partner"),
            "company_id": ("many2one", "res.company"),
            "company_ids": ("many2many", "res.company"),
        },
    ),
    "cx.tower.server": (
        "Server",
        {
            "name": ("char", None),
            "reference": ("char", None),
            "ip_v4_address": ("char", None),
            "active": ("boolean", None),
        },
    ),
    "cx.tower.plan": (
        "Flight Plan",
        {"name": ("char", None), "reference": ("char", None)},
    ),
    "cx.tower.command": (
        "Command",
        {"name": ("char", None), "reference": ("char", None)},
    ),
    "cx.tower.plan.log": (
        "Flight Plan Log",
        {
            "name": ("char", None),
            "server_id": ("many2one", "cx.tower.server"),
            "plan_id": ("many2one", "cx.tower.plan"),
        },
    ),
    "cetmix.tower": ("Tower automation helper model", {}),
    "ir.model.data": ("Model Data", {"name": ("char", None), "module": ("char", None)}),
}

_VERBS = {"read": "access", "write": "modify", "create": "create", "unlink": "delete"}


class OdooError(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


class FakeOdoo:
    def __init__(self):
        self.records = {model: {} for model in MODELS}
        self.next_id = {model: 1 for model in MODELS}
        self.calls = []
        self.users = {
            "authenticator": (SERVICE_UID, SERVICE_LOGIN),
            "webhook": (WEBHOOK_UID, WEBHOOK_LOGIN),
        }
        self.contexts = {"authenticator": {}, "webhook": {"lang": "en_US", "tz": "Europe/Berlin"}}
        self.denied = set()  # (uid, model, operation)
        self.hidden = {}  # (uid, model) → ids the record rules hide
        self.xmlids = {}
        self.methods = {}  # (model, name) → fn(odoo, uid, ids, context, *args, **kwargs)
        self.user_calls = []
        self.context_calls = []
        self._seed()

    # ---- data

    def add(self, model, **values):
        rid = self.next_id[model]
        self.next_id[model] += 1
        fields = MODELS[model][1]
        record = {name: _empty(ftype) for name, (ftype, _rel) in fields.items()}
        if "active" in fields:
            record["active"] = True
        record.update(values)
        self.records[model][rid] = record
        return rid

    def _seed(self):
        be = self.add("res.country", name="Belgium", code="BE")
        fr = self.add("res.country", name="France", code="FR")
        vip = self.add("res.partner.category", name="VIP")
        company = self.add("res.company", name="YourCompany")
        self.add("res.partner", name="Azure Interior", is_company=True, country_id=be,
                 email="azure@example.com", category_id=[vip], date="2024-05-01")
        self.add("res.partner", name="Deco Addict", is_company=True, country_id=fr,
                 email="deco@example.com")
        self.add("res.partner", name="Gemini Furniture", is_company=True, country_id=be)
        self.add("res.partner", name="Joel Willis", is_company=False, parent_id=1)
        self.add("res.partner", name="Archived Co", is_company=True, active=False)
        bot_partner = self.add("res.partner", name="Webhook Bot")
        for _ in range(SERVICE_UID - 1):
            self.add("res.users", name="placeholder", login="__system__")
        self.add("res.users", name="Towerhook", login=SERVICE_LOGIN, company_id=company,
                 company_ids=[company])
        while self.next_id["res.users"] < WEBHOOK_UID:
            self.add("res.users", name="placeholder", login="other")
        self.add("res.users", name="Webhook Bot", login=WEBHOOK_LOGIN,
                 partner_id=bot_partner, company_id=company, company_ids=[company])
        self.add("cx.tower.server", name="Main", reference="main", ip_v4_address="10.0.0.1")
        self.add("cx.tower.server", name="Backup", reference="backup")
        self.add("cx.tower.plan", name="Deploy app", reference="deploy_app")
        self.add("cx.tower.command", name="Uptime", reference="uptime")
        self.xmlids["base.be"] = ("res.country", be)
        self.xmlids["base.main_company"] = ("res.company", company)

        def run_flight_plan(odoo, uid, ids, context, plan, **kwargs):
            if type(plan) is not int:
                raise OdooError("builtins.TypeError", "plan must be an id, got %r" % (plan,))
            (server,) = ids
            log = odoo.add("cx.tower.plan.log", name="log", server_id=server, plan_id=plan)
            return {"log_id": log, "kwargs": kwargs, "context": context}

        def server_run_command(odoo, uid, ids, context, server_reference, command_reference,
                               **kwargs):
            return {"exit_code": 0, "message": "%s on %s" % (command_reference,
                                                              server_reference)}

        def echo(odoo, uid, ids, context, *args, **kwargs):
            return {"ids": ids, "args": list(args), "kwargs": kwargs, "context": context}

        self.methods[("cx.tower.server", "run_flight_plan")] = run_flight_plan
        self.methods[("cetmix.tower", "server_run_command")] = server_run_command
        self.methods[("res.partner", "echo")] = echo
        self.methods[("cx.tower.server", "echo")] = echo

    # ---- what tests look at

    def bridge(self):
        return Bridge(self)

    def methods_called(self):
        return [(call["model"], call["method"]) for call in self.calls]

    def count(self, method=None, model=None):
        return sum(
            1
            for call in self.calls
            if (method is None or call["method"] == method)
            and (model is None or call["model"] == model)
        )

    def deny(self, login_uid, model, operation):
        self.denied.add((login_uid, model, operation))

    # ---- RPC

    def execute(self, kind, model, method, ids, args, kwargs):
        # What the Rust host would serialise: it must be JSON.
        json.dumps([model, method, ids, args, kwargs])
        assert ids is None or (type(ids) is list and all(type(i) is int for i in ids)), ids
        assert type(args) is list and type(kwargs) is dict, (args, kwargs)
        uid = self.users[kind][0]
        self.calls.append(
            {
                "kind": kind,
                "uid": uid,
                "model": model,
                "method": method,
                "ids": copy.deepcopy(ids),
                "args": copy.deepcopy(args),
                "kwargs": copy.deepcopy(kwargs),
            }
        )
        try:
            return ("ok", self._dispatch(uid, model, method, ids, list(args), dict(kwargs)))
        except OdooError as exc:
            return ("error", exc.name, exc.message)

    def _dispatch(self, uid, model, method, ids, args, kwargs):
        if method.startswith("_"):
            raise OdooError(ACCESS, "Private methods (such as %s) cannot be called remotely." % method)
        if model not in MODELS:
            raise OdooError(USER_ERROR, "Object %s doesn't exist" % model)
        context = kwargs.pop("context", {}) or {}
        custom = self.methods.get((model, method))
        if custom is not None:
            return custom(self, uid, ids, context, *args, **kwargs)
        handler = getattr(self, "rpc_" + method, None)
        if handler is None:
            raise OdooError(
                "builtins.AttributeError", "The method '%s.%s' does not exist" % (model, method)
            )
        if ids is not None:
            args = [ids] + args
        return handler(uid, model, context, *args, **kwargs)

    def _check(self, uid, model, operation):
        if (uid, model, operation) in self.denied:
            raise OdooError(
                ACCESS,
                "You are not allowed to %s '%s' (%s) records.\n\nThis operation is allowed "
                "for the following groups:\n\t- Administration/Settings\n\nContact your "
                "administrator to request access if necessary."
                % (_VERBS[operation], MODELS[model][0], model),
            )

    def _visible(self, uid, model, context, domain):
        hidden = self.hidden.get((uid, model), ())
        fields = MODELS[model][1]
        active_test = (
            "active" in fields
            and context.get("active_test", True)
            and not any(type(leaf) is list and leaf[0] == "active" for leaf in domain)
        )
        found = []
        for rid, record in sorted(self.records[model].items()):
            if rid in hidden or (active_test and not record.get("active")):
                continue
            if _match(self, model, rid, record, domain):
                found.append(rid)
        return found

    def _value(self, model, record, name):
        ftype, relation = MODELS[model][1][name]
        value = record.get(name, _empty(ftype))
        if ftype == "many2one":
            if not value:
                return False
            return [value, self.records[relation][value]["name"]]
        if ftype in ("one2many", "many2many"):
            return list(value or [])
        if value in (None, "") and ftype not in ("integer", "float", "boolean"):
            return False
        return value

    def _rows(self, uid, model, ids, fields):
        if not fields:
            fields = list(MODELS[model][1])
        hidden = self.hidden.get((uid, model), ())
        for rid in ids:
            if rid in hidden:
                raise OdooError(
                    ACCESS,
                    "Due to security restrictions, you are not allowed to access '%s' (%s) "
                    "records." % (MODELS[model][0], model),
                )
        rows = []
        for rid in ids:
            record = self.records[model].get(rid)
            if record is None:
                continue  # read skips deleted records
            row = {"id": rid}
            for name in fields:
                if name == "display_name":
                    row[name] = record.get("name") or False
                elif name == "id":
                    continue
                elif name not in MODELS[model][1]:
                    raise OdooError(
                        "builtins.ValueError", "Invalid field %r on model %r" % (name, model)
                    )
                else:
                    row[name] = self._value(model, record, name)
            rows.append(row)
        return rows

    def _existing(self, model, ids):
        missing = [rid for rid in ids if rid not in self.records[model]]
        if missing:
            raise OdooError(
                MISSING,
                "Record does not exist or has been deleted.\n(Record: %s(%s,), User: %s)"
                % (model, missing[0], self.calls[-1]["uid"]),
            )

    def _vals(self, model, vals):
        out = {}
        for name, value in vals.items():
            if name not in MODELS[model][1]:
                raise OdooError("builtins.ValueError", "Invalid field %r on model %r" % (name, model))
            ftype = MODELS[model][1][name][0]
            if ftype in ("one2many", "many2many") and type(value) is list:
                ids = []
                for command in value:
                    if type(command) is list and command[0] == 6:
                        ids = list(command[2])
                    elif type(command) is list and command[0] == 4:
                        ids.append(command[1])
                    elif type(command) is int:
                        ids.append(command)
                value = ids
            if model == "res.partner" and name == "email" and value and "@" not in value:
                raise OdooError(VALIDATION, "Invalid email address %r" % value)
            out[name] = value
        return out

    def rpc_fields_get(self, uid, model, context, allfields=None, attributes=None):
        result = {
            "id": {"type": "integer", "relation": False},
            "display_name": {"type": "char", "relation": False},
        }
        for name, (ftype, relation) in MODELS[model][1].items():
            result[name] = {"type": ftype, "relation": relation or False}
        return result

    def rpc_search(self, uid, model, context, domain, offset=0, limit=None, order=None,
                   count=False):
        self._check(uid, model, "read")
        found = self._visible(uid, model, context, domain)
        if order and order.split()[0] == "name":
            found.sort(key=lambda rid: self.records[model][rid].get("name") or "",
                       reverse=order.endswith("desc"))
        found = found[offset:]
        if limit:
            found = found[:limit]
        return len(found) if count else found

    def rpc_search_count(self, uid, model, context, domain, limit=None):
        return len(self.rpc_search(uid, model, context, domain, limit=limit))

    def rpc_search_read(self, uid, model, context, domain=None, fields=None, offset=0,
                        limit=None, order=None):
        ids = self.rpc_search(uid, model, context, domain or [], offset, limit, order)
        return self._rows(uid, model, ids, fields)

    def rpc_read(self, uid, model, context, ids, fields=None, load="_classic_read"):
        self._check(uid, model, "read")
        return self._rows(uid, model, ids, fields)

    def rpc_create(self, uid, model, context, vals_list):
        self._check(uid, model, "create")
        single = type(vals_list) is dict
        created = [self.add(model, **self._vals(model, vals))
                   for vals in ([vals_list] if single else vals_list)]
        return created[0] if single else created

    def rpc_write(self, uid, model, context, ids, vals):
        self._check(uid, model, "write")
        self._existing(model, ids)
        vals = self._vals(model, vals)
        for rid in ids:
            self.records[model][rid].update(vals)
        return True

    def rpc_unlink(self, uid, model, context, ids):
        self._check(uid, model, "unlink")
        self._existing(model, ids)
        for rid in ids:
            del self.records[model][rid]
        return True

    def rpc_copy(self, uid, model, context, ids, default=None):
        self._check(uid, model, "create")
        (rid,) = ids
        values = dict(self.records[model][rid])
        values.update(default or {})
        return self.add(model, **values)

    def rpc_name_search(self, uid, model, context, name="", args=None, operator="ilike",
                        limit=100):
        domain = list(args or []) + [["name", operator, name]]
        ids = self.rpc_search(uid, model, context, domain, limit=limit)
        return [[rid, self.records[model][rid]["name"]] for rid in ids]

    def rpc_check_object_reference(self, uid, model, context, module, name,
                                   raise_on_access_error=False):
        xmlid = "%s.%s" % (module, name)
        if xmlid not in self.xmlids:
            raise OdooError("builtins.ValueError", "External ID not found in the system: %s" % xmlid)
        target, rid = self.xmlids[xmlid]
        if rid in self.hidden.get((uid, target), ()):
            if raise_on_access_error:
                raise OdooError(ACCESS, "Not enough access rights on the external ID %r" % xmlid)
            return [target, False]
        return [target, rid]


class Bridge:
    """The host's bridge object, as the sandbox sees it."""

    def __init__(self, odoo):
        self.odoo = odoo

    def execute(self, kind, model, method, ids, args, kwargs):
        return self.odoo.execute(kind, model, method, ids, args, kwargs)

    def user(self, kind):
        self.odoo.user_calls.append(kind)
        return self.odoo.users[kind]

    def context(self, kind):
        self.odoo.context_calls.append(kind)
        return dict(self.odoo.contexts[kind])


def _empty(ftype):
    if ftype in ("one2many", "many2many"):
        return []
    if ftype == "integer":
        return 0
    if ftype == "float":
        return 0.0
    return False


def _match(odoo, model, rid, record, domain):
    stack = []
    for token in reversed(domain):
        if token == "!":
            stack.append(not stack.pop())
        elif token in ("&", "|"):
            first, second = stack.pop(), stack.pop()
            stack.append(first and second if token == "&" else first or second)
        else:
            stack.append(_leaf(odoo, model, rid, record, token))
    return all(stack)


def _leaf(odoo, model, rid, record, leaf):
    name, operator, value = leaf
    if name == "id":
        current = rid
    elif "." in name:
        first, rest = name.split(".", 1)
        relation = MODELS[model][1][first][1]
        target = record.get(first)
        if not target:
            return False
        return _leaf(odoo, relation, target, odoo.records[relation][target], [rest, operator, value])
    else:
        current = record.get(name, False)
    if operator == "=":
        return current == value or (value is False and not current)
    if operator == "!=":
        return current != value
    if operator == "in":
        if isinstance(current, list):
            return bool(set(current) & set(value))
        return current in value
    if operator == "not in":
        return current not in value
    if operator in ("ilike", "like"):
        if current is False:
            return False
        if operator == "ilike":
            return str(value).lower() in str(current).lower()
        return str(value) in str(current)
    if operator == ">":
        return current > value
    if operator == "<":
        return current < value
    raise OdooError("builtins.ValueError", "Invalid leaf %r" % (leaf,))
