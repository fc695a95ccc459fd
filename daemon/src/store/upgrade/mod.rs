//! Numbered schema upgrades. Version N of the schema is reached by running steps 1..=N in order,
//! each in its own transaction, recording N in `PRAGMA user_version`. A new step is a new file.

mod v1;
mod v2;

use rusqlite::Connection;

use super::Error;

/// The steps, in order: step `i` takes the schema from version `i` to `i + 1`.
const STEPS: &[fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>] = &[v1::run, v2::run];

/// The version this build writes.
pub const LATEST: u32 = STEPS.len() as u32;

/// Brings the database up to [`LATEST`].
pub fn run(conn: &mut Connection) -> Result<(), Error> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > LATEST {
        crate::bail!(
            Conflict,
            "the state database has schema version {version}, newer than this sited ({LATEST}); refusing to touch it"
        );
    }
    for (i, step) in STEPS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        step(&tx)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema of version [`LATEST`] written directly, as the upgrade test compares against.
#[cfg(test)]
const FRESH: &str = include_str!("schema.sql");

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|s| s.unwrap().split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn upgrading_from_v0_gives_the_fresh_schema() {
        let mut upgraded = Connection::open_in_memory().unwrap();
        run(&mut upgraded).unwrap();
        let fresh = Connection::open_in_memory().unwrap();
        fresh.execute_batch(FRESH).unwrap();
        assert_eq!(dump(&upgraded), dump(&fresh));
        let v: u32 = upgraded
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        assert!(
            run(&mut conn)
                .unwrap_err()
                .to_string()
                .contains("newer than this sited")
        );
    }

    #[test]
    fn upgrades_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
    }
}
