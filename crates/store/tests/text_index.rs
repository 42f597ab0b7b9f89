//! The full-text index's bounds: per-user cap, per-message cap, headroom on a small
//! filesystem, and the rebuild of an index in an earlier layout.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_store::{
    ContentIndexer, ContentSummary, Delivered, DeliveryOptions, DeliveryTarget, Flags, MessageText,
    Store, StoreConfig, TextField, BODY_TEXT_CAP,
};

/// Header = the first line, body = everything after the blank line.
struct Plain;

impl ContentIndexer for Plain {
    fn summarize(&self, message: &[u8]) -> ContentSummary {
        ContentSummary {
            data: message.iter().take(8).copied().collect(),
            message_id: None,
        }
    }
    fn text(&self, message: &[u8]) -> MessageText {
        let s = String::from_utf8_lossy(message);
        let (head, body) = s.split_once("\r\n\r\n").unwrap_or((&s, ""));
        MessageText {
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}

fn open_with(dir: &Path, f: impl FnOnce(&mut StoreConfig)) -> Store {
    let mut config = StoreConfig::new(dir);
    f(&mut config);
    Store::open(config, Arc::new(Plain)).unwrap()
}

fn append(store: &Store, body: &str) -> u32 {
    let msg = format!("Subject: s\r\n\r\n{body}\r\n");
    store
        .append_as_owner("u", "INBOX", &Flags::new(), 0, msg.as_bytes())
        .unwrap()
        .uid
}

fn inbox(store: &Store) -> tern_store::UniqueId {
    store.mailbox("u", "INBOX").unwrap().unwrap().uniqueid
}

#[test]
fn messages_past_the_user_cap_are_left_to_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    // Each message below carries 48 bytes of text (10 of header, 38 of body).
    let store = open_with(dir.path(), |c| c.text_index_user_cap = 130);
    store.create_user("u", None, false).unwrap();
    store.create_user("v", None, false).unwrap();
    let uids: Vec<u32> = (0..4)
        .map(|i| append(&store, &format!("quokka number {i} jumps over the fence")))
        .collect();
    let other = store
        .append_as_owner(
            "v",
            "INBOX",
            &Flags::new(),
            0,
            b"Subject: s\r\n\r\nquokka of another user\r\n",
        )
        .unwrap();
    store.flush_text_index().unwrap();
    assert_eq!(store.text_index_backlog().unwrap(), 0);
    let m = store
        .search_text(&inbox(&store), TextField::Body, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(m.candidates.len(), 2, "two fit under the cap: {m:?}");
    assert_eq!(m.unindexed.len(), 2, "the rest is read by searches: {m:?}");
    let mut all = [m.candidates, m.unindexed].concat();
    all.sort();
    assert_eq!(all, uids);
    let v = store.mailbox("v", "INBOX").unwrap().unwrap().uniqueid;
    let m = store
        .search_text(&v, TextField::Body, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(
        m.candidates,
        vec![other.uid],
        "another user has a cap of his own"
    );
}

#[test]
fn long_texts_are_indexed_in_part_and_read_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), |_| {});
    store.create_user("u", None, false).unwrap();
    let long = format!("early words {} late wombat", "x".repeat(BODY_TEXT_CAP));
    let l = append(&store, &long);
    let s = append(&store, "short wombat");
    store.flush_text_index().unwrap();
    let early = store
        .search_text(&inbox(&store), TextField::Body, "early")
        .unwrap()
        .unwrap();
    assert_eq!(early.candidates, vec![l]);
    let late = store
        .search_text(&inbox(&store), TextField::Body, "wombat")
        .unwrap()
        .unwrap();
    assert_eq!(late.candidates, vec![s], "past the cap: not in the index");
    assert_eq!(late.unindexed, vec![l], "so the caller reads it");
}

#[test]
fn body_search_does_not_see_header_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), |_| {});
    store.create_user("u", None, false).unwrap();
    let msg = b"Subject: wombat\r\n\r\nnothing\r\n";
    let a = store
        .append_as_owner("u", "INBOX", &Flags::new(), 0, msg)
        .unwrap()
        .uid;
    store.flush_text_index().unwrap();
    let body = store
        .search_text(&inbox(&store), TextField::Body, "wombat")
        .unwrap()
        .unwrap();
    assert!(body.candidates.is_empty() && body.unindexed.is_empty());
    let all = store
        .search_text(&inbox(&store), TextField::All, "wombat")
        .unwrap()
        .unwrap();
    assert_eq!(all.candidates, vec![a]);
}

#[test]
fn an_index_in_the_old_layout_is_rebuilt_and_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let uid = {
        let store = open_with(dir.path(), |_| {});
        store.create_user("u", None, false).unwrap();
        let uid = append(&store, "the quokka was here");
        store.flush_text_index().unwrap();
        uid
    };
    // What tern wrote before: positions kept for two columns, user_version 0.
    {
        let conn = rusqlite::Connection::open(dir.path().join("texts.sqlite3")).unwrap();
        conn.execute_batch(
            "DROP TABLE texts; DROP TABLE text_guids; DROP TABLE text_usage;
             CREATE VIRTUAL TABLE texts USING fts5(head, body, content = '', tokenize = 'trigram');
             CREATE TABLE text_guids (guid BLOB PRIMARY KEY, text_id INTEGER NOT NULL) WITHOUT ROWID;
             PRAGMA user_version = 0;",
        )
        .unwrap();
    }
    let store = open_with(dir.path(), |_| {});
    assert_eq!(store.text_index_backlog().unwrap(), 1, "queued again");
    store.flush_text_index().unwrap();
    let m = store
        .search_text(&inbox(&store), TextField::Body, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(m.candidates, vec![uid]);
}

