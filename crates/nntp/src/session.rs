//! One NNTP connection: the loop, the state (who is reading, which group, which
//! article), capabilities, STARTTLS and AUTHINFO. The reading commands are in
//! `session/read.rs`, POST and IHAVE in `session/transfer.rs`.

use std::sync::Arc;

use tern_net::lines::{read_line, Line};
use tern_net::sasl::{Exchange, SaslError, Step};
use tern_net::{AuthThrottle, Connection, Input, MemoryBudget, Output, Peer};
use tern_store::{Actor, Store, StoreError, Uid};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::command::{parse, Command, ParseError};
use crate::groups::Selected;
use crate::NntpConfig;

mod read;
mod transfer;

/// Longest command line: RFC 3977 allows 512 octets; an AUTHINFO SASL initial
/// response may be longer.
const MAX_LINE: usize = tern_net::sasl::MAX_RESPONSE + 128;

/// Bad commands tolerated before the connection is closed.
const MAX_ERRORS: u32 = 20;

/// Failed logins tolerated on one connection.
const MAX_AUTH_FAILURES: u32 = 3;

/// The write buffer: small, so an idle connection holds little.
const OUT_BUFFER: usize = 8 * 1024;

/// How long a client has to complete the TLS handshake after STARTTLS.
const STARTTLS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the connection does after a command.
pub(crate) enum Next {
    Continue,
    Close,
    Tls,
}

pub(crate) struct Session {
    pub(crate) store: Store,
    pub(crate) config: Arc<NntpConfig>,
    throttle: Arc<AuthThrottle>,
    pub(crate) budget: MemoryBudget,
    peer: Peer,
    tls: bool,
    pub(crate) out: BufWriter<Output>,
    /// The reader: anonymous until AUTHINFO succeeds.
    pub(crate) actor: Actor,
    pub(crate) authenticated: bool,
    /// The name given by AUTHINFO USER, waiting for PASS.
    pending_user: Option<String>,
    /// The group GROUP or LISTGROUP selected, as a snapshot of its numbers.
    pub(crate) selected: Option<Selected>,
    /// The current article number in it.
    pub(crate) current: Option<Uid>,
    errors: u32,
    auth_failures: u32,
}

/// Runs one session to its end.
pub(crate) async fn run(
    conn: Connection,
    store: Store,
    config: Arc<NntpConfig>,
    throttle: Arc<AuthThrottle>,
    budget: MemoryBudget,
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
        store,
        config,
        throttle,
        budget,
        peer,
        tls,
        out: BufWriter::with_capacity(OUT_BUFFER, output),
        actor: Actor::anonymous(),
        authenticated: false,
        pending_user: None,
        selected: None,
        current: None,
        errors: 0,
        auth_failures: 0,
    };
    tracing::debug!(%peer, "nntp connection");
    let greeting = format!(
        "200 {} tern NNTP server ready, posting allowed",
        s.config.hostname
    );
    if s.reply(&greeting).await.is_err() {
        return;
    }
    loop {
        // Answers are flushed only when no pipelined command is waiting.
        if reader.buffer().is_empty() && s.out.flush().await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + s.config.idle_timeout;
        let line = tokio::select! {
            line = tokio::time::timeout_at(deadline, read_line(&mut reader, MAX_LINE)) => line,
            _ = shutdown.changed() => {
                let _ = s.reply("400 Server shutting down").await;
                let _ = s.out.flush().await;
                return;
            }
        };
        let next = match line {
            Err(_) => {
                let _ = s.reply("400 Idle too long, closing connection").await;
                Next::Close
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "nntp read failed");
                return;
            }
            Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => {
                s.error("501 Line too long").await;
                Next::Continue
            }
            Ok(Ok(Line::Complete(line))) => match s.command(&line, &mut reader).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "nntp write failed");
                    return;
                }
            },
        };
        let next = if s.errors > MAX_ERRORS {
            let _ = s.reply("400 Too many errors, closing connection").await;
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

/// Carries out STARTTLS after its `382` (RFC 4642 2.2.2): what the client sent after
/// STARTTLS in clear text is dropped with the old buffer, never executed.
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
    let Some(stream) = tern_net::stream::accept_tls(plain, config, STARTTLS_TIMEOUT).await else {
        return false;
    };
    let (input, output) = stream.split();
    *reader = BufReader::with_capacity(4096, input);
    s.out = BufWriter::with_capacity(OUT_BUFFER, output);
    s.tls = true;
    s.pending_user = None;
    true
}

