//! The change log: which users and mailboxes changed, in commit order.
//!
//! Every write transaction appends its entries in the same transaction as the change,
//! so an entry exists if and only if the change committed. A consumer (the rolling
//! replication client) reads from its acknowledged position, syncs what it read, and
//! acknowledges up to the last entry it handled; after a crash of either it resumes
//! from the last acknowledged position, so no change is skipped (some may be seen twice,
//! which replication tolerates).
//!
//! Writes a replica takes from its master by replication are not logged, unless the
//! store is configured to chain ([`StoreConfig::log_replicated`]): then each is logged
//! like a local write, through [`log_replicated`], so the replica's own rolling client
//! feeds a further replica (A → B → C).
//!
//! [`StoreConfig::log_replicated`]: crate::StoreConfig::log_replicated

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::ids::UniqueId;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// Whether replicated writes are logged ([`StoreConfig::log_replicated`]), captured
/// before a write transaction so the closure that runs in it can carry it.
///
/// [`StoreConfig::log_replicated`]: crate::StoreConfig::log_replicated
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain(bool);

impl Store {
    /// This store's chaining setting.
    pub(crate) fn chain(&self) -> Chain {
        Chain(self.shared.config.log_replicated)
    }
}

/// Logs a replicated write that touched `user` (and `mailbox`, or the user as a whole
/// for `None`) when the store chains; nothing otherwise. Called by each replicated
/// write inside its own transaction, last, so the entry commits with the write or not
/// at all.
pub(crate) fn log_replicated(
    conn: &Connection,
    chain: Chain,
    user: &str,
    mailbox: Option<&UniqueId>,
) -> Result<()> {
    if chain.0 {
        txn::log_change(conn, user, mailbox)?;
    }
    Ok(())
}

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
                .query_row_cached(
                    "SELECT seq FROM changelog_acks WHERE consumer = ?1",
                    [consumer],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(seq.unwrap_or(0) as u64)
        })
    }

    /// Records that `consumer` has handled every entry up to and including `seq`, and
    /// when (so `tern expire` can drop a consumer idle too long), and drops entries
    /// every consumer has handled. Never moves a position backwards.
    pub fn ack_changes(&self, consumer: &str, seq: u64) -> Result<()> {
        let consumer = consumer.to_owned();
        self.write(move |conn| {
            conn.execute_cached(
                "INSERT INTO changelog_acks (consumer, seq, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (consumer) DO UPDATE SET seq = max(seq, excluded.seq), at = excluded.at",
                params![consumer, seq as i64, crate::store::now()],
            )?;
            conn.execute_cached(
                "DELETE FROM changelog WHERE seq <= (SELECT min(seq) FROM changelog_acks)",
                [],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Quota, Store, StoreConfig, UserState};

    fn state(name: &str) -> UserState {
        UserState {
            name: name.to_owned(),
            password_hash: None,
            is_admin: false,
            quota: Quota::default(),
            subscriptions: vec!["INBOX".to_owned()],
            modseq: 0,
        }
    }

    #[test]
    fn replicated_writes_are_logged_only_when_chaining() {
        for chain in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = StoreConfig::new(dir.path());
            config.log_replicated = chain;
            let store = Store::open(config, crate::content::test_indexer()).unwrap();
            store.replica().apply_user_state(&state("carol")).unwrap();
            let logged: Vec<String> = store
                .changes_after(0, 100)
                .unwrap()
                .into_iter()
                .map(|c| c.user)
                .collect();
            let expected = if chain {
                vec!["carol".to_owned()]
            } else {
                vec![]
            };
            assert_eq!(logged, expected, "chain = {chain}");
        }
    }
}
