"""Tests of the Odoo emulator itself (stdlib unittest; no Odoo needed).

    cd /work/main && python3 -m unittest discover -s tests/odoo_emulator -v
"""
import http.client as http_client
import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from emulator import Emulator  # noqa: E402
from seed import ADMIN_API_KEY, DEMO_API_KEY, TOWERHOOK_API_KEY  # noqa: E402

DB = "towerhook_test"
ADMIN, TOWERHOOK, DEMO = 2, 4, 5

FIXTURE = {
    "records": [
        {"model": "cx.tower.webhook.authenticator", "xmlid": "test.auth_ok",
         "values": {"name": "Always OK", "code": "result = {'allowed': True}"}},
        {"model": "cx.tower.webhook", "xmlid": "test.webhook_post",
         "values": {"name": "Webhook POST", "endpoint": "webhook_post",
                    "authenticator_id": {"ref": "test.auth_ok"},
                    "code": "result = {'exit_code': 0, 'message': 'POST ok'}"}},
        {"model": "cx.tower.webhook", "xmlid": "test.webhook_get",
         "values": {"name": "Webhook GET", "endpoint": "webhook_get", "method": "get",
                    "authenticator_id": {"ref": "test.auth_ok"},
                    "user_id": {"ref": "base.user_demo"},
                    "code": "result = {'message': #!cxtower.secret.api_token!#}"}},
        {"model": "cx.tower.key", "xmlid": "test.key_token",
         "values": {"name": "API token", "reference": "api_token", "key_type": "s"}},
        {"model": "cx.tower.key.value",
         "values": {"key_id": {"ref": "test.key_token"}, "secret_value": "s3cr3t"}},
        {"model": "cx.tower.server", "xmlid": "test.server",
         "values": {"name": "Main server", "reference": "main"}},
        {"model": "cx.tower.plan", "xmlid": "test.plan",
         "values": {"name": "Deploy app", "reference": "deploy_app"}},
    ],
}


class OdooError(Exception):
    def __init__(self, error):
        super().__init__(error["data"]["message"])
        self.error = error
        self.name = error["data"]["name"]


def http(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class EmulatorTestCase(unittest.TestCase):
    version = "17.0"

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version=cls.version, db_name=DB, fixture=FIXTURE).start()
        cls.base = f"http://127.0.0.1:{cls.emu.rpc_port}"
        cls.control_base = f"http://127.0.0.1:{cls.emu.control_port}"

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.control("POST", "/rpc/up")
        self.control("DELETE", "/faults")
        self.control("DELETE", "/journal")
        self.control("POST", "/clock", {"real": True, "distinct": False})
        self.control("POST", "/reset", {"version": self.version, "fixture": FIXTURE})

    # clients --------------------------------------------------------------------------

    def control(self, verb, path, body=None):
        status, _headers, payload = http(verb, self.control_base + path, body)
        self.assertEqual(status, 200, payload)
        return json.loads(payload)

    def jsonrpc(self, service, method, *args, path="/jsonrpc"):
        status, _headers, payload = http("POST", self.base + path, {
            "jsonrpc": "2.0", "method": "call", "id": 7,
            "params": {"service": service, "method": method, "args": list(args)}})
        self.assertEqual(status, 200)
        return json.loads(payload)

    def call(self, uid, secret, model, method, args=(), kwargs=None):
        reply = self.jsonrpc("object", "execute_kw", DB, uid, secret, model, method,
                             list(args), kwargs or {})
        if "error" in reply:
            raise OdooError(reply["error"])
        return reply.get("result")

    def admin(self, model, method, args=(), kwargs=None):
        return self.call(ADMIN, "admin", model, method, args, kwargs)

    def service(self, model, method, args=(), kwargs=None):
        return self.call(TOWERHOOK, TOWERHOOK_API_KEY, model, method, args, kwargs)

    def xml(self, service):
        proxy = xmlrpc.client.ServerProxy(f"{self.base}/xmlrpc/2/{service}", allow_none=True)
        self.addCleanup(proxy("close"))
        return proxy

    def json2(self, model, method, body=None, key=TOWERHOOK_API_KEY, headers=None):
        hdrs = {"Authorization": f"bearer {key}"} if key else {}
        hdrs.update(headers or {})
        status, resp_headers, payload = http("POST", f"{self.base}/json/2/{model}/{method}",
                                             body or {}, hdrs)
        return status, json.loads(payload) if payload.startswith((b"{", b"[", b"n", b"t",
                                                                  b"f", b"\"")) or \
            payload[:1].isdigit() else payload, resp_headers

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        return self.admin("ir.model.data", "check_object_reference", [module, name])[1]


