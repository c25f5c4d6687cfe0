"""``verify``: every sender's scheme, with published vectors where the senders publish
them and signatures built here from the documented algorithm otherwise.

Most checks call the object directly (``verifier``); ``SnippetPathTest`` shows that every
function works from snippet code under the sandbox's checks, and the reachability test
walks what a snippet reaches from ``verify``.
"""

import base64
import contextlib
import hashlib
import hmac
import json
from urllib.parse import urlencode

from towerhook_sandbox import runner
from towerhook_sandbox import verify as checks

from .support import SandboxTestCase, run
from .test_reachability import ReachabilityTestCase

NOW = 1_700_000_000


def verifier(headers=None, body=b"", payload=None, **context):
    """A ``verify`` object for one request, as a snippet gets it."""
    return checks.Verify(checks.Request(headers or {}, body, payload, context))


@contextlib.contextmanager
def clock_at(seconds):
    previous = checks.clock
    checks.clock = lambda: seconds
    try:
        yield
    finally:
        checks.clock = previous


def hex_hmac(key, message, algorithm="sha256"):
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, message, algorithm).hexdigest()


def b64_hmac(key, message, algorithm="sha256"):
    key = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hmac.new(key, message, algorithm).digest()).decode()


class VerifyTestCase(SandboxTestCase):
    def assertPasses(self, verify, outcome):
        self.assertIs(outcome, True, verify.reason)
        self.assertEqual(verify.reason, "")

    def assertFails(self, verify, outcome, reason):
        self.assertIs(outcome, False)
        self.assertIn(reason, verify.reason)


