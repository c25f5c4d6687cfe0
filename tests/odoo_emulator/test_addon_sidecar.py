"""Tests of the companion addon cetmix_tower_webhook_sidecar as the emulator serves it.

    cd /work/main && python3 -m unittest discover -s tests/odoo_emulator -v

The methods' logic comes from odoo_addon/cetmix_tower_webhook_sidecar/tools.py (tested
on its own in odoo_addon/tests); these tests check the emulator's side: the install
switch, the group check, the ORM glue, and what a client sees over RPC.
"""
import json
import xmlrpc.client

import test_emulator as base
from test_emulator import ADMIN, DB, DEMO, TOWERHOOK, OdooError, http

ADDON = "cetmix_tower_webhook_sidecar"
GROUP = ADDON + ".group_sidecar"


def addon_tools():
    """The addon's tools.py, as the emulator loads it."""
    import addon_sidecar
    return addon_sidecar.tools()

SECRETS_FIXTURE = {
    "records": [
        # test.key_token (reference api_token, global value "s3cr3t") comes from the base
        # fixture; it also gets a server and a partner value, which webhooks never get
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_token"}, "server_id": {"ref": "test.server"},
                    "secret_value": "server-token"}},
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_token"},
                    "partner_id": {"ref": "base.partner_demo"},
                    "secret_value": "partner-token"}},
        {"model": "cx.tower.key", "xmlid": "test.key_server_only",
         "values": {"name": "Server only", "reference": "server_only", "key_type": "s"}},
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_server_only"},
                    "server_id": {"ref": "test.server"}, "secret_value": "not-global"}},
        {"model": "cx.tower.key", "xmlid": "test.key_hmac",
         "values": {"name": "HMAC key", "reference": "hmac_key", "key_type": "s"}},
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_hmac"}, "secret_value": "hmac-secret"}},
        {"model": "cx.tower.key", "xmlid": "test.key_other",
         "values": {"name": "Other", "reference": "other_secret", "key_type": "s"}},
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_other"}, "secret_value": "never-asked"}},
        {"model": "cx.tower.webhook.authenticator", "xmlid": "test.auth_hmac",
         "values": {"name": "HMAC", "code": "result = {'allowed': "
                    "headers.get('X-Key') == #!cxtower.secret.hmac_key !#}"}},
        {"model": "cx.tower.webhook", "xmlid": "test.webhook_secrets",
         "values": {"name": "Secrets", "endpoint": "secrets",
                    "authenticator_id": {"ref": "test.auth_hmac"},
                    "code": "a = #!cxtower.secret.api_token!#\n"
                            "b = #!cxtower.secret.server_only!#\n"
                            "c = #!cxtower.secret.unknown_ref!#\n"
                            "d = #!cxtower.password.not_a_secret!#\n"
                            "e = #!cxtower.secret.api_token!#\n"
                            "result = {'exit_code': 0}"}},
        {"model": "cx.tower.webhook", "xmlid": "test.webhook_other",
         "values": {"name": "Other", "endpoint": "other",
                    "authenticator_id": {"ref": "test.auth_ok"},
                    "code": "x = #!cxtower.secret.other_secret!#"}},
    ],
}


