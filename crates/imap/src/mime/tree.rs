//! The MIME tree, split on byte offsets of the raw message so that every part is
//! byte-exact: multipart bodies at their delimiters (RFC 2046 5.1.1, tolerating missing
//! or wrong boundaries), encapsulated messages, and section part numbers resolved to a
//! part. Nesting stops at [`MAX_DEPTH`].

use super::header::{first_field, parse_header, Field};
use super::params::{param, ContentType};
use super::MAX_DEPTH;

#[derive(Debug)]
pub(super) enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    /// message/rfc822 (or message/global): the encapsulated message.
    Message(Box<Part>),
}

/// One entity: its MIME header `start..body_start` (including the blank line) and
/// body `body_start..end`, as absolute offsets into the raw message.
#[derive(Debug)]
pub(super) struct Part {
    pub(super) start: usize,
    pub(super) body_start: usize,
    pub(super) end: usize,
    pub(super) fields: Vec<Field>,
    pub(super) ct: ContentType,
    pub(super) kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum DefaultType {
    Text,
    Message,
}

pub(super) fn parse_tree(raw: &[u8]) -> Part {
    parse_part(raw, 0, raw.len(), DefaultType::Text, 0)
}

fn parse_part(raw: &[u8], start: usize, end: usize, default: DefaultType, depth: usize) -> Part {
    let (fields, body_start) = parse_header(raw, start, end);
    let ct = match first_field(raw, &fields, "content-type") {
        Some(v) => ContentType::parse(v).unwrap_or_else(ContentType::text_plain),
        None if default == DefaultType::Message => ContentType::message_rfc822(),
        None => ContentType::text_plain(),
    };
    let mut part = Part {
        start,
        body_start,
        end,
        fields,
        ct,
        kind: Kind::Leaf,
    };
    let nests = part.ct.ty == b"multipart" || part.ct.is_message();
    if nests && depth >= MAX_DEPTH {
        part.ct = ContentType::octet_stream();
    } else if part.ct.ty == b"multipart" {
        let child_default = if part.ct.sub == b"digest" {
            DefaultType::Message
        } else {
            DefaultType::Text
        };
        let children = match param(&part.ct.params, "boundary") {
            Some(b) if !b.is_empty() => split_multipart(raw, body_start, end, b)
                .into_iter()
                .map(|(s, e)| parse_part(raw, s, e, child_default, depth + 1))
                .collect(),
            _ => Vec::new(),
        };
        part.kind = Kind::Multipart(children);
    } else if part.ct.is_message() {
        part.kind = Kind::Message(Box::new(parse_part(
            raw,
            body_start,
            end,
            DefaultType::Text,
            depth + 1,
        )));
    }
    part
}

#[derive(PartialEq)]
enum Delim {
    Open,
    Close,
}

fn delimiter_at(raw: &[u8], ls: usize, end: usize, boundary: &[u8]) -> Option<Delim> {
    let line = &raw[ls..end];
    if line.len() < boundary.len() + 2
        || &line[..2] != b"--"
        || &line[2..2 + boundary.len()] != boundary
    {
        return None;
    }
    let rest = &line[2 + boundary.len()..];
    if rest.starts_with(b"--") {
        return Some(Delim::Close);
    }
    for &c in rest {
        match c {
            b' ' | b'\t' => continue,
            b'\r' | b'\n' => return Some(Delim::Open),
            _ => return None,
        }
    }
    Some(Delim::Open)
}

/// The body parts of a multipart body `start..end`: each part's range excludes the
/// delimiter lines and the line break before each delimiter (RFC 2046 5.1.1).
fn split_multipart(raw: &[u8], start: usize, end: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut cur: Option<usize> = None;
    let mut ls = start;
    while ls < end {
        let next = match raw[ls..end].iter().position(|&c| c == b'\n') {
            Some(i) => ls + i + 1,
            None => end,
        };
        if raw[ls] == b'-' {
            if let Some(d) = delimiter_at(raw, ls, end, boundary) {
                if let Some(s) = cur {
                    let mut e = ls;
                    if e > start && raw[e - 1] == b'\n' {
                        e -= 1;
                        if e > start && raw[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    parts.push((s, e.max(s)));
                }
                if d == Delim::Close {
                    return parts;
                }
                cur = Some(next);
            }
        }
        ls = next;
    }
    if let Some(s) = cur {
        parts.push((s, end.max(s)));
    }
    parts
}

/// The part a section's part numbers designate, and whether it is a message
/// (the top level) rather than a body part.
pub(super) fn resolve<'a>(root: &'a Part, path: &[u32]) -> Option<(&'a Part, bool)> {
    let mut cur = root;
    let mut is_msg = true;
    for &n in path {
        let msg = if is_msg {
            Some(cur)
        } else if let Kind::Message(inner) = &cur.kind {
            Some(&**inner)
        } else {
            None
        };
        let idx = (n as usize).checked_sub(1)?;
        cur = match msg {
            Some(m) => match &m.kind {
                Kind::Multipart(children) => children.get(idx)?,
                _ if n == 1 => m,
                _ => return None,
            },
            None => match &cur.kind {
                Kind::Multipart(children) => children.get(idx)?,
                _ => return None,
            },
        };
        is_msg = false;
    }
    Some((cur, is_msg))
}

pub(super) fn count_lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&c| c == b'\n').count();
    if !body.is_empty() && body.last() != Some(&b'\n') {
        n + 1
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use crate::mime::test_util::*;
    use crate::mime::{binary, body_text, section, summarize, UnknownEncoding};
    use crate::types::SectionText;

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
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1)\
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
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"X-UUENCODE\" 4 1)"
        );
        assert_eq!(binary(raw, &[1]), Err(UnknownEncoding("x-uuencode".into())));
        assert_eq!(body_text(raw), "body");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = Vec::new();
        for i in 0..200 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
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
    }
}
