//! Several sessions on one mailbox doing random APPEND / STORE / EXPUNGE / FETCH.
//! Each keeps the view a client would (sequence number → UID, flags), updated only
//! from what the server says; after every response the view must agree with the
//! server, and after NOOP it must equal the store.

mod common;

use std::collections::HashMap;

use common::*;
use tern_store::Actor;

/// What one client believes about the selected mailbox.
struct View {
    client: Client,
    uids: Vec<u32>,
    flags: HashMap<u32, String>,
    exists: usize,
}

impl View {
    /// Applies every untagged response; panics on any inconsistency.
    fn absorb(&mut self, lines: &[String], step: usize) {
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            if words.len() < 3 || words[0] != "*" {
                continue;
            }
            let Ok(n) = words[1].parse::<usize>() else {
                continue;
            };
            match words[2] {
                "EXISTS" => self.exists = n,
                "EXPUNGE" => {
                    assert!(
                        n >= 1 && n <= self.uids.len(),
                        "step {step}: EXPUNGE {n} out of range: {line}"
                    );
                    let uid = self.uids.remove(n - 1);
                    self.flags.remove(&uid);
                    self.exists -= 1;
                }
                "FETCH" => {
                    let uid: Option<u32> = line
                        .split("UID ")
                        .nth(1)
                        .and_then(|r| r.split([' ', ')']).next())
                        .and_then(|u| u.parse().ok());
                    if n > self.uids.len() {
                        // A message we did not know yet, announced by EXISTS.
                        assert!(
                            n <= self.exists,
                            "step {step}: FETCH {n} beyond EXISTS {}",
                            self.exists
                        );
                        assert_eq!(
                            n,
                            self.uids.len() + 1,
                            "step {step}: gap in sequence numbers"
                        );
                        self.uids.push(uid.unwrap_or_else(|| {
                            panic!("step {step}: new message without UID: {line}")
                        }));
                    }
                    assert!(n >= 1, "step {step}: FETCH 0");
                    if let Some(uid) = uid {
                        assert_eq!(
                            self.uids[n - 1],
                            uid,
                            "step {step}: sequence number {n} is another message: {line}"
                        );
                    }
                    let uid = self.uids[n - 1];
                    if let Some(f) = line
                        .split("FLAGS (")
                        .nth(1)
                        .and_then(|r| r.split(')').next())
                    {
                        let mut f: Vec<&str> = f
                            .split(' ')
                            .filter(|x| !x.is_empty() && *x != "\\Recent")
                            .collect();
                        f.sort_unstable();
                        self.flags.insert(uid, f.join(" "));
                    }
                }
                _ => {}
            }
        }
    }

    fn run(&mut self, command: &str, step: usize) -> Vec<String> {
        let lines = self.client.cmd(command);
        self.absorb(&lines, step);
        // Learn the UIDs of messages announced by EXISTS.
        if self.exists > self.uids.len() {
            let lines = self.client.ok(&format!(
                "FETCH {}:{} (UID FLAGS)",
                self.uids.len() + 1,
                self.exists
            ));
            self.absorb(&lines, step);
        }
        assert_eq!(
            self.uids.len(),
            self.exists,
            "step {step}: view and EXISTS differ after {command}"
        );
        lines
    }
}

#[test]
fn random_concurrent_sessions_never_see_wrong_sequence_numbers() {
    random_concurrent_sessions(5, 1000);
}

/// The same on a mailbox large enough for its read to be kept, where flag stores and
/// EXPUNGEs are logged and folded later: sessions see each other's logged changes,
/// and the records' rows, once folded, are what the sessions were shown.
#[test]
fn random_concurrent_sessions_on_a_large_mailbox() {
    random_concurrent_sessions(400, 1000);
}

