//! SEARCH BODY / TEXT over the full-text index, which only pre-filters: answers must
//! be exactly those of reading every message (RFC 3501 6.4.4: case-insensitive
//! substrings), whatever the index holds.

mod common;

use std::time::Duration;

use common::{start, start_with_store, Client};
use tern_imap::ImapConfig;

fn deliver_all(server: &common::Server) {
    for m in [
        "Subject: one\r\n\r\nthe quick brown fox\r\n",
        "Subject: two\r\n\r\nthe brown quick fox\r\n",
        "Subject: three\r\n\r\nquickly ick brownies\r\n",
        "Subject: quick brown\r\n\r\nnothing in the body\r\n",
        "Subject: five\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         cXVpY2sgYnJvd24gaW4gYmluYXJ5\r\n--b--\r\n",
    ] {
        server.deliver("alice", "INBOX", m);
    }
}

/// The same questions, asked before and after the index is filled, get the same
/// answers: trigrams that all occur but not together are no match.
#[test]
fn answers_are_exact_with_and_without_the_index() {
    let server = start();
    deliver_all(&server);
    let questions = [
        ("SEARCH BODY \"quick brown\"", "* SEARCH 1"),
        ("SEARCH BODY \"ick bro\"", "* SEARCH 1 3"),
        ("SEARCH BODY \"QUICK\"", "* SEARCH 1 2 3"),
        ("SEARCH TEXT \"quick brown\"", "* SEARCH 1 4"),
        ("SEARCH NOT BODY \"brown quick\"", "* SEARCH 1 3 4 5"),
        ("SEARCH OR BODY fox BODY attached", "* SEARCH 1 2 5"),
        ("SEARCH BODY \"in binary\"", "* SEARCH"),
    ];
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    for (q, want) in questions {
        assert_eq!(c.ok(q)[0], want, "unindexed: {q}");
    }
    server.store.flush_text_index().unwrap();
    assert_eq!(server.store.text_index_backlog().unwrap(), 0);
    for (q, want) in questions {
        assert_eq!(c.ok(q)[0], want, "indexed: {q}");
    }
}

/// Past a user's cap the index holds nothing more of theirs, and SEARCH still finds
/// every match by reading those messages.
#[test]
fn a_user_past_the_text_cap_still_gets_every_match() {
    let server = start_with_store(
        ImapConfig {
            auth_failure_delay: Duration::from_millis(10),
            ..ImapConfig::default()
        },
        |s| s.text_index_user_cap = 100,
    );
    deliver_all(&server);
    server.store.flush_text_index().unwrap();
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let m = server
        .store
        .search_text(&inbox.uniqueid, tern_store::TextField::Body, "quick")
        .unwrap()
        .unwrap();
    assert!(m.unindexed.len() >= 3, "the cap held: {m:?}");
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SEARCH BODY \"quick brown\"")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH TEXT \"quick brown\"")[0], "* SEARCH 1 4");
    assert_eq!(c.ok("SEARCH BODY fox")[0], "* SEARCH 1 2");
}
