//! A `tern serve` process for end-to-end tests: its own data directory and config,
//! loopback listeners on ephemeral ports, stopped when dropped.

#![allow(dead_code)]

pub mod imap;
pub mod maildir;
pub mod tmux;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const TERN: &str = env!("CARGO_BIN_EXE_tern");

pub struct TernServer {
    pub root: PathBuf,
    pub config: PathBuf,
    pub lmtp: SocketAddr,
    pub imap: SocketAddr,
    pub lmtp_socket: PathBuf,
    /// The replica's sync listener, when `[listen] sync` was configured.
    pub sync: Option<SocketAddr>,
    /// The implicit-TLS IMAP listener, when `[listen] imaps` was configured.
    pub imaps: Option<SocketAddr>,
    /// The NNTP listener, when `[listen] nntp` was configured.
    pub nntp: Option<SocketAddr>,
    /// The POP3 listener, when `[listen] pop3` was configured.
    pub pop3: Option<SocketAddr>,
    /// What the server logged up to "tern ready".
    pub startup_log: Vec<String>,
    /// What it logs after that, line by line.
    log: mpsc::Receiver<String>,
    child: Option<Child>,
}

/// Writes a config for an instance rooted at `root` (data in `root/data`).
pub fn write_config(root: &Path, extra: &str) -> PathBuf {
    write_config_with(root, extra, "")
}

/// As [`write_config`], with more lines in `[listen]` (e.g. `sync = "127.0.0.1:0"`).
pub fn write_config_with(root: &Path, extra: &str, listen: &str) -> PathBuf {
    let config = root.join("tern.toml");
    let text = format!(
        "data_dir = {:?}\n{extra}\n[listen]\nlmtp = \"127.0.0.1:0\"\nimap = \"127.0.0.1:0\"\nlmtp_socket = {:?}\n{listen}\n",
        root.join("data"),
        root.join("lmtp.sock"),
    );
    std::fs::write(&config, text).unwrap();
    config
}

impl TernServer {
    /// Starts a server on the instance at `root` and waits until it is ready.
    pub fn start(root: &Path, extra: &str) -> TernServer {
        TernServer::start_with(root, extra, "")
    }

