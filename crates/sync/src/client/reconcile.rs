//! Conflict resolution: when the replica holds what the master does not (both took
//! writes while cut off, a mailbox created only on the replica, a UID or UIDVALIDITY
//! clash), the master takes the replica's extra messages back before it overwrites the
//! replica, so nothing is lost (`docs/replication.md`, section 6, "Reconcile").
//!
//! These are the only writes `tern sync` makes to the master; each is an ordinary
//! store write, logged in the change log, so it replicates like any other change.

use std::collections::{HashMap, HashSet};

use tern_store::{
    Adoption, Guid, Mailbox, MailboxState, MailboxUpdate, Merge, ReplicaAppend, Store,
};

use super::conn::Connection;
use super::plan::plan_records;
use super::{blocking, ClientError};
use crate::protocol::{MessageData, ReplicaMailbox, ReplicaRecord, Request};

/// What became of a mailbox only the replica had.
pub(crate) enum Orphan {
    /// The master now has it, same unique id, UIDs and messages.
    Adopted,
    /// Its messages were added to the master's mailbox of the same name (given); the
    /// replica's mailbox must be deleted.
    Merged(Box<Mailbox>),
}

/// The replica's records of a mailbox, and its keyword table.
async fn replica_records(
    conn: &mut Connection,
    user: &str,
    rm: &ReplicaMailbox,
) -> Result<(Vec<ReplicaRecord>, Vec<String>), ClientError> {
    let got = super::records::replica_records(conn, user, &rm.uniqueid).await?;
    Ok((got.records, got.keywords))
}

/// Fetches blobs from the replica, pipelined (one round trip).
async fn fetch(
    conn: &mut Connection,
    wanted: &[(Guid, u64)],
) -> Result<HashMap<Guid, Vec<u8>>, ClientError> {
    for (guid, size) in wanted {
        conn.queue(&Request::Message {
            guid: *guid,
            size: *size,
        })
        .await?;
    }
    let mut out = HashMap::new();
    for (guid, _) in wanted {
        let reply = conn.reply().await?;
        let describe = reply.describe();
        let data = reply
            .untagged
            .into_iter()
            .find(|(k, _)| k == "MESSAGE")
            .and_then(|(_, args)| MessageData::parse(args).ok());
        match data {
            Some(m) if m.guid == *guid && Guid::of(&m.data) == *guid => {
                out.insert(*guid, m.data);
            }
            _ => {
                return Err(ClientError::Protocol(format!(
                    "replica could not send message {guid}: {describe}"
                )))
            }
        }
    }
    Ok(out)
}

/// Adds `records` of another mailbox of the replica (fetched in one round trip) to
/// the master's mailbox `target` under new UIDs, keeping their flags and INTERNALDATE,
/// and that mailbox's `keywords` to the target's table, in one transaction.
async fn copy_back_into(
    conn: &mut Connection,
    store: &Store,
    target: &tern_store::UniqueId,
    records: &[&ReplicaRecord],
    keywords: Vec<String>,
) -> Result<(), ClientError> {
    if records.is_empty() && keywords.is_empty() {
        return Ok(());
    }
    let wanted: Vec<(Guid, u64)> = records.iter().map(|r| (r.guid, r.size)).collect();
    let mut blobs = fetch(conn, &wanted).await?;
    let merge = Merge {
        adopt: records
            .iter()
            .map(|r| Adoption {
                replica_uid: None,
                internaldate: r.internaldate,
                size: r.size,
                guid: r.guid,
                flags: r.flags.clone(),
                data: blobs.get(&r.guid).cloned().unwrap_or_default(),
            })
            .collect(),
        keywords,
        ..Default::default()
    };
    blobs.clear();
    blocking(|| store.merge_replica(target, merge))?;
    Ok(())
}

/// Takes back what only the replica has of mailbox `m` (both sides changed it while
/// cut off), by the rules of [`plan_records`]: in one transaction on the master, its
/// messages under new UIDs above both sides' last UID, the master's own messages out
/// of UIDs the replica gave to others, newer flags and expunges. Afterwards the
/// master's state is newer than the replica's, ready to be sent with RESET.
pub(crate) async fn merge_back(
    conn: &mut Connection,
    store: &Store,
    user: &str,
    m: &Mailbox,
    rm: &ReplicaMailbox,
) -> Result<(), ClientError> {
    let (theirs, keywords) = replica_records(conn, user, rm).await?;
    let (m, ours) = blocking(|| store.all_records(&m.uniqueid))?;
    let plan = plan_records(&ReplicaMailbox::of(&m), &ours, rm, &theirs);
    tracing::warn!(
        user,
        mailbox = %m.name,
        uniqueid = %m.uniqueid,
        replica_highestmodseq = rm.highest_modseq,
        master_highestmodseq = m.highest_modseq,
        renumbered = plan.renumber.len(),
        copied_back = plan.adopt.len(),
        flags_merged = plan.flags.len(),
        expunges_merged = plan.expunge.len(),
        "replica diverged from master: merging its changes back"
    );
    let wanted: Vec<(Guid, u64)> = plan
        .adopt
        .iter()
        .map(|&i| (theirs[i].guid, theirs[i].size))
        .collect();
    let blobs = fetch(conn, &wanted).await?;
    let adopted = wanted
        .iter()
        .map(|(g, _)| blobs.get(g).cloned().unwrap_or_default())
        .collect();
    let same_uid_space = rm.uidvalidity == m.uidvalidity;
    let merge = Merge {
        // Including the keywords no message has any more: the replica's clients saw
        // them in FLAGS.
        keywords,
        ..plan.into_merge(rm, &theirs, same_uid_space, adopted)
    };
    let merged = blocking(|| store.merge_replica(&m.uniqueid, merge))?;
    for (old, new) in &merged.renumbered {
        tracing::warn!(user, mailbox = %m.name, old, new, "UID conflict: the master's message moved to a new UID");
    }
    for (old, new) in &merged.adopted {
        tracing::warn!(user, mailbox = %m.name, old, new, "the replica's message taken back under a new UID");
    }
    Ok(())
}

