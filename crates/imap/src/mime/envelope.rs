//! ENVELOPE (RFC 3501 7.4.2): the raw, unfolded header values and address lists of a
//! message, with From standing in for an absent or empty Sender and Reply-To.

use super::address::{parse_addresses, write_addresses};
use super::header::{first_field, unfold, Field};
use super::wire::write_nstring;

pub(super) fn write_envelope(out: &mut Vec<u8>, raw: &[u8], fields: &[Field]) {
    let text = |name: &str| first_field(raw, fields, name).map(unfold);
    let addrs = |name: &str| {
        first_field(raw, fields, name)
            .map(parse_addresses)
            .unwrap_or_default()
    };
    out.push(b'(');
    write_nstring(out, text("date").as_deref());
    out.push(b' ');
    write_nstring(out, text("subject").as_deref());
    let from = addrs("from");
    out.push(b' ');
    write_addresses(out, &from);
    for name in ["sender", "reply-to", "to", "cc", "bcc"] {
        out.push(b' ');
        let list = addrs(name);
        // RFC 3501: absent or empty Sender / Reply-To take the From value.
        if list.is_empty() && (name == "sender" || name == "reply-to") {
            write_addresses(out, &from);
        } else {
            write_addresses(out, &list);
        }
    }
    out.push(b' ');
    write_nstring(out, text("in-reply-to").as_deref());
    out.push(b' ');
    write_nstring(out, text("message-id").as_deref());
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use crate::mime::test_util::*;
    use crate::mime::{section, summarize};
    use crate::types::SectionText;

    #[test]
    fn missing_headers_and_sender_fallback() {
        let raw = b"Subject: no from\r\n\r\nx";
        let sum = summarize(raw);
        assert_eq!(
            s(&sum.envelope),
            "(NIL \"no from\" NIL NIL NIL NIL NIL NIL NIL NIL)"
        );
        assert_eq!(
            s(&sum.body_structure),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL)"
        );
        assert_eq!(sum.date, None);
        assert_eq!(sum.from_mailbox, None);
        assert_eq!(sum.display_from, None);

        let raw = b"From: a@b.test\r\nSender: \r\nReply-To: r@b.test\r\nDate: garbage\r\nSubject:\r\n\r\n";
        let sum = summarize(raw);
        assert_eq!(
            s(&sum.envelope),
            "(\"garbage\" \"\" ((NIL NIL \"a\" \"b.test\")) ((NIL NIL \"a\" \"b.test\")) \
((NIL NIL \"r\" \"b.test\")) NIL NIL NIL NIL NIL)"
        );
        assert_eq!(sum.date, None);
        assert_eq!(sum.base_subject, "");

        let sum = summarize(b"");
        assert_eq!(
            s(&sum.envelope),
            "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
        );
        assert_eq!(
            s(&sum.body_structure),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"
        );
        assert_eq!(
            section(b"", &sec(&[], Some(SectionText::Header))).unwrap(),
            b""
        );
    }

    #[test]
    fn folded_and_8bit_envelope_values() {
        let raw =
            b"Subject: a long\r\n\tfolded subject\r\nFrom: \"Ren\xc3\xa9\" <r@x.test>\r\n\r\nbody";
        let sum = summarize(raw);
        assert!(s(&sum.envelope).starts_with(
            "(NIL \"a long\tfolded subject\" (({5}\r\nRen\u{e9} NIL \"r\" \"x.test\"))"
        ));
        assert_eq!(sum.display_from.as_deref(), Some("Ren\u{e9}"));
        assert_eq!(
            section(
                raw,
                &sec(&[], Some(SectionText::HeaderFields(vec!["Subject".into()])))
            )
            .unwrap(),
            b"Subject: a long\r\n\tfolded subject\r\n\r\n"
        );
    }
}
