//! IMAP through the real `tern serve` binary, driven by clients tern did not write:
//! Python's imaplib (`tests/python/imap_imaplib.py`, one scenario per test, each
//! checking what a user of a mail client would notice) and mbsync (isync), which
//! synchronises alice's account with a Maildir in both directions.
//!
//! Both tools are required (`.ci/run` installs them); a missing tool fails the test.

mod common;

use common::maildir::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

/// IMAPClient (the PyPI package `imapclient`, which `.ci/run` installs): a library
/// with its own response parser, used by UID as its applications use it. The script
/// (`tests/python/imap_imapclient.py`) checks ENVELOPE, BODYSTRUCTURE and BODY[]
/// byte for byte, SEARCH and SORT, flags, COPY, MOVE, APPEND with a date, MULTIAPPEND,
/// ACLs and quota, EXPUNGE under QRESYNC and IDLE.
#[test]
fn imapclient_library_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    add_user(&server, "bob");
    let script = format!("{PYTHON_DIR}/imap_imapclient.py");
    let out = python(&[
        &script,
        &server.imap.ip().to_string(),
        &server.imap.port().to_string(),
        &server.lmtp.port().to_string(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
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

/// alice's account, synchronised with a Maildir by mbsync (verbose, with the IMAP
/// exchange in its output).
fn mbsync(root: &Path) -> MaildirSync {
    let account = Account::new(root, "mbsync");
    let maildir = root.join("Mail");
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
            port = account.server.imap.port(),
            maildir = maildir.display(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    MaildirSync::new(
        account,
        maildir,
        &["mbsync", "-c", &config, "-V", "-Dmn", "-a"],
        "isync",
    )
}

#[test]
fn mbsync_pulls_delivered_mail_into_a_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = mbsync(tmp.path());
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
    let mut sync = mbsync(tmp.path());
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
    assert_eq!(
        sync.remote_flags("INBOX"),
        want,
        "server INBOX after the second sync (FETCH FLAGS){ctx}"
    );
    assert_eq!(
        remote["<mbsync-1@example.org>"].0, uid1,
        "message 1 changed UID{ctx}"
    );
    let local = maildir_messages(&inbox);
    assert_eq!(
        sync.local_flags("INBOX"),
        want,
        "Maildir INBOX after the second sync{ctx}"
    );
    assert_same_messages(&delivered, &local, &remote, &ctx);

    // A third sync has nothing to do: both sides stay as they are.
    let sides = Sides::take(&sync, &inbox);
    sync.run();
    sides.assert_unchanged(&sync, &sync.context());
}

#[test]
fn mbsync_uploads_messages_and_folders_created_in_the_maildir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = mbsync(tmp.path());
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
