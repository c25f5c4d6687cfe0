"""Nothing a wrapped library hands to a snippet leads to process-wide state.

Each test runs snippet code twice (two calls), collects what the libraries handed out
(the code puts the objects in ``payload``), and walks everything a snippet could reach
from them (``reachability.py``): no module, no changeable class, no socket, lock, pool,
adapter, session or connection, and no mutable container that another call also reaches
or that a library module holds.
"""

import unittest

import towerhook_sandbox as sandbox
from towerhook_sandbox import libraries

from . import reachability
from .local_servers import DnsServer, HttpServer, SilentServer, closed_port
from .support import SandboxTestCase, configure, run


def _library_names(obj):
    # Library stand-ins answer their names through __getattr__, invisible to dir().
    if isinstance(obj, libraries.Library):
        return list(obj._Library__attributes)
    return ()


class ReachabilityTestCase(SandboxTestCase):
    def collect(self, code, context=None):
        """What ``code`` put in ``payload['objects']`` (a dict), in one call."""
        box = {"objects": None}  # not empty: run_call replaces an empty payload
        answer = run(webhook=code, payload=box, context=context)
        self.assertWebhookOk(answer)
        return box["objects"]

    def assertNothingReachable(self, code, context=None, exposed=()):
        first = self.collect(code, context)
        second = self.collect(code, context)
        state = reachability.module_state()
        allowed = set(exposed) | {
            value for value in _exposed_values() if isinstance(value, type)
        }
        found = []
        for name in sorted(first):
            reached = reachability.reach(first[name], extra_names=_library_names)
            other = reachability.reach(second[name], extra_names=_library_names)
            found.extend(
                "%s%s" % (name, problem)
                for problem in reachability.problems(reached, other, allowed, state)
            )
        self.assertEqual(found, [], "\n".join(found))
        return first


def _exposed_values():
    """Every value the snippet namespace's libraries expose by name."""
    names = sandbox.runner._libraries
    values = []
    stack = list(names.values())
    while stack:
        value = stack.pop()
        values.append(value)
        if isinstance(value, libraries.Namespace):
            stack.extend(vars(value).values())
        elif isinstance(value, libraries.Library):
            for name in value._Library__attributes:
                try:
                    stack.append(getattr(value, name))
                except sandbox.UserError:
                    pass
    return values


class WalkerTest(unittest.TestCase):
    """The walker finds what it is meant to find (it can fail)."""

    def test_flags_real_library_objects(self):
        import dateutil.rrule
        import dns.exception
        import requests

        server = HttpServer()
        self.addCleanup(server.close)
        response = requests.get(server.url("/json"), timeout=5)
        try:
            requests.get("http://127.0.0.1:%d/" % closed_port(), timeout=5)
        except requests.RequestException as error:
            failure = error
        state = reachability.module_state()
        for root, expected in (
            (response, "a mutable dict held by a library"),
            (response, "urllib3.poolmanager.PoolManager"),
            (failure, "urllib3.connectionpool.HTTPConnectionPool"),
            (failure, "a class (urllib3.connection.HTTPConnection)"),
            (dateutil.rrule.rrulestr, "a mutable dict held by a library"),
            (dns.exception.DNSException, "a mutable set held by a library"),
        ):
            with self.subTest(root=root, expected=expected):
                found = reachability.problems(
                    reachability.reach(root), allowed_classes={root}, state=state
                )
                self.assertTrue(any(expected in line for line in found), found)

    def test_flags_containers_shared_between_calls(self):
        shared = {"k": []}
        found = reachability.problems(
            reachability.reach({"a": shared}), reachability.reach({"b": shared})
        )
        self.assertEqual(
            found,
            [
                "root['a']: a mutable dict shared between calls",
                "root['a']['k']: a mutable list shared between calls",
            ],
        )
        self.assertEqual(
            reachability.problems(
                reachability.reach({"a": {"k": []}}), reachability.reach({"a": {"k": []}})
            ),
            [],
        )


class LibraryNamesTest(ReachabilityTestCase):
    def test_the_library_names_themselves(self):
        self.assertNothingReachable(
            "payload['objects'] = {name: value for name, value in ["
            "('time', time), ('datetime', datetime), ('dateutil', dateutil),"
            "('timezone', timezone), ('requests', requests), ('json', json),"
            "('float_compare', float_compare), ('UserError', UserError),"
            "('AccessError', AccessError), ('hashlib', hashlib), ('hmac', hmac),"
            "('tldextract', tldextract), ('dns', dns)]}"
        )


