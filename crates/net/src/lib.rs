//! tern's connection layer: what every listener shares, so that each protocol crate
//! is mostly its state machine.
//!
//! - [`listener`]: the accept loop, admission through a [`Gate`] (a connection limit
//!   and a per-client-address limit, with the protocol's busy answer), implicit TLS
//!   with a handshake timeout, and draining at shutdown.
//! - [`stream`]: the byte stream under a session: TCP or Unix socket, plain or TLS,
//!   optionally DEFLATE; STARTTLS that drops whatever was read before the handshake.
//! - [`sasl`]: the PLAIN and LOGIN mechanisms as one exchange each protocol frames.
//! - [`throttle`]: growing delays for password guessing, per address and per account.
//! - [`lines`]: bounded command lines and dot-terminated bodies.
//! - [`budget`]: one allowance for the bytes all clients together make the server hold.
//! - [`rlimit`]: the open-file limit raised to what the connection limits need.
//!
//! The crate knows no protocol and no store. Timeouts that depend on a protocol's
//! state (before login, idle, a command in progress) are applied by the session with
//! the durations of [`Timeouts`], so every protocol has the same knobs.
//!
//! ```
//! use tern_net::{Gate, Limits};
//! let gate = Gate::new(Limits { max_connections: 2, max_per_ip: 1 });
//! let ip = Some("192.0.2.7".parse().unwrap());
//! let first = gate.admit(ip).unwrap();
//! assert!(gate.admit(ip).is_err()); // one per address
//! drop(first);
//! assert!(gate.admit(ip).is_ok());
//! ```

#![deny(missing_docs)]

pub mod budget;
pub mod dotstuff;
pub mod lines;
pub mod listener;
pub mod rlimit;
pub mod sasl;
pub mod stream;
pub mod throttle;

use std::time::Duration;

pub use budget::{MemoryBudget, Reservation};
pub use listener::{
    serve, Bound, Connection, Gate, Limits, ListenerConfig, Peer, Refusal, WRITE_TIMEOUT,
};
pub use stream::{Input, Output, Stream, Transport};
pub use throttle::{AuthThrottle, ThrottleConfig};
pub use tokio_rustls::rustls;

/// The time limits every protocol applies, each in its own state.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To complete a TLS handshake (implicit, or after STARTTLS).
    pub handshake: Duration,
    /// From connecting to a successful login, whatever the client does meanwhile
    /// (a pending SASL exchange included).
    pub preauth: Duration,
    /// Between commands once logged in (IMAP IDLE has its own rule).
    pub idle: Duration,
    /// To finish a command once begun: a literal, an LMTP DATA body, a SASL response.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(30),
            preauth: Duration::from_secs(180),
            idle: Duration::from_secs(1860),
            command: Duration::from_secs(300),
        }
    }
}

/// Runs a blocking step a session waits for (an index read, a message file opened and
/// read, usually from the page cache): in place on a multi-threaded runtime (`tern
/// serve`'s), which spares the hand-off to the blocking pool and its thread wake-up
/// on every command; on the blocking pool on a current-thread runtime, where running
/// in place is not allowed. `None` if it panicked there.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        Some(tokio::task::block_in_place(f))
    } else {
        tokio::task::spawn_blocking(f).await.ok()
    }
}
