//! Reading whole commands from the socket with [`CommandReader`], answering literal
//! continuations as it goes.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use tern_net::Reservation;

use crate::parser::{CommandReader, Event, Limits, Rejection};
use crate::ImapConfig;

/// What the next command read produced.
pub(crate) enum Incoming {
    /// A complete command for `parse_command`.
    Command(Vec<u8>),
    /// The command was refused and consumed; send `tag response` (or `* response`).
    Refused {
        /// The command's tag, if it had one.
        tag: Option<String>,
        /// `BAD ...` or `NO [TOOBIG] ...`.
        response: String,
    },
    /// The client closed the connection, or sent what cannot be kept in step with.
    Eof,
    /// A non-synchronizing literal outgrew the process's memory budget: it cannot be
    /// refused without reading it, so the connection is closed (`* BYE` sent).
    OverBudget,
    /// A command was begun and then nothing came for `stall`: the connection is closed
    /// (`* BYE` sent), giving back what the partial command held.
    Stalled,
}

/// Largest synchronizing literal accepted before authentication. LOGIN's user name and
/// password, an `ID` parameter, a SASL initial response: nothing a client needs to send
/// before login comes near it, while 20,000 connections each holding one still fit in
/// 160 MiB (the 64 MiB literal allowed after login would let 30 connections hold 2 GB).
pub(crate) const PREAUTH_MAX_LITERAL: usize = 8 * 1024;

/// Largest non-synchronizing literal accepted before authentication: the 4096 bytes of
/// LITERAL- (RFC 7888 section 5), which is what the greeting advertises.
pub(crate) const PREAUTH_MAX_NONSYNC_LITERAL: usize = 4096;

/// Longest command text (outside literals) accepted before authentication: room for
/// the largest ID command RFC 2971 allows (30 field-value pairs, values up to 1024
/// octets), which clients send before logging in. The buffer grows to it only for a
/// line that long.
pub(crate) const PREAUTH_MAX_LINE: usize = 40 * 1024;

/// The reader's limits from the listener's configuration, for a connection that is
/// (`authenticated`) or is not yet logged in.
///
/// Before login (RFC 7888 LITERAL-): a synchronizing literal over
/// [`PREAUTH_MAX_LITERAL`] is refused with `NO [TOOBIG]` and never gets its `+`, so the
/// client sends nothing; a non-synchronizing one over [`PREAUTH_MAX_NONSYNC_LITERAL`]
/// cannot be refused without reading it, so nothing is read: `max_discard` is 0 and the
/// connection gets `* BYE [TOOBIG]` and is closed. After login, LITERAL+ and the
/// configured `max_literal` apply (a refused non-synchronizing literal is read and
/// thrown away, up to the reader's default 1 GiB, to keep the session).
pub(crate) fn limits(config: &ImapConfig, authenticated: bool) -> Limits {
    if !authenticated {
        let max_line = config.max_line.min(PREAUTH_MAX_LINE);
        let max_literal = config.max_literal.min(PREAUTH_MAX_LITERAL);
        return Limits {
            max_line,
            max_literal,
            max_nonsync_literal: max_literal.min(PREAUTH_MAX_NONSYNC_LITERAL),
            max_command: max_literal + max_line,
            max_discard: 0,
        };
    }
    Limits {
        max_line: config.max_line,
        max_literal: config.max_literal,
        max_nonsync_literal: config.max_literal,
        max_command: config.max_literal + config.max_line,
        ..Limits::default()
    }
}

