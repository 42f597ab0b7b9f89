//! The store's behaviour through its public API, on a fresh data directory per test.

mod common;

use common::flags;

use tern_store::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    (dir, store)
}

fn id(store: &Store, user: &str, name: &str) -> UniqueId {
    store.mailbox(user, name).unwrap().unwrap().uniqueid
}

/// The owner of user "u"'s mailboxes.
fn u() -> Actor {
    common::owner("u")
}

/// The owner of user "a"'s mailboxes.
fn owner_a() -> Actor {
    common::owner("a")
}

#[test]
fn new_user_has_inbox_and_special_use_mailboxes() {
    let (_d, store) = open();
    store.create_user("Alice", Some("pw"), false).unwrap();
    let boxes = store.mailboxes("alice", false).unwrap();
    let names: Vec<_> = boxes
        .iter()
        .map(|m| (m.name.as_str(), m.special_use.as_deref()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("Archive", Some("\\Archive")),
            ("Drafts", Some("\\Drafts")),
            ("INBOX", None),
            ("Junk", Some("\\Junk")),
            ("Sent", Some("\\Sent")),
            ("Trash", Some("\\Trash")),
        ]
    );
    assert!(matches!(
        store.create_user("alice", None, false),
        Err(StoreError::UserExists(_))
    ));
    assert!(store.verify_password("ALICE", "pw").unwrap().is_some());
    assert!(store.verify_password("alice", "wrong").unwrap().is_none());
    assert!(store.verify_password("nobody", "pw").unwrap().is_none());
}

#[test]
fn modseqs_are_per_user_and_increase_across_mailboxes() {
    let (_d, store) = open();
    store.create_user("a", None, false).unwrap();
    store.create_user("b", None, false).unwrap();
    let a1 = store
        .append_as_owner("a", "INBOX", &Flags::new(), 1, b"one")
        .unwrap();
    let a2 = store
        .append_as_owner("a", "Sent", &Flags::new(), 1, b"two")
        .unwrap();
    let b1 = store
        .append_as_owner("b", "INBOX", &Flags::new(), 1, b"three")
        .unwrap();
    assert!(a2.modseq > a1.modseq);
    assert_eq!((a1.uid, a2.uid, b1.uid), (1, 1, 1));
    let inbox = store.mailbox("a", "inbox").unwrap().unwrap();
    assert_eq!(inbox.highest_modseq, a1.modseq);
    assert_eq!(store.user("a").unwrap().unwrap().highest_modseq, a2.modseq);
}

#[test]
fn flags_expunge_and_changed_since() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    for i in 0..5 {
        store
            .append_as_owner("u", "INBOX", &Flags::new(), i, format!("m{i}").as_bytes())
            .unwrap();
    }
    let inbox = id(&store, "u", "INBOX");
    let before = store.mailbox("u", "INBOX").unwrap().unwrap().highest_modseq;
    let out = store
        .store_flags(
            &u(),
            &inbox,
            &[2, 3, 99],
            FlagOp::Add,
            &flags("\\Seen $Work"),
            None,
        )
        .unwrap();
    assert_eq!(out.changed.len(), 2);
    assert!(out.changed.iter().all(|c| c.modseq > before));
    // Already set: no change, no new modseq.
    let again = store
        .store_flags(&u(), &inbox, &[2], FlagOp::Add, &flags("\\Seen"), None)
        .unwrap();
    assert!(again.changed.is_empty());
    // UNCHANGEDSINCE older than the record's modseq: refused for that record.
    let cond = store
        .store_flags(
            &u(),
            &inbox,
            &[1, 2],
            FlagOp::Add,
            &flags("\\Flagged"),
            Some(before),
        )
        .unwrap();
    assert_eq!(cond.modified, vec![2]);
    assert_eq!(
        cond.changed.iter().map(|c| c.uid).collect::<Vec<_>>(),
        vec![1]
    );

    let gone = store.expunge(&u(), &inbox, &[3, 4, 3]).unwrap();
    assert_eq!(gone, vec![3, 4]);
    let (_, live) = store.records(&u(), &inbox, false).unwrap();
    assert_eq!(
        live.iter().map(|r| r.uid).collect::<Vec<_>>(),
        vec![1, 2, 5]
    );
    let (_, all) = store.records(&u(), &inbox, true).unwrap();
    assert_eq!(all.len(), 5);
    assert!(all
        .iter()
        .find(|r| r.uid == 3)
        .unwrap()
        .expunged_modseq
        .is_some());

    let (mailbox, changed) = store.changed_since(&u(), &inbox, before).unwrap();
    assert_eq!(
        changed.iter().map(|r| r.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(mailbox.messages, 3);
    assert_eq!(mailbox.last_uid, 5);
    let usage = store.user("u").unwrap().unwrap();
    assert_eq!(usage.used_messages, 3);
}

#[test]
fn rename_keeps_identity_and_moves_children() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    let parent = store.create_mailbox("u", "Lists", None).unwrap();
    let child = store.create_mailbox("u", "Lists/rust", None).unwrap();
    store.create_mailbox("u", "Listsx", None).unwrap();
    store
        .append_as_owner("u", "Lists/rust", &Flags::new(), 0, b"hello")
        .unwrap();
    let renamed = store
        .rename_mailbox("u", "Lists", "Old/Lists", None)
        .unwrap();
    assert_eq!(renamed.uniqueid, parent.uniqueid);
    let moved = store.mailbox("u", "Old/Lists/rust").unwrap().unwrap();
    assert_eq!(moved.uniqueid, child.uniqueid);
    assert_eq!(moved.uidvalidity, child.uidvalidity);
    assert_eq!(moved.messages, 1);
    assert!(store.mailbox("u", "Listsx").unwrap().is_some());
    assert!(store.mailbox("u", "Lists/rust").unwrap().is_none());
    assert!(matches!(
        store.rename_mailbox("u", "INBOX", "x", None),
        Err(StoreError::NotPermitted { .. })
    ));
    assert!(matches!(
        store.rename_mailbox("u", "Old/Lists", "Old/Lists/x", None),
        Err(StoreError::NotPermitted { .. })
    ));
    assert!(matches!(
        store.rename_mailbox("u", "Old/Lists", "Listsx", None),
        Err(StoreError::MailboxExists { .. })
    ));
}

