//! The durable queue of accepted asynchronous calls and the task that runs them.
//!
//! A call is queued (its row committed) before its 202 leaves. The runner runs each
//! webhook's calls one at a time in arrival order, on the snippet pool, with the webhook's
//! definition as it is when the call runs (code, "Run as User", retries): the authenticator
//! already ran when the call was accepted and is not run again. A run whose code fails is
//! run again after a backoff (`queue_retry_first_secs`, doubling up to
//! `queue_retry_max_secs`, with jitter) up to the webhook's `retries`, while the webhook's
//! later calls wait behind it (order is kept); then it becomes a dead letter
//! (`towerhook queue list|retry`). A call whose webhook no longer exists or is disabled
//! becomes a dead letter at once, saying so. Each call gets its log record when it ends
//! (ran, or dead letter), with the number of attempts.
//!
//! Delivery is at least once: a call whose code was running when towerhook was killed
//! runs again after the restart (its row is only removed with its log record).
//!
//! The rows are the truth; the runner keeps only their schedule in memory (id, attempts,
//! next attempt), and reads a call's headers, body and payload when it runs it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::definitions::Webhook;
use crate::definitions::registry::RegistryHandle;
use crate::delivery::dedup::DedupGuard;
use crate::logs::delivery_store::{self as store, QueuedCall, Seen, Waiting, Write};
use crate::logs::record::{AuthenticationStatus, CodeStatus, LogRecord};
use crate::logs::store::{LogStore, StoreError};
use crate::snippets::{Origin, Outcome, Pool, PoolError};
use crate::telemetry::metrics::Metrics;

/// Stored with a queued call's log record, among its headers: how many runs it took.
pub const ATTEMPTS_HEADER: &str = "X-Towerhook-Attempts";

/// How often the runner looks for calls put back by `towerhook queue retry`.
const ADOPT_EVERY: Duration = Duration::from_secs(1);
/// How often expired delivery ids and old dead letters are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// A busy snippet pool is asked again after this long (not counted as an attempt).
const POOL_BUSY_WAIT: Duration = Duration::from_millis(200);
/// A store that refuses a call's end is asked again after this long.
const STORE_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Calls waiting beyond which new asynchronous calls are refused (503).
    pub max_calls: usize,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// Webhooks whose calls run at the same time, at most.
    pub parallel: usize,
    /// For the messages of calls killed for their time.
    pub snippet_timeout_secs: f64,
}

/// One queued call in its webhook's lane.
#[derive(Debug, Clone)]
struct Entry {
    id: i64,
    enqueued_at_ms: i64,
    attempts: u32,
    next_at_ms: i64,
    /// Its row is committed (a call is put in its lane before, to keep the arrival order,
    /// and may not run before).
    committed: bool,
}

#[derive(Default)]
struct Lane {
    entries: VecDeque<Entry>,
    running: bool,
}

#[derive(Default)]
struct Lanes {
    lanes: HashMap<String, Lane>,
    /// Ids in the lanes.
    ids: HashSet<i64>,
    last_id: i64,
    running: usize,
}

impl Lanes {
    /// Puts an entry in its place of arrival (by id).
    fn insert(&mut self, webhook: &str, entry: Entry) {
        if !self.ids.insert(entry.id) {
            return;
        }
        let lane = self.lanes.entry(webhook.to_string()).or_default();
        let at = lane
            .entries
            .iter()
            .rposition(|e| e.id < entry.id)
            .map_or(0, |i| i + 1);
        // The running head stays first whatever its id.
        let at = if lane.running { at.max(1) } else { at };
        lane.entries.insert(at.min(lane.entries.len()), entry);
    }

    fn remove(&mut self, webhook: &str, id: i64) {
        if let Some(lane) = self.lanes.get_mut(webhook) {
            // Usually the head: found at once even in a long lane.
            if let Some(at) = lane.entries.iter().position(|e| e.id == id) {
                lane.entries.remove(at);
            }
            if lane.entries.is_empty() && !lane.running {
                self.lanes.remove(webhook);
            }
        }
        self.ids.remove(&id);
    }

    fn depth(&self) -> usize {
        self.ids.len()
    }
}

struct Shared {
    lanes: Mutex<Lanes>,
    wake: Notify,
    /// Runs that ended (for shutdown).
    ended: Notify,
    dead_letters: AtomicU64,
    running: AtomicUsize,
    settings: QueueSettings,
}

/// The queue, as calls and the rest of towerhook see it.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// What `/readyz` and `/metrics` show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueState {
    pub depth: usize,
    pub running: usize,
    pub oldest_age_secs: u64,
    pub dead_letters: u64,
    pub max_calls: usize,
}

