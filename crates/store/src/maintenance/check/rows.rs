//! The repairs of rows: recounting mailboxes and quota usage, dangling rows, stale
//! per-GUID rows, change-log consumers, orphan blobs, and a damaged index's indexes.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::index::{integrity, open_read_only};
use super::repair::{RepairOutcome, RECOVERED_MAILBOX};
use super::RepairOptions;
use crate::digest::recompute_records_digest;
use crate::error::{Result, StoreError};
use crate::flags::Flags;
use crate::ids::{Guid, UniqueId};
use crate::sql::Cached;
use crate::store::{Store, StoreConfig};
use crate::txn;

impl Store {
    /// Sets a mailbox's message count, size and records digest to what its records
    /// give (a tombstone: removes any records left, counts zero). Returns its owner.
    pub(super) fn recount_mailbox(&self, id: &UniqueId) -> Result<Option<String>> {
        let id = id.clone();
        self.write(move |conn| {
            let Some(m) = txn::mailbox_by_uniqueid(conn, &id)? else {
                return Ok(None);
            };
            let tombstone: bool = conn.query_row_cached(
                "SELECT tombstone_modseq IS NOT NULL FROM mailboxes WHERE id = ?1",
                [m.id],
                |r| r.get(0),
            )?;
            if tombstone {
                conn.execute_cached("DELETE FROM records WHERE mailbox_id = ?1", [m.id])?;
                crate::record_changes::forget(conn, m.id)?;
            }
            conn.execute_cached(
                "UPDATE mailboxes SET \
                 messages = (SELECT count(*) FROM records WHERE mailbox_id = ?1 AND expunged_modseq IS NULL), \
                 bytes = coalesce((SELECT sum(size) FROM records WHERE mailbox_id = ?1 AND expunged_modseq IS NULL), 0) \
                 WHERE id = ?1",
                [m.id],
            )?;
            let digest = recompute_records_digest(conn, m.id)?;
            conn.execute_cached(
                "UPDATE mailboxes SET records_digest = ?2 WHERE id = ?1",
                params![m.id, &digest.0[..]],
            )?;
            Ok(Some(m.user))
        })
    }

