//! The last good copy of Odoo's definitions (without secret values), kept beside the logs so
//! that a restart while Odoo is unreachable still serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::definitions::odoo::Snapshot;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS definitions_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at TEXT NOT NULL,
    origin TEXT NOT NULL,
    body TEXT NOT NULL
);
";

/// A snapshot as it was saved.
#[derive(Debug, Clone)]
pub struct SavedSnapshot {
    pub snapshot: Snapshot,
    /// UTC time of the save.
    pub saved_at: String,
}

pub struct SnapshotStore {
    path: PathBuf,
}

impl SnapshotStore {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open(&self.path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        Ok(connection)
    }

    pub fn save(&self, snapshot: &Snapshot, origin: &str) -> Result<(), SnapshotError> {
        let body = serde_json::to_string(snapshot)?;
        let connection = self.connect()?;
        connection
            .execute(
                "INSERT INTO definitions_snapshot (id, saved_at, origin, body) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET saved_at = ?1, origin = ?2, body = ?3",
                params![chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(), origin, body],
            )
            .map(drop)
            .map_err(SnapshotError::from)
    }

    /// The saved snapshot of `origin`, if any. A snapshot of another Odoo is not used.
    pub fn load(&self, origin: &str) -> Result<Option<SavedSnapshot>, SnapshotError> {
        let connection = self.connect()?;
        let row: Option<(String, String, String)> = connection
            .query_row(
                "SELECT saved_at, origin, body FROM definitions_snapshot WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        match row {
            Some((saved_at, saved_origin, body)) if saved_origin == origin => {
                let snapshot = serde_json::from_str(&body)?;
                Ok(Some(SavedSnapshot { snapshot, saved_at }))
            }
            _ => Ok(None),
        }
    }
}

/// Why the snapshot could not be kept or read back.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("the snapshot cannot be written or read: {0}")]
    Body(#[from] serde_json::Error),
}
