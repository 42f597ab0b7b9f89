//! tern replication: the set-of-changes protocol (`docs/replication.md`), the replica's
//! sync listener ([`server`]) and the `tern sync` client ([`client`]).
//!
//! The crate depends on the store only. The master side reads its store directly and
//! talks to the replica over the wire; the replica side turns each command into one
//! store transaction. Both sides encode and decode through [`protocol`], over the
//! IMAP-style tokens of [`wire`].

#![deny(missing_docs)]

pub mod client;
pub mod protocol;
pub mod server;
pub mod wire;

pub use client::{ClientConfig, SyncSummary};
pub use server::{serve_tcp, SyncServerConfig};

/// A byte stream a session runs over: TCP, or TLS over TCP.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
