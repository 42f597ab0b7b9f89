//! Replication end to end (`docs/replication.md`): a master and a replica, each a real
//! `tern serve` with its own data directory, `tern sync` in between, and what a user
//! sees over IMAP (`tests/python/imap_snapshot.py`) compared on both sides.
//!
//! Every test has its own temporary directories and servers on loopback ports; the
//! servers are killed when the test ends. Nothing waits a fixed time to decide an
//! outcome: conditions are polled against a deadline.

mod common;
mod pair;

use common::*;
use pair::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ====================================================================================
// 1. A full sync, then an incremental one, then a no-op.

#[test]
fn full_then_incremental_then_noop() {
    let p = Pair::new();
    let m = &p.master;
    admin_ok(m.config.as_path(), &["mailbox", "create", "alice", "Work"]);
    admin_ok(
        m.config.as_path(),
        &["mailbox", "create", "alice", "Work/Sub"],
    );
    admin_ok(m.config.as_path(), &["mailbox", "create", "alice", "Temp"]);
    deliver(m, "alice", "", "inbox", 0..30);
    deliver(m, "alice", "Work", "work", 0..15);
    deliver(m, "alice", "Archive", "archive", 0..10);
    deliver(m, "alice", "Work/Sub", "sub", 0..3);
    deliver(m, "alice", "Temp", "temp", 0..3);
    let before = snap(m, "alice", "master-before");
    assert_eq!(
        before.in_mailbox("Work").len(),
        15,
        "LMTP +Work delivered into Work"
    );
    assert_eq!(
        before.in_mailbox("Work/Sub").len(),
        3,
        "LMTP +Work/Sub delivered into Work/Sub"
    );

    let first = sync_ok(p.mconf(), &["--user", "alice"]);
    assert_eq!(summary_number(&first, "users"), 1, "{first}");
    assert_eq!(summary_number(&first, "mailboxes"), 9, "{first}");
    assert!(summary_number(&first, "records") >= 61, "{first}");
    assert_same(m, &p.replica, "alice", "after the first sync");
    assert_verify_clean(p.mconf());
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice"),
        "admin mailbox list"
    );

    // Changes of every kind on the master, over IMAP.
    let old_temp = uniqueid(p.mconf(), "alice", "Temp");
    let ops = r#"[
        ["select", "INBOX"],
        ["uid", "STORE", "1:5", "+FLAGS", "(\\Seen \\Flagged)"],
        ["uid", "STORE", "3", "-FLAGS", "(\\Seen)"],
        ["uid", "STORE", "6:8", "+FLAGS", "($Important Project-X)"],
        ["uid", "STORE", "7", "-FLAGS", "($Important)"],
        ["uid", "STORE", "9", "+FLAGS", "(\\Deleted)"],
        ["expunge"],
        ["uid", "STORE", "10:11", "+FLAGS", "(\\Deleted)"],
        ["uid", "EXPUNGE", "10"],
        ["uid", "MOVE", "12:14", "Archive"],
        ["close"],
        ["create", "NewFolder"],
        ["append", "NewFolder", "(\\Seen)", "From: a@b\nSubject: appended\nMessage-ID: <new-1@example.org>\n\nhello\n"],
        ["rename", "Work", "Projects"],
        ["delete", "Junk"],
        ["delete", "Temp"],
        ["create", "Temp"],
        ["append", "Temp", "()", "From: a@b\nSubject: second temp\nMessage-ID: <temp2-1@example.org>\n\nnew temp\n"],
        ["subscribe", "Projects"],
        ["subscribe", "NewFolder"],
        ["setacl", "Projects", "bob", "lrs"]
    ]"#;
    imap_run(m, "alice", ops);
    let changed = snap(m, "alice", "master-changed");
    let names: BTreeSet<String> = changed.mailboxes().into_keys().collect();
    for want in ["Projects", "Projects/Sub", "NewFolder", "Temp"] {
        assert!(
            names.contains(want),
            "master lacks {want} after the IMAP changes: {names:?}"
        );
    }
    for gone in ["Work", "Work/Sub", "Junk"] {
        assert!(!names.contains(gone), "master still has {gone}: {names:?}");
    }
    let new_temp = uniqueid(p.mconf(), "alice", "Temp");
    assert_ne!(
        old_temp, new_temp,
        "DELETE + CREATE Temp must give a new unique id"
    );

    let second = sync_ok(p.mconf(), &["--user", "alice"]);
    assert!(summary_number(&second, "mailboxes") >= 5, "{second}");
    assert_same(m, &p.replica, "alice", "after the incremental sync");
    assert_verify_clean(p.mconf());
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice"),
        "`tern admin mailbox list alice` (unique ids, UIDVALIDITY, last UID, HIGHESTMODSEQ) on master vs replica"
    );
    assert_eq!(
        uniqueid(&p.replica.config, "alice", "Temp"),
        new_temp,
        "replica's Temp has the new unique id"
    );
    let r = snap(&p.replica, "alice", "replica");
    let acl = r.acl("Projects");
    assert!(
        acl.contains(&"bob lrs".to_owned()),
        "SETACL Projects bob lrs on the replica: {acl:?}"
    );
    let subs = r.subscriptions();
    assert!(
        subs.contains(&"Projects".to_owned()) && subs.contains(&"NewFolder".to_owned()),
        "replica's subscriptions: {subs:?}"
    );

    // Nothing changed since: a no-op.
    let third = sync_ok(p.mconf(), &["--user", "alice"]);
    eprintln!("no-op sync: {third}");
    assert_eq!(
        summary_number(&third, "mailboxes"),
        0,
        "a sync with nothing to do: {third}"
    );
    assert!(
        summary_number(&third, "round") <= 2,
        "a no-op sync should take at most 2 round trips: {third}"
    );
    let all = sync_ok(p.mconf(), &["--all"]);
    assert_eq!(
        summary_number(&all, "mailboxes"),
        0,
        "--all with nothing to do: {all}"
    );
}

// ====================================================================================
// 2. --mailbox syncs one mailbox only; --parallel 3 fills a fresh replica.

#[test]
fn one_mailbox_and_parallel_sessions() {
    let p = Pair::new();
    let m = &p.master;
    admin_ok(m.config.as_path(), &["mailbox", "create", "alice", "Work"]);
    deliver(m, "alice", "", "inbox", 0..5);
    deliver(m, "alice", "Work", "work", 0..5);
    sync_ok(p.mconf(), &[]);
    assert_same(m, &p.replica, "alice", "after the first sync");
    let replica_before = snap(&p.replica, "alice", "replica-before");

    deliver(m, "alice", "", "inbox", 5..8);
    deliver(m, "alice", "Work", "work", 5..7);
    imap_run(
        m,
        "alice",
        r#"[["select", "Archive"], ["close"], ["create", "Later"]]"#,
    );
    let summary = sync_ok(p.mconf(), &["--user", "alice", "--mailbox", "Work"]);
    assert_eq!(summary_number(&summary, "mailboxes"), 1, "{summary}");
    let master = snap(m, "alice", "master");
    let replica = snap(&p.replica, "alice", "replica");
    assert_eq!(
        replica.in_mailbox("Work"),
        master.in_mailbox("Work"),
        "Work after --mailbox Work"
    );
    assert_eq!(
        replica.mailboxes()["Work"],
        master.mailboxes()["Work"],
        "Work's STATUS after --mailbox Work"
    );
    assert_eq!(
        replica.in_mailbox("INBOX"),
        replica_before.in_mailbox("INBOX"),
        "INBOX must not change with --mailbox Work"
    );
    assert_eq!(
        replica.mailboxes()["INBOX"],
        replica_before.mailboxes()["INBOX"],
        "INBOX STATUS after --mailbox Work"
    );
    assert!(
        !replica.mailboxes().contains_key("Later"),
        "--mailbox Work created Later on the replica"
    );
    let (clean, _) = verify(p.mconf(), &["--user", "alice"]);
    assert!(!clean, "verify must see INBOX and Later still differ");
    sync_ok(p.mconf(), &[]);
    assert_same(m, &p.replica, "alice", "after syncing everything");

    // More users, and a fresh replica filled by three sessions at once.
    for (user, n) in [("bob", 12), ("carol", 7), ("dave", 3)] {
        add_user(p.mconf(), user, PASSWORD, false);
        deliver(m, user, "", user, 0..n);
        deliver(m, user, "Archive", &format!("{user}-archive"), 0..n / 2);
    }
    let fresh_root = p._tmp.path().join("fresh");
    std::fs::create_dir(&fresh_root).unwrap();
    let fresh_port = free_port();
    let fresh = start_replica(&fresh_root, fresh_port, "");
    let text = std::fs::read_to_string(p.mconf()).unwrap();
    let fresh_config = p._tmp.path().join("master-to-fresh.toml");
    let needle = format!("replica = \"127.0.0.1:{}\"", p.sync_port);
    assert!(text.contains(&needle));
    std::fs::write(
        &fresh_config,
        text.replace(&needle, &format!("replica = \"127.0.0.1:{fresh_port}\"")),
    )
    .unwrap();
    let summary = sync_ok(&fresh_config, &["--all", "--parallel", "3"]);
    assert_eq!(summary_number(&summary, "users"), 4, "{summary}");
    for user in ["alice", "bob", "carol", "dave"] {
        assert_same(m, &fresh, user, "fresh replica after --parallel 3");
    }
    assert_verify_clean(&fresh_config);
    sync_ok(p.mconf(), &["--parallel", "3"]);
    assert_verify_clean(p.mconf());
    let again = sync_ok(&fresh_config, &["--all", "--parallel", "3"]);
    assert_eq!(summary_number(&again, "mailboxes"), 0, "{again}");
}

