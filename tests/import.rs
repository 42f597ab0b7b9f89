//! `tern admin import` through the real binary: a maildir with a UIDL list and an mbox
//! with X-UIDL headers and mboxrd quoting go in; Python's poplib then sees the old
//! server's UIDLs, LIST sizes equal to what RETR sends and the quoting undone; IMAP
//! sees the maildir flags; a second run imports nothing; a bad UIDL list imports
//! nothing; and the UIDLs replicate, so POP3 clients see them unchanged after a failover
//! to the replica.

mod common;
mod pair;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// What poplib saw: UIDL by message number, (LIST, RETR) octets, (From, >From) body
/// line counts.
struct Pop3View {
    uidl: BTreeMap<u32, String>,
    sizes: BTreeMap<u32, (u64, u64)>,
    from_lines: BTreeMap<u32, (u32, u32)>,
}

fn pop3_view(addr: std::net::SocketAddr, user: &str, password: &str) -> Pop3View {
    let out = Command::new("python3")
        .arg(format!("{PYTHON_DIR}/pop3_listing.py"))
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            user,
            password,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut view = Pop3View {
        uidl: BTreeMap::new(),
        sizes: BTreeMap::new(),
        from_lines: BTreeMap::new(),
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let w: Vec<&str> = line.split(' ').collect();
        let n: u32 = w[1].parse().unwrap();
        match w[0] {
            "uidl" => {
                view.uidl.insert(n, w[2].to_owned());
            }
            "size" => {
                view.sizes
                    .insert(n, (w[2].parse().unwrap(), w[3].parse().unwrap()));
            }
            "from" => {
                view.from_lines
                    .insert(n, (w[2].parse().unwrap(), w[3].parse().unwrap()));
            }
            other => panic!("unexpected line {other}"),
        }
    }
    view
}

