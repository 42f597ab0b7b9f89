//! The extensions beyond IMAP4rev1's core that clients page, sort and file with, each
//! driven over a real socket with the RFC's own protocol text.

mod common;

use common::*;

fn tagged_status(lines: &[String]) -> &str {
    lines.last().unwrap().split(' ').nth(1).unwrap()
}

/// The one `* ESEARCH` line of an answer, without its tag correlator.
fn esearch(lines: &[String]) -> String {
    let l = lines
        .iter()
        .find(|l| l.starts_with("* ESEARCH"))
        .unwrap_or_else(|| panic!("no ESEARCH in {lines:?}"));
    let rest = l.split_once(") ").map(|x| x.1).unwrap_or("");
    rest.to_owned()
}

/// Five messages whose sizes sort them 3, 1, 5, 2, 4 (the body lengths differ).
fn five_messages(server: &Server) {
    for (i, pad) in [(1, 20), (2, 40), (3, 0), (4, 50), (5, 30)] {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\n\r\n{}\r\n", "x".repeat(pad)),
        );
    }
}

/// RFC 5267 3.2 (ESORT): SORT answers in ESEARCH form, read in sort order.
#[test]
fn esort_reads_the_sorted_order() {
    let server = start();
    five_messages(&server);
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(
        caps[0].contains(" ESORT") && caps[0].contains(" PARTIAL"),
        "{caps:?}"
    );
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SORT (SIZE) US-ASCII ALL")[0], "* SORT 3 1 5 2 4");
    let r = c.ok("SORT RETURN (MIN MAX COUNT ALL) (SIZE) US-ASCII ALL");
    assert_eq!(esearch(&r), "MIN 3 MAX 4 COUNT 5 ALL 3,1,5,2,4");
    let r = c.ok("UID SORT RETURN (ALL) (REVERSE SIZE) US-ASCII 2:5");
    assert_eq!(esearch(&r), "UID ALL 4,2,5,3");
    // An empty result still answers COUNT, and nothing else.
    let r = c.ok("SORT RETURN (MIN COUNT) (SIZE) US-ASCII DELETED");
    assert_eq!(esearch(&r), "COUNT 0");
    // The tag correlator names the command.
    c.send(b"x7 SORT RETURN (COUNT) (ARRIVAL) UTF-8 ALL\r\n");
    let r = c.until_tagged("x7");
    assert_eq!(r[0], "* ESEARCH (TAG \"x7\") COUNT 5");
}

/// RFC 9394 3.1: PARTIAL pages through results from either end; a window beyond
/// them answers NIL; half-negative or single-number ranges are BAD.
#[test]
fn partial_pages_search_and_sort_results() {
    let server = start();
    five_messages(&server);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("STORE 3 +FLAGS (\\Deleted)");
    let cases = [
        ("SEARCH RETURN (PARTIAL 1:2) UNDELETED", "PARTIAL (1:2 1:2)"),
        (
            "SEARCH RETURN (PARTIAL 4:2) UNDELETED",
            "PARTIAL (2:4 2,4:5)",
        ),
        (
            "SEARCH RETURN (PARTIAL -1:-2) UNDELETED",
            "PARTIAL (-1:-2 4:5)",
        ),
        ("SEARCH RETURN (PARTIAL 5:9) UNDELETED", "PARTIAL (5:9 NIL)"),
        (
            "SEARCH RETURN (COUNT PARTIAL -3:-3) UNDELETED",
            "COUNT 4 PARTIAL (-3:-3 2)",
        ),
        ("UID SEARCH RETURN (PARTIAL 3:3) ALL", "UID PARTIAL (3:3 3)"),
        (
            "SORT RETURN (PARTIAL 1:3) (SIZE) US-ASCII ALL",
            "PARTIAL (1:3 3,1,5)",
        ),
        (
            "SORT RETURN (PARTIAL -1:-2) (SIZE) US-ASCII ALL",
            "PARTIAL (-1:-2 2,4)",
        ),
    ];
    for (command, want) in cases {
        assert_eq!(esearch(&c.ok(command)), want, "{command}");
    }
    for command in [
        "SEARCH RETURN (PARTIAL 1) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL -1:2) ALL",
        "SEARCH RETURN (ALL PARTIAL 1:2) ALL",
        "SORT RETURN (PARTIAL 0:2) (SIZE) US-ASCII ALL",
    ] {
        assert_eq!(tagged_status(&c.cmd(command)), "BAD", "{command}");
    }
}

