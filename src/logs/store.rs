//! The local SQLite store of call logs, which is also the outbox of the Odoo log sink.
//!
//! One writer thread owns the connection. Calls hand it their record and wait; it commits
//! everything that arrived meanwhile in one transaction (group commit: concurrent calls
//! share one fsync) and then answers each of them, so a record is durable before its
//! response leaves. A failed commit is reported (logs, `/readyz`) and retried; the calls
//! are answered anyway, as the module never lets logging break a response.
//!
//! With the Odoo sink a record is `pending` until the shipper (`outbox.rs`) has it created
//! in Odoo, then `shipped` (and pruned an hour later), or `dead` when Odoo refuses it for
//! good. With the local sink records stay `local` and are pruned after the retention.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::configuration::SyncMode;
use crate::logs::record::LogRecord;

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 1024;
/// Records held in memory while the disk refuses them, beyond which new calls are refused
/// (503): a record once accepted is never dropped.
const MAX_HELD: usize = 100_000;
const RETRY_EVERY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often an idle writer looks at its chores (pruning, a changed retention).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A write-ahead log longer than this (pages of 4 kB: 256 MB) is cut back even if the
/// writer must wait for it: under steady load a passive checkpoint may never find a
/// moment to let the log start over.
const WAL_PAGES_LIMIT: i64 = 65_536;

/// How the store is used.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub sync: SyncMode,
    pub retention_days: u32,
    /// Records go to Odoo (`pending`) rather than staying local.
    pub ship: bool,
    /// Bound of the records not yet in Odoo, and of those held in memory while the disk
    /// refuses them; beyond it new calls are refused.
    pub max_unshipped_records: u64,
    pub max_unshipped_bytes: u64,
}

impl StoreOptions {
    pub fn from_settings(settings: &crate::configuration::Settings) -> Self {
        Self {
            sync: settings.log_store_sync,
            retention_days: settings.retention_days,
            ship: settings.log_sink == crate::configuration::SinkKind::Odoo,
            max_unshipped_records: settings.outbox_max_records,
            max_unshipped_bytes: settings.outbox_max_bytes,
        }
    }
}

/// Records not yet in Odoo, kept current by the writer and the shipper. Dead letters are
/// not counted: they no longer wait for Odoo.
#[derive(Debug, Default)]
pub struct OutboxGauge {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    max_records: u64,
    max_bytes: u64,
}

