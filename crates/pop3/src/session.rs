//! One POP3 connection: the AUTHORIZATION and TRANSACTION states, and the UPDATE step
//! at QUIT.

use std::sync::Arc;

use tern_net::lines::{read_line, Line};
use tern_net::{AuthThrottle, Connection, Input, Output, Peer};
use tern_store::{Actor, Flag, FlagOp, Flags, MessageFile, Store, StoreError};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::time::Instant;

use crate::command::{parse, Command, ParseError};
use crate::maildrop::Maildrop;
use crate::{Lock, Locks, Pop3Config};
use tern_net::dotstuff::{DotStuffer, Part};

mod auth;

/// Longest command line: an AUTH initial response of the SASL maximum, and a margin.
const MAX_LINE: usize = tern_net::sasl::MAX_RESPONSE + 128;

/// Bad commands tolerated before the connection is closed.
const MAX_ERRORS: u32 = 20;

/// Failed logins tolerated on one connection.
const MAX_AUTH_FAILURES: u32 = 3;

/// Bytes of a message read from its file at a time.
const CHUNK: usize = 128 * 1024;

/// The write buffer: small, so an idle connection holds little; a message chunk larger
/// than it goes to the socket without a copy.
const OUT_BUFFER: usize = 8 * 1024;

/// How long a client has to complete the TLS handshake after STLS.
const STLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the connection does after a command.
enum Next {
    Continue,
    Close,
    Tls,
}

/// Logged in: the TRANSACTION state.
struct Transaction {
    actor: Actor,
    maildrop: Maildrop,
    /// Changes to INBOX since the snapshot (this process's): while there are none, a
    /// message is read without asking the store whether it was expunged meanwhile.
    changes: tokio::sync::watch::Receiver<tern_store::Modseq>,
    /// Held until the session ends, however it ends.
    _lock: Lock,
}

struct Session {
    store: Store,
    config: Arc<Pop3Config>,
    throttle: Arc<AuthThrottle>,
    locks: Arc<Locks>,
    peer: Peer,
    tls: bool,
    out: BufWriter<Output>,
    /// The name given by USER, waiting for PASS.
    user: Option<String>,
    txn: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
    preauth_deadline: Instant,
}

/// Runs one session to its end. Nothing is deleted unless the client's QUIT is read.
pub(crate) async fn run(
    conn: Connection,
    store: Store,
    config: Arc<Pop3Config>,
    throttle: Arc<AuthThrottle>,
    locks: Arc<Locks>,
) {
    let Connection {
        transport,
        peer,
        mut shutdown,
    } = conn;
    let tls = transport.is_tls();
    let (input, output) = transport.split();
    let mut reader = BufReader::with_capacity(4096, input);
    let mut s = Session {
        preauth_deadline: Instant::now() + config.preauth_timeout,
        store,
        config,
        throttle,
        locks,
        peer,
        tls,
        out: BufWriter::with_capacity(OUT_BUFFER, output),
        user: None,
        txn: None,
        errors: 0,
        auth_failures: 0,
    };
    tracing::debug!(%peer, "pop3 connection");
    let greeting = format!("+OK {} tern POP3 server ready", s.config.hostname);
    if s.reply(&greeting).await.is_err() {
        return;
    }
    loop {
        // Answers are flushed only when no pipelined command is waiting (RFC 2449
        // PIPELINING): a batch of RETRs goes out in as few writes as their size allows.
        if reader.buffer().is_empty() && s.out.flush().await.is_err() {
            return;
        }
        let deadline = if s.txn.is_some() {
            Instant::now() + s.config.idle_timeout
        } else {
            s.preauth_deadline
        };
        let line = tokio::select! {
            line = tokio::time::timeout_at(deadline, read_line(&mut reader, MAX_LINE)) => line,
            _ = shutdown.changed() => {
                let _ = s.reply("-ERR [SYS/TEMP] Server shutting down, nothing deleted").await;
                let _ = s.out.flush().await;
                return;
            }
        };
        let next = match line {
            Err(_) => {
                let _ = s
                    .reply("-ERR Autologout: idle too long, nothing deleted")
                    .await;
                Next::Close
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "pop3 read failed");
                return;
            }
            Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                s.error("-ERR Line too long").await;
                Next::Continue
            }
            Ok(Ok(Line::Complete(line))) => match s.command(&line, &mut reader).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "pop3 write failed");
                    return;
                }
            },
        };
        let next = if s.errors > MAX_ERRORS {
            let _ = s.reply("-ERR Too many errors, closing connection").await;
            Next::Close
        } else {
            next
        };
        match next {
            Next::Continue => {}
            Next::Close => {
                let _ = s.out.flush().await;
                return;
            }
            Next::Tls => {
                if !start_tls(&mut s, &mut reader).await {
                    return;
                }
            }
        }
    }
}

