//! What replication reads from a store, on either side: a user's whole user-level
//! state, a mailbox's changes in modseq order, digests, which blobs are held, and the
//! master's list of deferred (quarantined) syncs.
//!
//! These calls act for the server itself, not for a logged-in user: replication sees
//! every mailbox whatever its ACL. The replica's writes are in `replicated.rs`.

use rusqlite::{params, OptionalExtension};

use crate::digest::{recompute_records_digest, user_digest, user_row, RecordsDigest};
use crate::error::{Result, StoreError};
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::Mailbox;
use crate::names::normalize_user;
use crate::records::{live, Record};
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;
use crate::users::Quota;

/// A user's user-level state: what `USER` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// Canonical user name.
    pub name: String,
    /// The Argon2 PHC string, or `None` when the user has no password.
    pub password_hash: Option<String>,
    /// Administrator bit.
    pub is_admin: bool,
    /// Quota limits.
    pub quota: Quota,
    /// Subscribed names, sorted.
    pub subscriptions: Vec<String>,
    /// The user's modseq counter (informational; never copied).
    pub modseq: Modseq,
}

impl UserState {
    /// The user digest (`docs/replication.md`, section 4).
    pub fn digest(&self) -> String {
        user_digest(
            self.password_hash.as_deref(),
            self.is_admin,
            self.quota.storage,
            self.quota.messages,
            &self.subscriptions,
        )
    }
}

/// One mailbox's changes above a modseq, read in one snapshot.
#[derive(Debug, Clone)]
pub struct MailboxChanges {
    /// The mailbox's state at that snapshot.
    pub mailbox: Mailbox,
    /// Its annotations, by key.
    pub annotations: Vec<(String, String)>,
    /// Its keyword table, sorted (for `MailboxState::keywords`).
    pub keywords: Vec<String>,
    /// Records whose modseq is above the asked one, by ascending modseq then UID.
    pub records: Vec<Record>,
}

impl Store {
    /// The user-level state of `user`, or `None` if there is no such user.
    pub fn user_state(&self, user: &str) -> Result<Option<UserState>> {
        let Ok(name) = normalize_user(user) else {
            return Ok(None);
        };
        self.read(|conn| {
            let id: Option<(i64, i64)> = conn
                .query_row_cached(
                    "SELECT id, modseq FROM users WHERE name = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, modseq)) = id else {
                return Ok(None);
            };
            let (password_hash, is_admin, storage, messages, subscriptions) = user_row(conn, id)?;
            Ok(Some(UserState {
                name: name.clone(),
                password_hash,
                is_admin,
                quota: Quota { storage, messages },
                subscriptions,
                modseq: modseq as Modseq,
            }))
        })
    }

    /// The live mailbox `mailbox` with every record whose modseq is above `since`,
    /// ordered by modseq (then UID), its annotations and its digest, from one snapshot.
    pub fn changes_since(&self, mailbox: &UniqueId, since: Modseq) -> Result<MailboxChanges> {
        self.read(|conn| {
            let mailbox = live(conn, mailbox)?;
            let mut records = crate::record_changes::changed_records(conn, mailbox.id, since)?;
            records.sort_by_key(|r| (r.modseq, r.uid));
            let annotations = annotations_of(conn, mailbox.id)?;
            let keywords = crate::keywords::keywords_of(conn, mailbox.id)?;
            Ok(MailboxChanges {
                mailbox,
                annotations,
                keywords,
                records,
            })
        })
    }

