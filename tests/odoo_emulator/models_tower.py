"""Cetmix Tower models: webhooks, authenticators, logs, keys and secrets, servers, plans.

Fields, defaults, constraints and messages follow cetmix-module-facts.md §1 and §6.
"""
import datetime as dt
import ipaddress
import re

import fields as F
from errors import ValidationError
import orm as api
from orm import BaseModel

SECRET_PLACEHOLDER = "*****"   # what secret_value reads as, for everybody (facts §6.2)
SECRET_RE = re.compile(r"#!cxtower\.secret\.([A-Za-z0-9_]+)\s*!#")
VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ENDPOINT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?$")

DEFAULT_WEBHOOK_CODE = (
    "# Available variables:\n"
    "#  - headers, payload, user, env, tower, ...\n"
    "# Set `result` to a dict: {\"exit_code\": 0, \"message\": None}\n")
DEFAULT_AUTHENTICATOR_CODE = (
    "# Available variables:\n"
    "#  - headers, raw_data, payload, ...\n"
    "# Set `result` to a dict: {\"allowed\": False} (optional http_code, message)\n")


class ReferenceMixin(BaseModel):
    """cx.tower.reference.mixin: `name` + unique `reference`, generated when absent."""

    _reference_generic = "record"
    _reference_chars = "[a-z0-9_]"
    _sql_constraints = [("reference_unique", ("reference",), "Reference must be unique")]

    name = F.Char(string="Name", required=True)
    reference = F.Char(string="Reference", copy=False)

    def _sanitize_reference(self, text):
        text = (text or "").strip().replace(" ", "_")
        if self._reference_chars == "[a-z0-9_]":
            text = text.lower()
        return "".join(ch for ch in text if re.fullmatch(self._reference_chars, ch))

    def _generate_reference(self, wanted, name, exclude_id=None):
        if wanted and re.fullmatch(self._reference_chars + "+", wanted):
            base = wanted
        else:
            base = self._sanitize_reference(wanted or name)
        base = base or self._reference_generic
        taken = {row.get("reference") for rid, row in self._table().items()
                 if rid != exclude_id}
        candidate, suffix = base, 2
        while candidate in taken:
            candidate = f"{base}_{suffix}"
            suffix += 1
        return candidate

    def _prepare_create_vals(self, vals):
        vals = super()._prepare_create_vals(vals)
        if isinstance(vals.get("name"), str):
            vals["name"] = vals["name"].strip()
        vals["reference"] = self._generate_reference(vals.get("reference"), vals.get("name"))
        return vals

    def _prepare_write_vals(self, vals):
        vals = super()._prepare_write_vals(vals)
        if "reference" in vals and not vals["reference"] and len(self) == 1:
            name = vals.get("name") or self._get(self.id, "name")
            vals["reference"] = self._generate_reference(None, name, exclude_id=self.id)
        return vals

    @api.model
    def get_by_reference(self, reference):
        """Returns a recordset: over JSON-RPC/XML-RPC it cannot be serialised, as in Odoo."""
        self._check_access("read")
        return self.browse(self.with_context(active_test=False)._search(
            [("reference", "=", reference)], limit=1))


class CodeLinksMixin(BaseModel):
    """Secrets and variables linked to records by the references found in `code`."""

    def _compute_secret_ids(self):
        refs = set(SECRET_RE.findall(self._get(self.id, "code") or ""))
        keys = self.env.sudo()["cx.tower.key"]
        return keys._sorted_ids([rid for rid, row in keys._table().items()
                                 if row.get("reference") in refs and row.get("key_type") == "s"])

    def _compute_variable_ids(self):
        refs = set(VARIABLE_RE.findall(self._get(self.id, "code") or ""))
        variables = self.env.sudo()["cx.tower.variable"]
        return variables._sorted_ids([rid for rid, row in variables._table().items()
                                      if row.get("reference") in refs])

    def _compute_log_count(self):
        logs = self.env.db.tables["cx.tower.webhook.log"]
        link = "webhook_id" if self._name == "cx.tower.webhook" else "authenticator_id"
        return sum(1 for row in logs.values() if row.get(link) == self.id)

    def action_view_logs(self):
        self.ensure_one()
        link = "webhook_id" if self._name == "cx.tower.webhook" else "authenticator_id"
        return {"type": "ir.actions.act_window", "res_model": "cx.tower.webhook.log",
                "name": "Logs", "view_mode": "list,form" if self.env.major >= 18 else
                "tree,form", "domain": [[link, "=", self.id]], "context": {}}


