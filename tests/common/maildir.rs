//! Mail accounts synchronised with a Maildir by clients tern did not write (mbsync,
//! offlineimap): alice's server, her mail, and both sides of the synchronisation as
//! a user would compare them.

use super::{admin, show, Lmtp, TernServer};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
pub const PASSWORD: &str = "secret";

/// A server with the user alice (password [`PASSWORD`], default mailboxes).
pub fn server_with_alice(root: &Path) -> TernServer {
    let server = TernServer::start(root, "");
    add_user(&server, "alice");
    server
}

/// Adds a user with the password [`PASSWORD`] to a running server.
pub fn add_user(server: &TernServer, name: &str) {
    let out = admin(
        &server.config,
        &["user", "add", name, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "tern admin user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Delivers to alice's INBOX the three messages the scripted client sessions
/// (`tests/php`, `tests/perl`, `tests/ruby`) expect: message N has the subject
/// "TAG N", the Message-ID `<TAG-N@example.org>`, comes from "Sender N"
/// <sN@example.org> to alice and "Bob B", and is multipart/mixed: a text part
/// "Hello N, WORD." (WORD is "wombat" for the second, "quokka" otherwise) and a
/// base64 attachment of the bytes 0..5.
pub fn deliver_three(server: &TernServer, tag: &str) {
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    for n in 1..=3 {
        let word = if n == 2 { "wombat" } else { "quokka" };
        let msg = format!(
            "From: Sender {n} <s{n}@example.org>\r\nTo: alice@example.org, \"Bob B\" <bob@example.org>\r\n\
             Subject: {tag} {n}\r\nDate: Mon, 0{n} Jun 2025 10:00:00 +0200\r\n\
             Message-ID: <{tag}-{n}@example.org>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
             --b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}, {word}.\r\n\
             --b{n}\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b{n}--\r\n"
        );
        let r = lmtp
            .deliver("sender@example.org", &["alice@localhost"], msg.as_bytes())
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
}

/// Runs a scripted client session, `program script [before...] PORT alice PASSWORD`
/// (`tests/php`, `tests/perl`, `tests/ruby`), against a server port; it must exit 0
/// and print exactly "ok". `needs` says what `.ci/run` installs for it.
pub fn scripted_session(
    program: &str,
    script: &str,
    before: &[&std::ffi::OsStr],
    port: u16,
    needs: &str,
) {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(program)
        .arg(&path)
        .args(before)
        .arg(port.to_string())
        .args(["alice", PASSWORD])
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed ({needs}): {e}"));
    assert!(out.status.success(), "{script}: {}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{script}");
}

pub fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (.ci/run installs it)")
}

/// alice's account on a running server, as the synchronisation tests see it: mail
/// delivered over LMTP, and the server's side read and changed over imaplib
/// (`tests/python/imap_state.py`).
pub struct Account {
    pub server: TernServer,
    /// Names the test messages' Message-IDs (`<tool-n@example.org>`).
    pub tool: &'static str,
}

impl Account {
    pub fn new(root: &Path, tool: &'static str) -> Account {
        Account {
            server: server_with_alice(root),
            tool,
        }
    }

    /// The Message-ID of test message `n`.
    pub fn id(&self, n: u32) -> String {
        format!("<{}-{n}@example.org>", self.tool)
    }

    /// Delivers test message `n` to alice's INBOX; returns it as stored.
    pub fn deliver(&self, n: u32) -> Vec<u8> {
        let msg = message(self.tool, n);
        let mut lmtp = Lmtp::connect(self.server.lmtp).unwrap();
        let r = lmtp
            .deliver("sender@example.org", &["alice@localhost"], &msg)
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
        [b"Return-Path: <sender@example.org>\r\n".as_slice(), &msg].concat()
    }

    /// The server's view of a mailbox, by Message-ID: (UID, flags, SHA-1 of the
    /// message, SHA-1 of the message as a Maildir holds it: see [`as_in_maildir`]).
    pub fn server_state(
        &self,
        mailbox: &str,
    ) -> BTreeMap<String, (u32, BTreeSet<String>, String, String)> {
        let out = self.imap_state(&["dump", mailbox]);
        out.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let flags = f[1].split_whitespace().map(str::to_owned).collect();
                (
                    f[3].to_owned(),
                    (
                        f[0].parse().unwrap(),
                        flags,
                        f[2].to_owned(),
                        f[4].to_owned(),
                    ),
                )
            })
            .collect()
    }

    /// Runs `imap_state.py` with `args` against the server; its output.
    pub fn imap_state(&self, args: &[&str]) -> String {
        let script = format!("{PYTHON_DIR}/imap_state.py");
        let (ip, port) = (
            self.server.imap.ip().to_string(),
            self.server.imap.port().to_string(),
        );
        let mut all = vec![script.as_str(), &ip, &port];
        all.extend_from_slice(args);
        let out = python(&all);
        assert!(
            out.status.success(),
            "imap_state.py {args:?}\n{}",
            show(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A Maildir synchronised with alice's account by a client tern did not write.
pub struct MaildirSync {
    pub account: Account,
    pub maildir: PathBuf,
    /// The client's command line: program, then arguments.
    command: Vec<String>,
    env: Vec<(String, String)>,
    /// Where the program comes from, for the message when it is missing.
    package: &'static str,
    /// Text the client prints for a failure its exit status does not report.
    error_marker: Option<&'static str>,
    /// Output of the last run.
    log: String,
}

impl std::ops::Deref for MaildirSync {
    type Target = Account;
    fn deref(&self) -> &Account {
        &self.account
    }
}

impl MaildirSync {
    /// `command` synchronises `account` with the Maildir at `maildir` (created here).
    pub fn new(
        account: Account,
        maildir: PathBuf,
        command: &[&str],
        package: &'static str,
    ) -> MaildirSync {
        std::fs::create_dir_all(&maildir).unwrap();
        MaildirSync {
            account,
            maildir,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            package,
            error_marker: None,
            log: String::new(),
        }
    }

    /// Runs the client with `name` set to `value` in its environment.
    pub fn env(mut self, name: &str, value: &Path) -> MaildirSync {
        self.env
            .push((name.to_owned(), value.display().to_string()));
        self
    }

    /// Fails a run whose output holds `marker`.
    pub fn error_marker(mut self, marker: &'static str) -> MaildirSync {
        self.error_marker = Some(marker);
        self
    }

    /// One synchronisation, requiring success.
    pub fn run(&mut self) {
        let program = &self.command[0];
        let out = Command::new(program)
            .args(&self.command[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{program} must be installed (Debian package {}; .ci/run installs it): {e}",
                    self.package
                )
            });
        self.log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{program} failed ({}):\n{}",
            out.status,
            self.log
        );
        if let Some(marker) = self.error_marker {
            assert!(
                !self.log.contains(marker),
                "{program} reported an error:\n{}",
                self.log
            );
        }
    }

    /// The last run's output, to append to a failure message.
    pub fn context(&self) -> String {
        format!(
            "\n--- last run of {} ---\n{}",
            self.command.join(" "),
            self.log
        )
    }

    /// Flags of every message of a local folder, by Message-ID.
    pub fn local_flags(&self, folder: &str) -> BTreeMap<String, BTreeSet<String>> {
        maildir_messages(&self.maildir.join(folder))
            .into_iter()
            .map(|(id, m)| (id, imap_flags(&m.flags)))
            .collect()
    }
}

impl Account {
    /// Flags of every message of a mailbox on the server, by Message-ID.
    pub fn remote_flags(&self, mailbox: &str) -> BTreeMap<String, BTreeSet<String>> {
        self.server_state(mailbox)
            .into_iter()
            .map(|(id, (_, flags, _, _))| (id, flags))
            .collect()
    }
}

/// Test message `n` (below 10) of a test of `tool`, with Message-ID `<tool-n@example.org>`.
pub fn message(tool: &str, n: u32) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@example.org\r\nSubject: sync test {n}\r\n\
         Date: Thu, 06 Jun 2024 10:0{n}:00 +0000\r\nMessage-ID: <{tool}-{n}@example.org>\r\n\r\n\
         Body of message {n}.\r\nSecond line.\r\n"
    )
    .into_bytes()
}