// ====================================================================================
// 3. Rolling replication under load, with crashes of both sides.

#[test]
fn rolling_under_load_with_crashes() {
    let mut p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Work"]);
    // Open for `alice+Work@` and `alice+Archive@` delivery (else they go to INBOX).
    {
        let store = open_store(&p.master.data_dir());
        for name in ["Work", "Archive"] {
            let id = store.mailbox("alice", name).unwrap().unwrap().uniqueid;
            store
                .set_acl(
                    &owner("alice"),
                    &id,
                    "anyone",
                    Some(tern_store::Rights::POST),
                )
                .unwrap();
        }
    }
    deliver(&p.master, "alice", "", "seed", 0..20);
    let log = p._tmp.path().join("rolling.log");
    let mut rolling = start_rolling(p.mconf(), &log);

    const TOTAL: usize = 300;
    let delivered = Arc::new(AtomicUsize::new(0));
    let lmtp = p.master.lmtp;
    let deliverer = {
        let delivered = delivered.clone();
        std::thread::spawn(move || {
            let mut c = Lmtp::connect(lmtp).unwrap();
            for i in 0..TOTAL {
                let rcpt = match i % 3 {
                    0 => "alice@example.org",
                    1 => "alice+Work@example.org",
                    _ => "alice+Archive@example.org",
                };
                let replies = c
                    .deliver("sender@example.org", &[rcpt], &message("load", i))
                    .unwrap();
                assert!(
                    replies.len() == 1 && replies[0].starts_with("250"),
                    "delivery {i}: {replies:?}"
                );
                delivered.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let stopfile = p._tmp.path().join("stop-churn");
    let churn = {
        let imap = p.master.imap;
        let stopfile = stopfile.clone();
        std::thread::spawn(move || {
            let mut cmd = Command::new("python3");
            cmd.args([
                &script(),
                &imap.ip().to_string(),
                &imap.port().to_string(),
                "alice",
                PASSWORD,
                "churn",
                stopfile.to_str().unwrap(),
                "7",
                "INBOX",
                "Work",
                "Archive",
            ]);
            run_limited(cmd, None, Duration::from_secs(150), "imap churn")
        })
    };

    let wait_for = |n: usize| {
        poll(&format!("{n} deliveries"), Duration::from_secs(90), || {
            (delivered.load(Ordering::SeqCst) >= n).then_some(())
        })
    };
    let mut events = Vec::new();
    for (i, at) in [40usize, 110, 200].into_iter().enumerate() {
        wait_for(at);
        p.replica.kill9();
        events.push(format!(
            "replica killed at {} deliveries",
            delivered.load(Ordering::SeqCst)
        ));
        // Stay down while a few more messages arrive, so the client has to retry.
        wait_for(at + 10);
        p.restart_replica();
        events.push(format!(
            "replica restarted at {}",
            delivered.load(Ordering::SeqCst)
        ));
        if i == 1 {
            wait_for(150);
            let _ = rolling.child.kill();
            let _ = rolling.child.wait();
            events.push(format!(
                "rolling client killed at {}",
                delivered.load(Ordering::SeqCst)
            ));
            wait_for(160);
            rolling = start_rolling(p.mconf(), &log);
        }
    }
    deliverer.join().expect("the delivery thread failed");
    std::fs::write(&stopfile, b"").unwrap();
    let churned = churn.join().expect("churn thread");
    assert!(
        churned.status.success(),
        "IMAP churn on the master failed\n{}",
        show(&churned)
    );
    let ops: usize = String::from_utf8_lossy(&churned.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(ops > 0, "the churn did nothing\n{}", show(&churned));

    // The rolling client catches up by itself.
    let start = Instant::now();
    let mut last = String::new();
    let caught_up = loop {
        let (clean, text) = verify(p.mconf(), &[]);
        if clean {
            break true;
        }
        last = text;
        if start.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let rolling_log = std::fs::read_to_string(&rolling.log).unwrap_or_default();
    assert!(
        caught_up,
        "the replica did not catch up within 60 s of the end of the load ({events:?}, {ops} IMAP changes)\n\
         last verify:\n{last}\n--- rolling log (tail) ---\n{}",
        tail(&rolling_log, 60)
    );
    let master = assert_same(
        &p.master,
        &p.replica,
        "alice",
        "after rolling replication under load",
    );
    let unreachable = rolling_log.matches("replica unreachable").count();
    eprintln!(
        "rolling log: {} lines, {unreachable} 'replica unreachable'\n{}",
        rolling_log.lines().count(),
        tail(&rolling_log, 25)
    );
    assert!(
        unreachable > 0,
        "the replica's crashes never reached the rolling client?\n{}",
        tail(&rolling_log, 60)
    );
    let loaded = master
        .messages()
        .iter()
        .filter(|m| m.message_id.starts_with("<load-"))
        .count();
    eprintln!(
        "rolling: {loaded} of {TOTAL} load messages left after {ops} IMAP changes; {events:?}"
    );
    assert!(loaded > 0 && loaded <= TOTAL);

    // The client stops cleanly on SIGTERM.
    Command::new("kill")
        .args(["-TERM", &rolling.child.id().to_string()])
        .status()
        .unwrap();
    let status = poll(
        "the rolling client to exit on SIGTERM",
        Duration::from_secs(30),
        || rolling.child.try_wait().unwrap(),
    );
    assert!(
        status.success(),
        "rolling client exit status {status}\n{}",
        tail(&std::fs::read_to_string(&log).unwrap_or_default(), 30)
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ====================================================================================
// 4. Split brain: both sides took writes while not syncing.

#[test]
fn split_brain_loses_nothing() {
    let p = Pair::new();
    let m = &p.master;
    deliver(m, "alice", "", "base", 0..5);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(m, &p.replica, "alice", "after the first sync");
    let inbox = base.in_mailbox("INBOX");
    let (a, b) = (inbox[0].clone(), inbox[1].clone());

    // Cut off: the master takes mail and a flag…
    deliver(m, "alice", "", "master-only", 0..3);
    imap_run(
        m,
        "alice",
        &format!(
            r#"[["select", "INBOX"], ["uid", "STORE", "{}", "+FLAGS", "(\\Flagged)"]]"#,
            a.uid
        ),
    );
    // …and so does the replica, written to directly.
    imap_run(
        &p.replica,
        "alice",
        &format!(
            r#"[
            ["append", "INBOX", "(\\Seen)", "From: x@y\nSubject: replica one\nMessage-ID: <replica-only-1@example.org>\n\nwritten on the replica\n"],
            ["append", "INBOX", "()", "From: x@y\nSubject: replica two\nMessage-ID: <replica-only-2@example.org>\n\nalso on the replica\n"],
            ["select", "INBOX"],
            ["uid", "STORE", "{}", "+FLAGS", "(\\Answered)"],
            ["close"],
            ["create", "OnlyReplica"],
            ["append", "OnlyReplica", "(\\Flagged)", "From: x@y\nSubject: in a new folder\nMessage-ID: <only-replica-1@example.org>\n\nfolder made on the replica\n"]
        ]"#,
            b.uid
        ),
    );
    let replica_cut = snap(&p.replica, "alice", "replica-cut-off");
    let master_cut = snap(m, "alice", "master-cut-off");

    let summary = sync_ok(p.mconf(), &[]);
    let master = snap(m, "alice", "master-after");
    let diff = master.diff(
        &snap(&p.replica, "alice", "replica-after"),
        "master",
        "replica",
    );

    // Every message either side had is on the master.
    let have: BTreeSet<(String, String)> = master
        .messages()
        .iter()
        .map(|x| (x.mailbox.clone(), x.sha1.clone()))
        .collect();
    for x in replica_cut
        .messages()
        .iter()
        .chain(master_cut.messages().iter())
    {
        assert!(
            have.contains(&(x.mailbox.clone(), x.sha1.clone())),
            "message {} ({}) in {} was lost by the sync ({summary})\nmaster now:\n{}",
            x.message_id,
            x.sha1,
            x.mailbox,
            master.lines.join("\n")
        );
    }
    let master_cut_max = master_cut
        .in_mailbox("INBOX")
        .iter()
        .map(|x| x.uid)
        .max()
        .unwrap();
    for id in [
        "<replica-only-1@example.org>",
        "<replica-only-2@example.org>",
    ] {
        let on_master = master.by_message_id("INBOX", id);
        assert_eq!(
            on_master.len(),
            1,
            "{id} on the master's INBOX: {on_master:?}"
        );
        let on_replica = replica_cut.by_message_id("INBOX", id);
        assert!(
            on_master[0].uid > master_cut_max,
            "{id} must get a new UID on the master: {on_master:?}"
        );
        assert_ne!(
            on_master[0].uid, on_replica[0].uid,
            "{id} must not keep the replica's UID (the master used it)"
        );
    }
    assert_eq!(
        master.by_message_id("INBOX", "<replica-only-1@example.org>")[0].flags,
        BTreeSet::from(["\\Seen".to_owned()])
    );
    for i in 0..3 {
        assert_eq!(
            master
                .by_message_id("INBOX", &format!("<master-only-{i}@example.org>"))
                .len(),
            1,
            "master-only-{i}"
        );
    }
    let only = master.by_message_id("OnlyReplica", "<only-replica-1@example.org>");
    assert_eq!(
        only.len(),
        1,
        "the OnlyReplica folder and its message on the master:\n{}",
        master.lines.join("\n")
    );
    assert!(only[0].flags.contains("\\Flagged"), "{only:?}");
    let b_now = master
        .in_mailbox("INBOX")
        .into_iter()
        .find(|x| x.sha1 == b.sha1)
        .unwrap();
    assert!(
        b_now.flags.contains("\\Answered"),
        "message B must be \\Answered on the master: {b_now:?}"
    );
    let a_now = master
        .in_mailbox("INBOX")
        .into_iter()
        .find(|x| x.sha1 == a.sha1)
        .unwrap();
    assert!(
        a_now.flags.contains("\\Flagged"),
        "message A must stay \\Flagged: {a_now:?}"
    );

    // Both sides end up the same (a second sync may be needed to send the merged state
    // back; the first one must not lose anything, checked above).
    if diff.is_some() {
        sync_ok(p.mconf(), &[]);
    }
    let master = assert_same(m, &p.replica, "alice", "after the split-brain sync");
    let r = snap(&p.replica, "alice", "replica-final");
    let a_r = r
        .in_mailbox("INBOX")
        .into_iter()
        .find(|x| x.sha1 == a.sha1)
        .unwrap();
    assert!(a_r.flags.contains("\\Flagged"), "A on the replica: {a_r:?}");
    assert_eq!(master.in_mailbox("INBOX").len(), 5 + 3 + 2);
    assert_verify_clean(p.mconf());
    assert!(
        diff.is_none(),
        "one sync after a split brain should leave both sides equal; after the first sync:\n{}",
        diff.unwrap()
    );
}

// ====================================================================================
// 5. The same name created on both sides.

#[test]
fn same_name_created_on_both_sides() {
    let p = Pair::new();
    let m = &p.master;
    deliver(m, "alice", "", "base", 0..2);
    sync_ok(p.mconf(), &[]);
    imap_run(
        m,
        "alice",
        r#"[["create", "Twins"],
            ["append", "Twins", "(\\Seen)", "From: m@x\nSubject: m1\nMessage-ID: <twin-m1@example.org>\n\nfrom the master 1\n"],
            ["append", "Twins", "()", "From: m@x\nSubject: m2\nMessage-ID: <twin-m2@example.org>\n\nfrom the master 2\n"]]"#,
    );
    imap_run(
        &p.replica,
        "alice",
        r#"[["create", "Twins"],
            ["append", "Twins", "(\\Flagged)", "From: r@x\nSubject: r1\nMessage-ID: <twin-r1@example.org>\n\nfrom the replica 1\n"],
            ["append", "Twins", "()", "From: r@x\nSubject: r2\nMessage-ID: <twin-r2@example.org>\n\nfrom the replica 2\n"],
            ["append", "Twins", "()", "From: r@x\nSubject: r3\nMessage-ID: <twin-r3@example.org>\n\nfrom the replica 3\n"]]"#,
    );
    sync_ok(p.mconf(), &[]);
    let master = snap(m, "alice", "master");
    let ids: BTreeSet<String> = master
        .in_mailbox("Twins")
        .into_iter()
        .map(|x| x.message_id)
        .collect();
    for id in ["m1", "m2", "r1", "r2", "r3"] {
        assert!(
            ids.contains(&format!("<twin-{id}@example.org>")),
            "twin-{id} lost: master's Twins has {ids:?}\n{}",
            master.lines.join("\n")
        );
    }
    let names: Vec<String> = master
        .mailboxes()
        .into_keys()
        .filter(|n| n.starts_with("Twins"))
        .collect();
    let r1 = master.by_message_id("Twins", "<twin-r1@example.org>");
    assert!(
        r1[0].flags.contains("\\Flagged"),
        "flags of the replica's message kept: {r1:?}"
    );
    let (clean, text) = verify(p.mconf(), &[]);
    if !clean {
        // One more pass may be needed to send the merged mailbox back.
        sync_ok(p.mconf(), &[]);
    }
    assert_same(
        m,
        &p.replica,
        "alice",
        "after syncing a name created on both sides",
    );
    assert_verify_clean(p.mconf());
    assert_eq!(
        names,
        vec!["Twins".to_owned()],
        "one Twins mailbox, no parked copy left on the master"
    );
    assert!(clean, "one sync should have been enough:\n{text}");
}

// ====================================================================================
// 6. Authentication of the sync port.

#[test]
fn sync_port_requires_an_administrator() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pair::new();
    sync_ok(p.mconf(), &[]); // alice now exists on the replica, with her password

    let mut s = RawSync::connect(p.sync_addr());
    assert!(
        s.greeting.starts_with("* OK [CAPABILITY TERNSYNC=1"),
        "greeting: {}",
        s.greeting
    );
    let r = s.cmd("a", "MAILBOXES alice ALL");
    assert_eq!(r.len(), 1, "no untagged data before authentication: {r:?}");
    assert!(r[0].starts_with("a NO [AUTHENTICATIONREQUIRED]"), "{r:?}");
    let r = s.cmd("b", "NOOP");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");

    // alice is a user of the replica, with the right password, but not an administrator.
    let r = s.authenticate("alice", PASSWORD);
    assert!(
        r.starts_with("a1 NO [AUTHENTICATIONFAILED]"),
        "non-admin AUTHENTICATE: {r}"
    );
    let r = s.cmd("c", "MAILBOXES alice ALL");
    assert!(
        r.last()
            .unwrap()
            .starts_with("c NO [AUTHENTICATIONREQUIRED]"),
        "after a failed AUTHENTICATE: {r:?}"
    );
    let r = s.authenticate("repl", "wrong");
    assert!(
        r.starts_with("a1 NO [AUTHENTICATIONFAILED]"),
        "admin, wrong password: {r}"
    );
    let r = s.authenticate("repl", REPL_PASSWORD);
    assert!(r.starts_with("a1 OK"), "admin, right password: {r}");
    let r = s.cmd("d", "MAILBOXES alice ALL");
    assert!(r.last().unwrap().starts_with("d OK"), "{r:?}");
    assert!(r.iter().any(|l| l.starts_with("* USER alice ")), "{r:?}");
    assert!(
        r.iter().filter(|l| l.starts_with("* MAILBOX ")).count() == 6,
        "{r:?}"
    );
    let r = s.cmd("e", "LOGOUT");
    assert!(
        r.iter().any(|l| l.starts_with("* BYE")) && r.last().unwrap().starts_with("e OK"),
        "{r:?}"
    );

    // A master with the wrong password.
    let text = std::fs::read_to_string(p.mconf()).unwrap();
    let bad = tmp.path().join("wrong-password.toml");
    std::fs::write(
        &bad,
        text.replace(
            &format!("password = \"{REPL_PASSWORD}\""),
            "password = \"not-it\"",
        ),
    )
    .unwrap();
    let out = tern_sync(&bad, &[]);
    assert!(
        !out.status.success(),
        "tern sync with a wrong password succeeded\n{}",
        show(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("auth"),
        "tern sync with a wrong password should say authentication failed\n{}",
        show(&out)
    );
    let out = tern_sync(&bad, &["--verify"]);
    assert!(
        !out.status.success(),
        "verify with a wrong password succeeded\n{}",
        show(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("verify: "),
        "verify with a wrong password printed a result\n{}",
        show(&out)
    );
}

// ====================================================================================
// 7. A connection cut in the middle of an UPDATE, and garbage on the port.

/// An UPDATE creating the mailbox `name` with one 1000-octet message; returns the
/// command up to the literal and the literal.
fn update_command(tag: &str, name: &str, uniqueid: &str) -> (String, Vec<u8>) {
    let mut body = format!(
        "From: cut@example.org\r\nSubject: {name}\r\nMessage-ID: <{name}@example.org>\r\n\r\n"
    )
    .into_bytes();
    while body.len() < 998 {
        body.push(b'x');
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(body.len(), 1000);
    let guid = sha1_hex(&body);
    let head = format!(
        "{tag} UPDATE alice {uniqueid} NIL (NAME \"{name}\" PARTITION default UIDVALIDITY 1700000000 LASTUID 1 \
         HIGHESTMODSEQ 3 DELETEDMODSEQ 0 CREATEDMODSEQ 1 RECENTUID 0 RECENTTIME 0 SPECIALUSE NIL ACL \"\" \
         ANNOTATIONS ()) (APPEND 1 3 1700000000 1000 {guid} (\\Seen) {{1000+}}\r\n"
    );
    (head, body)
}

fn imap_mailbox_names(server: &TernServer) -> BTreeSet<String> {
    snap(server, "alice", "names")
        .mailboxes()
        .into_keys()
        .collect()
}

#[test]
fn cut_update_and_garbage_leave_the_replica_whole() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "base", 0..4);
    sync_ok(p.mconf(), &[]);

    // Control: the same kind of UPDATE sent whole is applied.
    let mut s = RawSync::connect(p.sync_addr());
    assert!(s.authenticate("repl", REPL_PASSWORD).starts_with("a1 OK"));
    let r = s.cmd("b", "MAILBOXES alice ALL");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    let (head, body) = update_command("c", "WholeOne", "0123456789abcdef0123456789abcdef");
    s.writer.write_all(head.as_bytes()).unwrap();
    s.writer.write_all(&body).unwrap();
    s.writer.write_all(b")\r\n").unwrap();
    let r = s.read_tagged("c");
    assert!(
        r.last().unwrap().starts_with("c OK"),
        "a complete UPDATE: {r:?}"
    );
    drop(s);
    assert!(
        imap_mailbox_names(&p.replica).contains("WholeOne"),
        "the complete UPDATE created WholeOne"
    );

    // The same, cut after half of the literal.
    let mut s = RawSync::connect(p.sync_addr());
    assert!(s.authenticate("repl", REPL_PASSWORD).starts_with("a1 OK"));
    let r = s.cmd("b", "MAILBOXES alice ALL");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    let (head, body) = update_command("c", "CutShort", "fedcba9876543210fedcba9876543210");
    s.writer.write_all(head.as_bytes()).unwrap();
    s.writer.write_all(&body[..500]).unwrap();
    s.writer.flush().unwrap();
    s.writer.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    // It must never appear; look a few times while the server notices the cut.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let names = imap_mailbox_names(&p.replica);
        assert!(
            !names.contains("CutShort"),
            "a cut UPDATE was applied: {names:?}"
        );
        assert!(!mailbox_list(&p.replica.config, "alice")
            .iter()
            .any(|l| l.starts_with("CutShort")));
    }

    // The replica-only WholeOne is copied back; everything else is already there.
    deliver(&p.master, "alice", "", "more", 0..2);
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let master = assert_same(&p.master, &p.replica, "alice", "after the cut UPDATE");
    assert!(!master.mailboxes().contains_key("CutShort"));

    // Garbage: seeded random bytes on several connections, some after authenticating.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..8 {
        let mut s = RawSync::connect(p.sync_addr());
        s.writer
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        if round % 2 == 1 {
            assert!(s.authenticate("repl", REPL_PASSWORD).starts_with("a1 OK"));
        }
        let mut junk = match round % 4 {
            0 | 1 => Vec::new(),
            2 => b"x UPDATE alice 00112233445566778899aabbccddeeff NIL (NAME ".to_vec(),
            _ => b"y RESERVE (".to_vec(),
        };
        let n = 3000 + (rng.next() % 3000) as usize;
        junk.extend(rng.bytes(n));
        if round == 5 {
            junk.extend_from_slice(b"\r\nz UPDATE alice 00112233445566778899aabbccddeeff NIL () (APPEND 1 1 1 5 aa () {99999999999+}\r\n");
        }
        let _ = s.writer.write_all(&junk);
        let _ = s.writer.write_all(b"\r\n");
        s.writer
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut sink = Vec::new();
        let _ = s.reader.read_to_end(&mut sink);
        let _ = s.writer.shutdown(std::net::Shutdown::Both);
    }
    let mut s = RawSync::connect(p.sync_addr());
    assert!(
        s.greeting.starts_with("* OK [CAPABILITY TERNSYNC=1"),
        "{}",
        s.greeting
    );
    assert!(
        s.authenticate("repl", REPL_PASSWORD).starts_with("a1 OK"),
        "a fresh session after the garbage"
    );
    let r = s.cmd("b", "MAILBOXES alice ALL");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
    drop(s);
    deliver(&p.master, "alice", "", "after-garbage", 0..2);
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after the garbage");
}

// ====================================================================================
// 8. A rename that moves a mailbox to another partition.

#[test]
fn rename_across_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let parts = |side: &str| {
        let d = tmp.path().join(format!("{side}-default"));
        let p2 = tmp.path().join(format!("{side}-p2"));
        (
            format!(
                "default_partition = \"default\"\n[partitions]\ndefault = {:?}\np2 = {:?}\n",
                d, p2
            ),
            p2,
        )
    };
    let (mtop, master_p2) = parts("master");
    let (rtop, replica_p2) = parts("replica");
    let p = Pair::with_config(&mtop, &rtop);
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Work"]);
    deliver(&p.master, "alice", "Work", "work", 0..6);
    deliver(&p.master, "alice", "", "inbox", 0..2);
    sync_ok(p.mconf(), &[]);
    assert_same(&p.master, &p.replica, "alice", "before the rename");

    let out = admin_ok(
        p.mconf(),
        &[
            "mailbox",
            "rename",
            "alice",
            "Work",
            "Work2",
            "--partition",
            "p2",
        ],
    );
    assert!(out.contains("partition p2"), "{out}");
    let summary = sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let master = assert_same(&p.master, &p.replica, "alice", "after the rename to p2");
    let work2 = master.in_mailbox("Work2");
    assert_eq!(work2.len(), 6, "{}", master.lines.join("\n"));
    assert!(!master.mailboxes().contains_key("Work"));
    let replica_list = mailbox_list(&p.replica.config, "alice");
    assert!(
        replica_list
            .iter()
            .any(|l| l.starts_with("Work2 ") && l.ends_with(" p2")),
        "replica's Work2 should be in partition p2 ({summary}):\n{replica_list:?}"
    );
    for msg in &work2 {
        for (side, p2) in [("master", &master_p2), ("replica", &replica_p2)] {
            let blob = p2.join("blobs").join(&msg.sha1[..2]).join(&msg.sha1);
            let meta = std::fs::metadata(&blob).unwrap_or_else(|e| {
                panic!(
                    "{side}: blob of {} not in p2 ({}): {e}",
                    msg.message_id,
                    blob.display()
                )
            });
            assert_eq!(meta.len(), msg.size, "{side}: {}", blob.display());
        }
    }
}

// ====================================================================================
// 4b. Split brain: an expunge on the replica reaches the master.

#[test]
fn split_brain_replica_expunge_is_merged() {
    let p = Pair::new();
    let m = &p.master;
    deliver(m, "alice", "", "base", 0..6);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(m, &p.replica, "alice", "after the first sync");
    let inbox = base.in_mailbox("INBOX");
    let (c, d) = (inbox[2].clone(), inbox[3].clone());
    deliver(m, "alice", "", "master-only", 0..1);
    imap_run(
        &p.replica,
        "alice",
        &format!(
            r#"[["select", "INBOX"],
                ["uid", "STORE", "{}", "+FLAGS", "(\\Deleted)"],
                ["uid", "EXPUNGE", "{}"],
                ["uid", "STORE", "{}", "+FLAGS", "($Replica)"]]"#,
            c.uid, c.uid, d.uid
        ),
    );
    sync_ok(p.mconf(), &[]);
    let master = snap(m, "alice", "master-after");
    assert!(
        master.in_mailbox("INBOX").iter().all(|x| x.sha1 != c.sha1),
        "message C, expunged on the replica while cut off, must be expunged on the master too:\n{}",
        master.lines.join("\n")
    );
    let d_now = master
        .in_mailbox("INBOX")
        .into_iter()
        .find(|x| x.sha1 == d.sha1)
        .unwrap();
    assert!(
        d_now.flags.contains("$Replica"),
        "D's keyword set on the replica: {d_now:?}"
    );
    assert_same(m, &p.replica, "alice", "after the merge");
    assert_verify_clean(p.mconf());
}

// ====================================================================================
// 3b. Rolling replication follows mailbox creates, renames, deletes and re-creates.

#[test]
fn rolling_follows_mailbox_operations() {
    let p = Pair::new();
    let m = &p.master;
    deliver(m, "alice", "", "seed", 0..3);
    let log = p._tmp.path().join("rolling.log");
    let rolling = start_rolling(p.mconf(), &log);
    let caught_up = |what: &str| {
        poll(what, Duration::from_secs(60), || {
            verify(p.mconf(), &[]).0.then_some(())
        });
        assert_same(m, &p.replica, "alice", what);
    };
    caught_up("the initial state");
    imap_run(
        m,
        "alice",
        r#"[["create", "Box"], ["create", "Box/Child"],
            ["append", "Box", "()", "From: a@b\nMessage-ID: <box-1@example.org>\n\none\n"],
            ["append", "Box/Child", "()", "From: a@b\nMessage-ID: <child-1@example.org>\n\nchild\n"]]"#,
    );
    caught_up("after CREATE and APPEND");
    let box_id = uniqueid(p.mconf(), "alice", "Box");
    imap_run(
        m,
        "alice",
        r#"[["rename", "Box", "Renamed"], ["select", "Renamed"], ["uid", "STORE", "1", "+FLAGS", "(\\Seen)"]]"#,
    );
    caught_up("after RENAME");
    assert_eq!(uniqueid(&p.replica.config, "alice", "Renamed"), box_id);
    imap_run(
        m,
        "alice",
        r#"[["delete", "Renamed/Child"], ["delete", "Renamed"], ["create", "Renamed"],
            ["append", "Renamed", "()", "From: a@b\nMessage-ID: <again-1@example.org>\n\nagain\n"]]"#,
    );
    caught_up("after DELETE and re-CREATE");
    assert_ne!(uniqueid(&p.replica.config, "alice", "Renamed"), box_id);
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice")
    );
    drop(rolling);
}

