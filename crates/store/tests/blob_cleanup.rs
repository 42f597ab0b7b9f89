//! No blob outlives the write that made it: refused appends and deliveries leave the
//! blob store as it was, and what a crash left is removed after the next start.

mod common;

use common::owner;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tern_store::*;

fn open(dir: &Path) -> Store {
    let store = Store::open(StoreConfig::new(dir), common::indexer()).unwrap();
    store.wait_for_orphan_scan();
    store
}

fn partition(dir: &Path) -> PathBuf {
    dir.join("partitions").join(DEFAULT_PARTITION)
}

/// Every file under the partition's `blobs/` and `tmp/`, temporary ones included.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&partition(dir).join("blobs"), &mut out);
    walk(&partition(dir).join("tmp"), &mut out);
    out.sort();
    out
}

fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: {tag}\r\n\r\n").into_bytes();
    m.resize(size, b'x');
    m
}

/// Every record of `user` has its blob on disk.
fn assert_blobs_present(store: &Store, user: &str) {
    for m in store.mailboxes(user, false).unwrap() {
        let (_, records) = store.records(&owner(user), &m.uniqueid, false).unwrap();
        for r in records {
            assert!(
                store
                    .blobs()
                    .contains(&m.partition, &r.guid, r.size)
                    .unwrap(),
                "{user}/{} uid {} lost its blob",
                m.name,
                r.uid
            );
        }
    }
}

#[test]
fn refused_appends_and_deliveries_leave_no_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_user("full", None, false).unwrap();
    store.create_user("bob", None, false).unwrap();
    store
        .set_quota(
            "full",
            Quota {
                storage: Some(1000),
                messages: None,
            },
        )
        .unwrap();
    let inbox = store.mailbox("full", "INBOX").unwrap().unwrap().uniqueid;
    let before = files(dir.path());

    // Over quota, ten times.
    for i in 0..10 {
        let r = store.append(
            &owner("full"),
            &inbox,
            &Flags::new(),
            0,
            &message(&i.to_string(), 20_000),
        );
        assert!(matches!(r, Err(StoreError::OverQuota { .. })), "{r:?}");
    }
    // No right to insert into another user's mailbox.
    let bobs = store.mailbox("bob", "INBOX").unwrap().unwrap().uniqueid;
    let r = store.append(
        &owner("full"),
        &bobs,
        &Flags::new(),
        0,
        b"Subject: x\r\n\r\n",
    );
    assert!(r.is_err());
    // A mailbox that is gone.
    store.create_mailbox("full", "Gone", None).unwrap();
    let gone = store.mailbox("full", "Gone").unwrap().unwrap().uniqueid;
    store.delete_mailbox("full", "Gone").unwrap();
    let r = store.append(
        &owner("full"),
        &gone,
        &Flags::new(),
        0,
        b"Subject: y\r\n\r\n",
    );
    assert!(matches!(r, Err(StoreError::NoSuchMailbox { .. })), "{r:?}");
    // An LMTP delivery refused for every recipient (over quota, unknown).
    let targets = [
        DeliveryTarget {
            user: "full".into(),
            folder: None,
        },
        DeliveryTarget {
            user: "nobody".into(),
            folder: None,
        },
    ];
    let results = store.deliver(
        &message("lmtp", 20_000),
        &targets,
        &DeliveryOptions::default(),
    );
    assert!(results.iter().all(Result::is_err), "{results:?}");

    assert_eq!(
        files(dir.path()),
        before,
        "refused writes left files behind"
    );
}

