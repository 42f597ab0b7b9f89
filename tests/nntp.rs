//! NNTP through the real `tern serve`: Python's nntplib as a reader
//! (`tests/python/nntp_nntplib.py`), a Thunderbird-style exchange and an IHAVE feed
//! over a raw socket with the exact protocol text, the newsreaders tin and slrn driven
//! through tmux, and hostile clients (endless lines, oversized and abandoned POSTs,
//! garbage) that must leave nothing half-written.

mod common;

use common::tmux::*;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// A raw NNTP client: lines in, replies out.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let greeting = raw.line();
        assert!(greeting.starts_with("200 "), "{greeting}");
        raw
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    fn cmd(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n"));
        self.line()
    }

    /// The lines of a multi-line answer, up to its `.`.
    fn block(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return lines;
            }
            lines.push(l);
        }
    }
}

fn articles_in(server: &TernServer, group: &str) -> u32 {
    open_store(&server.data_dir())
        .shared_mailbox(&format!("news/{group}"))
        .unwrap()
        .unwrap()
        .messages
}

#[test]
fn nntplib_reads_posts_and_follows_the_acl() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let nntp = server.nntp.expect("nntp listener");
    let out = Command::new("python3")
        .arg(format!("{PYTHON_DIR}/nntp_nntplib.py"))
        .arg(nntp.ip().to_string())
        .arg(nntp.port().to_string())
        .arg(server.lmtp.port().to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = admin_ok(&server.config, &["newsgroup", "list"]);
    assert!(
        listed.contains("tern.test") && listed.contains("Testing"),
        "{listed}"
    );
}

/// What Thunderbird sends when it subscribes, reads and posts, with the replies it
/// relies on.
#[test]
fn a_thunderbird_style_session() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let mut c = Raw::connect(server.nntp.unwrap());
    assert!(c.cmd("MODE READER").starts_with("200 "));
    assert_eq!(c.cmd("AUTHINFO USER alice"), "381 Password required");
    assert_eq!(c.cmd("AUTHINFO PASS secret"), "281 Authentication accepted");
    assert!(c.cmd("LIST").starts_with("215 "));
    assert_eq!(c.block(), ["tern.staff 0 1 y", "tern.test 0 1 y"]);
    assert!(c.cmd("NEWGROUPS 700101 000000 GMT").starts_with("231 "));
    assert_eq!(c.block().len(), 2);
    assert_eq!(c.cmd("GROUP tern.test"), "211 0 1 0 tern.test");
    assert_eq!(c.cmd("XOVER 1-"), "423 No articles in that range");
    assert!(c.cmd("POST").starts_with("340 "));
    c.send("From: T <t@example.org>\r\nNewsgroups: tern.test\r\nSubject: Thunderbird\r\nMessage-ID: <tb-1@example.org>\r\n\r\n..leading dot\r\nbody\r\n.\r\n");
    assert_eq!(c.line(), "240 Article received <tb-1@example.org>");
    assert_eq!(c.cmd("GROUP tern.test"), "211 1 1 1 tern.test");
    assert_eq!(c.cmd("XOVER 1-1"), "224 Overview information follows");
    let over = c.block();
    assert_eq!(over.len(), 1);
    let fields: Vec<&str> = over[0].split('\t').collect();
    assert_eq!(&fields[..2], ["1", "Thunderbird"]);
    assert_eq!(fields[4], "<tb-1@example.org>");
    assert_eq!(fields[7], "2", ":lines of the body");
    assert_eq!(
        fields[8], "Xref: localhost tern.test:1",
        "OVERVIEW.FMT's Xref:full"
    );
    assert_eq!(c.cmd("XHDR Subject 1-1"), "221 Header follows");
    assert_eq!(c.block(), ["1 Thunderbird"]);
    assert_eq!(c.cmd("HDR :bytes 1"), "225 Headers follow");
    assert_eq!(c.block().len(), 1);
    assert_eq!(c.cmd("ARTICLE 1"), "220 1 <tb-1@example.org>");
    let article = c.block();
    assert!(article[0].starts_with("Xref: "), "{article:?}");
    let body_at = article.iter().position(|l| l.is_empty()).unwrap();
    assert_eq!(
        &article[body_at + 1..],
        ["..leading dot", "body"],
        "the dot stays stuffed on the wire"
    );
    assert_eq!(c.cmd("BODY <tb-1@example.org>"), "222 1 <tb-1@example.org>");
    assert_eq!(c.block(), ["..leading dot", "body"]);
    assert_eq!(c.cmd("FROB"), "500 Unknown command");
    assert!(c.cmd("GROUP").starts_with("501 "));
    assert_eq!(c.cmd("GROUP no.such.group"), "411 No such newsgroup");
    assert_eq!(c.cmd("QUIT"), "205 Connection closing");
}

