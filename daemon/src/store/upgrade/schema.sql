-- The schema at the latest version, written directly; the upgrade test compares it with the
-- result of running every upgrade step from an empty database.
CREATE TABLE config_history (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    trigger TEXT NOT NULL,
    sha256 TEXT,
    outcome TEXT NOT NULL,
    diagnostics TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX config_history_at ON config_history (at);
