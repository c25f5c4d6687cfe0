"""prepare(): once per snippet version, never raises."""

import towerhook_sandbox as sandbox

from .support import SandboxTestCase, run


class PrepareTest(SandboxTestCase):
    def test_never_raises(self):
        for code in (None, "", "x = (", "(" * 300 + ")" * 300, "\x00", "def f(:\n"):
            with self.subTest(code=code):
                sandbox.prepare("webhook", code, None)
                sandbox.prepare("authenticator", code, {"A": None})

    def test_errors_reported_when_run(self):
        auth = sandbox.prepare("authenticator", "result = {'allowed': True}", {})
        for code, text in (
            ("x = (", "'(' was never closed (<webhook>, line 1)"),
            ("(" * 300 + ")" * 300, "too many nested parentheses"),
            ("\x00", "source code string cannot contain null bytes"),
        ):
            with self.subTest(code=code):
                hook = sandbox.prepare("webhook", code, {})
                answer = sandbox.run_call(auth, hook, {}, b"", {}, {})
                self.assertWebhookFailed(answer, text)

    def test_non_string_secret_values(self):
        code = "result['message'] = repr(#!cxtower.secret.N!#)"
        self.assertWebhookOk(run(webhook=code, secrets={"N": 123}), "'*****'")

    def test_prepared_once_runs_many_times(self):
        auth = sandbox.prepare("authenticator", "result = {'allowed': True}", {})
        hook = sandbox.prepare("webhook", "result['message'] = str(payload['n'] * 2)", {})
        for n in range(50):
            self.assertEqual(
                sandbox.run_call(auth, hook, {}, b"", {"n": n}, {})[3], str(n * 2)
            )

    def test_module_docstring_is_refused_as_on_odoo(self):
        # A leading string literal is stored in __doc__, a dunder name (safe_eval refuses it).
        answer = run(webhook='"""Deploy hook."""\nresult["message"] = "x"')
        self.assertWebhookFailed(answer, "Access to forbidden name '__doc__'")
        self.assertWebhookOk(run(webhook='x = 1\n"""A later string is fine."""'))

    def test_stage_follows_the_position(self):
        # A prepared snippet passed as the authenticator is judged as one.
        as_webhook = sandbox.prepare("webhook", "result = {'allowed': True}", {})
        hook = sandbox.prepare("webhook", "result['message'] = 'ran'", {})
        self.assertEqual(sandbox.run_call(as_webhook, hook, {}, b"", {}, {})[3], "ran")
