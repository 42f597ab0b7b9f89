//! Issue 8 (hardened by default), over a real socket: what an unauthenticated or
//! hostile client can make the server hold or do, and the answers it gets instead.

mod common;

use std::time::Duration;

use common::*;
use tern_imap::ImapConfig;

/// Before login a huge synchronizing literal is refused at once (no `+`, so the client
/// never sends its bytes), on every one of many connections.
#[test]
fn preauth_large_literal_gets_no_continuation() {
    let server = start();
    let mut clients: Vec<Client> = (0..30).map(|_| Client::connect(server.addr)).collect();
    for c in &mut clients {
        c.send(b"a LOGIN {67108864}\r\n");
    }
    for c in &mut clients {
        let answer = c.line();
        assert!(answer.starts_with("a NO [TOOBIG]"), "{answer}");
    }
    // The connections are still usable: a small literal gets its `+` and logs in.
    let c = &mut clients[0];
    c.send(b"b LOGIN {5}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"alice {2}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"pw\r\n");
    let r = c.until_tagged("b");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
}

/// LITERAL- before login, LITERAL+ after; after login the configured literal size
/// applies again.
#[test]
fn literal_minus_before_login_literal_plus_after() {
    let server = start();
    let mut c = Client::connect(server.addr);
    let caps = c.ok("CAPABILITY");
    assert!(caps[0].contains(" LITERAL- "), "{caps:?}");
    assert!(!caps[0].contains("LITERAL+"), "{caps:?}");
    let r = c.ok("LOGIN alice pw");
    assert!(r.last().unwrap().contains(" LITERAL+ "), "{r:?}");
    c.send(b"x APPEND INBOX {100000}\r\n");
    assert!(c.line().starts_with("+ "));
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    message.resize(100_000, b'x');
    c.send(&message);
    c.send(b"\r\n");
    let r = c.until_tagged("x");
    assert!(r.last().unwrap().starts_with("x OK"), "{r:?}");
}

/// A non-synchronizing literal over the LITERAL- bound before login cannot be refused
/// without reading it: the server says BYE and closes instead.
#[test]
fn preauth_large_nonsync_literal_closes_the_connection() {
    let server = start();
    let mut c = Client::connect(server.addr);
    c.send(b"a LOGIN {67108864+}\r\n");
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(c.closed(), "the connection stays open after BYE");
    // Within the bound, a non-synchronizing literal is fine.
    let mut c = Client::connect(server.addr);
    c.send(b"a LOGIN {5+}\r\nalice pw\r\n");
    let r = c.until_tagged("a");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
}

fn short_preauth() -> ImapConfig {
    ImapConfig {
        auth_failure_delay: Duration::from_millis(10),
        preauth_timeout: Duration::from_secs(1),
        ..ImapConfig::default()
    }
}

/// A connection that does not log in is closed with BYE after `preauth_timeout`, even
/// while it keeps sending commands; one that logged in stays.
#[test]
fn preauth_timeout_closes_connections_that_do_not_log_in() {
    let server = start_with(short_preauth());
    let mut idle = Client::connect(server.addr);
    let mut busy = Client::connect(server.addr);
    let mut user = Client::login(server.addr, "alice");
    // Busy within the deadline (3 x 250 ms < 1 s)...
    for _ in 0..3 {
        busy.ok("NOOP");
        std::thread::sleep(Duration::from_millis(250));
    }
    let bye = idle.line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(idle.closed());
    // ...but being busy does not extend it.
    let bye = busy.line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(busy.closed());
    user.ok("NOOP");
}

/// AUTHENTICATE PLAIN without an initial response waits for the response line only
/// until the pre-login deadline.
#[test]
fn pending_authenticate_is_bounded_by_the_preauth_timeout() {
    let server = start_with(short_preauth());
    let mut c = Client::connect(server.addr);
    c.send(b"a AUTHENTICATE PLAIN\r\n");
    assert!(c.line().starts_with("+"));
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(c.closed());
}

/// A message of `size` bytes whose body varies with `seed` (so a misplaced chunk shows).
fn big_message(seed: u32, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: big {seed}\r\n\r\n").into_bytes();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.push(b'!' + (x % 90) as u8);
        if m.len() % 78 == 0 {
            m.extend_from_slice(b"\r\n");
        }
    }
    m
}

/// The bytes of the first literal in a response line.
fn first_literal(line: &[u8]) -> Vec<u8> {
    let open = line.iter().position(|&b| b == b'{').expect("a literal");
    let close = open + line[open..].iter().position(|&b| b == b'}').unwrap();
    let len: usize = std::str::from_utf8(&line[open + 1..close])
        .unwrap()
        .parse()
        .unwrap();
    line[close + 3..close + 3 + len].to_vec()
}

