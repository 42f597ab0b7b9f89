//! IMAP through the real `tern serve` binary, driven by clients tern did not write:
//! Python's imaplib (`tests/python/imap_imaplib.py`, one scenario per test, each
//! checking what a user of a mail client would notice) and mbsync (isync), which
//! synchronises alice's account with a Maildir in both directions.
//!
//! Both tools are required (`.ci/run` installs them); a missing tool fails the test.

mod common;

use common::*;
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
const PASSWORD: &str = "secret";

/// A server with the user alice (password "secret", default mailboxes).
fn server_with_alice(root: &Path) -> TernServer {
    let server = TernServer::start(root, "");
    let out = admin(
        &server.config,
        &["user", "add", "alice", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "tern admin user add alice: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (.ci/run installs it)")
}

fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs one imaplib scenario against a fresh server; panics with the script's report
/// (every failed check and the IMAP exchange) if a check failed. Returns the server and
/// the script's JSON line.
fn imaplib_scenario(root: &Path, scenario: &str) -> (TernServer, String) {
    let server = server_with_alice(root);
    let script = format!("{PYTHON_DIR}/imap_imaplib.py");
    let out = python(&[
        &script,
        &server.imap.ip().to_string(),
        &server.imap.port().to_string(),
        &server.lmtp.port().to_string(),
        scenario,
    ]);
    assert!(
        out.status.success(),
        "imaplib scenario `{scenario}` failed\n{}",
        show(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#""ok": true"#), "{stdout}");
    (server, stdout)
}

#[test]
fn imaplib_login_capability_list_and_logout() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "login_capability_list_logout");
}

#[test]
fn imaplib_select_and_fetch_uid_flags_internaldate_size_envelope() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "select_and_fetch_metadata");
}

#[test]
fn imaplib_body_peek_returns_the_delivered_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "fetch_body_bytes");
}

#[test]
fn imaplib_store_adds_replaces_and_removes_flags() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "store_flags");
}

#[test]
fn imaplib_search_by_flags_addresses_subject_body_and_uid_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "search");
}

#[test]
fn imaplib_append_with_flags_and_date_reports_appenduid() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "append");
}

#[test]
fn imaplib_copy_and_uid_move_report_copyuid() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "copy_and_move");
}

#[test]
fn imaplib_expunge_and_uid_expunge_remove_deleted_messages() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "expunge");
}

#[test]
fn imaplib_create_rename_delete_a_folder_with_a_child() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "folders");
}

#[test]
fn imaplib_status_counts_messages_unseen_and_uids() {
    let tmp = tempfile::tempdir().unwrap();
    imaplib_scenario(tmp.path(), "status");
}

#[test]
fn imaplib_non_ascii_mailbox_names_are_stored_as_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = imaplib_scenario(tmp.path(), "non_ascii_names");
    // The names travelled as modified UTF-7; the store must hold the UTF-8 names
    // (what `tern admin`, LMTP `+folder` and other protocols see).
    let listing = admin_ok(&server.config, &["mailbox", "list", "alice"]);
    for name in ["Ältere Entwürfe", "日本語", "Reisen/Köln", "Tom & Jerry"] {
        assert!(
            listing.contains(name),
            "`tern admin mailbox list alice` lacks {name:?}:\n{listing}"
        );
    }
    assert!(
        !listing.contains("&APw-") && !listing.contains("&-"),
        "a name was stored in modified UTF-7:\n{listing}"
    );
}

// ------------------------------------------------------------------------------------
// mbsync

/// alice's account, synchronised with a Maildir by mbsync.
struct Sync {
    server: TernServer,
    config: PathBuf,
    maildir: PathBuf,
    /// Output of the last mbsync run (verbose, with the IMAP exchange).
    log: String,
}