impl OutboxGauge {
    /// Why a new call cannot be accepted, if the outbox is full.
    pub fn full(&self) -> Option<String> {
        let (records, bytes) = (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        if self.max_records > 0 && records >= self.max_records {
            return Some(format!(
                "the outbox holds {records} records not yet in Odoo (outbox_max_records = {})",
                self.max_records
            ));
        }
        if self.max_bytes > 0 && bytes >= self.max_bytes {
            return Some(format!(
                "the outbox holds {bytes} bytes not yet in Odoo (outbox_max_bytes = {})",
                self.max_bytes
            ));
        }
        None
    }

    pub fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn remove(&self, records: u64, bytes: u64) {
        let _ = self
            .records
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(records))
            });
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(bytes))
            });
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("log store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("log record not committed: {0}")]
    Commit(String),
    #[error("the log store has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

// Nearly every message is an Append: boxing it would only add an allocation per call.
#[allow(clippy::large_enum_variant)]
enum Message {
    Append(LogRecord, Reply),
    /// towerhook extension (src/delivery/store.rs): a change to the delivery queue or the
    /// duplicate guard, committed in the same group commit as log records.
    Delivery(crate::logs::delivery_store::Write, Reply),
    /// Commit everything sent before, then stop.
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct LogStore {
    sender: Sender<Message>,
    health: Arc<Mutex<Option<String>>>,
    /// Records the disk refused, held in memory by the writer until a commit succeeds.
    held: Arc<AtomicUsize>,
    max_held: usize,
    retention_days: Arc<AtomicU32>,
    outbox: Arc<OutboxGauge>,
    path: PathBuf,
}

impl LogStore {
    /// Opens (creating if needed) the store and starts its writer thread. Records older
    /// than `retention_days` are pruned now and every hour, unless not yet in Odoo.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_error(format!("cannot create directory: {e}")))?;
        }
        let connection =
            open_connection(path, options.sync).map_err(|e| open_error(e.to_string()))?;
        // Checkpoints (copying the write-ahead log into the database, with an fsync of the
        // database file) run on their own thread: inside a commit, as SQLite does by
        // default, one stalls every caller waiting for that commit for as long as the disk
        // takes (hundreds of milliseconds were seen on a virtual machine's disk).
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| open_error(e.to_string()))?;
        let checkpointer = Checkpointer::start(path, options.sync)
            .map_err(|e| open_error(format!("cannot start the checkpointer: {e}")))?;
        let (records, bytes) = unshipped(&connection).map_err(|e| open_error(e.to_string()))?;
        let outbox = Arc::new(OutboxGauge {
            records: AtomicU64::new(records),
            bytes: AtomicU64::new(bytes),
            max_records: options.max_unshipped_records,
            max_bytes: options.max_unshipped_bytes,
        });
        let (sender, receiver) = crossbeam_channel::unbounded();
        let health = Arc::new(Mutex::new(None));
        let held = Arc::new(AtomicUsize::new(0));
        let retention_days = Arc::new(AtomicU32::new(options.retention_days));
        let writer = Writer {
            connection,
            receiver,
            health: Arc::clone(&health),
            held: Arc::clone(&held),
            retention_days: Arc::clone(&retention_days),
            outbox: Arc::clone(&outbox),
            initial_state: if options.ship { "pending" } else { "local" },
            retry: Vec::new(),
            last_prune: None,
            checkpointer: Some(checkpointer),
        };
        thread::Builder::new()
            .name("towerhook-log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| open_error(format!("cannot start writer: {e}")))?;
        let max_held = match options.max_unshipped_records {
            0 => MAX_HELD,
            bound => MAX_HELD.min(bound as usize),
        };
        Ok(Self {
            sender,
            health,
            held,
            max_held,
            retention_days,
            outbox,
            path: path.to_path_buf(),
        })
    }

    /// Dead letters, and the age of the oldest record waiting for Odoo (for metrics).
    pub fn outbox_details(&self) -> rusqlite::Result<(i64, Option<Duration>)> {
        let connection = Connection::open(&self.path)?;
        connection.busy_timeout(Duration::from_secs(2))?;
        let dead: i64 = connection.query_row(
            "SELECT COUNT(*) FROM webhook_log WHERE ship_state = 'dead'",
            [],
            |row| row.get(0),
        )?;
        let oldest: Option<String> = connection
            .query_row(
                "SELECT create_date FROM webhook_log WHERE ship_state = 'pending' ORDER BY id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        let age = oldest.and_then(|created| {
            let created =
                chrono::NaiveDateTime::parse_from_str(&created, "%Y-%m-%d %H:%M:%S%.f").ok()?;
            (chrono::Utc::now().naive_utc() - created).to_std().ok()
        });
        Ok((dead, age))
    }

    /// The records not yet in Odoo and their bound.
    pub fn outbox(&self) -> &Arc<OutboxGauge> {
        &self.outbox
    }

    /// Why a new call cannot be accepted, if it cannot: its record could not be kept. The
    /// outbox is full, or the disk has refused records for so long that the writer holds
    /// too many in memory. Calls already accepted are never dropped.
    pub fn refuses_new_calls(&self) -> Option<String> {
        let held = self.held.load(Ordering::Relaxed);
        if held >= self.max_held {
            return Some(format!(
                "the log store cannot commit and holds {held} records in memory ({})",
                self.health_problem().unwrap_or_default()
            ));
        }
        self.outbox.full()
    }

    /// Retention from now on (Odoo's "Keep Webhook Logs for (days)" when readable).
    pub fn set_retention_days(&self, days: u32) {
        self.retention_days.store(days, Ordering::Relaxed);
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days.load(Ordering::Relaxed)
    }

    /// Returns once the record is committed (or its commit failed).
    pub async fn append(&self, record: LogRecord) -> Result<(), StoreError> {
        let (reply, committed) = oneshot::channel();
        self.sender
            .send(Message::Append(record, reply))
            .map_err(|_| StoreError::Stopped)?;
        committed.await.map_err(|_| StoreError::Stopped)?
    }

    /// towerhook extension (src/delivery): sends `write` to the writer now (in order with
    /// records and other writes); the future says when it is committed. A write the disk
    /// refuses is not retried: its sender is told.
    pub fn deliver(
        &self,
        write: crate::logs::delivery_store::Write,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        let (reply, committed) = oneshot::channel();
        let sent = self.sender.send(Message::Delivery(write, reply));
        async move {
            sent.map_err(|_| StoreError::Stopped)?;
            committed.await.map_err(|_| StoreError::Stopped)?
        }
    }

    /// Commits every record handed over before, and stops the writer.
    pub async fn close(&self) -> Result<(), StoreError> {
        let (done, closed) = oneshot::channel();
        self.sender
            .send(Message::Close(done))
            .map_err(|_| StoreError::Stopped)?;
        closed.await.map_err(|_| StoreError::Stopped)
    }

    /// Why the store cannot take records right now, if it cannot.
    pub fn health_problem(&self) -> Option<String> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Records and bytes not yet in Odoo.
