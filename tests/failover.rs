//! Failover and failback, following the runbook in README.md ("Failover and failback"):
//! the master dies (`kill -9`) under an LMTP stream while `tern sync --rolling` runs;
//! the replica is promoted and takes LMTP and IMAP writes; the old master comes back as
//! the replica of the new one, which syncs to it (`--all`, then `--rolling`); later the
//! roles are switched back.
//!
//! What is asserted is what users and operators check: every message whose delivery got
//! `250` (or whose APPEND got OK), from either side, is on both sides at the end unless a
//! client expunged it on purpose; a UID a client saw for a message never holds another
//! message later on that side, and no new message appears below a UIDNEXT a client saw;
//! UIDNEXT and HIGHESTMODSEQ never go down; `tern sync --verify` is clean at the end.
//!
//! Where the test departs from the runbook, it is stricter: the old master keeps IMAP
//! and LMTP listeners while it is a replica (the runbook turns them off), and they are
//! used only to look, as a client that stayed connected would.
//!
//! Real `tern serve` processes on loopback ports; conditions are polled against a
//! deadline, nothing waits a fixed time to decide an outcome.

mod common;
mod pair;

use common::*;
use pair::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An LMTP delivery stream to one server, on a thread: delivers `tag`-0, `tag`-1, …
/// until told to stop or until the server stops answering, and keeps the Message-IDs
/// that got `250`.
struct Stream {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    fn start(lmtp: SocketAddr, tag: &'static str) -> Stream {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = Lmtp::connect(lmtp) else {
                    return;
                };
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    match c.deliver(
                        "sender@example.org",
                        &["alice@example.org"],
                        &message(tag, i),
                    ) {
                        Ok(r) if r.len() == 1 && r[0].starts_with("250") => acked
                            .lock()
                            .unwrap()
                            .push(format!("<{tag}-{i}@example.org>")),
                        // The server died: what did not get 250 was never promised.
                        _ => return,
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Stream {
            acked,
            stop,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn wait_for(&self, n: usize) {
        poll(
            &format!("{n} acknowledged deliveries"),
            Duration::from_secs(90),
            || (self.count() >= n).then_some(()),
        );
    }

    /// Stops (or, after the server died, joins) the stream; the acknowledged IDs.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("delivery thread");
        }
        self.acked.lock().unwrap().clone()
    }
}

/// What clients saw on each side, to check the UID and counter rules of RFC 3501 and
/// RFC 7162 across every later observation.
#[derive(Default)]
struct Watch {
    /// (side, mailbox, uidvalidity, uid) → the Message-ID a client saw there.
    uids: BTreeMap<(String, String, u64, u32), String>,
    /// (side, mailbox) → (uidvalidity, highest UIDNEXT seen, highest HIGHESTMODSEQ seen).
    counters: BTreeMap<(String, String), (u64, u64, u64)>,
    /// Every violation found, with when it was seen.
    violations: Vec<String>,
}

