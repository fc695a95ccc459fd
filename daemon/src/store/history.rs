//! The config history: one row per reconcile attempt.

use serde::Serialize;

use super::{Error, Store};

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// sited started.
    Startup,
    /// The file changed on disk.
    FileChange,
    /// SIGHUP (`systemctl reload sited`).
    Sighup,
    /// The file was imported from the boot partition on first boot.
    BootImport,
    /// The application node sent a version over the node link.
    NodeLink,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The new plan is running.
    Applied,
    /// The file is the one already running.
    Unchanged,
    /// The file is invalid; the last good plan keeps running.
    Invalid,
    /// The file is valid but applying it failed; the last good plan keeps running.
    Failed,
    /// The boot partition's site file was copied into place.
    Imported,
}

impl Outcome {
    /// The outcome's name, as the history, the API and the node link show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::Imported => "imported",
        }
    }
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::FileChange => "file-change",
            Trigger::Sighup => "sighup",
            Trigger::BootImport => "boot-import",
            Trigger::NodeLink => "node-link",
        }
    }
}

/// One attempt, as recorded and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Attempt {
    /// Its number, increasing.
    pub id: i64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// What started it.
    pub trigger: String,
    /// The SHA-256 of the file, hex; none when it could not be read.
    pub sha256: Option<String>,
    /// `applied`, `unchanged`, `invalid`, `failed` or `imported`.
    pub outcome: String,
    /// The diagnostics, as `sited validate --format json` prints them.
    pub diagnostics: serde_json::Value,
    /// What changed, one line each, or why it failed.
    pub summary: String,
}

impl Store {
    /// Records an attempt; returns its id.
    pub fn record(
        &self,
        at: &str,
        trigger: Trigger,
        sha256: Option<&str>,
        outcome: Outcome,
        diagnostics: &serde_json::Value,
        summary: &str,
    ) -> Result<i64, Error> {
        self.conn().execute(
            "INSERT INTO config_history (at, trigger, sha256, outcome, diagnostics, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![at, trigger.as_str(), sha256, outcome.as_str(), diagnostics.to_string(), summary],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// The newest attempts first; at most `limit`, older than `before` when given.
    pub fn history(&self, limit: u32, before: Option<i64>) -> Result<Vec<Attempt>, Error> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, at, trigger, sha256, outcome, diagnostics, summary FROM config_history
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![before.unwrap_or(i64::MAX), limit], |r| {
            let diagnostics: String = r.get(5)?;
            Ok(Attempt {
                id: r.get(0)?,
                at: r.get(1)?,
                trigger: r.get(2)?,
                sha256: r.get(3)?,
                outcome: r.get(4)?,
                diagnostics: serde_json::from_str(&diagnostics).unwrap_or(serde_json::Value::Null),
                summary: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_come_back_newest_first_and_page() {
        let store = Store::memory().unwrap();
        for i in 0..5 {
            let outcome = if i % 2 == 0 {
                Outcome::Applied
            } else {
                Outcome::Invalid
            };
            store
                .record(
                    &format!("2026-11-21T10:00:0{i}Z"),
                    Trigger::FileChange,
                    Some("ab"),
                    outcome,
                    &serde_json::json!([]),
                    "x",
                )
                .unwrap();
        }
        let page = store.history(2, None).unwrap();
        assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), [5, 4]);
        assert_eq!(page[1].outcome, "invalid");
        let next = store.history(2, Some(4)).unwrap();
        assert_eq!(next.iter().map(|a| a.id).collect::<Vec<_>>(), [3, 2]);
    }
}