class TestCommonAndAuth(EmulatorTestCase):
    def test_version_on_both_transports(self):
        expected = {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
                    "server_serie": "17.0", "protocol_version": 1}
        self.assertEqual(self.jsonrpc("common", "version"),
                         {"jsonrpc": "2.0", "id": 7, "result": expected})
        self.assertEqual(self.xml("common").version(), expected)

    def test_authenticate_and_login(self):
        self.assertEqual(self.jsonrpc("common", "authenticate", DB, "admin", "admin", {})
                         ["result"], ADMIN)
        self.assertEqual(self.jsonrpc("common", "login", DB, "towerhook", TOWERHOOK_API_KEY)
                         ["result"], TOWERHOOK)
        self.assertIs(self.jsonrpc("common", "authenticate", DB, "admin", "nope", {})
                      ["result"], False)
        self.assertIs(self.xml("common").authenticate(DB, "demo", DEMO_API_KEY, {}), DEMO)
        # __system__ (uid 1) is inactive: it can never log in
        self.assertIs(self.xml("common").login(DB, "__system__", "admin"), False)

    def test_wrong_database_is_a_server_error(self):
        reply = self.jsonrpc("common", "authenticate", "nope", "admin", "admin", {})
        self.assertEqual(reply["error"]["data"]["name"], "psycopg2.OperationalError")
        self.assertIn('database "nope" does not exist', reply["error"]["data"]["message"])

    def test_object_call_with_bad_credentials_is_access_denied(self):
        with self.assertRaises(OdooError) as ctx:
            self.call(ADMIN, "wrong", "res.partner", "search", [[]])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessDenied")
        self.assertEqual(ctx.exception.error["code"], 200)
        self.assertEqual(ctx.exception.error["message"], "Odoo Server Error")
        with self.assertRaises(xmlrpc.client.Fault) as fault:
            self.xml("object").execute_kw(DB, 1, "admin", "res.partner", "search", [[]])
        self.assertEqual(fault.exception.faultCode, 3)
        self.assertEqual(fault.exception.faultString, "Access Denied")

    def test_db_list(self):
        self.assertEqual(self.jsonrpc("db", "list")["result"], [DB])

    def test_json2_absent_before_19(self):
        status, _h, body = http("POST", f"{self.base}/json/2/res.partner/search", {},
                                {"Authorization": f"bearer {ADMIN_API_KEY}"})
        self.assertEqual(status, 404)
        self.assertIn(b"Not Found", body)
        self.assertEqual(http("GET", self.base + "/web/version")[0], 404)


