//! One LMTP connection: the command state machine and its replies.

use std::sync::Arc;

use tern_net::lines::{read_body, read_line, Body, Line};
use tern_net::{Connection, MemoryBudget};
use tern_store::{
    is_reserved_user, Acl, Delivered, DeliveryOptions, DeliveryTarget, Store, StoreError,
    SHARED_OWNER,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::address::{parse_mail_from, parse_rcpt_to, MailFrom, Recipient};
use crate::LmtpConfig;

/// Longest command line accepted (RFC 5321 4.5.3.1.4 says 512 including CRLF; we allow
/// more for clients with many parameters).
const MAX_COMMAND_LINE: usize = 2048;

/// Bad commands tolerated before the connection is closed.
const MAX_ERRORS: u32 = 20;

/// What the connection should do after a command.
enum Next {
    Continue,
    Close,
}

struct Session<W> {
    store: Store,
    config: Arc<LmtpConfig>,
    budget: MemoryBudget,
    out: BufWriter<W>,
    greeted: bool,
    mail: Option<MailFrom>,
    recipients: Vec<Recipient>,
    errors: u32,
}

/// Runs one session to its end. Errors on the socket end the session; nothing is
/// stored for a transaction whose DATA did not complete.
pub(crate) async fn run(
    conn: Connection,
    store: Store,
    config: Arc<LmtpConfig>,
    budget: MemoryBudget,
) {
    let Connection {
        transport,
        peer,
        mut shutdown,
    } = conn;
    let (read, write) = tokio::io::split(transport);
    let mut input = BufReader::with_capacity(16 * 1024, read);
    let mut session = Session {
        store,
        config,
        budget,
        out: BufWriter::with_capacity(16 * 1024, write),
        greeted: false,
        mail: None,
        recipients: Vec::new(),
        errors: 0,
    };
    tracing::debug!(%peer, "lmtp connection");
    let greeting = format!("220 {} LMTP tern ready", session.config.hostname);
    if session.reply(&greeting).await.is_err() {
        return;
    }
    loop {
        // Replies are flushed only when no pipelined command is waiting, so a
        // pipelining client gets one write for its whole batch.
        if input.buffer().is_empty() && session.out.flush().await.is_err() {
            return;
        }
        let line = tokio::select! {
            line = tokio::time::timeout(session.config.idle_timeout, read_line(&mut input, MAX_COMMAND_LINE)) => line,
            _ = shutdown.changed() => {
                let _ = session.reply("421 4.3.2 Server shutting down").await;
                let _ = session.out.flush().await;
                return;
            }
        };
        let line = match line {
            Err(_) => {
                let _ = session
                    .reply("421 4.4.2 Idle timeout, closing connection")
                    .await;
                let _ = session.out.flush().await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "lmtp read failed");
                return;
            }
            Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                session.error("500 5.5.2 Line too long").await;
                Next::Continue
            }
            Ok(Ok(Line::Complete(line))) => match session.command(&line, &mut input).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "lmtp write failed");
                    return;
                }
            },
        };
        let next = if session.errors > MAX_ERRORS {
            let _ = session
                .reply("421 4.7.0 Too many errors, closing connection")
                .await;
            Next::Close
        } else {
            line
        };
        if let Next::Close = next {
            let _ = session.out.flush().await;
            return;
        }
    }
}

