//! towerhook: serves Cetmix Tower webhooks for Odoo, off Odoo's HTTP workers.
//!
//! A webhook call's path: `http` (the server and its routes) hands it to `calls` (the
//! module's flow as plain functions: match, client address, snippets, answer), which runs
//! the snippets in `snippets` (supervised worker processes, each with an embedded Python)
//! and produces a log record that `logs` keeps durably and ships to Odoo. `definitions`
//! holds what is served (from YAML files or Odoo, kept current by `definitions::sync`);
//! `odoo` is the external API client and everything Odoo-specific. `app` wires it all and
//! stops it; `cli` is the command line.

pub mod app;
pub mod calls;
pub mod cli;
pub mod configuration;
pub mod definitions;
// towerhook extension: duplicate guard, limits and accept-now-run-later per webhook.
pub mod delivery;
pub mod http;
pub mod logs;
pub mod odoo;
pub mod snippets;
pub mod telemetry;
