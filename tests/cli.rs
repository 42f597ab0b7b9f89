//! `tern admin` and configuration handling, as an operator uses them.

mod common;

use common::*;
use std::process::Command;

#[test]
fn admin_manages_users_mailboxes_and_quotas_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "");
    let out = admin(
        &config,
        &["user", "add", "Carol", "--password-stdin", "--admin"],
        Some("s3cret\n"),
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user carol (administrator)"));
    let dup = admin(&config, &["user", "add", "carol"], None);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("user already exists"));

    let store = open_store(&tmp.path().join("data"));
    assert!(
        store
            .verify_password("carol", "s3cret")
            .unwrap()
            .unwrap()
            .is_admin
    );
    assert!(admin(&config, &["user", "passwd", "carol"], Some("n3w\n"))
        .status
        .success());
    assert!(store.verify_password("carol", "n3w").unwrap().is_some());
    assert!(store.verify_password("carol", "s3cret").unwrap().is_none());

    admin_ok(&config, &["mailbox", "create", "carol", "Projects"]);
    admin_ok(&config, &["mailbox", "create", "carol", "Projects/tern"]);
    let before = store.mailbox("carol", "Projects/tern").unwrap().unwrap();
    admin_ok(&config, &["mailbox", "rename", "carol", "Projects", "Work"]);
    let after = store.mailbox("carol", "Work/tern").unwrap().unwrap();
    assert_eq!(before.uniqueid, after.uniqueid);
    admin_ok(&config, &["mailbox", "delete", "carol", "Work/tern"]);

    let list = admin_ok(&config, &["mailbox", "list", "carol"]);
    let header = list.lines().next().unwrap();
    for col in [
        "MAILBOX",
        "MESSAGES",
        "UIDVALIDITY",
        "LASTUID",
        "HIGHESTMODSEQ",
        "UNIQUEID",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work"]
    );
    let inbox = store.mailbox("carol", "INBOX").unwrap().unwrap();
    let inbox_line = list.lines().find(|l| l.starts_with("INBOX")).unwrap();
    assert!(inbox_line.contains(inbox.uniqueid.as_str()));
    assert!(inbox_line.contains(&inbox.uidvalidity.to_string()));
    let with_deleted = admin_ok(&config, &["mailbox", "list", "carol", "--deleted"]);
    assert!(with_deleted.contains(&format!("{}", after.uniqueid)));

    admin_ok(
        &config,
        &[
            "quota",
            "set",
            "carol",
            "--storage",
            "10M",
            "--messages",
            "500",
        ],
    );
    let quota = store.user("carol").unwrap().unwrap().quota;
    assert_eq!((quota.storage, quota.messages), (Some(10 << 20), Some(500)));
    let users = admin_ok(&config, &["user", "list"]);
    assert!(users
        .lines()
        .any(|l| l.starts_with("carol") && l.contains("10485760") && l.contains("500")));
    admin_ok(&config, &["quota", "set", "carol", "--storage", "none"]);
    assert_eq!(store.user("carol").unwrap().unwrap().quota.storage, None);

    admin_ok(&config, &["user", "del", "carol"]);
    assert!(store.user("carol").unwrap().is_none());
    assert!(!admin(&config, &["mailbox", "list", "carol"], None)
        .status
        .success());
}

#[test]
fn admin_works_while_the_server_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    admin_ok(&server.config, &["user", "add", "dave"]);
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    let r = lmtp
        .deliver("x@y", &["dave@example.org"], b"Subject: live\r\n\r\nhi\r\n")
        .unwrap();
    assert!(r[0].starts_with("250"), "{r:?}");
    let list = admin_ok(&server.config, &["mailbox", "list", "dave"]);
    let inbox = list.lines().find(|l| l.starts_with("INBOX")).unwrap();
    assert_eq!(inbox.split_whitespace().nth(1), Some("1"), "{inbox}");
}

fn serve_with(config_text: &str) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = Command::new(TERN)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_is_a_clear_error_naming_the_key() {
    let (ok, err) = serve_with("[listen]\nimap = \"127.0.0.1:0\"\nlmtpp = \"127.0.0.1:0\"\n");
    assert!(!ok);
    assert!(err.contains("lmtpp"), "{err}");
    let (ok, err) = serve_with("[listen]\nlmtp = \"localhost\"\n");
    assert!(!ok);
    assert!(err.contains("listen.lmtp"), "{err}");
    let (ok, err) = serve_with("data_dir = 7\n");
    assert!(!ok);
    assert!(err.contains("data_dir"), "{err}");
    let (ok, err) = serve_with("[lmtp]\nmax_message_size = 0\n[listen]\nlmtp = \"127.0.0.1:0\"\n");
    assert!(!ok);
    assert!(err.contains("lmtp.max_message_size"), "{err}");
}

#[test]
fn a_port_in_use_is_reported_with_its_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ok, err) = serve_with(&format!(
        "data_dir = {:?}\n[listen]\nlmtp = \"{}\"\n",
        tmp.path().join("d"),
        taken.local_addr().unwrap()
    ));
    assert!(!ok);
    assert!(err.contains("listen.lmtp"), "{err}");
}
