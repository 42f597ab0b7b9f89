//! Opening the index read-only and asking SQLite whether it is whole.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{Finding, Place, Problem};
use crate::error::{Result, StoreError};
use crate::sql::Cached;

/// Lines of `integrity_check` kept in a finding.
const INTEGRITY_LINES: usize = 20;

/// Opens `path` read-only and runs `integrity_check` and `foreign_key_check`. Returns
/// the connection when the check can go on; `None` (with an `index-damaged` finding
/// pushed) when the database is damaged. Fails when there is no database file.
pub(super) fn open_and_verify(
    path: &Path,
    findings: &mut Vec<Finding>,
) -> Result<Option<Connection>> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(StoreError::io("open", path, e));
    }
    let damaged = |detail: String| Finding {
        place: Place::default(),
        problem: Problem::IndexDamaged {
            file: path.display().to_string(),
            detail,
        },
    };
    let conn = match open_read_only(path) {
        Ok(c) => c,
        Err(e) => {
            findings.push(damaged(e.to_string()));
            return Ok(None);
        }
    };
    match integrity(&conn) {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            findings.push(damaged(problems.join("\n")));
            return Ok(None);
        }
        Err(e) => {
            findings.push(damaged(e.to_string()));
            return Ok(None);
        }
    }
    for (table, rowid, parent) in foreign_keys(&conn)? {
        findings.push(Finding {
            place: Place::default(),
            problem: Problem::ForeignKey {
                table,
                rowid,
                parent,
            },
        });
    }
    Ok(Some(conn))
}

/// A read-only connection: no write of any kind, not even a migration.
pub(super) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // Reading the schema is the first thing that touches the file's pages.
    conn.query_row_cached("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// SQLite's `integrity_check`: the problems it lists (none when whole).
pub(super) fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(&format!("PRAGMA integrity_check({INTEGRITY_LINES})"))?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(if lines.len() == 1 && lines[0] == "ok" {
        Vec::new()
    } else {
        lines
    })
}

/// SQLite's `foreign_key_check`: (table, rowid, parent table) of each dangling row.
fn foreign_keys(conn: &Connection) -> Result<Vec<(String, i64, String)>> {
    let mut stmt = conn.prepare_cached("PRAGMA foreign_key_check")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
