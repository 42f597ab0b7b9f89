//! IMAP over a real socket against an in-process listener: the protocol text a
//! client sends, and what it must get back.

mod common;

use base64::Engine;
use common::*;

fn tagged_status(lines: &[String]) -> &str {
    lines.last().unwrap().split(' ').nth(1).unwrap()
}

#[test]
fn login_failure_is_refused_and_capabilities_change_after_login() {
    let server = start();
    let mut c = Client::connect(server.addr);
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains("AUTH=PLAIN") && caps[0].contains("SASL-IR"));
    assert!(
        !caps[0].contains("CONDSTORE"),
        "post-login capabilities are not advertised before login"
    );
    let r = c.cmd("LOGIN alice wrong");
    assert!(
        r.last().unwrap().contains("NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
    let r = c.cmd("SELECT INBOX");
    assert_eq!(tagged_status(&r), "NO");
    let r = c.ok("LOGIN alice pw");
    assert!(r.last().unwrap().contains("CONDSTORE"));
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    let server = start();
    let creds = base64::engine::general_purpose::STANDARD.encode(b"\0alice\0pw");
    let mut c = Client::connect(server.addr);
    c.ok(&format!("AUTHENTICATE PLAIN {creds}"));
    let mut c = Client::connect(server.addr);
    c.send(b"a AUTHENTICATE PLAIN\r\n");
    assert!(c.line().starts_with("+"));
    c.send(format!("{creds}\r\n").as_bytes());
    assert!(c.until_tagged("a").last().unwrap().starts_with("a OK"));
    let mut c = Client::connect(server.addr);
    let bad = base64::engine::general_purpose::STANDARD.encode(b"\0alice\0nope");
    assert!(c
        .cmd(&format!("AUTHENTICATE PLAIN {bad}"))
        .last()
        .unwrap()
        .contains("NO"));
}

#[test]
fn select_reports_mailbox_state() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: one\r\n\r\nbody\r\n");
    server.deliver("alice", "INBOX", "Subject: two\r\n\r\nbody\r\n");
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("SELECT inbox");
    let all = r.join("\n");
    assert!(all.contains("* 2 EXISTS"));
    assert!(all.contains("* 2 RECENT"));
    assert!(all.contains(&format!("[UIDVALIDITY {}]", inbox.uidvalidity)));
    assert!(all.contains("[UIDNEXT 3]"));
    assert!(all.contains(&format!("[HIGHESTMODSEQ {}]", inbox.highest_modseq)));
    assert!(all.contains("[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"));
    assert!(r.last().unwrap().contains("[READ-WRITE]"));
    // \Recent belongs to the first session only.
    let mut d = Client::login(server.addr, "alice");
    let r = d.ok("EXAMINE INBOX");
    assert!(r.join("\n").contains("* 0 RECENT"));
    assert!(r.last().unwrap().contains("[READ-ONLY]"));
    assert_eq!(tagged_status(&d.cmd("STORE 1 +FLAGS (\\Seen)")), "NO");
    // STATUS RECENT counts the messages with \Recent set. A message delivered now is
    // \Recent for no session yet: a session with nothing selected counts it alone;
    // the first session counts its own two and that one, which it then takes.
    server.deliver("alice", "INBOX", "Subject: three\r\n\r\nbody\r\n");
    let mut e = Client::login(server.addr, "alice");
    assert_eq!(
        e.ok("STATUS INBOX (RECENT)")[0],
        "* STATUS \"INBOX\" (RECENT 1)"
    );
    let r = c.ok("STATUS INBOX (RECENT)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (RECENT 3)", "{r:?}");
    assert!(r.contains(&"* 3 RECENT".to_owned()), "{r:?}");
    assert_eq!(
        e.ok("STATUS INBOX (RECENT)")[0],
        "* STATUS \"INBOX\" (RECENT 0)"
    );
}

