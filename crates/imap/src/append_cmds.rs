//! APPEND: one message, several at once (RFC 3502 MULTIAPPEND, all or none), and
//! messages assembled from text and parts of stored messages (RFC 4469 CATENATE).

use std::borrow::Cow;

use tern_store::{Actor, Mailbox, NewMessage, StoreError};

use crate::imap_url::MessageUrl;
use crate::response::parse_flags;
use crate::selected::compress_uids;
use crate::session::{Outcome, Session};
use crate::types::{AppendContent, AppendMessage, CatPart, SeqNum, SeqRange, SequenceSet};

impl<W> Session<W> {
    /// Stores every message or none, under consecutive UIDs, and answers
    /// `[APPENDUID uidvalidity uids]` (RFC 4315 with RFC 3502).
    pub(crate) fn append(&mut self, mailbox: &str, messages: &[AppendMessage]) -> Outcome {
        let actor = self.actor();
        let target = match self.store.resolve(&actor, mailbox) {
            Ok(Some((m, _))) => m,
            Ok(None) => return Outcome::no("[TRYCREATE] No such mailbox"),
            Err(e) => return Outcome::store_error(&e),
        };
        // Bytes pulled in by CATENATE URLs, over the whole command: what a client may
        // make the server assemble is bounded like what it may send.
        let mut fetched = 0usize;
        let mut batch = Vec::with_capacity(messages.len());
        for m in messages {
            let flags = match parse_flags(&m.flags) {
                Ok(f) => f,
                Err(bad) => return Outcome::bad(&format!("Invalid flag {bad}")),
            };
            let bytes = match &m.content {
                AppendContent::Literal { bytes, .. } => Cow::Borrowed(&bytes[..]),
                AppendContent::Catenate(parts) => match self.catenate(parts, &mut fetched) {
                    Ok(b) => Cow::Owned(b),
                    Err(refusal) => return refusal,
                },
            };
            if bytes.is_empty() {
                return Outcome::no("Empty message");
            }
            if bytes.len() > self.config.max_literal {
                return Outcome::no("[TOOBIG] Message larger than APPENDLIMIT");
            }
            let internaldate = m
                .date
                .map_or_else(crate::response::unix_now, |d| d.timestamp);
            batch.push((flags, internaldate, bytes));
        }
        let new: Vec<NewMessage<'_>> = batch
            .iter()
            .map(|(flags, internaldate, bytes)| NewMessage {
                flags: flags.clone(),
                internaldate: *internaldate,
                bytes,
            })
            .collect();
        // Into the selected mailbox: this session is the first to be told of the new
        // messages (its next report), so they are its \Recent, taken in the append's
        // own transaction rather than by one more write.
        let selected_here = self
            .selected
            .as_ref()
            .is_some_and(|v| v.id == target.uniqueid && !v.read_only);
        let result = if selected_here {
            self.store
                .append_all_taking_recent(&actor, &target.uniqueid, &new)
                .map(|(appended, above)| {
                    if let (Some(v), Some(last)) = (self.selected.as_mut(), appended.last()) {
                        v.claim_recent(above, last.uid);
                    }
                    appended
                })
        } else {
            self.store.append_all(&actor, &target.uniqueid, &new)
        };
        match result {
            Ok(appended) => {
                let uids: Vec<u32> = appended.iter().map(|a| a.uid).collect();
                let uidvalidity = appended
                    .first()
                    .map_or(target.uidvalidity, |a| a.uidvalidity);
                Outcome::ok_code(
                    &format!("[APPENDUID {uidvalidity} {}]", compress_uids(&uids)),
                    "APPEND completed",
                )
            }
            Err(StoreError::NoSuchMailbox { .. }) => Outcome::no("[TRYCREATE] No such mailbox"),
            Err(StoreError::OverQuota { .. }) => Outcome::no("[OVERQUOTA] Over quota"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// REPLACE (RFC 8508): the new version is appended first (all of APPEND's
    /// checks), and only once it is stored is the old one expunged, so a failed
    /// replacement leaves the original in place.
    pub(crate) fn replace(
        &mut self,
        uid: bool,
        number: u32,
        mailbox: &str,
        message: &AppendMessage,
    ) -> Outcome {
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        if view.read_only {
            return Outcome::no("[READ-ONLY] Mailbox is read-only");
        }
        let one = SequenceSet::Ranges(vec![SeqRange {
            start: SeqNum::Value(number),
            end: SeqNum::Value(number),
        }]);
        let old = match view.resolve(&one, uid) {
            Ok(t) => match t.first() {
                Some(&(_, u)) => u,
                None => return Outcome::no("[NONEXISTENT] No such message"),
            },
            Err(e) => return Outcome::bad(&e),
        };
        let (id, actor) = (view.id.clone(), view.actor.clone());
        let appended = self.append(mailbox, std::slice::from_ref(message));
        if appended.status != "OK" {
            return appended;
        }
        self.untagged(&format!(
            "OK {}",
            appended
                .text
                .replace("APPEND completed", "Replacement stored")
        ));
        match self.store.expunge(&actor, &id, &[old]) {
            Ok(gone) => {
                if let Some(v) = self.selected.as_mut() {
                    v.expunged_here(&gone, None);
                }
                Outcome::ok("REPLACE completed")
            }
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// The message a CATENATE describes: its parts joined in order (RFC 4469 3). A URL
    /// that cannot be read answers `NO [BADURL url]`.
    fn catenate(&self, parts: &[CatPart], fetched: &mut usize) -> Result<Vec<u8>, Outcome> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(text) => out.extend_from_slice(text),
                CatPart::Url(url) => {
                    let bytes = self.url_bytes(url).map_err(|why| {
                        let shown: String = url.chars().filter(|c| !c.is_control()).collect();
                        Outcome::no(&format!("[BADURL {shown}] {why}"))
                    })?;
                    *fetched += bytes.len();
                    if *fetched > self.config.max_literal {
                        return Err(Outcome::no("[TOOBIG] CATENATE assembles too much"));
                    }
                    out.extend_from_slice(&bytes);
                }
            }
            if out.len() > self.config.max_literal {
                return Err(Outcome::no("[TOOBIG] Message larger than APPENDLIMIT"));
            }
        }
        Ok(out)
    }

    /// What `url` names on this server, read with the user's own rights.
    fn url_bytes(&self, url: &str) -> Result<Vec<u8>, String> {
        let url = MessageUrl::parse(url).map_err(|e| e.to_string())?;
        if url.auth.is_some() {
            // RFC 4469 5: a URLAUTH URL is fetched as URLFETCH would.
            return self
                .authorized_message(&url)
                .and_then(|raw| url.cut(&raw))
                .ok_or_else(|| "URLAUTH does not admit this".into());
        }
        let actor = self.actor();
        if let Some(host) = &url.host {
            if !host.eq_ignore_ascii_case(&self.config.hostname) {
                return Err("URL names another server".into());
            }
        }
        if url.user.as_ref().is_some_and(|u| *u != actor.name) {
            return Err("URL names another user".into());
        }
        let raw = self.read_url_message(&actor, &url, |_| Ok(()))?;
        url.cut(&raw).ok_or_else(|| "No such section".into())
    }

    /// The whole message `url` names, read with `reader`'s rights: its mailbox (once
    /// `check` accepts it), the UIDVALIDITY, the live message. The caller cuts the
    /// section and partial ([`MessageUrl::cut`]).
    pub(crate) fn read_url_message(
        &self,
        reader: &Actor,
        url: &MessageUrl,
        check: impl FnOnce(&Mailbox) -> Result<(), String>,
    ) -> Result<Vec<u8>, String> {
        let mailbox = match self.store.resolve(reader, &url.mailbox) {
            Ok(Some((m, _))) => m,
            Ok(None) => return Err("No such mailbox".into()),
            Err(e) => return Err(e.to_string()),
        };
        check(&mailbox)?;
        if url.uidvalidity.is_some_and(|v| v != mailbox.uidvalidity) {
            return Err("UIDVALIDITY has changed".into());
        }
        let records = self
            .store
            .records_by_uid(reader, &mailbox.uniqueid, &[url.uid])
            .map_err(|e| e.to_string())?;
        let record = records
            .into_iter()
            .find(|r| r.uid == url.uid && r.expunged_modseq.is_none())
            .ok_or("No such message")?;
        self.store
            .message(&mailbox, &record)
            .map_err(|e| e.to_string())
    }
}
