//! LMTP delivery through the real `tern serve` binary, checked by reading the store
//! back byte for byte.

mod common;

use common::*;
use std::process::Command;

/// What tern stores for a message smtplib sent: Return-Path first, every bare LF
/// turned into CRLF (smtplib's dot-stuffing is undone by the server).
fn expected_stored(sender: &str, sent: &[u8]) -> Vec<u8> {
    let mut out = format!("Return-Path: <{sender}>\r\n").into_bytes();
    let mut prev = 0u8;
    for &b in sent {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Every live message of `user`'s `mailbox`, in UID order, as the store holds it.
fn stored_messages(store: &tern_store::Store, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
    let m = store.mailbox(user, mailbox).unwrap().unwrap();
    let (_, records) = store.records(&owner(user), &m.uniqueid, false).unwrap();
    records
        .iter()
        .map(|r| store.message(&m, r).unwrap())
        .collect()
}

#[test]
fn python_smtplib_mixed_batch_is_stored_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    admin_ok(&server.config, &["user", "add", "alice"]);
    admin_ok(&server.config, &["user", "add", "bob"]);
    admin_ok(&server.config, &["user", "add", "full"]);
    admin_ok(
        &server.config,
        &["quota", "set", "full", "--storage", "100"],
    );
    admin_ok(&server.config, &["mailbox", "create", "bob", "Lists/rust"]);
    // Open for `bob+Lists/rust@` delivery (without `anyone p` it would go to INBOX).
    let store = open_store(&server.data_dir());
    let lists = store
        .mailbox("bob", "Lists/rust")
        .unwrap()
        .unwrap()
        .uniqueid;
    store
        .set_acl(
            &owner("bob"),
            &lists,
            "anyone",
            Some(tern_store::Rights::POST),
        )
        .unwrap();
    drop(store);

    let out = tmp.path().join("py");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/lmtp_mixed.py"
        ))
        .arg(server.lmtp.ip().to_string())
        .arg(server.lmtp.port().to_string())
        .arg(&out)
        .status()
        .expect("python3 must be installed");
    assert!(status.success());
    let result: String = std::fs::read_to_string(out.join("result.json")).unwrap();

    // The replies, as smtplib saw them: the unknown user refused at RCPT, the user
    // over quota refused at DATA with 452, everyone else delivered.
    assert!(
        result.contains(
            r#""nobody@example.org",
    550"#
        ),
        "{result}"
    );
    assert!(
        result.contains(
            r#""full@example.org",
    452"#
        ),
        "{result}"
    );
    let delivered = result.matches("delivered to").count();
    assert_eq!(delivered, 4, "{result}");

    let store = open_store(&server.data_dir());
    let read_all = |user: &str, mailbox: &str| stored_messages(&store, user, mailbox);
    let msg0 = std::fs::read(out.join("msg0.eml")).unwrap();
    let msg1 = std::fs::read(out.join("msg1.eml")).unwrap();
    let msg2 = std::fs::read(out.join("msg2.eml")).unwrap();
    assert!(msg1.len() > 20 * 1024 * 1024);
    let alice = read_all("alice", "INBOX");
    assert_eq!(alice.len(), 2);
    assert!(
        alice[0] == expected_stored("sender@example.org", &msg0),
        "8-bit message differs"
    );
    assert!(
        alice[1] == expected_stored("big@example.org", &msg1),
        "20 MiB message differs"
    );
    assert_eq!(
        read_all("bob", "Lists/rust"),
        vec![expected_stored("sender@example.org", &msg0)]
    );
    assert_eq!(read_all("bob", "INBOX"), vec![expected_stored("", &msg2)]);
    assert!(read_all("full", "INBOX").is_empty());
}

