"""The narrow library objects behave as snippet authors know them from the module."""

import base64
import hashlib
import hmac
import json
import time

from unittest import mock

from .local_servers import DnsServer, HttpServer
from .support import SandboxTestCase, run


class ResponseTest(SandboxTestCase):
    def setUp(self):
        super().setUp()
        self.server = HttpServer("srv")
        self.addCleanup(self.server.close)

    def ok(self, code, expected):
        self.assertWebhookOk(run(webhook=code % {"url": self.server.url("")}), expected)

    def test_public_api(self):
        self.ok(
            "r = requests.get('%(url)s/json')\n"
            "result['message'] = '%%s|%%s|%%s|%%s|%%s|%%s|%%s|%%s|%%r|%%s' %% ("
            "r.status_code, r.ok, bool(r), r.reason, r.json()['served_by'],"
            " r.headers['CONTENT-TYPE'], r.cookies, r.encoding, r.content[:13], r.url.endswith('/json'))",
            "200|True|True|OK|srv|application/json|{'session_id': 'abc123'}|utf-8|"
            "b'{\"served_by\":'|True",
        )

    def test_text_lines_and_with(self):
        self.ok(
            "r = requests.get('%(url)s/')\n"
            "result['message'] = '%%s|%%s|%%s|%%s|%%s' %% (r.text, list(r.iter_lines()),"
            " b''.join(r.iter_content(4)), r.elapsed.total_seconds() >= 0, r)",
            "hello from srv|[b'hello from srv']|b'hello from srv'|True|<Response [200]>",
        )

    def test_redirect_history(self):
        self.ok(
            "r = requests.get('%(url)s/redirect')\n"
            "h = r.history[0]\n"
            "result['message'] = '%%s %%s %%s %%s' %% (r.status_code, h.status_code,"
            " h.is_redirect, h.headers['Location'])",
            "200 302 True /json",
        )
        self.ok(
            "r = requests.get('%(url)s/redirect', allow_redirects=False)\n"
            "result['message'] = '%%s %%s' %% (r.status_code, r.history)",
            "302 []",
        )

    def test_post_json_data_auth_params_cookies(self):
        code = (
            "r = requests.post('%(url)s/echo', json={'a': [1, 2]}, params={'q': 'x y'},"
            " auth=('user', 'pa:ss'), cookies={'c': 'd'}, headers={'X-Custom': 'v'},"
            " timeout=5, verify=False, stream=True)\n"
            "e = r.json()\n"
            "result['message'] = json.dumps([e['method'], e['body'], e['headers']['Authorization'],"
            " e['headers']['Cookie'], e['headers']['X-Custom'], e['headers']['Content-Type']])"
        )
        answer = run(webhook=code % {"url": self.server.url("")})
        self.assertWebhookOk(answer)
        self.assertEqual(
            json.loads(answer[3]),
            [
                "POST",
                '{"a": [1, 2]}',
                "Basic " + base64.b64encode(b"user:pa:ss").decode(),
                "c=d",
                "v",
                "application/json",
            ],
        )
        self.assertEqual(self.server.requests[-1]["target"], "/echo?q=x+y")
        self.ok(
            "r = requests.delete('%(url)s/echo')\nr2 = requests.request('PUT', '%(url)s/echo',"
            " data={'k': 'v'})\nresult['message'] = '%%s %%s' %% (r.json()['method'],"
            " r2.json()['body'])",
            "DELETE k=v",
        )

    def test_errors(self):
        self.ok(
            "try:\n    requests.get('%(url)s/status/404').raise_for_status()\n"
            "except Exception as e:\n"
            "    result['message'] = '%%r|%%s|%%s|%%s' %% (e, e.response.status_code, e.request,"
            " e.response.text)",
            "HTTPError('404 Client Error: Not Found for url: %s/status/404')|404|None|status 404"
            % self.server.url(""),
        )
        self.ok(
            "r = requests.get('%(url)s/status/503')\nresult['message'] = '%%s %%s' %% (r.ok, r)",
            "False <Response [503]>",
        )
        for code, expected in (
            ("requests.get('%(url)s/').json()", "JSONDecodeError('Expecting value: line 1"),
            ("requests.get('example.com')", "MissingSchema(\"Invalid URL 'example.com'"),
            ("requests.get('ftp://x/')", "InvalidSchema(\"No connection adapters"),
            ("requests.get('%(url)s/', hooks={'response': []})", "hooks are not available"),
            ("requests.get('%(url)s/', auth=lambda r: r)", "auth must be a (user, password)"),
            ("requests.get('%(url)s/', cookies=[('a', 'b')])", "cookies must be a dict"),
            ("requests.get('%(url)s/', verify='/etc/ssl')", "verify must be True or False"),
            ("requests.get('%(url)s/', bogus=1)", "unexpected keyword argument 'bogus'"),
            ("requests.get('%(url)s/', timeout='x')", "ValueError("),
        ):
            with self.subTest(code=code):
                self.assertWebhookFailed(run(webhook=code % {"url": self.server.url("")}), expected)