impl Sync {
    fn new(root: &Path) -> Sync {
        let server = server_with_alice(root);
        let maildir = root.join("Mail");
        std::fs::create_dir(&maildir).unwrap();
        let config = root.join("mbsyncrc");
        std::fs::write(
            &config,
            format!(
                "IMAPAccount tern\n\
                 Host 127.0.0.1\n\
                 Port {port}\n\
                 User alice\n\
                 Pass {PASSWORD}\n\
                 SSLType None\n\
                 AuthMechs LOGIN\n\
                 Timeout 30\n\
                 \n\
                 IMAPStore tern-remote\n\
                 Account tern\n\
                 \n\
                 MaildirStore local\n\
                 Path {maildir}/\n\
                 Inbox {maildir}/INBOX\n\
                 SubFolders Verbatim\n\
                 \n\
                 Channel tern\n\
                 Far :tern-remote:\n\
                 Near :local:\n\
                 Patterns *\n\
                 Sync All\n\
                 Create Both\n\
                 Expunge Both\n\
                 SyncState *\n",
                port = server.imap.port(),
                maildir = maildir.display(),
            ),
        )
        .unwrap();
        Sync {
            server,
            config,
            maildir,
            log: String::new(),
        }
    }

    /// Runs `mbsync -a`, requiring success.
    fn run(&mut self) {
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&self.config)
            .args(["-V", "-Dmn", "-a"])
            .output()
            .expect("mbsync must be installed (Debian package isync; .ci/run installs it)");
        self.log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "mbsync failed ({}):\n{}",
            out.status,
            self.log
        );
    }

    fn deliver(&self, n: u32) -> Vec<u8> {
        let msg = message(n);
        let mut lmtp = Lmtp::connect(self.server.lmtp).unwrap();
        let r = lmtp
            .deliver("sender@example.org", &["alice@localhost"], &msg)
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
        [b"Return-Path: <sender@example.org>\r\n".as_slice(), &msg].concat()
    }

    /// The server's view of a mailbox, by Message-ID: (UID, flags, SHA-1 of the
    /// message, SHA-1 of the message as mbsync's Maildir holds it: see `as_in_maildir`).
    fn server_state(
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

    fn imap_state(&self, args: &[&str]) -> String {
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

    /// The last mbsync log, to append to a failure message.
    fn context(&self) -> String {
        format!("\n--- last mbsync run (-V -Dmn) ---\n{}", self.log)
    }
}

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: alice@example.org\r\nSubject: sync test {n}\r\n\
         Date: Thu, 06 Jun 2024 10:0{n}:00 +0000\r\nMessage-ID: <mbsync-{n}@example.org>\r\n\r\n\
         Body of message {n}.\r\nSecond line.\r\n"
    )
    .into_bytes()
}

