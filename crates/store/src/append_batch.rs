//! Appending one or more messages to a mailbox as a single transaction: IMAP APPEND,
//! and MULTIAPPEND (RFC 3502), where either every message is stored or none is.

use std::sync::Arc;

use crate::acl::{Actor, Rights};
use crate::content::{has_index, insert_index, ContentSummary};
use crate::error::{Result, StoreError};
use crate::flagging::take_recent_in;
use crate::flags::Flags;
use crate::ids::{Guid, Uid, UniqueId};
use crate::messages::{insert_record, Appended};
use crate::orphans::require_blob;
use crate::records::live_for;
use crate::store::Store;
use crate::users::check_quota;

/// One message to append.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// Its flags (keywords enter the mailbox's table within its cap).
    pub flags: Flags,
    /// Its INTERNALDATE, Unix seconds.
    pub internaldate: i64,
    /// The message as the client sent it.
    pub bytes: &'a [u8],
}

/// What the write transaction needs of one message (owned: the writer runs it on its
/// own thread).
struct Pending {
    flags: Flags,
    internaldate: i64,
    size: u64,
    guid: Guid,
    index: Option<ContentSummary>,
    pop3_uidl: Option<String>,
}

impl Store {
    /// Appends `messages` to a mailbox, in order, under consecutive UIDs; needs the `i`
    /// right. All or nothing: rights and quota are checked for the batch as a whole,
    /// every blob is durable before the one commit that creates every record, and the
    /// call returns after that commit. A batch that fails leaves no record and removes
    /// the blobs it wrote, as [`Store::append`] does for one message.
    pub fn append_all(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<Appended>> {
        let items = messages.iter().map(|m| (m, None)).collect::<Vec<_>>();
        self.append_batch(actor, mailbox, &items, false)
            .map(|(appended, _)| appended)
    }

    /// [`Store::append_all`] for a session that has `mailbox` selected: in the same
    /// transaction it takes \Recent (as [`Store::take_recent`] would) up to the last
    /// message appended, and returns the watermark before, so the messages above it
    /// are \Recent for that session and no other. Without it, every session that
    /// shows the new message before one of them took it asks the writer to take it.
    pub fn append_all_taking_recent(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        messages: &[NewMessage<'_>],
    ) -> Result<(Vec<Appended>, Uid)> {
        let items = messages.iter().map(|m| (m, None)).collect::<Vec<_>>();
        self.append_batch(actor, mailbox, &items, true)
    }

    /// The one path every IMAP append takes; `pop3_uidl` gives a message a stored POP3
    /// UIDL, checked in the same transaction. With `take_recent`, also returns the
    /// \Recent watermark it moved past the appended messages (else the mailbox's, as
    /// it was).
    pub(crate) fn append_batch(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        messages: &[(&NewMessage<'_>, Option<String>)],
        take_recent: bool,
    ) -> Result<(Vec<Appended>, Uid)> {
        if messages.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut pending = Vec::with_capacity(messages.len());
        for (m, uidl) in messages {
            let guid = Guid::of(m.bytes);
            let known = self.read(|conn| has_index(conn, &guid))?;
            pending.push(Pending {
                flags: m.flags.clone(),
                internaldate: m.internaldate,
                size: m.bytes.len() as u64,
                guid,
                index: self.index_for(m.bytes, known),
                pop3_uidl: uidl.clone(),
            });
        }
        let pending = Arc::new(pending);
        let total: u64 = pending.iter().map(|p| p.size).sum();
        let count = pending.len() as u64;
        let _pins: Vec<_> = pending
            .iter()
            .map(|p| self.shared.pins.pin(p.guid))
            .collect();
        let mut wrote: Vec<(String, Guid)> = Vec::new();
        let mut retried = false;
        let result = loop {
            let target = match self.read(|conn| {
                let target = live_for(conn, actor, mailbox, Rights::INSERT)?;
                check_quota(conn, target.user_id, total, count)?;
                Ok(target)
            }) {
                Ok(t) => t,
                Err(e) => break Err(e),
            };
            let mut put = Ok(());
            for (p, (m, _)) in pending.iter().zip(messages) {
                match self
                    .blobs()
                    .put_with_guid(&target.partition, &p.guid, m.bytes)
                {
                    Ok(true) => {
                        let key = (target.partition.clone(), p.guid);
                        if !wrote.contains(&key) {
                            wrote.push(key);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        put = Err(e);
                        break;
                    }
                }
            }
            if let Err(e) = put {
                break Err(e);
            }
            let (actor, id) = (actor.clone(), mailbox.clone());
            let (batch, blobs) = (pending.clone(), self.shared.blobs.clone());
            let outcome = self.write(move |conn| {
                // insert_record checks quota per message, usage growing as it goes.
                let mailbox = live_for(conn, &actor, &id, Rights::INSERT)?;
                let mut appended = Vec::with_capacity(batch.len());
                for p in batch.iter() {
                    require_blob(&blobs, &mailbox.partition, &p.guid, p.size)?;
                    if let Some(summary) = &p.index {
                        insert_index(conn, &p.guid, summary, &mailbox.partition, p.size)?;
                    }
                    let a =
                        insert_record(conn, &mailbox, &p.flags, p.internaldate, p.size, &p.guid)?;
                    if let Some(u) = &p.pop3_uidl {
                        crate::pop3_uidl::set_new(conn, &mailbox, a.uid, u)?;
                    }
                    appended.push(a);
                }
                // `mailbox` was read before the inserts; its watermark is unchanged.
                let recent_above = match appended.last() {
                    Some(last) if take_recent => take_recent_in(conn, &mailbox, last.uid)?,
                    _ => mailbox.recent_uid,
                };
                Ok((appended, recent_above))
            });
            match outcome {
                // Collected between our write (or our finding it) and the job: write
                // it again, once.
                Err(StoreError::BlobVanished { .. }) if !retried => retried = true,
                other => break other,
            }
        };
        match result {
            Ok((appended, recent_above)) => {
                if let Some(last) = appended.last() {
                    self.notify(&last.mailbox, last.modseq);
                }
                Ok((appended, recent_above))
            }
            Err(e) => {
                for (partition, guid) in wrote {
                    self.discard_blob(&partition, guid);
                }
                Err(e)
            }
        }
    }
}
