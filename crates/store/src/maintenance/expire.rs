//! `tern expire`'s engine: purging expunged records and tombstones past an age, then
//! collecting the blobs no record refers to any more, then pruning the
//! duplicate-delivery table and the change log.
//!
//! Every step runs in short write transactions of at most [`BATCH`] rows, so a running
//! `tern serve` (another process sharing the index, in WAL mode) never waits longer than
//! one of them. A step that fails for one mailbox is reported and the run goes on.
//!
//! Purging is local and silent: it allocates no modseq. It raises the mailbox's
//! DELETEDMODSEQ to the highest modseq purged, so a QRESYNC client from before the purge
//! gets every unknown UID as VANISHED (EARLIER) and a replica further behind is reset; it
//! logs the mailbox in the change log (no modseq) so a rolling replica learns of it.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::sql::Cached;
use crate::store::{now, Store};
use crate::txn;

/// Most rows changed in one write transaction.
pub(crate) const BATCH: usize = 500;

/// What one expire run does; ages are in seconds, `None` skips the step.
#[derive(Debug, Clone, Default)]
pub struct ExpireOptions {
    /// Only these users (all when empty).
    pub users: Vec<String>,
    /// Count what would be done, change nothing.
    pub dry_run: bool,
    /// Purge expunged records expunged at least this long ago.
    pub purge_expunged: Option<u64>,
    /// Remove tombstones of mailboxes deleted at least this long ago.
    pub purge_deleted: Option<u64>,
    /// Collect blobs no record refers to (after the purges).
    pub collect_blobs: bool,
    /// Forget duplicate-delivery entries older than this.
    pub delivery_window: Option<u64>,
    /// Drop change-log consumers that have not acknowledged for this long.
    pub consumer_max_idle: Option<u64>,
}

/// What an expire run did (or, dry, would do) for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserExpireReport {
    /// The user.
    pub user: String,
    /// Expunged records purged.
    pub records_purged: u64,
    /// Tombstones removed.
    pub mailboxes_removed: u64,
    /// Mailboxes that failed, with the error.
    pub failures: Vec<String>,
}

/// What a whole expire run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireReport {
    /// Per user, in name order.
    pub users: Vec<UserExpireReport>,
    /// Blob files removed (across partitions).
    pub blobs_freed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Duplicate-delivery entries forgotten.
    pub deliveries_pruned: u64,
    /// Change-log entries removed.
    pub changes_pruned: u64,
    /// Change-log consumers dropped for being idle too long.
    pub consumers_dropped: Vec<String>,
    /// Failures outside any user (blob collection, pruning).
    pub failures: Vec<String>,
}

impl ExpireReport {
    /// Records purged over all users.
    pub fn records_purged(&self) -> u64 {
        self.users.iter().map(|u| u.records_purged).sum()
    }

    /// Tombstones removed over all users.
    pub fn mailboxes_removed(&self) -> u64 {
        self.users.iter().map(|u| u.mailboxes_removed).sum()
    }

    /// True when any part failed.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty() || self.users.iter().any(|u| !u.failures.is_empty())
    }
}