/// Appends racing for the last room in a quota (each passes the check made before
/// its blob is written; the transaction refuses all but the first) and deliveries of
/// the same messages to another user: every record keeps its blob, and the blobs of
/// refused appends are gone.
#[test]
fn appends_refused_in_their_transaction_leave_no_blob_and_never_take_a_delivered_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_user("q", None, false).unwrap();
    store.create_user("b", None, false).unwrap();
    let inbox = store.mailbox("q", "INBOX").unwrap().unwrap().uniqueid;
    let to_b = [DeliveryTarget {
        user: "b".into(),
        folder: None,
    }];
    for round in 0..40 {
        let used = store.user("q").unwrap().unwrap().used_messages;
        store
            .set_quota(
                "q",
                Quota {
                    storage: None,
                    messages: Some(used + 1),
                },
            )
            .unwrap();
        let shared = message(&format!("shared {round}"), 3000);
        std::thread::scope(|s| {
            for who in 0..3 {
                let (store, inbox, shared) = (store.clone(), inbox.clone(), shared.clone());
                s.spawn(move || {
                    // Two appends of the message delivered to b, one of a message of
                    // its own: at most one of the three fits.
                    let m = if who == 2 {
                        message(&format!("own {round}"), 3000)
                    } else {
                        shared
                    };
                    let _ = store.append(&owner("q"), &inbox, &Flags::new(), 0, &m);
                });
            }
            let (store, to_b) = (store.clone(), &to_b);
            s.spawn(move || {
                let r = store.deliver(&shared, to_b, &DeliveryOptions::default());
                assert!(r[0].is_ok(), "{r:?}");
            });
        });
    }
    assert_blobs_present(&store, "q");
    assert_blobs_present(&store, "b");
    assert_eq!(store.mailbox("b", "INBOX").unwrap().unwrap().messages, 40);
    // Blobs: the 40 shared messages plus the "own" ones that made it into q.
    let q_records = store.records(&owner("q"), &inbox, false).unwrap().1;
    let own_stored = q_records
        .iter()
        .filter(|r| {
            !store
                .records(
                    &owner("b"),
                    &store.mailbox("b", "INBOX").unwrap().unwrap().uniqueid,
                    false,
                )
                .unwrap()
                .1
                .iter()
                .any(|b| b.guid == r.guid)
        })
        .count();
    assert_eq!(
        store.blobs().list(DEFAULT_PARTITION).unwrap().len(),
        40 + own_stored,
        "an unreferenced blob stayed"
    );
}

/// Writes `bytes` as the blob file of its GUID, as a write that crashed before its
/// record committed would have left it.
fn plant_blob(dir: &Path, bytes: &[u8]) -> PathBuf {
    let hex = Guid::of(bytes).to_hex();
    let fan = partition(dir).join("blobs").join(&hex[..2]);
    std::fs::create_dir_all(&fan).unwrap();
    let path = fan.join(hex);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn crash_leftovers_are_removed_at_open_and_referenced_or_old_blobs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_user("u", None, false).unwrap();
    store
        .append_as_owner(
            "u",
            "INBOX",
            &Flags::new(),
            0,
            b"Subject: kept\r\n\r\nkept\r\n",
        )
        .unwrap();
    drop(store);
    let kept = files(dir.path());
    assert_eq!(kept.len(), 1);

    // An unreferenced blob from before the last completed scan: never touched.
    let old = plant_blob(dir.path(), b"Subject: old\r\n\r\nold\r\n");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let set_old = |p: &Path| {
        std::fs::File::open(p)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap()
    };
    set_old(&old);
    set_old(old.parent().unwrap());
    // What a `kill -9` during APPEND or a replica's batch leaves: a blob whose
    // record never committed, temporary files of the dead process, and one of an
    // older tern that did not name its writer.
    let orphan = plant_blob(dir.path(), b"Subject: orphan\r\n\r\norphan\r\n");
    let pid = dead_pid();
    let tmp = partition(dir.path()).join("tmp");
    let temps = [
        tmp.join(format!("{}.{pid}.00000000000000aa.0", "ab".repeat(20))),
        tmp.join(format!("{}.00000000000000bb", "cd".repeat(20))),
        orphan
            .parent()
            .unwrap()
            .join(format!(".{}.{pid}.00000000000000cc.1.tmp", "ef".repeat(20))),
    ];
    for t in &temps {
        std::fs::write(t, b"partial").unwrap();
    }
    // A temporary file of another live process stays: it may be mid-write.
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let live = tmp.join(format!(
        "{}.{}.00000000000000dd.2",
        "12".repeat(20),
        other.id()
    ));
    std::fs::write(&live, b"in progress").unwrap();

    let store = open(dir.path());
    let _ = other.kill();
    let _ = other.wait();
    let mut expected = kept.clone();
    expected.push(old.clone());
    expected.push(live.clone());
    expected.sort();
    assert_eq!(files(dir.path()), expected);
    // The referenced blob is still readable through its record.
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap();
    let (_, records) = store.records(&owner("u"), &inbox.uniqueid, false).unwrap();
    assert_eq!(
        store.message(&inbox, &records[0]).unwrap(),
        b"Subject: kept\r\n\r\nkept\r\n"
    );
}
