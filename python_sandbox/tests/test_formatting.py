"""Format strings: attribute chains are checked, everything else behaves as in Python."""

from towerhook_sandbox import formatting

from .support import SandboxTestCase, run


class CheckTemplateTest(SandboxTestCase):
    def test_allowed_templates(self):
        for template in ("", "plain", "{}", "{0} {1!r} {x:>10}", "{0[key]} {0[__x__]}",
                         "{a.real} {a._private}", "{0:{1}}", "{{literal}}", "{0.f_back}"):  # fmt: skip
            with self.subTest(template=template):
                formatting.check_template(template)

    def test_refused_templates(self):
        for template, name in (
            ("{0.__class__}", "__class__"),
            ("{x.__init__.__globals__}", "__init__"),
            ("{0[a].__dict__}", "__dict__"),
            ("{0.gi_frame}", "gi_frame"),
            ("{0.f_globals}", "f_globals"),
            ("{0.mro}", "mro"),
            ("{0:{1.__class__}}", "__class__"),
            ("{0:>{1.tb_frame}}", "tb_frame"),
        ):
            with self.subTest(template=template):
                with self.assertRaisesRegex(NameError, "Access to forbidden name %r" % name):
                    formatting.check_template(template)

    def test_malformed_template_errors_as_python(self):
        answer = run(webhook="'{'.format(1)")
        self.assertWebhookFailed(answer, "ValueError(\"Single '{' encountered in format string\")")


class FormatInSnippetsTest(SandboxTestCase):
    def test_format_behaves_as_python(self):
        cases = {
            "'{} and {}'.format('a', 'b')": "a and b",
            "'{x:>5}|'.format(x=1)": "    1|",
            "'{0[k]}'.format({'k': 'v'})": "v",
            "'{0.real}'.format(3)": "3",
            "'{:%Y-%m}'.format(datetime.date(2024, 5, 1))": "2024-05",
            "'{name}'.format_map({'name': 'n'})": "n",
            "str.format('{}-{}', 1, 2)": "1-2",
            "', '.join(map('<{}>'.format, [1, 2]))": "<1>, <2>",
            "'%s/%d' % ('a', 2)": "a/2",
        }
        for expression, text in cases.items():
            with self.subTest(expression=expression):
                self.assertWebhookOk(run(webhook="result['message'] = " + expression), text)

    def test_format_attribute_of_other_objects(self):
        answer = run(webhook="payload.format")
        self.assertWebhookFailed(
            answer, "AttributeError(\"'dict' object has no attribute 'format'\")"
        )
        self.assertWebhookOk(
            run(webhook="format = 'name'\nx = dict(format=1)\nresult['message'] = format"), "name"
        )

    def test_format_errors_as_python(self):
        answer = run(webhook="'{0}'.format()")
        self.assertWebhookFailed(answer, "IndexError(")
        answer = run(webhook="str.format(1)")
        self.assertWebhookFailed(answer, "TypeError(")

    def test_fstring_attributes_are_names(self):
        # f-strings compile attribute reads into the code, where the name check sees them.
        self.assertWebhookFailed(run(webhook="x = f'{payload.__class__}'"), "'__class__'")
        self.assertWebhookFailed(run(webhook="x = f'{payload!r:{payload.__doc__}}'"), "'__doc__'")
        self.assertWebhookOk(run(webhook="x = 2\nresult['message'] = f'{x.real}'"), "2")