class RequestsObjectsTest(ReachabilityTestCase):
    def setUp(self):
        super().setUp()
        self.server = HttpServer()
        self.addCleanup(self.server.close)
        self.silent = SilentServer()
        self.addCleanup(self.silent.close)

    def test_responses(self):
        objects = self.assertNothingReachable(
            "r = requests.get(%r)\n"
            "p = requests.post(%r, json={'a': 1}, headers={'X-A': 'b'})\n"
            "d = requests.delete(%r)\n"
            "x = requests.request('PATCH', %r, data=b'x')\n"
            "h = requests.get(%r)\n"
            "payload['objects'] = {'get': r, 'json': r.json(), 'headers': r.headers,"
            " 'cookies': r.cookies, 'post': p, 'delete': d, 'patch': x, 'redirected': h,"
            " 'history': h.history}"
            % (
                self.server.url("/json"),
                self.server.url("/echo"),
                self.server.url("/json"),
                self.server.url("/echo"),
                self.server.url("/redirect"),
            )
        )
        self.assertEqual(objects["get"].status_code, 200)
        self.assertEqual(objects["cookies"], {"session_id": "abc123"})
        self.assertEqual(len(objects["history"]), 1)

    def test_exceptions_of_failed_requests(self):
        objects = self.assertNothingReachable(
            "errors = {}\n"
            "for name, call in [\n"
            "    ('refused', lambda: requests.get('http://127.0.0.1:%d/')),\n"
            "    ('timeout', lambda: requests.get(%r, timeout=0.2)),\n"
            "    ('http_error', lambda: requests.get(%r).raise_for_status()),\n"
            "    ('not_json', lambda: requests.get(%r).json()),\n"
            "    ('no_scheme', lambda: requests.get('example.com/x')),\n"
            "    ('bad_scheme', lambda: requests.get('ftp://127.0.0.1/x')),\n"
            "]:\n"
            "    try:\n"
            "        call()\n"
            "    except Exception as error:\n"
            "        errors[name] = error\n"
            "payload['objects'] = errors"
            % (
                closed_port(),
                self.silent.url(),
                self.server.url("/status/404"),
                self.server.url("/"),
            )
        )
        self.assertEqual(
            sorted(objects),
            ["bad_scheme", "http_error", "no_scheme", "not_json", "refused", "timeout"],
        )


    def test_with_a_configured_proxy(self):
        # Through a working proxy and through one that refuses connections: nothing
        # reachable holds the proxy's credentials, in any form.
        proxy = HttpServer("proxy")
        self.addCleanup(proxy.close)
        code = (
            "objects = {}\n"
            "try:\n"
            "    objects['response'] = requests.get(%r)\n"
            "    requests.get(%r).raise_for_status()\n"
            "except Exception as e:\n"
            "    objects['error'] = e\n"
            "payload['objects'] = objects"
        ) % (self.server.url("/json"), self.server.url("/status/500"))
        for port in (proxy.port, closed_port()):
            with self.subTest(port=port):
                configure(outbound_proxy="http://op-user:pr0xy-s3cret@127.0.0.1:%d" % port)
                objects = self.assertNothingReachable(code)
                self.assertIn("Error", repr(objects["error"]))
                texts = []
                for root in objects.values():
                    reachability.reach(root, leaves=texts)
                for path, value in texts:
                    if isinstance(value, (str, bytes)):
                        text = value if isinstance(value, str) else value.decode("latin-1")
                        self.assertNotIn("pr0xy-s3cret", text, path)
                        self.assertNotIn("op-user", text, path)
        # Two calls of two requests each went through the working proxy.
        self.assertEqual(len(proxy.requests), 4)