impl Store {
    /// Runs one expire pass (see the module documentation). Failures of a mailbox or a
    /// step are in the report, and the rest goes on; only a failure to list the users
    /// is an error. Never removes a blob a committed record refers to.
    pub fn expire(&self, options: &ExpireOptions) -> Result<ExpireReport> {
        // The scan started at open collects unreferenced blobs too: let it finish
        // first, so what this run frees is counted in its report.
        self.wait_for_orphan_scan();
        let now = now();
        let cutoff = |age: u64| now.saturating_sub(i64::try_from(age).unwrap_or(i64::MAX));
        let mut report = ExpireReport::default();
        let users: Vec<(i64, String)> = self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, name FROM users ORDER BY name")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
            Ok(rows)
        })?;
        for wanted in &options.users {
            if !users.iter().any(|(_, n)| n == wanted) {
                report.failures.push(format!("no such user: {wanted}"));
            }
        }
        let purged_any = std::cell::Cell::new(false);
        for (id, name) in users {
            if !options.users.is_empty() && !options.users.contains(&name) {
                continue;
            }
            let mut user = UserExpireReport {
                user: name.clone(),
                ..Default::default()
            };
            if let Some(age) = options.purge_expunged {
                self.purge_user(id, &name, cutoff(age), options.dry_run, &mut user);
            }
            if let Some(age) = options.purge_deleted {
                self.remove_tombstones(id, &name, cutoff(age), options.dry_run, &mut user);
            }
            if user.records_purged > 0 {
                purged_any.set(true);
            }
            report.users.push(user);
        }
        if options.collect_blobs {
            match self.collect_blobs(options.dry_run, options.purge_expunged.map(cutoff)) {
                Ok((n, bytes)) => {
                    report.blobs_freed = n;
                    report.bytes_freed = bytes;
                }
                Err(e) => report.failures.push(format!("blob collection: {e}")),
            }
            if !options.dry_run && purged_any.get() {
                // Texts of GUIDs no record holds; a failure only delays their removal.
                if let Err(e) = self.sweep_text_index() {
                    tracing::warn!(error = %e, "cannot sweep the full-text index");
                }
            }
        }
        if let Some(window) = options.delivery_window {
            match self.prune_deliveries(cutoff(window), options.dry_run) {
                Ok(n) => report.deliveries_pruned = n,
                Err(e) => report.failures.push(format!("delivery table: {e}")),
            }
        }
        match self.prune_changelog(options.consumer_max_idle.map(cutoff), options.dry_run) {
            Ok((n, dropped)) => {
                report.changes_pruned = n;
                report.consumers_dropped = dropped;
            }
            Err(e) => report.failures.push(format!("change log: {e}")),
        }
        Ok(report)
    }

    /// Purges the user's records expunged at or before `cutoff`, mailbox by mailbox.
    fn purge_user(
        &self,
        user_id: i64,
        user: &str,
        cutoff: i64,
        dry_run: bool,
        report: &mut UserExpireReport,
    ) {
        let mailboxes = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT m.id, m.name FROM mailboxes m JOIN records r ON r.mailbox_id = m.id \
                 WHERE m.user_id = ?1 AND r.expunged_modseq IS NOT NULL \
                 AND r.expunged_at IS NOT NULL AND r.expunged_at <= ?2",
            )?;
            let rows = stmt
                .query_map(params![user_id, cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
            Ok(rows)
        });
        let mailboxes = match mailboxes {
            Ok(m) => m,
            Err(e) => return report.failures.push(format!("{user}: {e}")),
        };
        for (mailbox_id, name) in mailboxes {
            let result = if dry_run {
                self.read(move |conn| count_expired(conn, mailbox_id, cutoff))
            } else {
                self.purge_mailbox(user, mailbox_id, cutoff)
            };
            match result {
                Ok(n) => report.records_purged += n,
                Err(e) => report.failures.push(format!("{user}/{name}: {e}")),
            }
        }
    }

    /// Purges one mailbox in batches; returns how many records went.
    fn purge_mailbox(&self, user: &str, mailbox_id: i64, cutoff: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let user = user.to_owned();
            let n = self.write(move |conn| purge_batch(conn, &user, mailbox_id, cutoff))?;
            total += n as u64;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// Removes the user's tombstones made at or before `cutoff`, one per transaction.
    fn remove_tombstones(
        &self,
        user_id: i64,
        user: &str,
        cutoff: i64,
        dry_run: bool,
        report: &mut UserExpireReport,
    ) {
        let tombstones = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, uniqueid FROM mailboxes WHERE user_id = ?1 \
                 AND tombstone_modseq IS NOT NULL AND tombstone_at IS NOT NULL AND tombstone_at <= ?2",
            )?;
            let rows = stmt
                .query_map(params![user_id, cutoff], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<Vec<(i64, String, String)>>>()?;
            Ok(rows)
        });
        let tombstones = match tombstones {
            Ok(t) => t,
            Err(e) => return report.failures.push(format!("{user}: {e}")),
        };
        for (id, name, uniqueid) in tombstones {
            if dry_run {
                report.mailboxes_removed += 1;
                continue;
            }
            let result = self.write(move |conn| remove_tombstone(conn, id, &uniqueid, cutoff));
            match result {
                Ok(true) => report.mailboxes_removed += 1,
                Ok(false) => {} // restored or changed meanwhile
                Err(e) => report
                    .failures
                    .push(format!("{user}/{name} (deleted): {e}")),
            }
        }
    }

    /// Forgets duplicate-delivery entries older than `cutoff`.
    fn prune_deliveries(&self, cutoff: i64, dry_run: bool) -> Result<u64> {
        if dry_run {
            return self.read(move |conn| {
                Ok(conn.query_row_cached(
                    "SELECT count(*) FROM deliveries WHERE delivered_at < ?1",
                    [cutoff],
                    |r| r.get::<_, i64>(0),
                )? as u64)
            });
        }
        let mut total = 0;
        loop {
            let n = self.write(move |conn| {
                Ok(conn.execute_cached(
                    "DELETE FROM deliveries WHERE rowid IN \
                     (SELECT rowid FROM deliveries WHERE delivered_at < ?1 LIMIT ?2)",
                    params![cutoff, BATCH as i64],
                )?)
            })?;
            total += n as u64;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// Drops consumers idle since before `idle_cutoff` (logged: they must do a full sync
    /// next), then removes change-log entries every remaining consumer has acknowledged.
    fn prune_changelog(
        &self,
        idle_cutoff: Option<i64>,
        dry_run: bool,
    ) -> Result<(u64, Vec<String>)> {
        let idle: Vec<String> = match idle_cutoff {
            None => Vec::new(),
            Some(cutoff) => self.read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT consumer FROM changelog_acks WHERE at < ?1 ORDER BY consumer",
                )?;
                let rows = stmt
                    .query_map([cutoff], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(rows)
            })?,
        };
        if dry_run {
            let dropped = idle.clone();
            let n = self.read(move |conn| {
                let floor = acked_floor(conn, &dropped)?;
                Ok(conn.query_row_cached(
                    "SELECT count(*) FROM changelog WHERE seq <= ?1",
                    [floor],
                    |r| r.get::<_, i64>(0),
                )? as u64)
            })?;
            return Ok((n, idle));
        }
        let mut dropped = Vec::new();
        if let Some(cutoff) = idle_cutoff {
            for consumer in idle {
                let c = consumer.clone();
                let gone = self.write(move |conn| {
                    Ok(conn.execute_cached(
                        "DELETE FROM changelog_acks WHERE consumer = ?1 AND at < ?2",
                        params![c, cutoff],
                    )? > 0)
                })?;
                if gone {
                    tracing::warn!(
                        consumer,
                        "change-log consumer idle too long: dropped; it must do a full sync"
                    );
                    dropped.push(consumer);
                }
            }
        }
        let mut total = 0;
        loop {
            let n = self.write(|conn| {
                let floor = acked_floor(conn, &[])?;
                Ok(conn.execute_cached(
                    "DELETE FROM changelog WHERE seq IN \
                     (SELECT seq FROM changelog WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                    params![floor, BATCH as i64],
                )?)
            })?;
            total += n as u64;
            if n < BATCH {
                return Ok((total, dropped));
            }
        }
    }
}

