//! towerhook: serves Cetmix Tower webhooks for Odoo, off Odoo's HTTP workers.

pub mod check;
pub mod cli;
pub mod configuration;
pub mod definitions;
pub mod definitions_sync;
pub mod geoip;
pub mod ip_rules;
pub mod log_record;
pub mod log_store;
pub mod log_throttle;
pub mod metrics;
pub mod odoo;
pub mod odoo_setup;
pub mod outbox;
pub mod payload;
pub mod pipeline;
pub mod python;
pub mod registry;
pub mod request;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod snapshot_store;
pub mod source;
pub mod startup;
pub mod yaml_sync;