#[test]
fn delete_leaves_tombstone_and_recreate_is_a_new_mailbox() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    let first = store.create_mailbox("u", "Work", None).unwrap();
    store
        .append_as_owner("u", "Work", &Flags::new(), 0, b"x")
        .unwrap();
    let tomb = store.delete_mailbox("u", "Work").unwrap();
    assert_eq!(tomb.uniqueid, first.uniqueid);
    assert!(tomb.tombstone_modseq.is_some());
    let second = store.create_mailbox("u", "Work", None).unwrap();
    assert_ne!(second.uniqueid, first.uniqueid);
    assert!(second.uidvalidity > first.uidvalidity);
    let all = store.mailboxes("u", true).unwrap();
    assert_eq!(all.iter().filter(|m| m.name == "Work").count(), 2);
    assert_eq!(store.user("u").unwrap().unwrap().used_messages, 0);
    assert!(store
        .mailbox_by_uniqueid(&first.uniqueid)
        .unwrap()
        .unwrap()
        .tombstone_modseq
        .is_some());
    assert!(matches!(
        store.delete_mailbox("u", "inbox"),
        Err(StoreError::NotPermitted { .. })
    ));
}

#[test]
fn quota_is_enforced_on_append_and_copy() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    store
        .set_quota(
            "u",
            Quota {
                storage: Some(10),
                messages: Some(2),
            },
        )
        .unwrap();
    store
        .append_as_owner("u", "INBOX", &Flags::new(), 0, b"12345")
        .unwrap();
    assert!(matches!(
        store.append_as_owner("u", "INBOX", &Flags::new(), 0, b"123456"),
        Err(StoreError::OverQuota {
            resource: "storage",
            ..
        })
    ));
    store
        .append_as_owner("u", "INBOX", &Flags::new(), 0, b"1")
        .unwrap();
    assert!(matches!(
        store.append_as_owner("u", "INBOX", &Flags::new(), 0, b"2"),
        Err(StoreError::OverQuota {
            resource: "messages",
            ..
        })
    ));
    assert!(matches!(
        store.copy(
            &u(),
            &id(&store, "u", "INBOX"),
            &[1],
            &id(&store, "u", "Sent")
        ),
        Err(StoreError::OverQuota { .. })
    ));
    store
        .expunge(&u(), &id(&store, "u", "INBOX"), &[2])
        .unwrap();
    assert_eq!(
        store
            .copy(
                &u(),
                &id(&store, "u", "INBOX"),
                &[1],
                &id(&store, "u", "Sent")
            )
            .unwrap(),
        vec![(1, 1)]
    );
}

