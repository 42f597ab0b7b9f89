//! Mailboxes: create, rename, delete (leaving a tombstone), list, annotations and
//! subscriptions.

use rusqlite::{params, Connection, Row};

use crate::digest::RecordsDigest;
use crate::error::{Result, StoreError};
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::names::{is_descendant, normalize_mailbox, normalize_user};
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// A mailbox's state.
///
/// `last_uid` and `highest_modseq` only grow; `uidvalidity` is fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    /// Owner (canonical user name).
    pub user: String,
    /// Random id, kept across renames, never reused.
    pub uniqueid: UniqueId,
    /// Name relative to the owner, `/`-separated.
    pub name: String,
    /// Partition holding the blobs of its messages.
    pub partition: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Highest UID ever assigned (UIDNEXT - 1).
    pub last_uid: Uid,
    /// Modseq of the newest change to the mailbox or any of its records.
    pub highest_modseq: Modseq,
    /// Oldest modseq from which changes can still be computed.
    pub deleted_modseq: Modseq,
    /// Highest UID already reported as \Recent.
    pub recent_uid: Uid,
    /// When `recent_uid` was last moved (Unix seconds).
    pub recent_time: i64,
    /// Messages not expunged.
    pub messages: u32,
    /// Total size of messages not expunged.
    pub bytes: u64,
    /// RFC 6154 attribute such as `\Sent`.
    pub special_use: Option<String>,
    /// RFC 4314 ACL in Cyrus's text form (`ident\trights\t...`); empty for owner only.
    pub acl: String,
    /// Modseq at which it was created.
    pub created_modseq: Modseq,
    /// Set when the mailbox is deleted: the modseq of the deletion.
    pub tombstone_modseq: Option<Modseq>,
    /// The digest of its records, expunged ones included, as of this read (kept in the
    /// same transaction as every record change).
    pub digest: RecordsDigest,
}

/// The columns [`Mailbox::from_row`] reads, from `mailboxes m JOIN users u`, as a
/// literal: the lookups every command makes build their SQL with `concat!` at compile
/// time, not with `format!` on each call.
macro_rules! mailbox_columns {
    () => {
        "m.id, m.user_id, u.name, m.uniqueid, m.name, \
        m.partition, m.uidvalidity, m.last_uid, m.highest_modseq, m.deleted_modseq, m.recent_uid, \
        m.recent_time, m.messages, m.bytes, m.special_use, m.acl, m.created_modseq, m.tombstone_modseq, \
        m.records_digest"
    };
}
pub(crate) use mailbox_columns;

impl Mailbox {
    pub(crate) const COLUMNS: &'static str = mailbox_columns!();

    pub(crate) fn from_row(r: &Row) -> rusqlite::Result<Mailbox> {
        Ok(Mailbox {
            id: r.get(0)?,
            user_id: r.get(1)?,
            user: r.get(2)?,
            uniqueid: UniqueId::from_db(r.get(3)?),
            name: r.get(4)?,
            partition: r.get(5)?,
            uidvalidity: r.get::<_, i64>(6)? as u32,
            last_uid: r.get::<_, i64>(7)? as u32,
            highest_modseq: r.get::<_, i64>(8)? as u64,
            deleted_modseq: r.get::<_, i64>(9)? as u64,
            recent_uid: r.get::<_, i64>(10)? as u32,
            recent_time: r.get(11)?,
            messages: r.get::<_, i64>(12)? as u32,
            bytes: r.get::<_, i64>(13)? as u64,
            special_use: r.get(14)?,
            acl: r.get(15)?,
            created_modseq: r.get::<_, i64>(16)? as u64,
            tombstone_modseq: r.get::<_, Option<i64>>(17)?.map(|v| v as u64),
            digest: RecordsDigest::from_column(r.get_ref(18)?.as_blob().unwrap_or(&[])),
        })
    }

    /// UIDNEXT: the UID the next message will get.
    pub fn uidnext(&self) -> Uid {
        self.last_uid.saturating_add(1)
    }
}

