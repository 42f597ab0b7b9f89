//! Accepting connections: one loop for every listener of every protocol.
//!
//! A [`Gate`] holds a connection limit and a per-client-address limit; listeners of
//! one service share a gate (IMAP's clear and implicit-TLS ports count together). A
//! connection past either limit gets the protocol's busy answer and is closed at once,
//! so a flood costs a file descriptor for a moment, never a session. Accept errors
//! (out of file descriptors, above all) pause the loop with a growing backoff instead
//! of spinning. At shutdown a listener stops accepting and waits, within a grace
//! period, for its sessions to end: they watch the same shutdown signal and finish
//! what they are doing (a delivery in progress completes) before saying goodbye.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::rustls;

use crate::stream::{accept_tls, Stream, Transport};

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address; `None` on a Unix domain socket.
    pub addr: Option<SocketAddr>,
}

impl Peer {
    /// The client's IP address, if it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.addr.map(|a| a.ip())
    }

    /// True on loopback and on a Unix domain socket: nobody else can see the bytes.
    pub fn is_local(&self) -> bool {
        match self.addr {
            None => true,
            Some(a) => match a.ip() {
                IpAddr::V4(v4) => v4.is_loopback(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            },
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("unix"),
        }
    }
}

/// The limits a [`Gate`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections at once.
    pub max_connections: usize,
    /// Most connections at once from one client address (IPv6: one /64); 0 = no
    /// per-address limit.
    pub max_per_ip: usize,
}

/// Admission control shared by the listeners of one service.
pub struct Gate {
    limits: Limits,
    slots: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in its [`Gate`], given back when dropped.
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    gate: Arc<Gate>,
    ip: Option<IpAddr>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service has `max_connections` already.
    Full,
    /// This client address has `max_per_ip` already.
    TooManyFromAddress,
}

impl Gate {
    /// A gate with these limits.
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections admitted and not yet closed.
    pub fn open(&self) -> usize {
        self.limits.max_connections - self.slots.available_permits()
    }

    /// Takes a place for a client at `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Admission, Refusal> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        let key = ip.map(address_key);
        if let (Some(key), max) = (key, self.limits.max_per_ip) {
            if max > 0 {
                let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                let count = per_ip.entry(key).or_insert(0);
                if *count >= max {
                    return Err(Refusal::TooManyFromAddress);
                }
                *count += 1;
            }
        }
        Ok(Admission {
            _slot: slot,
            gate: self.clone(),
            ip: key.filter(|_| self.limits.max_per_ip > 0),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.gate.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// The key a client address is counted under: the address itself for IPv4, its /64
/// for IPv6 (one host usually holds a whole /64, so counting single addresses would
/// count nothing), and the IPv4 address for an IPv4-mapped IPv6 one.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

/// A bound listening socket.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket.
    Unix(UnixListener),
}

impl Bound {
    async fn accept(&self, write_timeout: Duration) -> std::io::Result<(Stream, Peer)> {
        match self {
            Bound::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                // Protocol replies are small and answered one at a time.
                let _ = s.set_nodelay(true);
                Ok((Stream::tcp(s, write_timeout), Peer { addr: Some(addr) }))
            }
            Bound::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::unix(s, write_timeout), Peer { addr: None }))
            }
        }
    }
}

/// How one listener treats its connections.
#[derive(Clone)]
pub struct ListenerConfig {
    /// The protocol and port, for logs (`"imap"`, `"imaps"`, `"lmtp"`, `"sync"`).
    pub name: &'static str,
    /// What a client refused by the gate is told before the connection closes (the
    /// protocol's own busy answer, with its line ending).
    pub busy: &'static [u8],
    /// TLS from the first byte (implicit TLS, RFC 8314).
    pub implicit_tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a client has to complete a TLS handshake.
    pub handshake_timeout: Duration,
    /// How long sessions get to finish after shutdown before the listener gives up
    /// waiting for them.
    pub drain_grace: Duration,
    /// How long a write may wait for the client to read before the connection fails.
    pub write_timeout: Duration,
}

impl ListenerConfig {
    /// A listener named `name` answering `busy` past its gate, in clear text, with the
    /// timeouts every protocol uses: 30 s for a TLS handshake, 10 s for sessions to
    /// finish at shutdown, [`WRITE_TIMEOUT`] for a stalled reader.
    pub fn new(name: &'static str, busy: &'static [u8]) -> ListenerConfig {
        ListenerConfig {
            name,
            busy,
            implicit_tls: None,
            handshake_timeout: Duration::from_secs(30),
            drain_grace: Duration::from_secs(10),
            write_timeout: WRITE_TIMEOUT,
        }
    }

