//! METADATA (RFC 5464) over a real socket: the protocol text a client sends and what
//! it gets back, including the expire policy set the way Cyrus clients set it.

mod common;

use common::*;

fn metadata_line(lines: &[String]) -> Option<&str> {
    lines
        .iter()
        .find(|l| l.starts_with("* METADATA "))
        .map(String::as_str)
}

#[test]
fn mailbox_entries_shared_private_nil_depth_and_maxsize() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let caps = c.ok("CAPABILITY");
    assert!(
        caps[0].contains(" METADATA ") && caps[0].contains(" METADATA-SERVER"),
        "{caps:?}"
    );
    c.ok("SETMETADATA INBOX (/shared/Comment \"Family mail\" /private/comment \"mine\")");
    let r = c.ok("GETMETADATA INBOX (/shared/comment /private/comment /shared/nothing)");
    assert_eq!(
        metadata_line(&r),
        Some(
            "* METADATA \"INBOX\" (\"/shared/comment\" \"Family mail\" \"/private/comment\" \
             \"mine\" \"/shared/nothing\" NIL)"
        ),
        "{r:?}"
    );
    // NIL removes.
    c.ok("SETMETADATA INBOX (/private/comment NIL)");
    let r = c.ok("GETMETADATA INBOX /private/comment");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"INBOX\" (\"/private/comment\" NIL)")
    );
    // DEPTH 1 stops at children; infinity goes all the way down.
    c.ok("SETMETADATA INBOX (/private/x/a \"1\" /private/x/a/b \"2\")");
    let r = c.ok("GETMETADATA (DEPTH 1) INBOX /private/x");
    let line = metadata_line(&r).unwrap();
    assert!(
        line.contains("\"/private/x/a\" \"1\"") && !line.contains("/private/x/a/b"),
        "{line}"
    );
    let r = c.ok("GETMETADATA (DEPTH infinity) INBOX /private");
    let line = metadata_line(&r).unwrap();
    assert!(line.contains("\"/private/x/a/b\" \"2\""), "{line}");
    assert!(!line.contains("/shared/"), "{line}");
    // MAXSIZE leaves long values out and says how long the longest was.
    let r = c.ok("GETMETADATA (MAXSIZE 3) INBOX (/shared/comment /private/x/a)");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"INBOX\" (\"/private/x/a\" \"1\")"),
        "{r:?}"
    );
    assert!(
        r.last().unwrap().contains("OK [METADATA LONGENTRIES 11]"),
        "{r:?}"
    );
    // Bad entry names are refused.
    let r = c.cmd("GETMETADATA INBOX /comment");
    assert!(r.last().unwrap().contains(" BAD "), "{r:?}");
    let r = c.cmd("SETMETADATA INBOX (/shared/a* \"x\")");
    assert!(r.last().unwrap().contains(" BAD "), "{r:?}");
    let r = c.cmd("GETMETADATA Nope /shared/comment");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"), "{r:?}");
}

#[test]
fn the_expire_policy_is_settable_over_metadata() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    c.ok("CREATE Lists");
    c.ok("CREATE Lists/rust");
    c.ok("SETMETADATA Lists (/shared/vendor/cmu/cyrus-imapd/expire \"30\")");
    let policy = server.store.expire_policy("alice", "Lists/rust").unwrap();
    assert_eq!(policy.effective, Some(30));
    assert_eq!(policy.from.as_deref(), Some("Lists"));
    let r = c.ok("GETMETADATA Lists /shared/vendor/cmu/cyrus-imapd/expire");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"Lists\" (\"/shared/vendor/cmu/cyrus-imapd/expire\" \"30\")")
    );
    let r = c.cmd("SETMETADATA Lists (/shared/vendor/cmu/cyrus-imapd/expire \"soon\")");
    assert!(r.last().unwrap().contains("NO [CANNOT]"), "{r:?}");
    assert_eq!(
        server
            .store
            .expire_policy("alice", "Lists")
            .unwrap()
            .effective,
        Some(30)
    );
    c.ok("SETMETADATA Lists (/shared/vendor/cmu/cyrus-imapd/expire NIL)");
    assert_eq!(
        server
            .store
            .expire_policy("alice", "Lists/rust")
            .unwrap()
            .effective,
        None
    );
}

