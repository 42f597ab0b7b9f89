//! URLAUTH=BINARY (RFC 5524) over a real socket: URLFETCH returns a part decoded,
//! as stored, or its structure, as the parenthesised URL asks.

mod common;

use common::*;

const MESSAGE: &str = "From: a@example.org\r\n\
Subject: parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
plain text\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8Ad29ybGQ=\r\n\
--b--\r\n";

#[test]
fn urlfetch_binary_body_and_structure() {
    let server = start();
    let uid = server.deliver("alice", "INBOX", MESSAGE);
    let mut alice = Client::login(server.addr, "alice");
    assert!(alice.ok("CAPABILITY")[0].contains(" URLAUTH=BINARY"));
    let mut url = |section: &str| {
        signed(&alice.ok(&format!(
            "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid}/;SECTION={section};URLAUTH=user+bob\" INTERNAL"
        )))
    };
    let (part2, part1, header) = (url("2"), url("1"), url("HEADER"));
    let mut bob = Client::login(server.addr, "bob");

    // BINARY undoes the base64: "hello\0world", which needs a literal8.
    let r = bob.ok(&format!("URLFETCH (\"{part2}\" BINARY)"));
    assert_eq!(
        r[0].as_bytes(),
        format!("* URLFETCH \"{part2}\" (BINARY ~{{11}}\r\nhello\0world)").as_bytes()
    );
    // BODY is the part as stored (the CRLF before the boundary is the boundary's);
    // BODYPARTSTRUCTURE its structure, first.
    let r = bob.ok(&format!("URLFETCH (\"{part2}\" BODY BODYPARTSTRUCTURE)"));
    assert_eq!(
        r[0],
        format!(
            "* URLFETCH \"{part2}\" (BODYPARTSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 16 NIL NIL NIL NIL) BODY \"aGVsbG8Ad29ybGQ=\")"
        )
    );
    // A text part without NUL comes back as a plain string; a bare URL as before, and
    // a parenthesised URL without parameters gives the part as stored.
    let r = bob.ok(&format!(
        "URLFETCH (\"{part1}\" BINARY) \"{part1}\" (\"{part1}\")"
    ));
    assert_eq!(
        r[0],
        format!(
            "* URLFETCH \"{part1}\" (BINARY \"plain text\") \"{part1}\" \"plain text\" \"{part1}\" (BODY \"plain text\")"
        )
    );
    // HEADER is not a part: no structure (the item is left out, the grammar has no
    // NIL for it) and nothing to decode.
    let r = bob.ok(&format!("URLFETCH (\"{header}\" BODYPARTSTRUCTURE BINARY)"));
    assert_eq!(r[0], format!("* URLFETCH \"{header}\" (BINARY NIL)"));
    // A URL that does not admit the fetcher is NIL, parameters or not.
    let r = alice.ok(&format!("URLFETCH (\"{part2}\" BINARY)"));
    assert_eq!(r[0], format!("* URLFETCH \"{part2}\" NIL"));
    // The parameters are checked.
    for bad in [
        format!("URLFETCH (\"{part2}\" BINARY BODY)"),
        format!("URLFETCH (\"{part2}\" SIZE)"),
    ] {
        let r = bob.cmd(&bad);
        assert!(r.last().unwrap().contains(" BAD "), "{bad}: {r:?}");
    }
}

/// One URLFETCH cannot make the server hold more than APPENDLIMIT of answer: many URLs
/// of one large message get `NO [LIMIT]`, and a smaller request still works.
#[test]
fn urlfetch_answer_is_bounded() {
    let server = start_with(tern_imap::ImapConfig {
        max_literal: 4096,
        ..tern_imap::ImapConfig::default()
    });
    let body = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(1500));
    let uid = server.deliver("alice", "INBOX", &body);
    let mut alice = Client::login(server.addr, "alice");
    let url = signed(&alice.ok(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid};URLAUTH=user+alice\" INTERNAL"
    )));
    let many = vec![format!("\"{url}\""); 5].join(" ");
    let r = alice.cmd(&format!("URLFETCH {many}"));
    assert!(r.last().unwrap().contains(" NO [LIMIT]"), "{r:?}");
    assert!(!r.iter().any(|l| l.starts_with("* URLFETCH")), "{r:?}");
    let r = alice.ok(&format!("URLFETCH \"{url}\" \"{url}\""));
    assert!(r[0].starts_with("* URLFETCH"), "{r:?}");
}

/// A message holding NUL: URLFETCH's plain data masks it as FETCH does (0x80, same
/// length), where it used to drop it.
#[test]
fn urlfetch_data_with_nul_keeps_its_length() {
    let server = start();
    let uid = server.deliver("alice", "INBOX", "Subject: nul\r\n\r\na\0b\r\n");
    let mut alice = Client::login(server.addr, "alice");
    let url = signed(&alice.ok(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid}/;SECTION=TEXT;URLAUTH=user+alice\" INTERNAL"
    )));
    alice.send(format!("u URLFETCH \"{url}\"\r\n").as_bytes());
    let line = alice.line_bytes();
    let mut want = format!("* URLFETCH \"{url}\" {{5}}\r\n").into_bytes();
    want.extend_from_slice(b"a\x80b\r\n\r\n");
    assert_eq!(line, want, "{}", String::from_utf8_lossy(&line));
    assert!(alice.line().starts_with("u OK"));
}

/// BINARY of an encapsulated message sends it with each part inside decoded and
/// labelled `binary` (the result is a MIME entity again), as FETCH BINARY[n] does; its
/// BODYPARTSTRUCTURE, asked for beside BINARY, gives the decoded sizes and lines.
#[test]
fn urlfetch_binary_of_an_encapsulated_message() {
    let server = start();
    let message = "Subject: outer\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\
\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8g\r\nd29ybGQ=\r\n\
--o--\r\n";
    let uid = server.deliver("alice", "INBOX", message);
    let mut alice = Client::login(server.addr, "alice");
    let url = signed(&alice.ok(&format!(
        "GENURLAUTH \"imap://alice@localhost/INBOX/;UID={uid}/;SECTION=1;URLAUTH=user+alice\" INTERNAL"
    )));
    let decoded = "Subject: inner\r\nContent-Type: text/plain\r\n\
Content-Transfer-Encoding: binary\r\n\r\nhello world";
    let r = alice
        .ok(&format!("URLFETCH (\"{url}\" BINARY BODYPARTSTRUCTURE)"))
        .join("\r\n");
    assert!(
        r.starts_with(&format!(
            "* URLFETCH \"{url}\" (BODYPARTSTRUCTURE (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" {} ",
            decoded.len()
        )),
        "{r}"
    );
    // The inner part: 11 decoded octets and no line feed; the message: 4 lines.
    assert!(
        r.contains("\"BASE64\" 11 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) BINARY {"),
        "{r}"
    );
    assert!(r.contains(&format!("\r\n{decoded})")), "{r}");
    // Without BINARY the structure is the stored one.
    let r = alice
        .ok(&format!("URLFETCH (\"{url}\" BODYPARTSTRUCTURE)"))
        .join("\r\n");
    assert!(r.contains("\"BASE64\" 18 1 NIL NIL NIL NIL) 5 NIL"), "{r}");
    // FETCH BINARY[1] sends the same entity, BINARY.SIZE[1] its length.
    alice.ok("SELECT INBOX");
    let r = alice
        .ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
        .join("\r\n");
    assert!(
        r.contains(&format!(
            "BINARY.SIZE[1] {} BINARY[1] {{{}}}\r\n{decoded})",
            decoded.len(),
            decoded.len()
        )),
        "{r}"
    );
}
