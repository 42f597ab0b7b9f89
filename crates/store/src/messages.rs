//! Records (messages in mailboxes): append, deliver, flag changes, delayed expunge,
//! copy, and the "changed since modseq" query.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::flags::{FlagOp, Flags};
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::{live_by_uniqueid, Mailbox};
use crate::names::{normalize_mailbox, normalize_user};
use crate::store::{now, Store};
use crate::txn;
use crate::users::{add_usage, check_quota};

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// UID within the mailbox.
    pub uid: Uid,
    /// Modseq of the last change to this record (append, flags, or expunge).
    pub modseq: Modseq,
    /// Flags set on the message.
    pub flags: Flags,
    /// IMAP INTERNALDATE, Unix seconds.
    pub internaldate: i64,
    /// Size of the raw message in bytes (RFC822.SIZE).
    pub size: u64,
    /// Content address of the raw message.
    pub guid: Guid,
    /// Set once expunged: the modseq of the expunge. The record stays until purged.
    pub expunged_modseq: Option<Modseq>,
}

impl Record {
    const COLUMNS: &'static str = "uid, modseq, flags, internaldate, size, guid, expunged_modseq";

    fn from_row(r: &Row) -> rusqlite::Result<Record> {
        let flags: String = r.get(2)?;
        let guid: Vec<u8> = r.get(5)?;
        Ok(Record {
            uid: r.get::<_, i64>(0)? as u32,
            modseq: r.get::<_, i64>(1)? as u64,
            // Stored flags were validated on the way in; a damaged value degrades to
            // "no flags" rather than hiding the message.
            flags: Flags::parse_list(&flags).unwrap_or_default(),
            internaldate: r.get(3)?,
            size: r.get::<_, i64>(4)? as u64,
            guid: Guid::from_slice(&guid).unwrap_or(Guid::from_bytes([0; 20])),
            expunged_modseq: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        })
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The mailbox appended to.
    pub mailbox: UniqueId,
    /// Its UIDVALIDITY (for UIDPLUS).
    pub uidvalidity: u32,
    /// The new message's UID.
    pub uid: Uid,
    /// The new message's modseq.
    pub modseq: Modseq,
}

/// Where one LMTP recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    /// The user.
    pub user: String,
    /// The folder asked for (`user+folder@`); INBOX when absent or not existing.
    pub folder: Option<String>,
}

/// How a delivery to one recipient ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Stored under a new UID.
    Stored {
        /// The mailbox name it went to.
        mailbox: String,
        /// Details of the append.
        appended: Appended,
    },
    /// The same Message-ID was delivered to this mailbox within the window; nothing new
    /// was stored.
    Duplicate {
        /// The mailbox name.
        mailbox: String,
    },
}

/// Options for [`Store::deliver`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    /// The message's Message-ID, for duplicate suppression.
    pub message_id: Option<String>,
    /// Suppress a second delivery of the same Message-ID to the same mailbox within
    /// this many seconds; 0 turns suppression off.
    pub duplicate_window_secs: u64,
    /// INTERNALDATE to give the message (Unix seconds); now when `None`.
    pub internaldate: Option<i64>,
}

/// A flag change applied to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The record.
    pub uid: Uid,
    /// Its new modseq (unchanged when the flags were already so).
    pub modseq: Modseq,
    /// Its flags after the change.
    pub flags: Flags,
}

/// The outcome of a conditional flag store (RFC 7162 UNCHANGEDSINCE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Records whose flags now differ from before, with their new modseqs.
    pub changed: Vec<FlagChange>,
    /// Records left alone because they changed after the UNCHANGEDSINCE modseq.
    pub modified: Vec<Uid>,
}

struct Resolved {
    mailbox: Mailbox,
}

