"""Shaped responses (towerhook extension): ``result["response"]`` in webhook code and in
authenticators, what run_call returns for them, and every refusal."""

import json

from .support import SandboxTestCase, configure, run

TEXT = "text/plain; charset=utf-8"


def hook(response, exit_code=0, message=None):
    return "result = {'exit_code': %d, 'message': %r, 'response': %s}" % (
        exit_code,
        message,
        response,
    )


class ShapedResponseTest(SandboxTestCase):
    def test_defaults(self):
        answer = run(webhook=hook("{}"))
        self.assertEqual(answer, ("ok", 200, '""', "", (200, [], TEXT, b"")))

    def test_text_body_with_everything(self):
        answer = run(
            webhook=hook(
                "{'status': 201, 'headers': {'X-Request-Kind': 'twiml', 'Cache-Control':"
                " 'no-store'}, 'content_type': 'text/xml', 'body': '<Response>é</Response>'}"
            )
        )
        self.assertEqual(
            answer,
            (
                "ok",
                201,
                json.dumps("<Response>é</Response>"),
                "<Response>é</Response>",
                (
                    201,
                    [("X-Request-Kind", "twiml"), ("Cache-Control", "no-store")],
                    "text/xml",
                    "<Response>é</Response>".encode("utf-8"),
                ),
            ),
        )

    def test_bytes_body(self):
        answer = run(webhook=hook("{'body': b'\\x00\\x01abc'}"))
        self.assertEqual(answer[:2], ("ok", 200))
        self.assertEqual(answer[3], "<5 bytes of application/octet-stream>")
        self.assertEqual(answer[4], (200, [], "application/octet-stream", b"\x00\x01abc"))
        answer = run(webhook=hook("{'body': b'{}', 'content_type': 'application/json'}"))
        self.assertEqual(answer[4][2:], ("application/json", b"{}"))

    def test_json_answer_of_a_challenge(self):
        answer = run(
            webhook=hook(
                "{'content_type': 'application/json',"
                " 'body': json.dumps({'plainToken': payload['plainToken']})}"
            ),
            payload={"plainToken": "abc"},
        )
        self.assertEqual(answer[4], (200, [], "application/json", b'{"plainToken": "abc"}'))

    def test_status_range(self):
        for status in (200, 202, 301, 404, 503, 599):
            with self.subTest(status=status):
                self.assertEqual(run(webhook=hook("{'status': %d}" % status))[4][0], status)

    def test_without_response_the_answer_is_unchanged(self):
        for code in (
            "result = {'exit_code': 0, 'message': 'm'}",
            "result = {'exit_code': 0, 'message': 'm', 'response': None}",
        ):
            with self.subTest(code=code):
                self.assertEqual(run(webhook=code), ("ok", 200, '"m"', "m"))

    def test_non_zero_exit_code_answers_the_response_as_a_failure(self):
        answer = run(
            webhook=hook("{'status': 503, 'headers': {'Retry-After': '120'}, 'body': 'busy'}", 2)
        )
        self.assertEqual(
            answer, ("code_failed", 503, '"busy"', "busy", (503, [("Retry-After", "120")], TEXT, b"busy"))
        )
        answer = run(webhook=hook("{'body': '<Response/>', 'content_type': 'text/xml'}", 1))
        self.assertEqual(answer[:2], ("code_failed", 200))

    def test_snippet_errors_still_answer_500(self):
        answer = run(
            webhook="result = {'exit_code': 0, 'response': {'body': 'x'}}\nraise Exception('late')"
        )
        self.assertEqual(answer[:2], ("code_failed", 500))
        self.assertEqual(len(answer), 4)

    def test_log_text_is_limited_but_the_body_is_not(self):
        configure(max_message_chars=40)
        self.addCleanup(configure)
        answer = run(webhook=hook("{'body': 'x' * 1000}"))
        self.assertLessEqual(len(answer[3]), 40)
        self.assertLessEqual(len(answer[2]), 40)
        self.assertEqual(answer[4][3], b"x" * 1000)


