//! Ships the outbox to Odoo: pending log records, oldest first, in batches, as
//! `cx.tower.webhook.log` records.
//!
//! Delivery is at least once. A batch is marked shipped only after Odoo answered; a crash in
//! between re-sends that one batch (with the companion addon its request ids make the
//! re-send harmless). Transport failures and 5xx answers are retried with backoff and
//! jitter without reordering. A batch Odoo refuses is shipped record by record; a record
//! refused alone is tried once more without its references to Odoo records (a webhook
//! deleted meanwhile), then kept as a dead letter (`towerhook outbox list|retry`). Missing
//! rights stop shipping with one clear message; the records wait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration::{Settings, SyncMode};
use crate::logs::record::LogRecord;
use crate::logs::store::{OutboxGauge, open_connection};
use crate::odoo::{Call, ErrorKind, OdooClient, OdooError, OdooLink};

pub use crate::odoo::models::{ADDON_CREATE_LOGS as ADDON_CREATE, LOG_MODEL};

const IDLE: Duration = Duration::from_millis(100);
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// How long a reference → id answer is reused.
const REFERENCE_CACHE_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct ShipperSettings {
    pub store: PathBuf,
    pub sync: SyncMode,
    pub batch_size: usize,
    pub batch_age: Duration,
    pub retry_max: Duration,
}

impl ShipperSettings {
    pub fn from(settings: &Settings) -> Self {
        Self {
            store: settings.log_store_path(),
            sync: settings.log_store_sync,
            batch_size: settings.outbox_batch_size,
            batch_age: Duration::from_millis(settings.outbox_batch_age_ms),
            retry_max: Duration::from_secs_f64(settings.outbox_retry_max_secs),
        }
    }
}

/// What the shipper is doing, for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct ShipperStatus {
    problem: Mutex<Option<String>>,
    pub shipped: AtomicU64,
    pub dead_letters: AtomicU64,
    pub failures: AtomicU64,
}

impl ShipperStatus {
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the problem; true when it is new (worth a log line).
    fn set_problem(&self, problem: Option<String>) -> bool {
        let mut current = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *current != problem;
        *current = problem;
        changed
    }
}

/// The running shipper: what it is doing.
pub struct ShipperHandle {
    pub status: Arc<ShipperStatus>,
}

/// Why the shipper could not start.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {source}")]
pub struct ShipperError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// Starts the shipper as a task of the Odoo runtime (`runtime`), tracked by `tasks` and
/// stopped by `stop`: a batch whose answer was not in yet when it stops is sent again by
/// the next start (at least once). Its SQLite work runs on that runtime's blocking
/// threads.
pub fn start(
    settings: ShipperSettings,
    link: Arc<OdooLink>,
    gauge: Arc<OutboxGauge>,
    runtime: &Handle,
    (stop, tasks): (&CancellationToken, &TaskTracker),
) -> Result<ShipperHandle, ShipperError> {
    let connection =
        open_connection(&settings.store, settings.sync).map_err(|source| ShipperError {
            path: settings.store.clone(),
            source,
        })?;
    let status = Arc::new(ShipperStatus::default());
    let shipper = Shipper {
        settings,
        store: Store(Arc::new(Mutex::new(connection))),
        link,
        gauge,
        status: Arc::clone(&status),
        writer: None,
        references: HashMap::new(),
        delay: FIRST_RETRY,
    };
    tasks.spawn_on(shipper.run(stop.child_token()), runtime);
    Ok(ShipperHandle { status })
}

/// The outbox's connection, used off the runtime's worker threads.
#[derive(Clone)]
struct Store(Arc<Mutex<Connection>>);

impl Store {
    async fn with<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> R + Send + 'static,
    ) -> R {
        let connection = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            work(&mut connection.lock().unwrap_or_else(|e| e.into_inner()))
        })
        .await
        .expect("outbox database work does not panic")
    }
}

/// How records are created in Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogWriter {
    /// The companion addon's group-guarded method: idempotent by request id.
    Addon,
    /// Plain `create`: needs an access rule granting create (`towerhook odoo-setup`).
    Create,
}

/// A pending record as read back from the outbox.
#[derive(Debug, Clone)]
struct Pending {
    id: i64,
    record: LogRecord,
    size: i64,
}

