//! IMAP through the real `tern serve` binary, driven by Horde_Imap_Client (Debian's
//! php-horde-imap-client: the library of Horde's webmail and other PHP applications,
//! with its own strict response parser and MIME structure). With a cache configured,
//! as the webmail runs it, it enables QRESYNC and UTF8=ACCEPT at login and then
//! sends every APPEND as RFC 6855's `UTF8 (literal8)`. The checks are in
//! `tests/php/imap_horde.php`: STARTTLS, LIST with SPECIAL-USE, STATUS with
//! HIGHESTMODSEQ, ENVELOPE, BODYSTRUCTURE, whole messages and decoded parts (BINARY),
//! ESEARCH, SORT, THREAD, flags with CHANGEDSINCE, APPEND with APPENDUID, COPYUID,
//! MOVE, EXPUNGE, quota root, ACL, METADATA, rename and delete, and a NO that leaves
//! the session usable. `.ci/run` installs php-horde-imap-client.

mod common;

use common::maildir::*;

#[test]
fn horde_imap_client_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server, "horde");
    let needs = ".ci/run installs php-cli and php-horde-imap-client";
    scripted_session("php", "php/imap_horde.php", &[], server.imap.port(), needs);
}
