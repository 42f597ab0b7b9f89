//! SEARCH: which messages of the selected mailbox match a search key.
//!
//! Flag, size, date and UID keys are answered from the records; header keys from the
//! decoded header fields, and BODY/TEXT from the decoded text parts, both matched as
//! case-insensitive substrings (RFC 3501 6.4.4, RFC 9051 6.4.4).
//!
//! One command's work is bounded by a [`Budget`] (`ImapConfig::search_budget`): every
//! key tested, every text read and every index query is charged, and a search that
//! runs out stops with `NO [LIMIT]` between two steps. The decoded text of a message is
//! computed once per message, however many BODY/TEXT keys look at it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tern_store::{Flag, Record, TextField, Uid};

use crate::fetch::{message_of, summary_of, FetchContext, FetchError};
use crate::mime::{MessageSummary, SearchTexts};
use crate::response::date_of;
use crate::selected::Selected;
use crate::types::{Date, SearchKey, SeqNum, SequenceSet};

/// The messages of the selected mailbox that match `key`, in sequence order, with
/// their records and the mailbox state they were read with (one snapshot).
pub(crate) fn search_selected(
    store: &tern_store::Store,
    cache: &crate::mime::MessageCaches,
    view: &Selected,
    key: &SearchKey,
    budget: u64,
) -> Result<(tern_store::Mailbox, Vec<(u32, Record)>), FetchError> {
    // The view's messages, those expunged by others since included: the cost follows
    // the view, not the expunged records awaiting `tern expire`. A key that names
    // messages by number or UID (`UID SEARCH UID 2900:* UNSEEN`, how clients ask what
    // is new) reads only those.
    let named = named_by(view, key);
    let uids = named.as_deref().unwrap_or(&view.uids);
    let (mailbox, records) = store.records_of(&view.actor, &view.id, uids)?;
    // Pushed into a vector sized once: collected in place, the records' buffer was
    // reallocated to the larger pairs, a copy of every record.
    let mut in_view: Vec<(u32, Record)> = Vec::with_capacity(records.len());
    for r in records {
        if let Some(s) = view.seq_of(r.uid) {
            in_view.push((s, r));
        }
    }
    let ctx = FetchContext {
        store,
        actor: &view.actor,
        mailbox: &mailbox,
        cache,
    };
    let now = crate::response::unix_now();
    let mut budget = Budget { left: budget };
    // The hits come in the order of `in_view`, so one walk of both pairs them up.
    let mut hits = search(&ctx, view, &in_view, key, now, &mut budget)?
        .into_iter()
        .map(|h| h.1)
        .peekable();
    let matched = in_view
        .into_iter()
        .filter(|(_, r)| hits.next_if_eq(&r.uid).is_some())
        .collect();
    Ok((mailbox, matched))
}

/// What one command may still spend (see the module documentation).
struct Budget {
    left: u64,
}

impl Budget {
    /// Takes `units`, or fails with [`FetchError::TooComplex`] when they are not left.
    fn charge(&mut self, units: u64) -> Result<(), FetchError> {
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(FetchError::TooComplex)
            }
        }
    }

    /// Charges for reading the text of a message of `size` bytes: 1 per KiB.
    fn charge_text(&mut self, size: usize) -> Result<(), FetchError> {
        self.charge(1 + (size / 1024) as u64)
    }
}

/// One message being tested, with its message data loaded at most once.
struct Candidate<'a> {
    seq: u32,
    record: &'a Record,
    recent: bool,
    raw: Option<Vec<u8>>,
    summary: Option<Arc<MessageSummary>>,
    /// The decoded body text, once a BODY or TEXT key needed it.
    body: Option<String>,
    /// The decoded header text, once a TEXT key needed it.
    head: Option<String>,
    /// The raw header alone, read for header keys while the message is not read whole
    /// (shared with the server's header cache).
    header: Option<Arc<Vec<u8>>>,
}

/// Returns the (sequence number, UID) of every message in `records` (the view's
/// messages, in sequence order) that matches `key`.
fn search(
    ctx: &FetchContext<'_>,
    view: &Selected,
    records: &[(u32, Record)],
    key: &SearchKey,
    now: i64,
    budget: &mut Budget,
) -> Result<Vec<(u32, Uid)>, FetchError> {
    let mut index = TextIndex::default();
    index.prepare(ctx, view, key, records.len(), budget)?;
    let mut hits = Vec::new();
    for (seq, record) in records {
        let mut c = Candidate {
            seq: *seq,
            record,
            recent: view.recent.contains(&record.uid),
            raw: None,
            summary: None,
            body: None,
            head: None,
            header: None,
        };
        if matches(ctx, view, &index, &mut c, key, now, budget)? {
            hits.push((*seq, record.uid));
        }
    }
    Ok(hits)
}

