"""Rules and runner for towerhook's webhook snippets.

This package is embedded into the towerhook binary at build time and imported by the
embedded interpreter. It also runs on a plain CPython for its own tests
(``python -m unittest discover -s python_sandbox/tests -t python_sandbox``).

The Rust side only uses the names exported here. One module per concern:
``validation`` (safe_eval's checks), ``safe_builtins``, ``libraries`` (the wrapped
modules), ``odoo_objects`` and ``orm`` (the Odoo objects, over the host's RPC bridge),
``secrets`` (placeholders and masking), ``formatting`` and
``rewrite`` (what the checks leave open), ``guard`` (time limits), ``response`` (message
and response shaping), ``verify`` (the provider toolkit's ``verify`` and request names),
``runner`` (the boundary).
"""

from .exceptions import SnippetTimeout, UserError
from .runner import configure, prepare, run_call, secret_references

__all__ = [
    "SnippetTimeout",
    "UserError",
    "configure",
    "prepare",
    "run_call",
    "secret_references",
]
