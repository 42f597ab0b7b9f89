//! Reading whole commands from the socket with [`CommandReader`], answering literal
//! continuations as it goes.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

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
}

/// The reader's limits from the listener's configuration.
pub(crate) fn limits(config: &ImapConfig) -> Limits {
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
pub(crate) async fn read_command<R, W>(
    reader: &mut BufReader<R>,
    writer: &mut BufWriter<W>,
    commands: &mut CommandReader,
) -> std::io::Result<Incoming>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Incoming::Eof);
        }
        let (used, event) = commands.feed(buf);
        reader.consume(used);
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
