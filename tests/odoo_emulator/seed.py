"""Initial data of a fresh emulated database, and the JSON fixture loader.

Seeded users (ids fixed so tests can rely on them):
  1 __system__  superuser, inactive: cannot log in (as in Odoo)
  2 admin       password "admin", API key ADMIN_API_KEY; Settings, Contact Creation,
                Cetmix Tower Root
  3 public      inactive public user
  4 towerhook   password "towerhook", API key TOWERHOOK_API_KEY; Cetmix Tower Root,
                Contact Creation (webhook code in the tests creates partners as this user)
  5 demo        password "demo", API key DEMO_API_KEY; Internal User only: may read
                partners, not create or change them (no Contact Creation)

The Cetmix Tower groups are `cetmix_tower_server.group_*` on every version, as Cetmix
Tower 16.0-18.0.1.0.1 defines them (a real Odoo 18 with cetmix_tower_webhook 18.0.1.0.1
has `cetmix_tower_server.group_root`, no `cetmix_tower_base`).
"""
import datetime as dt

import addon_sidecar
import fields as F
import orm

ADMIN_API_KEY = "96c63236899f8fe29ca4fd5ffd531da18ec448c7"
TOWERHOOK_API_KEY = "91db4ffea7166b07c5c01632641177b656b5f15e"
DEMO_API_KEY = "9817cbaa1888272565e5009be512ac7e0cffd8e0"

ADMIN_UID, PUBLIC_UID, TOWERHOOK_UID, DEMO_UID = 2, 3, 4, 5

CATEGORIES = [
    # xmlid, name
    ("base.module_category_user_type", "User types"),
    ("base.module_category_administration", "Administration"),
    ("base.module_category_usability", "Extra Rights"),
    ("cetmix_tower_server.ir_module_category_tower", "Cetmix Tower"),
]

GROUPS = [
    # id, xmlid, name, category xmlid, implied xmlids
    (1, "base.group_user", "Internal User", "base.module_category_user_type", []),
    (2, "base.group_erp_manager", "Access Rights", "base.module_category_administration",
     ["base.group_user"]),
    (3, "base.group_system", "Settings", "base.module_category_administration",
     ["base.group_erp_manager"]),
    (4, "base.group_public", "Public", "base.module_category_user_type", []),
    (5, "cetmix_tower_server.group_user", "User", "cetmix_tower_server.ir_module_category_tower",
     ["base.group_user"]),
    (6, "cetmix_tower_server.group_manager", "Manager",
     "cetmix_tower_server.ir_module_category_tower", ["cetmix_tower_server.group_user"]),
    (7, "cetmix_tower_server.group_root", "Root", "cetmix_tower_server.ir_module_category_tower",
     ["cetmix_tower_server.group_manager"]),
    # "Extra Rights / Contact Creation": creating and changing partners (res.partner is
    # read-only for plain internal users)
    (8, "base.group_partner_manager", "Contact Creation", "base.module_category_usability", []),
]

PARTNERS = [
    (1, "base.main_partner", "YourCompany", True),
    (2, "base.partner_root", "OdooBot", False),
    (3, "base.partner_admin", "Mitchell Admin", False),
    (4, "base.public_partner", "Public user", False),
    (5, "__emulator__.partner_towerhook", "Towerhook Service", False),
    (6, "base.partner_demo", "Marc Demo", False),
]

USERS = [
    # id, xmlid, login, partner id, active, password, api key, group xmlids
    (1, "base.user_root", "__system__", 2, False, None, None, ["base.group_system"]),
    (ADMIN_UID, "base.user_admin", "admin", 3, True, "admin", ADMIN_API_KEY,
     ["base.group_system", "base.group_partner_manager", "cetmix_tower_server.group_root"]),
    (PUBLIC_UID, "base.public_user", "public", 4, False, None, None, ["base.group_public"]),
    (TOWERHOOK_UID, "__emulator__.user_towerhook", "towerhook", 5, True, "towerhook",
     TOWERHOOK_API_KEY, ["cetmix_tower_server.group_root", "base.group_partner_manager"]),
    (DEMO_UID, "base.user_demo", "demo", 6, True, "demo", DEMO_API_KEY, ["base.group_user"]),
]

COUNTRIES = [("BE", "Belgium"), ("DE", "Germany"), ("FR", "France"), ("GB", "United Kingdom"),
             ("NL", "Netherlands"), ("US", "United States"), ("UA", "Ukraine"),
             ("ES", "Spain"), ("IT", "Italy"), ("CH", "Switzerland")]

