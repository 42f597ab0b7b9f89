//! Tests of `flagging.rs`: flag stores, expunges and \Recent.

use crate::acl::{Actor, Rights};
use crate::flags::{FlagOp, Flags};
use crate::{Store, StoreConfig};

/// A change of nothing skips the writer, but not the rights check: a reader who
/// may not expunge is still refused an empty EXPUNGE, one who may not read an
/// empty STORE.
#[test]
fn empty_changes_still_check_rights() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(tmp.path()), crate::content::test_indexer()).unwrap();
    let root = Actor {
        name: "root".into(),
        is_admin: true,
    };
    let bob = Actor {
        name: "bob".into(),
        is_admin: false,
    };
    let alice = Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let lr = Rights::parse("lr").unwrap();
    let lre = Rights::parse("lre").unwrap();
    let acl = [("anyone".to_owned(), lr), ("alice".to_owned(), lre)];
    let open = store.create_shared_mailbox(&root, "news", &acl).unwrap();
    let closed = store.create_shared_mailbox(&root, "staff", &[]).unwrap();
    assert!(store
        .expunge(&alice, &open.uniqueid, &[])
        .unwrap()
        .is_empty());
    assert!(store.expunge(&bob, &open.uniqueid, &[]).is_err());
    let none = Flags::default();
    let outcome = store
        .store_flags(&bob, &open.uniqueid, &[], FlagOp::Add, &none, None)
        .unwrap();
    assert!(outcome.changed.is_empty());
    assert!(store
        .store_flags(&bob, &closed.uniqueid, &[], FlagOp::Add, &none, None)
        .is_err());
}

/// A dense set (read in one range scan) and a sparse one (record by record) change
/// the same records: the live ones named, not the expunged ones or UIDs never
/// given; and the digest stays what the records say.
#[test]
fn dense_and_sparse_sets_change_the_live_records_named() {
    use crate::append_batch::NewMessage;
    let (_dir, store, actor, inbox) = crate::content::store_with_inbox(60);
    store.expunge(&actor, &inbox, &[3, 4, 50]).unwrap();
    // `tern expire` ages expunged records by when they were expunged.
    let at: Vec<Option<i64>> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT expunged_at FROM records ORDER BY uid")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap();
    let now = crate::store::now();
    for (i, at) in at.iter().enumerate() {
        let uid = i as u32 + 1;
        if [3, 4, 50].contains(&uid) {
            assert!(at.is_some_and(|t| (now - t).abs() < 60), "{uid}: {at:?}");
        } else {
            assert_eq!(*at, None, "{uid}");
        }
    }
    let seen: Flags = [crate::flags::Flag::Seen].into_iter().collect();
    // Dense, unsorted, with a duplicate and UIDs past the end.
    let mut dense: Vec<u32> = (1..=40).rev().collect();
    dense.extend([7, 61, 62]);
    let outcome = store
        .store_flags(&actor, &inbox, &dense, FlagOp::Add, &seen, None)
        .unwrap();
    let changed: Vec<u32> = outcome.changed.iter().map(|c| c.uid).collect();
    let want: Vec<u32> = (1..=40).filter(|u| ![3, 4].contains(u)).collect();
    assert_eq!(changed, want);
    // Sparse: one live, one expunged, one never given.
    let outcome = store
        .store_flags(&actor, &inbox, &[50, 55, 5000], FlagOp::Add, &seen, None)
        .unwrap();
    assert_eq!(
        outcome.changed.iter().map(|c| c.uid).collect::<Vec<_>>(),
        [55]
    );
    let digest_holds = |when: &str| {
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        let recomputed = store
            .read(|c| crate::digest::recompute_records_digest(c, mailbox.id))
            .unwrap();
        assert_eq!(mailbox.digest, recomputed, "{when}");
    };
    // The store kept the digest itself (one delta), and it is what the records say.
    digest_holds("after the flag stores");
    // Removing flags, and a store that changes nothing, keep it right too.
    store
        .store_flags(&actor, &inbox, &[1, 2, 60], FlagOp::Remove, &seen, None)
        .unwrap();
    store
        .store_flags(&actor, &inbox, &[1, 2], FlagOp::Remove, &seen, None)
        .unwrap();
    digest_holds("after removing flags");
    // The trigger keeps it again once the store is over: an expunge and an append.
    store.expunge(&actor, &inbox, &[10, 11]).unwrap();
    let one = NewMessage {
        flags: Flags::new(),
        internaldate: 0,
        bytes: b"Subject: new\r\n\r\nx\r\n",
    };
    store.append_all(&actor, &inbox, &[one]).unwrap();
    digest_holds("after an expunge and an append");
}

