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
mod line;
mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tern_store::Store;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};

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
    /// Window for duplicate suppression by Message-ID; zero turns it off.
    pub duplicate_window: Duration,
    /// Answer over-quota recipients with a permanent `552` instead of `452`.
    pub over_quota_permanent: bool,
    /// A connection idle this long is closed.
    pub idle_timeout: Duration,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            hostname: "localhost".to_owned(),
            max_message_size: 64 * 1024 * 1024,
            max_recipients: 1000,
            max_connections: 256,
            duplicate_window: Duration::from_secs(3 * 24 * 3600),
            over_quota_permanent: false,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Accepts LMTP connections on `listener` until `shutdown` becomes true; each
/// connection runs as its own task and is told `421` if still idle at shutdown.
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: LmtpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    accept_loop(
        || async {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok((stream, peer.to_string()))
        },
        store,
        config,
        shutdown,
    )
    .await
}

/// As [`serve_tcp`], on a Unix domain socket.
pub async fn serve_unix(
    listener: UnixListener,
    store: Store,
    config: LmtpConfig,
    shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    accept_loop(
        || async {
            let (stream, _) = listener.accept().await?;
            Ok((stream, "unix".to_owned()))
        },
        store,
        config,
        shutdown,
    )
    .await
}

async fn accept_loop<A, F, S>(
    accept: A,
    store: Store,
    config: Arc<LmtpConfig>,
    mut shutdown: watch::Receiver<bool>,
) where
    A: Fn() -> F,
    F: Future<Output = std::io::Result<(S, String)>>,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(config.max_connections));
    loop {
        let accepted = tokio::select! {
            a = accept() => a,
            _ = shutdown.changed() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "lmtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stream
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
            });
            continue;
        };
        let (store, config, shutdown) = (store.clone(), config.clone(), shutdown.clone());
        tokio::spawn(async move {
            session::run(stream, peer, store, config, shutdown).await;
            drop(permit);
        });
    }
}
