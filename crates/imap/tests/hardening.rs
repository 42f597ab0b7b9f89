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