/// Creates a mailbox row inside a caller's transaction and logs it.
pub(crate) fn create_mailbox_in(
    conn: &Connection,
    user_id: i64,
    user: &str,
    name: &str,
    partition: &str,
    special_use: Option<&str>,
    uniqueid: Option<UniqueId>,
) -> Result<Mailbox> {
    if txn::find_live_mailbox(conn, user, name)?.is_some() {
        return Err(StoreError::MailboxExists {
            user: user.to_owned(),
            name: name.to_owned(),
        });
    }
    let modseq = txn::next_modseq(conn, user_id)?;
    // UIDVALIDITY: the creation time, but strictly greater than any this user had, so a
    // mailbox deleted and re-created in the same second still gets a new one.
    let uidvalidity: i64 = conn.query_row_cached(
        "UPDATE users SET last_uidvalidity = max(last_uidvalidity + 1, ?2) WHERE id = ?1 \
         RETURNING last_uidvalidity",
        params![user_id, crate::store::now().clamp(1, u32::MAX as i64)],
        |r| r.get(0),
    )?;
    let uniqueid = uniqueid.unwrap_or_else(UniqueId::random);
    conn.execute_cached(
        "INSERT INTO mailboxes (uniqueid, user_id, name, partition, uidvalidity, highest_modseq, \
         special_use, created_modseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
        params![
            uniqueid.as_str(),
            user_id,
            name,
            partition,
            uidvalidity,
            modseq as i64,
            special_use
        ],
    )?;
    let mailbox = txn::live_mailbox(conn, user, name)?;
    txn::log_change(conn, user, Some(&mailbox.uniqueid))?;
    Ok(mailbox)
}

