"""Every outcome of the module's request flow that depends on snippet behaviour."""

import json

import towerhook_sandbox as sandbox

from .support import SandboxTestCase, run


class RecordingGuard:
    def __init__(self):
        self.entered = []

    def enter(self, kind):
        self.entered.append(kind)

    def leave(self):
        pass

    def remaining(self):
        return float("inf")


def deny(**fields):
    return "result = %r" % dict(fields, allowed=False)


class AuthenticatorTest(SandboxTestCase):
    def test_allowed_runs_the_webhook(self):
        guard = RecordingGuard()
        answer = run(webhook="result['message'] = 'ran'", context={"guard": guard})
        self.assertWebhookOk(answer, "ran")
        self.assertEqual(guard.entered, ["authenticator", "webhook"])

    def test_default_result_denies(self):
        for code in ("", "   \n", "# only a comment", "x = 1"):
            with self.subTest(code=code):
                guard = RecordingGuard()
                answer = run(authenticator=code, webhook="1 / 0", context={"guard": guard})
                self.assertAuthFailed(answer, 403)
                self.assertEqual(answer[2:], ('"Authentication not allowed"', "Authentication not allowed"))
                self.assertNotIn("webhook", guard.entered)

    def test_denial_message(self):
        answer = run(authenticator=deny(message="Forbidden here"))
        self.assertEqual(answer, ("auth_failed", 403, '"Forbidden here"', "Forbidden here"))

    def test_unrelated_key_keeps_the_default_message(self):
        # Module test test_authentication_failed: custom_message is not message.
        answer = run(authenticator=deny(custom_message="Forbidden"))
        self.assertEqual(answer[3], "Authentication not allowed")

    def test_denial_message_is_str_of_the_value(self):
        self.assertEqual(run(authenticator=deny(message=42))[2:], ('"42"', "42"))
        self.assertEqual(run(authenticator=deny(message=None))[3], "None")
        self.assertEqual(run(authenticator=deny(message=["a"]))[2:], ('"[\'a\']"', "['a']"))

    def test_http_code_honoured_for_error_statuses(self):
        answer = run(authenticator=deny(http_code=418, message="I am a teapot!"))
        self.assertEqual(answer, ("auth_failed", 418, '"I am a teapot!"', "I am a teapot!"))
        for code in (400, 401, 429, 599):
            with self.subTest(code=code):
                self.assertEqual(run(authenticator=deny(http_code=code))[1], code)

    def test_http_code_ignored_otherwise(self):
        for code in (200, 302, 399, 600, "401", 401.0, True, None, -1):
            with self.subTest(code=code):
                self.assertAuthFailed(run(authenticator=deny(http_code=code)), 403)

    def test_allowed_is_truthiness(self):
        for value in ("yes", 1, [0], {"a": 1}):
            with self.subTest(value=value):
                self.assertWebhookOk(run(authenticator="result = {'allowed': %r}" % (value,)))
        for value in ("", 0, [], None, 0.0):
            with self.subTest(value=value):
                self.assertAuthFailed(run(authenticator="result = {'allowed': %r}" % (value,)))

    def test_missing_allowed_key_denies(self):
        self.assertAuthFailed(run(authenticator="result = {'message': 'm'}"), 403, "m")

    def test_code_raises(self):
        answer = run(authenticator="raise Exception('auth fail')")
        self.assertAuthFailed(answer, 403)
        self.assertEqual(answer[3], "Authentication code error: Exception('auth fail')")

    def test_division_by_zero_keeps_its_text(self):
        answer = run(authenticator="1 / 0")
        self.assertEqual(answer[3], "Authentication code error: division by zero")

    def test_user_error_keeps_its_text(self):
        answer = run(authenticator="raise UserError('Bad token')")
        self.assertEqual(answer[3], "Authentication code error: Bad token")

    def test_result_not_a_dict(self):
        for value in ("'allowed'", "True", "None", "[('allowed', True)]"):
            with self.subTest(value=value):
                answer = run(authenticator="result = %s" % value)
                self.assertEqual(
                    answer,
                    (
                        "auth_failed",
                        403,
                        '"Authentication code error: Webhook/Authenticator code error: '
                        'result is not a dict"',
                        "Authentication code error: Webhook/Authenticator code error: "
                        "result is not a dict",
                    ),
                )

    def test_raw_data_is_the_body_bytes(self):
        code = "result = {'allowed': raw_data == b'magic'}"
        self.assertWebhookOk(run(authenticator=code, raw_data=b"magic"))
        self.assertAuthFailed(run(authenticator=code, raw_data=b"not_magic"))

    def test_headers_none(self):
        # Module test test_token_authentication_failure_without_optional_params.
        auth = sandbox.prepare(
            "authenticator",
            "result = {'allowed': headers.get('X-Token') == 'secret123'}",
            {},
        )
        hook = sandbox.prepare("webhook", "", {})
        answer = sandbox.run_call(auth, hook, None, b"", None, {})
        self.assertAuthFailed(answer, 403, "object has no attribute 'get'")

    def test_token_header(self):
        code = "result = {'allowed': headers.get('X-Token') == 'secret123'}"
        self.assertWebhookOk(run(authenticator=code, headers={"X-Token": "secret123"}))
        self.assertAuthFailed(run(authenticator=code, headers={"X-Token": "nope"}))

    def test_payload_is_not_defaulted(self):
        code = "result = {'allowed': payload is None}"
        self.assertWebhookOk(run(authenticator=code, payload=None))
        code = "result = {'allowed': payload == []}"
        self.assertWebhookOk(run(authenticator=code, payload=[]))


