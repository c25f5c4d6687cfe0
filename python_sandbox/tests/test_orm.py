"""Odoo objects over the host's bridge: env, user, uid, tower... as snippet authors know them."""

import sys
import time

import towerhook_sandbox as sandbox
from towerhook_sandbox import orm

from .fake_odoo import SERVICE_UID, WEBHOOK_UID, FakeOdoo
from .support import ALLOW_ALL, SandboxTestCase, run

CTX = {"lang": "en_US", "tz": "Europe/Berlin"}


class OdooCase(SandboxTestCase):
    def setUp(self):
        super().setUp()
        self.odoo = FakeOdoo()

    def call(self, webhook="", authenticator=ALLOW_ALL, payload=None, context=None):
        context = dict(context or {})
        context.setdefault("timeout_seconds", 30)
        context.setdefault("odoo", self.odoo.bridge())
        return run(
            webhook=webhook, authenticator=authenticator, payload=payload, context=context
        )

    def ok(self, webhook, text=None, **kwargs):
        answer = self.call(webhook, **kwargs)
        self.assertWebhookOk(answer, text)
        return answer[3]

    def methods(self):
        return self.odoo.methods_called()


class SnippetScenarioTest(OdooCase):
    def test_search_create_write_method_and_many2one(self):
        code = (
            "partners = env['res.partner'].search([('is_company', '=', True)])\n"
            "names = [p.name for p in partners]\n"
            "new = env['res.partner'].create({'name': 'Eve', 'country_id': partners[0].country_id})\n"
            "new.write({'email': 'eve@example.com'})\n"
            "server = tower_servers.get_by_reference('main')\n"
            "plan = tower_plans.get_by_reference('deploy_app')\n"
            "run = server.run_flight_plan(plan, log={'source': 'webhook'})\n"
            "result['message'] = '%s | %s %s | %s | log %s' % (', '.join(names), new.name,"
            " new.country_id.name, new.email, run['log_id'])"
        )
        self.ok(
            code,
            "Azure Interior, Deco Addict, Gemini Furniture | Eve Belgium | eve@example.com"
            " | log 1",
        )
        self.assertEqual(
            self.methods(),
            [
                ("res.partner", "search"),
                ("res.partner", "fields_get"),
                ("res.partner", "read"),  # name, for the 3 partners at once
                ("res.partner", "read"),  # country_id of partners[0] (and the 2 others)
                ("res.partner", "create"),
                ("res.partner", "write"),
                ("cx.tower.server", "search"),
                ("cx.tower.plan", "search"),
                ("cx.tower.server", "run_flight_plan"),
                ("res.partner", "read"),  # new.name (the cache was emptied by the calls)
                ("res.partner", "read"),  # new.country_id
                ("res.country", "fields_get"),
                ("res.country", "read"),
                ("res.partner", "read"),  # new.email
            ],
        )
        calls = self.odoo.calls
        self.assertEqual(calls[2]["ids"], [1, 2, 3])
        self.assertEqual(calls[2]["args"], [["name"]])
        self.assertEqual(calls[4]["args"], [{"name": "Eve", "country_id": 1}])
        self.assertEqual(calls[5]["ids"], [7])
        self.assertEqual(calls[5]["args"], [{"email": "eve@example.com"}])
        run_call = calls[8]
        self.assertEqual((run_call["ids"], run_call["args"]), ([1], [1]))
        self.assertEqual(run_call["kwargs"], {"log": {"source": "webhook"}, "context": CTX})
        self.assertEqual(self.odoo.records["res.partner"][7]["email"], "eve@example.com")
        for call in calls:
            self.assertEqual((call["kind"], call["uid"]), ("webhook", WEBHOOK_UID))

    def test_reading_a_field_on_three_records_is_one_read(self):
        code = (
            "partners = env['res.partner'].search([('is_company', '=', True)])\n"
            "first = partners[0].name\n"
            "rest = [p.name for p in partners]\n"
            "emails = [p.email for p in partners]\n"
            "result['message'] = '%s %s %s' % (first, len(rest), emails)"
        )
        self.ok(
            code,
            "Azure Interior 3 ['azure@example.com', 'deco@example.com', False]",
        )
        self.assertEqual(self.odoo.count("read"), 2)  # name for 3, email for 3
        self.assertEqual(self.odoo.count("fields_get"), 1)
        self.assertEqual(self.odoo.count(), 4)

    def test_many2one_display_name_comes_with_the_value(self):
        code = (
            "partners = env['res.partner'].search([('is_company', '=', True)])\n"
            "result['message'] = ', '.join(p.country_id.display_name for p in partners)"
        )
        self.ok(code, "Belgium, France, Belgium")
        self.assertEqual(
            self.methods(),
            [("res.partner", "search"), ("res.partner", "fields_get"), ("res.partner", "read")],
        )

    def test_many2one_records_prefetch_together(self):
        code = (
            "partners = env['res.partner'].search([('is_company', '=', True)])\n"
            "result['message'] = ' '.join(p.country_id.code for p in partners)"
        )
        self.ok(code, "BE FR BE")
        reads = [call for call in self.odoo.calls if call["method"] == "read"]
        self.assertEqual([(c["model"], c["ids"]) for c in reads],
                         [("res.partner", [1, 2, 3]), ("res.country", [1, 2])])

    def test_relational_values(self):
        code = (
            "azure = env['res.partner'].browse(1)\n"
            "joel = env['res.partner'].browse(4)\n"
            "result['message'] = [azure.category_id.name, len(azure.child_ids),"
            " joel.parent_id.name, joel.country_id.id, bool(joel.country_id),"
            " joel.parent_id == azure, joel.email, joel.color, joel.credit_limit,"
            " azure.date.isoformat()]"
        )
        self.ok(
            code,
            "['VIP', 0, 'Azure Interior', False, False, True, False, 0, 0.0, '2024-05-01']",
        )

    def test_empty_recordset_fields_are_null(self):
        code = (
            "none = env['res.partner'].search([('name', '=', 'nobody')])\n"
            "result['message'] = [none.name, none.color, none.id, len(none.country_id),"
            " none.ids, bool(none)]"
        )
        self.ok(code, "[False, 0, False, 0, [], False]")

    def test_cache_is_emptied_by_calls_that_may_write(self):
        code = (
            "p = env['res.partner'].browse(2)\n"
            "before = p.name\n"
            "again = p.name\n"
            "p.write({'name': 'Deco 2'})\n"
            "result['message'] = '%s %s %s' % (before, again, p.name)"
        )
        self.ok(code, "Deco Addict Deco Addict Deco 2")
        self.assertEqual(self.odoo.count("read"), 2)

    def test_search_options_and_other_model_methods(self):
        code = (
            "P = env['res.partner']\n"
            "found = P.search([('is_company', '=', True)], offset=1, limit=1, order='name desc')\n"
            "rows = P.search_read([('id', '=', 1)], ['name', 'country_id'])\n"
            "count = P.search_count([('is_company', '=', True)])\n"
            "pairs = P.name_search('deco')\n"
            "result['message'] = [found.ids, rows, count, pairs]"
        )
        self.ok(
            code,
            "[[2], [{'id': 1, 'name': 'Azure Interior', 'country_id': [1, 'Belgium']}], 3,"
            " [[2, 'Deco Addict']]]",
        )
        search = self.odoo.calls[0]
        self.assertEqual(search["args"], [[["is_company", "=", True]]])
        self.assertEqual(
            search["kwargs"], {"offset": 1, "limit": 1, "order": "name desc", "context": CTX}
        )
        for call in self.odoo.calls:
            self.assertIsNone(call["ids"], call)

    def test_create_several_read_unlink_copy(self):
        code = (
            "P = env['res.partner']\n"
            "made = P.create([{'name': 'A'}, {'name': 'B'}])\n"
            "rows = made.read(['name'])\n"
            "twin = made[0].copy({'name': 'A2'})\n"
            "made.unlink()\n"
            "result['message'] = [made.ids, rows, twin.name, made.exists().ids, twin.exists().ids]"
        )
        self.ok(code, "[[7, 8], [{'id': 7, 'name': 'A'}, {'id': 8, 'name': 'B'}], 'A2', [], [9]]")
        self.assertEqual(self.odoo.calls[0]["args"], [[{"name": "A"}, {"name": "B"}]])
        unlink = [c for c in self.odoo.calls if c["method"] == "unlink"][0]
        self.assertEqual(unlink["ids"], [7, 8])

    def test_any_public_method_passes_ids_or_none(self):
        code = (
            "recs = env['res.partner'].browse([3, 1])\n"
            "on_records = recs.echo('x', flag=True)\n"
            "on_model = env['res.partner'].echo(1)\n"
            "helper = tower.server_run_command('main', 'uptime')\n"
            "result['message'] = [on_records['ids'], on_records['args'], on_records['kwargs'],"
            " on_model['ids'], helper]"
        )
        self.ok(
            code,
            "[[3, 1], ['x'], {'flag': True}, None, {'exit_code': 0, 'message': 'uptime on main'}]",
        )
        self.assertEqual(
            self.methods(),
            [
                ("res.partner", "fields_get"),  # is "echo" a field of res.partner?
                ("res.partner", "echo"),
                ("res.partner", "echo"),  # on the model: no fields_get needed
                ("cetmix.tower", "server_run_command"),
            ],
        )
        self.assertIsNone(self.odoo.calls[-1]["ids"])

    def test_records_in_arguments_travel_as_ids(self):
        code = (
            "one = env['res.partner'].browse(1)\n"
            "two = env['res.partner'].browse([1, 2])\n"
            "none = env['res.partner'].browse()\n"
            "r = env['res.partner'].echo(one, two, none, (one, 'x'), {'p': one, 'k': [two]},"
            " when=datetime.datetime(2024, 5, 1, 12, 30, 15), day=datetime.date(2024, 5, 2),"
            " raw=b'bytes')\n"
            "result['message'] = [r['args'], r['kwargs']]"
        )
        self.ok(
            code,
            "[[1, [1, 2], [], [1, 'x'], {'p': 1, 'k': [[1, 2]]}], {'when': '2024-05-01 12:30:15',"
            " 'day': '2024-05-02', 'raw': 'bytes'}]",
        )

    def test_records_in_values_follow_the_field_type(self):
        code = (
            "vip = env['res.partner.category'].browse(1)\n"
            "be = env['res.country'].browse(1)\n"
            "new = env['res.partner'].create({'name': 'N', 'country_id': be,"
            " 'category_id': vip, 'parent_id': env['res.partner'].browse()})\n"
            "result['message'] = [new.category_id.name, new.country_id.code]"
        )
        self.ok(code, "['VIP', 'BE']")
        create = [c for c in self.odoo.calls if c["method"] == "create"][0]
        self.assertEqual(
            create["args"],
            [{"name": "N", "country_id": 1, "category_id": [[6, 0, [1]]], "parent_id": False}],
        )

    def test_values_that_cannot_travel(self):
        answer = self.call("env['res.partner'].echo(json)")
        self.assertWebhookFailed(answer, "TypeError('Library values cannot be sent to Odoo')")
        self.assertEqual(self.odoo.calls, [])

    def test_get_by_reference_and_tower_names(self):
        code = (
            "server = tower_servers.get_by_reference(payload.get('server', ''))\n"
            "missing = tower_servers.get_by_reference('nope')\n"
            "command = tower_commands.get_by_reference('uptime')\n"
            "plan = tower_plans.get_by_reference('deploy_app')\n"
            "result['message'] = [server.name, server.ip_v4_address, bool(missing), missing.id,"
            " command.name, plan.name, str(tower)]"
        )
        self.ok(
            code,
            "['Backup', False, False, False, 'Uptime', 'Deploy app', 'cetmix.tower()']",
            payload={"server": "backup"},
        )
        search = self.odoo.calls[0]
        self.assertEqual(
            (search["model"], search["method"], search["args"], search["kwargs"]["limit"]),
            ("cx.tower.server", "search", [[["reference", "=", "backup"]]], 1),
        )

    def test_with_context_reaches_kwargs(self):
        code = (
            "P = env['res.partner']\n"
            "a = P.with_context(active_test=False).search([('name', '=', 'Archived Co')])\n"
            "b = P.search([('name', '=', 'Archived Co')])\n"
            "c = P.with_context({'lang': 'fr_FR'}).with_context(x=1).echo()\n"
            "d = P.with_context(lang='de_DE').echo(context={'y': 2})\n"
            "e = a.with_context(k='v').env.context\n"
            "result['message'] = [a.ids, b.ids, c['context'], d['context'], e, env.context]"
        )
        self.ok(
            code,
            "[[5], [], {'lang': 'fr_FR', 'tz': 'Europe/Berlin', 'x': 1}, {'lang': 'de_DE',"
            " 'tz': 'Europe/Berlin', 'y': 2}, {'lang': 'en_US', 'tz': 'Europe/Berlin',"
            " 'active_test': False, 'k': 'v'}, {'lang': 'en_US', 'tz': 'Europe/Berlin'}]",
        )
        self.assertEqual(
            self.odoo.calls[0]["kwargs"]["context"],
            {"lang": "en_US", "tz": "Europe/Berlin", "active_test": False},
        )
        self.assertEqual(self.odoo.context_calls, ["webhook"])

    def test_empty_context_is_not_sent(self):
        self.odoo.contexts["webhook"] = {}
        self.ok("env['res.partner'].search([])")
        self.assertEqual(self.odoo.calls[0]["kwargs"], {})

    def test_with_company(self):
        code = (
            "r = env['res.partner'].with_company(3).with_company(env['res.company'].browse(1))"
            ".echo()\n"
            "result['message'] = [r['context']['allowed_company_ids'], env.company.name,"
            " env.companies.ids, env.lang]"
        )
        self.ok(code, "[[1, 3], 'YourCompany', [1], 'en_US']")

    def test_env_ref(self):
        code = (
            "be = env.ref('base.be')\n"
            "gone = env.ref('base.nope', raise_if_not_found=False)\n"
            "result['message'] = [be.name, be._name, gone]"
        )
        self.ok(code, "['Belgium', 'res.country', None]")
        self.assertEqual(self.odoo.calls[0]["args"], ["base", "be", True])
        self.assertWebhookFailed(
            self.call("env.ref('base.nope')"),
            "ValueError('External ID not found in the system: base.nope')",
        )

    def test_recordset_protocol(self):
        code = (
            "P = env['res.partner']\n"
            "a = P.browse([1, 2, 3])\n"
            "b = P.browse([3, 4])\n"
            "one = P.browse(1)\n"
            "result['message'] = [len(a), bool(P), one in a, P.browse(4) in a, (a | b).ids,"
            " (a & b).ids, (a - b).ids, (a + b).ids, a == P.browse([3, 2, 1]), a != b,"
            " P.browse(1) < a, a[1:].ids, a[-1].id, repr(a), str(one), one.ensure_one().id,"
            " int(one), a.sorted(key=lambda r: r.name, reverse=True).ids,"
            " a.sorted('name').mapped('name'), a.filtered(lambda r: r.country_id.code == 'BE').ids,"
            " a.filtered('email').ids, a.mapped('country_id').ids, a.mapped('country_id.code'),"
            " a.mapped(lambda r: r.id * 10), a.mapped('id'), one['name'], len({one, P.browse(1)}),"
            " P.browse([2, 1]).sorted().ids]"
        )
        self.ok(
            code,
            "[3, False, True, False, [1, 2, 3, 4], [3], [1, 2], [1, 2, 3, 3, 4], True, True, True,"
            " [2, 3], 3, 'res.partner(1, 2, 3)', 'res.partner(1,)', 1, 1, [3, 2, 1],"
            " ['Azure Interior', 'Deco Addict', 'Gemini Furniture'], [1, 3], [1, 2], [1, 2],"
            " ['BE', 'FR'], [10, 20, 30], [1, 2, 3], 'Azure Interior', 1, [1, 2]]",
        )

    def test_singleton_errors_as_odoo(self):
        for code in (
            "x = env['res.partner'].browse([1, 2]).name",
            "x = env['res.partner'].browse([1, 2]).id",
            "env['res.partner'].browse([1, 2]).ensure_one()",
        ):
            with self.subTest(code=code):
                self.assertWebhookFailed(
                    self.call(code), "ValueError('Expected singleton: res.partner(1, 2)')"
                )
        self.assertWebhookFailed(
            self.call("env['res.partner'].browse([]).ensure_one()"),
            "Expected singleton: res.partner()",
        )

    def test_inconsistent_models(self):
        self.assertWebhookFailed(
            self.call("x = env['res.partner'].browse(1) | env['res.country'].browse(1)"),
            "inconsistent models in: res.partner(1,) | res.country(1,)",
        )


