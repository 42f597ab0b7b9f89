//! Blobs no record references: discarding what a failed write left, the scan after
//! start-up for what a crash left, and the rule that makes removing a blob safe while
//! deliveries of the same GUID run.
//!
//! # The rule (blob collection races delivery)
//!
//! A write that finds its blob already present skips writing it and then submits a job
//! committing a record that points at it. A blob may therefore be removed only
//! 1. inside a write transaction (a writer job, or in another process inside
//!    its own write transaction: both hold the index's write lock), after checking in
//!    that same transaction that no record refers to its GUID ([`referenced`]); and
//! 2. every job that inserts a record checks, in its transaction, that the blob file is
//!    there ([`require_blob`], a stat) and otherwise fails with
//!    [`StoreError::BlobVanished`]; the caller writes the blob again and retries once.
//!
//! The write lock orders the two: either the removal comes first and the insert sees
//! the file gone, or the insert comes first and the removal sees its record (committed,
//! or earlier in the same batch). No record is ever committed without its blob.
//!
//! Within one process, writes in progress also pin their GUID ([`Pins`]) and a removal
//! skips a pinned blob, so the retry of rule 2 cannot be defeated again by another
//! failing write of the same message here; only another process's removal can make a
//! write fail (with a transient error) after its one retry.
//!
//! References are counted across all partitions, which is conservative: a mailbox
//! moving to another partition has its blobs copied there before its records follow.
//!
//! # The scan
//!
//! After [`Store::open`], a background thread removes, in each partition, temporary
//! files whose writing process is gone (`tmp/`, and the dot files a replica stages
//! beside the blobs), and blobs no record references that were written since the
//! last completed scan. A watermark file (`orphan-scan` in the partition's root)
//! holds when that scan started: a fan-out directory not modified since is not even
//! listed, and a blob older than it is never touched, so the scan is cheap and cannot
//! collect what the rule above has not had a chance to protect. A crash between a
//! blob's write and its record's commit (`kill -9` during APPEND) is thus cleaned up
//! after the next start.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::SystemTime;

use rusqlite::Connection;

use crate::blobs::{process_token, temp_owner, BlobStore};
use crate::error::{Result, StoreError};
use crate::ids::Guid;
use crate::store::Store;

/// The watermark file in each partition's root: Unix seconds, as text.
const WATERMARK_FILE: &str = "orphan-scan";

/// Seconds the watermark is set before the scan's start, for coarse file times and a
/// clock that steps back a little.
const SLACK_SECS: u64 = 5;

/// Most GUIDs re-checked and removed in one writer job, so a large first scan never
/// holds the write lock for long.
const REMOVE_BATCH: usize = 256;

/// Fails with [`StoreError::BlobVanished`] unless the blob is on disk with `size`
/// bytes. Called inside every record-inserting job (rule 2 above).
pub(crate) fn require_blob(
    blobs: &BlobStore,
    partition: &str,
    guid: &Guid,
    size: u64,
) -> Result<()> {
    if blobs.contains(partition, guid, size)? {
        return Ok(());
    }
    Err(StoreError::BlobVanished {
        guid: guid.to_hex(),
        partition: partition.to_owned(),
    })
}

/// True when some record, in any mailbox of any partition, live or expunged, refers
/// to `guid` (as seen by the transaction `conn` holds).
pub(crate) fn referenced(conn: &Connection, guid: &Guid) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM records WHERE guid = ?1 LIMIT 1")?
        .exists([&guid.as_bytes()[..]])?)
}

/// GUIDs that writes in this process are storing right now, with how many writes.
#[derive(Default)]
pub(crate) struct Pins(Mutex<HashMap<Guid, usize>>);

/// A write's pin on a GUID, released when dropped.
pub(crate) struct Pin<'a> {
    pins: &'a Pins,
    guid: Guid,
}

impl Pins {
    /// Pins `guid` until the returned guard is dropped.
    pub(crate) fn pin(&self, guid: Guid) -> Pin<'_> {
        *self.lock().entry(guid).or_insert(0) += 1;
        Pin { pins: self, guid }
    }

    pub(crate) fn count(&self, guid: &Guid) -> usize {
        self.lock().get(guid).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Guid, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let mut pins = self.pins.lock();
        if let Some(n) = pins.get_mut(&self.guid) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.guid);
            }
        }
    }
}