fn matches(
    ctx: &FetchContext<'_>,
    view: &Selected,
    index: &TextIndex,
    c: &mut Candidate<'_>,
    key: &SearchKey,
    now: i64,
    budget: &mut Budget,
) -> Result<bool, FetchError> {
    budget.charge(1)?;
    let flags = &c.record.flags;
    let has = |f: Flag| flags.contains(&f);
    Ok(match key {
        SearchKey::All => true,
        SearchKey::Answered => has(Flag::Answered),
        SearchKey::Deleted => has(Flag::Deleted),
        SearchKey::Draft => has(Flag::Draft),
        SearchKey::Flagged => has(Flag::Flagged),
        SearchKey::Seen => has(Flag::Seen),
        SearchKey::Unanswered => !has(Flag::Answered),
        SearchKey::Undeleted => !has(Flag::Deleted),
        SearchKey::Undraft => !has(Flag::Draft),
        SearchKey::Unflagged => !has(Flag::Flagged),
        SearchKey::Unseen => !has(Flag::Seen),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has(Flag::Seen),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(k) => keyword(flags, k),
        SearchKey::Unkeyword(k) => !keyword(flags, k),
        SearchKey::Larger(n) => c.record.size > *n,
        SearchKey::EmailId(id) => crate::fetch::email_id(&c.record.guid) == *id,
        SearchKey::ThreadId(_) => false,
        SearchKey::SavedBefore(d) => date_of(saved(c.record)) < *d,
        SearchKey::SavedOn(d) => date_of(saved(c.record)) == *d,
        SearchKey::SavedSince(d) => date_of(saved(c.record)) >= *d,
        SearchKey::SaveDateSupported => true,
        SearchKey::Smaller(n) => c.record.size < *n,
        SearchKey::Before(d) => date_of(c.record.internaldate) < *d,
        SearchKey::On(d) => date_of(c.record.internaldate) == *d,
        SearchKey::Since(d) => date_of(c.record.internaldate) >= *d,
        SearchKey::Younger(secs) => now - c.record.internaldate <= *secs as i64,
        SearchKey::Older(secs) => now - c.record.internaldate >= *secs as i64,
        SearchKey::SentBefore(d) => sent_date(ctx, c)?.is_some_and(|s| s < *d),
        SearchKey::SentOn(d) => sent_date(ctx, c)?.is_some_and(|s| s == *d),
        SearchKey::SentSince(d) => sent_date(ctx, c)?.is_some_and(|s| s >= *d),
        SearchKey::Modseq(m) => c.record.modseq >= *m,
        SearchKey::Uid(set) => in_set(view, set, c.record.uid, true),
        SearchKey::Sequence(set) => in_set(view, set, c.seq, false),
        SearchKey::Not(k) => !matches(ctx, view, index, c, k, now, budget)?,
        SearchKey::Or(a, b) => {
            matches(ctx, view, index, c, a, now, budget)?
                || matches(ctx, view, index, c, b, now, budget)?
        }
        SearchKey::And(keys) => {
            for k in keys {
                if !matches(ctx, view, index, c, k, now, budget)? {
                    return Ok(false);
                }
            }
            true
        }
        SearchKey::From(s) => header_contains(ctx, c, FROM, s, budget)?,
        SearchKey::To(s) => header_contains(ctx, c, TO, s, budget)?,
        SearchKey::Cc(s) => header_contains(ctx, c, CC, s, budget)?,
        SearchKey::Bcc(s) => header_contains(ctx, c, BCC, s, budget)?,
        SearchKey::Subject(s) => header_contains(ctx, c, SUBJECT, s, budget)?,
        SearchKey::Header(field, s) => {
            // An empty string matches every message that has the field at all.
            let raw = header_bytes(ctx, c)?;
            budget.charge_text(raw.len())?;
            let values = tern_message::header_values(raw, field);
            !values.is_empty() && (s.is_empty() || values.iter().any(|v| contains_ci(v, s)))
        }
        SearchKey::Body(s) => match index.answer(false, s, c.record.uid) {
            Some(hit) => hit,
            None => contains_ci(body_of(ctx, c, budget)?, s),
        },
        SearchKey::Text(s) => match index.answer(true, s, c.record.uid) {
            Some(hit) => hit,
            None => {
                contains_ci(head_of(ctx, c, budget)?, s) || contains_ci(body_of(ctx, c, budget)?, s)
            }
        },
    })
}

fn keyword(flags: &tern_store::Flags, k: &str) -> bool {
    match Flag::parse(k) {
        Ok(f) => flags.contains(&f),
        Err(_) => false,
    }
}