/// FETCH 1 with 400 BODY.PEEK[] items is refused (not answered with 400 copies of the
/// message), and the connection goes on.
#[test]
fn fetch_with_too_many_body_items_is_refused() {
    let server = start();
    server.deliver(
        "alice",
        "INBOX",
        std::str::from_utf8(&big_message(1, 2_000_000)).unwrap(),
    );
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let items = vec!["BODY.PEEK[]"; 400].join(" ");
    let r = c.cmd(&format!("FETCH 1 ({items})"));
    assert_eq!(r.len(), 1, "no FETCH data before the refusal");
    assert!(r[0].contains(" NO [LIMIT]"), "{r:?}");
    // A handful of items is fine.
    let r = c.ok("FETCH 1 (BODY.PEEK[] BODY.PEEK[]<0.10> RFC822.SIZE)");
    assert!(r[0].contains("RFC822.SIZE 2000000"), "{}", &r[0][..40]);
}

/// `FETCH 1:* BODY.PEEK[]` of a mailbox larger than the output buffer returns every
/// message byte for byte (the SHA-1 GUID of each body equals the stored one).
#[test]
fn fetch_of_a_large_mailbox_is_byte_exact() {
    let server = start();
    let sizes = [700_000, 1_500_000, 300, 2_100_000, 65_536, 262_144];
    let mut sent = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let m = big_message(i as u32 + 7, size);
        server.deliver("alice", "INBOX", std::str::from_utf8(&m).unwrap());
        sent.push(m);
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.send(b"f FETCH 1:* (UID BODY.PEEK[] RFC822.SIZE)\r\n");
    for (i, m) in sent.iter().enumerate() {
        let line = c.line_bytes();
        let head = format!(
            "* {} FETCH (UID {} BODY[] {{{}}}\r\n",
            i + 1,
            i + 1,
            m.len()
        );
        assert!(line.starts_with(head.as_bytes()), "message {}", i + 1);
        let body = first_literal(&line);
        assert_eq!(
            tern_store::Guid::of(&body).to_hex(),
            tern_store::Guid::of(m).to_hex(),
            "message {}",
            i + 1
        );
        let tail = format!(" RFC822.SIZE {})\r\n", m.len());
        assert!(line.ends_with(tail.as_bytes()), "message {}", i + 1);
    }
    let done = c.line();
    assert!(done.starts_with("f OK"), "{done}");
    // A partial fetch inside the second message comes from the right place.
    let r = c.ok("FETCH 2 (BODY.PEEK[]<300000.70000>)");
    assert!(
        r[0].starts_with("* 2 FETCH (BODY[]<300000> {70000}"),
        "{}",
        &r[0][..50]
    );
    let tail = &r[0].as_bytes()[r[0].len() - 70_001..r[0].len() - 1];
    assert_eq!(tail, &sent[1][300_000..370_000]);
}