fn unshipped(connection: &Connection) -> rusqlite::Result<(u64, u64)> {
    connection.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM webhook_log WHERE ship_state = 'pending'",
        [],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
    )
}

pub(crate) fn open_connection(path: &Path, sync: SyncMode) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(
        None,
        "synchronous",
        match sync {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        },
    )?;
    super::schema::create(&connection)?;
    // towerhook extension (src/delivery): the queue and the seen delivery ids.
    connection.execute_batch(crate::logs::delivery_store::SCHEMA)?;
    Ok(connection)
}

struct Writer {
    connection: Connection,
    receiver: Receiver<Message>,
    health: Arc<Mutex<Option<String>>>,
    held: Arc<AtomicUsize>,
    retention_days: Arc<AtomicU32>,
    outbox: Arc<OutboxGauge>,
    /// `pending` (Odoo sink) or `local`.
    initial_state: &'static str,
    /// Records whose commit failed, oldest first, committed before anything new.
    retry: Vec<LogRecord>,
    /// When the last pruning ran, and with which retention.
    last_prune: Option<(Instant, u32)>,
    /// Checkpoints the write-ahead log; stopped (after a last checkpoint) on close.
    checkpointer: Option<Checkpointer>,
}

/// The thread that checkpoints the write-ahead log.
struct Checkpointer {
    stop: Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path, sync: SyncMode) -> std::io::Result<Self> {
        let connection = open_connection(path, sync).map_err(std::io::Error::other)?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("towerhook-log-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        stopped.recv_timeout(CHECKPOINT_EVERY),
                        Err(RecvTimeoutError::Disconnected)
                    );
                    let mode = if last { "TRUNCATE" } else { "PASSIVE" };
                    match checkpoint(&connection, mode) {
                        Ok(pages) if !last && pages > WAL_PAGES_LIMIT => {
                            if let Err(error) = checkpoint(&connection, "RESTART") {
                                tracing::warn!("log store: cannot restart its log: {error}");
                            }
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!("log store: checkpoint failed: {error}"),
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Self { stop, thread })
    }

    /// Ends the thread after a last checkpoint that empties the write-ahead log.
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Runs a checkpoint; the pages in the write-ahead log.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<i64> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get::<_, i64>(1)
    })
}