    /// Every record of the live mailbox (expunged ones included) in UID order, with
    /// the mailbox state (and so its digest), from one snapshot.
    pub fn all_records(&self, mailbox: &UniqueId) -> Result<(Mailbox, Vec<Record>)> {
        self.read(|conn| {
            let mailbox = live(conn, mailbox)?;
            let sql = format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 ORDER BY uid",
                Record::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let records = stmt
                .query_map([mailbox.id], Record::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok((mailbox, records))
        })
    }

    /// Which of `guids` this store holds, complete, in any partition.
    pub fn held_blobs(&self, guids: &[Guid]) -> Vec<Guid> {
        guids
            .iter()
            .filter(|g| !self.blobs().holders(g).is_empty())
            .copied()
            .collect()
    }

    /// The blob `guid` of `size` bytes from whichever partition holds it.
    pub fn read_blob(&self, guid: &Guid, size: u64) -> Result<Vec<u8>> {
        for (partition, len) in self.blobs().holders(guid) {
            if len == size {
                return self.blobs().read(&partition, guid, size);
            }
        }
        Err(StoreError::BlobNotHeld(guid.to_hex()))
    }

    /// Prepares a mailbox for merging in changes from a replica that got ahead: the
    /// owner's modseq counter is raised to at least `modseq` and the mailbox's last UID
    /// to at least `last_uid`, so the merged changes are newer than anything the replica
    /// has seen and no UID it handed out is reused. Logged as a change of the mailbox.
    pub fn raise_for_merge(&self, mailbox: &UniqueId, modseq: Modseq, last_uid: Uid) -> Result<()> {
        let id = mailbox.clone();
        self.write(move |conn| {
            let mailbox = live(conn, &id)?;
            conn.execute_cached(
                "UPDATE users SET modseq = max(modseq, ?2) WHERE id = ?1",
                params![mailbox.user_id, modseq as i64],
            )?;
            conn.execute_cached(
                "UPDATE mailboxes SET last_uid = max(last_uid, ?2) WHERE id = ?1",
                params![mailbox.id, last_uid as i64],
            )?;
            let m = txn::next_modseq(conn, mailbox.user_id)?;
            txn::touch_mailbox(conn, &mailbox, m)
        })
    }

    /// At most `limit` records of the live mailbox (expunged ones included) with a UID
    /// of at least `from`, in UID order, with the mailbox state, from one snapshot:
    /// a large mailbox read in bounded pieces (each an index range scan).
    pub fn records_from(
        &self,
        mailbox: &UniqueId,
        from: Uid,
        limit: usize,
    ) -> Result<(Mailbox, Vec<Record>)> {
        self.read(|conn| {
            let mailbox = live(conn, mailbox)?;
            let sql = format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid LIMIT ?3",
                Record::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let records = stmt
                .query_map(
                    params![mailbox.id, from, limit.min(i64::MAX as usize) as i64],
                    Record::from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok((mailbox, records))
        })
    }

    /// The records digest of the live mailbox computed afresh from its records, for
    /// checks: it must always equal the maintained `Mailbox::digest` read in the same
    /// snapshot (returned alongside).
    pub fn recompute_digest(&self, mailbox: &UniqueId) -> Result<(Mailbox, RecordsDigest)> {
        self.read(|conn| {
            let m = live(conn, mailbox)?;
            let d = recompute_records_digest(conn, m.id)?;
            Ok((m, d))
        })
    }

    /// Sets a user or mailbox aside for `consumer` (a rolling sync that keeps failing
    /// on it), durably, so the change log can move past its entries.
    pub fn defer_sync(&self, consumer: &str, user: &str, mailbox: Option<&UniqueId>) -> Result<()> {
        let (consumer, user) = (consumer.to_owned(), user.to_owned());
        let mailbox = mailbox.map(|m| m.as_str().to_owned()).unwrap_or_default();
        self.write(move |conn| {
            conn.execute_cached(
                "INSERT OR IGNORE INTO sync_deferred (consumer, user_name, mailbox_uniqueid, since) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![consumer, user, mailbox, crate::store::now()],
            )?;
            Ok(())
        })
    }

    /// Everything set aside for `consumer`, as (user, mailbox or `None` for the whole
    /// user).
    pub fn deferred_syncs(&self, consumer: &str) -> Result<Vec<(String, Option<UniqueId>)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_name, mailbox_uniqueid FROM sync_deferred WHERE consumer = ?1 \
                 ORDER BY user_name, mailbox_uniqueid",
            )?;
            let rows = stmt
                .query_map([consumer], |r| {
                    let m: String = r.get(1)?;
                    Ok((r.get(0)?, (!m.is_empty()).then(|| UniqueId::from_db(m))))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Forgets what was set aside for `consumer` about `user`, after a successful sync.
    pub fn clear_deferred(&self, consumer: &str, user: &str) -> Result<()> {
        let (consumer, user) = (consumer.to_owned(), user.to_owned());
        self.write(move |conn| {
            conn.execute_cached(
                "DELETE FROM sync_deferred WHERE consumer = ?1 AND user_name = ?2",
                params![consumer, user],
            )?;
            Ok(())
        })
    }
}

/// A mailbox's annotations by key, inside a caller's transaction.
pub(crate) fn annotations_of(
    conn: &rusqlite::Connection,
    mailbox_id: i64,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT key, value FROM annotations WHERE mailbox_id = ?1 ORDER BY key")?;
    let rows = stmt
        .query_map([mailbox_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

impl Mailbox {
    /// True while the mailbox is live (not deleted).
    pub fn is_live(&self) -> bool {
        self.tombstone_modseq.is_none()
    }
}