// ====================================================================================
// 1b. Two mailboxes swap names: matched by unique id, nothing mixed up or left parked.

#[test]
fn swapped_names_follow_unique_ids() {
    let p = Pair::new();
    let m = &p.master;
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Left"]);
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Right"]);
    deliver(m, "alice", "Left", "left", 0..3);
    deliver(m, "alice", "Right", "right", 0..2);
    sync_ok(p.mconf(), &[]);
    let (left, right) = (
        uniqueid(p.mconf(), "alice", "Left"),
        uniqueid(p.mconf(), "alice", "Right"),
    );
    imap_run(
        m,
        "alice",
        r#"[["rename", "Left", "Tmp"], ["rename", "Right", "Left"], ["rename", "Tmp", "Right"]]"#,
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let master = assert_same(m, &p.replica, "alice", "after swapping two names");
    assert_eq!(master.in_mailbox("Right").len(), 3);
    assert_eq!(uniqueid(&p.replica.config, "alice", "Right"), left);
    assert_eq!(uniqueid(&p.replica.config, "alice", "Left"), right);
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice")
    );
}

// ------------------------------------------------------------------------------------
// A user that keeps failing is set aside; the others keep flowing.

#[test]
fn failing_user_is_quarantined_and_others_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let master_parts = format!(
        "default_partition = \"default\"\n[partitions]\ndefault = {:?}\np2 = {:?}\n",
        tmp.path().join("m-default"),
        tmp.path().join("m-p2")
    );
    // The replica has no partition p2 at first: every UPDATE of a mailbox there fails.
    let mut p = Pair::with_config(&master_parts, "");
    add_user(p.mconf(), "bob", PASSWORD, false);
    admin_ok(
        p.mconf(),
        &["mailbox", "create", "bob", "Far", "--partition", "p2"],
    );
    sync_ok(p.mconf(), &["--user", "alice"]);
    let log = tmp.path().join("rolling.log");
    let mut rolling = start_rolling(p.mconf(), &log);
    deliver(&p.master, "bob", "Far", "far", 0..2);
    deliver(&p.master, "alice", "", "a", 0..3);
    poll("bob to be quarantined", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("user quarantined"))
            .map(|_| ())
    });
    // alice keeps flowing while bob is set aside.
    deliver(&p.master, "alice", "", "b", 0..3);
    poll(
        "alice to reach the replica",
        Duration::from_secs(60),
        || verify(p.mconf(), &["--user", "alice"]).0.then_some(()),
    );
    let index = p.master.data_dir().join("index.sqlite3");
    let deferred = || -> Vec<String> {
        let db = rusqlite::Connection::open(&index).unwrap();
        let mut stmt = db.prepare("SELECT user_name FROM sync_deferred").unwrap();
        let rows = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    assert_eq!(
        deferred(),
        vec!["bob".to_string()],
        "bob is set aside durably"
    );
    // The replica gets partition p2; a restarted rolling client retries bob at once.
    let _ = rolling.child.kill();
    let _ = rolling.child.wait();
    p.replica_extra = format!(
        "default_partition = \"default\"\n[partitions]\ndefault = {:?}\np2 = {:?}\n",
        p.replica_root.join("data/partitions/default"),
        tmp.path().join("r-p2")
    );
    p.restart_replica();
    let _rolling = start_rolling(p.mconf(), &log);
    poll("bob to reach the replica", Duration::from_secs(60), || {
        verify(p.mconf(), &["--user", "bob"]).0.then_some(())
    });
    poll(
        "bob to leave the deferred list",
        Duration::from_secs(30),
        || deferred().is_empty().then_some(()),
    );
    assert_same(&p.master, &p.replica, "alice", "after quarantine");
}