class GitHubTest(VerifyTestCase):
    # GitHub's documentation ("Validating webhook deliveries"), the vector of the issue.
    SECRET = "It's a Secret to Everybody"
    BODY = b"Hello, World!"
    SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    def test_published_vector(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        self.assertPasses(v, v.github(self.SECRET))
        self.assertEqual(self.SIGNATURE, "sha256=" + hex_hmac(self.SECRET, self.BODY))

    def test_header_names_match_in_any_case(self):
        v = verifier({"x-hub-signature-256": self.SIGNATURE}, self.BODY)
        self.assertPasses(v, v.github(self.SECRET))

    def test_secret_as_bytes(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        self.assertPasses(v, v.github(self.SECRET.encode()))

    def test_tampered_body_and_wrong_secret(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY + b" ")
        self.assertFails(v, v.github(self.SECRET), "signature in X-Hub-Signature-256 does not match")
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        self.assertFails(v, v.github("another secret"), "does not match")

    def test_rotated_secret_accepted(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        self.assertPasses(v, v.github(["the new secret", self.SECRET]))
        self.assertPasses(v, v.github((self.SECRET, "the new secret")))
        # A rotation list with a secret the module does not know (None) still works.
        self.assertPasses(v, v.github([None, self.SECRET]))
        self.assertFails(v, v.github(["the new secret", "an old one"]), "does not match")

    def test_several_signatures(self):
        bad = "sha256=" + "0" * 64
        for value in (
            "%s, %s" % (bad, self.SIGNATURE),
            "%s %s" % (self.SIGNATURE, bad),
            "sha1=abc,%s" % self.SIGNATURE,
        ):
            with self.subTest(value=value):
                v = verifier({"X-Hub-Signature-256": value}, self.BODY)
                self.assertPasses(v, v.github(self.SECRET))

    def test_uppercase_hex_is_the_same_signature(self):
        value = "sha256=" + self.SIGNATURE[7:].upper()
        v = verifier({"X-Hub-Signature-256": value}, self.BODY)
        self.assertPasses(v, v.github(self.SECRET))

    def test_missing_and_malformed_headers(self):
        for headers, reason in (
            ({}, "missing header X-Hub-Signature-256"),
            ({"X-Hub-Signature-256": ""}, "holds no sha256=hex signature"),
            ({"X-Hub-Signature-256": self.SIGNATURE[7:]}, "holds no sha256=hex signature"),
            ({"X-Hub-Signature-256": "sha256=zz"}, "holds no sha256=hex signature"),
            ({"X-Hub-Signature": self.SIGNATURE}, "missing header X-Hub-Signature-256"),
        ):
            with self.subTest(headers=headers):
                v = verifier(headers, self.BODY)
                self.assertFails(v, v.github(self.SECRET), reason)

    def test_no_secret_never_passes(self):
        v = verifier({"X-Hub-Signature-256": "sha256=" + hex_hmac(b"", self.BODY)}, self.BODY)
        for secret in (None, "", b"", [], [None, ""]):
            with self.subTest(secret=secret):
                self.assertFails(v, v.github(secret), "no secret given")

    def test_reason_is_cleared_by_a_success(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        self.assertEqual(v.reason, "")
        v.github("wrong")
        self.assertNotEqual(v.reason, "")
        self.assertPasses(v, v.github(self.SECRET))

    def test_wrong_argument_types_raise_without_the_value(self):
        v = verifier({"X-Hub-Signature-256": self.SIGNATURE}, self.BODY)
        with self.assertRaises(TypeError) as caught:
            v.github(123456789)
        self.assertNotIn("123456789", str(caught.exception))
        with self.assertRaises(ValueError):
            v.github(["s"] * (checks.MAX_SECRETS + 1))


class GitLabTest(VerifyTestCase):
    def test_token(self):
        v = verifier({"X-Gitlab-Token": "t0ken"})
        self.assertPasses(v, v.gitlab("t0ken"))
        self.assertPasses(v, v.gitlab(["new", "t0ken"]))
        self.assertFails(v, v.gitlab("t0ken2"), "X-Gitlab-Token does not match")
        self.assertFails(v, v.gitlab(None), "no token given")
        v = verifier({})
        self.assertFails(v, v.gitlab("t0ken"), "missing header X-Gitlab-Token")

    def test_a_token_with_commas_is_compared_whole(self):
        v = verifier({"X-Gitlab-Token": "a,b c"})
        self.assertPasses(v, v.gitlab("a,b c"))
        self.assertFails(v, v.gitlab("a"), "does not match")


class StripeTest(VerifyTestCase):
    SECRET = "whsec_test_secret"
    BODY = b'{"id": "evt_1", "object": "event"}'

    def header(self, stamp, secrets=None, extra=""):
        parts = ["t=%d" % stamp]
        for secret in secrets or [self.SECRET]:
            # Stripe's scheme: HMAC-SHA256 of "<t>.<body>" with the secret as it is.
            parts.append("v1=" + hex_hmac(secret, b"%d." % stamp + self.BODY))
        return ",".join(parts) + extra

    def check(self, value, secret=None, **kwargs):
        v = verifier({"Stripe-Signature": value}, self.BODY)
        return v, v.stripe(self.SECRET if secret is None else secret, **kwargs)

    def test_signature_built_from_the_scheme(self):
        with clock_at(NOW):
            self.assertPasses(*self.check(self.header(NOW)))
            self.assertPasses(*self.check(self.header(NOW, extra=",v0=" + "1" * 64)))

    def test_several_v1_signatures(self):
        # Stripe sends one v1 per active secret while a secret is rolled.
        with clock_at(NOW):
            value = self.header(NOW, ["whsec_old", self.SECRET])
            self.assertPasses(*self.check(value))
            self.assertPasses(*self.check(value, secret="whsec_old"))

    def test_rotated_secret_accepted(self):
        with clock_at(NOW):
            self.assertPasses(*self.check(self.header(NOW), secret=["whsec_new", self.SECRET]))

    def test_stale_and_future_timestamps_refused(self):
        with clock_at(NOW):
            v, ok = self.check(self.header(NOW - 301))
            self.assertFails(v, ok, "timestamp is 301 s old (tolerance 300 s)")
            v, ok = self.check(self.header(NOW + 301))
            self.assertFails(v, ok, "timestamp is 301 s in the future (tolerance 300 s)")
            self.assertPasses(*self.check(self.header(NOW - 300)))
            self.assertPasses(*self.check(self.header(NOW + 300)))

    def test_tolerance_argument(self):
        with clock_at(NOW):
            self.assertPasses(*self.check(self.header(NOW - 3600), tolerance=3601))
            v, ok = self.check(self.header(NOW - 10), tolerance=5)
            self.assertFails(v, ok, "timestamp is 10 s old (tolerance 5 s)")
            for bad, error in ((-1, ValueError), (True, TypeError), ("300", TypeError),
                               (float("inf"), ValueError), (None, TypeError)):
                with self.subTest(tolerance=bad), self.assertRaises(error):
                    self.check(self.header(NOW), tolerance=bad)

    def test_malformed_headers(self):
        good = self.header(NOW)
        signature = good.split(",")[1]
        with clock_at(NOW):
            for value, reason in (
                (signature, "must hold exactly one t= timestamp"),
                ("t=%d,t=%d,%s" % (NOW, NOW, signature), "must hold exactly one t= timestamp"),
                ("t=%d" % NOW, "holds no v1= signature"),
                ("t=%d,v1=xyz" % NOW, "holds no v1= signature"),
                ("t=soon,%s" % signature, "is not a Unix time in seconds"),
            ):
                with self.subTest(value=value):
                    self.assertFails(*self.check(value), reason)
            v = verifier({}, self.BODY)
            self.assertFails(v, v.stripe(self.SECRET), "missing header Stripe-Signature")

    def test_signature_is_checked_before_the_timestamp(self):
        # A forged signature is reported as such even with a stale timestamp.
        with clock_at(NOW):
            v, ok = self.check(self.header(NOW - 1000), secret="whsec_other")
            self.assertFails(v, ok, "does not match")


class SlackTest(VerifyTestCase):
    # Slack's documentation ("Verifying requests from Slack"), worked example.
    SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
    STAMP = 1531420618
    BODY = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
        b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    def check(self, now, headers=None, secret=SECRET, body=BODY):
        if headers is None:
            headers = {
                "X-Slack-Signature": self.SIGNATURE,
                "X-Slack-Request-Timestamp": str(self.STAMP),
            }
        v = verifier(headers, body)
        with clock_at(now):
            return v, v.slack(secret)

    def test_published_vector(self):
        self.assertPasses(*self.check(self.STAMP))
        self.assertPasses(*self.check(self.STAMP + 299))

    def test_stale_and_future(self):
        self.assertFails(*self.check(self.STAMP + 301), "301 s old")
        self.assertFails(*self.check(self.STAMP - 301), "301 s in the future")

    def test_rotation_and_mismatch(self):
        self.assertPasses(*self.check(self.STAMP, secret=["new", self.SECRET]))
        self.assertFails(*self.check(self.STAMP, body=self.BODY + b"&x=1"), "does not match")

    def test_missing_headers(self):
        self.assertFails(
            *self.check(self.STAMP, {"X-Slack-Signature": self.SIGNATURE}),
            "missing header X-Slack-Request-Timestamp",
        )
        self.assertFails(
            *self.check(self.STAMP, {"X-Slack-Request-Timestamp": str(self.STAMP)}),
            "missing header X-Slack-Signature",
        )
        self.assertFails(
            *self.check(
                self.STAMP,
                {
                    "X-Slack-Signature": self.SIGNATURE[3:],
                    "X-Slack-Request-Timestamp": str(self.STAMP),
                },
            ),
            "holds no v0= signature",
        )


class BodyHmacSchemesTest(VerifyTestCase):
    """Shopify, Bitbucket, Meta: an HMAC of the raw body in one header."""

    SECRET = "shpss_0123456789"
    BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'

    def test_shopify_base64(self):
        v = verifier({"X-Shopify-Hmac-Sha256": b64_hmac(self.SECRET, self.BODY)}, self.BODY)
        self.assertPasses(v, v.shopify(self.SECRET))
        self.assertPasses(v, v.shopify(["rotated", self.SECRET]))
        v = verifier({"X-Shopify-Hmac-Sha256": hex_hmac(self.SECRET, self.BODY)}, self.BODY)
        # 64 hex digits also read as base64: a mismatch, not a malformed header.
        self.assertFails(v, v.shopify(self.SECRET), "does not match")
        v = verifier({"X-Shopify-Hmac-Sha256": "not base64!"}, self.BODY)
        self.assertFails(v, v.shopify(self.SECRET), "holds no base64 signature")
        v = verifier({"X-Shopify-Hmac-SHA256": b64_hmac("x", self.BODY)}, self.BODY)
        self.assertFails(v, v.shopify(self.SECRET), "does not match")

    def test_bitbucket(self):
        value = "sha256=" + hex_hmac(self.SECRET, self.BODY)
        v = verifier({"X-Hub-Signature": value}, self.BODY)
        self.assertPasses(v, v.bitbucket(self.SECRET))
        v = verifier({"X-Hub-Signature-256": value}, self.BODY)
        self.assertFails(v, v.bitbucket(self.SECRET), "missing header X-Hub-Signature")

    def test_meta(self):
        value = "sha256=" + hex_hmac(self.SECRET, self.BODY)
        v = verifier({"X-Hub-Signature-256": value}, self.BODY)
        self.assertPasses(v, v.meta(self.SECRET))
        self.assertPasses(v, v.meta([None, "old", self.SECRET]))
        v = verifier({"X-Hub-Signature-256": value}, self.BODY[:-1])
        self.assertFails(v, v.meta(self.SECRET), "does not match")


class StandardWebhooksTest(VerifyTestCase):
    # The reference library's published vector (standard-webhooks/standard-webhooks,
    # libraries/python/tests/test_webhooks.py, test_sign_function).
    SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    STAMP = 1614265330
    BODY = b'{"test": 2432232314}'
    SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def headers(self, signature=SIGNATURE, stamp=STAMP):
        return {
            "Webhook-Id": self.ID,
            "Webhook-Timestamp": str(stamp),
            "Webhook-Signature": signature,
        }

    def check(self, now, headers=None, secret=SECRET, body=BODY, **kwargs):
        v = verifier(self.headers() if headers is None else headers, body)
        with clock_at(now):
            return v, v.standard_webhooks(secret, **kwargs)

    def test_published_vector(self):
        self.assertPasses(*self.check(self.STAMP))
        # The specification serialises secrets as base64, prefixed or not.
        self.assertPasses(*self.check(self.STAMP, secret=self.SECRET[6:]))
        self.assertPasses(*self.check(self.STAMP, secret=base64.b64decode(self.SECRET[6:])))

    def test_library_invalid_signature_refused(self):
        # test_invalid_signature_raises_error: one character off.
        headers = self.headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
        self.assertFails(*self.check(self.STAMP, headers), "does not match")

    def test_several_signatures(self):
        # test_multi_sig_payload_is_valid: other versions and wrong v1 around the good one.
        signatures = " ".join(
            [
                "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                self.SIGNATURE,
                "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            ]
        )
        self.assertPasses(*self.check(self.STAMP, self.headers(signatures)))
        # The specification's example header: a v1 and an asymmetric v1a signature.
        example = (
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= "
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
        )
        self.assertFails(*self.check(self.STAMP, self.headers(example)), "does not match")
        self.assertFails(
            *self.check(self.STAMP, self.headers("v1a,abcd v2,abcd")), "holds no v1 signature"
        )

    def test_rotated_secret_accepted(self):
        other = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
        self.assertPasses(*self.check(self.STAMP, secret=[other, self.SECRET]))
        self.assertFails(*self.check(self.STAMP, secret=[other]), "does not match")

    def test_stale_and_future_timestamps_refused(self):
        # test_old_timestamp_fails / test_new_timestamp_fails: tolerance + 1 s.
        self.assertFails(*self.check(self.STAMP + 301), "301 s old")
        self.assertFails(*self.check(self.STAMP - 301), "301 s in the future")
        self.assertPasses(*self.check(self.STAMP + 300))
        self.assertPasses(*self.check(self.STAMP + 900, tolerance=900))

    def test_built_from_the_scheme_with_a_fresh_timestamp(self):
        key = base64.b64decode(self.SECRET[6:])
        message = b"%s.%d.%s" % (self.ID.encode(), NOW, self.BODY)
        headers = self.headers("v1," + b64_hmac(key, message), NOW)
        self.assertPasses(*self.check(NOW, headers))

    def test_missing_and_invalid_headers(self):
        for drop in ("Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"):
            headers = self.headers()
            del headers[drop]
            with self.subTest(drop=drop):
                self.assertFails(*self.check(self.STAMP, headers), "missing header " + drop.lower())
        headers = self.headers()
        headers["Webhook-Timestamp"] = "hello"
        self.assertFails(*self.check(self.STAMP, headers), "not a Unix time in seconds")

    def test_secret_that_is_not_base64(self):
        self.assertFails(*self.check(self.STAMP, secret="whsec_not base64!"), "not base64")
        self.assertFails(*self.check(self.STAMP, secret=None), "no secret given")


class TwilioTest(VerifyTestCase):
    # twilio-python's tests (tests/unit/test_request_validator.py), the vectors of
    # Twilio's security documentation.
    TOKEN = "12345"
    URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
    FIELDS = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    JSON_BODY = b'{"property": "value", "boolean": true}'
    BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    FORM = {"Content-Type": "application/x-www-form-urlencoded"}

    def form_request(self, signature, url=URL, fields=None, **kwargs):
        body = urlencode(list((fields or self.FIELDS).items())).encode()
        headers = dict(self.FORM, **{"X-Twilio-Signature": signature})
        return verifier(headers, body, url=url, **kwargs)

    def test_published_vector(self):
        v = self.form_request(self.SIGNATURE)
        self.assertPasses(v, v.twilio(self.TOKEN))
        # The fields are sorted whatever order they came in.
        reordered = dict(reversed(list(self.FIELDS.items())))
        v = self.form_request(self.SIGNATURE, fields=reordered)
        self.assertPasses(v, v.twilio(self.TOKEN))

    def test_published_port_variants(self):
        for url, signature in (
            # test_validation_removes_port_on_https
            (self.URL.replace(".com", ".com:1234"), self.SIGNATURE),
            # test_validation_removes_port_on_http
            (
                self.URL.replace(".com", ".com:1234").replace("https", "http"),
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            # test_validation_adds_port_on_https
            (self.URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            # test_validation_adds_port_on_http
            (self.URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ):
            with self.subTest(url=url):
                v = self.form_request(signature, url=url)
                self.assertPasses(v, v.twilio(self.TOKEN))

    def test_published_json_body_vector(self):
        # test_validation_of_body_succeeds: the URL alone is signed, bodySHA256 commits
        # to the body.
        url = self.URL + "&bodySHA256=" + self.BODY_HASH
        self.assertEqual(hashlib.sha256(self.JSON_BODY).hexdigest(), self.BODY_HASH)
        headers = {"Content-Type": "application/json", "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}
        v = verifier(headers, self.JSON_BODY, url=url)
        self.assertPasses(v, v.twilio(self.TOKEN))
        v = verifier(headers, self.JSON_BODY.replace(b"value", b"other"), url=url)
        self.assertFails(v, v.twilio(self.TOKEN), "body does not match bodySHA256 in the URL")

    def test_url_from_context_or_argument(self):
        v = self.form_request(self.SIGNATURE, url=None)
        self.assertFails(v, v.twilio(self.TOKEN), "the public URL is unknown")
        self.assertPasses(v, v.twilio(self.TOKEN, url=self.URL))
        v = self.form_request(self.SIGNATURE, url="https://mycompany.com/other")
        self.assertFails(v, v.twilio(self.TOKEN), "does not match")
        with self.assertRaises(TypeError):
            v.twilio(self.TOKEN, url=5)

    def test_repeated_fields_built_from_the_scheme(self):
        # Names sorted; under a name its distinct values sorted (twilio-python).
        body = b"Tag=b&Body=x&Tag=a&Tag=a&Empty="
        signed = "https://example.com/sms" + "Bodyx" + "Empty" + "Taga" + "Tagb"
        signature = b64_hmac(self.TOKEN, signed.encode(), "sha1")
        headers = dict(self.FORM, **{"X-Twilio-Signature": signature})
        v = verifier(headers, body, url="https://example.com/sms")
        self.assertPasses(v, v.twilio(self.TOKEN))
        v = verifier(headers, body + b"&Extra=1", url="https://example.com/sms")
        self.assertFails(v, v.twilio(self.TOKEN), "does not match")

    def test_fields_only_from_a_form_body(self):
        # A GET (no body): the URL alone, its query included, is signed.
        url = "https://example.com/voice?CallSid=CA1&From=%2B1555"
        signature = b64_hmac(self.TOKEN, url.encode(), "sha1")
        v = verifier({"X-Twilio-Signature": signature}, b"", url=url)
        self.assertPasses(v, v.twilio(self.TOKEN))
        # A body that is not a form is not read as fields.
        v = verifier({"X-Twilio-Signature": signature, "Content-Type": "text/plain"}, b"a=b", url=url)
        self.assertPasses(v, v.twilio(self.TOKEN))
        v = verifier(dict(self.FORM, **{"X-Twilio-Signature": signature}), b"\xff=1", url=url)
        self.assertFails(v, v.twilio(self.TOKEN), "form body is not UTF-8")

    def test_rotation_missing_header_and_no_token(self):
        v = self.form_request(self.SIGNATURE)
        self.assertPasses(v, v.twilio(["secondary", self.TOKEN]))
        self.assertFails(v, v.twilio(None), "no token given")
        v = verifier(self.FORM, b"a=b", url=self.URL)
        self.assertFails(v, v.twilio(self.TOKEN), "missing header X-Twilio-Signature")


class ZoomTest(VerifyTestCase):
    SECRET = "zoom-secret-token"
    BODY = b'{"event":"meeting.started","payload":{"object":{"id":"1"}},"event_ts":1}'

    def headers(self, stamp, secret=SECRET):
        message = b"v0:%d:%s" % (stamp, self.BODY)
        return {
            "X-Zm-Signature": "v0=" + hex_hmac(secret, message),
            "X-Zm-Request-Timestamp": str(stamp),
        }

    def test_signature_built_from_the_scheme(self):
        with clock_at(NOW):
            v = verifier(self.headers(NOW), self.BODY)
            self.assertPasses(v, v.zoom(self.SECRET))
            self.assertPasses(v, v.zoom(["new", self.SECRET]))
            self.assertFails(v, v.zoom("other"), "signature in x-zm-signature does not match")

    def test_stale_and_future(self):
        with clock_at(NOW):
            v = verifier(self.headers(NOW - 400), self.BODY)
            self.assertFails(v, v.zoom(self.SECRET), "400 s old")
            v = verifier(self.headers(NOW + 400), self.BODY)
            self.assertFails(v, v.zoom(self.SECRET), "400 s in the future")
            self.assertPasses(v, v.zoom(self.SECRET, tolerance=400))

    def test_missing_timestamp(self):
        headers = self.headers(NOW)
        del headers["X-Zm-Request-Timestamp"]
        v = verifier(headers, self.BODY)
        self.assertFails(v, v.zoom(self.SECRET), "missing header x-zm-request-timestamp")


class GenericHmacTest(VerifyTestCase):
    BODY = b"payload"

    def test_algorithms_encodings_and_prefix(self):
        digest = hmac.new(b"k", self.BODY, "sha512").digest()
        for encoding, text in (
            ("hex", digest.hex()),
            ("base64", base64.b64encode(digest).decode()),
            ("base64url", base64.urlsafe_b64encode(digest).decode().rstrip("=")),
        ):
            with self.subTest(encoding=encoding):
                v = verifier({"X-Sig": "sha512:" + text}, self.BODY)
                self.assertPasses(v, v.hmac("k", "X-Sig", "sha512", encoding, "sha512:"))
                self.assertFails(v, v.hmac("k", "X-Sig", "sha512", encoding), "holds no")
        v = verifier({"X-Signature": hex_hmac("k", self.BODY, "sha1")}, self.BODY)
        self.assertPasses(v, v.hmac(["old", "k"], "X-Signature", algorithm="sha1"))
        self.assertFails(v, v.hmac("k", "X-Signature"), "does not match")
        self.assertFails(v, v.hmac("k", "X-Other"), "missing header X-Other")

    def test_bad_arguments(self):
        v = verifier({}, self.BODY)
        for kwargs, error in (
            ({"header": ""}, TypeError),
            ({"header": "X", "algorithm": "crc32"}, ValueError),
            ({"header": "X", "encoding": "base32"}, ValueError),
            ({"header": "X", "prefix": None}, TypeError),
        ):
            with self.subTest(kwargs=kwargs), self.assertRaises(error):
                v.hmac("k", **kwargs)


class ReasonsHoldNoSecretTest(VerifyTestCase):
    def test_no_reason_shows_a_secret_or_an_expected_signature(self):
        secret = "s3cr3t-value-XYZ"
        body = b"body"
        expected_hex = hex_hmac(secret, body)
        expected_b64 = b64_hmac(secret, body)
        with clock_at(NOW):
            for headers, call in (
                ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, lambda v: v.github(secret)),
                ({"X-Hub-Signature": "sha256=00"}, lambda v: v.bitbucket(secret)),
                ({"X-Gitlab-Token": "x"}, lambda v: v.gitlab(secret)),
                ({"Stripe-Signature": "t=%d,v1=00" % NOW}, lambda v: v.stripe(secret)),
                ({"Stripe-Signature": "t=1,v1=" + hex_hmac(secret, b"1." + body)}, lambda v: v.stripe(secret)),
                ({"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": "1"}, lambda v: v.slack(secret)),
                ({"X-Shopify-Hmac-Sha256": "AAAA"}, lambda v: v.shopify(secret)),
                ({"X-Twilio-Signature": "AAAA"}, lambda v: v.twilio(secret, url="https://h/")),
                ({"X-Zm-Signature": "v0=00", "X-Zm-Request-Timestamp": "1"}, lambda v: v.zoom(secret)),
                ({"X-Hub-Signature-256": "sha256=00"}, lambda v: v.meta(secret)),
                ({"X-Sig": "00"}, lambda v: v.hmac(secret, "X-Sig")),
            ):
                v = verifier(headers, body)
                with self.subTest(headers=headers):
                    self.assertIs(call(v), False)
                    self.assertTrue(v.reason)
                    for hidden in (secret, expected_hex, expected_b64):
                        self.assertNotIn(hidden, v.reason)


def _auth(code):
    """An authenticator that reports ``[outcome, reason]`` of ``code`` as its message."""
    return "ok = %s\nresult = {'allowed': False, 'message': json.dumps([ok, verify.reason])}" % code


class SnippetPathTest(SandboxTestCase):
    """Every function from snippet code, under the sandbox's checks."""

    def outcome(self, code, headers=None, raw_data=b"", secrets=None, context=None):
        answer = run(
            authenticator=_auth(code),
            headers=headers or {},
            raw_data=raw_data,
            secrets=secrets,
            context=dict({"timeout_seconds": 30}, **(context or {})),
        )
        self.assertEqual(answer[0], "auth_failed", answer)
        return json.loads(answer[3])

    def test_github_vector_from_a_snippet(self):
        ok, reason = self.outcome(
            "verify.github(#!cxtower.secret.gh!#)",
            {"X-Hub-Signature-256": GitHubTest.SIGNATURE},
            GitHubTest.BODY,
            {"gh": GitHubTest.SECRET},
        )
        self.assertEqual((ok, reason), (True, ""))
        ok, reason = self.outcome(
            "verify.github(#!cxtower.secret.missing!#)",
            {"X-Hub-Signature-256": GitHubTest.SIGNATURE},
            GitHubTest.BODY,
        )
        self.assertEqual((ok, reason), (False, "no secret given (None or empty)"))

    def test_every_function_is_callable(self):
        for code in (
            "verify.github('s')",
            "verify.gitlab('s')",
            "verify.stripe('s', tolerance=60)",
            "verify.slack('s')",
            "verify.shopify('s')",
            "verify.bitbucket('s')",
            "verify.standard_webhooks('whsec_AAAA')",
            "verify.twilio('s', url='https://example.com/')",
            "verify.zoom('s')",
            "verify.meta('s')",
            "verify.hmac('s', 'X-Sig', 'sha1', 'base64', 'p=')",
        ):
            with self.subTest(code=code):
                ok, reason = self.outcome(code)
                self.assertIs(ok, False)
                self.assertIn("missing header", reason)

    def test_typical_authenticator(self):
        answer = run(
            authenticator=(
                "result = {'allowed': verify.github(#!cxtower.secret.gh!#),"
                " 'http_code': 401, 'message': verify.reason}"
            ),
            webhook="result = {'exit_code': 0, 'message': 'accepted'}",
            headers={"X-Hub-Signature-256": GitHubTest.SIGNATURE},
            raw_data=GitHubTest.BODY,
            secrets={"gh": GitHubTest.SECRET},
        )
        self.assertWebhookOk(answer, "accepted")
        answer = run(
            authenticator=(
                "result = {'allowed': verify.github(#!cxtower.secret.gh!#),"
                " 'http_code': 401, 'message': verify.reason}"
            ),
            headers={"X-Hub-Signature-256": GitHubTest.SIGNATURE},
            raw_data=b"forged",
            secrets={"gh": GitHubTest.SECRET},
        )
        self.assertAuthFailed(answer, 401, "signature in X-Hub-Signature-256 does not match")

    def test_webhook_code_verifies_the_raw_body_it_cannot_see(self):
        answer = run(
            webhook="result['message'] = verify.github(#!cxtower.secret.gh!#)",
            headers={"X-Hub-Signature-256": GitHubTest.SIGNATURE},
            raw_data=GitHubTest.BODY,
            secrets={"gh": GitHubTest.SECRET},
        )
        self.assertEqual(answer[:3], ("ok", 200, "true"))
        answer = run(webhook="result['message'] = raw_data", raw_data=b"x")
        self.assertWebhookFailed(answer, "name 'raw_data' is not defined")

    def test_editing_headers_does_not_change_what_is_verified(self):
        answer = run(
            authenticator=(
                "headers['X-Hub-Signature-256'] = 'sha256=' + hmac.new(b'k', raw_data,"
                " hashlib.sha256).hexdigest()\n"
                "result = {'allowed': verify.github('k'), 'message': verify.reason}"
            ),
            headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
            raw_data=b"body",
        )
        self.assertAuthFailed(answer, 403, "does not match")

    def test_internals_cannot_be_named_or_changed(self):
        for code, expected in (
            ("x = verify._Verify__request", "forbidden name"),
            ("verify.reason = ''", "forbidden opcode"),
            ("x = verify.github.__self__", "forbidden name"),
            ("x = verify.request", "has no attribute 'request'"),
            ("x = verify._request", "has no attribute '_request'"),
        ):
            with self.subTest(code=code):
                answer = run(webhook=code)
                self.assertWebhookFailed(answer, expected)

    def test_format_strings_cannot_reach_internals(self):
        answer = run(webhook="result['message'] = '{0._Verify__request}'.format(verify)")
        self.assertWebhookFailed(answer)
        self.assertNotIn("Request", answer[3].replace("Verify__request", ""))


class RequestNamesTest(SandboxTestCase):
    CODE = "result['message'] = [url, method, query, client_ip, request_id]"

    def names(self, payload=None, **context):
        answer = run(
            webhook=self.CODE,
            payload=payload,
            context=dict({"timeout_seconds": 30}, **context),
        )
        self.assertEqual(answer[0], "ok", answer)
        return json.loads(answer[2])

    def test_from_the_context(self):
        self.assertEqual(
            self.names(
                url="https://hooks.example.com/cetmix_tower_webhooks/x?a=1",
                method="POST",
                query={"a": "1"},
                client_ip="203.0.113.7",
                request_id="r-42",
            ),
            [
                "https://hooks.example.com/cetmix_tower_webhooks/x?a=1",
                "POST",
                {"a": "1"},
                "203.0.113.7",
                "r-42",
            ],
        )

    def test_defaults(self):
        self.assertEqual(self.names(), [None, None, {}, None, None])
        # The method in upper case; the query from the URL, first value per key.
        self.assertEqual(
            self.names(url="https://h/p?a=1&a=2&b=", method="get")[:3],
            ["https://h/p?a=1&a=2&b=", "GET", {"a": "1", "b": ""}],
        )
        # A GET's payload is its query, as the module parses it.
        self.assertEqual(self.names({"q": "x"}, method="GET")[2], {"q": "x"})
        self.assertEqual(self.names({"q": "x"}, method="POST")[2], {})

    def test_only_built_for_snippets_that_name_them(self):
        built = []
        original = checks.Request

        def spy(*args):
            built.append(args)
            return original(*args)

        checks.Request = spy
        try:
            self.assertWebhookOk(run(webhook="result['message'] = headers.get('url')"))
            self.assertEqual(built, [])
            self.assertWebhookOk(run(webhook="result['message'] = method"))
            self.assertEqual(len(built), 1)
        finally:
            checks.Request = original
        prepared = runner.prepare("webhook", "result['message'] = payload", {})
        self.assertEqual(prepared.uses_request, ())
        prepared = runner.prepare("authenticator", "ok = verify.github('s')", {})
        self.assertEqual(prepared.uses_request, ("verify",))

    def test_a_snippet_may_still_use_the_names_for_its_own_variables(self):
        answer = run(webhook="url = 'mine'\nmethod = 1\nresult['message'] = [url, method]")
        self.assertEqual(answer[:3], ("ok", 200, '["mine", 1]'))


class VerifyReachabilityTest(ReachabilityTestCase):
    def test_verify_and_the_request_names(self):
        objects = self.assertNothingReachable(
            "payload['objects'] = {'verify': verify, 'github': verify.github,"
            " 'reason': verify.reason, 'query': query, 'url': url}",
            context={"timeout_seconds": 30, "url": "https://h/p?a=1", "query": {"a": "1"}},
        )
        self.assertIsInstance(objects["verify"], checks.Verify)
        # Nothing but the functions and the reason is reachable from the object.
        reached = {path for path, _obj in _reach(objects["verify"]).values()}
        self.assertEqual(
            reached,
            {"root"}
            | {
                "root." + name
                for name in (
                    "bitbucket", "github", "gitlab", "hmac", "meta", "shopify", "slack",
                    "standard_webhooks", "stripe", "twilio", "zoom",
                )
            },
        )


def _reach(obj):
    from . import reachability

    return reachability.reach(obj)