fn random_concurrent_sessions(seeded: usize, steps: usize) {
    let server = start();
    let alice = Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let inbox = server
        .store
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .uniqueid;
    for i in 0..seeded {
        server.deliver("alice", "INBOX", &format!("Subject: seed {i}\r\n\r\nx\r\n"));
    }
    let mut views: Vec<View> = (0..3)
        .map(|_| {
            let mut client = Client::login(server.addr, "alice");
            let lines = client.ok("SELECT INBOX");
            let mut v = View {
                client,
                uids: Vec::new(),
                flags: HashMap::new(),
                exists: 0,
            };
            v.absorb(&lines, 0);
            let lines = v.client.ok("FETCH 1:* (UID FLAGS)");
            v.absorb(&lines, 0);
            v
        })
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 1..=steps {
        let who = next(3) as usize;
        let v = &mut views[who];
        let count = v.uids.len() as u64;
        match next(9) {
            0 => {
                let msg = format!("Subject: step {step}\r\n\r\nbody\r\n");
                v.run(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()), step);
            }
            1 => {
                server.deliver(
                    "alice",
                    "INBOX",
                    &format!("Subject: delivered {step}\r\n\r\nx\r\n"),
                );
            }
            2 | 3 if count > 0 => {
                let seq = next(count) + 1;
                let flag = ["\\Flagged", "\\Seen", "$Work", "\\Deleted"][next(4) as usize];
                let op = if next(2) == 0 { "+FLAGS" } else { "-FLAGS" };
                v.run(&format!("STORE {seq} {op} ({flag})"), step);
            }
            4 => {
                v.run("EXPUNGE", step);
            }
            // Sets of many messages: a range, and every n-th one.
            7 if count > 0 => {
                let lo = next(count) + 1;
                let hi = (lo + next(count)).min(count);
                let flag = ["\\Seen", "\\Flagged", "$Work"][next(3) as usize];
                let op = ["+FLAGS", "-FLAGS", "FLAGS"][next(3) as usize];
                v.run(&format!("STORE {lo}:{hi} {op} ({flag})"), step);
            }
            8 if count > 0 => {
                // (\Deleted on a tenth at most: the large mailbox stays large.)
                let every = 10 + next(20);
                let set: Vec<String> = (1..=count)
                    .filter(|s| s % every == 0)
                    .map(|s| s.to_string())
                    .collect();
                if !set.is_empty() {
                    let op = ["+FLAGS", "-FLAGS"][next(2) as usize];
                    v.run(&format!("STORE {} {op} (\\Deleted)", set.join(",")), step);
                }
            }
            5 if count > 0 => {
                let lines = v.run("FETCH 1:* (UID FLAGS)", step);
                assert!(lines.iter().filter(|l| l.contains(" FETCH ")).count() as u64 >= count);
            }
            _ => {
                v.run("NOOP", step);
                // After NOOP nothing is pending: the view is exactly the store.
                // (With expunged records: a read of the records' rows, so any change
                // logged from a kept read is folded into them first.)
                let (_, records) = server.store.records(&alice, &inbox, true).unwrap();
                let records: Vec<_> = records
                    .into_iter()
                    .filter(|r| r.expunged_modseq.is_none())
                    .collect();
                let (_, kept) = server.store.records(&alice, &inbox, false).unwrap();
                assert_eq!(kept, records, "step {step}: the kept read and the rows");
                let live: Vec<u32> = records.iter().map(|r| r.uid).collect();
                assert_eq!(v.uids, live, "step {step}: session {who} after NOOP");
                for r in &records {
                    let mut want: Vec<String> = r.flags.iter().map(|f| f.to_string()).collect();
                    want.sort_unstable();
                    assert_eq!(
                        v.flags.get(&r.uid).cloned().unwrap_or_default(),
                        want.join(" "),
                        "step {step}: flags of uid {}",
                        r.uid
                    );
                }
            }
        }
    }
}

