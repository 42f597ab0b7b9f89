//! Which records changed after a modseq: the per-mailbox log of changed UID ranges.
//!
//! IMAP sessions (after another session's change, CONDSTORE's CHANGEDSINCE, QRESYNC)
//! and replication ask for the records of a mailbox whose modseq is above some value.
//! An index on `records(mailbox_id, modseq)` answers that, but every flag change then
//! deletes and re-inserts one index entry per record, each a search from the root of
//! the index: for `STORE 1:* +FLAGS (\Seen)` on 3,000 messages that was more than half
//! of the store's cost. Instead, each change notes the UID ranges it wrote under its
//! modseq in `record_changes`, one row per range: a store over a whole mailbox is one
//! row, appended at the end of the log's b-tree.
//!
//! The invariant, checked and repaired by `tern check`: every record whose modseq `m`
//! is above its mailbox's `changes_from` has a row `(mailbox, m, lo, hi)` with
//! `lo <= uid <= hi`. So the records changed after any `since >= changes_from` are
//! among the ranges logged after `since`; a range may also cover records that did not
//! change, which the read filters by modseq. Older questions (`since < changes_from`,
//! after the log was pruned or from before schema 13) scan the mailbox's records.
//!
//! Inserted records are noted by a trigger (every insert path gets it for free, and an
//! insert is one row anyway); updates that set a modseq note their ranges themselves,
//! because a trigger costs each updated row a frame even when it does nothing.

use std::sync::OnceLock;

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::flag_runs::CHUNK;
use crate::ids::{Modseq, Uid};
use crate::records::Record;
use crate::sql::{built_once, Cached};

/// More changed ranges than this after `since` and the mailbox is scanned instead of
/// read range by range.
const MAX_RANGES: usize = 512;

/// How often (in modseqs of the user) a noting write checks whether its mailbox's log
/// should be pruned.
const PRUNE_EVERY: i64 = 128;

/// A mailbox's log is pruned to half once it holds more rows than this many, or four
/// per live message if that is more.
const PRUNE_ABOVE: i64 = 1024;

/// Notes that the records `lo..=hi` of the mailbox (those of them that exist) got
/// `modseq`, in the caller's transaction.
pub(crate) fn note(
    conn: &Connection,
    mailbox_id: i64,
    modseq: i64,
    lo: impl Into<i64>,
    hi: impl Into<i64>,
) -> Result<()> {
    insert_range(conn, mailbox_id, modseq, lo.into(), hi.into())?;
    if modseq % PRUNE_EVERY == 0 {
        prune(conn, mailbox_id)?;
    }
    Ok(())
}

/// Up to this many ranges are written one statement each by [`note_uids`].
const FEW: usize = 4;

/// Logs one range, widening a range logged before under the same modseq and start.
fn insert_range(conn: &Connection, mailbox_id: i64, modseq: i64, lo: i64, hi: i64) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO record_changes (mailbox_id, modseq, uid_lo, uid_hi) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO UPDATE SET uid_hi = max(uid_hi, excluded.uid_hi)",
        params![mailbox_id, modseq, lo, hi],
    )?;
    Ok(())
}

