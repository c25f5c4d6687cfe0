"""Field types of the emulated ORM: how values are validated, stored and read back.

Stored ("cache") values: str or None for char/text/selection, bool, int, float,
datetime/date objects, and ids (int or None) for many2one. many2many values live in
relation tables; one2many values are derived from the inverse many2one.
Read values follow Odoo's RPC marshalling: empty is False (never null), many2one is
`[id, display_name]`, x2many is a list of ids, datetimes are "YYYY-MM-DD HH:MM:SS" UTC.
"""
import datetime as dt

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"


def parse_datetime(value):
    """fields.Datetime.to_datetime: a date alone means midnight; extra digits are cut."""
    if value is None or value is False or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = str(value)[:19]
    if len(text) == 10:
        text += " 00:00:00"
    return dt.datetime.strptime(text, DATETIME_FORMAT)


def parse_date(value):
    if value is None or value is False or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.datetime.strptime(str(value)[:10], DATE_FORMAT).date()


class Field:
    type = None
    relational = False
    column_type = True  # has a value stored on the row

    def __init__(self, string=None, required=False, readonly=False, default=None, help=None,
                 compute=None, store=None, index=False, copy=True):
        # index/copy are accepted so declarations read like Odoo's; they change nothing here
        self.string = string
        self.required = required
        self.readonly = readonly or bool(compute)
        self.default = default
        self.help = help
        # name of a model method computing the value of one record; computed fields are
        # evaluated when read or searched, whether Odoo would store them or not
        self.compute = compute
        self.store = (not compute) if store is None else store
        self.name = None
        self.model_name = None

    def setup(self, model_name, name):
        self.model_name = model_name
        self.name = name
        if self.string is None:
            self.string = name.replace("_id", "").replace("_", " ").strip().title() or name

    def __str__(self):
        return f"{self.model_name}.{self.name}"

    @property
    def stored_on_row(self):
        return self.column_type and not self.compute

    def wrong_value(self, value):
        return ValueError(f"Wrong value for {self}: {value!r}")

    def empty(self):
        return None

    def convert_to_cache(self, value, env):
        raise NotImplementedError

    def convert_to_read(self, value, env, load="_classic_read"):
        return False if value is None else value

    def convert_to_control(self, value, env):
        return self.convert_to_read(value, env)

    def sort_key(self, value, env):
        return value

    def describe(self):
        desc = {
            "name": self.name, "type": self.type, "string": self.string,
            "required": self.required, "readonly": self.readonly,
            "store": bool(self.store), "searchable": True,
            "sortable": bool(self.store) and self.type not in ("one2many", "many2many"),
            "manual": False, "depends": [], "company_dependent": False,
            "groupable": bool(self.store),
        }
        if self.help:
            desc["help"] = self.help
        return desc


class Char(Field):
    type = "char"

    def convert_to_cache(self, value, env):
        if value is None or value is False:
            return None
        if isinstance(value, bytes):
            value = value.decode()
        return str(value)

    def describe(self):
        return {**super().describe(), "translate": False, "trim": True}


class Text(Char):
    type = "text"


class Html(Char):
    type = "html"


class Selection(Char):
    type = "selection"

    def __init__(self, selection, **kw):
        super().__init__(**kw)
        self.selection = list(selection)

    def convert_to_cache(self, value, env):
        if value is None or value is False:
            return None
        if value not in [key for key, _label in self.selection]:
            raise self.wrong_value(value)
        return value

    def describe(self):
        desc = super().describe()
        desc.pop("translate", None)
        desc.pop("trim", None)
        return {**desc, "selection": [list(pair) for pair in self.selection]}


class Boolean(Field):
    type = "boolean"

    def empty(self):
        return False

    def convert_to_cache(self, value, env):
        return bool(value)

    def convert_to_read(self, value, env, load="_classic_read"):
        return bool(value)


class Integer(Field):
    type = "integer"

    def empty(self):
        return 0

    def convert_to_cache(self, value, env):
        return int(value or 0)

    def convert_to_read(self, value, env, load="_classic_read"):
        return value or 0


class Float(Field):
    type = "float"

    def empty(self):
        return 0.0

    def convert_to_cache(self, value, env):
        return float(value or 0.0)

    def convert_to_read(self, value, env, load="_classic_read"):
        return value or 0.0


