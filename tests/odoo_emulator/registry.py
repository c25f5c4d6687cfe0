"""Builds the model classes of one database for one Odoo version.

Each database gets its own subclasses with their own `_fields` (fresh Field objects),
because field names differ between versions (res.users.groups_id became group_ids in
19.0) and several databases may live in one process (tests).
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


def build_registry(major):
    registry = {}
    for cls in ALL_MODELS:
        fields = {"id": F.Integer(string="ID", readonly=True)}
        fields.update(_declared_fields(cls))
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
        sub = type(cls.__name__, (cls,), {"_fields": fields})
        registry[cls._name] = sub
    return registry


