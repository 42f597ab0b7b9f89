//! [`Encoder`]: builds outgoing commands and responses.

use super::token::{encode_literal, encode_string, is_atom_safe, Token};

/// Builds outgoing commands and responses into a byte buffer.
///
/// Every method appends exactly what its name says and nothing else: separators
/// ([`Encoder::sp`]) and line endings ([`Encoder::crlf`]) are the caller's. Values
/// written with [`Encoder::string`], [`Encoder::literal`], [`Encoder::number`],
/// [`Encoder::nil`] and [`Encoder::token`] read back through the parser as the same
/// value. Literals are always non-synchronizing (`{n+}`), so a whole pipeline can be
/// written without waiting for continuations.
///
/// ```
/// use tern_sync::wire::Encoder;
/// let mut e = Encoder::new();
/// e.atom("A1").sp().atom("RENAME").sp().string("Sent Items").crlf();
/// assert_eq!(e.bytes(), b"A1 RENAME \"Sent Items\"\r\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The bytes written so far, giving up the encoder.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes were written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written (or since [`Encoder::clear`]).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets everything written, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Appends `s` verbatim: for response text, or a fixed piece such as `* OK`.
    /// The caller guarantees it contains no CR or LF (unless it means to end a line).
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// Appends one space.
    pub fn sp(&mut self) -> &mut Self {
        self.buf.push(b' ');
        self
    }

    /// Appends `s` as a bare atom. The caller guarantees it is atom-safe
    /// ([`crate::wire::is_atom_safe`]), checked in debug builds only: use it for tags,
    /// verbs, keywords, flags and codes, and [`Encoder::string`] for data.
    pub fn atom(&mut self, s: &str) -> &mut Self {
        debug_assert!(is_atom_safe(s), "not an atom: {s:?}");
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// Appends a number in decimal. Values above 2^63-1 read back as atoms.
    pub fn number(&mut self, n: u64) -> &mut Self {
        self.buf.extend_from_slice(n.to_string().as_bytes());
        self
    }

    /// Appends a string value in the shortest form that reads back as that text: a bare
    /// atom when it is atom-safe, non-empty, not `NIL` and not all digits; else quoted
    /// when it has no CR, LF or NUL and is at most 1,000 octets; else a `{n+}` literal.
    pub fn string(&mut self, s: &str) -> &mut Self {
        encode_string(s, &mut self.buf);
        self
    }

    /// Appends `bytes` as a non-synchronizing literal: `{n+}` CRLF, then the octets.
    pub fn literal(&mut self, bytes: &[u8]) -> &mut Self {
        encode_literal(bytes, &mut self.buf);
        self
    }

    /// Appends `NIL`.
    pub fn nil(&mut self) -> &mut Self {
        self.buf.extend_from_slice(b"NIL");
        self
    }

    /// Appends `(`; the caller writes [`Encoder::sp`] between the elements.
    pub fn open(&mut self) -> &mut Self {
        self.buf.push(b'(');
        self
    }

    /// Appends `)`.
    pub fn close(&mut self) -> &mut Self {
        self.buf.push(b')');
        self
    }

    /// Appends a token in its canonical encoding ([`Token::encode`]).
    pub fn token(&mut self, t: &Token) -> &mut Self {
        t.encode(&mut self.buf);
        self
    }

    /// Appends CRLF, ending the line.
    pub fn crlf(&mut self) -> &mut Self {
        self.buf.extend_from_slice(b"\r\n");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_command_with_list_and_literal() {
        let mut e = Encoder::new();
        e.atom("t1").sp().atom("UPDATE").sp().string("fred").sp();
        e.open().atom("\\Seen").sp().atom("$Junk").close().sp();
        e.literal(b"hi\r\n").sp().nil().sp().number(42).crlf();
        assert_eq!(
            e.bytes(),
            b"t1 UPDATE fred (\\Seen $Junk) {4+}\r\nhi\r\n NIL 42\r\n"
        );
        assert_eq!(e.len(), e.bytes().len());
        assert!(!e.is_empty());
        let copy = e.clone().into_bytes();
        e.clear();
        assert!(e.is_empty());
        assert!(copy.ends_with(b"42\r\n"));
    }

    #[test]
    fn raw_and_token() {
        let mut e = Encoder::new();
        e.raw("* OK [CAPABILITY TERNSYNC=1]")
            .sp()
            .raw("ready")
            .crlf();
        e.token(&Token::List(vec![Token::Str("a b".into()), Token::Nil]));
        assert_eq!(
            e.bytes(),
            b"* OK [CAPABILITY TERNSYNC=1] ready\r\n(\"a b\" NIL)"
        );
    }
}
