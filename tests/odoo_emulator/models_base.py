"""Odoo base models reached over RPC: partners, countries, users, groups, ir.*."""
import fields as F
from errors import AccessError
import orm as api
from orm import BaseModel


class ModuleCategory(BaseModel):
    _name = "ir.module.category"
    _description = "Application"
    _order = "name"

    name = F.Char(string="Name", required=True)


class Country(BaseModel):
    _name = "res.country"
    _description = "Country"
    _order = "name"
    _log_access = True
    _sql_constraints = [
        ("name_uniq", ("name",), "The name of the country must be unique!"),
        ("code_uniq", ("code",), "The code of the country must be unique!"),
    ]

    name = F.Char(string="Country Name", required=True)
    code = F.Char(string="Country Code")


class Company(BaseModel):
    _name = "res.company"
    _description = "Companies"
    _order = "sequence, name"
    _sql_constraints = [("name_uniq", ("name",), "The company name must be unique!")]

    name = F.Char(string="Company Name", required=True)
    partner_id = F.Many2one("res.partner", string="Partner", required=True)
    sequence = F.Integer(string="Sequence", default=10)
    active = F.Boolean(string="Active", default=True)
    email = F.Char(string="Email")
    phone = F.Char(string="Phone")
    website = F.Char(string="Website Link")
    vat = F.Char(string="Tax ID")
    country_id = F.Many2one("res.country", string="Country")


class Partner(BaseModel):
    """res.partner with the fields a stock Odoo (base) has and clients commonly read or
    write; record rules (multi-company) are not emulated."""

    _name = "res.partner"
    _description = "Contact"
    _order = "complete_name ASC, id DESC"

    name = F.Char(string="Name")
    complete_name = F.Char(string="Complete Name", compute="_compute_complete_name",
                           store=True)
    ref = F.Char(string="Reference")
    lang = F.Char(string="Language")
    tz = F.Char(string="Timezone")
    user_id = F.Many2one("res.users", string="Salesperson")
    vat = F.Char(string="Tax ID")
    company_registry = F.Char(string="Company ID")
    website = F.Char(string="Website Link")
    comment = F.Html(string="Notes")
    active = F.Boolean(string="Active", default=True)
    employee = F.Boolean(string="Employee")
    function = F.Char(string="Job Position")
    type = F.Selection([("contact", "Contact"), ("invoice", "Invoice Address"),
                        ("delivery", "Delivery Address"), ("other", "Other Address")],
                       string="Address Type", default="contact")
    street = F.Char(string="Street")
    street2 = F.Char(string="Street2")
    zip = F.Char(string="Zip")
    city = F.Char(string="City")
    country_id = F.Many2one("res.country", string="Country", ondelete="restrict")
    country_code = F.Char(string="Country Code", compute="_compute_country_code")
    email = F.Char(string="Email")
    email_formatted = F.Char(string="Formatted Email", compute="_compute_email_formatted")
    phone = F.Char(string="Phone")
    mobile = F.Char(string="Mobile")
    is_company = F.Boolean(string="Is a Company", default=False)
    company_type = F.Selection([("person", "Individual"), ("company", "Company")],
                               string="Company Type", compute="_compute_company_type")
    company_id = F.Many2one("res.company", string="Company")
    company_name = F.Char(string="Company Name")
    parent_id = F.Many2one("res.partner", string="Related Company")
    parent_name = F.Char(string="Parent name", compute="_compute_parent_name")
    child_ids = F.One2many("res.partner", "parent_id", string="Contact")
    commercial_partner_id = F.Many2one("res.partner", string="Commercial Entity",
                                       compute="_compute_commercial_partner_id", store=True)
    barcode = F.Char(string="Barcode")
    color = F.Integer(string="Color Index")
    user_ids = F.One2many("res.users", "partner_id", string="Users")

    def _compute_complete_name(self):
        return self._compute_display_name()

    def _compute_country_code(self):
        country = self._get(self.id, "country_id")
        return self.env.sudo()["res.country"]._get(country, "code") if country else False

    def _compute_email_formatted(self):
        email = self._get(self.id, "email")
        return f'"{self._get(self.id, "name") or ""}" <{email}>' if email else False

    def _compute_company_type(self):
        return "company" if self._get(self.id, "is_company") else "person"

    def _compute_parent_name(self):
        parent = self._get(self.id, "parent_id")
        return self.env.sudo()["res.partner"]._get(parent, "name") if parent else False

    def _compute_commercial_partner_id(self):
        # the partner itself when it is a company or has no parent, else its parent's
        partners = self.env.sudo()["res.partner"]
        current, seen = self.id, set()
        while current not in seen:
            seen.add(current)
            parent = partners._get(current, "parent_id")
            if partners._get(current, "is_company") or not parent:
                return current
            current = parent
        return current

    def _compute_display_name(self):
        # res.partner: a contact of a company reads "Company, Contact"
        name = self._get(self.id, "name") or ""
        parent = self._get(self.id, "parent_id")
        if parent and not self._get(self.id, "is_company"):
            return f"{self.env.sudo()['res.partner']._display_name_of(parent)}, {name}"
        return name or False