impl Store {
    /// Appends a message to a mailbox (IMAP APPEND). The blob is durable before the
    /// record is committed, and the call returns after the commit.
    pub fn append(
        &self,
        user: &str,
        mailbox: &str,
        flags: &Flags,
        internaldate: i64,
        message: &[u8],
    ) -> Result<Appended> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        let target = self
            .mailbox(&user, &name)?
            .ok_or_else(|| StoreError::NoSuchMailbox {
                user: user.clone(),
                name: name.clone(),
            })?;
        let guid = Guid::of(message);
        self.blobs()
            .put_with_guid(&target.partition, &guid, message)?;
        let size = message.len() as u64;
        let flags = flags.clone();
        self.write(move |conn| {
            let mailbox = live_by_uniqueid(conn, &target.uniqueid)?
                .ok_or(StoreError::NoSuchMailbox { user, name })?;
            insert_record(conn, &mailbox, &flags, internaldate, size, &guid)
        })
    }

    /// Delivers one message to several recipients (LMTP), one result per target in the
    /// same order. Each recipient succeeds or fails alone (unknown user, over quota),
    /// and every `Ok` is durable when this returns. The blob is written once per
    /// partition however many recipients share it.
    pub fn deliver(
        &self,
        message: &[u8],
        targets: &[DeliveryTarget],
        options: &DeliveryOptions,
    ) -> Vec<Result<Delivered>> {
        let guid = Guid::of(message);
        let size = message.len() as u64;
        let internaldate = options.internaldate.unwrap_or_else(now);
        let resolved: Vec<Result<Resolved>> = match self.read(|conn| {
            Ok(targets
                .iter()
                .map(|t| resolve_target(conn, t))
                .collect::<Vec<_>>())
        }) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                return targets
                    .iter()
                    .map(|_| Err(StoreError::CommitFailed(msg.clone())))
                    .collect();
            }
        };
        let mut written: Vec<(String, Result<()>)> = Vec::new();
        let mut pending = Vec::with_capacity(targets.len());
        for target in resolved {
            let target = match target {
                Ok(t) => t,
                Err(e) => {
                    pending.push(Err(e));
                    continue;
                }
            };
            let partition = target.mailbox.partition.clone();
            let blob = match written.iter().find(|(p, _)| *p == partition) {
                Some((_, r)) => r.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                None => {
                    let r = self.blobs().put_with_guid(&partition, &guid, message);
                    let out = r.as_ref().map(|_| ()).map_err(|e| e.to_string());
                    written.push((partition, r));
                    out
                }
            };
            if let Err(msg) = blob {
                pending.push(Err(StoreError::CommitFailed(msg)));
                continue;
            }
            let message_id = options.message_id.clone();
            let window = options.duplicate_window_secs;
            pending.push(Ok(self.submit(move |conn| {
                deliver_one(
                    conn,
                    &target.mailbox,
                    guid,
                    size,
                    internaldate,
                    message_id,
                    window,
                )
            })));
        }
        pending
            .into_iter()
            .map(|p| p.and_then(|p| p.wait()))
            .collect()
    }

    /// Changes flags on the given UIDs (IMAP STORE). With `unchanged_since`, records
    /// whose modseq is above it are left alone and reported in `modified` (RFC 7162).
    /// Each record that actually changes gets a new modseq; expunged records and UIDs
    /// that do not exist are skipped.
    pub fn store_flags(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<Modseq>,
    ) -> Result<StoreOutcome> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        let uids = uids.to_vec();
        let flags = flags.clone();
        self.write(move |conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let mut outcome = StoreOutcome::default();
            let mut modseq = None;
            let mut read = conn.prepare_cached(
                "SELECT modseq, flags FROM records WHERE mailbox_id = ?1 AND uid = ?2 AND expunged_modseq IS NULL",
            )?;
            let mut write = conn.prepare_cached(
                "UPDATE records SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
            )?;
            for uid in uids {
                let row: Option<(i64, String)> = read
                    .query_row(params![mailbox.id, uid], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((old_modseq, old_flags)) = row else { continue };
                if unchanged_since.is_some_and(|m| old_modseq as u64 > m) {
                    outcome.modified.push(uid);
                    continue;
                }
                let old = Flags::parse_list(&old_flags).unwrap_or_default();
                let new = old.apply(op, &flags);
                if new == old {
                    continue;
                }
                let m = match modseq {
                    Some(m) => m,
                    None => *modseq.insert(txn::next_modseq(conn, mailbox.user_id)?),
                };
                write.execute(params![mailbox.id, uid, new.to_string(), m as i64])?;
                outcome.changed.push(FlagChange { uid, modseq: m, flags: new });
            }
            if let Some(m) = modseq {
                txn::touch_mailbox(conn, &mailbox, m)?;
            }
            Ok(outcome)
        })
    }

    /// Expunges the given UIDs: each record stays, marked with the modseq of the
    /// expunge, until `tern expire` purges it. Returns the UIDs actually expunged.
    pub fn expunge(&self, user: &str, mailbox: &str, uids: &[Uid]) -> Result<Vec<Uid>> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        let uids = uids.to_vec();
        self.write(move |conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let mut done = Vec::new();
            let mut freed = 0i64;
            let modseq = txn::next_modseq(conn, mailbox.user_id)?;
            let mut stmt = conn.prepare_cached(
                "UPDATE records SET expunged_modseq = ?3, modseq = ?3 \
                 WHERE mailbox_id = ?1 AND uid = ?2 AND expunged_modseq IS NULL RETURNING size",
            )?;
            for uid in uids {
                let size: Option<i64> = stmt
                    .query_row(params![mailbox.id, uid, modseq as i64], |r| r.get(0))
                    .optional()?;
                if let Some(size) = size {
                    freed += size;
                    done.push(uid);
                }
            }
            if done.is_empty() {
                // Nothing changed: the allocated modseq is simply never used by a record,
                // which leaves a harmless gap in the counter.
                return Ok(done);
            }
            let n = done.len() as i64;
            conn.execute(
                "UPDATE mailboxes SET messages = messages - ?2, bytes = bytes - ?3 WHERE id = ?1",
                params![mailbox.id, n, freed],
            )?;
            add_usage(conn, mailbox.user_id, -freed, -n)?;
            txn::touch_mailbox(conn, &mailbox, modseq)?;
            Ok(done)
        })
    }

    /// Copies records to another mailbox of the same user (IMAP COPY): the copies share
    /// the blobs, keep flags and INTERNALDATE, and get new UIDs in the target, in order.
    /// Returns (source UID, new UID) pairs.
    pub fn copy(&self, user: &str, from: &str, uids: &[Uid], to: &str) -> Result<Vec<(Uid, Uid)>> {
        let user = normalize_user(user)?;
        let from = normalize_mailbox(from)?;
        let to = normalize_mailbox(to)?;
        let source = self
            .mailbox(&user, &from)?
            .ok_or_else(|| StoreError::NoSuchMailbox {
                user: user.clone(),
                name: from.clone(),
            })?;
        let target = self
            .mailbox(&user, &to)?
            .ok_or_else(|| StoreError::NoSuchMailbox {
                user: user.clone(),
                name: to.clone(),
            })?;
        let records = self.records_by_uid(&source, uids)?;
        if source.partition != target.partition {
            for r in &records {
                if !self.blobs().contains(&target.partition, &r.guid, r.size)? {
                    let bytes = self.blobs().read(&source.partition, &r.guid, r.size)?;
                    self.blobs()
                        .put_with_guid(&target.partition, &r.guid, &bytes)?;
                }
            }
        }
        self.write(move |conn| {
            let target = live_by_uniqueid(conn, &target.uniqueid)?
                .ok_or(StoreError::NoSuchMailbox { user, name: to })?;
            let total: u64 = records.iter().map(|r| r.size).sum();
            check_quota(conn, target.user_id, total, records.len() as u64)?;
            let mut pairs = Vec::with_capacity(records.len());
            if records.is_empty() {
                return Ok(pairs);
            }
            let modseq = txn::next_modseq(conn, target.user_id)?;
            for r in &records {
                let appended = insert_record_unchecked(
                    conn,
                    &target,
                    &r.flags,
                    r.internaldate,
                    r.size,
                    &r.guid,
                    modseq,
                )?;
                pairs.push((r.uid, appended.uid));
            }
            txn::touch_mailbox(conn, &target, modseq)?;
            Ok(pairs)
        })
    }

    /// Every record of a mailbox in UID order; expunged ones only when asked.
    pub fn records(
        &self,
        user: &str,
        mailbox: &str,
        include_expunged: bool,
    ) -> Result<Vec<Record>> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        self.read(|conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let sql = format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 AND (?2 OR expunged_modseq IS NULL) ORDER BY uid",
                Record::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![mailbox.id, include_expunged], Record::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// Every record (expunged ones included) whose modseq is above `since`, in UID
    /// order, with the mailbox state of the same snapshot. Answered from an index on
    /// (mailbox, modseq), so its cost follows the number of changes, not the mailbox size.
    pub fn changed_since(
        &self,
        user: &str,
        mailbox: &str,
        since: Modseq,
    ) -> Result<(Mailbox, Vec<Record>)> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        self.read(|conn| {
            let mailbox = txn::live_mailbox(conn, &user, &name)?;
            let sql = format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
                Record::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![mailbox.id, since as i64], Record::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok((mailbox, rows))
        })
    }

    /// The raw bytes of a message, verified against its size.
    pub fn message(&self, mailbox: &Mailbox, record: &Record) -> Result<Vec<u8>> {
        self.blobs()
            .read(&mailbox.partition, &record.guid, record.size)
    }

    fn records_by_uid(&self, mailbox: &Mailbox, uids: &[Uid]) -> Result<Vec<Record>> {
        let id = mailbox.id;
        self.read(|conn| {
            let sql = format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 AND uid = ?2 AND expunged_modseq IS NULL",
                Record::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                match stmt.query_row(params![id, uid], Record::from_row) {
                    Ok(r) => out.push(r),
                    Err(rusqlite::Error::QueryReturnedNoRows) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })
    }
}