#[test]
fn deliver_per_recipient_results_and_duplicates() {
    let (_d, store) = open();
    store.create_user("a", None, false).unwrap();
    store.create_user("full", None, false).unwrap();
    store
        .set_quota(
            "full",
            Quota {
                storage: Some(3),
                messages: None,
            },
        )
        .unwrap();
    let lists = store.create_mailbox("a", "Lists/rust", None).unwrap();
    store
        .set_acl(&owner_a(), &lists.uniqueid, "anyone", Some(Rights::POST))
        .unwrap();
    let targets = vec![
        DeliveryTarget {
            user: "a".into(),
            folder: Some("Lists/rust".into()),
        },
        DeliveryTarget {
            user: "a".into(),
            folder: Some("NoSuch".into()),
        },
        DeliveryTarget {
            user: "ghost".into(),
            folder: None,
        },
        DeliveryTarget {
            user: "full".into(),
            folder: None,
        },
    ];
    let opts = DeliveryOptions {
        message_id: Some("<x@y>".into()),
        duplicate_window_secs: 3600,
        internaldate: None,
    };
    let out = store.deliver(b"hello world", &targets, &opts);
    assert!(matches!(&out[0], Ok(Delivered::Stored { mailbox, .. }) if mailbox == "Lists/rust"));
    assert!(matches!(&out[1], Ok(Delivered::Stored { mailbox, .. }) if mailbox == "INBOX"));
    assert!(matches!(&out[2], Err(StoreError::NoSuchUser(_))));
    assert!(matches!(&out[3], Err(StoreError::OverQuota { .. })));
    let again = store.deliver(b"hello world", &targets[..1], &opts);
    assert!(matches!(&again[0], Ok(Delivered::Duplicate { .. })));
    let off = DeliveryOptions {
        duplicate_window_secs: 0,
        ..opts
    };
    assert!(matches!(
        &store.deliver(b"hello world", &targets[..1], &off)[0],
        Ok(Delivered::Stored { .. })
    ));
}

#[test]
fn same_message_to_fifty_users_is_one_blob() {
    let (_d, store) = open();
    let mut targets = Vec::new();
    for i in 0..50 {
        let name = format!("user{i}");
        store.create_user(&name, None, false).unwrap();
        targets.push(DeliveryTarget {
            user: name,
            folder: None,
        });
    }
    let msg = b"From: a@b\r\nSubject: all hands\r\n\r\nbody\r\n";
    let out = store.deliver(msg, &targets, &DeliveryOptions::default());
    assert!(out.iter().all(|r| r.is_ok()));
    let blobs = store.blobs().list(DEFAULT_PARTITION).unwrap();
    assert_eq!(blobs, vec![(Guid::of(msg), msg.len() as u64)]);
}

#[test]
fn change_log_names_every_touched_mailbox_and_acks() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    let start = store.changes_after(0, 1000).unwrap().last().unwrap().seq;
    store
        .append_as_owner("u", "INBOX", &Flags::new(), 0, b"x")
        .unwrap();
    store
        .append_as_owner("u", "Sent", &Flags::new(), 0, b"y")
        .unwrap();
    let log = store.changes_after(start, 10).unwrap();
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap().uniqueid;
    let sent = store.mailbox("u", "Sent").unwrap().unwrap().uniqueid;
    assert_eq!(
        log.iter()
            .map(|c| c.mailbox.clone().unwrap())
            .collect::<Vec<_>>(),
        vec![inbox, sent]
    );
    store.ack_changes("replica", log[0].seq).unwrap();
    assert_eq!(store.changes_acked("replica").unwrap(), log[0].seq);
    store.ack_changes("replica", 1).unwrap();
    assert_eq!(
        store.changes_acked("replica").unwrap(),
        log[0].seq,
        "acks never move back"
    );
    assert_eq!(store.changes_after(0, 100).unwrap().len(), 1);
}

#[test]
fn concurrent_writers_get_distinct_uids_and_all_commit() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        store
                            .append_as_owner(
                                "u",
                                "INBOX",
                                &Flags::new(),
                                0,
                                format!("{t}-{i}").as_bytes(),
                            )
                            .unwrap()
                            .uid
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut uids: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    uids.sort();
    assert_eq!(uids, (1..=400).collect::<Vec<_>>());
    assert_eq!(store.mailbox("u", "INBOX").unwrap().unwrap().messages, 400);
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
        store.create_user("u", None, false).unwrap();
        store
            .append_as_owner("u", "INBOX", &flags("\\Seen"), 7, b"persist me")
            .unwrap();
    }
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let (_, recs) = store.records(&u(), &inbox.uniqueid, false).unwrap();
    assert_eq!(recs[0].flags, flags("\\Seen"));
    assert_eq!(store.message(&inbox, &recs[0]).unwrap(), b"persist me");
}

