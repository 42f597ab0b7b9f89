//! The decisions of a sync, as pure functions: the master's state and the replica's
//! view in, what to send and what to take back out (`docs/replication.md`, section 6).
//! Nothing here does I/O, so every rule is unit-tested against a table of cases.

use std::collections::{BTreeMap, HashMap, HashSet};

use tern_store::{Guid, Mailbox, Merge, Modseq, Record, RecordsDigest, Uid, UniqueId, UserState};

use crate::protocol::{ReplicaMailbox, ReplicaRecord, Selection};

/// The master's side of one user, as read for a round.
pub(crate) struct MasterUser {
    /// Its user-level state; `None` when the master has no such user.
    pub state: Option<UserState>,
    /// The selected mailboxes, live ones and tombstones.
    pub mailboxes: Vec<Mailbox>,
    /// Master mailboxes (of this user) that the replica reported although the
    /// selection left them out: renamed or deleted on the master.
    pub outside: HashMap<UniqueId, Mailbox>,
}

/// What the replica holds of one user (MAILBOXES, or remembered).
pub(crate) struct View {
    /// Its user digest; `None` when the replica has no such user.
    pub digest: Option<String>,
    /// The live mailboxes asked about.
    pub mailboxes: Vec<ReplicaMailbox>,
}

/// What the rounds of one sync carry from one to the next.
#[derive(Default)]
pub(crate) struct Marks {
    /// Mailboxes to reconcile whatever the counters say (the replica refused an
    /// UPDATE with `DIGEST` or `CONFLICT`).
    pub merge: HashSet<UniqueId>,
    /// Mailboxes merged in an earlier round, to send whole with RESET.
    pub reset: HashSet<UniqueId>,
    /// Mailboxes to give a new UIDVALIDITY before they are created on the replica,
    /// with the UIDVALIDITY it must exceed.
    pub renew: HashMap<UniqueId, u32>,
}

/// What to do about a mailbox the replica reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplicaStep {
    /// The master deleted it: DELETE it on the replica, after taking back the
    /// messages the replica took into it above the master's last UID (`tombstone`).
    Delete {
        /// The replica's mailbox.
        mailbox: ReplicaMailbox,
        /// The master's tombstone, when there is something to take back first.
        take_new_from: Option<Box<Mailbox>>,
    },
    /// The master never had it (created on the replica): take it back.
    TakeBack(ReplicaMailbox),
    /// The master has it live under another name, outside the selection: sync it too.
    SyncOutside(UniqueId),
}

/// What to do about one live master mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxPlan {
    /// The master's mailbox.
    pub mailbox: Mailbox,
    /// The replica's view of it.
    pub replica: Option<ReplicaMailbox>,
    /// Before anything else, give it a UIDVALIDITY above this one.
    pub renew_above: Option<u32>,
    /// What it needs.
    pub step: MailboxStep,
}

/// The plan for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserPlan {
    /// Remove the user from the replica (the master has none).
    pub unuser: bool,
    /// Send the user-level state (USER).
    pub send_user: bool,
    /// Sync the whole user in the next round (the replica lacks the user).
    pub widen: bool,
    /// The replica's mailboxes that need something.
    pub replica: Vec<ReplicaStep>,
    /// The master's live mailboxes that need something (contents only).
    pub mailboxes: Vec<MailboxPlan>,
}

