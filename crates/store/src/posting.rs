//! Posting one message into several mailboxes at once, all or nothing: an NNTP
//! article cross-posted to several newsgroups.

use std::sync::Arc;

use crate::acl::{Actor, Rights};
use crate::content::{has_index, insert_index};
use crate::error::{Result, StoreError};
use crate::flags::Flags;
use crate::ids::{Guid, UniqueId};
use crate::messages::{insert_record, Appended};
use crate::orphans::require_blob;
use crate::records::live_for;
use crate::store::Store;

impl Store {
    /// Stores `message` in every mailbox of `mailboxes` (duplicates ignored), each of
    /// which `actor` must hold the `p` (post) right on, in one transaction: when this
    /// returns `Ok`, every copy is durable; when it fails, no copy exists. The blob is
    /// written once per partition and durable before the commit, and removed again
    /// when the commit fails. Results follow the order of `mailboxes`.
    pub fn post(
        &self,
        actor: &Actor,
        mailboxes: &[UniqueId],
        internaldate: i64,
        message: &[u8],
    ) -> Result<Vec<Appended>> {
        let mut targets: Vec<UniqueId> = Vec::new();
        for m in mailboxes {
            if !targets.contains(m) {
                targets.push(m.clone());
            }
        }
        let guid = Guid::of(message);
        let size = message.len() as u64;
        let known = self.read(|conn| has_index(conn, &guid))?;
        let index = Arc::new(self.index_for(message, known));
        let _pin = self.shared.pins.pin(guid);
        let partitions: Vec<String> = self.read(|conn| {
            let mut parts = Vec::new();
            for id in &targets {
                let m = live_for(conn, actor, id, Rights::POST)?;
                if !parts.contains(&m.partition) {
                    parts.push(m.partition);
                }
            }
            Ok(parts)
        })?;
        let mut wrote: Vec<String> = Vec::new();
        let mut retried = false;
        let result = loop {
            if let Err(e) = partitions.iter().try_for_each(|p| {
                if self.blobs().put_with_guid(p, &guid, message)? && !wrote.contains(p) {
                    wrote.push(p.clone());
                }
                Ok::<_, StoreError>(())
            }) {
                break Err(e);
            }
            let (actor, targets) = (actor.clone(), targets.clone());
            let (index, blobs) = (index.clone(), self.shared.blobs.clone());
            let outcome = self.write(move |conn| {
                let mut out = Vec::with_capacity(targets.len());
                for id in &targets {
                    let mailbox = live_for(conn, &actor, id, Rights::POST)?;
                    require_blob(&blobs, &mailbox.partition, &guid, size)?;
                    if let Some(summary) = index.as_ref() {
                        insert_index(conn, &guid, summary, &mailbox.partition, size)?;
                    }
                    out.push(insert_record(
                        conn,
                        &mailbox,
                        &Flags::new(),
                        internaldate,
                        size,
                        &guid,
                    )?);
                }
                Ok(out)
            });
            match outcome {
                Err(StoreError::BlobVanished { .. }) if !retried => retried = true,
                other => break other,
            }
        };
        match result {
            Ok(appended) => {
                for a in &appended {
                    self.notify(&a.mailbox, a.modseq);
                }
                Ok(appended)
            }
            Err(e) => {
                for partition in wrote {
                    self.discard_blob(&partition, guid);
                }
                Err(e)
            }
        }
    }
}
