//! What Dovecot's imaptest found wrong, each checked over a real socket with the exact
//! protocol text: the RFC section a response must follow, and the response tern sends.

mod common;

use common::*;

fn tagged_status(lines: &[String]) -> &str {
    lines.last().unwrap().split(' ').nth(1).unwrap()
}

fn deliver_n(server: &Server, n: usize) {
    for i in 1..=n {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\nFrom: a@b.test\r\n\r\nbody {i}\r\n"),
        );
    }
}

/// RFC 7162 3.1 and 3.2.4: under CONDSTORE every untagged FETCH carries UID and MODSEQ,
/// also the answer to a STORE by sequence number.
#[test]
fn store_under_condstore_reports_uid_and_modseq() {
    let server = start();
    deliver_n(&server, 2);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX (CONDSTORE)");
    let r = c.ok("STORE 2 +FLAGS (\\Flagged)");
    let fetch = r.iter().find(|l| l.starts_with("* 2 FETCH")).unwrap();
    assert!(
        fetch.contains("UID 2") && fetch.contains("MODSEQ ("),
        "{fetch}"
    );
    // Without CONDSTORE, a plain STORE answers FLAGS alone.
    let mut d = Client::login(server.addr, "alice");
    d.ok("SELECT INBOX");
    let r = d.ok("STORE 1 +FLAGS (\\Seen)");
    let fetch = r.iter().find(|l| l.starts_with("* 1 FETCH")).unwrap();
    assert!(!fetch.contains("MODSEQ"), "{fetch}");
}

/// RFC 7162 3.1: a FETCH with MODSEQ turns CONDSTORE on, and the client is told the
/// mailbox's HIGHESTMODSEQ before the FETCH answer.
#[test]
fn fetch_modseq_announces_highestmodseq() {
    let server = start();
    deliver_n(&server, 1);
    let highest = server
        .store
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .highest_modseq;
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (MODSEQ)");
    assert_eq!(
        r[0],
        format!("* OK [HIGHESTMODSEQ {highest}] CONDSTORE enabled")
    );
    assert!(r[1].starts_with("* 1 FETCH ("), "{r:?}");
    // Only once.
    let r = c.ok("FETCH 1 (MODSEQ)");
    assert!(!r.iter().any(|l| l.contains("HIGHESTMODSEQ")), "{r:?}");
}

/// RFC 7162 3.1.5: with only MIN or MAX, MODSEQ is that of the message returned.
#[test]
fn esearch_min_max_modseq_is_the_returned_message_s() {
    let server = start();
    deliver_n(&server, 3);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX (CONDSTORE)");
    // Raise message 3's modseq above the others.
    c.ok("STORE 3 +FLAGS.SILENT (\\Flagged)");
    let modseq_of = |c: &mut Client, n: u32| -> u64 {
        let r = c.ok(&format!("FETCH {n} (MODSEQ)"));
        let l = r
            .iter()
            .find(|l| l.starts_with(&format!("* {n} FETCH")))
            .unwrap();
        let v = l.split("MODSEQ (").nth(1).unwrap();
        v[..v.find(')').unwrap()].parse().unwrap()
    };
    let (m1, m3) = (modseq_of(&mut c, 1), modseq_of(&mut c, 3));
    assert!(m3 > m1);
    let r = c.ok("SEARCH RETURN (MIN) MODSEQ 1");
    assert!(
        r[0].ends_with(&format!("MIN 1 MODSEQ {m1}")),
        "MIN: {r:?} (message 1 has {m1})"
    );
    let r = c.ok("SEARCH RETURN (MAX) MODSEQ 1");
    assert!(r[0].ends_with(&format!("MAX 3 MODSEQ {m3}")), "{r:?}");
    let r = c.ok("SEARCH RETURN (MIN COUNT) MODSEQ 1");
    assert!(
        r[0].ends_with(&format!("MODSEQ {m3}")),
        "COUNT: highest: {r:?}"
    );
}