/// RFC 9394 3.2: a FETCH with a PARTIAL modifier answers for that window of the set.
#[test]
fn partial_fetch_answers_a_window_of_the_set() {
    let server = start();
    five_messages(&server);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)");
    let uids: Vec<&str> = r
        .iter()
        .filter(|l| l.contains(" FETCH ("))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(uids, ["4", "5"], "{r:?}");
    let r = c.ok("FETCH 2:5 (UID) (PARTIAL 2:3)");
    assert_eq!(
        r[..2],
        [
            "* 3 FETCH (UID 3)".to_owned(),
            "* 4 FETCH (UID 4)".to_owned()
        ]
    );
    assert_eq!(c.ok("FETCH 1:* (UID) (PARTIAL 6:9)").len(), 1);
}

/// A literal the way LITERAL+ clients send it.
fn lit(text: &str) -> String {
    format!("{{{}+}}\r\n{text}", text.len())
}

fn bodies(c: &mut Client, mailbox: &str) -> Vec<String> {
    c.ok(&format!("SELECT {mailbox}"));
    let r = c.ok("FETCH 1:* (BODY.PEEK[])");
    r.iter()
        .filter(|l| l.contains(" FETCH ("))
        .map(|l| {
            let start = l.find("}\r\n").unwrap() + 3;
            l[start..l.len() - 1].to_owned()
        })
        .collect()
}

/// RFC 3502: several messages in one APPEND, each with its own flags and date, under
/// consecutive UIDs reported by one APPENDUID; if one cannot be stored, none is.
#[test]
fn multiappend_stores_all_or_nothing() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(
        caps[0].contains(" MULTIAPPEND") && caps[0].contains(" CATENATE"),
        "{caps:?}"
    );
    let (a, b) = ("Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n2\r\n");
    let r = c.ok(&format!(
        "APPEND INBOX (\\Seen) {} \"01-Jan-2020 10:00:00 +0000\" {}",
        lit(a),
        lit(b)
    ));
    let code = r.last().unwrap();
    assert!(
        code.contains("[APPENDUID ") && code.contains(" 1:2]"),
        "{code}"
    );
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1:2 (FLAGS INTERNALDATE)");
    assert!(r[0].contains("\\Seen") && !r[1].contains("\\Seen"), "{r:?}");
    assert!(r[1].contains("01-Jan-2020 10:00:00 +0000"), "{r:?}");
    // Quota for three more messages in all, asked for four: none is stored.
    server
        .store
        .set_quota(
            "alice",
            tern_store::Quota {
                storage: None,
                messages: Some(5),
            },
        )
        .unwrap();
    let r = c.cmd(&format!(
        "APPEND INBOX {} {} {} {}",
        lit(a),
        lit(b),
        lit(a),
        lit(b)
    ));
    assert!(r.last().unwrap().contains("NO [OVERQUOTA]"), "{r:?}");
    // An empty second message refuses the batch too.
    let r = c.cmd(&format!("APPEND INBOX {} {{0+}}\r\n", lit(a)));
    assert_eq!(tagged_status(&r), "NO", "{r:?}");
    let r = c.ok("STATUS INBOX (MESSAGES UIDNEXT)");
    assert!(r[0].contains("MESSAGES 2 UIDNEXT 3"), "{r:?}");
    // And a batch that fits goes in whole.
    let r = c.ok(&format!("APPEND INBOX {} {} {}", lit(a), lit(b), lit(a)));
    assert!(r.last().unwrap().contains(" 3:5]"), "{r:?}");
}

