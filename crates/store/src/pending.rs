//! Changes to records logged before they are written into the records' rows.
//!
//! A flag store or an expunge on a large mailbox whose whole read is kept
//! ([`crate::record_cache`]) decides everything from that read, and then only needs
//! to be durable: it appends one row to `pending_changes` (the mailbox, the modseq,
//! the change and its UIDs as ranges) in the transaction that takes its modseq, moves
//! the mailbox's HIGHESTMODSEQ and counters, and names it in the change log. Writing
//! the records' rows (and the records digest and `record_changes` that follow them)
//! is left to the fold, which applies the logged changes in order and writes each
//! record they name once. Why: rewriting the
//! rows is what a store costs SQLite (every page holding one of the records, about
//! 0.7 ms for 148 scattered records; a logged change is one row), and a client that
//! stores flags again and again on the same messages gets its rows written once.
//!
//! Invariant: the records' rows with every pending change of their mailbox applied in
//! `id` order are the mailbox's records. Everything the store reads from the rows
//! (records, flags, modseqs, the records digest, `record_changes`) is read only
//! where its mailbox has no pending change, in the same snapshot: [`Store::read`]
//! and [`Store::write`] fold first, and the reads that can be answered from a kept
//! read call [`require_folded`] before they read rows. The mailbox row (its
//! HIGHESTMODSEQ, counts and last UID) is always current; its records digest is the
//! digest of the rows, so it moves at the fold.
//!
//! A fold needs room on disk (it rewrites the rows' pages), more than the change it
//! folds. So nothing is logged when the data directory's filesystem is below its
//! headroom ([`room_to_fold`]): near a full disk a change writes its rows at once,
//! and succeeds or fails whole. Should the disk fill between a change and its fold,
//! a read that must fold does so in a transaction it rolls back, writing nothing
//! (`Store::read_folded_in_memory`): reads never fail for want of a fold.
//!
//! [`Store::read`]: crate::Store
//! [`Store::write`]: crate::Store

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::digest::RecordsDigest;
use crate::error::{Result, StoreError};
use crate::flag_runs::FlagRuns;
use crate::flag_targets::for_each_target;
use crate::flags::{FlagOp, Flags};
use crate::ids::{Modseq, Uid, UniqueId};
use crate::record_cache::{LiveRecordsCache, StateKey};
use crate::sql::Cached;

/// Pending changes one mailbox may hold; a change beyond it folds them first, so
/// that a read that has to fold never replays more than this.
pub(crate) const MAX_PER_MAILBOX: i64 = 64;

/// True when the filesystem of the data directory (the index's) is above the
/// headroom the store keeps ([`crate::StoreConfig::text_index_headroom`]), so that a
/// change logged now can be folded later; false below it, or when its free space
/// cannot be read.
pub(crate) fn room_to_fold(config: &crate::StoreConfig) -> bool {
    crate::text_index::space_of(&config.data_dir)
        .is_some_and(|space| !crate::text_index::below_headroom(space, config.text_index_headroom))
}

/// A logged change, as stored (`kind`, `op`).
const FLAGS: i64 = 0;
const EXPUNGE: i64 = 1;

/// Logs that the live records `uids` of the mailbox row `mailbox_id` got `op flags`
/// at `modseq`: exactly these records changed (the caller decided it from a kept
/// read), so the fold gives each of them `modseq`.
pub(crate) fn log_flags(
    conn: &Connection,
    mailbox_id: i64,
    modseq: Modseq,
    op: FlagOp,
    flags: &Flags,
    uids: &[Uid],
) -> Result<()> {
    let op = match op {
        FlagOp::Replace => 0,
        FlagOp::Add => 1,
        FlagOp::Remove => 2,
    };
    conn.execute_cached(
        "INSERT INTO pending_changes (mailbox_id, modseq, at, kind, op, flags, uids) \
         VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)",
        params![
            mailbox_id,
            modseq as i64,
            FLAGS,
            op,
            flags.to_string(),
            encode_uids(uids)
        ],
    )?;
    Ok(())
}

/// Logs that the live records `uids` of the mailbox row `mailbox_id` were expunged at
/// `modseq`, at the time `at` (seconds since the epoch, what `expunged_at` gets).
pub(crate) fn log_expunge(
    conn: &Connection,
    mailbox_id: i64,
    modseq: Modseq,
    at: i64,
    uids: &[Uid],
) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO pending_changes (mailbox_id, modseq, at, kind, op, flags, uids) \
         VALUES (?1, ?2, ?3, ?4, 0, '', ?5)",
        params![mailbox_id, modseq as i64, at, EXPUNGE, encode_uids(uids)],
    )?;
    Ok(())
}