/// `OR BODY wN TEXT vN` repeated: `n` ORs, 2n BODY/TEXT keys.
fn ored_text_keys(n: usize) -> String {
    (0..n)
        .map(|i| format!("OR BODY word{i}x TEXT other{i}y"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// 2,000 ORed BODY/TEXT keys are refused with NO [LIMIT], and the connection goes on.
#[test]
fn search_with_thousands_of_keys_is_refused() {
    let server = start();
    for i in 0..5 {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\n\r\nquokka {i}\r\n"),
        );
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let r = c.cmd(&format!("SEARCH {}", ored_text_keys(1000)));
    assert_eq!(r.len(), 1, "{:?}", &r[..r.len().min(2)]);
    assert!(r[0].contains(" NO [LIMIT] Search too complex"), "{}", r[0]);
    let r = c.ok("SEARCH BODY quokka");
    assert_eq!(r[0], "* SEARCH 1 2 3 4 5");
}

/// Past `search_budget`, SEARCH, SORT and THREAD answer NO [LIMIT]; a cheaper search in
/// the same session still works.
#[test]
fn search_sort_thread_stop_at_the_budget() {
    let server = start_with(ImapConfig {
        auth_failure_delay: Duration::from_millis(10),
        search_budget: 2_000,
        ..ImapConfig::default()
    });
    for i in 0..30 {
        server.deliver(
            "alice",
            "INBOX",
            &format!("Subject: m{i}\r\n\r\nquokka {i}\r\n"),
        );
    }
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let keys = ored_text_keys(100);
    for command in [
        format!("SEARCH {keys}"),
        format!("UID SEARCH RETURN (COUNT) {keys}"),
        format!("SORT (DATE) UTF-8 {keys}"),
        format!("THREAD REFERENCES UTF-8 {keys}"),
    ] {
        let r = c.cmd(&command);
        assert_eq!(r.len(), 1, "{command}: {r:?}");
        assert!(r[0].contains(" NO [LIMIT] Search too complex"), "{}", r[0]);
    }
    let r = c.ok("SEARCH BODY quokka SUBJECT m2");
    assert_eq!(r[0], "* SEARCH 3 21 22 23 24 25 26 27 28 29 30");
    let r = c.ok("SORT (SIZE) UTF-8 ALL");
    assert_eq!(r[0].split(' ').count(), 2 + 30, "{}", r[0]);
}

/// RENAME may not put a mailbox (or, through its children, anything) under
/// `Other Users/`, just as CREATE may not.
#[test]
fn rename_into_other_users_is_refused_like_create() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE foo/bar");
    for target in ["\"Other Users\"", "\"Other Users/\"", "\"Other Users/foo\""] {
        let r = c.cmd(&format!("CREATE {target}"));
        assert!(r[0].contains(" NO [NOPERM]"), "CREATE {target}: {r:?}");
        let r = c.cmd(&format!("RENAME foo {target}"));
        assert!(r[0].contains(" NO [NOPERM]"), "RENAME {target}: {r:?}");
    }
    assert!(server.store.mailbox("alice", "foo/bar").unwrap().is_some());
    assert!(server
        .store
        .mailbox("alice", "Other Users")
        .unwrap()
        .is_none());
    assert!(server
        .store
        .mailbox("alice", "Other Users/bar")
        .unwrap()
        .is_none());
}

/// A refused CREATE of a deep name leaves none of the parents it would have made.
#[test]
fn refused_deep_create_leaves_no_parents() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    for name in ["a/b/..", "a/b/c%", "a/b//c"] {
        let r = c.cmd(&format!("CREATE \"{name}\""));
        assert!(r[0].contains(" NO "), "CREATE {name}: {r:?}");
        for parent in ["a", "a/b"] {
            assert!(
                server.store.mailbox("alice", parent).unwrap().is_none(),
                "CREATE {name} left {parent}"
            );
        }
    }
    // The last level fails after its parents were made: they are removed again.
    // (RENAME makes no parents, so p/q/r exists without p and p/q.)
    c.ok("CREATE x");
    c.ok("RENAME x p/q/r");
    assert!(server.store.mailbox("alice", "p").unwrap().is_none());
    let r = c.cmd("CREATE p/q/r");
    assert!(r[0].contains(" NO [ALREADYEXISTS]"), "{r:?}");
    assert!(server.store.mailbox("alice", "p").unwrap().is_none());
    assert!(server.store.mailbox("alice", "p/q").unwrap().is_none());
    // A good deep CREATE still makes its parents.
    c.ok("CREATE d/e/f");
    assert!(server.store.mailbox("alice", "d/e").unwrap().is_some());
}

/// NUL never goes out inside a BODY[] (or RFC822) literal: it becomes 0x80 and the
/// announced length stays right; BINARY[] keeps NUL, in a `~{n}` literal.
#[test]
fn nul_bytes_are_masked_outside_binary_fetches() {
    let server = start();
    let message = "Subject: nul\r\n\r\nbefore\0after\0\r\n";
    server.deliver("alice", "INBOX", message);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    let masked: Vec<u8> = message
        .bytes()
        .map(|b| if b == 0 { 0x80 } else { b })
        .collect();
    c.send(b"a FETCH 1 (BODY.PEEK[])\r\n");
    let line = c.line_bytes();
    let head = format!("* 1 FETCH (BODY[] {{{}}}\r\n", message.len());
    assert!(line.starts_with(head.as_bytes()), "{line:?}");
    assert_eq!(first_literal(&line), masked);
    assert!(c.line().starts_with("a OK"));
    c.send(b"b FETCH 1 (BODY.PEEK[TEXT] RFC822.TEXT)\r\n");
    let line = c.line_bytes();
    assert!(!line.contains(&0), "{line:?}");
    assert!(line.starts_with(b"* 1 FETCH (BODY[TEXT] {15}\r\nbefore\x80after\x80\r\n"));
    assert!(c.line().starts_with("b OK"));
    c.send(b"c FETCH 1 (BINARY.PEEK[])\r\n");
    let line = c.line_bytes();
    let head = format!("* 1 FETCH (BINARY[] ~{{{}}}\r\n", message.len());
    assert!(line.starts_with(head.as_bytes()), "{line:?}");
    assert_eq!(first_literal(&line), message.as_bytes());
    assert!(c.line().starts_with("c OK"));
}
