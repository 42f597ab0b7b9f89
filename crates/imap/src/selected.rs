//! The selected mailbox as one session sees it: the map from message sequence numbers
//! to UIDs, and how changes made by others reach the client.
//!
//! The view holds only UIDs (4 bytes a message), so an idle session on a large
//! mailbox stays small; flags and sizes are read from the store when asked for.
//!
//! Sequence numbers must never go wrong (RFC 3501 7.4.1): a message expunged by
//! another session stays in this view, and stays fetchable (the store keeps expunged
//! records until `tern expire`), until the client is told with EXPUNGE or VANISHED.
//! That happens only at commands where the client can take it: never during FETCH,
//! STORE, SEARCH (without UID), COPY or MOVE.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use tern_store::{Actor, Flag, Flags, Modseq, Record, Store, StoreError, Uid, UniqueId};
use tokio::sync::watch;

use crate::response::{flags_lines, FlagList};
use crate::types::{SeqNum, SequenceSet};

/// One session's view of its selected mailbox.
pub(crate) struct Selected {
    /// The mailbox (followed across renames by its unique id).
    pub(crate) id: UniqueId,
    /// Who selected it: every read and change goes through the store's rights check.
    pub(crate) actor: Actor,
    /// EXAMINE, or SELECT of a mailbox the user may not change.
    pub(crate) read_only: bool,
    /// UIDs in sequence-number order (ascending).
    pub(crate) uids: Vec<Uid>,
    /// UIDs that are \Recent in this session.
    pub(crate) recent: BTreeSet<Uid>,
    /// The modseq up to which this view has pulled changes.
    pub(crate) seen_modseq: Modseq,
    /// UIDNEXT as last reported.
    pub(crate) uidnext: Uid,
    /// Expunged in the store, not yet reported to the client.
    pending_expunges: BTreeSet<Uid>,
    /// The lowest modseq among `pending_expunges` (or a lower bound of it): the client
    /// may be told it has everything up to just below it, and no further.
    pending_floor: Option<Modseq>,
    /// Flag changes this session made and already reported: (uid → modseq).
    reported: HashMap<Uid, Modseq>,
    /// Woken when the mailbox changes (for IDLE).
    pub(crate) watch: watch::Receiver<Modseq>,
    /// RFC 5182 `$`: the UIDs saved by the last SEARCH ... RETURN (SAVE).
    pub(crate) saved: Vec<Uid>,
    /// The keywords announced to the client in FLAGS: the mailbox's keyword table
    /// when last read. No FETCH response may show a keyword outside it (RFC 3501
    /// 7.2.6; imaptest checks), so [`Selected::announce_for`] runs before each.
    keywords: BTreeSet<String>,
    /// RFC 5267 searches kept up to date ([`crate::search_context`]).
    pub(crate) contexts: Vec<crate::search_context::SearchContext>,
    /// Selected under IMAP4rev2: \Recent is neither given nor reported (RFC 9051).
    pub(crate) rev2: bool,
    /// What changed since `seen_modseq`, read with the records of the command being
    /// answered ([`Selected::prefetch`]): the next refresh takes it instead of reading.
    prefetched: Option<Prefetched>,
    /// UIDs this session's own APPEND took as \Recent (above, up to): \Recent here
    /// when the view learns of them.
    recent_claim: Option<(Uid, Uid)>,
}

/// A change set read ahead of the refresh that reports it, from the snapshot of the
/// command's own read.
struct Prefetched {
    /// The `seen_modseq` it was read for: it is used only if the view is still there.
    since: Modseq,
    mailbox: tern_store::Mailbox,
    changed: Vec<Record>,
}

/// What a refresh produced for the client.
#[derive(Default)]
pub(crate) struct Updates {
    /// Untagged lines, each without the trailing CRLF.
    pub(crate) lines: Vec<String>,
    /// Among them, EXPUNGE or VANISHED responses.
    pub(crate) expunged: bool,
}

/// How a session reports changes.
#[derive(Clone, Copy)]
pub(crate) struct Reporting {
    /// May EXPUNGE/VANISHED be sent now?
    pub(crate) expunges: bool,
    /// QRESYNC or UIDONLY enabled: VANISHED instead of EXPUNGE.
    pub(crate) vanished: bool,
    /// CONDSTORE enabled: MODSEQ in unsolicited FETCH.
    pub(crate) condstore: bool,
    /// UIDONLY enabled: UIDFETCH instead of FETCH.
    pub(crate) uidonly: bool,
}

