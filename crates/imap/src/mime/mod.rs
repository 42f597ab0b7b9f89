//! MIME for IMAP: ENVELOPE, BODYSTRUCTURE / BODY, body sections, BINARY, the
//! decoded text SEARCH matches against, and a cache of per-message summaries.
//!
//! The MIME tree is split here, on byte offsets of the raw message, so that every
//! `BODY[section]` is byte-exact and malformed input (missing or wrong boundaries,
//! truncation, 8-bit garbage, absurd nesting) never panics: recursion stops at
//! [`MAX_DEPTH`]. `mail-parser` is used for what it does well: RFC 2047 decoding of
//! header text, RFC 5322 dates and charset conversion.
//!
//! Output meant for the wire (`envelope`, `body_structure`, `body`) follows the
//! RFC 3501 / RFC 9051 grammar: strings are quoted when that is possible and sent as
//! `{n}\r\n` literals otherwise; absent values are `NIL`. Envelope strings are the
//! raw header values (still RFC 2047 encoded), unfolded.
//!
//! # Where things are
//!
//! - `wire.rs`: the string encoders ([`write_string`], [`write_nstring`],
//!   [`write_astring`]).
//! - `header.rs`: header fields and RFC 2047 decoding; `params.rs`: structured values
//!   (Content-Type, Content-Disposition); `address.rs`: address lists and message ids.
//! - `tree.rs`: the MIME tree and section part numbers.
//! - `envelope.rs`, `bodystructure.rs`: ENVELOPE and BODYSTRUCTURE / BODY.
//! - `section.rs`: [`section()`]; `binary.rs`: [`binary()`] and transfer decoding;
//!   `text.rs`: [`header_values`] and [`body_text`] for SEARCH; `subject.rs`:
//!   [`base_subject`] for SORT and THREAD.
//! - `cache.rs`: [`SummaryCache`].
//! - This file: [`MessageSummary`] and [`summarize`], which puts the pieces together.

mod address;
mod binary;
mod bodystructure;
mod cache;
mod envelope;
mod header;
mod params;
mod section;
mod subject;
#[cfg(test)]
mod test_util;
mod text;
mod tree;
mod wire;

pub use binary::{binary, UnknownEncoding};
pub use cache::SummaryCache;
pub use header::decode_header_value;
pub use section::section;
pub use subject::base_subject;
pub use text::{body_text, header_text, header_values};
pub use wire::{write_astring, write_nstring, write_string};

use address::{display_of, first_mailbox, parse_addresses, parse_ids, AddrItem};
use bodystructure::write_body;
use envelope::write_envelope;
use header::{first_field, unfold};
use tree::parse_tree;

/// How deep multiparts and encapsulated messages are followed; deeper parts are
/// reported as `APPLICATION/OCTET-STREAM` leaves.
pub const MAX_DEPTH: usize = 32;

/// What FETCH, SEARCH, SORT and THREAD need of one message, computed once from its
/// raw bytes by [`summarize`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// Size of the raw message in octets.
    pub size: u64,
    /// ENVELOPE, as wire bytes (`(date subject from ... message-id)`).
    pub envelope: Vec<u8>,
    /// BODYSTRUCTURE (with extension data), as wire bytes.
    pub body_structure: Vec<u8>,
    /// BODY (no extension data), as wire bytes.
    pub body: Vec<u8>,
    /// The Date header as seconds since the Unix epoch; `None` when missing or
    /// unparsable (SORT then uses the INTERNALDATE).
    pub date: Option<i64>,
    /// The Subject, RFC 2047 decoded; `None` when absent.
    pub subject: Option<String>,
    /// RFC 5256 base subject (compare with i;ascii-casemap); empty without Subject.
    pub base_subject: String,
    /// addr-mailbox (local part) of the first From address (SORT FROM).
    pub from_mailbox: Option<String>,
    /// addr-mailbox of the first To address (SORT TO).
    pub to_mailbox: Option<String>,
    /// addr-mailbox of the first Cc address (SORT CC).
    pub cc_mailbox: Option<String>,
    /// RFC 5957 display value of the first From address (decoded display name,
    /// else `mailbox@host`).
    pub display_from: Option<String>,
    /// RFC 5957 display value of the first To address.
    pub display_to: Option<String>,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// First message id of In-Reply-To, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Message ids of References, in order, without angle brackets.
    pub references: Vec<String>,
}

impl MessageSummary {
    /// Approximate heap footprint in bytes (what [`SummaryCache`] budgets).
    pub fn weight(&self) -> usize {
        let s = |o: &Option<String>| o.as_ref().map_or(0, |s| s.capacity());
        std::mem::size_of::<Self>()
            + self.envelope.capacity()
            + self.body_structure.capacity()
            + self.body.capacity()
            + s(&self.subject)
            + self.base_subject.capacity()
            + s(&self.from_mailbox)
            + s(&self.to_mailbox)
            + s(&self.cc_mailbox)
            + s(&self.display_from)
            + s(&self.display_to)
            + s(&self.message_id)
            + s(&self.in_reply_to)
            + self
                .references
                .iter()
                .map(|r| r.capacity() + 24)
                .sum::<usize>()
    }
}