fn sent_date(ctx: &FetchContext<'_>, c: &mut Candidate<'_>) -> Result<Option<Date>, FetchError> {
    let s = summary_of(ctx, c.record, &mut c.raw, &mut c.summary)?;
    Ok(s.keys.sent_day.map(|day| date_of(day * 86_400)))
}

/// The decoded body text of the candidate, computed once; each look at it is charged.
fn body_of<'c>(
    ctx: &FetchContext<'_>,
    c: &'c mut Candidate<'_>,
    budget: &mut Budget,
) -> Result<&'c str, FetchError> {
    if c.body.is_none() {
        let raw = message_of(ctx, c.record, &mut c.raw)?;
        budget.charge_text(raw.len())?;
        c.body = Some(tern_message::body_text(raw));
    }
    let body = c.body.as_deref().unwrap_or_default();
    budget.charge_text(body.len())?;
    Ok(body)
}

/// The decoded header text of the candidate, computed once; each look is charged.
fn head_of<'c>(
    ctx: &FetchContext<'_>,
    c: &'c mut Candidate<'_>,
    budget: &mut Budget,
) -> Result<&'c str, FetchError> {
    if c.head.is_none() {
        let head = tern_message::header_text(header_bytes(ctx, c)?);
        c.head = Some(head);
    }
    let head = c.head.as_deref().unwrap_or_default();
    budget.charge_text(head.len())?;
    Ok(head)
}

/// The candidate's header: cut from the message when it was read whole, else read
/// alone ([`crate::fetch::header_of`]), else the whole message read after all (a
/// header too long to read alone), which the header keys parse no further than its
/// blank line.
fn header_bytes<'c>(
    ctx: &FetchContext<'_>,
    c: &'c mut Candidate<'_>,
) -> Result<&'c [u8], FetchError> {
    if c.raw.is_none() && c.header.is_none() {
        c.header = crate::fetch::header_of(ctx, c.record);
    }
    match c.header {
        Some(ref header) => Ok(header.as_slice()),
        None => message_of(ctx, c.record, &mut c.raw),
    }
}

/// SEARCH's header keys, as positions in [`tern_message::SEARCH_FIELDS`] (and in
/// [`SearchTexts`]).
const FROM: usize = 0;
const TO: usize = 1;
const CC: usize = 2;
const BCC: usize = 3;
const SUBJECT: usize = 4;

/// Whether the candidate's header field `field` (a position in
/// [`tern_message::SEARCH_FIELDS`]) holds `needle`, case-insensitively, in its decoded
/// text or (address fields) one of its mailboxes. What is tested is kept by GUID
/// ([`crate::mime::SearchTextCache`]).
fn header_contains(
    ctx: &FetchContext<'_>,
    c: &mut Candidate<'_>,
    field: usize,
    needle: &str,
    budget: &mut Budget,
) -> Result<bool, FetchError> {
    let guid = *c.record.guid.as_bytes();
    let texts = match ctx.cache.search_texts.get(&guid) {
        Some(texts) => texts,
        None => {
            let raw = header_bytes(ctx, c)?;
            budget.charge_text(raw.len())?;
            let texts = Arc::new(SearchTexts::of(raw));
            ctx.cache.search_texts.insert(guid, Arc::clone(&texts));
            texts
        }
    };
    let texts = texts.0.get(field).map(Vec::as_slice).unwrap_or_default();
    budget.charge_text(texts.iter().map(String::len).sum())?;
    // The texts are folded as `contains_ci` folds both sides (`to_lowercase` is
    // `to_ascii_lowercase` on ASCII).
    let needle = needle.to_lowercase();
    Ok(texts.iter().any(|t| t.contains(&needle)))
}

/// What the store's full-text index says for the BODY and TEXT keys of one SEARCH.
#[derive(Default)]
struct TextIndex {
    /// (is TEXT, needle) → (UIDs to confirm by reading, UIDs the index does not
    /// cover). The index only pre-filters: it knows which trigrams a message has,
    /// so a candidate is confirmed against the message's text, as RFC 3501 asks.
    answers: HashMap<(bool, String), (HashSet<Uid>, HashSet<Uid>)>,
}

