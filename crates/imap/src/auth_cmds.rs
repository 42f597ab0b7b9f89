//! Logging in: LOGIN and AUTHENTICATE (SASL PLAIN and LOGIN, RFC 4616, with SASL-IR),
//! each attempt waiting for the process's throttle and a password-check slot, and
//! refused in clear text from any address but loopback.

use std::time::Duration;

use tern_net::sasl::{Exchange, SaslError, Step};
use tern_store::{Actor, StoreError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::session::{Outcome, Session};

/// How long a client has to answer a SASL challenge.
const SASL_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The answer to a failed SASL exchange.
fn sasl_refusal(e: SaslError) -> Outcome {
    match e {
        SaslError::Cancelled => Outcome::bad("Authentication cancelled"),
        SaslError::UnknownMechanism => Outcome::no("Unsupported authentication mechanism"),
        SaslError::Malformed { .. } => Outcome::bad(&format!("Invalid response: {e}")),
    }
}

impl<W: AsyncWrite + Unpin + Send> Session<W> {
    /// The refusal of a password on a clear-text connection when that is not allowed.
    pub(crate) fn privacy_required(&self) -> Option<Outcome> {
        (!self.plaintext_auth_allowed())
            .then(|| Outcome::no("[PRIVACYREQUIRED] Use STARTTLS before sending a password"))
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str) -> Outcome {
        if self.actor.is_some() {
            return Outcome::bad("Already logged in");
        }
        if let Some(refused) = self.privacy_required() {
            return refused;
        }
        self.verify(user, password).await
    }

    /// Checks a password after the throttle's wait, and records the outcome there.
    async fn verify(&mut self, user: &str, password: &str) -> Outcome {
        let throttle = self.throttle.clone();
        let attempt = throttle.begin(self.peer.ip(), user);
        let mut stopping = self.stopping.clone();
        let slot = tokio::select! {
            // The penalty first, then one of the process's password-check slots:
            // both awaited here, so waiting logins hold no thread.
            slot = async {
                attempt.wait_delay().await;
                throttle.slot().await
            } => slot,
            _ = stopping.changed() => None,
        };
        let Some(slot) = slot else {
            let mut o = Outcome::no("[UNAVAILABLE] Server shutting down");
            o.close = true;
            return o;
        };
        let store = self.store.clone();
        let verified = tokio::task::block_in_place(|| store.verify_password(user, password));
        // The slot is for the hash only, not for the failure delay that follows.
        drop(slot);
        match &verified {
            Ok(Some(_)) => attempt.succeeded(),
            Ok(None) => {
                attempt.failed();
            }
            Err(_) => {}
        }
        self.finish_auth(verified).await
    }

    async fn finish_auth(
        &mut self,
        verified: Result<Option<tern_store::User>, StoreError>,
    ) -> Outcome {
        match verified {
            Ok(Some(u)) => {
                self.actor = Some(Actor {
                    name: u.name,
                    is_admin: u.is_admin,
                });
                let caps = self.capabilities();
                Outcome::ok_code(&format!("[CAPABILITY {caps}]"), "Logged in")
            }
            Ok(None) => {
                self.auth_failures += 1;
                tokio::time::sleep(self.config.auth_failure_delay).await;
                let mut o = Outcome::no("[AUTHENTICATIONFAILED] Authentication failed");
                o.close = self.auth_failures >= 5;
                o
            }
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// AUTHENTICATE PLAIN (RFC 4616) or LOGIN, with or without an initial response
    /// (SASL-IR). Each continuation must come within the command timeout. `None` when
    /// the connection must close.
    pub(crate) async fn authenticate<R: AsyncRead + Unpin>(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        reader: &mut BufReader<R>,
    ) -> Option<Outcome> {
        if self.actor.is_some() {
            return Some(Outcome::bad("Already logged in"));
        }
        if let Some(refused) = self.privacy_required() {
            return Some(refused);
        }
        let started = Exchange::start(mechanism, initial.as_deref().map(str::as_bytes));
        let (mut exchange, mut step) = match started {
            Ok(s) => s,
            Err(SaslError::UnknownMechanism) => {
                return Some(Outcome::no("Unsupported authentication mechanism"))
            }
            Err(e) => return Some(sasl_refusal(e)),
        };
        let credentials = loop {
            match step {
                Step::Done(c) => break c,
                Step::Challenge(challenge) => {
                    let line = format!("+ {}\r\n", tern_net::sasl::encode(&challenge));
                    self.writer.write_all(line.as_bytes()).await.ok()?;
                    self.writer.flush().await.ok()?;
                    let mut line = Vec::new();
                    // Bounded by the pre-login deadline too: a client that never
                    // answers must not hold the connection past it.
                    let deadline = self
                        .preauth_deadline
                        .min(tokio::time::Instant::now() + SASL_RESPONSE_TIMEOUT);
                    let read = tokio::time::timeout_at(
                        deadline,
                        (&mut *reader)
                            .take(tern_net::sasl::MAX_RESPONSE as u64 + 2)
                            .read_until(b'\n', &mut line),
                    )
                    .await;
                    match read {
                        Ok(Ok(n)) if n > 0 && line.ends_with(b"\n") => {}
                        Ok(_) => return None,
                        Err(_) => {
                            let _ = self
                                .writer
                                .write_all(b"* BYE Autologout: not logged in in time\r\n")
                                .await;
                            let _ = self.writer.flush().await;
                            return None;
                        }
                    }
                    step = match exchange.respond(line.trim_ascii_end()) {
                        Ok(s) => s,
                        Err(e) => return Some(sasl_refusal(e)),
                    };
                }
            }
        };
        if credentials.wants_proxy() {
            return Some(Outcome::no(
                "[AUTHORIZATIONFAILED] Proxy authorization is not allowed",
            ));
        }
        Some(
            self.verify(&credentials.authcid, &credentials.password)
                .await,
        )
    }
}
