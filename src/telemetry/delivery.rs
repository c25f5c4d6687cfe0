//! The delivery metrics, registered with the service's other metrics.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

use super::metrics::register;

pub struct DeliveryMetrics {
    /// Repeats answered without running the code, by endpoint.
    pub duplicates: IntCounterVec,
    /// Calls refused by a limit: `rate`, `concurrency`, `body`, `queue_full`.
    pub refusals: IntCounterVec,
    /// Queued calls that ran: `done`, `retried`, `dead`.
    pub queue_runs: IntCounterVec,
    // Sampled when /metrics is read.
    pub queue_depth: IntGauge,
    pub queue_oldest_age_seconds: IntGauge,
    pub queue_dead_letters: IntGauge,
    pub dedup_ids: IntGauge,
}

impl DeliveryMetrics {
    pub fn register(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let gauge = |name: &str, help: &str| register(registry, IntGauge::new(name, help));
        Self {
            duplicates: counter(
                "duplicates_total",
                "Repeated deliveries answered without running the code, by endpoint",
                &["endpoint"],
            ),
            refusals: counter(
                "limit_refusals_total",
                "Calls refused by a per-webhook limit, by kind (rate, concurrency, body, \
                 queue_full)",
                &["kind"],
            ),
            queue_runs: counter(
                "queue_runs_total",
                "Runs of queued calls, by result (done, retried, dead)",
                &["result"],
            ),
            queue_depth: gauge(
                "queue_depth",
                "Calls accepted for later whose code has not run yet",
            ),
            queue_oldest_age_seconds: gauge(
                "queue_oldest_age_seconds",
                "Age of the oldest call waiting in the queue",
            ),
            queue_dead_letters: gauge(
                "queue_dead_letters",
                "Queued calls out of runs, kept for `towerhook queue retry`",
            ),
            dedup_ids: gauge(
                "dedup_ids",
                "Delivery ids remembered by the duplicate guard",
            ),
        }
    }
}
