# The official Odoo 17 image plus the Python libraries that Cetmix Tower's modules declare
# as external dependencies (cetmix_tower_server: paramiko, tldextract, dnspython;
# cetmix_tower_yaml: pyyaml). Without them Odoo refuses to install cetmix_tower_webhook.
# Built by docker-compose.yml (service odoo).
ARG ODOO_IMAGE=odoo:17.0
FROM ${ODOO_IMAGE}

USER root
# PIP_BREAK_SYSTEM_PACKAGES: for a base image on Ubuntu 24.04 (PEP 668); the jammy-based
# 17.0 image's pip ignores it.
RUN PIP_BREAK_SYSTEM_PACKAGES=1 pip3 install --no-cache-dir paramiko pyyaml tldextract dnspython
USER odoo