/// The highest change-log position every consumer (but `except`) has acknowledged.
/// With no consumer, nothing reads the log (a consumer that registers later starts
/// with a full sync), so all of it may go.
fn acked_floor(conn: &Connection, except: &[String]) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT consumer, seq FROM changelog_acks")?;
    let acks = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let remaining: Vec<i64> = acks
        .into_iter()
        .filter(|(c, _)| !except.contains(c))
        .map(|(_, s)| s)
        .collect();
    match remaining.iter().min() {
        Some(&min) => Ok(min),
        // No consumer: nobody reads the log, and a new one starts with a full sync.
        None => Ok(conn.query_row_cached(
            "SELECT coalesce(max(seq), 0) FROM changelog",
            [],
            |r| r.get(0),
        )?),
    }
}

/// Records of `mailbox_id` expunged at or before `cutoff`: what [`purge_batch`] would
/// purge (a record with an expunge time but live again, from an index written before
/// replication cleared it, is not).
fn count_expired(conn: &Connection, mailbox_id: i64, cutoff: i64) -> Result<u64> {
    Ok(conn.query_row_cached(
        "SELECT count(*) FROM records WHERE mailbox_id = ?1 AND expunged_modseq IS NOT NULL \
         AND expunged_at IS NOT NULL AND expunged_at <= ?2",
        params![mailbox_id, cutoff],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

/// Purges up to [`BATCH`] records of one mailbox expunged at or before `cutoff`, raising
/// DELETEDMODSEQ to the highest modseq among them (never lowering it), logs the
/// mailbox in the change log without a modseq, and prunes its log of changed ranges.
fn purge_batch(conn: &Connection, user: &str, mailbox_id: i64, cutoff: i64) -> Result<usize> {
    let rows: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT uid, max(modseq, coalesce(expunged_modseq, 0)) FROM records \
             WHERE mailbox_id = ?1 AND expunged_modseq IS NOT NULL \
             AND expunged_at IS NOT NULL AND expunged_at <= ?2 LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![mailbox_id, cutoff, BATCH as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let mut delete =
        conn.prepare_cached("DELETE FROM records WHERE mailbox_id = ?1 AND uid = ?2")?;
    let mut highest = 0;
    for (uid, modseq) in &rows {
        delete.execute(params![mailbox_id, uid])?;
        highest = highest.max(*modseq);
    }
    conn.execute_cached(
        "UPDATE mailboxes SET deleted_modseq = max(deleted_modseq, ?2) WHERE id = ?1",
        params![mailbox_id, highest],
    )?;
    let uniqueid: String = conn.query_row_cached(
        "SELECT uniqueid FROM mailboxes WHERE id = ?1",
        [mailbox_id],
        |r| r.get(0),
    )?;
    txn::log_change(conn, user, Some(&crate::ids::UniqueId::from_db(uniqueid)))?;
    // The log of changed ranges is bounded by the mailbox's size, which just fell.
    crate::record_changes::prune(conn, mailbox_id)?;
    Ok(rows.len())
}

/// Removes one tombstone if it still is one made at or before `cutoff`, with the rows
/// that name it; returns whether it went.
fn remove_tombstone(conn: &Connection, id: i64, uniqueid: &str, cutoff: i64) -> Result<bool> {
    let still: bool = conn
        .prepare_cached(
            "SELECT 1 FROM mailboxes WHERE id = ?1 AND tombstone_modseq IS NOT NULL \
             AND tombstone_at IS NOT NULL AND tombstone_at <= ?2",
        )?
        .exists(params![id, cutoff])?;
    if !still {
        return Ok(false);
    }
    conn.execute_cached("DELETE FROM records WHERE mailbox_id = ?1", [id])?;
    crate::record_changes::forget(conn, id)?;
    conn.execute_cached("DELETE FROM annotations WHERE mailbox_id = ?1", [id])?;
    conn.execute_cached("DELETE FROM mailbox_keywords WHERE mailbox_id = ?1", [id])?;
    conn.execute_cached(
        "DELETE FROM deliveries WHERE mailbox_uniqueid = ?1",
        [uniqueid],
    )?;
    conn.execute_cached(
        "DELETE FROM sync_deferred WHERE mailbox_uniqueid = ?1",
        [uniqueid],
    )?;
    conn.execute_cached("DELETE FROM mailboxes WHERE id = ?1", [id])?;
    Ok(true)
}