class Groups(BaseModel):
    _name = "res.groups"
    _description = "Access Groups"
    _order = "name"
    _sql_constraints = [
        ("name_uniq", ("category_id", "name"),
         "The name of the group must be unique within an application!"),
    ]

    name = F.Char(string="Name", required=True)
    category_id = F.Many2one("ir.module.category", string="Application")
    full_name = F.Char(string="Group Name", compute="_compute_full_name", store=True)
    comment = F.Text(string="Comment")
    implied_ids = F.Many2many("res.groups", "res_groups_implied_rel", "gid", "hid",
                              string="Inherits")

    @classmethod
    def _version_fields(cls, major):
        # 19.0 renamed res.groups.users to user_ids
        name = "user_ids" if major >= 19 else "users"
        return {name: F.Many2many("res.users", "res_groups_users_rel", "gid", "uid",
                                  string="Users")}

    def _compute_full_name(self):
        name = self._get(self.id, "name")
        category = self._get(self.id, "category_id")
        if category:
            return f"{self.env.sudo()['ir.module.category']._display_name_of(category)} / {name}"
        return name

    def _compute_display_name(self):
        return self._compute_full_name()

    def _post_create(self, vals_list):
        self._propagate_implied()

    def _post_write(self, vals):
        self._propagate_implied()

    def _propagate_implied(self):
        # Up to 18.0 the users of a group also get its implied groups stored (res.groups
        # write/_apply_group); 19.0 keeps only explicit groups in group_ids.
        if self.env.major >= 19:
            return
        users = self.env.sudo()["res.users"]
        for group in self:
            for uid in self.env.db.m2m_get(group._fields[group._users_field()], group.id):
                users.browse(uid)._add_implied_groups()

    @classmethod
    def _users_field(cls):
        return "user_ids" if "user_ids" in cls._fields else "users"