/// A message as a synchronising client writes it into a Maildir: LF line ends (mbsync
/// and offlineimap convert), and without the `X-TUID:` header mbsync inserts into every
/// message it copies (to find it again after an interruption). Neither is the
/// server's doing.
pub fn as_in_maildir(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let (head, body) = text
        .split_once("\n\n")
        .map_or((text.as_str(), None), |(h, b)| (h, Some(b)));
    let head: Vec<&str> = head
        .split('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("x-tuid:"))
        .collect();
    let mut out = head.join("\n");
    if let Some(b) = body {
        out.push_str("\n\n");
        out.push_str(b);
    }
    out.into_bytes()
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

pub struct MaildirMessage {
    pub path: PathBuf,
    /// The Maildir info flags (`:2,FS` → "FS"); empty for a file in `new/`.
    pub flags: String,
    pub content: Vec<u8>,
}

/// The messages of one Maildir folder, by Message-ID.
pub fn maildir_messages(folder: &Path) -> BTreeMap<String, MaildirMessage> {
    let mut out = BTreeMap::new();
    for sub in ["new", "cur"] {
        let dir = folder.join(sub);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let flags = name
                .split_once(":2,")
                .map(|(_, f)| f.to_owned())
                .unwrap_or_default();
            let content = std::fs::read(&path).unwrap();
            let id = message_id(&content)
                .unwrap_or_else(|| panic!("{} has no Message-ID", path.display()));
            assert!(
                out.insert(
                    id.clone(),
                    MaildirMessage {
                        path,
                        flags,
                        content
                    }
                )
                .is_none(),
                "{id} twice in {}",
                folder.display()
            );
        }
    }
    out
}

pub fn message_id(content: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.strip_prefix("Message-ID:")
                .or_else(|| l.strip_prefix("Message-Id:"))
        })
        .map(|v| v.trim().to_owned())
}