/// Total bytes of the full-text database and its WAL.
fn text_bytes(dir: &Path) -> u64 {
    ["texts.sqlite3", "texts.sqlite3-wal"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: the store's indexing thread may hold a file open a moment longer.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A message of about 40 KB of distinct text (so that indexing it costs space).
fn wordy(i: usize) -> Vec<u8> {
    let mut body = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ i as u64;
    while body.len() < 40_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(&format!("w{:x} ", x & 0xff_ffff));
    }
    format!("Subject: m{i}\r\nMessage-ID: <{i}@t>\r\n\r\n{body}\r\n").into_bytes()
}

#[test]
fn below_the_headroom_the_indexer_waits_and_deliveries_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("skipped: cannot mount tmpfs");
        return;
    }
    let _mount = Mount(mnt.clone());
    let data = mnt.join("data");
    let store = open_with(&data, |c| c.text_index_headroom = Some(24 << 20));
    store.create_user("u", None, false).unwrap();
    let deliver = |i: usize| {
        let r = store.deliver(
            &wordy(i),
            &[DeliveryTarget {
                user: "u".into(),
                folder: None,
            }],
            &DeliveryOptions::default(),
        );
        assert!(
            matches!(r[0], Ok(Delivered::Stored { .. })),
            "delivery {i}: {r:?}"
        );
    };
    // Plenty of space: the background indexer takes everything.
    for i in 0..10 {
        deliver(i);
    }
    wait_for(
        "the first messages indexed",
        Duration::from_secs(20),
        || store.text_index_backlog().unwrap() == 0,
    );
    // Take the filesystem below the headroom: 40 MiB - 16 MiB - data < 24 MiB.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![1u8; 16 << 20]).unwrap();
    let before = text_bytes(&data);
    for i in 10..30 {
        deliver(i);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(store.text_index_backlog().unwrap(), 20, "nothing indexed");
    assert_eq!(store.flush_text_index().unwrap(), 0, "not even on request");
    assert_eq!(text_bytes(&data), before, "the text index took no space");
    let m = store
        .search_text(&inbox(&store), TextField::Body, "w")
        .unwrap();
    assert!(m.is_none(), "one letter: no index needed to say so");
    let m = store
        .search_text(&inbox(&store), TextField::Body, "subject-less")
        .unwrap()
        .unwrap();
    assert_eq!(m.unindexed.len(), 20, "searches read the waiting messages");
    // Space returns: indexing resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    wait_for("indexing resumed", Duration::from_secs(10), || {
        store.text_index_backlog().unwrap() == 0
    });
    assert!(text_bytes(&data) > before);
}

#[test]
fn texts_of_removed_messages_are_swept_and_free_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), |c| c.text_index_user_cap = 130);
    store.create_user("u", None, false).unwrap();
    store.create_mailbox("u", "Old", None).unwrap();
    for i in 0..2 {
        let msg = format!("Subject: s\r\n\r\nquokka number {i} jumps over the fence\r\n");
        store
            .append_as_owner("u", "Old", &Flags::new(), 0, msg.as_bytes())
            .unwrap();
    }
    store.flush_text_index().unwrap();
    let kept = append(&store, "a quokka kept in the inbox");
    store.flush_text_index().unwrap();
    let m = store
        .search_text(&inbox(&store), TextField::Body, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(m.unindexed, vec![kept], "over the cap");
    assert_eq!(store.sweep_text_index().unwrap(), 0, "nothing removed yet");

    store.delete_mailbox("u", "Old").unwrap();
    assert_eq!(store.sweep_text_index().unwrap(), 2);
    let next = append(&store, "another quokka after the sweep");
    store.flush_text_index().unwrap();
    let m = store
        .search_text(&inbox(&store), TextField::Body, "quokka")
        .unwrap()
        .unwrap();
    assert_eq!(m.candidates, vec![next], "the cap has room again");
    assert_eq!(
        m.unindexed,
        vec![kept],
        "skipped messages stay for the reader"
    );
}

#[test]
fn a_broken_text_index_stops_neither_deliveries_nor_searches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("texts.sqlite3"), vec![7u8; 8192]).unwrap();
    let store = open_with(dir.path(), |_| {});
    store.create_user("u", None, false).unwrap();
    let r = store.deliver(
        b"Subject: s\r\n\r\nquokka\r\n",
        &[DeliveryTarget {
            user: "u".into(),
            folder: None,
        }],
        &DeliveryOptions::default(),
    );
    assert!(matches!(r[0], Ok(Delivered::Stored { .. })), "{r:?}");
    assert!(store.flush_text_index().is_err());
    assert_eq!(
        store
            .search_text(&inbox(&store), TextField::Body, "quokka")
            .unwrap(),
        None,
        "no index: the caller reads every message"
    );
    assert_eq!(store.text_index_backlog().unwrap(), 1, "still queued");
}
