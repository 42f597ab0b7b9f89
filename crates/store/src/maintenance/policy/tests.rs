use super::*;
use crate::{Actor, Flags, StoreConfig};

const NOW: i64 = 1_800_000_000;
const USER: &str = "alice";

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
    store.create_user(USER, None, false).unwrap();
    (dir, store)
}

fn owner() -> Actor {
    Actor {
        name: USER.to_owned(),
        is_admin: false,
    }
}

/// Appends one message `days` old and one an hour old; returns the old one's UID.
fn old_and_new(store: &Store, mailbox: &str) -> Uid {
    let old = store
        .append_as_owner(
            USER,
            mailbox,
            &Flags::default(),
            NOW - 40 * DAY,
            format!("Subject: old in {mailbox}\r\n\r\nold\r\n").as_bytes(),
        )
        .unwrap();
    store
        .append_as_owner(
            USER,
            mailbox,
            &Flags::default(),
            NOW - 3600,
            format!("Subject: new in {mailbox}\r\n\r\nnew\r\n").as_bytes(),
        )
        .unwrap();
    old.uid
}

/// The live UIDs of a mailbox.
fn live(store: &Store, mailbox: &str) -> Vec<Uid> {
    let m = store.mailbox(USER, mailbox).unwrap().unwrap();
    store.live_uids(&owner(), &m.uniqueid).unwrap().1
}

fn setup() -> (tempfile::TempDir, Store) {
    let (dir, store) = open();
    for name in ["A", "A/B", "A/B/C", "A/D", "A/D/E", "Z"] {
        store.create_mailbox(USER, name, None).unwrap();
    }
    for name in ["INBOX", "A", "A/B", "A/B/C", "A/D", "A/D/E", "Z"] {
        old_and_new(&store, name);
    }
    store
        .set_expire_policy(USER, "A", Some(ExpireSetting::Days(30)))
        .unwrap();
    store
        .set_expire_policy(USER, "A/D", Some(ExpireSetting::Never))
        .unwrap();
    (dir, store)
}

#[test]
fn values_parse_as_cyrus_reads_them() {
    assert_eq!(ExpireSetting::parse("30"), ExpireSetting::Days(30));
    assert_eq!(ExpireSetting::parse(" 7 "), ExpireSetting::Days(7));
    assert_eq!(ExpireSetting::parse("0"), ExpireSetting::Never);
    assert_eq!(ExpireSetting::parse("none"), ExpireSetting::Never);
    assert_eq!(ExpireSetting::parse("thirty"), ExpireSetting::Never);
    assert_eq!(ExpireSetting::parse("-3"), ExpireSetting::Never);
    assert_eq!(ExpireSetting::Days(30).to_value(), "30");
    assert_eq!(ExpireSetting::Never.to_value(), "none");
}

#[test]
fn children_inherit_the_nearest_ancestors_policy_and_none_stops_it() {
    let (_dir, store) = setup();
    let a = store.expire_policy(USER, "A").unwrap();
    assert_eq!(a.own, Some(ExpireSetting::Days(30)));
    assert_eq!(a.effective, Some(30));
    let c = store.expire_policy(USER, "A/B/C").unwrap();
    assert_eq!((c.own, c.effective), (None, Some(30)));
    assert_eq!(c.from.as_deref(), Some("A"));
    let e = store.expire_policy(USER, "A/D/E").unwrap();
    assert_eq!((e.own, e.effective), (None, None));
    assert_eq!(e.from.as_deref(), Some("A/D"));
    let z = store.expire_policy(USER, "Z").unwrap();
    assert_eq!((z.own, z.effective, z.from), (None, None, None));
    assert_eq!(
        store.annotations(USER, "A").unwrap(),
        vec![(EXPIRE_ANNOTATION.to_owned(), "30".to_owned())]
    );

    let report = store.expire_by_policy(Some(USER), false, NOW).unwrap();
    assert_eq!(report.messages(), 3, "the old message of A, A/B and A/B/C");
    for name in ["A", "A/B", "A/B/C"] {
        assert_eq!(
            live(&store, name).len(),
            1,
            "{name} keeps only its new message"
        );
    }
    for name in ["INBOX", "A/D", "A/D/E", "Z"] {
        assert_eq!(live(&store, name).len(), 2, "{name} keeps both");
    }
    // Removing the child's own "none" lets the parent's policy reach it again.
    store.set_expire_policy(USER, "A/D", None).unwrap();
    let report = store.expire_by_policy(None, false, NOW).unwrap();
    assert_eq!(report.messages(), 2, "the old message of A/D and A/D/E");
    assert_eq!(live(&store, "A/D/E").len(), 1);
}

