//! A full disk is a state, not an outage: the store opens and serves reads on a full
//! filesystem, writes fail with a transient error, and the next write after space
//! returns succeeds on the same handle (no restart).
//!
//! Runs on a real small filesystem: a 30 MiB tmpfs mounted for the test (as root; CI
//! runs as root). Where mounting is not permitted the test says so and returns.

mod common;

use common::owner;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tern_store::*;

/// A tmpfs mounted at a directory, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so that a thread of a store still closing cannot keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` until a write fails for lack of space.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write_all(&buf).and_then(|()| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    path
}

fn to(user: &str) -> [DeliveryTarget; 1] {
    [DeliveryTarget {
        user: user.into(),
        folder: None,
    }]
}

#[test]
fn opens_and_reads_on_a_full_disk_and_writes_resume_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&tmp.path().join("mnt"), "30m") else {
        println!("skipped: cannot mount tmpfs");
        return;
    };
    let data = mount.0.join("data");
    let message = b"Subject: before\r\n\r\nwritten while there was room\r\n";
    {
        let store = Store::open(StoreConfig::new(&data), common::indexer()).unwrap();
        store.create_user("alice", Some("pw"), false).unwrap();
        let r = store.deliver(message, &to("alice"), &DeliveryOptions::default());
        assert!(r[0].is_ok(), "{r:?}");
        store.wait_for_orphan_scan();
    }
    // A clean close keeps the WAL's shared-memory file (opening without it would
    // have to allocate it) and cuts the WAL itself to nothing. The write connection
    // closes just after the last handle is dropped: wait for that.
    // The text indexer holds a handle while it works, at low priority: on a busy
    // machine that can take seconds (seen once at 10 s), so allow a minute.
    let wal = data.join("index.sqlite3-wal");
    for _ in 0..1200 {
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() == 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    assert!(data.join("index.sqlite3-shm").exists());
    let filler = fill(&mount.0);

    // Open on the full disk, as `tern serve` does at start.
    let store =
        Store::open(StoreConfig::new(&data), common::indexer()).expect("open on a full disk");
    // Reads work.
    assert!(store.verify_password("alice", "pw").unwrap().is_some());
    let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
    assert_eq!(inbox.messages, 1);
    let (_, records) = store
        .records(&owner("alice"), &inbox.uniqueid, false)
        .unwrap();
    assert_eq!(store.message(&inbox, &records[0]).unwrap(), message);
    // Writes fail, with an error the protocols answer as "try again later".
    let big = {
        let mut m = b"Subject: during\r\n\r\n".to_vec();
        m.resize(256 * 1024, b'x');
        m
    };
    for _ in 0..3 {
        let r = store.deliver(&big, &to("alice"), &DeliveryOptions::default());
        match &r[0] {
            Err(e) => assert!(e.is_transient() && e.is_disk_full(), "{e:?}"),
            Ok(d) => panic!("delivered on a full disk: {d:?}"),
        }
        let r = store.append(&owner("alice"), &inbox.uniqueid, &Flags::new(), 0, &big);
        assert!(
            r.as_ref()
                .is_err_and(|e| e.is_transient() && e.is_disk_full()),
            "{r:?}"
        );
    }
    // An index-only change fails the same way when the WAL has to grow (it may
    // also fit in the WAL's existing space; either way the writer goes on).
    let r = store.set_quota("alice", Quota::default());
    assert!(
        r.as_ref()
            .map_or_else(|e| e.is_transient() && e.is_disk_full(), |_| true),
        "{r:?}"
    );

    // Space returns: the same store takes the next delivery, no restart.
    std::fs::remove_file(&filler).unwrap();
    let r = store.deliver(&big, &to("alice"), &DeliveryOptions::default());
    assert!(
        matches!(r[0], Ok(Delivered::Stored { .. })),
        "after space returned: {r:?}"
    );
    let r = store.append(
        &owner("alice"),
        &inbox.uniqueid,
        &Flags::new(),
        0,
        b"Subject: a\r\n\r\n",
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        store.mailbox("alice", "INBOX").unwrap().unwrap().messages,
        3
    );
    store.set_quota("alice", Quota::default()).unwrap();
    // Nothing the failed writes began is left in the blob store.
    store.wait_for_orphan_scan();
    assert_eq!(store.blobs().list(DEFAULT_PARTITION).unwrap().len(), 3);
    drop(store);
}

