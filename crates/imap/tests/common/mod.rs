//! An in-process IMAP listener on an ephemeral port, and a raw-protocol client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tern_imap::ImapConfig;
use tern_store::{Flags, Store, StoreConfig};

pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    _stop: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

pub fn start() -> Server {
    start_with(ImapConfig {
        auth_failure_delay: Duration::from_millis(10),
        ..ImapConfig::default()
    })
}

pub fn start_with(config: ImapConfig) -> Server {
    start_with_store(config, |_| {})
}

/// A server whose store configuration `f` adjusts.
pub fn start_with_store(config: ImapConfig, f: impl FnOnce(&mut StoreConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut store_config = StoreConfig::new(dir.path());
    f(&mut store_config);
    let store = Store::open(
        store_config,
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
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    runtime.spawn(tern_imap::serve_tcp(
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

impl Server {
    /// Appends a message through the store (as a delivery would).
    pub fn deliver(&self, user: &str, mailbox: &str, message: &str) -> u32 {
        self.store
            .append_as_owner(
                user,
                mailbox,
                &Flags::new(),
                1_700_000_000,
                message.as_bytes(),
            )
            .unwrap()
            .uid
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next_tag: 1,
        };
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c
    }

    pub fn login(addr: SocketAddr, user: &str) -> Client {
        let mut c = Client::connect(addr);
        let r = c.cmd(&format!("LOGIN {user} pw"));
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// One response line, with any literals it announces read into it.
    pub fn line(&mut self) -> String {
        let out = self.line_bytes();
        let s = String::from_utf8_lossy(&out).into_owned();
        s.trim_end_matches("\r\n").to_owned()
    }

    /// One response line as bytes (literals included, `~{n}` too, line end kept).
    pub fn line_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).unwrap();
            assert!(
                n > 0,
                "connection closed after {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&line);
            // A literal {n}\r\n at the end of the line: read n bytes and keep going.
            let trimmed = line.strip_suffix(b"\r\n").unwrap_or(&line);
            if let Some(open) = trimmed.iter().rposition(|&b| b == b'{') {
                if trimmed.last() == Some(&b'}') {
                    if let Ok(len) = std::str::from_utf8(&trimmed[open + 1..trimmed.len() - 1])
                        .unwrap_or("x")
                        .parse::<usize>()
                    {
                        let mut lit = vec![0u8; len];
                        self.reader.read_exact(&mut lit).unwrap();
                        out.extend_from_slice(&lit);
                        continue;
                    }
                }
            }
            return out;
        }
    }

    /// Sends a tagged command and returns every response line up to and including the
    /// tagged one.
    pub fn cmd(&mut self, command: &str) -> Vec<String> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until_tagged(&tag)
    }

    pub fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// `cmd`, asserting a tagged OK.
    pub fn ok(&mut self, command: &str) -> Vec<String> {
        let r = self.cmd(command);
        assert!(
            r.last().unwrap().split(' ').nth(1) == Some("OK"),
            "{command}: {r:?}"
        );
        r
    }
}

impl Server {
    /// Starts an implicit-TLS listener on an ephemeral port beside the plain one (same
    /// store; `config.tls` must be set) and returns its address.
    pub fn spawn_imaps(&self, config: ImapConfig) -> SocketAddr {
        let listener = self
            ._runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tern_imap::ImapServer::new(self.store.clone(), config);
        self._runtime
            .spawn(server.serve_tls(listener, self._stop.subscribe()));
        addr
    }
}

impl Client {
    /// True when the server has closed the connection (reads end of input; any
    /// bytes still arriving are read and ignored).
    pub fn closed(&mut self) -> bool {
        let mut sink = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut self.reader, &mut sink) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The URL in a `* GENURLAUTH "..."` answer (URLAUTH tests).
pub fn signed(lines: &[String]) -> String {
    let l = lines
        .iter()
        .find(|l| l.starts_with("* GENURLAUTH "))
        .unwrap_or_else(|| panic!("no GENURLAUTH in {lines:?}"));
    l["* GENURLAUTH ".len()..].trim_matches('"').to_owned()
}
