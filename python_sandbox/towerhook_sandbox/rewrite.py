"""Syntax-tree rewrites that close what safe_eval's checks leave open.

Applied after the snippet passed the safe_eval checks; the rewritten code only calls
helpers through names that are not identifiers (``.check`` ...), so a snippet cannot name,
rebind or delete them, and the rewritten code passes the same checks.

- ``x.format`` / ``x.format_map`` read ``formatting.attribute(x, name)`` instead (format
  strings could otherwise follow attribute chains past the name check).
- Every ``try`` with handlers gets a first handler ``except .uncatchable(): raise``: a
  bare ``except:`` must not catch the timeout (nor may ``except BaseException``, whose
  NameError would replace it). Outside the snippet's run (a generator finalized after the
  call) it re-raises everything, so that no handler of the snippet runs there.
- Every ``finally`` block starts with ``.check()`` (see ``guard.check``): a ``finally``
  ending in ``continue``, ``break`` or ``return`` discards the exception in flight, the
  host's timeout included, and could do so on every re-injection.
"""

import ast

from .formatting import FORMAT_ATTRIBUTES

# Names of the helpers in the snippet's globals; not identifiers, so out of a snippet's reach.
FORMAT_ATTRIBUTE = ".format_attribute"
UNCATCHABLE = ".uncatchable"
CHECK = ".check"


class _Rewriter(ast.NodeTransformer):
    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr not in FORMAT_ATTRIBUTES or not isinstance(node.ctx, ast.Load):
            return node
        call = ast.Call(
            func=ast.Name(id=FORMAT_ATTRIBUTE, ctx=ast.Load()),
            args=[node.value, ast.Constant(node.attr)],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def visit_Try(self, node):
        self.generic_visit(node)
        if node.handlers:
            first = node.handlers[0]
            reraise = ast.ExceptHandler(
                type=_call(UNCATCHABLE), name=None, body=[ast.Raise()]
            )
            node.handlers.insert(0, ast.copy_location(reraise, first))
        if node.finalbody:
            first = node.finalbody[0]
            check = ast.Expr(_call(CHECK))
            node.finalbody.insert(0, ast.copy_location(check, first))
        return node


def _call(name):
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[], keywords=[])


def rewrite(tree):
    """Rewrites ``tree`` in place and returns it, ready to compile."""
    tree = _Rewriter().visit(tree)
    return ast.fix_missing_locations(tree)