/// A message as mbsync writes it into a Maildir: LF line ends (mbsync converts), and
/// without the `X-TUID:` header mbsync inserts into every message it copies (to find it
/// again after an interruption). Neither is the server's doing.
fn as_in_maildir(message: &[u8]) -> Vec<u8> {
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

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

struct MaildirMessage {
    path: PathBuf,
    /// The Maildir info flags (`:2,FS` → "FS"); empty for a file in `new/`.
    flags: String,
    content: Vec<u8>,
}

/// The messages of one Maildir folder, by Message-ID.
fn maildir_messages(folder: &Path) -> BTreeMap<String, MaildirMessage> {
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

fn message_id(content: &[u8]) -> Option<String> {
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
fn imap_flags(maildir_flags: &str) -> BTreeSet<String> {
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

fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|s| (*s).to_owned()).collect()
}

fn is_maildir(p: &Path) -> bool {
    ["cur", "new", "tmp"].iter().all(|d| p.join(d).is_dir())
}

#[test]
fn mbsync_pulls_delivered_mail_into_a_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = Sync::new(tmp.path());
    let delivered: Vec<Vec<u8>> = (1..=3).map(|n| sync.deliver(n)).collect();
    sync.run();
    let ctx = sync.context();

    let local = maildir_messages(&sync.maildir.join("INBOX"));
    assert_eq!(
        local.len(),
        3,
        "Maildir INBOX: {:?}{ctx}",
        local.keys().collect::<Vec<_>>()
    );
    for (n, expected) in (1..=3).zip(&delivered) {
        let m = &local[&format!("<mbsync-{n}@example.org>")];
        assert!(
            as_in_maildir(&m.content) == as_in_maildir(expected),
            "message {n} differs in the Maildir (line ends and X-TUID aside):\n  got      {:?}\n  expected {:?}{ctx}",
            String::from_utf8_lossy(&m.content),
            String::from_utf8_lossy(expected)
        );
        assert_eq!(
            m.flags, "",
            "message {n} got flags {:?} by being synced{ctx}",
            m.flags
        );
    }
    // Create Both: the server's other folders exist locally.
    for folder in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            is_maildir(&sync.maildir.join(folder)),
            "no Maildir folder {folder}{ctx}"
        );
    }
    // Pulling must not change the server (mbsync reads with BODY.PEEK).
    let remote = sync.server_state("INBOX");
    assert_eq!(remote.len(), 3, "{remote:?}");
    assert!(
        remote.values().all(|(_, f, _, _)| f.is_empty()),
        "syncing set flags on the server: {remote:?}{ctx}"
    );
    for (n, expected) in (1..=3).zip(&delivered) {
        assert_eq!(
            remote[&format!("<mbsync-{n}@example.org>")].2,
            sha1_hex(expected),
            "message {n} changed on the server{ctx}"
        );
    }
}

