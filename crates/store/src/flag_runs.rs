//! Writing a flag store's changed records in few statements.
//!
//! `STORE 1:* +FLAGS (\Seen)` gives most records of a mailbox the same new flags.
//! Written one UPDATE per record, each pays a statement's setup, a statement journal
//! and a primary-key search. Instead, consecutive records that get the same flags
//! are written by one UPDATE over their UID range, which walks the rows in order, and
//! the scattered rest (`STORE 20,40,60... +FLAGS (\Deleted)`) by UPDATEs naming up
//! to [`CHUNK`] UIDs each. Each run and each group of singles is noted in the log of
//! changed ranges (`record_changes`) under its modseq.

use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::{params, params_from_iter, Connection};

use crate::error::{Result, StoreError};
use crate::ids::Uid;
use crate::sql::{built_once, Cached};

/// The most UIDs one statement names (`uid IN (...)`); a shorter list repeats its
/// last UID, so that one prepared statement serves every list.
pub(crate) const CHUNK: usize = 32;

/// `?first, ?first+1, ...`: [`CHUNK`] numbered parameters.
pub(crate) fn uid_params(first: usize) -> String {
    (first..first + CHUNK)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `uids` (at most [`CHUNK`], at least one) padded to [`CHUNK`] with its last UID.
pub(crate) fn padded(uids: &[Uid]) -> impl Iterator<Item = Uid> + '_ {
    let last = uids.last().copied().unwrap_or(0);
    uids.iter()
        .copied()
        .chain(std::iter::repeat(last))
        .take(CHUNK)
}

/// The changed records of one flag store not yet written: runs of live records of
/// the mailbox with no other live record between them, all getting the same flags
/// text and modseq, and single records grouped by the flags they get. Everything
/// pushed is written by [`FlagRuns::finish`], inside the caller's transaction.
pub(crate) struct FlagRuns<'c> {
    conn: &'c Connection,
    mailbox_id: i64,
    run: Option<Run>,
    /// Records alone in their run, by the flags text and modseq they get.
    singles: HashMap<(String, i64), Vec<Uid>>,
}

struct Run {
    lo: Uid,
    hi: Uid,
    records: usize,
    flags: String,
    modseq: i64,
}

impl<'c> FlagRuns<'c> {
    pub(crate) fn new(conn: &'c Connection, mailbox_id: i64) -> FlagRuns<'c> {
        FlagRuns {
            conn,
            mailbox_id,
            run: None,
            singles: HashMap::new(),
        }
    }

    /// Record `uid` gets `flags` at `modseq`. `follows` says it is the next live
    /// record of the mailbox after the one pushed before (no live record between,
    /// none left unchanged), so the two may share a range. UIDs are pushed at most
    /// once each.
    pub(crate) fn push(&mut self, uid: Uid, flags: &str, modseq: i64, follows: bool) -> Result<()> {
        if let Some(run) = self.run.as_mut() {
            if follows && run.hi < uid && run.modseq == modseq && run.flags == flags {
                run.hi = uid;
                run.records += 1;
                return Ok(());
            }
        }
        self.end_run()?;
        self.run = Some(Run {
            lo: uid,
            hi: uid,
            records: 1,
            flags: flags.to_owned(),
            modseq,
        });
        Ok(())
    }

    /// Writes everything pushed.
    ///
    /// The UPDATEs are `OR FAIL`: an error stops the statement without undoing the rows
    /// it already wrote, which spares SQLite a statement journal of every page it
    /// touches. That is safe because an error fails the whole writer job, whose
    /// transaction (or savepoint) is then rolled back; and none is expected, as the
    /// values are never NULL and no key column changes.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.end_run()?;
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = built_once(&SQL, || {
            format!(
                "UPDATE OR FAIL records SET flags = ?1, modseq = ?2 WHERE mailbox_id = ?3 \
                 AND uid IN ({}) AND expunged_modseq IS NULL",
                uid_params(4)
            )
        });
        for ((flags, modseq), uids) in std::mem::take(&mut self.singles) {
            for chunk in uids.chunks(CHUNK) {
                if let [uid] = chunk {
                    // One record (a STORE of one message, the most common): a list
                    // padded to CHUNK would cost SQLite a temporary table of the
                    // repeats.
                    let written = self.conn.execute_cached(
                        "UPDATE OR FAIL records SET flags = ?1, modseq = ?2 WHERE mailbox_id = ?3 \
                         AND uid = ?4 AND expunged_modseq IS NULL",
                        params![&flags, modseq, self.mailbox_id, uid],
                    )?;
                    check(written, 1, *uid, *uid)?;
                    continue;
                }
                let mut stmt = self.conn.prepare_cached(sql)?;
                let head = [
                    rusqlite::types::Value::Text(flags.clone()),
                    rusqlite::types::Value::Integer(modseq),
                    rusqlite::types::Value::Integer(self.mailbox_id),
                ];
                let uids = padded(chunk).map(|u| rusqlite::types::Value::Integer(i64::from(u)));
                let written = stmt.execute(params_from_iter(head.into_iter().chain(uids)))?;
                check(written, chunk.len(), chunk[0], chunk[chunk.len() - 1])?;
            }
            crate::record_changes::note_uids(self.conn, self.mailbox_id, modseq, &uids)?;
        }
        Ok(())
    }

