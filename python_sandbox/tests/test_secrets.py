"""Secret placeholders: found as the module finds them, inlined safely, masked everywhere."""

import json

import towerhook_sandbox as sandbox
from towerhook_sandbox import secrets

from .support import SandboxTestCase, run


class PlaceholderSyntaxTest(SandboxTestCase):
    def test_extraction(self):
        code = (
            "a = #!cxtower.secret.ONE!#\n"
            "b = #!cxtower.secret.TWO !#\n"
            "c = #!cxtower.secret.ONE!#\n"
            "d = #!cxtower.key.SSH!#\n"
        )
        self.assertEqual(
            secrets.placeholders(code),
            [
                "#!cxtower.secret.ONE!#",
                "#!cxtower.secret.TWO !#",
                "#!cxtower.key.SSH!#",
            ],
        )
        self.assertEqual(sandbox.secret_references(code), ["ONE", "TWO"])

    def test_reference_rules(self):
        self.assertEqual(secrets.reference("#!cxtower.secret.A_1!#"), "A_1")
        self.assertEqual(secrets.reference("#!cxtower.secret.A   !#"), "A")
        self.assertEqual(secrets.reference("#!cxtower . secret . A!#"), "A")
        self.assertIsNone(secrets.reference("#!cxtower.key.A!#"))
        self.assertIsNone(secrets.reference("#!cxtower.secret.A.B!#"))
        self.assertIsNone(secrets.reference("#!cxtower.secret!#"))
        self.assertIsNone(secrets.reference("#!cxtower.secret.!#"))

    def test_unterminated_prefix_is_skipped(self):
        code = "x = 1  # #!cxtower unterminated\ny = 2"
        self.assertEqual(secrets.placeholders(code), [])
        code = "# #!cxtower.secret.A\ny = #!cxtower.secret.B!#"
        # The first prefix runs to the next terminator, as in the module.
        self.assertEqual(
            secrets.placeholders(code), ["#!cxtower.secret.A\ny = #!cxtower.secret.B!#"]
        )

    def test_short_code_not_scanned(self):
        self.assertEqual(secrets.placeholders("#!cxtower.a!#"), [])
        self.assertEqual(len("#!cxtower.a!#"), 13)


class InliningTest(SandboxTestCase):
    def message_of(self, code, values):
        answer = run(webhook=code, secrets=values)
        self.assertEqual(answer[:2], ("ok", 200), answer)
        return answer

    def test_value_is_a_string_whatever_it_contains(self):
        hostile = '"); raise Exception("injected"); x = ("\\\n\'\'\'\r\x00'
        code = (
            "v = #!cxtower.secret.S!#\n"
            "result['message'] = 'len %d ok %s' % (len(v), v == payload['expected'])"
        )
        answer = run(webhook=code, secrets={"S": hostile}, payload={"expected": hostile})
        self.assertWebhookOk(answer, "len %d ok True" % len(hostile))

    def test_unknown_secret_is_none(self):
        code = "result['message'] = repr(#!cxtower.secret.MISSING!#)"
        self.assertWebhookOk(run(webhook=code, secrets={}), "None")
        self.assertWebhookOk(run(webhook=code, secrets={"MISSING": None}), "None")

    def test_other_candidates_are_none(self):
        code = "result['message'] = repr(#!cxtower.key.SSH!#)"
        self.assertWebhookOk(run(webhook=code, secrets={"SSH": "x"}), "None")

    def test_empty_value(self):
        code = "result['message'] = 'empty %r' % (#!cxtower.secret.E!#,)"
        self.assertWebhookOk(run(webhook=code, secrets={"E": ""}), "empty ''")

    def test_inside_a_string_literal_the_value_is_quoted(self):
        # What the module's pasting gives inside a string: "value" (here masked).
        code = "body = '{\"token\": #!cxtower.secret.T!#}'\nresult = {'allowed': json.loads(body)['token'] == 'abc'}"
        self.assertWebhookOk(run(authenticator=code, secrets={"T": "abc"}))
        code = "body = 'unknown: #!cxtower.secret.U!#'\nresult = {'allowed': body == 'unknown: None'}"
        self.assertWebhookOk(run(authenticator=code, secrets={}))

    def test_inside_a_literal_a_hostile_value_stays_inside(self):
        code = "body = 'x #!cxtower.secret.T!# y'\nresult = {'allowed': body == payload['b']}"
        value = "' + str(1/0) + '"
        answer = run(authenticator=code, secrets={"T": value}, payload={"b": 'x "%s" y' % value})
        self.assertWebhookOk(answer)

    def test_inside_fstring_braces(self):
        code = "h = f'Bearer {#!cxtower.secret.T!#}'\nresult = {'allowed': h == 'Bearer abc'}"
        self.assertWebhookOk(run(authenticator=code, secrets={"T": "abc"}))

    def test_inside_bytes_literal(self):
        code = "b = b'k=#!cxtower.secret.T!#'\nresult = {'allowed': b == b'k=\"abc\"'}"
        self.assertWebhookOk(run(authenticator=code, secrets={"T": "abc"}))

    def test_in_a_comment(self):
        code = "# uses #!cxtower.secret.T!#\nresult = {'allowed': True}"
        self.assertWebhookOk(run(authenticator=code, secrets={"T": "abc"}))

    def test_misplaced_placeholders_are_refused(self):
        for code in (
            "#!cxtower.secret.T!# = 1",
            "x#!cxtower.secret.T!# = 1",
            "payload.get#!cxtower.secret.T!#",
            "def f(#!cxtower.secret.T!#):\n    pass",
        ):
            with self.subTest(code=code):
                answer = run(webhook=code, secrets={"T": "abc"})
                self.assertWebhookFailed(
                    answer, "secret placeholder #!cxtower.secret.T!# can only be used as a value"
                )
                self.assertNotIn("abc", answer[2] + answer[3])

    def test_syntax_error_does_not_show_the_value(self):
        answer = run(webhook="x = #!cxtower.secret.T!# +", secrets={"T": "abc"})
        self.assertWebhookFailed(answer, "invalid syntax")
        self.assertNotIn("abc", answer[3])


