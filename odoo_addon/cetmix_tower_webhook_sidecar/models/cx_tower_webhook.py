# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import inspect

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .. import tools
from .common import as_validation_error, check_sidecar_group


class CxTowerWebhook(models.Model):
    _name = "cx.tower.webhook"
    _inherit = ["cx.tower.webhook", "cx.tower.webhook.sidecar.notify.mixin"]

    # Delivery settings, read by towerhook (towerhook extensions; the module itself
    # ignores them). Shown on the form's "towerhook" tab; towerhook's YAML round trip
    # exports and imports them without the prefix (dedup_key, mode, ...).
    towerhook_dedup_key = fields.Char(
        string="Delivery ID",
        help="Where a call carries its delivery id: header:<Header-Name> (e.g. "
        "header:X-GitHub-Delivery, header:webhook-id) or json:<field>[.<field>] (e.g. "
        "json:id, json:event.id). A repeat of an id within the window is answered 200 "
        "'Duplicate delivery ignored' without running the code. Empty: no duplicate guard.",
    )
    towerhook_dedup_window_secs = fields.Integer(
        string="Remember Delivery IDs (s)",
        default=tools.DEFAULT_DEDUP_WINDOW_SECS,
        help="How long a delivery id is remembered, in seconds (default 24 h).",
    )
    towerhook_max_body_bytes = fields.Integer(
        string="Max Body (bytes)",
        default=0,
        help="Larger bodies are refused with 413. 0: towerhook's max_body_bytes setting.",
    )
    towerhook_max_concurrent_calls = fields.Integer(
        string="Max Calls at Once",
        default=0,
        help="Calls of this webhook running at the same time, per towerhook replica; "
        "beyond: 503 with Retry-After. 0: no limit.",
    )
    towerhook_rate_per_minute = fields.Integer(
        string="Max Calls per Minute per Address",
        default=0,
        help="Calls per minute from one client address, per towerhook replica; beyond: 429 "
        "with Retry-After. 0: no limit.",
    )
    towerhook_mode = fields.Selection(
        selection=list(tools.DELIVERY_MODES),
        string="Run Code",
        default="sync",
        required=True,
        help="Run at once: the caller waits for the code, as the module does. Accept now, "
        "run later: the address check and the authenticator run at once, the call is "
        "queued and answered, and the code runs from towerhook's durable queue in "
        "arrival order, with retries.",
    )
    towerhook_retries = fields.Integer(
        string="Retries",
        default=tools.DEFAULT_RETRIES,
        help="Accept now, run later: further runs of a call whose code fails (with a "
        "growing pause) before it is kept as a dead letter.",
    )
    towerhook_async_status = fields.Integer(
        string="Accepted Status",
        default=tools.DEFAULT_ASYNC_STATUS,
        help="Accept now, run later: the HTTP status answered (200-299).",
    )
    towerhook_async_message = fields.Char(
        string="Accepted Message",
        default=tools.DEFAULT_ASYNC_MESSAGE,
        help="Accept now, run later: the message answered.",
    )

    @api.constrains(*tools.DELIVERY_FIELDS)
    def _check_towerhook_delivery(self):
        for webhook in self:
            problems = tools.delivery_problems(
                {name: webhook[name] for name in tools.DELIVERY_FIELDS}
            )
            if problems:
                raise ValidationError("\n".join(problems))

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