    /// The same listener with TLS from the first byte when `tls` is given.
    pub fn with_implicit_tls(mut self, tls: Option<Arc<rustls::ServerConfig>>) -> ListenerConfig {
        self.implicit_tls = tls;
        self
    }
}

/// The write timeout protocols use: a client that has read nothing for two minutes
/// while the server had something to send is gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection handed to a protocol's session.
pub struct Connection {
    /// The byte stream (TLS already negotiated on an implicit-TLS listener).
    pub transport: Transport,
    /// Who is on the other end.
    pub peer: Peer,
    /// Turns true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
}

/// How long the busy answer may take to write before the connection is dropped.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections on `bound` until `shutdown` turns true, admitting them through
/// `gate` and running `session` for each on its own task; then waits for the sessions
/// (within [`ListenerConfig::drain_grace`]).
pub async fn serve<F, Fut>(
    bound: Bound,
    gate: Arc<Gate>,
    config: ListenerConfig,
    mut shutdown: watch::Receiver<bool>,
    session: F,
) where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let session = Arc::new(session);
    let mut sessions = JoinSet::new();
    let mut backoff = Duration::ZERO;
    loop {
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = bound.accept(config.write_timeout) => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) or memory: wait for some to
                // be given back rather than spinning on the same error.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!(listener = config.name, error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        let admission = match gate.admit(peer.ip()) {
            Ok(a) => a,
            Err(refusal) => {
                tracing::debug!(listener = config.name, %peer, ?refusal, "connection refused");
                let busy = config.busy;
                let tls = config.implicit_tls.is_some();
                tokio::spawn(async move {
                    // On an implicit-TLS port the answer would need a handshake first:
                    // a refused client there is simply closed.
                    if !tls {
                        let mut stream = stream;
                        let _ =
                            tokio::time::timeout(BUSY_WRITE_TIMEOUT, stream.write_all(busy)).await;
                    }
                });
                continue;
            }
        };
        let (session, config, shutdown) = (session.clone(), config.clone(), shutdown.clone());
        sessions.spawn(async move {
            let transport = match &config.implicit_tls {
                Some(tls) => {
                    match accept_tls(stream, tls.clone(), config.handshake_timeout).await {
                        Some(t) => t,
                        None => {
                            tracing::debug!(listener = config.name, %peer, "TLS handshake failed");
                            return;
                        }
                    }
                }
                None => Transport::Plain(stream),
            };
            session(Connection {
                transport,
                peer,
                shutdown,
            })
            .await;
            drop(admission);
        });
    }
    let _ = tokio::time::timeout(config.drain_grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_counts_per_address_and_in_total() {
        let gate = Gate::new(Limits {
            max_connections: 3,
            max_per_ip: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = gate.admit(Some(a)).unwrap();
        let _a2 = gate.admit(Some(a)).unwrap();
        assert_eq!(gate.admit(Some(a)).err(), Some(Refusal::TooManyFromAddress));
        let _b1 = gate.admit(Some(b)).unwrap();
        assert_eq!(gate.admit(Some(b)).err(), Some(Refusal::Full));
        assert_eq!(gate.open(), 3);
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(Some(a)).unwrap();
    }

    #[test]
    fn a_refused_address_does_not_hold_a_slot() {
        let gate = Gate::new(Limits {
            max_connections: 10,
            max_per_ip: 1,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let _a1 = gate.admit(Some(a)).unwrap();
        for _ in 0..20 {
            assert!(gate.admit(Some(a)).is_err());
        }
        assert_eq!(gate.open(), 1);
    }

    #[test]
    fn ipv6_addresses_count_per_slash_64() {
        let gate = Gate::new(Limits {
            max_connections: 10,
            max_per_ip: 1,
        });
        let _x = gate.admit(Some("2001:db8::1".parse().unwrap())).unwrap();
        assert!(gate.admit(Some("2001:db8::2".parse().unwrap())).is_err());
        assert!(gate.admit(Some("2001:db8:0:1::1".parse().unwrap())).is_ok());
    }

    #[test]
    fn unix_peers_have_no_address_limit() {
        let gate = Gate::new(Limits {
            max_connections: 2,
            max_per_ip: 1,
        });
        let _x = gate.admit(None).unwrap();
        let _y = gate.admit(None).unwrap();
        assert_eq!(gate.admit(None).err(), Some(Refusal::Full));
    }

    #[test]
    fn local_peers() {
        let p = |s: &str| Peer {
            addr: Some(s.parse().unwrap()),
        };
        assert!(p("127.0.0.2:5").is_local());
        assert!(p("[::1]:5").is_local());
        assert!(p("[::ffff:127.0.0.1]:5").is_local());
        assert!(!p("192.0.2.1:5").is_local());
        assert!(Peer { addr: None }.is_local());
    }
}