/// Header sections of the message itself are the same whether its header ends early
/// (the usual case, read alone), ends exactly where that first read stops, or runs
/// past it, and whatever the size of the body after it.
#[test]
fn header_sections_of_long_headers_and_large_bodies() {
    let server = start();
    let folded = |n: usize| -> String {
        (0..n)
            .map(|i| format!("X-Filler-{i}: {}\r\n  continued\r\n", "f".repeat(40)))
            .collect()
    };
    let big_body = "0123456789abcdef\r\n".repeat(14_000);
    let mut messages = vec![
        "Subject: small\r\nTo: a@example.org\r\n\r\nbody\r\n".to_owned(),
        format!("Subject: big body\r\nTo: a@example.org\r\n\r\n{big_body}"),
        format!(
            "{}Subject: after a long header\r\n\r\n{big_body}",
            folded(1_200)
        ),
        format!("{}Subject: header only\r\n", folded(1_200)),
    ];
    // A header whose blank line ends exactly 64 KiB in.
    let head = "Subject: on the edge\r\n";
    let filler_len = 65_536 - head.len() - "X-Pad: \r\n\r\n".len();
    messages.push(format!(
        "{head}X-Pad: {}\r\n\r\n{big_body}",
        "p".repeat(filler_len)
    ));
    for m in &messages {
        server.deliver("alice", "INBOX", m);
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    // Twice: the second round is answered from the headers kept by GUID, and must
    // read exactly the same.
    for round in 0..2 {
        for (i, m) in messages.iter().enumerate() {
            let header = match m.find("\r\n\r\n") {
                Some(at) => &m[..at + 4],
                None => &m[..],
            };
            let subject = header
                .split("\r\n")
                .find(|l| l.starts_with("Subject:"))
                .unwrap();
            let fields = format!("{subject}\r\n\r\n");
            let r = c.ok(&format!(
                "FETCH {} (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[HEADER] RFC822.HEADER)",
                i + 1
            ));
            let want = format!(
                "* {} FETCH (BODY[HEADER.FIELDS (SUBJECT)] {{{}}}\r\n{fields} BODY[HEADER] {{{}}}\r\n{header} RFC822.HEADER {{{}}}\r\n{header})",
                i + 1,
                fields.len(),
                header.len(),
                header.len()
            );
            assert!(
                r[0] == want,
                "round {round}, message {}: {:?}",
                i + 1,
                &r[0][..r[0].len().min(300)]
            );
            let r = c.ok(&format!(
                "FETCH {} (BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)]<0.30>)",
                i + 1
            ));
            assert!(
                r[0].contains("BODY[HEADER.FIELDS.NOT (SUBJECT)]<0> {"),
                "{:?}",
                r[0]
            );
        }
        // SEARCH's header keys read the same headers.
        assert_eq!(c.ok("SEARCH SUBJECT \"long header\"")[0], "* SEARCH 3");
        assert_eq!(c.ok("SEARCH SUBJECT \"header only\"")[0], "* SEARCH 4");
        assert_eq!(c.ok("SEARCH HEADER X-Pad \"\"")[0], "* SEARCH 5");
        assert_eq!(c.ok("SEARCH TO a@example.org")[0], "* SEARCH 1 2");
        assert_eq!(
            c.ok("SEARCH HEADER X-Filler-1199 continued")[0],
            "* SEARCH 3 4"
        );
    }
}

#[test]
fn fetch_body_sets_seen_but_peek_does_not() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "Subject: hi\r\nFrom: Bob <bob@example.org>\r\n\r\nhello\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)");
    assert!(
        r[0].contains("BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n"),
        "{r:?}"
    );
    assert!(!r[0].contains("\\Seen"));
    let r = c.ok("FETCH 1 BODY[TEXT]");
    assert!(r[0].contains("BODY[TEXT] {7}\r\nhello\r\n"), "{r:?}");
    assert!(
        r[0].contains("\\Seen"),
        "fetching BODY[] sets \\Seen and reports it: {r:?}"
    );
    let r = c.ok("UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[]<0.7>)");
    assert!(
        r[0].contains("UID 1") && r[0].contains("BODY[]<0> {7}\r\nSubject"),
        "{r:?}"
    );
    let r = c.cmd("FETCH 5 FLAGS");
    assert_eq!(tagged_status(&r), "BAD", "sequence number beyond EXISTS");
}

#[test]
fn store_flags_and_unchangedsince() {
    let server = start();
    for i in 0..3 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX (CONDSTORE)");
    let r = c.ok("STORE 1:2 +FLAGS (\\Flagged $Work)");
    // The new keyword is announced first (RFC 3501 7.2.6), then one FETCH a message.
    assert!(
        r[0].starts_with("* FLAGS (") && r[0].contains(" $Work)"),
        "{r:?}"
    );
    let fetches: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), 2, "{r:?}");
    assert!(
        fetches[0].contains("FLAGS (\\Flagged $Work \\Recent)") && fetches[0].contains("MODSEQ"),
        "{r:?}"
    );
    let r = c.ok("STORE 1 -FLAGS.SILENT ($Work)");
    assert!(!r.iter().any(|l| l.contains("FLAGS (")), "{r:?}");
    let r = c.ok("FETCH 1:3 (FLAGS MODSEQ)");
    let modseq_of_3: u64 = r[2]
        .split("MODSEQ (")
        .nth(1)
        .unwrap()
        .trim_end_matches("))")
        .parse()
        .unwrap();
    let r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)");
    assert_eq!(r.len(), 4);
    let r = c.cmd(&format!(
        "STORE 1,3 (UNCHANGEDSINCE {modseq_of_3}) +FLAGS (\\Seen)"
    ));
    assert!(
        r.last().unwrap().contains("[MODIFIED 1]"),
        "message 1 changed after that modseq: {r:?}"
    );
    let r = c.ok("FETCH 3 FLAGS");
    assert!(r[0].contains("\\Seen"));
    assert_eq!(tagged_status(&c.cmd("STORE 1 +FLAGS (\\Bogus)")), "BAD");
}