class TimeZoneTest(SandboxTestCase):
    def ok(self, code, expected):
        self.assertWebhookOk(run(webhook=code), expected)

    def test_pytz_zones_work_frozen(self):
        self.ok(
            "tz = timezone('Europe/Brussels')\n"
            "summer = tz.localize(datetime.datetime(2026, 7, 1, 12))\n"
            "winter = tz.normalize(summer + datetime.timedelta(days=180))\n"
            "utc = summer.astimezone(timezone('UTC'))\n"
            "back = utc.astimezone(tz)\n"
            "result['message'] = '%s|%s|%s|%s|%s|%s' % (summer.strftime('%z %Z'),"
            " winter.strftime('%Y-%m-%d %H:%M %z'), utc.isoformat(), back == summer,"
            " winter - summer, dateutil.tz.gettz('Asia/Kolkata').zone)",
            "+0200 CEST|2026-12-28 11:00 +0100|2026-07-01T10:00:00+00:00|True|"
            "180 days, 0:00:00|Asia/Kolkata",
        )

    def test_ambiguous_times_still_raise(self):
        answer = run(
            webhook="timezone('Europe/Brussels').localize(datetime.datetime(2026, 10, 25, 2, 30),"
            " is_dst=None)"
        )
        self.assertWebhookFailed(answer, "AmbiguousTimeError")

    def test_parser_offsets(self):
        self.ok(
            "a = dateutil.parser.parse('2026-01-01T10:00:00+02:00')\n"
            "b = dateutil.parser.isoparse('2026-01-01T08:00:00Z')\n"
            "c = dateutil.parser.parse('2026-01-01 10:00 XYZ', tzinfos={'XYZ': -3600})\n"
            "d = dateutil.parser.parse('2026-01-01 10:00 BRU',"
            " tzinfos={'BRU': timezone('Europe/Brussels')})\n"
            "result['message'] = '%r|%s|%s|%s|%r|%s|%s|%s' % (a.tzinfo, a == b, a.astimezone(dateutil.tz.UTC),"
            " a.strftime('%z'), c.tzinfo, c.isoformat(), a.tzinfo == dateutil.parser.isoparse("
            "'2026-01-01T00:00+02:00').tzinfo, d.tzinfo.zone)",
            "tzoffset(None, 7200)|True|2026-01-01 08:00:00+00:00|+0200|tzoffset('XYZ', -3600)|"
            "2026-01-01T10:00:00-01:00|True|Europe/Brussels",
        )
        self.assertWebhookFailed(
            run(webhook="dateutil.parser.parse('10:00 X', tzinfos={'X': 'EST5EDT'})"),
            "time zones given as TZ rule strings are not available",
        )

    def test_relativedelta(self):
        self.ok(
            "rd = dateutil.relativedelta\n"
            "d = datetime.date(2026, 1, 31) + rd.relativedelta(months=1, weekday=rd.FR(-1))\n"
            "diff = rd.relativedelta(datetime.date(2026, 3, 1), datetime.date(2025, 1, 15))\n"
            "result['message'] = '%s %s %s %s' % (d, diff.years, diff.months, rd.MO(+2))",
            "2026-02-27 1 1 MO(+2)",
        )


