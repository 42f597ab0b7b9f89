//! IMAP through the real `tern serve` binary, read with aerc (Debian package aerc, on
//! the go-imap library's parser) driven through tmux as a person would: the message
//! list, a message opened in the viewer, `:flag`, `:move` to another folder and
//! `:delete`, and mail delivered while aerc sits in INBOX shown without a key
//! pressed (IDLE). What is checked on the server afterwards is what another client
//! would see.
//!
//! aerc and tmux are required (`.ci/run` installs them); a missing tool fails the
//! test.

mod common;

use common::maildir::*;
use common::tmux::*;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn aerc_reads_flags_moves_deletes_and_hears_of_new_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let account = Account::new(tmp.path(), "aerc");
    for n in 1..=3 {
        account.deliver(n);
    }
    let config = tmp.path().join("config/aerc");
    std::fs::create_dir_all(&config).unwrap();
    let accounts = config.join("accounts.conf");
    std::fs::write(
        &accounts,
        format!(
            "[tern]\n\
             source = imap+insecure://alice:{PASSWORD}@127.0.0.1:{port}\n\
             outgoing = /bin/true\n\
             default = INBOX\n\
             from = Alice <alice@example.org>\n",
            port = account.server.imap.port()
        ),
    )
    .unwrap();
    // aerc refuses an accounts.conf that others can read (it holds the password).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(config.join("aerc.conf"), "[filters]\ntext/plain=cat\n").unwrap();
    let session = format!("tern-aerc-{}", std::process::id());
    let command = format!(
        "env XDG_CONFIG_HOME={config} HOME={home} TERM=xterm-256color aerc; sleep 30",
        config = config.parent().unwrap().display(),
        home = tmp.path().display(),
    );
    let _guard = Tmux::start(&session, &command);

    // The list: three messages, newest first, the cursor on the newest.
    let list = wait_for(&session, "sync test 1");
    assert!(
        list.contains("sync test 2") && list.contains("sync test 3"),
        "{list}"
    );
    // The newest opens in the viewer, its body through the text/plain filter.
    keys(&session, &["Enter"]);
    wait_for(&session, "Body of message 3.");
    keys(&session, &["q"]);
    // Flag it; move the next one to Archive; delete the last.
    keys(&session, &[":flag", "Enter"]);
    keys(&session, &["j"]);
    keys(&session, &[":move Archive", "Enter"]);
    wait_gone(&session, "sync test 2");
    keys(&session, &["G"]);
    keys(&session, &[":delete", "Enter"]);
    wait_for(&session, "Messages deleted.");

    let inbox = account.remote_flags("INBOX");
    let want: BTreeMap<String, BTreeSet<String>> = [(account.id(3), set(&["\\Flagged", "\\Seen"]))]
        .into_iter()
        .collect();
    assert_eq!(inbox, want, "the server's INBOX after aerc's changes");
    let archive = account.remote_flags("Archive");
    let want: BTreeMap<String, BTreeSet<String>> =
        [(account.id(2), set(&[]))].into_iter().collect();
    assert_eq!(archive, want, "the server's Archive after aerc's move");

    // New mail while aerc is in INBOX: it appears without a key pressed.
    account.deliver(4);
    wait_for(&session, "sync test 4");
    keys(&session, &[":quit", "Enter"]);
}