// ------------------------------------------------------------------------------------
// STARTTLS on the sync connection.

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
fn write_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tern sync test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

#[test]
fn sync_over_starttls() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = write_pki(&tmp.path().join("pki"));
    let (other_ca, _, _) = write_pki(&tmp.path().join("other"));
    let sync_port = free_port();
    let replica_root = tmp.path().join("replica");
    std::fs::create_dir(&replica_root).unwrap();
    let replica = start_replica(
        &replica_root,
        sync_port,
        &format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"),
    );
    // The greeting offers STARTTLS once the replica has a certificate.
    let mut raw = TcpStream::connect(replica.sync.unwrap()).unwrap();
    let mut greeting = String::new();
    BufReader::new(&mut raw).read_line(&mut greeting).unwrap();
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    drop(raw);
    let master_with = |name: &str, ca: &Path| {
        let root = tmp.path().join(name);
        std::fs::create_dir(&root).unwrap();
        let extra = format!(
            "{}starttls = true\nca_file = {ca:?}\n",
            replication_section(sync_port, REPL_PASSWORD)
        );
        let server = TernServer::start(&root, &extra);
        add_user(&server.config, "alice", PASSWORD, false);
        server
    };
    let master = master_with("master", &ca);
    deliver(&master, "alice", "", "tls", 0..5);
    let summary = sync_ok(&master.config, &["--user", "alice"]);
    assert!(summary.contains("5 records"), "{summary}");
    assert_verify_clean(&master.config);
    assert_same(&master, &replica, "alice", "after a sync over STARTTLS");
    // A master that does not trust the replica's certificate refuses to go on.
    let stranger = master_with("stranger", &other_ca);
    let out = tern_sync(&stranger.config, &["--user", "alice"]);
    assert!(
        !out.status.success(),
        "an untrusted certificate must fail the sync: {}",
        show(&out)
    );
    assert!(show(&out).contains("TLS"), "{}", show(&out));
}