impl Queue {
    /// Loads what an earlier run left and starts the runner.
    pub fn start(
        settings: QueueSettings,
        log_store: LogStore,
        pool: Pool,
        registry: Arc<RegistryHandle>,
        metrics: Arc<Metrics>,
        dedup: DedupGuard,
        (stop, tasks): (&CancellationToken, &TaskTracker),
    ) -> rusqlite::Result<Self> {
        let reader = store::open(log_store.path())?;
        let mut lanes = Lanes {
            last_id: store::last_id(&reader)?,
            ..Lanes::default()
        };
        let waiting = store::queued(&reader)?;
        if !waiting.is_empty() {
            tracing::info!(
                "delivery queue: {} call(s) left by an earlier run will run again",
                waiting.len()
            );
        }
        for call in waiting {
            lanes.insert(&call.webhook_reference, entry(&call));
        }
        let shared = Arc::new(Shared {
            lanes: Mutex::new(lanes),
            wake: Notify::new(),
            ended: Notify::new(),
            dead_letters: AtomicU64::new(store::dead_letters(&reader)?),
            running: AtomicUsize::new(0),
            settings,
        });
        // Its own token under the application's: `shutdown` stops taking calls first and
        // lets the runs in progress end within the grace, before everything else stops.
        let stop = stop.child_token();
        let runner = Arc::new(Runner {
            shared: Arc::clone(&shared),
            reader: Mutex::new(reader),
            log_store,
            pool,
            registry,
            metrics,
            dedup,
            tasks: tasks.clone(),
        });
        tasks.spawn(runner.run(stop.clone()));
        Ok(Self { shared, stop })
    }

    /// Whether a new call would exceed `queue_max_calls`.
    pub fn is_full(&self) -> bool {
        self.lock().depth() >= self.shared.settings.max_calls
    }

    /// Queues `call` (with `seen`, the delivery id it makes seen, in the same commit);
    /// returns once both are committed.
    pub async fn enqueue(
        &self,
        log_store: &LogStore,
        mut call: QueuedCall,
        seen: Option<Seen>,
    ) -> Result<(), StoreError> {
        let webhook = call.webhook_reference.clone();
        let (id, committed) = {
            let mut lanes = self.lock();
            lanes.last_id += 1;
            let id = lanes.last_id;
            call.id = id;
            lanes.insert(
                &webhook,
                Entry {
                    id,
                    enqueued_at_ms: call.enqueued_at_ms,
                    attempts: 0,
                    next_at_ms: call.enqueued_at_ms,
                    committed: false,
                },
            );
            // Sent while the lanes are locked: the writer commits calls in id order.
            let committed = log_store.deliver(Write::Enqueue {
                call: Box::new(call),
                seen,
            });
            (id, committed)
        };
        let result = committed.await;
        {
            let mut lanes = self.lock();
            match &result {
                Ok(()) => {
                    if let Some(entry) = lanes
                        .lanes
                        .get_mut(&webhook)
                        // Just put at the back of its lane: found at once.
                        .and_then(|lane| lane.entries.iter_mut().rev().find(|e| e.id == id))
                    {
                        entry.committed = true;
                    }
                }
                Err(_) => lanes.remove(&webhook, id),
            }
        }
        self.shared.wake.notify_one();
        result
    }

    pub fn state(&self) -> QueueState {
        let now = now_ms();
        let lanes = self.lock();
        let oldest = lanes
            .lanes
            .values()
            // Lanes are in arrival order: each one's oldest call is its head.
            .filter_map(|lane| lane.entries.front().map(|e| e.enqueued_at_ms))
            .min();
        QueueState {
            depth: lanes.depth(),
            running: self.shared.running.load(Ordering::Acquire),
            oldest_age_secs: oldest.map_or(0, |at| (now - at).max(0) as u64 / 1000),
            dead_letters: self.shared.dead_letters.load(Ordering::Relaxed),
            max_calls: self.shared.settings.max_calls,
        }
    }

