//! NNTP access to tern's store: newsgroups are shared mailboxes under a configured
//! prefix (`comp.lang.rust` is the shared mailbox `<prefix>/comp.lang.rust`), article
//! numbers are their UIDs. RFC 3977 (reader and transit commands), RFC 4642 STARTTLS,
//! RFC 4643 AUTHINFO USER/PASS and SASL PLAIN, RFC 6048 LIST variants, and the RFC
//! 2980 spellings readers still send (XOVER, XHDR, LIST without a keyword).
//!
//! Policies, each a guarantee:
//! - **Rights are the mailbox's ACL**: reading a group needs `l` and `r`, posting `p`.
//!   A client that has not authenticated is the `anonymous` identifier; `anyone` is
//!   every authenticated user. Where a client may not read, the group does not exist
//!   for it (`411`), except that an unauthenticated client is told `480` when it
//!   names a group that exists, so readers know to log in.
//! - **Article numbers are UIDs**, never reused, the same on a replica. UIDs above
//!   2^31-1 (RFC 3977's limit) are not shown, and a group that reached it takes no
//!   more articles.
//! - **The Message-ID index lasts as long as the article** (the store's, kept with the
//!   content), so ARTICLE `<id>`, Xref and NEWNEWS work for every stored article, and
//!   POST and IHAVE refuse an id the store has ever held (`441`, `435`/`437`).
//! - **POST injects**: Newsgroups, From, Subject and a body are required; Message-ID
//!   (when absent), Date (when absent), Path and Injection-Date are added; the article
//!   goes into every named group the poster may post to, in one store transaction, or
//!   nowhere. Control messages (a `Control:` header) are refused: this version does not
//!   carry them out. An article with a NUL octet is refused (no answer could carry it).
//! - **Long answers are streamed** (OVER, HDR, LISTGROUP, ARTICLE): a batch of
//!   articles is read and written at a time, never the whole answer.
//! - Passwords only over TLS, or in clear text from loopback when
//!   [`NntpConfig::plaintext_auth`] allows it.

#![deny(missing_docs)]

mod article;
mod clock;
mod command;
mod groups;
mod overview;
mod post;
mod session;
mod wildmat;

pub use command::{parse, ArticleRef, Command, ListKind, ParseError, Range, Retrieve, Selection};

/// Doors into the parsers this crate keeps private, for the fuzz targets
/// (`fuzz/fuzz_targets/nntp_input.rs`). Not an API: nothing here is stable.
#[doc(hidden)]
pub mod fuzzing {
    /// Whether `name` matches the RFC 3977 wildmat `wildmat`.
    pub fn wildmat_matches(wildmat: &str, name: &str) -> bool {
        crate::wildmat::matches(wildmat, name)
    }

    /// `raw` checked and completed as a POSTed article (`offered` is `None`) or as
    /// one an IHAVE offered under that Message-ID: the bytes that would be stored and
    /// the groups named, or why the article is refused.
    pub fn prepare_article(
        raw: &[u8],
        offered: Option<&str>,
    ) -> Result<(Vec<u8>, Vec<String>), String> {
        let arrival = match offered {
            Some(id) => crate::post::Arrival::Ihave(id),
            None => crate::post::Arrival::Post,
        };
        crate::post::prepare(raw, arrival, "fuzz.example", 1_700_000_000)
            .map(|p| (p.message, p.groups))
    }
}

use std::sync::Arc;
use std::time::Duration;

use tern_net::{AuthThrottle, Bound, Gate, Limits, ListenerConfig, MemoryBudget};
use tern_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The rustls in use, to build [`NntpConfig::tls`] with.
pub use tokio_rustls::rustls;

