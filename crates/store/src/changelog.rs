//! The change log: which users and mailboxes changed, in commit order.
//!
//! Every write transaction appends its entries in the same transaction as the change,
//! so an entry exists if and only if the change committed. A consumer (the rolling
//! replication client) reads from its acknowledged position, syncs what it read, and
//! acknowledges up to the last entry it handled; after a crash of either it resumes
//! from the last acknowledged position, so no change is skipped (some may be seen twice,
//! which replication tolerates).

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::ids::UniqueId;
use crate::store::Store;

/// One change log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log; strictly increasing in commit order.
    pub seq: u64,
    /// The user whose data changed.
    pub user: String,
    /// The mailbox that changed, or `None` for a user-level change (created, deleted,
    /// password, quota, subscriptions).
    pub mailbox: Option<UniqueId>,
    /// When it was logged (Unix seconds).
    pub at: i64,
}

impl Store {
    /// Up to `limit` entries with a position above `after`, oldest first.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, user_name, mailbox_uniqueid, at FROM changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after as i64, limit as i64], |r| {
                    Ok(Change {
                        seq: r.get::<_, i64>(0)? as u64,
                        user: r.get(1)?,
                        mailbox: r.get::<_, Option<String>>(2)?.map(UniqueId::from_db),
                        at: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// The position `consumer` has acknowledged (0 when it never has).
    pub fn changes_acked(&self, consumer: &str) -> Result<u64> {
        self.read(|conn| {
            let seq: Option<i64> = conn
                .query_row(
                    "SELECT seq FROM changelog_acks WHERE consumer = ?1",
                    [consumer],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(seq.unwrap_or(0) as u64)
        })
    }

    /// Records that `consumer` has handled every entry up to and including `seq`, and
    /// drops entries every consumer has handled. Never moves a position backwards.
    pub fn ack_changes(&self, consumer: &str, seq: u64) -> Result<()> {
        let consumer = consumer.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO changelog_acks (consumer, seq) VALUES (?1, ?2) \
                 ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
                params![consumer, seq as i64],
            )?;
            conn.execute(
                "DELETE FROM changelog WHERE seq <= (SELECT min(seq) FROM changelog_acks)",
                [],
            )?;
            Ok(())
        })
    }
}
