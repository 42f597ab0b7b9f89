//! What replication tests share: a master and a replica (`Pair`), `tern sync` runs,
//! IMAP snapshots compared on both sides (`tests/python/imap_snapshot.py`), a raw
//! sync-protocol client, and a seeded PRNG. Included by each replication test file with
//! `mod common; mod pair;`.

#![allow(dead_code)]

use crate::common::*;
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
pub const PASSWORD: &str = "secret";
pub const REPL_PASSWORD: &str = "repl-secret";

// ------------------------------------------------------------------------------------
// Processes

/// A free loopback port for a listener that must keep its number across restarts.
///
/// Taken below the kernel's ephemeral range, where every `:0` listener and every
/// client socket of the parallel tests lands: a port from that range, released here,
/// could be taken by one of them before the server binds it (seen in CI as a replica
/// that exited before "tern ready"). Below it, ports are handed out by a counter, so
/// no two tests of this process get the same one.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32768)
        .clamp(12_000, 65_535);
    let span = ephemeral_low - 10_000;
    let start = std::process::id() as usize * 131 % span;
    for _ in 0..span {
        let port = (10_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral_low}")
}

/// Runs a command with stdin `input`, killing it (and failing) after `limit`.
pub fn run_limited(mut cmd: Command, input: Option<&[u8]>, limit: Duration, what: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(bytes).unwrap();
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}, killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// `tern --config CONFIG sync ARGS`.
pub fn tern_sync(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(TERN);
    cmd.arg("--config")
        .arg(config)
        .arg("sync")
        .args(args)
        .env("TERN_LOG", "info");
    run_limited(
        cmd,
        None,
        Duration::from_secs(120),
        &format!("tern sync {args:?}"),
    )
}

/// `tern sync ARGS`, asserting success; returns the summary line.
pub fn sync_ok(config: &Path, args: &[&str]) -> String {
    let out = tern_sync(config, args);
    assert!(
        out.status.success(),
        "tern sync {args:?} failed\n{}",
        show(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("synced "))
        .unwrap_or_else(|| panic!("tern sync {args:?}: no summary line in\n{stdout}"))
        .to_owned();
    line
}

/// `tern sync --verify ARGS`: (clean, stdout + stderr).
pub fn verify(config: &Path, args: &[&str]) -> (bool, String) {
    // Every record and blob compared, not only the digests: tests want the strictest.
    let mut all = vec!["--verify", "--deep"];
    all.extend_from_slice(args);
    let out = tern_sync(config, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("verify: "))
        .map(str::to_owned);
    let clean = out.status.success();
    if clean {
        let summary = summary.unwrap_or_else(|| panic!("verify: no summary line\n{}", show(&out)));
        assert!(
            summary.ends_with(" 0 differences") && !stdout.contains("DIFF "),
            "verify exited 0 but reports differences\n{}",
            show(&out)
        );
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "verify failed (not with differences)\n{}",
            show(&out)
        );
        assert!(
            stdout.contains("DIFF "),
            "verify exited 1 without DIFF lines\n{}",
            show(&out)
        );
    }
    (clean, show(&out))
}

pub fn assert_verify_clean(config: &Path) {
    let (clean, text) = verify(config, &[]);
    assert!(clean, "tern sync --verify found differences\n{text}");
}

