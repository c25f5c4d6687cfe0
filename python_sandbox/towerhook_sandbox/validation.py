"""Static checks equivalent to Odoo's ``safe_eval`` (``odoo/tools/safe_eval.py``, 17.0/18.0).

A snippet is compiled in ``exec`` mode, then its top code object and every code object
nested in ``co_consts`` (functions, lambdas, comprehensions, generator expressions) must:

- name nothing containing a double underscore and none of Odoo's unsafe attributes
  (``NameError: Access to forbidden name ...``);
- use only opcodes of Odoo's allow-list (``ValueError: forbidden opcode(s) in ...``).

The allow-list is Odoo's list of opcode names, kept for every Python version it names;
names the running interpreter does not have are skipped, exactly as Odoo's
``to_opcodes`` does, so the accepted language follows the interpreter.

towerhook embeds CPython 3.11. What that means for snippet authors (as on an Odoo server
running Python 3.11):

- accepted: expressions, assignments (names, items, slices), ``if``/``for``/``while``,
  ``try``/``except``/``finally``, ``raise``, functions and lambdas that use only their own
  locals and globals, comprehensions and generator expressions at top level, generators
  with ``yield``, f-strings, ``*args``/``**kwargs`` calls with a single star argument,
  ``del name``, ``match`` on literals;
- refused: ``import`` in every form, attribute assignment or deletion, ``global``,
  ``nonlocal`` and closures (a function or comprehension inside a function that uses the
  outer function's variables: MAKE_CELL, LOAD_CLOSURE, COPY_FREE_VARS, LOAD_DEREF), ``class``,
  ``async``/``await``, ``with``, ``assert``, ``del x[i]``, ``yield from``, starred
  assignment (``a, *b = ...``), tuple displays or calls with several starred items
  (LIST_TO_TUPLE), structural ``match`` beyond literals, ``except*``, annotations at top
  level.

Differences from the Odoo message texts: the snippet source is not repeated in them
(Odoo appends ``repr(code)``, which would leak inlined secrets); the place is named
instead (``'<webhook>'`` for the top level, the function name for nested code).
"""

import dis
import types

# Attributes that reach frames, code, tracebacks or the MRO (Odoo 18's list, which adds
# f_generator to 17's).
UNSAFE_ATTRIBUTES = frozenset(
    [
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "f_generator",
        "func_code",
        "func_globals",
        "co_code",
        "_co_code_adaptive",
        "mro",
        "tb_frame",
        "gi_code",
        "gi_frame",
        "gi_yieldfrom",
        "cr_await",
        "cr_code",
        "cr_frame",
        "ag_await",
        "ag_code",
        "ag_frame",
    ]
)


def _opcodes(names):
    return {dis.opmap[name] for name in names if name in dis.opmap}


# Never allowed, whatever else the lists below say.
_BLACKLIST = _opcodes(
    [
        "IMPORT_STAR",
        "IMPORT_NAME",
        "IMPORT_FROM",
        "STORE_ATTR",
        "DELETE_ATTR",
        "STORE_GLOBAL",
        "DELETE_GLOBAL",
    ]
)

# Literals and stack handling.
_CONST_OPCODES = (
    _opcodes(
        [
            "POP_TOP",
            "ROT_TWO",
            "ROT_THREE",
            "ROT_FOUR",
            "DUP_TOP",
            "DUP_TOP_TWO",
            "LOAD_CONST",
            "RETURN_VALUE",
            "BUILD_LIST",
            "BUILD_MAP",
            "BUILD_TUPLE",
            "BUILD_SET",
            "BUILD_CONST_KEY_MAP",
            "LIST_EXTEND",
            "SET_UPDATE",
            "COPY",
            "SWAP",
            "RESUME",
            "RETURN_CONST",
            "TO_BOOL",
            "LOAD_SMALL_INT",
        ]
    )
    - _BLACKLIST
)

_OPERATIONS = [
    "POWER",
    "MULTIPLY",
    "FLOOR_DIVIDE",
    "TRUE_DIVIDE",
    "MODULO",
    "ADD",
    "SUBTRACT",
    "LSHIFT",
    "RSHIFT",
    "AND",
    "XOR",
    "OR",
]

# Operators, comparisons, comprehension building.
_EXPR_OPCODES = (
    _CONST_OPCODES
    | _opcodes(
        [
            "UNARY_POSITIVE",
            "UNARY_NEGATIVE",
            "UNARY_NOT",
            "UNARY_INVERT",
            *("BINARY_" + op for op in _OPERATIONS),
            "BINARY_SUBSCR",
            *("INPLACE_" + op for op in _OPERATIONS),
            "BUILD_SLICE",
            "LIST_APPEND",
            "MAP_ADD",
            "SET_ADD",
            "COMPARE_OP",
            "IS_OP",
            "CONTAINS_OP",
            "DICT_MERGE",
            "DICT_UPDATE",
            "GEN_START",
            "BINARY_OP",
            "BINARY_SLICE",
        ]
    )
) - _BLACKLIST

