//! IMAP through the real `tern serve` binary, driven by the UW c-client library (PHP's
//! imap extension, as in Alpine and many PHP applications): an IMAP client tern did not
//! write, with its own parser of every response. The checks are in
//! `tests/php/imap_c_client.php`: status and lists, headers and structure, parts,
//! search, sort and thread, flags, a non-ASCII folder, APPEND with a date, COPY, MOVE,
//! expunge, ACLs, rename and delete. PHP and its imap extension are required
//! (`.ci/run` installs php-cli and php-imap).

mod common;

use common::maildir::*;
use common::*;
use std::process::Command;

/// The three messages the script expects, delivered to alice's INBOX.
fn deliver_three(server: &TernServer) {
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    for n in 1..=3 {
        let word = if n == 2 { "wombat" } else { "quokka" };
        let msg = format!(
            "From: Sender {n} <s{n}@example.org>\r\nTo: alice@example.org, \"Bob B\" <bob@example.org>\r\n\
             Subject: c-client {n}\r\nDate: Mon, 0{n} Jun 2025 10:00:00 +0200\r\n\
             Message-ID: <cc-{n}@example.org>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
             --b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}, {word}.\r\n\
             --b{n}\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b{n}--\r\n"
        );
        let r = lmtp
            .deliver("sender@example.org", &["alice@localhost"], msg.as_bytes())
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
}

#[test]
fn c_client_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    add_user(&server, "bob");
    deliver_three(&server);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php/imap_c_client.php");
    let out = Command::new("php")
        .arg(script)
        .arg(server.imap.port().to_string())
        .output()
        .expect(
            "php with the imap extension must be installed (.ci/run installs php-cli and php-imap)",
        );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
