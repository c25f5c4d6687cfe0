//! The log record's columns in the local store, declared once: the table, the INSERT, the
//! shipper's SELECT and the reading of a row all come from the list below. A new field of
//! `LogRecord` is one line here (and its Odoo name in the shipper).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::sync::LazyLock;

use rusqlite::{Connection, Row};

use super::record::{AuthenticationStatus, CodeStatus, LogRecord};
use crate::definitions::HttpMethod;

/// Declares the record's columns: each `LogRecord` field with its SQL declaration.
macro_rules! record_columns {
    ($($field:ident: $declaration:literal,)*) => {
        /// `(column, SQL declaration)` of the record's fields, in order.
        const RECORD_COLUMNS: &[(&str, &str)] = &[$((stringify!($field), $declaration)),*];

        /// The record's values, in `RECORD_COLUMNS` order.
        pub(crate) fn values(record: &LogRecord) -> Vec<&dyn ToSql> {
            vec![$(&record.$field as &dyn ToSql),*]
        }

        /// The record from a row whose columns `first..` are `RECORD_COLUMNS`.
        pub(crate) fn record(row: &Row<'_>, first: usize) -> rusqlite::Result<LogRecord> {
            let mut column = first;
            Ok(LogRecord {
                $($field: {
                    column += 1;
                    row.get(column - 1)?
                },)*
            })
        }
    };
}

record_columns! {
    request_id: "TEXT NOT NULL",
    create_date: "TEXT NOT NULL",
    webhook_id: "INTEGER",
    webhook_reference: "TEXT",
    endpoint: "TEXT NOT NULL",
    authenticator_id: "INTEGER",
    authenticator_reference: "TEXT",
    request_method: "TEXT NOT NULL CHECK (request_method IN ('get', 'post'))",
    request_headers: "TEXT",
    request_payload: "TEXT",
    authentication_status: "TEXT NOT NULL
        CHECK (authentication_status IN ('success', 'failed', 'not_required'))",
    code_status: "TEXT NOT NULL CHECK (code_status IN ('success', 'failed', 'skipped'))",
    http_status: "INTEGER",
    result_message: "TEXT",
    error_message: "TEXT",
    user_id: "INTEGER",
    ip_address: "TEXT",
    country_code: "TEXT",
}

/// The outbox's own columns, after the record's.
const OUTBOX_COLUMNS: &str = "
    ship_state TEXT NOT NULL DEFAULT 'local'
        CHECK (ship_state IN ('local', 'pending', 'shipped', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    odoo_id INTEGER,
    shipped_at TEXT,
    size INTEGER NOT NULL DEFAULT 0";

/// Creates the table and its indexes if missing.
pub(crate) fn create(connection: &Connection) -> rusqlite::Result<()> {
    let columns: Vec<String> = RECORD_COLUMNS
        .iter()
        .map(|(name, declaration)| format!("{name} {declaration}"))
        .collect();
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS webhook_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            {},
            {OUTBOX_COLUMNS}
        );
        CREATE INDEX IF NOT EXISTS webhook_log_create_date ON webhook_log (create_date);
        CREATE INDEX IF NOT EXISTS webhook_log_ship_state ON webhook_log (ship_state, id);",
        columns.join(",\n            ")
    ))
}

/// `INSERT` of a record, its ship state and its size (`values(record)`, then those two).
pub(crate) fn insert_statement() -> &'static str {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        let names: Vec<&str> = RECORD_COLUMNS.iter().map(|(name, _)| *name).collect();
        let placeholders: Vec<String> = (1..=names.len() + 2).map(|n| format!("?{n}")).collect();
        format!(
            "INSERT INTO webhook_log ({}, ship_state, size) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        )
    });
    &INSERT
}

/// The record's columns, for a SELECT (`record(row, first)` reads them back).
pub(crate) fn record_column_list() -> String {
    RECORD_COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every record of a store, oldest first (`towerhook outbox`, tests).
pub fn read_all(connection: &Connection) -> rusqlite::Result<Vec<LogRecord>> {
    let mut query = connection.prepare(&format!(
        "SELECT {} FROM webhook_log ORDER BY id",
        record_column_list()
    ))?;
    query
        .query_map([], |row| record(row, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()
}

/// The record's enums as the log model's selection values.
macro_rules! text_column {
    ($type:ty, $($variant:expr => $text:literal),*) => {
        impl ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $type {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($variant),)*
                    _ => Err(FromSqlError::InvalidType),
                }
            }
        }
    };
}

text_column!(HttpMethod, HttpMethod::Get => "get", HttpMethod::Post => "post");
text_column!(
    AuthenticationStatus,
    AuthenticationStatus::Success => "success",
    AuthenticationStatus::Failed => "failed",
    AuthenticationStatus::NotRequired => "not_required"
);
text_column!(
    CodeStatus,
    CodeStatus::Success => "success",
    CodeStatus::Failed => "failed",
    CodeStatus::Skipped => "skipped"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_goes_in_and_comes_back_whole() {
        let connection = Connection::open_in_memory().unwrap();
        create(&connection).unwrap();
        let record = LogRecord {
            request_id: "r1".into(),
            create_date: "2026-12-01 10:00:00.000000".into(),
            webhook_id: Some(3),
            webhook_reference: Some("hook".into()),
            endpoint: "hook".into(),
            authenticator_id: None,
            authenticator_reference: Some("open".into()),
            request_method: HttpMethod::Get,
            request_headers: "{}".into(),
            request_payload: None,
            authentication_status: AuthenticationStatus::Success,
            code_status: CodeStatus::Failed,
            http_status: 500,
            result_message: None,
            error_message: Some("boom".into()),
            user_id: Some(1),
            ip_address: Some("203.0.113.5".into()),
            country_code: Some("BE".into()),
        };
        let mut values = values(&record);
        let (state, size) = ("pending", 42i64);
        values.push(&state);
        values.push(&size);
        connection
            .execute(insert_statement(), values.as_slice())
            .unwrap();
        assert_eq!(read_all(&connection).unwrap(), [record]);
    }
}