/// RFC 6855 4 (RFC 9755): a server advertising UTF8=ACCEPT takes APPEND's
/// `UTF8 (literal8)`, as Python's imaplib and Horde send every APPEND once they have
/// enabled it, in CATENATE too; the message is stored as sent, UTF-8 header and all.
#[test]
fn append_takes_the_utf8_literal() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains(" UTF8=ACCEPT"), "{caps:?}");
    let utf8 = |text: &str| format!("UTF8 (~{{{}+}}\r\n{text})", text.len());
    let first = "From: jos\u{e9}@example.com\r\nSubject: caf\u{e9}\r\n\r\nbody\r\n";
    // Before ENABLE, as after: a client that sends it is not refused.
    let r = c.ok(&format!("APPEND INBOX (\\Seen) {}", utf8(first)));
    assert!(r.last().unwrap().contains("[APPENDUID "), "{r:?}");
    c.ok("ENABLE UTF8=ACCEPT");
    let second = "Subject: \u{e8}re\r\n\r\nsecond\r\n";
    c.ok(&format!(
        "APPEND INBOX \"1-Jan-2025 10:00:00 +0000\" {}",
        utf8(second)
    ));
    c.ok(&format!(
        "APPEND INBOX CATENATE ({} TEXT {})",
        utf8("Subject: \u{fc}ber\r\n\r\n"),
        lit("joined\r\n")
    ));
    let third = "Subject: \u{fc}ber\r\n\r\njoined\r\n";
    assert_eq!(bodies(&mut c, "INBOX"), [first, second, third]);
    let r = c.ok("FETCH 1 FLAGS");
    assert!(r[0].contains("\\Seen"), "{r:?}");
    // Malformed: no parentheses, or a quoted string where the literal goes.
    for bad in [
        "APPEND INBOX UTF8 ~{2+}\r\nhi",
        "APPEND INBOX UTF8 (\"hi\")",
    ] {
        let r = c.cmd(bad);
        assert_eq!(tagged_status(&r), "BAD", "{bad}: {r:?}");
    }
    c.ok("NOOP");
}

/// RFC 4469: CATENATE joins text with parts of stored messages named by IMAP URLs;
/// a URL that names nothing readable is `NO [BADURL]` and stores nothing.
#[test]
fn catenate_joins_text_and_stored_parts() {
    let server = start();
    let original = "From: a@example.com\r\nSubject: orig\r\n\r\nHello world body\r\n";
    let uid = server.deliver("alice", "INBOX", original);
    let uidvalidity = server
        .store
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .uidvalidity;
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Replies");
    let url = |rest: &str| format!("/INBOX;UIDVALIDITY={uidvalidity}/;UID={uid}{rest}");
    c.ok(&format!(
        "APPEND Replies (\\Draft) CATENATE (URL \"{}\" TEXT {})",
        url("/;SECTION=HEADER"),
        lit("reply\r\n")
    ));
    c.ok(&format!(
        "APPEND Replies CATENATE (TEXT {} URL \"{}\" TEXT {})",
        lit("From: new@example.com\r\n\r\n"),
        url("/;SECTION=TEXT/;PARTIAL=6.5"),
        lit("\r\n")
    ));
    // A relative URL without UIDVALIDITY, and an absolute one naming this server.
    c.ok(&format!(
        "APPEND Replies CATENATE (URL \"/INBOX/;UID={uid}\") CATENATE (URL \"imap://alice@localhost/INBOX/;UID={uid}/;SECTION=1\")"
    ));
    let got = bodies(&mut c, "Replies");
    assert_eq!(
        got,
        [
            "From: a@example.com\r\nSubject: orig\r\n\r\nreply\r\n".to_owned(),
            "From: new@example.com\r\n\r\nworld\r\n".to_owned(),
            original.to_owned(),
            "Hello world body\r\n".to_owned(),
        ]
    );
    // Stale UIDVALIDITY, a missing UID, a missing part, another server, another user,
    // a mailbox the user cannot see: BADURL, and nothing stored.
    for bad in [
        format!("/INBOX;UIDVALIDITY={}/;UID={uid}", uidvalidity + 1),
        format!("/INBOX/;UID={}", uid + 5),
        format!("/INBOX/;UID={uid}/;SECTION=3"),
        format!("imap://alice@elsewhere.example/INBOX/;UID={uid}"),
        format!("imap://bob@localhost/INBOX/;UID={uid}"),
        format!("/Other Users/bob/INBOX/;UID={uid}"),
        "/INBOX?SUBJECT%20x".to_owned(),
    ] {
        let r = c.cmd(&format!(
            "APPEND Replies CATENATE (TEXT {} URL \"{bad}\")",
            lit("x: y\r\n\r\n")
        ));
        assert!(r.last().unwrap().contains("NO [BADURL "), "{bad}: {r:?}");
    }
    let r = c.ok("STATUS Replies (MESSAGES)");
    assert!(r[0].contains("MESSAGES 4"), "{r:?}");
    // A missing target mailbox is TRYCREATE, whatever its URLs.
    let r = c.cmd(&format!(
        "APPEND Nowhere CATENATE (URL \"/INBOX/;UID={uid}\")"
    ));
    assert!(r.last().unwrap().contains("NO [TRYCREATE]"), "{r:?}");
    // MULTIAPPEND with one bad URL stores none of the batch.
    let r = c.cmd(&format!(
        "APPEND Replies {} CATENATE (URL \"/INBOX/;UID=999\")",
        lit("Subject: ok\r\n\r\nx\r\n")
    ));
    assert!(r.last().unwrap().contains("NO [BADURL "), "{r:?}");
    let r = c.ok("STATUS Replies (MESSAGES)");
    assert!(r[0].contains("MESSAGES 4"), "{r:?}");
}

