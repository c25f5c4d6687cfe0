# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Helpers shared by the two RPC methods."""
from odoo.exceptions import AccessError, ValidationError

from .. import tools


def check_sidecar_group(records, method_name):
    """AccessError unless the calling user is in the Webhook Sidecar group (superuser
    mode passes, as for any Odoo access check)."""
    env = records.env
    if env.su:
        return
    if not env.user.has_group(tools.GROUP_XMLID):
        raise AccessError(tools.group_required_message(records._name, method_name))


def as_validation_error(error):
    """tools.ValuesError -> odoo.exceptions.ValidationError with the same text."""
    return ValidationError(str(error))