class Datetime(Field):
    """Kept with microseconds, as PostgreSQL keeps `now()`; read back to the second."""

    type = "datetime"

    def convert_to_cache(self, value, env):
        return parse_datetime(value)

    def convert_to_read(self, value, env, load="_classic_read"):
        return value.strftime(DATETIME_FORMAT) if value else False

    def convert_to_control(self, value, env):
        return value.isoformat(" ") if value else False


class Date(Field):
    type = "date"

    def convert_to_cache(self, value, env):
        return parse_date(value)

    def convert_to_read(self, value, env, load="_classic_read"):
        return value.strftime(DATE_FORMAT) if value else False


class Many2one(Field):
    type = "many2one"
    relational = True

    def __init__(self, comodel_name, ondelete=None, **kw):
        super().__init__(**kw)
        self.comodel_name = comodel_name
        # Odoo defaults a required many2one to 'restrict', any other to 'set null'
        # (fields.Many2one._setup_attrs).
        self.ondelete = ondelete or ("restrict" if kw.get("required") else "set null")

    def convert_to_cache(self, value, env):
        if value is None or value is False:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong_value(value)
        return value

    def convert_to_read(self, value, env, load="_classic_read"):
        if not value:
            return False
        if load != "_classic_read":
            return value
        # Odoo reads the display name with sudo (fields.Many2one.convert_to_read).
        return [value, env.sudo()[self.comodel_name]._display_name_of(value)]

    def convert_to_control(self, value, env):
        return self.convert_to_read(value, env)

    def sort_key(self, value, env):
        # Ordering on a many2one orders by the comodel's display name.
        return env.sudo()[self.comodel_name]._display_name_of(value) if value else None

    def describe(self):
        return {**super().describe(), "relation": self.comodel_name, "context": {},
                "domain": []}


class _X2many(Field):
    relational = True
    column_type = False

    def __init__(self, comodel_name, **kw):
        super().__init__(**kw)
        self.comodel_name = comodel_name

    def convert_to_read(self, value, env, load="_classic_read"):
        return list(value or [])

    def empty(self):
        return []

    def describe(self):
        return {**super().describe(), "relation": self.comodel_name, "context": {},
                "domain": [], "sortable": False}


class One2many(_X2many):
    type = "one2many"

    def __init__(self, comodel_name, inverse_name, **kw):
        super().__init__(comodel_name, **kw)
        self.inverse_name = inverse_name

    def describe(self):
        return {**super().describe(), "relation_field": self.inverse_name}


class Many2many(_X2many):
    type = "many2many"

    def __init__(self, comodel_name, relation=None, column1=None, column2=None, **kw):
        super().__init__(comodel_name, **kw)
        self.relation = relation
        self.column1 = column1
        self.column2 = column2

    def setup(self, model_name, name):
        super().setup(model_name, name)
        if not self.relation:
            # Odoo's default relation table name: both tables sorted, joined, + "_rel".
            tables = sorted([model_name.replace(".", "_"), self.comodel_name.replace(".", "_")])
            self.relation = f"{tables[0]}_{tables[1]}_rel"
            self.column1 = f"{model_name.replace('.', '_')}_id"
            self.column2 = f"{self.comodel_name.replace('.', '_')}_id"


def parse_x2many_commands(field, value):
    """Odoo's x2many write formats: a list of ids, or a list of command triplets.

    Returns a list of (op, id, vals) with op in create/update/delete/unlink/link/clear/set.
    """
    if value is None or value is False:
        return [("clear", None, None)]
    if not isinstance(value, (list, tuple)):
        raise field.wrong_value(value)
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return [("set", list(value), None)]
    commands = []
    for cmd in value:
        if not isinstance(cmd, (list, tuple)) or not cmd or not isinstance(cmd[0], int):
            raise field.wrong_value(value)
        code = cmd[0]
        arg1 = cmd[1] if len(cmd) > 1 else None
        arg2 = cmd[2] if len(cmd) > 2 else None
        if code == 0:
            commands.append(("create", None, arg2 or {}))
        elif code == 1:
            commands.append(("update", arg1, arg2 or {}))
        elif code == 2:
            commands.append(("delete", arg1, None))
        elif code == 3:
            commands.append(("unlink", arg1, None))
        elif code == 4:
            commands.append(("link", arg1, None))
        elif code == 5:
            commands.append(("clear", None, None))
        elif code == 6:
            commands.append(("set", list(arg2 or []), None))
        else:
            raise field.wrong_value(value)
    return commands
