//! LMTP over a real TCP socket against an in-process listener: transcripts of the
//! protocol text, and hostile input.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tern_lmtp::LmtpConfig;
use tern_store::{Quota, Store, StoreConfig};

struct Server {
    addr: SocketAddr,
    store: Store,
    _stop: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start(config: LmtpConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        StoreConfig::new(dir.path()),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .unwrap();
    store.create_user("alice", None, false).unwrap();
    store.create_user("bob", None, false).unwrap();
    let lists = store.create_mailbox("alice", "Lists/rust", None).unwrap();
    // Open for `alice+Lists/rust@` delivery: without `anyone p` it goes to INBOX.
    store
        .set_acl(
            &owner("alice"),
            &lists.uniqueid,
            "anyone",
            Some(tern_store::Rights::POST),
        )
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    runtime.spawn(tern_lmtp::serve_tcp(
        listener,
        store.clone(),
        config,
        stopped,
    ));
    Server {
        addr,
        store,
        _stop: stop,
        _runtime: runtime,
        _dir: dir,
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(c.reply().starts_with("220 "));
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Reads one (possibly multi-line) reply, returned with lines joined by '\n'.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "connection closed; got so far: {all:?}");
            all.push_str(line.trim_end());
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
            all.push('\n');
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

fn owner(user: &str) -> tern_store::Actor {
    tern_store::Actor {
        name: user.to_owned(),
        is_admin: false,
    }
}

fn inbox_bodies(store: &Store, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
    let m = store.mailbox(user, mailbox).unwrap().unwrap();
    store
        .records(&owner(user), &m.uniqueid, false)
        .unwrap()
        .1
        .iter()
        .map(|r| store.message(&m, r).unwrap())
        .collect()
}

#[test]
fn transcript_with_per_recipient_replies() {
    let server = start(LmtpConfig::default());
    server
        .store
        .set_quota(
            "bob",
            Quota {
                storage: Some(10),
                messages: None,
            },
        )
        .unwrap();
    let mut c = Client::connect(server.addr);
    let lhlo = c.cmd("LHLO mta.example");
    for ext in [
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "SIZE 67108864",
    ] {
        assert!(lhlo.contains(ext), "{lhlo}");
    }
    assert!(c
        .cmd("MAIL FROM:<sender@example.com> BODY=8BITMIME")
        .starts_with("250 2.1.0"));
    assert!(c
        .cmd("RCPT TO:<alice+Lists/rust@example.com>")
        .starts_with("250 2.1.5"));
    assert!(c
        .cmd("RCPT TO:<nobody@example.com>")
        .starts_with("550 5.1.1"));
    assert!(c.cmd("RCPT TO:<bob@example.com>").starts_with("250 2.1.5"));
    assert!(c
        .cmd("RCPT TO:<alice+NoSuchFolder@example.com>")
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: caf\u{e9}\r\n\r\n..leading dot\r\nbare lf\n.\r\n".as_bytes());
    assert!(c
        .reply()
        .starts_with("250 2.1.5 <alice+Lists/rust@example.com>"));
    assert!(c.reply().starts_with("452 4.2.2"), "bob is over quota");
    assert!(c.reply().contains("delivered to INBOX"));
    assert!(c.cmd("QUIT").starts_with("221"));

    let expected = "Return-Path: <sender@example.com>\r\nSubject: caf\u{e9}\r\n\r\n.leading dot\r\nbare lf\r\n".as_bytes();
    assert_eq!(
        inbox_bodies(&server.store, "alice", "Lists/rust"),
        vec![expected.to_vec()]
    );
    assert_eq!(
        inbox_bodies(&server.store, "alice", "INBOX"),
        vec![expected.to_vec()]
    );
    assert!(inbox_bodies(&server.store, "bob", "INBOX").is_empty());
}

#[test]
fn pipelined_transactions_get_all_replies_in_order() {
    let server = start(LmtpConfig::default());
    let mut c = Client::connect(server.addr);
    c.cmd("LHLO x");
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(
            format!("MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<bob@x>\r\nDATA\r\nSubject: {i}\r\n\r\nbody {i}\r\n.\r\n").as_bytes(),
        );
    }
    batch.extend_from_slice(b"QUIT\r\n");
    c.send(&batch);
    for _ in 0..20 {
        assert!(c.reply().starts_with("250 2.1.0"));
        assert!(c.reply().starts_with("250 2.1.5"));
        assert!(c.reply().starts_with("250 2.1.5"));
        assert!(c.reply().starts_with("354"));
        assert!(c.reply().contains("delivered"));
        assert!(c.reply().contains("delivered"));
    }
    assert!(c.reply().starts_with("221"));
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        20
    );
    assert_eq!(
        server
            .store
            .mailbox("bob", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        20
    );
}

#[test]
fn duplicate_message_id_is_suppressed_per_mailbox() {
    let server = start(LmtpConfig::default());
    let mut c = Client::connect(server.addr);
    c.cmd("LHLO x");
    for _ in 0..2 {
        c.cmd("MAIL FROM:<s@x>");
        c.cmd("RCPT TO:<alice@x>");
        c.cmd("DATA");
        c.send(b"Message-ID: <same@x>\r\n\r\nhi\r\n.\r\n");
        c.reply();
    }
    c.cmd("MAIL FROM:<s@x>");
    c.cmd("RCPT TO:<alice+Lists/rust@x>");
    c.cmd("DATA");
    c.send(b"Message-ID: <same@x>\r\n\r\nhi\r\n.\r\n");
    assert!(c.reply().contains("delivered to Lists/rust"));
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        1
    );
}

#[test]
fn sequence_errors_and_polite_refusals() {
    let server = start(LmtpConfig::default());
    let mut c = Client::connect(server.addr);
    assert!(c.cmd("MAIL FROM:<a@b>").starts_with("503"));
    assert!(c.cmd("EHLO x").starts_with("500"));
    assert!(c.cmd("LHLO").starts_with("501"));
    c.cmd("LHLO x");
    assert!(c.cmd("RCPT TO:<alice@x>").starts_with("503"));
    assert!(c.cmd("DATA").starts_with("503"));
    assert!(c.cmd("VRFY alice").starts_with("252"));
    assert!(c.cmd("NOOP").starts_with("250"));
    c.cmd("MAIL FROM:<a@b>");
    assert!(c.cmd("MAIL FROM:<a@b>").starts_with("503"));
    assert!(c.cmd("RCPT TO:<nobody@x>").starts_with("550"));
    assert!(c.cmd("DATA").starts_with("554"), "no valid recipients");
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:alice").starts_with("501"));
    assert!(c
        .cmd("MAIL FROM:<a@b> SIZE=999999999999")
        .starts_with("552"));
    assert!(c.cmd("FOO bar").starts_with("500"));
}

#[test]
fn overlong_line_and_oversize_message_are_refused_and_session_continues() {
    let server = start(LmtpConfig {
        max_message_size: 64 * 1024,
        ..LmtpConfig::default()
    });
    let mut c = Client::connect(server.addr);
    c.cmd("LHLO x");
    c.send(&[b'A'; 100_000]);
    assert!(c.cmd("").starts_with("500 5.5.2 Line too long"));
    c.cmd("MAIL FROM:<a@b>");
    c.cmd("RCPT TO:<alice@x>");
    c.cmd("RCPT TO:<bob@x>");
    c.cmd("DATA");
    let mut big = Vec::new();
    for _ in 0..2000 {
        big.extend_from_slice(&[b'x'; 100]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    c.send(&big);
    assert!(c.reply().starts_with("552 5.3.4"));
    assert!(c.reply().starts_with("552 5.3.4"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );
    assert!(
        server.store.blobs().list("default").unwrap().is_empty(),
        "no blob written for a refused message"
    );
}

#[test]
fn disconnect_mid_data_stores_nothing() {
    let server = start(LmtpConfig::default());
    {
        let mut c = Client::connect(server.addr);
        c.cmd("LHLO x");
        c.cmd("MAIL FROM:<a@b>");
        c.cmd("RCPT TO:<alice@x>");
        c.cmd("DATA");
        c.send(b"Subject: half\r\n\r\nthis never ends");
    }
    // The server is still serving, and nothing of the half message is visible.
    let mut c = Client::connect(server.addr);
    assert!(c.cmd("LHLO x").starts_with("250"));
    c.cmd("QUIT");
    assert_eq!(
        server
            .store
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );
    assert!(server.store.blobs().list("default").unwrap().is_empty());
}

#[test]
fn too_many_errors_close_the_connection() {
    let server = start(LmtpConfig::default());
    let mut c = Client::connect(server.addr);
    for _ in 0..21 {
        assert!(c.cmd("\u{1}\u{2}garbage").starts_with("500"));
    }
    let last = c.reply();
    assert!(last.starts_with("421"), "{last}");
    assert!(c.closed());
}

/// Random bytes, random command fragments and random binary: the server must answer
/// every line with a reply code and never stop serving.
#[test]
fn random_input_never_breaks_the_server() {
    let server = start(LmtpConfig {
        max_message_size: 8 * 1024,
        ..LmtpConfig::default()
    });
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words: [&[u8]; 12] = [
        b"LHLO x",
        b"MAIL FROM:<a@b>",
        b"RCPT TO:<alice@x>",
        b"RCPT TO:<",
        b"DATA",
        b".",
        b"RSET",
        b"MAIL FROM:<a@b> SIZE=",
        b"\xff\xfe",
        b"\0",
        b"RCPT TO:<alice+../../x@y>",
        b"BDAT 10",
    ];
    for _ in 0..60 {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut input = Vec::new();
        for _ in 0..(next() % 40) {
            match next() % 4 {
                0 => input.extend((0..next() % 300).map(|_| next() as u8)),
                _ => input.extend_from_slice(words[(next() % words.len() as u64) as usize]),
            }
            input.extend_from_slice(if next() % 3 == 0 { b"\n" } else { b"\r\n" });
        }
        input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        let _ = w.write_all(&input);
        let _ = w.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = BufReader::new(stream).read_to_end(&mut out);
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let code = std::str::from_utf8(&line[..3.min(line.len())]).unwrap_or("");
            assert!(
                code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
                "bad reply line {line:?}"
            );
        }
    }
    let mut c = Client::connect(server.addr);
    assert!(c.cmd("LHLO still-alive").starts_with("250"));
    // Whatever got stored is complete and intact.
    let m = server.store.mailbox("alice", "INBOX").unwrap().unwrap();
    for r in server
        .store
        .records(&owner("alice"), &m.uniqueid, false)
        .unwrap()
        .1
    {
        let bytes = server.store.message(&m, &r).unwrap();
        assert_eq!(tern_store::Guid::of(&bytes), r.guid);
    }
}

fn start_data(c: &mut Client) {
    c.cmd("LHLO x");
    assert!(c.cmd("MAIL FROM:<a@b>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@x>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
}

#[test]
fn a_stalled_data_is_cut_off_and_stores_nothing() {
    let server = start(LmtpConfig {
        data_timeout: Duration::from_secs(1),
        ..LmtpConfig::default()
    });
    let mut c = Client::connect(server.addr);
    start_data(&mut c);
    c.send(b"Subject: half\r\n\r\nthe first half and then nothing");
    assert!(c.reply().starts_with("421 4.4.2"));
    assert!(c.closed());
    assert_eq!(inbox_bodies(&server.store, "alice", "INBOX").len(), 0);
}

#[test]
fn connections_past_the_per_address_limit_are_told_421() {
    let server = start(LmtpConfig {
        max_connections_per_ip: 2,
        ..LmtpConfig::default()
    });
    let _a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut third = BufReader::new(stream);
    let mut line = String::new();
    third.read_line(&mut line).unwrap();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    // The others are unaffected, and a place freed is a place for the next client.
    assert!(b.cmd("NOOP").starts_with("250"));
    drop(b);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = Client::connect(server.addr);
    assert!(d.cmd("NOOP").starts_with("250"));
}

#[test]
fn bodies_beyond_the_memory_budget_are_refused_with_a_temporary_error() {
    // The budget of `serve_tcp` is four maximum-size messages.
    let server = start(LmtpConfig {
        max_message_size: 64 * 1024,
        ..LmtpConfig::default()
    });
    let chunk = {
        let mut v = b"Subject: big\r\n\r\n".to_vec();
        for _ in 0..600 {
            v.extend_from_slice(&[b'z'; 98]);
            v.extend_from_slice(b"\r\n");
        }
        v
    };
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(server.addr);
        start_data(&mut c);
        c.send(&chunk);
        stalled.push(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Client::connect(server.addr);
    start_data(&mut c);
    c.send(&chunk);
    c.send(b".\r\n");
    assert!(c.reply().starts_with("451 4.3.1"));
    assert!(c.cmd("NOOP").starts_with("250"));
    // Once the others finish, the same message fits.
    for mut s in stalled {
        s.send(b".\r\n");
        assert!(s.reply().starts_with("250"));
    }
    start_data(&mut c);
    c.send(&chunk);
    c.send(b".\r\n");
    assert!(c.reply().starts_with("250"));
    assert_eq!(inbox_bodies(&server.store, "alice", "INBOX").len(), 5);
}

/// A message whose body is one line of a megabyte (with a leading dot, and a dot
/// where the server's reads may cut it) is stored byte for byte, Return-Path in
/// front, and the session goes on: long lines move into the body as they arrive.
#[test]
fn a_megabyte_line_is_stored_whole() {
    let server = start(LmtpConfig::default());
    let mut c = Client::connect(server.addr);
    c.cmd("LHLO x");
    c.cmd("MAIL FROM:<a@b>");
    c.cmd("RCPT TO:<alice@x>");
    assert!(c.cmd("DATA").starts_with("354"));
    let line: Vec<u8> = (0..1 << 20)
        .map(|i| {
            if i % 4099 == 0 {
                b'.'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    let mut wire = b"Subject: long\r\n\r\n.".to_vec();
    wire.extend_from_slice(&line);
    wire.extend_from_slice(b"\r\nend\r\n.\r\n");
    c.send(&wire);
    assert!(c.reply().starts_with("250"));
    assert!(c.cmd("NOOP").starts_with("250"));
    let mut want = b"Return-Path: <a@b>\r\nSubject: long\r\n\r\n".to_vec();
    want.extend_from_slice(&line);
    want.extend_from_slice(b"\r\nend\r\n");
    assert!(inbox_bodies(&server.store, "alice", "INBOX") == vec![want]);
}
