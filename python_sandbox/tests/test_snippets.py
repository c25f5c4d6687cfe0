"""Snippets as module users write them."""

import hashlib
import hmac
import json

from .support import SandboxTestCase, run

GITHUB_AUTHENTICATOR = """
signature = headers.get('X-Hub-Signature-256', '')
digest = hmac.new(#!cxtower.secret.GITHUB_SECRET!#.encode(), raw_data, hashlib.sha256).hexdigest()
if hmac.compare_digest(signature, 'sha256=' + digest):
    result = {'allowed': True}
else:
    result = {'allowed': False, 'http_code': 401, 'message': 'Bad signature'}
"""


class GitHubSignatureTest(SandboxTestCase):
    SECRET = "It's a Secret to Everybody"
    BODY = b'{"action": "opened", "number": 7}'

    def sign(self, body):
        return "sha256=" + hmac.new(self.SECRET.encode(), body, hashlib.sha256).hexdigest()

    def call(self, signature, body=None):
        return run(
            authenticator=GITHUB_AUTHENTICATOR,
            webhook="result['message'] = 'PR %s %s' % (payload['action'], payload['number'])",
            headers={"X-Hub-Signature-256": signature} if signature is not None else {},
            raw_data=self.BODY if body is None else body,
            payload=json.loads(self.BODY),
            secrets={"GITHUB_SECRET": self.SECRET},
        )

    def test_valid_signature(self):
        self.assertWebhookOk(self.call(self.sign(self.BODY)), "PR opened 7")

    def test_invalid_signatures(self):
        for signature in (self.sign(b"other"), "sha256=00", "", None, self.sign(self.BODY)[7:]):
            with self.subTest(signature=signature):
                answer = self.call(signature)
                self.assertEqual(answer, ("auth_failed", 401, '"Bad signature"', "Bad signature"))

    def test_unknown_secret_fails_clearly(self):
        answer = run(authenticator=GITHUB_AUTHENTICATOR, raw_data=self.BODY, secrets={})
        self.assertAuthFailed(
            answer, 403, "AttributeError(\"'NoneType' object has no attribute 'encode'\")"
        )


