//! POP3 access to tern's store: RFC 1939 (USER/PASS, STAT, LIST, RETR, DELE, NOOP,
//! RSET, QUIT, TOP, UIDL; APOP is not offered), RFC 2449 CAPA and response codes,
//! RFC 2595 STLS and the implicit-TLS port, RFC 5034 SASL (PLAIN, LOGIN, with an
//! initial response) and RFC 6856 UTF8.
//!
//! Policies, each a guarantee:
//! - **The maildrop is INBOX**, as a snapshot of its live records taken at login:
//!   message numbers 1..n follow UID order and do not change during the session.
//! - **UIDL** is `<uidvalidity>.<uid>` (Cyrus's format): fixed for a message, the same
//!   after a restart and on a replica (replication keeps UIDVALIDITY and UIDs), never a
//!   content hash.
//! - **Sizes** in STAT and LIST are the message's stored octets, which is exactly what
//!   RETR sends before dot-stuffing (a line added for a message not ending in CRLF and
//!   the terminating `.` line are not counted).
//! - **Deletions happen only at QUIT** (the UPDATE state), by UID, as one ordinary
//!   store expunge with a new modseq (IMAP, QRESYNC clients and replicas see it). A
//!   dropped connection, a timeout or a shutdown deletes nothing.
//! - **One POP3 session per maildrop**: a second login while a session holds the
//!   maildrop gets `-ERR [IN-USE]`. IMAP sessions are not locked out: a message an
//!   IMAP client expunged meanwhile answers `-ERR` on RETR/TOP, and its DELE expunges
//!   nothing a second time.
//! - **\Seen**: messages sent by RETR (not TOP) are marked `\Seen` at QUIT, in the same
//!   UPDATE step as the deletions, as Cyrus does on RETR.
//! - Passwords (USER/PASS, AUTH) only over TLS, or in clear text from loopback when
//!   [`Pop3Config::plaintext_auth`] allows it; CAPA follows (STLS before TLS only; USER
//!   and SASL only where a password may be sent).

#![deny(missing_docs)]

mod command;
mod maildrop;
mod session;

pub use command::{parse, Command, ParseError};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_net::{AuthThrottle, Bound, Gate, Limits, ListenerConfig};
use tern_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The rustls in use, to build [`Pop3Config::tls`] with.
pub use tokio_rustls::rustls;

/// Settings of the POP3 service.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    /// Name in the greeting.
    pub hostname: String,
    /// Most concurrent connections; more are told `-ERR [SYS/TEMP]` and closed.
    pub max_connections: usize,
    /// Most concurrent connections from one client address; 0 = no such limit.
    pub max_connections_per_ip: usize,
    /// Closed after this long without a command once logged in (RFC 1939 asks for at
    /// least ten minutes); nothing is deleted.
    pub idle_timeout: Duration,
    /// Closed when not logged in this long after connecting.
    pub preauth_timeout: Duration,
    /// Wait after a failed password, on top of the process's throttle.
    pub auth_failure_delay: Duration,
    /// Certificate and key: STLS is offered and the implicit-TLS listener can run.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Allow passwords in clear text from loopback (never from another host).
    pub plaintext_auth: bool,
    /// RFC 2449 LOGIN-DELAY: a user may log in again only this long after their last
    /// login (`-ERR [LOGIN-DELAY]` before); advertised in CAPA only when set.
    pub login_delay: Option<Duration>,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".to_owned(),
            max_connections: 256,
            max_connections_per_ip: 32,
            idle_timeout: Duration::from_secs(600),
            preauth_timeout: Duration::from_secs(180),
            auth_failure_delay: Duration::from_secs(2),
            tls: None,
            plaintext_auth: true,
            login_delay: None,
        }
    }
}

/// What a client over the connection limits is told.
const BUSY: &[u8] = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n";

/// The maildrops (user names) a session holds, shared by every listener of one
/// service: the `[IN-USE]` lock; and when each user last logged in, for LOGIN-DELAY
/// (kept in memory: a restart forgets it).
#[derive(Default)]
pub(crate) struct Locks {
    held: Mutex<HashSet<String>>,
    logins: Mutex<HashMap<String, Instant>>,
}

/// A held maildrop, released when dropped (whatever way the session ends).
pub(crate) struct Lock {
    locks: Arc<Locks>,
    user: String,
}

impl Locks {
    /// The lock on `user`'s maildrop, or `None` when a session holds it.
    pub(crate) fn take(self: &Arc<Self>, user: &str) -> Option<Lock> {
        // A poisoned set only means a session panicked while inserting: the set is
        // still a set.
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(user.to_owned()).then(|| Lock {
            locks: self.clone(),
            user: user.to_owned(),
        })
    }
}

impl Locks {
    /// Records a login of `user` now unless their previous one is less than `delay`
    /// ago; `false` (nothing recorded) when it is too soon.
    pub(crate) fn login_allowed(&self, user: &str, delay: Duration) -> bool {
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if logins
            .get(user)
            .is_some_and(|last| now.duration_since(*last) < delay)
        {
            return false;
        }
        // Bounded by the users who logged in within the delay.
        if logins.len() > 10_000 {
            logins.retain(|_, last| now.duration_since(*last) < delay);
        }
        logins.insert(user.to_owned(), now);
        true
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.user);
    }
}

/// The POP3 service of one configuration: its listeners (clear text with STLS,
/// implicit TLS) share one connection limit and one set of maildrop locks.
#[derive(Clone)]
pub struct Pop3Server {
    store: Store,
    config: Arc<Pop3Config>,
    gate: Arc<Gate>,
    throttle: Arc<AuthThrottle>,
    locks: Arc<Locks>,
}

impl Pop3Server {
    /// A service on `store` with `config`, with a login throttle of its own.
    pub fn new(store: Store, config: Pop3Config) -> Pop3Server {
        Pop3Server {
            store,
            gate: Gate::new(Limits {
                max_connections: config.max_connections,
                max_per_ip: config.max_connections_per_ip,
            }),
            config: Arc::new(config),
            throttle: Arc::new(AuthThrottle::new(Default::default())),
            locks: Arc::default(),
        }
    }

    /// The same service, counting failed logins in `throttle` (shared with the
    /// process's other listeners).
    pub fn with_throttle(mut self, throttle: Arc<AuthThrottle>) -> Pop3Server {
        self.throttle = throttle;
        self
    }

    /// Accepts clear-text POP3 connections (offering STLS when TLS is configured)
    /// until `shutdown` becomes true.
    pub async fn serve_tcp(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        self.serve(listener, false, shutdown).await
    }

    /// Accepts implicit-TLS connections (the "pop3s" port, RFC 8314) until `shutdown`
    /// becomes true. Does nothing (but log) when [`Pop3Config::tls`] is `None`.
    pub async fn serve_tls(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        if self.config.tls.is_none() {
            tracing::error!("pop3s listener without a TLS configuration: not started");
            return;
        }
        self.serve(listener, true, shutdown).await
    }

    async fn serve(self, listener: TcpListener, implicit: bool, shutdown: watch::Receiver<bool>) {
        let config = ListenerConfig::new(if implicit { "pop3s" } else { "pop3" }, BUSY)
            .with_implicit_tls(self.config.tls.clone().filter(|_| implicit));
        let gate = self.gate.clone();
        tern_net::serve(Bound::Tcp(listener), gate, config, shutdown, move |conn| {
            let this = self.clone();
            async move {
                session::run(conn, this.store, this.config, this.throttle, this.locks).await
            }
        })
        .await
    }
}
