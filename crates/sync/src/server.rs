//! The replica's sync listener: one session per connection, commands applied in
//! order, each write one transaction of the store (`docs/replication.md`).
//!
//! A session reads ahead: one task parses the next commands (literals included) while
//! another applies the current one, so the master's stream and the replica's disk work
//! overlap. Responses go out through a third task in command order.

use std::sync::Arc;
use std::time::Duration;

use tern_net::sasl::{Exchange, Step};
use tern_net::{AuthThrottle, Bound, Connection, Gate, Limits as NetLimits, ListenerConfig, Peer};
use tern_store::{Store, StoreError};
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::protocol::{
    encode_bye, mailboxes_digest, Capabilities, Code, Completion, MessageData, ReplicaMailbox,
    ReplicaRecord, ReplicaUser, Request, Reserved, Selection, RECORDS_PER_ANSWER, VERSION,
};
use crate::wire::{parse_command, Command, Encoder, Limits, LineReader, WireError};
use crate::Io;

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
        name: "sync",
        busy: BUSY,
        implicit_tls: None,
        handshake_timeout: config.timeouts.handshake,
        drain_grace: Duration::from_secs(10),
        write_timeout: tern_net::WRITE_TIMEOUT,
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
        transport,
        peer,
        shutdown,
    } = conn;
    let (r, mut w) = tokio::io::split(Box::new(transport) as Box<dyn Io>);
    let reader = LineReader::new(r, Limits::unauthenticated());
    let greeting = Completion::ok(
        Some(Code::Capability(capabilities(&config, peer, false).0)),
        "tern replica ready",
    );
    w.write_all(&done("*", &greeting)).await?;
    let mut stopping = shutdown.clone();
    let login = tokio::select! {
        login = tokio::time::timeout(
            config.timeouts.preauth,
            unauthenticated(reader, w, &store, &config, peer),
        ) => login,
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

/// The state before authentication: one command at a time, so STARTTLS can swap the
/// stream, and no literals at all. `None` when the client left.
async fn unauthenticated(
    mut reader: Reader,
    mut w: Writer,
    store: &Store,
    config: &SyncServerConfig,
    peer: Peer,
) -> Result<Option<(Reader, Writer, String, bool)>, WireError> {
    let mut tls_on = false;
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
    tokio::time::sleep(attempt.delay).await;
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

/// What the read-ahead task hands the applier.
enum Incoming {
    Command(Command),
    /// A recoverable wire error: answer BAD (with TOOBIG for a bound) and go on.
    Bad(Option<String>, String, bool),
    /// A line over the bound: answer BYE after the replies before it, and stop.
    TooLong,
    /// Nothing arrived for the idle timeout: answer BYE and stop.
    Idle,
}

/// A recoverable wire error as the read-ahead task hands it on.
fn bad(e: &WireError) -> Incoming {
    Incoming::Bad(
        e.tag().map(str::to_owned),
        e.to_string(),
        matches!(e, WireError::TooBig { .. }),
    )
}

/// Authenticated state: parse ahead, apply in order, answer in order.
async fn authenticated(
    mut reader: Reader,
    mut w: Writer,
    store: Store,
    caps: Capabilities,
    idle: Duration,
) -> Result<(), WireError> {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            w.write_all(&bytes).await?;
            // Coalesce what is already queued into one flush.
            while let Ok(more) = out_rx.try_recv() {
                w.write_all(&more).await?;
            }
            w.flush().await?;
        }
        w.shutdown().await
    });
    let (in_tx, mut in_rx) = mpsc::channel::<Incoming>(READ_AHEAD);
    let cont = out_tx.clone();
    let read_ahead = tokio::spawn(async move {
        loop {
            // Not cancel-safe, but a timeout ends the session anyway.
            let line = tokio::time::timeout(
                idle,
                reader.read_line(&mut |_| cont.send(b"+ go ahead\r\n".to_vec()).is_ok()),
            )
            .await;
            let Ok(line) = line else {
                let _ = in_tx.send(Incoming::Idle).await;
                return Ok(());
            };
            let item = match line {
                Ok(line) => match line.into_command() {
                    Ok(c) => Incoming::Command(c),
                    Err(e) => bad(&e),
                },
                Err(e) if !e.is_fatal() => bad(&e),
                Err(WireError::LineTooLong) => Incoming::TooLong,
                Err(e) => return Err(e),
            };
            let fatal = matches!(item, Incoming::TooLong);
            if in_tx.send(item).await.is_err() || fatal {
                return Ok(());
            }
        }
    });
    while let Some(item) = in_rx.recv().await {
        let cmd = match item {
            Incoming::Command(c) => c,
            Incoming::TooLong => {
                let _ = out_tx.send(bye("line too long"));
                break;
            }
            Incoming::Idle => {
                let _ = out_tx.send(bye("idle too long"));
                break;
            }
            Incoming::Bad(tag, text, too_big) => {
                let _ = out_tx.send(bad_line(tag.as_deref(), text, too_big));
                continue;
            }
        };
        let tag = cmd.tag.clone();
        let request = match Request::parse(cmd) {
            Ok(r) => r,
            Err(text) => {
                let _ = out_tx.send(bad_line(Some(&tag), text, false));
                continue;
            }
        };
        match request {
            Request::Logout => {
                let _ = out_tx.send(logout(&tag));
                break;
            }
            Request::Noop => {
                let _ = out_tx.send(done(&tag, &Completion::ok(None, "NOOP")));
                continue;
            }
            Request::Capability => {
                let mut enc = Encoder::new();
                caps.encode(&mut enc);
                Completion::ok(None, "CAPABILITY").encode(&mut enc, &tag);
                let _ = out_tx.send(enc.into_bytes());
                continue;
            }
            Request::StartTls | Request::Authenticate { .. } => {
                let bad = Completion::bad(None, "already authenticated");
                let _ = out_tx.send(done(&tag, &bad));
                continue;
            }
            _ => {}
        }
        let store = store.clone();
        let reply = tokio::task::spawn_blocking(move || execute(&store, &tag, request))
            .await
            .unwrap_or_else(|_| bye("internal error"));
        if out_tx.send(reply).is_err() {
            break;
        }
    }
    read_ahead.abort();
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// Applies one request and renders its whole answer.
fn execute(store: &Store, tag: &str, request: Request) -> Vec<u8> {
    let mut enc = Encoder::new();
    let verb = request.verb();
    let result: Result<Option<Code>, StoreError> = (|| match request {
        Request::Mailboxes {
            user,
            selection,
            same,
        } => {
            let Some(state) = store.user_state(&user)? else {
                return Ok(None);
            };
            ReplicaUser {
                name: state.name.clone(),
                digest: state.digest(),
                modseq: state.modseq,
                admin: None,
            }
            .encode(&mut enc);
            let live = store.mailboxes(&user, false)?;
            if let (Selection::All, Some(same)) = (&selection, &same) {
                let ours: Vec<ReplicaMailbox> = live.iter().map(ReplicaMailbox::of).collect();
                if mailboxes_digest(&ours) == *same {
                    return Ok(Some(Code::Same));
                }
            }
            for m in live {
                let wanted = match &selection {
                    Selection::All => true,
                    Selection::Some { ids, names } => {
                        ids.contains(&m.uniqueid) || names.contains(&m.name)
                    }
                };
                if wanted {
                    ReplicaMailbox::encode(&mut enc, &m);
                }
            }
            Ok(None)
        }
        Request::Users => {
            for u in store.users()? {
                if let Some(state) = store.user_state(&u.name)? {
                    ReplicaUser {
                        name: state.name.clone(),
                        digest: state.digest(),
                        modseq: state.modseq,
                        admin: Some(state.is_admin),
                    }
                    .encode(&mut enc);
                }
            }
            Ok(None)
        }
        Request::Reserve { guids, .. } => {
            Reserved(store.held_blobs(&guids)).encode(&mut enc);
            Ok(None)
        }
        Request::User(state) => store.apply_user_state(&state).map(|()| None),
        Request::Unuser(user) => match store.delete_user(&user) {
            Ok(()) | Err(StoreError::NoSuchUser(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Request::Update(update) => store.apply_update(*update).map(|()| None),
        Request::Rename {
            user,
            uniqueid,
            name,
            partition,
        } => store
            .replica_rename(&user, &uniqueid, &name, &partition)
            .map(|()| None),
        Request::Delete { user, uniqueid } => store.replica_delete(&user, &uniqueid).map(|()| None),
        Request::Records { uniqueid, from, .. } => {
            // One more than an answer holds, to know whether more follow.
            let (mailbox, mut records) =
                store.records_from(&uniqueid, from.max(1), RECORDS_PER_ANSWER + 1)?;
            let more =
                (records.len() > RECORDS_PER_ANSWER).then(|| records[RECORDS_PER_ANSWER].uid);
            records.truncate(RECORDS_PER_ANSWER);
            for r in &records {
                let held = store
                    .blobs()
                    .contains(&mailbox.partition, &r.guid, r.size)?;
                ReplicaRecord::encode(&mut enc, r, held);
            }
            Ok(Some(match more {
                Some(next) => Code::More(next),
                None => Code::Digest(mailbox.digest.to_string()),
            }))
        }
        Request::Message { guid, size } => {
            let bytes = store.read_blob(&guid, size)?;
            MessageData::encode(&guid, &bytes, &mut enc);
            Ok(None)
        }
        // Answered by the session loop; never handed here.
        Request::Capability
        | Request::Noop
        | Request::Logout
        | Request::StartTls
        | Request::Authenticate { .. } => Ok(None),
    })();
    match result {
        Ok(code) => Completion::ok(code, verb).encode(&mut enc, tag),
        Err(e) => {
            tracing::warn!(verb, error = %e, "sync command refused");
            // Untagged data already rendered belongs to a command that failed: drop it.
            enc.clear();
            Completion::no(Some(refusal(&e)), e.to_string()).encode(&mut enc, tag);
        }
    }
    enc.into_bytes()
}

/// The response code for a refusal.
fn refusal(e: &StoreError) -> Code {
    match e {
        StoreError::SyncMismatch {
            highest_modseq,
            last_uid,
            digest,
        } => Code::Mismatch {
            highest_modseq: *highest_modseq,
            last_uid: *last_uid,
            digest: *digest,
        },
        StoreError::SyncConflict { uid, .. } => Code::Conflict(*uid),
        StoreError::DigestMismatch { replica, .. } => Code::Digest(replica.clone()),
        StoreError::BlobNotHeld(g) => g.parse().map_or(Code::Refused, Code::NoBlob),
        StoreError::NoSuchUser(_) => Code::NoUser,
        StoreError::NoSuchMailbox { .. } => Code::NonExistent,
        StoreError::Io { .. } | StoreError::CommitFailed(_) | StoreError::WriterGone => {
            Code::IoError
        }
        _ => Code::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MAILBOXES ALL with the digest of what the client expects: one line when the
    /// replica holds exactly that, the full list when anything differs.
    #[test]
    fn mailboxes_answers_same_when_the_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(tern_store::StoreConfig::new(dir.path())).unwrap();
        store.create_user("alice", None, false).unwrap();
        let live: Vec<ReplicaMailbox> = store
            .mailboxes("alice", false)
            .unwrap()
            .iter()
            .map(ReplicaMailbox::of)
            .collect();
        let ask = |same: Option<String>| {
            let request = Request::Mailboxes {
                user: "alice".into(),
                selection: Selection::All,
                same,
            };
            String::from_utf8(execute(&store, "m1", request)).unwrap()
        };
        let text = ask(Some(mailboxes_digest(&live)));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("* MAILBOX ")).count(),
            0
        );
        assert!(
            text.lines().any(|l| l.starts_with("* USER alice ")),
            "{text}"
        );
        assert!(text.ends_with("m1 OK [SAME] MAILBOXES\r\n"), "{text}");
        // One mailbox the client does not know of (say, created on the replica).
        let mut fewer = live.clone();
        fewer.pop();
        let text = ask(Some(mailboxes_digest(&fewer)));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("* MAILBOX ")).count(),
            live.len()
        );
        assert!(text.ends_with("m1 OK MAILBOXES\r\n"), "{text}");
        // A changed counter changes the digest too.
        let mut bumped = live.clone();
        bumped[0].highest_modseq += 1;
        assert_ne!(mailboxes_digest(&bumped), mailboxes_digest(&live));
    }

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