    /// Starts a server whose `[listen]` also has the lines `listen` (e.g. a sync
    /// listener: `sync = "127.0.0.1:0"`).
    pub fn start_with(root: &Path, extra: &str, listen: &str) -> TernServer {
        let config = write_config_with(root, extra, listen);
        let mut child = Command::new(TERN)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("TERN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tern serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let mut lmtp = None;
        let mut imap = None;
        let mut sync = None;
        let mut imaps = None;
        let mut nntp = None;
        let mut pop3 = None;
        let mut startup_log = Vec::new();
        loop {
            let line = match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => line,
                Err(e) => panic!(
                    "tern serve did not become ready ({e}); it said:\n{}",
                    startup_log.join("\n")
                ),
            };
            if let Some(addr) = line.split("lmtp listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    lmtp = Some(a);
                }
            }
            if let Some(addr) = line.split("imap listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    imap = Some(a);
                }
            }
            if let Some(addr) = line.split("sync listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    sync = Some(a);
                }
            }
            if let Some(addr) = line.split("imaps listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    imaps = Some(a);
                }
            }
            if let Some(addr) = line.split("nntp listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    nntp = Some(a);
                }
            }
            if let Some(addr) = line.split("pop3 listening on ").nth(1) {
                if let Ok(a) = addr.trim().parse() {
                    pop3 = Some(a);
                }
            }
            let ready = line.contains("tern ready");
            startup_log.push(line);
            if ready {
                break;
            }
        }
        TernServer {
            root: root.to_owned(),
            config,
            lmtp: lmtp.expect("no lmtp address logged"),
            imap: imap.expect("no imap address logged"),
            lmtp_socket: root.join("lmtp.sock"),
            sync,
            imaps,
            nntp,
            pop3,
            startup_log,
            log: rx,
            child: Some(child),
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits up to `limit` for a log line (after "tern ready") containing `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Sends a signal (`kill -NAME`), e.g. "HUP".
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("server stopped");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for TernServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A finished command's exit status and both outputs, for a failure message.
pub fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `tern --config CONFIG admin ARGS`, with `stdin` fed to it.
pub fn admin(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(TERN)
        .arg("--config")
        .arg(config)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs `tern --config CONFIG SUBCOMMAND ARGS` (`expire`, `check`, ...) to the end.
pub fn tern_tool(config: &Path, subcommand: &str, args: &[&str]) -> Output {
    Command::new(TERN)
        .arg("--config")
        .arg(config)
        .arg(subcommand)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The number after `key=` on the `total ...` line a tool printed last.
pub fn total(out: &Output, key: &str) -> u64 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("total "))
        .unwrap_or_else(|| panic!("no total line in {stdout}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// `admin`, asserting success, returning stdout.
pub fn admin_ok(config: &Path, args: &[&str]) -> String {
    let out = admin(config, args, None);
    assert!(
        out.status.success(),
        "tern admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A minimal LMTP client for tests that need exact control of the bytes sent.
pub struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Lmtp {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Lmtp> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Lmtp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = c.reply()?;
        assert!(greeting.starts_with("220"), "{greeting}");
        c.cmd("LHLO test")?;
        Ok(c)
    }

    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            all.push_str(line.trim_end());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
            all.push('\n');
        }
    }

    pub fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One transaction; returns the DATA replies, one per accepted recipient.
    /// `message` must use CRLF and contain no line with a lone dot.
    pub fn deliver(
        &mut self,
        from: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> std::io::Result<Vec<String>> {
        self.cmd(&format!("MAIL FROM:<{from}>"))?;
        let mut accepted = 0;
        for r in rcpts {
            if self.cmd(&format!("RCPT TO:<{r}>"))?.starts_with("250") {
                accepted += 1;
            }
        }
        let go = self.cmd("DATA")?;
        if !go.starts_with("354") {
            return Ok(vec![go]);
        }
        let mut stuffed = Vec::with_capacity(message.len() + 8);
        let mut at_start = true;
        for &b in message {
            if at_start && b == b'.' {
                stuffed.push(b'.');
            }
            stuffed.push(b);
            at_start = b == b'\n';
        }
        stuffed.extend_from_slice(b".\r\n");
        self.writer.write_all(&stuffed)?;
        (0..accepted).map(|_| self.reply()).collect()
    }
}

/// Opens the store of a (possibly running) instance, as `tern admin` would.
pub fn open_store(data_dir: &Path) -> tern_store::Store {
    tern_store::Store::open(
        tern_store::StoreConfig::new(data_dir),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .unwrap()
}

/// The blob file of alice's INBOX record `uid` in the data directory `data` (tests
/// damage it on purpose).
pub fn inbox_blob(data: &Path, uid: u32) -> PathBuf {
    let store = open_store(data);
    let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
    let record = store
        .records_by_uid(&owner("alice"), &inbox.uniqueid, &[uid])
        .unwrap()
        .remove(0);
    store.blobs().path("default", &record.guid).unwrap()
}

/// The owner of a user's mailboxes, as an actor for store calls.
pub fn owner(user: &str) -> tern_store::Actor {
    tern_store::Actor {
        name: user.to_owned(),
        is_admin: false,
    }
}

/// A server with NNTP on, alice (password [`maildir::PASSWORD`]), and the groups tern.test
/// (anonymous read, description "Testing") and tern.staff (logged-in users only).
pub fn news_server(root: &Path) -> TernServer {
    let server = TernServer::start_with(
        root,
        "[nntp]\nmax_article_size = 65536\n",
        "nntp = \"127.0.0.1:0\"",
    );
    maildir::add_user(&server, "alice");
    admin_ok(
        &server.config,
        &[
            "newsgroup",
            "create",
            "tern.test",
            "--description",
            "Testing",
            "--anonymous-read",
        ],
    );
    admin_ok(&server.config, &["newsgroup", "create", "tern.staff"]);
    server
}
