//! Cyrus's Cassandane "Replication" cases, in tern's terms (issue 9). Each test names the
//! Cassandane case whose intent it carries; docs/replication.md, "Appendix: Cyrus's
//! replication tests in tern", maps every case to a test here or in tests/replication.rs,
//! or says why it does not apply.
//!
//! Each test asserts what an administrator or a user would check: what both sides show
//! over IMAP, `tern sync --verify`, the exit status of `tern sync`, and the UID rules of
//! RFC 3501 2.3.1.1 (a UID a client saw is never given to another message).

mod common;
mod pair;

use common::*;
use pair::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// ------------------------------------------------------------------------------------
// Helpers of this file

/// A JSON string literal of `s`.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An IMAP-quoted mailbox name, as imaplib wants it for names with spaces.
fn q(name: &str) -> String {
    format!("\"{name}\"")
}

/// A small message whose Message-ID is `<id@example.org>`.
fn text(id: &str) -> String {
    format!("From: a@example.org\nSubject: {id}\nMessage-ID: <{id}@example.org>\n\nbody of {id}\n")
}

fn mid(id: &str) -> String {
    format!("<{id}@example.org>")
}

/// An IMAP `append` operation (for `imap_run`).
fn append_op(mailbox: &str, flags: &str, id: &str) -> String {
    format!(
        "[\"append\", {}, {}, {}]",
        js(mailbox),
        js(flags),
        js(&text(id))
    )
}

/// What `replication_cases.py select` reports.
#[derive(Debug)]
struct SelectInfo {
    flags: BTreeSet<String>,
    permanentflags: BTreeSet<String>,
    raw: String,
}

fn cases_script() -> String {
    format!("{PYTHON_DIR}/replication_cases.py")
}

fn select_info(server: &TernServer, user: &str, mailbox: &str) -> SelectInfo {
    let out = python(
        &[
            &cases_script(),
            &server.imap.ip().to_string(),
            &server.imap.port().to_string(),
            user,
            PASSWORD,
            "select",
            mailbox,
        ],
        None,
    );
    assert!(out.status.success(), "SELECT {mailbox}\n{}", show(&out));
    let raw = String::from_utf8(out.stdout).unwrap();
    let list = |key: &str| -> BTreeSet<String> {
        let start = raw
            .find(&format!("\"{key}\": ["))
            .map(|i| i + key.len() + 5)
            .unwrap_or_else(|| panic!("no {key} list in {raw}"));
        let end = start + raw[start..].find(']').unwrap();
        raw[start..end]
            .split(',')
            .map(|s| s.trim().trim_matches('"').replace("\\\\", "\\"))
            .filter(|s| !s.is_empty())
            .collect()
    };
    SelectInfo {
        flags: list("flags"),
        permanentflags: list("permanentflags"),
        raw: raw.clone(),
    }
}

/// (UID, Message-ID) of each message `user` sees in `mailbox` (which may be another
/// user's, through `Other Users/`).
fn messages_as(server: &TernServer, user: &str, mailbox: &str) -> Vec<(u32, String)> {
    let out = python(
        &[
            &cases_script(),
            &server.imap.ip().to_string(),
            &server.imap.port().to_string(),
            user,
            PASSWORD,
            "messages",
            mailbox,
        ],
        None,
    );
    assert!(out.status.success(), "messages {mailbox}\n{}", show(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (uid, id) = l.split_once('\t').unwrap();
            (uid.parse().unwrap(), id.to_owned())
        })
        .collect()
}

/// Polls `tern sync --verify` until clean (rolling replication caught up).
fn wait_in_step(p: &Pair, what: &str) {
    poll(what, Duration::from_secs(60), || {
        verify(p.mconf(), &[]).0.then_some(())
    });
}