/// DIRECTTLS: a client that read the capability may open TLS as its first bytes,
/// without the STARTTLS round trip; STARTTLS still works, and a first byte that opens
/// no real handshake only closes that connection. Python's ssl module is the client.
#[test]
fn direct_tls_and_starttls_both_reach_the_sync_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let sync_port = free_port();
    let replica = start_replica(tmp.path(), sync_port, "");
    let script = r#"
import base64, socket, ssl, sys
port, password = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def lines_until(f, tag):
    out = []
    while True:
        line = f.readline()
        assert line, "connection closed while waiting for " + tag
        out.append(line)
        if line.startswith(tag.encode() + b" "):
            return b"".join(out).decode()

def session(direct):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    greeting = raw.makefile("rb").readline().decode()
    assert "DIRECTTLS" in greeting and "STARTTLS" in greeting, greeting
    if not direct:
        raw.sendall(b"s1 STARTTLS\r\n")
        reply = raw.recv(200)
        assert reply.startswith(b"s1 OK"), reply
    tls = ctx.wrap_socket(raw)
    f = tls.makefile("rb")
    tls.sendall(b"a1 CAPABILITY\r\n")
    caps = lines_until(f, "a1")
    assert "a1 OK" in caps and "TLS" not in caps and "AUTH=PLAIN" in caps, caps
    plain = base64.b64encode(b"\0repl\0" + password.encode()).decode()
    tls.sendall(("a2 AUTHENTICATE PLAIN " + plain + "\r\na3 USERS\r\n").encode())
    assert lines_until(f, "a2").startswith("a2 OK"), "authentication"
    assert "a3 OK" in lines_until(f, "a3")
    tls.close()

session(direct=True)
session(direct=False)
# A TLS record type byte, then no handshake: that connection ends, nothing else.
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
raw.makefile("rb").readline()
raw.sendall(b"\x16 not a handshake\r\n" * 4)
raw.settimeout(30)
try:
    while raw.recv(4096):
        pass
except OSError:
    pass
raw.close()
session(direct=True)
print("ok")
"#;
    let out = python(&["-c", script, &sync_port.to_string(), REPL_PASSWORD], None);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    drop(replica);
}

/// The fingerprint a server logged at start ("... SHA-256 fingerprint AB:CD:...").
fn logged_fingerprint(server: &TernServer) -> String {
    let line = server
        .startup_log
        .iter()
        .find_map(|l| l.split("SHA-256 fingerprint ").nth(1))
        .unwrap_or_else(|| panic!("no fingerprint logged: {:#?}", server.startup_log));
    line.split(|c: char| !(c.is_ascii_hexdigit() || c == ':'))
        .next()
        .unwrap()
        .to_owned()
}

/// A fake replica on `port` offering no STARTTLS; yields what one client sent it.
fn fake_plain_replica(port: u16) -> std::thread::JoinHandle<String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"* OK [CAPABILITY TERNSYNC=1 AUTH=PLAIN LITERAL+] fake\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    })
}

