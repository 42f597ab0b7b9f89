//! The keyword table's rules, through the store's public calls.

use crate::{
    Actor, Adoption, Flag, FlagOp, Flags, Guid, MailboxState, MailboxUpdate, Merge, ReplicaAppend,
    Store, StoreConfig, StoreError, MAX_KEYWORDS,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
    store.create_user("u", Some("pw"), false).unwrap();
    (dir, store)
}

fn owner() -> Actor {
    Actor {
        name: "u".into(),
        is_admin: false,
    }
}

fn flags(s: &str) -> Flags {
    Flags::parse_list(s).unwrap()
}

fn msg(n: u32) -> Vec<u8> {
    format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes()
}

fn keywords(store: &Store, name: &str) -> Vec<String> {
    let m = store.mailbox("u", name).unwrap().unwrap();
    store.mailbox_keywords(&m.uniqueid).unwrap()
}

#[test]
fn a_keyword_stays_after_the_last_message_loses_it() {
    let (_d, store) = open();
    let a = store
        .append_as_owner("u", "INBOX", &flags("\\Seen $Label1"), 0, &msg(1))
        .unwrap();
    assert_eq!(keywords(&store, "INBOX"), vec!["$Label1"]);
    store
        .store_flags(
            &owner(),
            &a.mailbox,
            &[a.uid],
            FlagOp::Add,
            &flags("foo"),
            None,
        )
        .unwrap();
    assert_eq!(keywords(&store, "INBOX"), vec!["$Label1", "foo"]);
    // Removed from every message, replaced away, expunged: the table keeps them.
    store
        .store_flags(
            &owner(),
            &a.mailbox,
            &[a.uid],
            FlagOp::Remove,
            &flags("foo"),
            None,
        )
        .unwrap();
    store
        .store_flags(
            &owner(),
            &a.mailbox,
            &[a.uid],
            FlagOp::Replace,
            &flags("\\Seen"),
            None,
        )
        .unwrap();
    store.expunge(&owner(), &a.mailbox, &[a.uid]).unwrap();
    assert_eq!(keywords(&store, "INBOX"), vec!["$Label1", "foo"]);
    // Another mailbox's table is its own.
    assert!(keywords(&store, "Trash").is_empty());
}

#[test]
fn copy_and_move_bring_their_keywords_and_delete_forgets_the_table() {
    let (_d, store) = open();
    store.create_mailbox("u", "Work", None).unwrap();
    let a = store
        .append_as_owner("u", "INBOX", &flags("$Label2"), 0, &msg(1))
        .unwrap();
    let work = store.mailbox("u", "Work").unwrap().unwrap();
    store
        .copy(&owner(), &a.mailbox, &[a.uid], &work.uniqueid)
        .unwrap();
    assert_eq!(keywords(&store, "Work"), vec!["$Label2"]);
    store.delete_mailbox("u", "Work").unwrap();
    store.create_mailbox("u", "Work", None).unwrap();
    assert!(keywords(&store, "Work").is_empty());
    let work = store.mailbox("u", "Work").unwrap().unwrap();
    store
        .move_records(&owner(), &a.mailbox, &[a.uid], &work.uniqueid)
        .unwrap();
    assert_eq!(keywords(&store, "Work"), vec!["$Label2"]);
    // Deleting the user takes every table with it (the foreign key would refuse
    // otherwise).
    store.delete_user("u").unwrap();
}

#[test]
fn the_cap_refuses_a_write_whole() {
    let (_d, store) = open();
    let many: Flags = (0..MAX_KEYWORDS)
        .map(|i| Flag::Keyword(format!("k{i:03}")))
        .collect();
    let a = store
        .append_as_owner("u", "INBOX", &many, 0, &msg(1))
        .unwrap();
    assert_eq!(keywords(&store, "INBOX").len(), MAX_KEYWORDS);
    // Keywords already in the table are still free to use.
    let b = store
        .append_as_owner("u", "INBOX", &flags("k000 k127"), 0, &msg(2))
        .unwrap();
    let err = store
        .store_flags(
            &owner(),
            &a.mailbox,
            &[a.uid, b.uid],
            FlagOp::Add,
            &flags("\\Seen extra"),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::TooManyKeywords { keyword, limit, .. } if keyword == "extra" && *limit == MAX_KEYWORDS),
        "{err}"
    );
    // Nothing of the refused STORE happened: not even \Seen.
    let (_, records) = store.records(&owner(), &a.mailbox, false).unwrap();
    assert!(records.iter().all(|r| !r.flags.contains(&Flag::Seen)));
    let before = store.mailbox("u", "INBOX").unwrap().unwrap();
    let err = store
        .append_as_owner("u", "INBOX", &flags("extra"), 0, &msg(3))
        .unwrap_err();
    assert!(matches!(err, StoreError::TooManyKeywords { .. }), "{err}");
    let after = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(
        (after.messages, after.last_uid),
        (before.messages, before.last_uid)
    );
    assert_eq!(keywords(&store, "INBOX").len(), MAX_KEYWORDS);
}

