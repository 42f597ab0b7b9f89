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

#[test]
fn mail_imapclient_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server, "perl");
    let needs = ".ci/run installs libmail-imapclient-perl";
    scripted_session(
        "perl",
        "perl/imap_mail_imapclient.pl",
        &[],
        server.imap.port(),
        needs,
    );
}
