//! What towerhook tells its operators: Prometheus metrics and throttled warnings.

pub mod delivery;
pub mod metrics;
pub mod throttle;
