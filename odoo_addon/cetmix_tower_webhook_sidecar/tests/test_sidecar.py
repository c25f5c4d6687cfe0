# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Odoo tests of the addon, for a real Odoo 16.0-18.0 with Cetmix Tower:

    odoo -d <test db> -i cetmix_tower_webhook_sidecar --test-enable --stop-after-init

NOT run in towerhook's CI (there is no Odoo there): written against Odoo's and Cetmix
Tower's source, never executed. The logic they rely on (tools.py) is unit-tested in
odoo_addon/tests without Odoo.
"""
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestSidecar(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.group = env.ref("cetmix_tower_webhook_sidecar.group_sidecar")
        cls.user = env["res.users"].create({
            "name": "towerhook service", "login": "towerhook_sidecar_test",
            "groups_id": [(6, 0, [env.ref("base.group_user").id])],
        })
        key = env["cx.tower.key"].create({
            "name": "API token", "reference": "sidecar_api_token", "key_type": "s"})
        env["cx.tower.key.value"].create({"key_id": key.id, "secret_value": "s3cr3t"})
        server_only = env["cx.tower.key"].create({
            "name": "Server only", "reference": "sidecar_server_only", "key_type": "s"})
        server = env["cx.tower.server"].search([], limit=1)
        if server:
            env["cx.tower.key.value"].create({
                "key_id": server_only.id, "server_id": server.id,
                "secret_value": "not-global"})
        cls.authenticator = env["cx.tower.webhook.authenticator"].create({
            "name": "Sidecar auth",
            "code": "result = {'allowed': headers.get('X') == "
                    "#!cxtower.secret.sidecar_api_token!#}",
        })
        cls.webhook = env["cx.tower.webhook"].create({
            "name": "Sidecar hook", "endpoint": "sidecar_hook",
            "authenticator_id": cls.authenticator.id,
            "code": "a = #!cxtower.secret.sidecar_api_token!#\n"
                    "b = #!cxtower.secret.sidecar_server_only!#\n"
                    "c = #!cxtower.secret.sidecar_unknown!#\n"
                    "result = {'exit_code': 0}",
        })

    def _join(self):
        self.user.write({"groups_id": [(4, self.group.id)]})

    def test_group_required(self):
        webhooks = self.env["cx.tower.webhook"].with_user(self.user)
        logs = self.env["cx.tower.webhook.log"].with_user(self.user)
        with self.assertRaises(AccessError):
            webhooks.towerhook_secret_values([self.webhook.id], [])
        with self.assertRaises(AccessError):
            logs.towerhook_create_logs([])
        self._join()
        self.assertEqual(logs.towerhook_create_logs([]), [])
        self.assertEqual(webhooks.towerhook_secret_values([], []), {})
        # the group grants no access rule on the log
        with self.assertRaises(AccessError):
            logs.create({"endpoint": "x"})

    def test_secret_values(self):
        self._join()
        webhooks = self.env["cx.tower.webhook"].with_user(self.user)
        self.assertEqual(
            webhooks.towerhook_secret_values([self.webhook.id], [self.authenticator.id]),
            {"sidecar_api_token": "s3cr3t", "sidecar_server_only": False,
             "sidecar_unknown": False},
        )
        self.assertEqual(webhooks.towerhook_secret_values([], [self.authenticator.id]),
                         {"sidecar_api_token": "s3cr3t"})
        with self.assertRaises(ValidationError):
            webhooks.towerhook_secret_values(["1"], [])

    def test_create_logs(self):
        self._join()
        logs = self.env["cx.tower.webhook.log"].with_user(self.user)
        vals = {"webhook_id": self.webhook.id, "endpoint": "sidecar_hook",
                "authenticator_id": self.authenticator.id, "request_method": "post",
                "authentication_status": "success", "code_status": "success",
                "http_status": 200, "result_message": "OK",
                "towerhook_call_time": "2026-03-01T10:20:30Z", "towerhook_uid": "sidecar-1"}
        ids = logs.towerhook_create_logs([vals, dict(vals, towerhook_uid="sidecar-2")])
        self.assertEqual(len(ids), 2)
        log = self.env["cx.tower.webhook.log"].browse(ids[0])
        self.assertEqual(log.create_uid, self.user)
        self.assertEqual(str(log.towerhook_call_time), "2026-03-01 10:20:30")
        self.assertEqual(log.display_name, "Sidecar hook (sidecar_hook) [200]")
        # sent again: nothing new
        self.assertEqual(logs.towerhook_create_logs([vals]), ids[:1])
        self.assertEqual(self.env["cx.tower.webhook.log"].search_count(
            [("towerhook_uid", "like", "sidecar-")]), 2)
        with self.assertRaisesRegex(ValidationError, "unknown field"):
            logs.towerhook_create_logs([dict(vals, create_date="2026-01-01 00:00:00")])
        with self.assertRaisesRegex(ValidationError, "request_method"):
            logs.towerhook_create_logs([dict(vals, request_method="put")])
        with self.assertRaisesRegex(ValidationError, "webhook_id.*999999"):
            logs.towerhook_create_logs([dict(vals, towerhook_uid="sidecar-3",
                                             webhook_id=999999)])

    def test_delivery_settings(self):
        # defaults on a webhook created without them
        self.assertEqual(self.webhook.towerhook_mode, "sync")
        self.assertEqual(self.webhook.towerhook_dedup_window_secs, 86400)
        self.assertEqual(self.webhook.towerhook_retries, 5)
        self.assertEqual(self.webhook.towerhook_async_status, 202)
        self.webhook.write({"towerhook_mode": "async",
                            "towerhook_dedup_key": "header:X-GitHub-Delivery",
                            "towerhook_rate_per_minute": 60})
        self.assertEqual(self.webhook.towerhook_mode, "async")
        with self.assertRaisesRegex(ValidationError, "towerhook_dedup_key"):
            self.webhook.write({"towerhook_dedup_key": "X-GitHub-Delivery"})
        with self.assertRaisesRegex(ValidationError, "towerhook_async_status"):
            self.webhook.write({"towerhook_async_status": 500})
        # the form inherits with the "towerhook" tab
        arch = self.env["cx.tower.webhook"].get_view(view_type="form")["arch"] \
            if hasattr(self.env["cx.tower.webhook"], "get_view") \
            else self.env["cx.tower.webhook"].fields_view_get(view_type="form")["arch"]
        self.assertIn('name="towerhook_dedup_key"', arch)