def log_values(**overrides):
    vals = {"webhook_id": False, "endpoint": "missing", "authenticator_id": False,
            "request_method": "post", "request_headers": '{"Content-Type": "application/json"}',
            "request_payload": '{"test": 1}', "authentication_status": "failed",
            "code_status": "skipped", "http_status": 404, "result_message": False,
            "error_message": "Webhook not found", "user_id": False,
            "ip_address": "203.0.113.7", "country_id": False,
            "towerhook_call_time": "2026-03-01 10:20:30",
            "towerhook_uid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}
    vals.update(overrides)
    return vals


class SidecarTestCase(base.EmulatorTestCase):
    def install(self, members=()):
        spec = {ADDON: {"members": list(members)}} if members else {ADDON: True}
        return self.control("POST", "/addons", spec)["addons"][ADDON]

    def join_group(self, uid):
        gid = self.ref(GROUP)
        self.admin("res.users", "write", [[uid], {"groups_id": [[4, gid]]}])

    def assert_odoo_error(self, name, func, *args, **kwargs):
        with self.assertRaises(OdooError) as ctx:
            func(*args, **kwargs)
        self.assertEqual(ctx.exception.name, name, str(ctx.exception))
        return str(ctx.exception)

    def log_count(self):
        return len(self.control("GET", "/records/cx.tower.webhook.log")["records"])


class TestInstallSwitch(SidecarTestCase):
    def test_absent_by_default(self):
        for model, method, args in (("cx.tower.webhook.log", "towerhook_create_logs", [[]]),
                                    ("cx.tower.webhook", "towerhook_secret_values", [[], []])):
            text = self.assert_odoo_error("builtins.AttributeError", self.service, model,
                                          method, args)
            self.assertEqual(text, f"The method '{method}' does not exist on the model "
                                   f"'{model}'")
        rows = self.service("ir.module.module", "search_read",
                            [[["name", "in", [ADDON, "cetmix_tower_webhook"]]]],
                            {"fields": ["name", "state", "latest_version"]})
        self.assertEqual({r["name"]: (r["state"], r["latest_version"]) for r in rows},
                         {ADDON: ("uninstalled", False),
                          "cetmix_tower_webhook": ("installed", "17.0.1.0.1")})
        # readable by any internal user
        self.assertEqual(self.call(DEMO, "demo", "ir.module.module", "search_count",
                                   [[["name", "=", ADDON], ["state", "=", "installed"]]]), 0)
        fields = self.service("cx.tower.webhook.log", "fields_get", [], {"attributes": ["type"]})
        self.assertNotIn("towerhook_uid", fields)
        self.assert_odoo_error("builtins.ValueError", self.admin, "ir.model.data",
                               "check_object_reference", [ADDON, "group_sidecar"])
        self.assertEqual(self.control("GET", "/addons")["addons"][ADDON]["state"],
                         "uninstalled")
        self.assertEqual(self.control("GET", "/health")["addons"], [])

    def test_install_group_access_and_remove(self):
        state = self.install()
        self.assertEqual((state["installed"], state["state"], state["version"],
                          state["members"]), (True, "installed", "17.0.1.0.0", []))
        gid = self.ref(GROUP)
        group = self.admin("res.groups", "read", [[gid], ["full_name", "users", "implied_ids"]])[0]
        self.assertEqual(group, {"id": gid, "full_name": "Cetmix Tower / Webhook Sidecar",
                                 "users": [], "implied_ids": []})
        self.assertEqual(self.control("GET", "/health")["addons"], [ADDON])
        # outside the group: AccessError, even for Root and Settings
        for uid, secret in ((TOWERHOOK, base.TOWERHOOK_API_KEY), (ADMIN, "admin"),
                            (DEMO, "demo")):
            text = self.assert_odoo_error("odoo.exceptions.AccessError", self.call, uid,
                                          secret, "cx.tower.webhook.log",
                                          "towerhook_create_logs", [[]])
            self.assertIn(GROUP, text)
            self.assert_odoo_error("odoo.exceptions.AccessError", self.call, uid, secret,
                                   "cx.tower.webhook", "towerhook_secret_values", [[], []])
        # the administrator adds the service user to the group
        self.join_group(TOWERHOOK)
        self.assertEqual(self.service("cx.tower.webhook.log", "towerhook_create_logs", [[]]), [])
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values", [[], []]),
                         {})
        self.assertEqual(self.control("GET", "/addons")["addons"][ADDON]["members"], [TOWERHOOK])
        # the group grants no access rule: plain create stays refused
        self.assert_odoo_error("odoo.exceptions.AccessError", self.service,
                               "cx.tower.webhook.log", "create", [log_values()])
        fields = self.service("cx.tower.webhook.log", "fields_get", [],
                              {"attributes": ["type", "readonly"]})
        self.assertEqual(fields["towerhook_call_time"], {"type": "datetime", "readonly": True})
        self.assertEqual(fields["towerhook_uid"], {"type": "char", "readonly": True})
        self.assertEqual(self.service("ir.module.module", "search_read",
                                      [[["name", "=", ADDON]]], {"fields": ["state"]})[0]["state"],
                         "installed")
        # installing again changes nothing
        self.assertEqual(self.install()["group_id"], gid)
        # removing: methods, fields, group gone; logs stay without the addon's fields
        self.service("cx.tower.webhook.log", "towerhook_create_logs", [[log_values()]])
        state = self.control("POST", "/addons", {ADDON: False})["addons"][ADDON]
        self.assertEqual((state["installed"], state["state"], state["group_id"]),
                         (False, "uninstalled", None))
        self.assert_odoo_error("builtins.AttributeError", self.service, "cx.tower.webhook.log",
                               "towerhook_create_logs", [[]])
        rows = self.control("GET", "/records/cx.tower.webhook.log")["records"]
        self.assertEqual(len(rows), 1)
        self.assertNotIn("towerhook_uid", rows[0])
        self.assertNotIn(gid, self.admin("res.users", "read", [[TOWERHOOK], ["groups_id"]])[0]
                         ["groups_id"])

    def test_fixture_key_and_members(self):
        fixture = dict(base.FIXTURE)
        fixture["addons"] = {ADDON: {"members": ["towerhook"]}}
        fixture["users"] = [{"login": "sidecar2", "password": "sidecar2",
                             "groups": ["cetmix_tower_server.group_root", GROUP]}]
        loaded = self.control("POST", "/reset", {"fixture": fixture})["loaded"]
        self.assertEqual(loaded["ids"][0][0], "res.users")
        other = loaded["ids"][0][1]
        self.assertEqual(self.service("cx.tower.webhook.log", "towerhook_create_logs", [[]]), [])
        self.assertEqual(self.call(other, "sidecar2", "cx.tower.webhook.log",
                                   "towerhook_create_logs", [[]]), [])
        self.assertEqual(self.control("GET", "/addons")["addons"][ADDON]["members"],
                         sorted([TOWERHOOK, other]))
        # the list form installs without members
        self.control("POST", "/reset", {"fixture": {"addons": [ADDON]}})
        self.assertEqual(self.control("GET", "/addons")["addons"][ADDON]["members"], [])
        # keep_fixture reinstalls it with the fixture
        self.control("POST", "/reset", {"keep_fixture": True})
        self.assertTrue(self.control("GET", "/addons")["addons"][ADDON]["installed"])
        # a reset without the key leaves it uninstalled
        self.control("POST", "/reset", {"fixture": base.FIXTURE})
        self.assertFalse(self.control("GET", "/addons")["addons"][ADDON]["installed"])

    def test_bad_control_requests(self):
        for body in ({"nope": True}, {ADDON: {"members": ["nobody"]}},
                     {ADDON: {"colour": "blue"}}, "yes"):
            status, _h, payload = http("POST", self.control_base + "/addons", body)
            self.assertEqual(status, 400, payload)
        status, _h, payload = http("POST", self.control_base + "/addons",
                                   {ADDON: {"installed": False, "members": ["towerhook"]}})
        self.assertEqual(status, 400)
        self.assertIn("not installed", json.loads(payload)["error"])


