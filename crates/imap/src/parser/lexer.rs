//! The grammar's tokens: the cursor [`P`] over one command and its readers of atoms,
//! numbers, quoted strings, literals (embedded after their `{n}` CRLF announcement),
//! astrings, sequence sets and flags; the character classes of RFC 9051's grammar; and
//! the internal error ([`Fail`]) that [`parse_command`](super::parse_command) turns
//! into a [`ParseError`](super::ParseError).

use std::borrow::Cow;

use super::ParseErrorKind;
use crate::types::{SeqNum, SeqRange, SequenceSet};

#[derive(Debug)]
pub(super) struct Fail {
    pub(super) msg: Cow<'static, str>,
    pub(super) kind: ParseErrorKind,
}

pub(super) type R<T> = Result<T, Fail>;

pub(super) fn fail<T>(msg: &'static str) -> R<T> {
    Err(Fail {
        msg: Cow::Borrowed(msg),
        kind: ParseErrorKind::Syntax,
    })
}

/// Printable, short rendering of client text for error messages.
pub(super) fn shown(bytes: &[u8]) -> String {
    let mut s: String = bytes
        .iter()
        .take(32)
        .map(|&b| {
            if (0x21..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > 32 {
        s.push_str("...");
    }
    s
}

pub(super) fn fail_with<T>(what: &str, bytes: &[u8]) -> R<T> {
    Err(Fail {
        msg: Cow::Owned(format!("{what}: {}", shown(bytes))),
        kind: ParseErrorKind::Syntax,
    })
}

/// Bytes that may appear in a tag: ASTRING-CHAR except `+`.
pub(super) fn is_tag_char(c: u8) -> bool {
    is_astring_char(c) && c != b'+'
}

fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

pub(super) fn is_list_char(c: u8) -> bool {
    is_atom_char(c) || matches!(c, b'%' | b'*' | b']')
}

pub(super) fn upper(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Charset {
    Utf8,
    Latin1,
}

/// The grammar's cursor over one command: the bytes, the position, and the settings
/// that change how tokens decode.
pub(super) struct P<'a> {
    pub(super) s: &'a [u8],
    pub(super) pos: usize,
    pub(super) utf8_names: bool,
    pub(super) charset: Charset,
}

impl<'a> P<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.pos.saturating_add(ahead)).copied()
    }

    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, c: u8, msg: &'static str) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            fail(msg)
        }
    }

    pub(super) fn sp(&mut self) -> R<()> {
        self.expect(b' ', "expected a space")
    }

    pub(super) fn open(&mut self) -> R<()> {
        self.expect(b'(', "expected '('")
    }

    pub(super) fn close(&mut self) -> R<()> {
        self.expect(b')', "expected ')'")
    }

    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        let rest = self.s.get(start..).unwrap_or(&[]);
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos = start + n;
        rest.get(..n).unwrap_or(&[])
    }

    pub(super) fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        self.no_8bit_after_atom()?;
        if a.is_empty() {
            return fail("expected an atom");
        }
        Ok(a)
    }

    /// Fails when an atom stops at a byte above 0x7f. Atoms are ASCII (RFC 3501 9,
    /// RFC 9051 9, also under UTF8=ACCEPT); a client that sends UTF-8 text bare (a
    /// search string, a mailbox name) is told how to send it, rather than that text
    /// follows the command.
    fn no_8bit_after_atom(&self) -> R<()> {
        if self.peek().is_some_and(|c| c >= 0x80) {
            return fail("8-bit text in an atom: send it as a quoted string or a literal");
        }
        Ok(())
    }

    /// An atom, upper-cased (keywords, names of things).
    pub(super) fn keyword(&mut self) -> R<String> {
        Ok(upper(self.atom()?))
    }

    /// True if the next atom is `kw` (case-insensitive); consumes nothing.
    pub(super) fn next_is(&self, kw: &str) -> bool {
        let rest = self.s.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| !is_atom_char(b))
            .unwrap_or(rest.len());
        rest.get(..n)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
    }

    pub(super) fn digits(&mut self) -> R<&'a [u8]> {
        let d = self.take_while(|c| c.is_ascii_digit());
        if d.is_empty() {
            return fail("expected a number");
        }
        Ok(d)
    }

    pub(super) fn number64(&mut self) -> R<u64> {
        let d = self.digits()?;
        let mut v: u64 = 0;
        for &c in d {
            v = match v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
            {
                Some(v) => v,
                None => return fail("number too large"),
            };
        }
        Ok(v)
    }

    pub(super) fn number(&mut self) -> R<u32> {
        let v = self.number64()?;
        u32::try_from(v).or_else(|_| fail("number too large"))
    }

    pub(super) fn nz_number(&mut self) -> R<u32> {
        if self.peek() == Some(b'0') {
            return fail("expected a non-zero number");
        }
        self.number()
    }

    pub(super) fn nz_number64(&mut self) -> R<u64> {
        if self.peek() == Some(b'0') {
            return fail("expected a non-zero number");
        }
        self.number64()
    }

    /// mod-sequence-value / mod-sequence-valzer: 0 to 2^63-1.
    pub(super) fn modseq(&mut self) -> R<u64> {
        let v = self.number64()?;
        if v > i64::MAX as u64 {
            return fail("mod-sequence too large");
        }
        Ok(v)
    }

    pub(super) fn quoted(&mut self) -> R<Cow<'a, [u8]>> {
        self.expect(b'"', "expected '\"'")?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let Some(c) = self.peek() else {
                return fail("unterminated quoted string");
            };
            self.pos += 1;
            match c {
                b'"' => {
                    return Ok(match owned {
                        Some(v) => Cow::Owned(v),
                        None => Cow::Borrowed(self.s.get(start..self.pos - 1).unwrap_or(&[])),
                    });
                }
                b'\\' => {
                    let Some(e @ (b'"' | b'\\')) = self.peek() else {
                        return fail("bad escape in quoted string");
                    };
                    self.pos += 1;
                    let v = owned.get_or_insert_with(|| {
                        self.s.get(start..self.pos - 2).unwrap_or(&[]).to_vec()
                    });
                    v.push(e);
                }
                b'\r' | b'\n' | 0 => return fail("CR, LF or NUL in quoted string"),
                _ => {
                    if let Some(v) = owned.as_mut() {
                        v.push(c);
                    }
                }
            }
        }
    }

    /// `{n}` / `{n+}` (and `~{...}` when `binary_ok`) CRLF and n bytes. Returns the
    /// bytes and whether it was a literal8.
    pub(super) fn literal(&mut self, binary_ok: bool) -> R<(&'a [u8], bool)> {
        let binary = self.peek() == Some(b'~');
        if binary {
            if !binary_ok {
                return fail("literal8 not allowed here");
            }
            self.pos += 1;
        }
        self.expect(b'{', "expected a literal")?;
        let n = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "expected '}' in literal")?;
        self.eat(b'\r');
        self.expect(b'\n', "expected CRLF after literal announcement")?;
        let start = self.pos;
        let data = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .and_then(|end| self.s.get(start..end));
        let Some(data) = data else {
            return fail("literal shorter than announced");
        };
        self.pos = start + data.len();
        Ok((data, binary))
    }

    pub(super) fn string(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(Cow::Borrowed(self.literal(false)?.0)),
            _ => fail("expected a string"),
        }
    }

    pub(super) fn astring(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                self.no_8bit_after_atom()?;
                if a.is_empty() {
                    return fail("expected an atom or string");
                }
                Ok(Cow::Borrowed(a))
            }
        }
    }

    pub(super) fn nstring(&mut self) -> R<Option<Cow<'a, [u8]>>> {
        if self.next_is("NIL") {
            self.pos += 3;
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// An astring as UTF-8 text.
    pub(super) fn text(&mut self) -> R<String> {
        let raw = self.astring()?;
        utf8(raw)
    }

    /// A search string decoded with the command's charset.
    pub(super) fn search_text(&mut self) -> R<String> {
        let raw = self.astring()?;
        match self.charset {
            Charset::Utf8 => utf8(raw),
            Charset::Latin1 => Ok(raw.iter().map(|&b| char::from(b)).collect()),
        }
    }

    pub(super) fn set_charset(&mut self, name: &str) -> R<()> {
        self.charset = match name {
            "UTF-8" | "US-ASCII" => Charset::Utf8,
            "ISO-8859-1" => Charset::Latin1,
            _ => {
                return Err(Fail {
                    msg: Cow::Owned(format!("unsupported charset {}", shown(name.as_bytes()))),
                    kind: ParseErrorKind::BadCharset,
                })
            }
        };
        Ok(())
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        Ok(SeqNum::Value(self.nz_number()?))
    }

    pub(super) fn sequence_set(&mut self) -> R<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let start = self.seq_num()?;
            let end = if self.eat(b':') {
                self.seq_num()?
            } else {
                start
            };
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet::Ranges(ranges))
    }

    /// A sequence set of known numbers: no `*`, no `$` (QRESYNC).
    pub(super) fn known_set(&mut self) -> R<SequenceSet> {
        let set = self.sequence_set()?;
        match &set {
            SequenceSet::Saved => fail("'$' not allowed here"),
            SequenceSet::Ranges(r)
                if r.iter()
                    .any(|r| r.start == SeqNum::Star || r.end == SeqNum::Star) =>
            {
                fail("'*' not allowed here")
            }
            SequenceSet::Ranges(_) => Ok(set),
        }
    }

    pub(super) fn flag(&mut self) -> R<String> {
        let backslash = self.eat(b'\\');
        let a = self.atom()?;
        let mut s = String::with_capacity(a.len() + 1);
        if backslash {
            s.push('\\');
        }
        s.push_str(&String::from_utf8_lossy(a));
        Ok(s)
    }

    /// `(` [flag *(SP flag)] `)`
    pub(super) fn flag_list(&mut self) -> R<Vec<String>> {
        self.open()?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }
}

