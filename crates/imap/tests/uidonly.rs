//! UIDONLY (RFC 9586) over a real socket: once enabled, the client may not name a
//! message by number and the server sends none.

mod common;

use common::*;

fn status(lines: &[String]) -> &str {
    lines.last().unwrap().split(' ').nth(1).unwrap()
}

/// No line of the answer may carry a message sequence number.
fn no_numbers(lines: &[String]) {
    for l in lines {
        let words: Vec<&str> = l.split(' ').collect();
        if words.len() > 2 && words[0] == "*" && words[1].parse::<u32>().is_ok() {
            assert!(
                matches!(words[2], "UIDFETCH" | "EXISTS" | "RECENT"),
                "a sequence number went out under UIDONLY: {l}"
            );
        }
        assert!(!l.contains("[UNSEEN "), "UNSEEN is a sequence number: {l}");
    }
}

#[test]
fn uidonly_refuses_numbers_and_answers_in_uids() {
    let server = start();
    for i in 1..=10 {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"),
        );
    }
    // \Recent goes to this first session, leaving flags lists empty for the next.
    Client::login(server.addr, "alice").ok("SELECT INBOX");
    let mut c = Client::login(server.addr, "alice");
    assert!(c.ok("CAPABILITY")[0].contains(" UIDONLY"));
    c.ok("SELECT INBOX");
    c.ok("STORE 1,6 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("ENABLE UIDONLY CONDSTORE");
    assert_eq!(r[0], "* ENABLED UIDONLY CONDSTORE");

    // Every command that names messages by number is BAD [UIDREQUIRED], and does
    // nothing: the \Deleted messages are still there afterwards.
    for command in [
        "FETCH 1:* (FLAGS)",
        "STORE 2 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "COPY 2 Trash",
        "MOVE 2 Trash",
        "SORT (ARRIVAL) UTF-8 ALL",
        "UID SEARCH 1:10",
        "UID SEARCH OR SEEN 3",
    ] {
        let r = c.cmd(command);
        assert_eq!(status(&r), "BAD", "{command}: {r:?}");
        assert!(
            r.last().unwrap().contains("[UIDREQUIRED]"),
            "{command}: {r:?}"
        );
    }
    let r = c.ok("UID SEARCH UID 1:10");
    assert_eq!(r[0], "* SEARCH 1 2 3 4 5 6 7 8 9 10");

    // EXPUNGE reports VANISHED, by UID.
    let r = c.ok("EXPUNGE");
    no_numbers(&r);
    assert_eq!(r[0], "* VANISHED 1,6", "{r:?}");

    // UID FETCH answers UIDFETCH, with the UID heading the response and not repeated
    // unless asked for.
    let r = c.ok("UID FETCH 2:4 (FLAGS)");
    no_numbers(&r);
    for (line, uid) in r.iter().zip([2, 3, 4]) {
        // MODSEQ, as CONDSTORE is on; no UID item.
        let head = format!("* {uid} UIDFETCH (FLAGS () MODSEQ (");
        assert!(line.starts_with(&head), "{r:?}");
    }
    assert_eq!(r.len(), 4, "{r:?}");
    let r = c.ok("UID FETCH 7 (UID RFC822.SIZE)");
    assert!(
        r[0].starts_with("* 7 UIDFETCH (UID 7 RFC822.SIZE "),
        "{r:?}"
    );
    assert!(!r[0].contains("MODSEQ"), "{r:?}");
    let r = c.ok("UID FETCH 8 (BODY.PEEK[TEXT])");
    assert_eq!(r[0], "* 8 UIDFETCH (BODY[TEXT] {8}\r\nbody 8\r\n)");

    // UID STORE: the new flags and MODSEQ, by UID.
    let r = c.ok("UID STORE 3 +FLAGS (\\Flagged)");
    no_numbers(&r);
    assert!(
        r[0].starts_with("* 3 UIDFETCH (FLAGS (\\Flagged) MODSEQ ("),
        "{r:?}"
    );

    // What another session does is reported by UID too: a flag change, a new message,
    // an expunge.
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("UID STORE 4 +FLAGS (\\Answered)");
    other.ok("UID STORE 9 +FLAGS (\\Deleted)");
    other.ok("UID EXPUNGE 9");
    server.deliver("alice", "INBOX", "Subject: m11\r\n\r\nbody 11\r\n");
    let r = c.ok("NOOP");
    no_numbers(&r);
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 4 UIDFETCH (FLAGS (\\Answered) MODSEQ (")),
        "{r:?}"
    );
    assert!(r.contains(&"* VANISHED 9".to_owned()), "{r:?}");
    assert!(r.contains(&"* 8 EXISTS".to_owned()), "{r:?}");

    // UID MOVE: the moved message vanishes by UID.
    let r = c.ok("UID MOVE 5 Trash");
    no_numbers(&r);
    assert!(r.contains(&"* VANISHED 5".to_owned()), "{r:?}");

    // SELECT sends no UNSEEN (a number), and the count is still EXISTS.
    let r = c.ok("SELECT INBOX");
    no_numbers(&r);
    assert!(r.contains(&"* 7 EXISTS".to_owned()), "{r:?}");
    let r = c.ok("UID SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 2 3 4 7 8 10 11");
}

/// Without ENABLE, nothing changes: sequence numbers work and FETCH is FETCH.
#[test]
fn numbers_work_until_uidonly_is_enabled() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: a\r\n\r\nx\r\n");
    Client::login(server.addr, "alice").ok("SELECT INBOX");
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (FLAGS)");
    assert_eq!(r[0], "* 1 FETCH (FLAGS ())");
    let r = c.ok("UID FETCH 1 (FLAGS)");
    assert_eq!(r[0], "* 1 FETCH (UID 1 FLAGS ())");
}

/// A search kept up to date in sequence numbers (RFC 5267) cannot go on once UIDONLY
/// is enabled: it ends with the notice `OK [NOUPDATE "tag"]`, and later changes
/// report no number. A UID search goes on.
#[test]
fn enabling_uidonly_ends_searches_kept_in_numbers() {
    let server = start();
    for i in 1..=3 {
        server.deliver("alice", "INBOX", &format!("Subject: m{i}\r\n\r\nx\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.send(b"byseq SEARCH RETURN (UPDATE) ALL\r\n");
    c.until_tagged("byseq");
    c.send(b"byuid UID SEARCH RETURN (UPDATE) ALL\r\n");
    c.until_tagged("byuid");
    let r = c.ok("ENABLE UIDONLY");
    assert!(
        r.iter().any(|l| l.starts_with("* OK [NOUPDATE \"byseq\"]")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("\"byuid\"")), "{r:?}");
    server.deliver("alice", "INBOX", "Subject: m4\r\n\r\nx\r\n");
    let r = c.ok("NOOP");
    no_numbers(&r);
    assert!(
        r.iter()
            .any(|l| l.starts_with("* ESEARCH (TAG \"byuid\") UID ADDTO")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("\"byseq\"")), "{r:?}");
}
