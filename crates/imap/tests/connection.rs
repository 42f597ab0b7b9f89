//! The connection layer as an IMAP client sees it: limits per client address, the
//! SASL mechanisms, and password guessing that gets slower.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use common::{start_with, Client};
use tern_imap::ImapConfig;

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn quick() -> ImapConfig {
    ImapConfig {
        auth_failure_delay: Duration::from_millis(10),
        ..ImapConfig::default()
    }
}

#[test]
fn connections_past_the_per_address_limit_get_bye() {
    let server = start_with(ImapConfig {
        max_connections_per_ip: 3,
        ..quick()
    });
    let held: Vec<Client> = (0..3).map(|_| Client::connect(server.addr)).collect();
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("* BYE Too many connections"), "{line}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Client::login(server.addr, "alice");
    c.ok("NOOP");
}

#[test]
fn authenticate_login_and_plain_with_continuations() {
    let server = start_with(quick());
    let mut c = Client::connect(server.addr);
    let caps = c.cmd("CAPABILITY");
    assert!(
        caps[0].contains("AUTH=PLAIN") && caps[0].contains("AUTH=LOGIN"),
        "{caps:?}"
    );
    c.send(b"a AUTHENTICATE LOGIN\r\n");
    assert_eq!(c.line(), format!("+ {}", b64(b"Username:")));
    c.send(format!("{}\r\n", b64(b"alice")).as_bytes());
    assert_eq!(c.line(), format!("+ {}", b64(b"Password:")));
    c.send(format!("{}\r\n", b64(b"pw")).as_bytes());
    let done = c.until_tagged("a");
    assert!(done.last().unwrap().starts_with("a OK"), "{done:?}");

    let mut c = Client::connect(server.addr);
    c.send(b"b AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.line(), "+ ");
    c.send(format!("{}\r\n", b64(b"\0bob\0wrong")).as_bytes());
    let r = c.until_tagged("b");
    assert!(
        r.last().unwrap().starts_with("b NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
    c.send(b"c AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.line(), "+ ");
    c.send(b"*\r\n");
    let r = c.until_tagged("c");
    assert!(r.last().unwrap().starts_with("c BAD"), "{r:?}");
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {}", b64(b"\0bob\0pw")));
    assert!(r.last().unwrap().contains(" OK "), "{r:?}");
}

#[test]
fn the_owner_still_logs_in_while_someone_guesses_the_password() {
    let server = start_with(quick());
    // alice logs in from here first, which makes this address trusted for her.
    Client::login(server.addr, "alice").ok("LOGOUT");
    let mut guesser = Client::connect(server.addr);
    for i in 0..3 {
        let r = guesser.cmd(&format!("LOGIN alice guess{i}"));
        assert!(
            r.last().unwrap().contains("NO [AUTHENTICATIONFAILED]"),
            "{r:?}"
        );
    }
    // The right password is still accepted (the penalty delays, never refuses).
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
}

#[test]
fn uploads_beyond_the_memory_budget_are_told_to_come_back_later() {
    // `serve_tcp` holds literals within four of the largest.
    let server = start_with(ImapConfig {
        max_literal: 64 * 1024,
        ..quick()
    });
    let size = 60_000;
    let message = {
        let mut m = b"Subject: upload\r\n\r\n".to_vec();
        m.resize(size, b'u');
        m
    };
    let mut uploading = Vec::new();
    for i in 0..4 {
        let mut c = Client::login(server.addr, "alice");
        c.send(format!("u{i} APPEND INBOX {{{size}}}\r\n").as_bytes());
        assert!(c.line().starts_with('+'));
        c.send(&message[..size - 10]);
        uploading.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut late = Client::login(server.addr, "alice");
    late.send(format!("x APPEND INBOX {{{size}}}\r\n").as_bytes());
    let r = late.until_tagged("x");
    assert_eq!(r.len(), 1, "no continuation: {r:?}");
    assert!(r[0].starts_with("x NO [LIMIT]"), "{r:?}");
    // A non-synchronizing literal cannot be refused: past the budget the connection
    // ends. (The client may see the BYE, or only the reset of a connection closed
    // with its bytes unread: either way the server holds nothing for it.)
    {
        use std::io::{Read, Write};
        let mut pushy = TcpStream::connect(server.addr).unwrap();
        pushy
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut greeting = [0u8; 512];
        let _ = pushy.read(&mut greeting).unwrap();
        pushy.write_all(b"l LOGIN alice pw\r\n").unwrap();
        let mut reader = BufReader::new(pushy.try_clone().unwrap());
        let mut line = String::new();
        while !line.starts_with("l ") {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        assert!(line.starts_with("l OK"), "{line}");
        let _ = pushy.write_all(format!("y APPEND INBOX {{{size}+}}\r\n").as_bytes());
        let _ = pushy.write_all(&message);
        let _ = pushy.write_all(b"\r\n");
        let mut rest = String::new();
        let end = reader.read_to_string(&mut rest);
        // Closed by the server (end of stream or reset), not left hanging.
        assert!(
            !matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "{end:?}"
        );
        assert!(
            rest.is_empty() || rest.starts_with("* BYE [LIMIT]"),
            "{rest:?}"
        );
    }
    // The uploads in progress finish, and then there is room again.
    for (i, mut c) in uploading.into_iter().enumerate() {
        c.send(&message[size - 10..]);
        c.send(b"\r\n");
        let r = c.until_tagged(&format!("u{i}"));
        assert!(r.last().unwrap().contains(" OK "), "{r:?}");
    }
    late.send(format!("z APPEND INBOX {{{size}+}}\r\n").as_bytes());
    late.send(&message);
    late.send(b"\r\n");
    let r = late.until_tagged("z");
    assert!(r.last().unwrap().contains(" OK "), "{r:?}");
    let mut check = Client::login(server.addr, "alice");
    let r = check.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("MESSAGES 5"), "{r:?}");
}

#[test]
fn an_unfinished_literal_is_cut_off_and_its_memory_given_back() {
    let server = start_with(ImapConfig {
        command_timeout: Duration::from_secs(1),
        ..quick()
    });
    let mut c = Client::login(server.addr, "alice");
    c.send(b"a APPEND INBOX {5000}\r\n");
    assert!(c.line().starts_with('+'));
    c.send(b"Subject: never finished\r\n\r\nhalf");
    assert_eq!(c.line(), "* BYE Command not completed in time");
    // Nothing half-written: the mailbox is as it was.
    let mut check = Client::login(server.addr, "alice");
    let r = check.ok("STATUS INBOX (MESSAGES)");
    assert!(r[0].contains("MESSAGES 0"), "{r:?}");
}

#[test]
fn a_section_fetch_beyond_the_memory_budget_is_refused_between_messages() {
    // Budget of four 600 KiB literals (2.4 MiB): a 1.5 MB message read whole for a
    // section needs its own size twice beside the output buffer (messages under
    // 1 MiB are read regardless).
    let server = start_with(ImapConfig {
        max_literal: 600 * 1024,
        ..quick()
    });
    let mut body = String::from("Subject: big\r\nContent-Type: text/plain\r\n\r\n");
    while body.len() < 1_500_000 {
        body.push_str(
            "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n",
        );
    }
    server.deliver("alice", "INBOX", &body);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    // The whole message is streamed from its file: no budget needed for it.
    let r = c.ok("FETCH 1 (BODY.PEEK[])");
    assert!(r[0].len() >= body.len(), "{}", r[0].len());
    // A section needs the message in memory: refused, cleanly, and the session goes on.
    let r = c.cmd("FETCH 1 (BODY.PEEK[TEXT])");
    assert!(r.last().unwrap().contains("NO [LIMIT]"), "{:?}", r.last());
    c.ok("NOOP");
}