impl Session {
    pub(crate) async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.out.write_all(text.as_bytes()).await?;
        self.out.write_all(b"\r\n").await
    }

    pub(crate) async fn error(&mut self, text: &str) {
        self.errors += 1;
        let _ = self.reply(text).await;
    }

    /// The answer to a store failure (RFC 3977 3.2.1: `403`).
    pub(crate) async fn store_failure(&mut self, e: &StoreError) -> std::io::Result<()> {
        tracing::warn!(error = %e, "nntp store operation failed");
        self.reply("403 Internal fault, try again later").await
    }

    /// Runs `f` on the store on a blocking thread.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &Actor) -> Result<T, StoreError> + Send + 'static,
    {
        let (store, actor) = (self.store.clone(), self.actor.clone());
        tern_net::run_blocking(move || f(&store, &actor))
            .await
            .ok_or_else(|| StoreError::CommitFailed("store task failed".into()))?
    }

    /// A password may be sent: over TLS, or in clear text from this machine when the
    /// configuration allows it.
    fn plaintext_auth_allowed(&self) -> bool {
        self.tls || (self.config.plaintext_auth && self.peer.is_local())
    }

    fn capabilities(&self) -> String {
        let mut caps = String::from("101 Capability list:\r\nVERSION 2\r\nIMPLEMENTATION tern\r\n");
        caps.push_str("READER\r\nPOST\r\nIHAVE\r\nNEWNEWS\r\nHDR\r\nOVER MSGID\r\n");
        caps.push_str("LIST ACTIVE ACTIVE.TIMES NEWSGROUPS OVERVIEW.FMT HEADERS DISTRIB.PATS\r\n");
        if !self.authenticated {
            if !self.tls && self.config.tls.is_some() {
                caps.push_str("STARTTLS\r\n");
            }
            if self.plaintext_auth_allowed() {
                caps.push_str("AUTHINFO USER SASL\r\nSASL ");
                caps.push_str(&tern_net::sasl::MECHANISMS.join(" "));
                caps.push_str("\r\n");
            } else {
                caps.push_str("AUTHINFO\r\n");
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
            Err(e @ ParseError::Unknown) => {
                self.error(&format!("500 {e}")).await;
                return Ok(Next::Continue);
            }
            Err(e @ ParseError::Syntax(_)) => {
                self.error(&format!("501 {e}")).await;
                return Ok(Next::Continue);
            }
        };
        match command {
            Command::Quit => {
                self.reply("205 Connection closing").await?;
                return Ok(Next::Close);
            }
            Command::Capabilities => {
                let caps = self.capabilities();
                self.reply(&caps).await?
            }
            Command::ModeReader => self.reply("200 Reader mode, posting allowed").await?,
            Command::Help => {
                self.reply("100 Help text follows\r\nRFC 3977 commands, with XOVER and XHDR; see CAPABILITIES\r\n.")
                    .await?
            }
            Command::Date => {
                let now = crate::clock::compact(crate::clock::now());
                self.reply(&format!("111 {now}")).await?
            }
            Command::StartTls => return self.starttls().await,
            Command::AuthUser(name) => self.auth_user(name).await?,
            Command::AuthPass(password) => return self.auth_pass(password).await,
            Command::AuthSasl(mechanism, initial) => {
                return self.auth_sasl(&mechanism, initial, reader).await
            }
            Command::Post => return self.post(reader).await,
            Command::Ihave(id) => return self.ihave(id, reader).await,
            other => self.read_command(other).await?,
        }
        Ok(Next::Continue)
    }

    async fn starttls(&mut self) -> std::io::Result<Next> {
        if self.tls {
            self.error("502 Already using TLS").await;
        } else if self.authenticated {
            self.error("502 STARTTLS is not allowed after authentication")
                .await;
        } else if self.config.tls.is_none() {
            self.reply("580 TLS is not available").await?;
        } else {
            self.reply("382 Continue with TLS negotiation").await?;
            return Ok(Next::Tls);
        }
        Ok(Next::Continue)
    }

    async fn auth_user(&mut self, name: String) -> std::io::Result<()> {
        if self.authenticated {
            self.error("502 Already authenticated").await;
        } else if !self.plaintext_auth_allowed() {
            self.error("483 Encryption required: use STARTTLS first")
                .await;
        } else {
            self.pending_user = Some(name);
            self.reply("381 Password required").await?;
        }
        Ok(())
    }

    async fn auth_pass(&mut self, password: String) -> std::io::Result<Next> {
        if self.authenticated {
            self.error("502 Already authenticated").await;
            return Ok(Next::Continue);
        }
        if !self.plaintext_auth_allowed() {
            self.error("483 Encryption required: use STARTTLS first")
                .await;
            return Ok(Next::Continue);
        }
        match self.pending_user.take() {
            None => {
                self.error("482 Send AUTHINFO USER first").await;
                Ok(Next::Continue)
            }
            Some(user) => self.login(&user, &password).await,
        }
    }

    /// AUTHINFO SASL (RFC 4643 2.4): challenges as `383 base64`, one line each answer,
    /// `*` cancels.
    async fn auth_sasl(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Next> {
        if self.authenticated {
            self.error("502 Already authenticated").await;
            return Ok(Next::Continue);
        }
        if !self.plaintext_auth_allowed() {
            self.error("483 Encryption required: use STARTTLS first")
                .await;
            return Ok(Next::Continue);
        }
        let initial = initial.filter(|i| i != "=");
        let (mut exchange, mut step) =
            match Exchange::start(mechanism, initial.as_deref().map(str::as_bytes)) {
                Ok(s) => s,
                Err(SaslError::UnknownMechanism) => {
                    self.error("503 Mechanism not recognized").await;
                    return Ok(Next::Continue);
                }
                Err(e) => {
                    self.error(&format!("501 {e}")).await;
                    return Ok(Next::Continue);
                }
            };
        let credentials = loop {
            match step {
                Step::Done(c) => break c,
                Step::Challenge(challenge) => {
                    let line = format!("383 {}", tern_net::sasl::encode(&challenge));
                    self.reply(&line).await?;
                    self.out.flush().await?;
                    let read = tokio::time::timeout(
                        self.config.idle_timeout,
                        read_line(reader, tern_net::sasl::MAX_RESPONSE + 2),
                    )
                    .await;
                    let answer = match read {
                        Ok(Ok(Line::Complete(l))) => l,
                        Ok(Ok(Line::TooLong)) => {
                            self.error("501 Response too long").await;
                            return Ok(Next::Continue);
                        }
                        _ => return Ok(Next::Close),
                    };
                    step = match exchange.respond(&answer) {
                        Ok(s) => s,
                        Err(SaslError::Cancelled) => {
                            self.error("481 Authentication cancelled").await;
                            return Ok(Next::Continue);
                        }
                        Err(e) => {
                            self.error(&format!("504 {e}")).await;
                            return Ok(Next::Continue);
                        }
                    };
                }
            }
        };
        if credentials.wants_proxy() {
            self.error("481 Proxy authorization is not allowed").await;
            return Ok(Next::Continue);
        }
        self.login(&credentials.authcid, &credentials.password)
            .await
    }

    /// Checks a password after the throttle's wait; `281` and the user's rights from
    /// then on, or `481`.
    async fn login(&mut self, user: &str, password: &str) -> std::io::Result<Next> {
        let throttle = self.throttle.clone();
        let attempt = throttle.begin(self.peer.ip(), user);
        attempt.wait_delay().await;
        let Some(slot) = throttle.slot().await else {
            self.reply("400 Server shutting down").await?;
            return Ok(Next::Close);
        };
        let (name, pw) = (user.to_owned(), password.to_owned());
        let verified = self
            .blocking(move |store, _| store.verify_password(&name, &pw))
            .await;
        drop(slot);
        match verified {
            Ok(Some(u)) => {
                attempt.succeeded();
                self.actor = Actor {
                    name: u.name,
                    is_admin: u.is_admin,
                };
                self.authenticated = true;
                // Rights change with the reader: select again to see the group as them.
                self.selected = None;
                self.current = None;
                self.reply("281 Authentication accepted").await?;
            }
            Ok(None) => {
                attempt.failed();
                self.auth_failures += 1;
                tokio::time::sleep(self.config.auth_failure_delay).await;
                self.reply("481 Authentication failed").await?;
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    return Ok(Next::Close);
                }
            }
            Err(e) => self.store_failure(&e).await?,
        }
        Ok(Next::Continue)
    }
}
