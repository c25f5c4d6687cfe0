//! The delivery tables in the log store's SQLite file: the queue of accepted asynchronous
//! calls (`delivery_queue`) and the delivery ids seen (`delivery_seen`).
//!
//! Every change goes through the log store's writer thread as a [`Write`], committed in the
//! same group commit as log records: an enqueue is durable before its 202 leaves, a seen id
//! before the answer of the call that made it seen, and a queued call's end (its row gone or
//! made a dead letter) in the same transaction as its log record, so that a crash can never
//! log a call without ending it, nor end it without its log. Reads use their own
//! connection (WAL lets them run beside the writer).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use crate::logs::record::LogRecord;
use crate::snippets::CallContext;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS delivery_queue (
    id INTEGER PRIMARY KEY,
    webhook_reference TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    payload TEXT NOT NULL,
    context TEXT NOT NULL,
    record TEXT NOT NULL,
    requeued INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS delivery_queue_state ON delivery_queue (state, id);
CREATE INDEX IF NOT EXISTS delivery_queue_requeued ON delivery_queue (requeued)
    WHERE requeued = 1;
CREATE TABLE IF NOT EXISTS delivery_seen (
    webhook_reference TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (webhook_reference, delivery_id)
) WITHOUT ROWID;
-- The pruning every minute runs on the writer thread: it must not scan every id.
CREATE INDEX IF NOT EXISTS delivery_seen_expires ON delivery_seen (expires_at);
";

/// A call accepted for later: everything its webhook code needs, and the log record as it
/// stood when the call was answered (completed when the code has run).
#[derive(Debug, Clone)]
pub struct QueuedCall {
    /// Arrival order (per webhook, the order the code runs in).
    pub id: i64,
    pub webhook_reference: String,
    pub endpoint: String,
    pub request_id: String,
    /// Unix milliseconds.
    pub enqueued_at_ms: i64,
    /// The headers as snippets see them (unredacted: the code needs them).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The payload as JSON text.
    pub payload: String,
    pub context: CallContext,
    pub record: LogRecord,
}

/// A delivery id that is seen until `expires_ms`.
#[derive(Debug, Clone)]
pub struct Seen {
    pub webhook: String,
    pub id: String,
    pub expires_ms: i64,
}

/// One change, applied by the log store's writer in its next commit.
#[derive(Debug)]
pub enum Write {
    Enqueue {
        call: Box<QueuedCall>,
        seen: Option<Seen>,
    },
    Seen(Seen),
    /// A failed run: run again at `next_attempt_at_ms`.
    Retry {
        id: i64,
        attempts: u32,
        next_attempt_at_ms: i64,
        error: String,
    },
    /// The code ran: the row goes, its log record comes.
    Done {
        id: i64,
        record: Box<LogRecord>,
    },
    /// No run left (or the webhook is gone): a dead letter, with its log record.
    Dead {
        id: i64,
        attempts: u32,
        error: String,
        record: Box<LogRecord>,
    },
    /// Calls `towerhook queue retry` put back, now in the runner's hands.
    Adopted {
        ids: Vec<i64>,
    },
    /// Ids past their window; dead letters older than the log retention.
    Prune {
        now_ms: i64,
        dead_before_ms: i64,
    },
}

impl Write {
    /// The log record this write commits with it.
    pub fn record(&self) -> Option<&LogRecord> {
        match self {
            Write::Done { record, .. } | Write::Dead { record, .. } => Some(record),
            _ => None,
        }
    }
}

/// Applies the writes inside the writer's transaction.
pub fn apply(connection: &Connection, writes: &[Write]) -> rusqlite::Result<()> {
    for write in writes {
        match write {
            Write::Enqueue { call, seen } => {
                let mut insert = connection.prepare_cached(
                    "INSERT INTO delivery_queue (id, webhook_reference, endpoint, request_id,
                        enqueued_at, next_attempt_at, headers, body, payload, context, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                insert.execute(params![
                    call.id,
                    call.webhook_reference,
                    call.endpoint,
                    call.request_id,
                    call.enqueued_at_ms,
                    json(&call.headers),
                    call.body.as_ref(),
                    call.payload,
                    json(&call.context),
                    json(&call.record),
                ])?;
                if let Some(seen) = seen {
                    insert_seen(connection, seen)?;
                }
            }
            Write::Seen(seen) => {
                insert_seen(connection, seen)?;
            }
            Write::Retry {
                id,
                attempts,
                next_attempt_at_ms,
                error,
            } => {
                connection
                    .prepare_cached(
                        "UPDATE delivery_queue SET attempts = ?2, next_attempt_at = ?3,
                            last_error = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, next_attempt_at_ms, error])?;
            }
            Write::Done { id, .. } => {
                connection
                    .prepare_cached("DELETE FROM delivery_queue WHERE id = ?1")?
                    .execute([id])?;
            }
            Write::Dead {
                id,
                attempts,
                error,
                ..
            } => {
                connection
                    .prepare_cached(
                        "UPDATE delivery_queue SET state = 'dead', attempts = ?2,
                            last_error = ?3, requeued = 0 WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, error])?;
            }
            Write::Adopted { ids } => {
                let mut clear = connection
                    .prepare_cached("UPDATE delivery_queue SET requeued = 0 WHERE id = ?1")?;
                for id in ids {
                    clear.execute([id])?;
                }
            }
            Write::Prune {
                now_ms,
                dead_before_ms,
            } => {
                connection.execute("DELETE FROM delivery_seen WHERE expires_at <= ?1", [now_ms])?;
                connection.execute(
                    "DELETE FROM delivery_queue WHERE state = 'dead' AND enqueued_at < ?1",
                    [dead_before_ms],
                )?;
            }
        }
    }
    Ok(())
}

