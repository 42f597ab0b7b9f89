//! The IMAP command parser, in two layers.
//!
//! 1. **Command assembly** ([`CommandReader`]): pure, no I/O. The session feeds it the
//!    bytes it has read; it finds where a command ends (a command may span several
//!    lines joined by literals), tells the session when a synchronizing literal needs a
//!    `+` continuation, and enforces size limits while keeping the stream in step
//!    (an over-long line or an over-size non-synchronizing literal is read to its end
//!    and thrown away, never buffered).
//! 2. **Grammar** ([`parse_command`]): turns one complete command into a
//!    [`Command`](crate::types::Command), or a [`ParseError`] that carries the tag when
//!    one could be read, so the server can answer `tag BAD ...` rather than `* BAD ...`.
//!
//! Neither layer panics on any input, and neither recurses without bound.
//!
//! # Where things are
//!
//! - `reader.rs`: [`CommandReader`], its [`Limits`], [`Event`]s and [`Rejection`]s;
//!   `announce.rs`: recognising a literal announcement at the end of a line.
//! - `lexer.rs`: the grammar's cursor and its tokens (atoms, numbers, strings, literals,
//!   sequence sets, flags); `datetime.rs`: dates and date-times.
//! - The grammar of the commands, by family: `commands.rs` (the dispatch on the command
//!   name, and the commands of no larger family), `mailbox.rs` (mailbox names, SELECT,
//!   CREATE, LIST, STATUS), `message.rs` (APPEND, STORE, COPY, MOVE), `search.rs`
//!   (SEARCH, SORT, THREAD) and `fetch.rs` (FETCH items and body sections).
//! - This file: [`parse_command`], its [`ParseError`], and the limits and charsets it
//!   applies.

mod announce;
mod commands;
mod datetime;
mod fetch;
mod lexer;
mod mailbox;
mod message;
mod metadata;
mod notify;
mod reader;
mod search;
#[cfg(test)]
mod test_util;
mod urlauth;

pub use reader::{CommandReader, Event, Limits, Rejection};

use crate::types::Command;
use lexer::{fail_with, is_tag_char, Charset, P};

/// What kind of error a [`ParseError`] is, to choose the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Malformed command: answer `BAD`.
    Syntax,
    /// Well-formed tag, unknown command name: answer `BAD`.
    UnknownCommand,
    /// SEARCH/SORT/THREAD with a charset the parser cannot decode: answer
    /// `NO [BADCHARSET (US-ASCII UTF-8)]` (RFC 3501 6.4.4).
    BadCharset,
    /// SEARCH/SORT/THREAD with more than [`MAX_SEARCH_KEYS`] keys: answer
    /// `NO [LIMIT]` (RFC 5530).
    TooComplex,
    /// A well-formed astring that is no valid mailbox name (not modified UTF-7, or a
    /// control character): answer `NO [CANNOT]`, since BAD is for protocol errors
    /// (RFC 3501 7.1.3).
    BadName,
}

/// A command that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The tag, when the command started with a valid one followed by a space (or by
    /// nothing): answer `tag BAD ...`; otherwise answer `* BAD ...`.
    pub tag: Option<String>,
    /// Short human-readable explanation, printable ASCII only (safe to echo).
    pub message: String,
    /// Which response fits.
    pub kind: ParseErrorKind,
}

/// Charsets [`parse_command`] decodes in SEARCH, SORT and THREAD strings.
pub const SEARCH_CHARSETS: &[&str] = &["US-ASCII", "UTF-8", "ISO-8859-1"];

/// Nesting limit for SEARCH keys (parentheses, NOT, OR).
pub const MAX_SEARCH_DEPTH: usize = 64;

/// Most search keys (each key, NOT, OR and parenthesised list counts one) in one
/// SEARCH, SORT or THREAD. Clients send a handful; a thousand ORed BODY keys are an
/// attack on the CPU (each distinct word is one text index query), refused before any
/// work is done.
pub const MAX_SEARCH_KEYS: usize = 1000;

/// Parses a section spec as written inside `BODY[...]` (`1.2.MIME`, `HEADER.FIELDS
/// (FROM TO)`, or empty for the whole message), as IMAP URLs carry it (RFC 5092
/// `;SECTION=`). `None` when it is not exactly one valid section.
pub fn parse_section(text: &str) -> Option<crate::types::Section> {
    let framed = format!("[{text}]");
    let mut p = P {
        s: framed.as_bytes(),
        pos: 0,
        utf8_names: true,
        charset: Charset::Utf8,
    };
    let section = p.section().ok()?;
    (p.pos == framed.len()).then_some(section)
}

