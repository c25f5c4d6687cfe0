//! Delivery guarantees per webhook (towerhook extensions): a duplicate guard, limits, and
//! accept-now-run-later.
//!
//! The per-webhook settings are part of a webhook's definition
//! (`definitions::delivery`, with their Odoo fields in `definitions::delivery_fields`);
//! the call flow applies them in `calls::delivery`. Here are the mechanisms:
//! - `dedup`: delivery ids seen per webhook (memory in front of SQLite).
//! - `limits`: calls per minute per client address, calls at once per webhook.
//! - `queue`: the durable queue of asynchronous calls and its runner; its tables and the
//!   duplicate guard's are in the log store's SQLite file (`logs::delivery_store`),
//!   committed with the log records.
//!

pub mod dedup;
pub mod limits;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

pub use crate::definitions::delivery::{Mode, Policy};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration::Settings;
use crate::definitions::IpList;
use crate::definitions::registry::{Registry, RegistryHandle};
use crate::definitions::{Authenticator, Snippet, SnippetKind, Webhook};
use crate::logs::delivery_store as store;
use crate::logs::store::LogStore;
use crate::snippets::Pool;
use crate::telemetry::metrics::Metrics;
use dedup::DedupGuard;
use limits::{Concurrency, RateLimiter};
use queue::{Queue, QueueSettings, QueueState, now_ms};

/// The store's delivery tables cannot be read or the queue cannot start.
#[derive(Debug, thiserror::Error)]
#[error("delivery store {}: {source}", path.display())]
pub struct DeliveryStoreError {
    path: std::path::PathBuf,
    source: rusqlite::Error,
}

/// The duplicate guard, the limits and the queue, shared by every call.
pub struct Guards {
    pub(crate) dedup: DedupGuard,
    pub(crate) rates: RateLimiter,
    pub(crate) concurrency: Concurrency,
    pub(crate) queue: Queue,
}

impl Guards {
    /// Loads the seen delivery ids and the queued calls an earlier run left, and starts
    /// the queue's runner.
    /// `workers`: the snippet pool's size, the queue's parallelism unless set.
    pub fn start(
        settings: &Settings,
        workers: usize,
        log_store: &LogStore,
        pool: Pool,
        registry: Arc<RegistryHandle>,
        metrics: Arc<Metrics>,
        background: (&CancellationToken, &TaskTracker),
    ) -> Result<Self, DeliveryStoreError> {
        let path = log_store.path();
        let problem = |source: rusqlite::Error| DeliveryStoreError {
            path: path.to_path_buf(),
            source,
        };
        let reader = store::open(path).map_err(problem)?;
        let dedup = DedupGuard::with_seen(store::seen(&reader, now_ms()).map_err(problem)?);
        drop(reader);
        let parallel = match settings.queue_parallel {
            0 => workers.max(1),
            n => n,
        };
        let queue = Queue::start(
            QueueSettings {
                max_calls: settings.queue_max_calls,
                first_retry: Duration::from_secs_f64(settings.queue_retry_first_secs),
                max_retry: Duration::from_secs_f64(settings.queue_retry_max_secs),
                parallel,
                snippet_timeout_secs: settings.snippet_timeout_secs,
            },
            log_store.clone(),
            pool,
            registry,
            metrics,
            dedup.clone(),
            background,
        )
        .map_err(problem)?;
        Ok(Self {
            dedup,
            rates: RateLimiter::default(),
            concurrency: Concurrency::default(),
            queue,
        })
    }

    /// Stops the queue's runner, letting the runs in progress end within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.queue.shutdown(grace).await;
    }

    pub fn queue_state(&self) -> QueueState {
        self.queue.state()
    }
}

/// A line for `towerhook check`: which webhooks use these settings.
pub fn describe(registry: &Registry) -> Option<String> {
    let active = || registry.webhooks().iter().filter(|w| w.active);
    let count = |test: &dyn Fn(&Policy) -> bool| active().filter(|w| test(&w.delivery)).count();
    let asynchronous = count(&|p| p.mode() == Mode::Async);
    let deduplicated = count(&|p| p.dedup_key().is_some());
    let limited = count(&|p| {
        p.rate_per_minute().is_some()
            || p.max_concurrent_calls().is_some()
            || p.max_body_bytes.is_some_and(|b| b > 0)
    });
    (asynchronous + deduplicated + limited > 0).then(|| {
        format!(
            "  delivery settings (towerhook extensions): {asynchronous} async, {deduplicated} \
             with a duplicate guard, {limited} with limits"
        )
    })
}

/// The authenticator, with webhook code that does nothing: its run says only whether the
/// call is allowed.
pub(crate) fn authenticator_only(webhook: &Webhook) -> Arc<Webhook> {
    rebuilt(
        webhook,
        Arc::clone(&webhook.authenticator),
        Snippet::new(SnippetKind::Webhook, ""),
    )
}

/// The webhook code, behind an authenticator that allows: for calls authenticated when
/// they were accepted.
pub(crate) fn code_only(webhook: &Webhook) -> Arc<Webhook> {
    let authenticator = &webhook.authenticator;
    let allowing = Arc::new(Authenticator {
        id: authenticator.id,
        reference: authenticator.reference.clone(),
        name: authenticator.name.clone(),
        code: Snippet::new(SnippetKind::Authenticator, "result = {\"allowed\": True}"),
        allowed_ips: IpList::parse(""),
        trusted_proxies: IpList::parse(""),
    });
    // The same snippet version as the webhook's own, which workers already know.
    let code = Snippet::with_secrets(
        SnippetKind::Webhook,
        webhook.code.source(),
        webhook.code.secrets(),
    );
    rebuilt(webhook, allowing, code)
}

/// `webhook` with another authenticator and code.
fn rebuilt(webhook: &Webhook, authenticator: Arc<Authenticator>, code: Snippet) -> Arc<Webhook> {
    Arc::new(Webhook {
        id: webhook.id,
        reference: webhook.reference.clone(),
        name: webhook.name.clone(),
        active: webhook.active,
        authenticator,
        endpoint: webhook.endpoint.clone(),
        method: webhook.method,
        content_type: webhook.content_type,
        user_id: webhook.user_id,
        code,
        delivery: Arc::clone(&webhook.delivery),
    })
}