/// EXPUNGE takes exactly the live \Deleted records (within the UIDs given, for
/// UID EXPUNGE); a record whose \Deleted was taken off after it was chosen stays.
#[test]
fn expunge_deleted_takes_only_what_is_still_deleted() {
    let (_dir, store, actor, inbox) = crate::content::store_with_inbox(10);
    let deleted: Flags = [crate::flags::Flag::Deleted].into_iter().collect();
    let outcome = store
        .store_flags(&actor, &inbox, &[2, 4, 6, 8], FlagOp::Add, &deleted, None)
        .unwrap();
    assert_eq!(outcome.changed.len(), 4);
    // A store reports the records it left alone too, as they are.
    let again = store
        .store_flags(&actor, &inbox, &[1, 2], FlagOp::Add, &deleted, None)
        .unwrap();
    assert_eq!(again.changed.iter().map(|c| c.uid).collect::<Vec<_>>(), [1]);
    assert_eq!(again.unchanged.len(), 1);
    assert_eq!(again.unchanged[0].uid, 2);
    assert!(again.unchanged[0]
        .flags
        .contains(&crate::flags::Flag::Deleted));
    assert_eq!(again.unchanged[0].modseq, outcome.changed[0].modseq);
    assert_eq!(again.before, outcome.changed[0].modseq);
    // UID EXPUNGE: only the \Deleted among the UIDs named.
    let gone = store
        .expunge_deleted(&actor, &inbox, Some(&[9, 4, 3, 2]))
        .unwrap();
    assert_eq!(gone.uids, [2, 4]);
    assert_eq!(gone.before, again.changed[0].modseq);
    assert!(gone.modseq > gone.before);
    // A record chosen while \Deleted, then undeleted, is left alone.
    store
        .store_flags(&actor, &inbox, &[6], FlagOp::Remove, &deleted, None)
        .unwrap();
    let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let (done, _) = store
        .write(move |c| super::expunge_where(c, &mailbox, &[6, 8], true))
        .unwrap();
    assert_eq!(done, [8]);
    assert_eq!(
        store.expunge_deleted(&actor, &inbox, None).unwrap().uids,
        [1]
    );
    let none = store.expunge_deleted(&actor, &inbox, None).unwrap();
    assert!(none.uids.is_empty());
    let live = store.mailbox("u", "INBOX").unwrap().unwrap().messages;
    assert_eq!(live, 6);
}

/// \Recent is taken up to what the taker's snapshot showed: a message that
/// arrived after it stays for the next session to see it, and a snapshot with
/// nothing new takes nothing.
#[test]
fn recent_is_taken_up_to_the_snapshot() {
    use crate::append_batch::NewMessage;
    let (_dir, store, actor, inbox) = crate::content::store_with_inbox(3);
    let first = store.mailbox("u", "INBOX").unwrap().unwrap();
    let one = NewMessage {
        flags: Flags::new(),
        internaldate: 0,
        bytes: b"Subject: late\r\n\r\nx\r\n",
    };
    store.append_all(&actor, &inbox, &[one]).unwrap();
    // The session saw UIDs 1-3: those are its \Recent, UID 4 is not taken.
    assert_eq!(store.take_recent(&actor, &first).unwrap(), 0);
    let second = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!((second.recent_uid, second.last_uid), (3, 4));
    // A second session sees 4 and gets it; a third, nothing.
    assert_eq!(store.take_recent(&actor, &second).unwrap(), 3);
    let third = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(store.take_recent(&actor, &third).unwrap(), 4);
    // An old snapshot cannot take back what another session took.
    assert_eq!(store.take_recent(&actor, &first).unwrap(), 4);
    // A snapshot read before another session's take (the second's, stale now) gets
    // nothing, answered from what this process took; a later arrival still goes to
    // the first session that shows it.
    let two = NewMessage {
        flags: Flags::new(),
        internaldate: 0,
        bytes: b"Subject: later\r\n\r\ny\r\n",
    };
    store.append_all(&actor, &inbox, &[two]).unwrap();
    let fourth = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!((fourth.recent_uid, fourth.last_uid), (4, 5));
    assert_eq!(store.take_recent(&actor, &second).unwrap(), 4);
    assert_eq!(store.take_recent(&actor, &fourth).unwrap(), 4);
    assert_eq!(store.take_recent(&actor, &second).unwrap(), 5);
    assert_eq!(store.take_recent(&actor, &fourth).unwrap(), 5);
    assert_eq!(store.mailbox("u", "INBOX").unwrap().unwrap().recent_uid, 5);
}

