"""Unit tests of the companion addon's Odoo-free logic (tools.py); see test_sidecar_tools."""