/// RFC 7162 3.2.6: UID FETCH ... (CHANGEDSINCE n VANISHED) reports every UID of the set
/// expunged since n, also one this session already saw go.
#[test]
fn vanished_earlier_covers_expunges_already_reported() {
    let server = start();
    deliver_n(&server, 3);
    let mut c = Client::login(server.addr, "alice");
    c.ok("ENABLE QRESYNC");
    c.ok("SELECT INBOX");
    let before = {
        let r = c.ok("FETCH 1:* (MODSEQ)");
        r.iter()
            .filter_map(|l| l.split("MODSEQ (").nth(1))
            .map(|v| v[..v.find(')').unwrap()].parse::<u64>().unwrap())
            .max()
            .unwrap()
    };
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = c.ok("EXPUNGE");
    assert!(r.iter().any(|l| l == "* VANISHED 2"), "{r:?}");
    let r = c.ok(&format!(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {before} VANISHED)"
    ));
    assert!(r.iter().any(|l| l == "* VANISHED (EARLIER) 2"), "{r:?}");
    // A UID outside the set asked is not reported.
    let r = c.ok(&format!(
        "UID FETCH 3 (FLAGS) (CHANGEDSINCE {before} VANISHED)"
    ));
    assert!(!r.iter().any(|l| l.contains("VANISHED")), "{r:?}");
}

/// RFC 3501 6.3.2: EXAMINE answers as SELECT would (RECENT included), without taking
/// the \Recent messages from the next SELECT.
#[test]
fn examine_reports_recent_without_taking_it() {
    let server = start();
    deliver_n(&server, 2);
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("EXAMINE INBOX");
    assert!(r.iter().any(|l| l == "* 2 RECENT"), "{r:?}");
    let mut d = Client::login(server.addr, "alice");
    let r = d.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 2 RECENT"), "{r:?}");
    let mut e = Client::login(server.addr, "alice");
    let r = e.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 0 RECENT"), "{r:?}");
}

/// RFC 3501 2.3.2: a message is \Recent in one session only, also when many select at
/// the same instant.
#[test]
fn recent_goes_to_one_session_only() {
    let server = start();
    for round in 0..10 {
        deliver_n(&server, 1);
        let addr = server.addr;
        let sessions: Vec<std::thread::JoinHandle<usize>> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = Client::login(addr, "alice");
                    let r = c.ok("SELECT INBOX");
                    r.iter()
                        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" RECENT"))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                })
            })
            .collect();
        let total: usize = sessions.into_iter().map(|s| s.join().unwrap()).sum();
        assert_eq!(
            total, 1,
            "round {round}: the new message was \\Recent {total} times"
        );
    }
}

/// A message APPENDed to the selected mailbox is \Recent for the appending session
/// (the first told of it), taken in the append itself: never for another session,
/// however quickly it looks, and messages that arrive later still go to whoever sees
/// them first. An APPEND to another mailbox takes nothing there.
#[test]
fn append_to_the_selected_mailbox_is_recent_there_only() {
    let server = start();
    deliver_n(&server, 1);
    let mut a = Client::login(server.addr, "alice");
    let mut b = Client::login(server.addr, "alice");
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    let r = a.ok("APPEND INBOX {11+}\r\nSubject: a\r\n");
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    assert!(r.iter().any(|l| l == "* 2 RECENT"), "{r:?}");
    let r = a.ok("FETCH 2 (FLAGS)");
    assert!(r.iter().any(|l| l.contains("\\Recent")), "{r:?}");
    let r = b.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    assert!(r.iter().any(|l| l == "* 0 RECENT"), "{r:?}");
    // A delivery after it: B, who looks first, gets it.
    deliver_n(&server, 1);
    let r = b.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 1 RECENT"), "{r:?}");
    let r = a.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 2 RECENT"), "{r:?}");
    // Appended elsewhere: \Recent for whoever selects that mailbox first.
    a.ok("CREATE Other");
    a.ok("APPEND Other {11+}\r\nSubject: o\r\n");
    let r = b.ok("SELECT Other");
    assert!(r.iter().any(|l| l == "* 1 RECENT"), "{r:?}");
}