/// A number in a summary line: the word before `unit` (`"6 mailboxes"`).
pub fn summary_number(summary: &str, unit: &str) -> u64 {
    let words: Vec<&str> = summary
        .split([' ', ',', ';'])
        .filter(|w| !w.is_empty())
        .collect();
    let i = words
        .iter()
        .position(|w| *w == unit)
        .unwrap_or_else(|| panic!("no `{unit}` in summary {summary:?}"));
    words[i - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no number before `{unit}` in {summary:?}"))
}

pub fn add_user(config: &Path, name: &str, password: &str, is_admin: bool) {
    let mut args = vec!["user", "add", name, "--password-stdin"];
    if is_admin {
        args.push("--admin");
    }
    let out = admin(config, &args, Some(&format!("{password}\n")));
    assert!(
        out.status.success(),
        "tern admin user add {name}\n{}",
        show(&out)
    );
}

/// The replica: a sync listener on `sync_port`, the administrator `repl`.
pub fn start_replica(root: &Path, sync_port: u16, extra: &str) -> TernServer {
    let first = !root.join("data").exists();
    let server = TernServer::start_with(root, extra, &format!("sync = \"127.0.0.1:{sync_port}\""));
    assert_eq!(
        server.sync.map(|a| a.port()),
        Some(sync_port),
        "replica's sync listener"
    );
    if first {
        add_user(&server.config, "repl", REPL_PASSWORD, true);
    }
    server
}

pub fn replication_section(sync_port: u16, password: &str) -> String {
    format!("[replication]\nreplica = \"127.0.0.1:{sync_port}\"\nuser = \"repl\"\npassword = \"{password}\"\n")
}

/// The master, replicating to the replica at `sync_port`, with the user alice.
pub fn start_master(root: &Path, sync_port: u16, top: &str) -> TernServer {
    let extra = format!("{top}\n{}", replication_section(sync_port, REPL_PASSWORD));
    let server = TernServer::start(root, &extra);
    add_user(&server.config, "alice", PASSWORD, false);
    server
}

/// A master and a replica in one temporary directory.
pub struct Pair {
    pub _tmp: tempfile::TempDir,
    pub master: TernServer,
    pub replica: TernServer,
    pub replica_root: PathBuf,
    pub sync_port: u16,
    pub replica_extra: String,
    /// The master's top-level config lines (kept for `restart_master`).
    pub master_top: String,
}

impl Pair {
    pub fn new() -> Pair {
        Pair::with_config("", "")
    }

    /// `master_top`/`replica_top`: top-level config lines of each side.
    pub fn with_config(master_top: &str, replica_top: &str) -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let sync_port = free_port();
        let replica_root = tmp.path().join("replica");
        std::fs::create_dir(&replica_root).unwrap();
        let master_root = tmp.path().join("master");
        std::fs::create_dir(&master_root).unwrap();
        let replica = start_replica(&replica_root, sync_port, replica_top);
        let master = start_master(&master_root, sync_port, master_top);
        Pair {
            _tmp: tmp,
            master,
            replica,
            replica_root,
            sync_port,
            replica_extra: replica_top.to_owned(),
            master_top: master_top.to_owned(),
        }
    }

    pub fn mconf(&self) -> &Path {
        &self.master.config
    }

    pub fn sync_addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.sync_port).parse().unwrap()
    }

    /// kill -9 the replica and start it again on the same data and sync port.
    pub fn restart_replica(&mut self) {
        self.replica.kill9();
        self.replica = start_replica(&self.replica_root, self.sync_port, &self.replica_extra);
    }

    /// kill -9 the master and start it again on the same data and configuration (its
    /// IMAP and LMTP ports change).
    pub fn restart_master(&mut self) {
        let root = self.master.root.clone();
        self.master.kill9();
        let extra = format!(
            "{}\n{}",
            self.master_top,
            replication_section(self.sync_port, REPL_PASSWORD)
        );
        self.master = TernServer::start(&root, &extra);
    }
}

// ------------------------------------------------------------------------------------
// Mail

/// A distinct message; `tag` and `i` make its Message-ID.
pub fn message(tag: &str, i: usize) -> Vec<u8> {
    let pad = "lorem ipsum dolor sit amet ".repeat(i % 7 + 1);
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@example.org\r\nSubject: {tag} number {i}\r\n\
         Date: Mon, 03 Jun 2024 12:{:02}:00 +0000\r\nMessage-ID: <{tag}-{i}@example.org>\r\n\r\n\
         Body of {tag} {i}.\r\n{pad}\r\n",
        i % 60
    )
    .into_bytes()
}

