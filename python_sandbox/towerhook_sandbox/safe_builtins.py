"""The builtins a snippet sees: Odoo safe_eval's ``_BUILTINS`` (17.0/18.0), nothing more.

In particular there is no ``eval``, ``exec``, ``compile``, ``open``, ``getattr``,
``setattr``, ``type``, ``vars``, ``globals``, ``locals``, ``print``, ``object``, ``iter`` or
``next``, and ``Exception`` is the only exception class (``except ValueError:`` is a
NameError once an exception reaches it, as on Odoo).
"""

import functools
import sys

# C code (datetime.strptime, time.strptime) imports these through the builtins of the
# calling frame; they must already be loaded, since the sandbox's __import__ loads nothing.
ALLOWED_MODULES = ("_strptime", "math", "time")
for _name in ALLOWED_MODULES:
    __import__(_name)


def _import(name, globals=None, locals=None, fromlist=(), level=0):
    # The C import helper only needs the module to be in sys.modules; like Odoo, hand
    # nothing back, so that a snippet reaching this function gains nothing either.
    if name in ALLOWED_MODULES and name in sys.modules:
        return None
    raise ImportError("import of %r is not allowed in webhook code" % name)


BUILTINS = {
    "__import__": _import,
    "True": True,
    "False": False,
    "None": None,
    "bytes": bytes,
    "str": str,
    "unicode": str,
    "bool": bool,
    "int": int,
    "float": float,
    "enumerate": enumerate,
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "map": map,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "reduce": functools.reduce,
    "filter": filter,
    "sorted": sorted,
    "round": round,
    "len": len,
    "repr": repr,
    "set": set,
    "all": all,
    "any": any,
    "ord": ord,
    "chr": chr,
    "divmod": divmod,
    "isinstance": isinstance,
    "range": range,
    "xrange": range,
    "zip": zip,
    "Exception": Exception,
}
