"""The companion Odoo addon `cetmix_tower_webhook_sidecar`, as the emulator installs it.

The real addon lives in odoo_addon/cetmix_tower_webhook_sidecar (this repository). Its
Odoo-free logic, tools.py, is imported here by path, so these copies of its two RPC
methods validate arguments, pick secrets and plan idempotent batches exactly as the addon
does; only the ORM glue is the emulator's.

Not installed by default: the methods do not exist (`builtins.AttributeError` over RPC),
the log has no `towerhook_*` fields, the group does not exist and `ir.module.module`
says `uninstalled`. Installing it (control API `POST /addons`, fixture key `addons`)
adds the fields and methods, creates the group `cetmix_tower_webhook_sidecar.group_sidecar`
("Cetmix Tower / Webhook Sidecar") with no member unless asked, and marks the module
`installed`. Removing it undoes all of that (the fields' values are dropped).
"""
import ast
import datetime as dt
import importlib.util
import os
import sys
import threading
import urllib.error
import urllib.request

import fields as F
import orm as api
from errors import AccessError, ValidationError
from orm import BaseModel

NAME = "cetmix_tower_webhook_sidecar"
HERE = os.path.dirname(os.path.abspath(__file__))
ADDON_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "odoo_addon", NAME))
TOOLS_MODULE = NAME + "_tools"
SUPPORTED_MAJORS = (16, 17, 18)


