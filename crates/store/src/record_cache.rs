//! Reads of large mailboxes kept while the mailbox row shows no change.
//!
//! A whole-mailbox read (FETCH 1:* FLAGS, a SEARCH, a SORT, SELECT's scan) costs a walk
//! of every record row; clients repeat them on mailboxes that have not changed (a
//! phone polling, a shared folder many sessions watch). The mailbox row carries
//! fields that every change to its records moves, in the same transaction
//! ([`StateKey`]), so a read taken under one key is the read of every later snapshot
//! with the same key. An entry is never patched under its key: it is replaced by a
//! new read, dropped, or taken out by a flag store or an expunge, which applies to it
//! exactly what its transaction wrote and puts it back under the key that
//! transaction left, so it cannot drift from the index.
//!
//! Every kept record's flags, written out, are the text stored in its row
//! (`records::live_records` keeps no read where that fails): a flag store hashes
//! that text into the records digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::digest::RecordsDigest;
use crate::ids::{Modseq, Uid};
use crate::mailboxes::Mailbox;
use crate::records::Record;

/// The mailbox row's fields that change with any change to its records: its row, its
/// UIDVALIDITY, its HIGHESTMODSEQ, its count and last UID, and the digest of its
/// records (kept in the same transaction as every record change, `digest.rs`, and
/// covering each record's UID, modseq, flags, dates, size, GUID and expunge). Equal
/// keys read in two snapshots name equal records, but for a 2^-128 chance. A change
/// logged for a later fold (`pending.rs`) takes a modseq of its own and leaves the
/// digest; its fold moves the digest alone, carrying any kept read along.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct StateKey {
    mailbox: i64,
    uidvalidity: u32,
    highest_modseq: Modseq,
    messages: u32,
    last_uid: u32,
    digest: RecordsDigest,
}

impl StateKey {
    /// The key of `mailbox` as read in some snapshot.
    pub(crate) fn of(mailbox: &Mailbox) -> StateKey {
        StateKey {
            mailbox: mailbox.id,
            uidvalidity: mailbox.uidvalidity,
            highest_modseq: mailbox.highest_modseq,
            messages: mailbox.messages,
            last_uid: mailbox.last_uid,
            digest: mailbox.digest,
        }
    }

    /// The key of `mailbox`'s row as the caller's transaction reads it now, after its
    /// own changes.
    pub(crate) fn now(conn: &rusqlite::Connection, mailbox: &Mailbox) -> crate::Result<StateKey> {
        Ok(StateKey::of(&crate::records::live(
            conn,
            &mailbox.uniqueid,
        )?))
    }

    /// This key once a change that moves the mailbox row's HIGHESTMODSEQ alone (a
    /// change logged for a later fold) has made it `highest_modseq`.
    pub(crate) fn at_modseq(self, highest_modseq: Modseq) -> StateKey {
        StateKey {
            highest_modseq,
            ..self
        }
    }

    /// The mailbox row the key belongs to.
    pub(crate) fn mailbox(&self) -> i64 {
        self.mailbox
    }
}

/// The live records of recently read large mailboxes, in UID order, one entry per
/// mailbox. Bounded in mailboxes and in bytes (about 32 MiB in all); emptied of
/// other mailboxes when a new entry would not fit.
#[derive(Default)]
pub(crate) struct LiveRecordsCache {
    entries: Mutex<HashMap<i64, Entry>>,
}

struct Entry {
    key: StateKey,
    records: Arc<Vec<Record>>,
    bytes: usize,
}

/// Most mailboxes whose records are kept.
const MAX_MAILBOXES: usize = 256;
/// Most bytes of records kept in all.
const MAX_BYTES: usize = 32 << 20;
/// Smaller mailboxes are read every time: the read costs less than keeping it.
pub(crate) const MIN_CACHED_RECORDS: usize = 256;