#[test]
fn content_index_answers_text_search_and_keeps_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let mut config = StoreConfig::new(dir.path());
        config.background = false;
        let store = Store::open(config, common::indexer()).unwrap();
        store.create_user("u", None, false).unwrap();
        store
            .append_as_owner(
                "u",
                "INBOX",
                &Flags::new(),
                0,
                b"Subject: old\r\n\r\nquokka before\r\n",
            )
            .unwrap()
    };
    // As if stored by a version before the content index: no summary, no text queued.
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch("DELETE FROM summaries; DELETE FROM pending_texts;")
        .unwrap();
    drop(conn);
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    let a = store
        .append_as_owner(
            "u",
            "INBOX",
            &Flags::new(),
            0,
            b"Subject: one\r\n\r\nThe Quokka smiles\r\n",
        )
        .unwrap();
    let b = store
        .append_as_owner(
            "u",
            "INBOX",
            &Flags::new(),
            0,
            b"Subject: quokka\r\n\r\nnothing here\r\n",
        )
        .unwrap();
    let delivered = store.deliver(
        b"Subject: d\r\n\r\nquokkas everywhere\r\n",
        &[DeliveryTarget {
            user: "u".into(),
            folder: None,
        }],
        &DeliveryOptions::default(),
    );
    let Ok(Delivered::Stored { appended: c, .. }) = &delivered[0] else {
        panic!("{delivered:?}")
    };
    let inbox = id(&store, "u", "INBOX");
    store.flush_text_index().unwrap();
    let body = store
        .search_text(&inbox, TextField::Body, "QUOKKA")
        .unwrap()
        .unwrap();
    assert_eq!(body.candidates, vec![a.uid, c.uid]);
    assert_eq!(
        body.unindexed,
        vec![before.uid],
        "stored before the index: the caller must scan it"
    );
    let all = store
        .search_text(&inbox, TextField::All, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(all.candidates, vec![a.uid, b.uid, c.uid]);
    assert!(
        store
            .search_text(&inbox, TextField::Body, "qu")
            .unwrap()
            .is_none(),
        "too short for trigrams"
    );
    let (_, records) = store.records(&u(), &inbox, false).unwrap();
    let summaries = store
        .summaries(&records.iter().map(|r| r.guid).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(summaries.len(), 3);
    assert_eq!(summaries[&records[1].guid], b"Subject: one");
}

#[test]
fn acl_rights_are_enforced_by_the_store() {
    let (_d, store) = open();
    store.create_user("alice", None, false).unwrap();
    store.create_user("bob", None, false).unwrap();
    store.create_user("root", None, true).unwrap();
    let alice = Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let bob = Actor {
        name: "bob".into(),
        is_admin: false,
    };
    let root = Actor {
        name: "root".into(),
        is_admin: true,
    };
    store
        .append_as_owner("alice", "INBOX", &Flags::new(), 0, b"private")
        .unwrap();
    let inbox = id(&store, "alice", "INBOX");

    // Without a grant bob cannot even learn the mailbox exists.
    assert!(matches!(
        store.records(&bob, &inbox, false),
        Err(StoreError::NoSuchMailbox { .. })
    ));
    assert!(store
        .resolve(&bob, "Other Users/alice/INBOX")
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .visible_mailboxes(&bob)
            .unwrap()
            .iter()
            .filter(|v| v.1.user == "alice")
            .count(),
        0
    );
    assert!(matches!(
        store.set_acl(&bob, &inbox, "bob", Some(Rights::ALL)),
        Err(StoreError::NoSuchMailbox { .. })
    ));

    store
        .set_acl(&alice, &inbox, "bob", Some(Rights::parse("lr").unwrap()))
        .unwrap();
    let (found, rights) = store
        .resolve(&bob, "Other Users/alice/INBOX")
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.uniqueid.clone(), rights.to_string()),
        (inbox.clone(), "lr".into())
    );
    assert_eq!(store.records(&bob, &inbox, false).unwrap().1.len(), 1);
    let seen = flags("\\Seen");
    assert!(matches!(
        store.store_flags(&bob, &inbox, &[1], FlagOp::Add, &seen, None),
        Err(StoreError::PermissionDenied { .. })
    ));
    assert!(matches!(
        store.expunge(&bob, &inbox, &[1]),
        Err(StoreError::PermissionDenied { .. })
    ));
    assert!(matches!(
        store.append(&bob, &inbox, &Flags::new(), 0, b"spam"),
        Err(StoreError::PermissionDenied { .. })
    ));
    assert!(matches!(
        store.set_acl(&bob, &inbox, "bob", Some(Rights::ALL)),
        Err(StoreError::PermissionDenied { .. })
    ));
    // Copying out needs only r; copying in needs i on the target, which bob has at home.
    assert_eq!(
        store
            .copy(&bob, &inbox, &[1], &id(&store, "bob", "INBOX"))
            .unwrap()
            .len(),
        1
    );

    store
        .set_acl(&alice, &inbox, "bob", Some(Rights::parse("lrs").unwrap()))
        .unwrap();
    assert_eq!(
        store
            .store_flags(&bob, &inbox, &[1], FlagOp::Add, &seen, None)
            .unwrap()
            .changed
            .len(),
        1
    );
    assert!(matches!(
        store.store_flags(&bob, &inbox, &[1], FlagOp::Add, &flags("\\Flagged"), None),
        Err(StoreError::PermissionDenied { .. })
    ));

    // anyone, and a negative entry that takes it away again for bob.
    store
        .set_acl(
            &alice,
            &inbox,
            "anyone",
            Some(Rights::parse("lri").unwrap()),
        )
        .unwrap();
    store
        .set_acl(&alice, &inbox, "-bob", Some(Rights::parse("i").unwrap()))
        .unwrap();
    assert_eq!(
        bob.rights(&store.mailbox("alice", "INBOX").unwrap().unwrap())
            .to_string(),
        "lrs"
    );

    // An administrator can find and administer, not read.
    assert_eq!(
        root.rights(&store.mailbox("alice", "INBOX").unwrap().unwrap())
            .to_string(),
        "lria"
    );
    store.set_acl(&alice, &inbox, "anyone", None).unwrap();
    assert_eq!(
        root.rights(&store.mailbox("alice", "INBOX").unwrap().unwrap())
            .to_string(),
        "la"
    );
    assert!(matches!(
        store.records(&root, &inbox, false),
        Err(StoreError::PermissionDenied { .. })
    ));
}