impl Selected {
    /// A view on the live records of `id` as `snapshot` (one store snapshot,
    /// [`Store::resolve_selection`]) shows them; `watch` signals the changes after it.
    /// Also gives the mailbox row and the first unseen UID of that snapshot. SELECT
    /// (not EXAMINE) takes \Recent for this session in the store.
    pub(crate) fn from_selection(
        store: &Store,
        actor: &Actor,
        id: &UniqueId,
        watch: tokio::sync::watch::Receiver<Modseq>,
        snapshot: tern_store::Selection,
        read_only: bool,
    ) -> Result<(Selected, tern_store::Mailbox, Option<Uid>), StoreError> {
        let uids = snapshot.uids;
        let (mailbox, first_unseen) = (snapshot.mailbox, snapshot.first_unseen);
        let keywords = snapshot.keywords.into_iter().collect();
        // EXAMINE shows what is \Recent without taking it (RFC 3501 6.3.2: the same
        // answer as SELECT, read-only).
        let recent_above = if read_only {
            mailbox.recent_uid
        } else {
            store.take_recent(actor, &mailbox)?
        };
        // UIDs are ascending: the \Recent ones are a tail, found by bisection rather
        // than by testing every UID of a large mailbox on each SELECT.
        let recent = uids[uids.partition_point(|&u| u <= recent_above)..]
            .iter()
            .copied()
            .collect();
        Ok((
            Selected {
                id: id.clone(),
                actor: actor.clone(),
                read_only,
                uids,
                recent,
                seen_modseq: mailbox.highest_modseq,
                uidnext: mailbox.uidnext(),
                pending_expunges: BTreeSet::new(),
                pending_floor: None,
                reported: HashMap::new(),
                watch,
                saved: Vec::new(),
                keywords,
                contexts: Vec::new(),
                rev2: false,
                prefetched: None,
                recent_claim: None,
            },
            mailbox,
            first_unseen,
        ))
    }

    /// Number of messages in the view (EXISTS).
    pub(crate) fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    /// Sequence number of a UID in this view.
    pub(crate) fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// Remembers that this session reported `uid`'s flags at `modseq` itself, so the next
    /// refresh does not report them again.
    pub(crate) fn mark_reported(&mut self, uid: Uid, modseq: Modseq) {
        self.reported.insert(uid, modseq);
    }

    /// The modseq through which the client has been told every change of the mailbox,
    /// expunges included. With an expunge pulled but not yet reported, it is below that
    /// expunge's modseq, however high the MODSEQ of the flag changes already sent: a
    /// client that kept a later one would never hear of the expunge (RFC 7162 3.2).
    pub(crate) fn told_through(&self) -> Option<Modseq> {
        if self.pending_expunges.is_empty() {
            return Some(self.seen_modseq);
        }
        let below = self.pending_floor.unwrap_or(0).saturating_sub(1);
        Some(below.min(self.seen_modseq)).filter(|m| *m > 0)
    }

    /// Expunges are known to the view and not yet reported to the client.
    pub(crate) fn holds_expunges(&self) -> bool {
        !self.pending_expunges.is_empty()
    }

    /// Notes expunges at `modseq` among the pending ones.
    fn pend_at(&mut self, modseq: Modseq) {
        self.pending_floor = Some(self.pending_floor.map_or(modseq, |f| f.min(modseq)));
    }

    /// A change this session made itself at `modseq`, to a mailbox that stood at
    /// `before`. If this view had seen every change up to `before`, the changes up to
    /// `modseq` are that one alone, which the caller reports (or marks, as an expunge
    /// is): the next refresh starts after it instead of reading it back.
    pub(crate) fn own_change(&mut self, before: Modseq, modseq: Modseq) {
        if before <= self.seen_modseq && modseq > self.seen_modseq {
            self.seen_modseq = modseq;
        }
    }

    /// A flag store this session made and reported itself, `changed` all at one
    /// modseq, to a mailbox that stood at `before`: the next refresh starts after it
    /// ([`Selected::own_change`]) or, when this view is behind other changes, skips
    /// these records at that modseq ([`Selected::mark_reported`]). Only the second needs
    /// a note per record, which for `STORE 1:*` is one per message.
    pub(crate) fn own_flag_changes(&mut self, before: Modseq, changed: &[tern_store::FlagChange]) {
        let Some(first) = changed.first() else {
            return;
        };
        self.own_change(before, first.modseq);
        if self.seen_modseq < first.modseq {
            for c in changed {
                self.mark_reported(c.uid, c.modseq);
            }
        }
    }

    /// `FLAGS (...)` and `OK [PERMANENTFLAGS (...)]` for the keywords announced.
    pub(crate) fn flags_lines(&self) -> [String; 2] {
        flags_lines(&self.keywords, self.read_only)
    }

