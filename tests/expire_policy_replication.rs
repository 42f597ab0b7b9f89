//! The expire policy is a shared mailbox annotation: it travels to a replica with the
//! mailbox, so a failover keeps the policy, and `tern admin` on the replica shows it.

mod common;
mod pair;

use common::*;
use pair::*;

fn expire_column(config: &std::path::Path, user: &str, mailbox: &str) -> Option<String> {
    let list = admin_ok(config, &["mailbox", "list", user, "--expire"]);
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(mailbox))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_owned)
}

#[test]
fn the_expire_policy_replicates_with_its_mailbox() {
    let p = Pair::new();
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Lists"]);
    admin_ok(p.mconf(), &["mailbox", "create", "alice", "Lists/rust"]);
    admin_ok(
        p.mconf(),
        &["mailbox", "set-expire", "alice", "Lists", "30"],
    );
    sync_ok(p.mconf(), &["--user", "alice"]);
    let replica = p.replica.config.as_path();
    assert_eq!(
        expire_column(replica, "alice", "Lists").as_deref(),
        Some("30d")
    );
    assert_eq!(
        expire_column(replica, "alice", "Lists/rust").as_deref(),
        Some("30d(Lists)")
    );
    // A change is an ordinary mailbox change: the next incremental sync carries it.
    admin_ok(
        p.mconf(),
        &["mailbox", "set-expire", "alice", "Lists/rust", "none"],
    );
    sync_ok(p.mconf(), &["--user", "alice"]);
    assert_eq!(
        expire_column(replica, "alice", "Lists/rust").as_deref(),
        Some("-")
    );
    assert_verify_clean(p.mconf());
}