def tools():
    """odoo_addon/cetmix_tower_webhook_sidecar/tools.py, loaded by path once."""
    module = sys.modules.get(TOOLS_MODULE)
    if module is None:
        path = os.path.join(ADDON_DIR, "tools.py")
        if not os.path.isfile(path):
            raise RuntimeError(f"the companion addon is not at {ADDON_DIR}")
        spec = importlib.util.spec_from_file_location(TOOLS_MODULE, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[TOOLS_MODULE] = module
        spec.loader.exec_module(module)
    return module


def manifest_version():
    """The manifest's version ("1.0.0"); Odoo prefixes it with the series."""
    try:
        with open(os.path.join(ADDON_DIR, "__manifest__.py"), encoding="utf-8") as handle:
            return ast.literal_eval(handle.read()).get("version") or "1.0.0"
    except (OSError, ValueError, SyntaxError):
        return "1.0.0"


def _check_group(records, method_name):
    """As models/common.py check_sidecar_group: superuser mode or a group member."""
    t = tools()
    if not records.env.su and not records.env.user_has_group(t.GROUP_XMLID):
        raise AccessError(t.group_required_message(records._name, method_name))


def _validation_error(error):
    return ValidationError(str(error))


_DELIVERY_MODES = [("sync", "Run at once"), ("async", "Accept now, run later")]


class WebhookSidecar(BaseModel):
    """cx.tower.webhook + towerhook_secret_values and the delivery settings
    (addon models/cx_tower_webhook.py)."""

    _extends = "cx.tower.webhook"
    # the addon's @api.constrains, with tools.delivery_problems as the addon calls it
    _constraints = [("_check_towerhook_delivery", (
        "towerhook_dedup_key", "towerhook_dedup_window_secs", "towerhook_max_body_bytes",
        "towerhook_max_concurrent_calls", "towerhook_rate_per_minute", "towerhook_mode",
        "towerhook_retries", "towerhook_async_status", "towerhook_async_message"))]

    towerhook_dedup_key = F.Char(string="Delivery ID")
    towerhook_dedup_window_secs = F.Integer(string="Remember Delivery IDs (s)", default=86400)
    towerhook_max_body_bytes = F.Integer(string="Max Body (bytes)", default=0)
    towerhook_max_concurrent_calls = F.Integer(string="Max Calls at Once", default=0)
    towerhook_rate_per_minute = F.Integer(string="Max Calls per Minute per Address", default=0)
    towerhook_mode = F.Selection(_DELIVERY_MODES, string="Run Code", default="sync",
                                 required=True)
    towerhook_retries = F.Integer(string="Retries", default=5)
    towerhook_async_status = F.Integer(string="Accepted Status", default=202)
    towerhook_async_message = F.Char(string="Accepted Message", default="Accepted")

    def _check_towerhook_delivery(self):
        t = tools()
        for rec in self:
            values = {name: rec._get(rec.id, name) for name in t.DELIVERY_FIELDS}
            # unset integers read as 0 in Odoo (an empty text as False)
            values = {name: (0 if value is None and name not in (
                "towerhook_dedup_key", "towerhook_mode", "towerhook_async_message")
                else value) for name, value in values.items()}
            problems = t.delivery_problems(values)
            if problems:
                raise ValidationError("\n".join(problems))

    @api.model
    def towerhook_secret_values(self, webhook_ids=None, authenticator_ids=None):
        _check_group(self, "towerhook_secret_values")
        t = tools()
        try:
            webhook_ids = t.normalize_ids(webhook_ids, "webhook_ids")
            authenticator_ids = t.normalize_ids(authenticator_ids, "authenticator_ids")
        except t.ValuesError as error:
            raise _validation_error(error) from None
        codes = []
        for model_name, ids in (("cx.tower.webhook", webhook_ids),
                                ("cx.tower.webhook.authenticator", authenticator_ids)):
            records = self.env.sudo()[model_name]
            codes.extend(records._get(rec_id, "code") for rec_id in ids
                         if rec_id in records._table())
        return t.select_secret_values(t.secret_references(codes), self._towerhook_global_secret)

    def _towerhook_global_secret(self, reference):
        """cx.tower.key._resolve_key_type_secret without server or partner."""
        keys = self.env.sudo()["cx.tower.key"]
        found = keys._search([("reference", "=", reference)], limit=1)
        if not found:
            return None
        values = self.env.sudo()["cx.tower.key.value"]
        rows = [(values._get(vid, "server_id"), values._get(vid, "partner_id"), vid)
                for vid in values._search([("key_id", "=", found[0])])]
        chosen = tools().choose_global_value(rows)
        return values.browse(chosen)._secret_text() if chosen else None


class WebhookLogSidecar(BaseModel):
    """cx.tower.webhook.log + towerhook_create_logs and the two fields
    (addon models/cx_tower_webhook_log.py)."""

    _extends = "cx.tower.webhook.log"
    _sql_constraints = [("towerhook_uid_unique", ("towerhook_uid",),
                         "A log with this towerhook call ID already exists.")]

    towerhook_call_time = F.Datetime(
        string="Call Time", readonly=True,
        help="When towerhook received the call (UTC). The log itself may have been "
             "created later (Created on), when towerhook could reach Odoo again.")
    towerhook_uid = F.Char(
        string="towerhook Call ID", readonly=True, copy=False,
        help="Idempotency key of the call given by towerhook: a batch sent again after a "
             "crash does not create the same log twice. Unique (the constraint is its "
             "index).")

    @api.model
    def towerhook_create_logs(self, vals_list):
        _check_group(self, "towerhook_create_logs")
        t = tools()
        db = self.env.db
        try:
            clean = t.validate_log_values(vals_list)
            if not clean:
                return []
            t.check_references(clean, lambda comodel, ids: [i for i in ids
                                                             if i in db.tables[comodel]])
        except t.ValuesError as error:
            raise _validation_error(error) from None
        uids = set(t.batch_uids(clean))
        existing = {row["towerhook_uid"]: rid for rid, row in self._table().items()
                    if row.get("towerhook_uid") in uids} if uids else {}
        to_create, slots = t.plan_batch(clean, existing)
        created = self.sudo()._create(to_create) if to_create else []
        return t.assemble_ids(slots, created)


NOTIFY_PENDING = NAME + ".notify"
NOTIFICATIONS_KEPT = 100


def _send_notification(db, pending):
    """Post-commit: POST to towerhook from a thread; the outcome is kept in
    db.notifications (GET /addons shows them). Failures are only recorded."""
    t = tools()
    url, headers, body = t.notify_request(pending["url"], pending["token"],
                                          pending["models"], db.name)
    entry = {"time": dt.datetime.utcnow().isoformat(" "), "url": url,
             "models": sorted(pending["models"]), "status": None, "error": None,
             "done": False}
    db.notifications.append(entry)
    del db.notifications[:-NOTIFICATIONS_KEPT]

    def post():
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=pending["timeout"]) as response:
                entry["status"] = response.status
        except urllib.error.HTTPError as error:
            entry["status"] = error.code
        except Exception as error:  # noqa: BLE001 - never fails anything, as in the addon
            entry["error"] = str(error)
        finally:
            entry["done"] = True

    threading.Thread(target=post, name="towerhook-notify", daemon=True).start()