class TestSecretValues(SidecarTestCase):
    def setUp(self):
        super().setUp()
        fixture = {"records": base.FIXTURE["records"] + SECRETS_FIXTURE["records"],
                   "addons": {ADDON: {"members": ["towerhook"]}}}
        self.control("POST", "/reset", {"fixture": fixture})

    def test_referenced_secrets_only_global_values(self):
        webhook, auth = self.ref("test.webhook_secrets"), self.ref("test.auth_hmac")
        values = self.service("cx.tower.webhook", "towerhook_secret_values", [[webhook], [auth]])
        # no global value, unknown key: False ("no value"), never None
        self.assertEqual(values, {"api_token": "s3cr3t", "server_only": False,
                                  "unknown_ref": False, "hmac_key": "hmac-secret"})
        # keyword arguments, one side only
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values", [],
                                      {"authenticator_ids": [auth]}),
                         {"hmac_key": "hmac-secret"})
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values",
                                      [[self.ref("test.webhook_get")], []]),
                         {"api_token": "s3cr3t"})
        # deleted / unknown ids are ignored; archived webhooks count
        self.service("cx.tower.webhook", "write", [[webhook], {"active": False}])
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values",
                                      [[webhook, 9999], []])["api_token"], "s3cr3t")
        # the vault itself stays closed to the service user
        self.assert_odoo_error("odoo.exceptions.AccessError", self.service, "cx.tower.vault",
                               "search_read", [[]])

    def test_changes_are_seen_at_once(self):
        webhook = self.ref("test.webhook_secrets")
        key_value = self.control("POST", "/records/cx.tower.key.value/search", {
            "domain": [["key_id", "=", self.ref("test.key_server_only")]]})["records"][0]["id"]
        self.admin("cx.tower.key.value", "write", [[key_value], {"server_id": False}])
        self.admin("cx.tower.webhook", "write", [[webhook], {
            "code": "x = #!cxtower.secret.server_only!#"}])
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values",
                                      [[webhook], []]), {"server_only": "not-global"})

    def test_arguments_checked(self):
        for args in ([["1"], []], [[], "x"], [[True], []]):
            text = self.assert_odoo_error("odoo.exceptions.ValidationError", self.service,
                                          "cx.tower.webhook", "towerhook_secret_values", args)
            self.assertRegex(text, "webhook_ids|authenticator_ids")

    def test_a_secret_without_value_does_not_break_xmlrpc(self):
        # XML-RPC has no nil (Odoo marshals without allow_none): a None in the answer
        # would make the whole call a fault and towerhook would get no secret at all.
        # The secrets without value are False, so the same answer comes over both
        # transports Odoo 16-18 offer (JSON-2 exists from 19.0, where the addon does not
        # install).
        webhook, auth = self.ref("test.webhook_secrets"), self.ref("test.auth_hmac")
        expected = {"api_token": "s3cr3t", "server_only": False, "unknown_ref": False,
                    "hmac_key": "hmac-secret"}
        strict = xmlrpc.client.ServerProxy(f"{self.base}/xmlrpc/2/object", allow_none=False)
        self.addCleanup(strict("close"))
        over_xmlrpc = strict.execute_kw(DB, TOWERHOOK, "towerhook", "cx.tower.webhook",
                                        "towerhook_secret_values", [[webhook], [auth]])
        self.assertEqual(over_xmlrpc, expected)
        self.assertEqual(self.service("cx.tower.webhook", "towerhook_secret_values",
                                      [[webhook], [auth]]), expected)
        # an empty log batch and a real one answer marshallable lists too
        self.assertEqual(strict.execute_kw(DB, TOWERHOOK, "towerhook", "cx.tower.webhook.log",
                                           "towerhook_create_logs", [[]]), [])
        created = strict.execute_kw(DB, TOWERHOOK, "towerhook", "cx.tower.webhook.log",
                                    "towerhook_create_logs",
                                    [[log_values(towerhook_uid="xmlrpc-1", http_status=False,
                                                 webhook_id=False, error_message=False)]])
        self.assertEqual(len(created), 1)
        self.assertIsInstance(created[0], int)


