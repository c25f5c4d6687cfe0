//! `towerhook export` / `towerhook import`: webhooks and authenticators between Odoo and
//! Cetmix Tower YAML files.