/// Removes each blob of `guids` in `partition` that no record refers to and no write
/// but the caller's (`own_pins`: 1 for a failed write, 0 for the scan) has pinned;
/// runs inside a write transaction (rule 1 above). Returns how many were removed.
fn remove_unreferenced(
    conn: &Connection,
    blobs: &BlobStore,
    pins: &Pins,
    own_pins: usize,
    partition: &str,
    guids: &[Guid],
) -> Result<usize> {
    let mut removed = 0;
    for guid in guids {
        if pins.count(guid) <= own_pins
            && !referenced(conn, guid)?
            && blobs.contains_any(partition, guid)?
        {
            blobs.remove(partition, guid)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What one scan of a partition removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanReport {
    /// Temporary files of processes that are gone.
    pub(crate) temps: usize,
    /// Unreferenced blobs.
    pub(crate) blobs: usize,
}

/// Set when the scan started at open has finished (whatever its outcome).
#[derive(Default)]
pub(crate) struct ScanDone {
    done: Mutex<bool>,
    cond: Condvar,
}

impl ScanDone {
    pub(crate) fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            done = self.cond.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Store {
    /// Removes the blob of `guid` a write (holding one pin on it) newly put in
    /// `partition` for a transaction that did not commit, unless a record refers to it
    /// by now or another write here pinned it (rule 1 above). Failures are logged: the
    /// blob then stays until a later scan.
    pub(crate) fn discard_blob(&self, partition: &str, guid: Guid) {
        let (blobs, pins, part) = (
            self.shared.blobs.clone(),
            self.shared.pins.clone(),
            partition.to_owned(),
        );
        let removal =
            self.write(move |conn| remove_unreferenced(conn, &blobs, &pins, 1, &part, &[guid]));
        if let Err(e) = removal {
            tracing::warn!(error = %e, partition, "cannot remove the blob of a failed write");
        }
    }

    /// Starts the scan for orphans (see the module documentation) on a thread of its
    /// own, so that opening stays fast.
    pub(crate) fn start_orphan_scan(&self) {
        let store = self.clone();
        let done = self.shared.orphan_scan.clone();
        let spawned = std::thread::Builder::new()
            .name("tern-orphan-scan".into())
            .spawn(move || {
                let roots: Vec<(String, std::path::PathBuf)> = store
                    .blobs()
                    .roots()
                    .map(|(n, r)| (n.to_owned(), r.to_path_buf()))
                    .collect();
                for (name, root) in roots {
                    match store.scan_partition(&name, &root) {
                        Ok(r) if r != ScanReport::default() => tracing::info!(
                            partition = name,
                            temps = r.temps,
                            blobs = r.blobs,
                            "removed files of writes that never committed"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(partition = name, error = %e, "orphan scan failed")
                        }
                    }
                }
                done.set();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the orphan scan");
            self.shared.orphan_scan.set();
        }
    }

    /// Blocks until the scan for orphans started by [`Store::open`] has finished.
    /// Only tests and tools that count blob files need this; the scan never removes
    /// anything a committed record, or a write in progress, relies on.
    pub fn wait_for_orphan_scan(&self) {
        self.shared.orphan_scan.wait();
    }

    /// Scans one partition: temporary files, then recent unreferenced blobs, then
    /// moves the watermark.
    fn scan_partition(&self, partition: &str, root: &Path) -> Result<ScanReport> {
        let started = unix_secs(SystemTime::now());
        let since = read_watermark(root);
        let mut report = ScanReport::default();
        let tmp = root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                if stale_temp(&entry.file_name().to_string_lossy())
                    && fs::remove_file(entry.path()).is_ok()
                {
                    report.temps += 1;
                }
            }
        }
        // Blobs a killed `tern expire` condemned but did not delete.
        if let Err(e) = self.shared.blobs.empty_trash(partition) {
            tracing::warn!(partition, error = %e, "cannot empty the trash");
        }
        let blobs_dir = root.join("blobs");
        let mut candidates = Vec::new();
        let fanout = fs::read_dir(&blobs_dir).map_err(|e| StoreError::io("list", &blobs_dir, e))?;
        for dir in fanout.flatten() {
            // Adding or renaming a file into a directory updates its time: an older
            // directory holds nothing new.
            if dir.metadata().map_or(true, |m| modified(&m) < since) {
                continue;
            }
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    if name.ends_with(".tmp")
                        && stale_temp(&name)
                        && fs::remove_file(file.path()).is_ok()
                    {
                        report.temps += 1;
                    }
                    continue;
                }
                let Ok(guid) = name.parse::<Guid>() else {
                    continue;
                };
                if file.metadata().is_ok_and(|m| modified(&m) >= since) {
                    candidates.push(guid);
                }
            }
        }
        // Most candidates are referenced: filter on a reader, so the writer only
        // re-checks the few that are not.
        let unreferenced: Vec<Guid> = self.read(|conn| {
            let mut out = Vec::new();
            for guid in candidates {
                if !referenced(conn, &guid)? {
                    out.push(guid);
                }
            }
            Ok(out)
        })?;
        for chunk in unreferenced.chunks(REMOVE_BATCH) {
            let (blobs, pins) = (self.shared.blobs.clone(), self.shared.pins.clone());
            let (part, chunk) = (partition.to_owned(), chunk.to_vec());
            report.blobs +=
                self.write(move |conn| remove_unreferenced(conn, &blobs, &pins, 0, &part, &chunk))?;
        }
        write_watermark(root, started.saturating_sub(SLACK_SECS));
        Ok(report)
    }
}

/// True for a temporary file whose writer is gone: a process that no longer runs, an
/// earlier process that had our pid, or an older tern that did not name its files.
fn stale_temp(name: &str) -> bool {
    match temp_owner(name) {
        None => true,
        Some((pid, token)) if pid == std::process::id() => token != process_token(),
        Some((pid, _)) => !process_alive(pid),
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn modified(meta: &fs::Metadata) -> u64 {
    meta.modified().map_or(u64::MAX, unix_secs)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The start (less the slack) of the last completed scan; 0 (scan everything) when
/// there was none or the file is unreadable.
fn read_watermark(root: &Path) -> u64 {
    fs::read_to_string(root.join(WATERMARK_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Best effort: a watermark that cannot be written (a full disk) only makes the next
/// scan look further back.
fn write_watermark(root: &Path, value: u64) {
    let tmp = root.join(format!("{WATERMARK_FILE}.new"));
    let done = fs::write(&tmp, format!("{value}\n"))
        .and_then(|()| fs::rename(&tmp, root.join(WATERMARK_FILE)));
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        tracing::debug!(error = %e, "cannot move the orphan scan watermark");
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Delivered, DeliveryOptions, DeliveryTarget, Guid, Store, StoreConfig, DEFAULT_PARTITION,
    };

    /// A failed write (of another process: no pin) discarding its blob while
    /// deliveries of the same message find it present and skip writing it: whatever the interleaving, every committed record
    /// has its blob (the delivery's job sees the blob gone and writes it again).
    #[test]
    fn discarding_races_deliveries_of_the_same_message_safely() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("b", None, false).unwrap();
        let message = |i: u32| format!("Subject: race {i}\r\n\r\nbody\r\n").into_bytes();
        const ROUNDS: u32 = 300;
        std::thread::scope(|s| {
            let failing = store.clone();
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let m = message(i);
                    let guid = Guid::of(&m);
                    // What an APPEND refused in its job does: wrote the blob, discards it.
                    // Unpinned, as another process's failed write would be (pins
                    // are per process): the delivery must rely on its stat and retry.
                    failing
                        .blobs()
                        .put_with_guid(DEFAULT_PARTITION, &guid, &m)
                        .unwrap();
                    failing.discard_blob(DEFAULT_PARTITION, guid);
                }
            });
            let delivering = store.clone();
            s.spawn(move || {
                let to = [DeliveryTarget {
                    user: "b".into(),
                    folder: None,
                }];
                for i in 0..ROUNDS {
                    let r = delivering.deliver(&message(i), &to, &DeliveryOptions::default());
                    assert!(matches!(r[0], Ok(Delivered::Stored { .. })), "{r:?}");
                }
            });
        });
        let inbox = store.mailbox("b", "INBOX").unwrap().unwrap();
        let owner = crate::Actor {
            name: "b".into(),
            is_admin: false,
        };
        let (_, records) = store.records(&owner, &inbox.uniqueid, false).unwrap();
        assert_eq!(records.len(), ROUNDS as usize);
        for r in &records {
            assert!(
                store
                    .blobs()
                    .contains(DEFAULT_PARTITION, &r.guid, r.size)
                    .unwrap(),
                "uid {} has no blob",
                r.uid
            );
        }
        // And nothing unreferenced stays: each discard either removed its blob or
        // found the record that keeps it.
        assert_eq!(
            store.blobs().list(DEFAULT_PARTITION).unwrap().len(),
            ROUNDS as usize
        );
    }
}
