//! One batch of a sync: MAILBOXES for every user (one round trip), RESERVE for the
//! blobs to append (one round trip, skipped when they are few), then every USER,
//! DELETE, RENAME and UPDATE pipelined (one round trip) — `docs/replication.md`,
//! section 6. Mailboxes the replica refused are retried, up to three rounds.
//!
//! Failures are kept to what failed. The master's store failing for one user (its
//! state unreadable) or one mailbox (its records or a message blob unreadable, a merge
//! back that could not be written) sets that user or mailbox aside as a
//! [`SyncFailure`] and the batch goes on; so does the replica refusing one command.
//! Nothing of a failed mailbox is queued past the failure point (an UPDATE is queued
//! only once all its messages were read), so the pipeline stays in step and every
//! other mailbox's UPDATE, its own transaction on the replica, is applied as if the
//! failed one had not been there. Only a failure of the session itself (I/O, protocol)
//! ends the batch with an error.

use std::collections::{HashMap, HashSet};

use tern_store::{Guid, Mailbox, Store, UniqueId};

use super::conn::Connection;
use super::plan::{plan_mailbox, MailboxStep, Send};
use super::{blocking, reconcile, updates, ClientError, SyncFailure, SyncSummary};
use crate::protocol::{encode_user, ReplicaMailbox, Selection, MAX_RESERVE};
use crate::wire::{Encoder, Token};

/// One user's share of a batch.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    pub user: String,
    pub selection: Selection,
}

/// How a batch ended.
#[derive(Default)]
pub(crate) struct Outcome {
    pub summary: SyncSummary,
    /// Users and mailboxes not brought in step.
    pub failures: Vec<SyncFailure>,
}

/// What the client believes the replica holds: learned from MAILBOXES and from its own
/// acknowledged UPDATEs (rolling mode keeps it between batches).
#[derive(Default)]
pub(crate) struct Cache {
    users: HashMap<String, Option<String>>,
    mailboxes: HashMap<UniqueId, ReplicaMailbox>,
}

impl Cache {
    /// Forgets everything about `user` (after a failure).
    pub fn forget_user(&mut self, user: &str) {
        self.users.remove(user);
    }
}

/// Below this many bytes of new messages, RESERVE costs more than sending them.
const RESERVE_THRESHOLD: u64 = 256 * 1024;
/// Rounds for mailboxes the replica refused or that needed a merge: a mailbox found
/// diverged only by its UPDATE's digest takes three (refused, merged, sent whole),
/// one taken back from the replica two more.
const ROUNDS: usize = 5;

/// Combines works of the same user into one.
pub(crate) fn merge_by_user(works: Vec<Work>) -> Vec<Work> {
    let mut out: Vec<Work> = Vec::new();
    for w in works {
        match out.iter_mut().find(|o| o.user == w.user) {
            Some(o) => {
                if let (Selection::Some { ids, names }, Selection::Some { ids: i2, names: n2 }) =
                    (&mut o.selection, w.selection)
                {
                    ids.extend(i2);
                    names.extend(n2);
                } else {
                    o.selection = Selection::All;
                }
            }
            None => out.push(w),
        }
    }
    out
}

/// Syncs a batch of users (or mailboxes of users).
pub(crate) async fn sync_batch(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
    cache: Option<&mut Cache>,
) -> Result<Outcome, ClientError> {
    run_rounds(conn, store, work, cache, true).await
}

/// Syncs only the user-level state, deletions and replica-only mailboxes of these
/// users, not mailbox contents (the first pass of a parallel sync).
pub(crate) async fn sync_users_only(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
) -> Result<Outcome, ClientError> {
    run_rounds(conn, store, work, None, false).await
}

