//! POP3 over a real socket: a Thunderbird-style sequence with exact lines, the UPDATE
//! rules (QUIT deletes, a dropped connection does not), sizes against RETR octets, the
//! [IN-USE] lock, IMAP expunges during a session, pipelining and bad input.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use tern_pop3::Pop3Config;

#[test]
fn thunderbird_sequence_with_exact_lines() {
    let server = start();
    let m1 = message("one", 4);
    let m2 = message("two", 1);
    server.deliver("alice", &m1);
    server.deliver("alice", &m2);
    let v = server.uidvalidity("alice");
    let mut c = server.connect();
    c.send("CAPA");
    assert_eq!(c.line(), "+OK Capability list follows");
    assert_eq!(
        c.multi(),
        [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "UTF8",
            "IMPLEMENTATION tern",
            "USER",
            "SASL PLAIN LOGIN",
        ]
    );
    let ir = base64(b"\0alice\0pw");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {ir}")),
        format!("+OK Logged in, 2 messages ({} octets)", m1.len() + m2.len())
    );
    assert_eq!(c.cmd("STAT"), format!("+OK 2 {}", m1.len() + m2.len()));
    c.send("LIST");
    assert_eq!(c.line(), "+OK");
    assert_eq!(
        c.multi(),
        [format!("1 {}", m1.len()), format!("2 {}", m2.len())]
    );
    c.send("UIDL");
    assert_eq!(c.line(), "+OK");
    assert_eq!(c.multi(), [format!("1 {v}.1"), format!("2 {v}.2")]);
    assert_eq!(c.cmd("UIDL 2"), format!("+OK 2 {v}.2"));
    c.send("TOP 1 0");
    assert_eq!(c.line(), "+OK");
    assert_eq!(
        c.multi(),
        [
            "From: sender@example.org",
            "To: alice@example.org",
            "Subject: one",
            "Message-ID: <one@example.org>",
            "",
        ]
    );
    c.send("TOP 1 2");
    assert_eq!(c.line(), "+OK");
    assert_eq!(c.multi()[5..], ["line 0", "..line 1 starts with a dot"]);
    c.send("RETR 1");
    assert_eq!(c.line(), format!("+OK {} octets", m1.len()));
    assert_eq!(c.body(), m1.as_bytes(), "RETR unstuffed is the message");
    assert_eq!(c.cmd("DELE 1"), "+OK Message 1 deleted");
    assert_eq!(c.cmd("DELE 1"), "-ERR No such message: 1");
    assert_eq!(c.cmd("RETR 1"), "-ERR No such message: 1");
    assert_eq!(c.cmd("STAT"), format!("+OK 1 {}", m2.len()));
    assert_eq!(c.cmd("QUIT"), "+OK Bye (1 messages left)");
    assert_eq!(server.live_uids("alice"), [2], "QUIT expunged message 1");
}

#[test]
fn a_dropped_connection_deletes_nothing_and_rset_undoes_dele() {
    let server = start();
    server.deliver("alice", &message("a", 2));
    server.deliver("alice", &message("b", 2));
    let mut c = server.connect();
    c.login("alice");
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("DELE 2").starts_with("+OK"));
    drop(c);
    // The session notices the close; its lock goes with it.
    let mut c = login_when_free(&server);
    assert_eq!(server.live_uids("alice"), [1, 2]);
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("RSET").starts_with("+OK Maildrop has 2 messages"));
    assert_eq!(c.cmd("QUIT"), "+OK Bye (2 messages left)");
    assert_eq!(server.live_uids("alice"), [1, 2]);
}

#[test]
fn a_second_session_is_told_in_use() {
    let server = start();
    server.deliver("alice", &message("a", 1));
    let mut first = server.connect();
    first.login("alice");
    let mut second = server.connect();
    second.send("USER alice");
    second.line();
    assert_eq!(
        second.cmd("PASS pw"),
        "-ERR [IN-USE] Maildrop already in use by another POP3 session"
    );
    let mut bob = server.connect();
    bob.login("bob");
    assert_eq!(first.cmd("QUIT"), "+OK Bye (1 messages left)");
}