impl Writer {
    fn run(mut self) {
        self.prune_if_due();
        loop {
            let wait = if self.retry.is_empty() {
                IDLE_TICK
            } else {
                RETRY_EVERY
            };
            let first = match self.receiver.recv_timeout(wait) {
                Ok(item) => Some(item),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    if !self.retry.is_empty() {
                        self.commit(Vec::new(), Vec::new());
                    }
                    return;
                }
            };
            let mut batch: Vec<(LogRecord, Reply)> = Vec::new();
            let mut deliveries = Vec::new();
            let mut closing = None;
            for message in first.into_iter().chain(self.receiver.try_iter()) {
                match message {
                    Message::Append(record, reply) => batch.push((record, reply)),
                    Message::Delivery(write, reply) => deliveries.push((write, reply)),
                    Message::Close(done) => {
                        closing = Some(done);
                        break;
                    }
                }
                if batch.len() + deliveries.len() >= MAX_BATCH {
                    break;
                }
            }
            if !batch.is_empty() || !deliveries.is_empty() || !self.retry.is_empty() {
                self.commit(batch, deliveries);
            }
            if let Some(done) = closing {
                if !self.retry.is_empty() {
                    tracing::error!(
                        "log store closing with {} record(s) its disk refused",
                        self.retry.len()
                    );
                }
                if let Some(checkpointer) = self.checkpointer.take() {
                    checkpointer.stop();
                }
                let _ = done.send(());
                return;
            }
            self.prune_if_due();
        }
    }

    fn commit(
        &mut self,
        batch: Vec<(LogRecord, Reply)>,
        deliveries: Vec<(crate::logs::delivery_store::Write, Reply)>,
    ) {
        let (records, replies): (Vec<LogRecord>, Vec<Reply>) = batch.into_iter().unzip();
        // towerhook extension (src/delivery): the writes' own log records (queued calls
        // that ended) commit with them, all or nothing, and are not held for a retry.
        let (writes, write_replies): (Vec<_>, Vec<Reply>) = deliveries.into_iter().unzip();
        let write_records: Vec<&LogRecord> = writes.iter().filter_map(|w| w.record()).collect();
        let result = insert_all(
            &mut self.connection,
            self.retry
                .iter()
                .chain(records.iter())
                .chain(write_records.iter().copied()),
            self.initial_state,
            &writes,
        );
        match result {
            Ok(bytes) => {
                if self.initial_state == "pending" {
                    self.outbox.add(
                        (self.retry.len() + records.len() + write_records.len()) as u64,
                        bytes,
                    );
                }
                if !self.retry.is_empty() {
                    tracing::info!(
                        "log store recovered: {} held record(s) committed",
                        self.retry.len()
                    );
                    self.retry.clear();
                    self.held.store(0, Ordering::Relaxed);
                }
                self.set_health(None);
                for reply in replies.into_iter().chain(write_replies) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(
                    "log store {}: commit failed ({message}); {} record(s) held in memory and retried",
                    self.connection.path().unwrap_or("?"),
                    self.retry.len() + records.len()
                );
                self.retry.extend(records);
                self.held.store(self.retry.len(), Ordering::Relaxed);
                self.set_health(Some(format!("log store not writable: {message}")));
                for reply in replies.into_iter().chain(write_replies) {
                    let _ = reply.send(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }

    fn set_health(&self, problem: Option<String>) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// Prunes hourly, and at once when the retention changed.
    fn prune_if_due(&mut self) {
        let days = self.retention_days.load(Ordering::Relaxed);
        let due = match self.last_prune {
            None => true,
            Some((at, pruned_days)) => at.elapsed() >= PRUNE_EVERY || pruned_days != days,
        };
        if !due {
            return;
        }
        self.last_prune = Some((Instant::now(), days));
        let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(days)))
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        // Never what Odoo has not received yet; shipped copies after an hour; dead letters
        // after the retention, as Odoo would have deleted them by then.
        let shipped_cutoff = (chrono::Utc::now() - chrono::Duration::hours(1))
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        match self.connection.execute(
            "DELETE FROM webhook_log WHERE (ship_state IN ('local', 'dead') AND create_date < ?1)
                OR (ship_state = 'shipped' AND shipped_at < ?2)",
            [&cutoff, &shipped_cutoff],
        ) {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!("log store: pruned {pruned} record(s) older than {days} days")
            }
            Err(e) => tracing::error!("log store: pruning failed: {e}"),
        }
    }
}