    /// The lines that must go out before responses showing `flags`: none when every
    /// keyword among them was announced, else FLAGS and PERMANENTFLAGS with the
    /// mailbox's keyword table read again (RFC 3501 7.2.6: the client replaces its
    /// list). Costs nothing but a comparison unless a new keyword appears.
    pub(crate) fn announce_for<'a>(
        &mut self,
        store: &Store,
        flags: impl IntoIterator<Item = &'a Flags>,
    ) -> Vec<String> {
        let mut unknown = Vec::new();
        for f in flags {
            for flag in f.keywords() {
                if let Flag::Keyword(k) = flag {
                    if !self.keywords.contains(k) {
                        unknown.push(k.clone());
                    }
                }
            }
        }
        if unknown.is_empty() {
            return Vec::new();
        }
        match store.keywords_for(&self.actor, &self.id) {
            Ok(table) => self.keywords.extend(table),
            Err(e) => tracing::warn!(error = %e, "cannot read the keyword table"),
        }
        // The table holds them (same transaction as the flag write); announced in any
        // case, so no response ever shows an unannounced keyword.
        self.keywords.extend(unknown);
        self.flags_lines().to_vec()
    }

    /// Keeps `changed` (everything above `since` in `mailbox`, read in one snapshot
    /// with the records a command is answering from) for the refresh that follows the
    /// command. It is dropped, and the refresh reads afresh, if the view has moved on
    /// from `since` in between.
    pub(crate) fn prefetch(
        &mut self,
        since: Modseq,
        mailbox: tern_store::Mailbox,
        changed: Vec<Record>,
    ) {
        self.prefetched = Some(Prefetched {
            since,
            mailbox,
            changed,
        });
    }

    /// Records that this session's APPEND took \Recent for the UIDs above `above` up
    /// to `upto` ([`tern_store::Store::append_all_taking_recent`]).
    pub(crate) fn claim_recent(&mut self, above: Uid, upto: Uid) {
        self.recent_claim = Some((above, upto));
    }

    /// Forgets a change set read ahead: the session itself changed the mailbox since.
    pub(crate) fn drop_prefetched(&mut self) {
        self.prefetched = None;
    }

    /// Pulls the changes since the last refresh and turns them into untagged responses.
    pub(crate) fn refresh(&mut self, store: &Store, how: Reporting) -> Result<Updates, StoreError> {
        let mut updates = Updates::default();
        let (mailbox, changed) = match self.prefetched.take() {
            Some(p) if p.since == self.seen_modseq => (p.mailbox, p.changed),
            _ => store.changed_since(&self.actor, &self.id, self.seen_modseq)?,
        };
        // New keywords first: the FETCH lines below, and the client's FETCH of the new
        // messages later, may show them.
        updates.lines = self.announce_for(
            store,
            changed
                .iter()
                .filter(|r| r.expunged_modseq.is_none())
                .map(|r| &r.flags),
        );
        let max_known = self.uids.last().copied().unwrap_or(0);
        let mut new_uids = Vec::new();
        for r in &changed {
            if let Some(expunged_at) = r.expunged_modseq {
                if self.seq_of(r.uid).is_some() {
                    self.pending_expunges.insert(r.uid);
                    self.pend_at(expunged_at);
                }
                continue;
            }
            if r.uid > max_known {
                new_uids.push(r.uid);
                continue;
            }
            let Some(seq) = self.seq_of(r.uid) else {
                continue;
            };
            if self.reported.get(&r.uid) == Some(&r.modseq)
                || self.pending_expunges.contains(&r.uid)
            {
                continue;
            }
            updates.lines.push(flag_fetch(
                seq,
                r,
                self.recent.contains(&r.uid),
                how.condstore,
                how.uidonly,
            ));
        }
        self.reported.clear();
        let arrived = !new_uids.is_empty();
        if arrived {
            let recent_above = if self.read_only {
                mailbox.recent_uid
            } else {
                store.take_recent(&self.actor, &mailbox)?
            };
            let claimed = self.recent_claim.take();
            let ours = |u: Uid| claimed.is_some_and(|(above, upto)| u > above && u <= upto);
            if !self.rev2 {
                self.recent.extend(
                    new_uids
                        .iter()
                        .copied()
                        .filter(|&u| u > recent_above || ours(u)),
                );
            }
            self.uids.extend(new_uids);
        }
        self.seen_modseq = mailbox.highest_modseq.max(self.seen_modseq);
        self.uidnext = mailbox.uidnext();
        if how.expunges && !self.pending_expunges.is_empty() {
            // New messages report RECENT below, after EXISTS.
            let gone = self.apply_expunges(how.vanished, !arrived);
            updates.expunged = !gone.is_empty();
            updates.lines.extend(gone);
        }
        if arrived {
            updates.lines.push(format!("{} EXISTS", self.uids.len()));
            if !self.rev2 {
                updates.lines.push(format!("{} RECENT", self.recent.len()));
            }
        }
        Ok(updates)
    }

    /// Removes expunged UIDs from the view and returns the responses that say so:
    /// one VANISHED with `vanished` (QRESYNC or UIDONLY), else an EXPUNGE each; then,
    /// with `recent` and when \Recent messages went, the new RECENT count (RFC 3501
    /// 7.3.2: it is reported when the mailbox's size changes; a client that sums its
    /// sessions' counts must not find more \Recent messages than the mailbox holds).
    pub(crate) fn apply_expunges(&mut self, vanished: bool, recent: bool) -> Vec<String> {
        self.pending_floor = None;
        let gone: Vec<Uid> = std::mem::take(&mut self.pending_expunges)
            .into_iter()
            .collect();
        let mut lines = Vec::new();
        if vanished {
            self.uids.retain(|u| gone.binary_search(u).is_err());
            if !gone.is_empty() {
                lines.push(format!("VANISHED {}", compress_uids(&gone)));
            }
        } else {
            // Highest first, so every sequence number sent is still valid when sent.
            // Removing a message renumbers only those above it, so each one's number
            // before any removal is the one to send: one pass over the view, not one
            // shift of it per message.
            let seqs: Vec<u32> = gone.iter().filter_map(|u| self.seq_of(*u)).collect();
            self.uids.retain(|u| gone.binary_search(u).is_err());
            lines.extend(seqs.iter().rev().map(|seq| format!("{seq} EXPUNGE")));
        }
        let recent_before = self.recent.len();
        for uid in &gone {
            self.recent.remove(uid);
        }
        if recent && !self.rev2 && self.recent.len() != recent_before {
            lines.push(format!("{} RECENT", self.recent.len()));
        }
        lines
    }

    /// Marks UIDs this session expunged itself at `modseq`, so the next report includes
    /// them. Without the modseq, they count as just above what the view has seen.
    pub(crate) fn expunged_here(&mut self, uids: &[Uid], modseq: Option<Modseq>) {
        let known: Vec<Uid> = uids
            .iter()
            .copied()
            .filter(|u| self.seq_of(*u).is_some())
            .collect();
        if !known.is_empty() {
            self.pend_at(modseq.unwrap_or(self.seen_modseq + 1));
        }
        self.pending_expunges.extend(known);
    }

    /// The UID ranges of a UID set as written, `*` being the highest UID the mailbox
    /// ever gave: what VANISHED (EARLIER) reports on, which includes UIDs this session
    /// no longer holds.
    pub(crate) fn uid_ranges(&self, set: &SequenceSet) -> Vec<(Uid, Uid)> {
        let star = self.uidnext.saturating_sub(1);
        match set {
            SequenceSet::Saved => self.saved.iter().map(|&u| (u, u)).collect(),
            SequenceSet::Ranges(r) => r
                .iter()
                .map(|r| {
                    let (a, b) = (num(r.start, star), num(r.end, star));
                    (a.min(b), a.max(b))
                })
                .collect(),
        }
    }

    /// Resolves a sequence set to (sequence number, UID) pairs, ascending, without
    /// duplicates. With `uid`, the set names UIDs; UIDs not in the view are skipped.
    /// Without, a sequence number beyond the view is an error (the caller answers BAD).
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, String> {
        let ranges = match set {
            SequenceSet::Saved => {
                // Saved in the order the search gave (a SORT's, say): put in order here
                // like any other set.
                let mut out: Vec<(u32, Uid)> = self
                    .saved
                    .iter()
                    .filter_map(|&u| self.seq_of(u).map(|s| (s, u)))
                    .collect();
                out.sort_unstable();
                out.dedup();
                return Ok(out);
            }
            SequenceSet::Ranges(r) => r,
        };
        resolve_ranges(&self.uids, ranges, uid)
    }
}

