//! The replica's sync listener: one session per connection, commands applied in
//! order, each write one transaction of the store (`docs/replication.md`).
//!
//! This module listens and authenticates; `session` runs what follows.

use std::sync::Arc;
use std::time::Duration;

use tern_net::sasl::{Exchange, Step};
use tern_net::{AuthThrottle, Bound, Connection, Gate, Limits as NetLimits, ListenerConfig, Peer};
use tern_store::Store;
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::protocol::{encode_bye, Capabilities, Code, Completion, VERSION};
use crate::wire::{parse_command, Command, Encoder, Limits, LineReader, WireError};
use crate::Io;

mod session;
use session::authenticated;

/// How the sync listener behaves.
#[derive(Clone)]
pub struct SyncServerConfig {
    /// Offered as STARTTLS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse authentication on a connection that is not TLS, even from loopback.
    /// (Off loopback, a password is never taken in clear text, whatever this says.)
    pub require_tls: bool,
    /// Wire bounds after authentication (before it: [`Limits::unauthenticated`]).
    pub limits: Limits,
    /// Most sessions at once; more are told `* BYE` and closed.
    pub max_connections: usize,
    /// Most sessions at once from one client address.
    pub max_connections_per_ip: usize,
    /// Time to authenticate after connecting, to finish a TLS handshake, and between
    /// commands once authenticated.
    pub timeouts: tern_net::Timeouts,
    /// Penalties for failed authentications, shared with the other listeners.
    pub throttle: Arc<AuthThrottle>,
}

impl Default for SyncServerConfig {
    fn default() -> Self {
        SyncServerConfig {
            tls: None,
            require_tls: false,
            limits: Limits::default(),
            max_connections: 64,
            max_connections_per_ip: 16,
            timeouts: tern_net::Timeouts {
                preauth: Duration::from_secs(60),
                ..tern_net::Timeouts::default()
            },
            throttle: Arc::new(AuthThrottle::new(Default::default())),
        }
    }
}

/// Delay before answering a failed authentication.
const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Commands parsed ahead of the one being applied.
const READ_AHEAD: usize = 4;

/// What a client over the connection limits is told.
const BUSY: &[u8] = b"* BYE too many connections, try again later\r\n";

/// Accepts connections until `stopped` turns true; each session runs on its own task.
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: SyncServerConfig,
    stopped: watch::Receiver<bool>,
) {
    let gate = Gate::new(NetLimits {
        max_connections: config.max_connections,
        max_per_ip: config.max_connections_per_ip,
    });
    let listener_config = ListenerConfig {
        handshake_timeout: config.timeouts.handshake,
        ..ListenerConfig::new("sync", BUSY)
    };
    let config = Arc::new(config);
    tern_net::serve(
        Bound::Tcp(listener),
        gate,
        listener_config,
        stopped,
        move |conn| {
            let (store, config) = (store.clone(), config.clone());
            async move {
                let peer = conn.peer;
                if let Err(e) = session(conn, store, config).await {
                    tracing::info!(%peer, error = %e, "sync session ended");
                }
            }
        },
    )
    .await
}

type Reader = LineReader<ReadHalf<Box<dyn Io>>>;
type Writer = tokio::io::WriteHalf<Box<dyn Io>>;

/// Runs one session to its end.
async fn session(
    conn: Connection,
    store: Store,
    config: Arc<SyncServerConfig>,
) -> Result<(), WireError> {
    let Connection {
        mut transport,
        peer,
        shutdown,
    } = conn;
    let greeting = Completion::ok(
        Some(Code::Capability(capabilities(&config, peer, false).0)),
        "tern replica ready",
    );
    transport.write_all(&done("*", &greeting)).await?;
    transport.flush().await?;
    let mut stopping = shutdown.clone();
    let login = tokio::select! {
        login = tokio::time::timeout(config.timeouts.preauth, async {
            let Some((io, tls_on)) = begin(transport, &config).await? else {
                return Ok(None);
            };
            let (r, w) = tokio::io::split(io);
            let reader = LineReader::new(r, Limits::unauthenticated());
            unauthenticated(reader, w, &store, &config, peer, tls_on).await
        }) => login,
        // A throttled AUTHENTICATE may wait 15 s: shutting down does not.
        _ = stopping.changed() => return Ok(()),
    };
    let (mut reader, w, user, tls_on) = match login {
        Ok(Ok(Some(state))) => state,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            tracing::info!(%peer, "sync session did not authenticate in time");
            return Ok(());
        }
    };
    tracing::info!(%user, %peer, tls = tls_on, "sync session authenticated");
    reader.set_limits(config.limits);
    // After authentication STARTTLS is no longer offered.
    authenticated(
        reader,
        w,
        store,
        capabilities(&config, peer, true),
        config.timeouts.idle,
    )
    .await
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What follows the greeting: TLS at once when the client's first byte opens a TLS
/// handshake (`DIRECTTLS`: a client that read the capability may start TLS without
/// the STARTTLS round trip; PostgreSQL 17's direct SSL works the same way), clear text
/// otherwise. The stream and whether it is TLS; `None` when the handshake failed.
async fn begin(
    transport: tern_net::Transport,
    config: &SyncServerConfig,
) -> Result<Option<(Box<dyn Io>, bool)>, WireError> {
    if let Some(tls) = config.tls.clone() {
        if transport.peek_first().await? == Some(TLS_HANDSHAKE) {
            let secure =
                tern_net::stream::accept_tls(transport, tls, config.timeouts.handshake).await;
            return Ok(secure.map(|s| (Box::new(s) as Box<dyn Io>, true)));
        }
    }
    Ok(Some((Box::new(transport), false)))
}

