"""safe_eval parity: what Odoo (17/18 on Python 3.11) accepts runs, what it refuses is refused."""

import dis
import sys

from towerhook_sandbox import safe_builtins, validation

from .support import SandboxTestCase, run

ODOO_BUILTINS = {
    "__import__", "True", "False", "None", "bytes", "str", "unicode", "bool", "int",
    "float", "enumerate", "dict", "list", "tuple", "map", "abs", "min", "max", "sum",
    "reduce", "filter", "sorted", "round", "len", "repr", "set", "all", "any", "ord",
    "chr", "divmod", "isinstance", "range", "xrange", "zip", "Exception",
}  # fmt: skip


class OpcodeTableTest(SandboxTestCase):
    def test_runs_on_python_3_11(self):
        # The documented accepted language is 3.11's; another version needs a new review.
        self.assertEqual(sys.version_info[:2], (3, 11))

    def test_blacklist_never_allowed(self):
        for name in (
            "IMPORT_STAR", "IMPORT_NAME", "IMPORT_FROM", "STORE_ATTR", "DELETE_ATTR",
            "STORE_GLOBAL", "DELETE_GLOBAL",
        ):  # fmt: skip
            self.assertNotIn(dis.opmap[name], validation.SAFE_OPCODES, name)

    def test_refused_families(self):
        for name in (
            "LOAD_BUILD_CLASS", "SETUP_ANNOTATIONS", "GET_AWAITABLE", "GET_AITER",
            "GET_ANEXT", "BEFORE_ASYNC_WITH", "END_ASYNC_FOR", "ASYNC_GEN_WRAP",
            "BEFORE_WITH", "LOAD_CLOSURE", "LOAD_DEREF", "STORE_DEREF", "MAKE_CELL",
            "COPY_FREE_VARS", "DELETE_SUBSCR", "LOAD_ASSERTION_ERROR", "PRINT_EXPR",
        ):  # fmt: skip
            self.assertNotIn(dis.opmap[name], validation.SAFE_OPCODES, name)

    def test_allowed_3_11_opcodes(self):
        allowed = {dis.opname[op] for op in validation.SAFE_OPCODES}
        self.assertEqual(
            allowed,
            {
                "POP_TOP", "LOAD_CONST", "RETURN_VALUE", "BUILD_LIST", "BUILD_MAP",
                "BUILD_TUPLE", "BUILD_SET", "BUILD_CONST_KEY_MAP", "LIST_EXTEND",
                "SET_UPDATE", "COPY", "SWAP", "RESUME", "UNARY_POSITIVE",
                "UNARY_NEGATIVE", "UNARY_NOT", "UNARY_INVERT", "BINARY_SUBSCR",
                "BUILD_SLICE", "LIST_APPEND", "MAP_ADD", "SET_ADD", "COMPARE_OP",
                "IS_OP", "CONTAINS_OP", "DICT_MERGE", "DICT_UPDATE", "BINARY_OP",
                "POP_EXCEPT", "EXTENDED_ARG", "MAKE_FUNCTION", "CALL_FUNCTION_EX",
                "LOAD_METHOD", "GET_ITER", "FOR_ITER", "YIELD_VALUE", "JUMP_FORWARD",
                "JUMP_BACKWARD", "JUMP_IF_FALSE_OR_POP", "JUMP_IF_TRUE_OR_POP",
                "RAISE_VARARGS", "LOAD_NAME", "STORE_NAME", "DELETE_NAME", "LOAD_ATTR",
                "LOAD_FAST", "STORE_FAST", "DELETE_FAST", "UNPACK_SEQUENCE",
                "STORE_SUBSCR", "LOAD_GLOBAL", "RERAISE", "PUSH_NULL", "PRECALL", "CALL",
                "KW_NAMES", "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_FORWARD_IF_TRUE",
                "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE",
                "POP_JUMP_FORWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NONE",
                "POP_JUMP_FORWARD_IF_NOT_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE",
                "CHECK_EXC_MATCH", "RETURN_GENERATOR", "PUSH_EXC_INFO", "NOP",
                "FORMAT_VALUE", "BUILD_STRING",
            },
        )  # fmt: skip

    def test_forbidden_names(self):
        for name in ("__class__", "x__y", "f_globals", "gi_frame", "mro", "tb_frame",
                     "_co_code_adaptive", "f_generator", "cr_frame", "ag_code"):  # fmt: skip
            self.assertTrue(validation.is_forbidden_name(name), name)
        for name in ("_private", "format", "f_back", "co_name", "get"):
            self.assertFalse(validation.is_forbidden_name(name), name)