async fn run_rounds(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
    mut cache: Option<&mut Cache>,
    contents: bool,
) -> Result<Outcome, ClientError> {
    let mut outcome = Outcome::default();
    let mut pending = work.to_vec();
    let mut marks = Marks::default();
    for round in 0..ROUNDS {
        if pending.is_empty() {
            break;
        }
        let r = one_round(
            conn,
            store,
            &pending,
            cache.as_deref_mut(),
            round > 0,
            contents,
            &mut marks,
        )
        .await?;
        outcome.summary += r.summary;
        for f in r.failures {
            // A user retried whole fails again on the same mailbox: report it once.
            let seen = outcome
                .failures
                .iter()
                .any(|o| o.user == f.user && o.mailbox == f.mailbox);
            if !seen {
                outcome.failures.push(f);
            }
        }
        pending = merge_by_user(r.retry);
    }
    for w in pending {
        outcome.failures.push(SyncFailure::user(
            &w.user,
            "did not converge after 5 rounds",
        ));
    }
    outcome.summary.users = work.len();
    Ok(outcome)
}

/// The replica's state of one user, as asked or remembered.
struct View {
    digest: Option<String>,
    mailboxes: Vec<ReplicaMailbox>,
}

/// A mailbox to bring in step.
pub(super) struct Plan {
    /// Owner.
    pub user: String,
    /// The mailbox.
    pub uniqueid: UniqueId,
    /// Its name on the master (for failure reports).
    pub name: String,
    /// What to send.
    pub send: Send,
}

/// A command planned before the pipeline is written.
enum Queued {
    User(tern_store::UserState),
    Line(String),
}

/// What a queued command was, to interpret its reply.
pub(super) enum Sent {
    /// USER: the user and the digest of the state sent.
    User(String, String),
    Other(String),
    Update {
        user: String,
        uniqueid: UniqueId,
        /// The mailbox's name on the master (for failure reports).
        name: String,
        /// The replica's state after the mailbox's last batch; `None` for the others.
        last: Option<ReplicaMailbox>,
        /// Sent as a creation (`expect NIL`).
        created: bool,
        /// Records and message bytes sent for the mailbox (for progress).
        records: usize,
        bytes: u64,
    },
}

/// Mailboxes carried between rounds: to merge back (the replica diverged), to send
/// whole with RESET (merged back in the previous round), and to give a new
/// UIDVALIDITY before creating them again (the replica deleted them itself).
#[derive(Default)]
struct Marks {
    merge: HashSet<UniqueId>,
    reset: HashSet<UniqueId>,
    /// With the UIDVALIDITY the new one must exceed (the highest the replica's
    /// mailboxes of the user had when the need was found).
    renew: HashMap<UniqueId, u32>,
}

struct Round {
    summary: SyncSummary,
    failures: Vec<SyncFailure>,
    retry: Vec<Work>,
}