class WebhookTest(SandboxTestCase):
    def test_empty_code_succeeds_with_ok(self):
        for code in ("", "# nothing", "x = 1"):
            with self.subTest(code=code):
                self.assertEqual(run(webhook=code), ("ok", 200, '"OK"', "OK"))

    def test_message(self):
        answer = run(webhook="result = {'exit_code': 0, 'message': 'POST ok'}")
        self.assertEqual(answer, ("ok", 200, '"POST ok"', "POST ok"))

    def test_falsy_message_is_ok(self):
        for message in ("''", "None", "0", "[]", "{}"):
            with self.subTest(message=message):
                answer = run(webhook="result = {'exit_code': 0, 'message': %s}" % message)
                self.assertEqual(answer, ("ok", 200, '"OK"', "OK"))

    def test_non_string_message_keeps_its_json_type(self):
        answer = run(webhook="result = {'exit_code': 0, 'message': {'n': [1, 2.5, None, True]}}")
        self.assertEqual(answer[:2], ("ok", 200))
        self.assertEqual(json.loads(answer[2]), {"n": [1, 2.5, None, True]})
        self.assertEqual(answer[3], "{'n': [1, 2.5, None, True]}")
        self.assertEqual(run(webhook="result['message'] = 42")[2:], ("42", "42"))

    def test_non_serialisable_message_is_answered_as_text(self):
        answer = run(webhook="result['message'] = {1, 2}")
        self.assertEqual(answer, ("ok", 200, '"{1, 2}"', "{1, 2}"))

    def test_exit_code_zero_in_any_numeric_form(self):
        for value in ("0", "0.0", "False", "-0.0"):
            with self.subTest(value=value):
                answer = run(webhook="result = {'exit_code': %s, 'message': 'fine'}" % value)
                self.assertEqual(answer, ("ok", 200, '"fine"', "fine"))

    def test_non_zero_exit_code(self):
        answer = run(webhook="result = {'exit_code': 42, 'message': 'Error occurred'}")
        self.assertEqual(answer, ("code_failed", 500, '"Error occurred"', "Error occurred"))
        for value in ("1", "-1", "'0'", "True", "None", "[0]"):
            with self.subTest(value=value):
                self.assertWebhookFailed(
                    run(webhook="result = {'exit_code': %s, 'message': 'm'}" % value), "m"
                )

    def test_failure_message_is_str_of_the_value(self):
        answer = run(webhook="result = {'exit_code': 1, 'message': None}")
        self.assertEqual(answer, ("code_failed", 500, '"None"', "None"))
        answer = run(webhook="result = {'exit_code': 1, 'message': ['x']}")
        self.assertEqual(answer[2:], ('"[\'x\']"', "['x']"))

    def test_missing_exit_code_fails(self):
        answer = run(webhook="result = {'message': 'no exit code'}")
        self.assertEqual(answer, ("code_failed", 500, '"no exit code"', "no exit code"))
        answer = run(webhook="result = {}")
        self.assertEqual(answer, ("code_failed", 500, '"None"', "None"))

    def test_code_raises(self):
        answer = run(webhook="raise Exception('Some error!')")
        self.assertEqual(
            answer,
            (
                "code_failed",
                500,
                '"Webhook code execution error: Exception(\'Some error!\')"',
                "Webhook code execution error: Exception('Some error!')",
            ),
        )

    def test_error_texts(self):
        cases = {
            "1 / 0": "division by zero",
            "raise UserError('Nope')": "Nope",
            "{}['k']": "KeyError('k')",
            "int('x')": "ValueError(\"invalid literal for int() with base 10: 'x'\")",
            "undefined_name": "NameError(\"name 'undefined_name' is not defined\")",
            "payload.nothing": "AttributeError(\"'dict' object has no attribute 'nothing'\")",
        }
        for code, text in cases.items():
            with self.subTest(code=code):
                answer = run(webhook=code)
                self.assertEqual(answer[3], "Webhook code execution error: " + text)
                self.assertEqual(json.loads(answer[2]), answer[3])

    def test_result_not_a_dict(self):
        answer = run(webhook="result = 'oops'")
        self.assertEqual(
            answer[3],
            "Webhook code execution error: Webhook/Authenticator code error: result is not a dict",
        )

    def test_payload(self):
        code = "result = {'exit_code': 0, 'message': str(payload.get('key', 'none'))}"
        self.assertWebhookOk(run(webhook=code, payload={"key": "value123"}), "value123")

    def test_payload_or_empty_dict(self):
        for payload in (None, [], "", 0, {}):
            with self.subTest(payload=payload):
                answer = run(webhook="result['message'] = repr(payload)", payload=payload)
                self.assertWebhookOk(answer, "{}")
        answer = run(webhook="result['message'] = repr(payload)", payload=[1])
        self.assertWebhookOk(answer, "[1]")

    def test_names_of_the_webhook_context(self):
        code = (
            "x = [headers, payload, result, uid, user, env, tower, tower_servers,"
            " tower_commands, tower_plans, time, datetime, dateutil, timezone, requests,"
            " json, float_compare, UserError, hashlib, hmac, tldextract, dns]"
        )
        self.assertWebhookOk(run(webhook=code))
        self.assertWebhookOk(run(authenticator="x = raw_data\n" + code + "\nresult['allowed'] = 1"))
        for name in ("raw_data", "server", "custom_values"):
            with self.subTest(name=name):
                self.assertWebhookFailed(
                    run(webhook="x = %s" % name), "name %r is not defined" % name
                )

    def test_result_can_be_mutated_or_rebound(self):
        self.assertWebhookOk(run(webhook="result['message'] = 'mutated'"), "mutated")
        self.assertWebhookOk(
            run(webhook="result = dict(exit_code=0, message='rebound')"), "rebound"
        )

    def test_calls_do_not_share_globals(self):
        auth = sandbox.prepare("authenticator", "result = {'allowed': True}", {})
        first = sandbox.prepare("webhook", "leftover = 1", {})
        second = sandbox.prepare("webhook", "result['message'] = str(leftover)", {})
        sandbox.run_call(auth, first, {}, b"", {}, {})
        answer = sandbox.run_call(auth, second, {}, b"", {}, {})
        self.assertWebhookFailed(answer, "name 'leftover' is not defined")


