//! Call logs: the record (`record`), the local SQLite store that commits it before the answer
//! leaves (`store`), the shipper that creates it in Odoo (`shipper`), and the caller's country
//! (`geoip`).

pub mod delivery_store;
pub mod geoip;
pub mod record;
pub mod schema;
pub mod shipper;
pub mod store;