# Statements: control flow, calls, functions, names, exception handling.
SAFE_OPCODES = frozenset(
    (
        _EXPR_OPCODES
        | _opcodes(
            [
                "POP_BLOCK",
                "POP_EXCEPT",
                "SETUP_LOOP",
                "SETUP_EXCEPT",
                "BREAK_LOOP",
                "CONTINUE_LOOP",
                "EXTENDED_ARG",
                "MAKE_FUNCTION",
                "CALL_FUNCTION",
                "CALL_FUNCTION_KW",
                "CALL_FUNCTION_EX",
                "CALL_METHOD",
                "LOAD_METHOD",
                "GET_ITER",
                "FOR_ITER",
                "YIELD_VALUE",
                "JUMP_FORWARD",
                "JUMP_ABSOLUTE",
                "JUMP_BACKWARD",
                "JUMP_IF_FALSE_OR_POP",
                "JUMP_IF_TRUE_OR_POP",
                "POP_JUMP_IF_FALSE",
                "POP_JUMP_IF_TRUE",
                "SETUP_FINALLY",
                "END_FINALLY",
                "BEGIN_FINALLY",
                "CALL_FINALLY",
                "POP_FINALLY",
                "RAISE_VARARGS",
                "LOAD_NAME",
                "STORE_NAME",
                "DELETE_NAME",
                "LOAD_ATTR",
                "LOAD_FAST",
                "STORE_FAST",
                "DELETE_FAST",
                "UNPACK_SEQUENCE",
                "STORE_SUBSCR",
                "LOAD_GLOBAL",
                "RERAISE",
                "JUMP_IF_NOT_EXC_MATCH",
                # 3.11
                "PUSH_NULL",
                "PRECALL",
                "CALL",
                "KW_NAMES",
                "POP_JUMP_FORWARD_IF_FALSE",
                "POP_JUMP_FORWARD_IF_TRUE",
                "POP_JUMP_BACKWARD_IF_FALSE",
                "POP_JUMP_BACKWARD_IF_TRUE",
                "POP_JUMP_FORWARD_IF_NONE",
                "POP_JUMP_BACKWARD_IF_NONE",
                "POP_JUMP_FORWARD_IF_NOT_NONE",
                "POP_JUMP_BACKWARD_IF_NOT_NONE",
                "CHECK_EXC_MATCH",
                "RETURN_GENERATOR",
                "PUSH_EXC_INFO",
                "NOP",
                "FORMAT_VALUE",
                "BUILD_STRING",
                # 3.12
                "END_FOR",
                "LOAD_FAST_AND_CLEAR",
                "LOAD_FAST_CHECK",
                "POP_JUMP_IF_NOT_NONE",
                "POP_JUMP_IF_NONE",
                "CALL_INTRINSIC_1",
                "STORE_SLICE",
                # 3.13
                "CALL_KW",
                "LOAD_FAST_LOAD_FAST",
                "STORE_FAST_STORE_FAST",
                "STORE_FAST_LOAD_FAST",
                "CONVERT_VALUE",
                "FORMAT_SIMPLE",
                "FORMAT_WITH_SPEC",
                "SET_FUNCTION_ATTRIBUTE",
                # 3.14
                "LOAD_FAST_BORROW",
                "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
                "POP_ITER",
                "LOAD_COMMON_CONSTANT",
                "NOT_TAKEN",
            ]
        )
    )
    - _BLACKLIST
)


def is_forbidden_name(name):
    """The rule safe_eval applies to every name a code object uses."""
    return "__" in name or name in UNSAFE_ATTRIBUTES


def check_code(code, where):
    """Raises NameError/ValueError as safe_eval would for ``code`` and its nested code."""
    for name in code.co_names:
        if is_forbidden_name(name):
            raise NameError("Access to forbidden name %r" % name)
    used = {instruction.opcode for instruction in dis.get_instructions(code)}
    forbidden = used - SAFE_OPCODES
    if forbidden:
        raise ValueError(
            "forbidden opcode(s) in %r: %s"
            % (where, ", ".join(sorted(dis.opname[op] for op in forbidden)))
        )
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            check_code(const, const.co_name)


def walk_code(code):
    """The code object and every code object nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from walk_code(const)