fn insert_seen(connection: &Connection, seen: &Seen) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO delivery_seen (webhook_reference, delivery_id, expires_at)
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![seen.webhook, seen.id, seen.expires_ms])
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("towerhook's own values serialise")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A connection for reads (and the command line's changes).
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

/// A queued call as the runner schedules it.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub id: i64,
    pub webhook_reference: String,
    pub enqueued_at_ms: i64,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
}

fn waiting(row: &rusqlite::Row<'_>) -> rusqlite::Result<Waiting> {
    Ok(Waiting {
        id: row.get(0)?,
        webhook_reference: row.get(1)?,
        enqueued_at_ms: row.get(2)?,
        attempts: row.get(3)?,
        next_attempt_at_ms: row.get(4)?,
    })
}

/// Every queued call (not the dead letters), oldest first.
pub fn queued(connection: &Connection) -> rusqlite::Result<Vec<Waiting>> {
    let mut query = connection.prepare(
        "SELECT id, webhook_reference, enqueued_at, attempts, next_attempt_at
         FROM delivery_queue WHERE state = 'queued' ORDER BY id",
    )?;
    query.query_map([], waiting)?.collect()
}

/// Calls `towerhook queue retry` put back since the runner last looked.
pub fn requeued(connection: &Connection) -> rusqlite::Result<Vec<Waiting>> {
    let mut query = connection.prepare_cached(
        "SELECT id, webhook_reference, enqueued_at, attempts, next_attempt_at
         FROM delivery_queue WHERE requeued = 1 AND state = 'queued' ORDER BY id",
    )?;
    query.query_map([], waiting)?.collect()
}

/// The highest id ever given (ids are never reused while rows hold them).
pub fn last_id(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM delivery_queue",
        [],
        |row| row.get(0),
    )
}

pub fn dead_letters(connection: &Connection) -> rusqlite::Result<u64> {
    connection.query_row(
        "SELECT COUNT(*) FROM delivery_queue WHERE state = 'dead'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n as u64),
    )
}