#[test]
fn an_imap_expunge_during_the_session_is_an_err_not_a_crash() {
    let server = start();
    server.deliver("alice", &message("a", 1));
    server.deliver("alice", &message("b", 1));
    let mut c = server.connect();
    c.login("alice");
    let actor = tern_store::Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    server.store.expunge(&actor, &inbox.uniqueid, &[1]).unwrap();
    let modseq = server
        .store
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap()
        .highest_modseq;
    assert_eq!(
        c.cmd("RETR 1"),
        "-ERR Message 1 was deleted by another client"
    );
    c.send("TOP 2 0");
    assert_eq!(c.line(), "+OK");
    c.multi();
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert_eq!(c.cmd("QUIT"), "+OK Bye (1 messages left)");
    assert_eq!(server.live_uids("alice"), [2]);
    let after = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    assert_eq!(after.highest_modseq, modseq, "nothing was expunged twice");
}

#[test]
fn sizes_equal_retr_octets_and_pipelined_answers_all_arrive() {
    let server = start();
    // Dots, a big message over several chunks, one without a final line ending.
    let big = message("big", 40_000);
    let odd = "Subject: odd\r\n\r\n.\r\n..\r\nno final newline";
    for m in [message("small", 3).as_str(), big.as_str(), odd] {
        server.deliver("alice", m);
    }
    let mut c = server.connect();
    c.login("alice");
    let mut batch = String::new();
    for n in 1..=3 {
        batch.push_str(&format!("LIST {n}\r\nRETR {n}\r\n"));
    }
    batch.push_str("NOOP\r\n");
    c.reader.get_mut().write_all(batch.as_bytes()).unwrap();
    for (n, original) in [message("small", 3).as_str(), big.as_str(), odd]
        .into_iter()
        .enumerate()
    {
        let list = c.line();
        let size: usize = list.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(list, format!("+OK {} {}", n + 1, original.len()));
        assert_eq!(c.line(), format!("+OK {size} octets"));
        let body = c.body();
        if original.ends_with("\r\n") {
            assert_eq!(body.len(), size);
            assert_eq!(body, original.as_bytes());
        } else {
            // The line ending RETR adds before the final dot is not the message's.
            assert_eq!(&body[..size], original.as_bytes());
            assert_eq!(&body[size..], b"\r\n");
        }
    }
    assert_eq!(c.line(), "+OK");
    c.send("TOP 1 0");
    c.line();
    c.multi();
    assert!(c.cmd("QUIT").starts_with("+OK"));
    // What RETR sent is \Seen for IMAP; TOP alone marks nothing.
    let actor = tern_store::Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let (_, records) = server
        .store
        .records(&actor, &inbox.uniqueid, false)
        .unwrap();
    assert!(records
        .iter()
        .all(|r| r.flags.contains(&tern_store::Flag::Seen)));
}

#[test]
fn top_alone_marks_nothing_seen() {
    let server = start();
    server.deliver("alice", &message("a", 3));
    let mut c = server.connect();
    c.login("alice");
    c.send("TOP 1 1");
    c.line();
    c.multi();
    assert!(c.cmd("QUIT").starts_with("+OK"));
    let actor = tern_store::Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let (_, records) = server
        .store
        .records(&actor, &inbox.uniqueid, false)
        .unwrap();
    assert!(!records[0].flags.contains(&tern_store::Flag::Seen));
}