#[test]
fn search_keys_esearch_and_searchres() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "From: Ann <ann@example.org>\r\nSubject: Quarterly report\r\n\r\nnumbers\r\n",
    );
    server.deliver(
        "alice",
        "INBOX",
        "From: Bob <bob@example.org>\r\nSubject: lunch?\r\n\r\nthe quokka cafe\r\n",
    );
    server.deliver(
        "alice",
        "INBOX",
        &format!(
            "From: Cy <cy@example.org>\r\nSubject: big\r\n\r\n{}\r\n",
            "y".repeat(5000)
        ),
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("STORE 2 +FLAGS (\\Seen)");
    assert_eq!(c.ok("SEARCH UNSEEN")[0], "* SEARCH 1 3");
    assert_eq!(c.ok("SEARCH FROM bob")[0], "* SEARCH 2");
    assert_eq!(c.ok("SEARCH BODY QUOKKA")[0], "* SEARCH 2");
    assert_eq!(c.ok("SEARCH SUBJECT \"quarterly REPORT\"")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH LARGER 1000")[0], "* SEARCH 3");
    assert_eq!(c.ok("SEARCH OR FROM ann NOT SEEN")[0], "* SEARCH 1 3");
    assert_eq!(c.ok("UID SEARCH UID 2:*")[0], "* SEARCH 2 3");
    assert_eq!(c.ok("SEARCH 2:3 HEADER Subject big")[0], "* SEARCH 3");
    assert_eq!(c.ok("SEARCH NOT ALL")[0], "* SEARCH");
    // Keys naming messages by number or UID, alone or with others.
    assert_eq!(c.ok("UID SEARCH UID 2:* UNSEEN")[0], "* SEARCH 3");
    assert_eq!(c.ok("UID SEARCH UID 5:*")[0], "* SEARCH 3");
    assert_eq!(c.ok("SEARCH 1,3 NOT 3")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH 2:3 UID 1:2")[0], "* SEARCH 2");
    assert_eq!(c.ok("SEARCH OR 1 3")[0], "* SEARCH 1 3");
    let r = c.ok("UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN");
    assert!(
        r[0].starts_with("* ESEARCH (TAG \"t") && r[0].ends_with("UID MIN 1 MAX 3 COUNT 2 ALL 1,3"),
        "{r:?}"
    );
    c.ok("SEARCH RETURN (SAVE) FROM cy");
    let r = c.ok("FETCH $ (UID)");
    assert_eq!(r[0], "* 3 FETCH (UID 3)");
    // RFC 5182 2.1: with MIN or MAX alone, `$` holds just those messages.
    let fetched = |c: &mut Client| -> Vec<String> {
        let r = c.ok("FETCH $ (UID)");
        r[..r.len() - 1].to_vec()
    };
    c.ok("SEARCH RETURN (SAVE MIN) ALL");
    assert_eq!(fetched(&mut c), ["* 1 FETCH (UID 1)"]);
    c.ok("SEARCH RETURN (SAVE MIN MAX) ALL");
    assert_eq!(fetched(&mut c), ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)"]);
    c.ok("SEARCH RETURN (SAVE MAX COUNT) ALL");
    assert_eq!(fetched(&mut c).len(), 3);
    // A SORT saves its result in sort order; `$` still names every message of it,
    // and a FETCH answers for each once.
    c.ok("SORT RETURN (SAVE) (REVERSE ARRIVAL) UTF-8 ALL");
    assert_eq!(
        fetched(&mut c),
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 2)",
            "* 3 FETCH (UID 3)"
        ]
    );
    let r = c.ok("UID FETCH $ (FLAGS)");
    assert_eq!(r.len(), 4, "{r:?}");
}

/// SEARCH's FROM, TO, CC, BCC and SUBJECT keys answer the same when what they test
/// is kept from an earlier search (the server keeps it by message content, for every
/// session): decoded names, mailboxes without their comments, groups, repeated
/// fields and case folding beyond ASCII.
#[test]
fn header_keys_answer_the_same_from_what_was_kept() {
    let server = start();
    for head in [
        "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\nTo: ann@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n",
        "From: \"Ann (work)\" <ann (c) @ example.org>\r\nCc: team: bob@x.org, cy@y.org;\r\nSubject: one\r\nSubject: two\r\n",
        "From: nobody@example.net\r\nBcc: joerg@example.de\r\nTo: undisclosed-recipients:;\r\n",
    ] {
        server.deliver("alice", "INBOX", &format!("{head}\r\nbody\r\n"));
    }
    let keys = [
        ("SEARCH FROM joerg@example.de", "* SEARCH 1"),
        ("SEARCH CHARSET UTF-8 FROM {5+}\r\nJÖRG", "* SEARCH 1"),
        ("SEARCH CHARSET UTF-8 SUBJECT {7+}\r\ngrüße", "* SEARCH 1"),
        ("SEARCH FROM ann@example.org", "* SEARCH 2"),
        ("SEARCH FROM \"(work)\"", "* SEARCH 2"),
        ("SEARCH TO ann", "* SEARCH 1"),
        ("SEARCH CC cy@y.org", "* SEARCH 2"),
        ("SEARCH CC team", "* SEARCH 2"),
        ("SEARCH BCC JOERG", "* SEARCH 3"),
        ("SEARCH SUBJECT two", "* SEARCH 2"),
        ("SEARCH SUBJECT \"\"", "* SEARCH 1 2"),
        ("SEARCH TO \"\"", "* SEARCH 1 3"),
        ("SEARCH OR FROM nobody TO undisclosed", "* SEARCH 3"),
        ("SEARCH FROM body", "* SEARCH 3"),
        ("SEARCH NOT FROM example", "* SEARCH"),
    ];
    for round in ["first", "again", "another session"] {
        let mut c = Client::login(server.addr, "alice");
        c.ok("SELECT INBOX");
        for (key, want) in keys {
            assert_eq!(c.ok(key)[0], want, "{key} ({round})");
        }
    }
}