/// The (sequence number, UID) pairs of `uids` (a view, ascending) that `ranges` name,
/// ascending and distinct; by UID when `uid`, else by sequence number, where a number
/// past the view is an error.
fn resolve_ranges(
    uids: &[Uid],
    ranges: &[crate::types::SeqRange],
    uid: bool,
) -> Result<Vec<(u32, Uid)>, String> {
    // Each range ascends; a set of several is sorted and made distinct at the end
    // (a tree of every pair cost as much as the FETCH FLAGS answer itself), and
    // whenever the list outgrows twice the view, so that a set naming the same
    // messages over and over (`1:*,1:*,...`) holds no more than that.
    let mut out = Vec::new();
    let bound = 2 * uids.len().max(1024);
    let squeeze = |out: &mut Vec<(u32, Uid)>| {
        out.sort_unstable();
        out.dedup();
    };
    if uid {
        let star = uids.last().copied().unwrap_or(0);
        for r in ranges {
            let a = num(r.start, star);
            let b = num(r.end, star);
            let (lo, hi) = (a.min(b), a.max(b));
            let start = uids.partition_point(|&u| u < lo);
            for (i, &u) in uids[start..].iter().enumerate() {
                if u > hi {
                    break;
                }
                out.push((start as u32 + i as u32 + 1, u));
            }
            if out.len() > bound {
                squeeze(&mut out);
            }
        }
    } else {
        let star = uids.len() as u32;
        for r in ranges {
            let a = num(r.start, star);
            let b = num(r.end, star);
            let (lo, hi) = (a.min(b), a.max(b));
            if hi > star || lo == 0 {
                return Err("Invalid message sequence number".into());
            }
            for seq in lo..=hi {
                out.push((seq, uids[seq as usize - 1]));
            }
            if out.len() > bound {
                squeeze(&mut out);
            }
        }
    }
    if ranges.len() > 1 {
        squeeze(&mut out);
    }
    Ok(out)
}

