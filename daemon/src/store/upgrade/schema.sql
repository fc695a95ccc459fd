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
CREATE TABLE recording_init (
    id INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    codecs TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE recording (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    duration_90k INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    init_id INTEGER NOT NULL REFERENCES recording_init (id),
    keyframes BLOB NOT NULL,
    complete INTEGER NOT NULL
);
CREATE INDEX recording_camera_start ON recording (camera, start_ms, end_ms);
CREATE INDEX recording_camera_end ON recording (camera, end_ms);
