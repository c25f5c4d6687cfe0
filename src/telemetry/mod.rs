//! What towerhook tells its operators: Prometheus metrics and throttled warnings.

pub mod metrics;
pub mod throttle;