/// Notes that the records with these UIDs got `modseq`: one row per run of
/// consecutive UIDs, written [`CHUNK`] rows per statement (a scattered `STORE` of 150
/// records would otherwise pay 150 statements).
pub(crate) fn note_uids(
    conn: &Connection,
    mailbox_id: i64,
    modseq: i64,
    uids: &[Uid],
) -> Result<()> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let ranges = runs(&sorted);
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = built_once(&SQL, || {
        let rows: Vec<String> = (0..CHUNK)
            .map(|i| format!("(?1, ?2, ?{}, ?{})", 3 + 2 * i, 4 + 2 * i))
            .collect();
        format!(
            "INSERT INTO record_changes (mailbox_id, modseq, uid_lo, uid_hi) VALUES {} \
             ON CONFLICT DO UPDATE SET uid_hi = max(uid_hi, excluded.uid_hi)",
            rows.join(", ")
        )
    });
    for chunk in ranges.chunks(CHUNK) {
        if chunk.len() <= FEW {
            // Padded to CHUNK rows, a few ranges would cost an upsert per repeat.
            for &(lo, hi) in chunk {
                insert_range(conn, mailbox_id, modseq, i64::from(lo), i64::from(hi))?;
            }
            continue;
        }
        let Some(&last) = chunk.last() else { continue };
        // A shorter chunk repeats its last range, which the upsert absorbs.
        let pairs = chunk
            .iter()
            .copied()
            .chain(std::iter::repeat(last))
            .take(CHUNK)
            .flat_map(|(lo, hi)| [i64::from(lo), i64::from(hi)]);
        let values = [mailbox_id, modseq].into_iter().chain(pairs);
        conn.prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(values))?;
    }
    if !ranges.is_empty() && modseq % PRUNE_EVERY == 0 {
        prune(conn, mailbox_id)?;
    }
    Ok(())
}

/// Runs of consecutive numbers in sorted, distinct `uids`, as `(first, last)`.
fn runs(uids: &[Uid]) -> Vec<(Uid, Uid)> {
    let mut out: Vec<(Uid, Uid)> = Vec::new();
    for &uid in uids {
        match out.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(uid) => *hi = uid,
            _ => out.push((uid, uid)),
        }
    }
    out
}

