//! Crash safety: `kill -9` of `tern serve` in the middle of a delivery stream never
//! loses an acknowledged message and never leaves a half-visible one.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tern_store::Guid;

/// One acknowledged delivery: who got it, where, and the exact bytes that must be there.
struct Acked {
    user: &'static str,
    mailbox: &'static str,
    stored: Vec<u8>,
}

fn message(round: usize, client: usize, n: usize) -> Vec<u8> {
    // Sizes from a few hundred bytes to ~200 KB, so kills land in blob writes too.
    let filler = (round * 31 + client * 7 + n * 13) % 5;
    let body_lines = [2, 40, 400, 1500, 3000][filler];
    let mut m = format!(
        "From: stream@example.org\r\nSubject: round {round} client {client} msg {n}\r\n\
         Message-ID: <{round}.{client}.{n}@durability>\r\n\r\n"
    )
    .into_bytes();
    for i in 0..body_lines {
        m.extend_from_slice(
            format!("line {i} of message {round}/{client}/{n} ........................\r\n")
                .as_bytes(),
        );
    }
    m
}

fn stream(
    server_addr: std::net::SocketAddr,
    round: usize,
    client: usize,
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    let Ok(mut lmtp) = Lmtp::connect(server_addr) else {
        return;
    };
    for n in 0.. {
        let msg = message(round, client, n);
        let stored = [b"Return-Path: <stream@example.org>\r\n".as_slice(), &msg].concat();
        // Alternate single-recipient INBOX, folder delivery, and two recipients.
        let (rcpts, places): (&[&str], &[(&str, &str)]) = match n % 3 {
            0 => (&["alice@x"], &[("alice", "INBOX")]),
            1 => (&["alice+Work@x"], &[("alice", "Work")]),
            _ => (
                &["alice@x", "bob@x"],
                &[("alice", "INBOX"), ("bob", "INBOX")],
            ),
        };
        let Ok(replies) = lmtp.deliver("stream@example.org", rcpts, &msg) else {
            return;
        };
        let mut acked = acked.lock().unwrap();
        for (reply, (user, mailbox)) in replies.iter().zip(places) {
            if reply.starts_with("250") {
                acked.push(Acked {
                    user,
                    mailbox,
                    stored: stored.clone(),
                });
            }
        }
    }
}

fn verify(data_dir: &std::path::Path, acked: &[Acked], round: usize) {
    let store = open_store(data_dir);
    let mut present: HashMap<(&str, &str), HashSet<Guid>> = HashMap::new();
    for user in ["alice", "bob"] {
        for mailbox in store.mailboxes(user, false).unwrap() {
            let (_, records) = store
                .records(&owner(user), &mailbox.uniqueid, true)
                .unwrap();
            let mut last = 0;
            for r in &records {
                assert!(
                    r.uid > last,
                    "round {round}: UIDs not strictly increasing in {}",
                    mailbox.name
                );
                last = r.uid;
                // Nothing half-visible: every record's blob is complete and matches its GUID.
                let bytes = store
                    .message(&mailbox, r)
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert_eq!(
                    Guid::of(&bytes),
                    r.guid,
                    "round {round}: blob does not match its GUID"
                );
            }
            assert!(mailbox.last_uid >= last);
            let live = records
                .iter()
                .filter(|r| r.expunged_modseq.is_none())
                .count();
            assert_eq!(
                live as u32, mailbox.messages,
                "round {round}: message count out of step"
            );
            let key = (
                if user == "alice" { "alice" } else { "bob" },
                leak(&mailbox.name),
            );
            present
                .entry(key)
                .or_default()
                .extend(records.iter().map(|r| r.guid));
        }
    }
    for a in acked {
        let guid = Guid::of(&a.stored);
        let found = present
            .get(&(a.user, a.mailbox))
            .is_some_and(|s| s.contains(&guid));
        assert!(
            found,
            "round {round}: acknowledged message lost from {}/{}",
            a.user, a.mailbox
        );
    }
    // The change log names every mailbox that holds a message.
    let logged: HashSet<_> = store
        .changes_after(0, usize::MAX >> 1)
        .unwrap()
        .into_iter()
        .filter_map(|c| c.mailbox)
        .collect();
    for user in ["alice", "bob"] {
        for m in store.mailboxes(user, false).unwrap() {
            if m.last_uid > 0 {
                assert!(
                    logged.contains(&m.uniqueid),
                    "round {round}: {user}/{} missing from change log",
                    m.name
                );
            }
        }
    }
}

fn leak(s: &str) -> &'static str {
    match s {
        "INBOX" => "INBOX",
        "Work" => "Work",
        other => Box::leak(other.to_owned().into_boxed_str()),
    }
}

#[test]
fn kill_9_during_delivery_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let config = write_config(tmp.path(), "");
        admin_ok(&config, &["user", "add", "alice"]);
        admin_ok(&config, &["user", "add", "bob"]);
        admin_ok(&config, &["mailbox", "create", "alice", "Work"]);
        // Open for `alice+Work@` delivery (without `anyone p` it goes to INBOX).
        let store = open_store(&tmp.path().join("data"));
        let work = store.mailbox("alice", "Work").unwrap().unwrap().uniqueid;
        store
            .set_acl(
                &owner("alice"),
                &work,
                "anyone",
                Some(tern_store::Rights::POST),
            )
            .unwrap();
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let mut server = TernServer::start(tmp.path(), "");
        let clients: Vec<_> = (0..3)
            .map(|client| {
                let acked = acked.clone();
                let addr = server.lmtp;
                std::thread::spawn(move || stream(addr, round, client, acked))
            })
            .collect();
        // Varied kill points: from just after start to well into the stream.
        let delay = 20 + (round * 53) % 450;
        std::thread::sleep(Duration::from_millis(delay as u64));
        server.kill9();
        for c in clients {
            c.join().unwrap();
        }
        verify(&server.data_dir(), &acked.lock().unwrap(), round);
    }
    let total = acked.lock().unwrap().len();
    assert!(
        total > ROUNDS * 3,
        "the stream delivered too little to mean anything: {total}"
    );
    eprintln!("{total} acknowledged deliveries survived {ROUNDS} kills");
}
