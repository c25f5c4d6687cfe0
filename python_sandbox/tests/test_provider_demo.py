"""The provider demo definitions (demo/webhooks/providers.yaml) run as the host runs them:
each handshake and signed call end to end through ``run_call``, with the request context
the host passes (``url``, ``method``...) and the secrets of demo/secrets.yaml.

The server tests (through HTTP) belong to the Rust side; these show that the snippets of
the demo do what docs/provider-toolkit.md says, and what the host gets back.
"""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import towerhook_sandbox as sandbox

from .support import SandboxTestCase

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://hooks.example.com/cetmix_tower_webhooks/"


def _records(path):
    """``{(model, reference): {"code": ..., "endpoint": ..., ...}}`` of a demo file.

    The tests run without site-packages (no PyYAML): this reads the plain subset the demo
    files use (top-level ``key: value`` fields and ``code: |`` blocks)."""
    records = {}
    current = None
    block = None
    for line in path.read_text().splitlines():
        if block is not None:
            if line.startswith("    ") or not line.strip():
                block.append(line[4:])
                continue
            current["code"] = "\n".join(block).rstrip() + "\n"
            block = None
        if line.startswith("- cetmix_tower_model:"):
            current = {"model": line.split(":", 1)[1].strip()}
            records[id(current)] = current
        elif current is not None and line.startswith("  ") and ":" in line:
            key, value = line.strip().split(":", 1)
            if value.strip() == "|":
                block = []
            else:
                current[key] = value.strip()
    if block is not None:
        current["code"] = "\n".join(block).rstrip() + "\n"
    return {(r["model"], r["reference"]): r for r in records.values()}


def _secrets(path):
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(":", 1)
            values[key.strip()] = value.strip()
    return values


RECORDS = _records(ROOT / "demo" / "webhooks" / "providers.yaml")
SECRETS = _secrets(ROOT / "demo" / "secrets.yaml")


