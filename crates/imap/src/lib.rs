//! IMAP4rev1 (RFC 3501) server for tern, with the extensions modern clients use.
//!
//! Each connection is a [`session`] task. Commands are read by a bounded streaming
//! [`parser`] (literals included), executed against the store, and answered; changes
//! made by other sessions reach a client at its next command, or at once in IDLE,
//! without ever making message sequence numbers wrong (see `selected.rs`).
//!
//! The server never touches the filesystem: messages and their state come from
//! `tern-store`; MIME structure (ENVELOPE, BODYSTRUCTURE, sections) comes from
//! `mail-parser` via [`mime`], cached per message GUID.

#![deny(missing_docs)]

mod fetch;
mod indexer;
mod mailbox_cmds;
mod message_cmds;
pub mod mime;
pub mod mutf7;
pub mod parser;
mod quota_cmds;
mod reader;
mod response;
mod search;
mod selected;
mod session;
mod sort_cmds;
pub mod types;

pub use indexer::ImapIndexer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tern_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Settings of the IMAP listener.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Name in the greeting.
    pub hostname: String,
    /// Longest command line without its literals, in bytes.
    pub max_line: usize,
    /// Largest literal (and so the largest APPEND), in bytes; advertised as APPENDLIMIT.
    pub max_literal: usize,
    /// Most concurrent connections.
    pub max_connections: usize,
    /// An idle (not IDLEing) connection is logged out after this long (RFC 3501 5.4:
    /// at least 30 minutes).
    pub idle_timeout: Duration,
    /// Delay before answering a failed login, against password guessing.
    pub auth_failure_delay: Duration,
    /// Messages whose MIME summary is kept in memory (shared by all sessions).
    pub summary_cache_entries: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".to_owned(),
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_connections: 20_000,
            idle_timeout: Duration::from_secs(31 * 60),
            auth_failure_delay: Duration::from_secs(1),
            summary_cache_entries: 200_000,
        }
    }
}

/// Accepts IMAP connections on `listener` until `shutdown` becomes true.
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: ImapConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let cache = Arc::new(mime::SummaryCache::new(
        config.summary_cache_entries,
        512 * 1024 * 1024,
    ));
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let accept = || listener.accept();
    loop {
        let accepted = tokio::select! {
            a = accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "imap accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(reject(stream));
            continue;
        };
        let (store, config, cache, shutdown) = (
            store.clone(),
            config.clone(),
            cache.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            session::run(stream, peer.to_string(), store, config, cache, shutdown).await;
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        slots.acquire_many(config.max_connections as u32),
    )
    .await;
}

fn reject(mut stream: tokio::net::TcpStream) -> impl Future<Output = ()> {
    async move {
        use tokio::io::AsyncWriteExt;
        let _ = stream
            .write_all(b"* BYE Too many connections, try again later\r\n")
            .await;
    }
}
