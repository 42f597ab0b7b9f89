//! The replica's sync listener: one session per connection, commands applied in
//! order, each write one transaction of the store (`docs/replication.md`).
//!
//! A session reads ahead: one task parses the next commands (literals included) while
//! another applies the current one, so the master's stream and the replica's disk work
//! overlap. Responses go out through a third task in command order.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tern_store::{Store, StoreError};
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::protocol::{ReplicaMailbox, ReplicaRecord, Request, Selection, VERSION};
use crate::wire::{parse_command, Command, Encoder, Limits, LineReader, WireError};
use crate::Io;

/// How the sync listener behaves.
#[derive(Clone, Default)]
pub struct SyncServerConfig {
    /// Offered as STARTTLS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Wire bounds.
    pub limits: Limits,
}

/// Delay before answering a failed authentication.
const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Commands parsed ahead of the one being applied.
const READ_AHEAD: usize = 4;

/// Accepts connections until `stopped` turns true; each session runs on its own task.
pub async fn serve_tcp(
    listener: TcpListener,
    store: Store,
    config: SyncServerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (store, config) = (store.clone(), config.clone());
                    tokio::spawn(async move {
                        if let Err(e) = session(Box::new(stream), store, config).await {
                            tracing::info!(%peer, error = %e, "sync session ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sync accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped.changed() => return,
        }
    }
}

type Reader = LineReader<ReadHalf<Box<dyn Io>>>;

/// Runs one session to its end.
async fn session(
    stream: Box<dyn Io>,
    store: Store,
    config: SyncServerConfig,
) -> Result<(), WireError> {
    let (r, mut w) = tokio::io::split(stream);
    let mut reader = LineReader::new(r, config.limits);
    let caps = capabilities(&config, false);
    w.write_all(format!("* OK [CAPABILITY {caps}] tern replica ready\r\n").as_bytes())
        .await?;
    let mut tls_on = false;
    // Not authenticated: one command at a time, so STARTTLS can swap the stream.
    let user = loop {
        let line = match reader.read_line(&mut |_| true).await {
            Ok(l) => l,
            Err(WireError::Eof) => return Ok(()),
            Err(e) if !e.is_fatal() => {
                let code = if matches!(e, WireError::TooBig { .. }) {
                    "[TOOBIG] "
                } else {
                    ""
                };
                w.write_all(format!("{} BAD {code}{e}\r\n", e.tag().unwrap_or("*")).as_bytes())
                    .await?;
                continue;
            }
            Err(WireError::LineTooLong) => {
                w.write_all(b"* BYE line too long\r\n").await?;
                return Err(WireError::LineTooLong);
            }
            Err(e) => return Err(e),
        };
        let cmd = match parse_command(&line) {
            Ok(c) => c,
            Err(e) => {
                w.write_all(format!("{} BAD {e}\r\n", e.tag().unwrap_or("*")).as_bytes())
                    .await?;
                continue;
            }
        };
        let tag = cmd.tag.clone();
        match cmd.verb.as_str() {
            "CAPABILITY" => {
                let caps = capabilities(&config, tls_on);
                w.write_all(format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY\r\n").as_bytes())
                    .await?;
            }
            "NOOP" => w.write_all(format!("{tag} OK NOOP\r\n").as_bytes()).await?,
            "LOGOUT" => {
                w.write_all(
                    format!("* BYE tern replica closing\r\n{tag} OK LOGOUT\r\n").as_bytes(),
                )
                .await?;
                return Ok(());
            }
            "STARTTLS" => {
                let Some(tls) = config.tls.clone().filter(|_| !tls_on) else {
                    w.write_all(format!("{tag} BAD STARTTLS not available\r\n").as_bytes())
                        .await?;
                    continue;
                };
                if reader.buffered() > 0 {
                    // Bytes sent after STARTTLS before the handshake would be taken as
                    // if they came over TLS: refuse the session.
                    w.write_all(format!("{tag} BAD data after STARTTLS\r\n").as_bytes())
                        .await?;
                    return Ok(());
                }
                w.write_all(format!("{tag} OK begin TLS\r\n").as_bytes())
                    .await?;
                let plain = reader.into_inner().unsplit(w);
                let secure = tokio_rustls::TlsAcceptor::from(tls).accept(plain).await?;
                let (r2, w2) = tokio::io::split(Box::new(secure) as Box<dyn Io>);
                reader = LineReader::new(r2, config.limits);
                w = w2;
                tls_on = true;
            }
            "AUTHENTICATE" => match authenticate(&store, &cmd).await {
                Some(user) => {
                    w.write_all(format!("{tag} OK authenticated as {user}\r\n").as_bytes())
                        .await?;
                    break user;
                }
                None => {
                    tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                    w.write_all(
                        format!("{tag} NO [AUTHENTICATIONFAILED] authentication failed\r\n")
                            .as_bytes(),
                    )
                    .await?;
                }
            },
            _ => {
                w.write_all(
                    format!("{tag} NO [AUTHENTICATIONREQUIRED] authenticate first\r\n").as_bytes(),
                )
                .await?
            }
        }
    };
    tracing::info!(%user, tls = tls_on, "sync session authenticated");
    // After authentication STARTTLS is no longer offered.
    authenticated(reader, w, store, capabilities(&config, true)).await
}

fn capabilities(config: &SyncServerConfig, tls_on: bool) -> String {
    let mut caps = format!("TERNSYNC={VERSION} AUTH=PLAIN LITERAL+");
    if config.tls.is_some() && !tls_on {
        caps.push_str(" STARTTLS");
    }
    caps
}

/// Checks `AUTHENTICATE PLAIN <base64>`: the identity must be an administrator.
async fn authenticate(store: &Store, cmd: &Command) -> Option<String> {
    let mech = cmd.args.first()?.as_str()?;
    if !mech.eq_ignore_ascii_case("PLAIN") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cmd.args.get(1)?.as_str()?)
        .ok()?;
    let mut parts = decoded.split(|b| *b == 0);
    let (authz, authc, password) = (parts.next()?, parts.next()?, parts.next()?);
    let authc = std::str::from_utf8(authc).ok()?.to_owned();
    if !authz.is_empty() && authz != authc.as_bytes() {
        return None;
    }
    let password = std::str::from_utf8(password).ok()?.to_owned();
    let store = store.clone();
    let user = tokio::task::spawn_blocking(move || store.verify_password(&authc, &password))
        .await
        .ok()?
        .ok()??;
    user.is_admin.then_some(user.name)
}

/// What the read-ahead task hands the applier.
enum Incoming {
    Command(Command),
    /// A recoverable wire error: answer BAD (with TOOBIG for a bound) and go on.
    Bad(Option<String>, String, bool),
    /// A line over the bound: answer BYE after the replies before it, and stop.
    TooLong,
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
    mut w: tokio::io::WriteHalf<Box<dyn Io>>,
    store: Store,
    caps: String,
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
            let line = reader
                .read_line(&mut |_| cont.send(b"+ go ahead\r\n".to_vec()).is_ok())
                .await;
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
                let _ = out_tx.send(b"* BYE line too long\r\n".to_vec());
                break;
            }
            Incoming::Bad(tag, text, too_big) => {
                let code = if too_big { "[TOOBIG] " } else { "" };
                let _ = out_tx.send(
                    format!("{} BAD {code}{text}\r\n", tag.as_deref().unwrap_or("*")).into_bytes(),
                );
                continue;
            }
        };
        let tag = cmd.tag.clone();
        match cmd.verb.as_str() {
            "LOGOUT" => {
                let _ = out_tx.send(
                    format!("* BYE tern replica closing\r\n{tag} OK LOGOUT\r\n").into_bytes(),
                );
                break;
            }
            "NOOP" => {
                let _ = out_tx.send(format!("{tag} OK NOOP\r\n").into_bytes());
                continue;
            }
            "CAPABILITY" => {
                let _ = out_tx
                    .send(format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY\r\n").into_bytes());
                continue;
            }
            "STARTTLS" | "AUTHENTICATE" => {
                let _ = out_tx.send(format!("{tag} BAD already authenticated\r\n").into_bytes());
                continue;
            }
            _ => {}
        }
        let request = match Request::parse(cmd) {
            Ok(r) => r,
            Err(text) => {
                let _ = out_tx.send(format!("{tag} BAD {text}\r\n").into_bytes());
                continue;
            }
        };
        let store = store.clone();
        let reply = tokio::task::spawn_blocking(move || execute(&store, &tag, request))
            .await
            .unwrap_or_else(|_| b"* BYE internal error\r\n".to_vec());
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
    let verb = match &request {
        Request::Mailboxes { .. } => "MAILBOXES",
        Request::Reserve { .. } => "RESERVE",
        Request::User(_) => "USER",
        Request::Unuser(_) => "UNUSER",
        Request::Update(_) => "UPDATE",
        Request::Rename { .. } => "RENAME",
        Request::Delete { .. } => "DELETE",
        Request::Records { .. } => "RECORDS",
        Request::Message { .. } => "MESSAGE",
        Request::Users => "USERS",
    };
    let result: Result<Option<String>, StoreError> = (|| match request {
        Request::Mailboxes { user, selection } => {
            let Some(state) = store.user_state(&user)? else {
                return Ok(None);
            };
            enc.raw("* USER ")
                .string(&state.name)
                .sp()
                .atom(&state.digest());
            enc.raw(" (MODSEQ ").number(state.modseq).raw(")").crlf();
            for m in store.mailboxes(&user, false)? {
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
                    enc.raw("* USER ")
                        .string(&state.name)
                        .sp()
                        .atom(&state.digest());
                    enc.raw(" (MODSEQ ").number(state.modseq);
                    enc.raw(" ADMIN ")
                        .number(u64::from(state.is_admin))
                        .raw(")")
                        .crlf();
                }
            }
            Ok(None)
        }
        Request::Reserve { guids } => {
            enc.raw("* RESERVE");
            for g in store.held_blobs(&guids) {
                enc.sp().atom(&g.to_hex());
            }
            enc.crlf();
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
        Request::Records { uniqueid, .. } => {
            let (mailbox, records, digest) = store.all_records(&uniqueid)?;
            for r in &records {
                let held = store
                    .blobs()
                    .contains(&mailbox.partition, &r.guid, r.size)?;
                ReplicaRecord::encode(&mut enc, r, held);
            }
            Ok(Some(format!("[DIGEST {digest}] ")))
        }
        Request::Message { guid, size } => {
            let bytes = store.read_blob(&guid, size)?;
            enc.raw("* MESSAGE ")
                .atom(&guid.to_hex())
                .sp()
                .literal(&bytes)
                .crlf();
            Ok(None)
        }
    })();
    match result {
        Ok(code) => {
            enc.atom(tag)
                .raw(" OK ")
                .raw(code.as_deref().unwrap_or(""))
                .raw(verb)
                .crlf();
        }
        Err(e) => {
            let (code, text) = refusal(&e);
            tracing::warn!(verb, error = %e, "sync command refused");
            // Untagged data already rendered belongs to a command that failed: drop it.
            enc.clear();
            enc.atom(tag)
                .raw(" NO ")
                .raw(&code)
                .sp()
                .raw(&text.replace(['\r', '\n'], " "))
                .crlf();
        }
    }
    enc.into_bytes()
}

/// The response code and text for a refusal.
fn refusal(e: &StoreError) -> (String, String) {
    let code = match e {
        StoreError::SyncMismatch {
            highest_modseq,
            last_uid,
        } => format!("[MISMATCH {highest_modseq} {last_uid}]"),
        StoreError::SyncConflict { uid, .. } => format!("[CONFLICT {uid}]"),
        StoreError::DigestMismatch { replica, .. } => format!("[DIGEST {replica}]"),
        StoreError::BlobNotHeld(g) => format!("[NOBLOB {g}]"),
        StoreError::NoSuchUser(_) => "[NOUSER]".to_owned(),
        StoreError::NoSuchMailbox { .. } => "[NONEXISTENT]".to_owned(),
        StoreError::Io { .. } | StoreError::CommitFailed(_) | StoreError::WriterGone => {
            "[IOERROR]".to_owned()
        }
        _ => "[REFUSED]".to_owned(),
    };
    (code, e.to_string())
}