fn num(n: SeqNum, star: u32) -> u32 {
    match n {
        SeqNum::Value(v) => v,
        SeqNum::Star => star,
    }
}

/// `* 5 FETCH (UID 9 FLAGS (\Seen) MODSEQ (12))` for a flag change; under UIDONLY
/// `* 9 UIDFETCH (FLAGS (\Seen) MODSEQ (12))`.
pub(crate) fn flag_fetch(
    seq: u32,
    r: &Record,
    recent: bool,
    condstore: bool,
    uidonly: bool,
) -> String {
    let mut line = crate::uidonly::fetch_head(seq, r.uid, uidonly);
    // Writing to a String cannot fail.
    if !uidonly {
        let _ = write!(line, "UID {} ", r.uid);
    }
    let _ = write!(line, "FLAGS {}", FlagList(&r.flags, recent));
    if condstore {
        let _ = write!(line, " MODSEQ ({})", r.modseq);
    }
    line.push(')');
    line
}

/// `1:3,7,9:10` for a sorted list of UIDs.
pub(crate) fn compress_uids(uids: &[Uid]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_uid_runs() {
        assert_eq!(compress_uids(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(compress_uids(&[]), "");
    }

    fn ranges(text: &[(u32, Option<u32>)]) -> Vec<crate::types::SeqRange> {
        let n = |v: Option<u32>| v.map_or(SeqNum::Star, SeqNum::Value);
        text.iter()
            .map(|&(a, b)| crate::types::SeqRange {
                start: SeqNum::Value(a),
                end: n(b),
            })
            .collect()
    }

    #[test]
    fn resolves_overlapping_ranges_once_each_in_order() {
        let uids = [3, 5, 8, 13, 21];
        // 4:2 is 2:4; 1:2 and 2:4 overlap; `*` is the last.
        let set = ranges(&[(4, Some(2)), (1, Some(2)), (5, None)]);
        assert_eq!(
            resolve_ranges(&uids, &set, false),
            Ok(vec![(1, 3), (2, 5), (3, 8), (4, 13), (5, 21)])
        );
        // By UID: 6:14 holds 8 and 13, 13 again, 100:* is the last UID.
        let set = ranges(&[(13, Some(13)), (6, Some(14)), (100, None)]);
        assert_eq!(
            resolve_ranges(&uids, &set, true),
            Ok(vec![(3, 8), (4, 13), (5, 21)])
        );
        assert!(resolve_ranges(&uids, &ranges(&[(6, Some(6))]), false).is_err());
        assert_eq!(
            resolve_ranges(&uids, &ranges(&[(22, Some(30))]), true),
            Ok(vec![])
        );
    }

    #[test]
    fn a_set_repeating_the_whole_view_holds_a_few_times_it_not_once_per_range() {
        let uids: Vec<Uid> = (1..=3000).collect();
        let set = ranges(&vec![(1, None); 500]);
        let got = resolve_ranges(&uids, &set, false).unwrap();
        assert_eq!(got.len(), 3000);
        // Three times the view at most before a squeeze, rounded up to a power of two:
        // without the bound, 1.5 million pairs.
        assert!(got.capacity() <= 6 * 3000, "capacity {}", got.capacity());
    }
}
