"""Nothing one webhook does reaches another: the attacks of the isolation issue.

Each test runs a victim snippet, then the attack (refused, or harmless), then the victim
again: its answer must be the same as before. (The Rust tests in
``tests/sandbox_isolation.rs`` run the same attacks through the server.)
"""

import base64
import os
import tempfile
import threading
import time
from unittest import mock

from .fake_odoo import FakeOdoo
from .local_servers import DnsServer, HttpServer, SilentServer, closed_port
from .support import SandboxTestCase, configure, run


class IsolationCase(SandboxTestCase):
    def assertVictimUnaffected(self, victim, attacks, victim_context=None, attack_context=None):
        """Runs ``victim``, every attack (each must fail or do nothing), ``victim`` again.

        ``attacks``: ``(code, expected_text)``; the attack fails with a message containing
        the text. Returns the victim's answer."""
        before = run(webhook=victim, context=victim_context)
        self.assertWebhookOk(before)
        for code, expected in attacks:
            with self.subTest(attack=code):
                answer = run(webhook=code, context=attack_context)
                self.assertWebhookFailed(answer, expected)
        after = run(webhook=victim, context=victim_context)
        self.assertEqual(after, before)
        return before


class RequestsInternalsTest(IsolationCase):
    """Finding 1: a response led to urllib3's module-level pool classes."""

    def setUp(self):
        super().setUp()
        self.server = HttpServer("the-real-server")
        self.addCleanup(self.server.close)

    def test_a_response_leads_nowhere(self):
        url = self.server.url("/json")
        victim = "result['message'] = requests.get(%r).json()['served_by']" % url
        fetch = "r = requests.get(%r)\n" % url
        answer = self.assertVictimUnaffected(
            victim,
            [
                (
                    fetch + "m = r.connection.poolmanager.pool_classes_by_scheme\n"
                    "m['http'] = m['https']",
                    "'Response' object has no attribute 'connection'",
                ),
                (fetch + "r.raw._pool.ConnectionCls", "has no attribute 'raw'"),
                (fetch + "r.request.headers", "has no attribute 'request'"),
                (fetch + "r._content = b''", "forbidden opcode"),
                (fetch + "x = r._Response__copy", "forbidden name '_Response__copy'"),
                (fetch + "x = '{0._Response__copy}'.format(r)", "forbidden name"),
                (fetch + "r.cookies.set('a', 'b')", "'dict' object has no attribute 'set'"),
                (fetch + "x = r.history[0]", "IndexError"),
            ],
        )
        self.assertEqual(answer[3], "the-real-server")


class FailedRequestInternalsTest(IsolationCase):
    """Finding 2: a failed request's exception led to the pool, its lock, its connection
    class and its socket options."""

    def setUp(self):
        super().setUp()
        self.server = HttpServer("the-real-server")
        self.addCleanup(self.server.close)
        self.silent = SilentServer()
        self.addCleanup(self.silent.close)

    def test_exceptions_lead_nowhere(self):
        victim = "result['message'] = requests.get(%r).text" % self.server.url("/")
        refused = "try:\n    requests.get('http://127.0.0.1:%d/')\nexcept Exception as e:\n" % (
            closed_port()
        )
        timed_out = "try:\n    requests.get(%r, timeout=0.2)\nexcept Exception as e:\n" % (
            self.silent.url()
        )
        not_found = "try:\n    requests.get(%r).raise_for_status()\nexcept Exception as e:\n" % (
            self.server.url("/status/404")
        )
        answer = self.assertVictimUnaffected(
            victim,
            [
                (
                    refused
                    + "    e.args[0].pool.ConnectionCls.default_socket_options.append((0, 12345, 1))",
                    "'str' object has no attribute 'pool'",
                ),
                (refused + "    e.args[0].pool.pool.mutex.acquire()", "has no attribute 'pool'"),
                (refused + "    e.args[0].reason.conn.sock", "has no attribute 'reason'"),
                (refused + "    e.request.headers", "'NoneType' object has no attribute"),
                (timed_out + "    e.args[0].pool.pool.mutex.acquire()", "has no attribute 'pool'"),
                (not_found + "    e.response.connection", "has no attribute 'connection'"),
                (not_found + "    e.response.raw", "has no attribute 'raw'"),
            ],
        )
        self.assertEqual(answer[3], "hello from the-real-server")

    def test_the_message_of_a_failure_is_kept(self):
        answer = run(
            webhook="try:\n    requests.get('http://127.0.0.1:%d/')\nexcept Exception as e:\n"
            "    result['message'] = repr(e)" % closed_port()
        )
        self.assertWebhookOk(answer)
        self.assertTrue(answer[3].startswith("ConnectionError('HTTPConnectionPool("), answer)
        self.assertIn("Connection refused", answer[3])


