//! One mailbox's state as a session opens it: IMAP SELECT, a POP3 maildrop and NNTP
//! GROUP all start from [`MailboxView`], read in one snapshot so that its counts, UIDs
//! and keywords describe the same moment.

use crate::acl::{Actor, Rights};
use crate::blobs::MessageFile;
use crate::commit_mark::CommitMark;
use crate::error::Result;
use crate::ids::{Guid, Uid, UniqueId};
use crate::keywords::keywords_of;
use crate::mailboxes::Mailbox;
use crate::record_cache::StateKey;
use crate::records::live_for;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A snapshot of a mailbox: everything in it comes from one read transaction.
#[derive(Debug, Clone)]
pub struct MailboxView {
    /// The mailbox row (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the \Recent watermark).
    pub mailbox: Mailbox,
    /// The live (not expunged) messages in UID order.
    pub messages: Vec<ViewMessage>,
    /// Live messages without `\Seen`.
    pub unseen: u32,
    /// The lowest UID without `\Seen`.
    pub first_unseen: Option<Uid>,
    /// The mailbox's keyword table, sorted; it holds at least every keyword on the
    /// records above (the table only grows).
    pub keywords: Vec<String>,
}

/// One live message of a [`MailboxView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMessage {
    /// Its UID.
    pub uid: Uid,
    /// Its size in octets (what a client downloading it receives).
    pub size: u64,
    /// It has `\Seen`.
    pub seen: bool,
    /// Its content's GUID.
    pub guid: Guid,
    /// Its stored POP3 UIDL override (the UIDL an imported message had on its old
    /// server), if any; fixed when the record was created.
    pub pop3_uidl: Option<String>,
}

/// What IMAP SELECT needs of a mailbox, in one snapshot: a [`MailboxView`] without the
/// per-message sizes, GUIDs and UIDLs, which SELECT never reads (it is the most
/// frequent open, and the scan is most of its cost).
#[derive(Debug, Clone)]
pub struct Selection {
    /// The mailbox row (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the \Recent watermark).
    pub mailbox: Mailbox,
    /// The live UIDs, ascending.
    pub uids: Vec<Uid>,
    /// The lowest UID without `\Seen`.
    pub first_unseen: Option<Uid>,
    /// The mailbox's keyword table, sorted.
    pub keywords: Vec<String>,
}

impl MailboxView {
    /// The live UIDs, ascending.
    pub fn uids(&self) -> Vec<Uid> {
        self.messages.iter().map(|m| m.uid).collect()
    }
}

impl Store {
    /// The file of a message of a view of `mailbox`, without another look at its
    /// record: it stays readable while any record holds it (expunged ones included,
    /// until `tern expire` purges them and collects the file).
    pub fn open_view_message(
        &self,
        mailbox: &Mailbox,
        message: &ViewMessage,
    ) -> Result<MessageFile> {
        self.blobs()
            .open_blob(&mailbox.partition, &message.guid, message.size)
    }

