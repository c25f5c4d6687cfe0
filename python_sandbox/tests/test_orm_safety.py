"""Escape attempts through the Odoo objects, with a bridge present.

Each attempt is refused (the call fails with the given text) or harmless (it succeeds and
its message shows nothing of the internals). They need a bridge, so they live here rather
than in escape_corpus.json (the Rust server test runs that corpus where these names are
stand-ins). Whatever happens, the bridge only ever sees calls of the snippet's own kind.
"""

from .fake_odoo import FakeOdoo
from .support import SandboxTestCase, run

REFUSED = [
    ("env_underscore_attribute", "x = env._bridge", "no attribute '_bridge'"),
    ("env_session_attribute", "x = env.session", "no attribute 'session'"),
    ("env_mangled_core", "x = env._Environment__core", "forbidden name '_Environment__core'"),
    ("record_mangled_core", "x = user._Recordset__core", "forbidden name '_Recordset__core'"),
    ("record_private_bridge", "x = user._bridge", "Private methods (such as _bridge)"),
    ("record_private_core", "x = user._core", "Private methods (such as _core)"),
    ("record_dict", "x = user.__dict__", "forbidden name '__dict__'"),
    ("record_slots", "x = user.__slots__", "forbidden name '__slots__'"),
    ("record_class", "x = tower_servers.__class__", "forbidden name '__class__'"),
    ("type_of_env", "x = type(env)", "name 'type' is not defined"),
    ("getattr_on_record", "x = getattr(user, '_Recordset__core')", "name 'getattr' is not defined"),
    ("vars_of_env", "x = vars(env)", "name 'vars' is not defined"),
    (
        "format_record_internals",
        "result['message'] = '{0._Recordset__core}'.format(user)",
        "forbidden name '_Recordset__core'",
    ),
    (
        "format_env_walk",
        "result['message'] = '{0.env._Environment__core.session.bridge}'.format(user)",
        "forbidden name '_Environment__core'",
    ),
    (
        "format_method_internals",
        "m = env['res.partner'].echo\nresult['message'] = '{0._Method__core}'.format(m)",
        "forbidden name '_Method__core'",
    ),
    (
        "format_map_record_class",
        "result['message'] = '{u.__class__.__init__.__globals__}'.format_map({'u': user})",
        "forbidden name '__class__'",
    ),
    (
        "format_bound_method_self",
        "result['message'] = '{0.search.__self__}'.format(user)",
        "forbidden name '__self__'",
    ),
    ("bound_method_self", "x = user.write.__self__", "forbidden name '__self__'"),
    ("bound_method_func", "x = env['res.partner'].search.__func__", "forbidden name '__func__'"),
    ("method_closure", "x = user.echo.__closure__", "forbidden name '__closure__'"),
    ("mapped_internal_path", "x = user.mapped('_Recordset__core')", "KeyError('_Recordset__core')"),
    ("mapped_dunder_path", "x = user.mapped('__class__')", "KeyError('__class__')"),
    ("mapped_method_name", "x = user.mapped('env')", "KeyError('env')"),
    ("mapped_private_path", "x = user.mapped('partner_id._core')", "KeyError('_core')"),
    ("filtered_internal_path", "x = user.filtered('_Recordset__core')", "KeyError"),
    ("sorted_internal_key", "x = user.sorted('__class__')", "KeyError('__class__')"),
    ("item_internal_key", "x = user['_Recordset__core']", "KeyError('_Recordset__core')"),
    ("item_method_name", "x = user['write']", "KeyError('write')"),
    ("env_item_not_a_string", "x = env[1]", "KeyError(1)"),
    ("private_model_method", "env['res.users']._read([])", "Private methods (such as _read)"),
    ("env_cursor", "env.cr.execute('drop table res_users')", "env.cr is not available"),
    ("env_registry", "x = env.registry", "env.registry is not available"),
    ("env_superuser_flag", "x = env.su", "env.su is not available"),
    ("sudo", "x = env['res.users'].sudo()", "sudo() is not available in towerhook"),
    ("with_user_admin", "x = user.with_user(1)", "with_user() is not available in towerhook"),
    ("env_call_user", "x = env(user=1)", "with_user() is not available in towerhook"),
    ("with_env", "x = user.with_env(env)", "with_env() is not available"),
    ("exception_traceback", "try:\n    user._x()\nexcept AccessError as e:\n    t = e.__traceback__",
     "forbidden name '__traceback__'"),
    ("access_error_subclasses", "s = AccessError.__subclasses__()", "forbidden name '__subclasses__'"),
    ("access_error_mro", "s = AccessError.mro()", "forbidden name 'mro'"),
    ("iterator_dunder", "x = tower_servers.__iter__()", "forbidden name '__iter__'"),
    ("context_not_a_dict", "x = user.with_context(['a'])", "a context must be a dict"),
]

