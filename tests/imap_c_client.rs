//! IMAP through the real `tern serve` binary, driven by the UW c-client library (PHP's
//! imap extension, as in Alpine and many PHP applications): an IMAP client tern did not
//! write, with its own parser of every response. The checks are in
//! `tests/php/imap_c_client.php`: status and lists, headers and structure, parts,
//! search, sort and thread, flags, a non-ASCII folder, APPEND with a date, COPY, MOVE,
//! expunge, ACLs, rename and delete. PHP and its imap extension are required
//! (`.ci/run` installs php-cli and php-imap).

mod common;

use common::maildir::*;

#[test]
fn c_client_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    add_user(&server, "bob");
    deliver_three(&server, "c-client");
    let needs = ".ci/run installs php-cli and php-imap";
    scripted_session(
        "php",
        "php/imap_c_client.php",
        &[],
        server.imap.port(),
        needs,
    );
}
