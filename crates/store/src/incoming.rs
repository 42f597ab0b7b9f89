//! The messages an UPDATE (or a merge's adoptions) brings: checked against their GUID
//! and size, written, made durable and summarised, outside the writer.
//!
//! An UPDATE is applied in two halves so that a replica session can overlap them:
//! [`Replica::prepare_update`] hashes the carried messages, writes them to temporary files
//! and summarises them; [`Replica::apply_prepared`] makes those files durable under their
//! names, then applies the records in one transaction. While one UPDATE's second half
//! runs, the next one's first half can: the hashing and file writing of one overlap
//! the filesystem sync and the commit of the other.

use std::collections::HashMap;

use crate::blobs::StagedBlobs;
use crate::changelog::log_replicated;
use crate::content::has_index;
use crate::error::{Result, StoreError};
use crate::ids::{Guid, UniqueId};
use crate::names::{normalize_mailbox, normalize_user};
use crate::replicated::{apply_in, MailboxUpdate, Replica, ReplicaAppend};
use crate::store::Store;

/// An UPDATE whose carried messages are checked, written to temporary files and
/// summarised, not yet durable nor applied ([`Replica::prepare_update`]). It holds no
/// message bodies. Dropped without being applied, it removes its temporary files.
#[derive(Debug)]
pub struct PreparedUpdate {
    user: String,
    name: String,
    uniqueid: UniqueId,
    update: MailboxUpdate,
    /// The carried messages, in temporary files.
    staged: StagedBlobs,
    /// Appends that came without their message (the replica holds it, or an earlier
    /// UPDATE of the same stream carries it): looked for when applying.
    named: Vec<ReplicaAppend>,
    /// UIDs of appends whose blob the replica need not hold (expunged in the same
    /// update, without data).
    unheld: std::collections::HashSet<u32>,
    summaries: HashMap<Guid, crate::content::ContentSummary>,
}

/// Up to this many new blobs in one UPDATE are made durable one by one; more, together.
const FSYNC_EACH_UP_TO: usize = 4;

impl Replica<'_> {
    /// Applies one UPDATE as one transaction, after making any new blobs durable:
    /// [`Replica::prepare_update`] then [`Replica::apply_prepared`].
    pub fn apply_update(&self, update: MailboxUpdate) -> Result<()> {
        self.apply_prepared(self.prepare_update(update)?)
    }

    /// The first half of an UPDATE, which reads no record and changes none: checks the
    /// names and the partition, checks each carried message against its GUID and size,
    /// writes it to a temporary file and summarises it. Any number of UPDATEs may be
    /// prepared while another is applied; they must be applied in their order.
    pub fn prepare_update(&self, mut update: MailboxUpdate) -> Result<PreparedUpdate> {
        let user = normalize_user(&update.user)?;
        let name = normalize_mailbox(&update.state.name)?;
        let uniqueid = update.uniqueid.clone().ok_or(StoreError::SyncConflict {
            uid: 0,
            reason: "no unique id",
        })?;
        let partition = update.state.partition.clone();
        if !self.blobs().has_partition(&partition) {
            return Err(StoreError::UnknownPartition(partition));
        }
        if update.appends.len() > 100 {
            // A bulk load: the text index can wait until it is over.
            self.pause_text_indexing(std::time::Duration::from_secs(2));
        }
        let staged = self.stage_carried(&partition, &update.appends)?;
        let carried: Vec<&ReplicaAppend> =
            update.appends.iter().filter(|a| a.data.is_some()).collect();
        let summaries = self.summaries_for(&partition, &carried)?;
        let named: Vec<ReplicaAppend> = update
            .appends
            .iter()
            .filter(|a| a.data.is_none() && update.needs_blob(a))
            .cloned()
            .collect();
        let unheld: std::collections::HashSet<u32> = update
            .appends
            .iter()
            .filter(|a| !update.needs_blob(a))
            .map(|a| a.uid)
            .collect();
        for a in &mut update.appends {
            a.data = None;
        }
        Ok(PreparedUpdate {
            user,
            name,
            uniqueid,
            update,
            staged,
            named,
            unheld,
            summaries,
        })
    }

    /// The second half of an UPDATE: makes its messages durable under their names,
    /// then applies it as one transaction. Refuses, applying nothing, with
    /// `SyncMismatch` (the expected HIGHESTMODSEQ or digest does not hold),
    /// `SyncConflict`, `DigestMismatch`, `BlobNotHeld` (a message it names is not
    /// held, or was collected since) or `NoSuchUser`.
    pub fn apply_prepared(&self, prepared: PreparedUpdate) -> Result<()> {
        let PreparedUpdate {
            user,
            name,
            uniqueid,
            update,
            staged,
            named,
            unheld,
            mut summaries,
        } = prepared;
        let partition = update.state.partition.clone();
        staged.publish()?;
        let before = self.mailbox_by_uniqueid(&uniqueid)?;
        if let Some(m) = before.as_ref().filter(|m| m.is_live()) {
            if m.partition != partition {
                self.copy_blobs(m, &partition)?;
            }
        }
        self.hold_named(&partition, &named)?;
        summaries.extend(self.summaries_for(&partition, &named.iter().collect::<Vec<_>>())?);
        let hms = update.state.highest_modseq;
        let blobs = self.shared.blobs.clone();
        let chain = self.chain();
        self.write(move |conn| {
            // A blob collected since it was found present (see `orphans.rs`): the
            // master sends it again after `NO [NOBLOB]`.
            for a in update.appends.iter().filter(|a| !unheld.contains(&a.uid)) {
                match crate::orphans::require_blob(&blobs, &partition, &a.guid, a.size) {
                    Err(StoreError::BlobVanished { guid, .. }) => {
                        return Err(StoreError::BlobNotHeld(guid))
                    }
                    other => other?,
                }
            }
            apply_in(conn, &user, &name, &uniqueid, &update, &summaries)?;
            log_replicated(conn, chain, &user, Some(&uniqueid))?;
            Ok(uniqueid)
        })
        .map(|id| self.notify(&id, hms))
    }
}

