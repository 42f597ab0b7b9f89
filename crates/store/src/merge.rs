//! Taking back what a diverged replica holds (`docs/replication.md`, section 6,
//! "Reconcile"): after both sides took writes while cut off, the master absorbs the
//! replica's extra messages and newer flags in one transaction, moving messages out of
//! UIDs the two sides gave to different messages, so that the master's state is then a
//! superset that can be sent to the replica whole.
//!
//! One transaction, so that a crash leaves the master either merged or not: a repeated
//! merge after a crash finds nothing left to take (a half-done merge would copy the
//! same messages again under yet other UIDs).

use rusqlite::{params, Connection, OptionalExtension};

use crate::content::{has_index, insert_index};
use crate::digest::{apply_delta, set_flags, RecordsDigest};
use crate::error::Result;
use crate::flags::Flags;
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::Mailbox;
use crate::messages::insert_row;
use crate::records::{live, records_in, Record};
use crate::replicated::ReplicaAppend;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;
use crate::users::add_usage;

/// A message only the replica holds, to be added to the master under a new UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// Its UID on the replica in this same mailbox (`None` when it comes from another
    /// mailbox). When the master has no record at that UID, the merge leaves an
    /// expunged record there, so that clients of the replica, which saw the UID, learn
    /// that it went (QRESYNC VANISHED) and no other message ever takes it.
    pub replica_uid: Option<Uid>,
    /// INTERNALDATE, Unix seconds.
    pub internaldate: i64,
    /// Size.
    pub size: u64,
    /// GUID.
    pub guid: Guid,
    /// Its flags on the replica, kept.
    pub flags: Flags,
    /// The message (checked against `guid` and `size`).
    pub data: Vec<u8>,
}

/// What the master takes over from a diverged replica for one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merge {
    /// The replica's HIGHESTMODSEQ: the merge's modseq is above it.
    pub replica_highest_modseq: Modseq,
    /// The replica's last UID: every UID the merge gives is above it.
    pub replica_last_uid: Uid,
    /// Master UIDs the replica holds a different message under: each live one is
    /// expunged and its message added again under a new UID, flags and date kept.
    pub renumber: Vec<Uid>,
    /// Messages only the replica holds, added under new UIDs.
    pub adopt: Vec<Adoption>,
    /// Newer flags from the replica, by UID (the same message on both sides).
    pub flags: Vec<(Uid, Flags)>,
    /// Messages the replica expunged more recently than the master changed them.
    pub expunge: Vec<Uid>,
    /// The replica mailbox's keyword table: each keyword joins the master's table
    /// (uncapped), including those no message has any more.
    pub keywords: Vec<String>,
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// The one modseq of every change the merge made.
    pub modseq: Modseq,
    /// (old UID, new UID) of the master's messages moved out of a conflict.
    pub renumbered: Vec<(Uid, Uid)>,
    /// (replica UID, new UID) of the messages taken from the same mailbox of the replica.
    pub adopted: Vec<(Uid, Uid)>,
}

