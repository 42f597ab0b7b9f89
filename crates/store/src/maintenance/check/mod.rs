//! `tern check`: finding (and with `--repair`, repairing) damage in a store, as Cyrus's
//! `reconstruct` and `quota -f` do.
//!
//! The check only reads. It opens the index read-only, outside [`Store::open`], so
//! that nothing runs that could change what it looks at (no migration, no orphan scan,
//! no text indexing), and so that a damaged index is reported rather than touched.
//! It may run while `tern serve` runs: each user is checked in one read snapshot, and
//! blobs younger than [`ORPHAN_GRACE_SECS`] are never called orphans (a delivery in
//! flight writes its blob before it commits its record).
//!
//! The repair ([`Store::repair`], in `repair.rs`) takes the findings and fixes each in
//! its own short write transaction, re-checking it there first; it never reuses a UID,
//! never lowers a modseq and never changes a UIDVALIDITY. A run killed at any moment
//! leaves a store that a later check (and repair) completes.

mod blobs;
mod findings;
mod index;
mod repair;
mod rows;
mod scan;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

pub use findings::{Finding, Place, Problem};
pub use repair::{RepairOptions, RepairOutcome, RepairReport, RECOVERED_MAILBOX};
pub use rows::repair_index;

use crate::blobs::BlobStore;
use crate::error::Result;
use crate::ids::Guid;
use crate::store::{StoreConfig, DEFAULT_PARTITION};

/// Blobs modified less than this many seconds ago are not reported as orphans: their
/// record may be about to commit.
pub const ORPHAN_GRACE_SECS: u64 = 120;

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Only these users (all when empty). Orphan blobs are looked for only in a check
    /// of the whole store or of whole users (not with `mailbox`).
    pub users: Vec<String>,
    /// Only the live mailbox of this name, of each user checked. User-level counters
    /// (quota usage, the modseq counter) need every mailbox and are skipped.
    pub mailbox: Option<String>,
    /// Read every blob and check that it hashes to its GUID.
    pub deep: bool,
}

/// What a check saw and found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Every problem, in the order found; pending garbage included (see
    /// [`Problem::is_pending`]).
    pub findings: Vec<Finding>,
    /// Users checked.
    pub users: u64,
    /// Mailboxes checked (tombstones included).
    pub mailboxes: u64,
    /// Records checked.
    pub records: u64,
    /// Blob files checked (each GUID once per partition).
    pub blobs: u64,
    /// Bytes read and hashed (`deep`).
    pub bytes_hashed: u64,
    /// Each blob looked at in this run, so a GUID shared by many records is looked at
    /// once per partition.
    seen: HashMap<(String, Guid), blobs::BlobState>,
}

impl CheckReport {
    /// The findings that are damage (not pending garbage).
    pub fn damage(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.problem.is_pending())
    }

    /// True when a fatal finding stopped the check.
    pub fn stopped(&self) -> bool {
        self.findings.iter().any(|f| f.problem.is_fatal())
    }
}

/// Checks the store `config` describes, reading only. Fails (an error, not a finding)
/// when the data directory holds no index or a user named in `options` does not exist.
pub fn check(config: &StoreConfig, options: &CheckOptions) -> Result<CheckReport> {
    let index_path = config.data_dir.join("index.sqlite3");
    let mut report = CheckReport::default();
    let conn = match index::open_and_verify(&index_path, &mut report.findings)? {
        Some(conn) => conn,
        None => return Ok(report),
    };
    let blobs = BlobStore::at(partitions(config));
    let users = scan::users(&conn, &options.users)?;
    for user in &users {
        scan::user(&conn, &blobs, user, options, &mut report)?;
    }
    if options.mailbox.is_none() {
        blobs::orphans(&conn, &blobs, &mut report)?;
    }
    if options.users.is_empty() && options.mailbox.is_none() {
        scan::store_wide(&conn, &blobs, &index_path, &mut report)?;
    }
    Ok(report)
}

/// The partitions as [`Store::open`](crate::Store::open) resolves them.
fn partitions(config: &StoreConfig) -> BTreeMap<String, PathBuf> {
    let mut partitions = config.partitions.clone();
    if partitions.is_empty() {
        partitions.insert(
            DEFAULT_PARTITION.to_owned(),
            config.data_dir.join("partitions").join(DEFAULT_PARTITION),
        );
    }
    partitions
}
