//! BODYSTRUCTURE and BODY (RFC 3501 7.4.2): one part's type, parameters, id,
//! description, encoding, size and lines, nested for multiparts and encapsulated
//! messages, with the extension data (disposition, language, location) for
//! BODYSTRUCTURE.

use super::envelope::write_envelope;
use super::header::{first_field, trim, unfold, Field};
use super::params::{is_token, parse_structured, split_params};
use super::tree::{count_lines, Kind, Part};
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
fn write_ext_common(out: &mut Vec<u8>, raw: &[u8], fields: &[Field]) {
    match first_field(raw, fields, "content-disposition").map(parse_structured) {
        Some((ty, params)) if is_token(&ty) => {
            out.push(b'(');
            write_upper(out, &ty);
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let langs: Vec<Vec<u8>> = first_field(raw, fields, "content-language")
        .map(|v| {
            let no_comments: Vec<u8> = split_params(v).join(&b';');
            no_comments
                .split(|&c| c == b',')
                .map(|l| trim(l).to_vec())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    match langs.len() {
        0 => out.extend_from_slice(b"NIL"),
        1 => write_string(out, &langs[0]),
        _ => {
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
    let loc = first_field(raw, fields, "content-location")
        .map(unfold)
        .filter(|l| !l.is_empty());
    write_nstring(out, loc.as_deref());
}

pub(super) fn cte_of(raw: &[u8], fields: &[Field]) -> Option<Vec<u8>> {
    first_field(raw, fields, "content-transfer-encoding")
        .map(|v| trim(&split_params(v)[0]).to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

pub(super) fn write_body(out: &mut Vec<u8>, raw: &[u8], part: &Part, ext: bool) {
    out.push(b'(');
    if let Kind::Multipart(children) = &part.kind {
        if children.is_empty() {
            out.extend_from_slice(
                b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)",
            );
        }
        for c in children {
            write_body(out, raw, c, ext);
        }
        out.push(b' ');
        write_upper(out, &part.ct.sub);
        if ext {
            out.push(b' ');
            write_params(out, &part.ct.params);
            out.push(b' ');
            write_ext_common(out, raw, &part.fields);
        }
        out.push(b')');
        return;
    }
    write_upper(out, &part.ct.ty);
    out.push(b' ');
    write_upper(out, &part.ct.sub);
    out.push(b' ');
    write_params(out, &part.ct.params);
    out.push(b' ');
    let id = first_field(raw, &part.fields, "content-id").map(unfold);
    write_nstring(out, id.as_deref());
    out.push(b' ');
    let desc = first_field(raw, &part.fields, "content-description").map(unfold);
    write_nstring(out, desc.as_deref());
    out.push(b' ');
    match cte_of(raw, &part.fields) {
        Some(cte) => write_upper(out, &cte),
        None => out.extend_from_slice(b"\"7BIT\""),
    }
    out.push(b' ');
    let body = &raw[part.body_start..part.end];
    out.extend_from_slice(body.len().to_string().as_bytes());
    if let Kind::Message(inner) = &part.kind {
        out.push(b' ');
        write_envelope(out, raw, &inner.fields);
        out.push(b' ');
        write_body(out, raw, inner, ext);
        out.push(b' ');
        out.extend_from_slice(count_lines(body).to_string().as_bytes());
    } else if part.ct.ty == b"text" {
        out.push(b' ');
        out.extend_from_slice(count_lines(body).to_string().as_bytes());
    }
    if ext {
        out.extend_from_slice(b" NIL ");
        write_ext_common(out, raw, &part.fields);
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
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) \
\"DIGEST\" (\"BOUNDARY\" \"d\") (\"INLINE\" NIL) (\"en\" \"de\") \"http://x.test/a\")"
        );
        assert_eq!(section(raw, &sec(&[1, 1], None)).unwrap(), b"hi");
        assert_eq!(
            section(raw, &sec(&[1], Some(SectionText::Text))).unwrap(),
            b"hi"
        );
    }
}