#[test]
fn append_with_literals_flags_and_date() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let msg = "Subject: appended\r\n\r\nhello\r\n";
    c.send(
        format!(
            "a APPEND Drafts (\\Draft \\Seen) \"05-Jan-2024 10:00:00 +0100\" {{{}}}\r\n",
            msg.len()
        )
        .as_bytes(),
    );
    assert!(
        c.line().starts_with("+ "),
        "synchronizing literal gets a continuation"
    );
    c.send(format!("{msg}\r\n").as_bytes());
    let r = c.until_tagged("a");
    let drafts = server.store.mailbox("alice", "Drafts").unwrap().unwrap();
    assert_eq!(
        r.last().unwrap(),
        &format!("a OK [APPENDUID {} 1] APPEND completed", drafts.uidvalidity)
    );
    // LITERAL+: no continuation.
    c.send(format!("b APPEND Drafts {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    assert!(c
        .until_tagged("b")
        .last()
        .unwrap()
        .starts_with("b OK [APPENDUID"));
    let (mailbox, records) = server
        .store
        .records(
            &tern_store::Actor {
                name: "alice".into(),
                is_admin: false,
            },
            &drafts.uniqueid,
            false,
        )
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].internaldate, 1_704_445_200);
    assert_eq!(records[0].flags.to_string(), "\\Seen \\Draft");
    assert_eq!(
        server.store.message(&mailbox, &records[0]).unwrap(),
        msg.as_bytes()
    );
    let r = c.cmd("APPEND NoSuchBox {3+}\r\nabc");
    assert!(r.last().unwrap().contains("[TRYCREATE]"), "{r:?}");
}

#[test]
fn copy_and_move_report_copyuid() {
    let server = start();
    for i in 0..3 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let archive = server.store.mailbox("alice", "Archive").unwrap().unwrap();
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("COPY 1:2 Archive");
    assert!(r
        .last()
        .unwrap()
        .contains(&format!("[COPYUID {} 1:2 1:2]", archive.uidvalidity)));
    let r = c.ok("UID MOVE 2 Archive");
    assert!(
        r[0].contains(&format!("[COPYUID {} 2 3]", archive.uidvalidity)),
        "{r:?}"
    );
    assert_eq!(r[1], "* 2 EXPUNGE");
    assert!(c.ok("SEARCH ALL")[0] == "* SEARCH 1 2");
    assert!(c
        .cmd("COPY 1 Nowhere")
        .last()
        .unwrap()
        .contains("[TRYCREATE]"));
    assert_eq!(
        server
            .store
            .mailbox("alice", "Archive")
            .unwrap()
            .unwrap()
            .messages,
        3
    );
    // Runs where the UIDs run, single UIDs where they do not: the two sets still
    // pair up one by one.
    let r = c.ok("UID COPY 1,3 Archive");
    assert!(
        r.last()
            .unwrap()
            .contains(&format!("[COPYUID {} 1,3 4:5]", archive.uidvalidity)),
        "{r:?}"
    );
}

/// Scattered expunges are numbered highest first, each number valid when it is sent
/// (RFC 3501 7.4.1), and the view left holds the survivors in order.
#[test]
fn scattered_expunges_are_numbered_from_the_top() {
    let server = start();
    for i in 1..=7 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("STORE 2,4,5,7 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(
        &r[..4],
        ["* 7 EXPUNGE", "* 5 EXPUNGE", "* 4 EXPUNGE", "* 2 EXPUNGE"],
        "{r:?}"
    );
    assert_eq!(
        c.ok("FETCH 1:* UID")[..3],
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 6)"
        ]
    );
}

#[test]
fn expunge_and_uid_expunge() {
    let server = start();
    for i in 0..4 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UID EXPUNGE 2");
    assert_eq!(r[0], "* 2 EXPUNGE");
    let r = c.ok("EXPUNGE");
    assert_eq!(&r[..2], ["* 2 EXPUNGE", "* 1 EXPUNGE"]);
    assert_eq!(c.ok("FETCH 1 UID")[0], "* 1 FETCH (UID 4)");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("CLOSE");
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );
}

#[test]
fn other_sessions_see_changes_without_wrong_sequence_numbers() {
    let server = start();
    for i in 0..3 {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"),
        );
    }
    let mut a = Client::login(server.addr, "alice");
    let mut b = Client::login(server.addr, "alice");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    // B is in FETCH: no EXPUNGE may be sent, and message 2 is still message 2 for B.
    let r = b.ok("FETCH 2 (UID BODY.PEEK[TEXT])");
    assert!(r.iter().all(|l| !l.contains("EXPUNGE")), "{r:?}");
    assert!(
        r[0].starts_with("* 2 FETCH (UID 2 BODY[TEXT] {8}\r\nbody 1"),
        "{r:?}"
    );
    // At NOOP it learns.
    let r = b.ok("NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    assert_eq!(b.ok("FETCH 2 UID")[0], "* 2 FETCH (UID 3)");
    // A flag change and a new message reach B at its next command.
    a.ok("STORE 1 +FLAGS.SILENT (\\Answered)");
    server.deliver("alice", "INBOX", "Subject: new\r\n\r\nnew\r\n");
    let r = b.ok("NOOP");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered")),
        "{r:?}"
    );
    assert!(r.contains(&"* 3 EXISTS".to_owned()), "{r:?}");
}

