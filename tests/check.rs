//! `tern check` end to end: a store damaged on purpose under a running `tern serve`
//! (or a stopped one, for the index file), the real binary finding the damage and
//! repairing it, and clients checking that no UID was reused and no modseq lowered.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use common::imap::{number_after, Imap};
use common::*;

fn check(config: &Path, args: &[&str]) -> Output {
    tern_tool(config, "check", args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `tern check ARGS` and asserts its exit status.
fn check_status(config: &Path, args: &[&str], status: i32) -> Output {
    let out = check(config, args);
    assert_eq!(
        out.status.code(),
        Some(status),
        "tern check {args:?}:\n{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn message(i: usize) -> String {
    format!(
        "Message-ID: <check-{i}@test>\r\nSubject: check {i}\r\n\r\nbody {i} {}\r\n",
        "y".repeat(500 + i)
    )
}

/// A server with `alice` (password `pw`) and `count` messages in her INBOX.
fn server_with_mail(root: &Path, count: usize) -> TernServer {
    let server = TernServer::start(root, "");
    admin(
        &server.config,
        &["user", "add", "alice", "--password-stdin"],
        Some("pw\n"),
    );
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    for i in 1..=count {
        let r = lmtp
            .deliver("a@test", &["alice@localhost"], message(i).as_bytes())
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
    server
}

fn deliver_one(server: &TernServer, i: usize) {
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    let r = lmtp
        .deliver("a@test", &["alice@localhost"], message(i).as_bytes())
        .unwrap();
    assert!(r[0].starts_with("250"), "{r:?}");
}

/// The UIDs a fresh IMAP session lists in INBOX.
fn uids(server: &TernServer) -> Vec<u32> {
    let mut imap = Imap::login(server.imap, "alice", "pw");
    imap.cmd("SELECT INBOX");
    let lines = imap.cmd("UID SEARCH ALL");
    lines
        .iter()
        .find(|l| l.starts_with("* SEARCH"))
        .map(|l| {
            l.split_whitespace()
                .skip(2)
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_deleted_blob_becomes_an_expunge_that_qresync_clients_see() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_mail(dir.path(), 5);
    let mut imap = Imap::login(server.imap, "alice", "pw");
    imap.cmd("ENABLE QRESYNC");
    let selected = imap.cmd("SELECT INBOX");
    let uidvalidity = number_after(&selected, "UIDVALIDITY");
    let before = number_after(&selected, "HIGHESTMODSEQ");
    imap.cmd("LOGOUT");

    std::fs::remove_file(inbox_blob(&server.data_dir(), 3)).unwrap();
    let found = check_status(&server.config, &[], 1);
    let text = stdout(&found);
    assert!(
        text.lines()
            .any(|l| l.starts_with("blob-missing user=alice mailbox=INBOX ")
                && l.contains(" uid=3 ")),
        "{text}"
    );
    assert_eq!(total(&found, "findings"), 1);

    let repaired = check_status(&server.config, &["--repair"], 0);
    assert!(
        stdout(&repaired).contains("repaired blob-missing"),
        "{}",
        stdout(&repaired)
    );
    assert_eq!(total(&check_status(&server.config, &[], 0), "findings"), 0);

    // A QRESYNC client learns that UID 3 went, with a higher modseq; nothing else moved.
    let mut imap = Imap::login(server.imap, "alice", "pw");
    imap.cmd("ENABLE QRESYNC");
    let resynced = imap.cmd(&format!("SELECT INBOX (QRESYNC ({uidvalidity} {before}))"));
    assert!(
        resynced.iter().any(|l| l == "* VANISHED (EARLIER) 3"),
        "{resynced:?}"
    );
    assert_eq!(number_after(&resynced, "UIDVALIDITY"), uidvalidity);
    assert!(number_after(&resynced, "HIGHESTMODSEQ") > before);
    assert_eq!(number_after(&resynced, "UIDNEXT"), 6);
    // UID 3 is never given again.
    deliver_one(&server, 6);
    assert_eq!(uids(&server), vec![1, 2, 4, 5, 6]);
}

#[test]
fn a_truncated_blob_is_found_by_size_and_a_flipped_byte_only_by_deep() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_mail(dir.path(), 4);
    let data = server.data_dir();
    let truncated = inbox_blob(&data, 1);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let flipped = inbox_blob(&data, 2);
    let mut bytes = std::fs::read(&flipped).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&flipped, &bytes).unwrap();

    let shallow = check_status(&server.config, &[], 1);
    assert!(
        stdout(&shallow).contains("blob-wrong-size user=alice mailbox=INBOX"),
        "{}",
        stdout(&shallow)
    );
    assert!(!stdout(&shallow).contains("blob-wrong-content"));
    let deep = check_status(&server.config, &["--deep"], 1);
    let text = stdout(&deep);
    assert!(
        text.lines()
            .any(|l| l.starts_with("blob-wrong-content ") && l.contains(" uid=2 ")),
        "{text}"
    );
    assert!(total(&deep, "bytes_hashed") > 0);

    check_status(&server.config, &["--deep", "--repair"], 0);
    assert_eq!(
        total(&check_status(&server.config, &["--deep"], 0), "findings"),
        0
    );
    assert_eq!(uids(&server), vec![3, 4]);
    // The damaged files are kept aside, not deleted.
    let damaged = data.join("partitions/default/damaged");
    assert_eq!(std::fs::read_dir(damaged).unwrap().count(), 2);
}

#[test]
fn an_orphan_blob_is_offered_back_as_a_new_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_mail(dir.path(), 2);
    let content = b"From: lost@test\r\nSubject: found again\r\n\r\nrestored from a backup\r\n";
    let guid = tern_store::Guid::of(content).to_hex();
    let fanout = server
        .data_dir()
        .join("partitions/default/blobs")
        .join(&guid[..2]);
    std::fs::create_dir_all(&fanout).unwrap();
    let path = fanout.join(&guid);
    std::fs::write(&path, content).unwrap();
    // An hour old: a file this young might be a delivery about to commit.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);

    let found = check_status(&server.config, &[], 1);
    assert!(
        stdout(&found).contains(&format!(
            "orphan-blob guid={guid} partition=default size={} purged=0",
            content.len()
        )),
        "{}",
        stdout(&found)
    );
    // Nobody to give it to: left, and said so.
    let left = check_status(&server.config, &["--repair"], 1);
    assert!(
        stdout(&left).contains("left orphan-blob"),
        "{}",
        stdout(&left)
    );
    assert_eq!(total(&left, "left"), 1);
    check_status(&server.config, &["--repair", "--recover-to", "alice"], 0);
    check_status(&server.config, &[], 0);

    let mut imap = Imap::login(server.imap, "alice", "pw");
    let selected = imap.cmd("SELECT Recovered");
    assert!(selected.iter().any(|l| l == "* 1 EXISTS"), "{selected:?}");
    let fetched = imap.cmd("FETCH 1 BODY[]");
    assert!(
        fetched.iter().any(|l| l.contains("restored from a backup")),
        "{fetched:?}"
    );
}

#[test]
fn wrong_quota_usage_and_a_record_above_the_last_uid_are_set_right() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_mail(dir.path(), 5);
    let index = server.data_dir().join("index.sqlite3");
    {
        let conn = rusqlite::Connection::open(&index).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        conn.execute_batch(
            "UPDATE users SET used_storage = used_storage + 123456, used_messages = 99 WHERE name = 'alice';
             UPDATE mailboxes SET last_uid = 3 WHERE name = 'INBOX';",
        )
        .unwrap();
    }
    let found = check_status(&server.config, &[], 1);
    let text = stdout(&found);
    assert!(
        text.contains("quota-usage user=alice messages=99 "),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("uid-above-last ") && l.contains(" uid=4 last_uid=3")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("uid-above-last ") && l.contains(" uid=5 last_uid=3")),
        "{text}"
    );
    check_status(&server.config, &["--repair"], 0);
    check_status(&server.config, &[], 0);

    let conn = rusqlite::Connection::open(&index).unwrap();
    let (used, sum): (i64, i64) = conn
        .query_row(
            "SELECT used_storage, (SELECT sum(size) FROM records) FROM users WHERE name = 'alice'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(used, sum);
    // The next message takes UID 6: 4 and 5 stay with the messages that have them.
    deliver_one(&server, 6);
    assert_eq!(uids(&server), vec![1, 2, 3, 4, 5, 6]);
}

/// Overwrites page `page` (1-based) of an SQLite file with garbage.
fn smash_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let size: u64 = {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let mut f = std::fs::File::options().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((page - 1) * size)).unwrap();
    f.write_all(&vec![0xA5; size as usize]).unwrap();
    f.sync_all().unwrap();
}

fn root_page(index: &Path, name: &str) -> u64 {
    let conn = rusqlite::Connection::open(index).unwrap();
    conn.query_row(
        "SELECT rootpage FROM sqlite_master WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_damaged_index_page_is_a_clear_error_and_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_mail(dir.path(), 5);
    let config = server.config.clone();
    let index = server.data_dir().join("index.sqlite3");
    server.terminate();

    // An index's page: found, then rebuilt from the tables.
    smash_page(&index, root_page(&index, "records_by_guid"));
    let found = check_status(&config, &[], 2);
    assert!(
        stdout(&found).contains(&format!("index-damaged file={}", index.display())),
        "{}",
        stdout(&found)
    );
    assert!(String::from_utf8_lossy(&found.stderr).contains("index is damaged"));
    let rebuilt = check_status(&config, &["--repair"], 0);
    assert!(
        stdout(&rebuilt).contains("repaired index: rebuilt"),
        "{}",
        stdout(&rebuilt)
    );
    check_status(&config, &["--deep"], 0);
    let server = TernServer::start(dir.path(), "");
    assert_eq!(uids(&server), vec![1, 2, 3, 4, 5]);
    let mut imap = Imap::login(server.imap, "alice", "pw");
    imap.cmd("SELECT INBOX");
    let fetched = imap.cmd("FETCH 5 BODY[HEADER.FIELDS (SUBJECT)]");
    assert!(
        fetched.iter().any(|l| l == "Subject: check 5"),
        "{fetched:?}"
    );
    drop(imap);
    let mut server = server;
    server.terminate();

    // A table's page: a clear error naming the file, no panic, nothing changed.
    smash_page(&index, root_page(&index, "records"));
    for args in [&[][..], &["--repair"][..]] {
        let out = check_status(&config, args, 2);
        let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(said.contains(&index.display().to_string()), "{said}");
        assert!(!said.contains("panicked"), "{said}");
    }
}

#[test]
fn kill_9_in_the_middle_of_a_repair_and_the_next_one_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_mail(dir.path(), 120);
    let data = server.data_dir();
    let damaged: Vec<u32> = (1..=120).filter(|u| u % 2 == 0).collect();
    for &uid in &damaged {
        std::fs::remove_file(inbox_blob(&data, uid)).unwrap();
    }
    let found = check_status(&server.config, &[], 1);
    assert_eq!(total(&found, "findings"), damaged.len() as u64);

    let mut child = Command::new(TERN)
        .arg("--config")
        .arg(&server.config)
        .args(["check", "--repair"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut repaired = 0;
    for line in lines.by_ref() {
        if line.unwrap().starts_with("repaired blob-missing") {
            repaired += 1;
            if repaired == 3 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(repaired, 3, "the repair ended before it could be killed");

    // What the killed run did is whole; the next run does the rest.
    let rest = check_status(&server.config, &[], 1);
    assert!(total(&rest, "findings") < damaged.len() as u64);
    check_status(&server.config, &["--repair"], 0);
    check_status(&server.config, &["--deep"], 0);
    let kept: Vec<u32> = (1..=120).filter(|u| u % 2 == 1).collect();
    assert_eq!(uids(&server), kept);
    deliver_one(&server, 121);
    assert_eq!(uids(&server).last(), Some(&121));
}

/// Flag stores and an EXPUNGE on a mailbox large enough for its read to be kept are
/// logged and written into the records later (`tern-store`'s `pending.rs`). A
/// `kill -9` right after their replies loses none of them: `tern check` on what the
/// crash left finds nothing wrong, and a client of the restarted server sees every
/// change, as does `tern check` after it.
#[test]
fn flag_stores_and_an_expunge_on_a_large_mailbox_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server_with_mail(dir.path(), 300);
    let mut imap = Imap::login(server.imap, "alice", "pw");
    imap.cmd("SELECT INBOX");
    // A client's first look at the folder: the whole read is kept from here on.
    imap.cmd("FETCH 1:* (UID FLAGS)");
    let ok = |lines: &[String]| {
        let last = lines.last().unwrap();
        assert!(last.split(' ').nth(1) == Some("OK"), "{lines:?}");
    };
    ok(&imap.cmd("STORE 1:* +FLAGS (\\Seen)"));
    let doomed: Vec<String> = (1..=300)
        .filter(|i| i % 7 == 0)
        .map(|i| i.to_string())
        .collect();
    ok(&imap.cmd(&format!(
        "STORE {} +FLAGS.SILENT (\\Deleted)",
        doomed.join(",")
    )));
    let expunged = imap.cmd("EXPUNGE");
    ok(&expunged);
    assert_eq!(
        expunged.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        doomed.len()
    );
    ok(&imap.cmd("STORE 1 +FLAGS (\\Flagged)"));
    server.kill9();

    let unfolded: i64 = rusqlite::Connection::open(server.data_dir().join("index.sqlite3"))
        .and_then(|c| c.query_row("SELECT count(*) FROM pending_changes", [], |r| r.get(0)))
        .unwrap();
    // Only reported: the fold waits for writes to pause 100 ms, which a slow
    // machine may take between the last reply and the kill.
    eprintln!("{unfolded} changes were waiting to be folded at the kill");
    check_status(&server.config, &[], 0);
    let server = TernServer::start(dir.path(), "");
    let mut imap = Imap::login(server.imap, "alice", "pw");
    let selected = imap.cmd("SELECT INBOX");
    assert!(selected.iter().any(|l| l == "* 258 EXISTS"), "{selected:?}");
    let fetched = imap.cmd("FETCH 1:* (UID FLAGS)");
    let lines: Vec<&String> = fetched
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .collect();
    assert_eq!(lines.len(), 258);
    for line in &lines {
        assert!(line.contains("\\Seen"), "{line}");
        assert!(!line.contains("\\Deleted"), "{line}");
        let uid = number_after(&[line.to_string()], "UID");
        assert_ne!(uid % 7, 0, "an expunged message is back: {line}");
        assert_eq!(line.contains("\\Flagged"), uid == 1, "{line}");
    }
    let status = imap.cmd("STATUS INBOX (MESSAGES UNSEEN)");
    assert!(
        status
            .iter()
            .any(|l| l.contains("MESSAGES 258") && l.contains("UNSEEN 0")),
        "{status:?}"
    );
    drop(imap);
    check_status(&server.config, &[], 0);
}