#[test]
fn bad_input_gets_err_and_the_session_goes_on() {
    let server = start();
    server.deliver("alice", &message("a", 1));
    let mut c = server.connect();
    assert_eq!(c.cmd("STAT"), "-ERR Not logged in");
    assert_eq!(c.cmd("PASS pw"), "-ERR Send USER first");
    assert_eq!(c.cmd("APOP alice 0123"), "-ERR APOP is not offered");
    assert_eq!(c.cmd("XYZZY"), "-ERR Unknown command");
    assert_eq!(c.cmd("STLS"), "-ERR STLS is not available");
    let long = "A".repeat(100_000);
    assert_eq!(c.cmd(&long), "-ERR Line too long");
    c.reader
        .get_mut()
        .write_all(b"\xff\xfe\x00garbage\r\n")
        .unwrap();
    assert_eq!(c.line(), "-ERR Not UTF-8");
    c.send("USER alice");
    c.line();
    assert_eq!(c.cmd("PASS wrong"), "-ERR [AUTH] Authentication failed");
    c.login("alice");
    assert_eq!(c.cmd("RETR 0"), "-ERR Invalid message number");
    assert_eq!(c.cmd("RETR 2"), "-ERR No such message: 2");
    assert_eq!(c.cmd("LIST 1 2"), "-ERR Too many arguments");
    assert_eq!(
        c.cmd("TOP 1"),
        "-ERR TOP needs a message number and a line count"
    );
    assert_eq!(c.cmd("USER bob"), "-ERR Already logged in");
    assert_eq!(c.cmd("STLS"), "-ERR STLS is only allowed before login");
    c.send("CAPA");
    c.line();
    let caps = c.multi();
    assert!(!caps.iter().any(|l| l == "USER" || l.starts_with("SASL")));
    assert_eq!(c.cmd("NOOP"), "+OK");
    assert!(c.cmd("QUIT").starts_with("+OK"));
    assert_eq!(server.live_uids("alice"), [1]);
}

#[test]
fn auth_login_and_plain_with_challenges() {
    let server = start();
    let mut c = server.connect();
    c.send("AUTH");
    assert_eq!(c.line(), "+OK");
    assert_eq!(c.multi(), ["PLAIN", "LOGIN"]);
    assert_eq!(c.cmd("AUTH LOGIN"), format!("+ {}", base64(b"Username:")));
    assert_eq!(
        c.cmd(&base64(b"alice")),
        format!("+ {}", base64(b"Password:"))
    );
    assert_eq!(
        c.cmd(&base64(b"pw")),
        "+OK Logged in, 0 messages (0 octets)"
    );
    assert!(c.cmd("QUIT").starts_with("+OK"));
    let mut c = server.connect();
    assert_eq!(c.cmd("AUTH PLAIN"), "+ ");
    assert_eq!(c.cmd("*"), "-ERR Authentication cancelled");
    assert_eq!(c.cmd("AUTH PLAIN"), "+ ");
    assert!(c.cmd(&base64(b"\0bob\0pw")).starts_with("+OK Logged in"));
}

#[test]
fn no_passwords_in_clear_text_when_not_allowed() {
    let server = start_with(Pop3Config {
        plaintext_auth: false,
        ..Pop3Config::default()
    });
    let mut c = server.connect();
    c.send("CAPA");
    c.line();
    let caps = c.multi();
    assert!(
        !caps.iter().any(|l| l == "USER" || l.starts_with("SASL")),
        "{caps:?}"
    );
    let refused = "-ERR [AUTH] Passwords only over TLS: use STLS first";
    assert_eq!(c.cmd("USER alice"), refused);
    assert_eq!(c.cmd("AUTH PLAIN AGFsaWNlAHB3"), refused);
}

/// Logs in as alice, waiting for a previous session's lock to go.
fn login_when_free(server: &Server) -> Client<std::net::TcpStream> {
    loop {
        let mut c = server.connect();
        c.send("USER alice");
        c.line();
        let r = c.cmd("PASS pw");
        if r.starts_with("+OK") {
            return c;
        }
        assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn vanishing_mid_retr_or_idling_out_deletes_nothing() {
    let server = start_with(Pop3Config {
        idle_timeout: Duration::from_secs(1),
        preauth_timeout: Duration::from_secs(1),
        auth_failure_delay: Duration::from_millis(10),
        ..Pop3Config::default()
    });
    server.deliver("alice", &message("a", 1));
    server.deliver("alice", &message("big", 200_000));
    let mut c = login_when_free(&server);
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("RETR 2").starts_with("+OK"));
    drop(c); // mid-RETR: megabytes unread
    let mut c = login_when_free(&server);
    assert_eq!(server.live_uids("alice"), [1, 2]);
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert_eq!(c.line(), "-ERR Autologout: idle too long, nothing deleted");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut c.reader, &mut rest).unwrap();
    assert_eq!(rest, "", "the server closed the connection");
    assert_eq!(server.live_uids("alice"), [1, 2]);
    // Not logging in in time ends the connection the same way.
    let mut c = server.connect();
    assert!(c.line().starts_with("-ERR Autologout"));
}

