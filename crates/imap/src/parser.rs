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

use std::borrow::Cow;

use crate::mutf7;
use crate::types::{
    Command, CommandBody, Date, DateTime, FetchAttr, Qresync, SearchKey, SearchReturn, Section,
    SectionText, SeqNum, SeqRange, SequenceSet, SortCriterion, SortKey, StatusItem, StoreOp,
    ThreadAlgorithm,
};

// ======================================================================================
// Layer a: command assembly
// ======================================================================================

/// Size limits enforced by [`CommandReader`].
///
/// "Non-literal bytes" are the command's own text: every line of it without its line
/// ending, plus two bytes for each line that ends in a literal announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most non-literal bytes one command may have (over all its lines).
    pub max_line: usize,
    /// Largest synchronizing literal (`{n}`, `~{n}`) accepted.
    pub max_literal: usize,
    /// Largest non-synchronizing literal (`{n+}`, `~{n+}`) accepted. Equal to
    /// `max_literal` with LITERAL+; 4096 when the server announces LITERAL- (RFC 7888).
    pub max_nonsync_literal: usize,
    /// Most bytes one assembled command may have, literals included.
    pub max_command: usize,
    /// Largest refused non-synchronizing literal the reader will read and throw away to
    /// stay in step. Beyond this the stream is abandoned ([`Event::Fatal`]).
    pub max_discard: u64,
}

impl Default for Limits {
    /// 64 KiB of command text, 64 MiB literals, 64 MiB + 64 KiB per command, and up to
    /// 1 GiB read and discarded for a refused non-synchronizing literal.
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_nonsync_literal: 64 * 1024 * 1024,
            max_command: 64 * 1024 * 1024 + 64 * 1024,
            max_discard: 1024 * 1024 * 1024,
        }
    }
}

/// Why [`CommandReader`] refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The command's text (outside literals) exceeded [`Limits::max_line`].
    LineTooLong,
    /// A literal exceeded [`Limits::max_literal`] (or, for a non-synchronizing one,
    /// [`Limits::max_nonsync_literal`]). Answer `tag NO [TOOBIG]` or `tag BAD [TOOBIG]`.
    LiteralTooBig {
        /// The announced size (saturated at `u64::MAX` if the client wrote more).
        size: u64,
        /// The literal was synchronizing (`{n}`): the client has not sent it.
        synchronizing: bool,
    },
    /// The literals together (with the text) exceeded [`Limits::max_command`].
    CommandTooBig,
}

/// What [`CommandReader::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every byte given was consumed; feed more.
    NeedMore,
    /// A synchronizing literal (`{n}` or `~{n}`) within the limits was announced: the
    /// client waits. The session must now either write a continuation request
    /// (`+ Ready\r\n`) and keep feeding, or call [`CommandReader::refuse`] and answer
    /// the tag with `NO`/`BAD` (the client then abandons the command).
    Continue {
        /// The command's tag, if its first line started with a valid one.
        tag: Option<String>,
        /// Announced literal size.
        size: u64,
        /// `~{n}` (RFC 3516 literal8).
        binary: bool,
    },
    /// A complete command: its lines without the final line ending, each literal
    /// announcement followed by CRLF and the literal's bytes. Input for
    /// [`parse_command`].
    Command(Vec<u8>),
    /// The command was refused ([`Rejection`]) and all of it has been consumed and
    /// discarded; the reader is ready for the next command. Answer the tag (or `*` when
    /// there is none) with `BAD` or `NO [TOOBIG]`.
    Rejected {
        /// The command's tag, if its first line started with a valid one.
        tag: Option<String>,
        /// Why.
        reason: Rejection,
    },
    /// A non-synchronizing literal larger than [`Limits::max_discard`] was announced:
    /// the stream cannot economically be kept in step. Answer (e.g.
    /// `* BYE [TOOBIG]`) and close the connection; the reader swallows everything
    /// from now on.
    Fatal {
        /// The command's tag, if its first line started with a valid one.
        tag: Option<String>,
        /// Why.
        reason: Rejection,
    },
}

/// A literal announcement at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announce {
    size: u64,
    binary: bool,
    nonsync: bool,
}

/// Streaming recogniser of a literal announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`)
/// ending a line. It is fed every byte of a line before its LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Scan {
    #[default]
    Other,
    Tilde,
    Digits {
        binary: bool,
        size: u64,
        any: bool,
    },
    Plus {
        binary: bool,
        size: u64,
    },
    Close(Announce),
    CloseCr(Announce),
}

impl Scan {
    fn step(self, b: u8) -> Scan {
        match (self, b) {
            (Scan::Tilde, b'{') => Scan::Digits {
                binary: true,
                size: 0,
                any: false,
            },
            (_, b'{') => Scan::Digits {
                binary: false,
                size: 0,
                any: false,
            },
            (_, b'~') => Scan::Tilde,
            (Scan::Digits { binary, size, .. }, b'0'..=b'9') => Scan::Digits {
                binary,
                size: size.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                any: true,
            },
            (
                Scan::Digits {
                    binary,
                    size,
                    any: true,
                },
                b'+',
            ) => Scan::Plus { binary, size },
            (
                Scan::Digits {
                    binary,
                    size,
                    any: true,
                },
                b'}',
            ) => Scan::Close(Announce {
                size,
                binary,
                nonsync: false,
            }),
            (Scan::Plus { binary, size }, b'}') => Scan::Close(Announce {
                size,
                binary,
                nonsync: true,
            }),
            (Scan::Close(a), b'\r') => Scan::CloseCr(a),
            _ => Scan::Other,
        }
    }

    fn announce(self) -> Option<Announce> {
        match self {
            Scan::Close(a) | Scan::CloseCr(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading command text.
    Line,
    /// Copying literal bytes into the command.
    Literal { remaining: u64 },
    /// Throwing away the rest of a refused command's line.
    DiscardLine {
        tag: Option<String>,
        reason: Rejection,
    },
    /// Throwing away a refused command's non-synchronizing literal.
    DiscardLiteral {
        remaining: u64,
        tag: Option<String>,
        reason: Rejection,
    },
    /// Gave up after [`Event::Fatal`].
    Failed,
}

/// Assembles IMAP commands from a byte stream, within [`Limits`].
///
/// # Contract
///
/// * [`feed`](Self::feed) takes whatever bytes the session has and returns how many it
///   consumed and an [`Event`]. With [`Event::NeedMore`] it consumed all of them; with
///   any other event it consumed only up to the end of what the event is about, and
///   the session must feed the rest again after acting on the event (pipelined
///   commands). Any event other than `NeedMore` consumes at least one byte.
/// * Feeding an empty slice returns `(0, NeedMore)` (use this to detect nothing; EOF
///   is the session's business: if it happens while [`in_command`](Self::in_command)
///   is true, the client disconnected mid-command).
/// * Lines end with LF; a CR before it is removed. A bare LF is accepted.
/// * A line ending with `{n}`, `{n+}`, `~{n}` or `~{n+}` announces a literal: the next
///   `n` bytes belong to the command whatever they are, and the command continues
///   after them. In the assembled command the announcement is followed by CRLF.
/// * Limits: a command whose text exceeds `max_line` is read to the end of the line
///   (skipping any non-synchronizing literal announced there and continuing to the next
///   line end) and then reported as [`Event::Rejected`]. A synchronizing literal over
///   the limits is reported at once (the client sends nothing until it gets `+`); a
///   non-synchronizing one is read and thrown away with the rest of its command, then
///   reported. Nothing beyond the limits is ever buffered.
/// * After [`Event::Continue`] the session sends `+ ...` and feeds on, or calls
///   [`refuse`](Self::refuse) (for instance to refuse literals before authentication);
///   the refused command is dropped and the next line starts a new command.
/// * Lines that are not commands (`DONE` after IDLE, SASL responses after
///   AUTHENTICATE) come out as [`Event::Command`] too: neither can end in `}`.
/// * An empty line comes out as `Command(vec![])`.
///
/// # Example
///
/// ```text
/// loop {
///     let buf = stream.fill_buf().await?;
///     if buf.is_empty() { return Ok(()) }                // EOF
///     let (used, event) = reader.feed(buf);
///     stream.consume(used);
///     match event {
///         Event::NeedMore => {}
///         Event::Continue { .. } => send("+ Ready\r\n").await?,
///         Event::Command(bytes) => match parse_command(&bytes, utf8) { ... },
///         Event::Rejected { tag, reason } => send_tagged(tag, "NO [TOOBIG] ...").await?,
///         Event::Fatal { .. } => { send("* BYE [TOOBIG] ...").await?; return Ok(()) }
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CommandReader {
    limits: Limits,
    state: State,
    buf: Vec<u8>,
    /// Non-literal bytes in `buf`.
    text_len: usize,
    /// A CR ended the previous input inside a line; it is command text unless an LF
    /// follows.
    pending_cr: bool,
    scan: Scan,
    /// [`Event::Continue`] was the last event: [`refuse`](Self::refuse) is possible.
    sync_pending: bool,
}

/// Bytes that may appear in a tag: ASTRING-CHAR except `+`.
fn is_tag_char(c: u8) -> bool {
    is_astring_char(c) && c != b'+'
}

/// The tag at the start of `line`, if it starts with `tag SP`.
fn extract_tag(line: &[u8]) -> Option<String> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let tag = line.get(..sp)?;
    if tag.is_empty() || !tag.iter().all(|&b| is_tag_char(b)) {
        return None;
    }
    Some(String::from_utf8_lossy(tag).into_owned())
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl CommandReader {
    /// A reader enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        CommandReader {
            limits,
            state: State::Line,
            buf: Vec::new(),
            text_len: 0,
            pending_cr: false,
            scan: Scan::Other,
            sync_pending: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (for instance after authentication); they apply from the next
    /// byte fed.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// True while part of a command has been consumed (or is being discarded) and its
    /// end has not been reached.
    pub fn in_command(&self) -> bool {
        self.state != State::Line || !self.buf.is_empty() || self.pending_cr
    }

    /// Forgets any partial command (for instance after STARTTLS, where bytes read
    /// before the handshake must not be used).
    pub fn reset(&mut self) {
        self.start_command();
        self.state = State::Line;
    }

    /// Refuses the synchronizing literal just announced by [`Event::Continue`]: the
    /// command is dropped and the next line starts a new command. Returns false (and
    /// does nothing) if the last event was not `Continue`.
    pub fn refuse(&mut self) -> bool {
        if !self.sync_pending {
            return false;
        }
        self.reset();
        true
    }

    fn start_command(&mut self) {
        self.buf = Vec::new();
        self.text_len = 0;
        self.pending_cr = false;
        self.scan = Scan::Other;
        self.sync_pending = false;
    }

    fn tag(&self) -> Option<String> {
        extract_tag(&self.buf)
    }

    /// Refuses the command being assembled; `extra` is the text not yet buffered (to
    /// find a tag that straddles the buffer's end).
    fn refuse_current(&mut self, extra: &[u8], reason: Rejection) -> (Option<String>, Rejection) {
        let mut head: Vec<u8> = self.buf.iter().copied().take(256).collect();
        if head.len() < 256 {
            let room = 256 - head.len();
            head.extend(extra.iter().copied().take(room));
        }
        let tag = extract_tag(&head);
        self.buf = Vec::new();
        self.text_len = 0;
        self.pending_cr = false;
        (tag, reason)
    }

    /// Feeds bytes; see the type's documentation for the contract.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Event) {
        if input.is_empty() {
            return (0, Event::NeedMore);
        }
        self.sync_pending = false;
        let mut pos = 0usize;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                return (pos, Event::NeedMore);
            }
            match std::mem::replace(&mut self.state, State::Line) {
                State::Failed => {
                    self.state = State::Failed;
                    return (input.len(), Event::NeedMore);
                }
                State::Literal { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    self.buf.extend_from_slice(rest.get(..n).unwrap_or(&[]));
                    pos += n;
                    let left = remaining - to_u64(n);
                    self.state = if left == 0 {
                        State::Line
                    } else {
                        State::Literal { remaining: left }
                    };
                }
                State::DiscardLiteral {
                    remaining,
                    tag,
                    reason,
                } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    pos += n;
                    let left = remaining - to_u64(n);
                    self.state = if left == 0 {
                        State::DiscardLine { tag, reason }
                    } else {
                        State::DiscardLiteral {
                            remaining: left,
                            tag,
                            reason,
                        }
                    };
                }
                State::DiscardLine { tag, reason } => {
                    let (chunk, eol) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (rest.get(..i).unwrap_or(&[]), true),
                        None => (rest, false),
                    };
                    for &b in chunk {
                        self.scan = self.scan.step(b);
                    }
                    pos += chunk.len();
                    if !eol {
                        self.state = State::DiscardLine { tag, reason };
                        continue;
                    }
                    pos += 1;
                    let announce = std::mem::take(&mut self.scan).announce();
                    match announce {
                        Some(a) if a.nonsync => {
                            if a.size > self.limits.max_discard {
                                self.state = State::Failed;
                                return (pos, Event::Fatal { tag, reason });
                            }
                            self.state = if a.size == 0 {
                                State::DiscardLine { tag, reason }
                            } else {
                                State::DiscardLiteral {
                                    remaining: a.size,
                                    tag,
                                    reason,
                                }
                            };
                        }
                        _ => {
                            self.start_command();
                            return (pos, Event::Rejected { tag, reason });
                        }
                    }
                }
                State::Line => {
                    let (chunk, eol) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (rest.get(..i).unwrap_or(&[]), true),
                        None => (rest, false),
                    };
                    for &b in chunk {
                        self.scan = self.scan.step(b);
                    }
                    // Work out which bytes are command text, holding back a CR that may
                    // turn out to precede the LF.
                    let mut content = chunk;
                    let mut lead_cr = std::mem::take(&mut self.pending_cr);
                    if eol {
                        if let Some(s) = content.strip_suffix(b"\r") {
                            content = s;
                        } else if content.is_empty() {
                            lead_cr = false;
                        }
                    } else if let Some(s) = content.strip_suffix(b"\r") {
                        content = s;
                        self.pending_cr = true;
                    }
                    let add = content.len() + usize::from(lead_cr);
                    pos += chunk.len();
                    let too_long = self.text_len.saturating_add(add) > self.limits.max_line;
                    let too_big = self.buf.len().saturating_add(add) > self.limits.max_command;
                    if too_long || too_big {
                        let reason = if too_long {
                            Rejection::LineTooLong
                        } else {
                            Rejection::CommandTooBig
                        };
                        let (tag, reason) = self.refuse_current(content, reason);
                        // DiscardLine sees the LF (if any) next, with the scan so far.
                        self.state = State::DiscardLine { tag, reason };
                        continue;
                    }
                    if lead_cr {
                        self.buf.push(b'\r');
                    }
                    self.buf.extend_from_slice(content);
                    self.text_len += add;
                    if !eol {
                        self.state = State::Line;
                        continue;
                    }
                    pos += 1;
                    let announce = std::mem::take(&mut self.scan).announce();
                    let Some(a) = announce else {
                        let cmd = std::mem::take(&mut self.buf);
                        self.start_command();
                        return (pos, Event::Command(cmd));
                    };
                    if let Some(ev) = self.literal_announced(a) {
                        return (pos, ev);
                    }
                }
            }
        }
    }

    /// Handles a literal announced at the end of an accepted line (already buffered).
    /// Returns the event to report now, if any.
    fn literal_announced(&mut self, a: Announce) -> Option<Event> {
        let limit = if a.nonsync {
            self.limits.max_nonsync_literal
        } else {
            self.limits.max_literal
        };
        let reason = if a.size > to_u64(limit) {
            Some(Rejection::LiteralTooBig {
                size: a.size,
                synchronizing: !a.nonsync,
            })
        } else if self.text_len.saturating_add(2) > self.limits.max_line {
            Some(Rejection::LineTooLong)
        } else if to_u64(self.buf.len())
            .saturating_add(2)
            .saturating_add(a.size)
            > to_u64(self.limits.max_command)
        {
            Some(Rejection::CommandTooBig)
        } else {
            None
        };
        if let Some(reason) = reason {
            let (tag, reason) = self.refuse_current(&[], reason);
            if !a.nonsync {
                self.start_command();
                self.state = State::Line;
                return Some(Event::Rejected { tag, reason });
            }
            if a.size > self.limits.max_discard {
                self.state = State::Failed;
                return Some(Event::Fatal { tag, reason });
            }
            self.state = if a.size == 0 {
                State::DiscardLine { tag, reason }
            } else {
                State::DiscardLiteral {
                    remaining: a.size,
                    tag,
                    reason,
                }
            };
            return None;
        }
        self.buf.extend_from_slice(b"\r\n");
        self.text_len += 2;
        self.state = if a.size == 0 {
            State::Line
        } else {
            State::Literal { remaining: a.size }
        };
        if a.nonsync {
            return None;
        }
        self.sync_pending = true;
        Some(Event::Continue {
            tag: self.tag(),
            size: a.size,
            binary: a.binary,
        })
    }
}