/// Plans one user: the master's side and the replica's view in, what to send and what
/// to take back out. `marks` carries what earlier rounds decided; the marks used are
/// taken out. `contents`: plan mailbox contents too (else only the user level).
pub(crate) fn plan_user(
    selection: &Selection,
    master: &MasterUser,
    view: &View,
    marks: &mut Marks,
    contents: bool,
) -> UserPlan {
    let mut plan = UserPlan::default();
    let Some(state) = &master.state else {
        plan.unuser = matches!(selection, Selection::All) && view.digest.is_some();
        return plan;
    };
    plan.widen = view.digest.is_none() && !matches!(selection, Selection::All);
    plan.send_user = view.digest.as_deref() != Some(state.digest().as_str());
    let by_id: HashMap<&UniqueId, &Mailbox> =
        master.mailboxes.iter().map(|m| (&m.uniqueid, m)).collect();
    for rm in &view.mailboxes {
        let outside = master.outside.get(&rm.uniqueid);
        match by_id.get(&rm.uniqueid).copied().or(outside) {
            Some(m) if m.is_live() => {
                if outside.is_some() {
                    plan.replica
                        .push(ReplicaStep::SyncOutside(m.uniqueid.clone()));
                }
            }
            Some(tombstone) => {
                // Messages the replica took in after the master deleted it (split
                // brain), under UIDs the master never gave, are taken back first.
                let took_more =
                    rm.last_uid > tombstone.last_uid && rm.uidvalidity == tombstone.uidvalidity;
                plan.replica.push(ReplicaStep::Delete {
                    mailbox: rm.clone(),
                    take_new_from: took_more.then(|| Box::new(tombstone.clone())),
                });
            }
            None => plan.replica.push(ReplicaStep::TakeBack(rm.clone())),
        }
    }
    if !contents {
        return plan;
    }
    // A mailbox given a new UIDVALIDITY goes above every one the replica's mailboxes
    // of this user have.
    let floor = view
        .mailboxes
        .iter()
        .map(|m| m.uidvalidity)
        .max()
        .unwrap_or(0);
    let replica: HashMap<&UniqueId, &ReplicaMailbox> =
        view.mailboxes.iter().map(|m| (&m.uniqueid, m)).collect();
    for m in master.mailboxes.iter().filter(|m| m.is_live()) {
        let rm = replica.get(&m.uniqueid).copied();
        // Both sides created a mailbox of this name and gave them the same UIDVALIDITY
        // (both take it from the clock): the master's replacing the replica's would
        // reuse its UIDs under it.
        let twin = rm.is_none()
            && plan.replica.iter().any(|step| {
                matches!(step, ReplicaStep::TakeBack(o)
                    if o.name == m.name && o.uidvalidity == m.uidvalidity)
            });
        // (A mark for a mailbox the replica now holds is moot: dropped.)
        let renew_above = marks
            .renew
            .remove(&m.uniqueid)
            .filter(|_| rm.is_none())
            .or(twin.then_some(0))
            .map(|above| above.max(floor).max(m.uidvalidity));
        let merged = rm.is_some() && marks.reset.remove(&m.uniqueid);
        let forced = rm.is_some() && marks.merge.remove(&m.uniqueid);
        let step = if forced {
            MailboxStep::Reconcile
        } else {
            plan_mailbox(&ReplicaMailbox::of(m), rm, merged)
        };
        if step != MailboxStep::InStep {
            plan.mailboxes.push(MailboxPlan {
                mailbox: m.clone(),
                replica: rm.cloned(),
                renew_above,
                step,
            });
        }
    }
    plan
}

/// What one live master mailbox needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MailboxStep {
    /// The replica holds exactly the master's mailbox: same name, partition,
    /// UIDVALIDITY, last UID, HIGHESTMODSEQ and records digest.
    InStep,
    /// Send the records changed above `since`, as UPDATE.
    Send(Send),
    /// Both sides changed it: take the replica's changes back first (RECORDS,
    /// MESSAGE, a merge on the master), then send it whole with RESET.
    Reconcile,
}

/// An UPDATE to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Send {
    /// The replica's HIGHESTMODSEQ and digest as last seen (`None`: it has no such
    /// mailbox).
    pub expect: Option<(Modseq, RecordsDigest)>,
    /// Send the records changed above this modseq.
    pub since: Modseq,
    /// Records above this UID are new to the replica (APPENDs).
    pub replica_last_uid: Uid,
    /// Replace the replica's records (after a merge).
    pub reset: bool,
    /// The name or partition differs on the replica.
    pub rename: bool,
}

