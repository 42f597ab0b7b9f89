//! The MIME unit tests of IMAP's rendering: ENVELOPE, BODYSTRUCTURE / BODY, body
//! sections and BINARY, over the shared fixtures and fuzzed variants of them.

use tern_message::fixtures::*;
use tern_message::{body_text, decoded_part as binary, header_values, UnknownEncoding};

use super::envelope::write_addresses;
use super::test_util::*;
use super::{section, summarize};
use crate::types::SectionText;
use tern_message::address::parse_addresses;
#[test]
fn simple_message() {
    let sum = summarize(SIMPLE);
    assert_eq!(
        s(&sum.envelope),
        "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Hello world\" \
(\"John Doe\" NIL \"john\" \"example.com\"))"
            .replace("(\"John", "((\"John")
            + " ((\"John Doe\" NIL \"john\" \"example.com\"))"
            + " ((\"John Doe\" NIL \"john\" \"example.com\"))"
            + " ((\"Jane Roe\" NIL \"jane\" \"example.org\")(NIL NIL \"bob\" \"example.net\"))"
            + " NIL NIL NIL \"<B27397-0100000@example.com>\")"
    );
    assert_eq!(
        s(&sum.body_structure),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 27 2 NIL NIL NIL NIL)"
    );
    assert_eq!(
        s(&sum.body),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 27 2)"
    );
    assert_eq!(sum.keys.date, Some(760686745));
    assert_eq!(sum.size, SIMPLE.len() as u64);
    assert_eq!(sum.keys.subject.as_deref(), Some("Hello world"));
    assert_eq!(sum.keys.base_subject, "Hello world");
    assert_eq!(sum.keys.from_mailbox.as_deref(), Some("john"));
    assert_eq!(sum.keys.to_mailbox.as_deref(), Some("jane"));
    assert_eq!(sum.keys.cc_mailbox, None);
    assert_eq!(sum.keys.display_from.as_deref(), Some("John Doe"));
    assert_eq!(sum.keys.display_to.as_deref(), Some("Jane Roe"));
    assert_eq!(
        sum.keys.message_id.as_deref(),
        Some("B27397-0100000@example.com")
    );
    assert_eq!(sum.keys.in_reply_to, None);
    assert!(sum.keys.references.is_empty());

    let header_len = SIMPLE.len() - 27;
    assert_eq!(section(SIMPLE, &sec(&[], None)).unwrap(), SIMPLE);
    assert_eq!(
        section(SIMPLE, &sec(&[], Some(SectionText::Header))).unwrap(),
        &SIMPLE[..header_len]
    );
    assert_eq!(
        section(SIMPLE, &sec(&[], Some(SectionText::Text))).unwrap(),
        b"Hello Jane,\r\nHow are you?\r\n"
    );
    assert_eq!(
        section(SIMPLE, &sec(&[1], None)).unwrap(),
        b"Hello Jane,\r\nHow are you?\r\n"
    );
    assert_eq!(
        section(SIMPLE, &sec(&[1], Some(SectionText::Mime))).unwrap(),
        &SIMPLE[..header_len]
    );
    assert_eq!(section(SIMPLE, &sec(&[2], None)), None);
    assert_eq!(section(SIMPLE, &sec(&[1, 1], None)), None);
    assert_eq!(section(SIMPLE, &sec(&[0], None)), None);
    assert_eq!(section(SIMPLE, &sec(&[], Some(SectionText::Mime))), None);
    assert_eq!(section(SIMPLE, &sec(&[1], Some(SectionText::Header))), None);
    assert_eq!(
        section(
            SIMPLE,
            &sec(
                &[],
                Some(SectionText::HeaderFields(vec![
                    "subject".into(),
                    "FROM".into()
                ]))
            )
        )
        .unwrap(),
        b"From: John Doe <john@example.com>\r\nSubject: Hello world\r\n\r\n"
    );
    assert_eq!(
        section(
            SIMPLE,
            &sec(
                &[],
                Some(SectionText::HeaderFieldsNot(vec![
                    "To".into(),
                    "date".into(),
                    "Message-Id".into()
                ]))
            )
        )
        .unwrap(),
        b"From: John Doe <john@example.com>\r\nSubject: Hello world\r\n\r\n"
    );
    assert_eq!(
        section(
            SIMPLE,
            &sec(&[], Some(SectionText::HeaderFields(vec!["X-None".into()])))
        )
        .unwrap(),
        b"\r\n"
    );
    assert_eq!(
        binary(SIMPLE, &[1]).unwrap().unwrap(),
        b"Hello Jane,\r\nHow are you?\r\n"
    );
    assert_eq!(binary(SIMPLE, &[]).unwrap().unwrap(), SIMPLE);
    assert_eq!(binary(SIMPLE, &[2]).unwrap(), None);
}