class ProviderDemoTest(SandboxTestCase):
    def call(self, endpoint, method="post", headers=None, body=b"", payload=None, **context):
        """One call to the demo webhook at ``endpoint``, as the host makes it."""
        hooks = [
            r
            for (model, _ref), r in RECORDS.items()
            if model == "webhook" and r["endpoint"] == endpoint and r["method"] == method
        ]
        self.assertEqual(len(hooks), 1, endpoint)
        webhook = hooks[0]
        authenticator = RECORDS[("webhook_authenticator", webhook["authenticator_id"])]
        if payload is None:
            payload = json.loads(body) if body else {}
        url = PUBLIC + endpoint
        context = dict(
            {
                "timeout_seconds": 30,
                "url": url if method == "post" else url + "?" + urlencode(payload),
                "method": method.upper(),
                "client_ip": "203.0.113.9",
                "request_id": "r-test",
            },
            **context,
        )
        return sandbox.run_call(
            sandbox.prepare("authenticator", authenticator["code"], SECRETS),
            sandbox.prepare("webhook", webhook["code"], SECRETS),
            dict(headers or {}),
            body,
            payload,
            context,
        )

    def test_every_demo_snippet_prepares(self):
        for (model, reference), record in RECORDS.items():
            kind = "webhook" if model == "webhook" else "authenticator"
            prepared = sandbox.prepare(kind, record["code"], SECRETS)
            with self.subTest(reference=reference):
                self.assertIsNone(prepared.error)
        self.assertEqual(
            sorted(r["endpoint"] for (m, _), r in RECORDS.items() if m == "webhook"),
            [
                "bench/verify",
                "demo/github-verify",
                "demo/meta",
                "demo/meta",
                "demo/slack",
                "demo/stripe",
                "demo/twilio",
                "demo/zoom",
            ],
        )

    def test_github(self):
        body = b'{"ref": "refs/heads/main"}'
        signature = "sha256=" + hmac.new(
            SECRETS["demo_github_secret"].encode(), body, hashlib.sha256
        ).hexdigest()
        answer = self.call("demo/github-verify", headers={"X-Hub-Signature-256": signature}, body=body)
        self.assertWebhookOk(answer, "push to refs/heads/main accepted")
        answer = self.call("demo/github-verify", headers={"X-Hub-Signature-256": signature}, body=body + b" ")
        self.assertAuthFailed(answer, 401, "signature in X-Hub-Signature-256 does not match")

    def stripe_header(self, stamp, body):
        signed = b"%d." % stamp + body
        digest = hmac.new(SECRETS["demo_stripe_secret"].encode(), signed, hashlib.sha256)
        return "t=%d,v1=%s" % (stamp, digest.hexdigest())

    def test_stripe(self):
        body = b'{"id": "evt_1", "type": "invoice.paid"}'
        now = int(time.time())
        answer = self.call("demo/stripe", headers={"Stripe-Signature": self.stripe_header(now, body)}, body=body)
        self.assertWebhookOk(answer, "stripe event invoice.paid received")
        stale = self.stripe_header(now - 600, body)
        answer = self.call("demo/stripe", headers={"Stripe-Signature": stale}, body=body)
        self.assertAuthFailed(answer, 400, "old (tolerance 300 s)")

    def slack_headers(self, body, stamp=None):
        stamp = int(time.time()) if stamp is None else stamp
        signed = b"v0:%d:%s" % (stamp, body)
        digest = hmac.new(SECRETS["demo_slack_signing_secret"].encode(), signed, hashlib.sha256)
        return {
            "X-Slack-Signature": "v0=" + digest.hexdigest(),
            "X-Slack-Request-Timestamp": str(stamp),
        }

    def test_slack_url_verification(self):
        body = json.dumps(
            {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
        ).encode()
        answer = self.call("demo/slack", headers=self.slack_headers(body), body=body)
        challenge = b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        self.assertEqual(answer[:2], ("auth_failed", 200))
        self.assertEqual(answer[4], (200, [], "text/plain; charset=utf-8", challenge))
        # The handshake is signed too: an unsigned one is refused.
        answer = self.call("demo/slack", headers={}, body=body)
        self.assertAuthFailed(answer, 401, "missing header X-Slack-Signature")
        self.assertEqual(len(answer), 4)

    def test_slack_event(self):
        body = b'{"type": "event_callback", "event": {"type": "app_mention"}}'
        answer = self.call("demo/slack", headers=self.slack_headers(body), body=body)
        self.assertWebhookOk(answer, "slack app_mention received")

    def test_meta_handshake(self):
        query = {
            "hub.mode": "subscribe",
            "hub.challenge": "1158201444",
            "hub.verify_token": SECRETS["demo_meta_verify_token"],
        }
        answer = self.call("demo/meta", method="get", payload=query)
        self.assertEqual(answer[:4], ("ok", 200, '"1158201444"', "1158201444"))
        self.assertEqual(answer[4], (200, [], "text/plain; charset=utf-8", b"1158201444"))
        answer = self.call("demo/meta", method="get", payload=dict(query, **{"hub.verify_token": "guess"}))
        self.assertAuthFailed(answer, 403, "Wrong hub.mode or hub.verify_token")

    def test_meta_event(self):
        body = b'{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}'
        digest = hmac.new(SECRETS["demo_meta_app_secret"].encode(), body, hashlib.sha256)
        headers = {"X-Hub-Signature-256": "sha256=" + digest.hexdigest()}
        answer = self.call("demo/meta", headers=headers, body=body)
        self.assertWebhookOk(answer, "meta whatsapp_business_account: 1 entries")

    def zoom_headers(self, body):
        stamp = int(time.time())
        signed = b"v0:%d:%s" % (stamp, body)
        digest = hmac.new(SECRETS["demo_zoom_secret"].encode(), signed, hashlib.sha256)
        return {"x-zm-signature": "v0=" + digest.hexdigest(), "x-zm-request-timestamp": str(stamp)}

    def test_zoom_url_validation(self):
        body = b'{"payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}, "event_ts": 1654503849680, "event": "endpoint.url_validation"}'
        answer = self.call("demo/zoom", headers=self.zoom_headers(body), body=body)
        self.assertEqual(answer[:2], ("ok", 200))
        status, headers, content_type, data = answer[4]
        self.assertEqual((status, headers, content_type), (200, [], "application/json"))
        expected = hmac.new(
            SECRETS["demo_zoom_secret"].encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256
        ).hexdigest()
        self.assertEqual(
            json.loads(data), {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
        )
        answer = self.call("demo/zoom", headers={}, body=body)
        self.assertAuthFailed(answer, 401, "missing header x-zm-signature")

    def test_zoom_event(self):
        body = b'{"event": "meeting.started", "payload": {}}'
        answer = self.call("demo/zoom", headers=self.zoom_headers(body), body=body)
        self.assertWebhookOk(answer, "zoom meeting.started received")

    def test_twilio_twiml_reply(self):
        fields = {"MessageSid": "SM1", "From": "+14155550100", "Body": "Hi <3 & bye"}
        body = urlencode(fields).encode()
        url = PUBLIC + "demo/twilio"
        signed = url + "".join(k + fields[k] for k in sorted(fields))
        signature = base64.b64encode(
            hmac.new(SECRETS["demo_twilio_auth_token"].encode(), signed.encode(), hashlib.sha1).digest()
        ).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        answer = self.call("demo/twilio", headers=headers, body=body, payload=fields)
        twiml = (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b"<Response><Message>Received: Hi &lt;3 &amp; bye</Message></Response>"
        )
        self.assertEqual(answer[:2], ("ok", 200))
        self.assertEqual(answer[4], (200, [], "text/xml", twiml))
        # Without the public URL, towerhook cannot check what Twilio signed.
        answer = self.call("demo/twilio", headers=headers, body=body, payload=fields, url=None)
        self.assertAuthFailed(answer, 403, "the public URL is unknown")
