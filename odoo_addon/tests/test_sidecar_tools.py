"""Tests of the companion addon's logic that needs no Odoo (tools.py).

    cd /work/main && python3 -S -m unittest discover -s odoo_addon/tests -t odoo_addon

(pytest collects the same tests.) The addon's Odoo models only glue these functions to
the ORM; they are not run here (no Odoo in CI).
"""
import ast
import json
import os
import unittest
import xmlrpc.client

from . import sidecar_tools

tools = sidecar_tools.load()
ADDON_DIR = os.path.dirname(sidecar_tools.PATH)


class TestSecretExtraction(unittest.TestCase):
    def test_key_strings_like_the_module(self):
        code = ("a = #!cxtower.secret.ONE!#\n"
                "b = #!cxtower.secret.ONE!# + #!cxtower.secret.TWO !#\n"
                "c = '#!cxtower'  # no terminator after this one... !# closes it\n")
        self.assertEqual(tools.extract_key_strings(code), [
            "#!cxtower.secret.ONE!#",
            "#!cxtower.secret.TWO !#",
            "#!cxtower'  # no terminator after this one... !#",
        ])
        # a prefix with no terminator anywhere after it is skipped
        self.assertEqual(tools.extract_key_strings("x = #!cxtower.secret.OPEN"), [])
        self.assertEqual(tools.extract_key_strings(""), [])
        self.assertEqual(tools.extract_key_strings(None), [])

    def test_key_parts(self):
        self.assertEqual(tools.extract_key_parts("#!cxtower.secret.TOKEN!#"),
                         ("secret", "TOKEN"))
        # spaces are deleted anywhere, other whitespace is not
        self.assertEqual(tools.extract_key_parts("#!cxtower. secret .TOKEN  !#"),
                         ("secret", "TOKEN"))
        self.assertEqual(tools.extract_key_parts("#!cxtower.secret.TOKEN\n!#"),
                         ("secret", "TOKEN\n"))
        self.assertIsNone(tools.extract_key_parts("#!cxtower.secret.a.b!#"))
        self.assertIsNone(tools.extract_key_parts("#!cxtower.secret!#"))
        self.assertEqual(tools.extract_key_parts("#!cxtower.password.X!#"), ("password", "X"))

    def test_secret_references(self):
        webhook = ("token = #!cxtower.secret.api_token!#\n"
                   "other = #!cxtower.password.not_a_secret!#\n"
                   "bad = #!cxtower.secret.a.b!#\n"
                   "empty = #!cxtower.secret.!#\n"
                   "again = #!cxtower.secret.api_token !#\n"
                   "Case = #!cxtower.secret.API_TOKEN!#\n")
        authenticator = "ok = headers.get('X') == #!cxtower.secret.hmac_key!#"
        self.assertEqual(tools.extract_secret_references(webhook), ["api_token", "API_TOKEN"])
        self.assertEqual(tools.secret_references([webhook, False, None, authenticator,
                                                  "#!cxtower.secret.hmac_key!#"]),
                         ["api_token", "API_TOKEN", "hmac_key"])
        self.assertEqual(tools.secret_references([]), [])

    def test_global_value_choice(self):
        values = [(7, False, "server"), (False, 3, "partner"), (7, 3, "both"),
                  (False, False, "global"), (None, None, "second global")]
        self.assertEqual(tools.choose_global_value(values), "global")
        self.assertIsNone(tools.choose_global_value([(7, False, "server only")]))
        self.assertIsNone(tools.choose_global_value([]))

    def test_select_secret_values(self):
        store = {"known": "s3cr3t", "empty_row": False, "blank": ""}
        result = tools.select_secret_values(["known", "unknown", "empty_row", "blank"],
                                            store.get)
        # no value: False, never None; an empty value stays ""
        self.assertEqual(result, {"known": "s3cr3t", "unknown": False, "empty_row": False,
                                  "blank": ""})
        self.assertEqual(tools.select_secret_values([], store.get), {})
        # the answer survives both marshallings Odoo uses: JSON, and XML-RPC without
        # allow_none (where a None would be a fault)
        self.assertEqual(json.loads(json.dumps(result)), result)
        marshalled = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
        self.assertEqual(xmlrpc.client.loads(marshalled)[0][0], result)
        with self.assertRaises(TypeError):
            xmlrpc.client.dumps(({"unknown": None},), methodresponse=True, allow_none=False)

    def test_normalize_ids(self):
        self.assertEqual(tools.normalize_ids([3, 1, 3], "webhook_ids"), [3, 1])
        self.assertEqual(tools.normalize_ids((2,), "webhook_ids"), [2])
        self.assertEqual(tools.normalize_ids(5, "webhook_ids"), [5])
        self.assertEqual(tools.normalize_ids(None, "webhook_ids"), [])
        self.assertEqual(tools.normalize_ids(False, "webhook_ids"), [])
        for bad in ("1", [True], [0], [-1], ["1"], [1.0], {"a": 1}, [2 ** 31]):
            with self.assertRaises(tools.ValuesError) as ctx:
                tools.normalize_ids(bad, "authenticator_ids")
            self.assertIn("authenticator_ids", str(ctx.exception))
            self.assertEqual(ctx.exception.fields, ["authenticator_ids"])


