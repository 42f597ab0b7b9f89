//! Records (messages in mailboxes): append, deliver, flag changes, delayed expunge,
//! copy, and the "changed since modseq" query.

use rusqlite::{params, Connection, OptionalExtension};

use std::sync::Arc;

use crate::acl::{Acl, Actor, Rights};
use crate::append_batch::NewMessage;
use crate::blobs::BlobStore;
use crate::content::{has_index, insert_index};
use crate::error::{Result, StoreError};
use crate::flagging::expunge_in;
use crate::flags::Flags;
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::{live_by_uniqueid, Mailbox};
use crate::names::{normalize_mailbox, normalize_user};
use crate::orphans::require_blob;
use crate::record_cache::StateKey;
use crate::records::{live_for, records_in};
use crate::sql::Cached;
use crate::store::{now, Store};
use crate::txn;
use crate::users::{add_usage, check_quota};

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
    /// The folder asked for (`user+folder@`). The copy goes there only when the folder
    /// exists and its ACL gives `anyone` the `p` (post) right; otherwise to INBOX.
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

/// How writing the blob to one partition went, shared by that partition's recipients
/// (StoreError is not Clone): on failure, whether the disk was full, and the message.
type BlobOutcome = Result<(), (bool, String)>;

struct Resolved {
    mailbox: Mailbox,
}

impl Store {
    /// Appends a message to a mailbox (IMAP APPEND); needs the `i` right. The blob is
    /// durable before the record is committed, and the call returns after the commit.
    ///
    /// A refused append leaves nothing on disk: rights and quota are checked before the
    /// blob is written, and a blob this call wrote for a record that did not commit is
    /// removed (see `orphans.rs` for why that is safe against a concurrent delivery of
    /// the same message).
    pub fn append(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        flags: &Flags,
        internaldate: i64,
        message: &[u8],
    ) -> Result<Appended> {
        self.append_inner(actor, mailbox, flags, internaldate, message, None)
    }

    /// [`Store::append`], the record created with `pop3_uidl` when given (checked in
    /// the same transaction).
    pub(crate) fn append_inner(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        flags: &Flags,
        internaldate: i64,
        message: &[u8],
        pop3_uidl: Option<String>,
    ) -> Result<Appended> {
        let one = NewMessage {
            flags: flags.clone(),
            internaldate,
            bytes: message,
        };
        let (mut appended, _) = self.append_batch(actor, mailbox, &[(&one, pop3_uidl)], false)?;
        appended.pop().ok_or(StoreError::WriterGone)
    }

    /// Appends as the mailbox's owner, naming it by user and name: for tools and
    /// tests that act for the owner rather than for a logged-in client.
    pub fn append_as_owner(
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
        let owner = Actor {
            name: user,
            is_admin: false,
        };
        self.append(&owner, &target.uniqueid, flags, internaldate, message)
    }

