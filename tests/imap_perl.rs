//! IMAP through the real `tern serve` binary, driven by Mail::IMAPClient: the Perl
//! library that imapsync (the common tool for moving mailboxes between servers) and
//! many mail scripts are built on, with its own parsing of every response and of
//! BODYSTRUCTURE and ENVELOPE. The checks are in `tests/perl/imap_mail_imapclient.pl`:
//! a session over STARTTLS by UID (messages byte for byte, headers, structure and
//! parts, search, sort and thread, flags and keywords, APPEND with APPENDUID, COPY,
//! MOVE, expunge, IDLE woken by another session, COMPRESS=DEFLATE, folders renamed and
//! deleted, namespace, quota and ACL, a NO that leaves the session usable). Perl's
//! Mail::IMAPClient is required (`.ci/run` installs libmail-imapclient-perl).

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
             Subject: perl {n}\r\nDate: Mon, 0{n} Jun 2025 10:00:00 +0200\r\n\
             Message-ID: <perl-{n}@example.org>\r\nMIME-Version: 1.0\r\n\
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
fn mail_imapclient_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/perl/imap_mail_imapclient.pl"
    );
    let out = Command::new("perl")
        .arg(script)
        .arg(server.imap.port().to_string())
        .args(["alice", PASSWORD])
        .output()
        .expect("perl must be installed");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
