"""Imports of the third-party packages snippets use, on first use."""

import importlib
import sys

from .exceptions import UserError


def load(module_name, title, package):
    """Imports ``module_name``; a UserError naming the pip package when it is missing."""
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            "%s is not available: the Python package %r is not installed in towerhook's "
            "environment (pip install %s; %s)" % (title, package, package, exc)
        ) from None