/// Maildir info letters as IMAP flags.
pub fn imap_flags(maildir_flags: &str) -> BTreeSet<String> {
    maildir_flags
        .chars()
        .filter_map(|c| match c {
            'D' => Some("\\Draft"),
            'F' => Some("\\Flagged"),
            'R' => Some("\\Answered"),
            'S' => Some("\\Seen"),
            'T' => Some("\\Deleted"),
            _ => None,
        })
        .map(str::to_owned)
        .collect()
}

pub fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|s| (*s).to_owned()).collect()
}

pub fn is_maildir(p: &Path) -> bool {
    ["cur", "new", "tmp"].iter().all(|d| p.join(d).is_dir())
}

/// Every message of `delivered` (by Message-ID) holds the same bytes (line ends and
/// the client's own header aside, see [`as_in_maildir`]) in the Maildir folder `local`
/// and on the server (`remote`, from [`Account::server_state`]).
pub fn assert_same_messages(
    delivered: &BTreeMap<String, Vec<u8>>,
    local: &BTreeMap<String, MaildirMessage>,
    remote: &BTreeMap<String, (u32, BTreeSet<String>, String, String)>,
    ctx: &str,
) {
    for (id, content) in delivered {
        let here = local
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not in the Maildir{ctx}"));
        assert!(
            as_in_maildir(&here.content) == as_in_maildir(content),
            "{id} differs in the Maildir{ctx}"
        );
        let there = remote
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not on the server{ctx}"));
        assert_eq!(
            there.2,
            sha1_hex(content),
            "{id} differs on the server{ctx}"
        );
    }
}

/// Both sides of a synchronisation as they were: the Maildir folder's file names
/// (which carry the flags) and the server's INBOX.
pub struct Sides {
    folder: PathBuf,
    local: BTreeSet<PathBuf>,
    remote: BTreeMap<String, (u32, BTreeSet<String>, String, String)>,
}

impl Sides {
    pub fn take(account: &Account, folder: &Path) -> Sides {
        Sides {
            folder: folder.to_owned(),
            local: file_names(folder),
            remote: account.server_state("INBOX"),
        }
    }

    /// After a synchronisation that had nothing to do: neither side changed.
    pub fn assert_unchanged(&self, account: &Account, ctx: &str) {
        assert_eq!(
            self.local,
            file_names(&self.folder),
            "a sync without changes changed the Maildir{ctx}"
        );
        assert_eq!(
            account.server_state("INBOX"),
            self.remote,
            "a sync without changes changed the server{ctx}"
        );
    }
}

fn file_names(folder: &Path) -> BTreeSet<PathBuf> {
    maildir_messages(folder)
        .values()
        .map(|m| m.path.clone())
        .collect()
}
