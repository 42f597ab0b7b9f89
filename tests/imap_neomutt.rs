//! IMAP through the real `tern serve` binary, read with NeoMutt (Debian package
//! neomutt) driven through tmux as a person would: the index lists the mail, a message
//! opens, a deletion and a flag are written back when the mailbox is synced, and mail
//! delivered while NeoMutt sits in the mailbox shows up without a key pressed (IDLE,
//! or NeoMutt's check every two seconds).
//! What is checked on the server afterwards is what another client would see.
//!
//! neomutt and tmux are required (`.ci/run` installs them); a missing tool fails the
//! test.

mod common;

use common::maildir::*;
use common::tmux::*;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn neomutt_reads_deletes_flags_and_hears_of_new_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let account = Account::new(tmp.path(), "neomutt");
    for n in 1..=3 {
        account.deliver(n);
    }
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let muttrc = home.join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            "set imap_user = \"alice\"\n\
             set imap_pass = \"{PASSWORD}\"\n\
             set folder = \"imap://127.0.0.1:{port}/\"\n\
             set spoolfile = \"+INBOX\"\n\
             set ssl_starttls = no\n\
             set ssl_force_tls = no\n\
             set header_cache = \"\"\n\
             set message_cachedir = \"\"\n\
             set imap_idle = yes\n\
             set mail_check = 2\n\
             set timeout = 2\n\
             set sort = date\n\
             set delete = yes\n\
             set quit = yes\n\
             set mark_old = no\n\
             set pager_stop = yes\n\
             set wait_key = no\n",
            port = account.server.imap.port()
        ),
    )
    .unwrap();
    let session = format!("tern-neomutt-{}", std::process::id());
    let command = format!(
        "env HOME={home} TERM=xterm neomutt -n -F {muttrc}; sleep 30",
        home = home.display(),
        muttrc = muttrc.display()
    );
    let _guard = Tmux::start(&session, &command);

    // The index: three new messages, oldest first (sorted by date).
    let index = wait_for(&session, "sync test 3");
    assert!(
        index.contains("sync test 1") && index.contains("sync test 2"),
        "{index}"
    );
    assert!(index.contains("Msgs:3"), "status line: {index}");
    // Message 1 opens in the pager with its body.
    keys(&session, &["1", "Enter"]);
    keys(&session, &["Enter"]);
    wait_for(&session, "Body of message 1.");
    keys(&session, &["q"]);
    wait_for(&session, "Msgs:3");
    // Message 2 deleted, message 3 flagged, then the mailbox synced.
    keys(&session, &["2", "Enter"]);
    keys(&session, &["d"]);
    keys(&session, &["3", "Enter"]);
    keys(&session, &["F"]);
    keys(&session, &["$"]);
    wait_for(&session, "Msgs:2");

    let flags = account.remote_flags("INBOX");
    let want: BTreeMap<String, BTreeSet<String>> = [
        (account.id(1), set(&["\\Seen"])),
        (account.id(3), set(&["\\Flagged"])),
    ]
    .into_iter()
    .collect();
    assert_eq!(flags, want, "the server's INBOX after NeoMutt's sync");

    // New mail while NeoMutt is in INBOX: it appears without a key pressed.
    account.deliver(4);
    let index = wait_for(&session, "sync test 4");
    assert!(index.contains("Msgs:3"), "status line: {index}");
    keys(&session, &["q"]);
}
