//! Content-Transfer-Encoding: a part's content with its encoding removed (lenient
//! base64 and quoted-printable), and [`UnknownEncoding`] for the others. IMAP's
//! BINARY (RFC 3516) and the full-text indexer read parts through this.

use std::fmt;

use crate::header::{first_field, trim, Field};
use crate::params::split_params;
use crate::subject::skip_wsp;
use crate::tree::{parse_tree, resolve, Kind, Part};

/// The Content-Transfer-Encoding of a part, lower-cased, without comments; `None`
/// when absent or empty (7bit).
pub fn encoding_of(raw: &[u8], fields: &[Field]) -> Option<Vec<u8>> {
    first_field(raw, fields, "content-transfer-encoding")
        .map(|v| trim(&split_params(v)[0]).to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

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

/// The content of the leaf `part` with its transfer encoding removed.
pub fn transfer_decode(raw: &[u8], part: &Part) -> Result<Vec<u8>, UnknownEncoding> {
    let body = &raw[part.body_start..part.end];
    match encoding_of(raw, &part.fields).as_deref() {
        None | Some(b"7bit") | Some(b"8bit") | Some(b"binary") => Ok(body.to_vec()),
        Some(b"base64") => Ok(decode_base64(body)),
        Some(b"quoted-printable") => Ok(decode_qp(body)),
        Some(other) => Err(UnknownEncoding(String::from_utf8_lossy(other).into_owned())),
    }
}

/// The content of the part at MIME part numbers `part` (IMAP's section numbering)
/// with its Content-Transfer-Encoding removed: what `BINARY[part]` (RFC 3516) sends.
/// `Ok(None)` when the part does not exist; an empty `part` is the whole message as
/// is. For a multipart or an encapsulated message, every leaf inside is decoded and
/// its Content-Transfer-Encoding field made to say `binary` (as Dovecot's BINARY does;
/// RFC 3516 leaves it open), everything else as stored.
pub fn decoded_part(raw: &[u8], part: &[u32]) -> Result<Option<Vec<u8>>, UnknownEncoding> {
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
        _ => {
            let mut out = Vec::with_capacity(target.end - target.body_start);
            write_body(raw, target, Headers::SayBinary, &mut out);
            Ok(Some(out))
        }
    }
}

/// The whole message with the content of every leaf part decoded as in
/// [`decoded_part`], each part's header left as stored: the entity whose structure RFC
/// 5524's BODYPARTSTRUCTURE describes when BINARY is asked for too (decoded sizes and
/// line counts; the encodings named are the stored ones, as Dovecot reports them).
pub fn with_leaves_decoded(raw: &[u8]) -> Vec<u8> {
    let root = parse_tree(raw);
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[root.start..root.body_start]);
    write_body(raw, &root, Headers::AsStored, &mut out);
    out
}

/// What happens to the header of a leaf part whose content is decoded.
#[derive(Clone, Copy, PartialEq)]
enum Headers {
    /// Its Content-Transfer-Encoding field says `binary` (what BINARY of a multipart
    /// or encapsulated message sends: the result is a valid MIME entity again).
    SayBinary,
    /// Left as stored.
    AsStored,
}

/// Appends the body of `part` with every leaf inside decoded; boundaries, preambles
/// and epilogues as stored. A leaf whose encoding tern cannot undo stays as stored,
/// with its header, so that it still says what it holds.
fn write_body(raw: &[u8], part: &Part, headers: Headers, out: &mut Vec<u8>) {
    match &part.kind {
        Kind::Leaf => match transfer_decode(raw, part) {
            Ok(decoded) => out.extend_from_slice(&decoded),
            Err(_) => out.extend_from_slice(&raw[part.body_start..part.end]),
        },
        Kind::Multipart(children) => {
            let mut at = part.body_start;
            for child in children {
                out.extend_from_slice(&raw[at..child.start]);
                write_entity(raw, child, headers, out);
                at = child.end;
            }
            out.extend_from_slice(&raw[at..part.end]);
        }
        Kind::Message(inner) => {
            out.extend_from_slice(&raw[part.body_start..inner.start]);
            write_entity(raw, inner, headers, out);
            out.extend_from_slice(&raw[inner.end..part.end]);
        }
    }
}

/// Appends `part`'s header (see [`Headers`]) and its body as [`write_body`] does.
fn write_entity(raw: &[u8], part: &Part, headers: Headers, out: &mut Vec<u8>) {
    let decodes = matches!(part.kind, Kind::Leaf)
        && matches!(
            encoding_of(raw, &part.fields).as_deref(),
            Some(b"base64") | Some(b"quoted-printable")
        );
    if headers == Headers::SayBinary && decodes {
        let mut at = part.start;
        for field in part
            .fields
            .iter()
            .filter(|f| f.is(raw, b"content-transfer-encoding"))
        {
            out.extend_from_slice(&raw[at..field.start]);
            out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
            at = field.end;
        }
        out.extend_from_slice(&raw[at..part.body_start]);
    } else {
        out.extend_from_slice(&raw[part.start..part.body_start]);
    }
    write_body(raw, part, headers, out);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const NESTED: &[u8] = b"Content-Type: multipart/mixed; boundary=o\r\n\r\npre\r\n--o\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\
Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n\
--i\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n\
--i\r\nContent-Transfer-Encoding: Quoted-Printable\r\nX-A: b\r\n\r\na=3Db\r\n\
--i--\r\nepi\r\n--o--\r\n";

    /// BINARY of an encapsulated message: each leaf decoded and saying so in its
    /// header; one that cannot be decoded, and everything between parts, as stored.
    #[test]
    fn an_entity_is_sent_with_its_leaves_decoded() {
        let inner = decoded_part(NESTED, &[1]).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(inner).unwrap(),
            "Subject: in\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhello\r\n\
--i\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n\
--i\r\nContent-Transfer-Encoding: binary\r\nX-A: b\r\n\r\na=b\r\n\
--i--\r\nepi"
        );
        // A leaf is still its decoded content alone.
        assert_eq!(decoded_part(NESTED, &[1, 1]).unwrap().unwrap(), b"hello");
        assert_eq!(
            decoded_part(NESTED, &[1, 2]),
            Err(UnknownEncoding("x-uuencode".into()))
        );
    }

    /// The entity BODYPARTSTRUCTURE describes under BINARY: contents decoded, every
    /// header as stored.
    #[test]
    fn with_leaves_decoded_keeps_every_header() {
        let all = String::from_utf8(with_leaves_decoded(NESTED)).unwrap();
        assert!(all.contains("Content-Transfer-Encoding: base64\r\n\r\nhello\r\n--i"));
        assert!(all
            .contains("Content-Transfer-Encoding: Quoted-Printable\r\nX-A: b\r\n\r\na=b\r\n--i--"));
        assert!(all.starts_with("Content-Type: multipart/mixed; boundary=o\r\n\r\npre\r\n--o\r\n"));
        assert!(all.ends_with("--i--\r\nepi\r\n--o--\r\n"));
        // Nothing to decode: the message as stored.
        let plain = b"Subject: x\r\n\r\nbody\r\n";
        assert_eq!(with_leaves_decoded(plain), plain);
    }
}