class AuthenticatorChallengeTest(SandboxTestCase):
    NEVER = "raise Exception('the webhook code must not run')"

    def test_denying_authenticator_answers_its_response(self):
        answer = run(
            authenticator=(
                "if payload.get('type') == 'url_verification':\n"
                "    result = {'allowed': False, 'response': {'body': payload['challenge']}}"
            ),
            webhook=self.NEVER,
            payload={"type": "url_verification", "challenge": "3eZbrw1aB"},
        )
        self.assertEqual(
            answer, ("auth_failed", 200, '"3eZbrw1aB"', "3eZbrw1aB", (200, [], TEXT, b"3eZbrw1aB"))
        )

    def test_response_wins_over_http_code_and_message(self):
        answer = run(
            authenticator=(
                "result = {'allowed': False, 'http_code': 418, 'message': 'm', 'response':"
                " {'status': 401, 'headers': {'WWW-Authenticate': 'Bearer'}, 'body': 'no'}}"
            ),
            webhook=self.NEVER,
        )
        self.assertEqual(answer[:4], ("auth_failed", 401, '"no"', "no"))
        self.assertEqual(answer[4], (401, [("WWW-Authenticate", "Bearer")], TEXT, b"no"))

    def test_allowing_authenticator_with_a_response_is_an_error(self):
        answer = run(
            authenticator="result = {'allowed': True, 'response': {'body': 'x'}}",
            webhook=self.NEVER,
        )
        self.assertAuthFailed(
            answer,
            403,
            "Authentication code error: result allows the call and has a response",
        )
        self.assertEqual(len(answer), 4)

    def test_allowing_authenticator_with_response_none_goes_on(self):
        answer = run(
            authenticator="result = {'allowed': True, 'response': None}",
            webhook="result['message'] = 'ran'",
        )
        self.assertWebhookOk(answer, "ran")

    def test_invalid_response_of_an_authenticator(self):
        answer = run(
            authenticator="result = {'allowed': False, 'response': {'status': 100}}",
            webhook=self.NEVER,
        )
        self.assertAuthFailed(
            answer, 403, "Authentication code error: invalid response: status must be an int"
        )