class AcceptedTest(SandboxTestCase):
    """Constructs Odoo accepts on Python 3.11: they run."""

    ACCEPTED = {
        "arithmetic": ("x = (1 + 2) * 3 // 2 % 5 ** 2 - -1\nx += 1\nx <<= 1", "OK"),
        "containers": ("x = [1, *[2]] + list({3}) + list({**{4: 4}})", "OK"),
        "subscripts": ("d = {}\nd['a'] = 1\nd['a'] += 1\nl = [1, 2, 3]\nl[1:2] = [5]", "OK"),
        "unpacking": ("a, (b, c) = 1, (2, 3)", "OK"),
        "loops": ("n = 0\nfor i in range(3):\n    if i == 1:\n        continue\n    n += i\n"
                  "while n:\n    n -= 1\n    break\nelse:\n    pass", "OK"),
        "functions": ("def f(a, b=2, *args, c, **kw):\n    return a + b + c + len(args) + len(kw)\n"
                      "result['message'] = str(f(1, c=3, d=4))", "7"),
        "lambda_and_sorted": ("result['message'] = str(sorted([3, 1, 2], key=lambda v: -v))", "[3, 2, 1]"),
        "comprehensions": ("result['message'] = str([x for x in range(3)] + [len({x: x for x in 'ab'})]"
                           " + [sum(x for x in range(3))])", "[0, 1, 2, 2, 3]"),
        "generators": ("def g():\n    yield 1\n    yield 2\nresult['message'] = str(list(g()))", "[1, 2]"),
        "try_except_finally": ("try:\n    1 / 0\nexcept Exception as e:\n    m = str(e)\nelse:\n"
                               "    m = 'no'\nfinally:\n    m += '!'\nresult['message'] = m", "division by zero!"),
        "raise_and_catch": ("try:\n    raise UserError('x')\nexcept Exception:\n    result['message'] = 'caught'", "caught"),
        "fstrings": ("x = 3.14159\nresult['message'] = f'{x:.2f} {x!r}'", "3.14 3.14159"),
        "del_name": ("x = 1\ndel x", "OK"),
        "single_star_call": ("a = [1, 2]\nresult['message'] = str(max(*a))", "2"),
        "conditional_expression": ("result['message'] = 'a' if payload else 'b'", "b"),
        "reduce_builtin": ("result['message'] = str(reduce(lambda a, b: a * b, [1, 2, 3, 4]))", "24"),
        "xrange_unicode": ("result['message'] = unicode(len(list(xrange(3))))", "3"),
        "match_literal": ("match 1:\n    case 1:\n        result['message'] = 'one'", "one"),
        "walrus_top_level": ("if (n := 2) > 1:\n    result['message'] = str(n)", "2"),
        "global_function_reads_global": ("x = 5\ndef f():\n    return x\nresult['message'] = str(f())", "5"),
        "strptime_uses_restricted_import": (
            "result['message'] = str(datetime.datetime.strptime('2024-01-02', '%Y-%m-%d').day)", "2"),
        "time_strptime": ("result['message'] = str(time.strptime('2024', '%Y').tm_year)", "2024"),
        "async_def_without_await": ("async def f():\n    return 1", "OK"),
    }  # fmt: skip

    def test_accepted(self):
        for name, (code, message) in self.ACCEPTED.items():
            with self.subTest(name):
                self.assertWebhookOk(run(webhook=code), message)


