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

#[test]
fn net_imap_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server, "ruby");
    let needs = ".ci/run installs ruby";
    scripted_session(
        "ruby",
        "ruby/imap_net_imap.rb",
        &[],
        server.imap.port(),
        needs,
    );
}