/// Inserts the records in one transaction; the bytes they hold.
fn insert_all<'a>(
    connection: &mut Connection,
    records: impl Iterator<Item = &'a LogRecord>,
    state: &str,
    deliveries: &[crate::logs::delivery_store::Write],
) -> rusqlite::Result<u64> {
    let transaction = connection.transaction()?;
    let mut bytes = 0;
    {
        let mut insert = transaction.prepare_cached(super::schema::insert_statement())?;
        for r in records {
            let size = r.size() as u64;
            bytes += size;
            let size = size as i64;
            let mut values = super::schema::values(r);
            values.push(&state);
            values.push(&size);
            insert.execute(values.as_slice())?;
        }
    }
    // towerhook extension (src/delivery): the queue's and the duplicate guard's changes.
    crate::logs::delivery_store::apply(&transaction, deliveries)?;
    transaction.commit()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::HttpMethod;
    use crate::logs::record::{AuthenticationStatus, CodeStatus};

    fn record(create_date: &str, endpoint: &str) -> LogRecord {
        LogRecord {
            request_id: format!("r-{endpoint}"),
            create_date: create_date.into(),
            webhook_id: None,
            webhook_reference: None,
            endpoint: endpoint.into(),
            authenticator_id: None,
            authenticator_reference: None,
            request_method: HttpMethod::Post,
            request_headers: "{}".into(),
            request_payload: Some("{}".into()),
            authentication_status: AuthenticationStatus::Failed,
            code_status: CodeStatus::Skipped,
            http_status: 404,
            result_message: None,
            error_message: Some("Webhook not found".into()),
            user_id: None,
            ip_address: Some("127.0.0.1".into()),
            country_code: None,
        }
    }

    fn options(sync: SyncMode) -> StoreOptions {
        StoreOptions {
            sync,
            retention_days: 30,
            ship: false,
            max_unshipped_records: 0,
            max_unshipped_bytes: 0,
        }
    }

    fn endpoints(path: &Path) -> Vec<String> {
        let connection = Connection::open(path).unwrap();
        let mut query = connection
            .prepare("SELECT endpoint FROM webhook_log ORDER BY id")
            .unwrap();
        query
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[tokio::test]
    async fn concurrent_appends_are_all_committed_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.sqlite3");
        let store = LogStore::open(&path, &options(SyncMode::Full)).unwrap();
        let appends = (0..200).map(|i| {
            let store = store.clone();
            async move {
                store
                    .append(record(
                        &crate::logs::record::timestamp_now(),
                        &format!("e{i}"),
                    ))
                    .await
            }
        });
        for result in futures_util::future::join_all(appends).await {
            result.unwrap();
        }
        assert_eq!(endpoints(&path).len(), 200);
    }

    /// Commits do not checkpoint (a checkpoint's fsync would stall the calls waiting for
    /// them): the checkpointer copies the log into the database while the store runs, and
    /// empties it when the store closes.
    #[tokio::test]
    async fn the_write_ahead_log_reaches_the_database_while_the_store_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.sqlite3");
        let store = LogStore::open(&path, &options(SyncMode::Normal)).unwrap();
        let started = std::fs::metadata(&path).unwrap().len();
        for batch in 0..20 {
            let appends = (0..100).map(|i| {
                let store = store.clone();
                let mut record = record(
                    &crate::logs::record::timestamp_now(),
                    &format!("e{batch}-{i}"),
                );
                record.request_payload = Some("x".repeat(2000));
                async move { store.append(record).await }
            });
            for result in futures_util::future::join_all(appends).await {
                result.unwrap();
            }
        }
        let wal = dir.path().join("logs.sqlite3-wal");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < started + 2_000 * 2_000 {
            assert!(
                Instant::now() < deadline,
                "the database file stayed at {} bytes, the log at {} bytes",
                std::fs::metadata(&path).unwrap().len(),
                std::fs::metadata(&wal).map_or(0, |m| m.len())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await.unwrap();
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        assert_eq!(endpoints(&path).len(), 2_000);
    }

    #[tokio::test]
    async fn old_records_are_pruned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.sqlite3");
        {
            let store = LogStore::open(&path, &options(SyncMode::Normal)).unwrap();
            store
                .append(record("2000-01-01 00:00:00.000000", "ancient"))
                .await
                .unwrap();
            store
                .append(record(&crate::logs::record::timestamp_now(), "fresh"))
                .await
                .unwrap();
        }
        let store = LogStore::open(&path, &options(SyncMode::Normal)).unwrap();
        // The writer prunes before taking records; this append waits behind the pruning.
        store
            .append(record(&crate::logs::record::timestamp_now(), "after"))
            .await
            .unwrap();
        assert_eq!(endpoints(&path), ["fresh", "after"]);
    }

    /// Dead letters (records Odoo refused) do not count toward the bound of records not yet
    /// in Odoo, and leave after the retention like local records; records still waiting
    /// for Odoo stay, however old.
    #[tokio::test]
    async fn dead_letters_leave_the_bound_and_are_pruned_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.sqlite3");
        let shipping = StoreOptions {
            ship: true,
            ..options(SyncMode::Normal)
        };
        {
            let store = LogStore::open(&path, &shipping).unwrap();
            for endpoint in ["old-dead", "old-pending", "new-dead"] {
                let date = if endpoint.starts_with("old") {
                    "2000-01-01 00:00:00.000000".to_string()
                } else {
                    crate::logs::record::timestamp_now()
                };
                store.append(record(&date, endpoint)).await.unwrap();
            }
            store.close().await.unwrap();
        }
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE webhook_log SET ship_state = 'dead' WHERE endpoint LIKE '%-dead'",
                [],
            )
            .unwrap();
        let store = LogStore::open(&path, &shipping).unwrap();
        assert_eq!(store.outbox().records.load(Ordering::Relaxed), 1);
        // The writer prunes before taking records; this append waits behind the pruning.
        store
            .append(record(&crate::logs::record::timestamp_now(), "after"))
            .await
            .unwrap();
        assert_eq!(endpoints(&path), ["old-pending", "new-dead", "after"]);
    }

    #[test]
    fn an_unwritable_location_is_a_clear_error() {
        let err = LogStore::open(
            Path::new("/proc/towerhook/x.sqlite3"),
            &options(SyncMode::Full),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/proc/towerhook"), "{err}");
    }
}
