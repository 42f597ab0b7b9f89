//! Helpers shared by the MIME unit tests (the messages are `tern_message::fixtures`).

use crate::types::{Section, SectionText};

pub(super) fn sec(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

pub(super) fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks that `b` is one well-formed IMAP parenthesised value (strings, literals,
/// NIL, numbers, nested lists).
pub(super) fn well_formed(b: &[u8]) -> bool {
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