/// Computes a message's [`MessageSummary`] from its raw bytes. Never panics.
pub fn summarize(raw: &[u8]) -> MessageSummary {
    let root = parse_tree(raw);
    let mut envelope = Vec::with_capacity(256);
    write_envelope(&mut envelope, raw, &root.fields);
    let mut body_structure = Vec::with_capacity(256);
    write_body(&mut body_structure, raw, &root, true);
    let mut body = Vec::with_capacity(256);
    write_body(&mut body, raw, &root, false);

    let fields = &root.fields;
    let get = |name: &str| first_field(raw, fields, name);
    let addrs = |name: &str| get(name).map(parse_addresses).unwrap_or_default();
    let mailbox_of = |items: &[AddrItem]| {
        first_mailbox(items).map(|(_, m, _)| String::from_utf8_lossy(m).into_owned())
    };
    let (from, to, cc) = (addrs("from"), addrs("to"), addrs("cc"));
    let date = get("date").and_then(|v| {
        let v = String::from_utf8_lossy(&unfold(v)).into_owned();
        mail_parser::DateTime::parse_rfc822(&v)
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp())
    });
    let subject = get("subject").map(decode_header_value);
    let base = subject.as_deref().map(base_subject).unwrap_or_default();
    let mut summary = MessageSummary {
        size: raw.len() as u64,
        envelope,
        body_structure,
        body,
        date,
        subject,
        base_subject: base,
        from_mailbox: mailbox_of(&from),
        to_mailbox: mailbox_of(&to),
        cc_mailbox: mailbox_of(&cc),
        display_from: display_of(&from),
        display_to: display_of(&to),
        message_id: get("message-id").and_then(|v| parse_ids(v).into_iter().next()),
        in_reply_to: get("in-reply-to").and_then(|v| parse_ids(v).into_iter().next()),
        references: get("references").map(parse_ids).unwrap_or_default(),
    };
    summary.envelope.shrink_to_fit();
    summary.body_structure.shrink_to_fit();
    summary.body.shrink_to_fit();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::test_util::*;
    use crate::types::SectionText;

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
        assert_eq!(sum.date, Some(760686745));
        assert_eq!(sum.size, SIMPLE.len() as u64);
        assert_eq!(sum.subject.as_deref(), Some("Hello world"));
        assert_eq!(sum.base_subject, "Hello world");
        assert_eq!(sum.from_mailbox.as_deref(), Some("john"));
        assert_eq!(sum.to_mailbox.as_deref(), Some("jane"));
        assert_eq!(sum.cc_mailbox, None);
        assert_eq!(sum.display_from.as_deref(), Some("John Doe"));
        assert_eq!(sum.display_to.as_deref(), Some("Jane Roe"));
        assert_eq!(
            sum.message_id.as_deref(),
            Some("B27397-0100000@example.com")
        );
        assert_eq!(sum.in_reply_to, None);
        assert!(sum.references.is_empty());

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
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 1 NIL NIL NIL NIL)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 1 NIL NIL NIL NIL) \
\"ALTERNATIVE\" (\"BOUNDARY\" \"XYZ\") NIL NIL NIL)"
        );
        assert_eq!(
            s(&sum.body),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 1)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 1) \"ALTERNATIVE\")"
        );
        assert_eq!(
            s(&sum.envelope),
            "(NIL \"Re: [list] Fwd: Meeting (fwd)\" ((NIL NIL \"a\" \"example.com\")) \
((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) \
((NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL)"
        );
        assert_eq!(sum.base_subject, "Meeting");
        assert_eq!(sum.date, None);
        assert_eq!(sum.display_from.as_deref(), Some("a@example.com"));

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
            text.starts_with(b"preamble\r\n--XYZ\r\n")
                && text.ends_with(b"--XYZ--\r\nepilogue\r\n")
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
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 13 1 NIL NIL NIL NIL)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"data.bin\") \"<part2@example.de>\" \"Some data\" \"BASE64\" 16 \
NIL (\"ATTACHMENT\" (\"FILENAME\" \"data.bin\")) NIL NIL)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 \
(NIL \"Inner\" {inner_from} {inner_from} {inner_from} NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) \
\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"
        );
        assert_eq!(s(&sum.body_structure), expected_bs);
        let expected_body = format!(
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 13 1)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"data.bin\") \"<part2@example.de>\" \"Some data\" \"BASE64\" 16)\
(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 53 \
(NIL \"Inner\" {inner_from} {inner_from} {inner_from} NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1) 4) \"MIXED\")"
        );
        assert_eq!(s(&sum.body), expected_body);

        assert_eq!(sum.date, Some(1057049557));
        assert_eq!(sum.subject.as_deref(), Some("Gr\u{fc}\u{df}e again"));
        assert_eq!(sum.base_subject, "Gr\u{fc}\u{df}e again");
        assert_eq!(sum.from_mailbox.as_deref(), Some("joerg"));
        assert_eq!(sum.cc_mailbox.as_deref(), Some("francois"));
        assert_eq!(sum.display_from.as_deref(), Some("J\u{f6}rg M\u{fc}ller"));
        assert_eq!(sum.display_to.as_deref(), Some("Andr\u{e9}"));
        assert_eq!(sum.message_id.as_deref(), Some("m3@example.de"));
        assert_eq!(sum.in_reply_to.as_deref(), Some("m2@example.de"));
        assert_eq!(
            sum.references,
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
        assert!(
            header_values(MIXED, "from")[0].contains("J\u{f6}rg M\u{fc}ller <joerg@example.de>")
        );
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
}
