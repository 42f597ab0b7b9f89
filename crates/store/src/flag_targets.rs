//! The live records a flag store changes, as it finds them: from a kept read of the
//! whole mailbox when the mailbox row shows no change since it was taken
//! ([`crate::record_cache`]), else from the index.
//!
//! A client that stores flags has nearly always just read the mailbox (a FETCH of
//! every message's flags, a SEARCH), and a store that committed leaves the kept read
//! of the state it made. Taking the records from there spares reading each again
//! inside the write transaction, which held the writer for a fifth of
//! `STORE 1:* +FLAGS`.

use rusqlite::{params, Connection};

use crate::digest::{record_hash, HashedColumns};
use crate::error::Result;
use crate::flagging::FlagChange;
use crate::flags::Flags;
use crate::ids::Uid;
use crate::record_cache::keyword_bytes;
use crate::records::Record;

/// One live record of the set, as the store found it: what it needs to decide the
/// change, and what the record's digest hash covers.
pub(crate) struct Target<'a> {
    pub(crate) uid: Uid,
    /// The record before it in the mailbox's live records is in the set too (and was
    /// handed over just before), so the two may share one write.
    pub(crate) follows: bool,
    pub(crate) modseq: i64,
    /// Borrowed from the kept read when there is one: a `STORE 1:*` hands over every
    /// record of the mailbox, and copying each one's flags was a twentieth of it.
    pub(crate) flags: &'a Flags,
    /// The flags as stored, the text the digest hash covers (empty from a kept read
    /// taken without hashes, see [`for_each_target`]).
    pub(crate) text: &'a str,
    internaldate: i64,
    size: i64,
    guid: &'a [u8],
    pop3_uidl: Option<&'a str>,
}

impl Target<'_> {
    /// The record's hash as stored.
    pub(crate) fn hash(&self) -> [u8; 16] {
        self.hash_as(self.modseq, self.text)
    }

    /// The record's hash once it holds `flags` (stored text) at `modseq`.
    pub(crate) fn hash_as(&self, modseq: i64, flags: &str) -> [u8; 16] {
        record_hash(
            i64::from(self.uid),
            modseq,
            self.internaldate,
            self.size,
            self.guid,
            0,
            flags,
            self.pop3_uidl,
        )
    }
}