def _parse_networks(text):
    networks = []
    for token in (text or "").split(","):
        token = token.strip()
        if not token:
            continue
        try:
            networks.append(ipaddress.ip_network(token, strict=False))
        except ValueError:
            continue
    return networks


def _invalid_token(text):
    for token in (text or "").split(","):
        token = token.strip()
        if not token:
            continue
        try:
            ipaddress.ip_network(token, strict=False)
        except ValueError:
            return token
    return None


class WebhookAuthenticator(ReferenceMixin, CodeLinksMixin):
    _name = "cx.tower.webhook.authenticator"
    _description = "Webhook Authenticator"
    _module = "cetmix_tower_webhook"
    _reference_generic = "webhook_authenticator"
    _constraints = [("_check_ip_lists", ("allowed_ip_addresses", "trusted_proxy_ips"))]

    code = F.Text(string="Code", required=True, default=DEFAULT_AUTHENTICATOR_CODE)
    allowed_ip_addresses = F.Text(string="Allowed IPs")
    trusted_proxy_ips = F.Text(string="Trusted Proxy IPs")
    variable_ids = F.Many2many("cx.tower.variable", compute="_compute_variable_ids",
                               store=True, string="Variables")
    secret_ids = F.Many2many("cx.tower.key", compute="_compute_secret_ids", store=True,
                              string="Secrets")
    log_count = F.Integer(string="Log Count", compute="_compute_log_count")

    def _check_ip_lists(self):
        for rec in self:
            bad = _invalid_token(rec._get(rec.id, "allowed_ip_addresses"))
            if bad:
                raise ValidationError(f"Invalid allowed IP/CIDR entry: {bad}")
            bad = _invalid_token(rec._get(rec.id, "trusted_proxy_ips"))
            if bad:
                raise ValidationError(f"Invalid trusted proxy entry: {bad}")

    def is_ip_allowed(self, remote_addr):
        """The allowlist check on the given peer address (no proxy headers over RPC)."""
        self.ensure_one()
        try:
            client = ipaddress.ip_address(str(remote_addr).strip())
        except ValueError:
            return False
        allowed = (self._get(self.id, "allowed_ip_addresses") or "").strip()
        if not allowed:
            return True
        networks = _parse_networks(allowed)
        return any(client in net for net in networks if net.version == client.version)


class Webhook(ReferenceMixin, CodeLinksMixin):
    _name = "cx.tower.webhook"
    _description = "Webhook"
    _module = "cetmix_tower_webhook"
    _reference_generic = "webhook"
    _sql_constraints = ReferenceMixin._sql_constraints + [
        ("endpoint_method_uniq", ("endpoint", "method"), "Endpoint and method must be unique!"),
    ]
    _constraints = [("_check_endpoint", ("endpoint",))]

    active = F.Boolean(string="Enabled", default=True)
    authenticator_id = F.Many2one("cx.tower.webhook.authenticator", string="Authenticator",
                                  required=True)
    endpoint = F.Char(string="Endpoint", required=True, copy=False)
    full_url = F.Char(string="Full URL", compute="_compute_full_url")
    method = F.Selection([("post", "POST"), ("get", "GET")], string="Method", required=True,
                         default="post")
    content_type = F.Selection([("json", "JSON"), ("form", "Form URL-Encoded")],
                               string="Payload Type", required=True, default="json")
    user_id = F.Many2one("res.users", string="Run as User", required=True, default=1,
                         copy=False)
    code = F.Text(string="Code", required=True, default=DEFAULT_WEBHOOK_CODE)
    variable_ids = F.Many2many("cx.tower.variable", compute="_compute_variable_ids",
                               store=True, string="Variables")
    secret_ids = F.Many2many("cx.tower.key", compute="_compute_secret_ids", store=True,
                              string="Secrets")
    log_count = F.Integer(string="Log Count", compute="_compute_log_count")

    def _check_endpoint(self):
        for rec in self:
            endpoint = rec._get(rec.id, "endpoint") or ""
            if not ENDPOINT_RE.fullmatch(endpoint):
                raise ValidationError(
                    "Endpoint must start and end with a letter or digit, and may contain "
                    "underscores, dashes, and slashes in between")

    def _compute_full_url(self):
        base = self.env.sudo()["ir.config_parameter"].get_param("web.base.url", "") or ""
        return f"{base.rstrip('/')}/cetmix_tower_webhooks/{self._get(self.id, 'endpoint')}"


