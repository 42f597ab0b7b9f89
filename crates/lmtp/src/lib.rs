//! LMTP (RFC 2033) delivery into tern's store.
//!
//! A mail transfer agent (Postfix, Exim) hands messages to tern over LMTP, on TCP or a
//! Unix socket. After DATA the server answers once per accepted recipient, in RCPT
//! order, and each `250` is sent only after that recipient's copy is durable (the
//! store fsyncs the blob and commits the index before returning). Recipients fail
//! independently: an unknown user gets `550 5.1.1`, a full mailbox `452 4.2.2` (or
//! `552 5.2.2` when configured as permanent), and the others are still delivered.
//!
//! `user+folder@domain` delivers into `folder` when the user has it and its ACL gives
//! `anyone` the `p` right (the store decides), else INBOX. A
//! message whose Message-ID was already delivered to the same mailbox within
//! [`LmtpConfig::duplicate_window`] is accepted but not stored twice.
//!
//! Input is bounded: command lines, the message size (advertised as SIZE), recipients
//! per transaction, and errors per connection; a client that disconnects mid-DATA
//! leaves nothing stored.

#![deny(missing_docs)]

mod address;
mod session;

/// Doors into the parsers this crate keeps private, for the fuzz target
/// (`fuzz/fuzz_targets/lmtp_command.rs`). Not an API: nothing here is stable.
#[doc(hidden)]
pub mod fuzzing {
    /// The arguments of `MAIL` parsed: the reverse path and the SIZE parameter, or
    /// why they are refused.
    pub fn mail_from(args: &str) -> Result<(String, Option<u64>), &'static str> {
        crate::address::parse_mail_from(args).map(|m| (m.reverse_path, m.size))
    }

    /// The arguments of `RCPT` parsed: the address, the user and the folder named by
    /// the detail, or why they are refused.
    pub fn rcpt_to(args: &str) -> Result<(String, String, Option<String>), &'static str> {
        crate::address::parse_rcpt_to(args).map(|r| (r.address, r.user, r.folder))
    }
}

use std::sync::Arc;
use std::time::Duration;

use tern_net::{Bound, Gate, Limits, ListenerConfig, MemoryBudget};
use tern_store::Store;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

/// Settings of the LMTP listener.
#[derive(Debug, Clone)]
pub struct LmtpConfig {
    /// Name in the greeting and LHLO reply.
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised as SIZE).
    pub max_message_size: usize,
    /// Most recipients in one transaction.
    pub max_recipients: usize,
    /// Most concurrent connections; more are answered `421` and closed.
    pub max_connections: usize,
    /// Most concurrent connections from one client address; 0 = no such limit.
    pub max_connections_per_ip: usize,
    /// Window for duplicate suppression by Message-ID; zero turns it off.
    pub duplicate_window: Duration,
    /// Answer over-quota recipients with a permanent `552` instead of `452`.
    pub over_quota_permanent: bool,
    /// A connection idle this long between commands is closed.
    pub idle_timeout: Duration,
    /// The whole DATA body must arrive within this long; a client that stalls is
    /// told `421` and nothing is stored.
    pub data_timeout: Duration,
    /// The local part that addresses the shared namespace (Cyrus's `postuser`):
    /// `<postuser>+<mailbox>@` (and `+<mailbox>@`) delivers into the shared mailbox
    /// `<mailbox>` when its ACL grants `p` to anyone. A user of this name receives
    /// plain `<postuser>@` mail as usual, but not `+folder` mail.
    pub postuser: String,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            hostname: "localhost".to_owned(),
            max_message_size: 64 * 1024 * 1024,
            max_recipients: 1000,
            max_connections: 256,
            max_connections_per_ip: 128,
            duplicate_window: Duration::from_secs(3 * 24 * 3600),
            over_quota_permanent: false,
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            postuser: "bb".to_owned(),
        }
    }
}

/// What a client over the connection limits is told.
const BUSY: &[u8] = b"421 4.3.2 Too many connections, try again later\r\n";

/// The LMTP service of one configuration: its listeners (TCP, Unix socket) share one
/// connection limit.
#[derive(Clone)]
pub struct LmtpServer {
    store: Store,
    config: Arc<LmtpConfig>,
    gate: Arc<Gate>,
    budget: MemoryBudget,
}

impl LmtpServer {
    /// A service on `store`; message bodies in transit are held within `budget`
    /// (shared with the other protocols), and a body that does not fit is refused
    /// with `451 4.3.1` after it was read.
    pub fn new(store: Store, config: LmtpConfig, budget: MemoryBudget) -> LmtpServer {
        LmtpServer {
            gate: Gate::new(Limits {
                max_connections: config.max_connections,
                max_per_ip: config.max_connections_per_ip,
            }),
            store,
            config: Arc::new(config),
            budget,
        }
    }

    /// Accepts connections on `bound` until `shutdown` becomes true; each session is
    /// told `421` if still idle at shutdown, and a delivery in progress finishes.
    pub async fn serve(self, bound: Bound, shutdown: watch::Receiver<bool>) {
        let listener = ListenerConfig::new("lmtp", BUSY);
        let gate = self.gate.clone();
        tern_net::serve(bound, gate, listener, shutdown, move |conn| {
            let this = self.clone();
            async move { session::run(conn, this.store, this.config, this.budget).await }
        })
        .await
    }
}

/// Accepts LMTP connections on `listener` until `shutdown` becomes true, with a memory
/// budget of four maximum-size messages.
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: LmtpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let budget = MemoryBudget::new(config.max_message_size.saturating_mul(4));
    LmtpServer::new(store, config, budget)
        .serve(Bound::Tcp(listener), shutdown)
        .await
}

/// As [`serve_tcp`], on a Unix domain socket.
pub async fn serve_unix(
    listener: UnixListener,
    store: Store,
    config: LmtpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let budget = MemoryBudget::new(config.max_message_size.saturating_mul(4));
    LmtpServer::new(store, config, budget)
        .serve(Bound::Unix(listener), shutdown)
        .await
}
