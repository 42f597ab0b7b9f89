//! Wire encoders for IMAP strings: `string` (quoted when possible, else a literal),
//! `nstring` and `astring`, shared by every response that carries client-visible text.

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

/// Turns every NUL of `bytes` into 0x80: IMAP strings and non-binary literals cannot
/// carry NUL, and masking (as Dovecot does) keeps the announced length right where
/// dropping would not. NUL is rare, so it is found with memchr's vector search.
pub fn mask_nul(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(i) = memchr::memchr(0, &bytes[at..]) {
        bytes[at + i] = 0x80;
        at += i + 1;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