    /// Stops taking calls and waits up to `grace` for the runs in progress (a run cut short
    /// runs again at the next start).
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let ended = self.shared.ended.notified();
            let running = self.shared.running.load(Ordering::Acquire);
            if running == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(
                    "delivery queue: {running} queued call(s) still running at shutdown; they \
                     run again at the next start"
                );
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.shared.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry(call: &Waiting) -> Entry {
    Entry {
        id: call.id,
        enqueued_at_ms: call.enqueued_at_ms,
        attempts: call.attempts,
        next_at_ms: call.next_attempt_at_ms,
        committed: true,
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The wait before run `attempt + 1`, after `attempt` failed runs: `first`, doubling, at
/// most `max`, plus up to a fifth more so that failures do not come back in step.
pub fn backoff(first: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = first.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let base = doubled.min(max.as_secs_f64());
    Duration::from_secs_f64(base * (1.0 + 0.2 * jitter.clamp(0.0, 1.0)))
}

struct Runner {
    shared: Arc<Shared>,
    reader: Mutex<Connection>,
    log_store: LogStore,
    pool: Pool,
    registry: Arc<RegistryHandle>,
    metrics: Arc<Metrics>,
    dedup: DedupGuard,
    /// The application's background tasks: each run is one, awaited on shutdown.
    tasks: TaskTracker,
}

/// How one run ended.
enum Ran {
    Done(String),
    Failed(String),
    /// Not a run: the pool was full or stopping.
    NotRun {
        stopping: bool,
    },
}

impl Runner {
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last_adopt = Instant::now();
        let mut last_prune = Instant::now();
        loop {
            let (due, next) = self.pick(now_ms());
            for (webhook, entry) in due {
                let runner = Arc::clone(&self);
                self.tasks
                    .spawn(async move { runner.run_one(webhook, entry).await });
            }
            let sleep = next
                .map(|at| Duration::from_millis((at - now_ms()).max(1) as u64))
                .unwrap_or(ADOPT_EVERY)
                .min(ADOPT_EVERY);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
            if last_adopt.elapsed() >= ADOPT_EVERY {
                last_adopt = Instant::now();
                self.adopt().await;
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                self.prune();
            }
        }
    }

    /// The lanes whose head is due, marked running (within `parallel`), and when the next
    /// waiting head is due.
    fn pick(&self, now: i64) -> (Vec<(String, Entry)>, Option<i64>) {
        let mut lanes = self.shared.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let parallel = self.shared.settings.parallel.max(1);
        let mut heads: Vec<(i64, String)> = lanes
            .lanes
            .iter()
            .filter(|(_, lane)| !lane.running)
            .filter_map(|(webhook, lane)| {
                let head = lane.entries.front()?;
                head.committed.then(|| (head.next_at_ms, webhook.clone()))
            })
            .collect();
        // The longest waiting first when the parallel runs are all taken.
        heads.sort();
        let mut due = Vec::new();
        let mut next = None;
        for (at, webhook) in heads {
            if at > now || lanes.running >= parallel {
                next = Some(next.map_or(at, |n: i64| n.min(at)));
                continue;
            }
            let Some(lane) = lanes.lanes.get_mut(&webhook) else {
                continue;
            };
            lane.running = true;
            let head = lane.entries.front().cloned().expect("a head was seen");
            lanes.running += 1;
            self.shared.running.fetch_add(1, Ordering::AcqRel);
            due.push((webhook, head));
        }
        (due, next)
    }

    async fn run_one(self: Arc<Self>, webhook_reference: String, entry: Entry) {
        let id = entry.id;
        let loaded = self.read(move |reader| store::call(reader, id)).await;
        let call = match loaded {
            Ok(Some(call)) => call,
            // Gone from the queue (made a dead letter, deleted by hand).
            Ok(None) => return self.finish(&webhook_reference, id, None),
            Err(error) => {
                tracing::error!("delivery queue: cannot read queued call #{id}: {error}");
                let later = now_ms() + STORE_RETRY.as_millis() as i64;
                return self.finish(&webhook_reference, id, Some((entry.attempts, later)));
            }
        };
        let webhook = self
            .registry
            .current()
            .webhooks()
            .iter()
            .find(|w| w.reference == webhook_reference)
            .cloned();
        let webhook = match webhook {
            Some(webhook) if webhook.active => webhook,
            other => {
                let why = if other.is_some() {
                    "is disabled"
                } else {
                    "no longer exists"
                };
                let error = format!(
                    "Webhook code not run: webhook {webhook_reference:?} {why}; kept as a dead \
                     letter (`towerhook queue retry {id}` once it is back)"
                );
                return self.dead(call, entry.attempts, error).await;
            }
        };
        let started = Instant::now();
        let ran = self.execute(&webhook, &call).await;
        match ran {
            Ran::Done(message) => {
                let attempts = entry.attempts + 1;
                let mut record = completed(&call.record, attempts);
                record.code_status = CodeStatus::Success;
                record.result_message = Some(message);
                self.access_line(&call, "done", attempts, started);
                self.metrics
                    .delivery
                    .queue_runs
                    .with_label_values(&["done"])
                    .inc();
                let write = || Write::Done {
                    id,
                    record: Box::new(record.clone()),
                };
                if self.end(write).await {
                    self.finish(&webhook_reference, id, None);
                } else {
                    self.release(&webhook_reference);
                }
            }
            Ran::Failed(error) => {
                let attempts = entry.attempts + 1;
                if u64::from(attempts) > webhook.delivery.retries() {
                    let error = format!("{error} (dead letter after {attempts} attempt(s))");
                    self.access_line(&call, "dead", attempts, started);
                    return self.dead(call, attempts, error).await;
                }
                let settings = &self.shared.settings;
                let wait = backoff(settings.first_retry, settings.max_retry, attempts, jitter());
                let next = now_ms() + wait.as_millis() as i64;
                tracing::warn!(
                    "delivery queue: call {} to {} failed (attempt {attempts}), next run in \
                     {:.1} s: {error}",
                    call.request_id,
                    call.endpoint,
                    wait.as_secs_f64()
                );
                self.metrics
                    .delivery
                    .queue_runs
                    .with_label_values(&["retried"])
                    .inc();
                let _ = self
                    .log_store
                    .deliver(Write::Retry {
                        id,
                        attempts,
                        next_attempt_at_ms: next,
                        error,
                    })
                    .await;
                self.finish(&webhook_reference, id, Some((attempts, next)));
            }
            Ran::NotRun { stopping } => {
                let later = now_ms() + POOL_BUSY_WAIT.as_millis() as i64;
                if stopping {
                    self.release(&webhook_reference);
                } else {
                    self.finish(&webhook_reference, id, Some((entry.attempts, later)));
                }
            }
        }
    }

    /// Runs the webhook code (not the authenticator) of a queued call.
    async fn execute(&self, webhook: &Webhook, call: &QueuedCall) -> Ran {
        let payload: Value = serde_json::from_str(&call.payload).unwrap_or(Value::Null);
        let result = self
            .pool
            .call(
                super::code_only(webhook),
                call.headers.clone(),
                call.body.clone(),
                &payload,
                call.context.clone(),
                Origin::DeliveryQueue,
            )
            .await;
        match result {
            Ok(verdict) => {
                self.metrics
                    .snippet_seconds
                    .observe(verdict.micros as f64 / 1e6);
                match verdict.outcome {
                    Outcome::Ok => Ran::Done(verdict.message_text),
                    Outcome::CodeFailed | Outcome::AuthFailed => Ran::Failed(verdict.message_text),
                }
            }
            Err(PoolError::Overloaded) => Ran::NotRun { stopping: false },
            Err(PoolError::Stopped) => Ran::NotRun { stopping: true },
            Err(PoolError::TimedOut { .. }) => Ran::Failed(format!(
                "Webhook code execution error: execution timed out after {} s",
                self.shared.settings.snippet_timeout_secs
            )),
            Err(PoolError::WorkerDied { cause, .. }) => Ran::Failed(format!(
                "Webhook code execution error: the code ended its worker process: {cause}"
            )),
            Err(PoolError::Worker(error)) => Ran::Failed(format!(
                "Internal error in towerhook (request {}): {error}",
                call.request_id
            )),
        }
    }

    /// Makes `call` a dead letter, with its log record.
    async fn dead(&self, call: QueuedCall, attempts: u32, error: String) {
        let mut record = completed(&call.record, attempts);
        record.code_status = CodeStatus::Failed;
        record.error_message = Some(error.clone());
        tracing::error!(
            "delivery queue: call {} to {} is a dead letter: {error}",
            call.request_id,
            call.endpoint
        );
        self.metrics
            .delivery
            .queue_runs
            .with_label_values(&["dead"])
            .inc();
        let id = call.id;
        let write = || Write::Dead {
            id,
            attempts,
            error: error.clone(),
            record: Box::new(record.clone()),
        };
        if self.end(write).await {
            self.shared.dead_letters.fetch_add(1, Ordering::Relaxed);
            self.finish(&call.webhook_reference, id, None);
        } else {
            self.release(&call.webhook_reference);
        }
    }

    /// Commits a call's end, asking again while the store refuses; false when stopping
    /// first (the call then runs again at the next start).
    async fn end(&self, write: impl Fn() -> Write) -> bool {
        loop {
            match self.log_store.deliver(write()).await {
                Ok(()) => return true,
                Err(StoreError::Stopped) => return false,
                Err(error) => {
                    tracing::error!(
                        "delivery queue: cannot commit a call's end: {error}; retrying"
                    );
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        }
    }

    /// The run is over: the call leaves its lane (`None`) or waits for its next run.
    fn finish(&self, webhook: &str, id: i64, again: Option<(u32, i64)>) {
        {
            let mut lanes = self.shared.lanes.lock().unwrap_or_else(|e| e.into_inner());
            match again {
                Some((attempts, next_at_ms)) => {
                    if let Some(head) = lanes
                        .lanes
                        .get_mut(webhook)
                        .and_then(|lane| lane.entries.iter_mut().find(|e| e.id == id))
                    {
                        head.attempts = attempts;
                        head.next_at_ms = next_at_ms;
                    }
                }
                None => lanes.remove(webhook, id),
            }
        }
        self.release(webhook);
    }

    /// The lane may run again.
    fn release(&self, webhook: &str) {
        {
            let mut lanes = self.shared.lanes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lane) = lanes.lanes.get_mut(webhook) {
                lane.running = false;
                if lane.entries.is_empty() {
                    lanes.lanes.remove(webhook);
                }
            }
            lanes.running = lanes.running.saturating_sub(1);
        }
        self.shared.running.fetch_sub(1, Ordering::AcqRel);
        self.shared.ended.notify_waiters();
        self.shared.wake.notify_one();
    }

    /// Takes in the calls `towerhook queue retry` put back, and refreshes the dead letters'
    /// count (the command changes it too).
    async fn adopt(self: &Arc<Self>) {
        let found = self
            .read(|reader| Ok((store::requeued(reader)?, store::dead_letters(reader)?)))
            .await;
        let (requeued, dead) = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!("delivery queue: cannot look for calls put back: {error}");
                return;
            }
        };
        self.shared.dead_letters.store(dead, Ordering::Relaxed);
        if requeued.is_empty() {
            return;
        }
        let ids = requeued.iter().map(|call| call.id).collect();
        {
            let mut lanes = self.shared.lanes.lock().unwrap_or_else(|e| e.into_inner());
            for call in &requeued {
                lanes.insert(&call.webhook_reference, entry(call));
            }
        }
        tracing::info!(
            "delivery queue: {} call(s) put back by `towerhook queue retry`",
            requeued.len()
        );
        let _ = self.log_store.deliver(Write::Adopted { ids }).await;
        self.shared.wake.notify_one();
    }

    fn prune(&self) {
        let now = now_ms();
        self.dedup.prune(now);
        let retention = i64::from(self.log_store.retention_days());
        // Not awaited: nothing waits for it.
        drop(self.log_store.deliver(Write::Prune {
            now_ms: now,
            dead_before_ms: now - retention * 24 * 3600 * 1000,
        }));
    }

    async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> rusqlite::Result<R> {
        let runner = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            work(&runner.reader.lock().unwrap_or_else(|e| e.into_inner()))
        })
        .await
        .unwrap_or_else(|e| Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
    }