#[test]
fn multipart_alternative() {
    let sum = summarize(ALTERNATIVE);
    assert_eq!(
        s(&sum.body_structure),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 0 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 0 NIL NIL NIL NIL) \
\"ALTERNATIVE\" (\"BOUNDARY\" \"XYZ\") NIL NIL NIL)"
    );
    assert_eq!(
        s(&sum.body),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 0)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 0) \"ALTERNATIVE\")"
    );
    assert_eq!(
        s(&sum.envelope),
        "(NIL \"Re: [list] Fwd: Meeting (fwd)\" ((NIL NIL \"a\" \"example.com\")) \
((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) \
((NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL)"
    );
    assert_eq!(sum.keys.base_subject, "Meeting");
    assert_eq!(sum.keys.date, None);
    assert_eq!(sum.keys.display_from.as_deref(), Some("a@example.com"));

    assert_eq!(
        section(ALTERNATIVE, &sec(&[1], None)).unwrap(),
        b"Caf=C3=A9 time"
    );
    assert_eq!(
        section(ALTERNATIVE, &sec(&[2], None)).unwrap(),
        b"<p>Caf&eacute;</p>"
    );
    assert_eq!(
        section(ALTERNATIVE, &sec(&[2], Some(SectionText::Mime))).unwrap(),
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    );
    assert_eq!(section(ALTERNATIVE, &sec(&[3], None)), None);
    let text = section(ALTERNATIVE, &sec(&[], Some(SectionText::Text))).unwrap();
    assert!(
        text.starts_with(b"preamble\r\n--XYZ\r\n") && text.ends_with(b"--XYZ--\r\nepilogue\r\n")
    );
    assert_eq!(
        binary(ALTERNATIVE, &[1]).unwrap().unwrap(),
        "Caf\u{e9} time".as_bytes()
    );
    let body = body_text(ALTERNATIVE);
    assert!(
        body.contains("Caf\u{e9} time") && !body.contains("<p>"),
        "only the plain alternative is searched: {body}"
    );
    assert!(!body.contains("preamble"));
}

