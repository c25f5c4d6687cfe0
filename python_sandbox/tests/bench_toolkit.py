"""Cost of the provider toolkit in run_call, without the Rust host (not a unit test).

    PYTHONPATH=.python-packages:python_sandbox $PYO3_PYTHON -S \
        python_sandbox/tests/bench_toolkit.py

Times one run_call of: the trivial POST (allow-all authenticator, one-line webhook), the
demo's hand-written GitHub HMAC authenticator (bench/hmac), the same check with
``verify.github`` (bench/verify), and a webhook answering a shaped response. Pass
``--before`` to skip the toolkit cases (to time an older checkout of the package).
"""

import hashlib
import hmac
import sys
import timeit

import towerhook_sandbox as sandbox

SECRET = "demo-webhook-secret"
BODY = b'{"ref": "refs/heads/main", "event": "bench"}'
HAND_WRITTEN = """signature = headers.get("X-Hub-Signature-256", "")
digest = hmac.new(#!cxtower.secret.demo_github_secret!#.encode(), raw_data, hashlib.sha256).hexdigest()
result = {
    "allowed": hmac.compare_digest("sha256=" + digest, signature),
    "http_code": 401,
    "message": "Invalid signature",
}"""
WITH_VERIFY = """result = {
    "allowed": verify.github(#!cxtower.secret.demo_github_secret!#),
    "http_code": 401,
    "message": verify.reason,
}"""
SECRETS = {"demo_github_secret": SECRET}


def main():
    before = "--before" in sys.argv
    sandbox.configure({"preload_libraries": True, "timeout_seconds": 30})
    signature = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc",
        "Accept": "*/*",
    }
    trivial = sandbox.prepare("webhook", "result = {'exit_code': 0, 'message': 'ok'}", {})
    allow = sandbox.prepare("authenticator", "result = {'allowed': True}", {})
    cases = [
        ("trivial", allow, trivial),
        ("hand-written HMAC", sandbox.prepare("authenticator", HAND_WRITTEN, SECRETS), trivial),
    ]
    if not before:
        cases.append(
            ("verify.github", sandbox.prepare("authenticator", WITH_VERIFY, SECRETS), trivial)
        )
        shaped = sandbox.prepare(
            "webhook",
            "result = {'exit_code': 0, 'response': {'content_type': 'text/xml',"
            " 'body': '<Response/>'}}",
            {},
        )
        cases.append(("shaped response", allow, shaped))

    for name, auth, hook in cases:

        def call():
            return sandbox.run_call(
                auth, hook, dict(headers), BODY, {"ref": "x"}, {"timeout_seconds": 30}
            )

        answer = call()
        assert answer[0] == "ok", answer
        number = 20000
        best = min(timeit.repeat(call, number=number, repeat=7))
        print("%-20s %6.2f us per run_call" % (name, best / number * 1e6))


if __name__ == "__main__":
    main()
