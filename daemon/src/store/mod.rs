//! The state database: `<state-dir>/sited.db`, SQLite in WAL mode.
//!
//! It holds the config history (every reconcile attempt with its time, the file's SHA-256, the
//! outcome, the diagnostics and a summary of the diff) and the recordings index
//! ([`recording`]). The schema is versioned by `PRAGMA user_version` and upgraded by numbered
//! steps in [`upgrade`]; a test upgrades from v0 and compares the result with a fresh schema.

pub mod history;
pub mod recording;
pub mod upgrade;

use std::path::Path;

use rusqlite::Connection;

pub use history::{Attempt, Outcome, Trigger};

/// The state database.
pub struct Store {
    conn: Connection,
}

/// An error of the state database: the one error type (SQLite errors convert to kind `Io`).
pub use crate::base::Error;

impl Store {
    /// Opens (creating and upgrading) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::from(e).context(format!("cannot create {}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        Store::with(conn)
    }

    /// An in-memory database, for tests.
    pub fn memory() -> Result<Store, Error> {
        Store::with(Connection::open_in_memory()?)
    }

    fn with(mut conn: Connection) -> Result<Store, Error> {
        // WAL: readers (the API) never wait for the writer (reconcile); NORMAL is durable across
        // a crash of sited, and loses at most the last commits on a power cut, never integrity.
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        conn.pragma_update(None, "foreign_keys", "on")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        upgrade::run(&mut conn)?;
        Ok(Store { conn })
    }

    /// The connection, for the modules of this one.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}