class MaskingTest(SandboxTestCase):
    VALUE = 's3cr"et\\42'

    def call(self, code, **kwargs):
        return run(webhook=code, secrets={"S": self.VALUE}, **kwargs)

    def assertMasked(self, answer):
        for form in secrets.needles([self.VALUE]):
            self.assertNotIn(form, answer[2])
            self.assertNotIn(form, answer[3])
        self.assertIn("*****", answer[3])

    def test_success_message(self):
        answer = self.call("result['message'] = 'token is ' + #!cxtower.secret.S!#")
        self.assertMasked(answer)
        self.assertEqual(answer[3], "token is *****")
        self.assertEqual(answer[2], '"token is *****"')

    def test_structured_message(self):
        answer = self.call(
            "s = #!cxtower.secret.S!#\n"
            "result['message'] = {'k': s, s: [s, 'x' + s], 'n': 1}"
        )
        self.assertMasked(answer)
        self.assertEqual(
            json.loads(answer[2]),
            {"k": "*****", "*****": ["*****", "x*****"], "n": 1},
        )

    def test_a_secret_used_as_a_number_is_masked_in_json_and_text(self):
        for code, value in [
            ("result['message'] = int(#!cxtower.secret.PIN!#)", "0042"),
            ("result['message'] = {'pin': float(#!cxtower.secret.PIN!#)}", "1234.5"),
            ("result['message'] = [int(#!cxtower.secret.PIN!#) * 1]", "98765"),
        ]:
            answer = run(webhook=code, secrets={"PIN": value})
            self.assertEqual(answer[0], "ok", code)
            self.assertNotIn(str(int(float(value))), answer[2], code)
            self.assertNotIn(str(int(float(value))), answer[3], code)
            self.assertIn("*****", answer[2], code)
            self.assertIn("*****", answer[3], code)
        # A number that is not the secret stays a number.
        answer = run(
            webhook="result['message'] = {'n': 7, 'pin': #!cxtower.secret.PIN!# == '1'}",
            secrets={"PIN": "0042"},
        )
        self.assertEqual(json.loads(answer[2]), {"n": 7, "pin": False})

    def test_failure_message(self):
        answer = self.call(
            "result = {'exit_code': 1, 'message': 'bad ' + #!cxtower.secret.S!#}"
        )
        self.assertMasked(answer)
        self.assertEqual(answer[3], "bad *****")

    def test_exception_texts(self):
        for code in (
            "raise Exception(#!cxtower.secret.S!#)",
            "raise UserError('x' + #!cxtower.secret.S!#)",
            "int(#!cxtower.secret.S!#)",
            "payload[#!cxtower.secret.S!#]",
            "x = {'k': #!cxtower.secret.S!#}\nraise Exception(x)",
            "raise Exception(#!cxtower.secret.S!#.encode())",
        ):
            with self.subTest(code=code):
                answer = self.call(code, payload={"a": 1})
                self.assertEqual(answer[:2], ("code_failed", 500))
                self.assertMasked(answer)

    def test_denial_message(self):
        answer = run(
            authenticator="result = {'allowed': False, 'message': 'want ' + #!cxtower.secret.S!#}",
            secrets={"S": self.VALUE},
        )
        self.assertEqual(answer, ("auth_failed", 403, '"want *****"', "want *****"))

    def test_non_ascii_value(self):
        answer = run(
            webhook="result['message'] = [#!cxtower.secret.S!#, 'ok']",
            secrets={"S": "pässwörd"},
        )
        self.assertEqual(answer[2:], ('["*****", "ok"]', "['*****', 'ok']"))

    def test_unknown_and_empty_secrets_mask_nothing(self):
        answer = run(
            webhook="result['message'] = 'a %r %r' % (#!cxtower.secret.A!#, #!cxtower.secret.B!#)",
            secrets={"B": ""},
        )
        self.assertWebhookOk(answer, "a None ''")
