//! The check and repair on stores damaged on purpose (the binary's tests, under
//! `tests/check.rs`, do the same through `tern check`).

use std::fs;

use super::*;
use crate::sql::Cached;
use crate::{Actor, Flags, Store, StoreConfig};

fn store_with_mail() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
    store.create_user("u", Some("pw"), false).unwrap();
    for n in 1..=5 {
        let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
        store
            .append_as_owner("u", "INBOX", &Flags::new(), 0, body.as_bytes())
            .unwrap();
    }
    (dir, store)
}

fn kinds(report: &CheckReport) -> Vec<&'static str> {
    report.damage().map(|f| f.problem.kind()).collect()
}

fn run(dir: &std::path::Path, deep: bool) -> CheckReport {
    let options = CheckOptions {
        deep,
        ..CheckOptions::default()
    };
    check(&StoreConfig::new(dir), &options).unwrap()
}

#[test]
fn a_store_in_use_is_clean() {
    let (dir, store) = store_with_mail();
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    store.expunge(&owner, &inbox.uniqueid, &[2]).unwrap();
    store.create_mailbox("u", "Old", None).unwrap();
    store
        .append_as_owner("u", "Old", &Flags::new(), 0, b"Subject: old\r\n\r\nx\r\n")
        .unwrap();
    store.delete_mailbox("u", "Old").unwrap();
    let report = run(dir.path(), true);
    assert_eq!(kinds(&report), Vec::<&str>::new(), "{:?}", report.findings);
    assert_eq!(report.users, 1);
    assert_eq!(report.records, 5);
    assert!(report.bytes_hashed > 0);
}

#[test]
fn a_missing_blob_is_found_and_expunged_with_a_new_modseq() {
    let (dir, store) = store_with_mail();
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let record = store
        .records_by_uid(&owner, &inbox.uniqueid, &[3])
        .unwrap()
        .remove(0);
    fs::remove_file(store.blobs().path("default", &record.guid).unwrap()).unwrap();
    let report = run(dir.path(), false);
    assert_eq!(kinds(&report), vec!["blob-missing"]);
    assert_eq!(report.findings[0].place.uid, Some(3));
    let options = RepairOptions {
        keep_damaged: None,
        recover_to: None,
    };
    let repaired = store
        .repair(&report.findings, &options, &mut |_, _| {})
        .unwrap();
    assert_eq!(repaired.left_count(), 0, "{:?}", repaired.outcomes);
    let after = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert!(after.highest_modseq > inbox.highest_modseq);
    assert_eq!(after.messages, 4);
    assert_eq!(after.last_uid, inbox.last_uid);
    assert_eq!(after.uidvalidity, inbox.uidvalidity);
    assert_eq!(kinds(&run(dir.path(), false)), Vec::<&str>::new());
}

/// Damage only a bug (or a hand) could make, each found, each set right by the
/// repair, without lowering anything.
#[test]
fn counters_and_rows_damaged_by_hand_are_found_and_set_right() {
    let (dir, store) = store_with_mail();
    store.create_mailbox("u", "Gone", None).unwrap();
    store.delete_mailbox("u", "Gone").unwrap();
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    crate::digest::register_functions(&conn).unwrap();
    conn.execute_batch(
        "UPDATE users SET modseq = 2 WHERE name = 'u';
         UPDATE mailboxes SET highest_modseq = 1, messages = 9 WHERE name = 'INBOX';
         UPDATE mailboxes SET records_digest = x'0102030405060708090a0b0c0d0e0f10' WHERE name = 'INBOX';
         INSERT INTO summaries (guid, summary) VALUES (x'00112233445566778899aabbccddeeff00112233', x'00');
         INSERT INTO changelog_acks (consumer, seq, at) VALUES ('far', 999999, 0);
         DELETE FROM record_changes WHERE uid_lo = 3 AND mailbox_id =
             (SELECT id FROM mailboxes WHERE name = 'INBOX' AND tombstone_modseq IS NULL);",
    )
    .unwrap();
    let gone: i64 = conn
        .query_row_cached("SELECT id FROM mailboxes WHERE name = 'Gone'", [], |r| {
            r.get(0)
        })
        .unwrap();
    conn.execute_cached(
        "INSERT INTO records (mailbox_id, uid, modseq, internaldate, size, guid) \
         VALUES (?1, 1, 1, 0, 3, x'00112233445566778899aabbccddeeff00112299')",
        [gone],
    )
    .unwrap();
    let report = run(dir.path(), false);
    let mut found = kinds(&report);
    found.sort_unstable();
    found.dedup();
    assert_eq!(
        found,
        vec![
            "change-not-logged",
            "consumer-ahead",
            "digest",
            "mailbox-counts",
            "modseq-above-highest",
            "modseq-counter-behind",
            "stale-summary",
            "tombstone-not-empty",
        ],
        "{:#?}",
        report.findings
    );
    let options = RepairOptions::default();
    let repaired = store
        .repair(&report.findings, &options, &mut |_, _| {})
        .unwrap();
    assert_eq!(repaired.left_count(), 0, "{:?}", repaired.outcomes);
    assert_eq!(kinds(&run(dir.path(), false)), Vec::<&str>::new());
    let after = store.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(after.highest_modseq, inbox.highest_modseq);
    assert_eq!(after.messages, 5);
    assert_eq!(after.digest, inbox.digest);
    let user = store.user("u").unwrap().unwrap();
    assert!(user.highest_modseq >= inbox.highest_modseq);
}
