//! BODYSTRUCTURE and BODY (RFC 3501 7.4.2): one part's type, parameters, id,
//! description, encoding, size and lines, nested for multiparts and encapsulated
//! messages, with the extension data (disposition, language, location) for
//! BODYSTRUCTURE.

use tern_message::{BodyPart, Content};

use super::envelope::write_envelope;
use super::wire::{write_nstring, write_string};

fn write_upper(out: &mut Vec<u8>, s: &[u8]) {
    write_string(out, &s.to_ascii_uppercase());
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_upper(out, n);
        out.push(b' ');
        write_string(out, v);
    }
    out.push(b')');
}

/// `body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn write_ext_common(out: &mut Vec<u8>, part: &BodyPart) {
    match &part.disposition {
        Some(d) => {
            out.push(b'(');
            write_upper(out, &d.kind);
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string(out, one),
        langs => {
            out.push(b'(');
            for (i, l) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, l);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    write_nstring(out, part.location.as_deref());
}

/// BODYSTRUCTURE (`ext`) or BODY of `part`.
pub(super) fn write_body(out: &mut Vec<u8>, part: &BodyPart, ext: bool) {
    out.push(b'(');
    if let Content::Multipart(children) = &part.content {
        if children.is_empty() {
            out.extend_from_slice(
                b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)",
            );
        }
        for c in children {
            write_body(out, c, ext);
        }
        out.push(b' ');
        write_upper(out, &part.subtype);
        if ext {
            out.push(b' ');
            write_params(out, &part.params);
            out.push(b' ');
            write_ext_common(out, part);
        }
        out.push(b')');
        return;
    }
    write_upper(out, &part.media_type);
    out.push(b' ');
    write_upper(out, &part.subtype);
    out.push(b' ');
    write_params(out, &part.params);
    out.push(b' ');
    write_nstring(out, part.id.as_deref());
    out.push(b' ');
    write_nstring(out, part.description.as_deref());
    out.push(b' ');
    match &part.encoding {
        Some(cte) => write_upper(out, cte),
        None => out.extend_from_slice(b"\"7BIT\""),
    }
    out.push(b' ');
    out.extend_from_slice(part.size.to_string().as_bytes());
    if let Content::Message { envelope, body } = &part.content {
        out.push(b' ');
        write_envelope(out, envelope);
        out.push(b' ');
        write_body(out, body, ext);
        out.push(b' ');
        out.extend_from_slice(part.lines.to_string().as_bytes());
    } else if part.media_type == b"text" {
        out.push(b' ');
        out.extend_from_slice(part.lines.to_string().as_bytes());
    }
    if ext {
        out.extend_from_slice(b" NIL ");
        write_ext_common(out, part);
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use crate::mime::test_util::*;
    use crate::mime::{section, summarize};
    use crate::types::SectionText;

    #[test]
    fn message_global_digest_and_extensions() {
        let raw = b"Content-Type: multipart/digest; boundary=d\r\n\
Content-Language: en, de\r\nContent-Location: http://x.test/a\r\n\
Content-Disposition: inline\r\n\r\n\
--d\r\n\r\nSubject: in digest\r\n\r\nhi\r\n--d--\r\n";
        let sum = summarize(raw);
        assert_eq!(
            s(&sum.body_structure),
            "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 24 \
(NIL \"in digest\" NIL NIL NIL NIL NIL NIL NIL NIL) \
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 2 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) \
\"DIGEST\" (\"BOUNDARY\" \"d\") (\"INLINE\" NIL) (\"en\" \"de\") \"http://x.test/a\")"
        );
        assert_eq!(section(raw, &sec(&[1, 1], None)).unwrap(), b"hi");
        assert_eq!(
            section(raw, &sec(&[1], Some(SectionText::Text))).unwrap(),
            b"hi"
        );
    }
}