class Users(BaseModel):
    _name = "res.users"
    _description = "User"
    _order = "name, login"
    _sql_constraints = [
        ("login_key", ("login",), "You can not have two users with the same login !"),
    ]

    login = F.Char(string="Login", required=True)
    name = F.Char(string="Name")
    email = F.Char(string="Email")
    active = F.Boolean(string="Active", default=True)
    partner_id = F.Many2one("res.partner", string="Related Partner", required=True,
                            ondelete="restrict")
    password = F.Char(string="Password", compute="_compute_password",
                      help="Write-only: reading it gives an empty string.")
    lang = F.Char(string="Language", default="en_US")
    tz = F.Char(string="Timezone")
    share = F.Boolean(string="Share User", compute="_compute_share")
    company_id = F.Many2one("res.company", string="Company", default=1)
    company_ids = F.Many2many("res.company", "res_company_users_rel", "user_id", "cid",
                              string="Companies", default=[1])

    @classmethod
    def _groups_field(cls, major):
        return "group_ids" if major >= 19 else "groups_id"

    @classmethod
    def _version_fields(cls, major):
        # 19.0: group_ids holds the explicit groups, all_group_ids the implied closure;
        # before, groups_id held every group, implied ones included.
        groups = F.Many2many("res.groups", "res_groups_users_rel", "uid", "gid",
                             string="Groups", default=_default_groups)
        extra = {cls._groups_field(major): groups}
        if major >= 19:
            extra["all_group_ids"] = F.Many2many(
                "res.groups", string="Groups and implied groups",
                compute="_compute_all_group_ids")
        return extra

    def _compute_password(self):
        return ""

    def _compute_share(self):
        internal = self.env.ref("base.group_user", raise_if_not_found=False)
        return not internal or internal.id not in self.env.user_group_ids(self.id)

    def _compute_all_group_ids(self):
        groups = self.env.sudo()["res.groups"]
        return groups._sorted_ids(list(self.env.user_group_ids(self.id)))

    def _prepare_create_vals(self, vals):
        if not vals.get("partner_id"):
            partner = self.env.sudo()["res.partner"]._create(
                [{"name": vals.get("name") or vals.get("login"), "email": vals.get("email")}])
            vals["partner_id"] = partner[0]
        return vals

    def _post_create(self, vals_list):
        for user, vals in zip(self, vals_list):
            if vals.get("password"):
                self.env.db.passwords[user.id] = vals["password"]
            user._add_implied_groups()

    def _post_write(self, vals):
        for user in self:
            if vals.get("password"):
                self.env.db.passwords[user.id] = vals["password"]
            partner_vals = {k: vals[k] for k in ("name", "email") if k in vals}
            if partner_vals:
                self.env.sudo()["res.partner"].browse(user._get(user.id, "partner_id")) \
                    ._write(partner_vals)
            user._add_implied_groups()

    def _add_implied_groups(self):
        if self.env.major >= 19:
            return
        field = self._fields["groups_id"]
        for gid in self.env.user_group_ids(self.id):
            self.env.db.m2m_add(field, self.id, gid)

    def has_group(self, group_ext_id):
        self.ensure_one()
        return self.env.user_has_group(group_ext_id, uid=self.id)

    @api.model
    def context_get(self):
        user = self.env.sudo()["res.users"].browse(self.env.uid)
        return {"lang": user._get(user.id, "lang") or "en_US",
                "tz": user._get(user.id, "tz") or False, "uid": self.env.uid}


def _default_groups(env):
    """New users are internal users (res.users._default_groups)."""
    group = env.ref("base.group_user", raise_if_not_found=False)
    return [group.id] if group else []


class IrModel(BaseModel):
    _name = "ir.model"
    _description = "Models"
    _order = "model"
    _sql_constraints = [("obj_name_uniq", ("model",), "Each model must have a unique name.")]

    name = F.Char(string="Model Description", required=True)
    model = F.Char(string="Model", required=True)
    state = F.Selection([("manual", "Custom Object"), ("base", "Base Object")],
                        string="Type", default="manual")
    transient = F.Boolean(string="Transient Model")
    modules = F.Char(string="In Apps")
    access_ids = F.One2many("ir.model.access", "model_id", string="Access")

    def _model_id(self, model_name):
        for rec_id, row in self.env.db.tables["ir.model"].items():
            if row.get("model") == model_name:
                return rec_id
        return None


class IrModelAccess(BaseModel):
    _name = "ir.model.access"
    _description = "Model Access"
    _order = "model_id, group_id, name, id"

    name = F.Char(string="Name", required=True)
    active = F.Boolean(string="Active", default=True)
    model_id = F.Many2one("ir.model", string="Model", required=True, ondelete="cascade")
    group_id = F.Many2one("res.groups", string="Group", ondelete="restrict")
    perm_read = F.Boolean(string="Read Access")
    perm_write = F.Boolean(string="Write Access")
    perm_create = F.Boolean(string="Create Access")
    perm_unlink = F.Boolean(string="Delete Access")