// ======================================================================================
// Layer b: grammar
// ======================================================================================

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

#[derive(Debug)]
struct Fail {
    msg: Cow<'static, str>,
    kind: ParseErrorKind,
}

type R<T> = Result<T, Fail>;

fn fail<T>(msg: &'static str) -> R<T> {
    Err(Fail {
        msg: Cow::Borrowed(msg),
        kind: ParseErrorKind::Syntax,
    })
}

/// Printable, short rendering of client text for error messages.
fn shown(bytes: &[u8]) -> String {
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

fn fail_with<T>(what: &str, bytes: &[u8]) -> R<T> {
    Err(Fail {
        msg: Cow::Owned(format!("{what}: {}", shown(bytes))),
        kind: ParseErrorKind::Syntax,
    })
}

fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

fn is_list_char(c: u8) -> bool {
    is_atom_char(c) || matches!(c, b'%' | b'*' | b']')
}

fn upper(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

/// RFC 9051 5.1: no C0/C1 controls, DEL, LINE or PARAGRAPH SEPARATOR in names.
fn valid_name_chars(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&[u8; 3]; 12] = [
    b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC",
];

struct P<'a> {
    s: &'a [u8],
    pos: usize,
    utf8_names: bool,
    charset: Charset,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.pos.saturating_add(ahead)).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, msg: &'static str) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            fail(msg)
        }
    }

    fn sp(&mut self) -> R<()> {
        self.expect(b' ', "expected a space")
    }

    fn open(&mut self) -> R<()> {
        self.expect(b'(', "expected '('")
    }

    fn close(&mut self) -> R<()> {
        self.expect(b')', "expected ')'")
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        let rest = self.s.get(start..).unwrap_or(&[]);
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos = start + n;
        rest.get(..n).unwrap_or(&[])
    }

    fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return fail("expected an atom");
        }
        Ok(a)
    }

    /// An atom, upper-cased (keywords, names of things).
    fn keyword(&mut self) -> R<String> {
        Ok(upper(self.atom()?))
    }

    /// True if the next atom is `kw` (case-insensitive); consumes nothing.
    fn next_is(&self, kw: &str) -> bool {
        let rest = self.s.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| !is_atom_char(b))
            .unwrap_or(rest.len());
        rest.get(..n)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
    }

    fn digits(&mut self) -> R<&'a [u8]> {
        let d = self.take_while(|c| c.is_ascii_digit());
        if d.is_empty() {
            return fail("expected a number");
        }
        Ok(d)
    }

    fn number64(&mut self) -> R<u64> {
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

    fn number(&mut self) -> R<u32> {
        let v = self.number64()?;
        u32::try_from(v).or_else(|_| fail("number too large"))
    }

    fn nz_number(&mut self) -> R<u32> {
        if self.peek() == Some(b'0') {
            return fail("expected a non-zero number");
        }
        self.number()
    }

    fn nz_number64(&mut self) -> R<u64> {
        if self.peek() == Some(b'0') {
            return fail("expected a non-zero number");
        }
        self.number64()
    }

    /// mod-sequence-value / mod-sequence-valzer: 0 to 2^63-1.
    fn modseq(&mut self) -> R<u64> {
        let v = self.number64()?;
        if v > i64::MAX as u64 {
            return fail("mod-sequence too large");
        }
        Ok(v)
    }

    fn quoted(&mut self) -> R<Cow<'a, [u8]>> {
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
    fn literal(&mut self, binary_ok: bool) -> R<(&'a [u8], bool)> {
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

    fn string(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(Cow::Borrowed(self.literal(false)?.0)),
            _ => fail("expected a string"),
        }
    }

    fn astring(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return fail("expected an atom or string");
                }
                Ok(Cow::Borrowed(a))
            }
        }
    }

    fn nstring(&mut self) -> R<Option<Cow<'a, [u8]>>> {
        if self.next_is("NIL") {
            self.pos += 3;
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// An astring as UTF-8 text.
    fn text(&mut self) -> R<String> {
        let raw = self.astring()?;
        utf8(raw)
    }

    /// A search string decoded with the command's charset.
    fn search_text(&mut self) -> R<String> {
        let raw = self.astring()?;
        match self.charset {
            Charset::Utf8 => utf8(raw),
            Charset::Latin1 => Ok(raw.iter().map(|&b| char::from(b)).collect()),
        }
    }

    fn set_charset(&mut self, name: &str) -> R<()> {
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

    /// Decodes a mailbox name or pattern (mUTF-7 unless UTF8=ACCEPT), normalising INBOX.
    fn name(&self, raw: &[u8]) -> R<String> {
        let s = if self.utf8_names {
            match std::str::from_utf8(raw) {
                Ok(s) => s.to_owned(),
                Err(_) => return fail("mailbox name is not UTF-8"),
            }
        } else {
            let Ok(s) = std::str::from_utf8(raw) else {
                return fail("mailbox name is not modified UTF-7");
            };
            match mutf7::decode(s) {
                Ok(s) => s,
                Err(_) => return fail("mailbox name is not modified UTF-7"),
            }
        };
        if !valid_name_chars(&s) {
            return fail("control character in mailbox name");
        }
        if s.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".to_owned());
        }
        Ok(s)
    }

    fn mailbox(&mut self) -> R<String> {
        let raw = self.astring()?;
        self.name(&raw)
    }

    fn list_mailbox(&mut self) -> R<String> {
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return fail("expected a mailbox pattern");
                }
                Cow::Borrowed(a)
            }
        };
        self.name(&raw)
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        Ok(SeqNum::Value(self.nz_number()?))
    }

    fn sequence_set(&mut self) -> R<SequenceSet> {
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
    fn known_set(&mut self) -> R<SequenceSet> {
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

    fn flag(&mut self) -> R<String> {
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
    fn flag_list(&mut self) -> R<Vec<String>> {
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

    fn month(&mut self) -> R<u8> {
        let m = self.take_while(|c| c.is_ascii_alphabetic());
        for (i, name) in MONTHS.iter().enumerate() {
            if m.eq_ignore_ascii_case(&name[..]) {
                return Ok(i as u8 + 1);
            }
        }
        fail("bad month")
    }

    fn fixed_digits(&mut self, n: usize) -> R<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.pos += 1;
                }
                _ => return fail("expected a digit"),
            }
        }
        Ok(v)
    }

    /// `date-day "-" date-month "-" date-year` after the day.
    fn month_year(&mut self, day: u32) -> R<Date> {
        self.expect(b'-', "bad date")?;
        let month = self.month()?;
        self.expect(b'-', "bad date")?;
        let year = self.fixed_digits(4)? as i32;
        let day = u8::try_from(day).unwrap_or(0);
        if day == 0 || day > days_in_month(year, month) {
            return fail("no such day");
        }
        Ok(Date { year, month, day })
    }

    /// SEARCH date: `d-Mon-yyyy`, optionally quoted.
    fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let d = self.digits()?;
        if d.len() > 2 {
            return fail("bad date");
        }
        let day = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        let date = self.month_year(day)?;
        if quoted {
            self.expect(b'"', "bad date")?;
        }
        Ok(date)
    }

    /// APPEND date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space-padded).
    fn date_time(&mut self) -> R<DateTime> {
        self.expect(b'"', "expected date-time")?;
        self.eat(b' ');
        let d = self.digits()?;
        if d.len() > 2 {
            return fail("bad date-time");
        }
        let day = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        let date = self.month_year(day)?;
        self.sp()?;
        let hour = self.fixed_digits(2)?;
        self.expect(b':', "bad time")?;
        let minute = self.fixed_digits(2)?;
        self.expect(b':', "bad time")?;
        let second = self.fixed_digits(2)?;
        if hour > 23 || minute > 59 || second > 60 {
            return fail("bad time");
        }
        self.sp()?;
        let sign: i32 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return fail("bad zone");
        };
        let zh = self.fixed_digits(2)?;
        let zm = self.fixed_digits(2)?;
        if zh > 23 || zm > 59 {
            return fail("bad zone");
        }
        self.expect(b'"', "bad date-time")?;
        let offset_minutes = sign * (zh as i32 * 60 + zm as i32);
        let days = days_from_civil(
            i64::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        );
        let local =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Ok(DateTime {
            timestamp: local - i64::from(offset_minutes) * 60,
            offset_minutes,
        })
    }

    fn header_field_name(&mut self) -> R<String> {
        let raw = self.astring()?;
        if raw.is_empty() || !raw.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b':') {
            return fail("bad header field name");
        }
        utf8(raw)
    }

    fn header_list(&mut self) -> R<Vec<String>> {
        self.open()?;
        let mut names = vec![self.header_field_name()?];
        while self.eat(b' ') {
            names.push(self.header_field_name()?);
        }
        self.close()?;
        Ok(names)
    }

    fn status_att(&mut self) -> R<StatusItem> {
        let k = self.keyword()?;
        Ok(match k.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "HIGHESTMODSEQ" => StatusItem::HighestModseq,
            "SIZE" => StatusItem::Size,
            "DELETED" => StatusItem::Deleted,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            _ => return fail_with("unknown STATUS item", k.as_bytes()),
        })
    }

    fn status_list(&mut self) -> R<Vec<StatusItem>> {
        self.open()?;
        let mut items = vec![self.status_att()?];
        while self.eat(b' ') {
            items.push(self.status_att()?);
        }
        self.close()?;
        Ok(items)
    }

    // ---------------------------------------------------------------- commands

    fn command(&mut self) -> R<CommandBody> {
        let name = self.atom()?;
        let k = upper(name);
        let body = match k.as_str() {
            "CAPABILITY" => CommandBody::Capability,
            "NOOP" => CommandBody::Noop,
            "LOGOUT" => CommandBody::Logout,
            "STARTTLS" => CommandBody::StartTls,
            "NAMESPACE" => CommandBody::Namespace,
            "IDLE" => CommandBody::Idle,
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "EXPUNGE" => CommandBody::Expunge { uids: None },
            "AUTHENTICATE" => self.authenticate()?,
            "LOGIN" => {
                self.sp()?;
                let user = self.text()?;
                self.sp()?;
                let password = self.text()?;
                CommandBody::Login { user, password }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.keyword()?);
                }
                if caps.is_empty() {
                    return fail("ENABLE needs a capability");
                }
                CommandBody::Enable(caps)
            }
            "ID" => self.id()?,
            "SELECT" => self.select(false)?,
            "EXAMINE" => self.select(true)?,
            "CREATE" => self.create()?,
            "DELETE" => CommandBody::Delete(self.sp_mailbox()?),
            "RENAME" => {
                let from = self.sp_mailbox()?;
                let to = self.sp_mailbox()?;
                CommandBody::Rename { from, to }
            }
            "SUBSCRIBE" => CommandBody::Subscribe(self.sp_mailbox()?),
            "UNSUBSCRIBE" => CommandBody::Unsubscribe(self.sp_mailbox()?),
            "LIST" => self.list()?,
            "LSUB" => {
                let reference = self.sp_mailbox()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::List {
                    lsub: true,
                    reference,
                    patterns: vec![pattern],
                    select: Vec::new(),
                    return_opts: Vec::new(),
                    status: None,
                }
            }
            "STATUS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let items = self.status_list()?;
                CommandBody::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "SEARCH" => self.search(false)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "COPY" => self.copy_move(false, false)?,
            "MOVE" => self.copy_move(false, true)?,
            "SORT" => self.sort(false)?,
            "THREAD" => self.thread(false)?,
            "UID" => {
                self.sp()?;
                let sub = self.keyword()?;
                match sub.as_str() {
                    "COPY" => self.copy_move(true, false)?,
                    "MOVE" => self.copy_move(true, true)?,
                    "FETCH" => self.fetch(true)?,
                    "SEARCH" => self.search(true)?,
                    "STORE" => self.store(true)?,
                    "SORT" => self.sort(true)?,
                    "THREAD" => self.thread(true)?,
                    "EXPUNGE" => {
                        self.sp()?;
                        CommandBody::Expunge {
                            uids: Some(self.sequence_set()?),
                        }
                    }
                    _ => return fail_with("unknown UID command", sub.as_bytes()),
                }
            }
            "GETQUOTA" => {
                self.sp()?;
                CommandBody::GetQuota(self.text()?)
            }
            "GETQUOTAROOT" => CommandBody::GetQuotaRoot(self.sp_mailbox()?),
            "SETQUOTA" => self.setquota()?,
            "SETACL" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let identifier = self.text()?;
                self.sp()?;
                let rights = self.text()?;
                CommandBody::SetAcl {
                    mailbox,
                    identifier,
                    rights,
                }
            }
            "DELETEACL" | "LISTRIGHTS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let identifier = self.text()?;
                if k == "DELETEACL" {
                    CommandBody::DeleteAcl {
                        mailbox,
                        identifier,
                    }
                } else {
                    CommandBody::ListRights {
                        mailbox,
                        identifier,
                    }
                }
            }
            "GETACL" => CommandBody::GetAcl(self.sp_mailbox()?),
            "MYRIGHTS" => CommandBody::MyRights(self.sp_mailbox()?),
            "COMPRESS" => {
                self.sp()?;
                CommandBody::Compress(self.keyword()?)
            }
            _ => {
                return Err(Fail {
                    msg: Cow::Owned(format!("unknown command {}", shown(name))),
                    kind: ParseErrorKind::UnknownCommand,
                })
            }
        };
        Ok(body)
    }

    fn sp_mailbox(&mut self) -> R<String> {
        self.sp()?;
        self.mailbox()
    }

    fn authenticate(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mechanism = self.keyword()?;
        let initial = if self.eat(b' ') {
            let r =
                self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
            if !valid_base64(r) {
                return fail("bad initial response");
            }
            Some(String::from_utf8_lossy(r).into_owned())
        } else {
            None
        };
        Ok(CommandBody::Authenticate { mechanism, initial })
    }

    fn id(&mut self) -> R<CommandBody> {
        self.sp()?;
        if self.next_is("NIL") {
            self.pos += 3;
            return Ok(CommandBody::Id(None));
        }
        self.open()?;
        let mut params = Vec::new();
        if !self.eat(b')') {
            loop {
                let k = utf8(self.string()?)?;
                self.sp()?;
                let v = match self.nstring()? {
                    Some(v) => Some(utf8(v)?),
                    None => None,
                };
                params.push((k, v));
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Id(Some(params)))
    }

    fn select(&mut self, read_only: bool) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "CONDSTORE" => condstore = true,
                    "QRESYNC" if qresync.is_none() => {
                        self.sp()?;
                        qresync = Some(self.qresync()?);
                    }
                    _ => return fail_with("bad SELECT parameter", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Select {
            mailbox,
            read_only,
            condstore,
            qresync,
        })
    }

    fn qresync(&mut self) -> R<Qresync> {
        self.open()?;
        let uidvalidity = self.nz_number()?;
        self.sp()?;
        let modseq = self.modseq()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.known_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            } else {
                seq_match = Some(self.seq_match()?);
            }
        }
        self.close()?;
        Ok(Qresync {
            uidvalidity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    fn seq_match(&mut self) -> R<(SequenceSet, SequenceSet)> {
        self.open()?;
        let seqs = self.known_set()?;
        self.sp()?;
        let uids = self.known_set()?;
        self.close()?;
        Ok((seqs, uids))
    }

    fn create(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                if k != "USE" {
                    return fail_with("bad CREATE parameter", k.as_bytes());
                }
                self.sp()?;
                self.open()?;
                if !self.eat(b')') {
                    loop {
                        self.expect(b'\\', "expected a special-use attribute")?;
                        special_use.push(special_use_name(self.atom()?));
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Create {
            mailbox,
            special_use,
        })
    }

    fn list(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mut select = Vec::new();
        if self.eat(b'(') {
            if !self.eat(b')') {
                loop {
                    let k = self.keyword()?;
                    if !matches!(
                        k.as_str(),
                        "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
                    ) {
                        return fail_with("unknown LIST selection option", k.as_bytes());
                    }
                    select.push(k);
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
            if select.iter().any(|s| s == "RECURSIVEMATCH")
                && !select
                    .iter()
                    .any(|s| s == "SUBSCRIBED" || s == "SPECIAL-USE")
            {
                return fail("RECURSIVEMATCH needs another selection option");
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut return_opts = Vec::new();
        let mut status = None;
        if self.eat(b' ') {
            let k = self.keyword()?;
            if k != "RETURN" {
                return fail("expected RETURN");
            }
            self.sp()?;
            self.open()?;
            if !self.eat(b')') {
                loop {
                    let k = self.keyword()?;
                    match k.as_str() {
                        "SUBSCRIBED" | "CHILDREN" | "SPECIAL-USE" => return_opts.push(k),
                        "STATUS" if status.is_none() => {
                            self.sp()?;
                            status = Some(self.status_list()?);
                        }
                        _ => return fail_with("bad LIST return option", k.as_bytes()),
                    }
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
        }
        Ok(CommandBody::List {
            lsub: false,
            reference,
            patterns,
            select,
            return_opts,
            status,
        })
    }

    fn append(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        if !matches!(self.peek(), Some(b'{' | b'~')) {
            return fail("APPEND needs a literal");
        }
        let (message, binary) = self.literal(true)?;
        Ok(CommandBody::Append {
            mailbox,
            flags,
            date,
            message: message.to_vec(),
            binary,
        })
    }

    /// `[SP "RETURN" SP "(" [opt *(SP opt)] ")"]`
    fn search_return_opts(&mut self) -> R<Option<Vec<SearchReturn>>> {
        if self.peek() != Some(b' ') {
            return Ok(None);
        }
        let save = self.pos;
        self.pos += 1;
        if !(self.next_is("RETURN") && self.peek_at(6) == Some(b' ')) {
            self.pos = save;
            return Ok(None);
        }
        self.pos += 7;
        self.open()?;
        let mut opts = Vec::new();
        if !self.eat(b')') {
            loop {
                let k = self.keyword()?;
                opts.push(match k.as_str() {
                    "MIN" => SearchReturn::Min,
                    "MAX" => SearchReturn::Max,
                    "ALL" => SearchReturn::All,
                    "COUNT" => SearchReturn::Count,
                    "SAVE" => SearchReturn::Save,
                    _ => return fail_with("unknown RETURN option", k.as_bytes()),
                });
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(Some(opts))
    }

    fn charset(&mut self) -> R<String> {
        let raw = self.astring()?;
        let name = upper(&raw);
        self.set_charset(&name)?;
        Ok(name)
    }

    fn search(&mut self, uid: bool) -> R<CommandBody> {
        let return_opts = self.search_return_opts()?;
        self.sp()?;
        let mut charset = None;
        if self.next_is("CHARSET") && self.peek_at(7) == Some(b' ') {
            self.pos += 8;
            charset = Some(self.charset()?);
            self.sp()?;
        }
        let criteria = self.search_program()?;
        Ok(CommandBody::Search {
            uid,
            charset,
            criteria,
            return_opts,
        })
    }

    /// `search-key *(SP search-key)`: one key, or `And` of several.
    fn search_program(&mut self) -> R<SearchKey> {
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        })
    }

    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        if depth >= MAX_SEARCH_DEPTH {
            return fail("search keys nested too deeply");
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key(depth + 1)?];
                while self.eat(b' ') {
                    keys.push(self.search_key(depth + 1)?);
                }
                self.close()?;
                return Ok(if keys.len() == 1 {
                    keys.remove(0)
                } else {
                    SearchKey::And(keys)
                });
            }
            Some(b'*' | b'$' | b'0'..=b'9') => {
                return Ok(SearchKey::Sequence(self.sequence_set()?))
            }
            _ => {}
        }
        let k = self.keyword()?;
        Ok(match k.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                let s = self.search_text()?;
                match k.as_str() {
                    "BCC" => SearchKey::Bcc(s),
                    "BODY" => SearchKey::Body(s),
                    "CC" => SearchKey::Cc(s),
                    "FROM" => SearchKey::From(s),
                    "SUBJECT" => SearchKey::Subject(s),
                    "TEXT" => SearchKey::Text(s),
                    _ => SearchKey::To(s),
                }
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match k.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let kw = String::from_utf8_lossy(self.atom()?).into_owned();
                if k == "KEYWORD" {
                    SearchKey::Keyword(kw)
                } else {
                    SearchKey::Unkeyword(kw)
                }
            }
            "HEADER" => {
                self.sp()?;
                let field = self.header_field_name()?;
                self.sp()?;
                SearchKey::Header(field, self.search_text()?)
            }
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "MODSEQ" => {
                self.sp()?;
                if self.peek() == Some(b'"') {
                    let entry = self.quoted()?;
                    if !entry.starts_with(b"/flags/") || entry.len() <= 7 {
                        return fail("bad MODSEQ entry name");
                    }
                    self.sp()?;
                    let t = self.keyword()?;
                    if !matches!(t.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return fail("bad MODSEQ entry type");
                    }
                    self.sp()?;
                }
                SearchKey::Modseq(self.modseq()?)
            }
            "YOUNGER" => {
                self.sp()?;
                SearchKey::Younger(self.nz_number64()?)
            }
            "OLDER" => {
                self.sp()?;
                SearchKey::Older(self.nz_number64()?)
            }
            _ => return fail_with("unknown search key", k.as_bytes()),
        })
    }

    fn fetch(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.eat(b'(') {
            loop {
                items.push(self.fetch_att()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.next_is("ALL") {
            self.pos += 3;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
            ];
        } else if self.next_is("FAST") {
            self.pos += 4;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
            ];
        } else if self.next_is("FULL") {
            self.pos += 4;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body,
            ];
        } else {
            items.push(self.fetch_att()?);
        }
        let mut changed_since = None;
        let mut vanished = false;
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "CHANGEDSINCE" if changed_since.is_none() => {
                        self.sp()?;
                        changed_since = Some(self.modseq()?);
                    }
                    "VANISHED" if !vanished => vanished = true,
                    _ => return fail_with("bad FETCH modifier", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            if vanished && (!uid || changed_since.is_none()) {
                return fail("VANISHED needs UID FETCH and CHANGEDSINCE");
            }
        }
        Ok(CommandBody::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        })
    }

    fn fetch_att(&mut self) -> R<FetchAttr> {
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'.');
        let k = upper(name);
        Ok(match k.as_str() {
            "ENVELOPE" => FetchAttr::Envelope,
            "FLAGS" => FetchAttr::Flags,
            "INTERNALDATE" => FetchAttr::InternalDate,
            "RFC822" => FetchAttr::Rfc822,
            "RFC822.HEADER" => FetchAttr::Rfc822Header,
            "RFC822.SIZE" => FetchAttr::Rfc822Size,
            "RFC822.TEXT" => FetchAttr::Rfc822Text,
            "BODYSTRUCTURE" => FetchAttr::BodyStructure,
            "UID" => FetchAttr::Uid,
            "MODSEQ" => FetchAttr::Modseq,
            "BODY" if self.peek() != Some(b'[') => FetchAttr::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAttr::BodySection {
                    peek: k == "BODY.PEEK",
                    section,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                let partial = self.partial()?;
                FetchAttr::Binary {
                    peek: k == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" => FetchAttr::BinarySize {
                part: self.section_binary()?,
            },
            _ => return fail_with("unknown FETCH item", name),
        })
    }

    fn section(&mut self) -> R<Section> {
        self.expect(b'[', "expected '['")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        let mut want_text = true;
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    want_text = false;
                    break;
                }
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    break;
                }
            }
        }
        if want_text {
            let name = self.take_while(|c| c.is_ascii_alphabetic() || c == b'.');
            let k = upper(name);
            section.text = Some(match k.as_str() {
                "HEADER" => SectionText::Header,
                "TEXT" => SectionText::Text,
                "MIME" if !section.part.is_empty() => SectionText::Mime,
                "HEADER.FIELDS" => {
                    self.sp()?;
                    SectionText::HeaderFields(self.header_list()?)
                }
                "HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    SectionText::HeaderFieldsNot(self.header_list()?)
                }
                _ => return fail_with("bad section", name),
            });
        }
        self.expect(b']', "expected ']'")?;
        Ok(section)
    }

    fn section_binary(&mut self) -> R<Vec<u32>> {
        self.expect(b'[', "expected '['")?;
        let mut part = Vec::new();
        if !self.eat(b']') {
            part.push(self.nz_number()?);
            while self.eat(b'.') {
                part.push(self.nz_number()?);
            }
            self.expect(b']', "expected ']'")?;
        }
        Ok(part)
    }

    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.expect(b'.', "expected '.' in partial")?;
        let len = self.nz_number()?;
        self.expect(b'>', "expected '>'")?;
        Ok(Some((offset, len)))
    }

    fn store(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "UNCHANGEDSINCE" if unchanged_since.is_none() => {
                        self.sp()?;
                        unchanged_since = Some(self.modseq()?);
                    }
                    _ => return fail_with("bad STORE modifier", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            self.sp()?;
        }
        let k = self.keyword()?;
        let (op, rest) = match k.as_bytes().first() {
            Some(b'+') => (StoreOp::Add, k.get(1..).unwrap_or("")),
            Some(b'-') => (StoreOp::Remove, k.get(1..).unwrap_or("")),
            _ => (StoreOp::Replace, k.as_str()),
        };
        let silent = match rest {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return fail_with("bad STORE item", k.as_bytes()),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        })
    }

    fn copy_move(&mut self, uid: bool, is_move: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.sp_mailbox()?;
        Ok(if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }

    fn sort(&mut self, uid: bool) -> R<CommandBody> {
        let return_opts = self.search_return_opts()?;
        self.sp()?;
        self.open()?;
        let mut criteria = Vec::new();
        loop {
            let mut k = self.keyword()?;
            let reverse = k == "REVERSE";
            if reverse {
                self.sp()?;
                k = self.keyword()?;
            }
            let key = match k.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                _ => return fail_with("unknown sort key", k.as_bytes()),
            };
            criteria.push(SortCriterion { reverse, key });
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let search = self.search_program()?;
        Ok(CommandBody::Sort {
            uid,
            criteria,
            charset,
            search,
            return_opts,
        })
    }

    fn thread(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let k = self.keyword()?;
        let algorithm = match k.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            _ => return fail_with("unknown thread algorithm", k.as_bytes()),
        };
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let search = self.search_program()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            charset,
            search,
        })
    }

    fn setquota(&mut self) -> R<CommandBody> {
        self.sp()?;
        let root = self.text()?;
        self.sp()?;
        self.open()?;
        let mut limits = Vec::new();
        if !self.eat(b')') {
            loop {
                let name = self.keyword()?;
                self.sp()?;
                limits.push((name, self.number64()?));
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::SetQuota { root, limits })
    }
}