class TestDeliveryFields(SidecarTestCase):
    """The towerhook_* fields of cx.tower.webhook (towerhook's delivery settings)."""

    def test_fields_come_with_the_addon_with_defaults_and_checks(self):
        webhook = self.ref("test.webhook_post")
        fields = self.service("cx.tower.webhook", "fields_get", [["towerhook_mode"]],
                              {"attributes": ["type"]})
        self.assertEqual(fields, {})
        self.assert_odoo_error("builtins.ValueError", self.service, "cx.tower.webhook", "read",
                               [[webhook], ["towerhook_mode"]])
        self.install(members=["towerhook"])
        names = list(addon_tools().DELIVERY_FIELDS)
        fields = self.service("cx.tower.webhook", "fields_get", [names], {"attributes": ["type"]})
        self.assertEqual(sorted(fields), sorted(names))
        # existing webhooks get the defaults, as Odoo fills a new column
        row = self.service("cx.tower.webhook", "read", [[webhook], names])[0]
        self.assertEqual({k: row[k] for k in names}, {
            "towerhook_dedup_key": False, "towerhook_dedup_window_secs": 86400,
            "towerhook_max_body_bytes": 0, "towerhook_max_concurrent_calls": 0,
            "towerhook_rate_per_minute": 0, "towerhook_mode": "sync", "towerhook_retries": 5,
            "towerhook_async_status": 202, "towerhook_async_message": "Accepted"})
        self.service("cx.tower.webhook", "write", [[webhook], {
            "towerhook_mode": "async", "towerhook_dedup_key": "header:X-GitHub-Delivery"}])
        text = self.assert_odoo_error("odoo.exceptions.ValidationError", self.service,
                                      "cx.tower.webhook", "write",
                                      [[webhook], {"towerhook_dedup_key": "X-GitHub-Delivery"}])
        self.assertIn("towerhook_dedup_key: must be header:", text)
        self.assert_odoo_error("odoo.exceptions.ValidationError", self.service,
                               "cx.tower.webhook", "write",
                               [[webhook], {"towerhook_async_status": 500}])
        row = self.service("cx.tower.webhook", "read", [[webhook], names])[0]
        self.assertEqual((row["towerhook_mode"], row["towerhook_dedup_key"]),
                         ("async", "header:X-GitHub-Delivery"))
        # removed with the addon
        self.control("POST", "/addons", {ADDON: False})
        self.assertEqual(self.service("cx.tower.webhook", "fields_get", [names],
                                      {"attributes": ["type"]}), {})