/// One queued call, whole; `None` when it is no longer queued.
pub fn call(connection: &Connection, id: i64) -> rusqlite::Result<Option<QueuedCall>> {
    connection
        .prepare_cached(
            "SELECT id, webhook_reference, endpoint, request_id, enqueued_at, headers, body,
                payload, context, record
             FROM delivery_queue WHERE id = ?1 AND state = 'queued'",
        )?
        .query_row([id], |row| {
            Ok(QueuedCall {
                id: row.get(0)?,
                webhook_reference: row.get(1)?,
                endpoint: row.get(2)?,
                request_id: row.get(3)?,
                enqueued_at_ms: row.get(4)?,
                headers: parse(&row.get::<_, String>(5)?, 5)?,
                body: Bytes::from(row.get::<_, Vec<u8>>(6)?),
                payload: row.get(7)?,
                context: parse(&row.get::<_, String>(8)?, 8)?,
                record: parse(&row.get::<_, String>(9)?, 9)?,
            })
        })
        .optional()
}

/// Delivery ids still within their window: (webhook reference, id, expires at).
pub fn seen(connection: &Connection, now_ms: i64) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut query = connection.prepare(
        "SELECT webhook_reference, delivery_id, expires_at FROM delivery_seen
         WHERE expires_at > ?1",
    )?;
    query
        .query_map([now_ms], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect()
}

/// What `towerhook queue list` shows.
#[derive(Debug)]
pub struct Listing {
    /// (state, count) for `queued` and `dead`.
    pub counts: Vec<(String, i64)>,
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub struct Entry {
    pub id: i64,
    pub state: String,
    pub enqueued_at: String,
    pub webhook_reference: String,
    pub endpoint: String,
    pub request_id: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Counts by state, and the dead letters (queued calls too with `with_queued`).
pub fn list(path: &Path, with_queued: bool) -> rusqlite::Result<Listing> {
    let connection = open(path)?;
    let mut counts = Vec::new();
    for state in ["queued", "dead"] {
        let count: i64 = connection.query_row(
            "SELECT COUNT(*) FROM delivery_queue WHERE state = ?1",
            [state],
            |row| row.get(0),
        )?;
        counts.push((state.to_string(), count));
    }
    let states = if with_queued {
        "('dead', 'queued')"
    } else {
        "('dead')"
    };
    let mut query = connection.prepare(&format!(
        "SELECT id, state, enqueued_at, webhook_reference, endpoint, request_id, attempts,
            last_error
         FROM delivery_queue WHERE state IN {states} ORDER BY id"
    ))?;
    let entries = query
        .query_map([], |row| {
            let millis: i64 = row.get(2)?;
            Ok(Entry {
                id: row.get(0)?,
                state: row.get(1)?,
                enqueued_at: chrono::DateTime::from_timestamp_millis(millis)
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
                webhook_reference: row.get(3)?,
                endpoint: row.get(4)?,
                request_id: row.get(5)?,
                attempts: row.get(6)?,
                last_error: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Listing { counts, entries })
}

/// Puts dead letters back in the queue (the given ids, or all), with their attempts reset;
/// a running towerhook takes them within a second, in their place of arrival. How many.
pub fn retry(path: &Path, ids: &[i64]) -> rusqlite::Result<usize> {
    let connection = open(path)?;
    let now = chrono::Utc::now().timestamp_millis();
    let sql = "UPDATE delivery_queue SET state = 'queued', attempts = 0, next_attempt_at = ?1,
                   requeued = 1
               WHERE state = 'dead'";
    if ids.is_empty() {
        return connection.execute(sql, [now]);
    }
    let mut moved = 0;
    let mut update = connection.prepare(&format!("{sql} AND id = ?2"))?;
    for id in ids {
        moved += update.execute(params![now, id])?;
    }
    Ok(moved)
}

/// The last log record written, as JSON (for `towerhook run`).
pub fn last_log(path: &Path) -> rusqlite::Result<Option<serde_json::Value>> {
    let connection = open(path)?;
    connection
        .query_row(
            "SELECT json_object('request_id', request_id, 'create_date', create_date,
                'webhook_reference', webhook_reference, 'endpoint', endpoint,
                'request_method', request_method, 'request_headers', request_headers,
                'request_payload', request_payload,
                'authentication_status', authentication_status, 'code_status', code_status,
                'http_status', http_status, 'result_message', result_message,
                'error_message', error_message, 'user_id', user_id, 'ip_address', ip_address)
             FROM webhook_log ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get::<_, String>(0),
        )
        .optional()
        .map(|text| text.and_then(|text| serde_json::from_str(&text).ok()))
}