impl TextIndex {
    /// Asks the index once per distinct BODY/TEXT needle in `key`, charging each query
    /// one unit per message of the mailbox (`messages`).
    fn prepare(
        &mut self,
        ctx: &FetchContext<'_>,
        view: &Selected,
        key: &SearchKey,
        messages: usize,
        budget: &mut Budget,
    ) -> Result<(), FetchError> {
        match key {
            SearchKey::Body(s) | SearchKey::Text(s) => {
                let text = matches!(key, SearchKey::Text(_));
                if self.answers.contains_key(&(text, s.clone())) {
                    return Ok(());
                }
                budget.charge(1 + messages as u64)?;
                let field = if text {
                    TextField::All
                } else {
                    TextField::Body
                };
                if let Some(m) = ctx.store.search_text(&view.id, field, s)? {
                    let answer = (
                        m.candidates.into_iter().collect(),
                        m.unindexed.into_iter().collect(),
                    );
                    self.answers.insert((text, s.clone()), answer);
                }
            }
            SearchKey::Not(k) => self.prepare(ctx, view, k, messages, budget)?,
            SearchKey::Or(a, b) => {
                self.prepare(ctx, view, a, messages, budget)?;
                self.prepare(ctx, view, b, messages, budget)?;
            }
            SearchKey::And(keys) => {
                for k in keys {
                    self.prepare(ctx, view, k, messages, budget)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `Some(false)` when the index rules this message out for this needle; `None`
    /// when the message must be read (a candidate to confirm, or not covered).
    fn answer(&self, text: bool, needle: &str, uid: Uid) -> Option<bool> {
        let (candidates, unindexed) = self.answers.get(&(text, needle.to_owned()))?;
        if unindexed.contains(&uid) || candidates.contains(&uid) {
            return None;
        }
        Some(false)
    }
}

/// Case-insensitive substring test (Unicode simple case folding via lowercase).
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        // Folded copies and `str::contains` (Two-Way, linear): a window-by-window
        // comparison costs haystack × needle for a needle like "aaa…ab", which the
        // search budget does not charge for.
        return haystack
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase());
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// The UIDs of the view that `key` can match at all, when it is (or is an AND
/// holding) a sequence or UID set; `None` when any message of the view might match.
/// Every candidate is still tested against the whole key.
fn named_by(view: &Selected, key: &SearchKey) -> Option<Vec<Uid>> {
    let sets: Vec<&SearchKey> = match key {
        SearchKey::Uid(_) | SearchKey::Sequence(_) => vec![key],
        SearchKey::And(keys) => keys
            .iter()
            .filter(|k| matches!(k, SearchKey::Uid(_) | SearchKey::Sequence(_)))
            .collect(),
        _ => return None,
    };
    // A set of many ranges is left to the search itself: the pass here would test
    // every message of the view against every range once more.
    let ranges: usize = sets
        .iter()
        .map(|k| match k {
            SearchKey::Uid(SequenceSet::Ranges(r))
            | SearchKey::Sequence(SequenceSet::Ranges(r)) => r.len(),
            _ => 1,
        })
        .sum();
    if sets.is_empty() || ranges > 64 {
        return None;
    }
    let within = |seq: u32, uid: Uid| {
        sets.iter().all(|k| match k {
            SearchKey::Uid(set) => in_set(view, set, uid, true),
            SearchKey::Sequence(set) => in_set(view, set, seq, false),
            _ => true,
        })
    };
    Some(
        view.uids
            .iter()
            .enumerate()
            .filter(|&(i, &uid)| within(i as u32 + 1, uid))
            .map(|(_, &uid)| uid)
            .collect(),
    )
}

fn in_set(view: &Selected, set: &SequenceSet, n: u32, uid: bool) -> bool {
    match set {
        SequenceSet::Saved => {
            uid && view.saved.binary_search(&n).is_ok()
                || !uid
                    && view
                        .uids
                        .get(n as usize - 1)
                        .is_some_and(|u| view.saved.binary_search(u).is_ok())
        }
        SequenceSet::Ranges(ranges) => {
            let star = if uid {
                view.uids.last().copied().unwrap_or(0)
            } else {
                view.exists()
            };
            ranges.iter().any(|r| {
                let a = match r.start {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => star,
                };
                let b = match r.end {
                    SeqNum::Value(v) => v,
                    SeqNum::Star => star,
                };
                (a.min(b)..=a.max(b)).contains(&n)
            })
        }
    }
}

/// When a message was saved in its mailbox (RFC 8514), its INTERNALDATE when tern
/// does not know (see `FetchAttr::SaveDate`).
fn saved(record: &Record) -> i64 {
    record.saved_at.unwrap_or(record.internaldate)
}

#[cfg(test)]
mod tests {
    use super::{contains_ci, BCC, CC, FROM, SUBJECT, TO};

    /// The header keys' positions name the fields they search.
    #[test]
    fn header_keys_name_their_fields() {
        let name = |at: usize| tern_message::SEARCH_FIELDS[at].0;
        assert_eq!(
            [name(FROM), name(TO), name(CC), name(BCC), name(SUBJECT)],
            ["From", "To", "Cc", "Bcc", "Subject"]
        );
    }

    #[test]
    fn case_insensitive_substrings() {
        assert!(contains_ci("Hello Quokka world", "quokka"));
        assert!(contains_ci("Grüße aus München", "MÜNCHEN"));
        assert!(!contains_ci("abc", "abd"));
        assert!(contains_ci("abc", ""));
    }
}
