//! Replicated writes: how a replica applies what its master sends
//! (`docs/replication.md`, section 5).
//!
//! A replicated write is silent: it keeps the master's UIDs, modseqs and dates exactly,
//! never allocates a modseq, and is not entered in the replica's change log (unless the
//! store chains: `changelog::log_replicated`, called last in each write). Each call
//! is one transaction; an UPDATE's blobs are made durable together before it commits
//! (`incoming.rs`).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::changelog::log_replicated;
use crate::content::insert_index;
use crate::digest::{apply_delta, set_flags, user_row, RecordsDigest};
use crate::error::{Result, StoreError};
use crate::flags::Flags;
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::Mailbox;
use crate::names::{normalize_mailbox, normalize_user};
use crate::replication::UserState;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;
use crate::users::add_usage;

/// A mailbox's state as the master sends it with an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxState {
    /// Owner-relative name.
    pub name: String,
    /// Partition.
    pub partition: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Last UID assigned.
    pub last_uid: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: Modseq,
    /// DELETEDMODSEQ.
    pub deleted_modseq: Modseq,
    /// Modseq of creation.
    pub created_modseq: Modseq,
    /// \Recent watermark.
    pub recent_uid: Uid,
    /// When the watermark moved.
    pub recent_time: i64,
    /// RFC 6154 attribute.
    pub special_use: Option<String>,
    /// ACL in the store's text form.
    pub acl: String,
    /// The complete set of annotations.
    pub annotations: Vec<(String, String)>,
    /// The mailbox's keyword table (complete, sorted).
    pub keywords: Vec<String>,
}

impl MailboxState {
    /// The state of a mailbox as this store holds it, for sending.
    pub fn of(mailbox: &Mailbox, annotations: Vec<(String, String)>) -> MailboxState {
        MailboxState {
            name: mailbox.name.clone(),
            partition: mailbox.partition.clone(),
            uidvalidity: mailbox.uidvalidity,
            last_uid: mailbox.last_uid,
            highest_modseq: mailbox.highest_modseq,
            deleted_modseq: mailbox.deleted_modseq,
            created_modseq: mailbox.created_modseq,
            recent_uid: mailbox.recent_uid,
            recent_time: mailbox.recent_time,
            special_use: mailbox.special_use.clone(),
            acl: mailbox.acl.clone(),
            annotations,
            keywords: Vec::new(),
        }
    }
}

/// A record new to the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaAppend {
    /// The master's UID.
    pub uid: Uid,
    /// The master's modseq for the record.
    pub modseq: Modseq,
    /// INTERNALDATE, Unix seconds.
    pub internaldate: i64,
    /// Size of the message.
    pub size: u64,
    /// GUID of the message.
    pub guid: Guid,
    /// Flags.
    pub flags: Flags,
    /// The message, or `None` when the replica holds the blob already.
    pub data: Option<Vec<u8>>,
    /// The record's stored POP3 UIDL, which travels with it (in the records digest).
    pub pop3_uidl: Option<String>,
}

impl ReplicaAppend {
    /// The append that recreates `record` (with `data`, or `None` when the receiver
    /// holds the blob).
    pub fn of(record: &crate::Record, data: Option<Vec<u8>>) -> ReplicaAppend {
        ReplicaAppend {
            uid: record.uid,
            modseq: record.modseq,
            internaldate: record.internaldate,
            size: record.size,
            guid: record.guid,
            flags: record.flags.clone(),
            data,
            pop3_uidl: record.pop3_uidl.clone(),
        }
    }
}

/// One UPDATE: everything that brings one mailbox to the master's state.
#[derive(Debug, Clone, Default)]
pub struct MailboxUpdate {
    /// Owner.
    pub user: String,
    /// The mailbox's unique id (shared by master and replica).
    pub uniqueid: Option<UniqueId>,
    /// The replica HIGHESTMODSEQ the master expects, or `None` for "no live mailbox".
    pub expect: Option<Modseq>,
    /// The replica's records digest the master expects before the update (checked with
    /// `expect`); `None` when the master does not know it.
    pub expect_digest: Option<RecordsDigest>,
    /// The state after the update.
    pub state: MailboxState,
    /// Remove every record before applying the items.
    pub reset: bool,
    /// New records.
    pub appends: Vec<ReplicaAppend>,
    /// (UIDs, modseq, flags): set flags and modseq.
    pub stores: Vec<(Vec<Uid>, Modseq, Flags)>,
    /// (UIDs, modseq): mark expunged.
    pub expunges: Vec<(Vec<Uid>, Modseq)>,
    /// The records digest after the update, when the master sent one.
    pub digest: Option<RecordsDigest>,
}