#[test]
fn limits_on_size_and_count() {
    let server = start();
    let mut c = Client::login(server.addr, "alice");
    let big = "x".repeat(tern_store::MAX_METADATA_VALUE + 1);
    c.send(
        format!(
            "t1 SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})\r\n",
            big.len()
        )
        .as_bytes(),
    );
    let r = c.until_tagged("t1");
    assert!(
        r.last().unwrap().contains(&format!(
            "NO [METADATA MAXSIZE {}]",
            tern_store::MAX_METADATA_VALUE
        )),
        "{r:?}"
    );
    let many: Vec<String> = (0..=tern_store::MAX_METADATA_ENTRIES)
        .map(|i| format!("/private/n{i} \"v\""))
        .collect();
    let r = c.cmd(&format!("SETMETADATA INBOX ({})", many.join(" ")));
    assert!(r.last().unwrap().contains("NO [METADATA TOOMANY]"), "{r:?}");
    // All or nothing: none of them was kept.
    let r = c.ok("GETMETADATA INBOX /private/n0");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"INBOX\" (\"/private/n0\" NIL)")
    );
}

#[test]
fn server_entries_and_rights() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    // Server entries: private ones for anyone, shared ones for administrators only.
    let r = alice.cmd("SETMETADATA \"\" (/shared/motd \"hello\")");
    assert!(r.last().unwrap().contains("NO [NOPERM]"), "{r:?}");
    alice.ok("SETMETADATA \"\" (/private/theme \"dark\")");
    let r = alice.ok("GETMETADATA \"\" (/private/theme /shared/motd)");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"\" (\"/private/theme\" \"dark\" \"/shared/motd\" NIL)")
    );
    let r = bob.ok("GETMETADATA \"\" /private/theme");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"\" (\"/private/theme\" NIL)"),
        "one user's private entries are not another's"
    );
    // Another user's mailbox: invisible without rights; with l and r, readable, and
    // private entries writable, but shared ones need w.
    alice.ok("SETMETADATA INBOX (/shared/comment \"family\")");
    let r = bob.cmd("GETMETADATA \"Other Users/alice/INBOX\" /shared/comment");
    assert!(r.last().unwrap().contains("NO [NONEXISTENT]"), "{r:?}");
    alice.ok("SETACL INBOX bob lr");
    let r = bob.ok("GETMETADATA \"Other Users/alice/INBOX\" /shared/comment");
    assert!(metadata_line(&r).unwrap().contains("\"family\""), "{r:?}");
    let r = bob.cmd("SETMETADATA \"Other Users/alice/INBOX\" (/shared/comment \"mine now\")");
    assert!(r.last().unwrap().contains("NO [NOPERM]"), "{r:?}");
    bob.ok("SETMETADATA \"Other Users/alice/INBOX\" (/private/comment \"bob's note\")");
    let r = alice.ok("GETMETADATA INBOX (/shared/comment /private/comment)");
    assert_eq!(
        metadata_line(&r),
        Some("* METADATA \"INBOX\" (\"/shared/comment\" \"family\" \"/private/comment\" NIL)")
    );
    alice.ok("SETACL INBOX bob lrw");
    bob.ok("SETMETADATA \"Other Users/alice/INBOX\" (/shared/comment \"shared by bob\")");
    // The expire policy expunges messages: it needs the admin right too.
    let r = bob.cmd(
        "SETMETADATA \"Other Users/alice/INBOX\" (/shared/vendor/cmu/cyrus-imapd/expire \"1\")",
    );
    assert!(r.last().unwrap().contains("NO [NOPERM]"), "{r:?}");
    // With only p (post), the mailbox's entries are still readable (RFC 5464 3.3).
    alice.ok("SETACL INBOX bob lp");
    bob.ok("GETMETADATA \"Other Users/alice/INBOX\" /shared/comment");
    alice.ok("SETACL INBOX bob l");
    let r = bob.cmd("GETMETADATA \"Other Users/alice/INBOX\" /shared/comment");
    assert!(r.last().unwrap().contains(" NO "), "{r:?}");
    assert_eq!(
        server.store.annotations("alice", "INBOX").unwrap(),
        vec![("/comment".to_owned(), "shared by bob".to_owned())]
    );
}