def full_record(**overrides):
    vals = {
        "webhook_id": 1, "endpoint": "github-push", "authenticator_id": 2,
        "request_method": "post", "request_headers": '{"X-Test": "1"}',
        "request_payload": '{"a": 1}', "authentication_status": "success",
        "code_status": "success", "http_status": 200, "result_message": "queued",
        "error_message": False, "user_id": 4, "ip_address": "203.0.113.7",
        "country_id": 9, "towerhook_call_time": "2026-03-01 10:20:30",
        "towerhook_uid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    }
    vals.update(overrides)
    return vals


class TestLogValidation(unittest.TestCase):
    def refused(self, vals_list):
        with self.assertRaises(tools.ValuesError) as ctx:
            tools.validate_log_values(vals_list)
        return ctx.exception

    def test_every_field_accepted(self):
        clean = tools.validate_log_values([full_record()])
        self.assertEqual(clean, [full_record()])
        self.assertEqual(set(tools.LOG_FIELDS), set(full_record()))

    def test_empty_batch_and_partial_records(self):
        self.assertEqual(tools.validate_log_values([]), [])
        # absent keys stay absent (the model's defaults apply); empty values are False
        clean = tools.validate_log_values([{"endpoint": "x", "http_status": None,
                                            "webhook_id": None, "towerhook_uid": False}])
        self.assertEqual(clean, [{"endpoint": "x", "http_status": False, "webhook_id": False,
                                  "towerhook_uid": False}])

    def test_not_a_list_or_not_dicts(self):
        error = self.refused({"endpoint": "x"})
        self.assertIn("expects a list of dicts", str(error))
        error = self.refused([full_record(), "nope"])
        self.assertIn("record 1: must be a dict", str(error))

    def test_unknown_keys_are_named(self):
        error = self.refused([full_record(), full_record(create_date="2026-01-01 00:00:00",
                                                         zzz=1, display_name="x")])
        text = str(error)
        self.assertIn("record 1: unknown field(s) 'create_date', 'display_name', 'zzz'", text)
        self.assertIn("nothing was created", text)

    def test_types_and_selections(self):
        cases = [
            ("request_method", "put", "must be one of 'post', 'get'"),
            ("request_method", False, "must be one of"),
            ("request_method", "POST", "must be one of"),
            ("authentication_status", "ok", "'success', 'failed', 'not_required'"),
            ("code_status", "done", "'success', 'failed', 'skipped'"),
            ("http_status", "200", "must be an integer from 100 to 599"),
            ("http_status", 200.0, "must be an integer"),
            ("http_status", True, "must be an integer"),
            ("http_status", 42, "must be an integer"),
            ("http_status", 600, "must be an integer"),
            ("webhook_id", "1", "must be a record id"),
            ("webhook_id", [1, "Hook"], "must be a record id"),
            ("authenticator_id", True, "must be a record id"),
            ("user_id", 0, "must be a record id"),
            ("country_id", -3, "must be a record id"),
            ("webhook_id", 2 ** 31, "must be a record id"),
            ("endpoint", 12, "must be a string or false"),
            ("request_payload", {"a": 1}, "must be a string or false"),
            ("error_message", "bad\x00byte", "NUL"),
            ("ip_address", ["1.2.3.4"], "must be a string"),
            ("towerhook_call_time", "yesterday", "must be a UTC date and time"),
            ("towerhook_call_time", "2026-02-30 10:00:00", "must be a UTC date and time"),
            ("towerhook_call_time", "2026-03-01 10:00:00+02:00", "must be a UTC date"),
            ("towerhook_call_time", 1767225600, "must be a UTC date"),
            ("towerhook_uid", "", "must be 1 to 255 printable characters"),
            ("towerhook_uid", "a" * 256, "must be 1 to 255"),
            ("towerhook_uid", "line\nbreak", "printable"),
            ("towerhook_uid", 12345, "must be a string"),
        ]
        for field, value, expected in cases:
            with self.subTest(field=field, value=value):
                error = self.refused([full_record(**{field: value})])
                self.assertIn("record 0: field '%s'" % field, str(error))
                self.assertIn(expected, str(error))
                self.assertEqual(error.fields, [field])

    def test_every_problem_of_the_batch_is_named(self):
        error = self.refused([full_record(http_status="x"), full_record(),
                              full_record(code_status="x", webhook_id="y")])
        self.assertEqual([(index, field) for index, field, _text in error.problems],
                         [(0, "http_status"), (2, "webhook_id"), (2, "code_status")])

    def test_call_time_normalized(self):
        for given in ("2026-03-01 10:20:30", "2026-03-01T10:20:30", "2026-03-01 10:20:30.123456",
                      "2026-03-01T10:20:30Z", "2026-03-01T10:20:30.5+00:00",
                      " 2026-03-01 10:20:30 "):
            with self.subTest(given=given):
                clean = tools.validate_log_values([{"towerhook_call_time": given}])
                self.assertEqual(clean[0]["towerhook_call_time"], "2026-03-01 10:20:30")

    def test_references_checked(self):
        clean = tools.validate_log_values([
            full_record(webhook_id=1), full_record(webhook_id=99, user_id=4),
            full_record(webhook_id=99, country_id=False), full_record(user_id=77)])
        existing = {"cx.tower.webhook": {1}, "cx.tower.webhook.authenticator": {2},
                    "res.users": {4}, "res.country": {9}}
        asked = []

        def existing_ids(model, ids):
            asked.append((model, list(ids)))
            return [i for i in ids if i in existing[model]]

        with self.assertRaises(tools.ValuesError) as ctx:
            tools.check_references(clean, existing_ids)
        text = str(ctx.exception)
        self.assertIn("record 1: field 'webhook_id' refers to cx.tower.webhook id 99, which "
                      "does not exist", text)
        self.assertIn("record 2: field 'webhook_id' refers to cx.tower.webhook id 99", text)
        self.assertIn("record 3: field 'user_id' refers to res.users id 77", text)
        self.assertEqual(ctx.exception.fields, ["webhook_id", "webhook_id", "user_id"])
        # one existence query per comodel, with distinct ids
        self.assertEqual(asked, [("cx.tower.webhook", [1, 99]),
                                 ("cx.tower.webhook.authenticator", [2]),
                                 ("res.users", [4, 77]), ("res.country", [9])])
        # all present: no error
        tools.check_references([full_record()], lambda model, ids: ids)


class TestIdempotency(unittest.TestCase):
    def test_existing_keys_are_skipped(self):
        batch = [{"towerhook_uid": "a"}, {"towerhook_uid": "b"}, {"endpoint": "no key"},
                 {"towerhook_uid": "a"}, {"towerhook_uid": "c"}]
        self.assertEqual(tools.batch_uids(batch), ["a", "b", "c"])
        to_create, slots = tools.plan_batch(batch, {"b": 41})
        self.assertEqual(to_create, [{"towerhook_uid": "a"}, {"endpoint": "no key"},
                                     {"towerhook_uid": "c"}])
        self.assertEqual(slots, [("new", 0), ("existing", 41), ("new", 1), ("new", 0),
                                 ("new", 2)])
        self.assertEqual(tools.assemble_ids(slots, [100, 101, 102]), [100, 41, 101, 100, 102])

    def test_everything_known(self):
        to_create, slots = tools.plan_batch([{"towerhook_uid": "x"}], {"x": 7})
        self.assertEqual((to_create, tools.assemble_ids(slots, [])), ([], [7]))


class TestNotification(unittest.TestCase):
    def test_request(self):
        url, headers, body = tools.notify_request(
            "http://towerhook:8080/admin/reload", " t0ken ", ["cx.tower.key", "cx.tower.webhook",
                                                              "cx.tower.key"], "prod")
        self.assertEqual(url, "http://towerhook:8080/admin/reload")
        self.assertEqual(headers, {"Content-Type": "application/json",
                                   "Authorization": "Bearer t0ken"})
        self.assertEqual(json.loads(body), {"source": "cetmix_tower_webhook_sidecar",
                                            "models": ["cx.tower.key", "cx.tower.webhook"],
                                            "database": "prod"})
        _url, headers, _body = tools.notify_request("https://h/admin/reload", False, [])
        self.assertNotIn("Authorization", headers)
        for bad in (False, None, "", "ftp://h/x", "towerhook:8080/admin/reload", "http://"):
            self.assertIsNone(tools.notify_request(bad, "t", []), bad)

    def test_timeout(self):
        self.assertEqual(tools.notify_timeout(False), 2.0)
        self.assertEqual(tools.notify_timeout("0.5"), 0.5)
        self.assertEqual(tools.notify_timeout("60"), 10.0)
        self.assertEqual(tools.notify_timeout("-1"), 2.0)
        self.assertEqual(tools.notify_timeout("nan"), 2.0)
        self.assertEqual(tools.notify_timeout("abc"), 2.0)


class TestAddonFiles(unittest.TestCase):
    """Static checks of the addon's files (what can be checked without Odoo)."""

    def test_manifest(self):
        with open(os.path.join(ADDON_DIR, "__manifest__.py"), encoding="utf-8") as handle:
            manifest = ast.literal_eval(handle.read())
        self.assertEqual(manifest["name"], "Cetmix Tower Webhook Sidecar")
        self.assertEqual(manifest["depends"], ["cetmix_tower_webhook"])
        self.assertEqual(manifest["license"], "AGPL-3")
        # no series prefix: Odoo prepends 16.0 / 17.0 / 18.0 (odoo.modules.module.adapt_version)
        self.assertRegex(manifest["version"], r"^\d+\.\d+\.\d+$")
        for path in manifest["data"]:
            self.assertTrue(os.path.isfile(os.path.join(ADDON_DIR, path)), path)

    def test_xml_files_parse_and_group_xmlid(self):
        import xml.etree.ElementTree as ET
        group = None
        for folder in ("security", "views"):
            for name in os.listdir(os.path.join(ADDON_DIR, folder)):
                if name.endswith(".xml"):
                    root = ET.parse(os.path.join(ADDON_DIR, folder, name)).getroot()
                    for record in root.iter("record"):
                        if record.get("model") == "res.groups":
                            group = record
        self.assertIsNotNone(group)
        self.assertEqual(tools.ADDON + "." + group.get("id"), tools.GROUP_XMLID)
        self.assertEqual(group.find("field[@name='name']").text, "Webhook Sidecar")

    def test_no_access_rule_grants_log_create(self):
        csv = os.path.join(ADDON_DIR, "security", "ir.model.access.csv")
        if os.path.exists(csv):
            with open(csv, encoding="utf-8") as handle:
                for line in handle.read().splitlines()[1:]:
                    parts = line.split(",")
                    if "model_cx_tower_webhook_log" in parts[2]:
                        self.assertEqual(parts[6], "0", line)

    def test_tools_has_no_odoo_import(self):
        with open(sidecar_tools.PATH, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        self.assertNotIn("odoo", imported)
        self.assertLessEqual(imported, {"datetime", "json", "re"})

    def test_python_files_compile(self):
        for folder, _dirs, files in os.walk(ADDON_DIR):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8") as handle:
                        compile(handle.read(), path, "exec")


class TestDeliverySettings(unittest.TestCase):
    """The towerhook_* fields of cx.tower.webhook: the same rules as towerhook's
    (src/delivery/policy.rs), so that a value Odoo stores is one towerhook serves."""

    def test_dedup_keys(self):
        for good in ("", None, "header:X-GitHub-Delivery", "header:webhook-id", "json:id",
                     "json:event.id"):
            self.assertIsNone(tools.dedup_key_problem(good), good)
        for bad in ("id", "header:", "header:X_Id", "json:", "json:a..b", "query:x"):
            self.assertIsNotNone(tools.dedup_key_problem(bad), bad)

    def test_defaults_pass_and_bounds_are_named(self):
        defaults = {
            "towerhook_dedup_key": False, "towerhook_dedup_window_secs": 86400,
            "towerhook_max_body_bytes": 0, "towerhook_max_concurrent_calls": 0,
            "towerhook_rate_per_minute": 0, "towerhook_mode": "sync", "towerhook_retries": 5,
            "towerhook_async_status": 202, "towerhook_async_message": "Accepted",
        }
        self.assertEqual(sorted(defaults), sorted(tools.DELIVERY_FIELDS))
        self.assertEqual(tools.delivery_problems(defaults), [])
        # Odoo's empty integer: the default
        self.assertEqual(tools.delivery_problems(
            dict(defaults, towerhook_dedup_window_secs=0, towerhook_async_status=0)), [])
        problems = tools.delivery_problems(dict(
            defaults, towerhook_dedup_key="id", towerhook_retries=-1,
            towerhook_async_status=404, towerhook_mode="later",
            towerhook_rate_per_minute=True, towerhook_async_message="x" * 5000))
        text = "\n".join(problems)
        for expected in ("towerhook_dedup_key: must be header:", "towerhook_retries: must be "
                         "between 0 and 100, not -1", "towerhook_async_status: must be between "
                         "200 and 299, not 404", "towerhook_mode: must be sync or async",
                         "towerhook_rate_per_minute: must be between", "towerhook_async_message"):
            self.assertIn(expected, text)

    def test_the_form_shows_every_field_on_a_towerhook_tab(self):
        import xml.etree.ElementTree as ET
        root = ET.parse(os.path.join(ADDON_DIR, "views", "cx_tower_webhook_views.xml")).getroot()
        record = root.find("record")
        self.assertEqual(record.find("field[@name='inherit_id']").get("ref"),
                         "cetmix_tower_webhook.cx_tower_webhook_view_form")
        page = record.find(".//page[@name='towerhook']")
        self.assertEqual(page.get("string"), "towerhook")
        shown = [field.get("name") for field in page.iter("field")]
        self.assertEqual(shown, list(tools.DELIVERY_FIELDS))
        # 17.0 refuses attrs; 16.0 does not know invisible expressions: neither is used
        for element in page.iter():
            self.assertNotIn("attrs", element.attrib)
            self.assertNotIn("invisible", element.attrib)


if __name__ == "__main__":
    unittest.main()