class ErrorsTest(OdooCase):
    def test_access_error_caught_by_the_snippet(self):
        self.odoo.deny(WEBHOOK_UID, "res.partner", "create")
        code = (
            "try:\n"
            "    env['res.partner'].create({'name': 'x'})\n"
            "    result['message'] = 'created'\n"
            "except AccessError as e:\n"
            "    result['message'] = 'caught: ' + str(e).split('\\n')[0]\n"
        )
        self.ok(code, "caught: You are not allowed to create 'Contact' (res.partner) records.")

    def test_uncaught_access_error_gives_odoos_message(self):
        self.odoo.deny(WEBHOOK_UID, "res.partner", "write")
        answer = self.call("env['res.partner'].browse(1).write({'name': 'x'})")
        self.assertEqual(answer[:2], ("code_failed", 500))
        self.assertEqual(
            answer[3],
            "Webhook code execution error: You are not allowed to modify 'Contact' (res.partner)"
            " records.\n\nThis operation is allowed for the following groups:\n\t-"
            " Administration/Settings\n\nContact your administrator to request access if"
            " necessary.",
        )

    def test_authenticator_error_is_403_with_odoos_message(self):
        self.odoo.deny(SERVICE_UID, "res.partner", "read")
        answer = self.call(
            "result['message'] = 'never'",
            authenticator="result = {'allowed': env['res.partner'].search_count([]) > 0}",
        )
        self.assertAuthFailed(
            answer,
            403,
            "Authentication code error: You are not allowed to access 'Contact' (res.partner)",
        )

    def test_each_odoo_error_class(self):
        self.odoo.methods[("res.partner", "boom")] = _raiser
        cases = [
            ("odoo.exceptions.AccessError", "AccessError"),
            ("odoo.exceptions.MissingError", "MissingError"),
            ("odoo.exceptions.ValidationError", "ValidationError"),
            ("odoo.exceptions.UserError", "UserError"),
            ("odoo.exceptions.AccessDenied", "UserError"),
        ]
        for name, caught_as in cases:
            with self.subTest(name=name):
                code = (
                    "try:\n"
                    "    env['res.partner'].boom(%r, 'the text')\n"
                    "except %s as e:\n"
                    "    result['message'] = 'caught ' + str(e)\n" % (name, caught_as)
                )
                self.ok(code, "caught the text")
                answer = self.call("env['res.partner'].boom(%r, 'the text')" % name)
                self.assertEqual(answer[3], "Webhook code execution error: the text")

    def test_python_errors_and_others(self):
        self.odoo.methods[("res.partner", "boom")] = _raiser
        for name, text in (
            ("builtins.ValueError", "ValueError('the text')"),
            ("builtins.KeyError", "KeyError('the text')"),
            ("builtins.TypeError", "TypeError('the text')"),
            ("builtins.AttributeError", "AttributeError('the text')"),
            ("psycopg2.errors.UniqueViolation", "psycopg2.errors.UniqueViolation: the text"),
            ("towerhook.Unreachable", "the text"),
            ("towerhook.RunAsUnavailable", "the text"),
        ):
            with self.subTest(name=name):
                answer = self.call("env['res.partner'].boom(%r, 'the text')" % name)
                self.assertEqual(answer[3], "Webhook code execution error: " + text)
                caught = self.call(
                    "try:\n"
                    "    env['res.partner'].boom(%r, 'the text')\n"
                    "except Exception as e:\n"
                    "    result['message'] = 'caught'\n" % name
                )
                self.assertWebhookOk(caught, "caught")

    def test_mapping_of_names(self):
        self.assertIs(type(orm.error("odoo.exceptions.AccessError", "m")), sandbox.exceptions.AccessError)
        self.assertIs(type(orm.error("builtins.KeyError", "m")), KeyError)
        unknown = orm.error("odoo.exceptions.CacheMiss", None)
        self.assertIs(type(unknown), sandbox.UserError)
        self.assertEqual(str(unknown), "odoo.exceptions.CacheMiss: ")

    def test_validation_error_from_write(self):
        code = (
            "try:\n"
            "    env['res.partner'].browse(1).write({'email': 'nope'})\n"
            "except ValidationError as e:\n"
            "    result['message'] = str(e)\n"
        )
        self.ok(code, "Invalid email address 'nope'")

    def test_unknown_field_and_model(self):
        self.assertWebhookFailed(
            self.call("env['res.partner'].search_read([], ['nope'])"),
            "ValueError(\"Invalid field 'nope' on model 'res.partner'\")",
        )
        self.assertEqual(
            self.call("env['no.such.model'].search([])")[3],
            "Webhook code execution error: Object no.such.model doesn't exist",
        )

    def test_missing_record(self):
        code = "x = env['res.partner'].browse(99).name"
        self.assertEqual(
            self.call(code)[3],
            "Webhook code execution error: Record does not exist or has been deleted.\n"
            "(Record: res.partner(99,), User: 6)",
        )
        code = (
            "try:\n"
            "    env['res.partner'].browse(99).write({'name': 'x'})\n"
            "except MissingError:\n"
            "    result['message'] = 'gone'\n"
        )
        self.ok(code, "gone")

    def test_prefetch_falls_back_to_the_record_alone(self):
        self.odoo.hidden[(WEBHOOK_UID, "res.partner")] = {2}
        code = (
            "recs = env['res.partner'].browse([1, 2, 3])\n"
            "first = recs[0].name\n"
            "try:\n"
            "    second = recs[1].name\n"
            "except AccessError:\n"
            "    second = 'hidden'\n"
            "result['message'] = [first, second, recs[2].name]"
        )
        self.ok(code, "['Azure Interior', 'hidden', 'Gemini Furniture']")
        reads = [c["ids"] for c in self.odoo.calls if c["method"] == "read"]
        self.assertEqual(reads, [[1, 2, 3], [1], [2], [3]])

    def test_sudo_with_user_and_private_methods_are_refused_without_rpc(self):
        for code, text in (
            (
                "env['res.partner'].sudo().search([])",
                "sudo() is not available in towerhook: code runs over RPC with the rights of "
                "the webhook's Run as User 'webhook_bot' (uid 6), and an RPC client cannot "
                "raise them.",
            ),
            ("user.sudo(True)", "sudo() is not available in towerhook"),
            ("env(su=True)", "sudo() is not available in towerhook"),
            (
                "tower_servers.with_user(1)",
                "with_user() is not available in towerhook: code runs over RPC with the "
                "credentials of the webhook's Run as User 'webhook_bot' (uid 6) and cannot "
                "act as another user.",
            ),
            ("env(user=1)", "with_user() is not available"),
            (
                "env['res.partner']._search([])",
                "Webhook code execution error: Private methods (such as _search) cannot be "
                "called remotely.",
            ),
            ("user._compute_display_name()", "Private methods (such as _compute_display_name)"),
            ("env['res.partner'].init()", "Private methods (such as init)"),
            ("env.cr.execute('select 1')", "env.cr is not available in towerhook"),
            ("user.invalidate_recordset()", "invalidate_recordset() is not available"),
        ):
            with self.subTest(code=code):
                self.odoo.calls.clear()
                self.assertWebhookFailed(self.call(code), text)
                self.assertEqual(self.odoo.calls, [])

    def test_sudo_false_is_harmless(self):
        self.ok("result['message'] = str(tower_plans.sudo(False))", "cx.tower.plan()")

    def test_authenticator_sudo_names_the_service_user(self):
        answer = self.call("", authenticator="env['res.partner'].sudo()")
        self.assertAuthFailed(
            answer, 403, "with the rights of towerhook's service user 'towerhook' (uid 2)"
        )

    def test_caught_refusal_is_catchable_as_user_error(self):
        code = (
            "try:\n"
            "    env['res.partner'].sudo()\n"
            "except UserError as e:\n"
            "    result['message'] = 'no sudo'\n"
        )
        self.ok(code, "no sudo")

    def test_timeout_from_the_bridge_is_never_caught(self):
        odoo = self.odoo

        class SlowBridge:
            def execute(self, *args):
                raise sandbox.SnippetTimeout()

            def user(self, kind):
                return odoo.users[kind]

            def context(self, kind):
                return {}

        code = (
            "try:\n"
            "    env['res.partner'].search([])\n"
            "except Exception:\n"
            "    result['message'] = 'caught'\n"
            "except:\n"
            "    result['message'] = 'caught bare'\n"
        )
        answer = self.call(code, context={"odoo": SlowBridge()})
        self.assertWebhookFailed(answer, "execution timed out after 30 s")

    def test_bad_bridge_answer(self):
        class Broken:
            def execute(self, *args):
                return ("maybe",)

            def user(self, kind):
                return (6, None)

            def context(self, kind):
                return None

        answer = self.call("env['res.partner'].search([])", context={"odoo": Broken()})
        self.assertWebhookFailed(answer, "unexpected answer from the Odoo bridge")

    def test_bridge_that_cannot_name_the_user(self):
        class NoUser:
            def execute(self, *args):
                raise AssertionError("not called")

            def user(self, kind):
                raise RuntimeError("no such webhook")

            def context(self, kind):
                return {}

        answer = self.call("x = uid", context={"odoo": NoUser()})
        self.assertWebhookFailed(
            answer, "Odoo objects unavailable: RuntimeError('no such webhook')"
        )


