//! METADATA through the real `tern serve` binary, driven by Python's imaplib
//! (`tests/python/imap_metadata.py`), and the expire policy it sets as `tern admin`
//! shows it.

mod common;

use common::*;
use std::process::Command;

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

#[test]
fn imaplib_sets_metadata_and_the_expire_policy_admin_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    let out = admin(
        &server.config,
        &["user", "add", "alice", "--password-stdin"],
        Some("secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("python3")
        .arg(format!("{PYTHON_DIR}/imap_metadata.py"))
        .arg(server.imap.ip().to_string())
        .arg(server.imap.port().to_string())
        .output()
        .expect("python3 must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "imap_metadata.py failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let list = admin_ok(&server.config, &["mailbox", "list", "alice", "--expire"]);
    let expire_of = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
    };
    assert_eq!(expire_of("Lists").as_deref(), Some("30d"), "{list}");
    assert_eq!(
        expire_of("Lists/rust").as_deref(),
        Some("30d(Lists)"),
        "{list}"
    );
    assert_eq!(expire_of("INBOX").as_deref(), Some("-"), "{list}");
}