#[test]
fn sync_uses_tls_by_default_trusting_the_first_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let sync_port = free_port();
    let replica_root = tmp.path().join("replica");
    std::fs::create_dir(&replica_root).unwrap();
    // Neither side configures TLS: the replica's certificate is the one it generated.
    let mut replica = start_replica(&replica_root, sync_port, "");
    let first_fp = logged_fingerprint(&replica);
    let master_root = tmp.path().join("master");
    std::fs::create_dir(&master_root).unwrap();
    let master = start_master(&master_root, sync_port, "");
    deliver(&master, "alice", "", "tofu", 0..3);

    let out = tern_sync(&master.config, &["--user", "alice"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sync connection secured with TLS")
            && stderr.contains("trusting replica")
            && stderr.contains(&first_fp),
        "{}",
        show(&out)
    );
    let known = master.data_dir().join("tls").join("known_replicas");
    let remembered = std::fs::read_to_string(&known).unwrap();
    assert_eq!(remembered, format!("127.0.0.1:{sync_port} {first_fp}\n"));
    assert_same(
        &master,
        &replica,
        "alice",
        "after a sync over TLS by default",
    );
    // The second time the certificate is known: no new trust decision.
    let out = tern_sync(&master.config, &["--user", "alice"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("trusting replica"));

    // Something without TLS in the replica's place: the password is not sent.
    assert!(replica.terminate().success());
    let fake = fake_plain_replica(sync_port);
    let out = tern_sync(&master.config, &["--user", "alice"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS is required"),
        "{}",
        show(&out)
    );
    let sent = fake.join().unwrap();
    assert!(!sent.contains("AUTHENTICATE"), "{sent}");

    // The replica comes back with another certificate: refused before authenticating.
    std::fs::remove_dir_all(replica_root.join("data").join("tls")).unwrap();
    let replica = start_replica(&replica_root, sync_port, "");
    let second_fp = logged_fingerprint(&replica);
    assert_ne!(second_fp, first_fp);
    deliver(&master, "alice", "", "tofu", 3..4);
    let out = tern_sync(&master.config, &["--user", "alice"]);
    assert!(!out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certificate changed")
            && stderr.contains(&second_fp)
            && stderr.contains("known_replicas"),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), remembered);

    // Pinning the new certificate by its fingerprint; a wrong pin is refused.
    let text = std::fs::read_to_string(&master.config).unwrap();
    let pinned = |name: &str, fp: &str| {
        let path = master_root.join(name);
        let line = format!("password = \"{REPL_PASSWORD}\"\n");
        std::fs::write(
            &path,
            text.replace(&line, &format!("{line}tls_fingerprint = \"{fp}\"\n")),
        )
        .unwrap();
        path
    };
    let out = tern_sync(&pinned("wrong-pin.toml", &first_fp), &["--user", "alice"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replication.tls_fingerprint"),
        "{}",
        show(&out)
    );
    let summary = sync_ok(&pinned("pinned.toml", &second_fp), &["--user", "alice"]);
    assert!(summary.contains("1 records"), "{summary}");
    assert_same(
        &master,
        &replica,
        "alice",
        "after a sync to a pinned replica",
    );
}

// ------------------------------------------------------------------------------------
// Faults on the replica's side: a changed UIDVALIDITY, a blob it cannot store.

/// Runs SQL on a stopped server's index.
fn tamper(data_dir: &Path, sql: &str) {
    let db = rusqlite::Connection::open(data_dir.join("index.sqlite3")).unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn uidvalidity_changed_on_the_replica_loses_nothing() {
    let mut p = Pair::new();
    deliver(&p.master, "alice", "", "uv", 0..5);
    sync_ok(p.mconf(), &[]);
    // The replica takes a message of its own, then its INBOX gets another UIDVALIDITY
    // under the same unique id (as a restore from an old backup might leave it).
    deliver(&p.replica, "alice", "", "only-replica", 0..1);
    p.replica.kill9();
    tamper(
        &p.replica_root.join("data"),
        "UPDATE mailboxes SET uidvalidity = uidvalidity + 1000 WHERE name = 'INBOX'",
    );
    p.replica = start_replica(&p.replica_root, p.sync_port, &p.replica_extra);
    let out = tern_sync(p.mconf(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("replica diverged"),
        "the conflict is logged\n{}",
        show(&out)
    );
    assert_verify_clean(p.mconf());
    let snap = assert_same(
        &p.master,
        &p.replica,
        "alice",
        "after a UIDVALIDITY conflict",
    );
    let inbox = snap.in_mailbox("INBOX");
    assert_eq!(
        inbox.len(),
        6,
        "the replica-only message came back: {inbox:?}"
    );
}

#[test]
fn a_blob_the_replica_cannot_store_fails_only_its_mailbox() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Work"]);
    deliver(&p.master, "alice", "", "in", 0..6);
    deliver(&p.master, "alice", "Work", "work", 0..6);
    // A fan-out directory that only Work's messages use is made unusable on the replica:
    // a file where the directory should be (as a full or broken disk would refuse).
    let db = rusqlite::Connection::open(p.master.data_dir().join("index.sqlite3")).unwrap();
    let prefixes = |name: &str| -> BTreeSet<String> {
        let mut stmt = db
            .prepare("SELECT lower(hex(r.guid)) FROM records r JOIN mailboxes m ON m.id = r.mailbox_id WHERE m.name = ?1")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([name], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.into_iter().map(|g| g[..2].to_owned()).collect()
    };
    let (work, others) = (prefixes("Work"), prefixes("INBOX"));
    // Six random GUIDs against six: a prefix of Work's alone is all but certain.
    let blocked = work
        .difference(&others)
        .next()
        .cloned()
        .expect("a fan-out prefix only Work uses");
    let blobs = p.replica_root.join("data/partitions/default/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&blocked), b"not a directory").unwrap();
    let out = tern_sync(p.mconf(), &["--user", "alice"]);
    assert!(
        !out.status.success(),
        "the Work UPDATE must fail\n{}",
        show(&out)
    );
    assert!(show(&out).contains("IOERROR"), "{}", show(&out));
    // The stream stayed in step: every other mailbox is in step.
    let (clean, text) = verify(p.mconf(), &[]);
    assert!(!clean);
    let diffs: Vec<&str> = text.lines().filter(|l| l.starts_with("DIFF ")).collect();
    assert!(
        !diffs.is_empty() && diffs.iter().all(|d| d.contains("alice/Work")),
        "{diffs:?}"
    );
    // Once the disk is fixed, the next sync completes.
    std::fs::remove_file(blobs.join(&blocked)).unwrap();
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after the disk was fixed");
}

#[test]
fn a_mailbox_deleted_on_the_master_keeps_what_only_the_replica_got() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Old"]);
    deliver(&p.master, "alice", "Old", "old", 0..3);
    sync_ok(p.mconf(), &[]);
    // Cut off: the master deletes Old while the replica takes a new message into it.
    admin_ok(p.mconf(), &["mailbox", "delete", "alice", "Old"]);
    deliver(&p.replica, "alice", "Old", "late", 0..1);
    let out = tern_sync(p.mconf(), &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("taking them back"), "{}", show(&out));
    assert_verify_clean(p.mconf());
    let snap = assert_same(&p.master, &p.replica, "alice", "after delete vs. new mail");
    let old = snap.in_mailbox("Old");
    assert_eq!(
        old.len(),
        1,
        "only the message the master never had comes back: {old:?}"
    );
    assert!(old[0].message_id.contains("late"), "{old:?}");
}

// ------------------------------------------------------------------------------------
// A rename while a sync runs; users whose names are prefixes of each other.

#[test]
fn rename_while_a_sync_is_running() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Big"]);
    deliver(&p.master, "alice", "Big", "big", 0..400);
    let sync = Command::new(TERN)
        .arg("--config")
        .arg(p.mconf())
        .args(["sync", "--user", "alice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Rename while the first sync is (most likely) still sending Big's messages.
    admin_ok(p.mconf(), &["mailbox", "rename", "alice", "Big", "Bigger"]);
    let out = sync.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let snap = assert_same(
        &p.master,
        &p.replica,
        "alice",
        "after a rename during a sync",
    );
    assert_eq!(snap.in_mailbox("Bigger").len(), 400);
    assert!(snap.in_mailbox("Big").is_empty());
}

#[test]
fn a_sync_of_one_user_never_touches_another() {
    let p = Pair::new();
    add_user(p.mconf(), "ua", PASSWORD, false);
    add_user(p.mconf(), "uab", PASSWORD, false);
    deliver(&p.master, "ua", "", "ua", 0..3);
    deliver(&p.master, "uab", "", "uab", 0..3);
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    // uab changes on the master; a sync of ua alone must leave uab's replica as it was.
    admin_ok(p.mconf(), &["mailbox", "create", "uab", "Extra"]);
    deliver(&p.master, "uab", "", "uab-late", 0..2);
    let before = mailbox_list(&p.replica.config, "uab");
    let summary = sync_ok(p.mconf(), &["--user", "ua"]);
    assert!(summary.contains("0 mailboxes"), "{summary}");
    assert_eq!(
        mailbox_list(&p.replica.config, "uab"),
        before,
        "uab untouched by a sync of ua"
    );
    let (clean, _) = verify(p.mconf(), &["--user", "uab"]);
    assert!(!clean, "uab is still behind");
    assert!(verify(p.mconf(), &["--user", "ua"]).0, "ua is in step");
    // Deleting ua on the master removes ua, and only ua, from the replica.
    admin_ok(p.mconf(), &["user", "del", "ua"]);
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let users = admin_ok(&p.replica.config, &["user", "list"]);
    assert!(
        !users
            .lines()
            .any(|l| l.split_whitespace().next() == Some("ua")),
        "{users}"
    );
    assert!(
        users
            .lines()
            .any(|l| l.split_whitespace().next() == Some("uab")),
        "{users}"
    );
}

// ------------------------------------------------------------------------------------
// Bounds on the sync port: a literal over the bound is refused and the session goes on;
// a line over the bound ends the session with BYE.

#[test]
fn sync_port_bounds() {
    let p = Pair::new();
    let mut s = RawSync::connect(p.sync_addr());
    let ok = s.authenticate("repl", REPL_PASSWORD);
    assert!(ok.starts_with("a1 OK"), "{ok}");
    // A synchronizing literal larger than any message: BAD [TOOBIG], no continuation.
    let reply = s.cmd("b1", "MESSAGE {999999999999}");
    let last = reply.last().unwrap();
    assert!(last.starts_with("b1 BAD [TOOBIG]"), "{reply:?}");
    // The session is still usable.
    let reply = s.cmd("b2", "NOOP");
    assert!(reply.last().unwrap().starts_with("b2 OK"), "{reply:?}");
    // A line of 300 KiB without an end: BYE, then the connection closes.
    let long = vec![b'x'; 300 * 1024];
    s.writer.write_all(b"b3 MAILBOXES ").unwrap();
    s.writer.write_all(&long).unwrap();
    let mut rest = Vec::new();
    while let Some(line) = s.line() {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.starts_with("* BYE")), "{rest:?}");
    // And the replica serves the next session.
    let mut again = RawSync::connect(p.sync_addr());
    assert!(again
        .authenticate("repl", REPL_PASSWORD)
        .starts_with("a1 OK"));
}

// ------------------------------------------------------------------------------------
// Before authentication the sync port takes no literal at all: a synchronizing one is
// refused at once (no continuation, the session goes on), a non-synchronizing one ends
// the session before its octets are read. Without TLS a password is refused where TLS
// is required.

#[test]
fn sync_port_takes_no_literals_before_authentication() {
    let p = Pair::new();
    let mut s = RawSync::connect(p.sync_addr());
    s.writer
        .write_all(b"a1 AUTHENTICATE PLAIN {12}\r\n")
        .unwrap();
    let reply = s.read_tagged("a1");
    assert_eq!(reply.len(), 1, "no continuation: {reply:?}");
    assert!(reply[0].starts_with("a1 BAD [TOOBIG]"), "{reply:?}");
    let reply = s.cmd("a2", "NOOP");
    assert!(reply.last().unwrap().starts_with("a2 OK"), "{reply:?}");
    // 256 MiB announced: the replica says BYE and closes without reading them.
    s.writer
        .write_all(b"a3 AUTHENTICATE PLAIN {268435456+}\r\nxxxx")
        .unwrap();
    let mut rest = Vec::new();
    while let Some(line) = s.line() {
        rest.push(line);
    }
    assert!(
        rest.first().is_some_and(|l| l.starts_with("* BYE")),
        "{rest:?}"
    );
    // The replica serves the next session.
    let mut again = RawSync::connect(p.sync_addr());
    assert!(again
        .authenticate("repl", REPL_PASSWORD)
        .starts_with("a1 OK"));
}

#[test]
fn sync_port_can_require_tls() {
    let p = Pair::with_config("", "[sync]\nrequire_tls = true\n");
    let mut s = RawSync::connect(p.sync_addr());
    assert!(s.greeting.contains("LOGINDISABLED"), "{}", s.greeting);
    assert!(!s.greeting.contains("AUTH=PLAIN"), "{}", s.greeting);
    let r = s.authenticate("repl", REPL_PASSWORD);
    assert!(r.starts_with("a1 NO [PRIVACYREQUIRED]"), "{r}");
    let r = s.cmd("b", "MAILBOXES alice ALL");
    assert!(
        r.last()
            .unwrap()
            .starts_with("b NO [AUTHENTICATIONREQUIRED]"),
        "{r:?}"
    );
}

// ------------------------------------------------------------------------------------
// One-shot syncs isolate failures (issue 9, finding 4).

/// The master's blob file of message `index` (in UID order) of `user`'s `mailbox`.
fn blob_file(server: &TernServer, user: &str, mailbox: &str, index: usize) -> PathBuf {
    let store = open_store(&server.data_dir());
    let m = store.mailbox(user, mailbox).unwrap().unwrap();
    let (_, mut records) = store.all_records(&m.uniqueid).unwrap();
    records.sort_by_key(|r| r.uid);
    store
        .blobs()
        .path(&m.partition, &records[index].guid)
        .unwrap()
}

/// `tern sync ARGS` expected to exit 1 having failed exactly `failed` (`user/mailbox`
/// prefixes of the FAILED lines); returns stdout.
fn sync_partial(config: &Path, args: &[&str], failed: &[&str]) -> String {
    let out = tern_sync(config, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "tern sync {args:?}: expected exit 1 (some failed)\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("FAILED "))
        .collect();
    assert_eq!(
        lines.len(),
        failed.len(),
        "tern sync {args:?}: FAILED lines\n{}",
        show(&out)
    );
    for (line, want) in lines.iter().zip(failed) {
        assert!(
            line.starts_with(&format!("FAILED {want}: ")),
            "tern sync {args:?}: expected a failure of {want}\n{}",
            show(&out)
        );
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("synced ")),
        "tern sync {args:?}: no summary of what was synced\n{}",
        show(&out)
    );
    stdout
}

#[test]
fn one_shot_sync_goes_on_past_a_user_with_a_damaged_message() {
    let p = Pair::new();
    for user in ["bob", "carol"] {
        add_user(p.mconf(), user, PASSWORD, false);
    }
    admin_ok(p.mconf(), &["mailbox", "create", "bob", "Work"]);
    deliver(&p.master, "bob", "", "b-inbox", 0..3);
    deliver(&p.master, "bob", "Work", "b-work", 0..2);
    // bob's second INBOX message: gone from the master's disk (a copy kept to restore).
    let damaged = blob_file(&p.master, "bob", "INBOX", 1);
    let kept = std::fs::read(&damaged).unwrap();
    std::fs::remove_file(&damaged).unwrap();
    let modes: [&[&str]; 3] = [
        &["--all"],
        &["--all", "--parallel", "2"],
        &["--user", "alice", "--user", "bob", "--user", "carol"],
    ];
    for (k, args) in modes.iter().enumerate() {
        // New mail for everyone but the broken mailbox, so each mode has work to do.
        deliver(&p.master, "alice", "", &format!("a{k}"), 0..3);
        deliver(&p.master, "carol", "", &format!("c{k}"), 0..3);
        deliver(&p.master, "bob", "Work", &format!("w{k}"), 0..1);
        let stdout = sync_partial(p.mconf(), args, &["bob/INBOX"]);
        assert!(
            stdout.contains("missing or damaged"),
            "{args:?}: the failure says why\n{stdout}"
        );
        assert!(
            stdout.contains("1 of 3 users failed"),
            "{args:?}: summary\n{stdout}"
        );
        let (clean, text) = verify(p.mconf(), &["--user", "alice", "--user", "carol"]);
        assert!(clean, "{args:?}: alice and carol are in step\n{text}");
        let (clean, text) = verify(p.mconf(), &["--user", "bob"]);
        assert!(
            !clean && text.contains("DIFF bob/INBOX"),
            "{args:?}: {text}"
        );
        assert!(
            !text.contains("DIFF bob/Work"),
            "{args:?}: bob/Work in step\n{text}"
        );
    }
    // Over IMAP as well: the others are whole on the replica, bob's Work too.
    assert_same(&p.master, &p.replica, "alice", "with bob's message damaged");
    assert_same(&p.master, &p.replica, "carol", "with bob's message damaged");
    // (The master's IMAP cannot read bob's INBOX either, so its side is looked at once
    // the blob is back; the replica's before the next sync.)
    let replica_work = snap(&p.replica, "bob", "replica").in_mailbox("Work");
    // The blob restored, the next sync brings bob in step and exits 0.
    std::fs::write(&damaged, &kept).unwrap();
    assert_eq!(
        replica_work,
        snap(&p.master, "bob", "master").in_mailbox("Work"),
        "bob's Work on the replica while his INBOX failed"
    );
    sync_ok(p.mconf(), &["--all"]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "bob", "after the blob was restored");
}

#[test]
fn truncated_message_fails_only_its_mailbox_with_parallel_sessions() {
    let p = Pair::new();
    add_user(p.mconf(), "bob", PASSWORD, false);
    admin_ok(p.mconf(), &["mailbox", "create", "bob", "Work"]);
    deliver(&p.master, "alice", "", "a", 0..3);
    deliver(&p.master, "bob", "", "b", 0..3);
    deliver(&p.master, "bob", "Work", "w", 0..3);
    // Truncated rather than removed: the size check catches it.
    let damaged = blob_file(&p.master, "bob", "Work", 2);
    let kept = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &kept[..kept.len() / 2]).unwrap();
    let stdout = sync_partial(p.mconf(), &["--parallel", "2"], &["bob/Work"]);
    assert!(stdout.contains("missing or damaged"), "{stdout}");
    let (clean, text) = verify(p.mconf(), &["--user", "alice"]);
    assert!(clean, "alice is in step\n{text}");
    let replica_inbox = snap(&p.replica, "bob", "replica").in_mailbox("INBOX");
    std::fs::write(&damaged, &kept).unwrap();
    assert_eq!(
        replica_inbox,
        snap(&p.master, "bob", "master").in_mailbox("INBOX"),
        "bob's INBOX on the replica while his Work failed"
    );
    sync_ok(p.mconf(), &["--parallel", "2"]);
    assert_verify_clean(p.mconf());
}

#[test]
fn a_mailbox_the_replica_refuses_leaves_the_rest_of_its_batch_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let master_parts = format!(
        "default_partition = \"default\"\n[partitions]\ndefault = {:?}\np2 = {:?}\n",
        tmp.path().join("m-default"),
        tmp.path().join("m-p2")
    );
    // The replica has no partition p2: it refuses every UPDATE of a mailbox there.
    let p = Pair::with_config(&master_parts, "");
    add_user(p.mconf(), "bob", PASSWORD, false);
    admin_ok(
        p.mconf(),
        &["mailbox", "create", "bob", "Far", "--partition", "p2"],
    );
    admin_ok(p.mconf(), &["mailbox", "create", "bob", "Near"]);
    deliver(&p.master, "bob", "", "b", 0..2);
    deliver(&p.master, "bob", "Far", "far", 0..2);
    deliver(&p.master, "bob", "Near", "near", 0..2);
    deliver(&p.master, "alice", "", "a", 0..2);
    // One user, one batch, one pipeline: Far's UPDATE sits between INBOX's and Near's.
    let stdout = sync_partial(
        p.mconf(),
        &["--user", "bob", "--user", "alice"],
        &["bob/Far"],
    );
    assert!(stdout.contains("replica refused"), "{stdout}");
    let master = snap(&p.master, "bob", "master");
    let replica = snap(&p.replica, "bob", "replica");
    for mailbox in ["INBOX", "Near"] {
        assert_eq!(
            replica.in_mailbox(mailbox),
            master.in_mailbox(mailbox),
            "bob's {mailbox} on the replica"
        );
    }
    assert!(replica.in_mailbox("Far").is_empty());
    let (clean, text) = verify(p.mconf(), &["--user", "alice"]);
    assert!(clean, "alice is in step\n{text}");
}

#[test]
fn sync_exits_two_when_it_cannot_run_at_all() {
    let mut p = Pair::new();
    deliver(&p.master, "alice", "", "a", 0..1);
    p.replica.kill9();
    for args in [
        &["--all"][..],
        &["--user", "alice"],
        &["--all", "--parallel", "2"],
        &["--verify"],
    ] {
        let out = tern_sync(p.mconf(), args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "tern sync {args:?} with the replica down\n{}",
            show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot connect"),
            "{args:?}\n{}",
            show(&out)
        );
    }
}

#[test]
fn rolling_sets_aside_a_user_with_a_damaged_message() {
    let p = Pair::new();
    add_user(p.mconf(), "bob", PASSWORD, false);
    deliver(&p.master, "bob", "", "b", 0..2);
    let damaged = blob_file(&p.master, "bob", "INBOX", 0);
    let kept = std::fs::read(&damaged).unwrap();
    std::fs::remove_file(&damaged).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("rolling.log");
    let mut rolling = start_rolling(p.mconf(), &log);
    poll("bob to be quarantined", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("user quarantined"))
            .map(|_| ())
    });
    // The client did not stop on bob's unreadable message: alice flows.
    deliver(&p.master, "alice", "", "a", 0..3);
    poll(
        "alice to reach the replica",
        Duration::from_secs(60),
        || verify(p.mconf(), &["--user", "alice"]).0.then_some(()),
    );
    assert!(
        rolling.child.try_wait().unwrap().is_none(),
        "the rolling client is still running\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Restored, bob is retried at once by a restarted client.
    std::fs::write(&damaged, &kept).unwrap();
    let _ = rolling.child.kill();
    let _ = rolling.child.wait();
    let _rolling = start_rolling(p.mconf(), &log);
    poll("bob to reach the replica", Duration::from_secs(60), || {
        verify(p.mconf(), &["--user", "bob"]).0.then_some(())
    });
}

// ====================================================================================
// Split brain at equal counters (issue "What was seen" 1–3): the cheap signal says
// "equal", the records differ.

/// (UIDNEXT, HIGHESTMODSEQ) of INBOX as a client sees them.
fn inbox_counters(s: &Snapshot) -> (u32, u64) {
    let m = &s.mailboxes()["INBOX"];
    (m[1] as u32, m[3])
}

fn append_op(id: &str) -> String {
    format!(
        r#"["append", "INBOX", "()", "From: x@y\nSubject: {id}\nMessage-ID: <{id}@example.org>\n\nbody of {id}\n"]"#
    )
}

/// Syncs at most twice until `--verify` is clean; then a further sync changes nothing.
fn heal(p: &Pair) -> String {
    let first = sync_ok(p.mconf(), &["--user", "alice"]);
    if !verify(p.mconf(), &["--user", "alice"]).0 {
        sync_ok(p.mconf(), &["--user", "alice"]);
    }
    assert_verify_clean(p.mconf());
    let again = sync_ok(p.mconf(), &["--user", "alice"]);
    assert_eq!(
        summary_number(&again, "mailboxes"),
        0,
        "not a no-op: {again}"
    );
    first
}

#[test]
fn equal_counters_different_messages_converge_and_no_uid_is_reused() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "base", 0..4);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(&p.master, &p.replica, "alice", "after the first sync");
    let (uidnext, _) = inbox_counters(&base);

    // 1. Each side appends a different message: both reach the same UIDNEXT and
    // HIGHESTMODSEQ, with a different message under the same UID.
    imap_run(&p.master, "alice", &format!("[{}]", append_op("on-master")));
    imap_run(
        &p.replica,
        "alice",
        &format!("[{}]", append_op("on-replica")),
    );
    let m_cut = snap(&p.master, "alice", "master-cut");
    let r_cut = snap(&p.replica, "alice", "replica-cut");
    assert_eq!(
        inbox_counters(&m_cut),
        inbox_counters(&r_cut),
        "the premise: equal counters"
    );
    let verified = verify(p.mconf(), &["--user", "alice"]);
    assert!(
        !verified.0,
        "--verify must see the split brain\n{}",
        verified.1
    );
    // So must the quick one, by the records digest alone (the counters are equal).
    let quick = tern_sync(p.mconf(), &["--verify", "--user", "alice"]);
    let text = String::from_utf8_lossy(&quick.stdout).into_owned();
    assert_eq!(quick.status.code(), Some(1), "quick --verify:\n{text}");
    assert!(text.contains("records digest"), "{text}");
    heal(&p);
    let m = assert_same(&p.master, &p.replica, "alice", "after healing");
    for id in ["<on-master@example.org>", "<on-replica@example.org>"] {
        let found = m.by_message_id("INBOX", id);
        assert_eq!(found.len(), 1, "{id} exactly once: {found:?}");
        assert!(
            found[0].uid > uidnext,
            "{id} moved above the contested UID {}: {found:?}",
            uidnext
        );
    }
    assert!(
        m.in_mailbox("INBOX").iter().all(|x| x.uid != uidnext),
        "the UID both sides gave to different messages holds neither"
    );
    for cut in [&m_cut, &r_cut] {
        let (n, h) = inbox_counters(cut);
        let (n2, h2) = inbox_counters(&m);
        assert!(
            n2 >= n && h2 > h,
            "UIDNEXT/HIGHESTMODSEQ went down: {n},{h} -> {n2},{h2}"
        );
    }
}