class WhoRunsTest(OdooCase):
    def test_authenticator_and_webhook_kinds_reach_the_bridge(self):
        answer = self.call(
            "result['message'] = '%s %s %s' % (uid, user.login, env.uid)",
            authenticator=(
                "result = {'allowed': uid == 2 and user.login == 'towerhook'"
                " and env['res.partner'].search_count([]) > 0}"
            ),
        )
        self.assertWebhookOk(answer, "6 webhook_bot 6")
        self.assertEqual(
            [(c["kind"], c["uid"], c["model"], c["method"]) for c in self.odoo.calls],
            [
                ("authenticator", SERVICE_UID, "res.users", "fields_get"),
                ("authenticator", SERVICE_UID, "res.users", "read"),
                ("authenticator", SERVICE_UID, "res.partner", "search_count"),
                ("webhook", WEBHOOK_UID, "res.users", "fields_get"),
                ("webhook", WEBHOOK_UID, "res.users", "read"),
            ],
        )
        self.assertEqual(self.odoo.user_calls, ["authenticator", "webhook"])

    def test_uid_and_user(self):
        code = (
            "result['message'] = [uid, uid + 1, user.id, user.name,"
            " user.partner_id.name, user == env.user, str(user), env.user.id]"
        )
        self.ok(code, "[6, 7, 6, 'Webhook Bot', 'Webhook Bot', True, 'res.users(6,)', 6]")

    def test_uid_alone_needs_no_rpc(self):
        self.ok("result['message'] = str(uid + 1)", "7")
        self.assertEqual(self.odoo.calls, [])
        self.assertEqual(self.odoo.user_calls, ["webhook"])
        self.assertEqual(self.odoo.context_calls, [])

    def test_env_not_used_means_no_bridge_call_at_all(self):
        self.ok("result['message'] = payload.get('a', 'none')", "none")
        self.assertEqual(self.odoo.calls, [])
        self.assertEqual(self.odoo.user_calls, [])
        self.assertEqual(self.odoo.context_calls, [])

    def test_names_used_in_a_function_are_seen(self):
        code = "def f():\n    return uid\nresult['message'] = str(f())"
        self.ok(code, "6")
        code = "result['message'] = str([uid for _ in range(1)])"
        self.ok(code, "[6]")

    def test_objects_die_with_their_run(self):
        # The authenticator hands its env (service user) to the webhook code in payload.
        answer = self.call(
            "result['message'] = str(payload['env']['res.partner'].search_count([]))",
            authenticator="payload['env'] = env\nresult = {'allowed': True}",
            payload={"x": 1},
        )
        self.assertWebhookFailed(
            answer, "Odoo objects of the authenticator code can only be used while it runs, by the call that received them"
        )
        self.assertEqual(self.odoo.calls, [])

    def test_without_a_bridge_the_names_explain(self):
        answer = run(webhook="env['res.partner'].search([])")
        self.assertWebhookFailed(answer, "env is not available: towerhook runs this webhook")
        answer = run(webhook="x = tower_servers.get_by_reference('main')")
        self.assertWebhookFailed(answer, "tower_servers is not available")

    def test_error_classes_are_names_without_odoo_too(self):
        code = (
            "try:\n"
            "    raise ValidationError('bad value')\n"
            "except UserError as e:\n"
            "    result['message'] = '%s %s' % (e, [AccessError('x'), MissingError('y')])\n"
        )
        answer = run(webhook=code)
        self.assertWebhookOk(answer, "bad value [AccessError('x'), MissingError('y')]")
        self.assertEqual(
            run(webhook="raise AccessError('no')")[3], "Webhook code execution error: no"
        )

    def test_mapping_form_still_works(self):
        answer = run(webhook="result['message'] = str(uid)", context={"odoo": {"uid": 3}})
        self.assertWebhookOk(answer, "3")


