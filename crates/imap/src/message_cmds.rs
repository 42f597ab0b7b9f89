//! Commands on the messages of the selected mailbox: FETCH, STORE, SEARCH, COPY,
//! MOVE, EXPUNGE, CLOSE, and APPEND (which may target any mailbox).

use std::fmt::Write as _;

use tern_store::{Flag, FlagOp, Flags, StoreError, Uid};

use crate::fetch::{
    body_items, sets_seen, FetchContext, FetchError, FetchStream, Target, MAX_BODY_ITEMS,
};
use crate::response::{parse_flags, put_flag_list, put_number};
use crate::search::search_selected;
use crate::selected::compress_uids;
use crate::session::{Outcome, Session};
use crate::types::{FetchAttr, PartialRange, SearchKey, SearchReturn, SequenceSet, StoreOp};

impl<W> Session<W> {
    pub(crate) fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchAttr],
        changed_since: Option<u64>,
        vanished: bool,
        partial: Option<PartialRange>,
    ) -> Outcome {
        if vanished && !(uid && changed_since.is_some() && self.enabled.qresync) {
            return Outcome::bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled");
        }
        let mut items = items.to_vec();
        if changed_since.is_some() || items.contains(&FetchAttr::Modseq) {
            self.enable_condstore();
        }
        // Under UIDONLY the UID heads the UIDFETCH response instead (RFC 9586 3.3).
        if uid && !self.enabled.uidonly && !items.contains(&FetchAttr::Uid) {
            items.insert(0, FetchAttr::Uid);
        }
        if changed_since.is_some() && !items.contains(&FetchAttr::Modseq) {
            items.push(FetchAttr::Modseq);
        }
        if self.enabled.condstore
            && items.contains(&FetchAttr::Flags)
            && !items.contains(&FetchAttr::Modseq)
        {
            items.push(FetchAttr::Modseq);
        }
        if body_items(&items) > MAX_BODY_ITEMS {
            return Outcome::no(&format!(
                "[LIMIT] At most {MAX_BODY_ITEMS} body sections in one FETCH"
            ));
        }
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        let mut targets = match view.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => return Outcome::bad(&e),
        };
        if let Some(window) = partial {
            // RFC 9394 3.2: the window is over the set's messages in mailbox order.
            targets = window.select(&targets).to_vec();
        }
        let id = view.id.clone();
        let actor = view.actor.clone();
        let read_only = view.read_only;
        let since = view.seen_modseq;
        let result = (|| -> Result<FetchStream, FetchError> {
            let uids: Vec<Uid> = targets.iter().map(|t| t.1).collect();
            // The change report after this FETCH comes from the same read.
            let (mailbox, mut records, changed) =
                self.store.records_and_changes(&actor, &id, &uids, since)?;
            if let Some(v) = self.selected.as_mut() {
                v.prefetch(since, mailbox.clone(), changed);
            }
            if vanished {
                // Every UID of the set expunged since the client's modseq (RFC 7162
                // 3.2.6), also those this session has already seen go.
                // A UID this session still counts (its expunge not yet reported) is
                // left to the VANISHED that will report it: announced here too, the
                // client would take it out of its map without the count dropping.
                let view = self.selected.as_ref();
                let ranges = view.map(|v| v.uid_ranges(set)).unwrap_or_default();
                let (_, changed) =
                    self.store
                        .changed_since(&actor, &id, changed_since.unwrap_or(0))?;
                let mut gone: Vec<Uid> = changed
                    .iter()
                    .filter(|r| r.expunged_modseq.is_some())
                    .map(|r| r.uid)
                    .filter(|u| ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&u)))
                    .filter(|u| view.is_none_or(|v| v.seq_of(*u).is_none()))
                    .collect();
                gone.sort_unstable();
                if !gone.is_empty() {
                    self.untagged(&format!("VANISHED (EARLIER) {}", compress_uids(&gone)));
                }
                records.retain(|r| r.expunged_modseq.is_none());
            }
            if let Some(since) = changed_since {
                records.retain(|r| r.modseq > since);
            }
            let mut items = items.clone();
            if sets_seen(&items) && !read_only {
                let unseen: Vec<Uid> = records
                    .iter()
                    .filter(|r| r.expunged_modseq.is_none() && !r.flags.contains(&Flag::Seen))
                    .map(|r| r.uid)
                    .collect();
                if !unseen.is_empty() {
                    let seen: Flags = [Flag::Seen].into_iter().collect();
                    let outcome =
                        self.store
                            .store_flags(&actor, &id, &unseen, FlagOp::Add, &seen, None)?;
                    // The change set read above predates this write.
                    if let Some(v) = self.selected.as_mut() {
                        v.drop_prefetched();
                    }
                    if let Some(v) = self.selected.as_mut() {
                        v.own_flag_changes(outcome.before, &outcome.changed);
                    }
                    // Both in UID order: one walk.
                    let mut at = 0;
                    for change in outcome.changed {
                        at += records[at..].partition_point(|r| r.uid < change.uid);
                        if let Some(r) = records.get_mut(at).filter(|r| r.uid == change.uid) {
                            r.flags = change.flags;
                            r.modseq = change.modseq;
                        }
                    }
                    if !items.contains(&FetchAttr::Flags) {
                        items.push(FetchAttr::Flags);
                    }
                }
            }
            let ctx = FetchContext {
                store: &self.store,
                actor: &actor,
                mailbox: &mailbox,
                cache: &self.cache,
            };
            if items.iter().any(|i| {
                matches!(
                    i,
                    FetchAttr::Envelope | FetchAttr::BodyStructure | FetchAttr::Body
                )
            }) {
                crate::fetch::prefetch_summaries(&ctx, records.iter())?;
            }
            let view = self
                .selected
                .as_mut()
                .ok_or(FetchError::Store(StoreError::WriterGone))?;
            if items.contains(&FetchAttr::Flags) {
                // Written before the stream (see `Session::stream_fetch`).
                let lines = view.announce_for(&self.store, records.iter().map(|r| &r.flags));
                for line in lines {
                    self.untagged(&line);
                }
            }
            let view = self
                .selected
                .as_ref()
                .ok_or(FetchError::Store(StoreError::WriterGone))?;
            // `targets` (the resolved set) and `records` both ascend by UID: one walk
            // gives each record its sequence number. Pushed into a vector sized once:
            // collected in place, the records' buffer was reallocated to the larger
            // targets, a copy of the whole answer's records.
            let mut numbered = targets.iter().peekable();
            let mut answer = Vec::with_capacity(records.len());
            for record in records {
                while numbered.next_if(|t| t.1 < record.uid).is_some() {}
                let Some(&(seq, _)) = numbered.next_if(|t| t.1 == record.uid) else {
                    continue;
                };
                let recent = view.recent.contains(&record.uid);
                answer.push(Target {
                    seq,
                    record,
                    recent,
                });
            }
            let targets = answer;
            Ok(FetchStream::new(
                mailbox,
                actor.clone(),
                items,
                targets,
                self.enabled.uidonly,
            ))
        })();
        match result {
            Ok(stream) => {
                // Written by `Session::handle` a bounded piece at a time.
                self.fetching = Some(stream);
                Outcome::ok("FETCH completed")
            }
            Err(e) => e.outcome(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_cmd(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        op: StoreOp,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Outcome {
        let flags = match parse_flags(flags) {
            Ok(f) => f,
            Err(bad) => return Outcome::bad(&format!("Invalid flag {bad}")),
        };
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        if view.read_only {
            return Outcome::no("[READ-ONLY] Mailbox is read-only");
        }
        let targets = match view.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => return Outcome::bad(&e),
        };
        let id = view.id.clone();
        let actor = view.actor.clone();
        let uids: Vec<Uid> = targets.iter().map(|t| t.1).collect();
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        let outcome = match self
            .store
            .store_flags(&actor, &id, &uids, op, &flags, unchanged_since)
        {
            Ok(o) => o,
            Err(e) => return Outcome::store_error(&e),
        };
        let condstore = self.enabled.condstore;
        // RFC 7162 3.1 and 3.2.4: once CONDSTORE or QRESYNC is on, every untagged FETCH
        // carries UID (and MODSEQ), so a client can apply it without a sequence map.
        let with_uid = uid || condstore || self.enabled.qresync;
        let uidonly = self.enabled.uidonly;
        if !silent || condstore {
            // Report the flags of every message in the set, changed or not (silent
            // CONDSTORE stores still report the new MODSEQ of what changed), as the
            // store left them.
            let mut records: Vec<&tern_store::FlagChange> = Vec::new();
            if !silent {
                records.extend(outcome.changed.iter().chain(&outcome.unchanged));
                records.sort_unstable_by_key(|r| r.uid);
            }
            let Some(view) = self.selected.as_mut() else {
                return Outcome::bad("No mailbox selected");
            };
            // Keywords this STORE created are announced before any FETCH shows them.
            let lines = view.announce_for(
                &self.store,
                outcome
                    .changed
                    .iter()
                    .map(|c| &c.flags)
                    .chain(records.iter().map(|r| &r.flags)),
            );
            // The FETCH lines go into one buffer, written in place (a STORE 1:* answers
            // for every message of the mailbox), numbers and flags without the
            // formatting machinery.
            let mut fetches = Vec::with_capacity(records.len().max(outcome.changed.len()) * 40);
            let head = |out: &mut Vec<u8>, seq: u32, uid: u32| {
                out.extend_from_slice(b"* ");
                crate::uidonly::put_fetch_head(out, seq, uid, uidonly);
            };
            // Records and targets are both in UID order: each sequence number is found
            // from where the one before was.
            let mut at = 0;
            if silent {
                for c in &outcome.changed {
                    if let Some(seq) = seq_in(&targets, &mut at, c.uid) {
                        head(&mut fetches, seq, c.uid);
                        if !uidonly {
                            fetches.extend_from_slice(b"UID ");
                            put_number(&mut fetches, c.uid.into());
                            fetches.push(b' ');
                        }
                        fetches.extend_from_slice(b"MODSEQ (");
                        put_number(&mut fetches, c.modseq);
                        fetches.extend_from_slice(b"))\r\n");
                    }
                }
            } else {
                for r in records {
                    if let Some(seq) = seq_in(&targets, &mut at, r.uid) {
                        head(&mut fetches, seq, r.uid);
                        if with_uid && !uidonly {
                            fetches.extend_from_slice(b"UID ");
                            put_number(&mut fetches, r.uid.into());
                            fetches.push(b' ');
                        }
                        let recent = view.recent.contains(&r.uid);
                        fetches.extend_from_slice(b"FLAGS ");
                        put_flag_list(&mut fetches, &r.flags, recent);
                        if condstore {
                            fetches.extend_from_slice(b" MODSEQ (");
                            put_number(&mut fetches, r.modseq);
                            fetches.push(b')');
                        }
                        fetches.extend_from_slice(b")\r\n");
                    }
                }
            }
            for l in &lines {
                self.untagged(l);
            }
            self.out.extend_from_slice(&fetches);
        }
        if let Some(view) = self.selected.as_mut() {
            view.own_flag_changes(outcome.before, &outcome.changed);
        }
        if !outcome.modified.is_empty() {
            let Some(view) = self.selected.as_ref() else {
                return Outcome::bad("No mailbox selected");
            };
            let mut modified: Vec<u32> = if uid {
                outcome.modified.clone()
            } else {
                outcome
                    .modified
                    .iter()
                    .filter_map(|u| view.seq_of(*u))
                    .collect()
            };
            modified.sort_unstable();
            return Outcome::ok_code(
                &format!("[MODIFIED {}]", compress_uids(&modified)),
                "Conditional STORE failed",
            );
        }
        Outcome::ok("STORE completed")
    }

    pub(crate) fn search_cmd(
        &mut self,
        uid: bool,
        criteria: &SearchKey,
        return_opts: Option<&[SearchReturn]>,
        tag: &str,
    ) -> Outcome {
        if self.selected.is_none() {
            return Outcome::bad("No mailbox selected");
        }
        if contains_modseq(criteria) {
            self.enable_condstore();
        }
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        let budget = self.config.search_budget;
        let result =
            search_selected(&self.store, &self.cache, view, criteria, budget).map(|(_, hits)| {
                hits.into_iter()
                    .map(|(s, r)| (s, r.uid, r.modseq))
                    .collect::<Vec<_>>()
            });
        let hits = match result {
            Ok(h) => h,
            Err(e) => return e.outcome(),
        };
        let numbers: Vec<u32> = hits.iter().map(|h| if uid { h.1 } else { h.0 }).collect();
        let max_modseq = hits.iter().map(|h| h.2).max();
        let wants_modseq = contains_modseq(criteria);
        // IMAP4rev2 has no SEARCH response: ESEARCH, ALL when nothing else is asked
        // (RFC 9051 6.4.4).
        let return_opts = match return_opts {
            None if self.enabled.rev2 => Some(&[][..]),
            other => other,
        };
        match return_opts {
            None => {
                let mut line = String::from("SEARCH");
                for n in &numbers {
                    // Written in place: a search of a whole mailbox answers thousands.
                    let _ = write!(line, " {n}");
                }
                if let (true, Some(m)) = (wants_modseq, max_modseq) {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.untagged(&line);
            }
            Some(opts) => self.answer_esearch(tag, uid, opts, &hits, criteria, None, wants_modseq),
        }
        Outcome::ok("SEARCH completed")
    }

    pub(crate) fn copy_or_move(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        target: &str,
        moving: bool,
    ) -> Outcome {
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        if moving && view.read_only {
            return Outcome::no("[READ-ONLY] Mailbox is read-only");
        }
        let targets = match view.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => return Outcome::bad(&e),
        };
        let id = view.id.clone();
        let actor = view.actor.clone();
        let dest = match self.store.resolve(&actor, target) {
            Ok(Some((m, _))) => m,
            Ok(None) => return Outcome::no("[TRYCREATE] No such mailbox"),
            Err(e) => return Outcome::store_error(&e),
        };
        let uids: Vec<Uid> = targets.iter().map(|t| t.1).collect();
        let result = if moving {
            self.store.move_records(&actor, &id, &uids, &dest.uniqueid)
        } else {
            self.store.copy(&actor, &id, &uids, &dest.uniqueid)
        };
        let pairs = match result {
            Ok(p) => p,
            Err(StoreError::OverQuota { .. }) => return Outcome::no("[OVERQUOTA] Over quota"),
            Err(e) => return Outcome::store_error(&e),
        };
        let code = if pairs.is_empty() {
            String::new()
        } else {
            // Each list as runs, in pair order (a run only where UIDs ascend by one),
            // so both expand to the pairs as they are: a COPY of 40,000 messages
            // answers `1:40000`, not a line of 300 KB.
            let from: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
            let to: Vec<Uid> = pairs.iter().map(|p| p.1).collect();
            format!(
                "[COPYUID {} {} {}]",
                dest.uidvalidity,
                compress_uids(&from),
                compress_uids(&to)
            )
        };
        if moving {
            if !code.is_empty() {
                self.untagged(&format!("OK {code} Moved"));
            }
            let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
            let vanished = self.enabled.qresync || self.enabled.uidonly;
            if let Some(v) = self.selected.as_mut() {
                v.expunged_here(&moved, None);
                let lines = v.apply_expunges(vanished, true);
                self.expunges_reported |= !lines.is_empty();
                for l in lines {
                    self.untagged(&l);
                }
            }
            return Outcome::ok("MOVE completed");
        }
        if code.is_empty() {
            Outcome::ok("COPY completed")
        } else {
            Outcome::ok_code(&code, "COPY completed")
        }
    }

    pub(crate) fn expunge_cmd(&mut self, only: Option<&SequenceSet>) -> Outcome {
        let Some(view) = self.selected.as_ref() else {
            return Outcome::bad("No mailbox selected");
        };
        if view.read_only {
            return Outcome::no("[READ-ONLY] Mailbox is read-only");
        }
        let allowed: Option<Vec<Uid>> = match only {
            Some(set) => match view.resolve(set, true) {
                Ok(t) => Some(t.into_iter().map(|t| t.1).collect()),
                Err(e) => return Outcome::bad(&e),
            },
            None => None,
        };
        let id = view.id.clone();
        let actor = view.actor.clone();
        match self.store.expunge_deleted(&actor, &id, allowed.as_deref()) {
            Ok(gone) => {
                if let Some(v) = self.selected.as_mut() {
                    v.expunged_here(&gone.uids, Some(gone.modseq));
                    if !gone.uids.is_empty() {
                        v.own_change(gone.before, gone.modseq);
                    }
                }
                Outcome::ok("EXPUNGE completed")
            }
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// CLOSE: expunge \Deleted messages silently (when writable), then deselect.
    pub(crate) fn close(&mut self) -> Outcome {
        let Some(view) = self.selected.take() else {
            return Outcome::bad("No mailbox selected");
        };
        if !view.read_only {
            if let Err(e) = self.store.expunge_deleted(&view.actor, &view.id, None) {
                return Outcome::store_error(&e);
            }
        }
        Outcome::ok("CLOSE completed")
    }
}

pub(crate) fn contains_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::Modseq(_) => true,
        SearchKey::Not(k) => contains_modseq(k),
        SearchKey::Or(a, b) => contains_modseq(a) || contains_modseq(b),
        SearchKey::And(keys) => keys.iter().any(contains_modseq),
        _ => false,
    }
}

/// The sequence number of `uid` among `targets` (a resolved set, in mailbox order),
/// looked for at or after `*at`, where the search leaves `*at`: a walk over UIDs in
/// ascending order finds each in the next place or by a binary search of the rest.
fn seq_in(targets: &[(u32, Uid)], at: &mut usize, uid: Uid) -> Option<u32> {
    if targets.get(*at).is_none_or(|t| t.1 != uid) {
        *at += targets[*at..].partition_point(|t| t.1 < uid);
    }
    let found = targets.get(*at).filter(|t| t.1 == uid).map(|t| t.0);
    if found.is_some() {
        *at += 1;
    }
    found
}