/// Settings of the NNTP service.
#[derive(Debug, Clone)]
pub struct NntpConfig {
    /// Name in the greeting, Path and Xref, and generated Message-IDs.
    pub hostname: String,
    /// The shared mailbox under which newsgroups live.
    pub prefix: String,
    /// Most concurrent connections; more are told `400` and closed.
    pub max_connections: usize,
    /// Most concurrent connections from one client address; 0 = no such limit.
    pub max_connections_per_ip: usize,
    /// Closed after this long without a command (RFC 3977 3.1 asks for at least three
    /// minutes).
    pub idle_timeout: Duration,
    /// A POSTed or offered article must arrive within this long.
    pub data_timeout: Duration,
    /// Largest article accepted by POST or IHAVE, in octets.
    pub max_article_size: usize,
    /// Wait after a failed password, on top of the process's throttle.
    pub auth_failure_delay: Duration,
    /// Certificate and key: STARTTLS is offered and the implicit-TLS listener can run.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Allow passwords in clear text from loopback (never from another host).
    pub plaintext_auth: bool,
}

impl Default for NntpConfig {
    fn default() -> Self {
        NntpConfig {
            hostname: "localhost".to_owned(),
            prefix: "news".to_owned(),
            max_connections: 1024,
            max_connections_per_ip: 64,
            idle_timeout: Duration::from_secs(600),
            data_timeout: Duration::from_secs(600),
            max_article_size: 4 * 1024 * 1024,
            auth_failure_delay: Duration::from_secs(2),
            tls: None,
            plaintext_auth: true,
        }
    }
}

/// What a client over the connection limits is told.
const BUSY: &[u8] = b"400 Too many connections, try again later\r\n";

/// The NNTP service of one configuration: its listeners (clear text with STARTTLS,
/// implicit TLS) share one connection limit.
#[derive(Clone)]
pub struct NntpServer {
    store: Store,
    config: Arc<NntpConfig>,
    gate: Arc<Gate>,
    throttle: Arc<AuthThrottle>,
    budget: MemoryBudget,
}

impl NntpServer {
    /// A service on `store` with `config`, with a login throttle and a memory budget
    /// of its own (64 MiB for articles in transit).
    pub fn new(store: Store, config: NntpConfig) -> NntpServer {
        NntpServer {
            store,
            gate: Gate::new(Limits {
                max_connections: config.max_connections,
                max_per_ip: config.max_connections_per_ip,
            }),
            config: Arc::new(config),
            throttle: Arc::new(AuthThrottle::new(Default::default())),
            budget: MemoryBudget::new(64 * 1024 * 1024),
        }
    }

    /// The same service, counting failed logins in `throttle` (shared with the
    /// process's other listeners).
    pub fn with_throttle(mut self, throttle: Arc<AuthThrottle>) -> NntpServer {
        self.throttle = throttle;
        self
    }

    /// The same service, holding POSTed and offered articles within `budget` (shared
    /// with the process's other listeners).
    pub fn with_budget(mut self, budget: MemoryBudget) -> NntpServer {
        self.budget = budget;
        self
    }

    /// Accepts clear-text NNTP connections (offering STARTTLS when TLS is configured)
    /// until `shutdown` becomes true.
    pub async fn serve_tcp(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        self.serve(listener, false, shutdown).await
    }

    /// Accepts implicit-TLS connections (the "nntps" port 563) until `shutdown` becomes
    /// true. Does nothing (but log) when [`NntpConfig::tls`] is `None`.
    pub async fn serve_tls(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        if self.config.tls.is_none() {
            tracing::error!("nntps listener without a TLS configuration: not started");
            return;
        }
        self.serve(listener, true, shutdown).await
    }

    async fn serve(self, listener: TcpListener, implicit: bool, shutdown: watch::Receiver<bool>) {
        let config = ListenerConfig::new(if implicit { "nntps" } else { "nntp" }, BUSY)
            .with_implicit_tls(self.config.tls.clone().filter(|_| implicit));
        let gate = self.gate.clone();
        tern_net::serve(Bound::Tcp(listener), gate, config, shutdown, move |conn| {
            let this = self.clone();
            async move { session::run(conn, this.store, this.config, this.throttle, this.budget).await }
        })
        .await
    }
}