impl Watch {
    /// Snapshots `server` as a client of `side` would see it, checks it against
    /// everything seen before on that side, and remembers it.
    fn observe(&mut self, server: &TernServer, side: &str, when: &str) -> Snapshot {
        let s = snap(server, "alice", side);
        let boxes = s.mailboxes();
        for (mailbox, status) in &boxes {
            let (uidvalidity, uidnext, hms) = (status[0], status[1], status[3]);
            let key = (side.to_owned(), mailbox.clone());
            let mut new_floor = 0;
            match self.counters.get(&key) {
                Some(&(v, next, modseq)) if v == uidvalidity => {
                    if uidnext < next {
                        self.violations.push(format!(
                            "{when}: {side} {mailbox} UIDNEXT went down from {next} to {uidnext}"
                        ));
                    }
                    if hms < modseq {
                        self.violations.push(format!(
                            "{when}: {side} {mailbox} HIGHESTMODSEQ went down from {modseq} to {hms}"
                        ));
                    }
                    new_floor = next;
                }
                Some(&(v, ..)) => self.violations.push(format!(
                    "{when}: {side} {mailbox} UIDVALIDITY changed from {v} to {uidvalidity}"
                )),
                None => {}
            }
            for m in s.in_mailbox(mailbox) {
                let k = (side.to_owned(), mailbox.clone(), uidvalidity, m.uid);
                match self.uids.get(&k) {
                    Some(seen) if *seen != m.message_id => self.violations.push(format!(
                        "{when}: {side} {mailbox} UID {} held {seen} for a client before, now {}",
                        m.uid, m.message_id
                    )),
                    Some(_) => {}
                    None if u64::from(m.uid) < new_floor => self.violations.push(format!(
                        "{when}: {side} {mailbox} new message {} at UID {}, below the UIDNEXT {new_floor} a client saw",
                        m.message_id, m.uid
                    )),
                    None => {}
                }
                self.uids.insert(k, m.message_id.clone());
            }
            let e = self.counters.entry(key).or_insert((uidvalidity, 0, 0));
            *e = (uidvalidity, e.1.max(uidnext), e.2.max(hms));
        }
        s
    }
}

/// The Message-IDs in INBOX, with how often each occurs.
fn inbox_ids(s: &Snapshot) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for m in s.in_mailbox("INBOX") {
        *ids.entry(m.message_id).or_insert(0) += 1;
    }
    ids
}

/// `root/tern.toml` rewritten for `tern serve` in a role: `sync_port` is the port of
/// this server's sync listener (a replica) and `replica_port` where its `tern sync`
/// sends (a master).
fn start_in_role(root: &Path, sync_port: Option<u16>, replica_port: Option<u16>) -> TernServer {
    let extra = replica_port
        .map(|p| replication_section(p, REPL_PASSWORD))
        .unwrap_or_default();
    let listen = sync_port
        .map(|p| format!("sync = \"127.0.0.1:{p}\""))
        .unwrap_or_default();
    TernServer::start_with(root, &extra, &listen)
}

fn stop_rolling(rolling: Rolling) {
    Command::new("kill")
        .args(["-TERM", &rolling.child.id().to_string()])
        .status()
        .unwrap();
    let mut rolling = rolling;
    let status = poll(
        "the rolling client to stop",
        Duration::from_secs(60),
        || rolling.child.try_wait().unwrap(),
    );
    assert!(
        status.success(),
        "rolling client exit status {status}\n{}",
        std::fs::read_to_string(&rolling.log).unwrap_or_default()
    );
}

/// Polls `tern sync --verify` from `config` until it is clean.
fn wait_until_verified(config: &Path, what: &str) {
    let mut last = String::new();
    let clean = (0..300).any(|_| {
        let (clean, text) = verify(config, &[]);
        last = text;
        if !clean {
            std::thread::sleep(Duration::from_millis(200));
        }
        clean
    });
    assert!(clean, "{what}: never verified clean; last verify:\n{last}");
}

fn append_op(id: &str, flags: &str) -> String {
    format!(
        r#"["append", "INBOX", "{flags}", "From: x@y\nSubject: appended {id}\nMessage-ID: {id}\n\nappended by a client\n"]"#
    )
}

fn uid_of(s: &Snapshot, id: &str) -> u32 {
    let found = s.by_message_id("INBOX", id);
    assert_eq!(found.len(), 1, "{id} in INBOX: {found:?}");
    found[0].uid
}