/// Before a mailbox the master deleted is deleted on the replica: the messages the
/// replica took into it after the master's last UID (so the master never had them) are
/// appended to the master's live mailbox of that name, re-created if needed.
pub(crate) async fn deleted(
    conn: &mut Connection,
    store: &Store,
    user: &str,
    rm: &ReplicaMailbox,
    tombstone: &Mailbox,
) -> Result<(), ClientError> {
    let (theirs, keywords) = replica_records(conn, user, rm).await?;
    let new: Vec<&ReplicaRecord> = theirs
        .iter()
        .filter(|r| r.uid > tombstone.last_uid && r.expunged.is_none())
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    // A repeated run (the DELETE never reached the replica) must not copy them twice.
    let new = match blocking(|| store.mailbox(user, &rm.name))? {
        Some(m) => {
            let (_, ours) = blocking(|| store.all_records(&m.uniqueid))?;
            let held: HashSet<Guid> = ours
                .iter()
                .filter(|r| r.expunged_modseq.is_none())
                .map(|r| r.guid)
                .collect();
            new.into_iter()
                .filter(|r| !held.contains(&r.guid))
                .collect()
        }
        None => new,
    };
    if new.is_empty() {
        return Ok(());
    }
    tracing::warn!(user, mailbox = %rm.name, uniqueid = %rm.uniqueid, messages = new.len(),
        "the replica took messages into a mailbox the master deleted: taking them back");
    let target = match blocking(|| store.mailbox(user, &rm.name))? {
        Some(m) => m,
        None => blocking(|| store.create_mailbox(user, &rm.name, None))?,
    };
    copy_back_into(conn, store, &target.uniqueid, &new, keywords).await
}

/// Takes back a mailbox only the replica has: adopted whole when the master has no
/// live mailbox of that name, else merged into the master's mailbox of that name.
pub(crate) async fn orphan(
    conn: &mut Connection,
    store: &Store,
    user: &str,
    rm: &ReplicaMailbox,
    master_boxes: &[Mailbox],
) -> Result<Orphan, ClientError> {
    let (theirs, keywords) = replica_records(conn, user, rm).await?;
    let live: Vec<&ReplicaRecord> = theirs.iter().filter(|r| r.expunged.is_none()).collect();
    let same_name = master_boxes
        .iter()
        .find(|m| m.is_live() && m.name == rm.name)
        .cloned();
    let same_name = match same_name {
        Some(m) => Some(m),
        None => blocking(|| store.mailbox(user, &rm.name))?,
    };
    tracing::warn!(user, mailbox = %rm.name, uniqueid = %rm.uniqueid, messages = live.len(),
        merged = same_name.is_some(), "mailbox exists only on the replica: taking it back");
    if let Some(m) = same_name {
        let (_, ours) = blocking(|| store.all_records(&m.uniqueid))?;
        let known: HashSet<Guid> = ours
            .iter()
            .filter(|r| r.expunged_modseq.is_none())
            .map(|r| r.guid)
            .collect();
        let missing: Vec<&ReplicaRecord> = live
            .iter()
            .copied()
            .filter(|r| !known.contains(&r.guid))
            .collect();
        copy_back_into(conn, store, &m.uniqueid, &missing, keywords).await?;
        return Ok(Orphan::Merged(Box::new(m)));
    }
    // Adopted whole, expunged records included, so that the two sides then hold the
    // same records (and digest): its clients saw those UIDs expunged.
    let mut wanted: Vec<(Guid, u64)> = theirs.iter().map(|r| (r.guid, r.size)).collect();
    wanted.sort();
    wanted.dedup();
    let blobs = fetch(conn, &wanted).await?;
    let partition = if store.blobs().has_partition(&rm.partition) {
        rm.partition.clone()
    } else {
        store.config().default_partition.clone()
    };
    let update = MailboxUpdate {
        user: user.to_owned(),
        uniqueid: Some(rm.uniqueid.clone()),
        expect: None,
        state: MailboxState {
            name: rm.name.clone(),
            partition,
            uidvalidity: rm.uidvalidity,
            last_uid: rm.last_uid,
            highest_modseq: rm.highest_modseq,
            keywords,
            ..Default::default()
        },
        appends: theirs
            .iter()
            .map(|r| ReplicaAppend {
                uid: r.uid,
                modseq: r.modseq,
                internaldate: r.internaldate,
                size: r.size,
                guid: r.guid,
                flags: r.flags.clone(),
                data: blobs.get(&r.guid).cloned(),
                pop3_uidl: r.pop3_uidl.clone(),
            })
            .collect(),
        expunges: theirs
            .iter()
            .filter_map(|r| r.expunged.map(|x| (vec![r.uid], x)))
            .collect(),
        ..Default::default()
    };
    // A replicated write on the master, on purpose: adopting the mailbox whole keeps
    // its unique id, UIDs and modseqs, exactly what applying an UPDATE does.
    blocking(|| store.replica().apply_update(update))?;
    // Raise the master's counter above the adopted modseqs and log the mailbox, so it
    // replicates back like any change.
    blocking(|| store.raise_for_merge(&rm.uniqueid, rm.highest_modseq, rm.last_uid))?;
    Ok(Orphan::Adopted)
}
