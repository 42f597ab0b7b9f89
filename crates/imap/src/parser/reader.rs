//! Command assembly: [`CommandReader`] finds where each command ends in the byte
//! stream (a command may span several lines joined by literals), asks for `+`
//! continuations, and enforces [`Limits`] while keeping the stream in step. Pure, no I/O.

use super::announce::{Announce, Scan};
use super::lexer::is_tag_char;

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
    /// [`parse_command`](super::parse_command).
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
    pub(super) buf: Vec<u8>,
    /// Non-literal bytes in `buf`.
    pub(super) text_len: usize,
    /// A CR ended the previous input inside a line; it is command text unless an LF
    /// follows.
    pending_cr: bool,
    scan: Scan,
    /// [`Event::Continue`] was the last event: [`refuse`](Self::refuse) is possible.
    sync_pending: bool,
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

    /// Bytes of the command being assembled that are held in memory.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for the command being assembled: what it holds, and room for
    /// the rest of a literal announced (see [`Event::Continue`]).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
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
        // The literal's room at once (it is within the limits, checked above): the
        // buffer never doubles past what it will hold, so what the caller accounts
        // for with `capacity` is what is allocated. Pages are touched only as bytes
        // arrive.
        self.buf.reserve_exact(
            usize::try_from(a.size)
                .unwrap_or(usize::MAX)
                .saturating_add(2),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_command;
    use crate::parser::test_util::*;
    use crate::types::CommandBody;

    fn cmd(b: &[u8]) -> Event {
        Event::Command(b.to_vec())
    }

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
}