class WebhookLog(BaseModel):
    _name = "cx.tower.webhook.log"
    _description = "Webhook Call Log"
    _module = "cetmix_tower_webhook"
    _order = "create_date desc"
    _rec_name = "display_name"

    webhook_id = F.Many2one("cx.tower.webhook", string="Webhook", ondelete="cascade")
    endpoint = F.Char(string="Endpoint")
    authenticator_id = F.Many2one("cx.tower.webhook.authenticator", string="Authenticator")
    request_method = F.Selection([("post", "POST"), ("get", "GET")], string="Request Method",
                                 required=True, default="post")
    request_headers = F.Text(string="Request Headers")
    request_payload = F.Text(string="Request Payload")
    authentication_status = F.Selection(
        [("success", "Success"), ("failed", "Failed"), ("not_required", "Not Required")],
        string="Authentication Status", required=True, default="failed")
    code_status = F.Selection(
        [("success", "Success"), ("failed", "Failed"), ("skipped", "Skipped")],
        string="Webhook Code Status", required=True, default="skipped")
    http_status = F.Integer(string="HTTP Status")
    result_message = F.Text(string="Result Message")
    error_message = F.Text(string="Error Message")
    user_id = F.Many2one("res.users", string="Run as User")
    ip_address = F.Char(string="IP Address")
    country_id = F.Many2one("res.country", string="Country")

    def _compute_display_name(self):
        # "<webhook display_name or ''> (<endpoint>) [<http_status or ''>]" (facts §1.3)
        webhook = self._get(self.id, "webhook_id")
        name = self.env.sudo()["cx.tower.webhook"]._display_name_of(webhook) if webhook else ""
        status = self._get(self.id, "http_status")
        return f"{name or ''} ({self._get(self.id, 'endpoint') or ''}) [{status or ''}]"

    @api.model
    def create_from_call(self, **kwargs):
        return self.create(self._prepare_values(**kwargs))

    def _prepare_values(self, webhook=None, **kwargs):
        if webhook:
            # Over RPC `webhook` arrives as an id, not a record: Odoo fails the same way.
            raise AttributeError(f"'{type(webhook).__name__}' object has no attribute "
                                 "'endpoint'")
        values = {
            "webhook_id": None, "endpoint": kwargs.get("endpoint"),
            "authenticator_id": False, "request_method": kwargs.get("request_method"),
            "user_id": False, "ip_address": self._get_ip_address(), "country_id": False,
        }
        values.update(kwargs)
        return values

    def _get_ip_address(self):
        request = self.env.db.request or {}
        forwarded = (request.get("headers") or {}).get("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
        return request.get("remote_addr") or False

    def _gc_delete_old_logs(self):
        """The autovacuum job: delete logs older than the retention parameter (days)."""
        param = self.env.sudo()["ir.config_parameter"].get_param(
            "cetmix_tower_webhook.webhook_log_duration", "30")
        days = int(param or 30)
        limit = self.env.db.now() - dt.timedelta(days=days)
        old = [rid for rid, row in self._table().items() if row["create_date"] < limit]
        self.sudo().browse(old)._unlink()
        return len(old)


class Key(ReferenceMixin):
    _name = "cx.tower.key"
    _description = "Cetmix Tower SSH Key / Secret"
    _module = "cetmix_tower_server"
    _reference_generic = "key"
    _reference_chars = "[a-zA-Z0-9_]"

    key_type = F.Selection([("k", "SSH Key"), ("s", "Secret")], string="Type",
                           required=True, default="k")
    reference_code = F.Char(string="Reference Code", compute="_compute_reference_code")
    value_ids = F.One2many("cx.tower.key.value", "key_id", string="Values")
    note = F.Text(string="Note")

    def _compute_reference_code(self):
        if self._get(self.id, "key_type") != "s":
            return False
        return f"#!cxtower.secret.{self._get(self.id, 'reference')}!#"


class KeyValue(BaseModel):
    """Secret values: the text lives in cx.tower.vault; reading it gives '*****'."""

    _name = "cx.tower.key.value"
    _description = "Cetmix Tower Key/Secret Value"
    _module = "cetmix_tower_server"
    _rec_name = "key_id"

    key_id = F.Many2one("cx.tower.key", string="Key", required=True, ondelete="cascade")
    server_id = F.Many2one("cx.tower.server", string="Server", ondelete="cascade")
    partner_id = F.Many2one("res.partner", string="Partner", ondelete="cascade")
    secret_value = F.Char(string="Secret Value", compute="_compute_secret_value")

    def _vault_row(self, rec_id):
        for vid, row in self.env.db.tables["cx.tower.vault"].items():
            if row.get("res_model") == self._name and row.get("res_id") == rec_id \
                    and row.get("field_name") == "secret_value":
                return vid, row
        return None, None

    def _compute_secret_value(self):
        _vid, row = self._vault_row(self.id)
        return SECRET_PLACEHOLDER if row and row.get("data") else False

    def _store_secret(self, value):
        vault = self.env.sudo()["cx.tower.vault"]
        for rec in self:
            vid, _row = rec._vault_row(rec.id)
            if vid:
                vault.browse(vid)._write({"data": value or False})
            else:
                vault._create([{"res_model": self._name, "res_id": rec.id,
                                "field_name": "secret_value", "data": value or False}])

    def _post_create(self, vals_list):
        for rec, vals in zip(self, vals_list):
            if "secret_value" in vals:
                rec._store_secret(vals["secret_value"])

    def _post_write(self, vals):
        if "secret_value" in vals:
            self._store_secret(vals["secret_value"])

    def _pre_unlink(self):
        vault = self.env.sudo()["cx.tower.vault"]
        for rec_id in self._ids:
            vid, _row = self._vault_row(rec_id)
            if vid:
                vault.browse(vid)._unlink()

    def _secret_text(self):
        """The clear value (for the control API and a future companion method)."""
        _vid, row = self._vault_row(self.id)
        return row.get("data") if row else False


class Vault(BaseModel):
    """Closed to RPC: its only access row grants nothing, so every user gets AccessError
    (Cetmix Tower closes it with rpc_helper on 17.0 and with an empty ACL later; the
    emulator uses the ACL on every version)."""

    _name = "cx.tower.vault"
    _description = "Cetmix Tower Vault"
    _module = "cetmix_tower_server"
    _rec_name = "field_name"

    res_model = F.Char(string="Model", required=True)
    res_id = F.Integer(string="Record ID", required=True)
    field_name = F.Char(string="Field", required=True)
    data = F.Text(string="Data")


class Variable(ReferenceMixin):
    _name = "cx.tower.variable"
    _description = "Cetmix Tower Variable"
    _module = "cetmix_tower_server"
    _reference_generic = "variable"

    variable_type = F.Selection([("s", "String"), ("o", "Options")], string="Type",
                                default="s", required=True)
    note = F.Text(string="Note")


class VariableValue(BaseModel):
    _name = "cx.tower.variable.value"
    _description = "Cetmix Tower Variable Value"
    _module = "cetmix_tower_server"
    _rec_name = "variable_id"

    variable_id = F.Many2one("cx.tower.variable", string="Variable", required=True,
                             ondelete="cascade")
    server_id = F.Many2one("cx.tower.server", string="Server", ondelete="cascade")
    value_char = F.Char(string="Value")


class Server(ReferenceMixin):
    _name = "cx.tower.server"
    _description = "Cetmix Tower Server"
    _module = "cetmix_tower_server"
    _reference_generic = "server"

    active = F.Boolean(string="Active", default=True)
    ip_v4_address = F.Char(string="IPv4 Address")
    ssh_username = F.Char(string="SSH Username")
    partner_id = F.Many2one("res.partner", string="Partner")
    note = F.Text(string="Note")

    def run_flight_plan(self, flight_plan, **kwargs):
        """Starts a plan (recorded as a cx.tower.plan.log row) and returns the log
        recordset, which JSON-RPC/XML-RPC cannot serialise (JSON-2 answers its ids)."""
        self.ensure_one()
        self.env["cx.tower.server"]._check_access("read")
        plan_id = flight_plan if isinstance(flight_plan, int) else None
        if plan_id not in self.env.db.tables["cx.tower.plan"]:
            raise ValidationError("Flight plan not found")
        log = self.env.sudo()["cx.tower.plan.log"]._create(
            [{"server_id": self.id, "plan_id": plan_id,
              "custom_values": repr(kwargs.get("custom_variable_values") or {})}])
        return self.env["cx.tower.plan.log"].browse(log)


class Command(ReferenceMixin):
    _name = "cx.tower.command"
    _description = "Cetmix Tower Command"
    _module = "cetmix_tower_server"
    _reference_generic = "command"

    action = F.Selection([("ssh_command", "SSH command"), ("python_code", "Run Python code"),
                          ("file_using_template", "Create file using template"),
                          ("plan", "Run flight plan")], string="Action", default="ssh_command",
                         required=True)
    code = F.Text(string="Code")
    active = F.Boolean(string="Active", default=True)


class Plan(ReferenceMixin):
    _name = "cx.tower.plan"
    _description = "Cetmix Tower Flight Plan"
    _module = "cetmix_tower_server"
    _reference_generic = "plan"

    active = F.Boolean(string="Active", default=True)
    note = F.Text(string="Note")


class PlanLog(BaseModel):
    _name = "cx.tower.plan.log"
    _description = "Cetmix Tower Flight Plan Log"
    _module = "cetmix_tower_server"
    _order = "id desc"
    _rec_name = "plan_id"

    server_id = F.Many2one("cx.tower.server", string="Server", required=True,
                           ondelete="cascade")
    plan_id = F.Many2one("cx.tower.plan", string="Flight Plan", required=True,
                         ondelete="cascade")
    custom_values = F.Text(string="Custom Values")


class CetmixTower(BaseModel):
    """`cetmix.tower`: an abstract helper model with public convenience methods."""

    _name = "cetmix.tower"
    _description = "Cetmix Tower helper"
    _module = "cetmix_tower_server"
    _abstract = True
    _log_access = False

    def _server(self, reference):
        servers = self.env["cx.tower.server"]
        servers._check_access("read")
        ids = servers._search([("reference", "=", reference)], limit=1)
        return servers.browse(ids)

    @api.model
    def server_get_variable_value(self, server_reference, variable_reference,
                                  check_global=True):
        """A server's value of a variable, else the global one, else None."""
        server = self._server(server_reference)
        values = self.env["cx.tower.variable.value"]
        values._check_access("read")
        variables = values.env["cx.tower.variable"]._search(
            [("reference", "=", variable_reference)], limit=1)
        if not variables:
            return None
        scopes = ([server.id] if server else []) + ([None] if check_global else [])
        for scope in scopes:
            found = values._search([("variable_id", "=", variables[0]),
                                    ("server_id", "=", scope or False)], limit=1)
            if found:
                return values._get(found[0], "value_char")
        return None

    @api.model
    def server_set_variable_value(self, server_reference, variable_reference, value):
        server = self._server(server_reference)
        if not server:
            return False
        values = self.env["cx.tower.variable.value"]
        variables = self.env["cx.tower.variable"].search(
            [("reference", "=", variable_reference)], limit=1)
        if not variables:
            return False
        found = values.search([("variable_id", "=", variables[0]),
                               ("server_id", "=", server.id)], limit=1)
        if found:
            values.browse(found).write({"value_char": value})
        else:
            values.create({"variable_id": variables[0], "server_id": server.id,
                           "value_char": value})
        return True

    @api.model
    def server_run_flight_plan(self, server_reference, flight_plan_reference, **kwargs):
        server = self._server(server_reference)
        plans = self.env["cx.tower.plan"].search(
            [("reference", "=", flight_plan_reference)], limit=1)
        if not server or not plans:
            return False
        return server.run_flight_plan(plans[0], **kwargs)


MODELS = [WebhookAuthenticator, Webhook, WebhookLog, Key, KeyValue, Vault, Variable,
          VariableValue, Server, Command, Plan, PlanLog, CetmixTower]
