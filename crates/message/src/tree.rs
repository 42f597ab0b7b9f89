//! The MIME tree, split on byte offsets of the raw message so that every part is
//! byte-exact: multipart bodies at their delimiters (RFC 2046 5.1.1, tolerating missing
//! or wrong boundaries), encapsulated messages, and section part numbers resolved to a
//! part. Nesting stops at [`MAX_DEPTH`].

use crate::header::{first_field, parse_header, Field};
use crate::params::{param, ContentType};
use crate::MAX_DEPTH;

#[derive(Debug)]
/// What a [`Part`] holds.
pub enum Kind {
    /// A single body (not multipart, not an encapsulated message).
    Leaf,
    /// The body parts of a multipart, in order.
    Multipart(Vec<Part>),
    /// message/rfc822 (or message/global): the encapsulated message.
    Message(Box<Part>),
}

/// One entity: its MIME header `start..body_start` (including the blank line) and
/// body `body_start..end`, as absolute offsets into the raw message.
#[derive(Debug)]
pub struct Part {
    /// First byte of the part's MIME header.
    pub start: usize,
    /// First byte of the body (after the blank line).
    pub body_start: usize,
    /// One past the body's last byte.
    pub end: usize,
    /// The header fields.
    pub fields: Vec<Field>,
    /// The effective content type (defaults applied).
    pub ct: ContentType,
    /// What the body holds.
    pub kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum DefaultType {
    Text,
    Message,
}

/// The MIME tree of a whole message. Never panics; nesting stops at
/// [`MAX_DEPTH`](crate::MAX_DEPTH).
pub fn parse_tree(raw: &[u8]) -> Part {
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
pub fn resolve<'a>(root: &'a Part, path: &[u32]) -> Option<(&'a Part, bool)> {
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

/// Lines in `body`: its line feeds. A last line without a line ending is not counted,
/// as Dovecot counts (a part's body normally ends with one: the CRLF before a
/// boundary belongs to the boundary, so that line is counted once the part's content
/// is followed by it).
pub fn count_lines(body: &[u8]) -> usize {
    body.iter().filter(|&&c| c == b'\n').count()
}
