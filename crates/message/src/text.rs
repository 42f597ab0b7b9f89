//! The decoded text searches match against: header values RFC 2047 decoded, and the
//! text of every text/* part transfer-decoded and converted to UTF-8.

use mail_parser::decoders::charsets::map::charset_decoder;

use crate::header::{decode_header_value, first_field, parse_header};
use crate::params::{param, parse_structured};
use crate::transfer::transfer_decode;
use crate::tree::{parse_tree, Kind, Part};

/// Whether some top-level header field named `field` passes `test` with its decoded
/// value ([`header_values`]) or, with `addresses`, with one of the mailboxes it names,
/// written `name <mailbox@host>` (the name RFC 2047 decoded, left out when absent): so
/// SEARCH FROM/TO/CC/BCC find an address written with comments or routes
/// (`<user (c)@ (c) host>`) by `user@host` (RFC 3501 6.4.4 speaks of the envelope's
/// address fields). The header is parsed once, and values are decoded only until one
/// passes: a one-off header test, and the definition [`search_field_texts`] (what a
/// server keeps for SEARCH's header keys) is checked against.
pub fn any_field_value(
    raw: &[u8],
    field: &str,
    addresses: bool,
    mut test: impl FnMut(&str) -> bool,
) -> bool {
    let (fields, _) = parse_header(raw, 0, raw.len());
    let named = || fields.iter().filter(|f| f.is(raw, field.as_bytes()));
    if named().any(|f| test(&decode_header_value(f.raw_value(raw)))) {
        return true;
    }
    addresses && named().any(|f| mailbox_texts(f.raw_value(raw)).iter().any(|v| test(v)))
}

/// The header fields SEARCH has keys of its own for (RFC 3501 6.4.4: FROM, TO, CC, BCC,
/// SUBJECT), in the order [`search_field_texts`] returns them, each with whether its
/// mailboxes are tested too.
pub const SEARCH_FIELDS: [(&str, bool); 5] = [
    ("From", true),
    ("To", true),
    ("Cc", true),
    ("Bcc", true),
    ("Subject", false),
];

/// For each of [`SEARCH_FIELDS`], every text [`any_field_value`] would test for it,
/// from one parse of the header: `any_field_value(raw, field, addresses, test)` is
/// `texts[i].iter().any(test)` for any `test` without side effects. A server that
/// searches the same messages again keeps these instead of the header.
pub fn search_field_texts(raw: &[u8]) -> [Vec<String>; 5] {
    let (fields, _) = parse_header(raw, 0, raw.len());
    SEARCH_FIELDS.map(|(name, addresses)| {
        let mut texts = Vec::new();
        for f in fields.iter().filter(|f| f.is(raw, name.as_bytes())) {
            texts.push(decode_header_value(f.raw_value(raw)));
            if addresses {
                texts.extend(mailbox_texts(f.raw_value(raw)));
            }
        }
        texts
    })
}

/// The mailboxes of an address field's raw value, each as `name <mailbox@host>`.
fn mailbox_texts(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for a in crate::address::parse_addresses(value) {
        if let crate::Address::Mailbox {
            name,
            mailbox,
            host,
            ..
        } = a
        {
            let mut v = String::new();
            if let Some(n) = name {
                v.push_str(&decode_header_value(&n));
                v.push(' ');
            }
            v.push('<');
            v.push_str(&String::from_utf8_lossy(&mailbox));
            if !host.is_empty() {
                v.push('@');
                v.push_str(&String::from_utf8_lossy(&host));
            }
            v.push('>');
            out.push(v);
        }
    }
    out
}

/// The values of every top-level header field named `field` (case-insensitive),
/// unfolded and RFC 2047 decoded to UTF-8, in order.
pub fn header_values(raw: &[u8], field: &str) -> Vec<String> {
    let (fields, _) = parse_header(raw, 0, raw.len());
    fields
        .iter()
        .filter(|f| f.is(raw, field.as_bytes()))
        .map(|f| decode_header_value(f.raw_value(raw)))
        .collect()
}

