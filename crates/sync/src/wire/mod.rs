//! The replication protocol's wire layer: IMAP-style tokens (`docs/replication.md`,
//! section 2), read from a byte stream and written to a buffer.
//!
//! Three layers, each in its own module:
//!
//! * [`LineReader`] cuts the stream into *logical lines*: the text of a line plus every
//!   literal it announces, read with their bounds ([`Limits`]) enforced. It knows nothing
//!   of the grammar beyond "a line ending in `{n}` or `{n+}` is followed by `n` octets".
//! * [`parse_command`] and [`parse_response`] turn a [`Line`] into a [`Command`] or a
//!   [`Response`] made of [`Token`]s.
//! * [`Encoder`] (and [`Token::encode`]) write tokens so that the parser reads back what
//!   was meant; [`encode_uid_set`] / [`parse_uid_set`] handle uid sets.
//!
//! # Pitfalls this module handles
//!
//! * **Synchronizing literals.** A peer that sends `{n}` waits for a `+` continuation
//!   before sending the octets. The reader therefore asks its caller
//!   (`on_sync_literal`) *before* reading them; a refusal, or a literal over a bound,
//!   ends the line there with [`WireError::TooBig`] and the octets are never read (the
//!   peer, answered `BAD` instead of `+`, does not send them).
//! * **Non-synchronizing literals** (`{n+}`, LITERAL+) arrive whether or not we want
//!   them. One over a bound is read and thrown away in chunks, and so is the rest of its
//!   logical line, so that the next line is read in step; only then is
//!   [`WireError::TooBig`] returned.
//! * **A line over `max_line`** cannot be skipped safely (we would have to guess where
//!   the next command starts): [`WireError::LineTooLong`] is fatal, the connection is
//!   closed with `* BYE`.
//! * **`\` in atoms.** IMAP's ATOM-CHAR excludes `\`; this protocol allows it, so that
//!   flags such as `\Seen` are plain atoms.
//! * **Numbers and `NIL` are atoms on the wire.** An atom of digits up to 2^63-1 reads as
//!   [`Token::Number`], `NIL` in any case as [`Token::Nil`]; the [`Encoder`] therefore
//!   never writes a *string* value as a bare atom when it would read back as one of them.

#![deny(missing_docs)]

mod encoder;
mod message;
mod parse;
mod reader;
mod token;
mod uidset;

#[cfg(test)]
mod tests;

pub use encoder::Encoder;
pub use message::{parse_command, parse_response, Code, Command, Response, Status};
pub use reader::{Line, LineReader};
pub use token::{is_atom_safe, Token};
pub use uidset::{encode_uid_set, parse_uid_set};

/// Bounds on what one logical line may hold (`docs/replication.md`, section 2,
/// "Bounds"). The reader never holds more than these allow; see each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Octets of one line of text between literals, not counting its line ending.
    /// Exceeding it is fatal ([`WireError::LineTooLong`]).
    pub max_line: usize,
    /// Octets of one literal.
    pub max_literal: u64,
    /// Octets of all literals of one logical line together, plus the text of its
    /// continuation lines (the text after each literal), so that a line made of many
    /// small pieces is bounded too.
    pub max_literals_total: u64,
    /// Nesting depth of parenthesized lists (a list directly among a command's
    /// arguments is at depth 1).
    pub max_depth: usize,
    /// Tokens of one logical line, a list counting as one token besides its elements.
    /// Literals are counted while reading, so a line of many empty literals is bounded.
    pub max_tokens: usize,
    /// What to do with a non-synchronizing literal over a bound: read and discard it
    /// (`true`, after authentication: the peer is trusted to be in step), or stop at
    /// once with the fatal [`WireError::LiteralRefused`] (`false`, before
    /// authentication, where nobody gets to make the server read 256 MiB).
    pub skip_oversized: bool,
}

impl Limits {
    /// The bounds before authentication: short lines, no literals at all.
    pub fn unauthenticated() -> Limits {
        Limits {
            max_line: 8 * 1024,
            max_literal: 0,
            max_literals_total: 0,
            max_depth: 2,
            max_tokens: 32,
            skip_oversized: false,
        }
    }
}

impl Default for Limits {
    /// The protocol's defaults: 256 KiB lines, 64 MiB literals, 256 MiB of literals per
    /// command, lists 8 deep, 100,000 tokens.
    fn default() -> Self {
        Limits {
            max_line: 256 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_literals_total: 256 * 1024 * 1024,
            max_depth: 8,
            max_tokens: 100_000,
            skip_oversized: true,
        }
    }
}

/// Why a line could not be read or parsed. [`WireError::is_fatal`] says whether the
/// stream can still be used.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The underlying stream failed, or ended in the middle of a logical line
    /// (`ErrorKind::UnexpectedEof`). Fatal.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A line of text exceeded [`Limits::max_line`]. Fatal: the stream cannot be
    /// resynchronised, answer `* BYE` and close.
    #[error("line too long")]
    LineTooLong,
    /// A bound on literals, tokens or nesting was exceeded. Recoverable: the rest of the
    /// logical line, literals included, was consumed (or, for a refused synchronizing
    /// literal, will never be sent), so the next read starts at the next line. Answer
    /// `tag BAD [TOOBIG]`.
    #[error("line too big{}", tag_suffix(.tag))]
    TooBig {
        /// The line's tag, when it began with one.
        tag: Option<String>,
    },
    /// The line does not follow the grammar. Recoverable: the whole logical line was
    /// consumed. Answer `tag BAD`.
    #[error("syntax error{}: {reason}", tag_suffix(.tag))]
    Syntax {
        /// The line's tag, when it began with one.
        tag: Option<String>,
        /// What was wrong, for a person.
        reason: String,
    },
    /// A non-synchronizing literal over a bound arrived where
    /// [`Limits::skip_oversized`] is off. Fatal: answer `* BYE` and close.
    #[error("literal refused{}", tag_suffix(.tag))]
    LiteralRefused {
        /// The line's tag, when it began with one.
        tag: Option<String>,
    },
    /// The stream ended cleanly between two lines.
    #[error("end of stream")]
    Eof,
}

impl WireError {
    /// True when the stream must not be read further: [`WireError::Io`],
    /// [`WireError::LineTooLong`] and [`WireError::Eof`].
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WireError::Io(_)
                | WireError::LineTooLong
                | WireError::LiteralRefused { .. }
                | WireError::Eof
        )
    }

    /// The tag of the line the error is about, for [`WireError::TooBig`] and
    /// [`WireError::Syntax`] when the line began with one.
    pub fn tag(&self) -> Option<&str> {
        match self {
            WireError::TooBig { tag } | WireError::Syntax { tag, .. } => tag.as_deref(),
            _ => None,
        }
    }

    /// Builds a [`WireError::Syntax`].
    pub(crate) fn syntax(tag: Option<String>, reason: impl Into<String>) -> WireError {
        WireError::Syntax {
            tag,
            reason: reason.into(),
        }
    }
}

fn tag_suffix(tag: &Option<String>) -> String {
    match tag {
        Some(t) => format!(" (tag {t})"),
        None => String::new(),
    }
}