    /// Delivers one message to several recipients (LMTP), one result per target in the
    /// same order. Each recipient succeeds or fails alone (unknown user, over quota),
    /// and every `Ok` is durable when this returns. The blob is written once per
    /// partition however many recipients share it, not at all when every recipient
    /// is refused before (unknown, over quota), and removed again when no recipient's
    /// record committed.
    pub fn deliver(
        &self,
        message: &[u8],
        targets: &[DeliveryTarget],
        options: &DeliveryOptions,
    ) -> Vec<Result<Delivered>> {
        let guid = Guid::of(message);
        let size = message.len() as u64;
        let internaldate = options.internaldate.unwrap_or_else(now);
        let (resolved, known): (Vec<Result<Resolved>>, bool) = match self.read(|conn| {
            let resolved = targets
                .iter()
                .map(|t| resolve_target(conn, t, size))
                .collect::<Vec<_>>();
            Ok((resolved, has_index(conn, &guid)?))
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
        // Indexed once, outside the writer, and shared by every recipient's job.
        let index = Arc::new(self.index_for(message, known));
        let mut results: Vec<Option<Result<Delivered>>> = Vec::with_capacity(targets.len());
        let mut todo: Vec<(usize, Mailbox)> = Vec::new();
        let mut partition_of: Vec<Option<String>> = vec![None; targets.len()];
        for (i, r) in resolved.into_iter().enumerate() {
            match r {
                Ok(t) => {
                    partition_of[i] = Some(t.mailbox.partition.clone());
                    todo.push((i, t.mailbox));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let _pin = self.shared.pins.pin(guid);
        // Partitions where a call of ours wrote the blob (rather than finding it).
        let mut wrote: Vec<String> = Vec::new();
        // Two rounds at most: the second for recipients whose blob was collected
        // between our finding it and their job (see `orphans.rs`).
        for round in 0..2 {
            let mut written: Vec<(String, BlobOutcome)> = Vec::new();
            let mut pending = Vec::with_capacity(todo.len());
            for (i, mailbox) in todo.drain(..) {
                let partition = mailbox.partition.clone();
                let blob = match written.iter().find(|(p, _)| *p == partition) {
                    Some((_, r)) => r.clone(),
                    None => {
                        let r = self.blobs().put_with_guid(&partition, &guid, message);
                        if matches!(r, Ok(true)) && !wrote.contains(&partition) {
                            wrote.push(partition.clone());
                        }
                        let out = r.map(|_| ()).map_err(|e| (e.is_disk_full(), e.to_string()));
                        written.push((partition, out.clone()));
                        out
                    }
                };
                if let Err((disk_full, msg)) = blob {
                    results[i] = Some(Err(if disk_full {
                        StoreError::DiskFull(msg)
                    } else {
                        StoreError::CommitFailed(msg)
                    }));
                    continue;
                }
                let message_id = options.message_id.clone();
                let window = options.duplicate_window_secs;
                let (index, blobs, target) =
                    (index.clone(), self.shared.blobs.clone(), mailbox.clone());
                let job = self.submit(move |conn| {
                    if let Some(summary) = index.as_ref() {
                        insert_index(conn, &guid, summary, &target.partition, size)?;
                    }
                    deliver_one(
                        conn,
                        &blobs,
                        &target,
                        guid,
                        size,
                        internaldate,
                        message_id,
                        window,
                    )
                });
                pending.push((i, mailbox, job));
            }
            for (i, mailbox, job) in pending {
                match job.wait() {
                    Err(StoreError::BlobVanished { .. }) if round == 0 => todo.push((i, mailbox)),
                    r => results[i] = Some(r),
                }
            }
            if todo.is_empty() {
                break;
            }
        }
        let results: Vec<Result<Delivered>> = results
            .into_iter()
            .map(|r| r.unwrap_or(Err(StoreError::WriterGone)))
            .collect();
        let mut stored_in: Vec<String> = Vec::new();
        for (r, partition) in results.iter().zip(partition_of) {
            if let (Ok(Delivered::Stored { appended, .. }), Some(p)) = (r, partition) {
                self.notify(&appended.mailbox, appended.modseq);
                stored_in.push(p);
            }
        }
        for partition in wrote.iter().filter(|p| !stored_in.contains(p)) {
            self.discard_blob(partition, guid);
        }
        results
    }

    /// Copies records to another mailbox (IMAP COPY): the copies share the blobs
    /// (copied to the target's partition first when it differs), keep flags and
    /// INTERNALDATE, and get new UIDs in the target in the order given. Returns
    /// (source UID, new UID) pairs; UIDs that do not exist are skipped.
    /// Needs `r` on the source and `i` on the target.
    pub fn copy(
        &self,
        actor: &Actor,
        from: &UniqueId,
        uids: &[Uid],
        to: &UniqueId,
    ) -> Result<Vec<(Uid, Uid)>> {
        self.transfer(actor, from, uids, to, false)
    }

    /// Moves records (IMAP MOVE, RFC 6851): a copy and an expunge of the originals in
    /// one transaction, so no crash can leave both or neither.
    /// Needs `r`, `t` and `e` on the source and `i` on the target.
    pub fn move_records(
        &self,
        actor: &Actor,
        from: &UniqueId,
        uids: &[Uid],
        to: &UniqueId,
    ) -> Result<Vec<(Uid, Uid)>> {
        self.transfer(actor, from, uids, to, true)
    }

    fn transfer(
        &self,
        actor: &Actor,
        from: &UniqueId,
        uids: &[Uid],
        to: &UniqueId,
        expunge: bool,
    ) -> Result<Vec<(Uid, Uid)>> {
        let source_needs = if expunge {
            Rights::READ | Rights::DELETE_MESSAGES | Rights::EXPUNGE
        } else {
            Rights::READ
        };
        let (source, records) = self.read(|conn| {
            let source = live_for(conn, actor, from, source_needs)?;
            let records = records_in(conn, source.id, uids, false)?;
            Ok((source, records))
        })?;
        let target = self.read(|conn| live_for(conn, actor, to, Rights::INSERT))?;
        if source.partition != target.partition {
            for r in &records {
                if !self.blobs().contains(&target.partition, &r.guid, r.size)? {
                    let bytes = self.blobs().read(&source.partition, &r.guid, r.size)?;
                    self.blobs()
                        .put_with_guid(&target.partition, &r.guid, &bytes)?;
                }
            }
        }
        let (from_id, to_id, actor) = (from.clone(), to.clone(), actor.clone());
        let (pairs, modseqs, carried) = self.write(move |conn| {
            let source = live_for(conn, &actor, &from_id, source_needs)?;
            let target = live_for(conn, &actor, &to_id, Rights::INSERT)?;
            // Only what is still there when the transaction runs is moved.
            let wanted: Vec<Uid> = records.iter().map(|r| r.uid).collect();
            let records = records_in(conn, source.id, &wanted, false)?;
            let mut pairs = Vec::with_capacity(records.len());
            if records.is_empty() {
                return Ok((pairs, (0, 0), None));
            }
            let total: u64 = records.iter().map(|r| r.size).sum();
            if !(expunge && source.user_id == target.user_id) {
                check_quota(conn, target.user_id, total, records.len() as u64)?;
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
            let mut source_modseq = 0;
            let mut carried = None;
            if expunge {
                let (gone, m) = expunge_in(conn, &source, &wanted)?;
                source_modseq = m;
                // The source's kept read goes past the expunge, unless the records
                // also went into it (a MOVE within one mailbox).
                if source.id != target.id && !gone.is_empty() {
                    let after = StateKey::now(conn, &source)?;
                    carried = Some((StateKey::of(&source), after, gone));
                }
            }
            Ok((pairs, (modseq, source_modseq), carried))
        })?;
        if let Some((before, after, gone)) = carried {
            self.shared
                .live_records
                .carry_past_expunge(&before, after, &gone);
        }
        if !pairs.is_empty() {
            self.notify(to, modseqs.0);
            if expunge {
                self.notify(from, modseqs.1);
            }
        }
        Ok(pairs)
    }
}

/// The mailbox a recipient's copy goes to: the folder asked for when it exists and
/// `anyone` may post to it (Cyrus's rule: the sender is not authenticated, so the
/// right must be everyone's), else INBOX. Refused early (before any blob is
/// written) when the user is unknown or has no room for `size` more bytes.
fn resolve_target(conn: &Connection, target: &DeliveryTarget, size: u64) -> Result<Resolved> {
    let user =
        normalize_user(&target.user).map_err(|_| StoreError::NoSuchUser(target.user.clone()))?;
    let user_id = txn::user_id(conn, &user)?;
    check_quota(conn, user_id, size, 1)?;
    if user == crate::shared::SHARED_OWNER {
        // A shared mailbox has no INBOX to fall back to: it takes the message only
        // while its ACL lets anyone post.
        let shared = target
            .folder
            .as_deref()
            .and_then(|f| normalize_mailbox(f).ok());
        return match shared
            .map(|f| txn::find_live_mailbox(conn, &user, &f))
            .transpose()?
        {
            Some(Some(mailbox)) if Acl::parse(&mailbox.acl).anyone_may_post() => {
                Ok(Resolved { mailbox })
            }
            _ => Err(StoreError::NoSuchUser(target.user.clone())),
        };
    }
    if let Some(folder) = target
        .folder
        .as_deref()
        .and_then(|f| normalize_mailbox(f).ok())
    {
        if let Some(mailbox) = txn::find_live_mailbox(conn, &user, &folder)?
            .filter(|m| m.name == "INBOX" || Acl::parse(&m.acl).anyone_may_post())
        {
            return Ok(Resolved { mailbox });
        }
    }
    Ok(Resolved {
        mailbox: txn::live_mailbox(conn, &user, "INBOX")?,
    })
}

#[allow(clippy::too_many_arguments)]
fn deliver_one(
    conn: &Connection,
    blobs: &BlobStore,
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
            .query_row_cached(
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
        conn.execute_cached(
            "INSERT INTO deliveries (message_id, mailbox_uniqueid, delivered_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (message_id, mailbox_uniqueid) DO UPDATE SET delivered_at = excluded.delivered_at",
            params![id, mailbox.uniqueid.as_str(), now],
        )?;
    }
    require_blob(blobs, &mailbox.partition, &guid, size)?;
    let appended = insert_record(conn, &mailbox, &Flags::new(), internaldate, size, &guid)?;
    Ok(Delivered::Stored {
        mailbox: mailbox.name,
        appended,
    })
}

/// Adds a record under the next UID after checking quota.
pub(crate) fn insert_record(
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
/// the mailbox once for the whole operation. New keywords enter the mailbox's table
/// within its cap.
fn insert_record_unchecked(
    conn: &Connection,
    mailbox: &Mailbox,
    flags: &Flags,
    internaldate: i64,
    size: u64,
    guid: &Guid,
    modseq: Modseq,
) -> Result<Appended> {
    let appended = insert_row(conn, mailbox, flags, internaldate, size, guid, modseq)?;
    crate::keywords::add_capped(conn, mailbox, flags)?;
    Ok(appended)
}

/// Adds the record row under the next UID at `modseq` and counts it in the mailbox and
/// the user's usage; the caller sees to quota, keywords and the mailbox's modseq.
pub(crate) fn insert_row(
    conn: &Connection,
    mailbox: &Mailbox,
    flags: &Flags,
    internaldate: i64,
    size: u64,
    guid: &Guid,
    modseq: Modseq,
) -> Result<Appended> {
    let uid: i64 = conn.query_row_cached(
        "UPDATE mailboxes SET last_uid = last_uid + 1, messages = messages + 1, bytes = bytes + ?2 \
         WHERE id = ?1 RETURNING last_uid",
        params![mailbox.id, size as i64],
        |r| r.get(0),
    )?;
    conn.prepare_cached(
        "INSERT INTO records (mailbox_id, uid, modseq, flags, internaldate, size, guid, saved_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        mailbox.id,
        uid,
        modseq as i64,
        flags.to_string(),
        internaldate,
        size as i64,
        &guid.as_bytes()[..],
        now()
    ])?;
    add_usage(conn, mailbox.user_id, size as i64, 1)?;
    Ok(Appended {
        mailbox: mailbox.uniqueid.clone(),
        uidvalidity: mailbox.uidvalidity,
        uid: uid as u32,
        modseq,
    })
}
