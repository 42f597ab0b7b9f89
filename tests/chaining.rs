//! Chaining (`[sync] chain = true`, like Cyrus's `sync_log_chain`): a replica that
//! enters the writes it receives by replication in its own change log, so that its own
//! `tern sync --rolling` feeds a further replica: A → B → C. Off by default, when a
//! replica's change log holds only what its own clients wrote.
//!
//! Real `tern serve` processes on loopback ports; conditions are polled against a
//! deadline, nothing waits a fixed time to decide an outcome.

mod common;
mod pair;

use common::*;
use pair::*;
use std::path::Path;
use std::time::Duration;

/// The number of live messages in `user`'s `mailbox` as the store at `data_dir` has
/// them, `None` while the mailbox does not exist there.
fn messages_in(store: &tern_store::Store, user: &str, mailbox: &str) -> Option<u32> {
    store
        .mailbox(user, mailbox)
        .ok()
        .flatten()
        .map(|m| m.messages)
}

fn wait_for_messages(data_dir: &Path, user: &str, mailbox: &str, n: u32, what: &str) {
    let store = open_store(data_dir);
    poll(what, Duration::from_secs(60), || {
        (messages_in(&store, user, mailbox) == Some(n)).then_some(())
    });
}

/// The change-log entries of `user` in the store at `data_dir`.
fn logged_for(data_dir: &Path, user: &str) -> Vec<tern_store::Change> {
    open_store(data_dir)
        .changes_after(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|c| c.user == user)
        .collect()
}

#[test]
fn a_chained_replica_feeds_a_further_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let (ab_port, bc_port) = (free_port(), free_port());
    let root = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    // C: an ordinary replica. B: a replica of A that chains, and replicates to C.
    let c = start_replica(&root("c"), bc_port, "");
    let b_top = format!(
        "[sync]\nchain = true\n{}",
        replication_section(bc_port, REPL_PASSWORD)
    );
    let b = start_replica(&root("b"), ab_port, &b_top);
    let a = start_master(&root("a"), ab_port, "");

    let _a_rolling = start_rolling(&a.config, &tmp.path().join("a-rolling.log"));
    deliver(&a, "alice", "", "chain", 0..5);
    wait_for_messages(&b.data_dir(), "alice", "INBOX", 5, "A's messages on B");
    // B logged what it received: its own rolling client will find it.
    let inbox_on_b = open_store(&b.data_dir())
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .uniqueid;
    let logged = logged_for(&b.data_dir(), "alice");
    assert!(
        logged
            .iter()
            .any(|e| e.mailbox.as_ref() == Some(&inbox_on_b)),
        "with chain = true, B's change log must name alice's INBOX it received: {logged:?}"
    );

    let _b_rolling = start_rolling(&b.config, &tmp.path().join("b-rolling.log"));
    wait_for_messages(
        &c.data_dir(),
        "alice",
        "INBOX",
        5,
        "A's messages on C, through B",
    );
    // Later changes flow through both hops while both rolling clients run: new mail and
    // a flag change made on A.
    deliver(&a, "alice", "", "chain-later", 0..3);
    imap_run(
        &a,
        "alice",
        r#"[["select", "INBOX"], ["uid", "STORE", "1", "+FLAGS", "(\\Flagged)"]]"#,
    );
    wait_for_messages(&c.data_dir(), "alice", "INBOX", 8, "later messages on C");
    let flagged_on_c = || {
        snap(&c, "alice", "c")
            .in_mailbox("INBOX")
            .iter()
            .any(|m| m.uid == 1 && m.flags.contains("\\Flagged"))
    };
    poll("the flag change on C", Duration::from_secs(60), || {
        flagged_on_c().then_some(())
    });
    assert_same(&a, &c, "alice", "A and C, at the two ends of the chain");
    assert_verify_clean(&a.config);
    assert_verify_clean(&b.config);
}

#[test]
fn without_chaining_replicated_writes_are_not_logged() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "plain", 0..3);
    sync_ok(p.mconf(), &[]);
    imap_run(
        &p.master,
        "alice",
        r#"[["create", "Work"], ["select", "INBOX"], ["uid", "STORE", "1", "+FLAGS", "(\\Seen)"]]"#,
    );
    admin_ok(p.mconf(), &["mailbox", "rename", "alice", "Work", "Play"]);
    sync_ok(p.mconf(), &[]);
    imap_run(&p.master, "alice", r#"[["delete", "Play"]]"#);
    sync_ok(p.mconf(), &[]);
    assert_same(&p.master, &p.replica, "alice", "after the syncs");
    let logged = logged_for(&p.replica.data_dir(), "alice");
    assert!(
        logged.is_empty(),
        "chain is off by default: the replica's change log must hold none of the \
         replicated writes (USER, UPDATE, RENAME, DELETE), found {logged:?}"
    );
    // The master's own log did see them, so the check above could fail.
    assert!(!logged_for(&p.master.data_dir(), "alice").is_empty());
}
