//! The shared namespace end to end through the real `tern serve`: `tern admin shared`
//! creates mailboxes that belong to no user; LMTP delivers a mailing list into one
//! (only where `anyone` may post); IMAP users see it under `Shared Folders/` as its ACL
//! allows (Python's imaplib and smtplib.LMTP, `tests/python/shared_folders.py`); and
//! replication carries it to the replica like a user's mailboxes.

mod common;
mod pair;

use common::*;
use std::process::Command;

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

fn add_account(server: &TernServer, name: &str, admin_flag: bool) {
    let mut args = vec!["user", "add", name, "--password-stdin"];
    if admin_flag {
        args.push("--admin");
    }
    let out = admin(&server.config, &args, Some("secret\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shared_mailboxes_take_list_mail_and_follow_their_acl() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    add_account(&server, "alice", false);
    add_account(&server, "root", true);
    let made = admin_ok(
        &server.config,
        &[
            "shared",
            "create",
            "lists/team",
            "--acl",
            "anyone=lrsp",
            "--description",
            "Team list",
        ],
    );
    assert!(made.contains("anyone=lrsp"), "{made}");
    admin_ok(&server.config, &["shared", "create", "private"]);

    // The reserved owner is not a user anyone can log in as, create or list.
    let out = admin(
        &server.config,
        &["user", "add", "#shared", "--password-stdin"],
        Some("x\n"),
    );
    assert!(
        !out.status.success(),
        "created the reserved owner as a user"
    );
    let users = admin_ok(&server.config, &["user", "list"]);
    assert!(!users.contains("#shared"), "{users}");

    let out = Command::new("python3")
        .arg(format!("{PYTHON_DIR}/shared_folders.py"))
        .arg(server.imap.ip().to_string())
        .arg(server.imap.port().to_string())
        .arg(server.lmtp.port().to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let listed = admin_ok(&server.config, &["shared", "list"]);
    assert!(
        listed.contains("lists/team") && listed.contains("archive/2026"),
        "{listed}"
    );
    assert!(
        !listed.contains("private"),
        "deleted over IMAP by root: {listed}"
    );
    let store = open_store(&server.data_dir());
    let team = store.shared_mailbox("lists/team").unwrap().unwrap();
    assert_eq!(team.messages, 2);
    // Delivered twice under the same Message-ID: suppressed as for users.
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    let msg = b"From: list-owner@example.org\r\nSubject: team note 1\r\nMessage-ID: <team-1@example.org>\r\n\r\nnote 1\r\n";
    let r = lmtp
        .deliver("list@example.org", &["bb+lists/team@localhost"], msg)
        .unwrap();
    assert!(r[0].starts_with("250"), "{r:?}");
    assert_eq!(
        store
            .shared_mailbox("lists/team")
            .unwrap()
            .unwrap()
            .messages,
        2
    );
}

#[test]
fn shared_mailboxes_replicate() {
    let pair = pair::Pair::new();
    let master = &pair.master;
    admin_ok(
        &master.config,
        &[
            "shared",
            "create",
            "news/tern.dev",
            "--acl",
            "anyone=lrsp",
            "--description",
            "tern development",
        ],
    );
    let mut lmtp = Lmtp::connect(master.lmtp).unwrap();
    for n in 1..=3 {
        let msg = format!("From: a@example.org\r\nSubject: post {n}\r\nMessage-ID: <p{n}@example.org>\r\n\r\nbody {n}\r\n");
        let r = lmtp
            .deliver(
                "a@example.org",
                &["bb+news/tern.dev@localhost"],
                msg.as_bytes(),
            )
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    }
    let summary = pair::sync_ok(pair.mconf(), &[]);
    assert!(summary.contains("users"), "{summary}");
    pair::assert_verify_clean(pair.mconf());
    let replica = open_store(&pair.replica.data_dir());
    let copy = replica
        .shared_mailbox("news/tern.dev")
        .unwrap()
        .expect("the shared mailbox reached the replica");
    let original = open_store(&master.data_dir())
        .shared_mailbox("news/tern.dev")
        .unwrap()
        .unwrap();
    assert_eq!(copy.messages, 3);
    assert_eq!(copy.uidvalidity, original.uidvalidity);
    assert_eq!(copy.uniqueid, original.uniqueid);
    assert_eq!(copy.acl, original.acl, "the ACL travels with the mailbox");
    assert_eq!(
        replica
            .annotations(tern_store::SHARED_OWNER, "news/tern.dev")
            .unwrap(),
        vec![("/comment".to_owned(), "tern development".to_owned())]
    );
    // A user of the replica reads it after a failover.
    let actor = tern_store::Actor {
        name: "alice".into(),
        is_admin: false,
    };
    let view = replica.mailbox_view(&actor, &copy.uniqueid).unwrap();
    assert_eq!(view.messages.len(), 3);
    // The replica's Message-ID index holds the articles too: NNTP's ARTICLE <id> and
    // Xref keep working after a failover.
    let found = replica
        .records_by_message_id(&actor, "<p2@example.org>")
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].0.name.as_str(), found[0].1), ("news/tern.dev", 2));
}