/// A peer offering articles with IHAVE: taken once, refused when known, rejected when
/// malformed; the relayed article keeps its id and gets this host in its Path.
#[test]
fn an_ihave_feed() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let mut c = Raw::connect(server.nntp.unwrap());
    assert_eq!(
        c.cmd("IHAVE <feed-1@far.example>"),
        "480 Authentication required for posting"
    );
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    let art = "Path: far.example!poster\r\nFrom: p@far.example\r\nNewsgroups: tern.test,other.group\r\nSubject: fed\r\nMessage-ID: <feed-1@far.example>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nfrom afar\r\n.\r\n";
    assert!(c.cmd("IHAVE <feed-1@far.example>").starts_with("335 "));
    c.send(art);
    assert_eq!(c.line(), "235 Article transferred OK");
    assert_eq!(
        c.cmd("IHAVE <feed-1@far.example>"),
        "435 Article not wanted"
    );
    // An article whose Message-ID differs from the one offered.
    assert!(c.cmd("IHAVE <feed-2@far.example>").starts_with("335 "));
    c.send(art);
    assert!(c.line().starts_with("437 "));
    // Nowhere to file it.
    assert!(c.cmd("IHAVE <feed-3@far.example>").starts_with("335 "));
    c.send(
        &art.replace("tern.test,other.group", "other.group")
            .replace("feed-1", "feed-3"),
    );
    assert!(c.line().starts_with("437 "));
    assert_eq!(
        c.cmd("HEAD <feed-1@far.example>"),
        "221 0 <feed-1@far.example>"
    );
    let head = c.block();
    assert!(
        head.contains(&"Path: localhost!far.example!poster".to_owned()),
        "{head:?}"
    );
    assert!(
        !head.iter().any(|l| l.starts_with("Injection-Date")),
        "relayed, not injected: {head:?}"
    );
    assert_eq!(articles_in(&server, "tern.test"), 1);
}

#[test]
fn hostile_clients_leave_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let addr = server.nntp.unwrap();

    // An endless line: refused, and the session goes on.
    let mut c = Raw::connect(addr);
    c.send(&"X".repeat(200_000));
    c.send("\r\n");
    assert!(c.line().starts_with("501 "));
    assert!(c.cmd("DATE").starts_with("111 "));

    // An article over max_article_size (64 KiB here): read to its end, refused, not stored.
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    assert!(c.cmd("POST").starts_with("340 "));
    c.send("From: a@b\r\nNewsgroups: tern.test\r\nSubject: big\r\n\r\n");
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..100 {
        c.send(&line);
    }
    c.send(".\r\n");
    assert_eq!(c.line(), "441 Posting failed: article too large");
    assert!(
        c.cmd("DATE").starts_with("111 "),
        "the session goes on after the refusal"
    );

    // A NUL octet, which no article may hold and no answer could carry: refused.
    assert!(c.cmd("POST").starts_with("340 "));
    c.send("From: a@b\r\nNewsgroups: tern.test\r\nSubject: n\0ul\r\n\r\nbody\r\n.\r\n");
    assert_eq!(
        c.line(),
        "441 Posting failed: an article may not contain a NUL octet"
    );

    // A client that vanishes in the middle of its POST.
    let mut gone = Raw::connect(addr);
    gone.cmd("AUTHINFO USER alice");
    gone.cmd("AUTHINFO PASS secret");
    assert!(gone.cmd("POST").starts_with("340 "));
    gone.send("From: a@b\r\nNewsgroups: tern.test\r\nSubject: half\r\n\r\nthe first half\r\n");
    drop(gone);

    // Garbage: 500s and 501s, then the connection is closed after too many errors.
    let mut g = Raw::connect(addr);
    for i in 0..30u8 {
        // The server may close after the 21st line while the client still writes: a
        // broken pipe here is that close, not a failure (the replies are read below).
        if g.writer
            .write_all(&[0xff, i, b' ', 0x80, b'\r', b'\n'])
            .is_err()
        {
            break;
        }
    }
    let mut rest = String::new();
    let _ = g.reader.read_to_string(&mut rest);
    assert!(
        rest.lines()
            .all(|l| l.starts_with("50") || l.starts_with("400 ")),
        "{rest}"
    );
    assert!(rest.contains("400 Too many errors"), "{rest}");

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        articles_in(&server, "tern.test"),
        0,
        "nothing of the refused or abandoned POSTs"
    );
    // The server still serves.
    let mut c = Raw::connect(addr);
    assert!(c.cmd("LIST").starts_with("215 "));
    assert_eq!(c.block(), ["tern.test 0 1 n"]);
}

