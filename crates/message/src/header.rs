//! Header fields: splitting a header into fields by byte offset (keeping continuation
//! lines and malformed lines), finding a field, unfolding, and RFC 2047 decoding.

use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

/// One header field (with its continuation lines), as absolute byte offsets.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// First byte of the field line.
    pub start: usize,
    /// Field name `start..name_end` (empty for a line that is not a valid field).
    name_end: usize,
    /// First byte after the colon.
    value: usize,
    /// One past the field's last line ending (or the header end).
    pub end: usize,
    /// A well-formed `name:` line.
    pub valid: bool,
}

impl Field {
    /// The field name as written (empty for a malformed line).
    pub fn name<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.start..self.name_end]
    }

    /// A well-formed field called `name` (case-insensitive).
    pub fn is(&self, raw: &[u8], name: &[u8]) -> bool {
        self.valid && self.name(raw).eq_ignore_ascii_case(name)
    }

    /// The value bytes as stored (folded, with the final line ending).
    pub fn raw_value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.value..self.end]
    }
}

/// Where the body of the message in `raw` starts: just after the header's blank line
/// (a line ended by LF that holds nothing or only CR), as [`parse_header`] finds it;
/// `None` when `raw` holds no such line (the header runs to its end, or goes on past
/// what `raw` holds of it).
pub fn header_end(raw: &[u8]) -> Option<usize> {
    let mut line = 0;
    loop {
        let rest = raw.get(line..)?;
        match rest {
            [b'\n', ..] => return Some(line + 1),
            [b'\r', b'\n', ..] => return Some(line + 2),
            _ => line += memchr::memchr(b'\n', rest)? + 1,
        }
    }
}

/// Splits the header starting at `start` (bounded by `end`): returns its fields and
/// where the body starts (after the blank line; `end` if there is none).
pub fn parse_header(raw: &[u8], start: usize, end: usize) -> (Vec<Field>, usize) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < end {
        let next = match memchr::memchr(b'\n', &raw[pos..end]) {
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

/// The raw value of the first well-formed field called `name`.
pub fn first_field<'a>(raw: &'a [u8], fields: &[Field], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.is(raw, name.as_bytes()))
        .map(|f| f.raw_value(raw))
}

/// Unfolds a header value: drops CR and LF, trims surrounding blanks.
pub fn unfold(v: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect();
    trim(&v).to_vec()
}

/// `v` without leading and trailing blanks and line breaks.
pub fn trim(v: &[u8]) -> &[u8] {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `header_end` finds the body where `parse_header` does, and nothing where the
    /// header has no blank line ended by LF.
    #[test]
    fn header_end_agrees_with_parse_header() {
        let cases: &[&[u8]] = &[
            b"Subject: a\r\n\r\nbody",
            b"Subject: a\n\nbody",
            b"Subject: a\r\n  folded\r\nTo: b\r\n\r\n\r\nbody",
            b"\r\nbody only",
            b"\nbody only",
            b"Bad line\r\n\r\n",
            b"A: 1\r\r\nB: 2\r\n\r\n",
            b"A: 1\r\n\n",
        ];
        for raw in cases {
            let (_, body) = parse_header(raw, 0, raw.len());
            assert_eq!(
                header_end(raw),
                Some(body),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let open: &[&[u8]] = &[
            b"",
            b"Subject: a",
            b"Subject: a\r\n",
            b"A: 1\r\nB: 2\r",
            b"A: 1\n \n",
        ];
        for raw in open {
            assert_eq!(header_end(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
