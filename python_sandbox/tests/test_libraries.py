"""The wrapped libraries: exposed attributes, lazy imports, deadlines, offline tldextract."""

import json
import os
import socket
import sys
import tempfile
import time
import unittest
from unittest import mock

import towerhook_sandbox as sandbox
from towerhook_sandbox import libraries

from .local_servers import DnsServer, HttpServer, SilentServer
from .support import SandboxTestCase, configure, run


class FixedGuard:
    def __init__(self, remaining):
        self._remaining = remaining

    def enter(self, kind):
        pass

    def leave(self):
        pass

    def remaining(self):
        return self._remaining


def context(remaining):
    return {"guard": FixedGuard(remaining), "timeout_seconds": 30}


EXPOSED = {
    "time": {"time", "strptime", "strftime", "sleep"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone", "tzinfo", "MAXYEAR", "MINYEAR"},
    "requests": {"post", "get", "delete", "request"},
    "json": {"dumps", "loads"},
    "hashlib": {
        "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384",
        "sha3_512", "shake_128", "shake_256", "blake2b", "blake2s", "md5", "new",
    },
    "hmac": {"new", "compare_digest"},
    "tldextract": {"extract"},
}  # fmt: skip


class ExposedAttributesTest(SandboxTestCase):
    def test_listed_attributes_exist(self):
        for library, names in EXPOSED.items():
            for name in sorted(names):
                with self.subTest(library=library, name=name):
                    self.assertWebhookOk(run(webhook="x = %s.%s" % (library, name)))

    def test_other_attributes_are_absent(self):
        for library, name in (
            ("time", "localtime"),
            ("time", "monotonic"),
            ("datetime", "sys"),
            ("requests", "Session"),
            ("requests", "session"),
            ("requests", "put"),
            ("requests", "adapters"),
            ("json", "load"),
            ("json", "decoder"),
            ("hashlib", "algorithms_available"),
            ("hmac", "HMAC"),
            ("hmac", "digest"),
            ("tldextract", "TLDExtract"),
            ("tldextract", "tldextract"),
            ("dateutil", "easter"),
            ("dateutil.tz", "tzlocal"),
            ("dateutil.parser", "parser"),
            ("dns.resolver", "Resolver"),
            ("dns.reversename", "ipv4_reverse_domain"),
            ("dns.exception", "Timeout"),
        ):
            with self.subTest(library=library, name=name):
                self.assertWebhookFailed(
                    run(webhook="x = %s.%s" % (library, name)),
                    "AttributeError(\"'wrap_module' object has no attribute %r\")" % name,
                )

    def test_dateutil_and_dns_members(self):
        for expression in (
            "dateutil.tz.UTC", "dateutil.tz.tzutc", "dateutil.tz.gettz",
            "dateutil.parser.parse", "dateutil.parser.isoparse",
            "dateutil.relativedelta.relativedelta", "dateutil.relativedelta.SU",
            "dateutil.rrule.rrulestr", "dateutil.rrule.SECONDLY", "dateutil.rrule.MO",
            "dns.resolver.resolve", "dns.resolver.query", "dns.reversename.from_address",
            "dns.reversename.to_address", "dns.exception.DNSException",
        ):  # fmt: skip
            with self.subTest(expression=expression):
                self.assertWebhookOk(run(webhook="x = " + expression))

    def test_wrappers_show_as_wrapped(self):
        self.assertWebhookOk(run(webhook="result['message'] = repr(json)"), "<wrapped 'json'>")
        answer = run(webhook="result['message'] = repr(dns)")
        self.assertWebhookOk(answer)
        self.assertTrue(answer[3].startswith("namespace(resolver=<wrapped 'dns.resolver'>"))

    def test_shared_wrappers_cannot_be_changed(self):
        for code in ("json.dumps = 1", "del json.dumps", "json['dumps'] = 1"):
            with self.subTest(code=code):
                self.assertWebhookFailed(run(webhook=code))
        self.assertWebhookOk(run(webhook="x = json.dumps"))


class MissingPackageTest(unittest.TestCase):
    def tearDown(self):
        configure()

    def test_missing_package_is_named_when_used(self):
        cases = {
            "requests": ("requests.get('http://127.0.0.1:9/')", "requests", "requests"),
            "dns": ("dns.resolver.resolve('example.com')", "dns.resolver", "dnspython"),
            "tldextract": ("tldextract.extract('a.b.com')", "tldextract", "tldextract"),
            "dateutil": ("dateutil.parser.parse('2024-01-01')", "dateutil", "python-dateutil"),
            "pytz": ("timezone('UTC')", "timezone", "pytz"),
        }
        for module, (code, title, package) in cases.items():
            with self.subTest(module=module):
                hidden = {
                    name: None
                    for name in list(sys.modules) + [module]
                    if name == module or name.startswith(module + ".")
                }
                with mock.patch.dict(sys.modules, hidden):
                    # Starting (with preloading) does not fail.
                    sandbox.configure({"preload_libraries": True, "timeout_seconds": 30})
                    answer = run(webhook=code)
                self.assertEqual(answer[:2], ("code_failed", 500), answer)
                self.assertIn(
                    "%s is not available: the Python package %r is not installed in "
                    "towerhook's environment (pip install %s" % (title, package, package),
                    answer[3],
                )
                # Other libraries keep working.
                configure()
                self.assertEqual(run(webhook="x = json.dumps(1)")[0], "ok")


class RequestsDeadlineTest(SandboxTestCase):
    """The timeout each request is sent with (seen by requests' transport adapter, which
    then sends it for real to a server on 127.0.0.1)."""

    def setUp(self):
        super().setUp()
        self.server = HttpServer()
        self.addCleanup(self.server.close)

    def sent_with(self, code, remaining, **settings):
        import requests.adapters

        timeouts = []
        real_send = requests.adapters.HTTPAdapter.send

        def spy(adapter, request, *args, **kwargs):
            timeouts.append(kwargs.get("timeout"))
            return real_send(adapter, request, *args, **kwargs)

        configure(**settings)
        with mock.patch.object(requests.adapters.HTTPAdapter, "send", spy):
            answer = run(webhook=code % {"url": self.server.url("/")}, context=context(remaining))
        return answer, timeouts

    def test_timeout_bounded_by_remaining_time(self):
        cases = [
            ("requests.get('%(url)s', params={'a': 1})", 5.0, 5.0),
            ("requests.post('%(url)s', json={}, timeout=2)", 5.0, 2),
            ("requests.delete('%(url)s', timeout=100)", 5.0, 5.0),
            ("requests.request('PATCH', '%(url)s', timeout=(3, 100))", 5.0, (3, 5.0)),
            ("requests.get('%(url)s', timeout=(None, 1))", 5.0, (5.0, 1)),
            ("requests.get('%(url)s', timeout=7)", float("inf"), 7),
            # No timeout from the snippet: towerhook's default, bounded the same way.
            ("requests.get('%(url)s')", float("inf"), 30.0),
            ("requests.get('%(url)s', timeout=(None, 4))", float("inf"), (30.0, 4)),
            ("requests.get('%(url)s')", 12.0, 12.0),
        ]
        for code, remaining, timeout in cases:
            with self.subTest(code=code, remaining=remaining):
                answer, timeouts = self.sent_with(code, remaining)
                self.assertWebhookOk(answer)
                self.assertEqual(timeouts, [timeout])

    def test_default_timeout_is_a_setting(self):
        answer, timeouts = self.sent_with(
            "requests.get('%(url)s')", float("inf"), outbound_timeout_seconds=2.5
        )
        self.assertWebhookOk(answer)
        self.assertEqual(timeouts, [2.5])
        answer, timeouts = self.sent_with(
            "requests.get('%(url)s')", 1.0, outbound_timeout_seconds=2.5
        )
        self.assertEqual(timeouts, [1.0])

    def test_arguments_pass_through(self):
        code = (
            "r = requests.post('%(url)secho?x=1', data=b'd', headers={'A': 'b'})\n"
            "result['message'] = r.text"
        )
        answer, _timeouts = self.sent_with(code, 5.0)
        self.assertWebhookOk(answer)
        echoed = json.loads(answer[3])
        self.assertEqual((echoed["method"], echoed["body"]), ("POST", "d"))
        self.assertEqual(echoed["headers"]["A"], "b")
        self.assertEqual(self.server.requests[-1]["target"], "/echo?x=1")

    def test_no_time_left(self):
        answer, timeouts = self.sent_with("requests.get('%(url)s')", 0.0)
        self.assertWebhookFailed(answer, "execution timed out after 30 s")
        self.assertEqual(timeouts, [])
        self.assertEqual(self.server.requests, [])

    def test_real_request_is_cut_by_the_deadline(self):
        # A server that accepts and never answers: the bounded timeout ends the call.
        silent = SilentServer()
        self.addCleanup(silent.close)
        started = time.monotonic()
        answer = run(webhook="requests.get(%r)" % silent.url(), context=context(0.5))
        self.assertLess(time.monotonic() - started, 5)
        self.assertWebhookFailed(answer, "ReadTimeout")

    def test_default_timeout_cuts_a_silent_server(self):
        silent = SilentServer()
        self.addCleanup(silent.close)
        configure(outbound_timeout_seconds=0.3)
        started = time.monotonic()
        answer = run(webhook="requests.get(%r)" % silent.url())
        self.assertLess(time.monotonic() - started, 3)
        self.assertWebhookFailed(answer, "ReadTimeout")


class DnsDeadlineTest(SandboxTestCase):
    def test_lifetime_bounded(self):
        import dns.resolver

        server = DnsServer()
        self.addCleanup(server.close)
        lifetimes = []
        real_resolve = dns.resolver.Resolver.resolve

        def spy(resolver, *args, **kwargs):
            lifetimes.append(args[7] if len(args) > 7 else kwargs.get("lifetime"))
            return real_resolve(resolver, *args, **kwargs)

        with mock.patch.object(dns.resolver, "default_resolver", server.resolver()), \
                mock.patch.object(dns.resolver.Resolver, "resolve", spy):  # fmt: skip
            for code, remaining, expected in (
                ("dns.resolver.resolve('www.example.test', 'A')", 3.0, 3.0),
                ("dns.resolver.resolve('www.example.test', lifetime=1)", 3.0, 1),
                ("dns.resolver.query('example.test', 'MX', lifetime=10)", 3.0, 3.0),
                ("dns.resolver.resolve('www.example.test')", float("inf"), None),
                (
                    "dns.resolver.resolve('www.example.test', 'A', 'IN', False, None,"
                    " True, 0, 9)",
                    2.0,
                    2.0,
                ),
            ):
                with self.subTest(code=code):
                    lifetimes.clear()
                    self.assertWebhookOk(run(webhook=code, context=context(remaining)))
                    self.assertEqual(lifetimes, [expected])


class SleepTest(SandboxTestCase):
    def test_sleeps_in_short_slices(self):
        slept = []

        class Clock:
            now = 0.0

            def monotonic(self):
                return self.now

            def sleep(self, seconds):
                slept.append(seconds)
                self.now += seconds

        with mock.patch.object(libraries, "_time", Clock()):
            self.assertWebhookOk(run(webhook="time.sleep(1)", context=context(10.0)))
        self.assertAlmostEqual(sum(slept), 1.0)
        self.assertTrue(all(0 < part <= libraries.SLEEP_SLICE for part in slept), slept)

    def test_real_sleep(self):
        started = time.monotonic()
        self.assertWebhookOk(run(webhook="time.sleep(0.1)\ntime.sleep(0)"))
        self.assertGreaterEqual(time.monotonic() - started, 0.1)

    def test_bad_arguments(self):
        self.assertWebhookFailed(
            run(webhook="time.sleep('1')"),
            "TypeError(\"'str' object cannot be interpreted as an integer\")",
        )
        self.assertWebhookFailed(
            run(webhook="time.sleep(-1)"),
            "ValueError('sleep length must be non-negative')",
        )


class OfflineTldextractTest(unittest.TestCase):
    def test_no_network_and_no_disk(self):
        def no_network(*args, **kwargs):
            raise OSError("network disabled in this test")

        import tldextract

        package_dir = os.path.dirname(tldextract.__file__)
        before = sorted(os.listdir(package_dir))
        with tempfile.TemporaryDirectory() as home:
            environment = {
                "HOME": home,
                "XDG_CACHE_HOME": os.path.join(home, "cache"),
                "TLDEXTRACT_CACHE": os.path.join(home, "tld"),
            }
            with mock.patch.dict(os.environ, environment), mock.patch.object(
                socket.socket, "connect", no_network
            ), mock.patch.object(socket, "getaddrinfo", no_network), mock.patch.object(
                socket, "create_connection", no_network
            ), mock.patch.object(libraries, "_extractor", None):
                configure()
                answer = run(
                    webhook=(
                        "r = tldextract.extract('http://a.b.example.co.uk:8080/x')\n"
                        "p = tldextract.extract('x.blogspot.com', include_psl_private_domains=True)\n"
                        "result['message'] = '%s %s %s %s' % (r.subdomain, r.domain, r.suffix, p.suffix)"
                    )
                )
            self.assertEqual(answer[:2], ("ok", 200), answer)
            self.assertEqual(answer[3], "a.b example co.uk blogspot.com")
            self.assertEqual(os.listdir(home), [])
        self.assertEqual(sorted(os.listdir(package_dir)), before)
        configure()
