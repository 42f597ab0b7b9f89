//! The decisions of a sync, as pure functions: the master's state and the replica's
//! view in, what to send and what to take back out (`docs/replication.md`, section 6).
//! Nothing here does I/O, so every rule is unit-tested against a table of cases.

use std::collections::{BTreeMap, HashMap, HashSet};

use tern_store::{Guid, Merge, Modseq, Record, RecordsDigest, Uid};

use crate::protocol::{ReplicaMailbox, ReplicaRecord};

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
