//! IMAP through the real `tern serve` binary, driven by Ruby's Net::IMAP (the standard
//! library's client, under the mail gem's IMAP retriever and Rails' Action Mailbox).
//! Its parser is strict: a response it does not understand raises, so any malformed
//! answer in the session fails the test. The checks are in
//! `tests/ruby/imap_net_imap.rb`: over STARTTLS with AUTHENTICATE PLAIN, the list and
//! STATUS, ENVELOPE and BODYSTRUCTURE as parsed, messages and parts byte for byte,
//! search, sort and thread, flags with CONDSTORE's MODSEQ and CHANGEDSINCE, APPEND with
//! APPENDUID and a date, COPYUID, UID MOVE, EXPUNGE, IDLE woken by another session,
//! rename, subscriptions and delete, quota root and ACL, and a NO that leaves the
//! session usable. Ruby is required (`.ci/run` installs it).

mod common;

use common::maildir::*;
use common::*;
use std::process::Command;

#[test]
fn net_imap_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server, "ruby");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ruby/imap_net_imap.rb");
    let out = Command::new("ruby")
        .arg(script)
        .arg(server.imap.port().to_string())
        .args(["alice", PASSWORD])
        .output()
        .expect("ruby must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