class TestCreateLogs(SidecarTestCase):
    def setUp(self):
        super().setUp()
        self.install(members=["towerhook"])

    def test_created_with_every_field(self):
        webhook, auth = self.ref("test.webhook_post"), self.ref("test.auth_ok")
        belgium = self.ref("base.be")
        first = log_values(webhook_id=webhook, authenticator_id=auth, endpoint="webhook_post",
                           authentication_status="success", code_status="success",
                           http_status=200, result_message="POST ok", error_message=False,
                           user_id=1, country_id=belgium,
                           towerhook_call_time="2026-03-01T10:20:30.123456Z")
        second = log_values(towerhook_uid="second", towerhook_call_time=False)
        ids = self.service("cx.tower.webhook.log", "towerhook_create_logs", [[first, second]])
        self.assertEqual(len(ids), 2)
        rows = self.service("cx.tower.webhook.log", "read", [ids])
        row = rows[0]
        expected = dict(first, webhook_id=[webhook, "Webhook POST"],
                        authenticator_id=[auth, "Always OK"], user_id=[1, "OdooBot"],
                        country_id=[belgium, "Belgium"],
                        towerhook_call_time="2026-03-01 10:20:30")
        for field, value in expected.items():
            self.assertEqual(row[field], value, field)
        self.assertEqual(row["display_name"], "Webhook POST (webhook_post) [200]")
        self.assertEqual(row["create_uid"], [TOWERHOOK, "Towerhook Service"])
        self.assertEqual(rows[1]["display_name"], " (missing) [404]")
        self.assertIs(rows[1]["towerhook_call_time"], False)
        # the webhook counts it
        self.assertEqual(self.service("cx.tower.webhook", "read", [[webhook], ["log_count"]])
                         [0]["log_count"], 1)

    def test_idempotency_key(self):
        batch = [log_values(towerhook_uid="a"), log_values(towerhook_uid="b"),
                 log_values(towerhook_uid="a"), log_values(towerhook_uid=False)]
        ids = self.service("cx.tower.webhook.log", "towerhook_create_logs", [batch])
        self.assertEqual(ids[0], ids[2])
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(self.log_count(), 3)
        # the same batch again (after a crash): nothing new except the keyless record
        again = self.service("cx.tower.webhook.log", "towerhook_create_logs", [batch])
        self.assertEqual(again[:3], ids[:3])
        self.assertNotEqual(again[3], ids[3])
        self.assertEqual(self.log_count(), 4)
        found = self.service("cx.tower.webhook.log", "search",
                             [[["towerhook_uid", "=", "a"]]])
        self.assertEqual(found, [ids[0]])

    def test_invalid_values_refuse_the_batch(self):
        before = self.log_count()
        cases = [
            ([log_values(create_date="2026-01-01 00:00:00", foo=1)],
             "record 0: unknown field(s) 'create_date', 'foo'"),
            ([log_values(), log_values(request_method="put")],
             "record 1: field 'request_method' must be one of 'post', 'get'"),
            ([log_values(authentication_status="ok")], "field 'authentication_status'"),
            ([log_values(code_status="done")], "field 'code_status'"),
            ([log_values(http_status="404")], "field 'http_status' must be an integer"),
            ([log_values(webhook_id="1")], "field 'webhook_id' must be a record id"),
            ([log_values(request_payload={"a": 1})], "field 'request_payload' must be a string"),
            ([log_values(towerhook_call_time="soon")], "field 'towerhook_call_time'"),
            ({"endpoint": "x"}, "expects a list of dicts"),
        ]
        for vals_list, expected in cases:
            with self.subTest(expected=expected):
                text = self.assert_odoo_error("odoo.exceptions.ValidationError", self.service,
                                              "cx.tower.webhook.log", "towerhook_create_logs",
                                              [vals_list])
                self.assertIn(expected, text)
        self.assertEqual(self.log_count(), before)

    def test_dangling_references_name_field_and_id(self):
        webhook = self.ref("test.webhook_post")
        batch = [log_values(towerhook_uid="ok", webhook_id=webhook),
                 log_values(towerhook_uid="dangling", webhook_id=9999, user_id=888)]
        text = self.assert_odoo_error("odoo.exceptions.ValidationError", self.service,
                                      "cx.tower.webhook.log", "towerhook_create_logs", [batch])
        self.assertIn("record 1: field 'webhook_id' refers to cx.tower.webhook id 9999, which "
                      "does not exist", text)
        self.assertIn("record 1: field 'user_id' refers to res.users id 888", text)
        self.assertEqual(self.log_count(), 0)   # the whole batch was refused
        # what towerhook does next: the same record without its references
        ids = self.service("cx.tower.webhook.log", "towerhook_create_logs", [[
            batch[0], log_values(towerhook_uid="dangling", webhook_id=False, user_id=False)]])
        self.assertEqual(len(ids), 2)
        # a webhook deleted meanwhile takes its logs with it (ondelete cascade)
        self.control("DELETE", f"/records/cx.tower.webhook/{webhook}")
        self.assertEqual(self.log_count(), 1)

    def test_journal_and_xmlrpc(self):
        proxy = self.xml("object")
        ids = proxy.execute_kw(DB, TOWERHOOK, base.TOWERHOOK_API_KEY, "cx.tower.webhook.log",
                               "towerhook_create_logs", [[log_values()]])
        self.assertEqual(len(ids), 1)
        with self.assertRaises(xmlrpc.client.Fault) as fault:
            proxy.execute_kw(DB, TOWERHOOK, base.TOWERHOOK_API_KEY, "cx.tower.webhook.log",
                             "towerhook_create_logs", [[log_values(code_status="x")]])
        self.assertEqual(fault.exception.faultCode, 2)   # a ValidationError is a user error
        entries = self.control("GET", "/journal?method=towerhook_create_logs")["entries"]
        self.assertEqual([(e["ok"], e["error"]) for e in entries],
                         [(True, None), (False, "odoo.exceptions.ValidationError")])


