//! `GET /metrics` in Prometheus text format. One registry per service instance, so that
//! several instances in one process (tests) keep their own counts.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Label for calls that matched no webhook: unknown paths must not grow the label set.
pub const UNMATCHED: &str = "(unmatched)";

pub struct Metrics {
    registry: Registry,
    /// Calls by endpoint and HTTP status.
    pub calls: IntCounterVec,
    pub authentication: IntCounterVec,
    pub code: IntCounterVec,
    /// Time the snippets of one call ran (authenticator and webhook code).
    pub snippet_seconds: Histogram,
    pub definition_refreshes: IntCounterVec,
    pub odoo_rpc_seconds: HistogramVec,
    pub odoo_rpc_errors: IntCounterVec,
    // Sampled when /metrics is read.
    pub python_queue_depth: IntGauge,
    pub outbox_records: IntGauge,
    pub outbox_bytes: IntGauge,
    pub outbox_oldest_age_seconds: IntGauge,
    pub dead_letters: IntGauge,
    pub shipped_records: IntGauge,
    pub workers_ready: IntGauge,
    pub workers_busy: IntGauge,
    pub worker_restarts: IntGaugeVec,
    pub calls_killed_for_time: IntGauge,
    pub worker_memory_bytes: IntGaugeVec,
    /// towerhook extension (src/delivery): duplicates, limit refusals, the queue.
    pub delivery: crate::telemetry::delivery::DeliveryMetrics,
}

/// Registers a metric the code defines (its name and labels are constants: a failure is a
/// bug, found by any test that starts the service).
pub(crate) fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric.expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("a metric registered once");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("towerhook".into()), None).expect("a valid registry prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help));
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let calls = counter(
            "calls_total",
            "Webhook calls answered, by endpoint and HTTP status",
            &["endpoint", "status"],
        );
        let authentication = counter(
            "authentication_total",
            "Authentication outcomes of webhook calls",
            &["outcome"],
        );
        let code = counter("code_total", "Webhook code outcomes", &["outcome"]);
        let snippet_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "snippet_seconds",
                "Time the snippets of one call ran (authenticator and webhook code)",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
        )
        .expect("metric");
        registry
            .register(Box::new(snippet_seconds.clone()))
            .expect("unique metric");
        let definition_refreshes = counter(
            "definition_refreshes_total",
            "Refreshes of the definitions, by result (ok, failed)",
            &["result"],
        );
        let odoo_rpc_seconds = HistogramVec::new(
            HistogramOpts::new("odoo_rpc_seconds", "Latency of Odoo RPC calls, by method")
                .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method"],
        )
        .expect("metric");
        registry
            .register(Box::new(odoo_rpc_seconds.clone()))
            .expect("unique metric");
        let odoo_rpc_errors = counter(
            "odoo_rpc_errors_total",
            "Failed Odoo RPC calls, by method and error",
            &["method", "error"],
        );
        Self {
            calls,
            authentication,
            code,
            snippet_seconds,
            definition_refreshes,
            odoo_rpc_seconds,
            odoo_rpc_errors,
            python_queue_depth: gauge("python_queue_depth", "Calls waiting for a snippet worker"),
            outbox_records: gauge("outbox_records", "Log records not yet in Odoo"),
            outbox_bytes: gauge("outbox_bytes", "Bytes of log records not yet in Odoo"),
            outbox_oldest_age_seconds: gauge(
                "outbox_oldest_age_seconds",
                "Age of the oldest log record waiting for Odoo",
            ),
            dead_letters: gauge(
                "dead_letters",
                "Log records Odoo refused, kept for `towerhook outbox retry`",
            ),
            shipped_records: gauge("shipped_records", "Log records shipped to Odoo since start"),
            workers_ready: gauge("workers_ready", "Snippet workers ready for calls"),
            workers_busy: gauge("workers_busy", "Calls running in snippet workers"),
            worker_restarts: gauges(
                "worker_restarts",
                "Snippet workers replaced since start, by cause (recycled, timeout, died, \
                 start_failed)",
                &["cause"],
            ),
            calls_killed_for_time: gauge(
                "calls_killed_for_time",
                "Calls whose worker was killed for running past the snippet time limit",
            ),
            worker_memory_bytes: gauges(
                "worker_memory_bytes",
                "Resident memory of each snippet worker",
                &["pid"],
            ),
            delivery: crate::telemetry::delivery::DeliveryMetrics::register(&registry),
            registry,
        }
    }

    /// One RPC call's latency and, when it failed, its error name.
    pub fn observe_rpc(&self, method: &str, took: Duration, error: Option<&str>) {
        self.odoo_rpc_seconds
            .with_label_values(&[method])
            .observe(took.as_secs_f64());
        if let Some(error) = error {
            self.odoo_rpc_errors
                .with_label_values(&[method, error])
                .inc();
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!("cannot encode metrics: {error}");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
