//! IMAP through the real `tern serve` binary, driven by the mail fetchers people run
//! from cron against an organisation's server: fetchmail and getmail (getmail6), each
//! in keep mode (nothing fetched twice, nothing removed) and in delete mode (fetched,
//! then expunged). Both are required (`.ci/run` installs them).

mod common;

use common::maildir::*;
use common::show;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The Message-IDs in an mbox file the fetcher appended to.
fn fetched_ids(mbox: &Path) -> Vec<String> {
    std::fs::read_to_string(mbox)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("Message-ID: "))
        .map(str::to_owned)
        .collect()
}

/// Runs fetchmail once over IMAP with `options` in its rc file; its exit code (0: mail
/// retrieved, 1: no mail) and what it printed.
fn fetchmail(account: &Account, dir: &Path, options: &str) -> (i32, String) {
    use std::os::unix::fs::PermissionsExt;
    let rc = dir.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {} protocol imap user \"alice\" password \"{PASSWORD}\" \
             {options} mda \"cat >> {}\"\n",
            account.server.imap.port(),
            dir.join("mbox").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .env("HOME", dir)
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(dir.join("ids"))
        .args(["--nosyslog", "--sslproto", "", "-v"])
        .output()
        .expect("fetchmail must be installed (.ci/run installs it)");
    (out.status.code().unwrap_or(-1), show(&out))
}

#[test]
fn fetchmail_over_imap_keeps_then_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let account = Account::new(tmp.path(), "fetchmail");
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mbox");
    account.deliver(1);
    account.deliver(2);

    let (code, log) = fetchmail(&account, dir.path(), "keep");
    assert_eq!(code, 0, "{log}");
    assert_eq!(fetched_ids(&mbox), [account.id(1), account.id(2)], "{log}");
    // Keep mode leaves the messages, read: fetchmail takes only unseen mail over IMAP.
    let state = account.server_state("INBOX");
    assert_eq!(state.len(), 2);
    assert!(
        state
            .values()
            .all(|(_, flags, _, _)| flags.contains("\\Seen")),
        "{state:?}"
    );
    let (code, log) = fetchmail(&account, dir.path(), "keep");
    assert_eq!(code, 1, "nothing new: {log}");
    assert_eq!(fetched_ids(&mbox).len(), 2);

    account.deliver(3);
    let (code, log) = fetchmail(&account, dir.path(), "keep");
    assert_eq!(code, 0, "{log}");
    assert_eq!(fetched_ids(&mbox).last(), Some(&account.id(3)), "{log}");
    assert_eq!(fetched_ids(&mbox).len(), 3);

    // Delete mode: everything, seen or not, then \Deleted and expunged.
    let (code, log) = fetchmail(&account, dir.path(), "fetchall nokeep");
    assert_eq!(code, 0, "{log}");
    assert_eq!(fetched_ids(&mbox).len(), 6, "{log}");
    assert!(account.server_state("INBOX").is_empty(), "{log}");
    // Each copy fetched is the message as stored, byte for byte (From_ line aside).
    let text = std::fs::read_to_string(&mbox).unwrap();
    let body = String::from_utf8(message("fetchmail", 2)).unwrap();
    assert!(
        text.contains(&body.replace("\r\n", "\n")) || text.contains(&body),
        "{text}"
    );
}

/// Runs getmail once over IMAP: `delete` removes what it fetched, else it fetches only
/// messages it has not seen before (by UID, in its `oldmail` file).
fn getmail(account: &Account, dir: &Path, delete: bool) -> String {
    let mbox = dir.join("mbox");
    if !mbox.exists() {
        std::fs::write(&mbox, "").unwrap();
    }
    let rc = dir.join("getmailrc");
    std::fs::write(
        &rc,
        format!(
            // An external delivery command: getmail refuses its own mbox delivery when
            // run as root (as CI is), but allows a command it is told to allow.
            "[retriever]\ntype = SimpleIMAPRetriever\nserver = 127.0.0.1\nport = {}\n\
             username = alice\npassword = {PASSWORD}\nmailboxes = (\"INBOX\", \"Lists\")\n\n\
             [destination]\ntype = MDA_external\npath = /bin/sh\n\
             arguments = (\"-c\", \"cat >> {}\")\nallow_root_commands = true\n\n\
             [options]\nread_all = false\ndelete = {}\nverbose = 2\n",
            account.server.imap.port(),
            mbox.display(),
            if delete { "true" } else { "false" },
        ),
    )
    .unwrap();
    let out = Command::new("getmail")
        .arg("--getmaildir")
        .arg(dir)
        .arg("--rcfile")
        .arg(&rc)
        .output()
        .expect("getmail (Debian package getmail6) must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", show(&out));
    show(&out)
}

#[test]
fn getmail_over_imap_keeps_then_deletes_in_two_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let account = Account::new(tmp.path(), "getmail");
    account.imap_state(&["create", "Lists"]);
    account.deliver(1);
    account.deliver(2);
    account.imap_state(&["move", "INBOX", "2", "Lists"]);
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mbox");

    let log = getmail(&account, dir.path(), false);
    let got: BTreeSet<String> = fetched_ids(&mbox).into_iter().collect();
    assert_eq!(got, BTreeSet::from([account.id(1), account.id(2)]), "{log}");
    // Again: it remembers what it took, and left everything where it was.
    let log = getmail(&account, dir.path(), false);
    assert_eq!(fetched_ids(&mbox).len(), 2, "{log}");
    assert_eq!(account.server_state("INBOX").len(), 1);
    assert_eq!(account.server_state("Lists").len(), 1);

    account.deliver(3);
    let log = getmail(&account, dir.path(), false);
    assert_eq!(fetched_ids(&mbox).last(), Some(&account.id(3)), "{log}");
    assert_eq!(fetched_ids(&mbox).len(), 3, "{log}");

    // Delete mode takes what it has not seen (nothing) and removes what it fetches;
    // with a new message in each folder, those two are fetched and gone after.
    account.deliver(4);
    account.deliver(5);
    account.imap_state(&["move", "INBOX", "5", "Lists"]);
    let log = getmail(&account, dir.path(), true);
    let ids = fetched_ids(&mbox);
    assert_eq!(ids.len(), 5, "{log}");
    assert!(
        ids.contains(&account.id(4)) && ids.contains(&account.id(5)),
        "{log}"
    );
    let inbox: Vec<String> = account.server_state("INBOX").into_keys().collect();
    let lists: Vec<String> = account.server_state("Lists").into_keys().collect();
    assert!(!inbox.contains(&account.id(4)), "{inbox:?}\n{log}");
    assert!(!lists.contains(&account.id(5)), "{lists:?}\n{log}");
}