#[test]
fn mixed_with_attachment_and_message() {
    let sum = summarize(MIXED);
    let from = "((\"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=\" NIL \"joerg\" \"example.de\"))";
    let expected_env = format!(
        "(\"Tue, 1 Jul 2003 10:52:37 +0200\" \"=?UTF-8?B?R3LDvMOfZQ==?= again\" {from} {from} {from} \
((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.fr\")) \
((\"=?ISO-8859-1?B?RnJhbudvaXM=?=\" NIL \"francois\" \"example.fr\")) NIL \
\"<m2@example.de>\" \"<m3@example.de>\")"
    );
    assert_eq!(s(&sum.envelope), expected_env);
    let inner_from = "((NIL NIL \"inner\" \"example.com\"))";
    let expected_bs = format!(
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 13 0 NIL NIL NIL NIL)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"data.bin\") \"<part2@example.de>\" \"Some data\" \"BASE64\" 16 \
NIL (\"ATTACHMENT\" (\"FILENAME\" \"data.bin\")) NIL NIL)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 \
(NIL \"Inner\" {inner_from} {inner_from} {inner_from} NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"
    );
    assert_eq!(s(&sum.body_structure), expected_bs);
    let expected_body = format!(
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 13 0)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"data.bin\") \"<part2@example.de>\" \"Some data\" \"BASE64\" 16)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 \
(NIL \"Inner\" {inner_from} {inner_from} {inner_from} NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0) 3) \"MIXED\")"
    );
    assert_eq!(s(&sum.body), expected_body);

    assert_eq!(sum.keys.date, Some(1057049557));
    assert_eq!(sum.keys.subject.as_deref(), Some("Gr\u{fc}\u{df}e again"));
    assert_eq!(sum.keys.base_subject, "Gr\u{fc}\u{df}e again");
    assert_eq!(sum.keys.from_mailbox.as_deref(), Some("joerg"));
    assert_eq!(sum.keys.cc_mailbox.as_deref(), Some("francois"));
    assert_eq!(
        sum.keys.display_from.as_deref(),
        Some("J\u{f6}rg M\u{fc}ller")
    );
    assert_eq!(sum.keys.display_to.as_deref(), Some("Andr\u{e9}"));
    assert_eq!(sum.keys.message_id.as_deref(), Some("m3@example.de"));
    assert_eq!(sum.keys.in_reply_to.as_deref(), Some("m2@example.de"));
    assert_eq!(
        sum.keys.references,
        vec!["m1@example.de".to_string(), "m2@example.de".to_string()]
    );

    let inner = b"From: inner@example.com\r\nSubject: Inner\r\n\r\nInner body";
    assert_eq!(section(MIXED, &sec(&[3], None)).unwrap(), inner);
    assert_eq!(
        section(MIXED, &sec(&[3], Some(SectionText::Header))).unwrap(),
        b"From: inner@example.com\r\nSubject: Inner\r\n\r\n"
    );
    assert_eq!(
        section(MIXED, &sec(&[3], Some(SectionText::Text))).unwrap(),
        b"Inner body"
    );
    assert_eq!(section(MIXED, &sec(&[3, 1], None)).unwrap(), b"Inner body");
    assert_eq!(section(MIXED, &sec(&[3, 2], None)), None);
    assert_eq!(
        section(
            MIXED,
            &sec(
                &[3],
                Some(SectionText::HeaderFields(vec!["Subject".into()]))
            )
        )
        .unwrap(),
        b"Subject: Inner\r\n\r\n"
    );
    assert_eq!(
        section(MIXED, &sec(&[3], Some(SectionText::Mime))).unwrap(),
        b"Content-Type: message/rfc822\r\n\r\n"
    );
    assert_eq!(section(MIXED, &sec(&[1], None)).unwrap(), b"See attached.");
    assert_eq!(section(MIXED, &sec(&[1], Some(SectionText::Header))), None);
    assert_eq!(
        section(MIXED, &sec(&[2], None)).unwrap(),
        b"AAECAwQFBgcICQ=="
    );
    assert_eq!(section(MIXED, &sec(&[4], None)), None);
    assert_eq!(
        section(
            MIXED,
            &sec(
                &[],
                Some(SectionText::HeaderFields(vec![
                    "references".into(),
                    "cc".into()
                ]))
            )
        )
        .unwrap(),
        b"Cc: \"=?ISO-8859-1?B?RnJhbudvaXM=?=\" <francois@example.fr>\r\n\
References: <m1@example.de>\r\n <m2@example.de>\r\n\r\n"
    );
    assert_eq!(
        binary(MIXED, &[2]).unwrap().unwrap(),
        (0u8..10).collect::<Vec<u8>>()
    );
    assert_eq!(binary(MIXED, &[3]).unwrap().unwrap(), inner);
    assert_eq!(binary(MIXED, &[3, 1]).unwrap().unwrap(), b"Inner body");

    assert_eq!(
        header_values(MIXED, "SUBJECT"),
        vec!["Gr\u{fc}\u{df}e again".to_string()]
    );
    assert!(header_values(MIXED, "from")[0].contains("J\u{f6}rg M\u{fc}ller <joerg@example.de>"));
    assert!(header_values(MIXED, "cc")[0].contains("Fran\u{e7}ois"));
    assert!(header_values(MIXED, "to")[0].contains("Andr\u{e9}"));
    assert_eq!(
        header_values(MIXED, "references"),
        vec!["<m1@example.de> <m2@example.de>".to_string()]
    );
    assert!(header_values(MIXED, "bcc").is_empty());
    let body = body_text(MIXED);
    assert!(
        body.contains("See attached.") && body.contains("Inner body"),
        "{body}"
    );
    assert!(!body.contains("AAECAw"));
}