/// Carries out STLS after its `+OK` (RFC 2595 4): whatever the client sent after STLS
/// in clear text is dropped with the old buffer, never executed.
async fn start_tls(s: &mut Session, reader: &mut BufReader<Input>) -> bool {
    if s.out.flush().await.is_err() {
        return false;
    }
    let Some(config) = s.config.tls.clone() else {
        return false;
    };
    let old_reader = std::mem::replace(reader, BufReader::with_capacity(1, Input::Closed));
    let old_out = std::mem::replace(&mut s.out, BufWriter::with_capacity(1, Output::Closed));
    let Some(plain) =
        tern_net::stream::reunite_plain(old_reader.into_inner(), old_out.into_inner())
    else {
        return false;
    };
    let Some(stream) = tern_net::stream::accept_tls(plain, config, STLS_HANDSHAKE_TIMEOUT).await
    else {
        return false;
    };
    let (input, output) = stream.split();
    *reader = BufReader::with_capacity(4096, input);
    s.out = BufWriter::with_capacity(OUT_BUFFER, output);
    s.tls = true;
    s.user = None;
    true
}

/// The `-ERR` response code for a store failure (RFC 3206).
fn store_failure(e: &StoreError) -> &'static str {
    if e.is_transient() {
        "-ERR [SYS/TEMP] Temporary failure, try again later"
    } else {
        "-ERR [SYS/PERM] The maildrop cannot be read"
    }
}