/// Delivers messages `range` of `tag` over LMTP to `user+folder` (INBOX for "").
pub fn deliver(
    server: &TernServer,
    user: &str,
    folder: &str,
    tag: &str,
    range: std::ops::Range<usize>,
) {
    let mut c = Lmtp::connect(server.lmtp).unwrap();
    let rcpt = if folder.is_empty() {
        format!("{user}@example.org")
    } else {
        // `user+folder@` delivers into the folder only where anyone may post.
        let store = open_store(&server.data_dir());
        let m = store.mailbox(user, folder).unwrap().unwrap();
        let acl = tern_store::Acl::parse(&m.acl);
        if !acl.anyone_may_post() {
            let rights = acl.get("anyone") | tern_store::Rights::POST;
            store
                .set_acl(&owner(user), &m.uniqueid, "anyone", Some(rights))
                .unwrap();
        }
        format!("{user}+{folder}@example.org")
    };
    for i in range {
        let replies = c
            .deliver("sender@example.org", &[&rcpt], &message(tag, i))
            .unwrap();
        assert!(
            replies.len() == 1 && replies[0].starts_with("250"),
            "LMTP delivery of {tag}-{i} to {rcpt}: {replies:?}"
        );
    }
}

// ------------------------------------------------------------------------------------
// IMAP, through tests/python/imap_snapshot.py

pub fn python(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("python3");
    cmd.args(args);
    run_limited(
        cmd,
        input,
        Duration::from_secs(120),
        &format!("python3 {args:?}"),
    )
}

pub fn script() -> String {
    format!("{PYTHON_DIR}/imap_snapshot.py")
}

/// What a user sees over IMAP: the JSON snapshot (in a file) and its lines.
pub struct Snapshot {
    pub json: PathBuf,
    pub lines: Vec<String>,
}

/// One message as the snapshot has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub mailbox: String,
    pub uid: u32,
    pub flags: BTreeSet<String>,
    pub size: u64,
    pub sha1: String,
    pub message_id: String,
}