class TestOrm(EmulatorTestCase):
    def test_search_read_shapes(self):
        rows = self.service("cx.tower.webhook", "search_read", [[["endpoint", "=", "webhook_get"]]],
                            {"fields": ["authenticator_id", "user_id", "method", "reference",
                                        "secret_ids", "variable_ids", "full_url", "write_date"]})
        self.assertEqual(len(rows), 1)
        row = rows[0]
        auth_id = self.ref("test.auth_ok")
        self.assertEqual(row["authenticator_id"], [auth_id, "Always OK"])
        self.assertEqual(row["user_id"], [DEMO, "Marc Demo"])
        self.assertEqual(row["method"], "get")
        self.assertEqual(row["reference"], "webhook_get")
        self.assertEqual(row["secret_ids"], [self.ref("test.key_token")])
        self.assertEqual(row["variable_ids"], [])
        self.assertEqual(row["full_url"],
                         "http://localhost:8069/cetmix_tower_webhooks/webhook_get")
        self.assertRegex(row["write_date"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        post = self.service("cx.tower.webhook", "search_read",
                            [[["endpoint", "=", "webhook_post"]]],
                            {"fields": ["user_id", "content_type", "log_count"]})[0]
        self.assertEqual(post["user_id"], [1, "OdooBot"])   # default: SUPERUSER_ID
        self.assertEqual(post["content_type"], "json")
        self.assertEqual(post["log_count"], 0)
        auth = self.service("cx.tower.webhook.authenticator", "read", [[auth_id]],
                            {"fields": ["allowed_ip_addresses", "trusted_proxy_ips"]})
        self.assertEqual(auth, [{"id": auth_id, "allowed_ip_addresses": False,
                                 "trusted_proxy_ips": False}])

    def test_active_test(self):
        webhook = self.ref("test.webhook_post")
        self.assertTrue(self.service("cx.tower.webhook", "write", [[webhook], {"active": False}]))
        self.assertEqual(self.service("cx.tower.webhook", "search",
                                      [[["endpoint", "=", "webhook_post"]]]), [])
        self.assertEqual(self.service("cx.tower.webhook", "search",
                                      [[["endpoint", "=", "webhook_post"]]],
                                      {"context": {"active_test": False}}), [webhook])
        self.assertEqual(self.service("cx.tower.webhook", "search",
                                      [[["active", "in", [True, False]],
                                        ["endpoint", "=", "webhook_post"]]]), [webhook])
        # read by id ignores active
        self.assertEqual(self.service("cx.tower.webhook", "read", [[webhook], ["active"]]),
                         [{"id": webhook, "active": False}])

    def test_create_write_unlink_and_read_skips_deleted(self):
        auth = self.ref("test.auth_ok")
        new_id = self.service("cx.tower.webhook", "create", [{
            "name": " Created ", "endpoint": "created/hook", "authenticator_id": auth}])
        self.assertIsInstance(new_id, int)
        ids = self.service("cx.tower.webhook", "create", [[
            {"name": "A", "endpoint": "a", "authenticator_id": auth},
            {"name": "B", "endpoint": "b", "authenticator_id": auth}]])
        self.assertEqual(len(ids), 2)
        row = self.service("cx.tower.webhook", "read", [[new_id], ["name", "reference"]])[0]
        self.assertEqual((row["name"], row["reference"]), ("Created", "created"))
        # magic fields given over RPC are discarded, as Odoo does
        self.service("cx.tower.webhook", "write", [[new_id], {"write_date": "2001-01-01"}])
        row = self.service("cx.tower.webhook", "read", [[new_id], ["write_date"]])[0]
        self.assertFalse(row["write_date"].startswith("2001"))
        self.assertIs(self.service("cx.tower.webhook", "write",
                                   [[new_id], {"code": "result = {}"}]), True)
        self.assertIs(self.service("cx.tower.webhook", "unlink", [[ids[0]]]), True)
        found = self.service("cx.tower.webhook", "read", [[ids[0], ids[1]], ["name"]])
        self.assertEqual([r["id"] for r in found], [ids[1]])
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "write", [[ids[0]], {"name": "gone"}])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.MissingError")
        self.assertIn("Record does not exist or has been deleted.", str(ctx.exception))
        # unlinking an already deleted record is not an error
        self.assertIs(self.service("cx.tower.webhook", "unlink", [[ids[0]]]), True)

    def test_write_date_bumps_and_domain_on_it(self):
        self.control("POST", "/clock", {"now": "2026-01-01 09:00:00"})
        self.control("POST", "/reset", {"fixture": FIXTURE})
        self.control("POST", "/clock", {"now": "2026-01-01 10:00:00"})
        auth = self.ref("test.auth_ok")
        self.service("cx.tower.webhook.authenticator", "write", [[auth], {"name": "Renamed"}])
        self.control("POST", "/clock", {"advance": 5})
        webhook = self.ref("test.webhook_post")
        self.service("cx.tower.webhook", "write", [[webhook], {"name": "Later"}])
        changed = self.service("cx.tower.webhook", "search_read",
                               [[["write_date", ">", "2026-01-01 10:00:02"]]],
                               {"fields": ["write_date"], "context": {"active_test": False}})
        self.assertEqual(changed, [{"id": webhook, "write_date": "2026-01-01 10:00:05"}])
        count = self.service("cx.tower.webhook.authenticator", "search_count",
                             [[["write_date", ">=", "2026-01-01 10:00:00"]]])
        self.assertEqual(count, 1)
        # stored with microseconds, read to the second: a same-second edit is still "after"
        self.control("POST", "/clock", {"now": "2026-01-01 10:00:05.400000"})
        self.service("cx.tower.webhook.authenticator", "write", [[auth], {"name": "Again"}])
        rows = self.service("cx.tower.webhook.authenticator", "search_read",
                            [[["write_date", ">", "2026-01-01 10:00:05"]]],
                            {"fields": ["write_date"]})
        self.assertEqual(rows, [{"id": auth, "write_date": "2026-01-01 10:00:05"}])

    def test_validation_errors(self):
        auth = self.ref("test.auth_ok")
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "create",
                         [{"name": "Bad", "endpoint": "-bad-", "authenticator_id": auth}])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.ValidationError")
        self.assertIn("Endpoint must start and end", str(ctx.exception))
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "create",
                         [{"name": "Dup", "endpoint": "webhook_post", "authenticator_id": auth}])
        self.assertEqual(str(ctx.exception),
                         "The operation cannot be completed: Endpoint and method must be unique!")
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "create", [{"name": "No auth", "endpoint": "x"}])
        self.assertIn("a mandatory field is not set", str(ctx.exception))
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "write", [[auth], {"method": "put"}])
        self.assertEqual(ctx.exception.name, "builtins.ValueError")
        # a failed call leaves nothing behind (the transaction is rolled back)
        self.assertEqual(self.service("cx.tower.webhook", "search_count",
                                      [[["name", "=", "Dup"]]]), 0)
        # a used authenticator cannot be deleted (required many2one: ondelete restrict)
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook.authenticator", "unlink", [[auth]])
        self.assertIn("another model requires the record being deleted", str(ctx.exception))

    def test_method_errors(self):
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "_generate_reference", [None, "x"])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessError")
        self.assertEqual(str(ctx.exception),
                         "Private methods (such as _generate_reference) cannot be called "
                         "remotely.")
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "frobnicate", [[1]])
        self.assertEqual(ctx.exception.name, "builtins.AttributeError")
        with self.assertRaises(OdooError) as ctx:
            self.service("x.nope", "search", [[]])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.UserError")
        self.assertEqual(str(ctx.exception), "Object x.nope doesn't exist")
        # an unknown field: in a domain, Odoo names the leaf; in `fields`, the model
        with self.assertRaises(OdooError) as ctx:
            self.service("res.partner", "search_read", [[["nope", "=", 1]]])
        self.assertEqual((ctx.exception.name, str(ctx.exception)),
                         ("builtins.ValueError",
                          "Invalid field res.partner.nope in leaf ('nope', '=', 1)"))
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "search",
                         [[["authenticator_id.nope", "in", ["a", True]]]])
        self.assertEqual(str(ctx.exception), "Invalid field cx.tower.webhook.authenticator.nope "
                                             "in leaf ('nope', 'in', ['a', True])")
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "search_read", [[]], {"fields": ["nope"]})
        self.assertEqual(str(ctx.exception), "Invalid field 'nope' on model 'cx.tower.webhook'")

    def test_domains(self):
        auth = self.ref("test.auth_ok")
        search = lambda domain: self.service("cx.tower.webhook", "search", [domain])
        post, get = self.ref("test.webhook_post"), self.ref("test.webhook_get")
        self.assertEqual(search([["name", "ilike", "webhook"]]), [post, get])
        self.assertEqual(search(["|", ["method", "=", "get"], ["endpoint", "=like", "webhook_p%"]]),
                         [post, get])
        self.assertEqual(search(["!", ["method", "=", "get"]]), [post])
        self.assertEqual(search([["authenticator_id", "=", auth], ["method", "!=", "post"]]),
                         [get])
        self.assertEqual(search([["authenticator_id", "ilike", "always"]]), [post, get])
        self.assertEqual(search([["authenticator_id.name", "=", "Always OK"]]), [post, get])
        self.assertEqual(search([["user_id", "in", [DEMO]]]), [get])
        self.assertEqual(search([["id", "not in", [post]]]), [get])
        self.assertEqual(self.service("cx.tower.webhook", "search", [[]],
                                      {"order": "endpoint desc", "limit": 1}), [post])
        self.assertEqual(self.service("cx.tower.webhook", "search", [[], 1, 1, "id"]), [get])

    def test_access_rules_and_log_provisioning(self):
        log = {"endpoint": "missing", "request_method": "post", "http_status": 404,
               "authentication_status": "failed", "code_status": "skipped",
               "error_message": "Webhook not found"}
        self.assertIs(self.service("cx.tower.webhook.log", "check_access_rights",
                                   ["create"], {"raise_exception": False}), False)
        self.assertIs(self.service("cx.tower.webhook.log", "check_access_rights", ["read"]),
                      True)
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook.log", "create", [log])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessError")
        self.assertIn("You are not allowed to create 'Webhook Call Log'", str(ctx.exception))
        with self.assertRaises(OdooError):   # demo is not Root: no read either
            self.call(DEMO, "demo", "cx.tower.webhook", "search", [[]])
        # an administrator grants create through a new group
        gid = self.admin("res.groups", "create", [{"name": "Towerhook log writer"}])
        model_id = self.admin("ir.model", "search", [[["model", "=", "cx.tower.webhook.log"]]])[0]
        self.admin("ir.model.access", "create", [{
            "name": "towerhook log create", "model_id": model_id, "group_id": gid,
            "perm_read": True, "perm_create": True}])
        self.admin("res.users", "write", [[TOWERHOOK], {"groups_id": [(4, gid)]}])
        log_id = self.service("cx.tower.webhook.log", "create", [log])
        row = self.service("cx.tower.webhook.log", "read", [[log_id]],
                           {"fields": ["display_name", "webhook_id", "create_uid"]})[0]
        self.assertEqual(row["display_name"], " (missing) [404]")
        self.assertIs(row["webhook_id"], False)
        self.assertEqual(row["create_uid"], [TOWERHOOK, "Towerhook Service"])
        journal = self.control("GET", "/journal?model=cx.tower.webhook.log&method=create")
        made = [e for e in journal["entries"] if e["ok"]]
        self.assertEqual((made[0]["uid"], made[0]["login"], made[0]["credential"],
                          made[0]["transport"]), (TOWERHOOK, "towerhook", "api_key", "jsonrpc"))

    def test_secrets_vault_and_config(self):
        value_ids = self.admin("cx.tower.key.value", "search", [[]])
        rows = self.admin("cx.tower.key.value", "read", [value_ids, ["secret_value", "key_id"]])
        self.assertEqual(rows[0]["secret_value"], "*****")
        for uid, secret in ((ADMIN, "admin"), (TOWERHOOK, "towerhook")):
            with self.assertRaises(OdooError) as ctx:
                self.call(uid, secret, "cx.tower.vault", "search_read", [[]])
            self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessError")
        secrets = self.control("GET", "/secrets")["secrets"]
        self.assertEqual((secrets[0]["reference"], secrets[0]["value"]), ("api_token", "s3cr3t"))
        self.assertEqual(self.admin("ir.config_parameter", "get_param",
                                    ["cetmix_tower_webhook.webhook_log_duration"]), "30")
        with self.assertRaises(OdooError):
            self.service("ir.config_parameter", "get_param", ["web.base.url"])

    def test_group_guarded_method_extension_point(self):
        import models_tower
        import orm

        @orm.model
        @orm.requires_group("cetmix_tower_server.group_root")
        def towerhook_probe(self, reference):
            return f"ok {reference}"

        models_tower.KeyValue.towerhook_probe = towerhook_probe
        self.addCleanup(delattr, models_tower.KeyValue, "towerhook_probe")
        self.assertEqual(self.service("cx.tower.key.value", "towerhook_probe", ["x"]), "ok x")
        with self.assertRaises(OdooError) as ctx:
            self.call(DEMO, "demo", "cx.tower.key.value", "towerhook_probe", ["x"])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessError")

    def test_none_and_recordset_results(self):
        # None: no "result" key over JSON-RPC, a fault over XML-RPC (allow_none=False)
        reply = self.jsonrpc("object", "execute_kw", DB, ADMIN, "admin", "cetmix.tower",
                             "server_get_variable_value", ["main", "missing"], {})
        self.assertNotIn("result", reply)
        self.assertNotIn("error", reply)
        with self.assertRaises(xmlrpc.client.Fault) as fault:
            self.xml("object").execute_kw(DB, ADMIN, "admin", "cetmix.tower",
                                          "server_get_variable_value", ["main", "missing"])
        self.assertEqual(fault.exception.faultCode, 1)
        self.assertIn("cannot marshal None", fault.exception.faultString)
        # a recordset is not serialisable over JSON-RPC
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.server", "get_by_reference", ["main"])
        self.assertEqual(ctx.exception.name, "builtins.TypeError")

    def test_xmlrpc_faults_and_marshalling(self):
        obj = self.xml("object")
        rows = obj.execute_kw(DB, TOWERHOOK, "towerhook", "cx.tower.webhook", "search_read",
                              [[["endpoint", "=", "webhook_post"]]],
                              {"fields": ["authenticator_id", "create_date"]})
        self.assertEqual(rows[0]["authenticator_id"][1], "Always OK")
        self.assertIsInstance(rows[0]["create_date"], str)
        cases = [
            ((DEMO, "demo", "cx.tower.webhook", "search", [[]]), 4),
            ((TOWERHOOK, "towerhook", "cx.tower.webhook", "write",
              [[999], {"name": "x"}]), 2),
            ((TOWERHOOK, "towerhook", "cx.tower.webhook", "search",
              [[["nope", "=", 1]]]), 1),
        ]
        for (uid, pw, model, method, args), code in cases:
            with self.assertRaises(xmlrpc.client.Fault) as fault:
                obj.execute_kw(DB, uid, pw, model, method, args)
            self.assertEqual(fault.exception.faultCode, code, fault.exception.faultString)
        with self.assertRaises(xmlrpc.client.Fault) as fault:
            obj.execute_kw(DB, TOWERHOOK, "towerhook", "cx.tower.webhook", "search",
                           [[["nope", "=", 1]]])
        self.assertIn("ValueError: Invalid field cx.tower.webhook.nope in leaf", fault.exception.faultString)
        self.assertTrue(fault.exception.faultString.startswith("Traceback"))