#[test]
fn fixtures_are_well_formed() {
    for raw in [SIMPLE, ALTERNATIVE, MIXED, GROUPS] {
        let sum = summarize(raw);
        assert!(well_formed(&sum.envelope), "{}", s(&sum.envelope));
        assert!(
            well_formed(&sum.body_structure),
            "{}",
            s(&sum.body_structure)
        );
        assert!(well_formed(&sum.body), "{}", s(&sum.body));
    }
}

#[test]
fn fuzz_no_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rng = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let fixtures: [&[u8]; 4] = [SIMPLE, ALTERNATIVE, MIXED, GROUPS];
    let snippets: [&[u8]; 12] = [
        b"\r\n",
        b"\n",
        b"--",
        b"--outer",
        b"--XYZ--",
        b"\r\n\r\n",
        b"=?utf-8?b?",
        b"\"",
        b"(",
        b"<",
        b":;",
        b"Content-Type: message/rfc822\r\n",
    ];
    for iter in 0..3000 {
        let mut m = fixtures[iter % fixtures.len()].to_vec();
        let edits = 1 + rng() % 8;
        for _ in 0..edits {
            let len = m.len().max(1);
            let pos = (rng() as usize) % len;
            match rng() % 5 {
                0 if !m.is_empty() => {
                    let at = pos.min(m.len() - 1);
                    m[at] = rng() as u8;
                }
                1 => m.truncate(pos),
                2 => {
                    let sn = snippets[(rng() as usize) % snippets.len()];
                    let at = pos.min(m.len());
                    m.splice(at..at, sn.iter().copied());
                }
                3 if !m.is_empty() => {
                    let end = (pos + (rng() as usize) % 16).min(m.len());
                    m.drain(pos.min(end)..end);
                }
                _ => {
                    let at = pos.min(m.len());
                    let junk: Vec<u8> = (0..(rng() % 8)).map(|_| rng() as u8).collect();
                    m.splice(at..at, junk);
                }
            }
        }
        let sum = summarize(&m);
        assert!(well_formed(&sum.envelope), "envelope {:?}", s(&m));
        assert!(
            well_formed(&sum.body_structure),
            "bodystructure {:?}",
            s(&m)
        );
        assert!(well_formed(&sum.body), "body {:?}", s(&m));
        let mut whole = section(&m, &sec(&[], Some(SectionText::Header))).unwrap();
        whole.extend(section(&m, &sec(&[], Some(SectionText::Text))).unwrap());
        assert_eq!(whole, m);
        for path in [&[1u32][..], &[2], &[3], &[3, 1], &[1, 1], &[2, 1, 1]] {
            for text in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Text),
                Some(SectionText::Mime),
                Some(SectionText::HeaderFields(vec!["subject".into()])),
                Some(SectionText::HeaderFieldsNot(vec!["from".into()])),
            ] {
                let _ = section(&m, &sec(path, text));
            }
            let _ = binary(&m, path);
        }
        // The entity BODYPARTSTRUCTURE describes under BINARY: only contents change.
        let decoded = tern_message::with_leaves_decoded(&m);
        assert!(well_formed(&summarize(&decoded).body), "{:?}", s(&m));
        let _ = header_values(&m, "from");
        let _ = body_text(&m);
    }
}