impl Snapshot {
    pub fn take(imap: SocketAddr, user: &str, password: &str, dir: &Path, label: &str) -> Snapshot {
        static N: AtomicUsize = AtomicUsize::new(0);
        let json = dir.join(format!(
            "snap-{label}-{}.json",
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let out = python(
            &[
                &script(),
                &imap.ip().to_string(),
                &imap.port().to_string(),
                user,
                password,
                "snapshot",
                json.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "IMAP snapshot of {label} ({imap}) failed\n{}",
            show(&out)
        );
        let lines = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        Snapshot { json, lines }
    }

    pub fn mailboxes(&self) -> BTreeMap<String, Vec<u64>> {
        self.lines
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0] == "MBOX").then(|| {
                    (
                        f[1].to_owned(),
                        f[2..].iter().map(|x| x.parse().unwrap()).collect(),
                    )
                })
            })
            .collect()
    }

    pub fn messages(&self) -> Vec<Msg> {
        self.lines
            .iter()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0] == "MSG").then(|| Msg {
                    mailbox: f[1].to_owned(),
                    uid: f[2].parse().unwrap(),
                    flags: f[3]
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    size: f[4].parse().unwrap(),
                    sha1: f[5].to_owned(),
                    message_id: f[6].to_owned(),
                })
            })
            .collect()
    }

    pub fn in_mailbox(&self, mailbox: &str) -> Vec<Msg> {
        self.messages()
            .into_iter()
            .filter(|m| m.mailbox == mailbox)
            .collect()
    }

    pub fn by_message_id(&self, mailbox: &str, id: &str) -> Vec<Msg> {
        self.in_mailbox(mailbox)
            .into_iter()
            .filter(|m| m.message_id == id)
            .collect()
    }

    /// The ACL of a mailbox: "ident rights" items, rights sorted.
    pub fn acl(&self, mailbox: &str) -> Vec<String> {
        self.lines
            .iter()
            .find_map(|l| {
                l.strip_prefix(&format!("ACL\t{mailbox}\t")).map(|a| {
                    a.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    pub fn subscriptions(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("SUB\t").map(str::to_owned))
            .collect()
    }

    /// The differences from `other` as readable lines (empty when equal).
    pub fn diff(&self, other: &Snapshot, la: &str, lb: &str) -> Option<String> {
        let out = python(
            &[
                &script(),
                "compare",
                self.json.to_str().unwrap(),
                other.json.to_str().unwrap(),
                la,
                lb,
            ],
            None,
        );
        match out.status.code() {
            Some(0) => None,
            Some(1) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
            _ => panic!("imap_snapshot.py compare failed\n{}", show(&out)),
        }
    }
}

pub fn snap(server: &TernServer, user: &str, label: &str) -> Snapshot {
    Snapshot::take(server.imap, user, PASSWORD, &server.root, label)
}

/// Asserts that master and replica look the same over IMAP for `user`; returns the
/// master's snapshot.
pub fn assert_same(master: &TernServer, replica: &TernServer, user: &str, when: &str) -> Snapshot {
    let m = snap(master, user, "master");
    let r = snap(replica, user, "replica");
    if let Some(diff) = m.diff(&r, "master", "replica") {
        panic!("{when}: {user}'s account differs between master and replica over IMAP:\n{diff}");
    }
    assert!(!m.lines.is_empty(), "{when}: empty snapshot");
    m
}

/// Runs IMAP operations (a JSON list, see imap_snapshot.py `run`) as `user`.
pub fn imap_run(server: &TernServer, user: &str, ops: &str) -> String {
    let out = python(
        &[
            &script(),
            &server.imap.ip().to_string(),
            &server.imap.port().to_string(),
            user,
            PASSWORD,
            "run",
        ],
        Some(ops.as_bytes()),
    );
    assert!(
        out.status.success(),
        "IMAP operations failed on {}:\n{ops}\n{}",
        server.imap,
        show(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn mailbox_list(config: &Path, user: &str) -> Vec<String> {
    admin_ok(config, &["mailbox", "list", user])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The unique id of a live mailbox, from `tern admin mailbox list`.
pub fn uniqueid(config: &Path, user: &str, name: &str) -> String {
    for line in mailbox_list(config, user) {
        let f: Vec<&str> = line.split(' ').collect();
        if f[0] == name && f.len() == 7 {
            return f[5].to_owned();
        }
    }
    panic!(
        "no mailbox {name} in `tern admin mailbox list {user}`:\n{:?}",
        mailbox_list(config, user)
    );
}

pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------------------------------
// A raw sync-protocol session

pub struct RawSync {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    pub greeting: String,
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl RawSync {
    pub fn connect(addr: SocketAddr) -> RawSync {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut s = RawSync {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            greeting: String::new(),
        };
        s.greeting = s.line().expect("no greeting from the sync port");
        s
    }

    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        }
    }

    /// Sends `text` CRLF; returns every response line up to the tagged one (last).
    pub fn cmd(&mut self, tag: &str, text: &str) -> Vec<String> {
        self.writer
            .write_all(format!("{tag} {text}\r\n").as_bytes())
            .unwrap();
        self.read_tagged(tag)
    }

    pub fn read_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .line()
                .unwrap_or_else(|| panic!("connection closed before `{tag}` completed: {lines:?}"));
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn authenticate(&mut self, user: &str, password: &str) -> String {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        self.cmd("a1", &format!("AUTHENTICATE PLAIN {token}"))
            .pop()
            .unwrap()
    }
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

pub struct Rolling {
    pub child: Child,
    pub log: PathBuf,
}

pub fn start_rolling(config: &Path, log: &Path) -> Rolling {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(TERN)
        .arg("--config")
        .arg(config)
        .args(["sync", "--rolling"])
        .env("TERN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Rolling {
        child,
        log: log.to_owned(),
    }
}

impl Drop for Rolling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
