//! Version 2: the recordings index.

/// Creates the recordings index: the init segments, and one row per segment file.
pub fn run(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE recording_init (
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
        CREATE INDEX recording_camera_end ON recording (camera, end_ms);",
    )
}
