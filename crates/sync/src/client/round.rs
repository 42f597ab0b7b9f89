//! One round of a batch: read the master, ask the replica (MAILBOXES, one round trip),
//! plan every user with the pure functions of `plan.rs`, take back what only the
//! replica has, then RESERVE (one round trip, skipped when the new messages are few)
//! and every USER, DELETE, RENAME and UPDATE in one pipeline (one round trip), and
//! sort the replies into what is done, what to retry and what failed.

use std::collections::{HashMap, HashSet};

use tern_store::{Guid, MailboxChanges, Store, UniqueId};

use super::batch::{Cache, Work};
use super::conn::Connection;
use super::plan::{plan_user, MailboxStep, Marks, MasterUser, ReplicaStep, Send, View};
use super::{blocking, reconcile, updates, ClientError, SyncFailure, SyncSummary};
use crate::protocol::{
    mailboxes_digest, Code, ReplicaMailbox, ReplicaUser, Request, Reserved, Selection, MAX_RESERVE,
};

/// Below this many bytes of new messages, RESERVE costs more than sending them.
const RESERVE_THRESHOLD: u64 = 256 * 1024;

/// An UPDATE (or several, for a large mailbox) to send.
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

/// A command planned before the pipeline is written (USER, UNUSER, DELETE).
type Queued = Request;

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

/// How a round ended.
#[derive(Default)]
pub(super) struct RoundOutcome {
    pub summary: SyncSummary,
    pub failures: Vec<SyncFailure>,
    /// What the next round must look at again.
    pub retry: Vec<Work>,
}

/// One round, over one session.
pub(super) struct Round<'a> {
    conn: &'a mut Connection,
    store: &'a Store,
    cache: Option<&'a mut Cache>,
    marks: &'a mut Marks,
    out: RoundOutcome,
    /// Per user, the highest UIDVALIDITY of its mailboxes on the replica.
    floors: HashMap<String, u32>,
    queued: Vec<(Sent, Queued)>,
    plans: Vec<Plan>,
}

