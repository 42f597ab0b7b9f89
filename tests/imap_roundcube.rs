//! IMAP through the real `tern serve` binary, read by Roundcube's IMAP layer
//! (`rcube_imap_generic`, the library of the most widely deployed webmail) the way
//! the webmail calls it. The checks are in `tests/php/imap_roundcube.php`: STARTTLS
//! and AUTHENTICATE, ID, ENABLE QRESYNC, LIST-EXTENDED with SPECIAL-USE, STATUS,
//! SORT and THREAD by UID, ESEARCH, headers and BODYSTRUCTURE through its own
//! parsers, parts decoded, flags, APPEND, COPY, MOVE, UID EXPUNGE, a QRESYNC reselect
//! (VANISHED and the changed flags), quota, ACL, METADATA, folders renamed and
//! removed, and an error that leaves the session usable.
//!
//! The library is Debian's roundcube-core, unpacked (not installed: the package would
//! configure a web server and a database) by `.ci/run` under the system temp
//! directory, with php-cli and php-mbstring installed; a missing library fails the
//! test.

mod common;

use common::maildir::*;

/// Where `.ci/run` unpacks roundcube-core's framework.
fn roundcube_lib() -> std::path::PathBuf {
    std::env::temp_dir().join("tern-roundcube/usr/share/roundcube/program/lib/Roundcube")
}

#[test]
fn roundcube_webmail_session() {
    let lib = roundcube_lib();
    assert!(
        lib.join("rcube_imap_generic.php").is_file(),
        "Roundcube's library is not at {} (.ci/run unpacks roundcube-core there)",
        lib.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    deliver_three(&server, "roundcube");
    let needs = ".ci/run installs php-cli and php-mbstring";
    scripted_session(
        "php",
        "php/imap_roundcube.php",
        &[lib.as_os_str()],
        server.imap.port(),
        needs,
    );
}