class NotifyMixin(BaseModel):
    """Change notification (addon models/towerhook_notify_mixin.py): after a committed
    create/write/unlink of a webhook, an authenticator, a key or a key value, one POST
    to `cetmix_tower_webhook_sidecar.notify_url` per transaction."""

    def _create(self, vals_list, wanted_ids=None):
        ids = super()._create(vals_list, wanted_ids)
        if ids:
            self._towerhook_schedule_notify()
        return ids

    def _write(self, vals):
        result = super()._write(vals)
        if self._ids:
            self._towerhook_schedule_notify()
        return result

    def _unlink(self):
        if self._ids:
            self._towerhook_schedule_notify()
        return super()._unlink()

    def _towerhook_schedule_notify(self):
        db = self.env.db
        tx = db.tx
        if tx is None or self.env.context.get("towerhook_no_notify"):
            return
        pending = tx.data.get(NOTIFY_PENDING)
        if pending is not None:
            pending["models"].add(self._name)
            return
        t = tools()
        params = self.env.sudo()["ir.config_parameter"]
        url = params.get_param(t.NOTIFY_URL_PARAM)
        token = params.get_param(t.NOTIFY_TOKEN_PARAM)
        if t.notify_request(url, token, []) is None:
            return
        pending = {"models": {self._name}, "url": url, "token": token,
                   "timeout": t.notify_timeout(params.get_param(t.NOTIFY_TIMEOUT_PARAM))}
        tx.data[NOTIFY_PENDING] = pending
        tx.postcommit.append(lambda: _send_notification(db, pending))


NOTIFY_EXTENSIONS = [type("Notify_" + model.replace(".", "_"), (NotifyMixin,),
                          {"_extends": model})
                     for model in ("cx.tower.webhook", "cx.tower.webhook.authenticator",
                                   "cx.tower.key", "cx.tower.key.value")]

ADDONS = {
    NAME: {
        "title": "Cetmix Tower Webhook Sidecar",
        "extensions": [WebhookSidecar, WebhookLogSidecar] + NOTIFY_EXTENSIONS,
        "group": ("group_sidecar", "Webhook Sidecar",
                  "cetmix_tower_server.ir_module_category_tower"),
    },
}


# ---------------------------------------------------------------------------------------
# install / remove
# ---------------------------------------------------------------------------------------


def addons_spec(value):
    """The `addons` of a fixture or of POST /addons -> {name: {"installed", "members"}}.

    Accepted: ["name", ...], {"name": true|false}, {"name": {"installed"?: bool,
    "members"?: [login or uid, ...]}} (a dict without "installed" means installed)."""
    if not value:
        return {}
    if isinstance(value, (list, tuple)):
        value = {name: True for name in value}
    if not isinstance(value, dict):
        raise ValueError("addons must be a list of names or an object {name: true|false|{...}}")
    spec = {}
    for name, wanted in value.items():
        if name not in ADDONS:
            raise ValueError(f"unknown addon {name!r}; known: {', '.join(sorted(ADDONS))}")
        if isinstance(wanted, dict):
            unknown = set(wanted) - {"installed", "members"}
            if unknown:
                raise ValueError(f"unknown addon options {sorted(unknown)}")
            members = wanted.get("members") or []
            if not isinstance(members, list):
                raise ValueError("members must be a list of logins or user ids")
            spec[name] = {"installed": bool(wanted.get("installed", True)),
                          "members": members}
        else:
            spec[name] = {"installed": bool(wanted), "members": []}
    return spec


def _module_row(env, name):
    modules = env["ir.module.module"]
    found = modules._search([("name", "=", name)], limit=1)
    return modules.browse(found[0]) if found else None


def _group_xmlid(name):
    return f"{name}.{ADDONS[name]['group'][0]}"