/// The records of the mailbox (expunged ones included) whose modseq is above
/// `since`, in UID order, as read in the caller's transaction.
pub(crate) fn changed_records(
    conn: &Connection,
    mailbox_id: i64,
    since: Modseq,
) -> Result<Vec<Record>> {
    let since = since as i64;
    let from: i64 = conn.query_row_cached(
        "SELECT changes_from FROM mailboxes WHERE id = ?1",
        [mailbox_id],
        |r| r.get(0),
    )?;
    let ranges = if since < from {
        None
    } else {
        logged_ranges(conn, mailbox_id, since)?
    };
    let Some(ranges) = ranges else {
        let sql = format!(
            "SELECT {} FROM records WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
            Record::COLUMNS
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![mailbox_id, since], Record::from_row)?
            .collect::<rusqlite::Result<_>>()?;
        return Ok(rows);
    };
    let sql = format!(
        "SELECT {} FROM records WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 \
         AND modseq > ?4 ORDER BY uid",
        Record::COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    for (lo, hi) in ranges {
        let rows = stmt.query_map(params![mailbox_id, lo, hi, since], Record::from_row)?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// The UID ranges logged after `since`, sorted and merged; `None` when there are too
/// many to read one by one.
fn logged_ranges(
    conn: &Connection,
    mailbox_id: i64,
    since: i64,
) -> Result<Option<Vec<(Uid, Uid)>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid_lo, uid_hi FROM record_changes WHERE mailbox_id = ?1 AND modseq > ?2",
    )?;
    let mut rows = stmt.query(params![mailbox_id, since])?;
    let mut ranges: Vec<(Uid, Uid)> = Vec::new();
    while let Some(row) = rows.next()? {
        if ranges.len() == MAX_RANGES {
            return Ok(None);
        }
        ranges.push((row.get(0)?, row.get(1)?));
    }
    Ok(Some(merged(ranges)))
}

/// Sorts `ranges` and merges those that overlap or touch.
fn merged(mut ranges: Vec<(Uid, Uid)>) -> Vec<(Uid, Uid)> {
    ranges.sort_unstable();
    let mut out: Vec<(Uid, Uid)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some((_, last)) if lo <= last.saturating_add(1) => *last = (*last).max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Drops the older half of the mailbox's log once it outgrows its mailbox, and moves
/// `changes_from` up to match: questions about older modseqs then scan the mailbox,
/// which is what they would read most of anyway.
pub(crate) fn prune(conn: &Connection, mailbox_id: i64) -> Result<()> {
    let (rows, messages): (i64, i64) = conn.query_row_cached(
        "SELECT (SELECT count(*) FROM record_changes WHERE mailbox_id = ?1), \
                (SELECT messages FROM mailboxes WHERE id = ?1)",
        [mailbox_id],
        |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
    )?;
    if rows <= PRUNE_ABOVE.max(messages.saturating_mul(4)) {
        return Ok(());
    }
    let keep_from: i64 = conn.query_row_cached(
        "SELECT modseq FROM record_changes WHERE mailbox_id = ?1 ORDER BY modseq LIMIT 1 OFFSET ?2",
        params![mailbox_id, rows / 2],
        |r| r.get(0),
    )?;
    conn.execute_cached(
        "DELETE FROM record_changes WHERE mailbox_id = ?1 AND modseq < ?2",
        params![mailbox_id, keep_from],
    )?;
    conn.execute_cached(
        "UPDATE mailboxes SET changes_from = max(changes_from, ?2 - 1) WHERE id = ?1",
        params![mailbox_id, keep_from],
    )?;
    Ok(())
}

/// Forgets the log of a mailbox whose records are all being deleted.
pub(crate) fn forget(conn: &Connection, mailbox_id: i64) -> Result<()> {
    conn.execute_cached(
        "DELETE FROM record_changes WHERE mailbox_id = ?1",
        [mailbox_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, FlagOp, Flags, Store, StoreConfig};

    fn owner() -> Actor {
        Actor {
            name: "u".into(),
            is_admin: false,
        }
    }

    /// What changed since each modseq, answered from the log, is exactly what a scan
    /// of every record says: through appends, whole-mailbox and scattered flag stores,
    /// expunges, more ranges than are read one by one, and the log's pruning (after
    /// which older questions scan).
    #[test]
    fn changed_since_matches_a_scan_through_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("u", None, false).unwrap();
        let append = |n: u32| {
            let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
            store
                .append_as_owner("u", "INBOX", &Flags::new(), 0, body.as_bytes())
                .unwrap();
        };
        for n in 0..40 {
            append(n);
        }
        let inbox = store.mailbox("u", "INBOX").unwrap().unwrap().uniqueid;
        let seen = Flags::parse_list("\\Seen").unwrap();
        let check = |label: &str| {
            let (mailbox, all) = store.all_records(&inbox).unwrap();
            let mut since = 0;
            while since <= mailbox.highest_modseq {
                let (_, got) = store.changed_since(&owner(), &inbox, since).unwrap();
                let want: Vec<_> = all.iter().filter(|r| r.modseq > since).cloned().collect();
                assert_eq!(got, want, "{label}: since {since}");
                let mut replicated = store.changes_since(&inbox, since).unwrap().records;
                replicated.sort_by_key(|r| r.uid);
                assert_eq!(replicated, want, "{label}, replication: since {since}");
                since += 1;
            }
        };
        check("appends");
        for k in 0u32..1500 {
            let (_, live) = store.all_records(&inbox).unwrap();
            let live: Vec<u32> = live
                .iter()
                .filter(|r| r.expunged_modseq.is_none())
                .map(|r| r.uid)
                .collect();
            // The same flags for every record, so that they are written as one run.
            let all = if (k / 50) % 2 == 0 {
                seen.clone()
            } else {
                Flags::new()
            };
            match k % 50 {
                0 => {
                    store
                        .store_flags(&owner(), &inbox, &live, FlagOp::Replace, &all, None)
                        .unwrap();
                }
                25 => {
                    store
                        .expunge(&owner(), &inbox, &[live[(k as usize) % live.len()]])
                        .unwrap();
                    append(k);
                }
                _ => {
                    let uid = live[(k as usize * 7) % live.len()];
                    let keyword = Flags::parse_list(&format!("$K{}", k % 3)).unwrap();
                    store
                        .store_flags(&owner(), &inbox, &[uid], FlagOp::Replace, &keyword, None)
                        .unwrap();
                }
            }
            if k == 600 {
                check("scattered stores");
            }
            if k == 1400 {
                check("a whole-mailbox store");
            }
        }
        let (from, rows): (i64, i64) = store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT changes_from, (SELECT count(*) FROM record_changes) FROM mailboxes \
                     WHERE uniqueid = ?1",
                    [inbox.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap();
        assert!(
            from > 0 && rows <= PRUNE_ABOVE + PRUNE_EVERY,
            "changes_from {from}, {rows} rows"
        );
        check("after pruning");
        let options = crate::CheckOptions::default();
        let report = crate::check(&StoreConfig::new(dir.path()), &options).unwrap();
        assert_eq!(report.damage().count(), 0, "{:?}", report.findings);
    }

    /// A store from before the log (schema 12) answers every question after the
    /// upgrade: older ones by scanning, newer ones from the log its new changes fill.
    #[test]
    fn an_upgraded_store_answers_old_and_new_questions() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer());
        let store = open().unwrap();
        store.create_user("u", None, false).unwrap();
        for n in 0..20 {
            let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
            store
                .append_as_owner("u", "INBOX", &Flags::new(), 0, body.as_bytes())
                .unwrap();
        }
        let inbox = store.mailbox("u", "INBOX").unwrap().unwrap().uniqueid;
        let seen = Flags::parse_list("\\Seen").unwrap();
        store
            .store_flags(&owner(), &inbox, &[3, 4, 5], FlagOp::Add, &seen, None)
            .unwrap();
        store.expunge(&owner(), &inbox, &[7]).unwrap();
        let before = store.mailbox("u", "INBOX").unwrap().unwrap().highest_modseq;
        drop(store);
        let conn = Connection::open(dir.path().join("index.sqlite3")).unwrap();
        crate::schema::downgrade_to_v12(&conn);
        drop(conn);
        let store = open().unwrap();
        let from: i64 = store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT changes_from FROM mailboxes WHERE uniqueid = ?1",
                    [inbox.as_str()],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(from, before as i64);
        store
            .store_flags(&owner(), &inbox, &[1, 2, 9], FlagOp::Add, &seen, None)
            .unwrap();
        store.expunge(&owner(), &inbox, &[12]).unwrap();
        let (mailbox, all) = store.all_records(&inbox).unwrap();
        for since in 0..=mailbox.highest_modseq {
            let want: Vec<_> = all.iter().filter(|r| r.modseq > since).cloned().collect();
            let (_, got) = store.changed_since(&owner(), &inbox, since).unwrap();
            assert_eq!(got, want, "since {since}");
        }
        let report = crate::check(
            &StoreConfig::new(dir.path()),
            &crate::CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(report.damage().count(), 0, "{:?}", report.findings);
    }

    /// Scattered UIDs, more than one statement's worth, are each covered, and the
    /// UIDs between them are not.
    #[test]
    fn scattered_uids_are_noted_in_chunks() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE record_changes (mailbox_id INTEGER, modseq INTEGER, uid_lo INTEGER, \
             uid_hi INTEGER, PRIMARY KEY (mailbox_id, modseq, uid_lo)) WITHOUT ROWID;",
        )
        .unwrap();
        let uids: Vec<Uid> = (1..=300).filter(|u| u % 3 != 2).rev().collect();
        note_uids(&conn, 1, 5, &uids).unwrap();
        for uid in 1..=301u32 {
            let covered: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM record_changes WHERE mailbox_id = 1 AND modseq = 5 \
                     AND uid_lo <= ?1 AND uid_hi >= ?1",
                    [uid],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(covered, uid <= 300 && uid % 3 != 2, "uid {uid}");
        }
    }

    #[test]
    fn runs_split_at_gaps() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert_eq!(
            runs(&[u32::MAX - 1, u32::MAX]),
            vec![(u32::MAX - 1, u32::MAX)]
        );
    }

    #[test]
    fn merged_joins_overlapping_and_touching_ranges() {
        assert_eq!(
            merged(vec![
                (10, 20),
                (1, 3),
                (4, 4),
                (15, 30),
                (40, 40),
                (u32::MAX, u32::MAX)
            ]),
            vec![(1, 4), (10, 30), (40, 40), (u32::MAX, u32::MAX)]
        );
    }
}