impl Store {
    /// Applies `merge` to the live mailbox `mailbox` as one transaction, after making
    /// the adopted messages durable. Afterwards the mailbox's HIGHESTMODSEQ is above
    /// the replica's and its last UID at least the replica's, so the merged state is
    /// newer than anything the replica's clients have seen; every change is at one new
    /// modseq and logged for replication. Quota is not checked: the messages were
    /// already accepted on the replica, and refusing them would lose them.
    pub fn merge_replica(&self, mailbox: &UniqueId, merge: Merge) -> Result<Merged> {
        let target = self.read(|conn| live(conn, mailbox))?;
        let appends: Vec<ReplicaAppend> = merge
            .adopt
            .iter()
            .map(|a| ReplicaAppend {
                uid: a.replica_uid.unwrap_or(0),
                modseq: 0,
                internaldate: a.internaldate,
                size: a.size,
                guid: a.guid,
                flags: a.flags.clone(),
                data: Some(a.data.clone()),
                // Adopted under a new UID as a new message: POP3 clients of the master
                // never saw it, so it takes the master's own UIDL form.
                pop3_uidl: None,
            })
            .collect();
        let _pins: Vec<_> = appends
            .iter()
            .map(|a| self.shared.pins.pin(a.guid))
            .collect();
        self.store_append_blobs(&target.partition, &appends)?;
        let summaries =
            self.summaries_for(&target.partition, &appends.iter().collect::<Vec<_>>())?;
        let id = mailbox.clone();
        let merged = self.write(move |conn| {
            let target = live(conn, &id)?;
            for a in &merge.adopt {
                if let Some(summary) = summaries.get(&a.guid) {
                    if !has_index(conn, &a.guid)? {
                        insert_index(conn, &a.guid, summary, &target.partition, a.size)?;
                    }
                }
            }
            merge_in(conn, &target, &merge)
        })?;
        self.notify(mailbox, merged.modseq);
        Ok(merged)
    }
}