impl Store {
    /// Writes the blobs `appends` carry (checked against their GUID and size) and makes
    /// sure the ones they name without data are held in `partition`, all durable.
    pub(crate) fn store_append_blobs(
        &self,
        partition: &str,
        appends: &[ReplicaAppend],
    ) -> Result<()> {
        self.stage_carried(partition, appends)?.publish()?;
        let named: Vec<ReplicaAppend> = appends
            .iter()
            .filter(|a| a.data.is_none())
            .cloned()
            .collect();
        self.hold_named(partition, &named)
    }

    /// Checks each carried message against its GUID and size and writes it: to
    /// temporary files when there are many (durable once published), durably at once
    /// when there are few.
    fn stage_carried(&self, partition: &str, appends: &[ReplicaAppend]) -> Result<StagedBlobs> {
        let conflict = |uid| StoreError::SyncConflict {
            uid,
            reason: "message does not match its GUID and size",
        };
        let mut carried: Vec<(Guid, &[u8])> = Vec::new();
        for a in appends {
            if let Some(data) = &a.data {
                if data.len() as u64 != a.size {
                    return Err(conflict(a.uid));
                }
                carried.push((a.guid, data));
            }
        }
        // Hashed just before being written, while the bytes are in the cache.
        let verify = |guid: &Guid, data: &[u8]| {
            if Guid::of(data) == *guid {
                return Ok(());
            }
            let uid = appends
                .iter()
                .find(|a| a.guid == *guid)
                .map_or(0, |a| a.uid);
            Err(conflict(uid))
        };
        if carried.len() > FSYNC_EACH_UP_TO {
            return self.blobs().stage_many(partition, &carried, verify);
        }
        // A few blobs (rolling replication): an fsync each is cheaper than a sync of
        // the whole filesystem, which also flushes everyone else's dirty pages.
        for (guid, data) in &carried {
            verify(guid, data)?;
        }
        for (guid, data) in &carried {
            self.blobs().put_with_guid(partition, guid, data)?;
        }
        Ok(StagedBlobs::default())
    }

    /// Makes sure each message named without data is held in `partition`, copying it
    /// from another partition if needed; `BlobNotHeld` when no partition holds it.
    fn hold_named(&self, partition: &str, named: &[ReplicaAppend]) -> Result<()> {
        for a in named {
            if self.blobs().contains(partition, &a.guid, a.size)? {
                continue;
            }
            let bytes = self.read_blob(&a.guid, a.size)?;
            self.blobs().put_with_guid(partition, &a.guid, &bytes)?;
        }
        Ok(())
    }

    /// Summaries (for the protocols' indexer) of the appended messages this store has
    /// none for yet, computed outside the writer, on both cores when there are many.
    pub(crate) fn summaries_for(
        &self,
        partition: &str,
        appends: &[&ReplicaAppend],
    ) -> Result<HashMap<Guid, crate::content::ContentSummary>> {
        let indexer = self.shared.indexer.clone();
        let unknown: Vec<&ReplicaAppend> = self.read(|conn| {
            let mut out = Vec::new();
            for &a in appends {
                if !has_index(conn, &a.guid)?
                    && !out.iter().any(|o: &&ReplicaAppend| o.guid == a.guid)
                {
                    out.push(a);
                }
            }
            Ok(out)
        })?;
        let summarize = |a: &ReplicaAppend| -> Result<(Guid, crate::content::ContentSummary)> {
            let summary = match &a.data {
                Some(d) => indexer.summarize(d),
                None => indexer.summarize(&self.blobs().read(partition, &a.guid, a.size)?),
            };
            Ok((a.guid, summary))
        };
        if unknown.len() < 32 {
            return unknown.into_iter().map(summarize).collect();
        }
        let (left, right) = unknown.split_at(unknown.len() / 2);
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                right
                    .iter()
                    .map(|a| summarize(a))
                    .collect::<Result<Vec<_>>>()
            });
            let mut out: HashMap<Guid, crate::content::ContentSummary> =
                left.iter().map(|a| summarize(a)).collect::<Result<_>>()?;
            let rest = other
                .join()
                .map_err(|_| StoreError::CommitFailed("summary thread panicked".into()))??;
            out.extend(rest);
            Ok(out)
        })
    }
}