/// Parses one complete command, as assembled by [`CommandReader`]: `tag SP command`,
/// literals embedded (`{n}` CRLF n bytes), with or without a final CRLF (or LF).
///
/// `utf8_names`: the client enabled UTF8=ACCEPT (RFC 6855), so mailbox names are
/// UTF-8 as written; otherwise they are decoded from modified UTF-7
/// ([`mutf7`](crate::mutf7)). Either way `INBOX` in any case becomes `INBOX`, and
/// names with control characters are refused (RFC 9051 5.1).
///
/// Keywords are case-insensitive; capability, mechanism, charset, quota resource and
/// LIST option names are returned upper-cased. A parenthesised SEARCH list of one key
/// is that key; several keys in a row (or in parentheses) are `SearchKey::And`.
pub fn parse_command(bytes: &[u8], utf8_names: bool) -> Result<Command, ParseError> {
    let mut p = P {
        s: bytes,
        pos: 0,
        utf8_names,
        charset: Charset::Utf8,
    };
    let tag = p.take_while(is_tag_char);
    let tag_ok = !tag.is_empty() && matches!(p.peek(), None | Some(b' ' | b'\r' | b'\n'));
    if !tag_ok {
        let empty = matches!(bytes, b"" | b"\r\n" | b"\n");
        return Err(ParseError {
            tag: None,
            message: if empty {
                "empty command".into()
            } else {
                "missing or invalid tag".into()
            },
            kind: ParseErrorKind::Syntax,
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let result = p.sp().and_then(|()| p.command()).and_then(|body| {
        // A final line ending is tolerated (it is checked here, after the command, so
        // that it cannot be confused with the CRLF of a literal announcement).
        if matches!(p.s.get(p.pos..), Some(b"" | b"\r\n" | b"\n")) {
            Ok(body)
        } else {
            fail_with(
                "unexpected text after command",
                p.s.get(p.pos..).unwrap_or(&[]),
            )
        }
    });
    match result {
        Ok(body) => Ok(Command { tag, body }),
        Err(f) => Err(ParseError {
            tag: Some(tag),
            message: f.msg.into_owned(),
            kind: f.kind,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;

    #[test]
    fn errors_carry_tag() {
        let e = bad("a1 FROB");
        assert_eq!(e.tag.as_deref(), Some("a1"));
        assert_eq!(e.kind, ParseErrorKind::UnknownCommand);
        assert_eq!(e.to_string(), "unknown command FROB");
        let e = bad("a2 NOOP extra");
        assert_eq!(
            (e.tag.as_deref(), e.kind),
            (Some("a2"), ParseErrorKind::Syntax)
        );
        assert_eq!(bad("a3").tag.as_deref(), Some("a3"));
        assert_eq!(bad("a4 ").tag.as_deref(), Some("a4"));
        assert_eq!(bad("+ NOOP").tag, None);
        assert_eq!(bad("* NOOP").tag, None);
        assert_eq!(bad("a{ NOOP").tag, None);
        assert_eq!(bad("").tag, None);
        assert_eq!(bad("  NOOP").tag, None);
        assert_eq!(bad("a  NOOP").tag.as_deref(), Some("a"));
        // Messages never echo control characters.
        let e = bad("t FROB\x1b[2J");
        assert!(
            e.message.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{:?}",
            e.message
        );
    }

    #[test]
    fn bare_utf8_is_answered_with_how_to_send_it() {
        // Seen from the `imap` crate: `SEARCH CHARSET UTF-8 SUBJECT Grüße` sent bare.
        for cmd in [
            "a1 SEARCH CHARSET UTF-8 SUBJECT Grüße",
            "a2 SEARCH SUBJECT Grüße",
            "a3 SELECT Ärger",
        ] {
            let e = bad(cmd);
            assert_eq!(e.kind, ParseErrorKind::Syntax, "{cmd}");
            assert!(
                e.message.contains("quoted string or a literal"),
                "{cmd}: {}",
                e.message
            );
        }
        // Quoted, the same text is a search string.
        ok("a4 SEARCH CHARSET UTF-8 SUBJECT \"Grüße\"");
    }

    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    const TOKENS: &[&[u8]] = &[
        b" ",
        b"(",
        b")",
        b"[",
        b"]",
        b"<",
        b">",
        b".",
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"+",
        b"~",
        b"*",
        b"$",
        b":",
        b",",
        b"%",
        b"&",
        b"-",
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"0",
        b"1",
        b"9",
        b"4294967296",
        b"{3}\r\n",
        b"{0+}\r\n",
        b"{99999999999999999999}\r\n",
        b"~{2}\r\n",
        b"NIL",
        b"NOT ",
        b"OR ",
        b"UID ",
        b"BODY[",
        b"HEADER.FIELDS (",
        b"\xc3\xa9",
        b"\xff",
        b"&AOQ-",
        b"SEARCH ",
        b"FETCH ",
        b"a ",
        b"INBOX",
    ];

    fn mutate(st: &mut u64, base: &[u8]) -> Vec<u8> {
        let mut m = base.to_vec();
        let edits = 1 + xorshift(st) % 4;
        for _ in 0..edits {
            let r = xorshift(st);
            let at = if m.is_empty() {
                0
            } else {
                (r >> 8) as usize % (m.len() + 1)
            };
            match r % 6 {
                0 if !m.is_empty() => {
                    let i = at.min(m.len() - 1);
                    m[i] = (xorshift(st) >> 16) as u8;
                }
                1 => m.truncate(at),
                2 => {
                    let t = TOKENS[(xorshift(st) >> 8) as usize % TOKENS.len()];
                    m.splice(at..at, t.iter().copied());
                }
                3 if at < m.len() => {
                    let end = (at + 1 + (xorshift(st) % 8) as usize).min(m.len());
                    m.drain(at..end);
                }
                4 => {
                    let c = corpus();
                    let other = c[(xorshift(st) >> 8) as usize % c.len()];
                    let from = (xorshift(st) as usize) % (other.len() + 1);
                    m.splice(at..at, other[from..].iter().copied());
                }
                _ => {
                    let end = (at + (xorshift(st) % 16) as usize).min(m.len());
                    let dup = m[at.min(end)..end].to_vec();
                    m.splice(at..at, dup);
                }
            }
        }
        m
    }

    fn random_bytes(st: &mut u64) -> Vec<u8> {
        let n = (xorshift(st) % 80) as usize;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = xorshift(st);
            if r % 3 < 1 {
                out.push((r >> 8) as u8);
            } else {
                out.extend_from_slice(TOKENS[(r >> 8) as usize % TOKENS.len()]);
            }
        }
        out
    }

    /// Runs one input through both layers with small limits and random chunking,
    /// checking the reader's invariants.
    fn exercise(st: &mut u64, input: &[u8]) {
        let _ = parse_command(input, false);
        let _ = parse_command(input, true);
        let limits = Limits {
            max_line: 40,
            max_literal: 16,
            max_nonsync_literal: 8,
            max_command: 60,
            max_discard: 1000,
        };
        let mut r = CommandReader::new(limits);
        let mut rest = input;
        while !rest.is_empty() {
            let want = 1 + (xorshift(st) % 24) as usize;
            let piece = &rest[..want.min(rest.len())];
            let (n, ev) = r.feed(piece);
            assert!(n <= piece.len());
            assert!(r.buf.len() <= limits.max_command);
            assert!(r.text_len <= limits.max_line);
            match ev {
                Event::NeedMore => assert_eq!(n, piece.len()),
                Event::Command(c) => {
                    assert!(n > 0);
                    let _ = parse_command(&c, false);
                    let _ = parse_command(&c, true);
                }
                Event::Continue { .. } => {
                    assert!(n > 0);
                    if xorshift(st) & 3 == 0 {
                        assert!(r.refuse());
                    }
                }
                Event::Rejected { .. } | Event::Fatal { .. } => assert!(n > 0),
            }
            rest = &rest[n..];
        }
    }

    #[test]
    fn no_panic_on_random_and_mutated_input() {
        let mut st = 0x2545_f491_4f6c_dd1du64;
        let corpus = corpus();
        for i in 0..300_000u32 {
            let input = if i % 3 == 0 {
                random_bytes(&mut st)
            } else {
                let base = corpus[(xorshift(&mut st) >> 8) as usize % corpus.len()];
                mutate(&mut st, base)
            };
            exercise(&mut st, &input);
        }
        for c in &corpus {
            exercise(&mut st, c);
            for cut in 0..=c.len() {
                let _ = parse_command(&c[..cut], false);
            }
        }
    }
}
