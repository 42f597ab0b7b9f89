//! Modified UTF-7 (RFC 3501 5.1.3): how IMAP4rev1 clients write non-ASCII mailbox names.
//!
//! Printable US-ASCII (0x20 to 0x7e) stands for itself, except `&`, written `&-`.
//! Every other character is written in UTF-16, encoded in a modified BASE64 (`,`
//! instead of `/`, no `=` padding) between `&` and `-`.
//!
//! [`decode`] is strict: it accepts exactly the strings [`encode`] produces, so that
//! `decode(encode(x)) == Ok(x)` for every `x` and `encode(decode(y)?) == y` for every
//! accepted `y`. One mailbox therefore has one spelling on the wire.

/// The modified BASE64 alphabet.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a string is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 at byte {position}: {reason}")]
pub struct Mutf7Error {
    /// Byte offset in the input where the problem was found.
    pub position: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

fn err(position: usize, reason: &'static str) -> Mutf7Error {
    Mutf7Error { position, reason }
}

/// True for the characters that represent themselves (printable US-ASCII).
fn is_direct(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

fn push_b64(out: &mut String, v: u32) {
    // `v & 63` is always a valid index into the 64-byte alphabet.
    out.push(char::from(B64[(v & 63) as usize]));
}

/// Writes the pending UTF-16 units as one `&...-` run and empties `units`.
fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for u in units.drain(..) {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            push_b64(out, acc >> bits);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        push_b64(out, acc << (6 - bits));
    }
    out.push('-');
}

/// Encodes a mailbox name in modified UTF-7.
///
/// Consecutive non-ASCII characters share one `&...-` run, as RFC 3501 requires.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + name.len() / 2);
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(u32::from(c)) {
            flush(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name.
///
/// Rejected: bytes outside printable US-ASCII, an `&` without its closing `-`, a
/// character outside the modified BASE64 alphabet inside a run, a run that is not the
/// shortest encoding of its UTF-16 text (extra characters, non-zero padding bits), a
/// run encoding printable US-ASCII (such as `&ACY-` for `&`), two runs in a row (which
/// must be one run), and invalid UTF-16 (unpaired surrogates).
pub fn decode(s: &str) -> Result<String, Mutf7Error> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Index just past the '-' closing the previous BASE64 run, to reject adjacent runs.
    let mut prev_run_end: Option<usize> = None;
    while let Some(&c) = bytes.get(i) {
        if c != b'&' {
            if !is_direct(u32::from(c)) {
                return Err(err(i, "character not allowed in modified UTF-7"));
            }
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let start = i;
        let rest = bytes.get(i + 1..).unwrap_or(&[]);
        let Some(len) = rest.iter().position(|&b| b == b'-') else {
            return Err(err(start, "unterminated '&' shift"));
        };
        let run = rest.get(..len).unwrap_or(&[]);
        i = start + 1 + len + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        if prev_run_end == Some(start) {
            return Err(err(start, "adjacent BASE64 runs must be merged"));
        }
        let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16 + 1);
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        for (k, &b) in run.iter().enumerate() {
            let Some(v) = b64_value(b) else {
                return Err(err(start + 1 + k, "invalid modified BASE64 character"));
            };
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                // Truncation keeps exactly the 16 bits just completed.
                units.push((acc >> bits) as u16);
                acc &= (1 << bits) - 1;
            }
        }
        if bits >= 6 {
            return Err(err(start, "BASE64 run longer than its UTF-16 text"));
        }
        if acc != 0 {
            return Err(err(start, "non-zero padding bits in BASE64 run"));
        }
        for r in char::decode_utf16(units.iter().copied()) {
            let Ok(ch) = r else {
                return Err(err(start, "invalid UTF-16 (unpaired surrogate)"));
            };
            if is_direct(u32::from(ch)) {
                return Err(err(start, "printable US-ASCII must not be BASE64-encoded"));
            }
            out.push(ch);
        }
        prev_run_end = Some(i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(plain: &str, wire: &str) {
        assert_eq!(encode(plain), wire, "encode {plain:?}");
        assert_eq!(decode(wire).as_deref(), Ok(plain), "decode {wire:?}");
    }

    #[test]
    fn ascii_is_unchanged() {
        both("INBOX", "INBOX");
        both("Sent Items", "Sent Items");
        both("", "");
        both("a~b/c.d%*", "a~b/c.d%*");
    }

    #[test]
    fn ampersand() {
        both("&", "&-");
        both("Tom & Jerry", "Tom &- Jerry");
        both("&&", "&-&-");
    }

    #[test]
    fn latin() {
        both("Entwürfe", "Entw&APw-rfe");
        both("Gelöschte Elemente", "Gel&APY-schte Elemente");
        both("äö", "&AOQA9g-");
        both("ä&", "&AOQ-&-");
        both("&ä", "&-&AOQ-");
    }

    #[test]
    fn cjk_rfc3501_example() {
        both("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        both("下書き", "&Tgtm+DBN-");
    }

    #[test]
    fn emoji_surrogate_pairs() {
        both("😀", "&2D3eAA-");
        both("a😀b", "a&2D3eAA-b");
        both("📁 Archive", "&2D3cwQ- Archive");
        // A surrogate pair next to a BMP character shares one run.
        both("é😀", "&AOnYPd4A-");
    }

    #[test]
    fn control_and_del_are_encoded() {
        both("\u{7f}", "&AH8-");
        both("a\tb", "a&AAk-b");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "&",          // unterminated
            "&AOQ",       // unterminated
            "abc&U,BTFw", // unterminated
            "&ACY-",      // '&' encoded
            "&AGE-",      // 'a' encoded
            "&AOQ-&APY-", // two runs in a row
            "&AOR-",      // non-zero padding bits
            "&AOQA-",     // extra character
            "&A-",        // too short for a UTF-16 unit
            "&AO-",       // too short for a UTF-16 unit
            "&2D0-",      // lone high surrogate
            "&3gA-",      // lone low surrogate
            "&AO=-",      // padding is not part of modified BASE64
            "&AO/-",      // '/' is ',' in modified BASE64
            "ä",          // raw 8-bit
            "a\tb",       // raw control
            "a\u{7f}",    // raw DEL
        ] {
            assert!(decode(bad).is_err(), "{bad:?} accepted: {:?}", decode(bad));
        }
    }

    #[test]
    fn error_position() {
        let e = decode("ab&AOQ-x&AO/-").unwrap_err();
        assert_eq!(e.position, 11);
        assert!(e.to_string().contains("BASE64"));
    }

    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn random_round_trips() {
        let mut st = 0x9e37_79b9_7f4a_7c15u64;
        let pool: Vec<char> = "a&-Z ~éü台北😀\u{1}\u{7f}\u{ffff}\u{10ffff}\u{d7ff}\u{e000}"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let n = (xorshift(&mut st) % 12) as usize;
            let s: String = (0..n)
                .map(|_| {
                    let r = xorshift(&mut st);
                    if r % 3 < 1 {
                        char::from_u32((r >> 8) as u32 % 0x11_0000).unwrap_or('x')
                    } else {
                        pool[(r >> 8) as usize % pool.len()]
                    }
                })
                .collect();
            let e = encode(&s);
            assert_eq!(decode(&e).as_deref(), Ok(s.as_str()), "{s:?} -> {e:?}");
        }
    }

    #[test]
    fn random_wire_strings_are_canonical_or_rejected() {
        let mut st = 0x1234_5678_9abc_def1u64;
        let alphabet = b"&-AOQUBTFwZeVnLIqe+,2D3eAAa/ =\x80";
        for _ in 0..100_000 {
            let n = (xorshift(&mut st) % 14) as usize;
            let bytes: Vec<u8> = (0..n)
                .map(|_| alphabet[(xorshift(&mut st) >> 8) as usize % alphabet.len()])
                .collect();
            let Ok(s) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(d) = decode(s) {
                assert_eq!(encode(&d), s, "{s:?} decoded to {d:?}");
            }
        }
    }
}
