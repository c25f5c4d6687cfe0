# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Cetmix Tower Webhook Sidecar",
    "summary": "Secret values, log creation and delivery settings for towerhook, the "
    "Cetmix Tower webhook sidecar",
    # No series prefix on purpose: Odoo prefixes it with the running series
    # (16.0.1.0.0, 17.0.1.0.0, 18.0.1.0.0), so the same code installs on 16.0-18.0.
    "version": "1.0.0",
    "category": "Productivity",
    "author": "towerhook contributors",
    "license": "AGPL-3",
    "depends": ["cetmix_tower_webhook"],
    "data": [
        "security/cetmix_tower_webhook_sidecar_groups.xml",
        "views/cx_tower_webhook_log_views.xml",
        "views/cx_tower_webhook_views.xml",
    ],
    "installable": True,
    "application": False,
}
