//! Body sections: the exact bytes of `BODY[section]` (RFC 3501 6.4.5), HEADER,
//! HEADER.FIELDS(.NOT), TEXT and MIME of any part, cut from the raw message.

use crate::types::{Section, SectionText};
use tern_message::tree::{parse_tree, resolve, Kind, Part};

fn header_fields(raw: &[u8], m: &Part, names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &m.fields {
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
            Some(header_fields(raw, message()?, names, false))
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            Some(header_fields(raw, message()?, names, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::summarize;
    use crate::mime::test_util::*;
    use tern_message::decoded_part as binary;
    use tern_message::fixtures::*;

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