impl MailboxUpdate {
    /// True when the replica must hold the blob of `append` for this update: not for a
    /// record the same update expunges and whose data it does not carry (the content
    /// of an expunged message is never read again, so the master need not send it, and
    /// need not even have it).
    pub fn needs_blob(&self, append: &ReplicaAppend) -> bool {
        append.data.is_some()
            || !self
                .expunges
                .iter()
                .any(|(uids, _)| uids.contains(&append.uid))
    }
}

/// The writes only a replica makes, applying what its master sends: silent (they keep
/// the master's UIDs and modseqs and allocate none) and reachable only through
/// [`Store::replica`], so that a protocol crate does not call one by accident. It reads
/// as the store it wraps.
pub struct Replica<'a> {
    store: &'a Store,
}

impl std::ops::Deref for Replica<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.store
    }
}

impl Store {
    /// The replica's writes on this store.
    pub fn replica(&self) -> Replica<'_> {
        Replica { store: self }
    }
}

impl Replica<'_> {
    /// Sets a user's user-level state exactly (creating the user, without mailboxes,
    /// if missing) and checks the result against the state's digest.
    pub fn apply_user_state(&self, state: &UserState) -> Result<()> {
        let name = normalize_user(&state.name)?;
        let state = state.clone();
        let chain = self.chain();
        self.write(move |conn| {
            let id: Option<i64> = conn
                .query_row_cached("SELECT id FROM users WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            let id = match id {
                Some(id) => id,
                None => {
                    conn.execute_cached(
                        "INSERT INTO users (name, created) VALUES (?1, ?2)",
                        params![name, crate::store::now()],
                    )?;
                    conn.last_insert_rowid()
                }
            };
            conn.execute_cached(
                "UPDATE users SET password_hash = ?2, is_admin = ?3, quota_storage = ?4, \
                 quota_messages = ?5 WHERE id = ?1",
                params![
                    id,
                    state.password_hash,
                    state.is_admin,
                    state.quota.storage.map(|v| v as i64),
                    state.quota.messages.map(|v| v as i64)
                ],
            )?;
            conn.execute_cached("DELETE FROM subscriptions WHERE user_id = ?1", [id])?;
            for s in &state.subscriptions {
                conn.execute_cached(
                    "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)",
                    params![id, s],
                )?;
            }
            let (hash, admin, qs, qm, subs) = user_row(conn, id)?;
            let stored = crate::digest::user_digest(hash.as_deref(), admin, qs, qm, &subs);
            let sent = state.digest();
            if stored != sent {
                return Err(StoreError::DigestMismatch {
                    replica: stored,
                    master: sent,
                });
            }
            log_replicated(conn, chain, &name, None)
        })
    }

    /// Renames (and with another partition, moves) the one live mailbox with this
    /// unique id; a live mailbox of another unique id holding the name is parked out of
    /// the way in the same transaction. Silent: nothing is logged, no modseq is taken.
    pub fn replica_rename(
        &self,
        user: &str,
        uniqueid: &UniqueId,
        name: &str,
        partition: &str,
    ) -> Result<()> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(name)?;
        let source = self
            .mailbox_by_uniqueid(uniqueid)?
            .filter(|m| m.is_live() && m.user == user)
            .ok_or_else(|| StoreError::NoSuchMailbox {
                user: user.clone(),
                name: uniqueid.to_string(),
            })?;
        if source.partition != partition {
            self.copy_blobs(&source, partition)?;
        }
        let (id, partition) = (uniqueid.clone(), partition.to_owned());
        let chain = self.chain();
        self.write(move |conn| {
            let user_id = txn::user_id(conn, &user)?;
            place(conn, user_id, &user, &id, &name)?;
            conn.execute_cached(
                "UPDATE mailboxes SET name = ?2, partition = ?3 WHERE uniqueid = ?1",
                params![id.as_str(), name, partition],
            )?;
            log_replicated(conn, chain, &user, Some(&id))
        })
    }

    /// Deletes the live mailbox with this unique id, leaving a tombstone; nothing when
    /// there is none. Silent.
    pub fn replica_delete(&self, user: &str, uniqueid: &UniqueId) -> Result<()> {
        let user = normalize_user(user)?;
        let id = uniqueid.clone();
        let chain = self.chain();
        self.write(move |conn| {
            let Some(m) = txn::mailbox_by_uniqueid(conn, &id)?.filter(|m| m.is_live() && m.user == user) else {
                return Ok(());
            };
            add_usage(conn, m.user_id, -(m.bytes as i64), -(m.messages as i64))?;
            conn.execute_cached("DELETE FROM records WHERE mailbox_id = ?1", [m.id])?;
            crate::record_changes::forget(conn, m.id)?;
            conn.execute_cached("DELETE FROM annotations WHERE mailbox_id = ?1", [m.id])?;
            crate::keywords::drop_table(conn, m.id)?;
            conn.execute_cached(
                "UPDATE mailboxes SET tombstone_modseq = highest_modseq, messages = 0, bytes = 0 WHERE id = ?1",
                [m.id],
            )?;
            log_replicated(conn, chain, &user, Some(&id))
        })
    }
}