/// Decides what a live master mailbox `m` (its state in the protocol's terms,
/// `ReplicaMailbox::of`) needs, given the replica's view of it (`None`: the replica has
/// no live mailbox with its unique id). `merged`: the master took this mailbox's
/// divergence back in an earlier round, so it is sent whole.
pub(crate) fn plan_mailbox(
    m: &ReplicaMailbox,
    replica: Option<&ReplicaMailbox>,
    merged: bool,
) -> MailboxStep {
    let Some(rm) = replica else {
        return MailboxStep::Send(Send {
            expect: None,
            since: 0,
            replica_last_uid: 0,
            reset: false,
            rename: false,
        });
    };
    let rename = rm.name != m.name || rm.partition != m.partition;
    let expect = Some((rm.highest_modseq, rm.digest));
    if merged {
        return MailboxStep::Send(Send {
            expect,
            since: 0,
            replica_last_uid: 0,
            reset: true,
            rename,
        });
    }
    let same_counters = rm.highest_modseq == m.highest_modseq && rm.last_uid == m.last_uid;
    let behind = rm.uidvalidity == m.uidvalidity
        && rm.highest_modseq <= m.highest_modseq
        && rm.last_uid <= m.last_uid
        && rm.highest_modseq >= m.deleted_modseq;
    if rm.uidvalidity == m.uidvalidity && same_counters {
        // Equal counters prove nothing after a split brain: the digests decide.
        return if rm.digest != m.digest {
            MailboxStep::Reconcile
        } else if rename {
            MailboxStep::Send(Send {
                expect,
                since: m.highest_modseq,
                replica_last_uid: m.last_uid,
                reset: false,
                rename,
            })
        } else {
            MailboxStep::InStep
        };
    }
    if !behind {
        return MailboxStep::Reconcile;
    }
    // Behind by the counters. If the replica also took writes of its own, the digest
    // after the UPDATE will differ and the replica refuses it (`NO [DIGEST]`): the
    // mailbox is then reconciled.
    MailboxStep::Send(Send {
        expect,
        since: rm.highest_modseq,
        replica_last_uid: rm.last_uid,
        reset: false,
        rename,
    })
}

/// What the master takes back from a diverged replica's mailbox (the records part of
/// [`Merge`], without the messages, which are fetched for `adopt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordPlan {
    /// Master UIDs whose live message moves to a new UID (the replica holds another
    /// message under the same UID).
    pub renumber: Vec<Uid>,
    /// Replica records to copy to the master under new UIDs (indexes into the
    /// replica's records), and whether their UID is theirs in the same UID space.
    pub adopt: Vec<usize>,
    /// Newer flags from the replica.
    pub flags: Vec<(Uid, tern_store::Flags)>,
    /// Expunges from the replica newer than the master's last change of the record.
    pub expunge: Vec<Uid>,
}

impl RecordPlan {
    /// The merge to apply, once the adopted messages are fetched (`adopted`: the
    /// message of each entry of `adopt`, in order).
    pub fn into_merge(
        self,
        rm: &ReplicaMailbox,
        replica: &[ReplicaRecord],
        same_uid_space: bool,
        adopted: Vec<Vec<u8>>,
    ) -> Merge {
        Merge {
            replica_highest_modseq: rm.highest_modseq,
            replica_last_uid: if same_uid_space { rm.last_uid } else { 0 },
            renumber: self.renumber,
            adopt: self
                .adopt
                .iter()
                .zip(adopted)
                .map(|(&i, data)| {
                    let r = &replica[i];
                    tern_store::Adoption {
                        replica_uid: same_uid_space.then_some(r.uid),
                        internaldate: r.internaldate,
                        size: r.size,
                        guid: r.guid,
                        flags: r.flags.clone(),
                        data,
                    }
                })
                .collect(),
            flags: self.flags,
            expunge: self.expunge,
            // The records alone do not say which keywords the replica defined: the
            // caller adds its table.
            keywords: Vec::new(),
        }
    }
}