impl<'a> Round<'a> {
    pub fn new(
        conn: &'a mut Connection,
        store: &'a Store,
        cache: Option<&'a mut Cache>,
        marks: &'a mut Marks,
    ) -> Round<'a> {
        Round {
            conn,
            store,
            cache,
            marks,
            out: RoundOutcome::default(),
            floors: HashMap::new(),
            queued: Vec::new(),
            plans: Vec::new(),
        }
    }

    /// Runs the round for `work`. `force_ask`: ask the replica even where the cache
    /// knows; `contents`: mailbox contents too, not only the user level.
    pub async fn run(
        mut self,
        work: &[Work],
        force_ask: bool,
        contents: bool,
    ) -> Result<RoundOutcome, ClientError> {
        let masters = self.read_masters(work);
        let views = self.ask_replica(work, &masters, force_ask).await?;
        for ((w, master), view) in work.iter().zip(masters).zip(views) {
            let (Some(master), Some(view)) = (master, view) else {
                continue;
            };
            self.plan_and_take_back(w, master, &view, contents).await?;
        }
        let changes = self.read_changes();
        let held = self.reserve(&changes).await?;
        let sent = self.pipeline(changes, &held).await?;
        self.read_replies(sent).await?;
        Ok(self.out)
    }

    /// The master's side of each user; `None` (and a failure) where it cannot be read.
    fn read_masters(&mut self, work: &[Work]) -> Vec<Option<MasterUser>> {
        let store = self.store;
        work.iter()
            .map(|w| {
                let read = blocking(|| {
                    let state = store.user_state(&w.user)?;
                    let boxes = match &state {
                        Some(_) => store.mailboxes(&w.user, true)?,
                        None => Vec::new(),
                    };
                    Ok::<_, tern_store::StoreError>((state, boxes))
                });
                match read {
                    Ok((state, boxes)) => Some(MasterUser {
                        state,
                        mailboxes: boxes
                            .into_iter()
                            .filter(|m| covers(&w.selection, m))
                            .collect(),
                        outside: HashMap::new(),
                    }),
                    Err(e) => {
                        self.out
                            .failures
                            .push(SyncFailure::user(&w.user, ClientError::Store(e)));
                        None
                    }
                }
            })
            .collect()
    }

    /// The replica's view of each user: remembered (rolling mode) or asked, all users
    /// in one pipelined round trip.
    async fn ask_replica(
        &mut self,
        work: &[Work],
        masters: &[Option<MasterUser>],
        force_ask: bool,
    ) -> Result<Vec<Option<View>>, ClientError> {
        let mut views: Vec<Option<View>> = Vec::with_capacity(work.len());
        let mut asked = Vec::new();
        for (i, w) in work.iter().enumerate() {
            let Some(master) = &masters[i] else {
                views.push(None);
                continue;
            };
            let cached = self.cache.as_deref().and_then(|c| {
                if force_ask || matches!(w.selection, Selection::All) {
                    return None;
                }
                c.view(&w.user, &master.mailboxes)
            });
            if cached.is_none() {
                // Asking about all of them: say what we expect, so that a replica in
                // step answers with one line instead of listing every mailbox.
                let same = matches!(w.selection, Selection::All).then(|| {
                    let expected: Vec<ReplicaMailbox> = master
                        .mailboxes
                        .iter()
                        .filter(|m| m.is_live())
                        .map(ReplicaMailbox::of)
                        .collect();
                    mailboxes_digest(&expected)
                });
                self.conn
                    .queue(&Request::Mailboxes {
                        user: w.user.clone(),
                        selection: w.selection.clone(),
                        same,
                    })
                    .await?;
                asked.push(i);
            }
            views.push(cached);
        }
        for i in asked {
            let reply = self.conn.reply().await?;
            if !reply.ok() {
                self.out.failures.push(SyncFailure::user(
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
                    "USER" => {
                        let user = ReplicaUser::parse(args).map_err(ClientError::Protocol)?;
                        view.digest = Some(user.digest);
                    }
                    "MAILBOX" => view
                        .mailboxes
                        .push(ReplicaMailbox::parse(args).map_err(ClientError::Protocol)?),
                    _ => {}
                }
            }
            if let (Some(Code::Same), Some(master)) = (reply.code(), &masters[i]) {
                // Exactly the master's live mailboxes, proven by the digest.
                view.mailboxes = master
                    .mailboxes
                    .iter()
                    .filter(|m| m.is_live())
                    .map(ReplicaMailbox::of)
                    .collect();
            }
            if let (Some(c), Some(master)) = (self.cache.as_deref_mut(), &masters[i]) {
                c.learn(&work[i].user, &master.mailboxes, &view);
            }
            views[i] = Some(view);
        }
        Ok(views)
    }

    /// Plans one user and does the part of the plan that changes the master first:
    /// taking back what only the replica has, new UIDVALIDITYs, merges.
    async fn plan_and_take_back(
        &mut self,
        w: &Work,
        mut master: MasterUser,
        view: &View,
        contents: bool,
    ) -> Result<(), ClientError> {
        // Replica mailboxes outside the selection may still be the master's (renamed
        // or deleted there): only one the master never had is the replica's own.
        for rm in &view.mailboxes {
            if master.mailboxes.iter().any(|m| m.uniqueid == rm.uniqueid) {
                continue;
            }
            match blocking(|| self.store.mailbox_by_uniqueid(&rm.uniqueid)) {
                Ok(Some(m)) if m.user == w.user => {
                    master.outside.insert(rm.uniqueid.clone(), m);
                }
                Ok(_) => {}
                Err(e) => {
                    let f = SyncFailure::mailbox(&w.user, &rm.name, ClientError::Store(e));
                    self.out.failures.push(f);
                    return Ok(());
                }
            }
        }
        let floor = view.mailboxes.iter().map(|m| m.uidvalidity).max();
        self.floors.insert(w.user.clone(), floor.unwrap_or(0));
        let plan = plan_user(&w.selection, &master, view, self.marks, contents);
        let user = &w.user;
        if plan.unuser {
            self.queue_other(user, Request::Unuser(user.clone()));
            self.out.summary.mailboxes += view.mailboxes.len();
        }
        if plan.widen {
            self.retry_all(user);
        }
        if let (true, Some(state)) = (plan.send_user, &master.state) {
            self.queued.push((
                Sent::User(user.clone(), state.digest()),
                Request::User(state.clone()),
            ));
        }
        for step in plan.replica {
            self.replica_step(user, &master, step).await?;
        }
        for mp in plan.mailboxes {
            let m = &mp.mailbox;
            if let Some(above) = mp.renew_above {
                if let Err(e) = blocking(|| self.store.renew_uidvalidity(&m.uniqueid, above)) {
                    let f = SyncFailure::mailbox(user, &m.name, ClientError::Store(e));
                    self.out.failures.push(f);
                    continue;
                }
            }
            match (mp.step, &mp.replica) {
                (MailboxStep::InStep, _) | (MailboxStep::Reconcile, None) => {}
                (MailboxStep::Send(send), _) => self.plans.push(Plan {
                    user: user.clone(),
                    uniqueid: m.uniqueid.clone(),
                    name: m.name.clone(),
                    send,
                }),
                (MailboxStep::Reconcile, Some(rm)) => {
                    self.out.summary.conflicts += 1;
                    let merged = reconcile::merge_back(self.conn, self.store, user, m, rm).await;
                    if let Some(f) = mailbox_failure(merged, user, &m.name)? {
                        self.out.failures.push(f);
                        continue;
                    }
                    // The merge changed the master; the next round sends it whole.
                    self.retry_one(user, &m.uniqueid);
                    self.marks.reset.insert(m.uniqueid.clone());
                }
            }
        }
        Ok(())
    }

    /// Carries out one step about a replica mailbox.
    async fn replica_step(
        &mut self,
        user: &String,
        master: &MasterUser,
        step: ReplicaStep,
    ) -> Result<(), ClientError> {
        match step {
            ReplicaStep::SyncOutside(id) => self.retry_one(user, &id),
            ReplicaStep::Delete {
                mailbox: rm,
                take_new_from,
            } => {
                if let Some(tombstone) = take_new_from {
                    self.out.summary.conflicts += 1;
                    let taken =
                        reconcile::deleted(self.conn, self.store, user, &rm, &tombstone).await;
                    if let Some(f) = mailbox_failure(taken, user, &rm.name)? {
                        // Not deleted on the replica: what only it holds stays.
                        self.out.failures.push(f);
                        return Ok(());
                    }
                    self.retry_all(user);
                }
                self.queue_delete(user, &rm.uniqueid);
                if let Some(c) = self.cache.as_deref_mut() {
                    c.forget_mailbox(&rm.uniqueid);
                }
                self.out.summary.mailboxes += 1;
            }
            ReplicaStep::TakeBack(rm) => {
                self.out.summary.conflicts += 1;
                let taken =
                    reconcile::orphan(self.conn, self.store, user, &rm, &master.mailboxes).await;
                let taken = match taken {
                    Err(e @ ClientError::Store(_)) => {
                        self.out
                            .failures
                            .push(SyncFailure::mailbox(user, &rm.name, e));
                        return Ok(());
                    }
                    other => other?,
                };
                if let reconcile::Orphan::Merged(into) = taken {
                    self.queue_delete(user, &rm.uniqueid);
                    // Both sides created a mailbox of this name and gave them the same
                    // UIDVALIDITY (both take the clock): the master's replacing the
                    // replica's would reuse its UIDs.
                    if into.uidvalidity == rm.uidvalidity {
                        let floor = self.floors.get(user).copied().unwrap_or(0);
                        self.marks.renew.insert(into.uniqueid.clone(), floor);
                    }
                }
                self.retry_all(user);
            }
        }
        Ok(())
    }

    /// What each planned mailbox must send, in one snapshot per mailbox.
    fn read_changes(&mut self) -> Vec<Option<MailboxChanges>> {
        let plans = std::mem::take(&mut self.plans);
        let mut changes = Vec::with_capacity(plans.len());
        for plan in &plans {
            match blocking(|| self.store.changes_since(&plan.uniqueid, plan.send.since)) {
                Ok(c) => changes.push(Some(c)),
                Err(tern_store::StoreError::NoSuchMailbox { .. }) => {
                    self.retry_one(&plan.user, &plan.uniqueid);
                    changes.push(None);
                }
                Err(e) => {
                    let f = SyncFailure::mailbox(&plan.user, &plan.name, ClientError::Store(e));
                    self.out.failures.push(f);
                    changes.push(None);
                }
            }
        }
        self.plans = plans;
        changes
    }

    /// Asks which of the messages to append the replica holds (skipped when they are
    /// few: sending them costs less than the round trip).
    async fn reserve(
        &mut self,
        changes: &[Option<MailboxChanges>],
    ) -> Result<HashSet<Guid>, ClientError> {
        let mut bytes = 0u64;
        let mut guids: Vec<Guid> = Vec::new();
        for (plan, c) in self.plans.iter().zip(changes) {
            let Some(c) = c else { continue };
            for r in c
                .records
                .iter()
                .filter(|r| r.uid > plan.send.replica_last_uid)
            {
                bytes += r.size;
                guids.push(r.guid);
            }
        }
        let mut held = HashSet::new();
        if bytes <= RESERVE_THRESHOLD {
            return Ok(held);
        }
        guids.sort();
        guids.dedup();
        let ids: Vec<UniqueId> = self.plans.iter().map(|p| p.uniqueid.clone()).collect();
        let chunks: Vec<&[Guid]> = guids.chunks(MAX_RESERVE).collect();
        for chunk in &chunks {
            self.conn
                .queue(&Request::Reserve {
                    mailboxes: ids.clone(),
                    guids: chunk.to_vec(),
                })
                .await?;
        }
        for _ in &chunks {
            let reply = self.conn.reply().await?;
            for (keyword, args) in &reply.untagged {
                if keyword == "RESERVE" {
                    let reserved = Reserved::parse(args).map_err(ClientError::Protocol)?;
                    held.extend(reserved.0);
                }
            }
        }
        Ok(held)
    }

    /// Writes every queued command and every mailbox's UPDATEs as one pipeline.
    async fn pipeline(
        &mut self,
        changes: Vec<Option<MailboxChanges>>,
        held: &HashSet<Guid>,
    ) -> Result<Vec<Sent>, ClientError> {
        let mut sent: Vec<Sent> = Vec::new();
        for (what, command) in std::mem::take(&mut self.queued) {
            self.conn.queue(&command).await?;
            sent.push(what);
        }
        let mut carried: HashSet<Guid> = HashSet::new();
        let plans = std::mem::take(&mut self.plans);
        for (plan, c) in plans.iter().zip(changes) {
            let Some(c) = c else { continue };
            let queued = updates::queue_mailbox(
                self.conn,
                self.store,
                plan,
                &c,
                held,
                &mut carried,
                &mut self.out.summary,
                &mut sent,
            )
            .await;
            if let Some(f) = mailbox_failure(queued, &plan.user, &plan.name)? {
                // A message of this mailbox is unreadable on the master. The batches
                // already queued are consistent prefixes; the rest waits for a later sync.
                tracing::error!(user = %plan.user, mailbox = %plan.name, error = %f.error, "mailbox not synced");
                if let Some(c) = self.cache.as_deref_mut() {
                    c.forget_mailbox(&plan.uniqueid);
                }
                self.out.failures.push(f);
            } else {
                self.out.summary.mailboxes += 1;
            }
        }
        Ok(sent)
    }

    /// Reads the replies, in order, and sorts each refusal into a retry or a failure.
    async fn read_replies(&mut self, sent: Vec<Sent>) -> Result<(), ClientError> {
        let mut refused: HashSet<UniqueId> = HashSet::new();
        for what in sent {
            let reply = self.conn.reply().await?;
            match what {
                Sent::User(user, _) | Sent::Other(user) if !reply.ok() => {
                    if let Some(c) = self.cache.as_deref_mut() {
                        c.forget_user(&user);
                    }
                    self.out
                        .failures
                        .push(SyncFailure::user(&user, reply.describe()));
                }
                Sent::User(user, digest) => {
                    if let Some(c) = self.cache.as_deref_mut() {
                        c.user_is(user, digest);
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
                            if let Some(c) = self.cache.as_deref_mut() {
                                c.mailbox_is(state);
                            }
                        }
                        continue;
                    }
                    if let Some(c) = self.cache.as_deref_mut() {
                        c.forget_mailbox(&uniqueid);
                    }
                    if !refused.insert(uniqueid.clone()) {
                        continue; // the later batches of a refused mailbox fail with it
                    }
                    match reply.code() {
                        Some(Code::Mismatch { .. } | Code::NoBlob(_)) => {}
                        Some(Code::NoUser) => {
                            // The replica lost the user: bring all of it back, not
                            // just this mailbox; what the cache says of it is stale.
                            if let Some(c) = self.cache.as_deref_mut() {
                                c.forget_user(&user);
                            }
                            self.retry_all(&user);
                            continue;
                        }
                        Some(Code::Conflict(_)) if created => {
                            // The replica deleted this mailbox during a split brain and
                            // will not bring it back under the UIDVALIDITY it had.
                            tracing::warn!(%user, mailbox = %name, "the replica deleted this mailbox while cut off: it gets a new UIDVALIDITY");
                            let floor = self.floors.get(&user).copied().unwrap_or(0);
                            self.marks.renew.insert(uniqueid.clone(), floor);
                        }
                        Some(Code::Digest(_) | Code::Conflict(_)) => {
                            tracing::warn!(%user, mailbox = %uniqueid, reply = %reply.describe(), "replica diverged; reconciling");
                            self.marks.merge.insert(uniqueid.clone());
                        }
                        _ => {
                            self.out.failures.push(SyncFailure::mailbox(
                                &user,
                                &name,
                                format!("replica refused UPDATE: {}", reply.describe()),
                            ));
                            continue;
                        }
                    }
                    self.retry_one(&user, &uniqueid);
                }
            }
        }
        Ok(())
    }

    fn queue_other(&mut self, user: &str, request: Request) {
        self.queued.push((Sent::Other(user.to_owned()), request));
    }

    fn queue_delete(&mut self, user: &str, id: &UniqueId) {
        let request = Request::Delete {
            user: user.to_owned(),
            uniqueid: id.clone(),
        };
        self.queue_other(user, request);
    }

    fn retry_all(&mut self, user: &str) {
        self.out.retry.push(Work {
            user: user.to_owned(),
            selection: Selection::All,
        });
    }

    fn retry_one(&mut self, user: &str, id: &UniqueId) {
        self.out.retry.push(Work {
            user: user.to_owned(),
            selection: Selection::Some {
                ids: vec![id.clone()],
                names: vec![],
            },
        });
    }
}

/// Whether a master mailbox is in a selection: by unique id, or a live one by name.
fn covers(selection: &Selection, m: &tern_store::Mailbox) -> bool {
    match selection {
        Selection::All => true,
        Selection::Some { ids, names } => {
            ids.contains(&m.uniqueid) || (m.is_live() && names.contains(&m.name))
        }
    }
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