#[test]
fn attached_files_are_not_body_text() {
    let m = b"Subject: report\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSee the figures attached.\r\n\
--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=f.csv\r\n\r\n\
quokka,42\r\n--b--\r\n";
    let text = body_text(m);
    assert!(text.contains("See the figures attached."), "{text}");
    assert!(!text.contains("quokka"), "{text}");
}

#[test]
fn groups() {
    let sum = summarize(GROUPS);
    assert_eq!(
        s(&sum.envelope),
        "(NIL \"groups\" ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) \
((\"Alice\" NIL \"alice\" \"example.com\")) \
((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")\
(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)) \
((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
    );
    // A group is read as an address named by the group (as Dovecot does).
    assert_eq!(sum.keys.to_mailbox.as_deref(), Some("A Group"));
    assert_eq!(sum.keys.display_to.as_deref(), Some("A Group"));
    assert_eq!(
        sum.keys.cc_mailbox.as_deref(),
        Some("undisclosed-recipients")
    );
}

#[test]
fn address_forms() {
    let mut out = Vec::new();
    let list = parse_addresses(
        b"\"Doe, John\" <john@x.test>, mary@y.test (Mary Smith), <@r1.test,@r2.test:route@z.test>, \
          \"quoted local\"@q.test, nodomain, <>",
    );
    write_addresses(&mut out, &list);
    assert_eq!(
        s(&out),
        "((\"Doe, John\" NIL \"john\" \"x.test\")(\"Mary Smith\" NIL \"mary\" \"y.test\")\
(NIL \"@r1.test,@r2.test\" \"route\" \"z.test\")(NIL NIL \"quoted local\" \"q.test\")\
(NIL NIL \"nodomain\" \"\"))"
    );
    assert!(parse_addresses(b"").is_empty());
    assert!(parse_addresses(b" , ,").is_empty());
    // Unterminated group and angle.
    let list = parse_addresses(b"G: a@b.test, <c@d.test");
    out.clear();
    write_addresses(&mut out, &list);
    assert_eq!(s(&out), "((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b.test\")(NIL NIL \"c\" \"d.test\")(NIL NIL NIL NIL))");
    // Name with 8-bit bytes is sent as a literal.
    let list = parse_addresses("J\u{f6}rg <j@x.test>".as_bytes());
    out.clear();
    write_addresses(&mut out, &list);
    assert_eq!(out, b"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x.test\"))");
}

#[test]
fn malformed_boundaries() {
    // Declared boundary never appears: an empty multipart.
    let raw = b"Content-Type: multipart/mixed; boundary=nope\r\n\r\nhello\r\n";
    let sum = summarize(raw);
    assert_eq!(
        s(&sum.body_structure),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\" (\"BOUNDARY\" \"nope\") NIL NIL NIL)"
    );
    assert_eq!(section(raw, &sec(&[1], None)), None);
    assert_eq!(
        section(raw, &sec(&[], Some(SectionText::Text))).unwrap(),
        b"hello\r\n"
    );

    // No boundary parameter at all.
    let raw = b"Content-Type: multipart/mixed\r\n\r\nhello\r\n";
    assert_eq!(
        s(&summarize(raw).body),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\")"
    );

    // Missing close delimiter: the last part runs to the end.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n";
    assert_eq!(section(raw, &sec(&[1], None)).unwrap(), b"one");
    assert_eq!(section(raw, &sec(&[2], None)).unwrap(), b"two\r\n");
    assert_eq!(
        s(&summarize(raw).body),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 0)\
(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 5 1) \"MIXED\")"
    );

    // Boundary-like lines that are not delimiters; an empty part; a part
    // without a header; whitespace after the delimiter.
    let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b \r\n--bc\r\n\r\nx\r\n--b\r\n--b\r\nno header\r\n--b--";
    assert_eq!(section(raw, &sec(&[1], None)).unwrap(), b"x");
    assert_eq!(
        section(raw, &sec(&[1], Some(SectionText::Mime))).unwrap(),
        b"--bc\r\n\r\n"
    );
    assert_eq!(section(raw, &sec(&[2], None)).unwrap(), b"");
    assert_eq!(section(raw, &sec(&[3], None)).unwrap(), b"");
    assert_eq!(
        section(raw, &sec(&[3], Some(SectionText::Mime))).unwrap(),
        b"no header"
    );
    assert_eq!(section(raw, &sec(&[4], None)), None);

    // Nested multipart whose inner close delimiter is missing.
    let raw = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n\