class DatesObjectsTest(ReachabilityTestCase):
    def test_time_zones_and_dates(self):
        objects = self.assertNothingReachable(
            "kolkata = timezone('Asia/Kolkata')\n"
            "brussels = timezone('Europe/Brussels')\n"
            "local = brussels.localize(datetime.datetime(2026, 7, 1, 12))\n"
            "payload['objects'] = {\n"
            "    'kolkata': kolkata, 'utc': timezone('UTC'), 'est': timezone('EST'),\n"
            "    'local': local, 'normalized': brussels.normalize(local + datetime.timedelta(days=200)),\n"
            "    'converted': local.astimezone(kolkata),\n"
            "    'gettz': dateutil.tz.gettz('Europe/Paris'), 'UTC': dateutil.tz.UTC,\n"
            "    'tzutc': dateutil.tz.tzutc(),\n"
            "    'parsed': dateutil.parser.parse('2026-01-01T10:00:00+02:00'),\n"
            "    'isoparsed': dateutil.parser.isoparse('2026-01-01T10:00:00Z'),\n"
            "    'isoparsed_offset': dateutil.parser.isoparse('2026-01-01T10:00:00-03:00'),\n"
            "    'tzinfos': dateutil.parser.parse('2026-01-01 10:00 X', tzinfos={'X': 3600}),\n"
            "    'tzinfos_zone': dateutil.parser.parse('2026-01-01 10:00 X',"
            " tzinfos={'X': timezone('Europe/Paris')}),\n"
            "    'named': dateutil.parser.parse('2026-01-01 10:00 UTC'),\n"
            "    'fuzzy': dateutil.parser.parse('due 2026-01-01 10:00 +0100', fuzzy_with_tokens=True),\n"
            "}"
        )
        self.assertEqual(objects["local"].strftime("%z"), "+0200")

    def test_relativedelta_and_rrules(self):
        objects = self.assertNothingReachable(
            "rd = dateutil.relativedelta\n"
            "rr = dateutil.rrule\n"
            "start = datetime.datetime(2026, 1, 5, 9)\n"
            "daily = rr.rrule(rr.DAILY, count=5, dtstart=start)\n"
            "cached = rr.rrule(rr.WEEKLY, count=3, dtstart=start, cache=True)\n"
            "dates = list(cached)\n"
            "rset = rr.rruleset()\n"
            "rset.rrule(daily)\n"
            "rset.exdate(datetime.datetime(2026, 1, 6, 9))\n"
            "payload['objects'] = {\n"
            "    'delta': rd.relativedelta(months=1, weekday=rd.FR(-1)),\n"
            "    'between': rd.relativedelta(datetime.date(2026, 3, 1), datetime.date(2025, 1, 15)),\n"
            "    'MO': rd.MO, 'FR2': rd.FR(2), 'daily': daily, 'cached': cached,\n"
            "    'dates': dates, 'set': rset, 'set_dates': list(rset),\n"
            "    'parsed': rr.rrulestr('FREQ=WEEKLY;COUNT=2;BYDAY=MO,TH', dtstart=start),\n"
            "    'parsed_set': rr.rrulestr('RRULE:FREQ=DAILY;COUNT=2\\nEXDATE:20260106T090000',"
            " dtstart=start, forceset=True),\n"
            "    'rrulestr': rr.rrulestr, 'replaced': daily.replace(count=2),\n"
            "    'tzid': list(rr.rrulestr('DTSTART;TZID=Europe/Paris:20260105T090000\\n"
            "RRULE:FREQ=WEEKLY;COUNT=2')),\n"
            "    'xafter': rr.rrule(rr.DAILY, count=2, dtstart=start).xafter(start),\n"
            "}"
        )
        self.assertEqual(len(objects["set_dates"]), 4)


class DnsObjectsTest(ReachabilityTestCase):
    def setUp(self):
        super().setUp()
        import dns.resolver

        self.dns_server = DnsServer()
        self.addCleanup(self.dns_server.close)
        previous = dns.resolver.default_resolver
        dns.resolver.default_resolver = self.dns_server.resolver()
        self.addCleanup(setattr, dns.resolver, "default_resolver", previous)

    def test_answers_and_errors(self):
        objects = self.assertNothingReachable(
            "a = dns.resolver.resolve('www.example.test', 'A')\n"
            "mx = dns.resolver.resolve('example.test', 'MX')\n"
            "txt = dns.resolver.query('example.test', 'TXT')\n"
            "errors = {}\n"
            "for name, qname, rdtype in [('nxdomain', 'nope.example.test', 'A'),"
            " ('no_answer', 'example.test', 'AAAA')]:\n"
            "    try:\n"
            "        dns.resolver.resolve(qname, rdtype)\n"
            "    except dns.exception.DNSException as error:\n"
            "        errors[name] = error\n"
            "payload['objects'] = {\n"
            "    'a': a, 'mx': mx, 'txt': txt, 'rrset': a.rrset, 'first': a[0],\n"
            "    'records': list(a), 'mx_first': mx[0], 'errors': errors,\n"
            "    'reverse': dns.reversename.from_address('192.0.2.1'),\n"
            "    'exception_class': dns.exception.DNSException,\n"
            "}"
        )
        self.assertEqual(sorted(objects["errors"]), ["no_answer", "nxdomain"])


class OtherLibrariesObjectsTest(ReachabilityTestCase):
    def test_tldextract_hashlib_hmac(self):
        self.assertNothingReachable(
            "payload['objects'] = {\n"
            "    'extracted': tldextract.extract('http://a.b.example.co.uk:8080/x'),\n"
            "    'sha256': hashlib.sha256(b'x'), 'new': hashlib.new('md5'),\n"
            "    'shake': hashlib.shake_128(b'x'),\n"
            "    'hmac_callable': hmac.new(b'k', b'm', hashlib.sha256),\n"
            "    'hmac_name': hmac.new(b'k', b'm', 'sha1'),\n"
            "    'copy': hmac.new(b'k', b'm', 'sha256').copy(),\n"
            "}"
        )


if __name__ == "__main__":
    configure()
    unittest.main()