class ThroughputTest(OdooCase):
    def test_bridge_costs_nothing_when_the_names_are_not_used(self):
        auth = sandbox.prepare("authenticator", ALLOW_ALL, {})
        hook = sandbox.prepare("webhook", "result['message'] = 'ok'", {})
        uses = sandbox.prepare("webhook", "result['message'] = str(uid)", {})
        bridge = self.odoo.bridge()
        plain = {"timeout_seconds": 30}
        bridged = {"timeout_seconds": 30, "odoo": bridge}

        def rate(webhook, context, n=20000):
            start = time.perf_counter()
            for _ in range(n):
                sandbox.run_call(auth, webhook, {}, b"", {"a": 1}, context)
            return n / (time.perf_counter() - start)

        rate(hook, plain, 2000)
        best = {}
        for _ in range(3):
            for name, webhook, context in (
                ("without bridge", hook, plain),
                ("with bridge, names unused", hook, bridged),
                ("with bridge, uid used", uses, bridged),
            ):
                best[name] = max(best.get(name, 0), rate(webhook, context))
        sys.stderr.write(
            "\n  run_call throughput: %s\n"
            % ", ".join("%s %.0f/s" % (name, value) for name, value in best.items())
        )
        self.assertEqual(self.odoo.calls, [])
        self.assertGreater(best["with bridge, names unused"], best["without bridge"] * 0.5)
        self.assertGreater(best["with bridge, uid used"], 10000)


def _raiser(odoo, uid, ids, context, name, message):
    from .fake_odoo import OdooError

    raise OdooError(name, message)
