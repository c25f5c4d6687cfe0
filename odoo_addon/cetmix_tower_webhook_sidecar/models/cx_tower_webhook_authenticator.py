# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import models


class CxTowerWebhookAuthenticator(models.Model):
    _name = "cx.tower.webhook.authenticator"
    _inherit = ["cx.tower.webhook.authenticator", "cx.tower.webhook.sidecar.notify.mixin"]