/// Compares the records of a mailbox both sides changed, UID by UID (the Cyrus way):
///
/// * the same UID and GUID: an expunge on either side wins (a UID a client saw
///   expunged never holds a message again); otherwise the side that changed the
///   flags last (higher modseq) wins, the master on a tie;
/// * the same UID, different GUIDs (each side gave it to another message): both
///   messages move to new UIDs, the master's by renumbering, the replica's by
///   adoption; an expunged one stays expunged;
/// * a UID only the replica has: its message is adopted if live and either new to
///   the master (above its last UID) or changed on the replica after the master's
///   purge horizon (DELETEDMODSEQ); an expunged one is simply dropped;
/// * a message to adopt that the master already holds under a UID the replica never
///   saw (above the replica's last UID) is not adopted again: that copy is new mail of
///   the same content, or the one an earlier merge took, cut short before the replica
///   was reset. This is what makes a repeated merge a no-op.
///
/// With different UIDVALIDITYs the UIDs mean nothing: the replica's live messages the
/// master holds nowhere in the mailbox (by GUID) are adopted.
pub(crate) fn plan_records(
    master: &ReplicaMailbox,
    ours: &[Record],
    rm: &ReplicaMailbox,
    theirs: &[ReplicaRecord],
) -> RecordPlan {
    let mut plan = RecordPlan::default();
    if rm.uidvalidity != master.uidvalidity {
        let held: HashSet<Guid> = ours
            .iter()
            .filter(|r| r.expunged_modseq.is_none())
            .map(|r| r.guid)
            .collect();
        let mut seen = HashSet::new();
        for (i, r) in theirs.iter().enumerate() {
            if r.expunged.is_none() && !held.contains(&r.guid) && seen.insert(r.guid) {
                plan.adopt.push(i);
            }
        }
        return plan;
    }
    let by_uid: BTreeMap<Uid, &Record> = ours.iter().map(|r| (r.uid, r)).collect();
    // Messages the master holds under UIDs the replica never saw: new mail or, after
    // a merge cut short before the replica was reset, copies already taken back. A
    // replica message with the same GUID is one of those, not a message to take again.
    let mut taken: HashMap<Guid, usize> = HashMap::new();
    for r in ours
        .iter()
        .filter(|r| r.uid > rm.last_uid && r.expunged_modseq.is_none())
    {
        *taken.entry(r.guid).or_default() += 1;
    }
    let mut adopt = |plan: &mut RecordPlan, i: usize, guid: Guid| match taken.get_mut(&guid) {
        Some(n) if *n > 0 => *n -= 1,
        _ => plan.adopt.push(i),
    };
    for (i, r) in theirs.iter().enumerate() {
        match by_uid.get(&r.uid) {
            Some(mine) if mine.guid == r.guid => {
                if mine.expunged_modseq.is_some() {
                    continue;
                }
                // An expunge is never undone, whoever changed the record last: the
                // replica's clients saw the UID go, so it cannot come back.
                if r.expunged.is_some() {
                    plan.expunge.push(r.uid);
                } else if r.modseq > mine.modseq && r.flags != mine.flags {
                    plan.flags.push((r.uid, r.flags.clone()));
                }
            }
            Some(mine) => {
                if mine.expunged_modseq.is_none() {
                    plan.renumber.push(mine.uid);
                }
                if r.expunged.is_none() {
                    adopt(&mut plan, i, r.guid);
                }
            }
            None => {
                let new_to_master = r.uid > master.last_uid || r.modseq > master.deleted_modseq;
                if r.expunged.is_none() && new_to_master {
                    adopt(&mut plan, i, r.guid);
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
