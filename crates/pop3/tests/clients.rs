//! Clients tern did not write: Python's poplib (always there) and curl's pop3://
//! (skipped with a message when curl is missing).

mod common;

use std::process::Command;

use common::*;

/// Runs a Python script with the server's port as argv[1]; its stdout.
fn python(script: &str, port: u16) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const POPLIB_KEEP: &str = r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)
caps = p.capa()
print("capa", " ".join(sorted(caps)))
p.user("alice")
p.pass_("pw")
count, size = p.stat()
print("stat", count, size)
resp, lines, _ = p.list()
print("list", [l.decode() for l in lines])
resp, lines, _ = p.uidl()
print("uidl", [l.decode() for l in lines])
resp, lines, octets = p.retr(2)
print("retr", resp.decode(), len(b"\r\n".join(lines)) + 2)
print("dot", lines[6].decode())
resp, lines, _ = p.top(1, 0)
print("top", len(lines), lines[-1] == b"")
p.quit()
"#;

const POPLIB_DELETE: &str = r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=10)
p.user("alice")
p.pass_("pw")
for n in range(1, len(p.list()[1]) + 1):
    p.retr(n)
    p.dele(n)
print(p.quit().decode())
"#;

#[test]
fn poplib_keep_then_delete() {
    let server = start();
    let m1 = message("one", 2);
    let m2 = message("two", 5);
    server.deliver("alice", &m1);
    server.deliver("alice", &m2);
    let v = server.uidvalidity("alice");
    let out = python(POPLIB_KEEP, server.addr.port());
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("capa "), "{out}");
    for cap in ["TOP", "UIDL", "USER", "SASL", "PIPELINING", "RESP-CODES"] {
        assert!(
            lines[0].split(' ').any(|c| c == cap),
            "{cap} in {}",
            lines[0]
        );
    }
    assert_eq!(lines[1], format!("stat 2 {}", m1.len() + m2.len()));
    assert_eq!(
        lines[2],
        format!("list ['1 {}', '2 {}']", m1.len(), m2.len())
    );
    assert_eq!(lines[3], format!("uidl ['1 {v}.1', '2 {v}.2']"));
    assert_eq!(lines[4], format!("retr +OK {0} octets {0}", m2.len()));
    assert_eq!(lines[5], "dot .line 1 starts with a dot", "poplib unstuffs");
    assert_eq!(lines[6], "top 5 True");
    assert_eq!(
        server.live_uids("alice"),
        [1, 2],
        "keep mode deletes nothing"
    );
    let out = python(POPLIB_DELETE, server.addr.port());
    assert_eq!(out.trim(), "+OK Bye (0 messages left)");
    assert!(server.live_uids("alice").is_empty());
}

fn curl() -> Option<()> {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: curl is not installed");
    }
    ok.then_some(())
}

fn run_curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-u", "alice:pw"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn curl_list_retr_and_commands() {
    if curl().is_none() {
        return;
    }
    let server = start();
    let m1 = message("one", 3);
    server.deliver("alice", &m1);
    server.deliver("alice", &message("two", 1));
    let base = format!("pop3://127.0.0.1:{}", server.addr.port());
    let list = run_curl(&[&base]);
    assert_eq!(
        list,
        format!("1 {}\r\n2 {}\r\n", m1.len(), message("two", 1).len())
    );
    let retr = run_curl(&[&format!("{base}/1")]);
    assert_eq!(retr, m1, "curl unstuffs to the message as stored");
    let v = server.uidvalidity("alice");
    let uidl = run_curl(&["-X", "UIDL", &base]);
    assert_eq!(uidl, format!("1 {v}.1\r\n2 {v}.2\r\n"));
    let top = run_curl(&["-X", "TOP 1 0", &base]);
    assert!(
        top.ends_with("Message-ID: <one@example.org>\r\n\r\n"),
        "{top:?}"
    );
    // curl's DELE, then its QUIT: the message is gone.
    run_curl(&["-X", "DELE", &format!("{base}/1"), "-I"]);
    assert_eq!(server.live_uids("alice"), [2]);
}

