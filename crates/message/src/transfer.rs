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
/// is. Multipart and message parts are returned as stored.
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
        _ => Ok(Some(raw[target.body_start..target.end].to_vec())),
    }
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
}
