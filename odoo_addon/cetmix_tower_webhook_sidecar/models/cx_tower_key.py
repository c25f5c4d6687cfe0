# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import models


class CxTowerKey(models.Model):
    _name = "cx.tower.key"
    _inherit = ["cx.tower.key", "cx.tower.webhook.sidecar.notify.mixin"]