/// Waits until the store at `data` has closed: a clean close cuts the WAL to nothing
/// or removes it.
fn wait_closed(data: &Path) {
    let wal = data.join("index.sqlite3-wal");
    for _ in 0..1200 {
        if std::fs::metadata(&wal).map_or(true, |m| m.len() == 0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "the store did not close: WAL {:?}",
        std::fs::metadata(&wal).map(|m| m.len())
    );
}

/// Flag changes on a large mailbox whose read is kept are logged and folded into the
/// records' rows later (`pending.rs`), and a fold needs more room than the change it
/// folds. Near a full disk (below the headroom) a change is not logged: it writes
/// its rows at once, and succeeds or fails whole. Every read of the mailbox goes on
/// working and shows every change that succeeded. Tried with a few pages left free,
/// from fewer than the change needs to more than its fold does.
#[test]
fn flag_changes_near_a_full_disk_are_not_logged() {
    let outcomes = flag_changes_on_a_full_disk(None);
    println!("{outcomes:?}");
}

/// With no headroom kept (a disk filled in the instant between a logged change and
/// its fold), the change is logged and its fold fails for lack of room: reads then
/// fold it in memory only, and every read still answers, with the change.
#[test]
fn a_fold_the_disk_has_no_room_for_is_read_in_memory() {
    let outcomes = flag_changes_on_a_full_disk(Some(0));
    println!("{outcomes:?}");
    assert!(
        outcomes.iter().any(|o| o.ends_with("stored")),
        "{outcomes:?}"
    );
}

/// Toggles \Seen on the 400 messages of a kept INBOX with 1 to 64 pages free; after
/// each, every kind of read must answer and agree with what succeeded.
fn flag_changes_on_a_full_disk(headroom: Option<u64>) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&tmp.path().join("mnt"), "40m") else {
        println!("skipped: cannot mount tmpfs");
        return vec!["skipped: stored".into()];
    };
    let data = mount.0.join("data");
    let config = || {
        let mut c = StoreConfig::new(&data);
        c.text_index_headroom = headroom;
        c
    };
    let alice = owner("alice");
    let uids: Vec<Uid> = (1..=400).collect();
    let seen = Flags::from_iter([Flag::Seen]);
    let mut expected_seen = false;
    {
        let store = Store::open(config(), common::indexer()).unwrap();
        store.create_user("alice", Some("pw"), false).unwrap();
        for n in 0..400 {
            let m = format!("Subject: message {n}\r\n\r\nbody of message {n}\r\n");
            let r = store.deliver(m.as_bytes(), &to("alice"), &DeliveryOptions::default());
            assert!(r[0].is_ok(), "{r:?}");
        }
        store.flush_text_index().unwrap();
        store.wait_for_orphan_scan();
    }
    wait_closed(&data);
    let mut outcomes = Vec::new();
    for pages in [1u64, 2, 4, 6, 8, 12, 16, 24, 32, 64] {
        let store = Store::open(config(), common::indexer()).unwrap();
        let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
        // A client's read keeps INBOX's records.
        store.records(&alice, &inbox.uniqueid, false).unwrap();
        let filler = fill(&mount.0);
        let len = std::fs::metadata(&filler).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap();
        f.set_len(len.saturating_sub(pages * 4096)).unwrap();
        drop(f);
        let op = if expected_seen {
            FlagOp::Remove
        } else {
            FlagOp::Add
        };
        match store.store_flags(&alice, &inbox.uniqueid, &uids, op, &seen, None) {
            Ok(_) => {
                expected_seen = op == FlagOp::Add;
                outcomes.push(format!("{pages}: stored"));
            }
            Err(e) => {
                assert!(e.is_transient() && e.is_disk_full(), "{pages} pages: {e:?}");
                outcomes.push(format!("{pages}: disk full"));
            }
        }
        // Every read answers, those the kept read serves and the others, before and
        // after the store's fold thread has had its turn.
        for when in ["at once", "later"] {
            let what = format!("{pages} pages free, {when}");
            let (_, records) = store
                .records(&alice, &inbox.uniqueid, true)
                .unwrap_or_else(|e| panic!("{what}: records: {e:?}"));
            assert_eq!(records.len(), 400, "{what}");
            assert!(
                records
                    .iter()
                    .all(|r| r.flags.contains(&Flag::Seen) == expected_seen),
                "{what}: a record's \\Seen is not what the last store left"
            );
            let m = store
                .mailbox("alice", "INBOX")
                .unwrap_or_else(|e| panic!("{what}: mailbox: {e:?}"))
                .unwrap();
            assert_eq!(m.messages, 400, "{what}");
            let (_, changed) = store
                .changed_since(&alice, &inbox.uniqueid, 0)
                .unwrap_or_else(|e| panic!("{what}: changed since: {e:?}"));
            assert_eq!(changed.len(), 400, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        // Room again: what waits is folded, and the store writes on.
        std::fs::remove_file(&filler).unwrap();
        let (_, records) = store.records(&alice, &inbox.uniqueid, true).unwrap();
        assert!(records
            .iter()
            .all(|r| r.flags.contains(&Flag::Seen) == expected_seen));
        drop(store);
        wait_closed(&data);
    }
    outcomes
}