impl Store {
    /// Creates a mailbox in the default partition (or `partition`).
    pub fn create_mailbox(
        &self,
        user: &str,
        name: &str,
        partition: Option<&str>,
    ) -> Result<Mailbox> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(name)?;
        let partition = partition
            .unwrap_or(&self.config().default_partition)
            .to_owned();
        if !self.blobs().has_partition(&partition) {
            return Err(StoreError::UnknownPartition(partition));
        }
        let who = user.clone();
        self.write_for_user(&who, move |conn| {
            let user_id = txn::user_id(conn, &user)?;
            create_mailbox_in(conn, user_id, &user, &name, &partition, None, None)
        })
    }

    /// The live mailbox `name` of `user`, if it exists.
    pub fn mailbox(&self, user: &str, name: &str) -> Result<Option<Mailbox>> {
        let (Ok(user), Ok(name)) = (normalize_user(user), normalize_mailbox(name)) else {
            return Ok(None);
        };
        self.read(|conn| txn::find_live_mailbox(conn, &user, &name))
    }

    /// The mailbox with this unique id, live or tombstone.
    pub fn mailbox_by_uniqueid(&self, id: &UniqueId) -> Result<Option<Mailbox>> {
        self.read(|conn| txn::mailbox_by_uniqueid(conn, id))
    }

    /// All live mailboxes of `user`, by name. Tombstones are included when asked.
    pub fn mailboxes(&self, user: &str, include_tombstones: bool) -> Result<Vec<Mailbox>> {
        let user = normalize_user(user)?;
        self.read(|conn| {
            txn::user_id(conn, &user)?;
            let sql = format!(
                "SELECT {} FROM mailboxes m JOIN users u ON u.id = m.user_id WHERE u.name = ?1 \
                 AND (?2 OR m.tombstone_modseq IS NULL) ORDER BY m.name, m.id",
                Mailbox::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![user, include_tombstones], Mailbox::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Renames a mailbox and every mailbox below it, keeping their unique ids,
    /// UIDVALIDITY and messages. With `partition`, the named mailbox (not its children)
    /// also moves to that partition; its blobs are copied there first, durably.
    ///
    /// INBOX cannot be renamed here (IMAP's INBOX rename is a move of its messages,
    /// done by the IMAP layer).
    pub fn rename_mailbox(
        &self,
        user: &str,
        old: &str,
        new: &str,
        partition: Option<&str>,
    ) -> Result<Mailbox> {
        let user = normalize_user(user)?;
        let old = normalize_mailbox(old)?;
        let new = normalize_mailbox(new)?;
        if old == "INBOX" {
            return Err(StoreError::NotPermitted {
                name: old,
                reason: "INBOX cannot be renamed",
            });
        }
        if new == old || is_descendant(&new, &old) {
            return Err(StoreError::NotPermitted {
                name: old,
                reason: "cannot rename a mailbox into itself",
            });
        }
        let source = self
            .mailbox(&user, &old)?
            .ok_or_else(|| StoreError::NoSuchMailbox {
                user: user.clone(),
                name: old.clone(),
            })?;
        let target_partition = partition.unwrap_or(&source.partition).to_owned();
        if target_partition != source.partition {
            self.copy_blobs(&source, &target_partition)?;
        }
        let who = user.clone();
        self.write_for_user(&who, move |conn| {
            let mailbox = txn::live_mailbox(conn, &user, &old)?;
            if mailbox.uniqueid != source.uniqueid {
                return Err(StoreError::NoSuchMailbox { user, name: old });
            }
            if txn::find_live_mailbox(conn, &user, &new)?.is_some() {
                return Err(StoreError::MailboxExists { user, name: new });
            }
            let modseq = txn::next_modseq(conn, mailbox.user_id)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM mailboxes m JOIN users u ON u.id = m.user_id \
                 WHERE m.user_id = ?1 AND m.tombstone_modseq IS NULL",
                Mailbox::COLUMNS
            ))?;
            let all: Vec<Mailbox> = stmt
                .query_map([mailbox.user_id], Mailbox::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let moving: Vec<&Mailbox> = all
                .iter()
                .filter(|m| m.id == mailbox.id || is_descendant(&m.name, &old))
                .collect();
            for m in &moving {
                let renamed = format!("{new}{}", &m.name[old.len()..]);
                crate::names::normalize_mailbox(&renamed)?;
                if all
                    .iter()
                    .any(|o| o.name == renamed && !moving.iter().any(|x| x.id == o.id))
                {
                    return Err(StoreError::MailboxExists {
                        user,
                        name: renamed,
                    });
                }
            }
            // Two passes through a temporary name keep the unique name index satisfied
            // when a child's new name equals another moving mailbox's old name.
            for m in &moving {
                conn.execute_cached(
                    "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
                    params![m.id, format!("\u{1}rename\u{1}{}", m.id)],
                )?;
            }
            for m in &moving {
                let renamed = format!("{new}{}", &m.name[old.len()..]);
                let part = if m.id == mailbox.id {
                    &target_partition
                } else {
                    &m.partition
                };
                conn.execute_cached(
                    "UPDATE mailboxes SET name = ?2, partition = ?3 WHERE id = ?1",
                    params![m.id, renamed, part],
                )?;
                txn::touch_mailbox(conn, m, modseq)?;
            }
            txn::live_mailbox(conn, &user, &new)
        })
    }

    /// Deletes a mailbox: its row stays as a tombstone carrying the unique id and the
    /// modseq of the deletion, its messages are removed (their blobs become garbage
    /// for `tern expire`). Mailboxes below it are not touched. INBOX cannot be deleted.
    pub fn delete_mailbox(&self, user: &str, name: &str) -> Result<Mailbox> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(name)?;
        if name == "INBOX" {
            return Err(StoreError::NotPermitted {
                name,
                reason: "INBOX cannot be deleted",
            });
        }
        let who = user.clone();
        self.write_for_user(&who, move |conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let modseq = txn::next_modseq(conn, mailbox.user_id)?;
            crate::users::add_usage(conn, mailbox.user_id, -(mailbox.bytes as i64), -(mailbox.messages as i64))?;
            conn.execute_cached("DELETE FROM records WHERE mailbox_id = ?1", [mailbox.id])?;
            crate::record_changes::forget(conn, mailbox.id)?;
            conn.execute_cached("DELETE FROM annotations WHERE mailbox_id = ?1", [mailbox.id])?;
            conn.execute_cached("DELETE FROM metadata WHERE mailbox_id = ?1", [mailbox.id])?;
            crate::keywords::drop_table(conn, mailbox.id)?;
            conn.execute_cached(
                "UPDATE mailboxes SET tombstone_modseq = ?2, highest_modseq = ?2, messages = 0, bytes = 0 \
                 WHERE id = ?1",
                params![mailbox.id, modseq as i64],
            )?;
            txn::log_change(conn, &user, Some(&mailbox.uniqueid))?;
            Ok(txn::mailbox_by_uniqueid(conn, &mailbox.uniqueid)?.unwrap_or(mailbox))
        })
    }

    /// Sets (`Some`) or removes (`None`) a mailbox annotation such as `/vendor/tern/expire`.
    pub fn set_annotation(
        &self,
        user: &str,
        mailbox: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        self.write(move |conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            match value {
                Some(v) => conn.execute_cached(
                    "INSERT INTO annotations (mailbox_id, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (mailbox_id, key) DO UPDATE SET value = excluded.value",
                    params![mailbox.id, key, v],
                )?,
                None => conn.execute_cached(
                    "DELETE FROM annotations WHERE mailbox_id = ?1 AND key = ?2",
                    params![mailbox.id, key],
                )?,
            };
            let modseq = txn::next_modseq(conn, mailbox.user_id)?;
            txn::touch_mailbox(conn, &mailbox, modseq)
        })
    }

    /// A mailbox's annotations, by key.
    pub fn annotations(&self, user: &str, mailbox: &str) -> Result<Vec<(String, String)>> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        self.read(|conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let mut stmt = conn
                .prepare("SELECT key, value FROM annotations WHERE mailbox_id = ?1 ORDER BY key")?;
            let rows = stmt
                .query_map([mailbox.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Subscribes `user` to `name` (which need not exist, as IMAP allows).
    pub fn subscribe(&self, user: &str, name: &str, subscribed: bool) -> Result<()> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(name)?;
        let who = user.clone();
        self.write_for_user(&who, move |conn| {
            let user_id = txn::user_id(conn, &user)?;
            if subscribed {
                conn.execute_cached(
                    "INSERT OR IGNORE INTO subscriptions (user_id, name) VALUES (?1, ?2)",
                    params![user_id, name],
                )?;
            } else {
                conn.execute_cached(
                    "DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2",
                    params![user_id, name],
                )?;
            }
            txn::log_change(conn, &user, None)
        })
    }

    /// The names `user` is subscribed to, sorted.
    pub fn subscriptions(&self, user: &str) -> Result<Vec<String>> {
        let user = normalize_user(user)?;
        self.read(|conn| {
            let user_id = txn::user_id(conn, &user)?;
            let mut stmt = conn.prepare_cached(
                "SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name",
            )?;
            let rows = stmt
                .query_map([user_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Copies the blobs of every record of `mailbox` into `partition`, durably.
    pub(crate) fn copy_blobs(&self, mailbox: &Mailbox, partition: &str) -> Result<()> {
        if !self.blobs().has_partition(partition) {
            return Err(StoreError::UnknownPartition(partition.to_owned()));
        }
        let blobs: Vec<(Guid, u64)> = self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT guid, size FROM records WHERE mailbox_id = ?1")?;
            let rows = stmt
                .query_map([mailbox.id], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                })?
                .filter_map(|row| match row {
                    Ok((g, s)) => Guid::from_slice(&g).map(|g| Ok((g, s as u64))),
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        for (guid, size) in blobs {
            if !self.blobs().contains(partition, &guid, size)? {
                let bytes = self.blobs().read(&mailbox.partition, &guid, size)?;
                self.blobs().put_with_guid(partition, &guid, &bytes)?;
            }
        }
        Ok(())
    }
}

/// Looks up a live mailbox by unique id inside a transaction.
pub(crate) fn live_by_uniqueid(conn: &Connection, id: &UniqueId) -> Result<Option<Mailbox>> {
    Ok(txn::mailbox_by_uniqueid(conn, id)?.filter(|m| m.tombstone_modseq.is_none()))
}
