//! Version 1: the config history.

/// Creates the config history.
pub fn run(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE config_history (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            trigger TEXT NOT NULL,
            sha256 TEXT,
            outcome TEXT NOT NULL,
            diagnostics TEXT NOT NULL,
            summary TEXT NOT NULL
        );
        CREATE INDEX config_history_at ON config_history (at);",
    )
}