class EnvironmentCredentialsTest(IsolationCase):
    """Finding 3: requests read .netrc and the proxy variables, and verify=PATH probed the
    host's files."""

    def setUp(self):
        super().setUp()
        self.server = HttpServer("the-real-server")
        self.addCleanup(self.server.close)
        self.env_proxy = HttpServer("env-proxy")
        self.addCleanup(self.env_proxy.close)
        home = tempfile.TemporaryDirectory()
        self.addCleanup(home.cleanup)
        netrc = os.path.join(home.name, ".netrc")
        with open(netrc, "w") as file:
            file.write("machine 127.0.0.1 login netrc-user password netrc-secret\n")
        os.chmod(netrc, 0o600)
        proxy = "http://proxy-user:proxy-secret@127.0.0.1:%d" % self.env_proxy.port
        environment = {
            "HOME": home.name,
            "NETRC": netrc,
            "HTTP_PROXY": proxy,
            "http_proxy": proxy,
            "HTTPS_PROXY": proxy,
            "ALL_PROXY": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
            "REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem",
        }
        patcher = mock.patch.dict(os.environ, environment)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_the_environment_is_ignored(self):
        victim = (
            "r = requests.get(%r)\n"
            "result['message'] = '%%s %%s' %% (r.json()['served_by'],"
            " r.json()['headers'].get('Authorization'))" % self.server.url("/echo")
        )
        refused = "try:\n    requests.get('http://127.0.0.1:%d/')\nexcept Exception as e:\n" % (
            closed_port()
        )
        answer = self.assertVictimUnaffected(
            victim,
            [
                (refused + "    x = e.request.headers['Authorization']", "'NoneType' object"),
                (refused + "    raise Exception(str(e))", "Connection refused"),
                (
                    "requests.get(%r, verify='/etc/passwd')" % self.server.url("/"),
                    "verify must be True or False",
                ),
                (
                    "requests.get(%r, verify='/no/such/file')" % self.server.url("/"),
                    "verify must be True or False",
                ),
                (
                    "requests.get(%r, proxies={'http': 'http://127.0.0.1:%d'})"
                    % (self.server.url("/"), self.env_proxy.port),
                    "proxies cannot be set by webhook code",
                ),
                ("requests.get(%r, cert='/etc/passwd')" % self.server.url("/"), "cert"),
            ],
        )
        self.assertEqual(answer[3], "the-real-server None")
        # Straight to the server, without the environment's proxy or netrc credentials.
        self.assertEqual(self.env_proxy.requests, [])
        self.assertTrue(all(not r["proxied"] for r in self.server.requests))
        self.assertTrue(all("Authorization" not in r["headers"] for r in self.server.requests))
        # The failure's text names neither secret.
        answer = run(webhook=refused + "    result['message'] = repr(e)")
        self.assertNotIn("secret", answer[3])

    def test_a_path_for_verify_tells_nothing_about_the_host(self):
        first = run(webhook="requests.get('https://127.0.0.1:1/', verify='/etc/passwd')")
        second = run(webhook="requests.get('https://127.0.0.1:1/', verify='/no/such/file')")
        self.assertWebhookFailed(first)
        self.assertEqual(first, second)