    /// [`Store::resolve`] and, when the actor may read the mailbox, its
    /// [`Selection`], both from one snapshot: what SELECT needs, read once rather
    /// than twice. `None` as for `resolve`; the selection is `None` without `r`.
    pub fn resolve_selection(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<Option<(Rights, Option<Selection>)>> {
        let Some((owner, name)) = crate::acl::owner_and_name(actor, name) else {
            return Ok(None);
        };
        // Read before the snapshot below begins, so that the snapshot is at least as
        // new as the mark it is kept under: a commit in between only makes the kept
        // answer one that is never used.
        let mark = self.shared.commits.as_ref().and_then(|c| c.mark());
        let key = (owner, name);
        if let Some(kept) = mark.and_then(|m| self.shared.selected.get(m, &key)) {
            // The rights as a read row gives them: from the row's ACL, for this actor.
            let rights = crate::acl::visible_rights(actor, &kept.mailbox);
            return Ok(
                rights.map(|r| (r, r.contains(Rights::READ).then(|| Selection::clone(&kept))))
            );
        }
        let (owner, name) = &key;
        self.read_lazily(|conn| {
            let Some(mailbox) = crate::txn::find_live_mailbox(conn, owner, name)? else {
                return Ok(None);
            };
            let Some(rights) = crate::acl::visible_rights(actor, &mailbox) else {
                return Ok(None);
            };
            if !rights.contains(Rights::READ) {
                return Ok(Some((rights, None)));
            }
            let selection = self.selection_in(conn, mailbox)?;
            if let Some(mark) = mark {
                self.shared.selected.put(mark, key.clone(), &selection);
            }
            Ok(Some((rights, Some(selection))))
        })
    }

    /// The selection of `mailbox`, read on `conn`'s snapshot (from the kept scan of
    /// its state when there is one).
    fn selection_in(&self, conn: &rusqlite::Connection, mailbox: Mailbox) -> Result<Selection> {
        let key = StateKey::of(&mailbox);
        let scanned = match self.shared.selections.get(&key) {
            Some(hit) => hit,
            None => {
                crate::pending::require_folded(conn, mailbox.id)?;
                let fresh = Arc::new(scan_selection(conn, &mailbox)?);
                self.shared.selections.put(key, Arc::clone(&fresh));
                fresh
            }
        };
        let keywords = keywords_of(conn, mailbox.id)?;
        Ok(Selection {
            mailbox,
            uids: scanned.uids.to_vec(),
            first_unseen: scanned.first_unseen,
            keywords,
        })
    }

    /// The state of the live mailbox `id` in one snapshot; needs `r`.
    pub fn mailbox_view(&self, actor: &Actor, id: &UniqueId) -> Result<MailboxView> {
        self.read(|conn| {
            let mailbox = live_for(conn, actor, id, Rights::READ)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT uid, size, instr(flags, '\\Seen') = 0, guid, pop3_uidl FROM records {} \
                 WHERE mailbox_id = ?1 AND expunged_modseq IS NULL ORDER BY uid",
                crate::records::live_scan(&mailbox)
            ))?;
            let mut messages = Vec::with_capacity(mailbox.messages as usize);
            let (mut unseen, mut first_unseen) = (0u32, None);
            let mut rows = stmt.query([mailbox.id])?;
            while let Some(row) = rows.next()? {
                let uid = row.get::<_, i64>(0)? as Uid;
                let seen = !row.get::<_, bool>(2)?;
                let guid = row
                    .get_ref(3)?
                    .as_blob()
                    .ok()
                    .and_then(|b| b.try_into().ok());
                messages.push(ViewMessage {
                    uid,
                    size: row.get::<_, i64>(1)? as u64,
                    seen,
                    guid: Guid::from_bytes(guid.unwrap_or([0; 20])),
                    pop3_uidl: row.get(4)?,
                });
                if !seen {
                    unseen += 1;
                    first_unseen.get_or_insert(uid);
                }
            }
            drop(rows);
            let keywords = keywords_of(conn, mailbox.id)?;
            Ok(MailboxView {
                mailbox,
                messages,
                unseen,
                first_unseen,
                keywords,
            })
        })
    }
}

/// What a SELECT scan found: the live UIDs and the first without `\Seen`.
pub(crate) struct ScannedSelection {
    uids: Box<[Uid]>,
    first_unseen: Option<Uid>,
}

/// SELECT's scans of recently opened mailboxes, reused while the mailbox row shows no
/// change: a client that opens a large mailbox again and again (a phone polling, a
/// shared folder many open) reads its UIDs once. One entry per mailbox; bounded in
/// entries and in UIDs held, and emptied when full.
#[derive(Default)]
pub(crate) struct SelectionCache {
    entries: Mutex<HashMap<i64, (StateKey, Arc<ScannedSelection>)>>,
}

/// Most mailboxes whose scans are kept.
const MAX_SELECTIONS: usize = 1024;
/// Most UIDs kept in all (16 MiB).
const MAX_SELECTION_UIDS: usize = 4 << 20;
/// Smaller mailboxes are scanned every time: the scan costs less than keeping it.
const MIN_CACHED_MESSAGES: usize = 256;