--i\r\n\r\nin1\r\n--i\r\n\r\nin2\r\n--o\r\n\r\nlast\r\n--o--\r\n";
    assert_eq!(section(raw, &sec(&[1, 1], None)).unwrap(), b"in1");
    assert_eq!(section(raw, &sec(&[1, 2], None)).unwrap(), b"in2");
    assert_eq!(section(raw, &sec(&[2], None)).unwrap(), b"last");
    assert_eq!(section(raw, &sec(&[1, 3], None)), None);

    // Invalid Content-Type falls back to text/plain; unknown CTE is an error.
    let raw = b"Content-Type: garbage\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbody";
    assert_eq!(
        s(&summarize(raw).body),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"X-UUENCODE\" 4 0)"
    );
    assert_eq!(binary(raw, &[1]), Err(UnknownEncoding("x-uuencode".into())));
    assert_eq!(body_text(raw), "body");
}

#[test]
fn deep_nesting_is_bounded() {
    let mut raw = Vec::new();
    for i in 0..200 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"\r\nleaf\r\n");
    let sum = summarize(&raw);
    assert!(well_formed(&sum.body_structure));
    assert!(s(&sum.body).contains("\"APPLICATION\" \"OCTET-STREAM\""));
    let mut raw = Vec::new();
    for _ in 0..200 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    let sum = summarize(&raw);
    assert!(well_formed(&sum.body_structure) && well_formed(&sum.body));
    let path = vec![1u32; 40];
    let _ = section(&raw, &sec(&path, Some(SectionText::Header)));
    let _ = binary(&raw, &path);
    let _ = binary(&raw, &path[..20]);
    let _ = tern_message::with_leaves_decoded(&raw);
}

/// BODYPARTSTRUCTURE numbers parts as BODY[n] does: the body of a single-part message
/// is 1, an encapsulated message's parts are below its own number, and a leaf has no
/// parts (1.1 of a leaf is nothing).
#[test]
fn part_structure_numbers_parts_as_sections_do() {
    use super::part_structure;
    let single = b"Subject: a\r\n\r\nbody\r\n";
    assert!(s(&part_structure(single, &[1]).unwrap()).starts_with("(\"TEXT\" \"PLAIN\""));
    assert_eq!(part_structure(single, &[2]), None);
    assert_eq!(part_structure(single, &[1, 1]), None);
    let nested = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/html\r\n\r\n\
<p>x</p>\r\n--c--\r\n--b--\r\n";
    assert!(s(&part_structure(nested, &[2]).unwrap()).starts_with("(\"MESSAGE\" \"RFC822\""));
    assert!(s(&part_structure(nested, &[2, 1]).unwrap()).starts_with("(\"TEXT\" \"HTML\""));
    assert_eq!(part_structure(nested, &[1, 1]), None);
    assert_eq!(part_structure(nested, &[2, 1, 1]), None);
    assert_eq!(part_structure(nested, &[3]), None);
    assert_eq!(part_structure(nested, &[0]), None);
}
