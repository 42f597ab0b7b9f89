//! IMAP through the real `tern serve` binary, driven by imapfilter: a mail filtering
//! tool with its own IMAP client (in C) and rules written in Lua, run against the
//! server from cron or in IDLE. The rules in `tests/lua/imapfilter.lua` are what its
//! users write: select by STATUS and SEARCH (sets combined, a regular expression
//! matched on fetched headers), read fields, parts and structure, flag and tag, file
//! into a new folder by COPY and MOVE, delete, APPEND. It connects over STARTTLS and
//! trusts the server's certificate as a user who accepted it once would (the
//! certificate stored in its `~/.imapfilter/certificates`). imapfilter is required
//! (`.ci/run` installs it).

mod common;

use common::maildir::*;
use common::*;
use std::process::Command;

#[test]
fn imapfilter_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("server");
    std::fs::create_dir_all(&root).unwrap();
    let server = server_with_alice(&root);
    deliver_three(&server, "imapfilter");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".imapfilter")).unwrap();
    std::fs::copy(
        server.data_dir().join("tls/cert.pem"),
        home.join(".imapfilter/certificates"),
    )
    .unwrap();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lua/imapfilter.lua");
    let out = Command::new("imapfilter")
        .args(["-c", rules])
        .env("HOME", &home)
        .env("TERN_IMAP_PORT", server.imap.port().to_string())
        .env("TERN_USER", "alice")
        .env("TERN_PASSWORD", PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("imapfilter must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}