    /// Sets a user's quota usage to the live records of their live mailboxes.
    pub(super) fn recount_usage(&self, user: &str) -> Result<()> {
        let user = user.to_owned();
        self.write(move |conn| {
            let Some(id) = conn
                .query_row_cached("SELECT id FROM users WHERE name = ?1", [&user], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Ok(());
            };
            conn.execute_cached(
                "UPDATE users SET \
                 used_messages = (SELECT count(*) FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
                   WHERE m.user_id = ?1 AND m.tombstone_modseq IS NULL AND r.expunged_modseq IS NULL), \
                 used_storage = coalesce((SELECT sum(r.size) FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
                   WHERE m.user_id = ?1 AND m.tombstone_modseq IS NULL AND r.expunged_modseq IS NULL), 0) \
                 WHERE id = ?1",
                [id],
            )?;
            Ok(())
        })
    }

    /// Removes rows that refer to a mailbox or user that does not exist, in the tables
    /// where such a row means nothing (annotations, keyword tables, subscriptions).
    /// False for a table whose dangling rows are not removed (`mailboxes`).
    pub(super) fn drop_dangling(&self, table: &str) -> Result<bool> {
        let sql = match table {
            "annotations" => {
                "DELETE FROM annotations WHERE mailbox_id NOT IN (SELECT id FROM mailboxes)"
            }
            "mailbox_keywords" => {
                "DELETE FROM mailbox_keywords WHERE mailbox_id NOT IN (SELECT id FROM mailboxes)"
            }
            "subscriptions" => {
                "DELETE FROM subscriptions WHERE user_id NOT IN (SELECT id FROM users)"
            }
            _ => return Ok(false),
        };
        self.write(move |conn| {
            conn.execute_cached(sql, [])?;
            Ok(())
        })?;
        Ok(true)
    }

    /// Removes the summary and full-text queue entry of a GUID no record refers to and
    /// no partition holds (re-checked).
    pub(super) fn drop_stale_summary(&self, guid: Guid) -> Result<()> {
        let store = self.clone();
        self.write(move |conn| {
            if crate::orphans::referenced(conn, &guid)? || !store.blobs().holders(&guid).is_empty()
            {
                return Ok(());
            }
            let key = &guid.as_bytes()[..];
            conn.execute_cached("DELETE FROM summaries WHERE guid = ?1", [key])?;
            conn.execute_cached("DELETE FROM pending_texts WHERE guid = ?1", [key])?;
            Ok(())
        })
    }

    /// Sets a consumer that acknowledged past the log's end back to the end.
    pub(super) fn clamp_consumer(&self, consumer: &str) -> Result<()> {
        let consumer = consumer.to_owned();
        self.write(move |conn| {
            conn.execute_cached(
                "UPDATE changelog_acks SET seq = \
                 coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changelog'), 0) \
                 WHERE consumer = ?1",
                [consumer],
            )?;
            Ok(())
        })
    }

    /// One orphan blob: collected when a purged message left it; offered back as a new
    /// message when no message of this store ever had it and a user is named for it.
    pub(super) fn repair_orphan(
        &self,
        partition: &str,
        guid: Guid,
        size: u64,
        purged: bool,
        options: &RepairOptions,
    ) -> Result<RepairOutcome> {
        if purged {
            let (store, part) = (self.clone(), partition.to_owned());
            let (n, _) =
                self.write(move |conn| store.remove_batch(conn, &part, &[(guid, size)]))?;
            return Ok(RepairOutcome::Repaired(if n == 1 {
                "collected (a purged message's blob)".into()
            } else {
                "referenced again, kept".into()
            }));
        }
        let Some(user) = &options.recover_to else {
            return Ok(RepairOutcome::Left(
                "its owner is unknown: `--recover-to USER` gives it to USER as a new message; \
                 `tern expire` removes it otherwise"
                    .into(),
            ));
        };
        let path = self.blobs().path(partition, &guid)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RepairOutcome::Repaired("gone meanwhile".into()))
            }
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        if Guid::of(&bytes) != guid {
            let to =
                super::repair::quarantine(&path, &self.blobs().root(partition)?.join("damaged"))?;
            return Ok(RepairOutcome::Repaired(format!(
                "its content does not match its name: moved to {}",
                to.display()
            )));
        }
        if self.mailbox(user, RECOVERED_MAILBOX)?.is_none() {
            match self.create_mailbox(user, RECOVERED_MAILBOX, None) {
                Ok(_) | Err(StoreError::MailboxExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let internaldate = std::fs::metadata(&path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(crate::store::now, |d| d.as_secs() as i64);
        let appended =
            self.append_as_owner(user, RECOVERED_MAILBOX, &Flags::new(), internaldate, &bytes)?;
        Ok(RepairOutcome::Repaired(format!(
            "offered back to {user} as {RECOVERED_MAILBOX} UID {}",
            appended.uid
        )))
    }
}

/// Repairs a damaged index where SQLite can: every table's rows are copied into a new
/// database (`VACUUM INTO`), which builds its indexes afresh from them, so damage
/// confined to the indexes' b-trees is left behind; the copy must then pass
/// `integrity_check`, and replaces the index. The damaged file is kept beside it
/// (`index.sqlite3.damaged-<unix time>`). Damage to a table's own pages fails the
/// copy, and the index is left as it was.
///
/// Only with no other process using the store (`tern serve` stopped): the repair
/// holds the index exclusively and refuses otherwise.
pub fn repair_index(config: &StoreConfig) -> Result<RepairOutcome> {
    let path = config.data_dir.join("index.sqlite3");
    match open_read_only(&path).and_then(|c| integrity(&c)) {
        Ok(p) if p.is_empty() => return Ok(RepairOutcome::Repaired("whole now".into())),
        _ => {}
    }
    let conn = Connection::open(&path)?;
    // Exclusive: no other connection may have the index open (WAL readers hold a shared
    // lock on the file for as long as they are open).
    let exclusive = conn
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .and_then(|()| conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;"));
    if let Err(e) = exclusive {
        return Ok(RepairOutcome::Left(format!(
            "{} is in use ({e}): stop `tern serve` (and any `tern` tool) and run the repair again",
            path.display()
        )));
    }
    let rebuilt = config.data_dir.join("index.sqlite3.rebuilt");
    let _ = std::fs::remove_file(&rebuilt);
    if let Err(e) = copy_tables(&conn, &rebuilt) {
        let _ = std::fs::remove_file(&rebuilt);
        return Ok(RepairOutcome::Left(not_repairable(&path, &e.to_string())));
    }
    match open_read_only(&rebuilt).and_then(|c| integrity(&c)) {
        Ok(p) if p.is_empty() => {}
        Ok(p) => {
            let _ = std::fs::remove_file(&rebuilt);
            return Ok(RepairOutcome::Left(not_repairable(&path, &p.join("; "))));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&rebuilt);
            return Ok(RepairOutcome::Left(not_repairable(&path, &e.to_string())));
        }
    }
    // Closed before the files move: on closing, SQLite removes the WAL by its name.
    drop(conn);
    let kept = config
        .data_dir
        .join(format!("index.sqlite3.damaged-{}", crate::store::now()));
    crate::blobs::sync_dir(&config.data_dir)?;
    std::fs::rename(&path, &kept).map_err(|e| StoreError::io("rename", &path, e))?;
    // The old WAL's content is in the copy (it read through it); keeping the file
    // would apply it to the new database.
    for suffix in ["-wal", "-shm"] {
        let side = config.data_dir.join(format!("index.sqlite3{suffix}"));
        let _ = std::fs::rename(
            &side,
            kept.with_file_name(format!(
                "{}{suffix}",
                kept.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )),
        );
    }
    std::fs::rename(&rebuilt, &path).map_err(|e| StoreError::io("rename", &rebuilt, e))?;
    crate::blobs::sync_dir(&config.data_dir)?;
    Ok(RepairOutcome::Repaired(format!(
        "rebuilt from its tables; the damaged file is kept as {}",
        kept.display()
    )))
}

/// Builds a new database at `to` from the tables of `from`: their definitions, then
/// their rows (read through each table's own b-tree only: the new file has no index
/// yet, so SQLite's copy never reads the old indexes), then the indexes and triggers,
/// built afresh, and the schema version.
fn copy_tables(from: &Connection, to: &Path) -> rusqlite::Result<()> {
    let schema = |kind: &str| -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = from.prepare(
            "SELECT name, sql FROM main.sqlite_master WHERE type = ?1 AND sql IS NOT NULL \
             AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
        Ok(rows)
    };
    let (tables, indexes, triggers) = (schema("table")?, schema("index")?, schema("trigger")?);
    let version: i64 = from.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let fresh = Connection::open(to)?;
    for (_, sql) in &tables {
        fresh.execute_batch(sql)?;
    }
    drop(fresh);
    from.execute("ATTACH DATABASE ?1 AS fresh", [to.to_string_lossy()])?;
    let copied = (|| {
        from.execute_batch("BEGIN")?;
        for (name, _) in &tables {
            let quoted = name.replace('"', "\"\"");
            from.execute(
                &format!("INSERT INTO fresh.\"{quoted}\" SELECT * FROM main.\"{quoted}\""),
                [],
            )?;
        }
        let sequences: bool = from.query_row(
            "SELECT count(*) > 0 FROM main.sqlite_master WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )?;
        if sequences {
            from.execute("DELETE FROM fresh.sqlite_sequence", [])?;
            from.execute(
                "INSERT INTO fresh.sqlite_sequence SELECT * FROM main.sqlite_sequence",
                [],
            )?;
        }
        from.execute_batch("COMMIT")
    })();
    if copied.is_err() {
        let _ = from.execute_batch("ROLLBACK");
    }
    from.execute("DETACH DATABASE fresh", [])?;
    copied?;
    let fresh = Connection::open(to)?;
    for (_, sql) in indexes.iter().chain(&triggers) {
        fresh.execute_batch(sql)?;
    }
    fresh.pragma_update(None, "user_version", version)?;
    Ok(())
}

fn not_repairable(path: &Path, detail: &str) -> String {
    format!(
        "{} is damaged beyond what tern can rebuild ({detail}): stop tern, keep a copy of the \
         data directory, and restore it from a replica or a backup",
        path.display()
    )
}