class OutboundProxyTest(IsolationCase):
    """The operator's proxy (towerhook setting): used, and its credentials out of reach."""

    def setUp(self):
        super().setUp()
        self.server = HttpServer("the-real-server")
        self.addCleanup(self.server.close)
        self.proxy = HttpServer("configured-proxy")
        self.addCleanup(self.proxy.close)

    def test_requests_go_through_the_configured_proxy(self):
        configure(outbound_proxy="http://op%%40user:pr0xy-s3cret@127.0.0.1:%d" % self.proxy.port)
        answer = run(
            webhook="r = requests.post(%r, json={'a': 1})\nresult['message'] = r.json()['served_by']"
            % self.server.url("/echo")
        )
        self.assertWebhookOk(answer, "configured-proxy")
        self.assertEqual(self.server.requests, [])
        (sent,) = self.proxy.requests
        self.assertTrue(sent["proxied"])
        self.assertEqual(sent["target"], self.server.url("/echo"))
        self.assertEqual(
            sent["headers"]["Proxy-Authorization"],
            "Basic " + base64.b64encode(b"op@user:pr0xy-s3cret").decode(),
        )

    def test_the_proxy_credentials_never_reach_a_snippet(self):
        port = closed_port()
        configure(outbound_proxy="http://op%%40user:pr0xy-s3cret@127.0.0.1:%d" % port)
        answer = run(
            webhook="try:\n    requests.get(%r)\nexcept Exception as e:\n"
            "    result['message'] = repr(e) + str(e.args) + repr(e.response)" % self.server.url("/")
        )
        self.assertWebhookOk(answer)
        self.assertIn("ProxyError", answer[3])
        for secret in ("pr0xy-s3cret", "op@user", "op%40user"):
            self.assertNotIn(secret, answer[3])


    def test_a_bad_proxy_url_is_refused_at_start_without_repeating_it(self):
        from towerhook_sandbox import outbound

        for proxy in (
            "http://op-user:pr0xy-s3cret@127.0.0.1:99999",
            "http://op-user:pr0xy-s3cret@",
            "http://op-user:pr0xy-s3cret@bad host:1",
            "socks5://op-user:pr0xy-s3cret@127.0.0.1:1080",
            "op-user:pr0xy-s3cret@127.0.0.1:3128",
        ):
            with self.subTest(proxy=proxy):
                with self.assertRaises(ValueError) as raised:
                    outbound.configure(30, proxy)
                self.assertNotIn("s3cret", str(raised.exception))
                self.assertIn("outbound_proxy is not a proxy URL", str(raised.exception))

    def test_credentials_are_cut_from_library_messages(self):
        import requests

        from towerhook_sandbox import outbound

        configure(outbound_proxy="http://op%40user:pr0xy%2Fs3cret@127.0.0.1:3128")
        for text in (
            "Failed to parse: http://op%40user:pr0xy%2Fs3cret@127.0.0.1:3128",
            "proxy op@user with pr0xy/s3cret",
        ):
            narrow = outbound._narrow_error(requests.exceptions.ProxyError(text))
            self.assertEqual(type(narrow).__name__, "ProxyError")
            self.assertNotIn("s3cret", str(narrow))
            self.assertNotIn("op@user", str(narrow))
            self.assertNotIn("op%40user", str(narrow))


