//! Unit tests of the expire engine against a real store in a temporary directory.

use crate::{
    Actor, Delivered, DeliveryOptions, DeliveryTarget, ExpireOptions, Store, StoreConfig,
    DEFAULT_PARTITION,
};

fn owner(name: &str) -> Actor {
    Actor {
        name: name.into(),
        is_admin: false,
    }
}

fn deliver(store: &Store, user: &str, body: &str) -> u32 {
    let to = [DeliveryTarget {
        user: user.into(),
        folder: None,
    }];
    let m = format!("Subject: {body}\r\n\r\n{body}\r\n").into_bytes();
    match &store.deliver(&m, &to, &DeliveryOptions::default())[0] {
        Ok(Delivered::Stored { appended, .. }) => appended.uid,
        other => panic!("not stored: {other:?}"),
    }
}

fn purge_all() -> ExpireOptions {
    ExpireOptions {
        purge_expunged: Some(0),
        purge_deleted: Some(0),
        collect_blobs: true,
        ..Default::default()
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
    store.wait_for_orphan_scan();
    store.create_user("b", None, false).unwrap();
    (dir, store)
}

#[test]
fn purge_removes_expunged_records_and_their_blobs_and_raises_deletedmodseq() {
    let (_dir, store) = open();
    let uids: Vec<u32> = (0..3)
        .map(|i| deliver(&store, "b", &format!("m{i}")))
        .collect();
    let inbox = store.mailbox("b", "INBOX").unwrap().unwrap();
    let (_, before) = store.records(&owner("b"), &inbox.uniqueid, false).unwrap();
    let expunged_bytes: u64 = before.iter().take(2).map(|r| r.size).sum();
    store
        .expunge(&owner("b"), &inbox.uniqueid, &uids[..2])
        .unwrap();
    let expunged = store.mailbox("b", "INBOX").unwrap().unwrap();

    // Dry: counts, changes nothing.
    let dry = store
        .expire(&ExpireOptions {
            dry_run: true,
            ..purge_all()
        })
        .unwrap();
    assert_eq!((dry.records_purged(), dry.blobs_freed), (2, 2));
    assert_eq!(dry.bytes_freed, expunged_bytes);
    assert_eq!(store.blobs().list(DEFAULT_PARTITION).unwrap().len(), 3);

    let report = store.expire(&purge_all()).unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.records_purged(), 2);
    assert_eq!(
        (report.blobs_freed, report.bytes_freed),
        (2, expunged_bytes)
    );
    let left = store.blobs().list(DEFAULT_PARTITION).unwrap();
    assert_eq!(left.len(), 1);
    let after = store.mailbox("b", "INBOX").unwrap().unwrap();
    // Silent: no new modseq; the purge watermark covers the expunges.
    assert_eq!(after.highest_modseq, expunged.highest_modseq);
    assert_eq!(after.deleted_modseq, expunged.highest_modseq);
    let (_, records) = store.records(&owner("b"), &inbox.uniqueid, true).unwrap();
    assert_eq!(
        records.iter().map(|r| r.uid).collect::<Vec<_>>(),
        vec![uids[2]]
    );
    assert_eq!(left[0].0, records[0].guid);

    // A second run finds nothing more.
    let again = store.expire(&purge_all()).unwrap();
    assert_eq!((again.records_purged(), again.blobs_freed), (0, 0));
}

