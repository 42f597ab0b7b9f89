//! IMAP through the real `tern serve` binary, driven by curl's `imap://` (RFC 5092
//! URLs): a client tern did not write, with its own parsing of LIST, SEARCH and
//! literals, its own APPEND, and its own STARTTLS. Each check is what a user of curl
//! would look at: the listing, the message's bytes, the search hits.
//!
//! curl is required (`.ci/run` installs it); a missing tool fails the test.

mod common;

use common::maildir::*;
use common::show;
use std::process::Command;

/// Runs curl with `args`, requiring success; its standard output.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30", "--user"])
        .arg(format!("alice:{PASSWORD}"))
        .args(args)
        .output()
        .expect("curl must be installed (.ci/run installs it)");
    assert!(out.status.success(), "curl {args:?}\n{}", show(&out));
    out.stdout
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn curl_lists_fetches_searches_and_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let account = Account::new(tmp.path(), "curl");
    let first = account.deliver(1);
    let second = account.deliver(2);
    let base = format!("imap://{}", account.server.imap);

    // The mailbox list, as curl prints the LIST responses.
    let listing = text(&curl(&[&format!("{base}/")]));
    for name in ["INBOX", "Sent", "Drafts", "Trash"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("* LIST ") && l.trim_end().ends_with(&format!("\"{name}\""))),
            "no {name} in curl's listing:\n{listing}"
        );
    }

    // A message by UID: curl prints the literal, the bytes as delivered.
    assert_eq!(curl(&[&format!("{base}/INBOX;UID=1")]), first);
    assert_eq!(curl(&[&format!("{base}/INBOX;UID=2")]), second);
    // One section of it (RFC 5092 `;SECTION=`): the header, ending with its blank line.
    let header = curl(&[&format!("{base}/INBOX;UID=2;SECTION=HEADER")]);
    let end = second.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(text(&header), text(&second[..end]));

    // A search through the URL's query (RFC 5092 `?`), and one as a custom command.
    let hits = text(&curl(&[&format!(
        "{base}/INBOX?SUBJECT%20%22sync%20test%202%22"
    )]));
    assert_eq!(hits.trim_end(), "* SEARCH 2", "{hits}");
    let all = text(&curl(&["-X", "UID SEARCH ALL", &format!("{base}/INBOX")]));
    assert_eq!(all.trim_end(), "* SEARCH 1 2", "{all}");

    // APPEND by upload; the message reads back byte for byte, by UID 1 of Sent.
    let draft = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\
Subject: uploaded with curl\r\nMessage-ID: <curl-upload@example.org>\r\n\r\nSent from curl.\r\n";
    let file = tmp.path().join("upload.eml");
    std::fs::write(&file, draft).unwrap();
    curl(&["-T", &file.display().to_string(), &format!("{base}/Sent")]);
    assert_eq!(curl(&[&format!("{base}/Sent;UID=1")]), draft);
    let sent = account.server_state("Sent");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent.contains_key("<curl-upload@example.org>"), "{sent:?}");

    // The same over STARTTLS, which curl requires here (`--ssl-reqd`); tern's
    // certificate is self-signed, hence `--insecure`.
    let over_tls = curl(&["--ssl-reqd", "--insecure", &format!("{base}/INBOX;UID=1")]);
    assert_eq!(over_tls, first);
}
