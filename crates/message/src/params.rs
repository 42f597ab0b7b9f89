//! Structured MIME values, `value *(; attr=value)` with comments and quoted strings:
//! Content-Type (into a [`ContentType`]), Content-Disposition, and the parameters
//! BODYSTRUCTURE reports.

use crate::header::trim;

/// Removes comments and line breaks (unfolding), splits at `;` outside quoted strings.
pub(crate) fn split_params(v: &[u8]) -> Vec<Vec<u8>> {
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
            // Unfolding (RFC 5322 2.2.3) removes the line break of a folded quoted
            // string too: `boundary="foo<CRLF> bar"` is `foo bar`.
            if c == b'\r' || c == b'\n' {
                i += 1;
                continue;
            }
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
pub(crate) fn parse_structured(v: &[u8]) -> (Vec<u8>, Params) {
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

pub(crate) fn param<'a>(params: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

pub(crate) fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&c| c > 0x20 && c < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&c))
}

/// MIME parameters: (name as written, unquoted value).
type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// An effective content type: lower-case type and subtype, parameters as written.
#[derive(Debug, Clone)]
pub struct ContentType {
    /// The type, lower-case (`text`).
    pub ty: Vec<u8>,
    /// The subtype, lower-case (`plain`).
    pub sub: Vec<u8>,
    /// The parameters: name as written, value unquoted.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ContentType {
    pub(crate) fn text_plain() -> Self {
        ContentType {
            ty: b"text".to_vec(),
            sub: b"plain".to_vec(),
            params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
        }
    }

    pub(crate) fn message_rfc822() -> Self {
        ContentType {
            ty: b"message".to_vec(),
            sub: b"rfc822".to_vec(),
            params: Vec::new(),
        }
    }

    pub(crate) fn octet_stream() -> Self {
        ContentType {
            ty: b"application".to_vec(),
            sub: b"octet-stream".to_vec(),
            params: Vec::new(),
        }
    }

    /// message/rfc822 or message/global: an encapsulated message.
    pub fn is_message(&self) -> bool {
        self.ty == b"message" && (self.sub == b"rfc822" || self.sub == b"global")
    }

    pub(crate) fn parse(v: &[u8]) -> Option<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_quoted_parameters_are_unfolded() {
        let (head, params) =
            parse_structured(b" multipart/mixed;\r\n boundary=\"foo\r\n bar\"; x=\"a\\\"b\"\r\n");
        assert_eq!(head, b"multipart/mixed");
        assert_eq!(param(&params, "BOUNDARY"), Some(&b"foo bar"[..]));
        assert_eq!(param(&params, "x"), Some(&b"a\"b"[..]));
    }
}