HARMLESS = [
    ("format_env", "result['message'] = 'safe {0.env}'.format(user)", "safe Environment(uid=6)"),
    (
        "format_method",
        "result['message'] = 'safe {0.echo}'.format(user)",
        "safe <Odoo method res.users.echo>",
    ),
    (
        "percent_record",
        "result['message'] = 'safe %s %r %s' % (user, tower, env)",
        "safe res.users(6,) cetmix.tower() Environment(uid=6)",
    ),
    (
        "context_copy",
        "c = env.context\nc['uid'] = 1\nc['lang'] = 'xx'\nresult['message'] = 'safe %s' % env.context",
        "safe {'lang': 'en_US', 'tz': 'Europe/Berlin'}",
    ),
    (
        "caught_error_args",
        "try:\n    user._x()\nexcept AccessError as e:\n    result['message'] = 'safe %s' % (e.args,)",
        "safe ('Private methods (such as _x) cannot be called remotely.',)",
    ),
    ("record_name", "result['message'] = 'safe ' + user._name", "safe res.users"),
    ("json_of_record", "result['message'] = 'safe ' + str(isinstance(user, dict))", "safe False"),
]


class OrmEscapeTest(SandboxTestCase):
    def run_attempt(self, code):
        odoo = FakeOdoo()
        answer = run(webhook=code, context={"timeout_seconds": 30, "odoo": odoo.bridge()})
        for call in odoo.calls:
            self.assertEqual((call["kind"], call["uid"]), ("webhook", 6), call)
            self.assertFalse(call["method"].startswith("_"), call)
        return answer

    def test_refused(self):
        ids = [entry[0] for entry in REFUSED + HARMLESS]
        self.assertEqual(len(ids), len(set(ids)))
        for name, code, contains in REFUSED:
            with self.subTest(name):
                self.assertWebhookFailed(self.run_attempt(code), contains)

    def test_harmless(self):
        for name, code, contains in HARMLESS:
            with self.subTest(name):
                answer = self.run_attempt(code)
                self.assertWebhookOk(answer)
                self.assertEqual(answer[3], contains)

    def test_no_public_attribute_reaches_the_internals(self):
        # Every public name of the objects handed out, read from a snippet: none gives the
        # session, the bridge or the kind.
        from towerhook_sandbox import orm

        for cls in (orm.Environment, orm.Recordset, orm.Method):
            public = [name for name in dir(cls) if not name.startswith("_")]
            for name in public:
                with self.subTest(cls=cls.__name__, name=name):
                    value = getattr(cls, name)
                    self.assertNotIsInstance(value, (orm.Session, orm.Core))
        odoo = FakeOdoo()
        names = orm.bind(odoo.bridge(), "webhook")[0]
        for name, value in names.items():
            self.assertNotIsInstance(value, (orm.Session, orm.Core), name)
            for attribute in ("env", "ids", "id", "_name", "context", "uid", "user"):
                try:
                    found = getattr(value, attribute)
                except Exception:
                    continue
                self.assertNotIsInstance(found, (orm.Session, orm.Core, FakeOdoo), attribute)