/// Hands `each` every live record among `uids` of the mailbox row `mailbox_id`, in UID
/// order. `kept` is the kept read of the mailbox's live records under the state this
/// transaction reads, when there is one (its flags written out are the stored text,
/// which `records::live_records` checks before keeping a read); without it the
/// records are read from the index. With `hashes` false, a record taken from `kept`
/// comes without its stored text (empty), so its hash must not be asked for: a change
/// logged for a later fold (`pending.rs`) hashes nothing, and writing out the flags
/// of every record of a `STORE 1:*` was a fifth of its work.
pub(crate) fn for_each_target(
    conn: &Connection,
    mailbox_id: i64,
    kept: Option<&[Record]>,
    hashes: bool,
    mut uids: Vec<Uid>,
    mut each: impl FnMut(Target<'_>) -> Result<()>,
) -> Result<()> {
    uids.sort_unstable();
    uids.dedup();
    match kept {
        Some(live) => from_kept(live, &uids, hashes, each),
        None => {
            for rec in live_flags(conn, mailbox_id, &uids)? {
                let c = &rec.columns;
                // Stored flags were validated on the way in; a damaged value counts
                // as none, as a FETCH would show it.
                let flags = Flags::parse_list(&c.flags).unwrap_or_default();
                each(Target {
                    uid: rec.uid,
                    follows: rec.follows,
                    modseq: c.modseq,
                    flags: &flags,
                    text: &c.flags,
                    internaldate: c.internaldate,
                    size: c.size,
                    guid: &c.guid,
                    pop3_uidl: c.pop3_uidl.as_deref(),
                })?;
            }
            Ok(())
        }
    }
}

/// [`for_each_target`] from a kept read: sorted, distinct `uids` looked up in `live`
/// (in UID order), each from where the one before was found; with `hashes`, each with
/// its flags written out as stored.
fn from_kept(
    live: &[Record],
    uids: &[Uid],
    hashes: bool,
    mut each: impl FnMut(Target<'_>) -> Result<()>,
) -> Result<()> {
    let mut text = String::new();
    let mut from = 0;
    let mut previous: Option<usize> = None;
    for &uid in uids {
        let at = position(live, from, uid);
        from = at;
        let Some(r) = live.get(at).filter(|r| r.uid == uid) else {
            continue;
        };
        text.clear();
        if hashes {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(text, "{}", r.flags);
        }
        each(Target {
            uid,
            follows: at > 0 && previous == Some(at - 1),
            modseq: r.modseq as i64,
            flags: &r.flags,
            text: &text,
            internaldate: r.internaldate,
            size: r.size as i64,
            guid: r.guid.as_bytes(),
            pop3_uidl: r.pop3_uidl.as_deref(),
        })?;
        previous = Some(at);
    }
    Ok(())
}

/// Where `uid` is, or would go, in `live` (in UID order) at or after `from`: by
/// galloping from `from` (1, 2, 4, ... records ahead), then a binary search within
/// the last step. A dense set finds each record next to the one before; a scattered
/// one (every 20th message) looks only near it, where a binary search of the whole
/// rest of the read began half a mailbox away, in memory no earlier lookup touched.
fn position(live: &[Record], from: usize, uid: Uid) -> usize {
    let rest = &live[from.min(live.len())..];
    let mut ahead = 1;
    while ahead < rest.len() && rest[ahead - 1].uid < uid {
        ahead *= 2;
    }
    let lo = ahead / 2;
    let hi = ahead.min(rest.len());
    from + lo + rest[lo..hi].partition_point(|r| r.uid < uid)
}

/// Applies `changed` (in UID order, each a record of `live`) to the kept read `live`:
/// the live records as the store that made those changes left them. Returns by how
/// many bytes the kept keywords grew (negative: shrank).
pub(crate) fn apply_to_kept(after: &mut [Record], changed: &[FlagChange]) -> isize {
    let mut from = 0;
    let mut grown = 0isize;
    for change in changed {
        let at = position(after, from, change.uid);
        if let Some(r) = after.get_mut(at).filter(|r| r.uid == change.uid) {
            grown += keyword_bytes(&change.flags) as isize - keyword_bytes(&r.flags) as isize;
            r.flags = change.flags.clone();
            r.modseq = change.modseq;
        }
        from = at;
    }
    grown
}

/// What a flag store reads of a live record from the index: its flags and modseq,
/// and the rest of what its digest hash covers.
struct LiveRecord {
    uid: Uid,
    columns: HashedColumns,
    /// Read in a range scan right after the record before it in the list, with no
    /// live record of the mailbox between them.
    follows: bool,
}

impl LiveRecord {
    /// Selected as `uid, ` then [`HashedColumns::LIVE`].
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LiveRecord> {
        Ok(LiveRecord {
            uid: row.get::<_, i64>(0)? as Uid,
            columns: HashedColumns::from_row(row, 1)?,
            follows: false,
        })
    }
}

/// The live records among sorted, distinct `uids` of the mailbox row `mailbox_id`,
/// in UID order. A set that covers most of its span (`1:*`, a long range) is read in
/// one range scan; a sparse one record by record.
fn live_flags(conn: &Connection, mailbox_id: i64, uids: &[Uid]) -> Result<Vec<LiveRecord>> {
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(uids.len());
    if uids.len() >= 16 && u64::from(hi - lo) < 4 * uids.len() as u64 {
        static SCAN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let mut scan = conn.prepare_cached(crate::sql::built_once(&SCAN, || {
            format!(
                "SELECT uid, {} FROM records WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 \
                 AND expunged_modseq IS NULL ORDER BY uid",
                HashedColumns::LIVE
            )
        }))?;
        let mut rows = scan.query(params![mailbox_id, lo, hi])?;
        let mut follows = false;
        while let Some(row) = rows.next()? {
            let uid = row.get::<_, i64>(0)? as Uid;
            if uids.binary_search(&uid).is_ok() {
                out.push(LiveRecord {
                    follows,
                    ..LiveRecord::from_row(row)?
                });
                follows = true;
            } else {
                follows = false;
            }
        }
        return Ok(out);
    }
    // Scattered: a statement per chunk of UIDs (see `flag_runs`), in UID order.
    static READ: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut read = conn.prepare_cached(crate::sql::built_once(&READ, || {
        format!(
            "SELECT uid, {} FROM records WHERE mailbox_id = ?1 AND uid IN ({}) \
             AND expunged_modseq IS NULL ORDER BY uid",
            HashedColumns::LIVE,
            crate::flag_runs::uid_params(2)
        )
    }))?;
    for chunk in uids.chunks(crate::flag_runs::CHUNK) {
        let values =
            std::iter::once(mailbox_id).chain(crate::flag_runs::padded(chunk).map(i64::from));
        let mut rows = read.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            out.push(LiveRecord::from_row(row)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::content::Dice;
    use crate::flags::{Flag, FlagOp, Flags};
    use crate::ids::Uid;
    use crate::record_cache::StateKey;
    use crate::{Actor, Store, UniqueId};

    /// Every live record of INBOX as its row holds it: `(uid, flags text, modseq)`.
    fn rows(store: &Store) -> Vec<(i64, String, i64)> {
        store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT uid, flags, modseq FROM records WHERE expunged_modseq IS NULL \
                     AND mailbox_id = (SELECT id FROM mailboxes WHERE name = 'INBOX') \
                     ORDER BY uid",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap()
    }

    /// The digest the mailbox row holds, and the one its records give.
    fn digests(store: &Store) -> (crate::RecordsDigest, crate::RecordsDigest) {
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        let recomputed = store
            .read(|c| crate::digest::recompute_records_digest(c, mailbox.id))
            .unwrap();
        (mailbox.digest, recomputed)
    }

    /// Whether a read of INBOX is kept under the state its row now has.
    fn kept(store: &Store) -> bool {
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        store
            .shared
            .live_records
            .get(&StateKey::of(&mailbox))
            .is_some()
    }

    /// Two stores holding the same mailbox take the same flag stores, one from the
    /// kept read of its mailbox (a whole read first, then each store's own), the other
    /// from its index. They report the same outcome every time and end with the same
    /// rows and the same digest, which is what their records give; the kept read stays
    /// the rows' own, expunges between the stores included. Dense, scattered and
    /// repeated sets, UIDs expunged or past the end, every kind of store, keywords and
    /// UNCHANGEDSINCE.
    /// Every UID's place, present or not, from every starting point before it.
    #[test]
    fn positions_are_those_of_a_search() {
        let live: Vec<crate::Record> = [2u32, 3, 5, 8, 13, 21, 34, 55, 89, 144]
            .into_iter()
            .map(|uid| crate::Record {
                uid,
                modseq: 1,
                flags: Flags::new(),
                internaldate: 0,
                size: 0,
                guid: crate::Guid::of(b""),
                expunged_modseq: None,
                pop3_uidl: None,
                saved_at: None,
            })
            .collect();
        for uid in 0..150 {
            let want = live.partition_point(|r| r.uid < uid);
            for from in 0..=want {
                assert_eq!(
                    super::position(&live, from, uid),
                    want,
                    "uid {uid} from {from}"
                );
            }
        }
    }

    #[test]
    fn stores_from_a_kept_read_match_stores_from_the_index() {
        let (_a, kept_side, actor, inbox) = crate::content::store_with_inbox(400);
        let (_b, index_side, _, other_inbox) = crate::content::store_with_inbox(400);
        for (store, mailbox) in [(&kept_side, &inbox), (&index_side, &other_inbox)] {
            store.expunge(&actor, mailbox, &[5, 6, 7, 200]).unwrap();
            store.create_mailbox("u", "Elsewhere", None).unwrap();
        }
        let warm = |store: &Store, inbox: &UniqueId| store.records(&actor, inbox, false).unwrap();
        warm(&kept_side, &inbox);
        let pool = [
            Flag::Seen,
            Flag::Deleted,
            Flag::Flagged,
            Flag::Keyword("$Work".into()),
            Flag::Keyword("Junk".into()),
        ];
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let uids: Vec<Uid> = match dice.next(4) {
                0 => (1..=410).collect(),
                1 => {
                    let lo = 1 + dice.next(400) as Uid;
                    (lo..lo + 1 + dice.next(80) as Uid).rev().collect()
                }
                2 => (0..1 + dice.next(60))
                    .map(|_| 1 + dice.next(405) as Uid)
                    .collect(),
                _ => vec![1 + dice.next(400) as Uid],
            };
            let flags: Flags = (0..1 + dice.next(3))
                .map(|_| pool[dice.next(pool.len() as u64) as usize].clone())
                .collect();
            let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][dice.next(3) as usize];
            let highest = kept_side
                .mailbox("u", "INBOX")
                .unwrap()
                .unwrap()
                .highest_modseq;
            let since = (dice.next(4) == 0).then(|| highest.saturating_sub(dice.next(3)));
            let store = |s: &Store, m: &UniqueId| {
                s.store_flags(&actor, m, &uids, op, &flags, since).unwrap()
            };
            let from_kept = store(&kept_side, &inbox);
            let from_index = store(&index_side, &other_inbox);
            let what = format!("round {round}: {op:?} {flags} on {} uids", uids.len());
            assert_eq!(from_kept, from_index, "{what}");
            assert!(kept(&kept_side), "{what}: the store left its read kept");
            // Now and then an expunge, by UID or of what is \Deleted among a few UIDs
            // (UID EXPUNGE; the mailbox stays large enough to be kept): it carries
            // the kept read past it too, and the checks below read it back.
            if round % 8 == 3 || round % 8 == 7 || round % 16 == 5 {
                let gone: Vec<Uid> = (0..4).map(|_| 1 + dice.next(400) as Uid).collect();
                for (s, m) in [(&kept_side, &inbox), (&index_side, &other_inbox)] {
                    match round % 8 {
                        3 => drop(s.expunge(&actor, m, &gone).unwrap()),
                        7 => drop(s.expunge_deleted(&actor, m, Some(&gone)).unwrap()),
                        // A MOVE out of the mailbox, and one within it (its records
                        // come back under new UIDs: no read is carried past that).
                        _ => {
                            let to = match round % 32 {
                                5 => s.mailbox("u", "Elsewhere").unwrap().unwrap().uniqueid,
                                _ => m.clone(),
                            };
                            s.move_records(&actor, m, &gone, &to).unwrap();
                        }
                    }
                }
                assert!(
                    kept(&kept_side) || round % 32 == 21,
                    "{what}: the expunge left its read kept"
                );
            }
            assert_eq!(rows(&kept_side), rows(&index_side), "{what}");
            let (held, given) = digests(&kept_side);
            assert_eq!(held, given, "{what}: digest");
            assert_eq!(held, digests(&index_side).0, "{what}: digests");
            let (_, read) = warm(&kept_side, &inbox);
            let as_read: Vec<(i64, String, i64)> = read
                .iter()
                .map(|r| (i64::from(r.uid), r.flags.to_string(), r.modseq as i64))
                .collect();
            assert_eq!(as_read, rows(&kept_side), "{what}: the kept read");
        }
    }

    /// A read whose stored flags text is not its flags written out (a spelling no
    /// writer of this version leaves, but an index may hold) is not kept, so a flag
    /// store hashes the stored text and the digest stays what the records give.
    #[test]
    fn a_read_of_flags_stored_otherwise_is_not_kept() {
        let (_dir, store, actor, inbox): (_, Store, Actor, UniqueId) =
            crate::content::store_with_inbox(300);
        store
            .write(|c| {
                c.execute("UPDATE records SET flags = '\\seen' WHERE uid = 9", [])?;
                let id: i64 =
                    c.query_row("SELECT id FROM mailboxes WHERE name = 'INBOX'", [], |r| {
                        r.get(0)
                    })?;
                let digest = crate::digest::recompute_records_digest(c, id)?;
                c.execute(
                    "UPDATE mailboxes SET records_digest = ?1 WHERE id = ?2",
                    rusqlite::params![&digest.0[..], id],
                )?;
                Ok(())
            })
            .unwrap();
        let (_, read) = store.records(&actor, &inbox, false).unwrap();
        assert!(read[8].flags.contains(&Flag::Seen));
        assert!(!kept(&store));
        let flagged: Flags = [Flag::Flagged].into_iter().collect();
        store
            .store_flags(
                &actor,
                &inbox,
                &(1..=300).collect::<Vec<_>>(),
                FlagOp::Add,
                &flagged,
                None,
            )
            .unwrap();
        let (held, given) = digests(&store);
        assert_eq!(held, given);
    }
}