#[test]
fn idle_reports_new_mail_at_once() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.send(b"i IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    server.deliver("alice", "INBOX", "Subject: ping\r\n\r\nx\r\n");
    assert_eq!(c.line(), "* 1 EXISTS");
    assert_eq!(c.line(), "* 1 RECENT");
    c.send(b"DONE\r\n");
    assert!(c.until_tagged("i").last().unwrap().starts_with("i OK"));
}

/// Five messages in alice's INBOX, and a QRESYNC client that selected it and logged
/// out: the server, INBOX's UIDVALIDITY and the HIGHESTMODSEQ that client saw.
fn qresync_client_that_left() -> (Server, u32, u64) {
    let server = start();
    for i in 0..5 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let mut c = Client::login(server.addr, "alice");
    c.ok("ENABLE QRESYNC");
    c.ok("SELECT INBOX");
    let seen = server
        .store
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .highest_modseq;
    c.ok("LOGOUT");
    (server, inbox.uidvalidity, seen)
}

#[test]
fn qresync_reconnect_learns_changes_and_vanished() {
    let (server, uidvalidity, before) = qresync_client_that_left();
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("STORE 2 +FLAGS (\\Flagged)");
    other.ok("STORE 4:5 +FLAGS (\\Deleted)");
    other.ok("EXPUNGE");
    let mut c = Client::login(server.addr, "alice");
    c.ok("ENABLE QRESYNC");
    let r = c.ok(&format!(
        "SELECT INBOX (QRESYNC ({uidvalidity} {before} 1:5))"
    ));
    assert!(r.contains(&"* VANISHED (EARLIER) 4:5".to_owned()), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged") && l.contains("MODSEQ")),
        "{r:?}"
    );
    assert!(
        r.iter()
            .all(|l| !l.starts_with("* 1 FETCH") && !l.starts_with("* 3 FETCH")),
        "{r:?}"
    );
}

/// A client that resynchronises from a cache (imaptest's QRESYNC mode is one) replaces
/// its view with the cache at `OK [UIDVALIDITY]`, after the first EXISTS. Replayed
/// here line by line as such a client would: the cache is the UIDs it saw, VANISHED
/// (EARLIER) takes UIDs out of it, EXISTS grows it, and every FETCH must then name a
/// sequence number inside it, with the UID the server holds there. Messages appended
/// since the cache are what would fall past it.
#[test]
fn qresync_select_fits_a_view_restored_from_a_cache() {
    let (server, uidvalidity, saved) = qresync_client_that_left();
    let cache: Vec<u32> = (1..=5).collect();
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("STORE 2:3 +FLAGS (\\Deleted)");
    other.ok("EXPUNGE");
    for i in 5..8 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    other.ok("STORE 1 +FLAGS (\\Flagged)");
    let mut c = Client::login(server.addr, "alice");
    c.ok("ENABLE QRESYNC");
    // No known-UIDs list, as imaptest sends it: VANISHED may name UIDs never seen.
    let r = c.ok(&format!("SELECT INBOX (QRESYNC ({uidvalidity} {saved}))"));
    let mut view: Vec<Option<u32>> = Vec::new();
    let mut fetched = Vec::new();
    for line in &r {
        let words: Vec<&str> = line.split(' ').collect();
        if line.contains("[UIDVALIDITY ") {
            view = cache.iter().map(|&u| Some(u)).collect();
        } else if words.get(2) == Some(&"EXISTS") {
            let n: usize = words[1].parse().unwrap();
            assert!(
                n >= view.len(),
                "EXISTS {n} shrinks a view of {view:?}: {r:?}"
            );
            view.resize(n, None);
        } else if line.starts_with("* VANISHED (EARLIER) ") {
            for part in words[3].split(',') {
                let (a, b) = part.split_once(':').unwrap_or((part, part));
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                view.retain(|u| !matches!(u, Some(u) if (a..=b).contains(u)));
            }
        } else if words.get(2) == Some(&"FETCH") {
            let seq: usize = words[1].parse().unwrap();
            assert!(
                (1..=view.len()).contains(&seq),
                "FETCH {seq} past a view of {}: {r:?}",
                view.len()
            );
            let uid: u32 = words[4].parse().unwrap();
            view[seq - 1] = Some(uid);
            fetched.push(uid);
        }
    }
    assert_eq!(
        view,
        [1, 4, 5, 6, 7, 8].map(Some).to_vec(),
        "the view after SELECT: {r:?}"
    );
    fetched.sort_unstable();
    assert_eq!(fetched, vec![1, 6, 7, 8], "{r:?}");
}