#[test]
fn message_id_index_finds_live_readable_records() {
    let (_d, store) = open();
    store.create_user("u", None, false).unwrap();
    store.create_user("v", None, false).unwrap();
    let msg = |id: &str, n: u32| format!("Subject: s{n}\r\nMessage-ID:{id}\r\n\r\nbody {n}\r\n");
    let a = store
        .append_as_owner(
            "u",
            "INBOX",
            &Flags::new(),
            0,
            msg(" <one@example.org>", 1).as_bytes(),
        )
        .unwrap();
    store
        .append_as_owner(
            "u",
            "Archive",
            &Flags::new(),
            0,
            msg("<one@example.org>", 1).as_bytes(),
        )
        .unwrap();
    store
        .append_as_owner(
            "u",
            "INBOX",
            &Flags::new(),
            0,
            msg(" not an id", 2).as_bytes(),
        )
        .unwrap();
    let found = store
        .records_by_message_id(&u(), "<one@example.org>")
        .unwrap();
    let names: Vec<(&str, u32)> = found
        .iter()
        .map(|(m, uid)| (m.name.as_str(), *uid))
        .collect();
    assert_eq!(names, [("Archive", 1), ("INBOX", a.uid)]);
    assert_eq!(
        store
            .records_by_message_id(&u(), "one@example.org")
            .unwrap()
            .len(),
        2
    );
    assert!(store.message_id_known("<one@example.org>").unwrap());
    assert!(!store.message_id_known("<two@example.org>").unwrap());
    // Another user sees nothing of u's mail.
    let v = Actor {
        name: "v".into(),
        is_admin: false,
    };
    assert!(store
        .records_by_message_id(&v, "<one@example.org>")
        .unwrap()
        .is_empty());
    // Expunged records are not found, but the id stays known.
    let inbox = id(&store, "u", "INBOX");
    store.expunge(&u(), &inbox, &[a.uid]).unwrap();
    let found = store
        .records_by_message_id(&u(), "<one@example.org>")
        .unwrap();
    assert_eq!(found.len(), 1);
    let ids = store.message_ids_of(&u(), &inbox, 1..=10).unwrap();
    assert!(
        ids.is_empty(),
        "the only id-bearing INBOX record is expunged: {ids:?}"
    );
    assert_eq!(store.message_ids_unexamined().unwrap(), 0);
}