/// RFC 5267 4: a search kept up to date reports messages entering and leaving its
/// result, from this session's changes and from others', until CANCELUPDATE.
#[test]
fn search_context_reports_additions_and_removals() {
    let server = start();
    for i in 1..=5 {
        server.deliver("alice", "INBOX", &format!("Subject: s{i}\r\n\r\nbody\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains(" CONTEXT=SEARCH") && caps[0].contains(" CONTEXT=SORT"));
    c.ok("SELECT INBOX");
    c.ok("STORE 1,2 +FLAGS.SILENT (\\Seen)");
    c.send(b"S1 SEARCH RETURN (UPDATE ALL) SEEN\r\n");
    assert_eq!(c.until_tagged("S1")[0], "* ESEARCH (TAG \"S1\") ALL 1:2");
    let r = c.ok("STORE 4:5 +FLAGS.SILENT (\\Seen)");
    assert!(
        r.contains(&"* ESEARCH (TAG \"S1\") ADDTO (3 4:5)".to_owned()),
        "{r:?}"
    );
    let r = c.ok("STORE 1,4 -FLAGS.SILENT (\\Seen)");
    assert!(
        r.contains(&"* ESEARCH (TAG \"S1\") REMOVEFROM (1 1,4)".to_owned()),
        "{r:?}"
    );
    // Another session expunges message 2: the removal names it by the number this
    // session knew, before the EXPUNGE that renumbers.
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    other.ok("EXPUNGE");
    // And delivers a seen message.
    let r = other.ok(&format!(
        "APPEND INBOX (\\Seen) {}",
        lit("Subject: new\r\n\r\nx\r\n")
    ));
    assert!(r.last().unwrap().contains("APPENDUID"), "{r:?}");
    let r = c.ok("NOOP");
    let removal = r
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"S1\") REMOVEFROM (1 2)");
    let expunge = r.iter().position(|l| l == "* 2 EXPUNGE");
    let exists = r.iter().position(|l| l == "* 5 EXISTS");
    let addition = r
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"S1\") ADDTO (2 5)");
    assert!(
        removal < expunge && expunge < exists && exists < addition && removal.is_some(),
        "{r:?}"
    );
    // A UID SORT context reports positions in its sort order.
    c.send(b"S2 UID SORT RETURN (UPDATE) (REVERSE ARRIVAL) US-ASCII UNSEEN\r\n");
    assert_eq!(c.until_tagged("S2")[0], "* ESEARCH (TAG \"S2\") UID");
    let r = c.ok("STORE 1 +FLAGS.SILENT (\\Seen)");
    // Equal arrival times keep mailbox order, so UID 1 is first.
    assert!(
        r.contains(&"* ESEARCH (TAG \"S2\") UID REMOVEFROM (1 1)".to_owned()),
        "{r:?}"
    );
    // Cancelled: no more updates for S1; an unknown tag is BAD.
    c.ok("CANCELUPDATE \"S1\"");
    let r = c.ok("STORE 3 +FLAGS.SILENT (\\Seen)");
    assert!(!r.iter().any(|l| l.contains("\"S1\"")), "{r:?}");
    assert!(
        r.iter().any(|l| l.contains("\"S2\") UID REMOVEFROM")),
        "{r:?}"
    );
    assert_eq!(tagged_status(&c.cmd("CANCELUPDATE \"S1\"")), "BAD");
    // Contexts end with the selection.
    c.ok("SELECT INBOX");
    assert_eq!(tagged_status(&c.cmd("CANCELUPDATE \"S2\"")), "BAD");
}

/// RFC 4467: GENURLAUTH signs a URL to the user's message; URLFETCH gives its content
/// to those its access names (to others, and once RESETKEY ran, NIL); CATENATE takes
/// signed URLs too.
#[test]
fn urlauth_grants_fetching_until_the_key_is_reset() {
    let server = start();
    let message = "Subject: shared\r\n\r\nthe body\r\n";
    let uid = server.deliver("alice", "INBOX", message);
    let mut alice = Client::login(server.addr, "alice");
    let caps = alice.ok("CAPABILITY");
    assert!(caps[0].contains(" URLAUTH"), "{caps:?}");
    let rump = |access: &str| format!("imap://alice@localhost/INBOX/;UID={uid};URLAUTH={access}");
    let for_bob = signed(&alice.ok(&format!("GENURLAUTH \"{}\" INTERNAL", rump("user+bob"))));
    assert!(for_bob.starts_with(&rump("user+bob")) && for_bob.contains(":INTERNAL:"));
    let for_all = signed(&alice.ok(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid}/;SECTION=TEXT;URLAUTH=authuser\" INTERNAL"
    )));
    let mut bob = Client::login(server.addr, "bob");
    let r = bob.ok(&format!("URLFETCH \"{for_bob}\" \"{for_all}\""));
    assert_eq!(
        r[0],
        format!(
            // (The client's line reader drops the final CRLF, here the literal's.)
            "* URLFETCH \"{for_bob}\" {{{}}}\r\n{message} \"{for_all}\" {{10}}\r\nthe body",
            message.len()
        )
    );
    // Bob's URL is not Alice's to fetch; a changed URL or token fetches nothing.
    let r = alice.ok(&format!("URLFETCH \"{for_bob}\""));
    assert!(r[0].ends_with(" NIL"), "{r:?}");
    let forged = for_bob.replace(&format!("UID={uid}"), &format!("UID={}", uid + 1));
    let mut tampered = for_bob.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    for url in [forged, tampered] {
        let r = bob.ok(&format!("URLFETCH \"{url}\""));
        assert!(r[0].ends_with(" NIL"), "{r:?}");
    }
    // A signed URL in CATENATE.
    alice.ok("CREATE Copies");
    let r = bob.cmd(&format!("APPEND INBOX CATENATE (URL \"{for_bob}\")"));
    assert!(r.last().unwrap().contains("OK [APPENDUID"), "{r:?}");
    // Someone else's URL cannot be signed; nor can a URL without access.
    let r = bob.cmd(&format!("GENURLAUTH \"{}\" INTERNAL", rump("anonymous")));
    assert_eq!(tagged_status(&r), "BAD", "{r:?}");
    let r = alice.cmd(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid}\" INTERNAL"
    ));
    assert_eq!(tagged_status(&r), "BAD", "{r:?}");
    // RESETKEY: every URL signed before fetches nothing, in a session already open too.
    alice.ok("RESETKEY INBOX");
    let r = bob.ok(&format!("URLFETCH \"{for_bob}\" \"{for_all}\""));
    assert_eq!(
        r[0],
        format!("* URLFETCH \"{for_bob}\" NIL \"{for_all}\" NIL")
    );
    // An expired URL fetches nothing.
    let old = signed(&alice.ok(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid};EXPIRE=2020-01-01T00:00:00Z;URLAUTH=anonymous\" INTERNAL"
    )));
    let r = bob.ok(&format!("URLFETCH \"{old}\""));
    assert!(r[0].ends_with(" NIL"), "{r:?}");
}