/// True when `tool` runs; else says the test is skipped.
fn have(tool: &str, version_flag: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty());
    if !ok {
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

/// Runs fetchmail once with `options` in its rc file; its exit code (0: mail
/// retrieved, 1: no mail).
fn fetchmail(server: &Server, dir: &std::path::Path, options: &str) -> i32 {
    use std::os::unix::fs::PermissionsExt;
    let rc = dir.join("fetchmailrc");
    let mbox = dir.join("mbox");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {} protocol pop3 uidl user \"alice\" password \"pw\" \
             {options} mda \"cat >> {}\"\n",
            server.addr.port(),
            mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .env("HOME", dir)
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(dir.join("ids"))
        .args(["--nosyslog", "--sslproto", ""])
        .output()
        .unwrap();
    out.status.code().unwrap_or(-1)
}

fn subjects(mbox: &std::path::Path) -> usize {
    std::fs::read_to_string(mbox)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Subject: "))
        .count()
}

#[test]
fn fetchmail_keep_then_delete() {
    if !have("fetchmail", "--version") {
        return;
    }
    let server = start();
    server.deliver("alice", &message("one", 2));
    server.deliver("alice", &message("two", 2));
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(fetchmail(&server, dir.path(), "keep"), 0);
    assert_eq!(subjects(&dir.path().join("mbox")), 2);
    // Keep mode remembers the UIDLs: nothing new the second time.
    assert_eq!(fetchmail(&server, dir.path(), "keep"), 1);
    assert_eq!(subjects(&dir.path().join("mbox")), 2);
    assert_eq!(server.live_uids("alice"), [1, 2]);
    server.deliver("alice", &message("three", 1));
    assert_eq!(fetchmail(&server, dir.path(), "keep"), 0);
    assert_eq!(subjects(&dir.path().join("mbox")), 3);
    // Delete mode, everything fetched again and flushed at QUIT.
    assert_eq!(fetchmail(&server, dir.path(), "fetchall nokeep"), 0);
    assert_eq!(subjects(&dir.path().join("mbox")), 6);
    assert!(server.live_uids("alice").is_empty());
}

#[test]
fn mpop_keep_then_delete() {
    if !have("mpop", "--version") {
        return;
    }
    let server = start();
    server.deliver("alice", &message("one", 2));
    server.deliver("alice", &message("two", 2));
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mbox");
    let mpop = |keep: &str| {
        let out = Command::new("mpop")
            .env("HOME", dir.path())
            .args(["-C", "/dev/null", "--host=127.0.0.1", "--user=alice"])
            .arg(format!("--port={}", server.addr.port()))
            .args(["--passwordeval=echo pw", "--tls=off", "--auth=user"])
            .arg(format!("--delivery=mbox,{}", mbox.display()))
            .arg(format!(
                "--uidls-file={}",
                dir.path().join("uidls").display()
            ))
            .arg(format!("--keep={keep}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mpop("on");
    assert_eq!(subjects(&mbox), 2);
    let uidls = std::fs::read_to_string(dir.path().join("uidls")).unwrap();
    let v = server.uidvalidity("alice");
    assert!(uidls.contains(&format!("{v}.1\n{v}.2")), "{uidls}");
    mpop("on");
    assert_eq!(subjects(&mbox), 2, "known UIDLs are not fetched again");
    assert_eq!(server.live_uids("alice"), [1, 2]);
    server.deliver("alice", &message("three", 1));
    mpop("off");
    assert_eq!(subjects(&mbox), 3, "only the new message");
    assert!(
        server.live_uids("alice").is_empty(),
        "mpop deletes all it has"
    );
}

/// Runs getmail (getmail6) once against the server: `delete` removes what it fetched,
/// else it fetches only messages whose UIDL it has not seen (its `oldmail` file).
fn getmail(server: &Server, dir: &std::path::Path, delete: bool) -> String {
    let mbox = dir.join("mbox");
    if !mbox.exists() {
        std::fs::write(&mbox, "").unwrap();
    }
    let rc = dir.join("getmailrc");
    std::fs::write(
        &rc,
        format!(
            // An external delivery command: getmail refuses its own mbox delivery when
            // run as root (as CI is), but allows a command it is told to allow.
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = {}\n\
             username = alice\npassword = pw\n\n[destination]\ntype = MDA_external\n\
             path = /bin/sh\narguments = (\"-c\", \"cat >> {}\")\nallow_root_commands = true\n\n\
             [options]\nread_all = {}\ndelete = {}\nverbose = 1\n",
            server.addr.port(),
            mbox.display(),
            if delete { "true" } else { "false" },
            if delete { "true" } else { "false" },
        ),
    )
    .unwrap();
    let out = Command::new("getmail")
        .arg("--getmaildir")
        .arg(dir)
        .arg("--rcfile")
        .arg(&rc)
        .output()
        .expect("getmail (Debian package getmail6) must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn getmail6_keep_then_delete() {
    let server = start();
    server.deliver("alice", &message("one", 2));
    server.deliver("alice", &message("two", 2));
    let dir = tempfile::tempdir().unwrap();
    getmail(&server, dir.path(), false);
    assert_eq!(subjects(&dir.path().join("mbox")), 2);
    // It remembers the UIDLs: nothing is fetched twice, nothing is deleted.
    getmail(&server, dir.path(), false);
    assert_eq!(subjects(&dir.path().join("mbox")), 2);
    assert_eq!(server.live_uids("alice"), [1, 2]);
    server.deliver("alice", &message("three", 1));
    getmail(&server, dir.path(), false);
    assert_eq!(subjects(&dir.path().join("mbox")), 3);
    // Delete mode: everything again, then gone from the server.
    getmail(&server, dir.path(), true);
    assert_eq!(subjects(&dir.path().join("mbox")), 6);
    assert!(server.live_uids("alice").is_empty());
}
