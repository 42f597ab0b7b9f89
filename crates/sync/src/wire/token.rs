//! [`Token`], the protocol's values, and the character classes of the grammar.

/// The longest value [`Token::encode`] and [`crate::wire::Encoder::string`] send as a
/// quoted string; longer ones go as literals (`docs/replication.md`, section 2).
pub(crate) const MAX_QUOTED: usize = 1000;

/// One value of the grammar (`docs/replication.md`, section 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `1*ATOM-CHAR`: ASCII only, never `NIL` in any case, never digits alone that fit
    /// 63 bits (those parse as [`Token::Nil`] and [`Token::Number`]).
    Atom(String),
    /// Digits whose value is at most 2^63-1. A larger value is written as digits but
    /// reads back as a [`Token::Atom`].
    Number(u64),
    /// A quoted string: valid UTF-8 without CR, LF or NUL when parsed.
    Str(String),
    /// A literal's octets, whatever they are.
    Literal(Vec<u8>),
    /// `NIL`.
    Nil,
    /// A parenthesized list.
    List(Vec<Token>),
}

impl Token {
    /// The text of a [`Token::Atom`]; `None` for anything else.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Token::Atom(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a [`Token::Number`]; `None` for anything else.
    pub fn as_number(&self) -> Option<u64> {
        match self {
            Token::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The text of an atom, a quoted string, or a literal that is valid UTF-8; `None`
    /// otherwise (numbers included: ask [`Token::as_number`]).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Token::Atom(s) | Token::Str(s) => Some(s),
            Token::Literal(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The octets of an atom, a quoted string or a literal; `None` otherwise.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(s) | Token::Str(s) => Some(s.as_bytes()),
            Token::Literal(b) => Some(b),
            _ => None,
        }
    }

    /// The elements of a [`Token::List`]; `None` for anything else.
    pub fn as_list(&self) -> Option<&[Token]> {
        match self {
            Token::List(l) => Some(l),
            _ => None,
        }
    }

    /// True for [`Token::Nil`] only.
    pub fn is_nil(&self) -> bool {
        matches!(self, Token::Nil)
    }

    /// Appends the token's canonical encoding to `out`, which the parser reads back as
    /// the same value: an atom verbatim (so an `Atom("NIL")` or `Atom("12")` built by
    /// hand reads back as `Nil` or `Number`; an atom that is not [`is_atom_safe`] is
    /// sent as a string instead), a number in decimal, a string as
    /// [`crate::wire::Encoder::string`] chooses (it may read back as an atom or a
    /// literal with the same text), a literal always as `{n+}` (non-synchronizing), a
    /// list as `(a b c)`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Lists are written with an explicit stack, so that no nesting depth can
        // overflow the call stack.
        let mut stack: Vec<std::slice::Iter<'_, Token>> = Vec::new();
        let mut current = std::slice::from_ref(self).iter();
        let mut first = true;
        loop {
            let Some(token) = current.next() else {
                match stack.pop() {
                    Some(outer) => {
                        out.push(b')');
                        current = outer;
                        first = false;
                        continue;
                    }
                    None => return,
                }
            };
            if !first && !stack.is_empty() {
                out.push(b' ');
            }
            first = false;
            match token {
                Token::Atom(s) if is_atom_safe(s) => out.extend_from_slice(s.as_bytes()),
                Token::Atom(s) | Token::Str(s) => encode_string(s, out),
                Token::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Token::Literal(b) => encode_literal(b, out),
                Token::Nil => out.extend_from_slice(b"NIL"),
                Token::List(items) => {
                    out.push(b'(');
                    stack.push(std::mem::replace(&mut current, items.iter()));
                    first = true;
                }
            }
        }
    }
}

/// True for IMAP's ATOM-CHAR plus `\`: any 7-bit character except `(` `)` `{` SP,
/// controls, `%` `*` `"` and `]`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b']')
}

/// True for a character that may appear in a tag: an atom character other than `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_atom_char(b) && b != b'+'
}

/// True when `s` can be sent as a bare atom: non-empty and made only of atom
/// characters (`\` included). Says nothing about how it reads back: `NIL` and digits
/// are atom-safe but parse as [`Token::Nil`] and [`Token::Number`].
pub fn is_atom_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_atom_char)
}