/// tin, a newsreader from Debian, driven through tmux as a person would: it lists the
/// subscribed group with its description, shows the articles' subjects, and posts a
/// new article that then reads back over NNTP.
#[test]
fn tin_reads_and_posts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let addr = server.nntp.unwrap();
    let mut c = Raw::connect(addr);
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    for (n, subject) in ["Welcome to the group", "Second thoughts"]
        .iter()
        .enumerate()
    {
        assert!(c.cmd("POST").starts_with("340"));
        c.send(&format!(
            "From: Bob <bob@example.org>\r\nNewsgroups: tern.test\r\nSubject: {subject}\r\nMessage-ID: <tin-{n}@example.org>\r\n\r\nbody {n}\r\n.\r\n"
        ));
        assert!(c.line().starts_with("240"));
    }

    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".tin")).unwrap();
    std::fs::write(home.join(".newsrc"), "tern.test:\n").unwrap();
    std::fs::write(
        home.join(".tin/tinrc"),
        "mail_address=Alice <alice@example.org>\n",
    )
    .unwrap();
    let auth = home.join(".newsauth");
    std::fs::write(&auth, format!("{} secret alice\n", addr.ip())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The "editor" tin opens for the new article adds its body.
    let editor = home.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nfor f; do :; done\nprintf 'Posted with tin through tern.\\n' >> \"$f\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();

    let session = format!("tern-tin-{}", std::process::id());
    let tin = format!(
        "env HOME={} TERM=xterm EDITOR={} VISUAL={} tin -r -A -q -g {} -p {}; sleep 30",
        home.display(),
        editor.display(),
        editor.display(),
        addr.ip(),
        addr.port()
    );
    let _guard = Tmux::start(&session, &tin);
    // With a tinrc, tin skips its first-start welcome page and lists the groups.
    let groups = wait_for(&session, "Group Selection");
    assert!(
        groups.contains("tern.test") && groups.contains("Testing"),
        "{groups}"
    );
    keys(&session, &["Enter"]);
    let index = wait_for(&session, "Second thoughts");
    assert!(index.contains("Welcome to the group"), "{index}");
    keys(&session, &["w"]);
    wait_for(&session, "Post subject");
    keys(&session, &["Hello from tin", "Enter"]);
    wait_for(&session, "p=post");
    keys(&session, &["p"]);
    wait_for(&session, "Article posted");

    assert_eq!(c.cmd("GROUP tern.test"), "211 3 1 3 tern.test");
    assert_eq!(c.cmd("XHDR Subject 3"), "221 Header follows");
    assert_eq!(c.block(), ["3 Hello from tin"]);
    assert!(c.cmd("BODY 3").starts_with("222 3 <"));
    assert!(c
        .block()
        .contains(&"Posted with tin through tern.".to_owned()));
}

/// STARTTLS (RFC 4642) with Python's nntplib, then AUTHINFO over the encrypted
/// connection; CAPABILITIES stops offering STARTTLS once it is on.
#[test]
fn starttls_then_authinfo_with_nntplib() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let nntp = server.nntp.unwrap();
    let script = r#"