/// A session's own STORE and EXPUNGE let it skip reading its own changes back, but
/// never a change another session made before them (equal-looking state: the
/// mailbox moved on between this session's last look and its own change) or after.
#[test]
fn own_changes_never_hide_another_sessions() {
    let server = start();
    for i in 1..=4 {
        server.deliver("alice", "INBOX", &format!("Subject: m{i}\r\n\r\nx\r\n"));
    }
    let mut a = Client::login(server.addr, "alice");
    let mut b = Client::login(server.addr, "alice");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    // B flags message 2 before A's own store: A must hear of it with its answer.
    b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)");
    let r = a.ok("STORE 1 +FLAGS (\\Seen)");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 1 FETCH") && l.contains("\\Seen")),
        "{r:?}"
    );
    // Its own change is reported once, though the refresh after it reads it back.
    assert_eq!(
        r.iter().filter(|l| l.starts_with("* 1 FETCH")).count(),
        1,
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 2 FETCH") && l.contains("\\Flagged")),
        "{r:?}"
    );
    // Up to date now: A's next store is its own alone, then B changes message 4 and
    // marks message 3 for deletion; A's NOOP reports both.
    let r = a.ok("STORE 1 +FLAGS (\\Answered)");
    assert!(!r.iter().any(|l| l.starts_with("* 2 FETCH")), "{r:?}");
    b.ok("STORE 4 +FLAGS.SILENT (\\Draft)");
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    let r = a.ok("NOOP");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 4 FETCH") && l.contains("\\Draft")),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 3 FETCH") && l.contains("\\Deleted")),
        "{r:?}"
    );
    // A expunges; after it, B flags message 1 and a message arrives: A's own expunge
    // is reported at once, B's change and the arrival at the next NOOP.
    let r = a.ok("EXPUNGE");
    assert!(r.iter().any(|l| l == "* 3 EXPUNGE"), "{r:?}");
    b.ok("NOOP");
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    server.deliver("alice", "INBOX", "Subject: m5\r\n\r\nx\r\n");
    let r = a.ok("NOOP");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 1 FETCH") && l.contains("\\Flagged")),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l == "* 4 EXISTS"), "{r:?}");
    // B changes two messages just before A's next expunge: that expunge is A's own,
    // but B's changes come first and are reported with it.
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("STORE 1 -FLAGS.SILENT (\\Flagged)");
    let r = a.ok("EXPUNGE");
    assert!(r.iter().any(|l| l == "* 2 EXPUNGE"), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 1 FETCH") && !l.contains("\\Flagged")),
        "{r:?}"
    );
}

/// A FETCH reads the change report with its records: what another session changed
/// before it is reported with its answer, a FETCH that sets \Seen reports its own
/// change once, and a change made between two FETCHes is not lost to the first one's
/// read.
#[test]
fn a_fetch_reports_what_changed_before_it_and_nothing_twice() {
    let server = start();
    for i in 1..=3 {
        server.deliver("alice", "INBOX", &format!("Subject: m{i}\r\n\r\nx\r\n"));
    }
    let mut a = Client::login(server.addr, "alice");
    let mut b = Client::login(server.addr, "alice");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    b.ok("STORE 3 +FLAGS.SILENT (\\Flagged)");
    server.deliver("alice", "INBOX", "Subject: m4\r\n\r\nx\r\n");
    let r = a.ok("FETCH 1 (FLAGS)");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 3 FETCH") && l.contains("\\Flagged")),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l == "* 4 EXISTS"), "{r:?}");
    // Nothing new: the next FETCH repeats none of it.
    let r = a.ok("FETCH 2 (FLAGS)");
    assert_eq!(r.len(), 2, "{r:?}");
    // B flags message 2 while A's BODY[] fetch of message 1 sets \Seen: A hears of
    // both, its own \Seen once.
    b.ok("STORE 2 +FLAGS.SILENT (\\Answered)");
    let r = a.ok("FETCH 1 (FLAGS BODY[])");
    let seen: Vec<&String> = r
        .iter()
        .filter(|l| l.starts_with("* 1 FETCH") && l.contains("\\Seen"))
        .collect();
    assert_eq!(seen.len(), 1, "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 2 FETCH") && l.contains("\\Answered")),
        "{r:?}"
    );
    let r = a.ok("NOOP");
    assert!(!r.iter().any(|l| l.contains("FETCH")), "{r:?}");
    // B's change between A's FETCH and A's next command is reported by that command.
    b.ok("STORE 4 +FLAGS.SILENT (\\Draft)");
    let r = a.ok("FETCH 1 (UID)");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 4 FETCH") && l.contains("\\Draft")),
        "{r:?}"
    );
}