class RruleTest(SandboxTestCase):
    def ok(self, code, expected):
        self.assertWebhookOk(run(webhook=code), expected)

    def test_rrule_api(self):
        self.ok(
            "rr = dateutil.rrule\n"
            "start = datetime.datetime(2026, 1, 5, 9)\n"
            "r = rr.rrule(rr.WEEKLY, count=4, byweekday=(rr.MO, rr.TH), dtstart=start, cache=True)\n"
            "d = [x.strftime('%a %d') for x in r]\n"
            "result['message'] = '%s|%s|%s|%s|%s|%s|%s|%s|%s' % (d, r.count(), r[1].day,"
            " [x.day for x in r[1:3]], datetime.datetime(2026, 1, 8, 9) in r,"
            " r.after(start).day, r.before(datetime.datetime(2026, 1, 9)).day,"
            " len(r.between(start, datetime.datetime(2026, 1, 20), inc=True)),"
            " [x.day for x in r.xafter(start, count=2, inc=True)])",
            "['Mon 05', 'Thu 08', 'Mon 12', 'Thu 15']|4|8|[8, 12]|True|8|8|4|[5, 8]",
        )
        self.ok(
            "rr = dateutil.rrule\n"
            "r = rr.rrule(rr.DAILY, count=3, dtstart=datetime.datetime(2026, 1, 1))\n"
            "result['message'] = '%s|%s|%s' % (str(r).replace(chr(10), ' '),"
            " len(list(r.replace(count=5))), [d.day for d in r.xafter(datetime.datetime(2026, 1, 1))])",
            "DTSTART:20260101T000000 RRULE:FREQ=DAILY;COUNT=3|5|[2, 3]",
        )

    def test_rruleset_and_rrulestr(self):
        self.ok(
            "rr = dateutil.rrule\n"
            "s = rr.rruleset()\n"
            "s.rrule(rr.rrule(rr.DAILY, count=4, dtstart=datetime.datetime(2026, 1, 1)))\n"
            "s.exdate(datetime.datetime(2026, 1, 2))\n"
            "s.rdate(datetime.datetime(2026, 2, 1))\n"
            "s.exrule(rr.rrule(rr.DAILY, count=1, dtstart=datetime.datetime(2026, 1, 4)))\n"
            "p = rr.rrulestr('DTSTART;TZID=Europe/Paris:20260105T090000\\n"
            "RRULE:FREQ=WEEKLY;COUNT=2;BYDAY=MO')\n"
            "q = rr.rrulestr('FREQ=DAILY;COUNT=2', dtstart=datetime.datetime(2026, 3, 1),"
            " forceset=True)\n"
            "result['message'] = '%s|%s|%s|%s' % ([d.strftime('%m-%d') for d in s],"
            " [d.strftime('%d %H:%M %z') for d in p], len(list(q)), q)",
            "['01-01', '01-03', '02-01']|['05 09:00 +0100', '12 09:00 +0100']|2|<rruleset>",
        )
        self.assertWebhookFailed(
            run(webhook="s = dateutil.rrule.rruleset()\ns.rrule('FREQ=DAILY')"),
            "expected an rrule or rruleset, not str",
        )