/// The body of [`Store::apply_update`], inside the writer's transaction.
pub(crate) fn apply_in(
    conn: &Connection,
    user: &str,
    name: &str,
    uniqueid: &UniqueId,
    update: &MailboxUpdate,
    summaries: &HashMap<Guid, crate::content::ContentSummary>,
) -> Result<()> {
    let user_id = txn::user_id(conn, user)?;
    let state = &update.state;
    let current = txn::mailbox_by_uniqueid(conn, uniqueid)?;
    if current.as_ref().is_some_and(|m| m.user_id != user_id) {
        return Err(StoreError::SyncConflict {
            uid: 0,
            reason: "unique id belongs to another user",
        });
    }
    let live = current.as_ref().filter(|m| m.is_live());
    let expected = match (update.expect, live) {
        (None, None) => true,
        // Equal counters do not prove equal records (both sides of a split brain can
        // reach the same HIGHESTMODSEQ): the digest, when the master knows it, too.
        (Some(e), Some(m)) => {
            m.highest_modseq == e && update.expect_digest.is_none_or(|d| d == m.digest)
        }
        _ => false,
    };
    if !expected {
        return Err(StoreError::SyncMismatch {
            highest_modseq: live.map_or(0, |m| m.highest_modseq),
            last_uid: live.map_or(0, |m| m.last_uid),
            digest: live.map_or(RecordsDigest::EMPTY, |m| m.digest),
        });
    }
    place(conn, user_id, user, uniqueid, name)?;
    let (old_messages, old_bytes) = live.map_or((0, 0), |m| (m.messages as i64, m.bytes as i64));
    match &current {
        None => {
            conn.execute_cached(
                "INSERT INTO mailboxes (uniqueid, user_id, name, partition, uidvalidity, created_modseq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    uniqueid.as_str(),
                    user_id,
                    name,
                    state.partition,
                    state.uidvalidity,
                    state.created_modseq as i64
                ],
            )?;
        }
        Some(m) => {
            if !m.is_live() && m.uidvalidity == state.uidvalidity {
                // This replica deleted the mailbox itself (a split brain: nothing else
                // revives a unique id). Its clients saw the mailbox at numbers and with
                // messages this UPDATE may not have, under this UIDVALIDITY: brought
                // back under it, a UID could come back holding another message.
                return Err(StoreError::SyncConflict {
                    uid: 0,
                    reason: "deleted on the replica: it comes back only under a new UIDVALIDITY",
                });
            }
            if !m.is_live() || update.reset || m.uidvalidity != state.uidvalidity {
                conn.execute_cached("DELETE FROM records WHERE mailbox_id = ?1", [m.id])?;
                crate::record_changes::forget(conn, m.id)?;
            }
            conn.execute_cached(
                "UPDATE mailboxes SET tombstone_modseq = NULL, name = ?2, partition = ?3, uidvalidity = ?4 \
                 WHERE id = ?1",
                params![m.id, name, state.partition, state.uidvalidity],
            )?;
        }
    }
    let mailbox_id: i64 = conn.query_row_cached(
        "SELECT id FROM mailboxes WHERE uniqueid = ?1",
        [uniqueid.as_str()],
        |r| r.get(0),
    )?;
    let emptied = match &current {
        None => true,
        Some(m) => !m.is_live() || update.reset || m.uidvalidity != state.uidvalidity,
    };
    let (base_messages, base_bytes) = if emptied {
        (0, 0)
    } else {
        (old_messages, old_bytes)
    };
    let (more_messages, more_bytes) = apply_items(conn, mailbox_id, update, summaries)?;
    // A union: a keyword this replica's clients saw in FLAGS is never dropped.
    crate::keywords::absorb_update(conn, mailbox_id, update)?;
    conn.execute_cached(
        "UPDATE mailboxes SET last_uid = ?2, highest_modseq = ?3, deleted_modseq = ?4, \
         created_modseq = ?5, recent_uid = ?6, recent_time = ?7, special_use = ?8, acl = ?9, \
         messages = ?10, bytes = ?11 WHERE id = ?1",
        params![
            mailbox_id,
            state.last_uid,
            state.highest_modseq as i64,
            state.deleted_modseq as i64,
            state.created_modseq as i64,
            state.recent_uid,
            state.recent_time,
            state.special_use,
            state.acl,
            base_messages + more_messages,
            base_bytes + more_bytes
        ],
    )?;
    conn.execute_cached(
        "DELETE FROM annotations WHERE mailbox_id = ?1",
        [mailbox_id],
    )?;
    for (k, v) in &state.annotations {
        conn.execute_cached(
            "INSERT OR REPLACE INTO annotations (mailbox_id, key, value) VALUES (?1, ?2, ?3)",
            params![mailbox_id, k, v],
        )?;
    }
    let (messages, bytes): (i64, i64) = conn.query_row_cached(
        "SELECT messages, bytes FROM mailboxes WHERE id = ?1",
        [mailbox_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    add_usage(conn, user_id, bytes - old_bytes, messages - old_messages)?;
    // After a failover this replica allocates modseqs and UIDVALIDITYs itself: above
    // everything it was given.
    conn.execute_cached(
        "UPDATE users SET modseq = max(modseq, ?2), last_uidvalidity = max(last_uidvalidity, ?3) \
         WHERE id = ?1",
        params![user_id, state.highest_modseq as i64, state.uidvalidity],
    )?;
    if let Some(master) = update.digest {
        let replica: Vec<u8> = conn.query_row_cached(
            "SELECT records_digest FROM mailboxes WHERE id = ?1",
            [mailbox_id],
            |r| r.get(0),
        )?;
        let replica = RecordsDigest::from_column(&replica);
        if replica != master {
            return Err(StoreError::DigestMismatch {
                replica: replica.to_string(),
                master: master.to_string(),
            });
        }
    }
    Ok(())
}

/// Applies APPENDs, then STOREs, then EXPUNGEs; returns how many live messages (and
/// bytes) the mailbox gained, negative when it lost some. Counted record by record so
/// that an UPDATE costs O(its items), not O(the mailbox).
fn apply_items(
    conn: &Connection,
    mailbox_id: i64,
    update: &MailboxUpdate,
    summaries: &HashMap<Guid, crate::content::ContentSummary>,
) -> Result<(i64, i64)> {
    let (mut messages, mut bytes) = (0i64, 0i64);
    let mut existing = conn.prepare_cached(
        "SELECT guid, expunged_modseq IS NOT NULL, size FROM records \
         WHERE mailbox_id = ?1 AND uid = ?2",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO records (mailbox_id, uid, modseq, flags, internaldate, size, guid, \
         pop3_uidl) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    // The master's record wins whole, its stored UIDL included. A record the replica
    // had expunged is live again: its expunge time goes with its expunge, or `tern
    // expire` would count it (and its blob) as due.
    let mut refresh = conn.prepare_cached(
        "UPDATE records SET modseq = ?3, flags = ?4, internaldate = ?5, expunged_modseq = NULL, \
         expunged_at = NULL, pop3_uidl = ?6 WHERE mailbox_id = ?1 AND uid = ?2",
    )?;
    for a in &update.appends {
        if let Some(u) = a
            .pop3_uidl
            .as_deref()
            .filter(|u| !crate::valid_pop3_uidl(u))
        {
            return Err(StoreError::InvalidPop3Uidl(u.to_owned()));
        }
        let held: Option<(Vec<u8>, bool, i64)> = existing
            .query_row(params![mailbox_id, a.uid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        match held {
            Some((g, was_expunged, size)) if g[..] == a.guid.as_bytes()[..] => {
                if was_expunged {
                    messages += 1;
                    bytes += size;
                }
                refresh.execute(params![
                    mailbox_id,
                    a.uid,
                    a.modseq as i64,
                    a.flags.to_string(),
                    a.internaldate,
                    a.pop3_uidl
                ])?;
                crate::record_changes::note(conn, mailbox_id, a.modseq as i64, a.uid, a.uid)?;
            }
            Some(_) => {
                return Err(StoreError::SyncConflict {
                    uid: a.uid,
                    reason: "the UID holds another message",
                });
            }
            None => {
                messages += 1;
                bytes += a.size as i64;
                insert.execute(params![
                    mailbox_id,
                    a.uid,
                    a.modseq as i64,
                    a.flags.to_string(),
                    a.internaldate,
                    a.size as i64,
                    &a.guid.as_bytes()[..],
                    a.pop3_uidl
                ])?;
            }
        }
        if let Some(summary) = summaries.get(&a.guid) {
            insert_index(conn, &a.guid, summary, &update.state.partition, a.size)?;
        }
    }
    let mut delta = RecordsDigest::EMPTY;
    for (uids, modseq, flags) in &update.stores {
        let text = flags.to_string();
        for uid in uids {
            let (row, change) = (i64::from(*uid), (text.as_str(), *modseq as i64));
            if !set_flags(conn, mailbox_id, row, change, false, &mut delta)? {
                return Err(StoreError::SyncConflict {
                    uid: *uid,
                    reason: "STORE of a record the replica does not have",
                });
            }
        }
    }
    apply_delta(conn, mailbox_id, &delta)?;
    let mut delta = RecordsDigest::EMPTY;
    for (uids, modseq) in &update.expunges {
        for uid in uids {
            let held: Option<(Vec<u8>, bool, i64)> = existing
                .query_row(params![mailbox_id, uid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((_, was_expunged, size)) = held else {
                return Err(StoreError::SyncConflict {
                    uid: *uid,
                    reason: "EXPUNGE of a record the replica does not have",
                });
            };
            if !was_expunged {
                messages -= 1;
                bytes -= size;
            }
            crate::digest::expunge_record(
                conn,
                mailbox_id,
                i64::from(*uid),
                *modseq as i64,
                &mut delta,
            )?;
        }
    }
    apply_delta(conn, mailbox_id, &delta)?;
    Ok((messages, bytes))
}

/// Makes `name` free for the mailbox `uniqueid` of `user`: a live mailbox of another
/// unique id holding it is parked under `name~<first 8 digits of its unique id>` (or
/// the whole unique id if that is taken too), to be renamed or deleted by a later
/// command of the master.
fn place(
    conn: &Connection,
    user_id: i64,
    user: &str,
    uniqueid: &UniqueId,
    name: &str,
) -> Result<()> {
    let Some(other) = txn::find_live_mailbox(conn, user, name)? else {
        return Ok(());
    };
    if &other.uniqueid == uniqueid {
        return Ok(());
    }
    let short = format!(
        "{name}~{}",
        &other.uniqueid.as_str()[..8.min(other.uniqueid.as_str().len())]
    );
    let parked = if txn::find_live_mailbox(conn, user, &short)?.is_none() {
        short
    } else {
        format!("{name}~{}", other.uniqueid.as_str())
    };
    tracing::warn!(user, name, parked, uniqueid = %other.uniqueid, "replication parks a mailbox whose name the master gave to another");
    conn.execute_cached(
        "UPDATE mailboxes SET name = ?2 WHERE id = ?1 AND user_id = ?3",
        params![other.id, parked, user_id],
    )?;
    Ok(())
}
