//! ENVELOPE (RFC 3501 7.4.2): the raw, unfolded header values and address lists of a
//! message, with From standing in for an absent or empty Sender and Reply-To.

use tern_message::{Address, Envelope};

use super::wire::{write_nstring, write_string};

pub(super) fn write_envelope(out: &mut Vec<u8>, e: &Envelope) {
    out.push(b'(');
    write_nstring(out, e.date.as_deref());
    out.push(b' ');
    write_nstring(out, e.subject.as_deref());
    out.push(b' ');
    write_addresses(out, &e.from);
    // RFC 3501: absent or empty Sender / Reply-To take the From value.
    for list in [&e.sender, &e.reply_to] {
        out.push(b' ');
        write_addresses(out, if list.is_empty() { &e.from } else { list });
    }
    for list in [&e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        write_addresses(out, list);
    }
    out.push(b' ');
    write_nstring(out, e.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, e.message_id.as_deref());
    out.push(b')');
}

pub(super) fn write_addresses(out: &mut Vec<u8>, items: &[Address]) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for it in items {
        match it {
            Address::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                out.push(b'(');
                write_nstring(out, name.as_deref());
                out.push(b' ');
                write_nstring(out, adl.as_deref());
                out.push(b' ');
                write_string(out, mailbox);
                out.push(b' ');
                write_string(out, host);
                out.push(b')');
            }
            Address::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Address::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
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
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 0 NIL NIL NIL NIL)"
        );
        assert_eq!(sum.keys.date, None);
        assert_eq!(sum.keys.from_mailbox, None);
        assert_eq!(sum.keys.display_from, None);

        let raw = b"From: a@b.test\r\nSender: \r\nReply-To: r@b.test\r\nDate: garbage\r\nSubject:\r\n\r\n";
        let sum = summarize(raw);
        assert_eq!(
            s(&sum.envelope),
            "(\"garbage\" \"\" ((NIL NIL \"a\" \"b.test\")) ((NIL NIL \"a\" \"b.test\")) \
((NIL NIL \"r\" \"b.test\")) NIL NIL NIL NIL NIL)"
        );
        assert_eq!(sum.keys.date, None);
        assert_eq!(sum.keys.base_subject, "");

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
        assert_eq!(sum.keys.display_from.as_deref(), Some("Ren\u{e9}"));
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