class TestVersions(SidecarTestCase):
    def test_16_and_18(self):
        for version, absent in (("16.0", "The method 'towerhook_create_logs' does not exist "
                                         "on the model 'cx.tower.webhook.log'"),
                                ("18.0", "The method 'cx.tower.webhook.log."
                                         "towerhook_create_logs' does not exist")):
            with self.subTest(version=version):
                self.control("POST", "/reset", {"version": version, "fixture": base.FIXTURE})
                text = self.assert_odoo_error("builtins.AttributeError", self.service,
                                              "cx.tower.webhook.log", "towerhook_create_logs",
                                              [[]])
                self.assertEqual(text, absent)
                state = self.install(members=["towerhook"])
                self.assertEqual(state["version"], f"{version}.1.0.0")
                self.assertEqual(self.service("cx.tower.webhook.log", "towerhook_create_logs",
                                              [[log_values()]]), [1])
        # Cetmix Tower 18.0.1.0.1 has no cetmix_tower_base: its groups are in
        # cetmix_tower_server, as on 16.0
        self.assertEqual(self.service("ir.module.module", "search_count",
                                      [[["name", "=", "cetmix_tower_base"]]]), 0)
        self.assertTrue(self.service("res.users", "has_group", [[TOWERHOOK],
                                                                "cetmix_tower_server.group_root"]))

    def test_not_on_19(self):
        self.control("POST", "/reset", {"version": "19.0", "fixture": base.FIXTURE})
        status, _h, payload = http("POST", self.control_base + "/addons", {ADDON: True})
        self.assertEqual(status, 400)
        self.assertIn("16.0 to 18.0", json.loads(payload)["error"])
        self.assertEqual(self.control("GET", "/addons")["addons"][ADDON]["state"], "uninstalled")
        self.control("POST", "/reset", {"version": "17.0", "fixture": base.FIXTURE})