fn charset_decode(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let cs = charset.map(|c| c.to_ascii_lowercase()).unwrap_or_default();
    let utf8_first = matches!(
        cs.as_slice(),
        b"" | b"us-ascii" | b"ascii" | b"utf-8" | b"utf8"
    );
    if utf8_first {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return s.to_owned();
        }
    }
    if !cs.is_empty() && !matches!(cs.as_slice(), b"utf-8" | b"utf8") {
        if let Some(dec) = charset_decoder(&cs) {
            return dec(bytes);
        }
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// True for a part whose Content-Disposition is `attachment` (RFC 2183).
fn is_attachment(raw: &[u8], part: &Part) -> bool {
    first_field(raw, &part.fields, "content-disposition")
        .map(parse_structured)
        .is_some_and(|(ty, _)| ty.eq_ignore_ascii_case(b"attachment"))
}

fn collect_text(raw: &[u8], part: &Part, out: &mut String) {
    match &part.kind {
        // Alternatives carry the same text twice (plain and HTML): search the plain
        // one when there is one, so HTML markup neither matches nor costs indexing.
        Kind::Multipart(children) if part.ct.sub.eq_ignore_ascii_case(b"alternative") => {
            let plain = children.iter().find(|c| {
                matches!(c.kind, Kind::Leaf)
                    && c.ct.ty == b"text"
                    && c.ct.sub.eq_ignore_ascii_case(b"plain")
            });
            match plain {
                Some(p) => collect_text(raw, p, out),
                None => children.iter().for_each(|c| collect_text(raw, c, out)),
            }
        }
        Kind::Multipart(children) => children.iter().for_each(|c| collect_text(raw, c, out)),
        Kind::Message(inner) => collect_text(raw, inner, out),
        // An attached file is not the message's text, even a text one: it is
        // neither indexed nor matched by SEARCH BODY / TEXT (the index stays a
        // fraction of the mail, and a search means what the people wrote).
        Kind::Leaf if is_attachment(raw, part) => {}
        Kind::Leaf if part.ct.ty == b"text" => {
            let bytes = match transfer_decode(raw, part) {
                Ok(b) => b,
                Err(_) => raw[part.body_start..part.end].to_vec(),
            };
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&charset_decode(&bytes, param(&part.ct.params, "charset")));
        }
        Kind::Leaf => {}
    }
}

/// The decoded text of every text/* part that is not an attachment (including those
/// of attached messages), transfer-decoded and converted to UTF-8, joined by
/// newlines; of a multipart/alternative only the text/plain part when it has one.
/// HTML without a plain alternative is included as is. For SEARCH BODY / TEXT
/// substring matching.
pub fn body_text(raw: &[u8]) -> String {
    let root = parse_tree(raw);
    let mut out = String::new();
    collect_text(raw, &root, &mut out);
    out
}

/// Header fields written by machines for machines: long, opaque, and never what a
/// person searches for, so SEARCH TEXT skips them.
const MACHINE_FIELDS: &[&[u8]] = &[
    b"dkim-signature",
    b"arc-seal",
    b"arc-message-signature",
    b"arc-authentication-results",
    b"authentication-results",
    b"received",
    b"x-google-dkim-signature",
    b"x-gm-message-state",
];