/// RFC 7162 3.2.7/3.2.9: under QRESYNC, EXPUNGE and UID EXPUNGE complete with the
/// mailbox's new HIGHESTMODSEQ; so does any command after which another session's
/// expunges were reported (VANISHED carries no modseq). Never past an expunge the
/// client has not been told of, and never without QRESYNC.
#[test]
fn qresync_expunges_complete_with_the_new_highestmodseq() {
    let server = start();
    for i in 0..6 {
        server.deliver("alice", "INBOX", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let highest = || {
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .highest_modseq
    };
    let mut c = Client::login(server.addr, "alice");
    c.ok("ENABLE QRESYNC");
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert_eq!(r[0], "* VANISHED 1");
    assert!(
        r.last().unwrap().ends_with(&format!(
            " OK [HIGHESTMODSEQ {}] EXPUNGE completed",
            highest()
        )),
        "{r:?}"
    );
    c.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("UID EXPUNGE 2");
    assert!(
        r.last()
            .unwrap()
            .contains(&format!("OK [HIGHESTMODSEQ {}]", highest())),
        "{r:?}"
    );
    // Nothing expunged: nothing to move past, no code.
    let r = c.ok("EXPUNGE");
    assert!(!r.last().unwrap().contains("HIGHESTMODSEQ"), "{r:?}");

    // Another session expunges, then flags a message: a FETCH by number may not
    // report the expunge, but shows the later flag change with its MODSEQ. Its OK then
    // says the client is current only up to below the expunge (RFC 7162 3.2), so a
    // client that loses the connection now asks for the expunge again.
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)");
    other.ok("EXPUNGE");
    let expunged_at = highest();
    other.ok("UID STORE 5 +FLAGS.SILENT (\\Flagged)");
    let r = c.ok("FETCH 1 UID");
    assert!(r.iter().all(|l| !l.contains("VANISHED")), "{r:?}");
    let flagged = r
        .iter()
        .find(|l| l.contains("UID 5") && l.contains("\\Flagged"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        flagged.contains(&format!("MODSEQ ({})", expunged_at + 1)),
        "{r:?}"
    );
    let told = |line: &str| -> u64 {
        let rest = line
            .split("[HIGHESTMODSEQ ")
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        rest.split(']').next().unwrap().parse().unwrap()
    };
    let n = told(r.last().unwrap());
    assert!(
        n < expunged_at && n > 0,
        "{n} against the expunge's {expunged_at}: {r:?}"
    );
    // Still held back over a STORE by number: the same claim, not the STORE's modseq.
    let r = c.ok("STORE 1 +FLAGS (\\Seen)");
    assert_eq!(told(r.last().unwrap()), n, "{r:?}");
    let r = c.ok("NOOP");
    assert_eq!(r[0], "* VANISHED 4");
    assert!(
        r.last()
            .unwrap()
            .contains(&format!("OK [HIGHESTMODSEQ {}]", highest())),
        "{r:?}"
    );

    // MOVE takes messages out as an expunge does (RFC 6851 4.3).
    c.ok("CREATE Elsewhere");
    let r = c.ok("UID MOVE 3 Elsewhere");
    assert!(r.contains(&"* VANISHED 3".to_owned()), "{r:?}");
    assert!(
        r.last()
            .unwrap()
            .contains(&format!("OK [HIGHESTMODSEQ {}]", highest())),
        "{r:?}"
    );

    // Without QRESYNC, EXPUNGE answers as RFC 3501 has it.
    let mut plain = Client::login(server.addr, "alice");
    plain.ok("SELECT INBOX");
    plain.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = plain.ok("EXPUNGE");
    assert_eq!(r[0], "* 1 EXPUNGE");
    assert!(!r.last().unwrap().contains('['), "{r:?}");
}

#[test]
fn list_status_create_rename_delete() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Projects/tern");
    let r = c.ok("LIST \"\" \"*\"");
    assert!(
        r.contains(&"* LIST (\\HasChildren) \"/\" Projects".to_owned())
            || r.contains(&"* LIST (\\HasChildren) \"/\" \"Projects\"".to_owned()),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l.contains("\\Sent") && l.ends_with("\"Sent\"")),
        "{r:?}"
    );
    let r = c.ok("LIST \"\" \"%\"");
    assert!(r.iter().all(|l| !l.contains("Projects/tern")), "{r:?}");
    c.ok("RENAME Projects Work");
    let r = c.ok("LIST \"\" \"Work/*\"");
    assert!(r[0].ends_with("\"Work/tern\""), "{r:?}");
    c.ok("SUBSCRIBE Work/tern");
    assert!(c.ok("LSUB \"\" \"*\"")[0].ends_with("\"Work/tern\""));
    c.ok("DELETE Work/tern");
    assert!(c.cmd("DELETE INBOX").last().unwrap().contains("NO"));
    assert!(c
        .cmd("CREATE Work")
        .last()
        .unwrap()
        .contains("[ALREADYEXISTS]"));
    server.deliver("alice", "Work", "Subject: s\r\n\r\n12345\r\n");
    let r = c.ok("STATUS Work (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)");
    assert!(
        r[0].starts_with("* STATUS \"Work\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1 SIZE 21 HIGHESTMODSEQ "),
        "{r:?}"
    );
    let r = c.ok("LIST \"\" \"W*\" RETURN (STATUS (MESSAGES))");
    assert!(
        r.iter().any(|l| l == "* STATUS \"Work\" (MESSAGES 1)"),
        "{r:?}"
    );
}

#[test]
fn international_mailbox_names_use_modified_utf7() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Entw&APw-rfe");
    assert!(server.store.mailbox("alice", "Entwürfe").unwrap().is_some());
    let r = c.ok("LIST \"\" Entw*");
    assert!(r[0].ends_with("\"Entw&APw-rfe\""), "{r:?}");
    c.ok("ENABLE UTF8=ACCEPT");
    let r = c.ok("LIST \"\" Entw*");
    assert!(r[0].ends_with("\"Entwürfe\""), "{r:?}");
}

