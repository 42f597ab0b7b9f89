//! An authenticated replica session: commands parsed ahead, applied in order,
//! answered in order.
//!
//! Three tasks share a session. One reads and parses the next commands (literals
//! included), one applies them, one writes the answers. UPDATEs are applied in two
//! halves: a fourth task, the commit lane, makes their messages durable and commits
//! them in order, while the next ones' messages are hashed and written to temporary
//! files, so the hashing, the disk and the commits overlap. An UPDATE's answer is
//! still sent only after its commit, and any other request waits until the lane is
//! empty, so everything is applied and answered in command order.

use std::time::Duration;

use tern_store::{PreparedUpdate, Store, StoreError};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::oneshot;

use super::{bad_line, bye, done, logout, Reader, Writer, READ_AHEAD};
use crate::protocol::{
    mailboxes_digest, Capabilities, Code, Completion, MessageData, ReplicaKeywords, ReplicaMailbox,
    ReplicaRecord, ReplicaUser, Request, Reserved, Selection, RECORDS_PER_ANSWER,
};
use crate::wire::{Command, Encoder, WireError};

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
pub(super) async fn authenticated(
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
    // UPDATEs are committed in their order by a lane of their own, so that the next
    // ones are prepared (their messages hashed and written) meanwhile. Everything
    // else waits until the lane is empty: it runs after the UPDATEs before it, and
    // its answer follows theirs.
    let (lane, commits) = mpsc::channel::<Commit>(COMMIT_AHEAD);
    let committer = tokio::spawn(commit_lane(store.clone(), commits, out_tx.clone()));
    while let Some(item) = in_rx.recv().await {
        let cmd = match item {
            Incoming::Command(c) => c,
            Incoming::TooLong => {
                drain(&lane).await;
                let _ = out_tx.send(bye("line too long"));
                break;
            }
            Incoming::Idle => {
                drain(&lane).await;
                let _ = out_tx.send(bye("idle too long"));
                break;
            }
            Incoming::Bad(tag, text, too_big) => {
                drain(&lane).await;
                let _ = out_tx.send(bad_line(tag.as_deref(), text, too_big));
                continue;
            }
        };
        let tag = cmd.tag.clone();
        let request = Request::parse(cmd);
        if let Ok(Request::Update(update)) = request {
            let preparing = store.clone();
            let prepared =
                tokio::task::spawn_blocking(move || preparing.replica().prepare_update(*update))
                    .await;
            match prepared {
                Ok(Ok(prepared)) => {
                    if lane
                        .send(Commit::Update(tag, Box::new(prepared)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    drain(&lane).await;
                    let _ = out_tx.send(answer(Encoder::new(), &tag, "UPDATE", Err(e)));
                }
                Err(_) => {
                    drain(&lane).await;
                    let _ = out_tx.send(bye("internal error"));
                }
            }
            continue;
        }
        drain(&lane).await;
        let request = match request {
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
    // The UPDATEs already prepared are committed and answered before the session ends.
    drop(lane);
    let _ = committer.await;
    read_ahead.abort();
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// Prepared UPDATEs waiting for their commit, at most.
const COMMIT_AHEAD: usize = 4;

/// What the commit lane is handed.
enum Commit {
    /// Commit this UPDATE and send its answer.
    Update(String, Box<PreparedUpdate>),
    /// Say when every UPDATE handed before this is committed and answered.
    Drained(oneshot::Sender<()>),
}

/// Commits the prepared UPDATEs in their order, sending each one's answer.
async fn commit_lane(
    store: Store,
    mut commits: mpsc::Receiver<Commit>,
    out: UnboundedSender<Vec<u8>>,
) {
    while let Some(commit) = commits.recv().await {
        match commit {
            Commit::Update(tag, prepared) => {
                let store = store.clone();
                let reply = tokio::task::spawn_blocking(move || {
                    let result = store.replica().apply_prepared(*prepared).map(|()| None);
                    answer(Encoder::new(), &tag, "UPDATE", result)
                })
                .await
                .unwrap_or_else(|_| bye("internal error"));
                let _ = out.send(reply);
            }
            Commit::Drained(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Waits until every UPDATE handed to the commit lane is committed and answered.
async fn drain(lane: &mpsc::Sender<Commit>) {
    let (done, drained) = oneshot::channel();
    if lane.send(Commit::Drained(done)).await.is_ok() {
        let _ = drained.await;
    }
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
        Request::User(state) => store.replica().apply_user_state(&state).map(|()| None),
        Request::Unuser(user) => match store.delete_user(&user) {
            Ok(()) | Err(StoreError::NoSuchUser(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Request::Update(update) => store.replica().apply_update(*update).map(|()| None),
        Request::Rename {
            user,
            uniqueid,
            name,
            partition,
        } => store
            .replica()
            .replica_rename(&user, &uniqueid, &name, &partition)
            .map(|()| None),
        Request::Delete { user, uniqueid } => store
            .replica()
            .replica_delete(&user, &uniqueid)
            .map(|()| None),
        Request::Records { uniqueid, from, .. } => {
            // One more than an answer holds, to know whether more follow.
            let (mailbox, mut records) =
                store.records_from(&uniqueid, from.max(1), RECORDS_PER_ANSWER + 1)?;
            let more =
                (records.len() > RECORDS_PER_ANSWER).then(|| records[RECORDS_PER_ANSWER].uid);
            records.truncate(RECORDS_PER_ANSWER);
            if from <= 1 {
                ReplicaKeywords(store.mailbox_keywords(&uniqueid)?).encode(&mut enc);
            }
            for r in &records {
                let held = store.holds_message(&mailbox, r)?;
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
    answer(enc, tag, verb, result)
}

/// The whole answer to a request: the untagged data already in `enc`, then the tagged
/// completion for `result`.
fn answer(
    mut enc: Encoder,
    tag: &str,
    verb: &str,
    result: Result<Option<Code>, StoreError>,
) -> Vec<u8> {
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
        let store = Store::open(
            tern_store::StoreConfig::new(dir.path()),
            std::sync::Arc::new(tern_message::MessageIndexer),
        )
        .unwrap();
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
}
