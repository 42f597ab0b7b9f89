//! IMAP through the real `tern serve` binary, driven by offlineimap (Debian package
//! offlineimap3, imaplib2 underneath: a client tern did not write, with its own
//! reading of UIDPLUS, flags and folder trees), synchronising alice's account with a
//! Maildir in both directions. The checks are what its user would compare: the same
//! messages, byte for byte, with the same flags, on both sides, and a sync with
//! nothing to do changing nothing.
//!
//! offlineimap is required (`.ci/run` installs it); a missing tool fails the test.

mod common;

use common::maildir::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// alice's account, synchronised with a Maildir by offlineimap (`-o`: once; `-d
/// imap`: with the IMAP exchange in its output).
fn offlineimap(root: &Path) -> MaildirSync {
    let account = Account::new(root, "offlineimap");
    let maildir = root.join("Mail");
    let home = root.join("home");
    std::fs::create_dir(&home).unwrap();
    let config = root.join("offlineimaprc");
    std::fs::write(
        &config,
        format!(
            "[general]\n\
             accounts = alice\n\
             metadata = {state}\n\
             \n\
             [Account alice]\n\
             localrepository = local\n\
             remoterepository = remote\n\
             \n\
             [Repository local]\n\
             type = Maildir\n\
             localfolders = {maildir}\n\
             \n\
             [Repository remote]\n\
             type = IMAP\n\
             remotehost = 127.0.0.1\n\
             remoteport = {port}\n\
             remoteuser = alice\n\
             remotepass = {PASSWORD}\n\
             ssl = no\n\
             starttls = no\n",
            state = root.join("state").display(),
            maildir = maildir.display(),
            port = account.server.imap.port(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    MaildirSync::new(
        account,
        maildir,
        &[
            "offlineimap",
            "-c",
            &config,
            "-o",
            "-u",
            "basic",
            "-d",
            "imap",
        ],
        "offlineimap3",
    )
    .env("HOME", &home)
    // offlineimap reports a folder it failed to sync and goes on with exit status 0.
    .error_marker("ERROR:")
}

/// `id` with `flags`, for comparing flag maps.
fn entry(id: String, flags: &[&str]) -> (String, BTreeSet<String>) {
    (id, set(flags))
}

/// A Maildir file name without its info part (`...:2,FS` -> `...`).
fn base_name(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.split_once(":2,")
        .map_or(name.clone(), |(b, _)| b.to_owned())
}

#[test]
fn offlineimap_two_way_sync_of_flags_deletions_moves_and_new_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sync = offlineimap(tmp.path());
    let mut delivered: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for n in 1..=5 {
        delivered.insert(sync.id(n), sync.deliver(n));
    }
    sync.run();
    let ctx = sync.context();

    // First sync: every message, byte for byte (line ends aside), unflagged; the
    // server's other folders exist locally; the server unchanged (BODY.PEEK).
    let inbox = sync.maildir.join("INBOX");
    let local = maildir_messages(&inbox);
    assert_eq!(
        local.keys().collect::<BTreeSet<_>>(),
        delivered.keys().collect::<BTreeSet<_>>(),
        "Maildir INBOX after the first sync{ctx}"
    );
    for (id, content) in &delivered {
        assert!(
            as_in_maildir(&local[id].content) == as_in_maildir(content),
            "{id} differs in the Maildir:\n  got      {:?}\n  expected {:?}{ctx}",
            String::from_utf8_lossy(&local[id].content),
            String::from_utf8_lossy(content)
        );
        assert_eq!(local[id].flags, "", "{id} got flags by being synced{ctx}");
    }
    for folder in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            is_maildir(&sync.maildir.join(folder)),
            "no Maildir folder {folder}{ctx}"
        );
    }
    assert!(
        sync.remote_flags("INBOX").values().all(BTreeSet::is_empty),
        "syncing set flags on the server{ctx}"
    );

    // Locally, as a Maildir reader would: message 1 read and flagged (moved to cur/),
    // message 2 deleted, a message written offline, and a new folder with a note.
    let m1 = &local[&sync.id(1)];
    std::fs::rename(
        &m1.path,
        inbox
            .join("cur")
            .join(format!("{}:2,FS", base_name(&m1.path))),
    )
    .unwrap();
    std::fs::remove_file(&local[&sync.id(2)].path).unwrap();
    delivered.remove(&sync.id(2));
    let offline = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\
Subject: written offline\r\nMessage-ID: <offline-1@example.org>\r\n\r\nWritten without a connection.\r\n"
        .to_vec();
    std::fs::write(inbox.join("new/1717660000.M1P1.testhost"), &offline).unwrap();
    let notes = sync.maildir.join("Notes");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(notes.join(d)).unwrap();
    }
    let note = b"From: Alice <alice@example.org>\r\nSubject: a note\r\n\
Message-ID: <note-1@example.org>\r\n\r\nRemember the milk.\r\n"
        .to_vec();
    std::fs::write(notes.join("cur/1717660001.M2P1.testhost:2,S"), &note).unwrap();

    // On the server, over imaplib: message 3 answered, message 4 moved to Archive
    // (a server-side filter), and new mail.
    let remote = sync.server_state("INBOX");
    let uid = |n: u32| remote[&sync.id(n)].0.to_string();
    sync.imap_state(&["store", "INBOX", &uid(3), "+FLAGS", "(\\Answered)"]);
    sync.imap_state(&["move", "INBOX", &uid(4), "Archive"]);
    let uid1 = remote[&sync.id(1)].0;
    delivered.insert(sync.id(6), sync.deliver(6));

    sync.run();
    let ctx = sync.context();
    let want: BTreeMap<String, BTreeSet<String>> = [
        entry(sync.id(1), &["\\Flagged", "\\Seen"]),
        entry(sync.id(3), &["\\Answered"]),
        entry(sync.id(5), &[]),
        entry(sync.id(6), &[]),
        entry("<offline-1@example.org>".to_owned(), &[]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        sync.remote_flags("INBOX"),
        want,
        "server INBOX after the second sync (FETCH FLAGS){ctx}"
    );
    assert_eq!(
        sync.local_flags("INBOX"),
        want,
        "Maildir INBOX after the second sync{ctx}"
    );
    let remote = sync.server_state("INBOX");
    assert_eq!(remote[&sync.id(1)].0, uid1, "message 1 changed UID{ctx}");
    assert_eq!(
        remote["<offline-1@example.org>"].3,
        sha1_hex(&as_in_maildir(&offline)),
        "the message written offline differs on the server{ctx}"
    );
    let archive: BTreeMap<String, BTreeSet<String>> =
        [entry(sync.id(4), &[])].into_iter().collect();
    assert_eq!(sync.remote_flags("Archive"), archive, "server Archive{ctx}");
    assert_eq!(sync.local_flags("Archive"), archive, "Maildir Archive{ctx}");
    let notes_want: BTreeMap<String, BTreeSet<String>> =
        [entry("<note-1@example.org>".to_owned(), &["\\Seen"])]
            .into_iter()
            .collect();
    assert_eq!(
        sync.remote_flags("Notes"),
        notes_want,
        "the local folder Notes on the server{ctx}"
    );
    let local = maildir_messages(&inbox);
    delivered.remove(&sync.id(4));
    assert_same_messages(&delivered, &local, &remote, &ctx);

    // A third sync has nothing to do: both sides stay as they are.
    let sides = Sides::take(&sync, &inbox);
    sync.run();
    sides.assert_unchanged(&sync, &sync.context());
}
