//! `user+Folder@` over LMTP respects the folder's ACL (as Cyrus): the copy goes into
//! the folder only where `anyone` has the `p` (post) right, else into INBOX.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Logs in over IMAP and runs one command, returning every line up to its tagged reply.
fn imap_as(server: &TernServer, user: &str, password: &str, command: &str) -> Vec<String> {
    let stream = TcpStream::connect(server.imap).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut read_until = |tag: &str| {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed: {lines:?}");
            let done = line.starts_with(tag);
            lines.push(line.trim_end().to_owned());
            if done {
                return lines;
            }
        }
    };
    read_until("* OK");
    w.write_all(format!("a LOGIN {user} {password}\r\n").as_bytes())
        .unwrap();
    let login = read_until("a ");
    assert!(login.last().unwrap().starts_with("a OK"), "{login:?}");
    w.write_all(format!("b {command}\r\n").as_bytes()).unwrap();
    let out = read_until("b ");
    w.write_all(b"c LOGOUT\r\n").unwrap();
    out
}

#[test]
fn plus_folder_needs_post_right_for_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    let store = open_store(&server.data_dir());
    store.create_user("alice", Some("secret"), false).unwrap();
    let message = b"From: stranger@example.org\r\nSubject: into your Sent?\r\n\r\nhi\r\n";

    // Sent has no ACL entry for anyone: the copy goes to INBOX.
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    let r = lmtp
        .deliver("stranger@example.org", &["alice+Sent@localhost"], message)
        .unwrap();
    assert!(r[0].starts_with("250") && r[0].contains("INBOX"), "{r:?}");
    assert_eq!(
        store.mailbox("alice", "INBOX").unwrap().unwrap().messages,
        1
    );
    assert_eq!(store.mailbox("alice", "Sent").unwrap().unwrap().messages, 0);

    // Rights other than p for anyone are not enough either.
    let out = imap_as(&server, "alice", "secret", "SETACL Sent anyone lr");
    assert!(out.last().unwrap().starts_with("b OK"), "{out:?}");
    let r = lmtp
        .deliver("stranger@example.org", &["alice+Sent@localhost"], message)
        .unwrap();
    assert!(r[0].contains("INBOX"), "{r:?}");
    assert_eq!(store.mailbox("alice", "Sent").unwrap().unwrap().messages, 0);

    // Once alice grants `anyone p` with SETACL, the copy lands in the folder.
    let out = imap_as(&server, "alice", "secret", "SETACL Sent anyone p");
    assert!(out.last().unwrap().starts_with("b OK"), "{out:?}");
    let r = lmtp
        .deliver("stranger@example.org", &["alice+Sent@localhost"], message)
        .unwrap();
    assert!(r[0].starts_with("250") && r[0].contains("Sent"), "{r:?}");
    assert_eq!(store.mailbox("alice", "Sent").unwrap().unwrap().messages, 1);
    assert_eq!(
        store.mailbox("alice", "INBOX").unwrap().unwrap().messages,
        2
    );
}