#[test]
fn equal_counters_different_flag_changes_both_survive() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "base", 0..3);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(&p.master, &p.replica, "alice", "after the first sync");
    let inbox = base.in_mailbox("INBOX");
    let (a, b) = (inbox[0].uid, inbox[1].uid);
    imap_run(
        &p.master,
        "alice",
        &format!(r#"[["select", "INBOX"], ["uid", "STORE", "{a}", "+FLAGS", "(\\Flagged)"]]"#),
    );
    imap_run(
        &p.replica,
        "alice",
        &format!(r#"[["select", "INBOX"], ["uid", "STORE", "{b}", "+FLAGS", "($Label1)"]]"#),
    );
    assert_eq!(
        inbox_counters(&snap(&p.master, "alice", "m")),
        inbox_counters(&snap(&p.replica, "alice", "r")),
        "the premise: equal counters"
    );
    heal(&p);
    let m = assert_same(&p.master, &p.replica, "alice", "after healing");
    let flags = |uid: u32| {
        m.in_mailbox("INBOX")
            .into_iter()
            .find(|x| x.uid == uid)
            .unwrap()
            .flags
    };
    assert!(flags(a).contains("\\Flagged"), "the master's change kept");
    assert!(
        flags(b).contains("$Label1"),
        "the replica's change taken back"
    );
}

#[test]
fn a_uid_the_replica_expunged_is_not_reused_for_the_masters_message() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "base", 0..4);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(&p.master, &p.replica, "alice", "after the first sync");
    let (contested, _) = inbox_counters(&base);
    // 2. The replica appends UID 5 and expunges it; the master appends its own UID 5.
    imap_run(
        &p.replica,
        "alice",
        &format!(
            r#"[{}, ["select", "INBOX"], ["uid", "STORE", "{contested}", "+FLAGS", "(\\Deleted)"], ["expunge"]]"#,
            append_op("replica-gone")
        ),
    );
    imap_run(
        &p.master,
        "alice",
        &format!("[{}]", append_op("master-new")),
    );
    heal(&p);
    let r = assert_same(&p.master, &p.replica, "alice", "after healing");
    assert!(
        r.in_mailbox("INBOX").iter().all(|x| x.uid != contested),
        "UID {contested}, seen expunged on the replica, holds no message there now"
    );
    assert_eq!(
        r.by_message_id("INBOX", "<master-new@example.org>").len(),
        1
    );
    assert!(r
        .by_message_id("INBOX", "<replica-gone@example.org>")
        .is_empty());
}