class SharedLibraryStateTest(IsolationCase):
    """Finding 4: pytz zones, rrulestr's maps, DNSException.supp_kwargs, dateutil's tz
    cache lock were state shared by every call."""

    def test_pytz_transition_tables(self):
        victim = (
            "d = timezone('Asia/Kolkata').localize(datetime.datetime(2026, 1, 1, 12))\n"
            "u = datetime.datetime(2026, 6, 1, 6, 30, tzinfo=timezone('UTC'))\n"
            "result['message'] = '%s %s %s' % (d.strftime('%z'), d.astimezone(timezone('UTC')),"
            " u.astimezone(timezone('Asia/Kolkata')))"
        )
        tz = "tz = timezone('Asia/Kolkata')\n"
        answer = self.assertVictimUnaffected(
            victim,
            [
                (tz + "tz._transition_info[-1] = tz._transition_info[0]", "'tuple' object"),
                (tz + "tz._utc_transition_times.clear()", "'tuple' object has no attribute"),
                (tz + "tz._tzinfos.clear()", "'mappingproxy' object has no attribute"),
                (tz + "tz._tzinfos[tz._transition_info[-1]] = tz", "'mappingproxy' object"),
                (
                    "d = timezone('Asia/Kolkata').localize(datetime.datetime(2026, 1, 1))\n"
                    "d.tzinfo._tzinfos.clear()",
                    "'mappingproxy' object has no attribute",
                ),
            ],
        )
        self.assertEqual(
            answer[3], "+0530 2026-01-01 06:30:00+00:00 2026-06-01 12:00:00+05:30"
        )

    def test_rrulestr_maps(self):
        victim = (
            "rules = dateutil.rrule.rrulestr('FREQ=DAILY;COUNT=3',"
            " dtstart=datetime.datetime(2026, 1, 1))\n"
            "result['message'] = ' '.join(d.date().isoformat() for d in rules)"
        )
        answer = self.assertVictimUnaffected(
            victim,
            [
                (
                    "dateutil.rrule.rrulestr._freq_map['DAILY'] = dateutil.rrule.YEARLY",
                    "'function' object has no attribute '_freq_map'",
                ),
                (
                    "dateutil.rrule.rrulestr._weekday_map.clear()",
                    "has no attribute '_weekday_map'",
                ),
                (
                    "r = dateutil.rrule.rrule(dateutil.rrule.DAILY, count=2, cache=True)\n"
                    "list(r)\nr._cache_lock.acquire()",
                    "'rrule' object has no attribute '_cache_lock'",
                ),
                (
                    "s = dateutil.rrule.rruleset()\ns._genitem",
                    "'rruleset' object has no attribute '_genitem'",
                ),
            ],
        )
        self.assertEqual(answer[3], "2026-01-01 2026-01-02 2026-01-03")

    def test_dns_exception_class(self):
        victim = (
            "try:\n"
            "    dns.exception.DNSException(x=1)\n"
            "    result['message'] = 'accepted'\n"
            "except Exception as e:\n"
            "    result['message'] = repr(e)"
        )
        self.assertVictimUnaffected(
            victim,
            [
                (
                    "dns.exception.DNSException.supp_kwargs.add('x')",
                    "type object 'DNSException' has no attribute 'supp_kwargs'",
                ),
            ],
        )

    def test_dateutil_offset_cache_lock(self):
        # Holding this lock would block every later parse with an offset, in C.
        victim = (
            "d = dateutil.parser.parse('2026-01-01T10:00:00+02:00')\n"
            "result['message'] = '%r %s' % (d.tzinfo, d.isoformat())"
        )
        parsed = "d = dateutil.parser.parse('2026-01-01T10:00:00+02:00')\n"
        answer = self.assertVictimUnaffected(
            victim,
            [
                (parsed + "d.tzinfo._cache_lock.acquire()", "no attribute '_cache_lock'"),
                (
                    "d = dateutil.parser.isoparse('2026-01-01T10:00:00+05:00')\n"
                    "d.tzinfo._cache_lock.acquire()",
                    "no attribute '_cache_lock'",
                ),
            ],
        )
        self.assertEqual(answer[3], "tzoffset(None, 7200) 2026-01-01T10:00:00+02:00")

    def test_dns_answers(self):
        import dns.resolver

        server = DnsServer()
        self.addCleanup(server.close)
        patcher = mock.patch.object(dns.resolver, "default_resolver", server.resolver())
        patcher.start()
        self.addCleanup(patcher.stop)
        victim = (
            "a = dns.resolver.resolve('www.example.test', 'A')\n"
            "result['message'] = '%s %s' % (sorted(r.address for r in a), a.rdtype.name)"
        )
        resolved = "a = dns.resolver.resolve('www.example.test', 'A')\n"
        answer = self.assertVictimUnaffected(
            victim,
            [
                (resolved + "a.rdtype._member_map_['A'] = 0", "no attribute '_member_map_'"),
                (resolved + "a.response.answer.clear()", "'Answer' object has no attribute"),
                (
                    "try:\n    dns.resolver.resolve('nope.example.test')\n"
                    "except Exception as e:\n    e.kwargs['responses'].clear()",
                    "'NXDOMAIN' object has no attribute 'kwargs'",
                ),
            ],
        )
        self.assertEqual(answer[3], "['192.0.2.10', '192.0.2.11'] A")