# Stock access rules: (xmlid, model, group xmlid or None, read, write, create, unlink)
ACCESS = [
    ("base.access_ir_module_category_group_user", "ir.module.category", "base.group_user",
     1, 0, 0, 0),
    ("base.access_ir_module_category_group_system", "ir.module.category", "base.group_system",
     1, 1, 1, 1),
    ("base.access_res_country_all", "res.country", None, 1, 0, 0, 0),
    ("base.access_res_country_group_system", "res.country", "base.group_system", 1, 1, 1, 1),
    # base/security/ir.model.access.csv: internal users read partners; creating and
    # changing them needs "Extra Rights / Contact Creation"
    ("base.access_res_partner_public", "res.partner", "base.group_public", 1, 0, 0, 0),
    ("base.access_res_partner_group_user", "res.partner", "base.group_user", 1, 0, 0, 0),
    ("base.access_res_partner_group_partner_manager", "res.partner",
     "base.group_partner_manager", 1, 1, 1, 1),
    ("base.access_res_company_group_user", "res.company", "base.group_user", 1, 0, 0, 0),
    ("base.access_res_company_group_erp_manager", "res.company", "base.group_erp_manager",
     1, 1, 1, 1),
    ("base.access_res_users_group_user", "res.users", "base.group_user", 1, 0, 0, 0),
    ("base.access_res_users_group_erp_manager", "res.users", "base.group_erp_manager",
     1, 1, 1, 1),
    ("base.access_res_groups_group_user", "res.groups", "base.group_user", 1, 0, 0, 0),
    ("base.access_res_groups_group_erp_manager", "res.groups", "base.group_erp_manager",
     1, 1, 1, 1),
    ("base.access_ir_model_group_user", "ir.model", "base.group_user", 1, 0, 0, 0),
    ("base.access_ir_model_group_system", "ir.model", "base.group_system", 1, 1, 1, 1),
    ("base.access_ir_model_access_group_user", "ir.model.access", "base.group_user",
     1, 0, 0, 0),
    ("base.access_ir_model_access_group_system", "ir.model.access", "base.group_system",
     1, 1, 1, 1),
    ("base.access_ir_model_data_group_user", "ir.model.data", "base.group_user", 1, 0, 0, 0),
    ("base.access_ir_model_data_group_system", "ir.model.data", "base.group_system",
     1, 1, 1, 1),
    ("base.access_ir_config_parameter_system", "ir.config_parameter", "base.group_system",
     1, 1, 1, 1),
    ("base.access_ir_module_module_group_user", "ir.module.module", "base.group_user",
     1, 0, 0, 0),
    ("base.access_ir_module_module_group_system", "ir.module.module", "base.group_system",
     1, 1, 1, 1),
    # cetmix_tower_webhook/security/ir.model.access.csv: logs are read-only even for Root
    ("cetmix_tower_webhook.access_cx_tower_webhook", "cx.tower.webhook",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_webhook.access_cx_tower_webhook_authenticator",
     "cx.tower.webhook.authenticator", "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_webhook.access_cx_tower_webhook_log", "cx.tower.webhook.log",
     "cetmix_tower_server.group_root", 1, 0, 0, 0),
    # the vault's only rule grants nothing: AccessError for everyone (facts §6.2)
    ("cetmix_tower_server.access_cx_tower_vault", "cx.tower.vault",
     "cetmix_tower_server.group_root", 0, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_key_root", "cx.tower.key",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_key_value_root", "cx.tower.key.value",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_variable_user", "cx.tower.variable",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_variable_root", "cx.tower.variable",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_variable_value_user", "cx.tower.variable.value",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_variable_value_root", "cx.tower.variable.value",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_server_user", "cx.tower.server",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_server_root", "cx.tower.server",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_command_user", "cx.tower.command",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_command_root", "cx.tower.command",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_plan_user", "cx.tower.plan",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_plan_root", "cx.tower.plan",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
    ("cetmix_tower_server.access_cx_tower_plan_log_user", "cx.tower.plan.log",
     "cetmix_tower_server.group_user", 1, 0, 0, 0),
    ("cetmix_tower_server.access_cx_tower_plan_log_root", "cx.tower.plan.log",
     "cetmix_tower_server.group_root", 1, 1, 1, 1),
]

# ir.module.module rows: (name, title, first major it exists in, version suffix).
# The companion addon is in the addons path but not installed until a test installs it
# (control API POST /addons, fixture key "addons"; see addon_sidecar.py).
MODULES = [
    ("base", "Base", 16, "1.3"),
    ("base_setup", "Initial Setup Tools", 16, "1.0"),
    ("cetmix_tower_server", "Cetmix Tower Server", 16, "2.1.4"),
    ("cetmix_tower_yaml", "Cetmix Tower YAML", 16, "1.1.0"),
    ("cetmix_tower_webhook", "Cetmix Tower Webhook", 16, "1.0.1"),
]

CONFIG_PARAMETERS = {
    "web.base.url": "http://localhost:8069",
    "database.uuid": "6f1c6a46-5d0b-11ef-9c5d-0242ac120002",
    "cetmix_tower_webhook.webhook_log_duration": "30",
}


# How long the seeded keys of users who are not administrators stay valid from 18.0 on,
# where Odoo requires them to expire.
SEEDED_KEY_LIFETIME = dt.timedelta(days=365)


def seed_key_expiry(db, uid):
    """None (no expiry) up to 17.0 and for administrators; from 18.0 on a year after the
    database was seeded for the other users, as an administrator would have set it."""
    if db.major < 18 or db.env().user_has_group("base.group_system", uid=uid):
        return None
    return db.clock.peek() + SEEDED_KEY_LIFETIME


def parse_api_key(entry):
    """An `api_keys` item of a fixture or of POST /users: "<key>" or {"key": "<key>",
    "expires": "YYYY-MM-DD[ HH:MM:SS]" (UTC) or null} -> (key, expiry or None)."""
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
        unknown = set(entry) - {"key", "expires"}
        if unknown:
            raise ValueError(f"unknown API key options {sorted(unknown)}")
        try:
            return entry["key"], F.parse_datetime(entry.get("expires"))
        except (TypeError, ValueError):
            raise ValueError(f"expires must be 'YYYY-MM-DD HH:MM:SS' (UTC), got "
                             f"{entry.get('expires')!r}") from None
    raise ValueError(f"an API key is a string or {{\"key\", \"expires\"}}, got {entry!r}")


def add_xmlid(env, xmlid, model_name, res_id):
    module, name = xmlid.split(".", 1)
    env["ir.model.data"]._create([{"module": module, "name": name, "model": model_name,
                                   "res_id": res_id, "noupdate": True}])


def seed(db):
    """Fill a fresh Database with the stock records. Runs as the superuser."""
    env = db.env()
    with db.transaction():
        for model_name, cls in sorted(db.registry.items()):
            mid = env["ir.model"]._create([{"name": cls._description or model_name,
                                            "model": model_name, "state": "base",
                                            "modules": cls._module}])[0]
            add_xmlid(env, f"{cls._module}.model_{model_name.replace('.', '_')}",
                      "ir.model", mid)
        for xmlid, name in CATEGORIES:
            add_xmlid(env, xmlid, "ir.module.category",
                      env["ir.module.category"]._create([{"name": name}])[0])
        groups = env["res.groups"]
        for gid, xmlid, name, category, _implied in GROUPS:
            groups._create([{"name": name, "category_id": env.ref(category).id}], [gid])
            add_xmlid(env, xmlid, "res.groups", gid)
        for gid, _xmlid, _name, _category, implied in GROUPS:
            groups.browse(gid)._write({"implied_ids": [env.ref(x).id for x in implied]})
        for pid, xmlid, name, is_company in PARTNERS:
            # demo data: the admin and demo contacts belong to the company
            env["res.partner"]._create([{"name": name, "is_company": is_company,
                                         "parent_id": 1 if pid in (3, 6) else False}], [pid])
            add_xmlid(env, xmlid, "res.partner", pid)
        company = env["res.company"]._create([{"name": "YourCompany", "partner_id": 1}], [1])[0]
        add_xmlid(env, "base.main_company", "res.company", company)
        env["res.partner"].browse(1)._write({"company_id": company})
        users = env["res.users"]
        groups_field = users._groups_field(db.major)
        for uid, xmlid, login, pid, active, password, key, group_xmlids in USERS:
            vals = {"login": login, "name": env["res.partner"]._get(pid, "name"),
                    "partner_id": pid, "active": active,
                    groups_field: [env.ref(x).id for x in group_xmlids]}
            if password:
                vals["password"] = password
            users._create([vals], [uid])
            add_xmlid(env, xmlid, "res.users", uid)
            if key:
                db.add_api_key(key, uid, seed_key_expiry(db, uid))
        for code, name in COUNTRIES:
            cid = env["res.country"]._create([{"name": name, "code": code}])[0]
            add_xmlid(env, f"base.{code.lower()}", "res.country", cid)
        model_ids = {row["model"]: rid for rid, row in db.tables["ir.model"].items()}
        for xmlid, model_name, group, read, write, create, unlink in ACCESS:
            rid = env["ir.model.access"]._create([{
                "name": xmlid.split(".", 1)[1], "model_id": model_ids[model_name],
                "group_id": env.ref(group).id if group else False,
                "perm_read": read, "perm_write": write, "perm_create": create,
                "perm_unlink": unlink}])[0]
            add_xmlid(env, xmlid, "ir.model.access", rid)
        for key, value in CONFIG_PARAMETERS.items():
            env["ir.config_parameter"]._create([{"key": key, "value": value}])
        serie = f"{db.major}.0"
        for name, title, since, version in MODULES:
            if db.major >= since:
                mid = env["ir.module.module"]._create([{
                    "name": name, "shortdesc": title, "state": "installed",
                    "latest_version": f"{serie}.{version}"}])[0]
                add_xmlid(env, f"base.module_{name}", "ir.module.module", mid)
        for name, addon in addon_sidecar.ADDONS.items():
            mid = env["ir.module.module"]._create([{
                "name": name, "shortdesc": addon["title"], "state": "uninstalled"}])[0]
            add_xmlid(env, f"base.module_{name}", "ir.module.module", mid)


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------


def resolve(env, value):
    """Fixture values may name records by external id: {"ref": "module.name"}."""
    if isinstance(value, dict) and set(value) == {"ref"}:
        record = env.ref(value["ref"])
        return record.id
    if isinstance(value, list):
        return [resolve(env, item) if not isinstance(item, list) else
                [resolve(env, sub) for sub in item] for item in value]
    return value


def load_fixture(db, fixture):
    """Load a fixture (see README) as the superuser, in one transaction (addons are
    installed first, each in its own).

    Returns {"ids": [[model, id], ...], "xmlids": {xmlid: id}}.
    """
    # addons first (each in its own transaction), so that users and records of the
    # fixture may use their groups and fields
    addons = addon_sidecar.addons_spec(fixture.get("addons"))
    for name, spec in addons.items():
        addon_sidecar.set_installed(db, name, spec["installed"])
    env = db.env(context={orm.KEEP_MAGIC: True})
    created, xmlids = [], {}
    with db.transaction():
        for key, value in (fixture.get("config_parameters") or {}).items():
            env["ir.config_parameter"].set_param(key, value)
        for user in fixture.get("users") or []:
            uid = create_user(db, **user)
            created.append(["res.users", uid])
            if user.get("xmlid"):
                xmlids[user["xmlid"]] = uid
        for name, spec in addons.items():
            addon_sidecar.add_members(db, name, spec["members"])
        for record in fixture.get("records") or []:
            model_name = record["model"]
            values = {k: resolve(env, v) for k, v in (record.get("values") or {}).items()}
            wanted = [record["id"]] if record.get("id") else None
            rec_id = env[model_name]._create([values], wanted)[0]
            created.append([model_name, rec_id])
            if record.get("xmlid"):
                add_xmlid(env, record["xmlid"], model_name, rec_id)
                xmlids[record["xmlid"]] = rec_id
    return {"ids": created, "xmlids": xmlids}


def create_user(db, login, name=None, password=None, api_keys=(), groups=("base.group_user",),
                active=True, xmlid=None, id=None, values=None):
    """Create a user with credentials; `groups` are external ids."""
    env = db.env()
    with db.transaction():
        users = env["res.users"]
        vals = {"login": login, "name": name or login, "active": active,
                users._groups_field(db.major): [env.ref(g).id for g in groups]}
        if password:
            vals["password"] = password
        vals.update(values or {})
        uid = users._create([vals], [id] if id else None)[0]
        for entry in api_keys or ():
            key, expires = parse_api_key(entry)
            db.add_api_key(key, uid, expires)
        if xmlid:
            add_xmlid(env, xmlid, "res.users", uid)
    return uid


