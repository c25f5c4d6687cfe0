"""Builds the model classes of one database for one Odoo version.

Each database gets its own subclasses with their own `_fields` (fresh Field objects),
because field names differ between versions (res.users.groups_id became group_ids in
19.0) and several databases may live in one process (tests).

Installed companion addons (`Database.addons`, see addon_sidecar.py) extend models the
way Odoo's `_inherit` does: their classes come first in the model class's bases, so their
fields are added and their methods exist; without the addon the methods do not exist
(RPC answers `builtins.AttributeError`, as for any unknown method).
"""
import copy

import fields as F
import models_base
import models_tower

ALL_MODELS = models_base.MODELS + models_tower.MODELS


def _declared_fields(cls):
    found = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, F.Field):
                found[name] = copy.copy(value)
    return found


def addon_extensions(addons):
    """{model name: [extension classes]} of the installed addons."""
    extensions = {}
    if not addons:
        return extensions
    import addon_sidecar  # late import: it imports orm, which imports this module
    for addon in sorted(addons):
        for ext in addon_sidecar.ADDONS[addon]["extensions"]:
            extensions.setdefault(ext._extends, []).append(ext)
    return extensions


def _merged_sql_constraints(cls, exts):
    """_sql_constraints of a model and its extensions, merged by name (as Odoo does)."""
    merged = {constraint[0]: constraint for constraint in cls._sql_constraints}
    for ext in exts:
        for constraint in vars(ext).get("_sql_constraints", ()):
            merged[constraint[0]] = constraint
    return list(merged.values())


def build_registry(major, addons=()):
    registry = {}
    extensions = addon_extensions(addons)
    for cls in ALL_MODELS:
        exts = extensions.get(cls._name, [])
        base = type(cls.__name__, tuple(exts) + (cls,), {}) if exts else cls
        fields = {"id": F.Integer(string="ID", readonly=True)}
        fields.update(_declared_fields(base))
        version_hook = getattr(cls, "_version_fields", None)
        if version_hook:
            fields.update(version_hook(major))
        fields["display_name"] = F.Char(string="Display Name",
                                        compute="_compute_display_name")
        if cls._log_access:
            fields["create_uid"] = F.Many2one("res.users", string="Created by",
                                              readonly=True)
            fields["create_date"] = F.Datetime(string="Created on", readonly=True)
            fields["write_uid"] = F.Many2one("res.users", string="Last Updated by",
                                             readonly=True)
            fields["write_date"] = F.Datetime(string="Last Updated on", readonly=True)
        for name, field in fields.items():
            field.setup(cls._name, name)
        attrs = {"_fields": fields}
        if exts:
            attrs["_sql_constraints"] = _merged_sql_constraints(cls, exts)
            # Python constraints of the model and of each extension (Odoo runs them all)
            attrs["_constraints"] = list(cls._constraints) + [
                constraint for ext in exts for constraint in vars(ext).get("_constraints", ())]
        sub = type(cls.__name__, (base,), attrs)
        registry[cls._name] = sub
    return registry