class OdooObjectsTest(SandboxTestCase):
    def test_placeholders_explain(self):
        for code, name in (
            ("env['res.partner'].search([])", "env"),
            ("x = user.login", "user"),
            ("x = uid + 1", "uid"),
            ("x = str(uid)", "uid"),
            ("tower.server_run_command()", "tower"),
            ("tower_servers.get_by_reference('s')", "tower_servers"),
            ("x = len(tower_commands)", "tower_commands"),
            ("x = tower_plans == 1", "tower_plans"),
        ):
            with self.subTest(code=code):
                answer = run(webhook=code)
                self.assertEqual(
                    answer[3],
                    "Webhook code execution error: %s is not available: towerhook runs "
                    "this webhook without an Odoo connection (source 'yaml')" % name,
                )

    def test_placeholder_in_the_message(self):
        answer = run(webhook="result['message'] = [env]")
        self.assertWebhookFailed(answer, "env is not available")

    def test_source_named(self):
        answer = run(webhook="env['x']", context={"source": "odoo"})
        self.assertIn("(source 'odoo')", answer[3])

    def test_context_provides_odoo_objects(self):
        odoo = {"uid": 7, "env": {"res.partner": "partners"}, "other": "ignored"}
        code = "result['message'] = '%s %s' % (uid, env['res.partner'])"
        self.assertWebhookOk(run(webhook=code, context={"odoo": odoo}), "7 partners")
        self.assertWebhookFailed(
            run(webhook="x = other", context={"odoo": odoo}), "name 'other' is not defined"
        )
        self.assertWebhookFailed(
            run(webhook="x = user.login", context={"odoo": odoo}), "user is not available"
        )

    def test_context_provides_odoo_objects_per_kind(self):
        def odoo(kind):
            return {"uid": 1 if kind == "authenticator" else 6}

        answer = run(
            authenticator="result = {'allowed': uid == 1}",
            webhook="result['message'] = str(uid)",
            context={"odoo": odoo},
        )
        self.assertWebhookOk(answer, "6")
