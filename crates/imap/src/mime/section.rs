//! Body sections: the exact bytes of `BODY[section]` (RFC 3501 6.4.5), HEADER,
//! HEADER.FIELDS(.NOT), TEXT and MIME of any part, cut from the raw message.

use crate::types::{Section, SectionText};
use tern_message::header::{parse_header, Field};
use tern_message::tree::{parse_tree, resolve, Kind, Part};

fn header_fields(raw: &[u8], fields: &[Field], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let matches = f.valid
            && names
                .iter()
                .any(|n| f.name(raw).eq_ignore_ascii_case(n.as_bytes()));
        if matches != not && (f.valid || not) {
            out.extend_from_slice(&raw[f.start..f.end]);
            if raw[f.end - 1] != b'\n' {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The exact bytes of `BODY[section]` (RFC 3501 6.4.5), or `None` when the part does
/// not exist or the section-text does not apply to it (HEADER/TEXT on a part that is
/// not message/rfc822, MIME without part numbers).
///
/// HEADER includes the blank line; HEADER.FIELDS(.NOT) keeps the chosen fields as
/// stored (with continuation lines) and ends with a blank line; for a non-multipart
/// message, part 1 is its body.
pub fn section(raw: &[u8], section: &Section) -> Option<Vec<u8>> {
    if section.part.is_empty() {
        return top_level(raw, section.text.as_ref());
    }
    let root = parse_tree(raw);
    let (target, is_msg) = resolve(&root, &section.part)?;
    let message = || -> Option<&Part> {
        if is_msg {
            Some(target)
        } else if let Kind::Message(inner) = &target.kind {
            Some(&**inner)
        } else {
            None
        }
    };
    match &section.text {
        None if section.part.is_empty() => Some(raw.to_vec()),
        None => Some(raw[target.body_start..target.end].to_vec()),
        Some(SectionText::Mime) if section.part.is_empty() => None,
        Some(SectionText::Mime) => Some(raw[target.start..target.body_start].to_vec()),
        Some(SectionText::Header) => {
            let m = message()?;
            Some(raw[m.start..m.body_start].to_vec())
        }
        Some(SectionText::Text) => {
            let m = message()?;
            Some(raw[m.body_start..m.end].to_vec())
        }
        Some(SectionText::HeaderFields(names)) => {
            Some(header_fields(raw, &message()?.fields, names, false))
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            Some(header_fields(raw, &message()?.fields, names, true))
        }
    }
}

/// [`section`] of the message itself (no part number): its header is all that is
/// parsed. A client opening a folder asks `BODY.PEEK[HEADER.FIELDS (...)]` of every
/// message, and parsing each one's MIME tree for it cost five times Dovecot's answer.
fn top_level(raw: &[u8], text: Option<&SectionText>) -> Option<Vec<u8>> {
    let Some(text) = text else {
        return Some(raw.to_vec());
    };
    let (fields, body_start) = parse_header(raw, 0, raw.len());
    match text {
        SectionText::Mime => None,
        SectionText::Header => Some(raw[..body_start].to_vec()),
        SectionText::Text => Some(raw[body_start..].to_vec()),
        SectionText::HeaderFields(names) => Some(header_fields(raw, &fields, names, false)),
        SectionText::HeaderFieldsNot(names) => Some(header_fields(raw, &fields, names, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::summarize;
    use crate::mime::test_util::*;
    use tern_message::decoded_part as binary;
    use tern_message::fixtures::*;

    /// The message's own HEADER, TEXT and HEADER.FIELDS(.NOT), read from its header
    /// alone, are the bytes the MIME tree's root gives: with CRLF and bare LF, a
    /// folded field, a header without a body and one without its blank line.
    #[test]
    fn top_level_sections_match_the_tree() {
        let folded = b"Subject: a\r\n  b\r\nTo: x@y\r\nX-Bad line\r\n\r\nbody\r\n".to_vec();
        let no_body = b"Subject: only\r\nTo: x@y\r\n".to_vec();
        let no_blank = b"Subject: s\r\nTo: x@y\r\nbody?".to_vec();
        let mut raws: Vec<Vec<u8>> = vec![
            SIMPLE.to_vec(),
            ALTERNATIVE.to_vec(),
            MIXED.to_vec(),
            GROUPS.to_vec(),
            folded,
            no_body,
            no_blank,
            Vec::new(),
        ];
        let lf: Vec<Vec<u8>> = raws
            .iter()
            .map(|r| r.iter().copied().filter(|&c| c != b'\r').collect())
            .collect();
        raws.extend(lf);
        let names = vec!["to".to_owned(), "SUBJECT".to_owned(), "x-bad".to_owned()];
        for raw in &raws {
            let root = parse_tree(raw);
            let texts = [
                (
                    SectionText::Header,
                    raw[root.start..root.body_start].to_vec(),
                ),
                (SectionText::Text, raw[root.body_start..root.end].to_vec()),
                (
                    SectionText::HeaderFields(names.clone()),
                    header_fields(raw, &root.fields, &names, false),
                ),
                (
                    SectionText::HeaderFieldsNot(names.clone()),
                    header_fields(raw, &root.fields, &names, true),
                ),
            ];
            for (text, want) in texts {
                let got = section(raw, &sec(&[], Some(text.clone())));
                assert_eq!(
                    got,
                    Some(want),
                    "{text:?} of {:?}",
                    String::from_utf8_lossy(raw)
                );
            }
            assert_eq!(section(raw, &sec(&[], Some(SectionText::Mime))), None);
            assert_eq!(section(raw, &sec(&[], None)).as_deref(), Some(&raw[..]));
        }
    }

    #[test]
    fn bare_lf() {
        let raw: Vec<u8> = ALTERNATIVE
            .iter()
            .copied()
            .filter(|&c| c != b'\r')
            .collect();
        let sum = summarize(&raw);
        assert_eq!(
            s(&sum.body),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 0)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 0) \"ALTERNATIVE\")"
        );
        assert_eq!(section(&raw, &sec(&[1], None)).unwrap(), b"Caf=C3=A9 time");
        assert_eq!(
            section(&raw, &sec(&[2], Some(SectionText::Mime))).unwrap(),
            b"Content-Type: text/html; charset=utf-8\n\n"
        );
        let header = section(&raw, &sec(&[], Some(SectionText::Header))).unwrap();
        assert!(header.ends_with(b"boundary=\"XYZ\"\n\n"));
        assert_eq!(
            section(
                &raw,
                &sec(&[], Some(SectionText::HeaderFields(vec!["to".into()])))
            )
            .unwrap(),
            b"To: b@example.com\n\r\n"
        );
        assert_eq!(
            binary(&raw, &[1]).unwrap().unwrap(),
            "Caf\u{e9} time".as_bytes()
        );

        let raw: Vec<u8> = SIMPLE.iter().copied().filter(|&c| c != b'\r').collect();
        let sum = summarize(&raw);
        assert_eq!(
            s(&sum.body_structure),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 25 2 NIL NIL NIL NIL)"
        );
        assert_eq!(
            section(&raw, &sec(&[], Some(SectionText::Text))).unwrap(),
            b"Hello Jane,\nHow are you?\n"
        );
    }
}
