"""Message shaping: size limit, JSON types, unprintable messages."""

import json

from .support import SandboxTestCase, configure, run

MARKER = "… [truncated]"


class TruncationTest(SandboxTestCase):
    LIMIT = 60

    def setUp(self):
        configure(max_message_chars=self.LIMIT)

    def tearDown(self):
        configure()

    def assertWithinLimit(self, answer):
        self.assertLessEqual(len(answer[3]), self.LIMIT, answer)
        self.assertLessEqual(len(answer[2]), self.LIMIT, answer)
        json.loads(answer[2])

    def test_long_success_message(self):
        answer = run(webhook="result['message'] = 'x' * 1000")
        self.assertEqual(answer[:2], ("ok", 200))
        self.assertWithinLimit(answer)
        self.assertTrue(answer[3].endswith(MARKER))
        self.assertTrue(answer[3].startswith("xxxx"))
        self.assertTrue(json.loads(answer[2]).endswith(MARKER))

    def test_message_at_the_limit_is_untouched(self):
        answer = run(webhook="result['message'] = 'y' * %d" % self.LIMIT)
        self.assertEqual(answer[3], "y" * self.LIMIT)
        answer = run(webhook="result['message'] = 'y' * %d" % (self.LIMIT - 2))
        self.assertEqual(answer[2], '"%s"' % ("y" * (self.LIMIT - 2)))

    def test_escapes_cannot_push_the_json_over(self):
        answer = run(webhook="result['message'] = '\\u00e9' * 50")
        self.assertEqual(answer[3], "\u00e9" * 50)
        self.assertWithinLimit(answer)
        self.assertTrue(json.loads(answer[2]).endswith(MARKER))

    def test_long_structured_message(self):
        answer = run(webhook="result['message'] = list(range(100))")
        self.assertWithinLimit(answer)
        self.assertTrue(answer[3].startswith("[0, 1, 2"))
        self.assertIsInstance(json.loads(answer[2]), str)

    def test_long_failures(self):
        for code in ("raise Exception('e' * 500)", "result = {'exit_code': 3, 'message': 'f' * 500}"):
            with self.subTest(code=code):
                answer = run(webhook=code)
                self.assertEqual(answer[:2], ("code_failed", 500))
                self.assertWithinLimit(answer)
                self.assertTrue(answer[3].endswith(MARKER))

    def test_long_denial(self):
        answer = run(authenticator="result = {'allowed': False, 'message': 'd' * 500}")
        self.assertEqual(answer[:2], ("auth_failed", 403))
        self.assertWithinLimit(answer)


class UnprintableMessageTest(SandboxTestCase):
    def test_deeply_nested_message(self):
        code = "m = []\nfor i in range(100000):\n    m = [m]\nresult['message'] = m"
        answer = run(webhook=code)
        self.assertWebhookFailed(answer, "RecursionError")

    def test_self_referencing_message(self):
        answer = run(webhook="m = []\nm.append(m)\nresult['message'] = m")
        self.assertEqual(answer, ("ok", 200, '"[[...]]"', "[[...]]"))

    def test_message_is_json_of_the_message(self):
        answer = run(webhook="result['message'] = 'caf\\u00e9 \"q\" \\n'")
        self.assertEqual(answer[2], json.dumps('café "q" \n'))
        self.assertEqual(answer[3], 'café "q" \n')