/// What an atom-safe run of characters reads as: `NIL`, a number, or an atom.
pub(crate) fn classify_atom(s: &str) -> Token {
    if s.eq_ignore_ascii_case("NIL") {
        return Token::Nil;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.parse::<i64>() {
            // Digits only, so never negative.
            return Token::Number(n.unsigned_abs());
        }
    }
    Token::Atom(s.to_owned())
}

/// Writes a string value: a bare atom when it reads back as that atom, else quoted
/// when short and free of CR, LF and NUL, else a `{n+}` literal.
pub(crate) fn encode_string(s: &str, out: &mut Vec<u8>) {
    if is_atom_safe(s) && matches!(classify_atom(s), Token::Atom(_)) {
        out.extend_from_slice(s.as_bytes());
    } else if s.len() <= MAX_QUOTED && !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        encode_literal(s.as_bytes(), out);
    }
}

/// Writes a non-synchronizing literal `{n+}` CRLF octets.
pub(crate) fn encode_literal(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"+}\r\n");
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: &Token) -> String {
        let mut out = Vec::new();
        t.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn atom_chars_follow_imap_plus_backslash() {
        assert!(is_atom_safe("\\Seen"));
        assert!(is_atom_safe("TERNSYNC=1"));
        assert!(is_atom_safe("LITERAL+"));
        assert!(is_atom_safe("a/b:c,d.e-f$g[h"));
        for bad in [
            "", "a b", "a(", "a)", "{", "a%", "a*", "\"", "a]", "é", "a\tb",
        ] {
            assert!(!is_atom_safe(bad), "{bad:?}");
        }
        assert!(is_tag_char(b'a') && !is_tag_char(b'+'));
    }

    #[test]
    fn classify_numbers_and_nil() {
        assert_eq!(classify_atom("nIl"), Token::Nil);
        assert_eq!(classify_atom("0"), Token::Number(0));
        assert_eq!(
            classify_atom("9223372036854775807"),
            Token::Number(i64::MAX as u64)
        );
        assert_eq!(
            classify_atom("9223372036854775808"),
            Token::Atom("9223372036854775808".into())
        );
        assert_eq!(classify_atom("12a"), Token::Atom("12a".into()));
    }

    #[test]
    fn strings_choose_atom_quoted_or_literal() {
        assert_eq!(enc(&Token::Str("INBOX".into())), "INBOX");
        assert_eq!(enc(&Token::Str("NIL".into())), "\"NIL\"");
        assert_eq!(enc(&Token::Str("42".into())), "\"42\"");
        assert_eq!(enc(&Token::Str("".into())), "\"\"");
        assert_eq!(
            enc(&Token::Str("a \"b\" \\c".into())),
            "\"a \\\"b\\\" \\\\c\""
        );
        assert_eq!(enc(&Token::Str("a\r\nb".into())), "{4+}\r\na\r\nb");
        let long = "x ".repeat(501);
        assert!(enc(&Token::Str(long)).starts_with("{1002+}\r\n"));
        assert_eq!(enc(&Token::Str("x".repeat(999) + " ")).len(), 1002);
        assert_eq!(enc(&Token::Str("x".repeat(1000) + " ")).len(), 1010);
    }

    #[test]
    fn lists_and_other_tokens() {
        let t = Token::List(vec![
            Token::Atom("\\Seen".into()),
            Token::Number(7),
            Token::Nil,
            Token::List(vec![]),
            Token::List(vec![
                Token::Literal(b"ab".to_vec()),
                Token::Str("x y".into()),
            ]),
        ]);
        assert_eq!(enc(&t), "(\\Seen 7 NIL () ({2+}\r\nab \"x y\"))");
        // An atom that is not atom-safe still encodes to something parseable.
        assert_eq!(enc(&Token::Atom("a b".into())), "\"a b\"");
    }

    #[test]
    fn accessors() {
        let lit = Token::Literal(b"abc".to_vec());
        assert_eq!(lit.as_str(), Some("abc"));
        assert_eq!(Token::Literal(vec![0xff]).as_str(), None);
        assert_eq!(Token::Number(3).as_str(), None);
        assert_eq!(Token::Number(3).as_number(), Some(3));
        assert_eq!(Token::Atom("a".into()).as_bytes(), Some(&b"a"[..]));
        assert_eq!(Token::Str("a".into()).as_atom(), None);
        assert!(Token::Nil.is_nil() && !Token::Atom("NIL".into()).is_nil());
        assert_eq!(
            Token::List(vec![Token::Nil]).as_list(),
            Some(&[Token::Nil][..])
        );
    }
}