#[allow(clippy::too_many_arguments)]
async fn one_round(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
    mut cache: Option<&mut Cache>,
    force_ask: bool,
    contents: bool,
    marks: &mut Marks,
) -> Result<Round, ClientError> {
    let mut round = Round {
        summary: SyncSummary::default(),
        failures: Vec::new(),
        retry: Vec::new(),
    };
    // 1. The master's side, and which users must be asked about. A user whose state
    // the master cannot read is set aside (`None`).
    let mut masters = Vec::with_capacity(work.len());
    for w in work {
        let read = blocking(|| {
            let state = store.user_state(&w.user)?;
            let boxes = match &state {
                Some(_) => store.mailboxes(&w.user, true)?,
                None => Vec::new(),
            };
            Ok::<_, tern_store::StoreError>((state, boxes))
        });
        let (state, boxes) = match read {
            Ok(r) => r,
            Err(e) => {
                round
                    .failures
                    .push(SyncFailure::user(&w.user, ClientError::Store(e)));
                masters.push(None);
                continue;
            }
        };
        let selected: Vec<Mailbox> = boxes
            .into_iter()
            .filter(|m| match &w.selection {
                Selection::All => true,
                Selection::Some { ids, names } => {
                    ids.contains(&m.uniqueid) || (m.is_live() && names.contains(&m.name))
                }
            })
            .collect();
        masters.push(Some((state, selected)));
    }
    let mut views: Vec<Option<View>> = Vec::with_capacity(work.len());
    let mut asked = Vec::new();
    for (i, w) in work.iter().enumerate() {
        let Some((_, master_boxes)) = &masters[i] else {
            views.push(None);
            continue;
        };
        let cached = cache.as_deref().and_then(|c| {
            let digest = c.users.get(&w.user)?.clone();
            if force_ask || matches!(w.selection, Selection::All) {
                return None;
            }
            let mut mailboxes = Vec::new();
            for m in master_boxes {
                mailboxes.push(c.mailboxes.get(&m.uniqueid)?.clone());
            }
            Some(View { digest, mailboxes })
        });
        if cached.is_none() {
            let text = match &w.selection {
                Selection::All => format!("MAILBOXES {} ALL", quote(&w.user)),
                Selection::Some { ids, names } => {
                    let mut enc = Encoder::new();
                    enc.raw("MAILBOXES ").string(&w.user).raw(" (");
                    for (k, id) in ids.iter().enumerate() {
                        if k > 0 {
                            enc.sp();
                        }
                        enc.atom(id.as_str());
                    }
                    enc.raw(") (");
                    for (k, n) in names.iter().enumerate() {
                        if k > 0 {
                            enc.sp();
                        }
                        enc.string(n);
                    }
                    enc.raw(")");
                    String::from_utf8_lossy(enc.bytes()).into_owned()
                }
            };
            conn.queue_line(&text);
            asked.push(i);
        }
        views.push(cached);
    }
    for &i in &asked {
        let reply = conn.reply().await?;
        if !reply.ok() {
            round.failures.push(SyncFailure::user(
                &work[i].user,
                format!("MAILBOXES: {}", reply.describe()),
            ));
            continue;
        }
        let mut view = View {
            digest: None,
            mailboxes: Vec::new(),
        };
        for (keyword, args) in &reply.untagged {
            match keyword.as_str() {
                "USER" => view.digest = args.get(1).and_then(Token::as_str).map(str::to_owned),
                "MAILBOX" => view
                    .mailboxes
                    .push(ReplicaMailbox::parse(args).map_err(ClientError::Protocol)?),
                _ => {}
            }
        }
        if let Some(c) = cache.as_deref_mut() {
            c.users.insert(work[i].user.clone(), view.digest.clone());
            for m in masters[i].iter().flat_map(|(_, boxes)| boxes) {
                c.mailboxes.remove(&m.uniqueid);
            }
            for m in &view.mailboxes {
                c.mailboxes.insert(m.uniqueid.clone(), m.clone());
            }
        }
        views[i] = Some(view);
    }

    // 2. Plan every user of the batch.
    let mut plans: Vec<Plan> = Vec::new();
    let mut queued: Vec<(Sent, Queued)> = Vec::new();
    let mut floors: HashMap<String, u32> = HashMap::new();
    for (i, w) in work.iter().enumerate() {
        let (Some(view), Some((state, master_boxes))) = (views[i].take(), &masters[i]) else {
            continue;
        };
        let Some(state) = state else {
            if matches!(w.selection, Selection::All) && view.digest.is_some() {
                queued.push((
                    Sent::Other(w.user.clone()),
                    Queued::Line(format!("UNUSER {}", quote(&w.user))),
                ));
                round.summary.mailboxes += view.mailboxes.len();
            }
            continue;
        };
        if view.digest.is_none() && !matches!(w.selection, Selection::All) {
            // The replica lost (or never had) the user: a user comes back whole, never
            // as one mailbox without its INBOX.
            round.retry.push(Work {
                user: w.user.clone(),
                selection: Selection::All,
            });
        }
        if view.digest.as_deref() != Some(state.digest().as_str()) {
            queued.push((
                Sent::User(w.user.clone(), state.digest()),
                Queued::User(state.clone()),
            ));
        }
        // The highest UIDVALIDITY this user's mailboxes have on the replica: a mailbox
        // given a new one must go above it.
        let uidvalidity_floor = view
            .mailboxes
            .iter()
            .map(|m| m.uidvalidity)
            .max()
            .unwrap_or(0);
        floors.insert(w.user.clone(), uidvalidity_floor);
        let by_id: HashMap<&UniqueId, &Mailbox> =
            master_boxes.iter().map(|m| (&m.uniqueid, m)).collect();
        for rm in &view.mailboxes {
            // A mailbox outside the selection (the replica was asked by name) may still
            // be the master's, renamed or deleted: only one the master never had is the
            // replica's own.
            let outside = match by_id.get(&rm.uniqueid) {
                Some(_) => None,
                None => match blocking(|| store.mailbox_by_uniqueid(&rm.uniqueid)) {
                    Ok(m) => m.filter(|m| m.user == w.user),
                    Err(e) => {
                        round.failures.push(SyncFailure::mailbox(
                            &w.user,
                            &rm.name,
                            ClientError::Store(e),
                        ));
                        continue;
                    }
                },
            };
            let known = by_id.get(&rm.uniqueid).copied().or(outside.as_ref());
            match known {
                Some(m) if m.is_live() => {
                    if outside.is_some() {
                        round.retry.push(Work {
                            user: w.user.clone(),
                            selection: Selection::Some {
                                ids: vec![m.uniqueid.clone()],
                                names: vec![],
                            },
                        });
                    }
                }
                Some(tombstone) => {
                    if rm.last_uid > tombstone.last_uid && rm.uidvalidity == tombstone.uidvalidity {
                        // The replica took messages into it after the master deleted it
                        // (split brain): those UIDs the master never handed out are
                        // copied back before the mailbox goes.
                        round.summary.conflicts += 1;
                        let taken = reconcile::deleted(conn, store, &w.user, rm, tombstone).await;
                        if let Some(f) = mailbox_failure(taken, &w.user, &rm.name)? {
                            // Not deleted on the replica: what only it holds stays.
                            round.failures.push(f);
                            continue;
                        }
                        round.retry.push(Work {
                            user: w.user.clone(),
                            selection: Selection::All,
                        });
                    }
                    queued.push((
                        Sent::Other(w.user.clone()),
                        Queued::Line(format!("DELETE {} {}", quote(&w.user), rm.uniqueid)),
                    ));
                    if let Some(c) = cache.as_deref_mut() {
                        c.mailboxes.remove(&rm.uniqueid);
                    }
                    round.summary.mailboxes += 1;
                }
                None => {
                    // Only the replica has it: a split brain. Copy it back first.
                    round.summary.conflicts += 1;
                    let taken = reconcile::orphan(conn, store, &w.user, rm, master_boxes).await;
                    let taken = match taken {
                        Err(e @ ClientError::Store(_)) => {
                            round
                                .failures
                                .push(SyncFailure::mailbox(&w.user, &rm.name, e));
                            continue;
                        }
                        other => other?,
                    };
                    match taken {
                        reconcile::Orphan::Adopted => {}
                        reconcile::Orphan::Merged(into) => {
                            queued.push((
                                Sent::Other(w.user.clone()),
                                Queued::Line(format!("DELETE {} {}", quote(&w.user), rm.uniqueid)),
                            ));
                            // Both sides created a mailbox of this name, and gave them
                            // the same UIDVALIDITY (both take the clock): the master's
                            // replacing the replica's would reuse its UIDs.
                            if into.uidvalidity == rm.uidvalidity {
                                marks.renew.insert(into.uniqueid.clone(), uidvalidity_floor);
                            }
                        }
                    }
                    round.retry.push(Work {
                        user: w.user.clone(),
                        selection: Selection::All,
                    });
                }
            }
        }
        if !contents {
            continue;
        }
        let replica: HashMap<&UniqueId, &ReplicaMailbox> =
            view.mailboxes.iter().map(|m| (&m.uniqueid, m)).collect();
        for m in master_boxes.iter().filter(|m| m.is_live()) {
            let rm = replica.get(&m.uniqueid).copied();
            // (A mark for a mailbox the replica now holds is moot: dropped.)
            let renew = marks.renew.remove(&m.uniqueid).filter(|_| rm.is_none());
            if let Some(floor) = renew {
                let floor = floor.max(uidvalidity_floor).max(m.uidvalidity);
                if let Err(e) = blocking(|| store.renew_uidvalidity(&m.uniqueid, floor)) {
                    round.failures.push(SyncFailure::mailbox(
                        &w.user,
                        &m.name,
                        ClientError::Store(e),
                    ));
                    continue;
                }
            }
            let merged = rm.is_some() && marks.reset.remove(&m.uniqueid);
            let forced = rm.is_some() && marks.merge.remove(&m.uniqueid);
            let step = if forced {
                MailboxStep::Reconcile
            } else {
                plan_mailbox(&ReplicaMailbox::of(m), rm, merged)
            };
            let send = match (step, rm) {
                (MailboxStep::InStep, _) => continue,
                (MailboxStep::Send(send), _) => send,
                (MailboxStep::Reconcile, None) => continue, // not reachable: absent is Send
                (MailboxStep::Reconcile, Some(rm)) => {
                    round.summary.conflicts += 1;
                    let merged = reconcile::merge_back(conn, store, &w.user, m, rm).await;
                    if let Some(f) = mailbox_failure(merged, &w.user, &m.name)? {
                        round.failures.push(f);
                        continue;
                    }
                    // The merge changed the master; the next round sends it whole.
                    round.retry.push(Work {
                        user: w.user.clone(),
                        selection: Selection::Some {
                            ids: vec![m.uniqueid.clone()],
                            names: vec![],
                        },
                    });
                    marks.reset.insert(m.uniqueid.clone());
                    continue;
                }
            };
            plans.push(Plan {
                user: w.user.clone(),
                uniqueid: m.uniqueid.clone(),
                name: m.name.clone(),
                send,
            });
        }
    }
    // 3. What each mailbox needs, in one snapshot per mailbox.
    let mut changes = Vec::with_capacity(plans.len());
    let mut append_bytes = 0u64;
    let mut append_guids: Vec<Guid> = Vec::new();
    for plan in &plans {
        let c = match blocking(|| store.changes_since(&plan.uniqueid, plan.send.since)) {
            Ok(c) => c,
            Err(tern_store::StoreError::NoSuchMailbox { .. }) => {
                round.retry.push(Work {
                    user: plan.user.clone(),
                    selection: Selection::Some {
                        ids: vec![plan.uniqueid.clone()],
                        names: vec![],
                    },
                });
                changes.push(None);
                continue;
            }
            Err(e) => {
                round.failures.push(SyncFailure::mailbox(
                    &plan.user,
                    &plan.name,
                    ClientError::Store(e),
                ));
                changes.push(None);
                continue;
            }
        };
        for r in c
            .records
            .iter()
            .filter(|r| r.uid > plan.send.replica_last_uid)
        {
            append_bytes += r.size;
            append_guids.push(r.guid);
        }
        changes.push(Some(c));
    }
    let mut held: HashSet<Guid> = HashSet::new();
    if append_bytes > RESERVE_THRESHOLD {
        append_guids.sort();
        append_guids.dedup();
        let ids: Vec<String> = plans.iter().map(|p| p.uniqueid.to_string()).collect();
        let chunks: Vec<&[Guid]> = append_guids.chunks(MAX_RESERVE).collect();
        for chunk in &chunks {
            let mut line = format!("RESERVE ({})", ids.join(" "));
            for g in chunk.iter() {
                line.push(' ');
                line.push_str(&g.to_hex());
            }
            conn.queue_line(&line);
        }
        for _ in &chunks {
            let reply = conn.reply().await?;
            for (keyword, args) in &reply.untagged {
                if keyword == "RESERVE" {
                    held.extend(args.iter().filter_map(|t| t.as_str()?.parse::<Guid>().ok()));
                }
            }
        }
    }

    // 4. Everything else in one pipeline.
    let mut sent: Vec<Sent> = Vec::new();
    for (what, command) in queued {
        let tag = conn.tag();
        let mut enc = Encoder::new();
        match command {
            Queued::User(state) => encode_user(&mut enc, &tag, &state),
            Queued::Line(text) => {
                enc.atom(&tag).sp().raw(&text).crlf();
            }
        }
        conn.queue_encoded(tag, enc).await?;
        sent.push(what);
    }
    let mut carried: HashSet<Guid> = HashSet::new();
    for (plan, c) in plans.iter().zip(changes) {
        let Some(c) = c else { continue };
        let queued = updates::queue_mailbox(
            conn,
            store,
            plan,
            &c,
            &held,
            &mut carried,
            &mut round.summary,
            &mut sent,
        )
        .await;
        if let Some(f) = mailbox_failure(queued, &plan.user, &plan.name)? {
            // A message of this mailbox is unreadable on the master. The batches
            // already queued are consistent prefixes; the rest waits for a later sync.
            tracing::error!(user = %plan.user, mailbox = %plan.name, error = %f.error, "mailbox not synced");
            if let Some(c) = cache.as_deref_mut() {
                c.mailboxes.remove(&plan.uniqueid);
            }
            round.failures.push(f);
        } else {
            round.summary.mailboxes += 1;
        }
    }

    // 5. The replies, in order.
    let mut refused: HashSet<UniqueId> = HashSet::new();
    for what in sent {
        let reply = conn.reply().await?;
        match what {
            Sent::User(user, _) | Sent::Other(user) if !reply.ok() => {
                if let Some(c) = cache.as_deref_mut() {
                    c.forget_user(&user);
                }
                round
                    .failures
                    .push(SyncFailure::user(&user, reply.describe()));
            }
            Sent::User(user, digest) => {
                if let Some(c) = cache.as_deref_mut() {
                    c.users.insert(user, Some(digest));
                }
            }
            Sent::Other(_) => {}
            Sent::Update {
                user,
                uniqueid,
                name,
                last,
                created,
                records,
                bytes,
            } => {
                if reply.ok() {
                    if let Some(state) = last {
                        // Progress: one line per mailbox brought in step.
                        tracing::info!(%user, mailbox = %state.name, records, bytes, "mailbox in step");
                        if let Some(c) = cache.as_deref_mut() {
                            c.mailboxes.insert(uniqueid, state);
                        }
                    }
                    continue;
                }
                if let Some(c) = cache.as_deref_mut() {
                    c.mailboxes.remove(&uniqueid);
                }
                if !refused.insert(uniqueid.clone()) {
                    continue; // the later batches of a refused mailbox fail with it
                }
                match reply.code_name() {
                    "MISMATCH" | "NOBLOB" => {}
                    "NOUSER" => {
                        // The replica lost the user: bring all of it back, not just
                        // this mailbox; what the cache says of it is stale too.
                        if let Some(c) = cache.as_deref_mut() {
                            c.forget_user(&user);
                        }
                        round.retry.push(Work {
                            user,
                            selection: Selection::All,
                        });
                        continue;
                    }
                    "CONFLICT" if created => {
                        // The replica deleted this mailbox during a split brain and
                        // will not bring it back under the UIDVALIDITY it had.
                        tracing::warn!(%user, mailbox = %name, "the replica deleted this mailbox while cut off: it gets a new UIDVALIDITY");
                        let floor = floors.get(&user).copied().unwrap_or(0);
                        marks.renew.insert(uniqueid.clone(), floor);
                    }
                    "DIGEST" | "CONFLICT" => {
                        tracing::warn!(%user, mailbox = %uniqueid, reply = %reply.describe(), "replica diverged; reconciling");
                        marks.merge.insert(uniqueid.clone());
                    }
                    _ => {
                        round.failures.push(SyncFailure::mailbox(
                            &user,
                            &name,
                            format!("replica refused UPDATE: {}", reply.describe()),
                        ));
                        continue;
                    }
                }
                round.retry.push(Work {
                    user,
                    selection: Selection::Some {
                        ids: vec![uniqueid],
                        names: vec![],
                    },
                });
            }
        }
    }
    Ok(round)
}

/// Sorts the result of one mailbox's step: the master's store failing is that
/// mailbox's failure (returned, for the batch to go on); a session failure is the
/// batch's (the error).
fn mailbox_failure<T>(
    result: Result<T, ClientError>,
    user: &str,
    mailbox: &str,
) -> Result<Option<SyncFailure>, ClientError> {
    match result {
        Ok(_) => Ok(None),
        Err(e @ ClientError::Store(_)) => Ok(Some(SyncFailure::mailbox(user, mailbox, e))),
        Err(e) => Err(e),
    }
}

/// A user name as a protocol string.
fn quote(s: &str) -> String {
    let mut enc = Encoder::new();
    enc.string(s);
    String::from_utf8_lossy(enc.bytes()).into_owned()
}