class LibrarySnippetsTest(SandboxTestCase):
    def test_json_loads_and_dumps(self):
        code = (
            "data = json.loads(raw_data)\n"
            "result = {'allowed': data['event'] == 'push', 'message': json.dumps(data)}"
        )
        self.assertWebhookOk(run(authenticator=code, raw_data=b'{"event": "push"}'))
        answer = run(authenticator=code, raw_data=b'{"event": "pull", "n": [1]}')
        self.assertEqual(answer[3], '{"event": "pull", "n": [1]}')
        answer = run(webhook="result['message'] = json.dumps(json.loads('{\"a\": [1, 2.5]}'))")
        self.assertWebhookOk(answer, '{"a": [1, 2.5]}')

    def test_json_errors_are_reported(self):
        answer = run(webhook="json.loads('{bad')")
        self.assertWebhookFailed(answer, "JSONDecodeError(")

    def test_date_arithmetic(self):
        code = (
            "start = datetime.datetime(2024, 1, 31, 9, 30)\n"
            "end = start + dateutil.relativedelta.relativedelta(months=1) + datetime.timedelta(days=1)\n"
            "parsed = dateutil.parser.isoparse('2024-03-01T12:00:00')\n"
            "days = [d.day for d in dateutil.rrule.rrule(dateutil.rrule.DAILY, count=3, dtstart=start)]\n"
            "result['message'] = '%s %s %s %s' % (end.isoformat(), (parsed - start).days, days,"
            " datetime.date(2024, 2, 29).strftime('%d/%m/%Y'))"
        )
        self.assertWebhookOk(
            run(webhook=code), "2024-03-01T09:30:00 30 [31, 1, 2] 29/02/2024"
        )

    def test_next_monday_with_relativedelta_weekday(self):
        code = (
            "d = datetime.date(2024, 5, 15) + dateutil.relativedelta.relativedelta("
            "weekday=dateutil.relativedelta.MO(+1))\n"
            "result['message'] = d.isoformat()"
        )
        self.assertWebhookOk(run(webhook=code), "2024-05-20")

    def test_timezone_conversion(self):
        code = (
            "berlin = timezone('Europe/Berlin')\n"
            "local = berlin.localize(datetime.datetime(2024, 7, 1, 12, 0))\n"
            "utc = local.astimezone(timezone('UTC'))\n"
            "winter = dateutil.tz.gettz('Europe/Berlin').localize(datetime.datetime(2024, 1, 1, 12))\n"
            "result['message'] = '%s %s %s' % (utc.strftime('%H:%M %Z'), winter.utcoffset(),"
            " datetime.datetime(2024, 1, 1, tzinfo=dateutil.tz.UTC).isoformat())"
        )
        self.assertWebhookOk(run(webhook=code), "10:00 UTC 1:00:00 2024-01-01T00:00:00+00:00")

    def test_unknown_timezone(self):
        self.assertWebhookFailed(run(webhook="timezone('Mars/Olympus')"), "UnknownTimeZoneError")

    def test_time(self):
        code = (
            "t = time.time()\n"
            "s = time.strftime('%Y', time.strptime('2030-01-02', '%Y-%m-%d'))\n"
            "result['message'] = '%s %s' % (t > 1.7e9, s)"
        )
        self.assertWebhookOk(run(webhook=code), "True 2030")

    def test_secret_compared_to_header(self):
        code = "result = {'allowed': headers.get('X-Api-Key') == #!cxtower.secret.API_KEY!#}"
        secrets = {"API_KEY": 'k3y"with\\quotes'}
        self.assertWebhookOk(
            run(authenticator=code, headers={"X-Api-Key": 'k3y"with\\quotes'}, secrets=secrets)
        )
        self.assertAuthFailed(
            run(authenticator=code, headers={"X-Api-Key": "wrong"}, secrets=secrets)
        )
        # Unknown secret: None, so no header matches it.
        self.assertAuthFailed(run(authenticator=code, headers={"X-Api-Key": "x"}, secrets={}))

    def test_hashlib_constructors(self):
        code = (
            "d = b'abc'\n"
            "result['message'] = ' '.join([hashlib.md5(d).hexdigest()[:8], hashlib.sha1(d).hexdigest()[:8],"
            " hashlib.sha224(d).hexdigest()[:8], hashlib.sha256(d).hexdigest()[:8],"
            " hashlib.sha384(d).hexdigest()[:8], hashlib.sha512(d).hexdigest()[:8],"
            " hashlib.sha3_224(d).hexdigest()[:8], hashlib.sha3_256(d).hexdigest()[:8],"
            " hashlib.sha3_384(d).hexdigest()[:8], hashlib.sha3_512(d).hexdigest()[:8],"
            " hashlib.shake_128(d).hexdigest(4), hashlib.shake_256(d).hexdigest(4),"
            " hashlib.blake2b(d).hexdigest()[:8], hashlib.blake2s(d).hexdigest()[:8],"
            " hashlib.new('sha256', d).hexdigest()[:8]])"
        )
        data = b"abc"
        expected = " ".join(
            [
                hashlib.new(name, data).hexdigest()[:8]
                for name in (
                    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224",
                    "sha3_256", "sha3_384", "sha3_512",
                )
            ]
            + [hashlib.shake_128(data).hexdigest(4), hashlib.shake_256(data).hexdigest(4)]
            + [hashlib.blake2b(data).hexdigest()[:8], hashlib.blake2s(data).hexdigest()[:8]]
            + [hashlib.sha256(data).hexdigest()[:8]]
        )  # fmt: skip
        self.assertWebhookOk(run(webhook=code), expected)

    def test_hmac_object_methods(self):
        code = (
            "h = hmac.new(b'key', digestmod='sha256')\n"
            "h.update(b'part1')\n"
            "c = h.copy()\n"
            "c.update(b'part2')\n"
            "result['message'] = '%s %s' % (h.hexdigest()[:8], len(c.digest()))"
        )
        expected = hmac.new(b"key", b"part1", "sha256").hexdigest()[:8] + " 32"
        self.assertWebhookOk(run(webhook=code), expected)

    def test_float_compare(self):
        code = (
            "result['message'] = str([float_compare(1.432, 1.431, precision_digits=2),"
            " float_compare(0.006, 0.002, precision_digits=2),"
            " float_compare(1.0, 2.0, precision_rounding=0.5)])"
        )
        self.assertWebhookOk(run(webhook=code), "[0, 1, -1]")

    def test_user_error_for_validation(self):
        code = (
            "if not payload.get('server'):\n"
            "    raise UserError('server is required')\n"
            "result['message'] = 'deploying %s' % payload['server']"
        )
        self.assertWebhookOk(run(webhook=code, payload={"server": "web1"}), "deploying web1")
        answer = run(webhook=code, payload={"other": 1})
        self.assertEqual(answer[3], "Webhook code execution error: server is required")

    def test_tldextract(self):
        code = (
            "r = tldextract.extract('https://forums.news.bbc.co.uk/path')\n"
            "result['message'] = '%s|%s|%s' % (r.subdomain, r.domain, r.suffix)"
        )
        self.assertWebhookOk(run(webhook=code), "forums.news|bbc|co.uk")

    def test_dns_reversename(self):
        code = (
            "name = dns.reversename.from_address('192.0.2.1')\n"
            "result['message'] = '%s %s' % (name, dns.reversename.to_address(name))"
        )
        self.assertWebhookOk(run(webhook=code), "1.2.0.192.in-addr.arpa. 192.0.2.1")

    def test_dns_exception_class_can_be_caught(self):
        code = (
            "try:\n"
            "    dns.reversename.from_address('not an address')\n"
            "except dns.exception.DNSException:\n"
            "    result['message'] = 'dns error'\n"
            "except Exception as e:\n"
            "    result['message'] = 'other: %r' % e"
        )
        self.assertWebhookOk(run(webhook=code), "dns error")