/// RFC 3501 7.3.2: RECENT is reported when the mailbox's size changes, so an expunge
/// of messages \Recent in a session tells that session the new count (with its own
/// EXPUNGE, after another session's, with a MOVE); a session for which none of them
/// was \Recent hears no RECENT. The counts the sessions were last told never add up
/// to more \Recent messages than the mailbox holds.
#[test]
fn expunging_recent_messages_reports_the_new_recent_count() {
    let server = start();
    deliver_n(&server, 4);
    let mut a = Client::login(server.addr, "alice");
    let mut b = Client::login(server.addr, "alice");
    let r = a.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 4 RECENT"), "{r:?}");
    let r = b.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 0 RECENT"), "{r:?}");
    // A's own expunge of a message \Recent for it.
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let r = a.ok("EXPUNGE");
    let at = |line: &str| r.iter().position(|l| l == line);
    assert!(
        at("* 1 EXPUNGE") < at("* 3 RECENT") && at("* 1 EXPUNGE").is_some(),
        "{r:?}"
    );
    let r = b.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE"), "{r:?}");
    assert!(!r.iter().any(|l| l.ends_with(" RECENT")), "{r:?}");
    // B's expunge of one of A's: A hears it at its next command.
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.ok("NOOP");
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE"), "{r:?}");
    assert!(r.iter().any(|l| l == "* 2 RECENT"), "{r:?}");
    // A MOVE takes its messages out of the view like an expunge.
    a.ok("CREATE Elsewhere");
    let r = a.ok("MOVE 1 Elsewhere");
    assert!(r.iter().any(|l| l == "* 1 RECENT"), "{r:?}");
    let r = a.ok("STATUS INBOX (MESSAGES RECENT)");
    assert!(r.iter().any(|l| l.contains("MESSAGES 1")), "{r:?}");
}

/// RFC 3501 7.1.5: nothing but the tagged OK follows BYE; changes still to report go
/// before it.
#[test]
fn logout_reports_pending_expunges_before_bye() {
    let server = start();
    deliver_n(&server, 2);
    let mut a = Client::login(server.addr, "alice");
    a.ok("SELECT INBOX");
    let mut b = Client::login(server.addr, "alice");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    let r = a.cmd("LOGOUT");
    let bye = r.iter().position(|l| l.starts_with("* BYE")).unwrap();
    let expunge = r
        .iter()
        .position(|l| l == "* 1 EXPUNGE")
        .expect("pending EXPUNGE");
    assert!(expunge < bye, "{r:?}");
    assert_eq!(bye, r.len() - 2, "{r:?}");
    assert_eq!(tagged_status(&r), "OK");
}

/// RFC 3501 7.1.3: a well-formed name that is not modified UTF-7 is NO, not BAD.
#[test]
fn names_that_are_not_modified_utf7_are_no() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    for cmd in [
        "CREATE \"Bad&Name\"",
        "SELECT \"x&-&Zz\"",
        "STATUS \"&\" (MESSAGES)",
    ] {
        let r = c.cmd(cmd);
        assert!(r.last().unwrap().contains(" NO [CANNOT] "), "{cmd}: {r:?}");
    }
    // Protocol errors stay BAD.
    assert_eq!(tagged_status(&c.cmd("CREATE")), "BAD");
}

/// RFC 5256 with i;ascii-casemap (RFC 4790 9.2: compared upper-cased): `_` sorts after
/// the letters.
#[test]
fn sort_uses_ascii_casemap() {
    let server = start();
    for s in ["_under", "beta", "Alpha"] {
        server.deliver("alice", "INBOX", &format!("Subject: {s}\r\n\r\nx\r\n"));
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("SORT (SUBJECT) UTF-8 ALL");
    assert_eq!(r[0], "* SORT 3 2 1", "{r:?}");
}

/// RFC 5322 2.2.3 and RFC 2045 5.1: a folded quoted boundary parameter is unfolded, so
/// the parts are found.
#[test]
fn folded_boundary_parameters_find_the_parts() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "Content-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n\
--foo bar\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--foo bar--\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (BODY[1] BODYSTRUCTURE)");
    let all = r.join("\n");
    assert!(all.contains("BODY[1] {5}"), "{all}");
    assert!(
        all.contains("\"MIXED\" (\"BOUNDARY\" \"foo bar\")"),
        "{all}"
    );
}

/// RFC 3501 7.4.2: a group holding only a comment has no address in it.
#[test]
fn envelope_groups_ignore_comments() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "From: a@b.test\r\nTo: group2: (foo) ;\r\nSubject: g\r\n\r\nx\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.ok("FETCH 1 (ENVELOPE)");
    assert!(
        r[0].contains("((NIL NIL \"group2\" NIL)(NIL NIL NIL NIL))"),
        "{r:?}"
    );
}