struct Shipper {
    settings: ShipperSettings,
    store: Store,
    link: Arc<OdooLink>,
    gauge: Arc<OutboxGauge>,
    status: Arc<ShipperStatus>,
    /// How the current client creates logs (found out once per client).
    writer: Option<(Arc<OdooClient>, LogWriter)>,
    /// (model, reference or country code) → Odoo id, for records without ids.
    references: HashMap<(&'static str, String), (Option<i64>, Instant)>,
    /// Wait before the next attempt after a failure.
    delay: Duration,
}

/// Why a shipping round stopped.
enum Stop {
    /// Try again later (Odoo unreachable, rights missing, ...).
    Later(OdooError),
}

impl Shipper {
    async fn run(mut self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                wait = self.round() => {
                    if let Some(wait) = wait {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
    }

    /// Ships one batch if one is due; how long to wait before the next round.
    async fn round(&mut self) -> Option<Duration> {
        let (batch_size, batch_age) = (self.settings.batch_size, self.settings.batch_age);
        let batch = self
            .store
            .with(move |connection| next_batch(connection, batch_size, batch_age))
            .await;
        let batch = match batch {
            Ok(Some(batch)) => batch,
            Ok(None) => return Some(IDLE),
            Err(error) => {
                tracing::error!("outbox: cannot read pending records: {error}");
                return Some(Duration::from_secs(1));
            }
        };
        match self.ship(&batch).await {
            Ok(()) => {
                self.delay = FIRST_RETRY;
                if self.status.set_problem(None) {
                    tracing::info!("outbox: shipping to Odoo again");
                }
                None
            }
            Err(Stop::Later(error)) => Some(self.wait_after(&error, &batch).await),
        }
    }
}

/// The oldest pending records, once there are enough of them or the oldest is old enough.
fn next_batch(
    connection: &mut Connection,
    batch_size: usize,
    batch_age: Duration,
) -> rusqlite::Result<Option<Vec<Pending>>> {
    let mut query = connection.prepare_cached(&format!(
        "SELECT id, size, {} FROM webhook_log WHERE ship_state = 'pending' ORDER BY id LIMIT ?1",
        super::schema::record_column_list()
    ))?;
    let batch: Vec<Pending> = query
        .query_map([batch_size as i64], |row| {
            Ok(Pending {
                id: row.get(0)?,
                size: row.get(1)?,
                record: super::schema::record(row, 2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    if batch.is_empty() {
        return Ok(None);
    }
    let full = batch.len() >= batch_size;
    let old_enough = age(&batch[0].record.create_date) >= batch_age;
    Ok((full || old_enough).then_some(batch))
}

impl Shipper {
    async fn ship(&mut self, batch: &[Pending]) -> Result<(), Stop> {
        let client = self.client().await?;
        let writer = self.writer(&client).await?;
        let mut values = Vec::with_capacity(batch.len());
        for record in batch {
            values.push(
                self.values(&client, record, writer, true)
                    .await
                    .map_err(Stop::Later)?,
            );
        }
        match self.create(&client, writer, values).await {
            Ok(ids) => {
                self.mark_shipped(batch, &ids).await;
                Ok(())
            }
            Err(error) if rejected(&error) && batch.len() > 1 => {
                // Somebody in the batch is refused: find out who, keeping the order.
                for record in batch {
                    self.ship_alone(&client, writer, record).await?;
                }
                Ok(())
            }
            Err(error) if rejected(&error) => self.ship_alone(&client, writer, &batch[0]).await,
            Err(error) => Err(Stop::Later(error)),
        }
    }

    /// One record: as is, then once without references to Odoo records, then dead.
    async fn ship_alone(
        &mut self,
        client: &Arc<OdooClient>,
        writer: LogWriter,
        record: &Pending,
    ) -> Result<(), Stop> {
        let mut last = None;
        for with_references in [true, false] {
            let values = self
                .values(client, record, writer, with_references)
                .await
                .map_err(Stop::Later)?;
            match self.create(client, writer, vec![values]).await {
                Ok(ids) => {
                    if !with_references {
                        tracing::warn!(
                            "outbox: log of call {} created without its webhook, authenticator \
                             and user references ({})",
                            record.record.request_id,
                            last.as_ref().map(ToString::to_string).unwrap_or_default()
                        );
                    }
                    self.mark_shipped(std::slice::from_ref(record), &ids).await;
                    return Ok(());
                }
                Err(error) if rejected(&error) => last = Some(error),
                Err(error) => return Err(Stop::Later(error)),
            }
        }
        let error = last.map(|e| e.to_string()).unwrap_or_default();
        tracing::error!(
            "outbox: Odoo refuses the log of call {} ({} {}): {error}; kept as a dead letter \
             (towerhook outbox list / retry)",
            record.record.request_id,
            record.record.request_method,
            record.record.endpoint
        );
        let (id, gauge) = (record.id, Arc::clone(&self.gauge));
        let size = record.size.max(0) as u64;
        let kept = self
            .store
            .with(move |connection| {
                connection.execute(
                    "UPDATE webhook_log SET ship_state = 'dead', attempts = attempts + 1,
                        last_error = ?2
                     WHERE id = ?1",
                    params![id, error],
                )
            })
            .await;
        match kept {
            // A dead letter no longer waits for Odoo: it leaves the outbox's bound, and is
            // pruned after the retention days, as Odoo would have deleted its log by then.
            Ok(_) => gauge.remove(1, size),
            Err(e) => tracing::error!("outbox: cannot keep the dead letter: {e}"),
        }
        self.status.dead_letters.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn client(&mut self) -> Result<Arc<OdooClient>, Stop> {
        self.link.client().await.map_err(Stop::Later)
    }

    /// The way the client's user may create logs: the addon's method when it is installed.
    async fn writer(&mut self, client: &Arc<OdooClient>) -> Result<LogWriter, Stop> {
        if let Some((known, writer)) = &self.writer
            && Arc::ptr_eq(known, client)
        {
            return Ok(*writer);
        }
        let probe = client
            .execute(&Call::model(LOG_MODEL, ADDON_CREATE).arg(json!([])))
            .await;
        let writer = match probe {
            Ok(_) => LogWriter::Addon,
            Err(OdooError::Server(error)) if error.name.ends_with("AttributeError") => {
                LogWriter::Create
            }
            // Installed, but the user is not in its group: creating will say what to do.
            Err(error) if error.kind() == Some(ErrorKind::AccessError) => LogWriter::Addon,
            Err(error) => return Err(Stop::Later(error)),
        };
        tracing::info!(
            "outbox: creating logs in Odoo with {}",
            match writer {
                LogWriter::Addon => "the companion addon (cetmix_tower_webhook_sidecar)",
                LogWriter::Create => "plain create (no companion addon)",
            }
        );
        self.writer = Some((Arc::clone(client), writer));
        Ok(writer)
    }

    async fn create(
        &self,
        client: &OdooClient,
        writer: LogWriter,
        values: Vec<Value>,
    ) -> Result<Vec<Option<i64>>, OdooError> {
        let count = values.len();
        let call = match writer {
            LogWriter::Addon => Call::model(LOG_MODEL, ADDON_CREATE).arg(Value::Array(values)),
            LogWriter::Create => Call::model(LOG_MODEL, "create").arg(Value::Array(values)),
        };
        let answer = client.execute(&call).await?;
        // A list of ids (one per record), or one id for a single record.
        Ok(match answer {
            Value::Array(ids) => ids.iter().map(Value::as_i64).collect(),
            Value::Number(id) => vec![id.as_i64()],
            _ => vec![None; count],
        })
    }

    /// Odoo's values for a record; `with_references` false drops the many2one fields that
    /// may point at records deleted meanwhile.
    async fn values(
        &mut self,
        client: &OdooClient,
        pending: &Pending,
        writer: LogWriter,
        with_references: bool,
    ) -> Result<Value, OdooError> {
        let record = &pending.record;
        let text = |value: &Option<String>| value.clone().map_or(Value::Bool(false), Value::String);
        let mut values = Map::new();
        let (webhook, authenticator, user) = if with_references {
            (
                match record.webhook_id {
                    Some(id) => Some(id),
                    None => {
                        self.resolve(client, "cx.tower.webhook", &record.webhook_reference)
                            .await?
                    }
                },
                match record.authenticator_id {
                    Some(id) => Some(id),
                    None => {
                        self.resolve(
                            client,
                            "cx.tower.webhook.authenticator",
                            &record.authenticator_reference,
                        )
                        .await?
                    }
                },
                record.user_id,
            )
        } else {
            (None, None, None)
        };
        let id_or_false = |id: Option<i64>| id.map_or(Value::Bool(false), Value::from);
        values.insert("webhook_id".into(), id_or_false(webhook));
        values.insert("endpoint".into(), json!(record.endpoint));
        values.insert("authenticator_id".into(), id_or_false(authenticator));
        values.insert("request_method".into(), json!(record.request_method));
        values.insert("request_headers".into(), json!(record.request_headers));
        values.insert("request_payload".into(), text(&record.request_payload));
        values.insert(
            "authentication_status".into(),
            json!(record.authentication_status),
        );
        values.insert("code_status".into(), json!(record.code_status));
        values.insert("http_status".into(), json!(record.http_status));
        values.insert("result_message".into(), text(&record.result_message));
        values.insert("error_message".into(), text(&record.error_message));
        values.insert("user_id".into(), id_or_false(user));
        values.insert("ip_address".into(), text(&record.ip_address));
        let country = self
            .resolve(client, "res.country", &record.country_code)
            .await?;
        values.insert("country_id".into(), id_or_false(country));
        if writer == LogWriter::Addon {
            values.insert("towerhook_uid".into(), json!(record.request_id));
            values.insert(
                "towerhook_call_time".into(),
                json!(record.create_date.get(..19).unwrap_or(&record.create_date)),
            );
        }
        Ok(Value::Object(values))
    }

    /// The id of the record with that reference (country: code), cached for a while.
    async fn resolve(
        &mut self,
        client: &OdooClient,
        model: &'static str,
        key: &Option<String>,
    ) -> Result<Option<i64>, OdooError> {
        let Some(key) = key.as_deref().filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        if let Some((id, at)) = self.references.get(&(model, key.to_string()))
            && at.elapsed() < REFERENCE_CACHE_FOR
        {
            return Ok(*id);
        }
        let field = if model == "res.country" {
            "code"
        } else {
            "reference"
        };
        let found = client
            .execute(
                &Call::model(model, "search")
                    .arg(json!([[field, "=", key]]))
                    .kwarg("limit", json!(1))
                    .kwarg("context", json!({"active_test": false})),
            )
            .await?;
        let id = found.get(0).and_then(Value::as_i64);
        self.references
            .insert((model, key.to_string()), (id, Instant::now()));
        Ok(id)
    }

    async fn mark_shipped(&mut self, batch: &[Pending], ids: &[Option<i64>]) {
        let shipped_at = crate::logs::record::timestamp_now();
        let rows: Vec<(i64, Option<i64>)> = batch
            .iter()
            .enumerate()
            .map(|(index, record)| (record.id, ids.get(index).copied().flatten()))
            .collect();
        let result = self
            .store
            .with(move |connection| -> rusqlite::Result<()> {
                let transaction = connection.transaction()?;
                {
                    let mut update = transaction.prepare_cached(
                        "UPDATE webhook_log SET ship_state = 'shipped', odoo_id = ?2,
                            shipped_at = ?3, attempts = attempts + 1, last_error = NULL
                         WHERE id = ?1",
                    )?;
                    for (id, odoo_id) in rows {
                        update.execute(params![id, odoo_id, shipped_at])?;
                    }
                }
                transaction.commit()
            })
            .await;
        match result {
            Ok(()) => {
                let bytes: i64 = batch.iter().map(|r| r.size).sum();
                self.gauge.remove(batch.len() as u64, bytes.max(0) as u64);
                self.status
                    .shipped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            // Odoo has them: a later re-send is the at-least-once duplicate.
            Err(error) => tracing::error!("outbox: shipped records could not be marked: {error}"),
        }
    }

    /// Notes the failure, saying once what is wrong and how to fix it; how long to back
    /// off.
    async fn wait_after(&mut self, error: &OdooError, batch: &[Pending]) -> Duration {
        self.status.failures.fetch_add(1, Ordering::Relaxed);
        let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
        let text = error.to_string();
        let noted = self
            .store
            .with(move |connection| {
                connection.execute(
                    &format!(
                        "UPDATE webhook_log SET attempts = attempts + 1, last_error = ?1
                         WHERE id IN ({})",
                        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
                    ),
                    [text],
                )
            })
            .await;
        if let Err(e) = noted {
            tracing::error!("outbox: cannot note the failed attempt: {e}");
        }
        let problem = operator_message(error, &self.link);
        if self.status.set_problem(Some(problem.clone())) {
            tracing::error!("outbox: {problem}");
        }
        self.link.report(error).await;
        if matches!(error, OdooError::LoginRefused { .. })
            || error.kind() == Some(ErrorKind::AccessDenied)
        {
            self.writer = None;
        }
        let wait = jittered(self.delay);
        self.delay = (self.delay * 2).min(self.settings.retry_max);
        wait
    }
}

/// Odoo refused these values (as opposed to: could not be reached, or rights are missing).
fn rejected(error: &OdooError) -> bool {
    match error.kind() {
        Some(ErrorKind::ValidationError | ErrorKind::UserError | ErrorKind::MissingError) => true,
        Some(ErrorKind::Other) => {
            !matches!(error, OdooError::Server(e) if e.name.contains("OperationalError"))
        }
        _ => false,
    }
}

/// What an operator should read when shipping stops.
fn operator_message(error: &OdooError, link: &OdooLink) -> String {
    let login = &link.settings().login;
    match error.kind() {
        Some(ErrorKind::AccessError) => format!(
            "log records wait in the outbox: Odoo's user {login:?} may not create \
             cx.tower.webhook.log records ({error}). Fix: install the companion addon \
             cetmix_tower_webhook_sidecar and add {login:?} to its group \"Cetmix Tower / \
             Webhook Sidecar\", or run `towerhook odoo-setup --admin-login <admin>` to grant \
             create on the log model"
        ),
        _ => format!("log records wait in the outbox: {error}"),
    }
}

/// Age of a record from its `create_date` (UTC text).
fn age(create_date: &str) -> Duration {
    chrono::NaiveDateTime::parse_from_str(create_date, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .and_then(|created| (chrono::Utc::now().naive_utc() - created).to_std().ok())
        .unwrap_or(Duration::MAX)
}

/// 50–100 % of `delay`: replicas that failed together do not retry together.
fn jittered(delay: Duration) -> Duration {
    let fraction = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
    delay.mul_f64(fraction)
}

/// One dead letter (or pending record), for `towerhook outbox list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub request_id: String,
    pub create_date: String,
    pub state: String,
    pub request_method: String,
    pub endpoint: String,
    pub http_status: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Records per state, and the entries in the states asked for.
pub struct OutboxListing {
    pub counts: Vec<(String, i64)>,
    pub entries: Vec<OutboxEntry>,
}

/// Counts by state and the dead letters, for the CLI.
pub fn list(store: &Path, states: &[&str]) -> rusqlite::Result<OutboxListing> {
    let connection = Connection::open(store)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let mut counts = connection
        .prepare("SELECT ship_state, COUNT(*) FROM webhook_log GROUP BY ship_state ORDER BY 1")?;
    let counts = counts
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
    let placeholders = states.iter().map(|_| "?").collect::<Vec<_>>().join(",");
    let mut query = connection.prepare(&format!(
        "SELECT id, request_id, create_date, ship_state, request_method, endpoint, http_status,
            attempts, last_error
         FROM webhook_log WHERE ship_state IN ({placeholders}) ORDER BY id"
    ))?;
    let entries = query
        .query_map(rusqlite::params_from_iter(states.iter()), |row| {
            Ok(OutboxEntry {
                id: row.get(0)?,
                request_id: row.get(1)?,
                create_date: row.get(2)?,
                state: row.get(3)?,
                request_method: row.get(4)?,
                endpoint: row.get(5)?,
                http_status: row.get(6)?,
                attempts: row.get(7)?,
                last_error: row.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(OutboxListing { counts, entries })
}

/// Moves dead letters (all, or those ids) back to pending; how many.
pub fn retry(store: &Path, ids: &[i64]) -> rusqlite::Result<usize> {
    let connection = Connection::open(store)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    if ids.is_empty() {
        return connection.execute(
            "UPDATE webhook_log SET ship_state = 'pending', attempts = 0 WHERE ship_state = 'dead'",
            [],
        );
    }
    let mut moved = 0;
    for id in ids {
        moved += connection.execute(
            "UPDATE webhook_log SET ship_state = 'pending', attempts = 0
             WHERE ship_state = 'dead' AND id = ?1",
            [id],
        )?;
    }
    Ok(moved)
}
