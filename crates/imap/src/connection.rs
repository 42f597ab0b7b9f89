//! The connection around a session: the command loop from accept to close, and the
//! changes of the byte stream it carries out between two commands (STARTTLS, COMPRESS)
//! or of the session's state (UNAUTHENTICATE).
//!
//! An upgrade asked for by a command takes effect only after that command's tagged OK
//! is flushed, so the client reads the OK in the old framing and everything after it
//! in the new one.

use std::sync::Arc;

use tern_net::stream::{Input, Output};
use tern_net::{AuthThrottle, Connection, MemoryBudget};
use tern_store::Store;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::mime::MessageCaches;
use crate::parser::parse_command;
use crate::session::{Enabled, Outcome, Session, Upgrade, IO_BUFFER, STARTTLS_HANDSHAKE_TIMEOUT};
use crate::ImapConfig;

/// Runs one connection to its end.
pub(crate) async fn run(
    conn: Connection,
    store: Store,
    config: Arc<ImapConfig>,
    cache: Arc<MessageCaches>,
    throttle: Arc<AuthThrottle>,
    budget: MemoryBudget,
    running: crate::placement::Running,
) {
    let Connection {
        transport: stream,
        peer,
        mut shutdown,
    } = conn;
    let tls = stream.is_tls();
    let config_preauth = config.preauth_timeout;
    let (read, write) = stream.split();
    let mut reader = BufReader::with_capacity(IO_BUFFER, read);
    let mut session = Session {
        store,
        config,
        cache,
        actor: None,
        selected: None,
        enabled: Enabled::default(),
        out: Vec::new(),
        fetching: None,
        writer: BufWriter::with_capacity(IO_BUFFER, write),
        auth_failures: 0,
        peer,
        throttle,
        stopping: shutdown.clone(),
        hold: budget.reservation(),
        budget,
        running,
        tls,
        compressed: false,
        upgrade: None,
        preauth_deadline: tokio::time::Instant::now() + config_preauth,
        notifying: None,
        expunges_reported: false,
    };
    tracing::debug!(%peer, tls, "imap connection");
    let mut commands =
        crate::parser::CommandReader::new(crate::reader::limits(&session.config, false));
    let greeting = format!(
        "* OK [CAPABILITY {}] {} tern IMAP ready\r\n",
        session.capabilities(),
        session.config.hostname
    );
    if session.writer.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    loop {
        if reader.buffer().is_empty() && session.writer.flush().await.is_err() {
            return;
        }
        if !commands.in_command() {
            // The last command's literals are gone: give their share of the budget back.
            session.hold = session.budget.reservation();
        }
        // Before login the connection's whole life is bounded, not just each wait.
        let logged_in = session.actor.is_some();
        let idle_end = tokio::time::Instant::now() + session.config.idle_timeout;
        let deadline = if logged_in {
            idle_end
        } else {
            idle_end.min(session.preauth_deadline)
        };
        let incoming = tokio::select! {
            r = tokio::time::timeout_at(deadline, crate::reader::read_command(&mut reader, &mut session.writer, &mut commands, logged_in.then_some(&mut session.hold), session.config.command_timeout)) => r,
            _ = shutdown.changed() => {
                let _ = session.writer.write_all(b"* BYE Server shutting down\r\n").await;
                let _ = session.writer.flush().await;
                return;
            }
            _ = crate::notify::woken(&mut session.notifying) => {
                // NOTIFY: tell the client now; the command being read waits in `commands`.
                if !session.deliver_notifications().await {
                    return;
                }
                continue;
            }
        };
        let bytes = match incoming {
            Err(_) => {
                let bye: &[u8] = if logged_in {
                    b"* BYE Autologout: idle too long\r\n"
                } else {
                    b"* BYE Autologout: not logged in in time\r\n"
                };
                let _ = session.writer.write_all(bye).await;
                let _ = session.writer.flush().await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "imap read failed");
                return;
            }
            Ok(Ok(
                crate::reader::Incoming::Eof
                | crate::reader::Incoming::OverBudget
                | crate::reader::Incoming::Stalled,
            )) => return,
            Ok(Ok(crate::reader::Incoming::Refused { tag, response })) => {
                let line = match tag {
                    Some(t) => format!("{t} {response}\r\n"),
                    None => format!("* {response}\r\n"),
                };
                if session.writer.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Ok(crate::reader::Incoming::Command(bytes))) => bytes,
        };
        let command = match parse_command(&bytes, session.enabled.utf8) {
            Ok(c) => c,
            Err(e) => {
                let response = match e.kind {
                    crate::parser::ParseErrorKind::TooComplex => {
                        format!("NO [LIMIT] {}", e.message)
                    }
                    crate::parser::ParseErrorKind::BadName => {
                        format!("NO [CANNOT] {}", e.message)
                    }
                    crate::parser::ParseErrorKind::BadCharset => {
                        format!(
                            "NO [BADCHARSET ({})] {}",
                            crate::parser::SEARCH_CHARSETS.join(" "),
                            e.message
                        )
                    }
                    _ => format!("BAD {}", e.message),
                };
                let line = match &e.tag {
                    Some(t) => format!("{t} {response}\r\n"),
                    None => format!("* {response}\r\n"),
                };
                if session.writer.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
        };
        drop(bytes);
        let close = session.handle(command, &mut reader).await;
        // Login (or STARTTLS, which logs out) changes the literals allowed; the reader
        // stopped at the end of this command, so the next one is read under the new limits.
        commands.set_limits(crate::reader::limits(
            &session.config,
            session.actor.is_some(),
        ));
        if close || session.writer.flush().await.is_err() {
            let _ = session.writer.flush().await;
            return;
        }
        if let Some(upgrade) = session.upgrade.take() {
            if !switch_stream(upgrade, &mut session, &mut reader, &mut commands).await {
                tracing::debug!(%peer, "imap stream upgrade failed");
                return;
            }
        }
    }
}

