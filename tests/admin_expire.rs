//! `tern admin mailbox set-expire` and the EXPIRE column of `tern admin mailbox list`,
//! as an operator uses them, and the policy they set as `tern expire` applies it.

mod common;

use common::*;

const DAY: i64 = 86_400;

#[test]
fn set_expire_sets_an_inherited_policy_that_expire_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "");
    admin_ok(&config, &["user", "add", "erin"]);
    admin_ok(&config, &["mailbox", "create", "erin", "Lists"]);
    admin_ok(&config, &["mailbox", "create", "erin", "Lists/rust"]);
    admin_ok(&config, &["mailbox", "create", "erin", "Lists/keep"]);

    let out = admin_ok(&config, &["mailbox", "set-expire", "erin", "Lists", "30"]);
    assert!(out.contains("erin/Lists: 30 days (its own)"), "{out}");
    let out = admin_ok(
        &config,
        &["mailbox", "set-expire", "erin", "Lists/keep", "none"],
    );
    assert!(out.contains("never expires (its own)"), "{out}");

    // The default listing keeps its columns; --expire adds the policy in force.
    let plain = admin_ok(&config, &["mailbox", "list", "erin"]);
    assert!(!plain.lines().next().unwrap().contains("EXPIRE"), "{plain}");
    let list = admin_ok(&config, &["mailbox", "list", "erin", "--expire"]);
    let column = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {name} in\n{list}"))
            .to_owned()
    };
    assert!(list.lines().next().unwrap().ends_with("EXPIRE"), "{list}");
    assert_eq!(column("Lists"), "30d");
    assert_eq!(column("Lists/rust"), "30d(Lists)");
    assert_eq!(column("Lists/keep"), "-");
    assert_eq!(column("INBOX"), "-");

    // Bad values are refused with a reason and change nothing.
    for bad in ["0", "7d", "-1"] {
        let out = admin(
            &config,
            &["mailbox", "set-expire", "erin", "Lists", bad],
            None,
        );
        assert!(!out.status.success(), "{bad} accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let none = admin(
        &config,
        &["mailbox", "set-expire", "erin", "Nope", "3"],
        None,
    );
    assert!(!none.status.success());

    // The stored annotation is Cyrus's, and the store's policy pass follows it.
    let store = open_store(&tmp.path().join("data"));
    assert_eq!(
        store.annotations("erin", "Lists").unwrap(),
        vec![(tern_store::EXPIRE_ANNOTATION.to_owned(), "30".to_owned())]
    );
    let now = 1_800_000_000;
    for name in ["Lists", "Lists/rust", "Lists/keep", "INBOX"] {
        store
            .append_as_owner(
                "erin",
                name,
                &Default::default(),
                now - 31 * DAY,
                b"Subject: old\r\n\r\nold\r\n",
            )
            .unwrap();
    }
    let report = store.expire_by_policy(Some("erin"), false, now).unwrap();
    assert_eq!(report.messages(), 2, "Lists and Lists/rust");
    let count = |name: &str| store.mailbox("erin", name).unwrap().unwrap().messages;
    assert_eq!(
        [
            count("Lists"),
            count("Lists/rust"),
            count("Lists/keep"),
            count("INBOX")
        ],
        [0, 0, 1, 1]
    );

    // "inherit" removes the child's own policy: the parent's reaches it again.
    let out = admin_ok(
        &config,
        &["mailbox", "set-expire", "erin", "Lists/keep", "inherit"],
    );
    assert!(out.contains("30 days (inherited from Lists)"), "{out}");
    assert!(store.annotations("erin", "Lists/keep").unwrap().is_empty());
}