class _Receiver:
    """A one-route HTTP server standing in for towerhook's POST /admin/reload."""

    def __init__(self, status=200):
        import http.server
        import threading
        received = self.received = []
        self.event = threading.Event()
        event = self.event

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append({"path": self.path, "headers": dict(self.headers),
                                 "body": json.loads(self.rfile.read(length) or b"null")})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                event.set()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/admin/reload"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count=1, timeout=5):
        import time
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TestChangeNotification(SidecarTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = _Receiver()
        self.addCleanup(self.receiver.close)
        self.admin("ir.config_parameter", "set_param",
                   ["cetmix_tower_webhook_sidecar.notify_url", self.receiver.url])
        self.admin("ir.config_parameter", "set_param",
                   ["cetmix_tower_webhook_sidecar.notify_token", "reload-token"])

    def notifications(self):
        return self.control("GET", "/addons")["addons"][ADDON]["notifications"]

    def test_one_post_per_committed_change(self):
        webhook = self.ref("test.webhook_post")
        # without the addon: nothing
        self.admin("cx.tower.webhook", "write", [[webhook], {"name": "Renamed"}])
        self.install()
        self.assertEqual(self.receiver.received, [])
        # one transaction touching a key and its value: one POST naming both models
        self.admin("cx.tower.key", "create", [{
            "name": "New", "reference": "new_secret", "key_type": "s",
            "value_ids": [[0, 0, {"secret_value": "v"}]]}])
        received = self.receiver.wait(1)
        self.assertEqual(len(received), 1)
        self.assertEqual(received[0]["path"], "/admin/reload")
        self.assertEqual(received[0]["headers"]["Authorization"], "Bearer reload-token")
        self.assertEqual(received[0]["body"], {"source": ADDON, "database": DB,
                                               "models": ["cx.tower.key", "cx.tower.key.value"]})
        # a write through the control API (as in the UI) and a delete notify too
        self.control("PATCH", f"/records/cx.tower.webhook/{webhook}", {"name": "Again"})
        self.admin("cx.tower.webhook", "unlink", [[webhook]])
        received = self.receiver.wait(3)
        self.assertEqual([r["body"]["models"] for r in received[1:]],
                         [["cx.tower.webhook"], ["cx.tower.webhook"]])
        # a failed call commits nothing and sends nothing; logs are not watched
        with self.assertRaises(OdooError):
            self.admin("cx.tower.webhook.authenticator", "write",
                       [[self.ref("test.auth_ok")], {"allowed_ip_addresses": "not an ip"}])
        self.join_group(TOWERHOOK)
        self.service("cx.tower.webhook.log", "towerhook_create_logs", [[log_values()]])
        self.assertEqual(len(self.receiver.wait(4, timeout=0.5)), 3)
        self.assertTrue(all(n["status"] == 200 for n in self.notifications()))

    def test_failures_are_ignored(self):
        self.install()
        self.receiver.close()
        auth = self.ref("test.auth_ok")
        self.assertTrue(self.admin("cx.tower.webhook.authenticator", "write",
                                   [[auth], {"name": "Still works"}]))
        import time
        deadline = time.monotonic() + 5
        while not (self.notifications() and self.notifications()[-1]["done"]) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        last = self.notifications()[-1]
        self.assertIsNone(last["status"])
        self.assertTrue(last["error"])
        # no URL: nothing is sent
        self.admin("ir.config_parameter", "set_param",
                   ["cetmix_tower_webhook_sidecar.notify_url", False])
        count = len(self.notifications())
        self.admin("cx.tower.webhook.authenticator", "write", [[auth], {"name": "Quiet"}])
        self.assertEqual(len(self.notifications()), count)
