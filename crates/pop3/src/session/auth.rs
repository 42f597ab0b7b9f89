//! Logging in: USER/PASS and AUTH (SASL PLAIN and LOGIN, RFC 5034), each attempt
//! waiting for the process's throttle and a password-check slot; then the maildrop's
//! lock and snapshot.

use tern_net::lines::{read_line, Line};
use tern_net::sasl::{Exchange, SaslError, Step};
use tern_net::Input;
use tern_store::Actor;
use tokio::io::{AsyncWriteExt, BufReader};

use super::{store_failure, Next, Session, Transaction, MAX_AUTH_FAILURES};
use crate::maildrop::Maildrop;

impl Session {
    /// AUTH (RFC 5034): challenges as `+ base64`, answers one line each, `*` cancels.
    pub(super) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Next> {
        self.user = None;
        let (mut exchange, mut step) =
            match Exchange::start(mechanism, initial.as_deref().map(str::as_bytes)) {
                Ok(s) => s,
                Err(SaslError::UnknownMechanism) => {
                    self.error("-ERR Unsupported authentication mechanism")
                        .await;
                    return Ok(Next::Continue);
                }
                Err(e) => {
                    self.error(&format!("-ERR {e}")).await;
                    return Ok(Next::Continue);
                }
            };
        let credentials = loop {
            match step {
                Step::Done(c) => break c,
                Step::Challenge(challenge) => {
                    let line = format!("+ {}", tern_net::sasl::encode(&challenge));
                    self.reply(&line).await?;
                    self.out.flush().await?;
                    let read = tokio::time::timeout_at(
                        self.preauth_deadline,
                        read_line(reader, tern_net::sasl::MAX_RESPONSE + 2),
                    )
                    .await;
                    let answer = match read {
                        Ok(Ok(Line::Complete(l))) => l,
                        Ok(Ok(Line::TooLong)) => {
                            self.error("-ERR Response too long").await;
                            return Ok(Next::Continue);
                        }
                        Ok(Ok(Line::Eof)) | Ok(Err(_)) => return Ok(Next::Close),
                        Err(_) => {
                            self.reply("-ERR Autologout: not logged in in time").await?;
                            return Ok(Next::Close);
                        }
                    };
                    step = match exchange.respond(&answer) {
                        Ok(s) => s,
                        Err(SaslError::Cancelled) => {
                            self.error("-ERR Authentication cancelled").await;
                            return Ok(Next::Continue);
                        }
                        Err(e) => {
                            self.error(&format!("-ERR {e}")).await;
                            return Ok(Next::Continue);
                        }
                    };
                }
            }
        };
        if credentials.wants_proxy() {
            self.error("-ERR [AUTH] Proxy authorization is not allowed")
                .await;
            return Ok(Next::Continue);
        }
        self.login(&credentials.authcid, &credentials.password)
            .await
    }

    /// Checks a password after the throttle's wait, then locks and opens the maildrop.
    pub(super) async fn login(&mut self, user: &str, password: &str) -> std::io::Result<Next> {
        let throttle = self.throttle.clone();
        let attempt = throttle.begin(self.peer.ip(), user);
        attempt.wait_delay().await;
        let Some(slot) = throttle.slot().await else {
            self.reply("-ERR [SYS/TEMP] Server shutting down").await?;
            return Ok(Next::Close);
        };
        let store = self.store.clone();
        let (name, pw) = (user.to_owned(), password.to_owned());
        let verified = tokio::task::spawn_blocking(move || store.verify_password(&name, &pw)).await;
        drop(slot);
        let user = match verified {
            Ok(Ok(Some(u))) => {
                attempt.succeeded();
                u
            }
            Ok(Ok(None)) => {
                attempt.failed();
                self.auth_failures += 1;
                tokio::time::sleep(self.config.auth_failure_delay).await;
                self.reply("-ERR [AUTH] Authentication failed").await?;
                return Ok(if self.auth_failures >= MAX_AUTH_FAILURES {
                    Next::Close
                } else {
                    Next::Continue
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "pop3 password check failed");
                self.reply(store_failure(&e)).await?;
                return Ok(Next::Continue);
            }
            Err(_) => {
                self.reply("-ERR [SYS/TEMP] Temporary failure, try again later")
                    .await?;
                return Ok(Next::Continue);
            }
        };
        if let Some(delay) = self.config.login_delay {
            if !self.locks.login_allowed(&user.name, delay) {
                let text = format!(
                    "-ERR [LOGIN-DELAY] Log in at most once every {} seconds",
                    delay.as_secs()
                );
                self.reply(&text).await?;
                return Ok(Next::Continue);
            }
        }
        let Some(lock) = self.locks.take(&user.name) else {
            self.reply("-ERR [IN-USE] Maildrop already in use by another POP3 session")
                .await?;
            return Ok(Next::Continue);
        };
        let actor = Actor {
            name: user.name.clone(),
            is_admin: user.is_admin,
        };
        let store = self.store.clone();
        let who = actor.clone();
        let snapshot = tokio::task::spawn_blocking(move || {
            let Some(inbox) = store.mailbox(&who.name, "INBOX")? else {
                return Ok(None);
            };
            // Watching before the snapshot: no change after it goes unnoticed.
            let changes = store.watch(&inbox.uniqueid);
            let view = store.mailbox_view(&who, &inbox.uniqueid)?;
            Ok(Some((view, changes)))
        })
        .await;
        let (view, changes) = match snapshot {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => {
                self.reply("-ERR [SYS/PERM] This account has no INBOX")
                    .await?;
                return Ok(Next::Continue);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "pop3 maildrop snapshot failed");
                self.reply(store_failure(&e)).await?;
                return Ok(Next::Continue);
            }
            Err(_) => {
                self.reply("-ERR [SYS/TEMP] Temporary failure, try again later")
                    .await?;
                return Ok(Next::Continue);
            }
        };
        let maildrop = Maildrop::new(view);
        let (n, size) = maildrop.stat();
        self.txn = Some(Transaction {
            actor,
            maildrop,
            changes,
            _lock: lock,
        });
        self.reply(&format!("+OK Logged in, {n} messages ({size} octets)"))
            .await?;
        Ok(Next::Continue)
    }
}