#[test]
fn a_blob_still_referenced_elsewhere_stays_and_young_expunges_are_kept() {
    let (_dir, store) = open();
    store.create_user("c", None, false).unwrap();
    let uid = deliver(&store, "b", "shared");
    deliver(&store, "c", "shared");
    let inbox = store.mailbox("b", "INBOX").unwrap().unwrap();
    store.expunge(&owner("b"), &inbox.uniqueid, &[uid]).unwrap();

    let young = store
        .expire(&ExpireOptions {
            purge_expunged: Some(3600),
            collect_blobs: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((young.records_purged(), young.blobs_freed), (0, 0));

    let report = store.expire(&purge_all()).unwrap();
    assert_eq!((report.records_purged(), report.blobs_freed), (1, 0));
    assert_eq!(store.blobs().list(DEFAULT_PARTITION).unwrap().len(), 1);
}

#[test]
fn only_the_named_users_are_purged() {
    let (_dir, store) = open();
    store.create_user("c", None, false).unwrap();
    for user in ["b", "c"] {
        let uid = deliver(&store, user, &format!("for {user}"));
        let inbox = store.mailbox(user, "INBOX").unwrap().unwrap();
        store
            .expunge(&owner(user), &inbox.uniqueid, &[uid])
            .unwrap();
    }
    let report = store
        .expire(&ExpireOptions {
            users: vec!["c".into()],
            ..purge_all()
        })
        .unwrap();
    assert_eq!(report.users.len(), 1);
    assert_eq!(report.users[0].user, "c");
    assert_eq!((report.records_purged(), report.blobs_freed), (1, 1));
}

#[test]
fn old_tombstones_are_removed() {
    let (_dir, store) = open();
    store.create_mailbox("b", "Old", None).unwrap();
    store.delete_mailbox("b", "Old").unwrap();
    let kept = store
        .expire(&ExpireOptions {
            purge_deleted: Some(3600),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kept.mailboxes_removed(), 0);
    let report = store.expire(&purge_all()).unwrap();
    assert_eq!(report.mailboxes_removed(), 1);
    let left: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM mailboxes WHERE name = 'Old'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn the_change_log_is_pruned_to_the_slowest_consumer_and_idle_consumers_are_dropped() {
    let (_dir, store) = open();
    for i in 0..4 {
        deliver(&store, "b", &format!("log {i}"));
    }
    let changes = store.changes_after(0, 100).unwrap();
    assert!(changes.len() >= 4);
    let second = changes[1].seq;
    store.ack_changes("slow", second).unwrap();
    store
        .ack_changes("fast", changes.last().unwrap().seq)
        .unwrap();
    let report = store.expire(&ExpireOptions::default()).unwrap();
    assert!(report.consumers_dropped.is_empty());
    assert_eq!(store.changes_after(0, 100).unwrap()[0].seq, second + 1);
    // "slow" acknowledged an hour ago: past a 10-minute idle limit it is dropped.
    store
        .write(|c| {
            Ok(c.execute(
                "UPDATE changelog_acks SET at = at - 3600 WHERE consumer = 'slow'",
                [],
            )?)
        })
        .unwrap();
    let report = store
        .expire(&ExpireOptions {
            consumer_max_idle: Some(600),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.consumers_dropped, vec!["slow".to_owned()]);
    assert!(store.changes_after(0, 100).unwrap().is_empty());
}

/// Collection racing deliveries of the same messages (which find the blob present and
/// skip writing it): every committed live record keeps its blob.
#[test]
fn collection_racing_deliveries_of_the_same_message_loses_no_blob() {
    let (_dir, store) = open();
    const ROUNDS: usize = 150;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let expiring = store.clone();
        let stop = &stop;
        s.spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = expiring.expire(&purge_all()).unwrap();
                assert!(!r.failed(), "{r:?}");
            }
        });
        let inbox = store.mailbox("b", "INBOX").unwrap().unwrap();
        for i in 0..ROUNDS {
            // The same content twice: the first copy is expunged (and purged and
            // collected meanwhile), the second delivery finds or rewrites the blob.
            let first = deliver(&store, "b", &format!("same {}", i / 2));
            if i % 2 == 0 {
                store
                    .expunge(&owner("b"), &inbox.uniqueid, &[first])
                    .unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let inbox = store.mailbox("b", "INBOX").unwrap().unwrap();
    let (_, records) = store.records(&owner("b"), &inbox.uniqueid, false).unwrap();
    assert_eq!(records.len(), ROUNDS / 2);
    for r in &records {
        assert!(
            store
                .blobs()
                .contains(DEFAULT_PARTITION, &r.guid, r.size)
                .unwrap(),
            "uid {} has no blob",
            r.uid
        );
    }
}