#[test]
fn both_sides_expunged_different_messages_converges() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "base", 0..2);
    sync_ok(p.mconf(), &[]);
    let base = assert_same(&p.master, &p.replica, "alice", "after the first sync");
    let (contested, _) = inbox_counters(&base);
    // 3. Both append a different UID 5 and both expunge it.
    for (side, id) in [(&p.master, "m-gone"), (&p.replica, "r-gone")] {
        imap_run(
            side,
            "alice",
            &format!(
                r#"[{}, ["select", "INBOX"], ["uid", "STORE", "{contested}", "+FLAGS", "(\\Deleted)"], ["expunge"]]"#,
                append_op(id)
            ),
        );
    }
    heal(&p);
    let m = assert_same(&p.master, &p.replica, "alice", "after healing");
    assert_eq!(m.in_mailbox("INBOX").len(), 2, "only the two base messages");
}

// ====================================================================================
// Changes logged on the master and folded later (tern-store's `pending.rs`).

/// On a mailbox large enough for its read to be kept, a client's flag stores and
/// EXPUNGE are logged and written into the records later. Whenever the sync reads
/// them (folded by the master's pause, or by the sync's own read), the replica ends
/// with every one: master and replica agree message by message and flag by flag.
#[test]
fn changes_logged_on_a_large_mailbox_replicate() {
    let p = Pair::new();
    let m = &p.master;
    deliver(m, "alice", "", "large", 0..300);
    sync_ok(p.mconf(), &["--user", "alice"]);
    let doomed: Vec<String> = (1..=300)
        .filter(|i| i % 9 == 0)
        .map(|i| i.to_string())
        .collect();
    let ops = format!(
        r#"[
        ["select", "INBOX"],
        ["fetch", "1:*", "(UID FLAGS)"],
        ["store", "1:*", "+FLAGS", "(\\Seen)"],
        ["store", "{}", "+FLAGS.SILENT", "(\\Deleted)"],
        ["expunge"],
        ["store", "1:20", "+FLAGS", "($Important)"],
        ["store", "5", "-FLAGS", "(\\Seen)"]
    ]"#,
        doomed.join(",")
    );
    imap_run(m, "alice", &ops);
    let second = sync_ok(p.mconf(), &["--user", "alice"]);
    assert!(summary_number(&second, "mailboxes") >= 1, "{second}");
    let both = assert_same(m, &p.replica, "alice", "after the logged changes");
    assert_eq!(both.in_mailbox("INBOX").len(), 300 - doomed.len());
    assert_verify_clean(p.mconf());
}
