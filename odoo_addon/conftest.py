"""pytest: the addon's own tests (cetmix_tower_webhook_sidecar/tests) need a running
Odoo; only odoo_addon/tests runs without one."""
collect_ignore_glob = ["cetmix_tower_webhook_sidecar/*"]