/// Reads until a command is complete or refused. Cancel-safe: the bytes consumed are
/// already in `commands`, which keeps the partial command for the next call.
///
/// After login, the bytes the command holds are covered by `hold`, a share of the
/// process's memory budget: a synchronizing literal that does not fit is refused before its `+`
/// (`NO [LIMIT]`, the client may try again later), and a non-synchronizing one that
/// outgrows it ends the connection. A command begun must keep arriving: `stall` without
/// a byte ends the connection too. So many large uploads at once cannot add more
/// memory than the budget, whatever `max_literal` allows one of them.
pub(crate) async fn read_command<R, W>(
    reader: &mut BufReader<R>,
    writer: &mut BufWriter<W>,
    commands: &mut CommandReader,
    mut hold: Option<&mut Reservation>,
    stall: std::time::Duration,
) -> std::io::Result<Incoming>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let buf = if commands.in_command() {
            // Half a command (an unfinished literal above all) holds memory: it must
            // keep coming.
            match tokio::time::timeout(stall, reader.fill_buf()).await {
                Ok(read) => read?,
                Err(_) => {
                    writer
                        .write_all(b"* BYE Command not completed in time\r\n")
                        .await?;
                    writer.flush().await?;
                    return Ok(Incoming::Stalled);
                }
            }
        } else {
            reader.fill_buf().await?
        };
        if buf.is_empty() {
            return Ok(Incoming::Eof);
        }
        let (used, event) = commands.feed(buf);
        reader.consume(used);
        // What is allocated, not only what arrived: an announced literal's room is
        // reserved at once. (Before login there is no hold: a command is bounded by the
        // pre-login limits, and pre-login clients must not be able to spend the budget
        // deliveries need.)
        let covered = |hold: &mut Option<&mut Reservation>, bytes: usize| {
            hold.as_mut().is_none_or(|h| h.cover(bytes))
        };
        if let Event::Continue { tag, .. } = &event {
            // The client waits for "+": a literal that does not fit is refused before
            // any of it is sent.
            if !covered(&mut hold, commands.capacity()) {
                let tag = tag.clone();
                commands.refuse();
                return Ok(Incoming::Refused {
                    tag,
                    response: "NO [LIMIT] Too much data in transit, try again later".to_owned(),
                });
            }
        } else if !covered(&mut hold, commands.capacity()) {
            // A non-synchronizing literal arrives anyway: it cannot be refused unread.
            writer
                .write_all(b"* BYE [LIMIT] Too much data in transit, try again later\r\n")
                .await?;
            writer.flush().await?;
            return Ok(Incoming::OverBudget);
        }
        match event {
            Event::NeedMore => {}
            Event::Continue { .. } => {
                writer.write_all(b"+ Ready for literal data\r\n").await?;
                writer.flush().await?;
            }
            Event::Command(bytes) => return Ok(Incoming::Command(bytes)),
            Event::Rejected { tag, reason } => {
                let response = match reason {
                    Rejection::LineTooLong => "BAD Command line too long".to_owned(),
                    Rejection::LiteralTooBig { size, .. } => {
                        format!("NO [TOOBIG] Literal of {size} bytes is too big")
                    }
                    Rejection::CommandTooBig => "NO [TOOBIG] Command too big".to_owned(),
                };
                return Ok(Incoming::Refused { tag, response });
            }
            Event::Fatal { .. } => {
                writer
                    .write_all(b"* BYE [TOOBIG] Literal too big to skip\r\n")
                    .await?;
                writer.flush().await?;
                return Ok(Incoming::Eof);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_event(authenticated: bool, input: &[u8]) -> Event {
        let mut r = CommandReader::new(limits(&ImapConfig::default(), authenticated));
        r.feed(input).1
    }

    #[test]
    fn literals_before_and_after_login() {
        // Before login: small literals only, and a large non-synchronizing one is fatal.
        assert!(matches!(
            first_event(false, b"a LOGIN {8192}\r\n"),
            Event::Continue { size: 8192, .. }
        ));
        assert!(matches!(
            first_event(false, b"a LOGIN {8193}\r\n"),
            Event::Rejected {
                reason: Rejection::LiteralTooBig {
                    synchronizing: true,
                    ..
                },
                ..
            }
        ));
        assert_eq!(first_event(false, b"a LOGIN {4096+}\r\n"), Event::NeedMore);
        assert!(matches!(
            first_event(false, b"a LOGIN {4097+}\r\n"),
            Event::Fatal { .. }
        ));
        // After login: the configured 64 MiB.
        assert!(matches!(
            first_event(true, b"a APPEND x {67108864}\r\n"),
            Event::Continue { .. }
        ));
        assert_eq!(
            first_event(true, b"a APPEND x {67108864+}\r\n"),
            Event::NeedMore
        );
    }
}
