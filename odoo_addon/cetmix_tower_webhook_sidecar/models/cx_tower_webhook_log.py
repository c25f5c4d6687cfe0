# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, fields, models

from .. import tools
from .common import as_validation_error, check_sidecar_group


class CxTowerWebhookLog(models.Model):
    _inherit = "cx.tower.webhook.log"

    towerhook_call_time = fields.Datetime(
        string="Call Time",
        readonly=True,
        copy=False,
        help="When towerhook received the call (UTC). The log itself may have been "
        "created later (Created on), when towerhook could reach Odoo again.",
    )
    towerhook_uid = fields.Char(
        string="towerhook Call ID",
        readonly=True,
        copy=False,
        help="Idempotency key of the call given by towerhook: a batch sent again after "
        "a crash does not create the same log twice. Unique (the constraint is its index).",
    )

    _sql_constraints = [
        (
            "towerhook_uid_unique",
            "UNIQUE(towerhook_uid)",
            "A log with this towerhook call ID already exists.",
        ),
    ]

    @api.model
    def towerhook_create_logs(self, vals_list):
        """Create webhook call logs for towerhook, with superuser rights.

        RPC: ``cx.tower.webhook.log.towerhook_create_logs(vals_list)``, for members of
        the group ``cetmix_tower_webhook_sidecar.group_sidecar`` only (AccessError
        otherwise). The stock access rules stay as they are: logs are read-only for
        everybody, and this method is the only way towerhook creates them.

        ``vals_list``: a list of dicts, with only the fields towerhook writes
        (tools.LOG_FIELDS): webhook_id, endpoint, authenticator_id, request_method,
        request_headers, request_payload, authentication_status, code_status,
        http_status, result_message, error_message, user_id, ip_address, country_id,
        towerhook_call_time, towerhook_uid. Every value is checked; an unknown key, a
        wrong type, a value outside a selection, or a many2one id that does not exist
        refuses the whole batch with a ValidationError naming the record, the field
        (and the id).

        A record whose ``towerhook_uid`` already exists is not created again: its
        existing id is answered. Returns the list of log ids, one per record, in order
        (``[]`` for an empty list).
        """
        check_sidecar_group(self, "towerhook_create_logs")
        try:
            clean = tools.validate_log_values(vals_list)
            if not clean:
                return []

            def existing_ids(comodel, ids):
                return self.env[comodel].sudo().browse(ids).exists().ids

            tools.check_references(clean, existing_ids)
        except tools.ValuesError as error:
            raise as_validation_error(error) from None
        logs = self.sudo().with_context(active_test=False)
        existing = {}
        uids = tools.batch_uids(clean)
        if uids:
            for row in logs.search_read([("towerhook_uid", "in", uids)], ["towerhook_uid"]):
                existing[row["towerhook_uid"]] = row["id"]
        to_create, slots = tools.plan_batch(clean, existing)
        created = logs.create(to_create) if to_create else logs.browse()
        return tools.assemble_ids(slots, created.ids)