impl LiveRecordsCache {
    /// The records read under `key`, when kept.
    pub(crate) fn get(&self, key: &StateKey) -> Option<Arc<Vec<Record>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key.mailbox) {
            Some(e) if e.key == *key => Some(Arc::clone(&e.records)),
            _ => None,
        }
    }

    /// Takes the records read under `key` out, when kept, with what they hold.
    fn take(&self, key: &StateKey) -> Option<(Arc<Vec<Record>>, usize)> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key.mailbox) {
            Some(e) if e.key == *key => entries.remove(&key.mailbox).map(|e| (e.records, e.bytes)),
            _ => None,
        }
    }

    /// After a change to a mailbox's records committed: the read kept under `before`
    /// (the key the change's transaction read first), changed by `change` exactly as
    /// the transaction changed the records, is the read of the state it left, `after`,
    /// and is kept under that key (copied only when a reader still holds it). `change`
    /// returns by how many bytes ([`held_bytes`]) the records it changed grew or
    /// shrank, so that a store of one flag does not count every record again.
    /// Nothing happens when no read is kept under `before` (another read or change
    /// replaced it).
    pub(crate) fn carry(
        &self,
        before: &StateKey,
        after: StateKey,
        change: impl FnOnce(&mut Vec<Record>) -> isize,
    ) {
        let Some((mut live, bytes)) = self.take(before) else {
            return;
        };
        let grown = change(Arc::make_mut(&mut live));
        self.keep(after, live, bytes.saturating_add_signed(grown));
    }

    /// [`LiveRecordsCache::carry`] past an expunge of `gone` (sorted).
    pub(crate) fn carry_past_expunge(&self, before: &StateKey, after: StateKey, gone: &[Uid]) {
        self.carry(before, after, |live| {
            let mut freed = 0;
            live.retain(|r| {
                let stays = gone.binary_search(&r.uid).is_err();
                if !stays {
                    freed += held_bytes(r);
                }
                stays
            });
            -(freed as isize)
        });
    }

    /// Keeps `records`, the live records read in a snapshot whose mailbox row had
    /// `key`, replacing what was kept for that mailbox.
    pub(crate) fn put(&self, key: StateKey, records: Arc<Vec<Record>>) {
        if records.len() < MIN_CACHED_RECORDS {
            return;
        }
        let bytes = records.iter().map(held_bytes).sum::<usize>();
        self.keep(key, records, bytes);
    }

    /// [`LiveRecordsCache::put`] of records known to hold `bytes`.
    fn keep(&self, key: StateKey, records: Arc<Vec<Record>>, bytes: usize) {
        if records.len() < MIN_CACHED_RECORDS || bytes > MAX_BYTES / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key.mailbox);
        let held: usize = entries.values().map(|e| e.bytes).sum();
        if entries.len() >= MAX_MAILBOXES || held + bytes > MAX_BYTES {
            entries.clear();
        }
        entries.insert(
            key.mailbox,
            Entry {
                key,
                records,
                bytes,
            },
        );
    }
}

/// The counts of recently asked mailboxes (STATUS UNSEEN, DELETED, RECENT), each kept
/// with the state key and the \Recent watermark of the snapshot it was counted in
/// (the watermark moves without the key: a SELECT takes \Recent). A client polling
/// STATUS on every folder counts each one once per change. At most 4,096 entries,
/// emptied when full.
#[derive(Default)]
pub(crate) struct CountsCache {
    entries: Mutex<HashMap<i64, (StateKey, u32, crate::records::MailboxCounts)>>,
}

/// Most mailboxes whose counts are kept.
const MAX_COUNTED: usize = 4096;

impl CountsCache {
    /// The counts taken under `key` and `recent_uid`, when kept.
    pub(crate) fn get(
        &self,
        key: &StateKey,
        recent_uid: u32,
    ) -> Option<crate::records::MailboxCounts> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key.mailbox) {
            Some((k, r, counts)) if k == key && *r == recent_uid => Some(*counts),
            _ => None,
        }
    }

    /// Keeps `counts`, taken in a snapshot whose mailbox row had `key` and `recent_uid`.
    pub(crate) fn put(
        &self,
        key: StateKey,
        recent_uid: u32,
        counts: crate::records::MailboxCounts,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_COUNTED && !entries.contains_key(&key.mailbox) {
            entries.clear();
        }
        entries.insert(key.mailbox, (key, recent_uid, counts));
    }
}

/// What one kept record costs, its keywords and POP3 UIDL included.
fn held_bytes(r: &Record) -> usize {
    std::mem::size_of::<Record>()
        + keyword_bytes(&r.flags)
        + r.pop3_uidl.as_ref().map_or(0, String::len)
}