#[test]
fn failover_and_failback_lose_nothing_acknowledged() {
    let mut p = Pair::new();
    let mut watch = Watch::default();
    let a_root: PathBuf = p.master.root.clone();
    let b_root = p.replica_root.clone();
    let (a_sync, b_sync) = (free_port(), p.sync_port);
    let mut acked: Vec<String> = Vec::new();
    let mut expunged: BTreeSet<String> = BTreeSet::new();

    // ---- Normal operation: A is master, B its replica, rolling replication.
    deliver(&p.master, "alice", "", "seed", 0..6);
    sync_ok(p.mconf(), &[]);
    acked.extend((0..6).map(|i| format!("<seed-{i}@example.org>")));
    let log = p._tmp.path().join("rolling-a.log");
    let rolling = start_rolling(p.mconf(), &log);
    let stream = Stream::start(p.master.lmtp, "stream-a");
    stream.wait_for(15);
    watch.observe(&p.master, "A", "A as master, under load");
    watch.observe(&p.replica, "B", "B as replica, under load");
    stream.wait_for(30);
    // The master's host dies. Its rolling client goes first by a few deliveries, as one
    // that lags would, so that A surely holds acknowledged mail B never received.
    drop(rolling);
    stream.wait_for(36);
    // What a client of A (one in IDLE, say) saw of the mail B never got.
    watch.observe(&p.master, "A", "A just before the crash");
    p.master.kill9();
    acked.extend(stream.finish());

    // ---- Failover: B becomes the master (sync listener off, [replication] → A).
    p.replica.terminate();
    let mut b = start_in_role(&b_root, None, Some(a_sync));
    watch.observe(&b, "B", "B promoted");
    deliver(&b, "alice", "", "promoted", 0..8);
    acked.extend((0..8).map(|i| format!("<promoted-{i}@example.org>")));
    let before = watch.observe(&b, "B", "B promoted, after deliveries");
    let (seed0, seed1) = (
        uid_of(&before, "<seed-0@example.org>"),
        uid_of(&before, "<seed-1@example.org>"),
    );
    imap_run(
        &b,
        "alice",
        &format!(
            r#"[{}, ["select", "INBOX"],
                ["uid", "STORE", "{seed0}", "+FLAGS", "(\\Flagged)"],
                ["uid", "STORE", "{seed1}", "+FLAGS", "(\\Deleted)"],
                ["expunge"]]"#,
            append_op("<append-on-b@example.org>", r"(\\Seen)")
        ),
    );
    acked.push("<append-on-b@example.org>".to_owned());
    expunged.insert("<seed-1@example.org>".to_owned());
    watch.observe(&b, "B", "B promoted, after IMAP writes");

    // ---- A comes back as B's replica; B syncs everything to it, then rolls.
    let mut a = start_in_role(&a_root, Some(a_sync), None);
    add_user(&a.config, "repl", REPL_PASSWORD, true);
    watch.observe(&a, "A", "A back, before any sync");
    let first = tern_sync(&b.config, &["--all"]);
    assert!(
        first.status.success(),
        "B's first `tern sync --all` to A\n{}",
        show(&first)
    );
    let rolling = start_rolling(&b.config, &p._tmp.path().join("rolling-b.log"));
    deliver(&b, "alice", "", "promoted-rolling", 0..4);
    acked.extend((0..4).map(|i| format!("<promoted-rolling-{i}@example.org>")));
    wait_until_verified(&b.config, "B → A rolling after failover");
    watch.observe(&a, "A", "A as B's replica");
    watch.observe(&b, "B", "B as master");

    // ---- Switch back: B stops taking writes, drains to A, and A is master again.
    stop_rolling(rolling);
    sync_ok(&b.config, &["--all"]);
    assert_verify_clean(&b.config);
    a.terminate();
    b.terminate();
    b = start_in_role(&b_root, Some(b_sync), None);
    a = start_in_role(&a_root, None, Some(b_sync));
    watch.observe(&a, "A", "A master again");
    watch.observe(&b, "B", "B replica again");
    sync_ok(&a.config, &["--all"]);
    let rolling = start_rolling(&a.config, &p._tmp.path().join("rolling-a2.log"));
    deliver(&a, "alice", "", "failback", 0..4);
    acked.extend((0..4).map(|i| format!("<failback-{i}@example.org>")));
    let now = watch.observe(&a, "A", "A master again, after deliveries");
    let seed2 = uid_of(&now, "<seed-2@example.org>");
    let seed3 = uid_of(&now, "<seed-3@example.org>");
    imap_run(
        &a,
        "alice",
        &format!(
            r#"[{}, ["select", "INBOX"],
                ["uid", "STORE", "{seed2}", "+FLAGS", "(\\Answered)"],
                ["uid", "STORE", "{seed3}", "+FLAGS", "(\\Deleted)"],
                ["expunge"]]"#,
            append_op("<append-on-a@example.org>", "()")
        ),
    );
    acked.push("<append-on-a@example.org>".to_owned());
    expunged.insert("<seed-3@example.org>".to_owned());
    wait_until_verified(&a.config, "A → B rolling after failback");
    stop_rolling(rolling);

    // ---- What users check.
    let on_a = watch.observe(&a, "A", "the end");
    let on_b = watch.observe(&b, "B", "the end");
    for (side, s) in [("A", &on_a), ("B", &on_b)] {
        let ids = inbox_ids(s);
        let lost: Vec<&String> = acked
            .iter()
            .filter(|id| !expunged.contains(*id) && !ids.contains_key(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "{side} lacks {} acknowledged message(s): {lost:?}\n{side}'s INBOX:\n{}",
            lost.len(),
            s.lines.join("\n")
        );
        let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "{side} holds duplicates: {doubled:?}");
        for id in &expunged {
            assert!(
                !ids.contains_key(id),
                "{side}: {id} was expunged on purpose"
            );
        }
        let flags = |id: &str| s.by_message_id("INBOX", id)[0].flags.clone();
        assert!(
            flags("<seed-0@example.org>").contains("\\Flagged"),
            "{side}"
        );
        assert!(
            flags("<seed-2@example.org>").contains("\\Answered"),
            "{side}"
        );
        assert!(
            flags("<append-on-b@example.org>").contains("\\Seen"),
            "{side}"
        );
    }
    assert_same(&a, &b, "alice", "after failover and failback");
    assert_verify_clean(&a.config);
    // Last, so that everything above is checked even while this fails.
    assert!(
        watch.violations.is_empty(),
        "UID / counter rules broken for clients:\n{}",
        watch.violations.join("\n")
    );
}

