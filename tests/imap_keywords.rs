//! Keywords as a mailbox property (issue 9), through the real `tern serve` binary and
//! Python's imaplib (`tests/python/imap_keywords.py`): SELECT lists the mailbox's
//! keyword table in FLAGS and PERMANENTFLAGS, other sessions hear of a new keyword in
//! an untagged FLAGS before any FETCH shows it, a keyword stays after the last message
//! loses it, the per-mailbox cap is answered `NO [LIMIT]`, and a replica lists the
//! master's keywords.
//!
//! python3 is required (`.ci/run` installs it); a missing python3 fails the test.

mod common;
mod pair;

use common::*;
use pair::{assert_verify_clean, imap_run, sync_ok, Pair};
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/imap_keywords.py");

/// Runs one scenario against a fresh server with alice; panics with the script's
/// report (every failed check and the IMAP exchange) if a check failed.
fn scenario(root: &Path, name: &str) {
    let server = TernServer::start(root, "");
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
        .args([
            SCRIPT,
            &server.imap.ip().to_string(),
            &server.imap.port().to_string(),
            name,
        ])
        .output()
        .expect("python3 must be installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(r#""ok": true"#),
        "scenario `{name}` failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keywords_reach_every_session_and_stay_listed() {
    let tmp = tempfile::tempdir().unwrap();
    scenario(tmp.path(), "keywords_reach_every_session");
}

#[test]
fn the_keyword_cap_answers_no_limit() {
    let tmp = tempfile::tempdir().unwrap();
    scenario(tmp.path(), "keyword_cap");
}

/// SELECT's FLAGS list of `mailbox` on `server` (as alice).
fn flags_listed(server: &TernServer, mailbox: &str) -> String {
    let out = Command::new("python3")
        .args([
            SCRIPT,
            &server.imap.ip().to_string(),
            &server.imap.port().to_string(),
            "flags",
            mailbox,
        ])
        .output()
        .expect("python3 must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The keyword table travels with the mailbox: a replica lists the master's keywords,
/// also those no message has any more.
#[test]
fn a_replica_lists_the_masters_keywords() {
    let p = Pair::new();
    imap_run(
        &p.master,
        "alice",
        r#"[
            ["append", "INBOX", "($Label1 foo)", "From: a@b\nSubject: k\nMessage-ID: <k-1@example.org>\n\nhi\n"],
            ["append", "INBOX", "(bar)", "From: a@b\nSubject: k\nMessage-ID: <k-2@example.org>\n\nhi\n"],
            ["select", "INBOX"],
            ["store", "1", "-FLAGS", "($Label1 foo)"]
        ]"#,
    );
    sync_ok(p.mconf(), &["--user", "alice"]);
    let listed = flags_listed(&p.replica, "INBOX");
    assert!(
        listed.contains(r#""$Label1", "bar", "foo"]"#),
        "replica's FLAGS after the sync: {listed}"
    );
    assert_eq!(listed, flags_listed(&p.master, "INBOX"));
}

/// A split brain: while cut off, a client of the replica gives a message a keyword and
/// takes it away again. The keyword is in the replica's FLAGS; after healing, the master
/// lists it too (the merge takes the replica's table, not only its messages' flags),
/// and both sides list the same.
#[test]
fn a_keyword_only_the_replica_defined_comes_back_to_the_master() {
    let p = Pair::new();
    imap_run(
        &p.master,
        "alice",
        r#"[
            ["append", "INBOX", "()", "From: a@b\nSubject: k\nMessage-ID: <s-1@example.org>\n\nhi\n"]
        ]"#,
    );
    sync_ok(p.mconf(), &["--user", "alice"]);
    // The replica takes writes of its own while the master does not reach it.
    imap_run(
        &p.replica,
        "alice",
        r#"[
            ["select", "INBOX"],
            ["store", "1", "+FLAGS", "($Project)"],
            ["store", "1", "-FLAGS", "($Project)"]
        ]"#,
    );
    assert!(flags_listed(&p.replica, "INBOX").contains("$Project"));
    assert!(!flags_listed(&p.master, "INBOX").contains("$Project"));
    sync_ok(p.mconf(), &["--user", "alice"]);
    sync_ok(p.mconf(), &["--user", "alice"]);
    let listed = flags_listed(&p.master, "INBOX");
    assert!(
        listed.contains("$Project"),
        "master's FLAGS after healing: {listed}"
    );
    assert_eq!(listed, flags_listed(&p.replica, "INBOX"));
    assert_verify_clean(p.mconf());
}
