//! `tern check --repair` on a master with a replica: damaged messages come back from
//! the replica's good copies; only what the replica lacks is expunged, and that expunge
//! replicates like any other. A replica asked to repair never expunges on its own.

mod common;
mod pair;

use std::path::Path;
use std::process::Output;

use common::imap::Imap;
use common::*;
use pair::{assert_verify_clean, deliver, message, sync_ok, Pair, PASSWORD};

fn check(config: &Path, args: &[&str], status: i32) -> String {
    let out: Output = tern_tool(config, "check", args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(status),
        "tern check {args:?}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn body(server: &TernServer, uid: u32) -> Option<String> {
    let mut imap = Imap::login(server.imap, "alice", PASSWORD);
    imap.cmd("SELECT INBOX");
    let lines = imap.cmd(&format!("UID FETCH {uid} BODY[TEXT]"));
    lines
        .iter()
        .position(|l| l.contains("BODY[TEXT]"))
        .map(|i| lines[i + 1].clone())
}

#[test]
fn damaged_messages_come_back_from_the_replica_and_only_what_it_lacks_is_expunged() {
    let mut p = Pair::new();
    deliver(&p.master, "alice", "", "heal", 1..5);
    sync_ok(p.mconf(), &[]);
    let original = body(&p.master, 2).unwrap();
    std::fs::remove_file(inbox_blob(&p.master.data_dir(), 2)).unwrap();
    let flipped = inbox_blob(&p.master.data_dir(), 3);
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[5] ^= 0x01;
    std::fs::write(&flipped, bytes).unwrap();
    // Delivered after the sync: only the master had it.
    deliver(&p.master, "alice", "", "heal", 5..6);
    std::fs::remove_file(inbox_blob(&p.master.data_dir(), 5)).unwrap();

    let found = check(p.mconf(), &["--deep"], 1);
    assert!(found.contains("may hold good copies"), "{found}");

    let repaired = check(p.mconf(), &["--deep", "--repair"], 0);
    assert_eq!(repaired.matches("restored guid=").count(), 2, "{repaired}");
    assert!(
        repaired.contains("held 2 of 3 damaged message(s)"),
        "{repaired}"
    );
    assert!(
        repaired.contains("repaired blob-missing") && repaired.contains("expunged"),
        "{repaired}"
    );
    check(p.mconf(), &["--deep"], 0);
    assert_eq!(body(&p.master, 2).unwrap(), original);
    assert!(body(&p.master, 3).unwrap().starts_with("Body of heal 3."));
    assert_eq!(body(&p.master, 5), None);

    // The expunge of UID 5 replicates like any other change.
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());

    // A replica that cannot be asked: nothing is expunged, and the check says why.
    std::fs::remove_file(inbox_blob(&p.master.data_dir(), 4)).unwrap();
    p.replica.kill9();
    let left = check(p.mconf(), &["--repair"], 1);
    assert!(left.contains("cannot be asked for good copies"), "{left}");
    assert!(left.contains("left blob-missing"), "{left}");
    p.restart_replica();
    check(p.mconf(), &["--repair"], 0);
    assert!(body(&p.master, 4).is_some());
    let _ = message("heal", 4);
}

#[test]
fn a_replica_does_not_expunge_its_damaged_messages() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "rep", 1..4);
    sync_ok(p.mconf(), &[]);
    std::fs::remove_file(inbox_blob(&p.replica.data_dir(), 2)).unwrap();
    check(&p.replica.config, &[], 1);
    let left = check(&p.replica.config, &["--repair"], 1);
    assert!(
        left.contains("left blob-missing") && left.contains("on a replica"),
        "{left}"
    );
    let store = open_store(&p.replica.data_dir());
    let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
    assert_eq!(inbox.messages, 3);
}
