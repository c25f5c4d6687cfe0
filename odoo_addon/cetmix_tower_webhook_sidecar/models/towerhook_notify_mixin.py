# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Tell towerhook to read the definitions again when they change (optional).

After the transaction that created, changed or deleted a webhook, an authenticator, a
key or a key value commits, one POST goes to the URL in the system parameter
``cetmix_tower_webhook_sidecar.notify_url`` (towerhook's ``POST /admin/reload``) with
``Authorization: Bearer <cetmix_tower_webhook_sidecar.notify_token>``. It is sent from a
background thread with a short timeout; failures are logged and otherwise ignored
(towerhook also polls, so a lost notification only delays a reload). Nothing is sent
while the URL parameter is empty.
"""
import logging
import threading

from odoo import api, models

from .. import tools

_logger = logging.getLogger(__name__)

PENDING_KEY = "cetmix_tower_webhook_sidecar.notify"


def _post(request, timeout):
    url, headers, body = request
    try:
        import requests  # an Odoo dependency; imported here to keep the import light

        response = requests.post(url, data=body, headers=headers, timeout=timeout)
        if response.status_code >= 300:
            _logger.warning(
                "towerhook change notification to %s answered HTTP %s",
                url,
                response.status_code,
            )
    except Exception as error:  # noqa: BLE001 - a notification must never fail anything
        _logger.warning("towerhook change notification to %s failed: %s", url, error)


class TowerhookNotifyMixin(models.AbstractModel):
    _name = "cx.tower.webhook.sidecar.notify.mixin"
    _description = "Notify towerhook of definition changes"

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._towerhook_schedule_notify()
        return records

    def write(self, vals):
        result = super().write(vals)
        self._towerhook_schedule_notify()
        return result

    def unlink(self):
        self._towerhook_schedule_notify()
        return super().unlink()

    def _towerhook_schedule_notify(self):
        """Register (once per transaction) the notification sent after commit."""
        if not self or self.env.context.get("towerhook_no_notify"):
            return
        callbacks = self.env.cr.postcommit
        pending = callbacks.data.get(PENDING_KEY)
        if pending is not None:
            pending["models"].add(self._name)
            return
        params = self.env["ir.config_parameter"].sudo()
        url = params.get_param(tools.NOTIFY_URL_PARAM)
        token = params.get_param(tools.NOTIFY_TOKEN_PARAM)
        if tools.notify_request(url, token, []) is None:
            return
        pending = {
            "models": {self._name},
            "url": url,
            "token": token,
            "timeout": tools.notify_timeout(params.get_param(tools.NOTIFY_TIMEOUT_PARAM)),
            "database": self.env.cr.dbname,
        }
        callbacks.data[PENDING_KEY] = pending

        @callbacks.add
        def notify_towerhook():
            request = tools.notify_request(
                pending["url"], pending["token"], pending["models"], pending["database"]
            )
            threading.Thread(
                target=_post,
                args=(request, pending["timeout"]),
                name="towerhook-notify",
                daemon=True,
            ).start()
