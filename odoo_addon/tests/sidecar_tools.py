"""Loads odoo_addon/cetmix_tower_webhook_sidecar/tools.py by its path.

Importing it as ``cetmix_tower_webhook_sidecar.tools`` would run the addon package's
``__init__`` (which imports the Odoo models, hence Odoo); tools.py itself imports
nothing from Odoo.
"""
import importlib.util
import os
import sys

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "cetmix_tower_webhook_sidecar", "tools.py")
NAME = "cetmix_tower_webhook_sidecar_tools"


def load():
    module = sys.modules.get(NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(NAME, PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        spec.loader.exec_module(module)
    return module