/// Reads unsolicited lines until one satisfies `done` (the client sends nothing).
fn unsolicited_until(c: &mut Client, done: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let l = c.line();
        let stop = done(&l);
        lines.push(l);
        if stop {
            return lines;
        }
    }
}

/// RFC 5465: after NOTIFY SET, changes made by other sessions reach the client as they
/// happen, with no command of its own: STATUS for other mailboxes, LIST for names and
/// subscriptions, EXISTS and the asked-for FETCH items for the selected mailbox.
#[test]
fn notify_pushes_events_as_they_happen() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Lists");
    c.ok("APPEND Lists {11+}\r\nSubject: x\r\n");
    c.ok("SELECT INBOX");
    let uidvalidity = server
        .store
        .mailbox("alice", "Lists")
        .unwrap()
        .unwrap()
        .uidvalidity;
    // Unsupported events are named.
    let r = c.cmd("NOTIFY SET (PERSONAL (AnnotationChange))");
    assert!(r.last().unwrap().contains("NO [BADEVENT ("), "{r:?}");
    let r = c.ok(
        "NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge)) \
         (MAILBOXES Lists (MessageNew MessageExpunge)) (PERSONAL (MailboxName SubscriptionChange))",
    );
    assert_eq!(
        r[0],
        format!("* STATUS \"Lists\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {uidvalidity})")
    );
    let mut other = Client::login(server.addr, "alice");
    other.ok("APPEND Lists {11+}\r\nSubject: y\r\n");
    let got = unsolicited_until(&mut c, |l| l.starts_with("* STATUS"));
    assert_eq!(
        got.last().unwrap(),
        &format!("* STATUS \"Lists\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {uidvalidity})")
    );
    other.ok("CREATE Projects");
    let got = unsolicited_until(&mut c, |l| l.starts_with("* LIST"));
    assert_eq!(got.last().unwrap(), "* LIST () \"/\" \"Projects\"");
    other.ok("RENAME Projects Work");
    let got = unsolicited_until(&mut c, |l| l.starts_with("* LIST"));
    assert_eq!(
        got.last().unwrap(),
        "* LIST () \"/\" \"Work\" (\"OLDNAME\" (\"Projects\"))"
    );
    other.ok("SUBSCRIBE Work");
    let got = unsolicited_until(&mut c, |l| l.starts_with("* LIST"));
    assert_eq!(got.last().unwrap(), "* LIST (\\Subscribed) \"/\" \"Work\"");
    other.ok("DELETE Work");
    let got = unsolicited_until(&mut c, |l| l.contains("\\NonExistent"));
    assert_eq!(got.last().unwrap(), "* LIST (\\NonExistent) \"/\" \"Work\"");
    // The selected mailbox: the new message announced with the FETCH items asked for.
    other.ok("APPEND INBOX (\\Flagged) {11+}\r\nSubject: z\r\n");
    let got = unsolicited_until(&mut c, |l| l.contains(" FETCH ("));
    assert!(got.contains(&"* 1 EXISTS".to_owned()), "{got:?}");
    assert_eq!(
        got.last().unwrap(),
        "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
    );
    // NOTIFY NONE: nothing more.
    c.ok("NOTIFY NONE");
    other.ok("APPEND Lists {11+}\r\nSubject: w\r\n");
    let r = c.ok("NOOP");
    assert!(!r.iter().any(|l| l.starts_with("* STATUS")), "{r:?}");
}