    /// Writes the run in progress if it spans several records; a single record
    /// joins the others that get the same flags.
    fn end_run(&mut self) -> Result<()> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        if run.records == 1 {
            self.singles
                .entry((run.flags, run.modseq))
                .or_default()
                .push(run.lo);
            return Ok(());
        }
        let written = self.conn.execute_cached(
            "UPDATE OR FAIL records SET flags = ?4, modseq = ?5 WHERE mailbox_id = ?1 \
             AND uid BETWEEN ?2 AND ?3 AND expunged_modseq IS NULL",
            params![self.mailbox_id, run.lo, run.hi, &run.flags, run.modseq],
        )?;
        check(written, run.records, run.lo, run.hi)?;
        crate::record_changes::note(self.conn, self.mailbox_id, run.modseq, run.lo, run.hi)
    }
}

/// The records were read in this transaction, which no one else can write: any other
/// count than expected means the reading was wrong, and the store must not commit.
fn check(written: usize, expected: usize, lo: Uid, hi: Uid) -> Result<()> {
    if written != expected {
        return Err(StoreError::CommitFailed(format!(
            "flag store: {written} records written of {expected} (uids {lo}..{hi})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of `records` that a flag store writes, and none of its rows.
    fn empty_table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE records (mailbox_id INTEGER, uid INTEGER, modseq INTEGER, \
             flags TEXT, expunged_modseq INTEGER, PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID; \
             CREATE TABLE record_changes (mailbox_id INTEGER, modseq INTEGER, uid_lo INTEGER, \
             uid_hi INTEGER, PRIMARY KEY (mailbox_id, modseq, uid_lo)) WITHOUT ROWID;",
        )
        .unwrap();
        conn
    }

    /// Mailboxes 1 and 2 with UIDs 1-10 each; mailbox 1's UID 5 is expunged.
    fn table() -> Connection {
        let conn = empty_table();
        for uid in 1..=10 {
            let gone = (uid == 5).then_some(1);
            conn.execute(
                "INSERT INTO records VALUES (1, ?1, 1, '', ?2), (2, ?1, 1, '', NULL)",
                params![uid, gone],
            )
            .unwrap();
        }
        conn
    }

    fn flags_of(conn: &Connection, mailbox: i64) -> Vec<(i64, String, i64)> {
        let mut stmt = conn
            .prepare("SELECT uid, flags, modseq FROM records WHERE mailbox_id = ?1 ORDER BY uid")
            .unwrap();
        let rows = stmt
            .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Whether the log of changed ranges covers `uid` under `modseq`.
    fn logged(conn: &Connection, mailbox: i64, uid: i64, modseq: i64) -> bool {
        conn.query_row(
            "SELECT count(*) > 0 FROM record_changes WHERE mailbox_id = ?1 AND modseq = ?2 \
             AND uid_lo <= ?3 AND uid_hi >= ?3",
            params![mailbox, modseq, uid],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Runs write exactly the records pushed: not the expunged record inside a
    /// range, not a record skipped between two runs, not another mailbox's.
    #[test]
    fn runs_write_exactly_what_was_pushed() {
        let conn = table();
        let mut runs = FlagRuns::new(&conn, 1);
        for (uid, follows) in [(1, false), (2, true), (3, true), (4, true), (6, true)] {
            runs.push(uid, "\\Seen", 7, follows).unwrap();
        }
        // 7 is left as it was: 8 does not follow 6.
        runs.push(8, "\\Seen", 7, false).unwrap();
        runs.push(9, "\\Seen \\Flagged", 7, true).unwrap();
        runs.push(10, "\\Seen \\Flagged", 7, true).unwrap();
        runs.finish().unwrap();
        let got = flags_of(&conn, 1);
        let want: Vec<(i64, String, i64)> = [
            (1, "\\Seen", 7),
            (2, "\\Seen", 7),
            (3, "\\Seen", 7),
            (4, "\\Seen", 7),
            (5, "", 1),
            (6, "\\Seen", 7),
            (7, "", 1),
            (8, "\\Seen", 7),
            (9, "\\Seen \\Flagged", 7),
            (10, "\\Seen \\Flagged", 7),
        ]
        .into_iter()
        .map(|(u, f, m)| (u, f.to_owned(), m))
        .collect();
        assert_eq!(got, want);
        // Every written record is logged; a range may also cover a record it did not
        // change (the expunged 5), but not one left between two runs (7).
        for (uid, _, modseq) in &got {
            assert!(*modseq != 7 || logged(&conn, 1, *uid, 7), "uid {uid}");
        }
        assert!(!logged(&conn, 1, 7, 7));
        assert!(flags_of(&conn, 2)
            .iter()
            .all(|(_, f, m)| f.is_empty() && *m == 1));
    }

    /// Scattered records, more than one statement's worth, are all written, and
    /// nothing between them.
    #[test]
    fn scattered_records_are_written_in_chunks() {
        let conn = empty_table();
        for uid in 1..=200 {
            conn.execute("INSERT INTO records VALUES (1, ?1, 1, '', NULL)", [uid])
                .unwrap();
        }
        let mut runs = FlagRuns::new(&conn, 1);
        let odd: Vec<u32> = (1..=200).filter(|u| u % 2 == 1).collect();
        for &u in &odd {
            let flags = if u % 3 == 0 { "\\Deleted" } else { "\\Seen" };
            runs.push(u, flags, 9, false).unwrap();
        }
        runs.finish().unwrap();
        for (uid, flags, modseq) in flags_of(&conn, 1) {
            let want = match uid {
                u if u % 2 == 0 => ("", 1),
                u if u % 3 == 0 => ("\\Deleted", 9),
                _ => ("\\Seen", 9),
            };
            assert_eq!((flags.as_str(), modseq), want, "uid {uid}");
            assert_eq!(logged(&conn, 1, uid, 9), modseq == 9, "uid {uid}");
        }
    }

    /// A single record that is not live (here expunged) fails the store instead of
    /// counting as written.
    #[test]
    fn a_single_record_not_live_fails() {
        let conn = table();
        let mut runs = FlagRuns::new(&conn, 1);
        runs.push(5, "\\Seen", 7, false).unwrap();
        assert!(matches!(runs.finish(), Err(StoreError::CommitFailed(_))));
        let mut runs = FlagRuns::new(&conn, 1);
        runs.push(6, "\\Seen", 7, false).unwrap();
        runs.finish().unwrap();
        assert!(logged(&conn, 1, 6, 7));
        assert_eq!(flags_of(&conn, 1)[5], (6, "\\Seen".to_owned(), 7));
    }

    /// A run whose range holds a live record it was not told of fails instead of
    /// changing that record silently.
    #[test]
    fn a_run_over_an_unnamed_live_record_fails() {
        let conn = table();
        let mut runs = FlagRuns::new(&conn, 2);
        runs.push(1, "\\Seen", 7, false).unwrap();
        runs.push(3, "\\Seen", 7, true).unwrap();
        assert!(matches!(runs.finish(), Err(StoreError::CommitFailed(_))));
    }
}