impl Session {
    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.out.write_all(text.as_bytes()).await?;
        self.out.write_all(b"\r\n").await
    }

    async fn error(&mut self, text: &str) {
        self.errors += 1;
        let _ = self.reply(text).await;
    }

    /// A password may be sent: over TLS, or in clear text from this machine when the
    /// configuration allows it (never from another host: it would cross the network
    /// readable).
    fn plaintext_auth_allowed(&self) -> bool {
        self.tls || (self.config.plaintext_auth && self.peer.is_local())
    }

    fn capabilities(&self) -> String {
        let mut caps = String::from("+OK Capability list follows\r\n");
        for c in [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "UTF8",
            "IMPLEMENTATION tern",
        ] {
            caps.push_str(c);
            caps.push_str("\r\n");
        }
        if let Some(delay) = self.config.login_delay {
            caps.push_str(&format!("LOGIN-DELAY {}\r\n", delay.as_secs()));
        }
        if self.txn.is_none() {
            if !self.tls && self.config.tls.is_some() {
                caps.push_str("STLS\r\n");
            }
            if self.plaintext_auth_allowed() {
                caps.push_str("USER\r\nSASL ");
                caps.push_str(&tern_net::sasl::MECHANISMS.join(" "));
                caps.push_str("\r\n");
            }
        }
        caps.push('.');
        caps
    }

    async fn command(
        &mut self,
        line: &[u8],
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Next> {
        let command = match parse(line) {
            Ok(c) => c,
            Err(e @ ParseError::Unknown) | Err(e @ ParseError::Syntax(_)) => {
                self.error(&format!("-ERR {e}")).await;
                return Ok(Next::Continue);
            }
        };
        match command {
            Command::Capa => {
                let caps = self.capabilities();
                self.reply(&caps).await?
            }
            Command::Quit => return self.quit().await,
            Command::Apop => self.error("-ERR APOP is not offered").await,
            c if self.txn.is_none() => return self.authorization(c, reader).await,
            c => self.transaction(c).await?,
        }
        Ok(Next::Continue)
    }

    /// AUTHORIZATION state commands (RFC 1939 4).
    async fn authorization(
        &mut self,
        command: Command,
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Next> {
        let privacy = "-ERR [AUTH] Passwords only over TLS: use STLS first";
        match command {
            Command::Stls if self.tls => self.error("-ERR Already using TLS").await,
            Command::Stls if self.config.tls.is_none() => {
                self.error("-ERR STLS is not available").await
            }
            Command::Stls => {
                self.reply("+OK Begin TLS negotiation").await?;
                return Ok(Next::Tls);
            }
            Command::Utf8 => self.reply("+OK UTF-8 enabled").await?,
            Command::User(_) | Command::Pass(_) | Command::Auth(_)
                if !self.plaintext_auth_allowed() =>
            {
                self.error(privacy).await
            }
            Command::User(name) => {
                self.user = Some(name);
                self.reply("+OK Send your password").await?;
            }
            Command::Pass(password) => match self.user.take() {
                None => self.error("-ERR Send USER first").await,
                Some(user) => return self.login(&user, &password).await,
            },
            Command::Auth(None) => {
                let list = format!("+OK\r\n{}\r\n.", tern_net::sasl::MECHANISMS.join("\r\n"));
                self.reply(&list).await?;
            }
            Command::Auth(Some((mechanism, initial))) => {
                return self.authenticate(&mechanism, initial, reader).await
            }
            _ => self.error("-ERR Not logged in").await,
        }
        Ok(Next::Continue)
    }

    /// TRANSACTION state commands (RFC 1939 5).
    async fn transaction(&mut self, command: Command) -> std::io::Result<()> {
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        let drop = &mut txn.maildrop;
        let no_such = |n: u32| format!("-ERR No such message: {n}");
        let text = match command {
            Command::Stat => {
                let (n, size) = drop.stat();
                format!("+OK {n} {size}")
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) if drop.get(n).is_none() => {
                self.error(&no_such(n)).await;
                return Ok(());
            }
            Command::List(Some(n)) => {
                let size = drop.get(n).map_or(0, |m| m.record.size);
                format!("+OK {n} {size}")
            }
            Command::Uidl(Some(n)) => {
                let uidl = drop.get(n).map(|m| drop.uidl(m)).unwrap_or_default();
                format!("+OK {n} {uidl}")
            }
            Command::List(None) | Command::Uidl(None) => {
                // Written as it is made, a piece at a time: a maildrop of 100,000
                // messages does not become one string.
                let uidl = matches!(command, Command::Uidl(None));
                let mut text = String::from("+OK\r\n");
                for (i, m) in drop.messages.iter().enumerate() {
                    if m.deleted {
                        continue;
                    }
                    let value = if uidl {
                        drop.uidl(m)
                    } else {
                        m.record.size.to_string()
                    };
                    text.push_str(&format!("{} {value}\r\n", i + 1));
                    if text.len() >= OUT_BUFFER {
                        self.out.write_all(text.as_bytes()).await?;
                        text.clear();
                    }
                }
                text.push('.');
                text
            }
            Command::Dele(n) => match drop.get_mut(n) {
                Some(m) => {
                    m.deleted = true;
                    format!("+OK Message {n} deleted")
                }
                None => {
                    self.error(&no_such(n)).await;
                    return Ok(());
                }
            },
            Command::Rset => {
                for m in &mut drop.messages {
                    m.deleted = false;
                }
                let (n, size) = drop.stat();
                format!("+OK Maildrop has {n} messages ({size} octets)")
            }
            Command::Noop => "+OK".to_owned(),
            Command::Retr(n) => return self.send_message(n, None).await,
            Command::Top(n, lines) => return self.send_message(n, Some(lines)).await,
            Command::Stls => {
                self.error("-ERR STLS is only allowed before login").await;
                return Ok(());
            }
            _ => {
                self.error("-ERR Already logged in").await;
                return Ok(());
            }
        };
        self.reply(&text).await
    }

    /// RETR (`lines` = `None`) or TOP: the message streamed from its file in chunks;
    /// the status line goes with the first chunk, the terminating `.` line with the last.
    async fn send_message(&mut self, n: u32, lines: Option<u32>) -> std::io::Result<()> {
        let Some(txn) = self.txn.as_ref() else {
            return Ok(());
        };
        let Some(message) = txn.maildrop.get(n) else {
            self.error(&format!("-ERR No such message: {n}")).await;
            return Ok(());
        };
        let record = message.record.clone();
        let size = record.size;
        let (store, actor, mailbox) = (
            self.store.clone(),
            txn.actor.clone(),
            txn.maildrop.mailbox.clone(),
        );
        // Sticky: once INBOX changed, every message is checked.
        let unchanged = !txn.changes.has_changed().unwrap_or(true);
        // The common case, a maildrop nobody changed and a message in the page cache:
        // opened and read right here. The open needs the file's inode, which comes from
        // the disk only when cold; the read never waits for the disk
        // (`MessageFile::read_cached_at`). Anything else goes to a thread that may block.
        let cached = if unchanged {
            store
                .open_view_message(&mailbox, &record)
                .ok()
                .and_then(|file| read_cached(&file, 0).map(|first| (file, first)))
        } else {
            None
        };
        // Else the record's current state and its first chunk in one blocking task.
        let opened = match cached {
            Some(opened) => Ok(Ok(Some(opened))),
            None => tern_net::run_blocking(move || {
                if unchanged {
                    let file = store.open_view_message(&mailbox, &record)?;
                    let first = read_chunk(&file, 0)?;
                    return Ok(Some((file, first)));
                }
                let now = store.records_by_uid(&actor, &mailbox.uniqueid, &[record.uid])?;
                let Some(current) = now.into_iter().find(|r| r.expunged_modseq.is_none()) else {
                    return Ok(None);
                };
                let file = store.open_message(&mailbox, &current)?;
                let first = read_chunk(&file, 0)?;
                Ok::<_, StoreError>(Some((file, first)))
            })
            .await
            .ok_or(()),
        };
        let (file, first) = match opened {
            Ok(Ok(Some(opened))) => opened,
            Ok(Ok(None)) => {
                let text = format!("-ERR Message {n} was deleted by another client");
                return self.reply(&text).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "pop3 message read failed");
                return self.reply(store_failure(&e)).await;
            }
            Err(_) => {
                return self
                    .reply("-ERR [SYS/TEMP] Temporary failure, try again later")
                    .await
            }
        };
        let file = Arc::new(file);
        let mut stuffer = DotStuffer::new(lines.map_or(Part::Whole, Part::Top));
        let mut out = Vec::with_capacity(first.len() + first.len() / 64 + 32);
        // The status line goes out in the same write as the message's first bytes: one
        // segment, one wake-up of the client, for a message of up to CHUNK octets.
        match lines {
            None => out.extend_from_slice(format!("+OK {size} octets\r\n").as_bytes()),
            Some(_) => out.extend_from_slice(b"+OK\r\n"),
        }
        let mut pos = first.len() as u64;
        let mut chunk = first;
        loop {
            stuffer.feed(&chunk, &mut out);
            if pos >= size || stuffer.done() {
                break;
            }
            self.out.write_all(&out).await?;
            out.clear();
            let f = file.clone();
            let next = match read_cached(&file, pos) {
                Some(c) => Some(Ok(c)),
                None => tern_net::run_blocking(move || read_chunk(&f, pos)).await,
            };
            chunk = match next {
                Some(Ok(c)) if !c.is_empty() => c,
                // The answer has begun: the only honest way out is to close.
                _ => {
                    return Err(std::io::Error::other("message file ended early"));
                }
            };
            pos += chunk.len() as u64;
        }
        stuffer.finish(&mut out);
        self.out.write_all(&out).await?;
        if lines.is_none() {
            if let Some(m) = self.txn.as_mut().and_then(|t| t.maildrop.get_mut(n)) {
                m.retrieved = true;
            }
        }
        Ok(())
    }

    /// QUIT: from TRANSACTION, the UPDATE step (RFC 1939 6): messages marked deleted
    /// are expunged by UID and retrieved ones marked `\Seen`.
    async fn quit(&mut self) -> std::io::Result<Next> {
        let Some(txn) = self.txn.take() else {
            self.reply("+OK Bye").await?;
            return Ok(Next::Close);
        };
        let deleted = txn.maildrop.deleted_uids();
        let seen = txn.maildrop.retrieved_uids();
        let remaining = txn.maildrop.stat().0;
        let store = self.store.clone();
        let (actor, mailbox) = (txn.actor.clone(), txn.maildrop.mailbox.uniqueid.clone());
        let update = tokio::task::spawn_blocking(move || {
            if !seen.is_empty() {
                let flags: Flags = [Flag::Seen].into_iter().collect();
                // \Seen is a courtesy: its failure must not stop the deletions.
                if let Err(e) =
                    store.store_flags(&actor, &mailbox, &seen, FlagOp::Add, &flags, None)
                {
                    tracing::warn!(error = %e, "pop3 could not mark messages seen");
                }
            }
            if deleted.is_empty() {
                return Ok(());
            }
            store.expunge(&actor, &mailbox, &deleted).map(|_| ())
        })
        .await;
        let text = match update {
            Ok(Ok(())) => format!("+OK Bye ({remaining} messages left)"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "pop3 update failed");
                let code = if e.is_transient() {
                    "SYS/TEMP"
                } else {
                    "SYS/PERM"
                };
                format!("-ERR [{code}] Some deleted messages not removed")
            }
            Err(_) => "-ERR [SYS/TEMP] Some deleted messages not removed".to_owned(),
        };
        drop(txn);
        self.reply(&text).await?;
        Ok(Next::Close)
    }
}

/// Up to [`CHUNK`] bytes of `file` from `pos`.
/// The chunk at `pos` if it is all in the page cache (see `read_chunk`).
fn read_cached(file: &MessageFile, pos: u64) -> Option<Vec<u8>> {
    let want = (file.size().saturating_sub(pos)).min(CHUNK as u64) as usize;
    let mut buf = Vec::with_capacity(want);
    file.append_cached_at(pos, want, &mut buf)?;
    Some(buf)
}

fn read_chunk(file: &MessageFile, pos: u64) -> Result<Vec<u8>, StoreError> {
    let want = (file.size().saturating_sub(pos)).min(CHUNK as u64) as usize;
    let mut buf = Vec::with_capacity(want);
    file.append_at(pos, want, &mut buf)
        .map_err(|e| StoreError::Io {
            op: "reading message",
            path: std::path::PathBuf::new(),
            source: e,
        })?;
    Ok(buf)
}