#[test]
fn long_listings_arrive_whole() {
    let server = start();
    let n = 900; // the listings span several write buffers
    for i in 0..n {
        server.deliver("alice", &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let v = server.uidvalidity("alice");
    let mut c = server.connect();
    c.login("alice");
    c.send("UIDL");
    assert_eq!(c.line(), "+OK");
    let uidls = c.multi();
    assert_eq!(uidls.len(), n);
    for (i, l) in uidls.iter().enumerate() {
        assert_eq!(*l, format!("{} {v}.{}", i + 1, i + 1));
    }
    assert!(c.cmd("DELE 5").starts_with("+OK"));
    c.send("LIST");
    assert_eq!(c.line(), "+OK");
    let list = c.multi();
    assert_eq!(list.len(), n - 1);
    assert_eq!(list[4], "6 17");
    assert_eq!(
        list[n - 2],
        format!("{n} {}", format!("Subject: {}\r\n\r\nx\r\n", n - 1).len())
    );
}

/// RFC 2449 LOGIN-DELAY, when configured: advertised, and a second login of the same
/// user within the delay refused with the response code (another user is not held up).
#[test]
fn login_delay_is_advertised_and_enforced() {
    let server = start_with(tern_pop3::Pop3Config {
        login_delay: Some(std::time::Duration::from_secs(300)),
        ..Default::default()
    });
    let mut first = server.connect();
    let caps = {
        first.send("CAPA");
        assert!(first.line().starts_with("+OK"));
        first.multi()
    };
    assert!(caps.contains(&"LOGIN-DELAY 300".to_owned()), "{caps:?}");
    first.login("alice");
    assert!(first.cmd("QUIT").starts_with("+OK"));
    let mut again = server.connect();
    again.send("USER alice");
    again.line();
    assert_eq!(
        again.cmd("PASS pw"),
        "-ERR [LOGIN-DELAY] Log in at most once every 300 seconds"
    );
    let mut bob = server.connect();
    bob.login("bob");
    // Without the setting, nothing is advertised.
    let plain = start();
    let mut c = plain.connect();
    c.send("CAPA");
    c.line();
    assert!(!c.multi().iter().any(|l| l.starts_with("LOGIN-DELAY")));
}

/// A message imported with its old server's UIDL shows that UIDL; the others keep
/// `uidvalidity.uid`.
#[test]
fn a_stored_uidl_override_is_what_uidl_shows() {
    let server = start();
    let inbox = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    let alice = tern_store::Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let m = message("old", 1);
    server
        .store
        .append_with_pop3_uidl(
            &alice,
            &inbox.uniqueid,
            &tern_store::Flags::new(),
            1_600_000_000,
            m.as_bytes(),
            Some("UID4711-1136543321"),
        )
        .unwrap();
    server.deliver("alice", &message("new", 1));
    let v = server.uidvalidity("alice");
    let mut c = server.connect();
    c.login("alice");
    c.send("UIDL");
    assert_eq!(c.line(), "+OK");
    assert_eq!(
        c.multi(),
        ["1 UID4711-1136543321".to_owned(), format!("2 {v}.2")]
    );
    assert_eq!(c.cmd("UIDL 1"), "+OK 1 UID4711-1136543321");
    assert!(c.cmd("QUIT").starts_with("+OK"));
}