/// RFC 3501 6.4.4: SENTON and its kin compare the Date header's own calendar day,
/// whatever its time and zone.
#[test]
fn sent_dates_disregard_time_and_zone() {
    let server = start();
    // 23:30 at -0800 is already the 25th in UTC; the header's day is the 24th.
    server.deliver(
        "alice",
        "INBOX",
        "Date: Sat, 24 Mar 2007 23:30:00 -0800\r\nSubject: late\r\n\r\nx\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SEARCH SENTON 24-Mar-2007")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH SENTON 25-Mar-2007")[0], "* SEARCH");
    assert_eq!(c.ok("SEARCH SENTBEFORE 25-Mar-2007")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH SENTSINCE 25-Mar-2007")[0], "* SEARCH");
}

/// RFC 3501 6.4.4: FROM matches the address as parsed, comments and all.
#[test]
fn search_from_matches_parsed_addresses() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        "From: <user-from (comment)@ (comment) domain.org>\r\nSubject: s\r\n\r\nx\r\n",
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SEARCH FROM user-from@domain.org")[0], "* SEARCH 1");
    assert_eq!(c.ok("SEARCH FROM nobody@domain.org")[0], "* SEARCH");
}

/// SORT (CC) and (DISPLAYTO) read a group as an address named by the group, as Dovecot
/// does.
#[test]
fn sort_reads_groups_by_their_name() {
    let server = start();
    for cc in ["b@x.test", "a-group: z@x.test;", "c@x.test"] {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Cc: {cc}\r\nTo: {cc}\r\n\r\nx\r\n"),
        );
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    assert_eq!(c.ok("SORT (CC) UTF-8 ALL")[0], "* SORT 2 1 3");
    assert_eq!(c.ok("SORT (DISPLAYTO) UTF-8 ALL")[0], "* SORT 2 1 3");
}

/// RFC 3501 6.3.9: LSUB `%` shows a parent whose subscribed child it hides, as
/// \Noselect; RFC 5258 3.5: LIST (SUBSCRIBED RECURSIVEMATCH) marks such a parent with
/// CHILDINFO.
#[test]
fn subscribed_children_show_their_parents() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE top/child");
    c.ok("SUBSCRIBE top/child");
    let r = c.ok("LSUB \"\" %");
    assert!(
        r.iter().any(|l| l == "* LSUB (\\Noselect) \"/\" \"top\""),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("top/child")), "{r:?}");
    let r = c.ok("LSUB \"\" *");
    assert!(
        r.iter().any(|l| l.ends_with("\"/\" \"top/child\"")),
        "{r:?}"
    );
    assert!(!r.iter().any(|l| l.ends_with("\"/\" \"top\"")), "{r:?}");
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)");
    assert!(
        r.iter()
            .any(|l| l == "* LIST (\\HasChildren) \"/\" \"top\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{r:?}"
    );
    // A child the answer shows itself earns its parent nothing.
    let r = c.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (top top/child)");
    assert!(!r.iter().any(|l| l.ends_with("\"/\" \"top\"")), "{r:?}");
    assert!(
        r.iter().any(|l| l.ends_with("\"/\" \"top/child\"")),
        "{r:?}"
    );
}

/// A LIST pattern that is not modified UTF-7 matches nothing; it is no error.
#[test]
fn list_patterns_need_not_be_modified_utf7() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let r = c.ok("LIST \"\" \"!#$&'+,-.0123456789:;<=>?@^_`|[}%*\"");
    assert_eq!(r.len(), 1, "{r:?}");
}

/// RFC 2971: ID takes 30 field-value pairs of up to 1024 octets, also before login.
#[test]
fn id_takes_the_largest_list_rfc_2971_allows() {
    let server = start();
    let mut c = Client::connect(server.addr);
    let pairs: Vec<String> = (0..30)
        .map(|i| format!("\"field{i:02}\" \"{}\"", "v".repeat(1024)))
        .collect();
    let r = c.ok(&format!("ID ({})", pairs.join(" ")));
    assert!(r[0].starts_with("* ID ("), "{r:?}");
    c.ok("LOGIN alice pw");
}