impl SelectionCache {
    fn get(&self, key: &StateKey) -> Option<Arc<ScannedSelection>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key.mailbox()) {
            Some((k, scan)) if k == key => Some(Arc::clone(scan)),
            _ => None,
        }
    }

    fn put(&self, key: StateKey, scan: Arc<ScannedSelection>) {
        if scan.uids.len() < MIN_CACHED_MESSAGES || scan.uids.len() > MAX_SELECTION_UIDS / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key.mailbox());
        let held: usize = entries.values().map(|(_, s)| s.uids.len()).sum();
        if entries.len() >= MAX_SELECTIONS || held + scan.uids.len() > MAX_SELECTION_UIDS {
            entries.clear();
        }
        entries.insert(key.mailbox(), (key, scan));
    }
}

/// SELECT's answers (the mailbox row, its live UIDs, its keywords) as read at one
/// commit mark ([`crate::commit_mark`]), given again while the index's mark is the
/// same: nothing was committed since, by any process, so a read would find the
/// same. A client that opens its mailbox again and again while nothing changes (a
/// phone polling, a client opening each folder in turn and back) is answered
/// without a read transaction. Every commit leaves all of them unused; they are
/// dropped at the first lookup under a new mark. Bounded in entries and UIDs held.
#[derive(Default)]
pub(crate) struct KeptSelections {
    kept: Mutex<Option<(CommitMark, AnswersByName)>>,
}

/// SELECT answers by (owner, normalized mailbox name).
type AnswersByName = HashMap<(String, String), Arc<Selection>>;

/// Most answers kept under one mark.
const MAX_KEPT_SELECTIONS: usize = 256;
/// Most UIDs kept in all of them (4 MiB).
const MAX_KEPT_UIDS: usize = 1 << 20;

impl KeptSelections {
    /// The answer for the mailbox `(owner, name)` read at `mark`, if one was kept.
    fn get(&self, mark: CommitMark, key: &(String, String)) -> Option<Arc<Selection>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        match kept.as_ref() {
            Some((at, answers)) if *at == mark => answers.get(key).cloned(),
            Some(_) => {
                *kept = None;
                None
            }
            None => None,
        }
    }

    /// Keeps the answer for the mailbox `(owner, name)` read at `mark`.
    fn put(&self, mark: CommitMark, key: (String, String), selection: &Selection) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let answers = match kept.as_mut() {
            Some((at, answers)) if *at == mark => answers,
            _ => &mut kept.insert((mark, HashMap::new())).1,
        };
        let held: usize = answers.values().map(|s| s.uids.len()).sum();
        if answers.len() >= MAX_KEPT_SELECTIONS || held + selection.uids.len() > MAX_KEPT_UIDS {
            return;
        }
        answers.insert(key, Arc::new(selection.clone()));
    }
}

/// Reads the live UIDs of `mailbox` and its first unseen one.
fn scan_selection(conn: &rusqlite::Connection, mailbox: &Mailbox) -> Result<ScannedSelection> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT uid, instr(flags, '\\Seen') = 0 FROM records {} \
         WHERE mailbox_id = ?1 AND expunged_modseq IS NULL ORDER BY uid",
        crate::records::live_scan(mailbox)
    ))?;
    let mut uids = Vec::with_capacity(mailbox.messages as usize);
    let mut first_unseen = None;
    let mut rows = stmt.query([mailbox.id])?;
    while let Some(row) = rows.next()? {
        let uid = row.get::<_, i64>(0)? as Uid;
        if first_unseen.is_none() && row.get::<_, bool>(1)? {
            first_unseen = Some(uid);
        }
        uids.push(uid);
    }
    Ok(ScannedSelection {
        uids: uids.into_boxed_slice(),
        first_unseen,
    })
}

#[cfg(test)]
mod tests {
    use crate::flags::{Flag, FlagOp, Flags};
    use crate::NewMessage;

