//! IMAP4rev1 (RFC 3501) server for tern, with the extensions modern clients use.
//!
//! Each connection is a [`session`] task. Commands are read by a bounded streaming
//! [`parser`] (literals included), executed against the store, and answered; changes
//! made by other sessions reach a client at its next command, or at once in IDLE,
//! without ever making message sequence numbers wrong (see `selected.rs`).
//!
//! The server never touches the filesystem: messages and their state come from
//! `tern-store`; MIME structure comes from `tern-message`, rendered as ENVELOPE,
//! BODYSTRUCTURE and sections by [`mime`] and cached per message GUID.
//!
//! Accepting connections, their limits, TLS (STARTTLS and the implicit-TLS port),
//! COMPRESS=DEFLATE (RFC 4978), SASL decoding and login throttling come from the shared
//! connection layer, `tern-net`: the binary only hands over a ready
//! `rustls::ServerConfig` in [`ImapConfig::tls`] and the process's
//! [`AuthThrottle`](tern_net::AuthThrottle).

#![deny(missing_docs)]

mod acl_cmds;
mod append_cmds;
mod auth_cmds;
mod connection;
mod esearch;
mod fetch;
mod idle;
pub mod imap_url;
mod item_reads;
mod mailbox_cmds;
mod message_cmds;
mod metadata;
pub mod mime;
pub mod mutf7;
mod notify;
pub mod parser;
mod placement;
mod quota_cmds;
mod reader;
mod response;
mod search;
mod search_context;
mod selected;
mod session;
mod sort_cmds;
pub mod types;
mod uidonly;
mod urlauth_cmds;

/// The rustls in use, to build [`ImapConfig::tls`] with.
pub use tokio_rustls::rustls;

use std::sync::Arc;
use std::time::Duration;

use tern_net::{AuthThrottle, Bound, Gate, Limits, ListenerConfig, MemoryBudget};
use tern_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Settings of the IMAP listener.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Name in the greeting.
    pub hostname: String,
    /// Longest command line without its literals, in bytes.
    pub max_line: usize,
    /// Largest literal (and so the largest APPEND), in bytes; advertised as APPENDLIMIT.
    pub max_literal: usize,
    /// Most concurrent connections (clear and implicit-TLS ports together).
    pub max_connections: usize,
    /// Most concurrent connections from one client address (IPv6: one /64); 0 = no
    /// such limit.
    pub max_connections_per_ip: usize,
    /// An idle (not IDLEing) connection is logged out after this long (RFC 3501 5.4:
    /// at least 30 minutes).
    pub idle_timeout: Duration,
    /// A connection that has not logged in this long after it was accepted is closed
    /// with `* BYE` (Dovecot: 3 minutes), whatever it is doing: reading a command,
    /// waiting for the response line of AUTHENTICATE, or idle.
    pub preauth_timeout: Duration,
    /// Work one SEARCH, SORT or THREAD may do before it is refused with
    /// `NO [LIMIT] Search too complex`, in units of about a microsecond: testing one
    /// key on one message is 1, reading a message's text for a key 1 per KiB, asking
    /// the text index for one word 1 per message in the mailbox. The default (10
    /// million) lets `SEARCH BODY word` through a 100,000-message mailbox many times
    /// over, while 2,000 ORed BODY keys stop in seconds, not minutes.
    pub search_budget: u64,
    /// Longest silence in the middle of a command (an unfinished literal, a command
    /// line without its end) before the connection is closed.
    pub command_timeout: Duration,
    /// Delay before answering a failed login, against password guessing.
    pub auth_failure_delay: Duration,
    /// Messages whose MIME summary is kept in memory (shared by all sessions).
    pub summary_cache_entries: usize,
    /// The server's certificate and key: STARTTLS is offered, and
    /// [`ImapServer::serve_tls`] can run. `None`: clear text only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether LOGIN and AUTHENTICATE are allowed on a loopback connection that is not
    /// TLS. A connection from another host that is not TLS never may, whatever this
    /// says: it advertises LOGINDISABLED (and no AUTH=) until STARTTLS.
    pub plaintext_auth: bool,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".to_owned(),
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_connections: 20_000,
            max_connections_per_ip: 500,
            idle_timeout: Duration::from_secs(31 * 60),
            preauth_timeout: Duration::from_secs(180),
            command_timeout: Duration::from_secs(120),
            auth_failure_delay: Duration::from_secs(1),
            search_budget: 10_000_000,
            summary_cache_entries: 200_000,
            tls: None,
            plaintext_auth: true,
        }
    }
}