/// A scattered set of more UIDs than one statement names is read and written in
/// chunks: exactly the live records named change, in UID order, and the digest
/// stays what the records say.
#[test]
fn scattered_sets_change_exactly_the_records_named() {
    let (_dir, store, actor, inbox) = crate::content::store_with_inbox(300);
    store.expunge(&actor, &inbox, &[10, 150]).unwrap();
    let deleted: Flags = [crate::flags::Flag::Deleted].into_iter().collect();
    let every_fifth: Vec<u32> = (1..=60).rev().map(|i| i * 5).collect();
    let outcome = store
        .store_flags(&actor, &inbox, &every_fifth, FlagOp::Add, &deleted, None)
        .unwrap();
    let changed: Vec<u32> = outcome.changed.iter().map(|c| c.uid).collect();
    let want: Vec<u32> = (1..=60)
        .map(|i| i * 5)
        .filter(|u| ![10, 150].contains(u))
        .collect();
    assert_eq!(changed, want);
    let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let flagged: Vec<u32> = store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT uid FROM records WHERE mailbox_id = ?1 AND flags != '' \
                 AND expunged_modseq IS NULL ORDER BY uid",
            )?;
            let rows = stmt.query_map([mailbox.id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap();
    assert_eq!(flagged, want);
    let recomputed = store
        .read(|c| crate::digest::recompute_records_digest(c, mailbox.id))
        .unwrap();
    assert_eq!(mailbox.digest, recomputed);
    // The same store again changes nothing and reports every record as it is.
    let again = store
        .store_flags(&actor, &inbox, &every_fifth, FlagOp::Add, &deleted, None)
        .unwrap();
    assert!(again.changed.is_empty());
    let unchanged: Vec<u32> = again.unchanged.iter().map(|c| c.uid).collect();
    assert_eq!(unchanged, want);
}

/// A store meets each record's flags text: forty records, each with a keyword of its
/// own and every third also \Flagged, all get \Seen and keep the rest; the outcome
/// and the stored flags agree, and so does the digest. Then a user who may set \Seen but not \Deleted is
/// refused as soon as one record would change, and nothing is written.
#[test]
fn every_flags_text_gets_its_own_change() {
    use crate::flags::Flag;
    let (_dir, store, actor, inbox) = crate::content::store_with_inbox(40);
    for uid in 1..=40u32 {
        let mut own: Flags = [Flag::parse(&format!("k{uid}")).unwrap()]
            .into_iter()
            .collect();
        if uid.is_multiple_of(3) {
            own.insert(Flag::Flagged);
        }
        store
            .store_flags(&actor, &inbox, &[uid], FlagOp::Replace, &own, None)
            .unwrap();
    }
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let all: Vec<u32> = (1..=40).collect();
    let outcome = store
        .store_flags(&actor, &inbox, &all, FlagOp::Add, &seen, None)
        .unwrap();
    assert_eq!(outcome.changed.len(), 40);
    let want = |uid: u32| {
        let flagged = if uid.is_multiple_of(3) {
            "\\Flagged "
        } else {
            ""
        };
        format!("\\Seen {flagged}k{uid}")
    };
    for change in &outcome.changed {
        assert_eq!(change.flags.to_string(), want(change.uid));
    }
    let stored: Vec<(u32, String)> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT uid, flags FROM records ORDER BY uid")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap();
    assert_eq!(stored.len(), 40);
    for (uid, text) in &stored {
        assert_eq!(*text, want(*uid));
    }
    let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let recomputed = store
        .read(|c| crate::digest::recompute_records_digest(c, mailbox.id))
        .unwrap();
    assert_eq!(mailbox.digest, recomputed);

    let reader = Actor {
        name: "reader".into(),
        is_admin: false,
    };
    store
        .set_acl(
            &actor,
            &inbox,
            "reader",
            Some(Rights::parse("lrs").unwrap()),
        )
        .unwrap();
    let before = store.mailbox("u", "INBOX").unwrap().unwrap();
    let deleted: Flags = [Flag::Deleted].into_iter().collect();
    assert!(store
        .store_flags(&reader, &inbox, &all, FlagOp::Add, &deleted, None)
        .is_err());
    let unseen: Flags = [Flag::Seen].into_iter().collect();
    assert!(store
        .store_flags(&reader, &inbox, &[2, 3], FlagOp::Remove, &unseen, None)
        .is_ok());
    let after = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(after.highest_modseq, before.highest_modseq + 1);
}