/// The body of [`Store::merge_replica`], inside the writer's transaction.
fn merge_in(conn: &Connection, mailbox: &Mailbox, merge: &Merge) -> Result<Merged> {
    // Above everything the replica handed out: modseqs first, then UIDs.
    conn.execute_cached(
        "UPDATE users SET modseq = max(modseq, ?2) WHERE id = ?1",
        params![mailbox.user_id, merge.replica_highest_modseq as i64],
    )?;
    conn.execute_cached(
        "UPDATE mailboxes SET last_uid = max(last_uid, ?2) WHERE id = ?1",
        params![mailbox.id, merge.replica_last_uid as i64],
    )?;
    let modseq = txn::next_modseq(conn, mailbox.user_id)?;
    let mut out = Merged {
        modseq,
        ..Default::default()
    };

    // New UIDs in a fixed order (by old UID, the master's message before the
    // replica's), so that the outcome does not depend on the order of the lists.
    enum Move<'a> {
        Ours(Uid),
        Theirs(&'a Adoption),
    }
    let mut moves: Vec<(Uid, u8, Move)> = Vec::new();
    moves.extend(merge.renumber.iter().map(|&u| (u, 0, Move::Ours(u))));
    moves.extend(
        merge
            .adopt
            .iter()
            .map(|a| (a.replica_uid.unwrap_or(Uid::MAX), 1, Move::Theirs(a))),
    );
    moves.sort_by_key(|(uid, side, _)| (*uid, *side));
    for (_, _, m) in moves {
        match m {
            Move::Ours(uid) => {
                let Some(record) = live_record(conn, mailbox.id, uid)? else {
                    continue; // expunged ones stay expunged where they are
                };
                expunge_at(conn, mailbox, uid, record.size, modseq)?;
                // The row insert of an append, without its keyword cap: what the
                // replica already accepted is taken back whatever its keywords.
                let new = insert_row(
                    conn,
                    mailbox,
                    &record.flags,
                    record.internaldate,
                    record.size,
                    &record.guid,
                    modseq,
                )?
                .uid;
                out.renumbered.push((uid, new));
            }
            Move::Theirs(a) => {
                let new = insert_row(
                    conn,
                    mailbox,
                    &a.flags,
                    a.internaldate,
                    a.size,
                    &a.guid,
                    modseq,
                )?
                .uid;
                if let Some(replica_uid) = a.replica_uid {
                    out.adopted.push((replica_uid, new));
                }
                let Some(replica_uid) = a.replica_uid else {
                    continue;
                };
                let taken: Option<i64> = conn
                    .query_row_cached(
                        "SELECT 1 FROM records WHERE mailbox_id = ?1 AND uid = ?2",
                        params![mailbox.id, replica_uid],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_none() {
                    conn.execute_cached(
                        "INSERT INTO records (mailbox_id, uid, modseq, flags, internaldate, size, \
                         guid, expunged_modseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?3)",
                        params![
                            mailbox.id,
                            replica_uid,
                            modseq as i64,
                            a.flags.to_string(),
                            a.internaldate,
                            a.size as i64,
                            &a.guid.as_bytes()[..]
                        ],
                    )?;
                }
            }
        }
    }
    let mut delta = RecordsDigest::EMPTY;
    for (uid, flags) in &merge.flags {
        let (uid, text) = (i64::from(*uid), flags.to_string());
        set_flags(
            conn,
            mailbox.id,
            uid,
            (&text, modseq as i64),
            true,
            &mut delta,
        )?;
    }
    apply_delta(conn, mailbox.id, &delta)?;
    for &uid in &merge.expunge {
        if let Some(record) = live_record(conn, mailbox.id, uid)? {
            expunge_at(conn, mailbox, uid, record.size, modseq)?;
        }
    }
    // The keywords the replica's messages bring, uncapped: refusing would lose them.
    crate::keywords::absorb_flags(
        conn,
        mailbox.id,
        merge
            .adopt
            .iter()
            .map(|a| &a.flags)
            .chain(merge.flags.iter().map(|f| &f.1)),
    )?;
    crate::keywords::absorb_names(conn, mailbox.id, &merge.keywords)?;
    txn::touch_mailbox(conn, mailbox, modseq)?;
    Ok(out)
}

fn live_record(conn: &Connection, mailbox_id: i64, uid: Uid) -> Result<Option<Record>> {
    Ok(records_in(conn, mailbox_id, &[uid], false)?.pop())
}

fn expunge_at(
    conn: &Connection,
    mailbox: &Mailbox,
    uid: Uid,
    size: u64,
    modseq: Modseq,
) -> Result<()> {
    let mut delta = crate::digest::RecordsDigest::EMPTY;
    crate::digest::expunge_record(conn, mailbox.id, i64::from(uid), modseq as i64, &mut delta)?;
    crate::digest::apply_delta(conn, mailbox.id, &delta)?;
    conn.execute_cached(
        "UPDATE mailboxes SET messages = messages - 1, bytes = bytes - ?2 WHERE id = ?1",
        params![mailbox.id, size as i64],
    )?;
    add_usage(conn, mailbox.user_id, -(size as i64), -1)
}

impl Store {
    /// Gives the live mailbox `mailbox` a new UIDVALIDITY, above `above` and every one
    /// this user had, keeping its records and UIDs, at a new modseq (logged, so it
    /// replicates). For a mailbox the replica deleted during a split brain: it comes
    /// back there under a UIDVALIDITY its clients never saw, so none of them can take
    /// a UID of it for a message they saw under the old one. Clients of the master
    /// resynchronise the mailbox, as for any UIDVALIDITY change.
    pub fn renew_uidvalidity(&self, mailbox: &UniqueId, above: u32) -> Result<u32> {
        let id = mailbox.clone();
        let (uidvalidity, modseq) = self.write(move |conn| {
            let target = live(conn, &id)?;
            let modseq = txn::next_modseq(conn, target.user_id)?;
            let floor = crate::store::now()
                .clamp(1, u32::MAX as i64)
                .max(i64::from(above) + 1)
                .min(u32::MAX as i64);
            let uidvalidity: i64 = conn.query_row_cached(
                "UPDATE users SET last_uidvalidity = min(max(last_uidvalidity + 1, ?2), ?3) \
                 WHERE id = ?1 RETURNING last_uidvalidity",
                params![target.user_id, floor, u32::MAX as i64],
                |r| r.get(0),
            )?;
            conn.execute_cached(
                "UPDATE mailboxes SET uidvalidity = ?2 WHERE id = ?1",
                params![target.id, uidvalidity],
            )?;
            txn::touch_mailbox(conn, &target, modseq)?;
            Ok((uidvalidity as u32, modseq))
        })?;
        self.notify(mailbox, modseq);
        Ok(uidvalidity)
    }
}