/// Polls `tern sync --verify --user USER` until clean; on timeout, fails with the
/// rolling client's log.
fn wait_user_in_step(p: &Pair, user: &str, log: &Path, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (clean, text) = verify(p.mconf(), &["--user", user]);
        if clean {
            return;
        }
        if std::time::Instant::now() > deadline {
            let l = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = l.lines().collect();
            panic!(
                "{what}: not in step after 30 s\n{text}\n--- rolling log (tail) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Syncs until `--verify` is clean, at most `max` times; returns the summaries.
fn sync_until_clean(p: &Pair, max: usize, when: &str) -> Vec<String> {
    let mut summaries = Vec::new();
    for _ in 0..max {
        summaries.push(sync_ok(p.mconf(), &[]));
        if verify(p.mconf(), &[]).0 {
            return summaries;
        }
    }
    let (_, text) = verify(p.mconf(), &[]);
    panic!("{when}: still not in step after {max} syncs ({summaries:?})\n{text}");
}

/// Asserts that a further sync has nothing to do.
fn assert_noop(p: &Pair, when: &str) {
    let s = sync_ok(p.mconf(), &[]);
    assert_eq!(
        summary_number(&s, "mailboxes"),
        0,
        "{when}: a further sync should be a no-op: {s}"
    );
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// SIGTERM the rolling client and return its exit status and log.
fn stop_rolling(rolling: &mut Rolling) -> (std::process::ExitStatus, String) {
    signal(rolling.child.id(), "TERM");
    let status = poll(
        "the rolling client to exit on SIGTERM",
        Duration::from_secs(30),
        || rolling.child.try_wait().unwrap(),
    );
    (
        status,
        std::fs::read_to_string(&rolling.log).unwrap_or_default(),
    )
}

fn users_of(config: &Path) -> Vec<String> {
    admin_ok(config, &["user", "list"])
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn names_of(s: &Snapshot) -> Vec<String> {
    s.mailboxes().into_keys().collect()
}

/// The Message-IDs in `mailbox` of a snapshot, by UID.
fn ids_by_uid(s: &Snapshot, mailbox: &str) -> Vec<(u32, String)> {
    s.in_mailbox(mailbox)
        .into_iter()
        .map(|m| (m.uid, m.message_id))
        .collect()
}

/// STATUS of a mailbox in a snapshot: (uidvalidity, uidnext, messages, highestmodseq).
fn status(s: &Snapshot, mailbox: &str) -> (u64, u64, u64, u64) {
    let v = s
        .mailboxes()
        .get(mailbox)
        .cloned()
        .unwrap_or_else(|| panic!("no {mailbox} in snapshot:\n{}", s.lines.join("\n")));
    (v[0], v[1], v[2], v[3])
}

/// A tmpfs mounted for the life of the value (the replica's disk in the disk-full cases).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// None when this process may not mount (not root).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {} with size {size}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// ====================================================================================
// append

/// Cassandane `test_append`: messages APPENDed on the master reach the replica.
#[test]
fn append() {
    let p = Pair::new();
    let ops: Vec<String> = ["A", "B", "C", "D"]
        .iter()
        .map(|x| append_op("INBOX", "()", &format!("append-{x}")))
        .collect();
    imap_run(&p.master, "alice", &format!("[{}]", ops.join(",")));
    assert!(
        !users_of(&p.replica.config).contains(&"alice".to_owned()),
        "the replica has no alice yet"
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let m = assert_same(&p.master, &p.replica, "alice", "after the sync");
    let want: Vec<(u32, String)> = ["A", "B", "C", "D"]
        .iter()
        .enumerate()
        .map(|(i, x)| (i as u32 + 1, mid(&format!("append-{x}"))))
        .collect();
    assert_eq!(ids_by_uid(&m, "INBOX"), want);
}

// ====================================================================================
// appendone_diskfull, appendmulti_diskfull

/// A message of about `kib` KiB.
fn sized_message(id: &str, kib: usize) -> Vec<u8> {
    let line = "0123456789abcdef".repeat(4) + "\r\n";
    let mut s = format!(
        "From: a@example.org\r\nTo: alice@example.org\r\nSubject: {id}\r\nMessage-ID: <{id}@example.org>\r\n\r\n"
    );
    while s.len() < kib * 1024 {
        s.push_str(&line);
    }
    s.into_bytes()
}

fn lmtp_deliver(server: &TernServer, rcpt: &str, message: &[u8]) {
    let mut c = Lmtp::connect(server.lmtp).unwrap();
    let replies = c.deliver("sender@example.org", &[rcpt], message).unwrap();
    assert!(
        replies.len() == 1 && replies[0].starts_with("250"),
        "{replies:?}"
    );
}

/// The replica cannot store message `index` (in UID order) of alice's INBOX: its disk
/// (a tmpfs of `small`) is too small for it. Returns the guard that enlarges it again.
enum FullDisk {
    Tmpfs(Tmpfs),
    /// Not root: the blob's own path on the replica is made a directory instead, so the
    /// replica fails to store exactly that message.
    Blocked(PathBuf),
}

impl FullDisk {
    fn fix(&self) {
        match self {
            FullDisk::Tmpfs(t) => t.resize("64m"),
            FullDisk::Blocked(dir) => std::fs::remove_dir_all(dir).unwrap(),
        }
    }
}

fn guid_of(server: &TernServer, user: &str, mailbox: &str, index: usize) -> String {
    let store = open_store(&server.data_dir());
    let m = store.mailbox(user, mailbox).unwrap().unwrap();
    let (_, mut records) = store.all_records(&m.uniqueid).unwrap();
    records.sort_by_key(|r| r.uid);
    records[index].guid.to_hex()
}

/// A pair whose replica keeps its messages on a 256 KiB tmpfs (when we may mount).
fn pair_with_small_replica_disk(tmp: &Path) -> (Pair, Option<Tmpfs>) {
    let part = tmp.join("replica-part");
    let fs = Tmpfs::mount(&part, "256k");
    let rtop = format!("default_partition = \"default\"\n[partitions]\ndefault = {part:?}\n");
    (Pair::with_config("", &rtop), fs)
}

fn make_disk_full(fs: Option<Tmpfs>, part: &Path, big_guid: &str) -> FullDisk {
    match fs {
        Some(t) => FullDisk::Tmpfs(t),
        None => {
            eprintln!("cannot mount a tmpfs (not root?): blocking the blob's path instead");
            let dir = part.join("blobs").join(&big_guid[..2]).join(big_guid);
            std::fs::create_dir_all(dir.join("x")).unwrap();
            FullDisk::Blocked(dir)
        }
    }
}

/// After the failed sync: the replica keeps no half-written temporary file.
fn assert_no_temp_files(part: &Path) {
    let tmp = part.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "temporary files left in the replica's {}: {left:?}",
        tmp.display()
    );
}

/// Cassandane `test_appendone_diskfull`: the replica's disk cannot take the one new
/// message. The sync says so and exits non-zero, the replica is left as it was (no
/// half-applied mailbox), and once space is back the next sync completes.
#[test]
fn diskfull_on_one_message() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("replica-part");
    let (p, fs) = pair_with_small_replica_disk(tmp.path());
    sync_ok(p.mconf(), &[]);
    lmtp_deliver(
        &p.master,
        "alice@example.org",
        &sized_message("canary", 600),
    );
    let full = make_disk_full(fs, &part, &guid_of(&p.master, "alice", "INBOX", 0));
    let out = tern_sync(p.mconf(), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a sync the replica could not store must exit 1\n{}",
        show(&out)
    );
    let text = show(&out);
    assert!(text.contains("FAILED alice/INBOX"), "{text}");
    assert!(text.contains("IOERROR"), "the failure says why\n{text}");
    assert_no_temp_files(&part);
    let r = snap(&p.replica, "alice", "replica-after-failure");
    assert!(r.in_mailbox("INBOX").is_empty(), "{}", r.lines.join("\n"));
    full.fix();
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after space came back");
}

/// Cassandane `test_appendmulti_diskfull`: the third of four new messages cannot be
/// stored. The fourth message's octets are never read as commands (the stream stays in
/// step): the mailboxes after INBOX in the same pipeline are applied, the replica logs
/// no bad command, and once space is back the next sync completes.
#[test]
fn diskfull_on_the_third_of_four() {
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("replica-part");
    let (p, fs) = pair_with_small_replica_disk(tmp.path());
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Work"]);
    sync_ok(p.mconf(), &[]);
    for (i, kib) in [(1, 2), (2, 2), (3, 600), (4, 2)] {
        lmtp_deliver(
            &p.master,
            "alice@example.org",
            &sized_message(&format!("msg-{i}"), kib),
        );
    }
    deliver(&p.master, "alice", "Work", "work", 0..2);
    let full = make_disk_full(fs, &part, &guid_of(&p.master, "alice", "INBOX", 2));
    let out = tern_sync(p.mconf(), &[]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAILED ")).collect();
    assert_eq!(failed.len(), 1, "exactly one failure: {failed:?}\n{text}");
    assert!(failed[0].starts_with("FAILED alice/INBOX"), "{text}");
    assert_no_temp_files(&part);
    let m = snap(&p.master, "alice", "master");
    let r = snap(&p.replica, "alice", "replica-after-failure");
    assert_eq!(
        r.in_mailbox("Work"),
        m.in_mailbox("Work"),
        "Work, sent after the failed INBOX in the same session, is applied"
    );
    assert!(r.in_mailbox("INBOX").is_empty(), "{}", r.lines.join("\n"));
    // The replica never took message 4's octets for a command.
    let (clean, vtext) = verify(p.mconf(), &[]);
    assert!(!clean);
    let diffs: Vec<&str> = vtext.lines().filter(|l| l.starts_with("DIFF ")).collect();
    assert!(diffs.iter().all(|d| d.contains("alice/INBOX")), "{diffs:?}");
    assert!(
        p.replica
            .wait_for_log("BAD", Duration::from_millis(300))
            .is_none(),
        "the replica answered BAD to something: the stream was out of step"
    );
    full.fix();
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after space came back");
}

// ====================================================================================
// clean_remote_shutdown_while_rolling, connect_once, rolling_retry_wait_limit

/// Cassandane `test_clean_remote_shutdown_while_rolling`: the replica is stopped
/// cleanly while rolling replication runs and more changes come. The client notices,
/// does not die or log an error, stops cleanly (exit 0) on SIGTERM, and nothing is lost.
#[test]
fn clean_remote_shutdown_while_rolling() {
    let mut p = Pair::new();
    imap_run(&p.master, "alice", r#"[["create", "a/b"]]"#);
    let log = p._tmp.path().join("rolling.log");
    let mut rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "a/b to reach the replica");
    let status = p.replica.terminate();
    assert!(status.success(), "the replica stopped cleanly: {status}");
    imap_run(&p.master, "alice", r#"[["create", "a/b/c"]]"#);
    poll(
        "the rolling client to notice the replica went away",
        Duration::from_secs(30),
        || {
            let l = std::fs::read_to_string(&log).unwrap_or_default();
            (l.contains("replica unreachable") || l.contains("session lost")).then_some(())
        },
    );
    assert!(
        rolling.child.try_wait().unwrap().is_none(),
        "the rolling client died when the replica stopped\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (status, text) = stop_rolling(&mut rolling);
    assert!(status.success(), "exit status {status}\n{text}");
    assert!(
        !text.contains("ERROR") && !text.contains("panicked"),
        "a clean remote shutdown is no error:\n{text}"
    );
    p.restart_replica();
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let r = snap(&p.replica, "alice", "replica");
    assert!(
        r.mailboxes().contains_key("a/b/c"),
        "{}",
        r.lines.join("\n")
    );
}

/// Cassandane `test_connect_once`: a one-shot sync with the replica down tries once and
/// exits with a failure status (tern's: 2, "nothing could be done"), without a retry loop.
#[test]
fn connect_once_with_the_replica_down() {
    let mut p = Pair::new();
    p.replica.kill9();
    let out = tern_sync(p.mconf(), &["--user", "alice"]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert_eq!(
        text.matches("cannot connect").count(),
        1,
        "one attempt, one message:\n{text}"
    );
    assert!(!text.contains("retry"), "no retry loop:\n{text}");
}

/// Durations as `Debug` prints them (`100ms`, `1.6s`), in milliseconds.
fn parse_duration_ms(s: &str) -> Option<f64> {
    if let Some(v) = s.strip_suffix("ms") {
        v.parse().ok()
    } else if let Some(v) = s.strip_suffix("µs") {
        v.parse::<f64>().ok().map(|x| x / 1000.0)
    } else if let Some(v) = s.strip_suffix('s') {
        v.parse::<f64>().ok().map(|x| x * 1000.0)
    } else {
        None
    }
}

/// Cassandane `test_rolling_retry_wait_limit`: with the replica down, the rolling client
/// retries with a wait that doubles from 100 ms and never exceeds its limit of 30 s
/// (docs/replication.md section 8); it keeps trying until stopped, and once the replica
/// is back it catches up.
#[test]
fn rolling_retry_wait_limit() {
    let mut p = Pair::new();
    p.replica.kill9();
    deliver(&p.master, "alice", "", "while-down", 0..2);
    let log = p._tmp.path().join("rolling.log");
    let rolling = start_rolling(p.mconf(), &log);
    let waits = poll("six reconnection attempts", Duration::from_secs(60), || {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        let waits: Vec<f64> = l
            .lines()
            .filter(|x| x.contains("replica unreachable"))
            .filter_map(|x| {
                x.split("retry_in=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(parse_duration_ms)
            })
            .collect();
        (waits.len() >= 6).then_some(waits)
    });
    assert_eq!(waits[0], 100.0, "first wait: {waits:?}");
    for w in waits.windows(2) {
        assert_eq!(
            w[1],
            (w[0] * 2.0).min(30_000.0),
            "each wait doubles up to 30 s: {waits:?}"
        );
    }
    assert!(waits.iter().all(|w| *w <= 30_000.0), "{waits:?}");
    let mut rolling = rolling;
    assert!(rolling.child.try_wait().unwrap().is_none(), "still trying");
    p.restart_replica();
    wait_in_step(
        &p,
        "the rolling client to catch up once the replica is back",
    );
    let (status, text) = stop_rolling(&mut rolling);
    assert!(status.success(), "{status}\n{text}");
}

// ====================================================================================
// delete_longname, intermediate_rename, intermediate_upgrade, names with spaces

/// Cassandane `test_delete_longname`: a mailbox with a long name (three levels, 490
/// characters, spaces) is created, replicated, deleted, and the deletion replicated.
#[test]
fn delete_with_a_long_name() {
    let p = Pair::new();
    let one = format!("this is a really long name{}", " 1".repeat(110));
    let two = " 2".repeat(60).trim_start().to_owned();
    let three = " 3".repeat(60).trim_start().to_owned();
    let name = format!("{one}/{two}/{three}/foo");
    assert!(name.len() >= 490, "{}", name.len());
    imap_run(
        &p.master,
        "alice",
        &format!(r#"[["create", {}]]"#, js(&q(&name))),
    );
    let log = p._tmp.path().join("rolling.log");
    let _rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the long name to reach the replica");
    assert!(
        names_of(&snap(&p.replica, "alice", "replica")).contains(&name),
        "the replica has the long name"
    );
    imap_run(
        &p.master,
        "alice",
        &format!(r#"[["delete", {}]]"#, js(&q(&name))),
    );
    wait_in_step(&p, "the deletion to reach the replica");
    let m = assert_same(&p.master, &p.replica, "alice", "after the deletion");
    assert!(!names_of(&m).contains(&name));
}

/// Cassandane `test_intermediate_rename`: `a/b` exists; then `a` is created (the
/// intermediate level made a real mailbox) and renamed to `new` (taking `a/b` along).
/// tern's CREATE of `a/b` already creates `a` (RFC 3501 6.3.3 allows it), so the CREATE
/// of `a` may be refused; `a` is then used (a message appended) and renamed.
#[test]
fn intermediate_mailbox_made_real_then_renamed() {
    let p = Pair::new();
    imap_run(&p.master, "alice", r#"[["create", "a/b"]]"#);
    let log = p._tmp.path().join("rolling.log");
    let rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "a/b to reach the replica");
    drop(rolling);
    imap_run(
        &p.master,
        "alice",
        &format!(
            r#"[["optional", "create", "a"], {}, ["rename", "a", "new"]]"#,
            append_op("a", "()", "in-a")
        ),
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after create a + rename");
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice")
    );
}

/// Cassandane `test_intermediate_upgrade`: `a/b` exists, then `a` is created.
#[test]
fn intermediate_mailbox_made_real() {
    let p = Pair::new();
    imap_run(&p.master, "alice", r#"[["create", "a/b"]]"#);
    let log = p._tmp.path().join("rolling.log");
    let _rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "a/b to reach the replica");
    imap_run(
        &p.master,
        "alice",
        &format!(
            r#"[["optional", "create", "a"], {}]"#,
            append_op("a", "()", "in-a")
        ),
    );
    wait_in_step(&p, "a to reach the replica");
    let m = assert_same(&p.master, &p.replica, "alice", "after create a");
    assert_eq!(m.in_mailbox("a").len(), 1);
    assert_eq!(
        mailbox_list(p.mconf(), "alice"),
        mailbox_list(&p.replica.config, "alice")
    );
}

/// Cassandane `test_sync_log_mailbox_with_spaces`: names with spaces at every level go
/// through rolling replication (the change log) and one-shot syncs alike.
#[test]
fn names_with_spaces() {
    let p = Pair::new();
    let log = p._tmp.path().join("rolling.log");
    let rolling = start_rolling(p.mconf(), &log);
    imap_run(
        &p.master,
        "alice",
        &format!(
            r#"[["create", {}], ["create", "foo"], ["create", {}], {}, {}]"#,
            js(&q("2nd level with spaces")),
            js(&q("foo/3rd level with spaces")),
            append_op("2nd level with spaces", "(\\Seen)", "sp-1"),
            append_op("foo/3rd level with spaces", "()", "sp-2"),
        ),
    );
    wait_in_step(&p, "names with spaces to reach the replica");
    let m = assert_same(&p.master, &p.replica, "alice", "rolling, names with spaces");
    assert_eq!(m.in_mailbox("foo/3rd level with spaces").len(), 1);
    drop(rolling);
    imap_run(
        &p.master,
        "alice",
        &format!(
            r#"[["rename", {}, {}]]"#,
            js(&q("2nd level with spaces")),
            js(&q("also with spaces"))
        ),
    );
    sync_ok(
        p.mconf(),
        &["--user", "alice", "--mailbox", "also with spaces"],
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let m = assert_same(
        &p.master,
        &p.replica,
        "alice",
        "one-shot, names with spaces",
    );
    assert_eq!(m.in_mailbox("also with spaces").len(), 1);
}

// ====================================================================================
// mailbox_parent_missing_refused, stale_synccache_replica_user_gone,
// synccache_rolling_only, synccache_skipped_for_user

/// Cassandane `test_mailbox_parent_missing_refused`, in tern's terms. tern's mailboxes
/// need no parent (`a/b` may exist without `a`), but every user has an INBOX: the tern
/// form of "a folder whose parent is missing" is a mailbox of a user the replica lost.
/// Syncing only that mailbox must not leave the replica with the user but without INBOX
/// (a user mail could not be delivered to after a failover); syncing the user repairs.
#[test]
fn single_mailbox_sync_when_the_replica_lost_the_user() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Sub"]);
    deliver(&p.master, "alice", "Sub", "sub", 0..2);
    sync_ok(p.mconf(), &[]);
    admin_ok(&p.replica.config, &["user", "del", "alice"]);
    let _ = tern_sync(p.mconf(), &["--user", "alice", "--mailbox", "Sub"]);
    if users_of(&p.replica.config).contains(&"alice".to_owned()) {
        let names: Vec<String> = mailbox_list(&p.replica.config, "alice")
            .into_iter()
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect();
        assert!(
            names.contains(&"INBOX".to_owned()),
            "a sync of alice/Sub left alice on the replica without her INBOX: {names:?}"
        );
    }
    sync_ok(p.mconf(), &["--user", "alice"]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after syncing the user");
}

/// Cassandane `test_stale_synccache_replica_user_gone` and
/// `test_synccache_skipped_for_user`: rolling replication remembers what the replica
/// acknowledged; the replica then loses the user. A change to a mailbox the client never
/// saw, and then a user-level change, must bring the whole user back, not only the
/// mailbox.
#[test]
fn replica_lost_the_user_rolling_restores_it() {
    let p = Pair::new();
    deliver(&p.master, "alice", "", "in", 0..3);
    let log = p._tmp.path().join("rolling.log");
    let _rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the initial state");
    admin_ok(&p.replica.config, &["user", "del", "alice"]);
    imap_run(&p.master, "alice", r#"[["create", "Sub"]]"#);
    wait_user_in_step(&p, "alice", &log, "the rolling client to restore alice");
    assert_same(
        &p.master,
        &p.replica,
        "alice",
        "after the replica lost alice",
    );
    // A user-level change alone (a subscription) after a second loss.
    admin_ok(&p.replica.config, &["user", "del", "alice"]);
    imap_run(&p.master, "alice", r#"[["subscribe", "Sub"]]"#);
    wait_user_in_step(
        &p,
        "alice",
        &log,
        "the rolling client to restore alice again",
    );
    assert_same(&p.master, &p.replica, "alice", "after the second loss");
}

/// Cassandane `test_synccache_rolling_only`: whatever a rolling client remembered, a
/// one-shot sync of the user asks the replica and repairs a lost user.
#[test]
fn replica_lost_the_user_one_shot_restores_it() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Sub"]);
    deliver(&p.master, "alice", "", "in", 0..3);
    let log = p._tmp.path().join("rolling.log");
    let mut rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the initial state");
    let (status, text) = stop_rolling(&mut rolling);
    assert!(status.success(), "{text}");
    admin_ok(&p.replica.config, &["user", "del", "alice"]);
    sync_ok(p.mconf(), &["--user", "alice"]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "after the one-shot sync");
}

// ====================================================================================
// rename_create_resync (mailbox-level), rename_old_synccache, splitbrain_mailbox

/// Cassandane `test_rename_create_resync`, at the level tern has (mailboxes; tern has no
/// user rename): `Src` is renamed to `Dest` and a new `Src` created with other mail.
/// A sync of only the new `Src` must not wipe what the replica holds of the old one, and
/// a full sync leaves both mailboxes right, matched by unique id.
#[test]
fn rename_then_recreate_the_old_name() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Src"]);
    deliver(&p.master, "alice", "Src", "old", 0..3);
    sync_ok(p.mconf(), &[]);
    let old_id = uniqueid(p.mconf(), "alice", "Src");
    imap_run(
        &p.master,
        "alice",
        &format!(
            r#"[["rename", "Src", "Dest"], ["create", "Src"], {}]"#,
            append_op("Src", "()", "new-1")
        ),
    );
    let new_id = uniqueid(p.mconf(), "alice", "Src");
    assert_ne!(old_id, new_id);
    let summary = sync_ok(p.mconf(), &["--user", "alice", "--mailbox", "Src"]);
    let m = snap(&p.master, "alice", "master-after-mailbox-sync");
    assert_eq!(
        (ids_by_uid(&m, "Src"), m.in_mailbox("Dest").len()),
        (vec![(1, mid("new-1"))], 3),
        "the master's mailboxes are as its clients left them ({summary}):\n{}",
        m.lines.join("\n")
    );
    let r = snap(&p.replica, "alice", "replica-after-mailbox-sync");
    let old_left = r
        .messages()
        .iter()
        .filter(|m| m.message_id.starts_with("<old-"))
        .count();
    assert_eq!(
        old_left,
        3,
        "the old Src's messages are still on the replica:\n{}",
        r.lines.join("\n")
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let m = assert_same(&p.master, &p.replica, "alice", "after the full sync");
    assert_eq!(uniqueid(&p.replica.config, "alice", "Dest"), old_id);
    assert_eq!(uniqueid(&p.replica.config, "alice", "Src"), new_id);
    assert_eq!(m.in_mailbox("Dest").len(), 3);
    assert_eq!(ids_by_uid(&m, "Src"), vec![(1, mid("new-1"))]);
    assert!(
        names_of(&m).iter().all(|n| !n.contains('~')),
        "nothing left parked: {:?}",
        names_of(&m)
    );
}

/// Cassandane `test_splitbrain_mailbox`: a renamed mailbox synced by its new name only
/// (`--mailbox Dest`) is found on the replica by unique id and renamed there, not
/// created a second time.
#[test]
fn rename_synced_by_its_new_name_only() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "src-name"]);
    deliver(&p.master, "alice", "src-name", "s", 0..2);
    sync_ok(p.mconf(), &[]);
    imap_run(
        &p.master,
        "alice",
        r#"[["rename", "src-name", "dest-name"]]"#,
    );
    sync_ok(p.mconf(), &["--user", "alice", "--mailbox", "dest-name"]);
    let r = snap(&p.replica, "alice", "replica");
    assert!(
        !names_of(&r).contains(&"src-name".to_owned()),
        "{:?}",
        names_of(&r)
    );
    assert_eq!(r.in_mailbox("dest-name").len(), 2);
    assert_verify_clean(p.mconf());
    imap_run(&p.master, "alice", r#"[["rename", "dest-name", "foo"]]"#);
    let log = p._tmp.path().join("rolling.log");
    let _rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the second rename");
    assert_same(&p.master, &p.replica, "alice", "after the second rename");
}

/// Cassandane `test_rename_old_synccache`: the rolling client's memory of the replica
/// goes stale (it is frozen while mailboxes are renamed twice and synced by one-shot
/// runs); when it wakes and new changes come, it must still converge.
#[test]
fn stale_rolling_cache_after_renames() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "sub"]);
    deliver(&p.master, "alice", "sub", "sub", 0..2);
    let log = p._tmp.path().join("rolling.log");
    let rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the initial state");
    let pid = rolling.child.id();
    signal(pid, "STOP");
    imap_run(&p.master, "alice", r#"[["rename", "sub", "dest"]]"#);
    sync_ok(p.mconf(), &[]);
    imap_run(&p.master, "alice", r#"[["rename", "dest", "third"]]"#);
    sync_ok(p.mconf(), &[]);
    signal(pid, "CONT");
    imap_run(
        &p.master,
        "alice",
        r#"[["select", "third"], ["uid", "COPY", "1:*", "INBOX"], ["close"]]"#,
    );
    wait_in_step(&p, "the rolling client to converge with a stale memory");
    let m = assert_same(&p.master, &p.replica, "alice", "after the stale cache");
    assert_eq!(m.in_mailbox("INBOX").len(), 2);
    assert_eq!(m.in_mailbox("third").len(), 2);
    let mut rolling = rolling;
    assert!(rolling.child.try_wait().unwrap().is_none());
    let (status, text) = stop_rolling(&mut rolling);
    assert!(status.success(), "{text}");
}

// ====================================================================================
// replication_repair_zero_msgs

/// Cassandane `test_replication_repair_zero_msgs`: the master only raised INBOX's
/// modseq (ACL changes, no message), while the replica took a message and expunged it.
/// The sync converges, and the UID the replica's clients saw expunged is never given to
/// another message, on either side; UIDNEXT and HIGHESTMODSEQ never go down.
#[test]
fn replica_only_append_and_expunge_while_master_raised_modseq() {
    let p = Pair::new();
    sync_ok(p.mconf(), &[]);
    imap_run(
        &p.master,
        "alice",
        r#"[["setacl", "INBOX", "bob", "lr"], ["deleteacl", "INBOX", "bob"],
            ["setacl", "INBOX", "bob", "lr"], ["deleteacl", "INBOX", "bob"]]"#,
    );
    imap_run(
        &p.replica,
        "alice",
        &format!(
            r#"[{}, ["select", "INBOX"], ["uid", "STORE", "1", "+FLAGS", "(\\Deleted)"], ["expunge"]]"#,
            append_op("INBOX", "()", "to-be-deleted")
        ),
    );
    let r_cut = snap(&p.replica, "alice", "replica-cut");
    let (_, r_next, _, r_hms) = status(&r_cut, "INBOX");
    assert_eq!(r_next, 2, "the replica's clients saw UID 1");
    sync_until_clean(&p, 2, "repair_zero_msgs");
    let r = snap(&p.replica, "alice", "replica-after");
    let (_, next, _, hms) = status(&r, "INBOX");
    assert!(
        next >= r_next && hms >= r_hms,
        "UIDNEXT/HIGHESTMODSEQ went down on the replica: {r_next}/{r_hms} -> {next}/{hms}"
    );
    imap_run(
        &p.master,
        "alice",
        &format!("[{}]", append_op("INBOX", "()", "after-repair")),
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    let m = assert_same(&p.master, &p.replica, "alice", "after a new message");
    let ids = ids_by_uid(&m, "INBOX");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        ids[0].0 >= 2,
        "UID 1 was seen expunged on the replica; it must not hold a new message: {ids:?}"
    );
    assert_noop(&p, "repair_zero_msgs");
}

// ====================================================================================
// replication_with_modified_seen_flag

/// Cassandane `test_replication_with_modified_seen_flag`: `\Seen` set on the master
/// reaches the replica, and so does clearing it.
#[test]
fn seen_set_and_cleared() {
    let p = Pair::new();
    imap_run(
        &p.master,
        "alice",
        &format!(
            "[{}, {}]",
            append_op("INBOX", "()", "A"),
            append_op("INBOX", "()", "B")
        ),
    );
    sync_ok(p.mconf(), &[]);
    let seen_of = |s: &Snapshot, uid: u32| {
        s.in_mailbox("INBOX")
            .into_iter()
            .find(|m| m.uid == uid)
            .unwrap()
            .flags
            .contains("\\Seen")
    };
    assert!(!seen_of(&snap(&p.replica, "alice", "r0"), 2));
    imap_run(
        &p.master,
        "alice",
        r#"[["select", "INBOX"], ["uid", "STORE", "2", "+FLAGS", "(\\Seen)"]]"#,
    );
    assert!(
        !seen_of(&snap(&p.replica, "alice", "r1"), 2),
        "not before the sync"
    );
    sync_ok(p.mconf(), &[]);
    assert!(seen_of(&snap(&p.replica, "alice", "r2"), 2), "\\Seen set");
    imap_run(
        &p.master,
        "alice",
        r#"[["select", "INBOX"], ["uid", "STORE", "2", "-FLAGS", "(\\Seen)"]]"#,
    );
    sync_ok(p.mconf(), &[]);
    let r = assert_same(&p.master, &p.replica, "alice", "after clearing \\Seen");
    assert!(!seen_of(&r, 2), "\\Seen cleared on the replica");
    assert!(!seen_of(&r, 1));
    assert_verify_clean(p.mconf());
}

// ====================================================================================
// reset_on_master, userprefix

/// Cassandane `test_reset_on_master` (sync_reset on the master, then a log naming the
/// user's deleted and live mailboxes): here the user is deleted on the master and synced
/// by name. The replica loses that user and only that user, whose name is a prefix of
/// another's; a user re-created under the name starts afresh on the replica.
#[test]
fn reset_on_master() {
    let p = Pair::new();
    for user in ["user2", "user2b"] {
        add_user(p.mconf(), user, PASSWORD, false);
        imap_run(
            &p.master,
            user,
            r#"[["create", "hi"], ["create", "no"], ["delete", "hi"]]"#,
        );
        deliver(&p.master, user, "no", user, 0..2);
    }
    sync_ok(p.mconf(), &["--user", "user2"]);
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    admin_ok(p.mconf(), &["user", "del", "user2"]);
    sync_ok(p.mconf(), &["--user", "user2"]);
    let users = users_of(&p.replica.config);
    assert!(!users.contains(&"user2".to_owned()), "{users:?}");
    assert!(users.contains(&"user2b".to_owned()), "{users:?}");
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "user2b", "user2b untouched");
    assert_same(&p.master, &p.replica, "alice", "alice untouched");
    add_user(p.mconf(), "user2", PASSWORD, false);
    deliver(&p.master, "user2", "", "fresh", 0..1);
    sync_ok(p.mconf(), &["--user", "user2"]);
    assert_verify_clean(p.mconf());
    let r = assert_same(&p.master, &p.replica, "user2", "user2 re-created");
    assert!(
        !names_of(&r).contains(&"no".to_owned()),
        "{:?}",
        names_of(&r)
    );
}

/// Cassandane `test_userprefix`: users `ua` and `uab`, each with a deleted mailbox (a
/// tombstone). Deleting `ua` and syncing `ua` then `uab` by name touches only `ua`.
#[test]
fn user_prefix_with_tombstones() {
    let p = Pair::new();
    add_user(p.mconf(), "ua", PASSWORD, false);
    add_user(p.mconf(), "uab", PASSWORD, false);
    imap_run(
        &p.master,
        "ua",
        r#"[["create", "hi"], ["create", "no"], ["delete", "hi"]]"#,
    );
    imap_run(
        &p.master,
        "uab",
        r#"[["create", "boo"], ["create", "noo"], ["delete", "boo"]]"#,
    );
    deliver(&p.master, "uab", "", "uab", 0..2);
    sync_ok(p.mconf(), &["--user", "alice"]);
    sync_ok(p.mconf(), &["--user", "ua"]);
    sync_ok(p.mconf(), &["--user", "uab"]);
    assert_verify_clean(p.mconf());
    let before = mailbox_list(&p.replica.config, "uab");
    admin_ok(p.mconf(), &["user", "del", "ua"]);
    sync_ok(p.mconf(), &["--user", "ua"]);
    let s = sync_ok(p.mconf(), &["--user", "uab"]);
    assert_eq!(summary_number(&s, "mailboxes"), 0, "{s}");
    assert_eq!(mailbox_list(&p.replica.config, "uab"), before);
    let users = users_of(&p.replica.config);
    assert!(!users.contains(&"ua".to_owned()), "{users:?}");
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "uab", "uab after ua was deleted");
}

// ====================================================================================
// shared_folder

/// Cassandane `test_shared_folder`. tern has no owner-less `shared.` namespace; its
/// shared folders are users' folders shared through ACLs (`Other Users/`). bob appends to
/// alice's shared folder; rolling replication brings it to the replica, where bob and
/// alice both see the messages.
#[test]
fn shared_folder() {
    let p = Pair::new();
    add_user(p.mconf(), "bob", PASSWORD, false);
    imap_run(
        &p.master,
        "alice",
        r#"[["create", "\"shared folder\""], ["setacl", "\"shared folder\"", "bob", "lrswipkxtecd"]]"#,
    );
    let log = p._tmp.path().join("rolling.log");
    let _rolling = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "the shared folder to reach the replica");
    let other = "Other Users/alice/shared folder";
    let ops: Vec<String> = ["A", "B", "C", "D"]
        .iter()
        .map(|x| append_op(other, "()", &format!("shared-{x}")))
        .collect();
    imap_run(&p.master, "bob", &format!("[{}]", ops.join(",")));
    assert_eq!(messages_as(&p.master, "bob", other).len(), 4);
    wait_in_step(&p, "bob's messages to reach the replica");
    let want: Vec<(u32, String)> = ["A", "B", "C", "D"]
        .iter()
        .enumerate()
        .map(|(i, x)| (i as u32 + 1, mid(&format!("shared-{x}"))))
        .collect();
    assert_eq!(
        messages_as(&p.replica, "bob", other),
        want,
        "bob on the replica"
    );
    assert_eq!(
        messages_as(&p.replica, "alice", "shared folder"),
        want,
        "alice on the replica"
    );
    assert_same(&p.master, &p.replica, "alice", "shared folder");
}

// ====================================================================================
// The four split-brain cases: splitbrain, splitbrain_masterexpunge,
// splitbrain_replicaexpunge, splitbrain_bothexpunge

/// Messages A..D on both sides; then, cut off, the master appends E and the replica F,
/// both at UID 5. `master_expunge`/`replica_expunge` expunge that UID 5 on that side.
/// Returns the pair and each side's view at the end of the cut.
fn split_brain(master_expunge: bool, replica_expunge: bool) -> (Pair, Snapshot, Snapshot) {
    let p = Pair::new();
    let ops: Vec<String> = ["A", "B", "C", "D"]
        .iter()
        .map(|x| append_op("INBOX", "()", &format!("sb-{x}")))
        .collect();
    imap_run(&p.master, "alice", &format!("[{}]", ops.join(",")));
    sync_ok(p.mconf(), &[]);
    assert_same(&p.master, &p.replica, "alice", "before the cut");
    for (server, id, expunge) in [
        (&p.master, "sb-E", master_expunge),
        (&p.replica, "sb-F", replica_expunge),
    ] {
        let mut ops = vec![append_op("INBOX", "()", id)];
        if expunge {
            ops.push(r#"["select", "INBOX"], ["uid", "STORE", "5", "+FLAGS", "(\\Deleted)"], ["expunge"]"#.into());
        }
        imap_run(server, "alice", &format!("[{}]", ops.join(",")));
    }
    let m = snap(&p.master, "alice", "master-cut");
    let r = snap(&p.replica, "alice", "replica-cut");
    assert_eq!(status(&m, "INBOX").1, 6, "the master's clients saw UID 5");
    assert_eq!(status(&r, "INBOX").1, 6, "the replica's clients saw UID 5");
    (p, m, r)
}

/// What every split-brain case checks after healing: at most two syncs to be in step,
/// the same on both sides, a further sync a no-op, UIDNEXT and HIGHESTMODSEQ not down
/// on either side, and UID 5 (a different message on each side, or expunged) holding
/// nothing any more on either side.
fn heal_split_brain(p: &Pair, m_cut: &Snapshot, r_cut: &Snapshot, case: &str) -> Snapshot {
    let summaries = sync_until_clean(p, 2, case);
    assert!(
        summary_number(&summaries[0], "mailboxes") > 0,
        "{case}: the first sync must see the divergence: {summaries:?}"
    );
    let m = assert_same(&p.master, &p.replica, "alice", case);
    let r = snap(&p.replica, "alice", "replica-healed");
    for (side, cut, now) in [("master", m_cut, &m), ("replica", r_cut, &r)] {
        let (uv0, next0, _, hms0) = status(cut, "INBOX");
        let (uv, next, _, hms) = status(now, "INBOX");
        assert_eq!(uv, uv0, "{case}: {side}'s INBOX UIDVALIDITY changed");
        assert!(
            next >= next0 && hms >= hms0,
            "{case}: {side}'s UIDNEXT/HIGHESTMODSEQ went down: {next0}/{hms0} -> {next}/{hms}"
        );
        let at5: Vec<_> = now
            .in_mailbox("INBOX")
            .into_iter()
            .filter(|x| x.uid == 5)
            .collect();
        assert!(
            at5.is_empty(),
            "{case}: UID 5 on the {side} holds {at5:?}; its clients saw another message (or an expunge) there"
        );
    }
    for (i, x) in ["A", "B", "C", "D"].iter().enumerate() {
        assert_eq!(
            m.by_message_id("INBOX", &mid(&format!("sb-{x}")))
                .iter()
                .map(|x| x.uid)
                .collect::<Vec<_>>(),
            vec![i as u32 + 1],
            "{case}: message {x}"
        );
    }
    assert_noop(p, case);
    m
}

/// Cassandane `test_splitbrain` (issue 9, seen 1): both sides append a different
/// message at UID 5. Both messages survive on both sides, moved to new UIDs above 5.
#[test]
fn split_brain_both_append() {
    let (p, m_cut, r_cut) = split_brain(false, false);
    let m = heal_split_brain(&p, &m_cut, &r_cut, "both append");
    for id in ["sb-E", "sb-F"] {
        let x = m.by_message_id("INBOX", &mid(id));
        assert_eq!(x.len(), 1, "{id}: {}", m.lines.join("\n"));
        assert!(x[0].uid > 5, "{id} moved above 5: {x:?}");
    }
    assert_eq!(m.in_mailbox("INBOX").len(), 6);
}

/// The UIDs the message `id` holds in INBOX, as a client of that side sees them.
fn assert_uids(m: &Snapshot, id: &str, uids: &[u32]) {
    let found: Vec<u32> = m
        .by_message_id("INBOX", &mid(id))
        .iter()
        .map(|x| x.uid)
        .collect();
    assert_eq!(found, uids, "{id}\n{}", m.lines.join("\n"));
}

/// Cassandane `test_splitbrain_masterexpunge`: the master appended E at UID 5 and
/// expunged it; the replica appended F at UID 5. F survives at UID 6 on both sides.
#[test]
fn split_brain_master_expunge() {
    let (p, m_cut, r_cut) = split_brain(true, false);
    let m = heal_split_brain(&p, &m_cut, &r_cut, "master expunge");
    assert!(m.by_message_id("INBOX", &mid("sb-E")).is_empty());
    assert_uids(&m, "sb-F", &[6]);
}

/// Cassandane `test_splitbrain_replicaexpunge` (issue 9, seen 2): the replica appended F
/// at UID 5 and expunged it; the master appended E at UID 5. E survives at UID 6 on both
/// sides; UID 5, seen expunged by the replica's clients, holds nothing there.
#[test]
fn split_brain_replica_expunge() {
    let (p, m_cut, r_cut) = split_brain(false, true);
    let m = heal_split_brain(&p, &m_cut, &r_cut, "replica expunge");
    assert!(m.by_message_id("INBOX", &mid("sb-F")).is_empty());
    assert_uids(&m, "sb-E", &[6]);
}

/// Cassandane `test_splitbrain_bothexpunge` (issue 9, seen 3): both sides appended a
/// different UID 5 and expunged it. The sides converge (`--verify` clean).
#[test]
fn split_brain_both_expunge() {
    let (p, m_cut, r_cut) = split_brain(true, true);
    let m = heal_split_brain(&p, &m_cut, &r_cut, "both expunge");
    assert_eq!(m.in_mailbox("INBOX").len(), 4);
}

// ====================================================================================
// splitbrain_different_uniqueid_unused, _used, _nonempty

/// Both sides create `subfolder` and `subfolder2` while cut off (different unique ids);
/// `master_msg`/`replica_msg` append a message to `subfolder` on that side, and
/// `replica_expunge` expunges the replica's again. Returns the pair, the master's unique
/// id of `subfolder`, and the replica's view before the sync.
fn same_name_other_uniqueid(
    master_msg: bool,
    replica_msg: bool,
    replica_expunge: bool,
) -> (Pair, String, Snapshot) {
    let p = Pair::new();
    sync_ok(p.mconf(), &[]);
    imap_run(
        &p.master,
        "alice",
        r#"[["create", "subfolder"], ["create", "subfolder2"]]"#,
    );
    imap_run(
        &p.replica,
        "alice",
        r#"[["create", "subfolder2"], ["create", "subfolder"]]"#,
    );
    let mid_ = uniqueid(p.mconf(), "alice", "subfolder");
    assert_ne!(mid_, uniqueid(&p.replica.config, "alice", "subfolder"));
    if master_msg {
        imap_run(
            &p.master,
            "alice",
            &format!("[{}]", append_op("subfolder", "()", "uid-A")),
        );
    }
    if replica_msg {
        let mut ops = vec![append_op("subfolder", "()", "uid-B")];
        if replica_expunge {
            ops.push(r#"["select", "subfolder"], ["uid", "STORE", "1:*", "+FLAGS", "(\\Deleted)"], ["expunge"]"#.into());
        }
        imap_run(&p.replica, "alice", &format!("[{}]", ops.join(",")));
    }
    let r = snap(&p.replica, "alice", "replica-cut");
    (p, mid_, r)
}

/// After the sync: one `subfolder` on each side, with the master's unique id, in step.
/// If the replica's clients now see the same UIDVALIDITY as before, no UID they saw may
/// hold another message (else their caches show wrong mail).
fn check_same_name(p: &Pair, master_id: &str, r_cut: &Snapshot, case: &str) -> Snapshot {
    sync_until_clean(p, 2, case);
    let m = assert_same(&p.master, &p.replica, "alice", case);
    assert_eq!(
        uniqueid(&p.replica.config, "alice", "subfolder"),
        master_id,
        "{case}: the replica's subfolder takes the master's unique id"
    );
    let names = names_of(&m);
    assert!(
        names.iter().all(|n| !n.contains('~')),
        "{case}: nothing left parked: {names:?}"
    );
    let r = snap(&p.replica, "alice", "replica-healed");
    let (uv0, next0, _, _) = status(r_cut, "subfolder");
    let (uv, next, _, _) = status(&r, "subfolder");
    if uv == uv0 {
        assert!(
            next >= next0,
            "{case}: UIDNEXT went down under the same UIDVALIDITY"
        );
        let before = ids_by_uid(r_cut, "subfolder");
        let now = ids_by_uid(&r, "subfolder");
        for (uid, id) in &now {
            if let Some((_, old)) = before.iter().find(|(u, _)| u == uid) {
                assert_eq!(
                    old, id,
                    "{case}: UID {uid} of subfolder changed its message under the same UIDVALIDITY"
                );
            }
            assert!(
                u64::from(*uid) >= next0 || before.iter().any(|(u, _)| u == uid),
                "{case}: UID {uid} was handed out (and expunged) on the replica under the same UIDVALIDITY {uv}; now {id}"
            );
        }
    }
    assert_noop(p, case);
    m
}

/// Cassandane `test_splitbrain_different_uniqueid_unused`: the replica's `subfolder`
/// was never used; it gives way to the master's.
#[test]
fn same_name_other_uniqueid_unused() {
    let (p, id, r_cut) = same_name_other_uniqueid(true, false, false);
    let m = check_same_name(&p, &id, &r_cut, "unused");
    assert_eq!(ids_by_uid(&m, "subfolder").len(), 1);
}

/// Cassandane `test_splitbrain_different_uniqueid_used`: the replica's `subfolder` had
/// a message, expunged again. Cyrus refuses until told not to copy back; tern resolves
/// it in the same sync: one `subfolder`, the master's, with the master's message, and no
/// UID the replica's clients saw reused for it.
#[test]
fn same_name_other_uniqueid_used() {
    let (p, id, r_cut) = same_name_other_uniqueid(true, true, true);
    let m = check_same_name(&p, &id, &r_cut, "used");
    assert_eq!(
        m.in_mailbox("subfolder")
            .iter()
            .map(|x| x.message_id.clone())
            .collect::<Vec<_>>(),
        vec![mid("uid-A")]
    );
}

/// Cassandane `test_splitbrain_different_uniqueid_nonempty`: both `subfolder`s hold a
/// message. Cyrus refuses; tern merges: both messages, once each, in the master's
/// `subfolder`, on both sides.
#[test]
fn same_name_other_uniqueid_nonempty() {
    let (p, id, r_cut) = same_name_other_uniqueid(true, true, false);
    let m = check_same_name(&p, &id, &r_cut, "nonempty");
    let ids: BTreeSet<String> = m
        .in_mailbox("subfolder")
        .into_iter()
        .map(|x| x.message_id)
        .collect();
    assert_eq!(ids, BTreeSet::from([mid("uid-A"), mid("uid-B")]));
    assert_eq!(m.in_mailbox("subfolder").len(), 2);
}

// ====================================================================================
// subscriptions (and subscriptions_unixhs: tern's separator is always "/")

/// Cassandane `test_subscriptions`: subscriptions, including one to a folder since
/// deleted and names with spaces, are the same on the replica as on the master.
#[test]
fn subscriptions_including_a_deleted_folder() {
    let p = Pair::new();
    add_user(p.mconf(), "brandnew", PASSWORD, false);
    imap_run(
        &p.master,
        "brandnew",
        r#"[["create", "Test"], ["create", "Test/Sub"], ["create", "\"Test Foo\""],
            ["create", "\"Test Bar\""], ["subscribe", "INBOX"], ["subscribe", "Test"],
            ["subscribe", "Test/Sub"], ["subscribe", "\"Test Foo\""], ["delete", "Test/Sub"]]"#,
    );
    let m = snap(&p.master, "brandnew", "master");
    let subs = m.subscriptions();
    for want in ["INBOX", "Test", "Test Foo"] {
        assert!(subs.contains(&want.to_owned()), "master LSUB {subs:?}");
    }
    assert!(!subs.contains(&"Test Bar".to_owned()));
    sync_ok(p.mconf(), &["--user", "brandnew"]);
    let r = assert_same(&p.master, &p.replica, "brandnew", "after the sync");
    assert_eq!(r.subscriptions(), subs, "LSUB on the replica");
    let (clean, text) = verify(p.mconf(), &["--user", "brandnew"]);
    assert!(clean, "{text}");
}

// ====================================================================================
// sync_empty_file

/// Cassandane `test_sync_empty_file`: rolling replication started with nothing new in
/// the change log does nothing, stays up, and stops cleanly; so does a one-shot sync.
#[test]
fn empty_change_log() {
    let p = Pair::new();
    sync_ok(p.mconf(), &[]);
    let log = p._tmp.path().join("rolling.log");
    let mut first = start_rolling(p.mconf(), &log);
    wait_in_step(&p, "in step");
    poll(
        "the first rolling client to connect",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("rolling replication connected")
                .then_some(())
        },
    );
    let (status, _) = stop_rolling(&mut first);
    assert!(status.success());
    // The log has nothing after the acknowledged position now.
    let log2 = p._tmp.path().join("rolling2.log");
    let mut second = start_rolling(p.mconf(), &log2);
    poll(
        "the second rolling client to connect",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log2)
                .unwrap_or_default()
                .contains("rolling replication connected")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(second.child.try_wait().unwrap().is_none(), "it stays up");
    let (status, text) = stop_rolling(&mut second);
    assert!(status.success(), "{text}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("rolling: "))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    assert_eq!(summary_number(summary, "mailboxes"), 0, "{summary}");
    assert!(!text.contains("ERROR"), "{text}");
    assert_noop(&p, "empty change log");
}

// ====================================================================================
// syncall_failinguser

/// Cassandane `test_syncall_failinguser`: `--all`, where the replica cannot store one
/// user's new message, still brings the users before and after it in step, names the
/// failure, and exits 1.
#[test]
fn sync_all_with_a_failing_user() {
    let p = Pair::new();
    for u in ["a_early", "z_late"] {
        add_user(p.mconf(), u, PASSWORD, false);
    }
    for u in ["a_early", "alice", "z_late"] {
        deliver(&p.master, u, "", &format!("{u}-1"), 0..1);
    }
    sync_ok(p.mconf(), &["--all"]);
    deliver(&p.master, "a_early", "", "a_early-2", 0..1);
    lmtp_deliver(&p.master, "alice@example.org", &sized_message("canary", 4));
    deliver(&p.master, "z_late", "", "z_late-2", 0..1);
    // The replica cannot store the canary: its blob's path is taken by a directory.
    let guid = guid_of(&p.master, "alice", "INBOX", 1);
    let blocked = p
        .replica_root
        .join("data/partitions/default/blobs")
        .join(&guid[..2])
        .join(&guid);
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    let out = tern_sync(p.mconf(), &["--all"]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED alice"), "{text}");
    let (clean, vtext) = verify(p.mconf(), &["--user", "a_early", "--user", "z_late"]);
    assert!(clean, "a_early and z_late are in step\n{vtext}");
    std::fs::remove_dir_all(&blocked).unwrap();
    sync_ok(p.mconf(), &["--all"]);
    assert_verify_clean(p.mconf());
}

// ====================================================================================
// userflags

/// Cassandane `test_userflags` (issue 9, seen 5): keywords are a mailbox property.
/// FLAGS and PERMANENTFLAGS after SELECT list every keyword defined in the mailbox,
/// also those no message carries any more, on the master and, after a sync, on the
/// replica.
#[test]
fn user_flags_including_unused_ones() {
    let p = Pair::new();
    imap_run(
        &p.master,
        "alice",
        &format!(
            "[{}, {}, {}, {}]",
            append_op("INBOX", "(\\Flagged $UserFlagA)", "uf-A"),
            append_op("INBOX", "($UserFlagB)", "uf-B"),
            append_op("INBOX", "($UserFlagC)", "uf-C"),
            append_op("INBOX", "($UserFlagD)", "uf-D"),
        ),
    );
    let keywords = |s: &BTreeSet<String>| -> Vec<String> {
        s.iter().filter(|f| !f.starts_with('\\')).cloned().collect()
    };
    let all: Vec<String> = ["$UserFlagA", "$UserFlagB", "$UserFlagC", "$UserFlagD"]
        .map(str::to_owned)
        .to_vec();
    let info = select_info(&p.master, "alice", "INBOX");
    assert_eq!(
        keywords(&info.permanentflags),
        all,
        "master PERMANENTFLAGS: {}",
        info.raw
    );
    assert_eq!(keywords(&info.flags), all, "master FLAGS: {}", info.raw);
    imap_run(
        &p.master,
        "alice",
        r#"[["select", "INBOX"], ["uid", "STORE", "1:4", "-FLAGS", "($UserFlagC $UserFlagD)"]]"#,
    );
    let info = select_info(&p.master, "alice", "INBOX");
    assert_eq!(
        keywords(&info.flags),
        all,
        "master FLAGS keeps keywords no message has: {}",
        info.raw
    );
    sync_ok(p.mconf(), &[]);
    assert_verify_clean(p.mconf());
    assert_same(&p.master, &p.replica, "alice", "user flags");
    for (side, server) in [("master", &p.master), ("replica", &p.replica)] {
        let info = select_info(server, "alice", "INBOX");
        assert_eq!(keywords(&info.flags), all, "{side} FLAGS: {}", info.raw);
        assert_eq!(
            keywords(&info.permanentflags),
            all,
            "{side} PERMANENTFLAGS: {}",
            info.raw
        );
    }
}