    fn access_line(&self, call: &QueuedCall, result: &str, attempts: u32, started: Instant) {
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "towerhook::queue",
            request_id = call.request_id.as_str(),
            endpoint = call.endpoint.as_str(),
            result = result,
            attempts = attempts,
            duration_ms = (millis * 10.0).round() / 10.0,
            "queued {} {result} after {attempts} attempt(s), {:.1} ms",
            call.endpoint,
            millis
        );
    }
}

/// The accept-time record of a queued call, with its number of runs among its headers.
fn completed(accepted: &LogRecord, attempts: u32) -> LogRecord {
    let mut record = accepted.clone();
    record.authentication_status = AuthenticationStatus::Success;
    if let Ok(Value::Object(mut headers)) = serde_json::from_str(&record.request_headers) {
        headers.insert(ATTEMPTS_HEADER.into(), Value::String(attempts.to_string()));
        record.request_headers = Value::Object(headers).to_string();
    }
    record
}

/// A number in [0, 1) that differs between calls.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_at_most_a_fifth_more() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (1..=6)
            .map(|n| backoff(first, max, n, 0.0).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(first, max, 3, 1.0), Duration::from_secs_f64(4.8));
    }

    #[test]
    fn lanes_keep_arrival_order_behind_a_running_head() {
        let mut lanes = Lanes::default();
        let at = |id| Entry {
            id,
            enqueued_at_ms: id,
            attempts: 0,
            next_at_ms: 0,
            committed: true,
        };
        lanes.insert("hook", at(5));
        lanes.insert("hook", at(7));
        lanes.lanes.get_mut("hook").unwrap().running = true;
        // Put back by hand: older than the running head, but runs after it.
        lanes.insert("hook", at(2));
        lanes.insert("hook", at(6));
        let order: Vec<i64> = lanes.lanes["hook"].entries.iter().map(|e| e.id).collect();
        assert_eq!(order, [5, 2, 6, 7]);
        lanes.insert("hook", at(6));
        assert_eq!(lanes.depth(), 4);
    }
}
