//! `tern expire` end to end: a running `tern serve`, messages delivered over LMTP and
//! expunged over IMAP, then the real `tern expire` binary beside the server.

mod common;
mod pair;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::imap::{number_after, Imap};
use common::*;
use pair::{assert_same, assert_verify_clean, imap_run, sync_ok, Pair};

/// Blob files under the data directory: how many, and their bytes.
fn blob_files(dir: &Path) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("/blobs/") {
                n += 1;
                bytes += meta.len();
            }
        }
    }
    (n, bytes)
}

fn expire(config: &Path, args: &[&str]) -> Output {
    tern_tool(config, "expire", args)
}

fn deliver_many(server: &TernServer, user: &str, count: usize) {
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    for i in 0..count {
        let m = format!(
            "Message-ID: <expire-{i}@test>\r\nSubject: expire {i}\r\n\r\nbody {i} {}\r\n",
            "x".repeat(1000 + i)
        );
        let r = lmtp
            .deliver("a@test", &[&format!("{user}@localhost")], m.as_bytes())
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
}

#[test]
fn purge_frees_the_blobs_and_qresync_sees_vanished_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let server = TernServer::start(dir.path(), "");
    admin(
        &server.config,
        &["user", "add", "eve", "--password-stdin"],
        Some("pw\n"),
    );
    deliver_many(&server, "eve", 30);

    let mut imap = Imap::login(server.imap, "eve", "pw");
    imap.cmd("ENABLE QRESYNC");
    let selected = imap.cmd("SELECT INBOX");
    let uidvalidity = number_after(&selected, "UIDVALIDITY");
    let before = number_after(&selected, "HIGHESTMODSEQ");
    let done = imap.cmd("UID STORE 1:20 +FLAGS.SILENT (\\Deleted)");
    assert!(done.last().unwrap().contains("OK"), "{done:?}");
    let done = imap.cmd("EXPUNGE");
    assert!(done.last().unwrap().contains("OK"), "{done:?}");
    imap.cmd("LOGOUT");

    // An age of 0 needs --force.
    let refused = expire(&server.config, &["--purge-expunged", "0"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");

    let data = server.data_dir();
    let (files_before, bytes_before) = blob_files(&data);
    let dry = expire(
        &server.config,
        &["--purge-expunged", "0", "--force", "--dry-run"],
    );
    assert!(dry.status.success(), "{dry:?}");
    assert_eq!(total(&dry, "records_purged"), 20);
    assert_eq!(blob_files(&data), (files_before, bytes_before));

    let run = expire(&server.config, &["--purge-expunged", "0", "--force"]);
    assert!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("user eve records_purged=20"), "{stdout}");
    assert_eq!(total(&run, "records_purged"), 20);
    assert_eq!(total(&run, "blobs_freed"), 20);
    assert_eq!(total(&run, "failures"), 0);
    let (files_after, bytes_after) = blob_files(&data);
    assert_eq!(files_after, files_before - 20);
    assert_eq!(bytes_before - bytes_after, total(&run, "bytes_freed"));
    assert_eq!(total(&dry, "bytes_freed"), total(&run, "bytes_freed"));

    // A client that last saw the mailbox before the expunge: the records are gone, so
    // the server names every UID it no longer has.
    let mut imap = Imap::login(server.imap, "eve", "pw");
    imap.cmd("ENABLE QRESYNC");
    let selected = imap.cmd(&format!("SELECT INBOX (QRESYNC ({uidvalidity} {before}))"));
    assert!(
        selected.iter().any(|l| l == "* VANISHED (EARLIER) 1:20"),
        "{selected:?}"
    );
    let fetched = imap.cmd("UID FETCH 1:* (UID)");
    assert_eq!(fetched.len(), 11, "{fetched:?}");

    // Nothing left to do.
    let again = expire(&server.config, &["--purge-expunged", "0", "--force"]);
    assert_eq!(total(&again, "records_purged"), 0);
    assert_eq!(total(&again, "blobs_freed"), 0);
}

#[test]
fn kill_9_in_the_middle_of_an_expire_run_loses_no_referenced_blob() {
    let dir = tempfile::tempdir().unwrap();
    let server = TernServer::start(dir.path(), "");
    admin(
        &server.config,
        &["user", "add", "kim", "--password-stdin"],
        Some("pw\n"),
    );
    deliver_many(&server, "kim", 400);
    let mut imap = Imap::login(server.imap, "kim", "pw");
    imap.cmd("SELECT INBOX");
    imap.cmd("UID STORE 1:350 +FLAGS.SILENT (\\Deleted)");
    let done = imap.cmd("EXPUNGE");
    assert!(done.last().unwrap().contains("OK"), "{done:?}");

    // Killed at some moment of its run (before, during or after the purge or the
    // unlinks: whichever it is, the invariants below must hold).
    for pause_ms in [0, 20, 60] {
        let mut child = Command::new(TERN)
            .arg("--config")
            .arg(&server.config)
            .args(["expire", "--purge-expunged", "0", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(pause_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every live message is still readable in full.
        let fetched = imap.cmd("UID FETCH 351:* (BODY.PEEK[])");
        assert!(
            fetched.last().unwrap().contains("OK"),
            "{:?}",
            fetched.last()
        );
        let bodies = fetched.iter().filter(|l| l.contains("BODY[] {")).count();
        assert_eq!(bodies, 50);
    }
    let run = expire(&server.config, &["--purge-expunged", "0", "--force"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(total(&run, "failures"), 0);
    // The later run finished the work: only the live messages' blobs are left.
    assert_eq!(blob_files(&server.data_dir()).0, 50);
    let fetched = imap.cmd("UID FETCH 1:* (BODY.PEEK[])");
    assert_eq!(
        fetched.iter().filter(|l| l.contains("BODY[] {")).count(),
        50
    );
}

/// Expunges `uids` (an IMAP set) of alice's INBOX on `server`.
fn expunge_on(server: &TernServer, uids: &str) {
    imap_run(
        server,
        "alice",
        &format!(
            r#"[["select", "INBOX"],
                ["uid", "STORE", "{uids}", "+FLAGS", "(\\Deleted)"],
                ["uid", "EXPUNGE", "{uids}"]]"#
        ),
    );
}

#[test]
fn replicas_follow_a_purge_and_one_further_behind_is_reset() {
    let p = Pair::new();
    let m = &p.master;
    pair::deliver(m, "alice", "", "base", 0..12);
    sync_ok(p.mconf(), &[]);

    // The replica is in step when the master purges: a sync brings it along.
    expunge_on(m, "1:3");
    sync_ok(p.mconf(), &[]);
    let run = expire(p.mconf(), &["--purge-expunged", "0", "--force"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(total(&run, "records_purged"), 3);
    sync_ok(p.mconf(), &[]);
    assert_same(m, &p.replica, "alice", "after a purge the replica had seen");
    assert_verify_clean(p.mconf());

    // The replica is behind the purge (it never saw these expunges): it is reset.
    expunge_on(m, "4:6");
    pair::deliver(m, "alice", "", "later", 0..2);
    let run = expire(p.mconf(), &["--purge-expunged", "0", "--force"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(total(&run, "records_purged"), 3);
    let out = sync_ok(p.mconf(), &[]);
    // A full resend (RESET) of the mailbox's 8 live records, not just the 2 new ones.
    assert_eq!(pair::summary_number(&out, "records"), 8, "{out}");
    let both = assert_same(
        m,
        &p.replica,
        "alice",
        "after a purge the replica had not seen",
    );
    assert_eq!(both.in_mailbox("INBOX").len(), 8);
    assert_verify_clean(p.mconf());
}

/// The per-mailbox age policy through `tern expire`: a folder set to 30 days loses the
/// messages that arrived earlier (ordinary expunges: a client sees them go), its child
/// inherits the limit, INBOX without one keeps everything, and a later purge frees them.
#[test]
fn tern_expire_applies_the_mailbox_age_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = TernServer::start(dir.path(), "");
    admin(
        &server.config,
        &["user", "add", "eve", "--password-stdin"],
        Some("pw\n"),
    );
    let mut imap = Imap::login(server.imap, "eve", "pw");
    for name in ["Lists", "Lists/Rust"] {
        assert!(imap
            .cmd(&format!("CREATE {name}"))
            .last()
            .unwrap()
            .contains("OK"));
    }
    // Arrival dates as APPEND gives them: two old and one new message per folder.
    for name in ["INBOX", "Lists", "Lists/Rust"] {
        for (i, date) in [
            "01-Jan-2020 10:00:00 +0000",
            "02-Jan-2020 10:00:00 +0000",
            "",
        ]
        .iter()
        .enumerate()
        {
            let body = format!("Subject: {name} {i}\r\n\r\nbody\r\n");
            let date = if date.is_empty() {
                String::new()
            } else {
                format!(" \"{date}\"")
            };
            let done = imap.cmd(&format!(
                "APPEND {name}{date} {{{}+}}\r\n{body}",
                body.len()
            ));
            assert!(done.last().unwrap().contains("OK"), "{done:?}");
        }
    }
    imap.cmd("LOGOUT");
    let mut imap = Imap::login(server.imap, "eve", "pw");
    for name in ["INBOX", "Lists", "Lists/Rust"] {
        let status = imap.cmd(&format!("STATUS {name} (MESSAGES)"));
        assert_eq!(number_after(&status, "MESSAGES"), 3, "{name}: {status:?}");
    }
    admin_ok(
        &server.config,
        &["mailbox", "set-expire", "eve", "Lists", "30"],
    );

    let dry = expire(&server.config, &["--dry-run"]);
    assert!(dry.status.success(), "{dry:?}");
    assert_eq!(total(&dry, "messages_expired"), 4);
    let status = imap.cmd("STATUS Lists (MESSAGES)");
    assert_eq!(
        number_after(&status, "MESSAGES"),
        3,
        "a dry run changes nothing"
    );

    let run = expire(&server.config, &[]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(total(&run, "messages_expired"), 4);
    for (name, left) in [("INBOX", 3), ("Lists", 1), ("Lists/Rust", 1)] {
        let status = imap.cmd(&format!("STATUS {name} (MESSAGES)"));
        assert_eq!(
            number_after(&status, "MESSAGES"),
            left,
            "{name}: {status:?}"
        );
    }
    // Expired messages are expunged records like any other: a purge frees them.
    let purge = expire(&server.config, &["--purge-expunged", "0", "--force"]);
    assert!(purge.status.success(), "{purge:?}");
    assert_eq!(total(&purge, "messages_expired"), 0);
    assert_eq!(total(&purge, "records_purged"), 4);
}

/// On a replica the policy is its master's to apply (an expunge of the replica's own
/// would be a divergence): `tern expire` there says so and still purges.
#[test]
fn a_replica_leaves_the_policy_to_its_master() {
    let p = Pair::new();
    admin_ok(
        &p.master.config,
        &["mailbox", "set-expire", "alice", "INBOX", "1"],
    );
    let run = expire(&p.replica.config, &["--purge-expunged", "0", "--force"]);
    assert!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("policy skipped"), "{stdout}");
    assert_eq!(total(&run, "messages_expired"), 0);
}

#[test]
fn tern_serve_runs_the_expire_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let server = TernServer::start(
        dir.path(),
        "[expire]\nschedule = \"1s\"\npurge_expunged = \"1s\"\npurge_deleted = \"1s\"",
    );
    admin(
        &server.config,
        &["user", "add", "alice", "--password-stdin"],
        Some("secret\n"),
    );
    deliver_many(&server, "alice", 4);
    let (blobs_before, _) = blob_files(&server.data_dir());
    assert_eq!(blobs_before, 4);
    expunge_on(&server, "1:2");
    // The server's own runs purge the two expunged records and collect their blobs.
    let line = server
        .wait_for_log(
            "expire: total messages_expired=0 bytes_expired=0 records_purged=2 ",
            Duration::from_secs(120),
        )
        .expect("no scheduled expire purged the two expunged records");
    assert!(line.contains("expire: total "), "{line}");
    assert!(line.contains("blobs_freed=2 "), "{line}");
    assert_eq!(blob_files(&server.data_dir()).0, 2);
    // Deliveries go on beside it.
    deliver_many(&server, "alice", 1);
    let mut imap = Imap::login(server.imap, "alice", "secret");
    let selected = imap.cmd("SELECT INBOX");
    assert!(selected.iter().any(|l| l == "* 2 EXISTS"), "{selected:?}");
}