#[test]
fn mbsync_two_way_sync_of_flags_deletions_and_new_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = Sync::new(tmp.path());
    let mut delivered: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for n in 1..=3 {
        delivered.insert(format!("<mbsync-{n}@example.org>"), sync.deliver(n));
    }
    sync.run();
    let inbox = sync.maildir.join("INBOX");
    let local = maildir_messages(&inbox);
    assert_eq!(local.len(), 3, "first sync{}", sync.context());

    // Locally, as a Maildir reader would: message 1 read and flagged (moved to cur/).
    let m1 = &local["<mbsync-1@example.org>"];
    let base = m1.path.file_name().unwrap().to_string_lossy();
    let base = base
        .split_once(":2,")
        .map_or(base.as_ref(), |(b, _)| b)
        .to_owned();
    std::fs::rename(&m1.path, inbox.join("cur").join(format!("{base}:2,FS"))).unwrap();
    // On the server, over imaplib: message 2 flagged, message 3 deleted.
    let remote = sync.server_state("INBOX");
    let uid = |id: &str| remote[&format!("<mbsync-{id}@example.org>")].0.to_string();
    sync.imap_state(&["store", "INBOX", &uid("2"), "+FLAGS", "(\\Flagged)"]);
    sync.imap_state(&["store", "INBOX", &uid("3"), "+FLAGS", "(\\Deleted)"]);
    let uid1 = remote["<mbsync-1@example.org>"].0;
    // And new mail arrives.
    delivered.insert("<mbsync-4@example.org>".to_owned(), sync.deliver(4));
    delivered.remove("<mbsync-3@example.org>");

    sync.run();
    let ctx = sync.context();
    let want: BTreeMap<String, BTreeSet<String>> = [
        ("<mbsync-1@example.org>", set(&["\\Flagged", "\\Seen"])),
        ("<mbsync-2@example.org>", set(&["\\Flagged"])),
        ("<mbsync-4@example.org>", set(&[])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let remote = sync.server_state("INBOX");
    let remote_flags: BTreeMap<String, BTreeSet<String>> = remote
        .iter()
        .map(|(k, v)| (k.clone(), v.1.clone()))
        .collect();
    assert_eq!(
        remote_flags, want,
        "server INBOX after the second sync (FETCH FLAGS){ctx}"
    );
    assert_eq!(
        remote["<mbsync-1@example.org>"].0, uid1,
        "message 1 changed UID{ctx}"
    );
    let local = maildir_messages(&inbox);
    let local_flags: BTreeMap<String, BTreeSet<String>> = local
        .iter()
        .map(|(k, v)| (k.clone(), imap_flags(&v.flags)))
        .collect();
    assert_eq!(
        local_flags, want,
        "Maildir INBOX after the second sync{ctx}"
    );
    for (id, content) in &delivered {
        assert!(
            as_in_maildir(&local[id].content) == as_in_maildir(content),
            "{id} differs in the Maildir{ctx}"
        );
        assert_eq!(
            remote[id].2,
            sha1_hex(content),
            "{id} differs on the server{ctx}"
        );
    }

    // A third sync has nothing to do: both sides stay as they are.
    let names_before: BTreeSet<PathBuf> = local.values().map(|m| m.path.clone()).collect();
    sync.run();
    let ctx = sync.context();
    let names_after: BTreeSet<PathBuf> = maildir_messages(&inbox)
        .values()
        .map(|m| m.path.clone())
        .collect();
    assert_eq!(
        names_before, names_after,
        "a sync without changes changed the Maildir{ctx}"
    );
    assert_eq!(
        sync.server_state("INBOX"),
        remote,
        "a sync without changes changed the server{ctx}"
    );
}

#[test]
fn mbsync_uploads_messages_and_folders_created_in_the_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = Sync::new(tmp.path());
    sync.deliver(1);
    sync.run();

    // A message written into the local INBOX (flagged), and a new local folder with a
    // read message, as a Maildir mail client would store them.
    let local_msg =
        b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: written offline\r\n\
Message-ID: <offline-1@example.org>\r\n\r\nWritten without a connection.\r\n"
            .to_vec();
    let note = b"From: Alice <alice@example.org>\r\nSubject: a note\r\nMessage-ID: <note-1@example.org>\r\n\r\n\
Remember the milk.\r\n"
        .to_vec();
    std::fs::write(
        sync.maildir.join("INBOX/cur/1717660000.M1P1.testhost:2,F"),
        &local_msg,
    )
    .unwrap();
    let notes = sync.maildir.join("Notes");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(notes.join(d)).unwrap();
    }
    std::fs::write(notes.join("cur/1717660001.M2P1.testhost:2,S"), &note).unwrap();

    sync.run();
    let ctx = sync.context();
    let mailboxes = sync.imap_state(&["list"]);
    assert!(
        mailboxes.lines().any(|l| l == "Notes"),
        "Notes was not created on the server: {mailboxes}{ctx}"
    );
    let inbox = sync.server_state("INBOX");
    let up = inbox
        .get("<offline-1@example.org>")
        .unwrap_or_else(|| panic!("not uploaded to INBOX: {inbox:?}{ctx}"));
    assert_eq!(
        up.1,
        set(&["\\Flagged"]),
        "flags of the uploaded message{ctx}"
    );
    assert_eq!(
        up.3,
        sha1_hex(&as_in_maildir(&local_msg)),
        "the uploaded message differs on the server{ctx}"
    );
    assert_eq!(inbox.len(), 2, "{inbox:?}{ctx}");
    let remote_notes = sync.server_state("Notes");
    let n = remote_notes
        .get("<note-1@example.org>")
        .unwrap_or_else(|| panic!("Notes on the server: {remote_notes:?}{ctx}"));
    assert_eq!(n.1, set(&["\\Seen"]), "flags of the uploaded note{ctx}");
    assert_eq!(
        n.3,
        sha1_hex(&as_in_maildir(&note)),
        "the uploaded note differs on the server{ctx}"
    );
    // The local files are still there, unchanged.
    let local = maildir_messages(&sync.maildir.join("INBOX"));
    assert!(
        as_in_maildir(&local["<offline-1@example.org>"].content) == as_in_maildir(&local_msg),
        "{ctx}"
    );
    assert_eq!(local.len(), 2, "{ctx}");
}