fn utf8(raw: Cow<'_, [u8]>) -> R<String> {
    match String::from_utf8(raw.into_owned()) {
        Ok(s) => Ok(s),
        Err(_) => fail("string is not UTF-8"),
    }
}

/// `base64 / "="` as in SASL-IR: groups of four, `=` padding only at the end.
fn valid_base64(r: &[u8]) -> bool {
    if r == b"=" {
        return true;
    }
    if r.is_empty() || r.len() & 3 != 0 {
        return false;
    }
    let pad = r.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2 && !r.iter().take(r.len() - pad).any(|&c| c == b'=')
}

/// Canonical spelling of the RFC 6154 attributes, `\` included; others as written.
fn special_use_name(atom: &[u8]) -> String {
    const KNOWN: [&str; 7] = [
        "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash",
    ];
    for k in KNOWN {
        if atom.eq_ignore_ascii_case(k.as_bytes()) {
            return format!("\\{k}");
        }
    }
    format!("\\{}", String::from_utf8_lossy(atom))
}

/// Parses one complete command, as assembled by [`CommandReader`]: `tag SP command`,
/// literals embedded (`{n}` CRLF n bytes), with or without a final CRLF (or LF).
///
/// `utf8_names`: the client enabled UTF8=ACCEPT (RFC 6855), so mailbox names are
/// UTF-8 as written; otherwise they are decoded from modified UTF-7 ([`mutf7`]).
/// Either way `INBOX` in any case becomes `INBOX`, and names with control characters
/// are refused (RFC 9051 5.1).
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

    // ------------------------------------------------------------------ helpers

    fn ok(s: &str) -> CommandBody {
        okb(s.as_bytes())
    }

    fn okb(b: &[u8]) -> CommandBody {
        match parse_command(b, false) {
            Ok(c) => c.body,
            Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(b)),
        }
    }

    fn bad(s: &str) -> ParseError {
        match parse_command(s.as_bytes(), false) {
            Ok(c) => panic!("{s:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn v(n: u32) -> SeqNum {
        SeqNum::Value(n)
    }

    fn rng(a: SeqNum, b: SeqNum) -> SeqRange {
        SeqRange { start: a, end: b }
    }

    fn one(n: u32) -> SeqRange {
        rng(v(n), v(n))
    }

    fn ranges(r: &[SeqRange]) -> SequenceSet {
        SequenceSet::Ranges(r.to_vec())
    }

    fn s(x: &str) -> String {
        x.to_owned()
    }

    fn date(year: i32, month: u8, day: u8) -> Date {
        Date { year, month, day }
    }

    fn search_of(s: &str) -> SearchKey {
        match ok(s) {
            CommandBody::Search { criteria, .. } => criteria,
            other => panic!("{other:?}"),
        }
    }

    fn fetch_items(s: &str) -> Vec<FetchAttr> {
        match ok(s) {
            CommandBody::Fetch { items, .. } => items,
            other => panic!("{other:?}"),
        }
    }

    /// Feeds everything, in chunks of `chunk` bytes, collecting non-NeedMore events.
    /// Synchronizing literals are accepted.
    fn run(reader: &mut CommandReader, input: &[u8], chunk: usize) -> Vec<Event> {
        let mut events = Vec::new();
        let mut off = 0;
        while off < input.len() {
            let end = (off + chunk).min(input.len());
            let mut piece = &input[off..end];
            while !piece.is_empty() {
                let (n, ev) = reader.feed(piece);
                assert!(n <= piece.len());
                if ev == Event::NeedMore {
                    assert_eq!(n, piece.len());
                } else {
                    assert!(n > 0);
                    events.push(ev);
                }
                piece = &piece[n..];
            }
            off = end;
        }
        events
    }

    fn cmd(b: &[u8]) -> Event {
        Event::Command(b.to_vec())
    }

    const RFC3501_MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.COM>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu\r\n\
Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

    // ------------------------------------------------------------------ reader

    #[test]
    fn reader_simple_and_pipelined() {
        let mut r = CommandReader::new(Limits::default());
        let input = b"a1 NOOP\r\na2 CAPABILITY\na3 LOGOUT\r\n";
        for chunk in [1, 2, 3, 7, 1000] {
            let ev = run(&mut r, input, chunk);
            assert_eq!(
                ev,
                vec![cmd(b"a1 NOOP"), cmd(b"a2 CAPABILITY"), cmd(b"a3 LOGOUT")]
            );
            assert!(!r.in_command());
        }
        // The first feed stops right after the first command.
        let (n, ev) = r.feed(input);
        assert_eq!((n, ev), (9, cmd(b"a1 NOOP")));
    }

    #[test]
    fn reader_partial_line_and_split_crlf() {
        let mut r = CommandReader::new(Limits::default());
        assert_eq!(r.feed(b"a1 NO"), (5, Event::NeedMore));
        assert!(r.in_command());
        assert_eq!(r.feed(b"OP\r"), (3, Event::NeedMore));
        assert_eq!(r.feed(b"\nrest"), (1, cmd(b"a1 NOOP")));
        // A CR not followed by LF is command text (the parser will refuse it).
        let mut r = CommandReader::new(Limits::default());
        assert_eq!(r.feed(b"a\r"), (2, Event::NeedMore));
        assert_eq!(r.feed(b"b\r\n"), (3, cmd(b"a\rb")));
        assert_eq!(r.feed(b""), (0, Event::NeedMore));
        assert_eq!(r.feed(b"\r\n"), (2, cmd(b"")));
    }

    #[test]
    fn reader_synchronizing_literal() {
        let mut r = CommandReader::new(Limits::default());
        let (n, ev) = r.feed(b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n");
        assert_eq!(n, 17);
        assert_eq!(
            ev,
            Event::Continue {
                tag: Some(s("A001")),
                size: 11,
                binary: false
            }
        );
        let (n2, ev) = r.feed(b"FRED FOOBAR {7}\r\nfat man\r\n");
        assert_eq!(n2, 17);
        assert_eq!(
            ev,
            Event::Continue {
                tag: Some(s("A001")),
                size: 7,
                binary: false
            }
        );
        let (_, ev) = r.feed(b"fat man\r\n");
        let want = b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man";
        assert_eq!(ev, cmd(want));
        assert_eq!(
            okb(want),
            CommandBody::Login {
                user: s("FRED FOOBAR"),
                password: s("fat man")
            }
        );
    }

    #[test]
    fn reader_literal_plus_and_binary() {
        let mut r = CommandReader::new(Limits::default());
        let input = b"x UID SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {4+}\r\nt\xc3\xa9t) NOT DELETED\r\nb NOOP\r\n";
        for chunk in [1, 5, 100] {
            let ev = run(&mut r, input, chunk);
            assert_eq!(ev.len(), 2);
            assert_eq!(ev[1], cmd(b"b NOOP"));
        }
        let mut r = CommandReader::new(Limits::default());
        let (_, ev) = r.feed(b"a APPEND x ~{5}\nab\0\r\n\r\n");
        assert_eq!(
            ev,
            Event::Continue {
                tag: Some(s("a")),
                size: 5,
                binary: true
            }
        );
        let (_, ev) = r.feed(b"ab\0\r\n\r\n");
        assert_eq!(ev, cmd(b"a APPEND x ~{5}\r\nab\0\r\n"));
        // Literal contents are opaque: a "{3}" in them announces nothing.
        let mut r = CommandReader::new(Limits::default());
        let ev = run(&mut r, b"a LOGIN {4+}\r\n{3}\n {2+}\r\npw\r\n", 3);
        assert_eq!(ev, vec![cmd(b"a LOGIN {4+}\r\n{3}\n {2+}\r\npw")]);
        // Zero-length literals.
        let mut r = CommandReader::new(Limits::default());
        let ev = run(&mut r, b"a LOGIN {0+}\r\n {0}\r\n\r\n", 1);
        assert_eq!(
            ev,
            vec![
                Event::Continue {
                    tag: Some(s("a")),
                    size: 0,
                    binary: false
                },
                cmd(b"a LOGIN {0+}\r\n {0}\r\n")
            ]
        );
        assert_eq!(
            okb(b"a LOGIN {0+}\r\n {0}\r\n"),
            CommandBody::Login {
                user: s(""),
                password: s("")
            }
        );
    }

    #[test]
    fn reader_refuse() {
        let mut r = CommandReader::new(Limits::default());
        assert!(!r.refuse());
        let (_, ev) = r.feed(b"a1 LOGIN {5}\r\n");
        assert!(matches!(ev, Event::Continue { .. }));
        assert!(r.refuse());
        assert!(!r.in_command());
        // The client abandons the command; the next line is a new one.
        assert_eq!(r.feed(b"a2 NOOP\r\n"), (9, cmd(b"a2 NOOP")));
        assert!(!r.refuse());
    }

    #[test]
    fn reader_sync_literal_too_big() {
        let limits = Limits {
            max_literal: 100,
            ..Limits::default()
        };
        let mut r = CommandReader::new(limits);
        let (n, ev) = r.feed(b"A003 APPEND saved-messages (\\Seen) {310}\r\nA004 NOOP\r\n");
        assert_eq!(n, 42);
        assert_eq!(
            ev,
            Event::Rejected {
                tag: Some(s("A003")),
                reason: Rejection::LiteralTooBig {
                    size: 310,
                    synchronizing: true
                }
            }
        );
        assert!(!r.in_command());
        assert_eq!(r.feed(b"A004 NOOP\r\n").1, cmd(b"A004 NOOP"));
        // An absurd size saturates.
        let (_, ev) = r.feed(b"t APPEND x {99999999999999999999999999}\r\n");
        assert_eq!(
            ev,
            Event::Rejected {
                tag: Some(s("t")),
                reason: Rejection::LiteralTooBig {
                    size: u64::MAX,
                    synchronizing: true
                }
            }
        );
    }

    #[test]
    fn reader_nonsync_literal_too_big_is_discarded() {
        // LITERAL-: non-synchronizing literals up to 4096 bytes.
        let limits = Limits {
            max_nonsync_literal: 4096,
            ..Limits::default()
        };
        let mut r = CommandReader::new(limits);
        let big = vec![b'x'; 5000];
        let mut input = b"a1 APPEND x {5000+}\r\n".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b" more {3+}\r\n{9}\r\nb2 NOOP\r\n");
        for chunk in [1, 13, 4096, 100_000] {
            let ev = run(&mut r, &input, chunk);
            assert_eq!(
                ev,
                vec![
                    Event::Rejected {
                        tag: Some(s("a1")),
                        reason: Rejection::LiteralTooBig {
                            size: 5000,
                            synchronizing: false
                        }
                    },
                    cmd(b"b2 NOOP"),
                ],
                "chunk {chunk}"
            );
            assert!(r.buf.is_empty());
        }
        // The same literal is fine when synchronizing.
        let mut r = CommandReader::new(limits);
        let (_, ev) = r.feed(b"a1 APPEND x {5000}\r\n");
        assert!(matches!(ev, Event::Continue { size: 5000, .. }));
    }

    #[test]
    fn reader_line_too_long() {
        let limits = Limits {
            max_line: 64,
            ..Limits::default()
        };
        let mut r = CommandReader::new(limits);
        let mut input = b"tag1 SEARCH ".to_vec();
        input.extend(std::iter::repeat_n(b'1', 200));
        input.extend_from_slice(b"\r\ntag2 NOOP\r\n");
        for chunk in [1, 10, 1000] {
            let ev = run(&mut r, &input, chunk);
            assert_eq!(
                ev,
                vec![
                    Event::Rejected {
                        tag: Some(s("tag1")),
                        reason: Rejection::LineTooLong
                    },
                    cmd(b"tag2 NOOP")
                ]
            );
            assert!(r.buf.len() <= 64);
        }
        // No tag within reach.
        let mut r = CommandReader::new(limits);
        let ev = run(&mut r, &[b'x'; 500], 7);
        assert!(ev.is_empty());
        assert!(r.buf.is_empty());
        assert_eq!(
            r.feed(b"\n").1,
            Event::Rejected {
                tag: None,
                reason: Rejection::LineTooLong
            }
        );
        // Exactly at the limit is fine.
        let mut r = CommandReader::new(limits);
        let line = vec![b'a'; 64];
        assert_eq!(
            r.feed(&[&line[..], b"\r\n"].concat()).1,
            Event::Command(line)
        );
    }

    #[test]
    fn reader_too_long_line_with_literals() {
        let limits = Limits {
            max_line: 30,
            ..Limits::default()
        };
        // The discarded line announces a non-synchronizing literal: skip it and the rest.
        let mut r = CommandReader::new(limits);
        let input = b"a SEARCH SUBJECT xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx {5+}\r\n)\r\n\n BODY y\r\nb NOOP\r\n";
        assert_eq!(
            run(&mut r, input, 4),
            vec![
                Event::Rejected {
                    tag: Some(s("a")),
                    reason: Rejection::LineTooLong
                },
                cmd(b"b NOOP")
            ]
        );
        // It announces a synchronizing literal: reject right away (the client waits).
        let mut r = CommandReader::new(limits);
        let input = b"a SEARCH SUBJECT xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx {5}\r\nb NOOP\r\n";
        assert_eq!(
            run(&mut r, input, 3),
            vec![
                Event::Rejected {
                    tag: Some(s("a")),
                    reason: Rejection::LineTooLong
                },
                cmd(b"b NOOP")
            ]
        );
        // Text over several lines counts together.
        let mut r = CommandReader::new(limits);
        let input = b"a LOGIN {3+}\r\nabc {3+}\r\ndef ghijklmnopqrstuvwxyz\r\nb NOOP\r\n";
        assert_eq!(
            run(&mut r, input, 100),
            vec![
                Event::Rejected {
                    tag: Some(s("a")),
                    reason: Rejection::LineTooLong
                },
                cmd(b"b NOOP")
            ]
        );
    }

    #[test]
    fn reader_command_too_big_and_fatal() {
        let limits = Limits {
            max_command: 100,
            max_discard: 1000,
            ..Limits::default()
        };
        let mut r = CommandReader::new(limits);
        let mut input = b"a APPEND x {60+}\r\n".to_vec();
        input.extend_from_slice(&[b'm'; 60]);
        input.extend_from_slice(b" {40+}\r\n");
        input.extend_from_slice(&[b'n'; 40]);
        input.extend_from_slice(b"\r\nb NOOP\r\n");
        assert_eq!(
            run(&mut r, &input, 9),
            vec![
                Event::Rejected {
                    tag: Some(s("a")),
                    reason: Rejection::CommandTooBig
                },
                cmd(b"b NOOP")
            ]
        );
        // Too big to be worth skipping.
        let mut r = CommandReader::new(limits);
        let (n, ev) = r.feed(b"a APPEND x {5000+}\r\nxxxx");
        assert_eq!(n, 20);
        assert_eq!(
            ev,
            Event::Fatal {
                tag: Some(s("a")),
                reason: Rejection::CommandTooBig
            }
        );
        assert_eq!(r.feed(b"b NOOP\r\n"), (8, Event::NeedMore));
        r.reset();
        assert_eq!(r.feed(b"b NOOP\r\n"), (8, cmd(b"b NOOP")));
    }

    #[test]
    fn reader_chunking_is_invisible() {
        let mut stream = Vec::new();
        for c in corpus() {
            stream.extend_from_slice(c);
            stream.extend_from_slice(b"\r\n");
        }
        let mut r = CommandReader::new(Limits::default());
        let whole = run(&mut r, &stream, stream.len());
        assert!(whole.len() >= corpus().len());
        for chunk in [1, 2, 3, 5, 8, 13, 64] {
            let mut r = CommandReader::new(Limits::default());
            assert_eq!(run(&mut r, &stream, chunk), whole, "chunk {chunk}");
        }
        // And every assembled corpus command parses.
        for ev in whole {
            if let Event::Command(c) = ev {
                parse_command(&c, false)
                    .unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(&c)));
            }
        }
    }

    // ------------------------------------------------------------------ grammar: basics

    #[test]
    fn simple_commands_any_case() {
        assert_eq!(ok("a CAPABILITY"), CommandBody::Capability);
        assert_eq!(ok("a noop"), CommandBody::Noop);
        assert_eq!(ok("a LogOut\r\n"), CommandBody::Logout);
        assert_eq!(ok("a STARTTLS"), CommandBody::StartTls);
        assert_eq!(ok("a namespace"), CommandBody::Namespace);
        assert_eq!(ok("a IDLE"), CommandBody::Idle);
        assert_eq!(ok("a CHECK"), CommandBody::Check);
        assert_eq!(ok("a close"), CommandBody::Close);
        assert_eq!(ok("a UNSELECT"), CommandBody::Unselect);
        assert_eq!(ok("a EXPUNGE"), CommandBody::Expunge { uids: None });
        assert_eq!(
            ok("A202 UID EXPUNGE 3000:3002"),
            CommandBody::Expunge {
                uids: Some(ranges(&[rng(v(3000), v(3002))]))
            }
        );
        let c = parse_command(b"x]y.1 NOOP", false).unwrap();
        assert_eq!(c.tag, "x]y.1");
    }

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
    fn login_and_strings() {
        assert_eq!(
            ok("a001 login SMITH SESAME"),
            CommandBody::Login {
                user: s("SMITH"),
                password: s("SESAME")
            }
        );
        assert_eq!(
            ok(r#"a LOGIN "fred \"the\" \\ man" "p w""#),
            CommandBody::Login {
                user: s(r#"fred "the" \ man"#),
                password: s("p w")
            }
        );
        assert_eq!(
            okb("a LOGIN {5}\r\nj\u{f6}rg ]x]".as_bytes()),
            CommandBody::Login {
                user: s("j\u{f6}rg"),
                password: s("]x]")
            }
        );
        bad(r#"a LOGIN "a\b" c"#);
        bad("a LOGIN \"a\rb\" c");
        bad("a LOGIN \"a\0b\" c");
        bad(r#"a LOGIN "abc"#);
        bad("a LOGIN {10}\r\nshort");
        bad("a LOGIN {5}\r\nabcdefg");
        bad("a LOGIN a");
        bad("a LOGIN a b c");
        bad("a LOGIN ~{1}\r\na b");
        assert!(parse_command(b"a LOGIN {1}\r\n\xff b", false).is_err());
    }

    #[test]
    fn authenticate() {
        assert_eq!(
            ok("a AUTHENTICATE plain"),
            CommandBody::Authenticate {
                mechanism: s("PLAIN"),
                initial: None
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0"),
            CommandBody::Authenticate {
                mechanism: s("PLAIN"),
                initial: Some(s("AGZyZWQAc2VjcmV0"))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE EXTERNAL ="),
            CommandBody::Authenticate {
                mechanism: s("EXTERNAL"),
                initial: Some(s("="))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx"),
            CommandBody::Authenticate {
                mechanism: s("SCRAM-SHA-256"),
                initial: Some(s("biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx"))
            }
        );
        ok("a AUTHENTICATE PLAIN AGE=");
        bad("a AUTHENTICATE PLAIN AGZ");
        bad("a AUTHENTICATE PLAIN A=ZA");
        bad("a AUTHENTICATE PLAIN A===");
        bad("a AUTHENTICATE PLAIN ");
        bad("a AUTHENTICATE");
    }

    #[test]
    fn enable_id_compress() {
        assert_eq!(
            ok("t ENABLE QRESYNC condstore UTF8=ACCEPT"),
            CommandBody::Enable(vec![s("QRESYNC"), s("CONDSTORE"), s("UTF8=ACCEPT")])
        );
        bad("t ENABLE");
        assert_eq!(ok("a023 ID NIL"), CommandBody::Id(None));
        assert_eq!(ok("a ID ()"), CommandBody::Id(Some(vec![])));
        assert_eq!(
            ok(
                r#"a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited" "os" NIL)"#
            ),
            CommandBody::Id(Some(vec![
                (s("name"), Some(s("sodr"))),
                (s("version"), Some(s("19.34"))),
                (s("vendor"), Some(s("Pink Floyd Music Limited"))),
                (s("os"), None),
            ]))
        );
        bad(r#"a ID ("name")"#);
        bad(r#"a ID (name "x")"#);
        bad("a ID");
        assert_eq!(
            ok("a COMPRESS deflate"),
            CommandBody::Compress(s("DEFLATE"))
        );
    }

    // ------------------------------------------------------------------ mailboxes

    #[test]
    fn mailbox_names() {
        assert_eq!(ok("a DELETE inbox"), CommandBody::Delete(s("INBOX")));
        assert_eq!(ok("a DELETE \"InBoX\""), CommandBody::Delete(s("INBOX")));
        assert_eq!(
            ok("a DELETE INBOX.sub"),
            CommandBody::Delete(s("INBOX.sub"))
        );
        assert_eq!(
            ok("a SUBSCRIBE Entw&APw-rfe"),
            CommandBody::Subscribe(s("Entw\u{fc}rfe"))
        );
        assert_eq!(
            ok("a UNSUBSCRIBE \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\""),
            CommandBody::Unsubscribe(s("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"))
        );
        assert_eq!(
            ok("a DELETE \"Tom &- Jerry\""),
            CommandBody::Delete(s("Tom & Jerry"))
        );
        assert_eq!(
            ok("a RENAME blurdybloop sarasoop"),
            CommandBody::Rename {
                from: s("blurdybloop"),
                to: s("sarasoop")
            }
        );
        // Invalid modified UTF-7.
        bad("a DELETE &ACY-");
        bad("a DELETE \"Entw\u{fc}rfe\"");
        bad("a DELETE Tom&Jerry");
        // With UTF8=ACCEPT names are UTF-8 and '&' is just '&'.
        let c = parse_command("a DELETE \"Entw\u{fc}rfe & Co\"".as_bytes(), true).unwrap();
        assert_eq!(c.body, CommandBody::Delete(s("Entw\u{fc}rfe & Co")));
        let c = parse_command(b"a DELETE Entw&APw-rfe", true).unwrap();
        assert_eq!(c.body, CommandBody::Delete(s("Entw&APw-rfe")));
        assert!(parse_command(b"a DELETE {2}\r\n\xc3(", true).is_err());
        // Control characters are never allowed (RFC 9051 5.1).
        bad("a DELETE {3}\r\na\nb");
        bad("a DELETE &AAk-");
        assert!(parse_command(b"a DELETE {3}\r\na\tb", true).is_err());
        bad("a DELETE");
        bad("a DELETE a b");
        bad("a DELETE (a)");
    }

    #[test]
    fn select_examine() {
        assert_eq!(
            ok("A142 SELECT INBOX"),
            CommandBody::Select {
                mailbox: s("INBOX"),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            ok("A932 EXAMINE blurdybloop"),
            CommandBody::Select {
                mailbox: s("blurdybloop"),
                read_only: true,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            ok("a SELECT \"Sent\" (CONDSTORE)"),
            CommandBody::Select {
                mailbox: s("Sent"),
                read_only: false,
                condstore: true,
                qresync: None
            }
        );
        // RFC 7162 3.2.5.2 examples.
        let CommandBody::Select {
            qresync: Some(q), ..
        } = ok("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
        else {
            panic!()
        };
        assert_eq!(q.uidvalidity, 67890007);
        assert_eq!(q.modseq, 20050715194045000);
        assert_eq!(
            q.known_uids,
            Some(ranges(&[one(41), rng(v(43), v(211)), rng(v(214), v(541))]))
        );
        assert_eq!(q.seq_match, None);
        let CommandBody::Select { qresync: Some(q), .. } = ok(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"
        ) else {
            panic!()
        };
        let (seqs, uids) = q.seq_match.unwrap();
        assert_eq!(q.known_uids, Some(ranges(&[rng(v(1), v(29997))])));
        assert_eq!(
            seqs,
            ranges(&[one(5000), one(7500), one(9000), rng(v(9990), v(9999))])
        );
        let SequenceSet::Ranges(u) = uids else {
            panic!()
        };
        assert_eq!(u.len(), 13);
        let CommandBody::Select {
            qresync: Some(q),
            condstore,
            ..
        } = ok("a EXAMINE x (CONDSTORE QRESYNC (1 2 (1:3 4:6)))")
        else {
            panic!()
        };
        assert!(condstore);
        assert_eq!(q.known_uids, None);
        assert!(q.seq_match.is_some());
        bad("a SELECT INBOX (QRESYNC (0 1))");
        bad("a SELECT INBOX (QRESYNC (1 1 1:*))");
        bad("a SELECT INBOX (QRESYNC (1 1 $))");
        bad("a SELECT INBOX (QRESYNC (1))");
        bad("a SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))");
        bad("a SELECT INBOX (FROB)");
        bad("a SELECT INBOX ()");
        bad("a SELECT INBOX (CONDSTORE");
        bad("a SELECT");
    }

    #[test]
    fn create_special_use() {
        assert_eq!(
            ok("A003 CREATE owatagusiam/"),
            CommandBody::Create {
                mailbox: s("owatagusiam/"),
                special_use: vec![]
            }
        );
        assert_eq!(
            ok("t1 CREATE \"Important Messages\" (USE (\\Important))"),
            CommandBody::Create {
                mailbox: s("Important Messages"),
                special_use: vec![s("\\Important")]
            }
        );
        assert_eq!(
            ok("t1 CREATE MySpecial (USE (\\drafts \\Sent))"),
            CommandBody::Create {
                mailbox: s("MySpecial"),
                special_use: vec![s("\\Drafts"), s("\\Sent")]
            }
        );
        bad("t1 CREATE x (USE (Sent))");
        bad("t1 CREATE x (FOO (\\Sent))");
        bad("t1 CREATE x (USE \\Sent)");
    }

    #[test]
    fn list_and_lsub() {
        assert_eq!(
            ok("A101 LIST \"\" \"\""),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A682 LIST \"\" *"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("*")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A202 LIST ~/Mail/ %"),
            CommandBody::List {
                lsub: false,
                reference: s("~/Mail/"),
                patterns: vec![s("%")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A002 LSUB \"#news.\" \"comp.mail.*\""),
            CommandBody::List {
                lsub: true,
                reference: s("#news."),
                patterns: vec![s("comp.mail.*")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        // RFC 5258 / 5819 / 6154.
        assert_eq!(
            ok("A02 LIST (subscribed RECURSIVEMATCH) \"\" (INBOX Entw&APw-rfe* \"%/x\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN)) "
                .trim_end()),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("INBOX"), s("Entw\u{fc}rfe*"), s("%/x")],
                select: vec![s("SUBSCRIBED"), s("RECURSIVEMATCH")],
                return_opts: vec![s("CHILDREN")],
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
            }
        );
        assert_eq!(
            ok("t1 LIST \"\" \"%\" RETURN (SPECIAL-USE)"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("%")],
                select: vec![],
                return_opts: vec![s("SPECIAL-USE")],
                status: None
            }
        );
        assert_eq!(
            ok("t1 LIST (SPECIAL-USE) \"\" \"*\" RETURN ()"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("*")],
                select: vec![s("SPECIAL-USE")],
                return_opts: vec![],
                status: None
            }
        );
        ok("a LIST () \"\" %");
        ok("a LIST (REMOTE) \"\" %");
        bad("a LIST (RECURSIVEMATCH) \"\" %");
        bad("a LIST (FROB) \"\" %");
        bad("a LIST \"\" () ");
        bad("a LIST \"\" ()");
        bad("a LIST \"\" % RETURN (FROB)");
        bad("a LIST \"\" % RETURN CHILDREN");
        bad("a LIST \"\" % EXTRA (CHILDREN)");
        bad("a LIST \"\"");
        bad("a LSUB \"\" (a b)");
    }

    #[test]
    fn status() {
        assert_eq!(
            ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
            CommandBody::Status {
                mailbox: s("blurdybloop"),
                items: vec![StatusItem::UidNext, StatusItem::Messages]
            }
        );
        assert_eq!(
            ok("a STATUS INBOX (messages recent uidnext uidvalidity unseen highestmodseq size deleted appendlimit)"),
            CommandBody::Status {
                mailbox: s("INBOX"),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::HighestModseq,
                    StatusItem::Size,
                    StatusItem::Deleted,
                    StatusItem::AppendLimit,
                ]
            }
        );
        bad("a STATUS INBOX ()");
        bad("a STATUS INBOX (FOO)");
        bad("a STATUS INBOX MESSAGES");
    }

    // ------------------------------------------------------------------ APPEND

    #[test]
    fn append_rfc3501_example() {
        assert_eq!(RFC3501_MESSAGE.len(), 310);
        let wire = format!("A003 APPEND saved-messages (\\Seen) {{310}}\r\n{RFC3501_MESSAGE}\r\n");
        let mut r = CommandReader::new(Limits::default());
        let ev = run(&mut r, wire.as_bytes(), 17);
        assert_eq!(ev.len(), 2);
        assert!(matches!(
            ev[0],
            Event::Continue {
                size: 310,
                binary: false,
                ..
            }
        ));
        let Event::Command(c) = &ev[1] else { panic!() };
        assert_eq!(
            okb(c),
            CommandBody::Append {
                mailbox: s("saved-messages"),
                flags: vec![s("\\Seen")],
                date: None,
                message: RFC3501_MESSAGE.as_bytes().to_vec(),
                binary: false,
            }
        );
    }

    #[test]
    fn append_date_time() {
        let CommandBody::Append {
            date,
            flags,
            message,
            ..
        } = ok("a APPEND INBOX () \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi")
        else {
            panic!()
        };
        assert_eq!(flags, Vec::<String>::new());
        assert_eq!(message, b"hi");
        // 1996-07-17T09:44:25Z
        assert_eq!(
            date,
            Some(DateTime {
                timestamp: 837_596_665,
                offset_minutes: -420
            })
        );
        // Space-padded day, lower-case month, positive zone.
        let CommandBody::Append { date, .. } =
            ok("a APPEND INBOX \" 1-jan-2000 00:30:00 +0100\" {1}\r\nx")
        else {
            panic!()
        };
        assert_eq!(
            date,
            Some(DateTime {
                timestamp: 946_683_000,
                offset_minutes: 60
            })
        );
        // Leap day; what imaplib.Time2Internaldate writes.
        let CommandBody::Append { date, .. } =
            ok("a APPEND INBOX (\\Seen \\Flagged $Label1) \"29-Feb-2024 23:59:59 +0000\" {1}\r\nx")
        else {
            panic!()
        };
        assert_eq!(date.map(|d| d.timestamp), Some(1_709_251_199));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for bad_date in [
            "30-Feb-2024 00:00:00 +0000",
            "29-Feb-2023 00:00:00 +0000",
            "00-Jan-2000 00:00:00 +0000",
            "01-Foo-2000 00:00:00 +0000",
            "01-Jan-2000 24:00:00 +0000",
            "01-Jan-2000 00:60:00 +0000",
            "01-Jan-2000 00:00:00 0000",
            "01-Jan-2000 00:00:00 +0060",
            "01-Jan-00 00:00:00 +0000",
            "01-Jan-2000 0:00:00 +0000",
            "01-Jan-2000 00:00:00",
            "001-Jan-2000 00:00:00 +0000",
        ] {
            bad(&format!("a APPEND INBOX \"{bad_date}\" {{1}}\r\nx"));
        }
    }

    #[test]
    fn append_binary_and_errors() {
        assert_eq!(
            okb(b"a APPEND Drafts (\\Draft) ~{3}\r\na\0b"),
            CommandBody::Append {
                mailbox: s("Drafts"),
                flags: vec![s("\\Draft")],
                date: None,
                message: b"a\0b".to_vec(),
                binary: true
            }
        );
        ok("a APPEND Drafts ~{3+}\r\nabc");
        bad("a APPEND INBOX \"hello\"");
        bad("a APPEND INBOX hello");
        bad("a APPEND INBOX {5}\r\nabc");
        bad("a APPEND INBOX {3}\r\nabc extra");
        bad("a APPEND INBOX (\\*) {1}\r\nx");
        bad("a APPEND INBOX");
    }

    // ------------------------------------------------------------------ SEARCH

    #[test]
    fn search_rfc3501_examples() {
        assert_eq!(
            search_of("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
            SearchKey::And(vec![
                SearchKey::Flagged,
                SearchKey::Since(date(1994, 2, 1)),
                SearchKey::Not(Box::new(SearchKey::From(s("Smith")))),
            ])
        );
        assert_eq!(
            search_of("A283 SEARCH TEXT \"string not in mailbox\""),
            SearchKey::Text(s("string not in mailbox"))
        );
        assert_eq!(
            ok("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX"),
            CommandBody::Search {
                uid: false,
                charset: Some(s("UTF-8")),
                criteria: SearchKey::Text(s("XXXXXX")),
                return_opts: None
            }
        );
    }

    #[test]
    fn search_thunderbird_style() {
        let wire =
            b"x UID SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {4+}\r\nt\xc3\xa9t) NOT DELETED";
        assert_eq!(
            okb(wire),
            CommandBody::Search {
                uid: true,
                charset: Some(s("UTF-8")),
                criteria: SearchKey::Or(
                    Box::new(SearchKey::And(vec![
                        SearchKey::From(s("a")),
                        SearchKey::Subject(s("t\u{e9}t")),
                    ])),
                    Box::new(SearchKey::Not(Box::new(SearchKey::Deleted))),
                ),
                return_opts: None
            }
        );
        assert_eq!(
            search_of("a UID SEARCH UID 1:* NOT DELETED"),
            SearchKey::And(vec![
                SearchKey::Uid(ranges(&[rng(v(1), SeqNum::Star)])),
                SearchKey::Not(Box::new(SearchKey::Deleted)),
            ])
        );
    }

    #[test]
    fn search_all_keys() {
        let q = "a SEARCH ALL ANSWERED BCC b BEFORE 1-Feb-1994 BODY x CC c DELETED DRAFT FLAGGED \
                 FROM f HEADER Message-ID <x@y> KEYWORD $Forwarded LARGER 100 NEW NOT SEEN OLD \
                 ON \"31-Dec-1999\" OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 \
                 SENTSINCE 3-Jan-2000 SINCE 04-Jan-2000 SMALLER 5 SUBJECT s TEXT t TO u UID 1,2 \
                 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD Junk UNSEEN 1:3,5 * $ \
                 MODSEQ 620162338 YOUNGER 3600 OLDER 60 (ALL)";
        let SearchKey::And(keys) = search_of(q) else {
            panic!()
        };
        use SearchKey as K;
        let want = vec![
            K::All,
            K::Answered,
            K::Bcc(s("b")),
            K::Before(date(1994, 2, 1)),
            K::Body(s("x")),
            K::Cc(s("c")),
            K::Deleted,
            K::Draft,
            K::Flagged,
            K::From(s("f")),
            K::Header(s("Message-ID"), s("<x@y>")),
            K::Keyword(s("$Forwarded")),
            K::Larger(100),
            K::New,
            K::Not(Box::new(K::Seen)),
            K::Old,
            K::On(date(1999, 12, 31)),
            K::Or(Box::new(K::Seen), Box::new(K::Unseen)),
            K::Recent,
            K::Seen,
            K::SentBefore(date(2000, 1, 1)),
            K::SentOn(date(2000, 1, 2)),
            K::SentSince(date(2000, 1, 3)),
            K::Since(date(2000, 1, 4)),
            K::Smaller(5),
            K::Subject(s("s")),
            K::Text(s("t")),
            K::To(s("u")),
            K::Uid(ranges(&[one(1), one(2)])),
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unkeyword(s("Junk")),
            K::Unseen,
            K::Sequence(ranges(&[rng(v(1), v(3)), one(5)])),
            K::Sequence(ranges(&[rng(SeqNum::Star, SeqNum::Star)])),
            K::Sequence(SequenceSet::Saved),
            K::Modseq(620162338),
            K::Younger(3600),
            K::Older(60),
            K::All,
        ];
        assert_eq!(keys, want);
    }

    #[test]
    fn search_modseq_and_return() {
        // RFC 7162 3.1.5.
        assert_eq!(
            search_of("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
            SearchKey::Modseq(620162338)
        );
        assert_eq!(
            search_of("a SEARCH modseq \"/flags/$Junk\" PRIV 1"),
            SearchKey::Modseq(1)
        );
        bad("a SEARCH MODSEQ \"/foo/x\" all 1");
        bad("a SEARCH MODSEQ \"/flags/x\" other 1");
        bad("a SEARCH MODSEQ 9223372036854775808");
        // RFC 4731 / 5182.
        assert_eq!(
            ok("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
            CommandBody::Search {
                uid: false,
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::Flagged,
                    SearchKey::Since(date(1994, 2, 1)),
                    SearchKey::Not(Box::new(SearchKey::From(s("Smith")))),
                ]),
                return_opts: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            }
        );
        let CommandBody::Search {
            return_opts, uid, ..
        } = ok("a UID SEARCH RETURN () ALL")
        else {
            panic!()
        };
        assert_eq!((return_opts, uid), (Some(vec![]), true));
        let CommandBody::Search {
            return_opts,
            charset,
            ..
        } = ok("A301 SEARCH RETURN (SAVE MAX ALL) CHARSET us-ascii SINCE 1-Feb-1994 $")
        else {
            panic!()
        };
        assert_eq!(charset.as_deref(), Some("US-ASCII"));
        assert_eq!(
            return_opts,
            Some(vec![
                SearchReturn::Save,
                SearchReturn::Max,
                SearchReturn::All
            ])
        );
        bad("a SEARCH RETURN (PARTIAL 1:10) ALL");
        bad("a SEARCH RETURN ALL");
        bad("a SEARCH CHARSET UTF-8 RETURN (MIN) ALL");
    }

    #[test]
    fn search_charsets() {
        let e = bad("a SEARCH CHARSET KOI8-R SUBJECT x");
        assert_eq!(
            (e.kind, e.tag.as_deref()),
            (ParseErrorKind::BadCharset, Some("a"))
        );
        let CommandBody::Search { criteria, .. } =
            okb(b"a SEARCH CHARSET \"ISO-8859-1\" SUBJECT {3}\r\nt\xe9t")
        else {
            panic!()
        };
        assert_eq!(criteria, SearchKey::Subject(s("t\u{e9}t")));
        assert!(parse_command(b"a SEARCH CHARSET UTF-8 SUBJECT {3}\r\nt\xe9t", false).is_err());
        assert!(parse_command(b"a SEARCH SUBJECT {3}\r\nt\xe9t", false).is_err());
    }

    #[test]
    fn search_errors_and_depth() {
        for q in [
            "a SEARCH",
            "a SEARCH ",
            "a SEARCH ALL ",
            "a SEARCH FOO",
            "a SEARCH (ALL",
            "a SEARCH ALL)",
            "a SEARCH ()",
            "a SEARCH NOT",
            "a SEARCH OR ALL",
            "a SEARCH SINCE 1-Feb-94",
            "a SEARCH SINCE 32-Jan-1994",
            "a SEARCH SINCE 1-Feb-1994x",
            "a SEARCH BEFORE \"1-Feb-1994",
            "a SEARCH 0",
            "a SEARCH 1:0",
            "a SEARCH 01",
            "a SEARCH 4294967296",
            "a SEARCH UID",
            "a SEARCH LARGER x",
            "a SEARCH YOUNGER 0",
            "a SEARCH HEADER \"a:b\" x",
            "a SEARCH HEADER \"\" x",
            "a SEARCH KEYWORD \\Seen",
            "a SEARCH 1,",
            "a SEARCH $:1",
        ] {
            bad(q);
        }
        let deep = |n: usize| format!("a SEARCH {}ALL{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(search_of(&deep(10)), SearchKey::All);
        assert!(bad(&deep(MAX_SEARCH_DEPTH)).message.contains("deep"));
        bad(&deep(100_000));
        bad(&format!("a SEARCH {}ALL", "NOT ".repeat(100_000)));
        bad(&format!("a SEARCH {}ALL", "OR ALL ".repeat(100_000)));
        // Many keys side by side are fine.
        let wide = format!(
            "a SEARCH {}",
            vec!["OR SEEN (ALL)"; 2000]
                .join(" ")
                .replace("(ALL)", "ALL")
        );
        let SearchKey::And(keys) = search_of(&wide) else {
            panic!()
        };
        assert_eq!(keys.len(), 2000);
    }

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

    // ------------------------------------------------------------------ FETCH

    #[test]
    fn fetch_macros() {
        use FetchAttr as F;
        assert_eq!(
            fetch_items("a FETCH 1 ALL"),
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]
        );
        assert_eq!(
            fetch_items("a FETCH 1 fast"),
            vec![F::Flags, F::InternalDate, F::Rfc822Size]
        );
        assert_eq!(
            fetch_items("a FETCH 1 FULL"),
            vec![
                F::Flags,
                F::InternalDate,
                F::Rfc822Size,
                F::Envelope,
                F::Body
            ]
        );
        bad("a FETCH 1 (ALL)");
        bad("a FETCH 1 (FLAGS ALL)");
        bad("a FETCH 1 ALLX");
        bad("a FETCH 1 ()");
        bad("a FETCH 1");
        bad("a FETCH 1 FLAGS UID");
    }

    #[test]
    fn fetch_items_all_forms() {
        use FetchAttr as F;
        let hf = |names: &[&str]| SectionText::HeaderFields(names.iter().map(|n| s(n)).collect());
        assert_eq!(
            ok("a1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT)])"),
            CommandBody::Fetch {
                uid: true,
                set: ranges(&[rng(v(1), SeqNum::Star)]),
                items: vec![
                    F::Uid,
                    F::Flags,
                    F::InternalDate,
                    F::Rfc822Size,
                    F::BodySection {
                        peek: true,
                        section: Section { part: vec![], text: Some(hf(&["DATE", "FROM", "SUBJECT"])) },
                        partial: None
                    },
                ],
                changed_since: None,
                vanished: false,
            }
        );
        assert_eq!(
            fetch_items("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")[1],
            F::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(hf(&["DATE", "FROM"]))
                },
                partial: None
            }
        );
        let items = fetch_items(
            "a fetch 1 (envelope bodystructure body rfc822 rfc822.header rfc822.text modseq \
             body[] body.peek[1.2.3] BODY[TEXT]<0.2048> BODY[1.MIME] BODY[2.HEADER] body[3.text] \
             BODY.PEEK[HEADER.FIELDS.NOT (Received \"X-Spam\" {4}\r\nDKIM)] BODY[4.1.HEADER.FIELDS (To)]<10.20> \
             BINARY[] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] binary.size[])",
        );
        let sec = |part: &[u32], text: Option<SectionText>| Section {
            part: part.to_vec(),
            text,
        };
        assert_eq!(
            items,
            vec![
                F::Envelope,
                F::BodyStructure,
                F::Body,
                F::Rfc822,
                F::Rfc822Header,
                F::Rfc822Text,
                F::Modseq,
                F::BodySection {
                    peek: false,
                    section: sec(&[], None),
                    partial: None
                },
                F::BodySection {
                    peek: true,
                    section: sec(&[1, 2, 3], None),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[], Some(SectionText::Text)),
                    partial: Some((0, 2048))
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[1], Some(SectionText::Mime)),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[2], Some(SectionText::Header)),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[3], Some(SectionText::Text)),
                    partial: None
                },
                F::BodySection {
                    peek: true,
                    section: sec(
                        &[],
                        Some(SectionText::HeaderFieldsNot(vec![
                            s("Received"),
                            s("X-Spam"),
                            s("DKIM")
                        ]))
                    ),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[4, 1], Some(hf(&["To"]))),
                    partial: Some((10, 20))
                },
                F::Binary {
                    peek: false,
                    part: vec![],
                    partial: None
                },
                F::Binary {
                    peek: true,
                    part: vec![1, 2],
                    partial: Some((0, 100))
                },
                F::BinarySize { part: vec![3] },
                F::BinarySize { part: vec![] },
            ]
        );
        for q in [
            "a FETCH 1 BODY[MIME]",
            "a FETCH 1 BODY[0]",
            "a FETCH 1 BODY[1.]",
            "a FETCH 1 BODY[1.2.FOO]",
            "a FETCH 1 BODY[HEADER.FIELDS]",
            "a FETCH 1 BODY[HEADER.FIELDS ()]",
            "a FETCH 1 BODY[HEADER.FIELDS (a:b)]",
            "a FETCH 1 BODY[TEXT",
            "a FETCH 1 BODY[]<0>",
            "a FETCH 1 BODY[]<0.0>",
            "a FETCH 1 BODY[]<1.2",
            "a FETCH 1 BODY[]<4294967296.1>",
            "a FETCH 1 BODY.PEEK",
            "a FETCH 1 BINARY[TEXT]",
            "a FETCH 1 BINARY.SIZE[1]<0.1>",
            "a FETCH 1 BINARY",
            "a FETCH 1 RFC822.FOO",
            "a FETCH 1 (FLAGS",
            "a FETCH 1 (FLAGS  UID)",
            "a FETCH * FLAGS ",
            "a FETCH 1 BODY[HEADER.FIELDS (DATE FROM)",
        ] {
            bad(q);
        }
    }

    #[test]
    fn fetch_modifiers() {
        let CommandBody::Fetch {
            changed_since,
            vanished,
            uid,
            ..
        } = ok("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
        else {
            panic!()
        };
        assert_eq!((changed_since, vanished, uid), (Some(12345), true, true));
        let CommandBody::Fetch {
            changed_since,
            vanished,
            ..
        } = ok("a003 FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)")
        else {
            panic!()
        };
        assert_eq!((changed_since, vanished), (Some(12345), false));
        let CommandBody::Fetch { changed_since, .. } = ok("a FETCH 1:* FAST (changedsince 0)")
        else {
            panic!()
        };
        assert_eq!(changed_since, Some(0));
        bad("a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)");
        bad("a UID FETCH 1 FLAGS (VANISHED)");
        bad("a UID FETCH 1 FLAGS (CHANGEDSINCE)");
        bad("a UID FETCH 1 FLAGS (FOO 1)");
        bad("a UID FETCH 1 FLAGS ()");
        bad("a UID FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)");
    }

    // ------------------------------------------------------------------ STORE

    #[test]
    fn store() {
        assert_eq!(
            ok("A003 STORE 2:4 +FLAGS (\\Deleted)"),
            CommandBody::Store {
                uid: false,
                set: ranges(&[rng(v(2), v(4))]),
                op: StoreOp::Add,
                silent: false,
                flags: vec![s("\\Deleted")],
                unchanged_since: None
            }
        );
        assert_eq!(
            ok("a UID STORE 1:* -flags.silent \\Seen $Junk"),
            CommandBody::Store {
                uid: true,
                set: ranges(&[rng(v(1), SeqNum::Star)]),
                op: StoreOp::Remove,
                silent: true,
                flags: vec![s("\\Seen"), s("$Junk")],
                unchanged_since: None
            }
        );
        assert_eq!(
            ok("a STORE $ FLAGS ()"),
            CommandBody::Store {
                uid: false,
                set: SequenceSet::Saved,
                op: StoreOp::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None
            }
        );
        // RFC 7162 3.1.3.
        let CommandBody::Store {
            unchanged_since,
            silent,
            ..
        } = ok("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)")
        else {
            panic!()
        };
        assert_eq!((unchanged_since, silent), (Some(12121230045), true));
        bad("a STORE 1 +FLAGS");
        bad("a STORE 1 +FLAGS ");
        bad("a STORE 1 FLAGS.LOUD (\\Seen)");
        bad("a STORE 1 *FLAGS (\\Seen)");
        bad("a STORE 1 +FLAGS (\\Seen");
        bad("a STORE 1 +FLAGS (\\*)");
        bad("a STORE 1 (UNCHANGEDSINCE 1) ");
        bad("a STORE 1 (FOO 1) FLAGS ()");
        bad("a STORE 1 (UNCHANGEDSINCE x) FLAGS ()");
    }

    // ------------------------------------------------------------------ SORT / THREAD

    #[test]
    fn sort_and_thread() {
        assert_eq!(
            ok("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
            CommandBody::Sort {
                uid: false,
                criteria: vec![
                    SortCriterion {
                        reverse: false,
                        key: SortKey::Subject
                    },
                    SortCriterion {
                        reverse: true,
                        key: SortKey::Date
                    },
                ],
                charset: s("UTF-8"),
                search: SearchKey::All,
                return_opts: None
            }
        );
        assert_eq!(
            ok("A284 UID SORT (arrival cc from size to displayfrom displayto) US-ASCII SUBJECT \"afternoon meeting\" SINCE 1-Feb-1994"),
            CommandBody::Sort {
                uid: true,
                criteria: [
                    SortKey::Arrival,
                    SortKey::Cc,
                    SortKey::From,
                    SortKey::Size,
                    SortKey::To,
                    SortKey::DisplayFrom,
                    SortKey::DisplayTo
                ]
                .into_iter()
                .map(|key| SortCriterion { reverse: false, key })
                .collect(),
                charset: s("US-ASCII"),
                search: SearchKey::And(vec![
                    SearchKey::Subject(s("afternoon meeting")),
                    SearchKey::Since(date(1994, 2, 1))
                ]),
                return_opts: None
            }
        );
        let CommandBody::Sort { return_opts, .. } =
            ok("C01 UID SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 UNDELETED")
        else {
            panic!()
        };
        assert_eq!(
            return_opts,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Max,
                SearchReturn::Count
            ])
        );
        assert_eq!(
            ok("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000"),
            CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::OrderedSubject,
                charset: s("UTF-8"),
                search: SearchKey::Since(date(2000, 3, 5))
            }
        );
        assert_eq!(
            ok("A284 UID THREAD REFERENCES US-ASCII TEXT \"gewp\""),
            CommandBody::Thread {
                uid: true,
                algorithm: ThreadAlgorithm::References,
                charset: s("US-ASCII"),
                search: SearchKey::Text(s("gewp"))
            }
        );
        assert_eq!(
            bad("a SORT (DATE) KOI8-R ALL").kind,
            ParseErrorKind::BadCharset
        );
        bad("a SORT () UTF-8 ALL");
        bad("a SORT (REVERSE) UTF-8 ALL");
        bad("a SORT (REVERSE REVERSE DATE) UTF-8 ALL");
        bad("a SORT DATE UTF-8 ALL");
        bad("a SORT (DATE) ALL");
        bad("a SORT (DATE) UTF-8");
        bad("a THREAD REFS UTF-8 ALL");
        bad("a THREAD REFERENCES ALL");
    }

    // ------------------------------------------------------------------ QUOTA / ACL

    #[test]
    fn quota_and_acl() {
        assert_eq!(
            ok("G0001 GETQUOTA \"!partition/sda4\""),
            CommandBody::GetQuota(s("!partition/sda4"))
        );
        assert_eq!(ok("a GETQUOTA \"\""), CommandBody::GetQuota(s("")));
        assert_eq!(
            ok("A003 GETQUOTAROOT inbox"),
            CommandBody::GetQuotaRoot(s("INBOX"))
        );
        assert_eq!(
            ok("S0000 SETQUOTA \"User quota\" (STORAGE 512 message 1000)"),
            CommandBody::SetQuota {
                root: s("User quota"),
                limits: vec![(s("STORAGE"), 512), (s("MESSAGE"), 1000)]
            }
        );
        assert_eq!(
            ok("a SETQUOTA \"\" ()"),
            CommandBody::SetQuota {
                root: s(""),
                limits: vec![]
            }
        );
        bad("a SETQUOTA x (STORAGE)");
        bad("a SETQUOTA x STORAGE 1");
        assert_eq!(
            ok("A035 SETACL INBOX/Drafts John lrQswicda"),
            CommandBody::SetAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("John"),
                rights: s("lrQswicda")
            }
        );
        assert_eq!(
            ok("A036 SETACL INBOX/Drafts anyone -w"),
            CommandBody::SetAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("anyone"),
                rights: s("-w")
            }
        );
        assert_eq!(
            ok("A001 SETACL inbox \"Fred\" +rwipslxetad"),
            CommandBody::SetAcl {
                mailbox: s("INBOX"),
                identifier: s("Fred"),
                rights: s("+rwipslxetad")
            }
        );
        assert_eq!(
            ok("A001 DELETEACL INBOX/Drafts John"),
            CommandBody::DeleteAcl {
                mailbox: s("INBOX/Drafts"),
                identifier: s("John")
            }
        );
        assert_eq!(
            ok("a001 LISTRIGHTS ~/Mail/saved smith"),
            CommandBody::ListRights {
                mailbox: s("~/Mail/saved"),
                identifier: s("smith")
            }
        );
        assert_eq!(ok("A002 GETACL INBOX"), CommandBody::GetAcl(s("INBOX")));
        assert_eq!(ok("A003 MYRIGHTS INBOX"), CommandBody::MyRights(s("INBOX")));
        bad("a SETACL INBOX Fred");
        bad("a DELETEACL INBOX");
        bad("a GETACL");
    }

    // ------------------------------------------------------------------ robustness

    fn corpus() -> Vec<&'static [u8]> {
        vec![
            b"a1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT)])",
            b"x UID SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {4+}\r\nt\xc3\xa9t) NOT DELETED",
            b"A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\nHello",
            b"a APPEND Drafts ~{3+}\r\na\0b",
            b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man",
            b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 4:6)))",
            b"a EXAMINE Entw&APw-rfe (CONDSTORE)",
            b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
            b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted $Junk)",
            b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN HIGHESTMODSEQ))",
            b"A284 UID SORT RETURN (MIN) (REVERSE DATE SUBJECT) UTF-8 SUBJECT \"afternoon meeting\" SINCE 1-Feb-1994",
            b"A283 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000 (OR SEEN (NOT 1:5,7) $)",
            b"a SEARCH RETURN (SAVE MIN) MODSEQ \"/flags/\\\\draft\" all 620162338 HEADER X-Foo {3}\r\nbar",
            b"a fetch 1 (BODY[4.1.HEADER.FIELDS.NOT (To)]<10.20> BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] ENVELOPE)",
            b"t1 CREATE \"Important Messages\" (USE (\\Important \\Sent))",
            b"a023 ID (\"name\" \"sodr\" \"os\" NIL)",
            b"a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0",
            b"S0000 SETQUOTA \"User quota\" (STORAGE 512)",
            b"A035 SETACL INBOX/Drafts John lrQswicda",
            b"a ENABLE QRESYNC UTF8=ACCEPT",
            b"A202 UID EXPUNGE 3000:3002",
            b"a UID MOVE $ Trash",
            b"a STATUS INBOX (MESSAGES SIZE DELETED APPENDLIMIT)",
            b"a COMPRESS DEFLATE",
            b"a SEARCH YOUNGER 3600 OLDER 60 SENTON \"31-Dec-1999\" LARGER 100 UID 1,2:*",
        ]
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