#[test]
fn rename_inbox_moves_its_messages() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: a\r\n\r\nx\r\n");
    let mut c = Client::login(server.addr, "alice");
    c.ok("RENAME INBOX Old");
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );
    assert_eq!(
        server
            .store
            .mailbox("alice", "Old")
            .unwrap()
            .unwrap()
            .messages,
        1
    );
}

#[test]
fn one_user_cannot_reach_another_users_mail() {
    let server = start();
    server.deliver("bob", "INBOX", "Subject: secret\r\n\r\nbob's\r\n");
    server.store.create_mailbox("bob", "Private", None).unwrap();
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("LIST \"\" \"*\"");
    assert!(r.iter().all(|l| !l.contains("Private")), "{r:?}");
    for name in [
        "bob/INBOX",
        "../bob/INBOX",
        "/bob/INBOX",
        "~bob/INBOX",
        "user/bob",
        "Other Users/bob",
        "#mh/bob",
        "bob",
    ] {
        let r = c.cmd(&format!("SELECT \"{name}\""));
        assert_eq!(
            tagged_status(&r),
            if name.starts_with('/') || name.starts_with("..") {
                tagged_status(&r)
            } else {
                "NO"
            },
            "{name}: {r:?}"
        );
        assert_ne!(tagged_status(&r), "OK", "{name}: {r:?}");
        assert!(
            c.cmd(&format!("STATUS \"{name}\" (MESSAGES)"))
                .last()
                .unwrap()
                .split(' ')
                .nth(1)
                != Some("OK")
        );
    }
    c.ok("SELECT INBOX");
    assert_ne!(tagged_status(&c.cmd("COPY 1:* \"bob/INBOX\"")), "OK");
    assert_eq!(
        server
            .store
            .mailbox("bob", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        1
    );
}

#[test]
fn hostile_input_gets_protocol_errors_and_the_session_survives() {
    let server = start_with(tern_imap::ImapConfig {
        max_line: 1024,
        max_literal: 4096,
        auth_failure_delay: std::time::Duration::from_millis(1),
        ..tern_imap::ImapConfig::default()
    });
    let mut c = Client::login(server.addr, "alice");
    assert_eq!(tagged_status(&c.cmd("FROB")), "BAD");
    c.send(&[b'x'; 5000]);
    c.send(b"\r\n");
    assert!(c.line().contains("BAD"));
    c.send(b"a APPEND INBOX {100000}\r\n");
    assert!(c.line().starts_with("a NO [TOOBIG]"));
    c.send(b"b APPEND INBOX {5000+}\r\n");
    c.send(&[b'z'; 5000]);
    c.send(b"\r\n");
    assert!(c.line().starts_with("b NO [TOOBIG]"));
    c.send(b"\x00\xff\xfe garbage\r\n");
    assert!(c.line().contains("BAD"));
    assert_eq!(tagged_status(&c.ok("NOOP")), "OK");
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );
}

#[test]
fn quota_roots_report_usage_and_limits() {
    let server = start();
    server
        .store
        .set_quota(
            "alice",
            tern_store::Quota {
                storage: Some(10 * 1024 * 1024),
                messages: Some(100),
            },
        )
        .unwrap();
    server.deliver(
        "alice",
        "INBOX",
        &format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(3000)),
    );
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("GETQUOTAROOT INBOX");
    assert_eq!(r[0], "* QUOTAROOT \"INBOX\" \"\"");
    assert_eq!(r[1], "* QUOTA \"\" (STORAGE 3 10240 MESSAGE 1 100)");
    assert_eq!(c.ok("GETQUOTA \"\"")[0], r[1]);
    assert!(c
        .cmd("SETQUOTA \"\" (STORAGE 1)")
        .last()
        .unwrap()
        .contains("[NOPERM]"));
    server
        .store
        .set_quota(
            "alice",
            tern_store::Quota {
                storage: Some(1024),
                messages: None,
            },
        )
        .unwrap();
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(2000));
    let r = c.cmd(&format!("APPEND INBOX {{{}+}}\r\n{big}", big.len()));
    assert!(r.last().unwrap().contains("NO [OVERQUOTA]"), "{r:?}");
}

