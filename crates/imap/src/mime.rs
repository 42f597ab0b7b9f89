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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use crate::types::{Section, SectionText};

/// How deep multiparts and encapsulated messages are followed; deeper parts are
/// reported as `APPLICATION/OCTET-STREAM` leaves.
pub const MAX_DEPTH: usize = 32;

// ---------------------------------------------------------------------------
// Wire string encoders
// ---------------------------------------------------------------------------

/// Appends `s` as an IMAP `string`: a quoted string when every byte is 7-bit,
/// printable and not CR/LF (with `"` and `\` escaped), else a `{n}\r\n` literal.
/// NUL bytes, which IMAP cannot carry, are dropped.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&c| (0x01..0x80).contains(&c) && c != b'\r' && c != b'\n');
    if quotable {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        let n = s.iter().filter(|&&c| c != 0).count();
        out.push(b'{');
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"}\r\n");
        out.extend(s.iter().copied().filter(|&c| c != 0));
    }
}

/// Appends an IMAP `nstring`: `NIL` for `None`, else [`write_string`].
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends an IMAP `astring`: a bare atom when `s` is a non-empty run of ATOM-CHARs
/// (and not `NIL`), else [`write_string`].
pub fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && !s.eq_ignore_ascii_case(b"NIL")
        && s.iter()
            .all(|&c| c > 0x20 && c < 0x7f && !b"(){%*\"\\".contains(&c));
    if atom {
        out.extend_from_slice(s);
    } else {
        write_string(out, s);
    }
}

// ---------------------------------------------------------------------------
// Header fields
// ---------------------------------------------------------------------------

/// One header field (with its continuation lines), as absolute byte offsets.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// First byte of the field line.
    start: usize,
    /// Field name `start..name_end` (empty for a line that is not a valid field).
    name_end: usize,
    /// First byte after the colon.
    value: usize,
    /// One past the field's last line ending (or the header end).
    end: usize,
    /// A well-formed `name:` line.
    valid: bool,
}

impl Field {
    fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.start..self.name_end]
    }

    fn is(&self, raw: &[u8], name: &[u8]) -> bool {
        self.valid && self.name(raw).eq_ignore_ascii_case(name)
    }

    /// The value bytes as stored (folded, with the final line ending).
    fn raw_value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.value..self.end]
    }
}

/// Splits the header starting at `start` (bounded by `end`): returns its fields and
/// where the body starts (after the blank line; `end` if there is none).
fn parse_header(raw: &[u8], start: usize, end: usize) -> (Vec<Field>, usize) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < end {
        let next = match raw[pos..end].iter().position(|&c| c == b'\n') {
            Some(i) => pos + i + 1,
            None => end,
        };
        let line = &raw[pos..next];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            return (fields, next);
        }
        let first = content[0];
        if (first == b' ' || first == b'\t') && !fields.is_empty() {
            if let Some(last) = fields.last_mut() {
                last.end = next;
            }
        } else {
            let colon = content.iter().position(|&c| c == b':');
            let field = match colon {
                Some(c) => {
                    let mut ne = pos + c;
                    while ne > pos && (raw[ne - 1] == b' ' || raw[ne - 1] == b'\t') {
                        ne -= 1;
                    }
                    let name = &raw[pos..ne];
                    let valid = !name.is_empty() && name.iter().all(|&ch| ch > 0x20 && ch < 0x7f);
                    Field {
                        start: pos,
                        name_end: ne,
                        value: pos + c + 1,
                        end: next,
                        valid,
                    }
                }
                None => Field {
                    start: pos,
                    name_end: pos,
                    value: pos,
                    end: next,
                    valid: false,
                },
            };
            fields.push(field);
        }
        pos = next;
    }
    (fields, end)
}

fn first_field<'a>(raw: &'a [u8], fields: &[Field], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.is(raw, name.as_bytes()))
        .map(|f| f.raw_value(raw))
}

/// Unfolds a header value: drops CR and LF, trims surrounding blanks.
fn unfold(v: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect();
    trim(&v).to_vec()
}

