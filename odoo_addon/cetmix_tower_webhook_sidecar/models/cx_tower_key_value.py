# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import models


class CxTowerKeyValue(models.Model):
    _name = "cx.tower.key.value"
    _inherit = ["cx.tower.key.value", "cx.tower.webhook.sidecar.notify.mixin"]