/// The top-level header as SEARCH TEXT sees it: one `Name: value` line per field,
/// values unfolded and RFC 2047 decoded, machine-only fields left out.
pub fn header_text(raw: &[u8]) -> String {
    let (fields, _) = parse_header(raw, 0, raw.len());
    let mut out = String::new();
    for f in &fields {
        if !f.valid || MACHINE_FIELDS.iter().any(|m| f.is(raw, m)) {
            continue;
        }
        out.push_str(&String::from_utf8_lossy(f.name(raw)));
        out.push_str(": ");
        out.push_str(decode_header_value(f.raw_value(raw)).trim());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{any_field_value, search_field_texts, SEARCH_FIELDS};

    const HEAD: &[u8] =
        b"From: \"Alice \\\"A\\\" Liddell\" <alice (at home)@ (c) example.org>, bob@x\r\n\
        To: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n\
        Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from alice@example.org\r\n\
        Subject: second\r\n\r\nFrom: not@a.header\r\n";

    fn finds(field: &str, addresses: bool, needle: &str) -> bool {
        any_field_value(HEAD, field, addresses, |v| v.contains(needle))
    }

    /// A value is found in the field's decoded text or, for addresses, in a mailbox
    /// with its comments and quoting gone; never in another field or the body.
    #[test]
    fn values_and_mailboxes_of_the_named_field() {
        assert!(finds("from", true, "alice@example.org"), "comments gone");
        assert!(
            !finds("from", false, "alice@example.org"),
            "only with addresses"
        );
        assert!(
            finds("FROM", true, "Alice \"A\" Liddell <alice"),
            "the quoted name"
        );
        assert!(finds("from", false, "(at home)"), "the field's own text");
        assert!(finds("from", true, "<bob@x>"));
        assert!(finds("to", true, "Jörg <joerg@example.de>"), "decoded name");
        assert!(finds("subject", false, "Grüße"), "decoded");
        assert!(finds("subject", false, "second"), "every field of the name");
        assert!(
            !finds("from", true, "not@a.header"),
            "the body is no header"
        );
        assert!(!finds("cc", true, "alice"), "no such field");
        let mut asked = 0;
        assert!(any_field_value(HEAD, "subject", true, |v| {
            asked += 1;
            v.contains("Grüße")
        }));
        assert_eq!(asked, 1, "values are decoded until one passes");
    }

    /// The texts kept for SEARCH are exactly those `any_field_value` tests, for every
    /// field and every needle, on headers with comments, quoting, groups, routes,
    /// encoded words, folding and repeated fields.
    #[test]
    fn kept_texts_are_what_any_field_value_tests() {
        let heads: [&[u8]; 5] = [
            HEAD,
            b"From: undisclosed:;\r\nTo: group: a@b, (c) \"d e\" <@r1,@r2:f@g>;, h@i\r\n\
              Cc: =?iso-8859-1?q?Fran=E7ois?= <fr@x>, john smith@y\r\n\
              Bcc: <x@[1.2.3.4]>\r\nSubject: [tag] Re: hi\r\n\tthere\r\n\r\n",
            b"from: a@b\r\nFROM: c@d\r\nsubject:\r\n\r\nTo: body@x\r\n",
            b"",
            b"To: =?utf-8?b?w4RwZmVs?= =?utf-8?b?IGJhdW0=?= <apfel@baum>\r\n\r\n",
        ];
        let needles = [
            "",
            "a",
            "b",
            "@",
            "<",
            ">",
            " ",
            "a@b",
            "c@d",
            "f@g",
            "johnsmith@y",
            "françois",
            "Apfel baum",
            "[tag]",
            "hi there",
            "(c)",
            "\"d e\"",
            "d e <f",
            "undisclosed",
            "group",
            "x@[1.2.3.4]",
            "body@x",
            "@r1",
        ];
        for raw in heads {
            let texts = search_field_texts(raw);
            for (i, (field, addresses)) in SEARCH_FIELDS.iter().enumerate() {
                let mut offered = Vec::new();
                any_field_value(raw, field, *addresses, |v| {
                    offered.push(v.to_owned());
                    false
                });
                let mut kept = texts[i].clone();
                offered.sort();
                kept.sort();
                assert_eq!(
                    offered,
                    kept,
                    "{field} of {:?}",
                    String::from_utf8_lossy(raw)
                );
                for needle in needles {
                    let lower = needle.to_lowercase();
                    let test = |v: &str| v.to_lowercase().contains(&lower);
                    assert_eq!(
                        any_field_value(raw, field, *addresses, test),
                        texts[i].iter().any(|v| test(v)),
                        "{field} {needle:?}"
                    );
                }
            }
        }
    }
}