import ssl, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import nntplib
n = nntplib.NNTP(sys.argv[1], int(sys.argv[2]))
assert "STARTTLS" in n.getcapabilities(), n.getcapabilities()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
n.starttls(ctx)
assert "STARTTLS" not in n.getcapabilities(), n.getcapabilities()
n.login("alice", "secret", usenetrc=False)
resp, count, first, last, name = n.group("tern.staff")
print(resp, n.sock.version())
n.quit()
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &nntp.ip().to_string(),
            &nntp.port().to_string(),
        ])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("211 0 1 0 tern.staff TLSv1."),
        "{stdout}"
    );
}

/// A group whose UIDs reached RFC 3977's article-number limit takes no more articles
/// (and says so), rather than handing out numbers readers cannot hold.
#[test]
fn article_numbers_stop_at_the_rfc_3977_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    {
        let index = server.data_dir().join("index.sqlite3");
        let db = rusqlite::Connection::open(index).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let n = db
            .execute(
                "UPDATE mailboxes SET last_uid = 2147483647 WHERE name = 'news/tern.staff'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let mut c = Raw::connect(server.nntp.unwrap());
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    assert!(c.cmd("LIST ACTIVE tern.staff").starts_with("215"));
    assert_eq!(c.block(), ["tern.staff 2147483647 2147483648 n"]);
    assert!(c.cmd("POST").starts_with("340"));
    c.send("From: a@b\r\nNewsgroups: tern.staff\r\nSubject: one too many\r\n\r\nx\r\n.\r\n");
    assert!(c.line().starts_with("441 "), "no number left for it");
    assert_eq!(
        c.cmd("GROUP tern.staff"),
        "211 0 2147483648 2147483647 tern.staff"
    );
}

/// slrn, the other newsreader in Debian, driven through tmux: it logs in with the
/// `nnrpaccess` of its slrnrc, lists the subscribed group with its article count,
/// shows the articles' subjects (from XOVER) and an article's body, posts a new
/// article that reads back over NNTP as the server injected it, and records what it
/// read in its newsrc when it quits.
#[test]
fn slrn_reads_and_posts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let addr = server.nntp.unwrap();
    let mut c = Raw::connect(addr);
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    for (n, subject) in ["Welcome to slrn", "Another article"].iter().enumerate() {
        assert!(c.cmd("POST").starts_with("340"));
        c.send(&format!(
            "From: Bob <bob@example.org>\r\nNewsgroups: tern.test\r\nSubject: {subject}\r\nMessage-ID: <slrn-{n}@example.org>\r\n\r\nThe body of article {n}.\r\n.\r\n"
        ));
        assert!(c.line().starts_with("240"));
    }

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".jnewsrc"), "tern.test:\n").unwrap();
    let editor = home.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf 'Posted with slrn through tern.\\n' >> \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let slrnrc = home.join(".slrnrc");
    std::fs::write(
        &slrnrc,
        format!(
            "set username \"alice\"\nset hostname \"example.org\"\nset realname \"Alice\"\n\
             set editor_command \"{} '%s'\"\nset confirm_actions 0\n\
             nnrpaccess \"{}\" \"alice\" \"secret\"\n",
            editor.display(),
            addr.ip()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slrnrc, std::fs::Permissions::from_mode(0o600)).unwrap();

    let session = format!("tern-slrn-{}", std::process::id());
    let slrn = format!(
        "env HOME={} TERM=xterm slrn --nntp -h {} -p {} -f {} -i {} -C-; sleep 30",
        home.display(),
        addr.ip(),
        addr.port(),
        home.join(".jnewsrc").display(),
        slrnrc.display()
    );
    let _guard = Tmux::start(&session, &slrn);
    // The group list: the subscribed group with its two unread articles.
    let groups = wait_for(&session, "News Groups:");
    assert!(
        groups
            .lines()
            .any(|l| l.contains("tern.test") && l.contains(" 2 ")),
        "{groups}"
    );
    keys(&session, &["Space"]);
    // The article list comes from XOVER: both subjects with their authors.
    let index = wait_for(&session, "Another article");
    assert!(
        index.contains("Welcome to slrn") && index.contains("[Bob"),
        "{index}"
    );
    keys(&session, &["Space"]);
    wait_for(&session, "The body of article 1.");
    keys(&session, &["P"]);
    wait_for(&session, "Newsgroup: tern.test");
    keys(&session, &["Enter"]);
    wait_for(&session, "Subject:");
    keys(&session, &["Hello from slrn", "Enter"]);
    wait_for(&session, "Post the message?");
    keys(&session, &["y"]);
    wait_for(&session, "Posting...done.");
    // Quitting writes slrn's newsrc: article 2, the one it showed, is read.
    keys(&session, &["q"]);
    wait_for(&session, "News Groups:");
    keys(&session, &["q"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let newsrc = loop {
        let text = std::fs::read_to_string(home.join(".jnewsrc")).unwrap_or_default();
        if text.contains("tern.test: ") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(newsrc.trim_end(), "tern.test: 2");

    // The article, injected: the server's Message-ID, Path and Injection-Date; slrn's
    // From and Subject; the body the editor wrote.
    assert_eq!(c.cmd("GROUP tern.test"), "211 3 1 3 tern.test");
    assert!(c.cmd("HEAD 3").starts_with("221 3 <"));
    let head = c.block();
    for wanted in [
        "From: Alice <alice@example.org>",
        "Subject: Hello from slrn",
        "Newsgroups: tern.test",
        "Xref: localhost tern.test:3",
    ] {
        assert!(head.iter().any(|l| l == wanted), "{wanted}: {head:?}");
    }
    for added in ["Message-ID: <", "Path: ", "Injection-Date: ", "Date: "] {
        assert!(
            head.iter().any(|l| l.starts_with(added)),
            "{added}: {head:?}"
        );
    }
    assert!(c.cmd("BODY 3").starts_with("222 3 <"));
    assert_eq!(c.block(), ["Posted with slrn through tern."]);
}

/// A group larger than one store read (OVER, HDR and LISTGROUP go out 256 articles at a
/// time): every article appears once, in order, with its own fields, across the batch
/// boundaries, and a range that straddles one is cut exactly.
#[test]
fn over_hdr_and_listgroup_across_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let mut c = Raw::connect(server.nntp.unwrap());
    c.cmd("AUTHINFO USER alice");
    c.cmd("AUTHINFO PASS secret");
    const N: u32 = 600;
    for n in 1..=N {
        assert!(c.cmd("POST").starts_with("340"));
        c.send(&format!(
            "From: Bulk <bulk@example.org>\r\nNewsgroups: tern.test\r\nSubject: bulk {n}\r\nMessage-ID: <bulk-{n}@example.org>\r\n\r\n{}.\r\n",
            "a line\r\n".repeat(n as usize % 5 + 1)
        ));
        assert!(c.line().starts_with("240"));
    }
    assert_eq!(c.cmd("GROUP tern.test"), format!("211 {N} 1 {N} tern.test"));

    assert!(c.cmd("XOVER 1-").starts_with("224 "));
    let over = c.block();
    assert_eq!(over.len(), N as usize);
    for (i, line) in over.iter().enumerate() {
        let n = i + 1;
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[0], n.to_string(), "{line}");
        assert_eq!(f[1], format!("bulk {n}"), "{line}");
        assert_eq!(f[4], format!("<bulk-{n}@example.org>"), "{line}");
        assert_eq!(f[7], (n % 5 + 1).to_string(), ":lines of {line}");
        assert_eq!(f[8], format!("Xref: localhost tern.test:{n}"), "{line}");
    }

    assert!(c.cmd("OVER 250-260").starts_with("224 "));
    let numbers: Vec<String> = c
        .block()
        .iter()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        numbers,
        (250..=260).map(|n| n.to_string()).collect::<Vec<_>>()
    );

    assert_eq!(c.cmd("XHDR Subject 255-"), "221 Header follows");
    let subjects = c.block();
    assert_eq!(subjects.len(), (N - 254) as usize);
    assert_eq!(subjects[0], "255 bulk 255");
    assert_eq!(subjects.last().unwrap(), &format!("{N} bulk {N}"));

    assert!(c.cmd("LISTGROUP tern.test").starts_with("211 "));
    assert_eq!(
        c.block(),
        (1..=N).map(|n| n.to_string()).collect::<Vec<_>>()
    );
}
