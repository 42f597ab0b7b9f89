//! Collecting blobs no record refers to, for `tern expire`.
//!
//! Race-free against deliveries by the rule of `orphans.rs`: each blob is removed inside
//! a write transaction (which holds the index's write lock across processes) after that
//! transaction re-checks that no record refers to its GUID; a delivery that found the
//! blob present and commits later stats it in its own transaction, sees it gone, writes
//! it again and retries.
//!
//! A blob is removed by renaming it into the partition's trash inside that
//! transaction (cheap, and from then on a delivery finds it gone), and deleted from the
//! trash after the commit, outside the write lock: on a filesystem mounted with
//! `discard` an unlink waits for the device, and deliveries must not wait with it.
//!
//! Crash-safe without any durable list of candidates: a run lists every blob file of
//! every partition and checks each against the records, so whatever an earlier run
//! purged but did not get to collect (killed between the purge's commit and the
//! unlinks, or in the middle of them) is found again by the next run. A kill leaves at
//! worst unreferenced files; it never removes a referenced one, since the re-check and
//! the unlink happen under the write lock before that transaction commits and a record
//! can only be committed (by anyone) after it.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::ids::Guid;
use crate::orphans::referenced;
use crate::store::Store;

/// Most blobs re-checked and removed in one write transaction.
const COLLECT_BATCH: usize = 256;

impl Store {
    /// Removes every blob, in every partition, that no record refers to and no write of
    /// this process has pinned, with the summaries and full-text queue entries of GUIDs
    /// gone. Dry (`dry_run`), counts instead what a purge at `purge_cutoff` followed by
    /// this collection would free. Returns blobs and bytes.
    pub(crate) fn collect_blobs(
        &self,
        dry_run: bool,
        purge_cutoff: Option<i64>,
    ) -> Result<(u64, u64)> {
        let partitions: Vec<String> = self.blobs().partition_names().map(str::to_owned).collect();
        let (mut blobs, mut bytes) = (0, 0);
        for partition in partitions {
            let listed = self.blobs().list(&partition)?;
            // Most blobs are referenced: filter on a reader, so the writer only
            // re-checks the few that are not.
            let candidates: Vec<(Guid, u64)> = self.read(move |conn| {
                let mut out = Vec::new();
                for (guid, size) in listed {
                    let keep = match (dry_run, purge_cutoff) {
                        (true, Some(cutoff)) => referenced_after_purge(conn, &guid, cutoff)?,
                        _ => referenced(conn, &guid)?,
                    };
                    if !keep {
                        out.push((guid, size));
                    }
                }
                Ok(out)
            })?;
            if dry_run {
                blobs += candidates.len() as u64;
                bytes += candidates.iter().map(|(_, s)| s).sum::<u64>();
                continue;
            }
            // Deleted outside the write lock, by a thread of its own, while the next
            // batches are condemned: deliveries wait only for the renames. It starts
            // with what a killed run condemned but did not delete.
            let done = std::sync::atomic::AtomicBool::new(false);
            let (n, b) = std::thread::scope(|scope| -> Result<(u64, u64)> {
                let deleter = scope.spawn(|| -> Result<()> {
                    loop {
                        let last = done.load(std::sync::atomic::Ordering::Acquire);
                        if self.blobs().empty_trash(&partition)? == 0 {
                            if last {
                                return Ok(());
                            }
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                    }
                });
                let condemned = (|| -> Result<(u64, u64)> {
                    let (mut n, mut b) = (0, 0);
                    for chunk in candidates.chunks(COLLECT_BATCH) {
                        let (store, part, chunk) =
                            (self.clone(), partition.clone(), chunk.to_vec());
                        let (bn, bb) =
                            self.write(move |conn| store.remove_batch(conn, &part, &chunk))?;
                        n += bn;
                        b += bb;
                    }
                    Ok((n, b))
                })();
                done.store(true, std::sync::atomic::Ordering::Release);
                let deleted = deleter.join().unwrap_or(Ok(()));
                let condemned = condemned?;
                deleted?;
                Ok(condemned)
            })?;
            blobs += n;
            bytes += b;
        }
        Ok((blobs, bytes))
    }

    /// Inside a write transaction: condemns each blob of `chunk` still unreferenced and
    /// unpinned (rule 1 of `orphans.rs`: it leaves its name under the write lock; the
    /// caller deletes it from the trash after the commit), and removes the per-GUID
    /// rows of those condemned.
    pub(super) fn remove_batch(
        &self,
        conn: &Connection,
        partition: &str,
        chunk: &[(Guid, u64)],
    ) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0, 0);
        for (guid, size) in chunk {
            if self.shared.pins.count(guid) > 0 || referenced(conn, guid)? {
                continue;
            }
            if !self.blobs().condemn(partition, guid)? {
                continue;
            }
            let key = &guid.as_bytes()[..];
            conn.prepare_cached("DELETE FROM summaries WHERE guid = ?1")?
                .execute(params![key])?;
            conn.prepare_cached("DELETE FROM pending_texts WHERE guid = ?1")?
                .execute(params![key])?;
            n += 1;
            bytes += size;
        }
        Ok((n, bytes))
    }
}

/// True when a record would still refer to `guid` after purging the records expunged
/// at or before `cutoff`.
fn referenced_after_purge(conn: &Connection, guid: &Guid, cutoff: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM records WHERE guid = ?1 AND NOT (expunged_modseq IS NOT NULL \
             AND expunged_at IS NOT NULL AND expunged_at <= ?2) LIMIT 1",
        )?
        .exists(params![&guid.as_bytes()[..], cutoff])?)
}