/// True when any mailbox has a change not yet folded, in this snapshot.
pub(crate) fn any(conn: &Connection) -> Result<bool> {
    Ok(
        conn.query_row_cached("SELECT EXISTS (SELECT 1 FROM pending_changes)", [], |r| {
            r.get(0)
        })?,
    )
}

/// How many changes of the mailbox row `mailbox_id` are not yet folded.
pub(crate) fn count(conn: &Connection, mailbox_id: i64) -> Result<i64> {
    Ok(conn.query_row_cached(
        "SELECT count(*) FROM pending_changes WHERE mailbox_id = ?1",
        [mailbox_id],
        |r| r.get(0),
    )?)
}

/// `Err(StoreError::Unfolded)` when the mailbox row `mailbox_id` has changes not yet
/// folded in this snapshot: the caller is about to read its records' rows, which do
/// not show them. The read that gets it folds and starts over.
pub(crate) fn require_folded(conn: &Connection, mailbox_id: i64) -> Result<()> {
    let pending: bool = conn.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM pending_changes WHERE mailbox_id = ?1)",
        [mailbox_id],
        |r| r.get(0),
    )?;
    if pending {
        Err(StoreError::Unfolded)
    } else {
        Ok(())
    }
}

/// The UIDs of the mailbox row `mailbox_id` expunged by changes not yet folded, sorted:
/// for a reader that must count live records from the rows without writing
/// (`tern check`).
pub(crate) fn expunged_uids(conn: &Connection, mailbox_id: i64) -> Result<Vec<Uid>> {
    let mut stmt = conn.prepare_cached(
        "SELECT uids FROM pending_changes WHERE mailbox_id = ?1 AND kind = ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![mailbox_id, EXPUNGE])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        out.extend(decode_uids(blob)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Writes every pending change into the records' rows, oldest first, inside the
/// caller's write transaction, and deletes it. Each mailbox's read kept in `kept`
/// (the read of its records with the changes applied) stays kept under the key the
/// fold leaves: the records are the same, only their rows caught up. Returns how
/// many changes were folded.
pub(crate) fn fold_all(conn: &Connection, kept: &LiveRecordsCache) -> Result<usize> {
    if !any(conn)? {
        return Ok(0);
    }
    let mailboxes: Vec<i64> = {
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT mailbox_id FROM pending_changes ORDER BY 1")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids
    };
    let mut folded = 0;
    for mailbox_id in mailboxes {
        let before = state_key(conn, mailbox_id)?;
        folded += fold_mailbox(conn, mailbox_id)?;
        if let (Some(before), Some(after)) = (before, state_key(conn, mailbox_id)?) {
            kept.carry(&before, after, |_| 0);
        }
    }
    Ok(folded)
}

/// The state key of the mailbox row `mailbox_id` while it is live.
fn state_key(conn: &Connection, mailbox_id: i64) -> Result<Option<StateKey>> {
    let uniqueid: Option<String> = conn
        .query_row_cached(
            "SELECT uniqueid FROM mailboxes WHERE id = ?1",
            [mailbox_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = uniqueid.map(UniqueId::from_db) else {
        return Ok(None);
    };
    Ok(crate::mailboxes::live_by_uniqueid(conn, &id)?.map(|m| StateKey::of(&m)))
}

/// One logged change as read back.
struct Logged {
    id: i64,
    modseq: i64,
    at: i64,
    kind: i64,
    op: i64,
    flags: String,
    uids: Vec<u8>,
}

/// A logged change, decoded.
enum Change {
    Flags {
        op: FlagOp,
        flags: Flags,
    },
    Expunge {
        at: i64,
    },
    /// One that could not be decoded, names no record.
    Damaged,
}

/// A logged change as stored, decoded: the change and the records it names.
fn decode(row: &Logged) -> Result<(Change, Vec<Uid>)> {
    let change = match row.kind {
        FLAGS => {
            let op = match row.op {
                0 => FlagOp::Replace,
                1 => FlagOp::Add,
                2 => FlagOp::Remove,
                other => return Err(damaged(row.id, &format!("flag operation {other}"))),
            };
            let flags = Flags::parse_list(&row.flags).map_err(|_| damaged(row.id, "flags"))?;
            Change::Flags { op, flags }
        }
        EXPUNGE => Change::Expunge { at: row.at },
        other => return Err(damaged(row.id, &format!("kind {other}"))),
    };
    Ok((change, decode_uids(&row.uids)?))
}

/// Folds the changes logged for one mailbox, in one pass over the records they name:
/// each record gets what all of them, applied in order, make of it, written once
/// (its last flag change's flags and modseq; then, if a change expunged it, the
/// expunge). The digest and `record_changes` follow what is written, as for a store
/// that wrote its rows at once; a record's intermediate states are no one's to read.
fn fold_mailbox(conn: &Connection, mailbox_id: i64) -> Result<usize> {
    let logged: Vec<Logged> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id, modseq, at, kind, op, flags, uids FROM pending_changes \
             WHERE mailbox_id = ?1 ORDER BY id",
        )?;
        // Read as found: a value of the wrong type is a damaged change (below), not
        // an error that would stop every fold of the mailbox.
        let rows = stmt
            .query_map([mailbox_id], |r| {
                let int = |i: usize| r.get_ref(i).map(|v| v.as_i64().unwrap_or(-1));
                Ok(Logged {
                    id: int(0)?,
                    modseq: int(1)?,
                    at: int(2)?,
                    kind: int(3)?,
                    op: int(4)?,
                    flags: r.get_ref(5)?.as_str().unwrap_or("\u{0}").to_owned(),
                    uids: r
                        .get_ref(6)?
                        .as_blob()
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    let mut changes = Vec::with_capacity(logged.len());
    // The records each change names (sorted, distinct; none for a damaged one).
    let mut names: Vec<Vec<Uid>> = Vec::with_capacity(logged.len());
    for row in &logged {
        match decode(row) {
            Ok((change, uids)) => {
                changes.push(change);
                names.push(uids);
            }
            Err(e) => {
                // Only damage to the index can make one: dropping it loses that one
                // change (whose counts already moved, which `tern check` repairs),
                // where failing would stop every read of the mailbox.
                tracing::error!(
                    mailbox = mailbox_id,
                    error = %e,
                    "a logged change is damaged and is dropped; run `tern check`"
                );
                changes.push(Change::Damaged);
                names.push(Vec::new());
            }
        }
    }
    let mut runs = FlagRuns::new(conn, mailbox_id);
    let mut delta = RecordsDigest::default();
    let mut previous_written = false;
    // The records each expunge takes, by change.
    let mut expunged: BTreeMap<usize, Vec<Uid>> = BTreeMap::new();
    // Records come in UID order: each change's list is walked once, a cursor each
    // (a map from record to changes cost a lookup per change and record, most of a
    // fold of 64 changes of a whole mailbox).
    let mut cursors = vec![0usize; names.len()];
    for_each_target(conn, mailbox_id, None, true, union_of(&names), |rec| {
        let follows = previous_written && rec.follows;
        previous_written = false;
        let mut flags = rec.flags.clone();
        let mut modseq = None;
        for (i, (named, at)) in names.iter().zip(cursors.iter_mut()).enumerate() {
            while named.get(*at).is_some_and(|&u| u < rec.uid) {
                *at += 1;
            }
            if named.get(*at) != Some(&rec.uid) {
                continue;
            }
            match &changes[i] {
                Change::Flags { op, flags: given } => {
                    flags = flags.apply(*op, given);
                    modseq = Some(logged[i].modseq);
                }
                Change::Expunge { .. } => {
                    expunged.entry(i).or_default().push(rec.uid);
                    break;
                }
                Change::Damaged => {}
            }
        }
        if let Some(m) = modseq {
            let text = flags.to_string();
            runs.push(rec.uid, &text, m, follows)?;
            previous_written = true;
            delta = delta.fold(&rec.hash()).fold(&rec.hash_as(m, &text));
        }
        Ok(())
    })?;
    runs.finish()?;
    crate::digest::apply_delta(conn, mailbox_id, &delta)?;
    for (i, uids) in expunged {
        let Change::Expunge { at } = changes[i] else {
            continue;
        };
        crate::flagging::expunge_rows(
            conn,
            mailbox_id,
            &uids,
            logged[i].modseq as Modseq,
            at,
            false,
        )?;
    }
    conn.execute_cached(
        "DELETE FROM pending_changes WHERE mailbox_id = ?1",
        [mailbox_id],
    )?;
    Ok(logged.len())
}

/// Every UID of sorted, distinct lists, once, in order. A list equal to the union so
/// far (a client storing flags on the same messages again and again) costs one
/// comparison of the two.
fn union_of(lists: &[Vec<Uid>]) -> Vec<Uid> {
    let mut all: Vec<Uid> = Vec::new();
    for list in lists {
        if list.is_empty() || *list == all {
            continue;
        }
        let mut merged = Vec::with_capacity(all.len().max(list.len()));
        let (mut a, mut b) = (all.iter().peekable(), list.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) => {
                    if x <= y {
                        a.next();
                    }
                    if y <= x {
                        b.next();
                    }
                    x.min(y)
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, Some(&&y)) => {
                    b.next();
                    y
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        all = merged;
    }
    all
}

fn damaged(id: i64, what: &str) -> StoreError {
    StoreError::CommitFailed(format!("pending change {id}: damaged {what}"))
}

/// UIDs (sorted, distinct) as runs: each run its first and last UID, four bytes each,
/// little-endian.
fn encode_uids(uids: &[Uid]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let lo = uids[i];
        let mut hi = lo;
        while i + 1 < uids.len() && uids[i + 1] == hi.wrapping_add(1) {
            i += 1;
            hi = uids[i];
        }
        out.extend_from_slice(&lo.to_le_bytes());
        out.extend_from_slice(&hi.to_le_bytes());
        i += 1;
    }
    out
}

/// The UIDs [`encode_uids`] wrote; a blob that is not a list of ascending runs is an
/// error, never a guess.
fn decode_uids(blob: &[u8]) -> Result<Vec<Uid>> {
    if !blob.len().is_multiple_of(8) {
        return Err(StoreError::CommitFailed(
            "pending change: UID runs of a bad length".into(),
        ));
    }
    let mut out = Vec::new();
    let mut last: Option<Uid> = None;
    for run in blob.chunks_exact(8) {
        let lo = Uid::from_le_bytes([run[0], run[1], run[2], run[3]]);
        let hi = Uid::from_le_bytes([run[4], run[5], run[6], run[7]]);
        if hi < lo || last.is_some_and(|l| lo <= l) {
            return Err(StoreError::CommitFailed(
                "pending change: UID runs out of order".into(),
            ));
        }
        out.extend(lo..=hi);
        last = Some(hi);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_union_holds_every_uid_once_in_order() {
        let lists = vec![
            vec![2, 4, 6, 8],
            vec![],
            vec![2, 4, 6, 8],
            vec![1, 4, 9],
            vec![10, 11],
            vec![1, 2],
        ];
        assert_eq!(union_of(&lists), vec![1, 2, 4, 6, 8, 9, 10, 11]);
        assert_eq!(union_of(&[]), Vec::<Uid>::new());
        let mut dice = crate::content::Dice(7);
        for _ in 0..50 {
            let lists: Vec<Vec<Uid>> = (0..dice.next(6))
                .map(|_| {
                    let mut l: Vec<Uid> =
                        (0..dice.next(30)).map(|_| dice.next(60) as Uid).collect();
                    l.sort_unstable();
                    l.dedup();
                    l
                })
                .collect();
            let mut expected: Vec<Uid> = lists.concat();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(union_of(&lists), expected, "{lists:?}");
        }
    }

    #[test]
    fn uid_runs_round_trip() {
        for uids in [
            vec![],
            vec![1],
            vec![1, 2, 3, 7, 9, 10, u32::MAX - 1, u32::MAX],
            (1..=2964).collect::<Vec<Uid>>(),
            (1..=2964).filter(|u| u % 20 == 0).collect(),
        ] {
            assert_eq!(decode_uids(&encode_uids(&uids)).unwrap(), uids);
        }
        assert_eq!(encode_uids(&(1..=2964).collect::<Vec<_>>()).len(), 8);
    }

    #[test]
    fn damaged_runs_are_errors() {
        assert!(decode_uids(&[1, 0, 0]).is_err());
        let backwards = [5u32.to_le_bytes(), 4u32.to_le_bytes()].concat();
        assert!(decode_uids(&backwards).is_err());
        let overlapping = [1u32, 5, 5, 6]
            .iter()
            .flat_map(|u| u.to_le_bytes())
            .collect::<Vec<_>>();
        assert!(decode_uids(&overlapping).is_err());
    }
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod store_tests;