pub(super) fn utf8(raw: Cow<'_, [u8]>) -> R<String> {
    match String::from_utf8(raw.into_owned()) {
        Ok(s) => Ok(s),
        Err(_) => fail("string is not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;
    use crate::types::CommandBody;

    #[test]
    fn sequence_sets() {
        let CommandBody::Copy { set, mailbox, uid } = ok("A003 COPY 2:4 MEETING") else {
            panic!()
        };
        assert_eq!((uid, mailbox.as_str()), (false, "MEETING"));
        assert_eq!(set, ranges(&[rng(v(2), v(4))]));
        let CommandBody::Copy { set, .. } = ok("A003 COPY 4:2,*,7:*,*:1,4294967295 X") else {
            panic!()
        };
        assert_eq!(
            set,
            ranges(&[
                rng(v(4), v(2)),
                rng(SeqNum::Star, SeqNum::Star),
                rng(v(7), SeqNum::Star),
                rng(SeqNum::Star, v(1)),
                one(u32::MAX),
            ])
        );
        assert_eq!(
            ok("a UID MOVE $ Trash"),
            CommandBody::Move {
                uid: true,
                set: SequenceSet::Saved,
                mailbox: s("Trash")
            }
        );
        assert_eq!(
            ok("a MOVE 1 \"Deleted Items\""),
            CommandBody::Move {
                uid: false,
                set: ranges(&[one(1)]),
                mailbox: s("Deleted Items")
            }
        );
        bad("a COPY 1: x");
        bad("a COPY :1 x");
        bad("a COPY 1,,2 x");
        bad("a COPY 1 2 x");
        bad("a COPY $,1 x");
        bad("a COPY 1");
        bad("a UID FROB 1");
        bad("a UID");
    }
}