/// What a client over the connection limits is told.
const BUSY: &[u8] = b"* BYE Too many connections, try again later\r\n";

/// The IMAP service of one configuration. Its listeners (clear text with STARTTLS,
/// implicit TLS) share one connection limit and one MIME summary cache.
#[derive(Clone)]
pub struct ImapServer {
    store: Store,
    config: Arc<ImapConfig>,
    cache: Arc<mime::MessageCaches>,
    gate: Arc<Gate>,
    throttle: Arc<AuthThrottle>,
    budget: MemoryBudget,
    running: placement::Running,
}

impl ImapServer {
    /// A service on `store` with `config`, with a login throttle of its own.
    pub fn new(store: Store, config: ImapConfig) -> ImapServer {
        ImapServer {
            store,
            cache: Arc::new(mime::MessageCaches {
                summaries: mime::SummaryCache::new(config.summary_cache_entries, 512 * 1024 * 1024),
                headers: mime::HeaderCache::default(),
                search_texts: mime::SearchTextCache::default(),
            }),
            gate: Gate::new(Limits {
                max_connections: config.max_connections,
                max_per_ip: config.max_connections_per_ip,
            }),
            budget: MemoryBudget::new(config.max_literal.saturating_mul(4)),
            config: Arc::new(config),
            throttle: Arc::new(AuthThrottle::new(Default::default())),
            running: placement::Running::default(),
        }
    }

    /// The same service, holding literals in transit within `budget` (shared with the
    /// process's other listeners) instead of a budget of four largest literals.
    pub fn with_budget(mut self, budget: MemoryBudget) -> ImapServer {
        self.budget = budget;
        self
    }

    /// The same service, counting failed logins in `throttle` (shared with the
    /// process's other listeners).
    pub fn with_throttle(mut self, throttle: Arc<AuthThrottle>) -> ImapServer {
        self.throttle = throttle;
        self
    }

    /// Accepts clear-text IMAP connections (offering STARTTLS when TLS is configured)
    /// until `shutdown` becomes true.
    pub async fn serve_tcp(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        self.serve(listener, false, shutdown).await
    }

    /// Accepts implicit-TLS connections (the "imaps" port, RFC 8314) until `shutdown`
    /// becomes true. Does nothing (but log) when [`ImapConfig::tls`] is `None`.
    pub async fn serve_tls(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        if self.config.tls.is_none() {
            tracing::error!("imaps listener without a TLS configuration: not started");
            return;
        }
        self.serve(listener, true, shutdown).await
    }

    async fn serve(
        self,
        listener: TcpListener,
        implicit_tls: bool,
        shutdown: watch::Receiver<bool>,
    ) {
        let config = ListenerConfig::new(if implicit_tls { "imaps" } else { "imap" }, BUSY)
            .with_implicit_tls(self.config.tls.clone().filter(|_| implicit_tls));
        let gate = self.gate.clone();
        tern_net::serve(Bound::Tcp(listener), gate, config, shutdown, move |conn| {
            let this = self.clone();
            async move {
                connection::run(
                    conn,
                    this.store,
                    this.config,
                    this.cache,
                    this.throttle,
                    this.budget,
                    this.running,
                )
                .await
            }
        })
        .await
    }
}

/// Accepts IMAP connections on `listener` until `shutdown` becomes true (clear text,
/// with STARTTLS when [`ImapConfig::tls`] is set).
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: ImapConfig,
    shutdown: watch::Receiver<bool>,
) {
    ImapServer::new(store, config)
        .serve_tcp(listener, shutdown)
        .await
}