#[test]
fn same_message_to_fifty_users_occupies_one_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    let store = open_store(&server.data_dir());
    let users: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
    for u in &users {
        store.create_user(u, None, false).unwrap();
    }
    let addrs: Vec<String> = users.iter().map(|u| format!("{u}@example.org")).collect();
    let rcpts: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let message = b"From: ceo@example.org\r\nSubject: all hands\r\n\r\nMeeting at noon.\r\n";
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    // Once in one transaction with 50 recipients, then once per user.
    let replies = lmtp.deliver("ceo@example.org", &rcpts, message).unwrap();
    assert_eq!(replies.len(), 50);
    assert!(replies.iter().all(|r| r.starts_with("250")), "{replies:?}");
    for rcpt in &rcpts {
        let r = lmtp.deliver("ceo@example.org", &[rcpt], message).unwrap();
        assert!(r[0].starts_with("250"));
    }
    for u in &users {
        assert_eq!(store.mailbox(u, "INBOX").unwrap().unwrap().messages, 2);
    }
    let blob_files: Vec<_> = walk(&server.data_dir().join("partitions/default/blobs"));
    assert_eq!(blob_files.len(), 1, "{blob_files:?}");
    assert_eq!(
        std::fs::read(&blob_files[0]).unwrap(),
        [b"Return-Path: <ceo@example.org>\r\n".as_slice(), message].concat()
    );
}

#[test]
fn delivers_over_the_unix_socket() {
    use std::io::{BufRead, BufReader, Write};
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    admin_ok(&server.config, &["user", "add", "alice"]);
    let stream = std::os::unix::net::UnixStream::connect(&server.lmtp_socket).unwrap();
    let mut w = stream.try_clone().unwrap();
    w.write_all(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x>\r\nDATA\r\nSubject: unix\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        .unwrap();
    let lines: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250 2.1.5 <alice@x> delivered to INBOX uid 1")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().starts_with("221"));
    let store = open_store(&server.data_dir());
    assert_eq!(
        store.mailbox("alice", "INBOX").unwrap().unwrap().messages,
        1
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TernServer::start(tmp.path(), "");
    let mut idle = Lmtp::connect(server.lmtp).unwrap();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        idle.reply().unwrap().starts_with("421"),
        "an idle client is told the server is going away"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// swaks (Debian package swaks, which `.ci/run` installs), an SMTP/LMTP client tern did
/// not write: one transaction to two users and an unknown one, with a body line that
/// starts with a dot (swaks stuffs it). Each user gets its own 250 after DATA, the
/// unknown one a 550 at RCPT, and both mailboxes hold the message with the dot
/// restored.
#[test]
fn swaks_delivers_to_several_recipients_over_lmtp() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    admin_ok(&server.config, &["user", "add", "alice"]);
    admin_ok(&server.config, &["user", "add", "bob"]);
    let body = "first line\n.leading dot\n..two dots\nlast line";
    let out = Command::new("swaks")
        .args(["--protocol", "LMTP", "--server"])
        .arg(server.lmtp.to_string())
        .args(["--from", "sender@example.org", "--to"])
        .arg("alice@localhost,nobody@localhost,bob@localhost")
        .args(["--header", "Subject: swaks test", "--body", body])
        .args(["--timeout", "20"])
        .output()
        .expect("swaks must be installed (.ci/run installs it)");
    let log = show(&out);
    assert!(log.contains("<** 550"), "the unknown recipient: {log}");
    assert_eq!(
        log.matches("<-  250 ").count(),
        // LHLO, MAIL, two RCPTs, and one reply per accepted recipient after DATA
        1 + 1 + 2 + 2,
        "{log}"
    );
    assert!(
        log.contains("<alice@localhost>") && log.contains("<bob@localhost>"),
        "{log}"
    );

    let store = open_store(&server.data_dir());
    for user in ["alice", "bob"] {
        let messages = stored_messages(&store, user, "INBOX");
        assert_eq!(messages.len(), 1, "{user}");
        let stored = String::from_utf8(messages[0].clone()).unwrap();
        assert!(
            stored.starts_with("Return-Path: <sender@example.org>\r\n"),
            "{stored}"
        );
        assert!(stored.contains("Subject: swaks test\r\n"), "{stored}");
        assert!(
            stored.contains("\r\nfirst line\r\n.leading dot\r\n..two dots\r\nlast line\r\n"),
            "{user}: {stored:?}"
        );
    }
}