/// RFC 5465 5.2: MessageNew's FETCH items come with every new message of the selected
/// mailbox, also when a command's own answer announces it (here the session's own
/// APPEND) rather than the notifier between commands.
#[test]
fn notify_message_new_fetch_follows_a_command_s_exists() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Watched");
    c.ok("SELECT Watched");
    c.ok("APPEND Watched {12+}\r\nSubject: a\r\n");
    c.ok("NOTIFY SET (SELECTED (MessageNew (UID) MessageExpunge))");
    let r = c.ok("APPEND Watched (\\Seen) {12+}\r\nSubject: b\r\n");
    let exists = r.iter().position(|l| l == "* 2 EXISTS");
    let fetch = r.iter().position(|l| l == "* 2 FETCH (UID 2)");
    assert!(exists.is_some() && fetch > exists, "{r:?}");
    // Said once: the next command repeats nothing.
    let r = c.ok("NOOP");
    assert_eq!(r.len(), 1, "{r:?}");
}

/// RFC 8474: MAILBOXID survives a rename and comes with SELECT, STATUS and CREATE;
/// EMAILID is the same for every copy of a message and finds it with SEARCH.
#[test]
fn object_ids_name_mailboxes_and_messages() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: one\r\n\r\nbody\r\n");
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("CREATE Projects");
    let code = r.last().unwrap();
    let id = code
        .split("[MAILBOXID (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    c.ok("RENAME Projects Work");
    let r = c.ok("STATUS Work (MAILBOXID MESSAGES)");
    assert_eq!(
        r[0],
        format!("* STATUS \"Work\" (MAILBOXID ({id}) MESSAGES 0)")
    );
    let r = c.ok("SELECT Work");
    assert!(r.contains(&format!("* OK [MAILBOXID ({id})] Ok")), "{r:?}");
    c.ok("SELECT INBOX");
    c.ok("COPY 1 Work");
    let r = c.ok("FETCH 1 (EMAILID THREADID)");
    let emailid = r[0]
        .split("EMAILID (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    assert!(r[0].ends_with("THREADID NIL)"), "{r:?}");
    c.ok("SELECT Work");
    let r = c.ok("FETCH 1 (EMAILID)");
    assert!(r[0].contains(&format!("EMAILID ({emailid})")), "{r:?}");
    assert_eq!(c.ok(&format!("SEARCH EMAILID {emailid}"))[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH EMAILID Mnothing")[0], "* SEARCH");
    assert_eq!(tagged_status(&c.cmd("SEARCH EMAILID a.b")), "BAD");
}

/// RFC 8970: PREVIEW gives the start of the readable text.
#[test]
fn preview_shows_the_start_of_the_text() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "Subject: p\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee you   at\r\nnoon.\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (PREVIEW)");
    assert_eq!(r[0], "* 1 FETCH (PREVIEW \"See you at noon.\")");
    let r = c.ok("FETCH 1 (PREVIEW (LAZY))");
    assert_eq!(r[0], "* 1 FETCH (PREVIEW \"See you at noon.\")");
    assert_eq!(tagged_status(&c.cmd("FETCH 1 (PREVIEW (EAGER))")), "BAD");
}