/// What the keywords among `flags` cost a kept record (system flags cost nothing
/// beyond the record).
pub(crate) fn keyword_bytes(flags: &crate::flags::Flags) -> usize {
    flags
        .keywords()
        .iter()
        .map(|f| match f {
            crate::flags::Flag::Keyword(k) => std::mem::size_of::<crate::flags::Flag>() + k.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Flag, FlagOp, Flags};

    /// A read after any change sees the change: the key moves with a flag store, an
    /// expunge and an append, and a store through another handle on the same index
    /// (another process: `tern admin`, a replica's sync) is seen too.
    #[test]
    fn a_kept_read_never_outlives_a_change() {
        let (dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        let read = |store: &crate::Store| store.records(&actor, &inbox, false).unwrap().1;
        let first = read(&store);
        assert_eq!(first.len(), 300);
        assert_eq!(read(&store), first, "the same read twice");
        let seen = Flags::from_iter([Flag::Seen]);
        store
            .store_flags(&actor, &inbox, &[7], FlagOp::Add, &seen, None)
            .unwrap();
        let after = read(&store);
        assert!(after[6].flags.contains(&Flag::Seen), "flag store");
        store.expunge(&actor, &inbox, &[8]).unwrap();
        let after = read(&store);
        assert_eq!(after.len(), 299, "expunge");
        assert!(after.iter().all(|r| r.uid != 8));
        // The same change made through a second handle on the same data.
        let other = crate::Store::open(
            crate::StoreConfig::new(dir.path()),
            crate::content::test_indexer(),
        )
        .unwrap();
        other
            .store_flags(&actor, &inbox, &[9], FlagOp::Add, &seen, None)
            .unwrap();
        let after = read(&store);
        assert!(
            after[7].flags.contains(&Flag::Seen),
            "another handle's store"
        );
        // A few records, taken from the kept read; one expunged since is looked up.
        let _ = read(&store);
        let (_, few) = store.records_of(&actor, &inbox, &[7, 8, 9]).unwrap();
        assert_eq!(few.iter().map(|r| r.uid).collect::<Vec<_>>(), [7, 8, 9]);
        assert!(few[0].flags.contains(&Flag::Seen) && few[2].flags.contains(&Flag::Seen));
        assert!(few[1].expunged_modseq.is_some());
        // A view's read of part of the mailbox agrees with the kept whole.
        let (_, some) = store
            .records_of(&actor, &inbox, &(1..=300).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(some.len(), 300);
        assert!(some[8].flags.contains(&Flag::Seen));
        assert!(some[7].expunged_modseq.is_some());
    }

    /// Counts asked twice are the same; they follow a flag change, an expunge and a
    /// move of the \Recent watermark, which changes no record.
    #[test]
    fn kept_counts_follow_every_change() {
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(20);
        let counts = |store: &crate::Store| store.mailbox_counts(&actor, &inbox).unwrap().1;
        let first = counts(&store);
        assert_eq!(
            (first.unseen, first.recent, first.first_unseen),
            (20, 20, Some(1))
        );
        assert_eq!(counts(&store), first);
        let seen = Flags::from_iter([Flag::Seen]);
        store
            .store_flags(&actor, &inbox, &[1], FlagOp::Add, &seen, None)
            .unwrap();
        let after = counts(&store);
        assert_eq!((after.unseen, after.first_unseen), (19, Some(2)));
        let deleted = Flags::from_iter([Flag::Deleted]);
        store
            .store_flags(&actor, &inbox, &[2, 3], FlagOp::Add, &deleted, None)
            .unwrap();
        assert_eq!(counts(&store).deleted, 2);
        store.expunge(&actor, &inbox, &[2]).unwrap();
        assert_eq!((counts(&store).deleted, counts(&store).unseen), (1, 18));
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        store.take_recent(&actor, &mailbox).unwrap();
        assert_eq!(counts(&store).recent, 0, "after the watermark moved");
    }

    /// What a kept read is counted as holding stays what its records hold as flag
    /// stores and expunges carry it (the count is carried, not taken again).
    #[test]
    fn carried_reads_keep_their_count() {
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        let counted = |store: &crate::Store| {
            let entries = store.shared.live_records.entries.lock().unwrap();
            let e = entries.values().next().expect("a kept read");
            (e.bytes, e.records.iter().map(held_bytes).sum::<usize>())
        };
        let _ = store.records(&actor, &inbox, false).unwrap();
        let label = |k: &str| Flags::from_iter([Flag::Keyword(k.to_owned())]);
        let all: Vec<u32> = (1..=300).collect();
        for (uids, op, flags) in [
            (&all[..], FlagOp::Add, label("$Label1")),
            (&all[..10], FlagOp::Add, label("$a-much-longer-keyword")),
            (&all[5..], FlagOp::Replace, label("$x")),
            (&all[..3], FlagOp::Remove, label("$x")),
        ] {
            store
                .store_flags(&actor, &inbox, uids, op, &flags, None)
                .unwrap();
            let (kept, recounted) = counted(&store);
            assert_eq!(kept, recounted, "after {op:?} {flags:?}");
        }
        store.expunge(&actor, &inbox, &[4, 7, 200]).unwrap();
        let (kept, recounted) = counted(&store);
        assert_eq!(kept, recounted, "after an expunge");
        let entries = store.shared.live_records.entries.lock().unwrap();
        assert_eq!(entries.values().next().map(|e| e.records.len()), Some(297));
    }

    /// Entries stay within the bound: a mailbox too large is read but not kept.
    #[test]
    fn kept_bytes_are_bounded() {
        let cache = LiveRecordsCache::default();
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        let (mailbox, records) = store.records(&actor, &inbox, false).unwrap();
        let key = StateKey::of(&mailbox);
        cache.put(key, Arc::new(records.clone()));
        assert!(cache.get(&key).is_some());
        let per = held_bytes(&records[0]);
        let too_many: Vec<Record> =
            std::iter::repeat_n(records[0].clone(), MAX_BYTES / 4 / per + 1).collect();
        cache.put(key, Arc::new(too_many));
        // The old entry was for the same key and is still the one kept.
        assert_eq!(cache.get(&key).map(|r| r.len()), Some(300));
    }
}