/// The state before authentication: one command at a time, so STARTTLS can swap the
/// stream, and no literals at all. `None` when the client left.
async fn unauthenticated(
    mut reader: Reader,
    mut w: Writer,
    store: &Store,
    config: &SyncServerConfig,
    peer: Peer,
    mut tls_on: bool,
) -> Result<Option<(Reader, Writer, String, bool)>, WireError> {
    loop {
        let line = match reader.read_line(&mut |_| false).await {
            Ok(l) => l,
            Err(WireError::Eof) => return Ok(None),
            Err(e) if !e.is_fatal() => {
                w.write_all(&wire_bad(&e)).await?;
                continue;
            }
            Err(e @ (WireError::LineTooLong | WireError::LiteralRefused { .. })) => {
                w.write_all(&bye(&format!("{e}: no literals before authentication")))
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let cmd = match parse_command(&line) {
            Ok(c) => c,
            Err(e) => {
                w.write_all(&wire_bad(&e)).await?;
                continue;
            }
        };
        let tag = cmd.tag.clone();
        match cmd.verb.as_str() {
            "CAPABILITY" => {
                let mut enc = Encoder::new();
                capabilities(config, peer, tls_on).encode(&mut enc);
                Completion::ok(None, "CAPABILITY").encode(&mut enc, &tag);
                w.write_all(enc.bytes()).await?;
            }
            "NOOP" => {
                w.write_all(&done(&tag, &Completion::ok(None, "NOOP")))
                    .await?
            }
            "LOGOUT" => {
                w.write_all(&logout(&tag)).await?;
                return Ok(None);
            }
            "STARTTLS" => {
                let Some(tls) = config.tls.clone().filter(|_| !tls_on) else {
                    let bad = Completion::bad(None, "STARTTLS not available");
                    w.write_all(&done(&tag, &bad)).await?;
                    continue;
                };
                if reader.buffered() > 0 {
                    // Bytes sent after STARTTLS before the handshake would be taken as
                    // if they came over TLS: refuse the session.
                    let bad = Completion::bad(None, "data after STARTTLS");
                    w.write_all(&done(&tag, &bad)).await?;
                    return Ok(None);
                }
                w.write_all(&done(&tag, &Completion::ok(None, "begin TLS")))
                    .await?;
                let plain = reader.into_inner().unsplit(w);
                let Some(secure) =
                    tern_net::stream::accept_tls(plain, tls, config.timeouts.handshake).await
                else {
                    return Ok(None);
                };
                let (r2, w2) = tokio::io::split(Box::new(secure) as Box<dyn Io>);
                reader = LineReader::new(r2, Limits::unauthenticated());
                w = w2;
                tls_on = true;
            }
            "AUTHENTICATE" if !plaintext_allowed(config, peer, tls_on) => {
                let no = Completion::no(
                    Some(Code::PrivacyRequired),
                    "use STARTTLS before authenticating",
                );
                w.write_all(&done(&tag, &no)).await?;
            }
            "AUTHENTICATE" => match authenticate(store, &cmd, &config.throttle, peer).await {
                Ok(user) => {
                    let ok = Completion::ok(None, format!("authenticated as {user}"));
                    w.write_all(&done(&tag, &ok)).await?;
                    return Ok(Some((reader, w, user, tls_on)));
                }
                Err(no) => {
                    tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                    w.write_all(&done(&tag, &no)).await?;
                }
            },
            _ => {
                let no = Completion::no(Some(Code::AuthenticationRequired), "authenticate first");
                w.write_all(&done(&tag, &no)).await?
            }
        }
    }
}

/// Whether a password may be sent: over TLS, or from this machine unless TLS is
/// required.
fn plaintext_allowed(config: &SyncServerConfig, peer: Peer, tls_on: bool) -> bool {
    tls_on || (peer.is_local() && !config.require_tls)
}

fn capabilities(config: &SyncServerConfig, peer: Peer, tls_on: bool) -> Capabilities {
    let mut caps = vec![format!("TERNSYNC={VERSION}"), "LITERAL+".to_owned()];
    if plaintext_allowed(config, peer, tls_on) {
        caps.push("AUTH=PLAIN".into());
    } else {
        caps.push("LOGINDISABLED".into());
    }
    if config.tls.is_some() && !tls_on {
        caps.push("STARTTLS".into());
        caps.push("DIRECTTLS".into());
    }
    Capabilities(caps)
}

/// One tagged (or, with tag `*`, untagged) status line.
fn done(tag: &str, c: &Completion) -> Vec<u8> {
    let mut enc = Encoder::new();
    c.encode(&mut enc, tag);
    enc.into_bytes()
}

/// `* BYE text`.
fn bye(text: &str) -> Vec<u8> {
    let mut enc = Encoder::new();
    encode_bye(&mut enc, text);
    enc.into_bytes()
}

/// The answer to LOGOUT.
fn logout(tag: &str) -> Vec<u8> {
    let mut enc = Encoder::new();
    encode_bye(&mut enc, "tern replica closing");
    Completion::ok(None, "LOGOUT").encode(&mut enc, tag);
    enc.into_bytes()
}

/// `tag BAD [TOOBIG] text` for a recoverable wire error (`*` when it had no tag).
fn wire_bad(e: &WireError) -> Vec<u8> {
    bad_line(
        e.tag(),
        e.to_string(),
        matches!(e, WireError::TooBig { .. }),
    )
}

fn bad_line(tag: Option<&str>, text: String, too_big: bool) -> Vec<u8> {
    let code = too_big.then_some(Code::TooBig);
    done(tag.unwrap_or("*"), &Completion::bad(code, text))
}

/// Checks `AUTHENTICATE PLAIN <base64>`: the identity must be an administrator. The
/// error is the `NO` answer.
async fn authenticate(
    store: &Store,
    cmd: &Command,
    throttle: &AuthThrottle,
    peer: Peer,
) -> Result<String, Completion> {
    let failed = || Completion::no(Some(Code::AuthenticationFailed), "authentication failed");
    let unavailable = || Completion::no(Some(Code::Unavailable), "try again later");
    let mechanism = cmd.args.first().and_then(|t| t.as_str()).unwrap_or("");
    let initial = cmd.args.get(1).and_then(|t| t.as_str());
    if !mechanism.eq_ignore_ascii_case("PLAIN") {
        return Err(Completion::no(Some(Code::Cannot), "only PLAIN is offered"));
    }
    let Some(initial) = initial else {
        return Err(Completion::no(
            Some(Code::Cannot),
            "PLAIN needs an initial response here",
        ));
    };
    let credentials = match Exchange::start(mechanism, Some(initial.as_bytes())) {
        Ok((_, Step::Done(c))) if !c.wants_proxy() => c,
        _ => return Err(failed()),
    };
    let attempt = throttle.begin(peer.ip(), &credentials.authcid);
    attempt.wait_delay().await;
    let Some(slot) = throttle.slot().await else {
        return Err(unavailable());
    };
    let store = store.clone();
    let verified = tokio::task::spawn_blocking(move || {
        store.verify_password(&credentials.authcid, &credentials.password)
    })
    .await;
    // The slot is for the hash only, not for the failure delay that follows.
    drop(slot);
    match verified {
        Ok(Ok(Some(user))) if user.is_admin => {
            attempt.succeeded();
            Ok(user.name)
        }
        Ok(Ok(_)) => {
            attempt.failed();
            Err(failed())
        }
        _ => Err(unavailable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_tls_off_this_machine() {
        let remote = Peer {
            addr: Some("192.0.2.9:40000".parse().unwrap()),
        };
        let local = Peer {
            addr: Some("127.0.0.1:40000".parse().unwrap()),
        };
        let mut config = SyncServerConfig::default();
        assert!(!plaintext_allowed(&config, remote, false));
        assert!(plaintext_allowed(&config, remote, true));
        assert!(plaintext_allowed(&config, local, false));
        assert!(capabilities(&config, remote, false).has("LOGINDISABLED"));
        config.require_tls = true;
        assert!(!plaintext_allowed(&config, local, false));
        assert!(plaintext_allowed(&config, local, true));
    }
}