impl<W: AsyncWrite + Unpin> Session<W> {
    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.out.write_all(text.as_bytes()).await?;
        self.out.write_all(b"\r\n").await
    }

    async fn error(&mut self, text: &str) {
        self.errors += 1;
        let _ = self.reply(text).await;
    }

    fn reset(&mut self) {
        self.mail = None;
        self.recipients.clear();
    }

    async fn command<R: AsyncRead + Unpin>(
        &mut self,
        line: &[u8],
        input: &mut BufReader<R>,
    ) -> std::io::Result<Next> {
        let Ok(line) = std::str::from_utf8(line) else {
            self.error("500 5.5.2 Command is not valid UTF-8").await;
            return Ok(Next::Continue);
        };
        let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
        match verb.to_ascii_uppercase().as_str() {
            "LHLO" => self.lhlo(args).await?,
            "HELO" | "EHLO" => self.error("500 5.5.1 This is LMTP: use LHLO").await,
            "MAIL" => self.mail(args).await?,
            "RCPT" => self.rcpt(args).await?,
            "DATA" => return self.data(args, input).await,
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 Ok").await?;
            }
            "NOOP" => self.reply("250 2.0.0 Ok").await?,
            "VRFY" => {
                self.reply(
                    "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
                )
                .await?
            }
            "QUIT" => {
                self.reply(&format!(
                    "221 2.0.0 {} closing connection",
                    self.config.hostname
                ))
                .await?;
                return Ok(Next::Close);
            }
            _ => self.error("500 5.5.2 Command unrecognized").await,
        }
        Ok(Next::Continue)
    }

    async fn lhlo(&mut self, args: &str) -> std::io::Result<()> {
        if args.trim().is_empty() {
            self.error("501 5.5.4 LHLO requires a domain").await;
            return Ok(());
        }
        self.reset();
        self.greeted = true;
        let text = format!(
            "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE {}",
            self.config.hostname, self.config.max_message_size
        );
        self.reply(&text).await
    }

    async fn mail(&mut self, args: &str) -> std::io::Result<()> {
        if !self.greeted {
            self.error("503 5.5.1 Send LHLO first").await;
            return Ok(());
        }
        if self.mail.is_some() {
            self.error("503 5.5.1 Nested MAIL command").await;
            return Ok(());
        }
        match parse_mail_from(args) {
            Err(why) => self.error(&format!("501 5.5.4 {why}")).await,
            Ok(m)
                if m.size
                    .is_some_and(|s| s > self.config.max_message_size as u64) =>
            {
                self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
                    .await?;
            }
            Ok(m) => {
                self.mail = Some(m);
                self.reply("250 2.1.0 Ok").await?;
            }
        }
        Ok(())
    }

    async fn rcpt(&mut self, args: &str) -> std::io::Result<()> {
        let Some(mail) = &self.mail else {
            self.error("503 5.5.1 Need MAIL before RCPT").await;
            return Ok(());
        };
        let declared = mail.size.unwrap_or(0);
        let rcpt = match parse_rcpt_to(args) {
            Ok(r) => r,
            Err(why) => {
                self.error(&format!("501 5.5.4 {why}")).await;
                return Ok(());
            }
        };
        if self.recipients.len() >= self.config.max_recipients {
            return self.reply("452 4.5.3 Too many recipients").await;
        }
        if is_reserved_user(&rcpt.user) {
            let reply = unknown(&rcpt);
            return self.reply(&reply).await;
        }
        if let Some(folder) = self.shared_folder(&rcpt) {
            return self.rcpt_shared(rcpt, folder).await;
        }
        let store = self.store.clone();
        let name = rcpt.user.clone();
        let user = tokio::task::spawn_blocking(move || store.user(&name)).await;
        let reply = match user {
            Ok(Ok(Some(user))) => {
                let over_storage = user
                    .quota
                    .storage
                    .is_some_and(|q| user.used_storage + declared > q);
                let over_count = user
                    .quota
                    .messages
                    .is_some_and(|q| user.used_messages + 1 > q);
                if over_storage || over_count {
                    self.over_quota_reply()
                } else {
                    self.recipients.push(rcpt);
                    "250 2.1.5 Ok".to_owned()
                }
            }
            Ok(Ok(None)) => unknown(&rcpt),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "lmtp recipient lookup failed");
                "451 4.3.0 Temporary failure looking up recipient".to_owned()
            }
            Err(_) => "451 4.3.0 Temporary failure looking up recipient".to_owned(),
        };
        self.reply(&reply).await
    }

    /// The shared mailbox a recipient names: `+<mailbox>@` or `<postuser>+<mailbox>@`.
    fn shared_folder(&self, rcpt: &Recipient) -> Option<String> {
        let folder = rcpt.folder.as_ref()?;
        (rcpt.user.is_empty() || rcpt.user.eq_ignore_ascii_case(&self.config.postuser))
            .then(|| folder.clone())
    }

    /// RCPT into the shared namespace: accepted only when the mailbox exists and its ACL
    /// lets anyone post (`p`); otherwise the address is unknown, so a probe learns
    /// nothing about shared mailboxes that are not open to mail.
    async fn rcpt_shared(&mut self, rcpt: Recipient, folder: String) -> std::io::Result<()> {
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.shared_mailbox(&folder)).await;
        let reply = match found {
            Ok(Ok(Some(m))) if Acl::parse(&m.acl).anyone_may_post() => {
                self.recipients.push(Recipient {
                    user: SHARED_OWNER.to_owned(),
                    folder: Some(m.name),
                    ..rcpt
                });
                "250 2.1.5 Ok".to_owned()
            }
            Ok(Ok(_)) => unknown(&rcpt),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "lmtp shared mailbox lookup failed");
                "451 4.3.0 Temporary failure looking up recipient".to_owned()
            }
            Err(_) => "451 4.3.0 Temporary failure looking up recipient".to_owned(),
        };
        self.reply(&reply).await
    }

    fn over_quota_reply(&self) -> String {
        if self.config.over_quota_permanent {
            "552 5.2.2 Mailbox full: over quota".to_owned()
        } else {
            "452 4.2.2 Mailbox full: over quota".to_owned()
        }
    }

    async fn data<R: AsyncRead + Unpin>(
        &mut self,
        args: &str,
        input: &mut BufReader<R>,
    ) -> std::io::Result<Next> {
        if !args.trim().is_empty() {
            self.error("501 5.5.4 DATA takes no arguments").await;
            return Ok(Next::Continue);
        }
        let Some(mail) = self.mail.clone() else {
            self.error("503 5.5.1 Need MAIL command").await;
            return Ok(Next::Continue);
        };
        if self.recipients.is_empty() {
            self.reply("554 5.5.1 No valid recipients").await?;
            return Ok(Next::Continue);
        }
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await?;
        self.out.flush().await?;
        let header = format!("Return-Path: <{}>\r\n", mail.reverse_path);
        let mut held = self.budget.reservation();
        let read = tokio::time::timeout(
            self.config.data_timeout,
            read_body(
                input,
                self.config.max_message_size.saturating_sub(header.len()),
                &mut held,
            ),
        )
        .await;
        let Ok(read) = read else {
            self.reply("421 4.4.2 Timeout waiting for the message, closing connection")
                .await?;
            return Ok(Next::Close);
        };
        let body = match read? {
            Body::Eof => return Ok(Next::Close),
            Body::OverBudget => {
                for _ in 0..self.recipients.len() {
                    self.reply("451 4.3.1 Insufficient system resources, try again later")
                        .await?;
                }
                self.reset();
                return Ok(Next::Continue);
            }
            Body::TooBig => {
                for _ in 0..self.recipients.len() {
                    self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
                        .await?;
                }
                self.reset();
                return Ok(Next::Continue);
            }
            Body::Complete(body) => body,
        };
        // The header goes in front of the body in its own buffer (which has room to
        // spare nearly always): a copy would hold the message twice, outside the budget.
        let mut message = body;
        message.splice(0..0, header.bytes());
        let replies = self.deliver(message).await;
        drop(held);
        for reply in replies {
            self.reply(&reply).await?;
        }
        self.reset();
        Ok(Next::Continue)
    }

    /// Stores the message for every accepted recipient and returns one reply each, in
    /// RCPT order. A `250` here means the message is durable.
    async fn deliver(&mut self, message: Vec<u8>) -> Vec<String> {
        let targets: Vec<DeliveryTarget> = self
            .recipients
            .iter()
            .map(|r| DeliveryTarget {
                user: r.user.clone(),
                folder: r.folder.clone(),
            })
            .collect();
        let options = DeliveryOptions {
            message_id: message_id(&message),
            duplicate_window_secs: self.config.duplicate_window.as_secs(),
            internaldate: None,
        };
        let store = self.store.clone();
        let n = targets.len();
        let results =
            tokio::task::spawn_blocking(move || store.deliver(&message, &targets, &options)).await;
        let Ok(results) = results else {
            return vec!["451 4.3.0 Temporary failure storing message".to_owned(); n];
        };
        results
            .into_iter()
            .zip(&self.recipients)
            .map(|(result, rcpt)| match result {
                Ok(Delivered::Stored { mailbox, appended }) => {
                    format!(
                        "250 2.1.5 <{}> delivered to {mailbox} uid {}",
                        rcpt.address, appended.uid
                    )
                }
                Ok(Delivered::Duplicate { mailbox }) => {
                    format!(
                        "250 2.1.5 <{}> duplicate suppressed ({mailbox})",
                        rcpt.address
                    )
                }
                Err(StoreError::NoSuchUser(_)) => {
                    format!("550 5.1.1 <{}>: User unknown", rcpt.address)
                }
                Err(StoreError::OverQuota { .. }) => self.over_quota_reply(),
                Err(e) => {
                    tracing::warn!(rcpt = %rcpt.address, error = %e, "lmtp delivery failed");
                    "451 4.3.0 Temporary failure storing message".to_owned()
                }
            })
            .collect()
    }
}

/// The message's Message-ID, for duplicate suppression; `None` when it has none.
fn message_id(message: &[u8]) -> Option<String> {
    tern_message::message_id(message).map(|id| id.chars().take(998).collect())
}

/// The reply for an address that names no one who may receive mail here.
fn unknown(rcpt: &Recipient) -> String {
    format!(
        "550 5.1.1 <{}>: Recipient address rejected: User unknown",
        rcpt.address
    )
}