#[test]
fn sort_and_thread() {
    let server = start();
    let msgs = [
        (
            "<a@x>",
            "",
            "Mon, 1 Jan 2024 10:00:00 +0000",
            "Zebra plans",
            "zed@x",
            300,
        ),
        (
            "<b@x>",
            "<a@x>",
            "Mon, 1 Jan 2024 11:00:00 +0000",
            "Re: Zebra plans",
            "amy@x",
            100,
        ),
        (
            "<c@x>",
            "",
            "Sun, 31 Dec 2023 09:00:00 +0000",
            "apples",
            "bob@x",
            200,
        ),
        (
            "<d@x>",
            "<a@x> <b@x>",
            "Mon, 1 Jan 2024 12:00:00 +0000",
            "Re: Re: Zebra plans",
            "cat@x",
            50,
        ),
    ];
    for (id, refs, date, subject, from, pad) in msgs {
        let refs = if refs.is_empty() {
            String::new()
        } else {
            format!("References: {refs}\r\n")
        };
        server.deliver(
            "alice",
            "INBOX",
            &format!("Message-ID: {id}\r\n{refs}Date: {date}\r\nSubject: {subject}\r\nFrom: {from}\r\n\r\n{}\r\n", "p".repeat(pad)),
        );
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SORT (SUBJECT) UTF-8 ALL")[0], "* SORT 3 1 2 4");
    assert_eq!(c.ok("SORT (DATE) UTF-8 ALL")[0], "* SORT 3 1 2 4");
    assert_eq!(c.ok("SORT (REVERSE SIZE) UTF-8 ALL")[0], "* SORT 1 3 2 4");
    assert_eq!(
        c.ok("UID SORT (FROM) UTF-8 NOT FROM bob")[0],
        "* SORT 2 4 1"
    );
    assert_eq!(
        c.ok("THREAD REFERENCES UTF-8 ALL")[0],
        "* THREAD (3)(1 2 4)"
    );
    assert_eq!(
        c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")[0],
        "* THREAD (3)(1 (2)(4))"
    );
}

#[test]
fn body_search_uses_the_index_and_falls_back_to_the_message() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: a\r\n\r\nThe QUOKKA hops\r\n");
    server.deliver(
        "alice",
        "INBOX",
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nno animals\r\n",
    );
    server.deliver("alice", "INBOX", "Subject: c\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nqu=\r\nokka split by a soft break\r\n");
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SEARCH BODY quokka")[0], "* SEARCH 1 3");
    assert_eq!(
        c.ok("SEARCH TEXT \"gr\u{fc}\u{df}e\"")[0],
        "* SEARCH 2",
        "decoded header words"
    );
    assert_eq!(
        c.ok("SEARCH BODY ho")[0],
        "* SEARCH 1",
        "two letters: answered by reading the messages"
    );
    assert_eq!(c.ok("SEARCH NOT BODY quokka")[0], "* SEARCH 2");
}

#[test]
fn acl_grants_shared_access_through_other_users() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: shared\r\n\r\nfor bob\r\n");
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    assert_ne!(
        tagged_status(&bob.cmd("SELECT \"Other Users/alice/INBOX\"")),
        "OK"
    );
    assert!(bob
        .ok("LIST \"\" \"*\"")
        .iter()
        .all(|l| !l.contains("alice")));

    alice.ok("SETACL INBOX bob lr");
    let r = alice.ok("GETACL INBOX");
    assert_eq!(r[0], "* ACL \"INBOX\" alice lrswipkxtea bob lr");
    assert_eq!(
        alice.ok("MYRIGHTS INBOX")[0],
        "* MYRIGHTS \"INBOX\" lrswipkxtea"
    );

    let r = bob.ok("LIST \"\" \"*\"");
    assert!(
        r.iter().any(|l| l.ends_with("\"Other Users/alice/INBOX\"")),
        "{r:?}"
    );
    assert!(bob.ok("NAMESPACE")[0].contains("\"Other Users/\""));
    let r = bob.ok("SELECT \"Other Users/alice/INBOX\"");
    assert!(
        r.last().unwrap().contains("[READ-ONLY]"),
        "no s, w, t, e or i: read-only: {r:?}"
    );
    let r = bob.ok("FETCH 1 BODY.PEEK[TEXT]");
    assert!(r[0].contains("for bob"));
    assert_eq!(
        bob.ok("MYRIGHTS \"Other Users/alice/INBOX\"")[0],
        "* MYRIGHTS \"Other Users/alice/INBOX\" lr"
    );
    assert!(bob
        .cmd("GETACL \"Other Users/alice/INBOX\"")
        .last()
        .unwrap()
        .contains("[NOPERM]"));
    assert!(bob
        .cmd("SETACL \"Other Users/alice/INBOX\" bob +a")
        .last()
        .unwrap()
        .contains("NO"));
    assert!(bob
        .cmd("APPEND \"Other Users/alice/INBOX\" {4+}\r\nspam")
        .last()
        .unwrap()
        .contains("NO"));
    bob.ok("UNSELECT");

    alice.ok("SETACL INBOX bob +si");
    let r = bob.ok("SELECT \"Other Users/alice/INBOX\"");
    assert!(r.last().unwrap().contains("[READ-WRITE]"));
    bob.ok("STORE 1 +FLAGS (\\Seen)");
    assert!(bob
        .cmd("STORE 1 +FLAGS (\\Flagged)")
        .last()
        .unwrap()
        .contains("[NOPERM]"));
    assert!(bob
        .cmd("STORE 1 +FLAGS (\\Deleted)")
        .last()
        .unwrap()
        .contains("[NOPERM]"));
    bob.ok("UNSELECT");

    // Seen (l) but not readable (no r): SELECT says so rather than "no such mailbox".
    alice.ok("SETACL INBOX bob l");
    let r = bob.cmd("SELECT \"Other Users/alice/INBOX\"");
    assert!(r.last().unwrap().contains("NO [NOPERM]"), "{r:?}");
    let r = bob.cmd("FETCH 1 FLAGS");
    assert!(
        r.last().unwrap().contains(" BAD "),
        "nothing is selected: {r:?}"
    );

    alice.ok("DELETEACL INBOX bob");
    assert!(bob
        .cmd("SELECT \"Other Users/alice/INBOX\"")
        .last()
        .unwrap()
        .contains("[NONEXISTENT]"));
    assert!(bob
        .cmd("STATUS \"Other Users/alice/INBOX\" (MESSAGES)")
        .last()
        .unwrap()
        .contains("NO"));
}
