"""Rules and runner for towerhook's webhook snippets.

This package is embedded into the towerhook binary at build time and imported by the
embedded interpreter. It also runs on a plain CPython for its own tests
(``python -m unittest discover -s python_sandbox/tests -t python_sandbox``).

The Rust side only uses the names exported here.
"""

from .runner import SnippetTimeout, configure, prepare, run_call

__all__ = ["SnippetTimeout", "configure", "prepare", "run_call"]