#[test]
fn expired_messages_are_ordinary_expunges_with_a_new_modseq() {
    let (_dir, store) = open();
    let old = old_and_new(&store, "INBOX");
    store
        .set_expire_policy(USER, "INBOX", Some(ExpireSetting::Days(7)))
        .unwrap();
    let before = store.mailbox(USER, "INBOX").unwrap().unwrap();
    let report = store.expire_by_policy(Some(USER), false, NOW).unwrap();
    assert_eq!((report.messages(), report.users.len()), (1, 1));
    assert!(report.bytes() > 0);
    let (after, records) = store.records(&owner(), &before.uniqueid, true).unwrap();
    let gone = records.iter().find(|r| r.uid == old).unwrap();
    let expunged = gone.expunged_modseq.expect("the old message is expunged");
    assert!(expunged > before.highest_modseq, "a new modseq");
    assert_eq!(gone.modseq, expunged);
    assert_eq!(after.highest_modseq, expunged);
    assert_eq!(after.messages, 1);
    assert_eq!(
        after.deleted_modseq, before.deleted_modseq,
        "expunged, not purged"
    );
    // What a QRESYNC client (or a replica) asks after its last HIGHESTMODSEQ: the
    // expunge is there, so it learns of it as VANISHED.
    let (_, changes) = store
        .changed_since(&owner(), &before.uniqueid, before.highest_modseq)
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].uid, changes[0].expunged_modseq),
        (old, Some(expunged))
    );
    // Quota usage follows, as for any expunge.
    let user = store.user(USER).unwrap().unwrap();
    assert_eq!(user.used_messages, 1);
    // A second run finds nothing more.
    let again = store.expire_by_policy(Some(USER), false, NOW).unwrap();
    assert_eq!(again.messages(), 0);
}

#[test]
fn a_dry_run_counts_and_changes_nothing() {
    let (_dir, store) = setup();
    let before: Vec<_> = store.mailboxes(USER, false).unwrap();
    let report = store.expire_by_policy(Some(USER), true, NOW).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.messages(), 3);
    assert!(report.bytes() > 0);
    assert_eq!(
        store.mailboxes(USER, false).unwrap(),
        before,
        "no mailbox changed"
    );
    let real = store.expire_by_policy(Some(USER), false, NOW).unwrap();
    assert_eq!(
        (real.messages(), real.bytes()),
        (report.messages(), report.bytes())
    );
}

#[test]
fn batches_cover_more_than_one_transaction() {
    let (_dir, store) = open();
    for i in 0..(BATCH + 7) {
        store
            .append_as_owner(
                USER,
                "INBOX",
                &Flags::default(),
                NOW - 10 * DAY,
                format!("Subject: {i}\r\n\r\n{i}\r\n").as_bytes(),
            )
            .unwrap();
    }
    store
        .set_expire_policy(USER, "INBOX", Some(ExpireSetting::Days(1)))
        .unwrap();
    let report = store.expire_by_policy(Some(USER), false, NOW).unwrap();
    assert_eq!(report.messages(), (BATCH + 7) as u64);
    assert!(live(&store, "INBOX").is_empty());
}

#[test]
fn an_unknown_user_is_an_error() {
    let (_dir, store) = open();
    assert!(matches!(
        store.expire_by_policy(Some("nobody"), false, NOW),
        Err(StoreError::NoSuchUser(_))
    ));
}