fn resolve_target(conn: &Connection, target: &DeliveryTarget) -> Result<Resolved> {
    let user =
        normalize_user(&target.user).map_err(|_| StoreError::NoSuchUser(target.user.clone()))?;
    txn::user_id(conn, &user)?;
    if let Some(folder) = target
        .folder
        .as_deref()
        .and_then(|f| normalize_mailbox(f).ok())
    {
        if let Some(mailbox) = txn::find_live_mailbox(conn, &user, &folder)? {
            return Ok(Resolved { mailbox });
        }
    }
    Ok(Resolved {
        mailbox: txn::live_mailbox(conn, &user, "INBOX")?,
    })
}

fn deliver_one(
    conn: &Connection,
    target: &Mailbox,
    guid: Guid,
    size: u64,
    internaldate: i64,
    message_id: Option<String>,
    window: u64,
) -> Result<Delivered> {
    let mailbox =
        live_by_uniqueid(conn, &target.uniqueid)?.ok_or_else(|| StoreError::NoSuchMailbox {
            user: target.user.clone(),
            name: target.name.clone(),
        })?;
    let now = now();
    if let (Some(id), true) = (&message_id, window > 0) {
        let seen: Option<i64> = conn
            .query_row(
                "SELECT delivered_at FROM deliveries WHERE message_id = ?1 AND mailbox_uniqueid = ?2",
                params![id, mailbox.uniqueid.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some_and(|at| now - at < window as i64) {
            return Ok(Delivered::Duplicate {
                mailbox: mailbox.name,
            });
        }
        conn.execute(
            "INSERT INTO deliveries (message_id, mailbox_uniqueid, delivered_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (message_id, mailbox_uniqueid) DO UPDATE SET delivered_at = excluded.delivered_at",
            params![id, mailbox.uniqueid.as_str(), now],
        )?;
    }
    let appended = insert_record(conn, &mailbox, &Flags::new(), internaldate, size, &guid)?;
    Ok(Delivered::Stored {
        mailbox: mailbox.name,
        appended,
    })
}

/// Adds a record under the next UID after checking quota.
fn insert_record(
    conn: &Connection,
    mailbox: &Mailbox,
    flags: &Flags,
    internaldate: i64,
    size: u64,
    guid: &Guid,
) -> Result<Appended> {
    check_quota(conn, mailbox.user_id, size, 1)?;
    let modseq = txn::next_modseq(conn, mailbox.user_id)?;
    let appended = insert_record_unchecked(conn, mailbox, flags, internaldate, size, guid, modseq)?;
    txn::touch_mailbox(conn, mailbox, modseq)?;
    Ok(appended)
}

/// Adds a record under the next UID at `modseq`; the caller checks quota and touches
/// the mailbox once for the whole operation.

fn insert_record_unchecked(
    conn: &Connection,
    mailbox: &Mailbox,
    flags: &Flags,
    internaldate: i64,
    size: u64,
    guid: &Guid,
    modseq: Modseq,
) -> Result<Appended> {
    let uid: i64 = conn.query_row(
        "UPDATE mailboxes SET last_uid = last_uid + 1, messages = messages + 1, bytes = bytes + ?2 \
         WHERE id = ?1 RETURNING last_uid",
        params![mailbox.id, size as i64],
        |r| r.get(0),
    )?;
    conn.prepare_cached(
        "INSERT INTO records (mailbox_id, uid, modseq, flags, internaldate, size, guid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        mailbox.id,
        uid,
        modseq as i64,
        flags.to_string(),
        internaldate,
        size as i64,
        &guid.as_bytes()[..]
    ])?;
    add_usage(conn, mailbox.user_id, size as i64, 1)?;
    Ok(Appended {
        mailbox: mailbox.uniqueid.clone(),
        uidvalidity: mailbox.uidvalidity,
        uid: uid as u32,
        modseq,
    })
}