/// RFC 8440: LIST RETURN (MYRIGHTS) gives each listed mailbox's rights.
#[test]
fn list_returns_my_rights() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("LIST \"\" INBOX RETURN (MYRIGHTS)");
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"INBOX\"");
    assert!(
        r[1].starts_with("* MYRIGHTS \"INBOX\" ") && r[1].contains('a'),
        "{r:?}"
    );
}

/// RFC 8437: UNAUTHENTICATE ends the login but not the connection.
#[test]
fn unauthenticate_returns_to_the_greeting_state() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("UNAUTHENTICATE");
    assert!(c.cmd("SELECT INBOX").last().unwrap().contains("NO"));
    let caps = c.ok("CAPABILITY");
    assert!(
        !caps[0].contains("UNAUTHENTICATE") && caps[0].contains("AUTH=PLAIN"),
        "{caps:?}"
    );
    c.ok("LOGIN bob pw");
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 0 EXISTS"), "{r:?}");
}

/// RFC 8508: REPLACE stores the new version, then expunges the old one; a refused
/// new version leaves the old one alone.
#[test]
fn replace_swaps_a_draft() {
    let server = start();
    server.deliver("alice", "Drafts", "Subject: v1\r\n\r\ndraft\r\n");
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT Drafts");
    let v2 = "Subject: v2\r\n\r\nbetter draft\r\n";
    let r = c.ok(&format!("REPLACE 1 Drafts (\\Draft) {}", lit(v2)));
    assert!(r.iter().any(|l| l.starts_with("* OK [APPENDUID ")), "{r:?}");
    assert!(r.contains(&"* 1 EXPUNGE".to_owned()), "{r:?}");
    assert!(
        r.contains(&"* 1 EXISTS".to_owned()) || r.contains(&"* 2 EXISTS".to_owned()),
        "{r:?}"
    );
    let r = c.ok("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0].contains("UID 2 ") && r[0].contains("Subject: v2"),
        "{r:?}"
    );
    // To a mailbox that does not exist: the original stays.
    let r = c.cmd(&format!("UID REPLACE 2 Nowhere {}", lit(v2)));
    assert!(r.last().unwrap().contains("NO [TRYCREATE]"), "{r:?}");
    assert_eq!(c.ok("UID SEARCH ALL")[0], "* SEARCH 2");
    assert!(c
        .cmd(&format!("UID REPLACE 9 Drafts {}", lit(v2)))
        .last()
        .unwrap()
        .contains("NO"));
}