/// A maildir of three messages (one new, two seen/flagged in cur) and its UIDL list.
fn write_maildir(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = root.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let files = [
        ("cur/1700000001.M1P1.old:2,S", "Subject: first\n\nseen\n"),
        (
            "cur/1700000002.M2P1.old:2,FS",
            "Subject: second\n\nflagged\n",
        ),
        ("new/1700000003.M3P1.old", "Subject: third\n\nnew\n"),
    ];
    for (i, (name, text)) in files.iter().enumerate() {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_001 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let list = root.join("uidls.txt");
    std::fs::write(
        &list,
        "# from the old server's pop3-uidl dump\n\
         1700000001.M1P1.old UID-A-0001\n\
         1700000002.M2P1.old UID-B-0002\n\
         1700000003.M3P1.old UID-C-0003\n",
    )
    .unwrap();
    (dir, list)
}

const MBOX: &str = "From alice@example.org Thu Nov 30 10:00:00 2023\n\
X-UIDL: 4f1a2b3c4d5e\n\
Status: RO\n\
Subject: from the archive\n\
\n\
first line\n\
>From the start, quoted by the mbox\n\
>>From twice quoted\n\
\n\
From bob@example.org Fri Dec  1 11:30:00 2023\n\
Subject: no uidl header\n\
\n\
second message\n\
\n";

#[test]
fn imported_messages_keep_their_uidls_and_replicate() {
    let pair = pair::Pair::new();
    let master = &pair.master;
    let root = master.root.clone();
    let (maildir, list) = write_maildir(&root);
    let mbox = root.join("old.mbox");
    std::fs::write(&mbox, MBOX).unwrap();

    // A UIDL list with a bad line is refused whole, naming the line: nothing goes in.
    let bad = root.join("bad.txt");
    std::fs::write(
        &bad,
        "1700000001.M1P1.old UID-A-0001\n1700000002.M2P1.old has space\n",
    )
    .unwrap();
    let out = admin(
        &master.config,
        &[
            "import",
            "--user",
            "alice",
            "--maildir",
            maildir.to_str().unwrap(),
            "--uidls",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        common::show(&out)
    );
    assert_eq!(
        open_store(&master.data_dir())
            .mailbox("alice", "INBOX")
            .unwrap()
            .unwrap()
            .messages,
        0
    );

    let maildir_args = [
        "import",
        "--user",
        "alice",
        "--maildir",
        maildir.to_str().unwrap(),
        "--uidls",
        list.to_str().unwrap(),
    ];
    let out = admin_ok(&master.config, &maildir_args);
    assert!(
        out.contains("imported 3, skipped 0 already present, failed 0"),
        "{out}"
    );
    let mbox_args = [
        "import",
        "--user",
        "alice",
        "--mailbox",
        "INBOX",
        "--mbox",
        mbox.to_str().unwrap(),
    ];
    let out = admin_ok(&master.config, &mbox_args);
    assert!(out.contains("imported 2, skipped 0"), "{out}");
    // Again, as after a crash: nothing twice.
    assert!(admin_ok(&master.config, &maildir_args).contains("imported 0, skipped 3"));
    assert!(admin_ok(&master.config, &mbox_args).contains("imported 0, skipped 2"));

    let inbox = open_store(&master.data_dir())
        .mailbox("alice", "INBOX")
        .unwrap()
        .unwrap();
    assert_eq!(inbox.messages, 5);
    let own = format!("{}.5", inbox.uidvalidity);
    let expected: BTreeMap<u32, String> = [
        (1, "UID-A-0001".to_owned()),
        (2, "UID-B-0002".to_owned()),
        (3, "UID-C-0003".to_owned()),
        (4, "4f1a2b3c4d5e".to_owned()),
        (5, own),
    ]
    .into_iter()
    .collect();

    // The master serves them over POP3 (restarted with a POP3 listener).
    let master_root = master.root.clone();
    let config_lines = std::fs::read_to_string(&master.config).unwrap();
    let replication = config_lines
        .split("[listen]")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("data_dir"))
        .collect::<Vec<_>>()
        .join("\n");
    drop(config_lines);
    let mut pair = pair;
    pair.master.terminate();
    let master = TernServer::start_with(&master_root, &replication, "pop3 = \"127.0.0.1:0\"");
    // Maildir flags over IMAP (before POP3's RETR marks everything seen).
    let mut imap = imap::Imap::login(master.imap, "alice", pair::PASSWORD);
    imap.cmd("SELECT INBOX");
    let lines = imap.cmd("FETCH 1:4 FLAGS");
    let flags = |n: u32| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("* {n} FETCH")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        flags(1).contains("\\Seen") && !flags(1).contains("\\Flagged"),
        "{lines:?}"
    );
    assert!(
        flags(2).contains("\\Seen") && flags(2).contains("\\Flagged"),
        "{lines:?}"
    );
    assert!(
        !flags(3).contains("\\Seen") && flags(3).contains("FLAGS"),
        "{lines:?}"
    );
    assert!(flags(4).contains("\\Seen"), "{lines:?}");

    let pop3 = master.pop3.expect("pop3 listener");
    let view = pop3_view(pop3, "alice", pair::PASSWORD);
    assert_eq!(view.uidl, expected);
    for (n, (listed, sent)) in &view.sizes {
        assert_eq!(listed, sent, "message {n}: LIST and RETR disagree");
    }
    // mboxrd: one quote level removed; the separator line and From_ line are gone.
    assert_eq!(view.from_lines[&4], (1, 1));
    assert_eq!(view.from_lines[&5], (0, 0));

    // Replication carries the UIDLs; the digests agree.
    pair::sync_ok(&master.config, &[]);
    pair::assert_verify_clean(&master.config);

    // Failover: the replica, serving POP3, shows the same UIDLs.
    drop(master);
    pair.replica.kill9();
    let replica = TernServer::start_with(&pair.replica_root, "", "pop3 = \"127.0.0.1:0\"");
    let view = pop3_view(
        replica.pop3.expect("pop3 listener"),
        "alice",
        pair::PASSWORD,
    );
    assert_eq!(view.uidl, expected);
}