class OdooSecretsTest(IsolationCase):
    """Finding 5: the companion addon's methods and the secret models, and Odoo objects
    parked for another call."""

    def setUp(self):
        super().setUp()
        self.odoo = FakeOdoo()

    def context(self):
        return {"timeout_seconds": 30, "odoo": self.odoo.bridge()}

    def test_reserved_methods_and_secret_models_are_refused_without_rpc(self):
        self.odoo.methods[("cx.tower.server", "towerhook_secret_values")] = (
            lambda *args, **kwargs: {"github_secret": "gh-secret"}
        )
        attacks = [
            (
                "x = env['cx.tower.webhook'].towerhook_secret_values([1, 2, 3], [1, 2])",
                "towerhook's own methods (such as towerhook_secret_values) cannot be called",
            ),
            (
                "x = tower_servers.towerhook_secret_values([1])",
                "towerhook's own methods (such as towerhook_secret_values) cannot be called",
            ),
            (
                "x = tower_servers.browse(1).towerhook_create_logs([])",
                "towerhook's own methods (such as towerhook_create_logs)",
            ),
            (
                "x = env['cx.tower.key'].search([])",
                "You are not allowed to access 'cx.tower.key' records",
            ),
            (
                "x = env['cx.tower.key.value'].search_read([], ['secret_value'])",
                "You are not allowed to access 'cx.tower.key.value' records",
            ),
            (
                "x = env['cx.tower.vault'].search([])",
                "You are not allowed to access 'cx.tower.vault' records",
            ),
            ("x = env['cx.tower.key'].browse(1).name", "'cx.tower.key' records"),
        ]
        victim = "result['message'] = str(tower_servers.search_count([]))"
        self.assertVictimUnaffected(
            victim, attacks, victim_context=self.context(), attack_context=self.context()
        )
        methods = {(call["model"], call["method"]) for call in self.odoo.calls}
        self.assertEqual(methods, {("cx.tower.server", "search_count")})

    def test_odoo_objects_parked_for_a_concurrent_call_refuse_to_work(self):
        shared = {"objects": None}  # stands for any state two calls could share
        answers = {}
        owner = (
            "payload['shared']['env'] = env\n"
            "payload['shared']['user'] = user\n"
            "payload['shared']['partners'] = env['res.partner']\n"
            "while 'done' not in payload['shared']:\n"
            "    time.sleep(0.01)\n"
            "result['message'] = '%s %s' % (env['res.partner'].search_count([]), user.login)"
        )
        thief = (
            "stolen = payload['shared']\n"
            "found = []\n"
            "for name, use in [\n"
            "    ('env', lambda: stolen['env']['res.partner'].search_count([])),\n"
            "    ('user', lambda: stolen['user'].login),\n"
            "    ('partners', lambda: stolen['partners'].search([])),\n"
            "    ('env.user', lambda: stolen['env'].user.name),\n"
            "]:\n"
            "    try:\n"
            "        found.append('%s: %r' % (name, use()))\n"
            "    except Exception as e:\n"
            "        found.append('%s: %s' % (name, e))\n"
            "stolen['done'] = True\n"
            "result['message'] = ' | '.join(found)"
        )

        def run_owner():
            answers["owner"] = run(
                webhook=owner, payload={"shared": shared}, context=self.context()
            )

        thread = threading.Thread(target=run_owner)
        thread.start()
        deadline = time.monotonic() + 10
        while "env" not in shared and time.monotonic() < deadline:
            time.sleep(0.01)
        answers["thief"] = run(webhook=thief, payload={"shared": shared}, context=self.context())
        thread.join(10)
        refusal = "can only be used while it runs, by the call that received them"
        self.assertWebhookOk(answers["thief"])
        for part in answers["thief"][3].split(" | "):
            self.assertIn(refusal, part)
        # The thief's attempts reached nothing; the owner still works with its objects.
        self.assertEqual(
            self.odoo.methods_called(),
            [("res.partner", "search_count"), ("res.users", "fields_get"), ("res.users", "read")],
        )
        self.assertWebhookOk(answers["owner"])
        self.assertRegex(answers["owner"][3], r"^\d+ \S+$")