class DnsTest(SandboxTestCase):
    def setUp(self):
        super().setUp()
        import dns.resolver

        self.dns_server = DnsServer()
        self.addCleanup(self.dns_server.close)
        patcher = mock.patch.object(
            dns.resolver, "default_resolver", self.dns_server.resolver()
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_answers(self):
        self.assertWebhookOk(
            run(
                webhook="a = dns.resolver.resolve('www.example.test', 'A')\n"
                "mx = dns.resolver.resolve('example.test', 'MX')\n"
                "txt = dns.resolver.resolve('example.test', 'TXT')\n"
                "result['message'] = '%s|%s|%s|%s|%s|%s|%s|%r|%s|%s' % (sorted(r.address for r in a),"
                " sorted(r.to_text() for r in a), len(a), a.rrset.ttl, str(a.qname),"
                " [(m.preference, str(m.exchange)) for m in mx], txt[0].strings, a.rdtype,"
                " a.rdclass.name, a.canonical_name == a.qname)"
            ),
            "['192.0.2.10', '192.0.2.11']|['192.0.2.10', '192.0.2.11']|2|300|www.example.test.|"
            "[(10, 'mail.example.test.')]|(b'v=spf1 -all',)|<RdataType.A: 1>|IN|True",
        )

    def test_errors_are_dns_exceptions(self):
        self.assertWebhookOk(
            run(
                webhook="found = []\n"
                "for name, rdtype in [('nope.example.test', 'A'), ('example.test', 'AAAA'),"
                " ('example.test', 'BOGUS')]:\n"
                "    try:\n"
                "        dns.resolver.resolve(name, rdtype)\n"
                "    except dns.exception.DNSException as e:\n"
                "        found.append(repr(e))\n"
                "result['message'] = ' | '.join(found)"
            ),
            "NXDOMAIN('The DNS query name does not exist: nope.example.test.') | "
            "NoAnswer('The DNS response does not contain an answer to the question: "
            "example.test. IN AAAA') | UnknownRdatatype('DNS resource record type is unknown.')",
        )

    def test_reverse_names(self):
        self.assertWebhookOk(
            run(
                webhook="n = dns.reversename.from_address('2001:db8::1')\n"
                "result['message'] = '%s %s' % (n.to_text()[:12], dns.reversename.to_address(n))"
            ),
            "1.0.0.0.0.0. 2001:db8::1",
        )


class ModuleSnippetsKeepWorkingTest(SandboxTestCase):
    """What works in the module keeps working: signature checks, json, dates, requests
    to another system, and the language features."""

    def test_signature_checks(self):
        body = b'{"ref": "main"}'
        github = "sha256=" + hmac.new(b"gh", body, hashlib.sha256).hexdigest()
        stamp = str(int(time.time()))
        stripe = hmac.new(b"st", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        slack = "v0=" + hmac.new(b"sl", b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        code = (
            "gh = 'sha256=' + hmac.new(b'gh', raw_data, hashlib.sha256).hexdigest()\n"
            "parts = dict(p.split('=', 1) for p in headers['Stripe-Signature'].split(','))\n"
            "st = hmac.new(b'st', (parts['t'] + '.').encode() + raw_data, 'sha256').hexdigest()\n"
            "base = b'v0:' + headers['X-Slack-Request-Timestamp'].encode() + b':' + raw_data\n"
            "sl = 'v0=' + hmac.new(b'sl', base, hashlib.sha256).hexdigest()\n"
            "fresh = abs(time.time() - int(parts['t'])) < 300\n"
            "result = {'allowed': all([hmac.compare_digest(gh, headers['X-Hub-Signature-256']),"
            " hmac.compare_digest(st, parts['v1']), hmac.compare_digest(sl,"
            " headers['X-Slack-Signature']), fresh])}"
        )
        headers = {
            "X-Hub-Signature-256": github,
            "Stripe-Signature": "t=%s,v1=%s" % (stamp, stripe),
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack,
        }
        answer = run(
            authenticator=code,
            webhook="result['message'] = 'ok'",
            headers=headers,
            raw_data=body,
        )
        self.assertWebhookOk(answer, "ok")
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
        answer = run(authenticator=code, webhook="", headers=headers, raw_data=body)
        self.assertAuthFailed(answer)

    def test_language_and_helpers(self):
        server = HttpServer("other-system")
        self.addCleanup(server.close)
        code = (
            "items = payload['items']\n"
            "total = sum(i['qty'] * i['price'] for i in items)\n"
            "names = {i['sku']: i['qty'] for i in items if i['qty'] > 1}\n"
            "if (count := len(items)) > 1:\n"
            "    names['count'] = count\n"
            "match payload['kind']:\n"
            "    case 'order':\n"
            "        kind = 'an order'\n"
            "    case _:\n"
            "        kind = 'other'\n"
            "due = timezone('Europe/Brussels').localize(datetime.datetime(2026, 1, 31, 9))"
            " + dateutil.relativedelta.relativedelta(months=1)\n"
            "sent = requests.post(%r, json={'total': total}, timeout=5).json()\n"
            "result['message'] = f\"{kind}: {total:.2f} {names} {due:%%Y-%%m-%%d} "
            "{float_compare(total, 7.5, precision_digits=2)} {json.loads(sent['body'])['total']}"
            " {sent['served_by']}\"" % server.url("/echo")
        )
        answer = run(
            webhook=code,
            payload={
                "kind": "order",
                "items": [{"sku": "a", "qty": 2, "price": 1.25}, {"sku": "b", "qty": 1, "price": 5}],
            },
        )
        self.assertWebhookOk(answer, "an order: 7.50 {'a': 2, 'count': 2} 2026-02-28 0 7.5 other-system")