/// The master comes back with an empty disk (replaced after the crash): the promoted
/// replica's one-shot `tern sync --all` sends everything, also what it only ever
/// received by replication and never wrote itself (its change log does not name it,
/// so `--rolling` alone would not), as the runbook says.
#[test]
fn an_old_master_with_a_new_disk_gets_everything_back() {
    let mut p = Pair::new();
    let a_root: PathBuf = p.master.root.clone();
    let b_root = p.replica_root.clone();
    let a_sync = free_port();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Work"]);
    deliver(&p.master, "alice", "", "before", 0..4);
    deliver(&p.master, "alice", "Work", "work", 0..3);
    sync_ok(p.mconf(), &[]);
    p.master.kill9();
    // Promote B; it takes mail into INBOX only, never touching Work.
    p.replica.terminate();
    let b = start_in_role(&b_root, None, Some(a_sync));
    deliver(&b, "alice", "", "after", 0..2);
    // A's disk was replaced.
    std::fs::remove_dir_all(a_root.join("data")).unwrap();
    let a = start_in_role(&a_root, Some(a_sync), None);
    add_user(&a.config, "repl", REPL_PASSWORD, true);
    sync_ok(&b.config, &["--all"]);
    let s = assert_same(&b, &a, "alice", "after --all to the new disk");
    assert_eq!(s.in_mailbox("Work").len(), 3, "{}", s.lines.join("\n"));
    assert_eq!(s.in_mailbox("INBOX").len(), 6, "{}", s.lines.join("\n"));
    assert_verify_clean(&b.config);
}