/// RFC 9051: after ENABLE IMAP4rev2, names are UTF-8, SEARCH answers in ESEARCH form,
/// \Recent is gone, SELECT gives the mailbox's LIST and says when it closed the last.
#[test]
fn imap4rev2_once_enabled() {
    let server = start();
    server.deliver("alice", "INBOX", "Subject: r\r\n\r\nbody\r\n");
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains(" IMAP4rev2 "), "{caps:?}");
    assert_eq!(c.ok("ENABLE IMAP4rev2")[0], "* ENABLED IMAP4rev2");
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* LIST () \"/\" \"INBOX\"".to_owned()), "{r:?}");
    assert!(
        !r.iter()
            .any(|l| l.contains("RECENT") || l.contains("UNSEEN")),
        "{r:?}"
    );
    let r = c.ok("FETCH 1 (FLAGS)");
    assert_eq!(r[0], "* 1 FETCH (FLAGS ())");
    c.send(b"s1 SEARCH ALL\r\n");
    assert_eq!(c.until_tagged("s1")[0], "* ESEARCH (TAG \"s1\") ALL 1");
    c.send(b"s2 UID SEARCH DELETED\r\n");
    assert_eq!(c.until_tagged("s2")[0], "* ESEARCH (TAG \"s2\") UID");
    c.ok("CREATE \"Entw\u{fc}rfe\"");
    let r = c.ok("LIST \"\" \"Entw*\"");
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Entw\u{fc}rfe\"");
    let r = c.ok("SELECT \"Entw\u{fc}rfe\"");
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed");
    // A message arriving now is announced without RECENT.
    server.deliver("alice", "Entw\u{fc}rfe", "Subject: s\r\n\r\nx\r\n");
    let r = c.ok("NOOP");
    assert!(
        r.contains(&"* 1 EXISTS".to_owned()) && !r.iter().any(|l| l.contains("RECENT")),
        "{r:?}"
    );
}

/// RFC 8514: SAVEDATE is when the message entered this mailbox, not its INTERNALDATE;
/// COPY gives the copy its own; SEARCH SAVED* and SAVEDATESUPPORTED use it.
#[test]
fn savedate_is_when_the_message_was_stored() {
    let server = start();
    // Delivered with an INTERNALDATE of 2023-11-14.
    server.deliver("alice", "INBOX", "Subject: s\r\n\r\nx\r\n");
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)");
    assert!(r[0].contains("INTERNALDATE \"14-Nov-2023"), "{r:?}");
    let saved = r[0].split("SAVEDATE \"").nth(1).unwrap();
    assert!(!saved.starts_with("14-Nov-2023"), "{r:?}");
    assert_eq!(c.ok("SEARCH SAVEDBEFORE 1-Jan-2024")[0], "* SEARCH");
    assert_eq!(c.ok("SEARCH SAVEDSINCE 1-Jan-2024")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH BEFORE 1-Jan-2024")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH SAVEDATESUPPORTED")[0], "* SEARCH 1");
    c.ok("COPY 1 Drafts");
    c.ok("SELECT Drafts");
    let r = c.ok("FETCH 1 (SAVEDATE)");
    assert!(
        r[0].contains("SAVEDATE \"") && !r[0].contains("2023"),
        "{r:?}"
    );
}
