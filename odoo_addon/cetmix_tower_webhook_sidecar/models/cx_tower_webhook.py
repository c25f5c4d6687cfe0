# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import inspect

from odoo import api, models

from .. import tools
from .common import as_validation_error, check_sidecar_group


class CxTowerWebhook(models.Model):
    _name = "cx.tower.webhook"
    _inherit = ["cx.tower.webhook", "cx.tower.webhook.sidecar.notify.mixin"]

    @api.model
    def towerhook_secret_values(self, webhook_ids=None, authenticator_ids=None):
        """Secret values used by the code of the given webhooks and authenticators.

        RPC: ``cx.tower.webhook.towerhook_secret_values(webhook_ids, authenticator_ids)``,
        for members of the group ``cetmix_tower_webhook_sidecar.group_sidecar`` only
        (AccessError otherwise).

        Returns ``{reference: value or False}`` with one entry per distinct reference of
        a ``#!cxtower.secret.REF!#`` placeholder in the ``code`` of those records, and
        nothing else. The value is the key's global value (no server, no partner), the
        only one Cetmix Tower substitutes in webhook code, as text (possibly empty);
        ``False`` when no key has that reference or the key has no global value: such a
        secret has no value (Cetmix Tower substitutes None for it). Never None: XML-RPC
        cannot marshal None, and one secret without value would make the whole answer a
        fault there. Ids of records that no longer exist are ignored; archived webhooks
        count.
        """
        check_sidecar_group(self, "towerhook_secret_values")
        try:
            webhook_ids = tools.normalize_ids(webhook_ids, "webhook_ids")
            authenticator_ids = tools.normalize_ids(authenticator_ids, "authenticator_ids")
        except tools.ValuesError as error:
            raise as_validation_error(error) from None
        webhooks = self.sudo().browse(webhook_ids).exists()
        authenticators = (
            self.env["cx.tower.webhook.authenticator"].sudo().browse(authenticator_ids).exists()
        )
        codes = webhooks.mapped("code") + authenticators.mapped("code")
        references = self._towerhook_secret_references(codes)
        return tools.select_secret_values(references, self._towerhook_global_secret)

    @api.model
    def _towerhook_secret_references(self, codes):
        """Secret references in ``codes``, with the key model's own parser when it has
        one (cx.tower.key._extract_key_strings / _extract_key_parts), else the same
        rules from tools.py."""
        keys = self.env["cx.tower.key"]
        if not (hasattr(keys, "_extract_key_strings") and hasattr(keys, "_extract_key_parts")):
            return tools.secret_references(codes)
        references = []
        for code in codes:
            if not code:
                continue
            for key_string in keys._extract_key_strings(code):
                parts = keys._extract_key_parts(key_string)
                if (
                    parts
                    and parts[0] == tools.SECRET_KEY_TYPE
                    and parts[1]
                    and parts[1] not in references
                ):
                    references.append(parts[1])
        return references

    @api.model
    def _towerhook_global_secret(self, reference):
        """The global value of the key ``reference``, or None (the answer turns it into
        False, see tools.secret_value).

        Uses Cetmix Tower's resolver without a server or a partner
        (``_resolve_key_type_secret``: what webhook code gets), which reads the value
        where that version keeps it (the vault, or the key value row before the vault
        existed). Falls back to tools.choose_global_value on the key's values."""
        keys = self.env["cx.tower.key"].sudo()
        resolver = getattr(keys, "_resolve_key_type_secret", None)
        if resolver is not None:
            return resolver(reference)
        key = keys.search([("reference", "=", reference)], limit=1)
        if not key:
            return None
        value = tools.choose_global_value(
            (line.server_id.id, line.partner_id.id, line) for line in key.value_ids
        )
        if not value:
            return None
        read = value._get_secret_value
        # vault era: _get_secret_value(field_name); before: _get_secret_value()
        if len(inspect.signature(read).parameters):
            return read("secret_value")
        return read()