    /// SELECT's snapshot, cached or not, always agrees with a full read of the mailbox:
    /// after a flag change, an expunge, an append, and with nothing changed between.
    #[test]
    fn selection_follows_every_change() {
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        let agrees = |what: &str| {
            let s = store
                .resolve_selection(&actor, "INBOX")
                .unwrap()
                .unwrap()
                .1
                .unwrap();
            let v = store.mailbox_view(&actor, &inbox).unwrap();
            assert_eq!(s.uids, v.uids(), "{what}");
            assert_eq!(s.first_unseen, v.first_unseen, "{what}");
            assert_eq!(s.mailbox.highest_modseq, v.mailbox.highest_modseq, "{what}");
            s
        };
        assert_eq!(agrees("fresh").first_unseen, Some(1));
        agrees("again, unchanged");
        let seen: Flags = [Flag::Seen].into_iter().collect();
        store
            .store_flags(&actor, &inbox, &[1, 2], FlagOp::Add, &seen, None)
            .unwrap();
        assert_eq!(agrees("after \\Seen").first_unseen, Some(3));
        store.expunge(&actor, &inbox, &[3, 300]).unwrap();
        let s = agrees("after an expunge");
        assert_eq!((s.uids.len(), s.first_unseen), (298, Some(4)));
        store
            .store_flags(&actor, &inbox, &[1], FlagOp::Remove, &seen, None)
            .unwrap();
        assert_eq!(agrees("after -\\Seen").first_unseen, Some(1));
        let one = NewMessage {
            flags: Flags::new(),
            internaldate: 0,
            bytes: b"Subject: new\r\n\r\nx\r\n",
        };
        store.append_all(&actor, &inbox, &[one]).unwrap();
        assert_eq!(agrees("after an append").uids.last(), Some(&301));
    }

    /// An answer kept while nothing was committed is not given once another process
    /// (here a second store on the same directory, as `tern admin` opens it) changed
    /// the mailbox, its rights, or its name; nor after a commit that left the
    /// mailbox's counters as they were.
    #[test]
    fn a_kept_selection_yields_to_a_commit_by_another_process() {
        let (dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        let select = |name: &str| store.resolve_selection(&actor, name).unwrap();
        let uids = |name: &str| select(name).unwrap().1.unwrap().uids;
        assert_eq!(uids("INBOX").len(), 300);
        assert_eq!(uids("INBOX").len(), 300, "kept, unchanged");
        let admin = crate::Store::open(
            crate::StoreConfig::new(dir.path()),
            crate::content::test_indexer(),
        )
        .unwrap();
        admin.expunge(&actor, &inbox, &[7]).unwrap();
        assert!(!uids("INBOX").contains(&7), "an expunge by another process");
        // A flag set and taken back: the same UIDs, the same first unseen, a new
        // HIGHESTMODSEQ.
        let before = select("INBOX").unwrap().1.unwrap().mailbox.highest_modseq;
        let seen: Flags = [Flag::Seen].into_iter().collect();
        admin
            .store_flags(&actor, &inbox, &[1], FlagOp::Add, &seen, None)
            .unwrap();
        admin
            .store_flags(&actor, &inbox, &[1], FlagOp::Remove, &seen, None)
            .unwrap();
        let after = select("INBOX").unwrap().1.unwrap().mailbox.highest_modseq;
        assert!(after > before, "HIGHESTMODSEQ {before} -> {after}");
        // Rights: another user is granted lookup only, then read, by the other store.
        let owner = actor.clone();
        let other = crate::Actor {
            name: "v".into(),
            is_admin: false,
        };
        store.create_user("v", None, false).unwrap();
        let as_other = || {
            store
                .resolve_selection(&other, "Other Users/u/INBOX")
                .unwrap()
        };
        assert!(as_other().is_none(), "no rights yet");
        let lookup = crate::acl::Rights::parse("l").unwrap();
        admin.set_acl(&owner, &inbox, "v", Some(lookup)).unwrap();
        assert!(matches!(as_other(), Some((_, None))), "lookup, no read");
        let read = crate::acl::Rights::parse("lr").unwrap();
        admin.set_acl(&owner, &inbox, "v", Some(read)).unwrap();
        assert_eq!(as_other().unwrap().1.unwrap().uids.len(), 299);
        admin.set_acl(&owner, &inbox, "v", None).unwrap();
        assert!(as_other().is_none(), "taken back");
        // A rename by the other process: the old name is gone at once.
        store.create_mailbox("u", "Old", None).unwrap();
        assert!(select("Old").is_some());
        admin.rename_mailbox("u", "Old", "New", None).unwrap();
        assert!(select("Old").is_none(), "renamed away");
        assert!(select("New").is_some());
    }
}
