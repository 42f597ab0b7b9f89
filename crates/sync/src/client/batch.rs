//! One batch of a sync: MAILBOXES for every user (one round trip), RESERVE for the
//! blobs to append (one round trip, skipped when they are few), then every USER,
//! DELETE, RENAME and UPDATE pipelined (one round trip) — `docs/replication.md`,
//! section 6. Mailboxes the replica refused are retried, up to three rounds.

use std::collections::{HashMap, HashSet};

use tern_store::{
    Guid, Mailbox, MailboxState, MailboxUpdate, Modseq, Record, ReplicaAppend, Store, Uid, UniqueId,
};

use super::conn::Connection;
use super::{reconcile, ClientError, SyncSummary};
use crate::protocol::{encode_update, encode_user, ReplicaMailbox, Selection, MAX_RESERVE};
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
    /// (user, why) for users not brought in step.
    pub failures: Vec<(String, String)>,
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

/// Most records in one UPDATE.
const MAX_BATCH_RECORDS: usize = 2000;
/// Most literal bytes in one UPDATE.
const MAX_BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Below this many bytes of new messages, RESERVE costs more than sending them.
const RESERVE_THRESHOLD: u64 = 256 * 1024;
/// Rounds of retries for mailboxes the replica refused.
const ROUNDS: usize = 3;

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

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
        outcome.failures.extend(r.failures);
        pending = merge_by_user(r.retry);
    }
    for w in pending {
        outcome
            .failures
            .push((w.user, "did not converge after 3 attempts".into()));
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
struct Plan {
    user: String,
    uniqueid: UniqueId,
    expect: Option<Modseq>,
    since: Modseq,
    replica_last_uid: Uid,
    reset: bool,
    rename: bool,
}

/// A command planned before the pipeline is written.
enum Queued {
    User(tern_store::UserState),
    Line(String),
}

/// What a queued command was, to interpret its reply.
enum Sent {
    User(String),
    Other(String),
    Update {
        user: String,
        uniqueid: UniqueId,
        /// The replica's state after the mailbox's last batch; `None` for the others.
        last: Option<ReplicaMailbox>,
        /// Records and message bytes sent for the mailbox (for progress).
        records: usize,
        bytes: u64,
    },
}

/// Mailboxes carried between rounds: to merge back (the replica diverged), and to send
/// whole with RESET (merged back in the previous round).
#[derive(Default)]
struct Marks {
    merge: HashSet<UniqueId>,
    reset: HashSet<UniqueId>,
}

struct Round {
    summary: SyncSummary,
    failures: Vec<(String, String)>,
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
    // 1. The master's side, and which users must be asked about.
    let mut masters = Vec::with_capacity(work.len());
    for w in work {
        let state = blocking(|| store.user_state(&w.user))?;
        let boxes = match &state {
            Some(_) => blocking(|| store.mailboxes(&w.user, true))?,
            None => Vec::new(),
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
        masters.push((state, selected));
    }
    let mut views: Vec<Option<View>> = Vec::with_capacity(work.len());
    let mut asked = Vec::new();
    for (i, w) in work.iter().enumerate() {
        let cached = cache.as_deref().and_then(|c| {
            let digest = c.users.get(&w.user)?.clone();
            if force_ask || matches!(w.selection, Selection::All) {
                return None;
            }
            let mut mailboxes = Vec::new();
            for m in &masters[i].1 {
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
            round.failures.push((
                work[i].user.clone(),
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
            for m in &masters[i].1 {
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
    for (i, w) in work.iter().enumerate() {
        let Some(view) = views[i].take() else {
            continue;
        };
        let (state, master_boxes) = &masters[i];
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
        if view.digest.as_deref() != Some(state.digest().as_str()) {
            queued.push((Sent::User(w.user.clone()), Queued::User(state.clone())));
        }
        let by_id: HashMap<&UniqueId, &Mailbox> =
            master_boxes.iter().map(|m| (&m.uniqueid, m)).collect();
        for rm in &view.mailboxes {
            match by_id.get(&rm.uniqueid) {
                Some(m) if m.is_live() => {}
                Some(tombstone) => {
                    if rm.last_uid > tombstone.last_uid && rm.uidvalidity == tombstone.uidvalidity {
                        // The replica took messages into it after the master deleted it
                        // (split brain): those UIDs the master never handed out are
                        // copied back before the mailbox goes.
                        round.summary.conflicts += 1;
                        reconcile::deleted(conn, store, &w.user, rm, tombstone).await?;
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
                    match reconcile::orphan(conn, store, &w.user, rm, master_boxes).await? {
                        reconcile::Orphan::Adopted => {}
                        reconcile::Orphan::Merged => queued.push((
                            Sent::Other(w.user.clone()),
                            Queued::Line(format!("DELETE {} {}", quote(&w.user), rm.uniqueid)),
                        )),
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
            let plan = match replica.get(&m.uniqueid) {
                None => Plan {
                    user: w.user.clone(),
                    uniqueid: m.uniqueid.clone(),
                    expect: None,
                    since: 0,
                    replica_last_uid: 0,
                    reset: false,
                    rename: false,
                },
                Some(rm) if marks.reset.remove(&m.uniqueid) => Plan {
                    user: w.user.clone(),
                    uniqueid: m.uniqueid.clone(),
                    expect: Some(rm.highest_modseq),
                    since: 0,
                    replica_last_uid: 0,
                    reset: true,
                    rename: rm.name != m.name || rm.partition != m.partition,
                },
                Some(rm) => {
                    let diverged = rm.uidvalidity != m.uidvalidity
                        || rm.highest_modseq > m.highest_modseq
                        || rm.last_uid > m.last_uid
                        || rm.highest_modseq < m.deleted_modseq
                        || marks.merge.remove(&m.uniqueid);
                    if diverged {
                        round.summary.conflicts += 1;
                        reconcile::merge_back(conn, store, &w.user, m, rm).await?;
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
                    let renamed = rm.name != m.name || rm.partition != m.partition;
                    if rm.highest_modseq == m.highest_modseq
                        && rm.last_uid == m.last_uid
                        && !renamed
                    {
                        continue;
                    }
                    Plan {
                        user: w.user.clone(),
                        uniqueid: m.uniqueid.clone(),
                        expect: Some(rm.highest_modseq),
                        since: rm.highest_modseq,
                        replica_last_uid: rm.last_uid,
                        reset: false,
                        rename: renamed,
                    }
                }
            };
            plans.push(plan);
        }
    }
    // 3. What each mailbox needs, in one snapshot per mailbox.
    let mut changes = Vec::with_capacity(plans.len());
    let mut append_bytes = 0u64;
    let mut append_guids: Vec<Guid> = Vec::new();
    for plan in &plans {
        let c = match blocking(|| store.changes_since(&plan.uniqueid, plan.since)) {
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
            Err(e) => return Err(e.into()),
        };
        for r in c.records.iter().filter(|r| r.uid > plan.replica_last_uid) {
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
        let digest = &c.digest;
        round.summary.mailboxes += 1;
        if plan.rename {
            let tag = conn.tag();
            let mut enc = Encoder::new();
            enc.atom(&tag)
                .raw(" RENAME ")
                .string(&plan.user)
                .sp()
                .atom(plan.uniqueid.as_str())
                .sp();
            enc.string(&c.mailbox.name)
                .sp()
                .string(&c.mailbox.partition)
                .crlf();
            conn.queue_encoded(tag, enc).await?;
            sent.push(Sent::Other(plan.user.clone()));
        }
        let state = MailboxState::of(&c.mailbox, c.annotations.clone());
        let batches = cut_batches(&c.records);
        let mut expect = plan.expect;
        let mut replica_last_uid = plan.replica_last_uid;
        let (mut mailbox_records, mut mailbox_bytes) = (0usize, 0u64);
        for (k, records) in batches.iter().enumerate() {
            let last = k + 1 == batches.len();
            let mut update = MailboxUpdate {
                user: plan.user.clone(),
                uniqueid: Some(plan.uniqueid.clone()),
                expect,
                state: state.clone(),
                reset: plan.reset && k == 0,
                ..Default::default()
            };
            let mut stores: HashMap<(Modseq, String), Vec<Uid>> = HashMap::new();
            let mut expunges: HashMap<Modseq, Vec<Uid>> = HashMap::new();
            for r in records.iter() {
                if r.uid > plan.replica_last_uid {
                    let data = if held.contains(&r.guid) || carried.contains(&r.guid) {
                        None
                    } else {
                        carried.insert(r.guid);
                        round.summary.message_bytes += r.size;
                        mailbox_bytes += r.size;
                        Some(blocking(|| {
                            store.blobs().read(&c.mailbox.partition, &r.guid, r.size)
                        })?)
                    };
                    update.appends.push(ReplicaAppend {
                        uid: r.uid,
                        modseq: r.modseq,
                        internaldate: r.internaldate,
                        size: r.size,
                        guid: r.guid,
                        flags: r.flags.clone(),
                        data,
                    });
                } else {
                    stores
                        .entry((r.modseq, r.flags.to_string()))
                        .or_default()
                        .push(r.uid);
                }
                if let Some(x) = r.expunged_modseq {
                    expunges.entry(x).or_default().push(r.uid);
                }
                round.summary.records += 1;
                mailbox_records += 1;
            }
            let mut stores: Vec<_> = stores.into_iter().collect();
            stores.sort_by(|a, b| a.0.cmp(&b.0));
            for ((modseq, flags), mut uids) in stores {
                uids.sort_unstable();
                let flags = tern_store::Flags::parse_list(&flags).unwrap_or_default();
                update.stores.push((uids, modseq, flags));
            }
            let mut expunges: Vec<_> = expunges.into_iter().collect();
            expunges.sort();
            for (modseq, mut uids) in expunges {
                uids.sort_unstable();
                update.expunges.push((uids, modseq));
            }
            if last {
                update.digest = Some(digest.clone());
            } else {
                let top = records.iter().map(|r| r.modseq).max().unwrap_or(0);
                replica_last_uid =
                    replica_last_uid.max(records.iter().map(|r| r.uid).max().unwrap_or(0));
                update.state.highest_modseq = top;
                update.state.last_uid = replica_last_uid;
            }
            expect = Some(update.state.highest_modseq);
            let tag = conn.tag();
            let mut enc = Encoder::new();
            encode_update(&mut enc, &tag, &update);
            drop(update);
            conn.queue_encoded(tag, enc).await?;
            let last_state = last.then(|| ReplicaMailbox {
                uniqueid: plan.uniqueid.clone(),
                name: c.mailbox.name.clone(),
                uidvalidity: c.mailbox.uidvalidity,
                last_uid: c.mailbox.last_uid,
                highest_modseq: c.mailbox.highest_modseq,
                deleted_modseq: c.mailbox.deleted_modseq,
                partition: c.mailbox.partition.clone(),
            });
            sent.push(Sent::Update {
                user: plan.user.clone(),
                uniqueid: plan.uniqueid.clone(),
                last: last_state,
                records: mailbox_records,
                bytes: mailbox_bytes,
            });
        }
    }

    // 5. The replies, in order.
    let mut refused: HashSet<UniqueId> = HashSet::new();
    for what in sent {
        let reply = conn.reply().await?;
        match what {
            Sent::User(user) | Sent::Other(user) if !reply.ok() => {
                if let Some(c) = cache.as_deref_mut() {
                    c.forget_user(&user);
                }
                round.failures.push((user, reply.describe()));
            }
            Sent::User(user) => {
                if let (Some(c), Ok(Some(s))) =
                    (cache.as_deref_mut(), blocking(|| store.user_state(&user)))
                {
                    c.users.insert(user, Some(s.digest()));
                }
            }
            Sent::Other(_) => {}
            Sent::Update {
                user,
                uniqueid,
                last,
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
                    "MISMATCH" | "NOBLOB" | "NOUSER" => {}
                    "DIGEST" | "CONFLICT" => {
                        tracing::warn!(%user, mailbox = %uniqueid, reply = %reply.describe(), "replica diverged; reconciling");
                        marks.merge.insert(uniqueid.clone());
                    }
                    _ => {
                        round
                            .failures
                            .push((user, format!("mailbox {uniqueid}: {}", reply.describe())));
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

/// Cuts a mailbox's changes (in modseq order) into batches of at most
/// [`MAX_BATCH_RECORDS`] records or [`MAX_BATCH_BYTES`], never splitting one modseq.
/// Always at least one batch, so a state-only change still sends an UPDATE.
fn cut_batches(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for i in 0..records.len() {
        bytes += records[i].size;
        let full = i + 1 - start >= MAX_BATCH_RECORDS || bytes >= MAX_BATCH_BYTES;
        let boundary = records
            .get(i + 1)
            .is_none_or(|n| n.modseq != records[i].modseq);
        if full && boundary && i + 1 < records.len() {
            out.push(&records[start..=i]);
            start = i + 1;
            bytes = 0;
        }
    }
    out.push(&records[start..]);
    out
}

/// A user name as a protocol string.
fn quote(s: &str) -> String {
    let mut enc = Encoder::new();
    enc.string(s);
    String::from_utf8_lossy(enc.bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::Flags;

    fn rec(uid: Uid, modseq: Modseq) -> Record {
        Record {
            uid,
            modseq,
            flags: Flags::new(),
            internaldate: 0,
            size: 10,
            guid: Guid::of(&uid.to_be_bytes()),
            expunged_modseq: None,
        }
    }

    #[test]
    fn batches_never_split_a_modseq() {
        let mut records: Vec<Record> = (1..=4500).map(|u| rec(u, u as u64)).collect();
        // 3000 records share modseq 1500 (one STORE on the master), in the middle.
        for r in records.iter_mut().skip(1000).take(3000) {
            r.modseq = 1500;
        }
        records.sort_by_key(|r| (r.modseq, r.uid));
        let batches = cut_batches(&records);
        let total: usize = batches.iter().map(|b| b.len()).sum();
        assert_eq!(total, 4500);
        for pair in batches.windows(2) {
            assert_ne!(
                pair[0].last().unwrap().modseq,
                pair[1].first().unwrap().modseq
            );
        }
        assert!(batches.len() >= 2);
        assert_eq!(cut_batches(&[]).len(), 1);
    }
}