/// Carries out STARTTLS or COMPRESS once its tagged OK is flushed; false when the
/// connection must close.
async fn switch_stream(
    upgrade: Upgrade,
    session: &mut Session<Output>,
    reader: &mut BufReader<Input>,
    commands: &mut crate::parser::CommandReader,
) -> bool {
    let old_reader = std::mem::replace(reader, BufReader::with_capacity(1, Input::Closed));
    let old_writer = std::mem::replace(
        &mut session.writer,
        BufWriter::with_capacity(1, Output::Closed),
    );
    let (input, output) = match upgrade {
        Upgrade::Tls => {
            let Some(tls) = session.config.tls.clone() else {
                return false;
            };
            // Whatever the client sent after STARTTLS and before the handshake was read
            // in clear text and could have been injected: it is dropped with the
            // buffer, never executed (RFC 9051 6.2.1, RFC 3501 11.1).
            let Some(plain) =
                tern_net::stream::reunite_plain(old_reader.into_inner(), old_writer.into_inner())
            else {
                return false;
            };
            let Some(stream) =
                tern_net::stream::accept_tls(plain, tls, STARTTLS_HANDSHAKE_TIMEOUT).await
            else {
                return false;
            };
            commands.reset();
            commands.set_limits(crate::reader::limits(&session.config, false));
            // Nothing learned before TLS is kept (the client asks for capabilities again).
            session.tls = true;
            session.actor = None;
            session.selected = None;
            session.enabled = Enabled::default();
            stream.split()
        }
        Upgrade::Deflate => {
            // Bytes already read past the COMPRESS command are compressed data.
            let pending = old_reader.buffer().to_vec();
            let Some(halves) = tern_net::stream::deflate(
                old_reader.into_inner(),
                pending,
                old_writer.into_inner(),
                IO_BUFFER,
            ) else {
                return false;
            };
            session.compressed = true;
            halves
        }
    };
    *reader = BufReader::with_capacity(IO_BUFFER, input);
    session.writer = BufWriter::with_capacity(IO_BUFFER, output);
    true
}

impl<W> Session<W> {
    /// UNAUTHENTICATE (RFC 8437): back to the not-authenticated state, as if the
    /// connection had just been accepted (TLS and COMPRESS stay).
    pub(crate) fn unauthenticate(&mut self) -> Outcome {
        self.selected = None;
        self.notifying = None;
        self.actor = None;
        self.enabled = Enabled::default();
        self.auth_failures = 0;
        self.preauth_deadline = tokio::time::Instant::now() + self.config.preauth_timeout;
        Outcome::ok("UNAUTHENTICATE completed")
    }

    /// STARTTLS (RFC 9051 6.2.1): the handshake follows the tagged OK, in `run`.
    pub(crate) fn starttls(&mut self) -> Outcome {
        if self.tls {
            return Outcome::bad("TLS is already active");
        }
        if self.config.tls.is_none() {
            return Outcome::no("TLS is not configured on this listener");
        }
        if self.actor.is_some() {
            return Outcome::bad("STARTTLS is only allowed before login");
        }
        self.upgrade = Some(Upgrade::Tls);
        Outcome::ok("Begin TLS negotiation now")
    }

    /// COMPRESS (RFC 4978): DEFLATE in both directions from the byte after the tagged
    /// OK, switched on in `run`.
    pub(crate) fn compress(&mut self, mechanism: &str) -> Outcome {
        if self.actor.is_none() {
            return Outcome::no("Log in first");
        }
        if !mechanism.eq_ignore_ascii_case("DEFLATE") {
            return Outcome::bad("Unknown compression mechanism");
        }
        if self.compressed {
            return Outcome::no("[COMPRESSIONACTIVE] DEFLATE is already active");
        }
        self.upgrade = Some(Upgrade::Deflate);
        Outcome::ok("DEFLATE active")
    }
}