class TestControl(EmulatorTestCase):
    def test_stall_only_matching_calls(self):
        self.control("POST", "/stall", {"seconds": 0.6, "model": "res.partner",
                                        "method": "search", "times": 1})
        started = time.monotonic()
        self.admin("res.country", "search", [[]])
        self.assertLess(time.monotonic() - started, 0.5)
        started = time.monotonic()
        self.admin("res.partner", "search", [[]])
        self.assertGreaterEqual(time.monotonic() - started, 0.6)
        started = time.monotonic()
        self.admin("res.partner", "search", [[]])     # times: 1 -> used up
        self.assertLess(time.monotonic() - started, 0.5)

    def test_a_stalled_call_does_not_block_others(self):
        import threading
        self.control("POST", "/stall", {"seconds": 1.0, "model": "res.partner", "times": 1})
        slow = threading.Thread(target=self.admin, args=("res.partner", "search", [[]]))
        slow.start()
        time.sleep(0.1)
        started = time.monotonic()
        self.admin("res.country", "search_count", [[]])
        self.assertLess(time.monotonic() - started, 0.5)
        slow.join()

    def test_chunked_request_body(self):
        conn = http_client.HTTPConnection("127.0.0.1", self.emu.rpc_port, timeout=5)
        self.addCleanup(conn.close)
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 3, "params": {
            "service": "common", "method": "version", "args": []}}).encode()
        conn.request("POST", "/jsonrpc", body=iter([body[:10], body[10:]]),
                     headers={"Content-Type": "application/json"}, encode_chunked=True)
        reply = json.loads(conn.getresponse().read())
        self.assertEqual(reply["result"]["server_serie"], "17.0")

    def test_fail_with_html_502_and_odoo_errors(self):
        self.control("POST", "/fail", {"status": 502, "kind": "html", "times": 1})
        status, headers, body = http("POST", self.base + "/jsonrpc", {
            "jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"service": "common", "method": "version", "args": []}})
        self.assertEqual(status, 502)
        self.assertIn(b"502 Bad Gateway", body)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.control("POST", "/fail", {"kind": "odoo_error", "model": "res.partner",
                                       "name": "psycopg2.errors.SerializationFailure",
                                       "message": "could not serialize access", "times": 1})
        with self.assertRaises(OdooError) as ctx:
            self.admin("res.partner", "search", [[]])
        self.assertEqual(ctx.exception.name, "psycopg2.errors.SerializationFailure")

    def test_fail_after_commit_and_drop(self):
        self.control("POST", "/fail", {"kind": "http", "status": 500, "phase": "after",
                                       "model": "res.partner", "method": "create", "times": 1})
        status, _h, _b = http("POST", self.base + "/jsonrpc", {
            "jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"service": "object", "method": "execute_kw",
                       "args": [DB, ADMIN, "admin", "res.partner", "create",
                                [{"name": "Committed anyway"}]]}})
        self.assertEqual(status, 500)
        self.assertEqual(len(self.admin("res.partner", "search",
                                        [[["name", "=", "Committed anyway"]]])), 1)
        self.control("POST", "/fail", {"kind": "drop", "times": 1})
        conn = http_client.HTTPConnection("127.0.0.1", self.emu.rpc_port, timeout=5)
        self.addCleanup(conn.close)
        conn.request("POST", "/jsonrpc", body=b"{}",
                     headers={"Content-Type": "application/json"})
        with self.assertRaises((http_client.RemoteDisconnected, ConnectionError)):
            conn.getresponse()

    def test_down_and_up_on_the_same_port(self):
        port = self.emu.rpc_port
        self.control("POST", "/rpc/down")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        state = self.control("POST", "/rpc/up")
        self.assertEqual(state["rpc_port"], port)
        self.assertEqual(self.jsonrpc("common", "version")["result"]["server_serie"], "17.0")

    def test_edit_through_control_bumps_write_date(self):
        self.control("POST", "/clock", {"now": "2026-02-01 08:00:00", "distinct": True})
        webhook = self.ref("test.webhook_post")
        first = self.control("PATCH", f"/records/cx.tower.webhook/{webhook}",
                             {"code": "result = {'exit_code': 0}"})
        second = self.control("PATCH", f"/records/cx.tower.webhook/{webhook}",
                              {"name": "Renamed"})
        self.assertEqual(first["write_date"], "2026-02-01 08:00:00")
        self.assertEqual(second["write_date"], "2026-02-01 08:00:01")
        over_rpc = self.service("cx.tower.webhook", "read", [[webhook], ["name", "write_date"]])
        self.assertEqual(over_rpc[0]["write_date"], "2026-02-01 08:00:01")
        created = self.control("POST", "/records/cx.tower.webhook.log",
                               {"endpoint": "e", "http_status": 200,
                                "webhook_id": {"ref": "test.webhook_post"}})
        logs = self.control("GET", "/records/cx.tower.webhook.log")["records"]
        self.assertEqual(logs[0]["id"], created["id"])
        self.assertEqual(logs[0]["display_name"], "Renamed (e) [200]")
        self.assertTrue(self.control("DELETE", f"/records/cx.tower.webhook/{webhook}")["deleted"])
        # the log went with its webhook (ondelete cascade)
        self.assertEqual(self.control("GET", "/records/cx.tower.webhook.log")["records"], [])

    def test_journal_and_version_switch(self):
        self.admin("res.partner", "search", [[]])
        entries = self.control("GET", "/journal?model=res.partner")["entries"]
        self.assertEqual((entries[-1]["uid"], entries[-1]["model_method"], entries[-1]["args"]),
                         (ADMIN, "search", [[]]))
        state = self.control("POST", "/version", {"version": "18.0"})
        self.assertEqual(state["version"], "18.0")
        self.assertEqual(self.xml("common").version()["server_serie"], "18.0")
        with self.assertRaises(OdooError) as ctx:   # the fixture was reloaded
            self.service("cx.tower.webhook", "_private", [])
        self.assertIn("'cx.tower.webhook._private'", str(ctx.exception))

    def test_autovacuum_respects_retention(self):
        self.control("POST", "/records/cx.tower.webhook.log", [
            {"endpoint": "old", "create_date": "2020-01-01 00:00:00"}][0])
        self.control("POST", "/records/cx.tower.webhook.log", {"endpoint": "new"})
        self.assertEqual(self.control("POST", "/autovacuum")["deleted"], 1)
        left = self.control("GET", "/records/cx.tower.webhook.log?fields=endpoint")["records"]
        self.assertEqual([r["endpoint"] for r in left], ["new"])


class TestVersion16(EmulatorTestCase):
    version = "16.0"

    def test_version_specific_signatures(self):
        self.assertEqual(self.admin("res.country", "search", [], {"args": [["code", "=", "BE"]],
                                                                  "count": True}), 1)
        self.assertEqual(self.admin("res.country", "name_get", [[1]]), [[1, "Belgium"]])
        with self.assertRaises(OdooError):
            self.admin("res.country", "search", [], {"domain": []})


class TestVersion18(EmulatorTestCase):
    version = "18.0"

    def test_version_specific_methods_and_messages(self):
        self.assertIs(self.service("cx.tower.webhook.log", "has_access", [[], "create"]), False)
        with self.assertRaises(OdooError) as ctx:
            self.service("cx.tower.webhook", "frobnicate", [[]])
        self.assertEqual(str(ctx.exception), "The method 'cx.tower.webhook.frobnicate' does "
                                             "not exist")
        with self.assertRaises(OdooError):   # name_get is gone after 16.0
            self.admin("res.country", "name_get", [[1]])


class TestRealOdoo18Facts(EmulatorTestCase):
    """What a real Odoo 18.0 with cetmix_tower_webhook 18.0.1.0.1 answered
    (shared/reference/real-odoo-18-facts.md)."""

    version = "18.0"

    def test_version_routes(self):
        expected = {"server_version": "18.0", "server_version_info": [18, 0, 0, "final", 0, ""],
                    "server_serie": "18.0", "protocol_version": 1}
        self.assertEqual(self.jsonrpc("common", "version")["result"], expected)
        self.assertEqual(self.xml("common").version(), expected)
        self.assertEqual(self.jsonrpc("common", "version", path="/web/webclient/version_info")
                         ["result"], expected)
        for verb in ("GET", "POST"):
            status, _h, body = http(verb, self.base + "/web/webinfo", {} if verb == "POST"
                                    else None)
            self.assertEqual(status, 404, verb)
            self.assertIn(b"Not Found", body)

    def test_partners_are_read_only_without_contact_creation(self):
        self.assertGreater(self.call(DEMO, "demo", "res.partner", "search_count", [[]]), 0)
        expected = ("You are not allowed to {} 'Contact' (res.partner) records.\n\n"
                    "This operation is allowed for the following groups:\n"
                    "\t- Extra Rights/Contact Creation\n\n"
                    "Contact your administrator to request access if necessary.")
        with self.assertRaises(OdooError) as ctx:
            self.call(DEMO, "demo", "res.partner", "create", [{"name": "Refused"}])
        self.assertEqual((ctx.exception.name, str(ctx.exception)),
                         ("odoo.exceptions.AccessError", expected.format("create")))
        with self.assertRaises(OdooError) as ctx:
            self.call(DEMO, "demo", "res.partner", "write", [[6], {"name": "Renamed"}])
        self.assertEqual(str(ctx.exception), expected.format("modify"))
        self.assertIs(self.call(DEMO, "demo", "res.partner", "check_access_rights",
                                ["create"], {"raise_exception": False}), False)
        # members of "Contact Creation" (the service user, the administrator) may
        created = self.service("res.partner", "create", [{"name": "Allowed"}])
        self.assertIs(self.admin("res.partner", "write", [[created], {"city": "Gent"}]), True)

    def test_access_errors_name_groups_without_spaces(self):
        with self.assertRaises(OdooError) as ctx:
            self.service("ir.config_parameter", "get_param", ["web.base.url"])
        self.assertIn("groups:\n\t- Administration/Settings\n\n", str(ctx.exception))
        with self.assertRaises(OdooError) as ctx:
            self.call(DEMO, "demo", "cx.tower.webhook", "search_read", [[]])
        self.assertEqual(str(ctx.exception),
                         "You are not allowed to access 'Webhook' (cx.tower.webhook) records."
                         "\n\nThis operation is allowed for the following groups:\n"
                         "\t- Cetmix Tower/Root\n\n"
                         "Contact your administrator to request access if necessary.")
        # the groups' own names keep their spaces
        root = self.ref("cetmix_tower_server.group_root")
        self.assertEqual(self.admin("res.groups", "read", [[root], ["full_name"]])[0]
                         ["full_name"], "Cetmix Tower / Root")

    def test_root_group_is_cetmix_tower_server(self):
        self.assertEqual(self.admin("ir.model.data", "check_object_reference",
                                    ["cetmix_tower_server", "group_root"]),
                         ["res.groups", self.ref("cetmix_tower_server.group_root")])
        with self.assertRaises(OdooError) as ctx:
            self.admin("ir.model.data", "check_object_reference",
                       ["cetmix_tower_base", "group_root"])
        self.assertEqual(ctx.exception.name, "builtins.ValueError")
        versions = self.admin("ir.module.module", "search_read",
                              [[["name", "like", "cetmix_tower"], ["state", "=", "installed"]]],
                              {"fields": ["name", "latest_version"]})
        self.assertEqual({row["name"]: row["latest_version"] for row in versions}
                         ["cetmix_tower_webhook"], "18.0.1.0.1")
        self.assertNotIn("cetmix_tower_base", [row["name"] for row in versions])

    def test_partner_has_the_usual_fields(self):
        fields = self.service("res.partner", "fields_get", [], {"attributes": ["type"]})
        for name, kind in (("company_id", "many2one"), ("parent_id", "many2one"),
                           ("child_ids", "one2many"), ("street", "char"), ("city", "char"),
                           ("zip", "char"), ("country_id", "many2one"), ("vat", "char"),
                           ("website", "char"), ("phone", "char"), ("email", "char"),
                           ("type", "selection"), ("is_company", "boolean"),
                           ("commercial_partner_id", "many2one"), ("user_ids", "one2many")):
            self.assertEqual(fields.get(name), {"type": kind}, name)
        row = self.service("res.partner", "read", [[1], ["company_id", "commercial_partner_id"]])
        self.assertEqual(row[0]["company_id"], [1, "YourCompany"])
        self.assertEqual(row[0]["commercial_partner_id"], [1, "YourCompany"])
        contact = self.service("res.partner", "read", [[6], ["commercial_partner_id",
                                                             "display_name"]])[0]
        self.assertEqual((contact["commercial_partner_id"], contact["display_name"]),
                         ([1, "YourCompany"], "YourCompany, Marc Demo"))

    def test_none_anywhere_in_an_xmlrpc_answer_is_a_fault(self):
        import models_tower
        import orm

        @orm.model
        def towerhook_nested_none(self):
            return {"known": "value", "unknown": None}

        models_tower.KeyValue.towerhook_nested_none = towerhook_nested_none
        self.addCleanup(delattr, models_tower.KeyValue, "towerhook_nested_none")
        self.assertEqual(self.admin("cx.tower.key.value", "towerhook_nested_none"),
                         {"known": "value", "unknown": None})
        with self.assertRaises(xmlrpc.client.Fault) as fault:
            self.xml("object").execute_kw(DB, ADMIN, "admin", "cx.tower.key.value",
                                          "towerhook_nested_none", [])
        self.assertEqual(fault.exception.faultCode, 1)
        self.assertIn("TypeError: cannot marshal None unless allow_none is enabled",
                      fault.exception.faultString)

    def test_api_keys_of_non_administrators_expire(self):
        status, _h, body = http("POST", self.control_base + "/api_keys",
                                {"login": "demo", "key": "demo-key-without-expiry"})
        self.assertEqual(status, 400)
        self.assertIn("expiration date", json.loads(body)["error"])
        self.control("POST", "/api_keys", {"login": "demo", "key": "demo-key-expired",
                                           "expires": "2020-01-01 00:00:00"})
        self.control("POST", "/api_keys", {"login": "demo", "key": "demo-key-valid",
                                           "expires": "2999-01-01"})
        self.control("POST", "/api_keys", {"login": "admin", "key": "admin-key-forever"})
        login = lambda user, key: self.jsonrpc("common", "authenticate", DB, user, key, {})[
            "result"]
        self.assertIs(login("demo", "demo-key-expired"), False)
        self.assertEqual(login("demo", "demo-key-valid"), DEMO)
        self.assertEqual(login("admin", "admin-key-forever"), ADMIN)
        # the seeded keys of the service user and demo expire too (a year after seeding)
        self.control("POST", "/clock", {"advance": 400 * 86400})
        self.assertIs(login("towerhook", TOWERHOOK_API_KEY), False)
        self.assertIs(login("demo", DEMO_API_KEY), False)
        self.assertEqual(login("admin", ADMIN_API_KEY), ADMIN)
        with self.assertRaises(OdooError) as ctx:   # an object call with it: AccessDenied
            self.service("res.partner", "search", [[]])
        self.assertEqual(ctx.exception.name, "odoo.exceptions.AccessDenied")

    def test_api_keys_need_no_expiry_before_18(self):
        self.control("POST", "/reset", {"version": "17.0", "fixture": FIXTURE})
        self.control("POST", "/api_keys", {"login": "demo", "key": "demo-key-forever"})
        self.control("POST", "/clock", {"advance": 400 * 86400})
        self.assertEqual(self.jsonrpc("common", "authenticate", DB, "demo", "demo-key-forever",
                                      {})["result"], DEMO)
        self.assertEqual(self.jsonrpc("common", "authenticate", DB, "towerhook",
                                      TOWERHOOK_API_KEY, {})["result"], TOWERHOOK)


class TestJson2(EmulatorTestCase):
    version = "19.0"

    def test_version_and_error_code_zero(self):
        self.assertEqual(self.xml("common").version()["server_version_info"][0], 19)
        reply = self.jsonrpc("object", "execute_kw", DB, ADMIN, "wrong", "res.partner",
                             "search", [[]], {})
        self.assertEqual(reply["error"]["code"], 0)

    def test_web_version_and_context_get(self):
        status, _h, body = http("GET", self.base + "/web/version")
        self.assertEqual((status, json.loads(body)),
                         (200, {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}))
        status, context, _ = self.json2("res.users", "context_get")
        self.assertEqual((status, context["uid"]), (200, TOWERHOOK))

    def test_bearer_auth(self):
        status, body, headers = self.json2("res.partner", "search", {"domain": []}, key="bad")
        self.assertEqual(status, 401)
        self.assertEqual(body["name"], "werkzeug.exceptions.Unauthorized")
        self.assertEqual(body["message"], "Invalid apikey")
        self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
        status, body, _ = self.json2("res.partner", "search", {"domain": []}, key=None)
        self.assertEqual(status, 401)
        status, body, _ = self.json2("res.partner", "search", {"domain": []}, key="towerhook")
        self.assertEqual(status, 401)   # passwords are not API keys

    def test_calls(self):
        status, rows, _ = self.json2("cx.tower.webhook", "search_read", {
            "domain": [["endpoint", "=", "webhook_post"]], "fields": ["authenticator_id"]})
        self.assertEqual(status, 200)
        self.assertEqual(rows[0]["authenticator_id"][1], "Always OK")
        status, ids, _ = self.json2("cx.tower.webhook.authenticator", "create", {
            "vals_list": [{"name": "Second"}]}, headers={"X-Odoo-Database": DB})
        self.assertEqual((status, len(ids)), (200, 1))
        status, result, _ = self.json2("cx.tower.webhook.authenticator", "write", {
            "ids": ids, "vals": {"allowed_ip_addresses": "10.0.0.0/8"}})
        self.assertEqual((status, result), (200, True))
        status, ids, _ = self.json2("cx.tower.server", "get_by_reference", {"reference": "main"})
        self.assertEqual((status, ids), (200, [self.ref("test.server")]))
        status, groups, _ = self.json2("res.users", "read", {"ids": [TOWERHOOK],
                                                              "fields": ["group_ids"]})
        # 19.0 keeps the explicit groups only (no implied Tower User/Manager, Internal User)
        self.assertEqual(sorted(groups[0]["group_ids"]),
                         sorted([self.ref("cetmix_tower_server.group_root"),
                                 self.ref("base.group_partner_manager")]))

    def test_errors(self):
        checks = [
            (("cx.tower.webhook.log", "create", {"vals_list": [{"endpoint": "x"}]}), 403,
             "odoo.exceptions.AccessError"),
            (("x.nope", "search", {"domain": []}), 404, "werkzeug.exceptions.NotFound"),
            (("res.partner", "frobnicate", {}), 404, "werkzeug.exceptions.NotFound"),
            (("res.partner", "_private", {}), 403, "odoo.exceptions.AccessError"),
            (("res.partner", "search", {"ids": [1], "domain": []}), 422,
             "werkzeug.exceptions.UnprocessableEntity"),
            (("res.partner", "search", {"nope": 1}), 422,
             "werkzeug.exceptions.UnprocessableEntity"),
            (("cx.tower.webhook", "create", {"vals_list": [{"name": "x", "endpoint": "-"}]}),
             422, "odoo.exceptions.ValidationError"),
            (("res.partner", "write", {"ids": [9999], "vals": {"name": "x"}}), 404,
             "odoo.exceptions.MissingError"),
            (("res.partner", "search", {"domain": [["nope", "=", 1]]}), 500,
             "builtins.ValueError"),
        ]
        for (model, method, body), status, name in checks:
            got_status, got, _ = self.json2(model, method, body)
            self.assertEqual((got_status, got["name"]), (status, name), (model, method, got))
            self.assertEqual(set(got), {"name", "message", "arguments", "context", "debug"})
        status, _body, _ = self.json2("res.partner", "search", {},
                                      headers={"X-Odoo-Database": "other"})
        self.assertEqual(status, 404)


class TestProcess(unittest.TestCase):
    def test_ready_line_and_exit_on_stdin_eof(self):
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0",
             "--control-port", "0", "--version", "18.0", "--db", "other"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            self.assertRegex(line, r"^READY rpc=\d+ control=\d+$")
            rpc = int(line.split()[1].split("=")[1])
            proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{rpc}/xmlrpc/2/common")
            self.assertEqual(proxy.version()["server_version"], "18.0")
            self.assertEqual(proxy.authenticate("other", "admin", "admin", {}), ADMIN)
            proxy("close")()
            proc.stdin.close()
            self.assertEqual(proc.wait(timeout=10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