fn trim(v: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t' || *c == b'\r' || *c == b'\n';
    let s = v.iter().position(|c| !is_ws(c)).unwrap_or(v.len());
    let e = v.iter().rposition(|c| !is_ws(c)).map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

/// Decodes RFC 2047 encoded-words in a header value to UTF-8 (unfolding it).
pub fn decode_header_value(v: &[u8]) -> String {
    let mut buf = unfold(v);
    buf.push(b'\n');
    match MessageStream::new(&buf).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Structured MIME values: Content-Type, Content-Disposition
// ---------------------------------------------------------------------------

/// Removes comments, splits at `;` outside quoted strings.
fn split_params(v: &[u8]) -> Vec<Vec<u8>> {
    let mut segs = vec![Vec::new()];
    let mut i = 0;
    let mut quoted = false;
    let mut depth = 0usize;
    while i < v.len() {
        let c = v[i];
        if depth > 0 {
            match c {
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
        } else if quoted {
            let seg = segs.last_mut().expect("non-empty");
            seg.push(c);
            if c == b'\\' && i + 1 < v.len() {
                seg.push(v[i + 1]);
                i += 1;
            } else if c == b'"' {
                quoted = false;
            }
        } else {
            match c {
                b'(' => depth = 1,
                b'"' => {
                    quoted = true;
                    segs.last_mut().expect("non-empty").push(c);
                }
                b';' => segs.push(Vec::new()),
                b'\r' | b'\n' => {}
                _ => segs.last_mut().expect("non-empty").push(c),
            }
        }
        i += 1;
    }
    segs
}

fn unquote(v: &[u8]) -> Vec<u8> {
    let v = trim(v);
    if v.first() != Some(&b'"') {
        return v.to_vec();
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 1;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                out.push(v[i + 1]);
                i += 1;
            }
            b'"' => break,
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `value *(; attr=value)`: the leading value (trimmed) and the parameters
/// (names as written, values unquoted).
fn parse_structured(v: &[u8]) -> (Vec<u8>, Params) {
    let segs = split_params(v);
    let head = trim(&segs[0]).to_vec();
    let mut params = Vec::new();
    for seg in &segs[1..] {
        let eq = match seg.iter().position(|&c| c == b'=') {
            Some(e) => e,
            None => continue,
        };
        let name = trim(&seg[..eq]);
        if name.is_empty() || name.iter().any(|&c| c <= 0x20 || c >= 0x7f) {
            continue;
        }
        params.push((name.to_vec(), unquote(&seg[eq + 1..])));
    }
    (head, params)
}

fn param<'a>(params: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&c| c > 0x20 && c < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&c))
}

/// MIME parameters: (name as written, unquoted value).
type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// An effective content type: lower-case type and subtype, parameters as written.
#[derive(Debug, Clone)]
struct ContentType {
    ty: Vec<u8>,
    sub: Vec<u8>,
    params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ContentType {
    fn text_plain() -> Self {
        ContentType {
            ty: b"text".to_vec(),
            sub: b"plain".to_vec(),
            params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
        }
    }

    fn message_rfc822() -> Self {
        ContentType {
            ty: b"message".to_vec(),
            sub: b"rfc822".to_vec(),
            params: Vec::new(),
        }
    }

    fn octet_stream() -> Self {
        ContentType {
            ty: b"application".to_vec(),
            sub: b"octet-stream".to_vec(),
            params: Vec::new(),
        }
    }

    fn is_message(&self) -> bool {
        self.ty == b"message" && (self.sub == b"rfc822" || self.sub == b"global")
    }

    fn parse(v: &[u8]) -> Option<Self> {
        let (head, params) = parse_structured(v);
        let slash = head.iter().position(|&c| c == b'/')?;
        let ty = trim(&head[..slash]).to_ascii_lowercase();
        let sub = trim(&head[slash + 1..]).to_ascii_lowercase();
        if !is_token(&ty) || !is_token(&sub) {
            return None;
        }
        Some(ContentType { ty, sub, params })
    }
}

// ---------------------------------------------------------------------------
// The MIME tree
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    /// message/rfc822 (or message/global): the encapsulated message.
    Message(Box<Part>),
}

/// One entity: its MIME header `start..body_start` (including the blank line) and
/// body `body_start..end`, as absolute offsets into the raw message.
#[derive(Debug)]
struct Part {
    start: usize,
    body_start: usize,
    end: usize,
    fields: Vec<Field>,
    ct: ContentType,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum DefaultType {
    Text,
    Message,
}

fn parse_tree(raw: &[u8]) -> Part {
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
fn resolve<'a>(root: &'a Part, path: &[u32]) -> Option<(&'a Part, bool)> {
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

fn count_lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&c| c == b'\n').count();
    if !body.is_empty() && body.last() != Some(&b'\n') {
        n + 1
    } else {
        n
    }
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Literal(Vec<u8>),
    Special(u8),
}

fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c != 0x7f && !b"\"(<>@,:;[".contains(&c)
}

fn tokenize(v: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() {
                    match v[i] {
                        b'\\' if i + 1 < v.len() => {
                            s.push(v[i + 1]);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\r' | b'\n' => i += 1,
                        ch => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Quoted(s));
            }
            b'(' => {
                let mut s = Vec::new();
                let mut depth = 0usize;
                while i < v.len() {
                    match v[i] {
                        b'\\' if i + 1 < v.len() => {
                            s.push(v[i + 1]);
                            i += 2;
                            continue;
                        }
                        b'(' => {
                            if depth > 0 {
                                s.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            s.push(b')');
                        }
                        ch => s.push(ch),
                    }
                    i += 1;
                }
                toks.push(Tok::Comment(s));
            }
            b'[' => {
                let s0 = i;
                i += 1;
                while i < v.len() && v[i] != b']' {
                    i += if v[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(v.len());
                toks.push(Tok::Literal(v[s0..i].to_vec()));
            }
            b'<' | b'>' | b'@' | b',' | b':' | b';' => {
                toks.push(Tok::Special(c));
                i += 1;
            }
            _ if !is_atom_char(c) => i += 1,
            _ => {
                let s0 = i;
                while i < v.len() && is_atom_char(v[i]) {
                    i += 1;
                }
                toks.push(Tok::Atom(v[s0..i].to_vec()));
            }
        }
    }
    toks
}

/// One element of an address list as the envelope shows it.
#[derive(Debug, Clone, PartialEq)]
enum AddrItem {
    Mailbox {
        name: Option<Vec<u8>>,
        adl: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    GroupStart(Vec<u8>),
    GroupEnd,
}

fn phrase(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        let w = match t {
            Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => w,
            Tok::Special(c) if *c != b'<' && *c != b'>' => {
                out.push(*c);
                continue;
            }
            _ => continue,
        };
        if !out.is_empty() && !w.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(w);
    }
    out
}

fn join_tokens(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => out.extend_from_slice(w),
            Tok::Special(c) => out.push(*c),
            Tok::Comment(_) => {}
        }
    }
    out
}

/// Splits an addr-spec's tokens into (local part, domain).
fn addr_spec(toks: &[Tok]) -> (Vec<u8>, Vec<u8>) {
    let toks: Vec<Tok> = toks
        .iter()
        .filter(|t| !matches!(t, Tok::Comment(_)))
        .cloned()
        .collect();
    match toks.iter().position(|t| *t == Tok::Special(b'@')) {
        Some(at) => (join_tokens(&toks[..at]), join_tokens(&toks[at + 1..])),
        None => (phrase(&toks), Vec::new()),
    }
}

fn mailbox_item(item: &[Tok]) -> Option<AddrItem> {
    if item.is_empty() {
        return None;
    }
    let (name, adl, mailbox, host) = match item.iter().position(|t| *t == Tok::Special(b'<')) {
        Some(lt) => {
            let name = phrase(&item[..lt]);
            let close = item[lt + 1..]
                .iter()
                .position(|t| *t == Tok::Special(b'>'))
                .map_or(item.len(), |p| lt + 1 + p);
            let angle = &item[lt + 1..close];
            let (adl, spec) = if angle.first() == Some(&Tok::Special(b'@')) {
                match angle.iter().position(|t| *t == Tok::Special(b':')) {
                    Some(colon) => (Some(join_tokens(&angle[..colon])), &angle[colon + 1..]),
                    None => (None, angle),
                }
            } else {
                (None, angle)
            };
            let (mailbox, host) = addr_spec(spec);
            (name, adl, mailbox, host)
        }
        None => {
            let (mailbox, host) = addr_spec(item);
            let name = item
                .iter()
                .find_map(|t| match t {
                    Tok::Comment(c) if !trim(c).is_empty() => Some(trim(c).to_vec()),
                    _ => None,
                })
                .unwrap_or_default();
            (name, None, mailbox, host)
        }
    };
    if name.is_empty() && mailbox.is_empty() && host.is_empty() {
        return None;
    }
    Some(AddrItem::Mailbox {
        name: if name.is_empty() { None } else { Some(name) },
        adl,
        mailbox,
        host,
    })
}

/// Parses an address-list header value (raw) into envelope items, keeping
/// encoded-words in display names as they are.
fn parse_addresses(v: &[u8]) -> Vec<AddrItem> {
    let toks = tokenize(v);
    let mut out = Vec::new();
    let mut item: Vec<Tok> = Vec::new();
    let mut in_angle = false;
    let mut in_group = false;
    for tok in toks {
        match tok {
            Tok::Special(b'<') => {
                in_angle = true;
                item.push(tok);
            }
            Tok::Special(b'>') => {
                in_angle = false;
                item.push(tok);
            }
            Tok::Special(b',') if !in_angle => {
                out.extend(mailbox_item(&item));
                item.clear();
            }
            Tok::Special(b':') if !in_angle && !in_group && !item.contains(&Tok::Special(b'@')) => {
                out.push(AddrItem::GroupStart(phrase(&item)));
                item.clear();
                in_group = true;
            }
            Tok::Special(b';') if !in_angle => {
                out.extend(mailbox_item(&item));
                item.clear();
                if in_group {
                    out.push(AddrItem::GroupEnd);
                    in_group = false;
                }
            }
            _ => item.push(tok),
        }
    }
    out.extend(mailbox_item(&item));
    if in_group {
        out.push(AddrItem::GroupEnd);
    }
    out
}

fn write_addresses(out: &mut Vec<u8>, items: &[AddrItem]) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for it in items {
        match it {
            AddrItem::Mailbox {
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
            AddrItem::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            AddrItem::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

#[allow(clippy::type_complexity)]
fn first_mailbox(items: &[AddrItem]) -> Option<(&Option<Vec<u8>>, &Vec<u8>, &Vec<u8>)> {
    items.iter().find_map(|it| match it {
        AddrItem::Mailbox {
            name,
            mailbox,
            host,
            ..
        } => Some((name, mailbox, host)),
        _ => None,
    })
}

/// RFC 5957 display value: the decoded display name, else `mailbox@host`.
fn display_of(items: &[AddrItem]) -> Option<String> {
    let (name, mailbox, host) = first_mailbox(items)?;
    if let Some(n) = name {
        let d = decode_header_value(n);
        if !d.trim().is_empty() {
            return Some(d);
        }
    }
    let mut s = String::from_utf8_lossy(mailbox).into_owned();
    if !host.is_empty() {
        s.push('@');
        s.push_str(&String::from_utf8_lossy(host));
    }
    Some(s)
}

/// Message ids (without angle brackets) in a Message-ID / In-Reply-To /
/// References value.
fn parse_ids(v: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'<' {
            match v[i + 1..].iter().position(|&c| c == b'>') {
                Some(p) => {
                    let id: Vec<u8> = v[i + 1..i + 1 + p]
                        .iter()
                        .copied()
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    if !id.is_empty() {
                        ids.push(String::from_utf8_lossy(&id).into_owned());
                    }
                    i += p + 2;
                }
                None => break,
            }
        } else {
            i += 1;
        }
    }
    if ids.is_empty() {
        let t = unfold(v);
        if !t.is_empty() && !t.iter().any(|c| c.is_ascii_whitespace()) {
            ids.push(String::from_utf8_lossy(&t).into_owned());
        }
    }
    ids
}

// ---------------------------------------------------------------------------
// ENVELOPE and BODYSTRUCTURE
// ---------------------------------------------------------------------------

fn write_envelope(out: &mut Vec<u8>, raw: &[u8], fields: &[Field]) {
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

fn cte_of(raw: &[u8], fields: &[Field]) -> Option<Vec<u8>> {
    first_field(raw, fields, "content-transfer-encoding")
        .map(|v| trim(&split_params(v)[0]).to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

fn write_body(out: &mut Vec<u8>, raw: &[u8], part: &Part, ext: bool) {
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

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// RFC 5256 base subject
// ---------------------------------------------------------------------------

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

fn skip_wsp(s: &[u8], mut p: usize) -> usize {
    while p < s.len() && (s[p] == b' ' || s[p] == b'\t') {
        p += 1;
    }
    p
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at `p`: its end.
fn match_blob(s: &[u8], p: usize) -> Option<usize> {
    if s.get(p) != Some(&b'[') {
        return None;
    }
    let close = s[p + 1..].iter().position(|&c| c == b']' || c == b'[')?;
    if s[p + 1 + close] != b']' {
        return None;
    }
    Some(skip_wsp(s, p + close + 2))
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"` at `p`: its end.
fn match_refwd(s: &[u8], p: usize) -> Option<usize> {
    let rest = &s[p..];
    let mut q = if starts_with_ci(rest, b"fwd") {
        p + 3
    } else if starts_with_ci(rest, b"fw") || starts_with_ci(rest, b"re") {
        p + 2
    } else {
        return None;
    };
    q = skip_wsp(s, q);
    if let Some(e) = match_blob(s, q) {
        q = e;
    }
    if s.get(q) == Some(&b':') {
        Some(q + 1)
    } else {
        None
    }
}

/// RFC 5256 section 2.1 base subject of an (already RFC 2047 decoded) subject.
pub fn base_subject(subject: &str) -> String {
    // (1) Whitespace: tabs and line breaks to spaces, runs to one space.
    let mut s: Vec<u8> = Vec::with_capacity(subject.len());
    for &c in subject.as_bytes() {
        let c = if c == b'\t' || c == b'\r' || c == b'\n' {
            b' '
        } else {
            c
        };
        if !(c == b' ' && s.last() == Some(&b' ')) {
            s.push(c);
        }
    }
    loop {
        // (2) Trailers: "(fwd)" and WSP.
        loop {
            if s.last() == Some(&b' ') {
                s.pop();
            } else if s.len() >= 5 && s[s.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s.truncate(s.len() - 5);
            } else {
                break;
            }
        }
        // (3)-(5) Leaders and blobs.
        loop {
            let before = s.len();
            loop {
                let ws = skip_wsp(&s, 0);
                if ws > 0 {
                    s.drain(..ws);
                    continue;
                }
                let mut p = 0;
                while let Some(e) = match_blob(&s, p) {
                    p = e;
                }
                match match_refwd(&s, p) {
                    Some(e) => {
                        s.drain(..e);
                    }
                    None => break,
                }
            }
            if let Some(e) = match_blob(&s, 0) {
                if s[e..].iter().any(|&c| c != b' ' && c != b'\t') {
                    s.drain(..e);
                }
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd:" ... "]"
        if starts_with_ci(&s, b"[fwd:") && s.last() == Some(&b']') {
            s.truncate(s.len() - 1);
            s.drain(..5);
            continue;
        }
        break;
    }
    // Only ASCII bytes were removed, at ASCII positions: still UTF-8.
    String::from_utf8(s).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// ---------------------------------------------------------------------------
// Body sections
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// BINARY and transfer decoding
// ---------------------------------------------------------------------------

/// A Content-Transfer-Encoding tern cannot decode (answer `NO [UNKNOWN-CTE]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEncoding(pub String);

impl fmt::Display for UnknownEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown Content-Transfer-Encoding {:?}", self.0)
    }
}

impl std::error::Error for UnknownEncoding {}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Lenient base64: characters outside the alphabet are skipped, `=` ends the data.
fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in input {
        if c == b'=' {
            break;
        }
        if let Some(v) = b64_value(c) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable: `=XX`, soft line breaks, trailing blanks on lines dropped;
/// malformed escapes are kept literally.
fn decode_qp(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'=' => {
                if let (Some(h), Some(l)) = (
                    input.get(i + 1).and_then(|&c| hex(c)),
                    input.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                let j = skip_wsp(input, i + 1);
                if j >= input.len() {
                    i = j;
                } else if input[j] == b'\n' {
                    i = j + 1;
                } else if input[j] == b'\r' && input.get(j + 1) == Some(&b'\n') {
                    i = j + 2;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b' ' | b'\t' => {
                let j = skip_wsp(input, i);
                let at_eol = j >= input.len()
                    || input[j] == b'\n'
                    || (input[j] == b'\r' && input.get(j + 1) == Some(&b'\n'));
                if !at_eol {
                    out.extend_from_slice(&input[i..j]);
                }
                i = j;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn transfer_decode(raw: &[u8], part: &Part) -> Result<Vec<u8>, UnknownEncoding> {
    let body = &raw[part.body_start..part.end];
    match cte_of(raw, &part.fields).as_deref() {
        None | Some(b"7bit") | Some(b"8bit") | Some(b"binary") => Ok(body.to_vec()),
        Some(b"base64") => Ok(decode_base64(body)),
        Some(b"quoted-printable") => Ok(decode_qp(body)),
        Some(other) => Err(UnknownEncoding(String::from_utf8_lossy(other).into_owned())),
    }
}

/// `BINARY[part]` (RFC 3516): the part's content with its Content-Transfer-Encoding
/// removed. `Ok(None)` when the part does not exist; an empty `part` is the whole
/// message as is. Multipart and message parts are returned as stored.
pub fn binary(raw: &[u8], part: &[u32]) -> Result<Option<Vec<u8>>, UnknownEncoding> {
    if part.is_empty() {
        return Ok(Some(raw.to_vec()));
    }
    let root = parse_tree(raw);
    let target = match resolve(&root, part) {
        Some((t, _)) => t,
        None => return Ok(None),
    };
    match target.kind {
        Kind::Leaf => transfer_decode(raw, target).map(Some),
        _ => Ok(Some(raw[target.body_start..target.end].to_vec())),
    }
}

// ---------------------------------------------------------------------------
// SEARCH helpers
// ---------------------------------------------------------------------------

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

fn collect_text(raw: &[u8], part: &Part, out: &mut String) {
    match &part.kind {
        Kind::Multipart(children) => children.iter().for_each(|c| collect_text(raw, c, out)),
        Kind::Message(inner) => collect_text(raw, inner, out),
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

/// The decoded text of every text/* part (including those of attached messages),
/// transfer-decoded and converted to UTF-8, joined by newlines; HTML is included as
/// is. For SEARCH BODY / TEXT substring matching.
pub fn body_text(raw: &[u8]) -> String {
    let root = parse_tree(raw);
    let mut out = String::new();
    collect_text(raw, &root, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------

struct CacheEntry {
    summary: Arc<MessageSummary>,
    generation: u64,
    weight: usize,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<[u8; 20], CacheEntry>,
    /// Access order, oldest first; entries whose generation is stale are skipped.
    order: VecDeque<([u8; 20], u64)>,
    generation: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl CacheInner {
    fn touch(&mut self, guid: [u8; 20]) {
        self.generation += 1;
        let generation = self.generation;
        if let Some(e) = self.map.get_mut(&guid) {
            e.generation = generation;
            self.order.push_back((guid, generation));
        }
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    fn evict(&mut self, max_entries: usize, max_bytes: usize) {
        while self.map.len() > max_entries || (self.bytes > max_bytes && !self.map.is_empty()) {
            let (k, g) = match self.order.pop_front() {
                Some(x) => x,
                None => break,
            };
            if self.map.get(&k).is_some_and(|e| e.generation == g) {
                if let Some(e) = self.map.remove(&k) {
                    self.bytes -= e.weight;
                }
            }
        }
    }
}

/// A bounded, thread-safe LRU of [`MessageSummary`] keyed by message GUID, so that
/// FETCH ENVELOPE / BODYSTRUCTURE, SORT and THREAD over many messages do not
/// re-parse them.
pub struct SummaryCache {
    inner: Mutex<CacheInner>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for SummaryCache {
    /// 200,000 entries or 256 MiB, whichever is reached first.
    fn default() -> Self {
        SummaryCache::new(200_000, 256 << 20)
    }
}

impl fmt::Debug for SummaryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SummaryCache")
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl SummaryCache {
    /// A cache holding at most `max_entries` summaries and about `max_bytes` bytes
    /// of them (see [`MessageSummary::weight`]); least recently used go first.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        SummaryCache {
            inner: Mutex::new(CacheInner::default()),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached summary of `guid`, marking it recently used.
    pub fn get(&self, guid: &[u8; 20]) -> Option<Arc<MessageSummary>> {
        let mut inner = self.lock();
        let found = inner.map.get(guid).map(|e| e.summary.clone());
        match found {
            Some(s) => {
                inner.hits += 1;
                inner.touch(*guid);
                Some(s)
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    /// Stores a summary (replacing any for the same GUID), evicting as needed.
    pub fn insert(&self, guid: [u8; 20], summary: Arc<MessageSummary>) {
        let weight = summary.weight() + 64;
        let mut inner = self.lock();
        if let Some(old) = inner.map.insert(
            guid,
            CacheEntry {
                summary,
                generation: 0,
                weight,
            },
        ) {
            inner.bytes -= old.weight;
        }
        inner.bytes += weight;
        inner.touch(guid);
        inner.evict(self.max_entries, self.max_bytes);
    }

    /// The cached summary of `guid`, or `make()`'s, which is then cached. `make`
    /// runs without the lock held (two threads may both compute the same summary).
    pub fn get_or_insert_with<F: FnOnce() -> MessageSummary>(
        &self,
        guid: [u8; 20],
        make: F,
    ) -> Arc<MessageSummary> {
        if let Some(s) = self.get(&guid) {
            return s;
        }
        let s = Arc::new(make());
        self.insert(guid, s.clone());
        s
    }

    /// Forgets `guid` (e.g. after expunge).
    pub fn remove(&self, guid: &[u8; 20]) {
        let mut inner = self.lock();
        if let Some(e) = inner.map.remove(guid) {
            inner.bytes -= e.weight;
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.bytes = 0;
    }

    /// Number of cached summaries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// (hits, misses) of [`get`](Self::get) and
    /// [`get_or_insert_with`](Self::get_or_insert_with) so far.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.hits, inner.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: John Doe <john@example.com>\r\n\
To: Jane Roe <jane@example.org>, bob@example.net\r\n\
Subject: Hello world\r\n\
Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
Message-ID: <B27397-0100000@example.com>\r\n\
\r\n\
Hello Jane,\r\n\
How are you?\r\n";

    const ALTERNATIVE: &[u8] = b"From: a@example.com\r\n\
To: b@example.com\r\n\
Subject: Re: [list] Fwd: Meeting (fwd)\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"XYZ\"\r\n\
\r\n\
preamble\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 time\r\n\
--XYZ\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Caf&eacute;</p>\r\n\
--XYZ--\r\n\
epilogue\r\n";

    const MIXED: &[u8] = b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n\
To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>\r\n\
Cc: \"=?ISO-8859-1?B?RnJhbudvaXM=?=\" <francois@example.fr>\r\n\
Subject: =?UTF-8?B?R3LDvMOfZQ==?= again\r\n\
Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
Message-ID: <m3@example.de>\r\n\
In-Reply-To: <m2@example.de>\r\n\
References: <m1@example.de>\r\n <m2@example.de>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=outer\r\n\
\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
See attached.\r\n\
--outer\r\n\
Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"data.bin\"\r\n\
Content-ID: <part2@example.de>\r\n\
Content-Description: Some data\r\n\
\r\n\
AAECAwQFBgcICQ==\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.com\r\n\
Subject: Inner\r\n\
\r\n\
Inner body\r\n\
--outer--\r\n";

    const GROUPS: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n\
Cc: undisclosed-recipients:;\r\n\
Subject: groups\r\n\
\r\n\
body\r\n";

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section {
            part: part.to_vec(),
            text,
        }
    }

    fn s(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn string_encoders() {
        let mut out = Vec::new();
        write_string(&mut out, b"a\"b\\c");
        assert_eq!(out, b"\"a\\\"b\\\\c\"");
        out.clear();
        write_string(&mut out, "caf\u{e9}".as_bytes());
        assert_eq!(out, b"{5}\r\ncaf\xc3\xa9");
        out.clear();
        write_string(&mut out, b"a\r\nb");
        assert_eq!(out, b"{4}\r\na\r\nb");
        out.clear();
        write_nstring(&mut out, None);
        write_astring(&mut out, b"INBOX");
        write_astring(&mut out, b"two words");
        write_astring(&mut out, b"");
        assert_eq!(out, b"NILINBOX\"two words\"\"\"");
    }

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
            body.contains("Caf\u{e9} time") && body.contains("<p>Caf&eacute;</p>"),
            "{body}"
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
    fn groups() {
        let sum = summarize(GROUPS);
        assert_eq!(
            s(&sum.envelope),
            "(NIL \"groups\" ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) \
((\"Alice\" NIL \"alice\" \"example.com\")) \
((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")\
(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)) \
((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
        );
        assert_eq!(sum.to_mailbox.as_deref(), Some("c"));
        assert_eq!(sum.display_to.as_deref(), Some("Ed Jones"));
        assert_eq!(sum.cc_mailbox, None);
    }

    #[test]
    fn address_forms() {
        let mut out = Vec::new();
        let list = parse_addresses(
            b"\"Doe, John\" <john@x.test>, mary@y.test (Mary Smith), <@r1.test,@r2.test:route@z.test>, \
              \"quoted local\"@q.test, nodomain, <>",
        );
        write_addresses(&mut out, &list);
        assert_eq!(
            s(&out),
            "((\"Doe, John\" NIL \"john\" \"x.test\")(\"Mary Smith\" NIL \"mary\" \"y.test\")\
(NIL \"@r1.test,@r2.test\" \"route\" \"z.test\")(NIL NIL \"quoted local\" \"q.test\")\
(NIL NIL \"nodomain\" \"\"))"
        );
        assert!(parse_addresses(b"").is_empty());
        assert!(parse_addresses(b" , ,").is_empty());
        // Unterminated group and angle.
        let list = parse_addresses(b"G: a@b.test, <c@d.test");
        out.clear();
        write_addresses(&mut out, &list);
        assert_eq!(s(&out), "((NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b.test\")(NIL NIL \"c\" \"d.test\")(NIL NIL NIL NIL))");
        // Name with 8-bit bytes is sent as a literal.
        let list = parse_addresses("J\u{f6}rg <j@x.test>".as_bytes());
        out.clear();
        write_addresses(&mut out, &list);
        assert_eq!(out, b"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x.test\"))");
    }

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
    fn bare_lf() {
        let raw: Vec<u8> = ALTERNATIVE
            .iter()
            .copied()
            .filter(|&c| c != b'\r')
            .collect();
        let sum = summarize(&raw);
        assert_eq!(
            s(&sum.body),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 14 1)\
(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 18 1) \"ALTERNATIVE\")"
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

    #[test]
    fn transfer_decoders() {
        assert_eq!(decode_base64(b"SGVs\r\nbG8=\r\n"), b"Hello");
        assert_eq!(decode_base64(b"SGVsbG8"), b"Hello");
        assert_eq!(decode_base64(b"!!"), b"");
        assert_eq!(
            decode_qp(b"a=3Db =\r\nc  \r\nd=\ne =XY=4"),
            b"a=b c\r\nde =XY=4"
        );
        assert_eq!(decode_qp(b"tab\t\nx \t"), b"tab\nx");
    }

    #[test]
    fn base_subjects() {
        let cases = [
            ("Re: [PATCH] fix", "fix"),
            ("[fwd: Re: hello]", "hello"),
            ("Fwd: Re: re: hi (fwd) (FWD)", "hi"),
            ("[no-base]", "[no-base]"),
            ("Re:", ""),
            ("  RE [x]:  spaced\t\tout  ", "spaced out"),
            ("[a][b] Re: [c] Fw: x", "x"),
            ("Reply: not a prefix", "Reply: not a prefix"),
            ("R\u{e9}sum\u{e9} (fwd)", "R\u{e9}sum\u{e9}"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(base_subject(input), want, "{input:?}");
        }
    }

    #[test]
    fn cache_lru() {
        let cache = SummaryCache::new(2, usize::MAX);
        let g = |n: u8| [n; 20];
        let calls = std::cell::Cell::new(0);
        let make = || {
            calls.set(calls.get() + 1);
            summarize(SIMPLE)
        };
        let a = cache.get_or_insert_with(g(1), make);
        let a2 = cache.get_or_insert_with(g(1), make);
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(calls.get(), 1);
        cache.get_or_insert_with(g(2), make);
        assert!(cache.get(&g(1)).is_some()); // 1 is now the most recent
        cache.get_or_insert_with(g(3), make); // evicts 2
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&g(2)).is_none());
        assert!(cache.get(&g(1)).is_some() && cache.get(&g(3)).is_some());
        cache.remove(&g(1));
        assert_eq!(cache.len(), 1);
        for _ in 0..1000 {
            cache.get(&g(3));
        }
        assert!(cache.lock().order.len() <= 2 + 64);
        cache.clear();
        assert!(cache.is_empty() && cache.bytes() == 0);

        // Byte budget.
        let w = summarize(SIMPLE).weight() + 64;
        let cache = SummaryCache::new(1000, 3 * w);
        for n in 0..10 {
            cache.insert(g(n), Arc::new(summarize(SIMPLE)));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.bytes(), 3 * w);
        assert!(cache.get(&g(9)).is_some() && cache.get(&g(6)).is_none());
    }

    #[test]
    fn cache_holds_100k_envelopes() {
        let cache = SummaryCache::default();
        let template = summarize(MIXED);
        let parses = std::cell::Cell::new(0u32);
        let guid = |i: u32| {
            let mut g = [0u8; 20];
            g[..4].copy_from_slice(&i.to_be_bytes());
            g
        };
        for round in 0..2 {
            for i in 0..100_000u32 {
                let sum = cache.get_or_insert_with(guid(i), || {
                    parses.set(parses.get() + 1);
                    template.clone()
                });
                assert_eq!(sum.envelope.len(), template.envelope.len());
            }
            assert_eq!(parses.get(), 100_000, "round {round}");
        }
        assert_eq!(cache.len(), 100_000);
    }

    #[test]
    fn cache_threads() {
        let cache = SummaryCache::new(50, usize::MAX);
        let parsed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let (cache, parsed) = (&cache, &parsed);
                scope.spawn(move || {
                    for i in 0..2000u32 {
                        let n = ((i * 7 + t as u32) % 40) as u8;
                        let sum = cache.get_or_insert_with([n; 20], || {
                            parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            summarize(MIXED)
                        });
                        assert_eq!(sum.from_mailbox.as_deref(), Some("joerg"));
                    }
                });
            }
        });
        assert_eq!(cache.len(), 40);
        // Each of the 40 keys is parsed once, give or take concurrent first misses.
        assert!(parsed.load(std::sync::atomic::Ordering::Relaxed) <= 40 * 4);
        let (hits, misses) = cache.stats();
        assert_eq!(hits + misses, 8000);
    }

    /// Checks that `b` is one well-formed IMAP parenthesised value (strings, literals,
    /// NIL, numbers, nested lists).
    fn well_formed(b: &[u8]) -> bool {
        fn value(b: &[u8], mut p: usize) -> Option<usize> {
            match *b.get(p)? {
                b'(' => {
                    p += 1;
                    loop {
                        match *b.get(p)? {
                            b')' => return Some(p + 1),
                            b' ' if b.get(p + 1) != Some(&b')') && b.get(p + 1) != Some(&b' ') => {
                                p += 1
                            }
                            _ => p = value(b, p)?,
                        }
                    }
                }
                b'"' => {
                    p += 1;
                    loop {
                        match *b.get(p)? {
                            b'\\' => p += 2,
                            b'"' => return Some(p + 1),
                            b'\r' | b'\n' => return None,
                            c if c >= 0x80 || c == 0 => return None,
                            _ => p += 1,
                        }
                    }
                }
                b'{' => {
                    let close = p + b[p..].iter().position(|&c| c == b'}')?;
                    let n: usize = std::str::from_utf8(&b[p + 1..close]).ok()?.parse().ok()?;
                    if b.get(close + 1..close + 3)? != b"\r\n" {
                        return None;
                    }
                    let end = close + 3 + n;
                    if end > b.len() || b[close + 3..end].contains(&0) {
                        return None;
                    }
                    Some(end)
                }
                b'N' if b[p..].starts_with(b"NIL") => Some(p + 3),
                c if c.is_ascii_digit() => {
                    while b.get(p).is_some_and(|c| c.is_ascii_digit()) {
                        p += 1;
                    }
                    Some(p)
                }
                _ => None,
            }
        }
        value(b, 0) == Some(b.len())
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
}