class RefusalTest(SandboxTestCase):
    def assertRefused(self, response, reason):
        answer = run(webhook=hook(response))
        self.assertWebhookFailed(answer, reason)
        self.assertTrue(
            answer[3].startswith("Webhook code execution error: invalid response: "), answer
        )
        self.assertEqual(len(answer), 4)

    def test_shape(self):
        self.assertRefused("'text'", "response must be a dict, not str")
        self.assertRefused("{'code': 200}", "unknown key(s) code")
        self.assertRefused("{'header': {}}", "unknown key(s) header")

    def test_status(self):
        for status in ("199", "100", "600", "'200'", "True", "200.0", "-1"):
            with self.subTest(status=status):
                self.assertRefused("{'status': %s}" % status, "status must be an int from 200 to 599")

    def test_no_body_statuses(self):
        for status in (204, 205, 304):
            with self.subTest(status=status):
                self.assertRefused("{'status': %d, 'body': 'x'}" % status, "cannot have a body")
                self.assertEqual(run(webhook=hook("{'status': %d}" % status))[4][0], status)

    def test_headers_type_and_names(self):
        self.assertRefused("{'headers': [('X-A', 'b')]}", "headers must be a dict, not list")
        self.assertRefused("{'headers': {1: 'b'}}", "header name 1 is not a valid HTTP header name")
        for name in ("X A", "X:A", "", "Ä", "X\\nA"):
            with self.subTest(name=name):
                self.assertRefused("{'headers': {%r: 'b'}}" % name, "is not a valid HTTP header name")
        self.assertRefused("{'headers': {'X-A': '1', 'x-a': '2'}}", "header x-a is given twice")

    def test_refused_headers(self):
        for name in (
            "Connection",
            "keep-alive",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "Proxy-Connection",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Content-Length",
            "content-type",
            "Content-Encoding",
            "Set-Cookie",
            "SET-COOKIE2",
            "Clear-Site-Data",
        ):
            with self.subTest(name=name):
                self.assertRefused(
                    "{'headers': {%r: 'x'}}" % name, "header %s is set by towerhook" % name
                )

    def test_header_values(self):
        self.assertRefused("{'headers': {'X-A': 1}}", "header X-A value must be a str, not int")
        for value in ("a\\r\\nSet-Cookie: s=1", "a\\nb", "a\\x00", "é", "\\x7f"):
            with self.subTest(value=value):
                self.assertRefused(
                    "{'headers': {'X-A': '%s'}}" % value, "value has control or non-ASCII characters"
                )
        answer = run(webhook=hook("{'headers': {'X-A': 'tab\\there ok', 'X-B': ''}}"))
        self.assertEqual(answer[4][1], [("X-A", "tab\there ok"), ("X-B", "")])

    def test_header_limits(self):
        self.assertRefused(
            "{'headers': {'X-%d' % i: 'v' for i in range(33)}}", "at most 32 headers"
        )
        self.assertEqual(
            len(run(webhook=hook("{'headers': {'X-%d' % i: 'v' for i in range(32)}}"))[4][1]), 32
        )
        self.assertRefused(
            "{'headers': {'X-A': 'v' * 5000, 'X-B': 'v' * 5000}}",
            "headers are longer than 8192 characters",
        )

    def test_content_type(self):
        for value in ("'text'", "'text/plain\\r\\nX-A: b'", "5", "''", "'text/plain extra'"):
            with self.subTest(value=value):
                self.assertRefused("{'content_type': %s}" % value, "content_type must be a media type")
        answer = run(webhook=hook("{'content_type': 'application/xml; charset=utf-8'}"))
        self.assertEqual(answer[4][2], "application/xml; charset=utf-8")

    def test_body(self):
        self.assertRefused("{'body': 5}", "body must be a str or bytes, not int")
        self.assertRefused("{'body': {'a': 1}}", "body must be a str or bytes, not dict")
        self.assertRefused("{'body': chr(0xd800)}", "body is not encodable as UTF-8")

    def test_body_size(self):
        configure(max_response_bytes=10)
        self.addCleanup(configure)
        self.assertEqual(run(webhook=hook("{'body': 'é' * 5}"))[4][3], "é".encode() * 5)
        self.assertRefused(
            "{'body': 'é' * 5 + 'x'}", "body is 11 bytes, more than max_response_bytes (10)"
        )
        self.assertRefused("{'body': b'x' * 11}", "body is 11 bytes")
        # The call's context may set its own limit.
        answer = run(webhook=hook("{'body': 'x' * 11}"), context={"max_response_bytes": 20})
        self.assertEqual(answer[0], "ok")

    def test_default_limit_is_one_mebibyte(self):
        self.assertEqual(run(webhook=hook("{'body': b'x' * 1048576}"))[0], "ok")
        self.assertRefused("{'body': b'x' * 1048577}", "more than max_response_bytes (1048576)")


class MaskingTest(SandboxTestCase):
    SECRETS = {"token": "tok-123-secret"}

    def test_secrets_are_masked_in_body_headers_and_log(self):
        answer = run(
            webhook=hook(
                "{'headers': {'X-Echo': 'v=' + #!cxtower.secret.token!#},"
                " 'body': 'token is ' + #!cxtower.secret.token!#}"
            ),
            secrets=self.SECRETS,
        )
        self.assertEqual(answer[3], "token is *****")
        self.assertEqual(answer[4][1], [("X-Echo", "v=*****")])
        self.assertEqual(answer[4][3], b"token is *****")
        self.assertNotIn("tok-123-secret", repr(answer))

    def test_secrets_are_masked_in_bytes_bodies(self):
        answer = run(
            webhook=hook("{'body': ('<' + #!cxtower.secret.token!# + '>').encode()}"),
            secrets=self.SECRETS,
        )
        self.assertEqual(answer[4][3], b"<*****>")

    def test_refusal_messages_are_masked(self):
        answer = run(
            webhook=hook("{'headers': {#!cxtower.secret.token!#: 'x', 'X A': 'y'}}"),
            secrets={"token": "Bad Name"},
        )
        self.assertWebhookFailed(answer, "invalid response")
        self.assertNotIn("Bad Name", answer[3])
