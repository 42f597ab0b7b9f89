//! One mailbox's changes as UPDATE commands: cut into bounded batches at modseq
//! boundaries, records of UIDs the replica has not seen sent as APPENDs (with the
//! message unless the replica holds it), the others grouped into STORE and EXPUNGE
//! items by modseq and flags.

use std::collections::{HashMap, HashSet};

use tern_store::{
    Guid, MailboxChanges, MailboxState, MailboxUpdate, Modseq, Record, ReplicaAppend, Store, Uid,
};

use super::conn::Connection;
use super::round::{Plan, Sent};
use super::{blocking, ClientError, SyncSummary};
use crate::protocol::{ReplicaMailbox, Request};
use crate::wire::Encoder;

/// Most records in one UPDATE.
const MAX_BATCH_RECORDS: usize = 2000;
/// Most literal bytes in one UPDATE.
const MAX_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// Queues the RENAME (when the name or partition changed) and the UPDATEs that bring
/// one mailbox in step, reading each message only when the replica lacks it and no
/// earlier UPDATE of this pipeline carried it.
///
/// Each UPDATE is queued only after every message it carries was read, so when a
/// message cannot be read (`ClientError::Store`) the batches queued before it are
/// whole, consistent prefixes of the mailbox and nothing of the failing batch went
/// out: `carried` and `summary` count only what was queued.
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue_mailbox(
    conn: &mut Connection,
    store: &Store,
    plan: &Plan,
    c: &MailboxChanges,
    held: &HashSet<Guid>,
    carried: &mut HashSet<Guid>,
    summary: &mut SyncSummary,
    sent: &mut Vec<Sent>,
) -> Result<(), ClientError> {
    if plan.send.rename {
        conn.queue(&Request::Rename {
            user: plan.user.clone(),
            uniqueid: plan.uniqueid.clone(),
            name: c.mailbox.name.clone(),
            partition: c.mailbox.partition.clone(),
        })
        .await?;
        sent.push(Sent::Other(plan.user.clone()));
    }
    let state = MailboxState {
        keywords: c.keywords.clone(),
        ..MailboxState::of(&c.mailbox, c.annotations.clone())
    };
    let batches = cut_batches(&c.records);
    let mut expect = plan.send.expect.map(|(modseq, _)| modseq);
    let mut replica_last_uid = plan.send.replica_last_uid;
    let (mut mailbox_records, mut mailbox_bytes) = (0usize, 0u64);
    for (k, records) in batches.iter().enumerate() {
        // Messages this batch carries, added to `carried` once it is queued.
        let mut fresh: HashSet<Guid> = HashSet::new();
        let mut fresh_bytes = 0u64;
        let last = k + 1 == batches.len();
        let mut update = MailboxUpdate {
            user: plan.user.clone(),
            uniqueid: Some(plan.uniqueid.clone()),
            expect,
            // The first batch also checks the replica's records are what the plan saw
            // (equal counters do not prove it); the later ones follow our own batches.
            expect_digest: if k == 0 {
                plan.send.expect.map(|(_, digest)| digest)
            } else {
                None
            },
            state: state.clone(),
            reset: plan.send.reset && k == 0,
            ..Default::default()
        };
        let mut stores: HashMap<(Modseq, String), Vec<Uid>> = HashMap::new();
        let mut expunges: HashMap<Modseq, Vec<Uid>> = HashMap::new();
        for r in records.iter() {
            if r.uid > plan.send.replica_last_uid {
                // An expunged message's content is never read again: its record
                // goes without it (`MailboxUpdate::needs_blob`).
                let data = if r.expunged_modseq.is_some()
                    || held.contains(&r.guid)
                    || carried.contains(&r.guid)
                    || fresh.contains(&r.guid)
                {
                    None
                } else {
                    let bytes = blocking(|| store.message(&c.mailbox, r))?;
                    fresh.insert(r.guid);
                    fresh_bytes += r.size;
                    Some(bytes)
                };
                update.appends.push(ReplicaAppend::of(r, data));
            } else {
                stores
                    .entry((r.modseq, r.flags.to_string()))
                    .or_default()
                    .push(r.uid);
            }
            if let Some(x) = r.expunged_modseq {
                expunges.entry(x).or_default().push(r.uid);
            }
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
            update.digest = Some(c.mailbox.digest);
        } else {
            let top = records.iter().map(|r| r.modseq).max().unwrap_or(0);
            replica_last_uid =
                replica_last_uid.max(records.iter().map(|r| r.uid).max().unwrap_or(0));
            update.state.highest_modseq = top;
            update.state.last_uid = replica_last_uid;
        }
        expect = Some(update.state.highest_modseq);
        // Encoded here, not through `queue`, so the messages are dropped before the
        // next batch reads its own: one batch's literals in memory at a time.
        let tag = conn.tag();
        let mut enc = Encoder::new();
        Request::Update(Box::new(update)).encode(&mut enc, &tag);
        conn.queue_encoded(tag, enc).await?;
        carried.extend(fresh);
        summary.message_bytes += fresh_bytes;
        mailbox_bytes += fresh_bytes;
        summary.records += records.len();
        mailbox_records += records.len();
        let last_state = last.then(|| ReplicaMailbox::of(&c.mailbox));
        sent.push(Sent::Update {
            user: plan.user.clone(),
            uniqueid: plan.uniqueid.clone(),
            name: plan.name.clone(),
            last: last_state,
            created: plan.send.expect.is_none(),
            records: mailbox_records,
            bytes: mailbox_bytes,
        });
    }
    Ok(())
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
            pop3_uidl: None,
            saved_at: None,
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
