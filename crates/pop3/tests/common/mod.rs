//! An in-process POP3 listener on an ephemeral port, and a raw-protocol client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tern_pop3::{Pop3Config, Pop3Server};
use tern_store::{Flags, Store, StoreConfig};

pub struct Server {
    pub addr: SocketAddr,
    /// The implicit-TLS listener, when the configuration has TLS.
    pub tls_addr: Option<SocketAddr>,
    pub store: Store,
    _stop: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

pub fn start() -> Server {
    start_with(Pop3Config {
        auth_failure_delay: Duration::from_millis(10),
        ..Pop3Config::default()
    })
}

pub fn start_with(config: Pop3Config) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        StoreConfig::new(dir.path()),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .unwrap();
    store.create_user("alice", Some("pw"), false).unwrap();
    store.create_user("bob", Some("pw"), false).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bind = || {
        runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap()
    };
    let listener = bind();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let has_tls = config.tls.is_some();
    let server = Pop3Server::new(store.clone(), config);
    let tls_addr = if has_tls {
        let tls_listener = bind();
        let tls_addr = tls_listener.local_addr().unwrap();
        runtime.spawn(server.clone().serve_tls(tls_listener, stopped.clone()));
        Some(tls_addr)
    } else {
        None
    };
    runtime.spawn(server.serve_tcp(listener, stopped));
    Server {
        addr,
        tls_addr,
        store,
        _stop: stop,
        _runtime: runtime,
        _dir: dir,
    }
}

impl Server {
    /// Appends a message to INBOX through the store (as a delivery would).
    pub fn deliver(&self, user: &str, message: &str) -> u32 {
        self.store
            .append_as_owner(
                user,
                "INBOX",
                &Flags::new(),
                1_700_000_000,
                message.as_bytes(),
            )
            .unwrap()
            .uid
    }

    /// The UIDs of INBOX's live messages, as IMAP would see them.
    pub fn live_uids(&self, user: &str) -> Vec<u32> {
        let actor = tern_store::Actor {
            name: user.to_owned(),
            is_admin: false,
        };
        let inbox = self.store.mailbox(user, "INBOX").unwrap().unwrap();
        self.store.live_uids(&actor, &inbox.uniqueid).unwrap().1
    }

    pub fn uidvalidity(&self, user: &str) -> u32 {
        self.store
            .mailbox(user, "INBOX")
            .unwrap()
            .unwrap()
            .uidvalidity
    }

    pub fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.addr).unwrap())
    }
}

/// A line-oriented client over any stream.
pub struct Client<S: Read + Write> {
    pub reader: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        let mut c = Client {
            reader: BufReader::new(stream),
        };
        let greeting = c.line();
        assert!(greeting.starts_with("+OK "), "{greeting}");
        c
    }

    pub fn send(&mut self, line: &str) {
        let s = self.reader.get_mut();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\r\n").unwrap();
        s.flush().unwrap();
    }

    /// One line without its CRLF (which must be there).
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).unwrap();
        assert!(buf.ends_with(b"\r\n"), "line not ending in CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    /// Sends `line`, returns the one-line answer.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// The lines of a multi-line answer after its status line, still dot-stuffed,
    /// up to (not including) the terminating `.`.
    pub fn multi(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return lines;
            }
            lines.push(l);
        }
    }

    /// The body of a multi-line answer as bytes, dot-unstuffed, CRLFs kept.
    pub fn body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        for l in self.multi() {
            let l = l.strip_prefix('.').unwrap_or(&l);
            body.extend_from_slice(l.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        body
    }

    pub fn login(&mut self, user: &str) {
        assert!(self.cmd(&format!("USER {user}")).starts_with("+OK"));
        let r = self.cmd("PASS pw");
        assert!(r.starts_with("+OK"), "{r}");
    }
}

/// Base64, for SASL (the tests avoid a dependency for it).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A message with dot-leading lines and a body of `lines` lines.
pub fn message(subject: &str, lines: usize) -> String {
    let mut m = format!(
        "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\n"
    );
    for i in 0..lines {
        if i % 3 == 1 {
            m.push_str(&format!(".line {i} starts with a dot\r\n"));
        } else {
            m.push_str(&format!("line {i}\r\n"));
        }
    }
    m
}
