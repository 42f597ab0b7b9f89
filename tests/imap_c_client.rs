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

#[test]
fn c_client_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    add_user(&server, "bob");
    deliver_three(&server, "c-client");
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