/// The whole of mailbox `name` as one UPDATE with `keywords` as the master's table.
fn update_from(
    master: &Store,
    name: &str,
    expect: Option<u64>,
    keywords: &[&str],
) -> MailboxUpdate {
    let m = master.mailbox("u", name).unwrap().unwrap();
    let c = master.changes_since(&m.uniqueid, 0).unwrap();
    let appends = c
        .records
        .iter()
        .map(|r| ReplicaAppend::of(r, Some(master.message(&c.mailbox, r).unwrap())))
        .collect();
    MailboxUpdate {
        user: "u".into(),
        uniqueid: Some(m.uniqueid.clone()),
        expect,
        state: MailboxState {
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            ..MailboxState::of(&c.mailbox, c.annotations.clone())
        },
        appends,
        digest: Some(c.mailbox.digest),
        ..Default::default()
    }
}

#[test]
fn a_replicated_update_adds_to_the_table_and_ignores_the_cap() {
    let (_d1, master) = open();
    let (_d2, replica) = open();
    master
        .append_as_owner("u", "INBOX", &flags("onrecord"), 0, &msg(1))
        .unwrap();
    let m = master.mailbox("u", "INBOX").unwrap().unwrap();
    // The master's table as changes_since reads it (what the client sends).
    assert_eq!(
        master.changes_since(&m.uniqueid, 0).unwrap().keywords,
        vec!["onrecord"]
    );
    replica
        .replica()
        .apply_update(update_from(&master, "INBOX", None, &["mine", "not valid"]))
        .unwrap();
    // The table and the records' keywords, the invalid string left out.
    assert_eq!(keywords(&replica, "INBOX"), vec!["mine", "onrecord"]);
    let hms = replica
        .mailbox("u", "INBOX")
        .unwrap()
        .unwrap()
        .highest_modseq;
    let many: Vec<String> = (0..MAX_KEYWORDS + 10).map(|i| format!("t{i:03}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    replica
        .replica()
        .apply_update(update_from(&master, "INBOX", Some(hms), &many))
        .unwrap();
    let table = keywords(&replica, "INBOX");
    // A union: nothing the replica had is dropped, and the master's cap is not ours.
    assert_eq!(table.len(), MAX_KEYWORDS + 10 + 2);
    assert!(table.contains(&"mine".to_string()) && table.contains(&"onrecord".to_string()));
    // Over the cap, the replica's own clients add no keyword (they may use the ones
    // there).
    let err = replica
        .append_as_owner("u", "INBOX", &flags("new"), 0, &msg(2))
        .unwrap_err();
    assert!(matches!(err, StoreError::TooManyKeywords { .. }), "{err}");
    replica
        .append_as_owner("u", "INBOX", &flags("mine t000"), 0, &msg(2))
        .unwrap();
    // A replicated delete takes the table with it.
    replica.replica().replica_delete("u", &m.uniqueid).unwrap();
    assert!(replica.mailbox_keywords(&m.uniqueid).is_err());
}

#[test]
fn migration_to_v5_fills_the_table_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("u", Some("pw"), false).unwrap();
        store
            .append_as_owner("u", "INBOX", &flags("\\Seen $Label1 foo"), 0, &msg(1))
            .unwrap();
        let gone = store
            .append_as_owner("u", "INBOX", &flags("\\Deleted bar"), 0, &msg(2))
            .unwrap();
        store.expunge(&owner(), &gone.mailbox, &[gone.uid]).unwrap();
        store
            .append_as_owner("u", "Trash", &flags("\\Answered"), 0, &msg(3))
            .unwrap();
        store
            .append_as_owner("u", "Sent", &Flags::new(), 0, &msg(4))
            .unwrap();
        // Back to a version 4 index: no table.
        let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
        crate::schema::downgrade_to_v5(&conn);
        conn.execute_batch("DROP TABLE mailbox_keywords; PRAGMA user_version = 4;")
            .unwrap();
    }
    let store = Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
    // Expunged records' keywords count: they were the mailbox's.
    assert_eq!(keywords(&store, "INBOX"), vec!["$Label1", "bar", "foo"]);
    assert!(keywords(&store, "Trash").is_empty());
    assert!(keywords(&store, "Sent").is_empty());
    let version: i64 = rusqlite::Connection::open(dir.path().join("index.sqlite3"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::schema::SCHEMA_VERSION);
}

#[test]
fn a_merge_from_a_diverged_replica_brings_its_keywords_uncapped() {
    let (_d, store) = open();
    let many: Flags = (0..MAX_KEYWORDS)
        .map(|i| Flag::Keyword(format!("k{i:03}")))
        .collect();
    let a = store
        .append_as_owner("u", "INBOX", &many, 0, &msg(1))
        .unwrap();
    let data = msg(2);
    let merge = Merge {
        replica_highest_modseq: 100,
        replica_last_uid: 5,
        adopt: vec![Adoption {
            replica_uid: Some(5),
            internaldate: 0,
            size: data.len() as u64,
            guid: Guid::of(&data),
            flags: flags("adopted"),
            data,
        }],
        flags: vec![(a.uid, flags("k000 newer"))],
        ..Default::default()
    };
    store.merge_replica(&a.mailbox, merge).unwrap();
    let table = keywords(&store, "INBOX");
    assert_eq!(table.len(), MAX_KEYWORDS + 2);
    assert!(table.contains(&"adopted".to_string()) && table.contains(&"newer".to_string()));
}