class IrModelData(BaseModel):
    _name = "ir.model.data"
    _description = "Model Data"
    _order = "module, model, name"
    _rec_name = "complete_name"
    _sql_constraints = [
        ("name_nospaces", ("module", "name"),
         "You cannot have multiple records with the same external ID in the same module!"),
    ]

    name = F.Char(string="External Identifier", required=True)
    complete_name = F.Char(string="Complete ID", compute="_compute_complete_name")
    model = F.Char(string="Model Name", required=True)
    module = F.Char(string="Module", required=True, default="")
    res_id = F.Integer(string="Record ID")
    noupdate = F.Boolean(string="Non Updatable", default=False)

    def _compute_complete_name(self):
        return f"{self._get(self.id, 'module')}.{self._get(self.id, 'name')}"

    def _xmlid_lookup(self, xmlid):
        if "." not in xmlid:
            return None
        module, name = xmlid.split(".", 1)
        for row in self.env.db.tables["ir.model.data"].values():
            if row.get("module") == module and row.get("name") == name:
                if row.get("res_id") in self.env.db.tables.get(row.get("model"), {}):
                    return row["model"], row["res_id"]
        return None

    @api.model
    def check_object_reference(self, module, xml_id, raise_on_access_error=False):
        found = self._xmlid_lookup(f"{module}.{xml_id}")
        if found is None:
            raise ValueError(f"External ID not found in the system: {module}.{xml_id}")
        model_name, res_id = found
        if not self.env[model_name]._access_allowed("read"):
            if raise_on_access_error:
                raise AccessError(f"Not enough access rights on the external ID "
                                  f"{module}.{xml_id}")
            return model_name, False
        return [model_name, res_id]


class ModuleModule(BaseModel):
    """ir.module.module: what is installed. Internal users may read it (base ACL
    access_ir_module_module_group_user), so a client can tell whether an addon is there."""

    _name = "ir.module.module"
    _description = "Module"
    _order = "name"
    _rec_name = "shortdesc"
    _sql_constraints = [("name_uniq", ("name",), "The name of the module must be unique!")]

    name = F.Char(string="Technical Name", required=True)
    shortdesc = F.Char(string="Module Name")
    state = F.Selection([("uninstallable", "Not Installable"), ("uninstalled", "Not Installed"),
                         ("installed", "Installed"), ("to upgrade", "To be upgraded"),
                         ("to remove", "To be removed"), ("to install", "To be installed")],
                        string="Status", default="uninstalled")
    latest_version = F.Char(string="Installed Version")
    application = F.Boolean(string="Application", default=False)


class ConfigParameter(BaseModel):
    _name = "ir.config_parameter"
    _description = "System Parameter"
    _order = "key"
    _rec_name = "key"
    _sql_constraints = [("key_uniq", ("key",), "Key must be unique.")]

    key = F.Char(string="Key", required=True)
    value = F.Text(string="Value", required=True)

    @api.model
    def get_param(self, key, default=False):
        self._check_access("read")
        for row in self._table().values():
            if row.get("key") == key:
                return row.get("value") or default
        return default

    @api.model
    def set_param(self, key, value):
        self._check_access("read")
        found = [rid for rid, row in self._table().items() if row.get("key") == key]
        if found:
            old = self._table()[found[0]].get("value")
            if value is not False and value is not None:
                self.browse(found[0]).write({"value": str(value)})
            else:
                self.browse(found[0]).unlink()
            return old or False
        if value is not False and value is not None:
            self.create({"key": key, "value": str(value)})
        return False


MODELS = [ModuleCategory, Country, Company, Partner, Groups, Users, IrModel, IrModelAccess,
          IrModelData, ModuleModule, ConfigParameter]