def _uid_of(db, member):
    if isinstance(member, int) and not isinstance(member, bool):
        if member in db.tables["res.users"]:
            return member
    elif isinstance(member, str):
        for uid, row in db.tables["res.users"].items():
            if row.get("login") == member:
                return uid
    raise ValueError(f"no user {member!r} (give a login or a user id)")


def add_members(db, name, members):
    """Put users (logins or ids) in the addon's group. Joins a running transaction."""
    if not members:
        return
    if name not in db.addons:
        raise ValueError(f"{name} is not installed: its group does not exist")
    with db.transaction():
        env = db.env()
        group = env.ref(_group_xmlid(name))
        users = env["res.users"]
        field = users._groups_field(db.major)
        for member in members:
            users.browse(_uid_of(db, member))._write({field: [[4, group.id]]})


def set_installed(db, name, installed=True, members=()):
    """Install or remove an addon in this database (idempotent), then add members."""
    if name not in ADDONS:
        raise ValueError(f"unknown addon {name!r}")
    addon = ADDONS[name]
    if installed and db.major not in SUPPORTED_MAJORS:
        raise ValueError(f"{name} installs on Odoo 16.0 to 18.0 only (this is {db.version}: "
                         "res.groups has no category_id from 19.0 on)")
    if installed and name not in db.addons:
        tools()   # fail before changing anything when the addon's files are missing
        with db.transaction():
            env = db.env()
            xmlid, group_name, category = addon["group"]
            group_id = env["res.groups"]._create([{
                "name": group_name, "category_id": env.ref(category).id,
                "comment": "For the service user of towerhook: may call "
                           "towerhook_secret_values and towerhook_create_logs."}])[0]
            env["ir.model.data"]._create([{"module": name, "name": xmlid,
                                           "model": "res.groups", "res_id": group_id,
                                           "noupdate": False}])
            module = _module_row(env, name)
            module._write({"state": "installed",
                           "latest_version": f"{db.major}.0.{manifest_version()}"})
            db.addons.add(name)
            try:
                db.rebuild_registry()
            except BaseException:
                db.addons.discard(name)
                raise
            # Odoo fills a new column's default into the existing rows
            for ext in addon["extensions"]:
                table = db.tables[ext._extends]
                for fname, field in vars(ext).items():
                    if not isinstance(field, F.Field) or field.default is None:
                        continue
                    for rec_id, row in table.items():
                        if fname not in row:
                            db._log(("row", ext._extends, rec_id, dict(row)))
                            row[fname] = field.default
    elif not installed and name in db.addons:
        with db.transaction():
            env = db.env()
            group = env.ref(_group_xmlid(name), raise_if_not_found=False)
            if group:
                group._unlink()   # memberships and the external id go with it
            for ext in addon["extensions"]:
                drop = [fname for fname, value in vars(ext).items()
                        if isinstance(value, F.Field)]
                table = db.tables[ext._extends]
                for rec_id, row in list(table.items()):
                    if any(fname in row for fname in drop):
                        db._log(("row", ext._extends, rec_id, row))
                        table[rec_id] = {k: v for k, v in row.items() if k not in drop}
            module = _module_row(env, name)
            module._write({"state": "uninstalled", "latest_version": False})
            db.addons.discard(name)
            try:
                db.rebuild_registry()
            except BaseException:
                db.addons.add(name)
                raise
    add_members(db, name, list(members or ()))


def describe(db):
    """GET /addons: {name: {"installed", "state", "group_id", "members"}}."""
    result = {}
    with db.transaction():
        env = db.env()
        for name in ADDONS:
            module = _module_row(env, name)
            group = env.ref(_group_xmlid(name), raise_if_not_found=False)
            members = []
            if group:
                members = sorted(uid for uid in db.tables["res.users"]
                                 if group.id in env.user_group_ids(uid))
            result[name] = {"installed": name in db.addons,
                            "state": module["state"] if module else False,
                            "version": (module["latest_version"] or False) if module else False,
                            "group_id": group.id if group else None,
                            "group_xmlid": _group_xmlid(name), "members": members,
                            "notifications": [dict(entry) for entry in db.notifications]}
    return result