class RefusedTest(SandboxTestCase):
    """Constructs Odoo refuses on Python 3.11, with the opcode or name it reports."""

    REFUSED = {
        "import": ("import json", "forbidden opcode(s) in '<webhook>': IMPORT_NAME"),
        "import_from": ("from json import dumps", "forbidden opcode(s) in '<webhook>': IMPORT_FROM, IMPORT_NAME"),
        "store_attr": ("payload.x = 1", "forbidden opcode(s) in '<webhook>': STORE_ATTR"),
        "delete_attr": ("del payload.x", "DELETE_ATTR"),
        "global": ("def f():\n    global y\n    y = 1", "forbidden opcode(s) in 'f': STORE_GLOBAL"),
        "nonlocal": ("def f():\n    y = 1\n    def g():\n        nonlocal y\n        y = 2", "MAKE_CELL"),
        "closure_in_comprehension": ("def f(x):\n    return [i + x for i in x]", "forbidden opcode(s) in 'f': LOAD_CLOSURE, LOAD_DEREF, MAKE_CELL"),
        "class": ("class A:\n    pass", "LOAD_BUILD_CLASS"),
        "with": ("with payload:\n    pass", "BEFORE_WITH"),
        "assert": ("assert payload", "LOAD_ASSERTION_ERROR"),
        "del_item": ("d = {1: 1}\ndel d[1]", "DELETE_SUBSCR"),
        "yield_from": ("def g():\n    yield from []", "forbidden opcode(s) in 'g':"),
        "starred_assignment": ("a, *b = [1, 2]", "UNPACK_EX"),
        "two_star_call": ("max(*[1], *[2])", "LIST_TO_TUPLE"),
        "await": ("async def f():\n    await f()", "GET_AWAITABLE"),
        "annotations": ("x: int = 1", "Access to forbidden name '__annotations__'"),
        "except_star": ("try:\n    pass\nexcept* Exception:\n    pass", "CHECK_EG_MATCH"),
        "dunder_name": ("x = __name__", "Access to forbidden name '__name__'"),
        "dunder_in_lambda": ("f = lambda: ().__class__", "Access to forbidden name '__class__'"),
        "syntax_error": ("x = = 1", "invalid syntax (<webhook>, line 1)"),
    }  # fmt: skip

    def test_refused(self):
        for name, (code, message) in self.REFUSED.items():
            with self.subTest(name):
                answer = run(webhook=code)
                self.assertWebhookFailed(answer, message)
                self.assertTrue(answer[3].startswith("Webhook code execution error: "))

    def test_refused_authenticator(self):
        answer = run(authenticator="import os")
        self.assertAuthFailed(
            answer,
            403,
            "Authentication code error: forbidden opcode(s) in '<authenticator>': IMPORT_NAME",
        )

    def test_refusal_does_not_repeat_the_code(self):
        answer = run(webhook="token = 'abcdef'\nx = ().__class__")
        self.assertNotIn("abcdef", answer[3])


class BuiltinsTest(SandboxTestCase):
    def test_exactly_odoos_builtins(self):
        self.assertEqual(set(safe_builtins.BUILTINS), ODOO_BUILTINS)

    def test_no_other_builtin_reachable(self):
        for name in ("eval", "exec", "compile", "open", "getattr", "setattr", "delattr",
                     "type", "vars", "globals", "locals", "print", "input", "object",
                     "super", "hasattr", "iter", "next", "issubclass", "dir", "help",
                     "memoryview", "ValueError", "KeyError", "BaseException"):  # fmt: skip
            with self.subTest(name):
                self.assertWebhookFailed(
                    run(webhook="x = %s" % name), "name %r is not defined" % name
                )

    def test_restricted_import(self):
        importer = safe_builtins.BUILTINS["__import__"]
        self.assertIsNone(importer("_strptime"))
        for name in ("os", "sys", "importlib", "subprocess"):
            with self.assertRaises(ImportError):
                importer(name)

    def test_except_with_undefined_class_is_a_name_error(self):
        answer = run(webhook="try:\n    1 / 0\nexcept ValueError:\n    pass")
        self.assertWebhookFailed(answer, "NameError(\"name 'ValueError' is not defined\")")
