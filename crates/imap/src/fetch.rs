//! FETCH: rendering the data items of one message.

// Writing to a Vec<u8> cannot fail: the `let _ = write!` below discard an Ok.
use std::io::Write as _;
use std::sync::Arc;

use tern_store::{Mailbox, MessageFile, Record, Store, StoreError};

use crate::mime::{self, MessageCaches, MessageSummary};
use crate::response::{internal_date, put_flag_list, put_internal_date, put_number};
use crate::types::{FetchAttr, Section, SectionText};
use crate::uidonly;

pub(crate) use crate::item_reads::{
    body_items, header_of, needs_message, sets_seen, MAX_BODY_ITEMS,
};
use crate::item_reads::{header_or_no_body, whole_message_or_no_body};

/// What rendering one message needs besides the record.
pub(crate) struct FetchContext<'a> {
    pub(crate) store: &'a Store,
    pub(crate) actor: &'a tern_store::Actor,
    pub(crate) mailbox: &'a Mailbox,
    pub(crate) cache: &'a MessageCaches,
}

/// Why a message could not be rendered.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Reading the blob failed.
    Store(StoreError),
    /// BINARY of a part with an unknown Content-Transfer-Encoding.
    UnknownCte,
    /// A SEARCH (or SORT, THREAD) used up its budget ([`crate::ImapConfig::search_budget`]).
    TooComplex,
    /// Reading a message failed after part of its literal was sent: the response
    /// cannot be completed, and the connection must close.
    Broken,
    /// A message to be read whole does not fit in the process's memory budget now.
    OverBudget,
}

impl FetchError {
    /// The tagged answer for this failure.
    pub(crate) fn outcome(&self) -> crate::session::Outcome {
        use crate::session::Outcome;
        match self {
            FetchError::Store(e) => Outcome::store_error(e),
            FetchError::UnknownCte => {
                Outcome::no("[UNKNOWN-CTE] Unknown Content-Transfer-Encoding")
            }
            FetchError::TooComplex => Outcome::no("[LIMIT] Search too complex"),
            FetchError::Broken => Outcome::no("[SERVERBUG] Message could not be read"),
            FetchError::OverBudget => {
                Outcome::no("[LIMIT] Too much data in transit, try again later")
            }
        }
    }
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        FetchError::Store(e)
    }
}

/// A message's EMAILID (RFC 8474): `M` and the first 24 hex digits of its GUID, so
/// every copy of the same content has the same id, in any mailbox, on the replica too.
pub(crate) fn email_id(guid: &tern_store::Guid) -> String {
    let hex = guid.to_hex();
    format!("M{}", &hex[..24.min(hex.len())])
}

/// Most bytes of a literal copied into the output in one step.
const CHUNK: usize = 64 * 1024;

/// One message a FETCH answers for.
pub(crate) struct Target {
    /// Its sequence number when the command ran.
    pub(crate) seq: u32,
    pub(crate) record: Record,
    pub(crate) recent: bool,
}

/// The responses of one FETCH command, produced a piece at a time.
///
/// # Why a cursor
///
/// A FETCH answer can be far larger than memory (`FETCH 1:* BODY.PEEK[]` of a
/// mailbox of gigabytes). [`fill`](Self::fill) appends responses to the session's output
/// until it holds `limit` bytes, remembering where it stopped (which message, which
/// item, how far into a literal); the session writes that out on the async side and
/// calls `fill` again. So at most `limit` plus one [`CHUNK`] of responses, one
/// message's bytes and one section of it are in memory per connection, and no thread is
/// held while a slow client reads (the rendering runs under `block_in_place`, the
/// writing does not).
///
/// Everything that can fail for a message (reading its blob, its MIME summary, a
/// BINARY of an unknown Content-Transfer-Encoding) is done before the first byte of
/// its `* n FETCH (` is produced: a failure ends the command between two complete
/// responses, never inside one.
///
/// Whole-message items (`BODY[]`, `RFC822`, and partials of them) are copied from the
/// open blob ([`MessageFile`]) a chunk at a time, so a FETCH of messages of any size
/// holds one chunk of them. Items that need the MIME structure or a decoding (a
/// section, `BINARY`, `ENVELOPE` of a message not summarised yet) read the message
/// whole, once per message.
pub(crate) struct FetchStream {
    mailbox: Mailbox,
    actor: tern_store::Actor,
    items: Vec<FetchAttr>,
    /// `BODY[...]` of each BODY section item (empty for the others), written once
    /// here rather than for every message.
    labels: Vec<String>,
    targets: std::vec::IntoIter<Target>,
    current: Option<Current>,
    /// UIDONLY: `* uid UIDFETCH (` heads each response ([`crate::uidonly`]).
    uidonly: bool,
}

/// The message being written.
struct Current {
    raw: Option<Vec<u8>>,
    /// The message opened for ranged reads, when only whole-message items need it.
    file: Option<MessageFile>,
    summary: Option<Arc<MessageSummary>>,
    target: Target,
    next_item: usize,
    literal: Option<Literal>,
}

/// The rest of a literal still to be copied out.
struct Literal {
    /// The bytes, or `None` for the message itself (`Current::raw`).
    data: Option<Vec<u8>>,
    pos: usize,
    end: usize,
    /// Not a BINARY literal: NUL goes out as 0x80 (RFC 3501 section 9, CHAR8 excludes
    /// NUL; Dovecot does the same), so the announced length stays right.
    mask_nul: bool,
}

impl FetchStream {
    /// A stream of `items` for `targets` (in the order given); `uidonly` answers in
    /// UIDFETCH responses.
    pub(crate) fn new(
        mailbox: Mailbox,
        actor: tern_store::Actor,
        items: Vec<FetchAttr>,
        targets: Vec<Target>,
        uidonly: bool,
    ) -> FetchStream {
        let labels = items
            .iter()
            .map(|item| match item {
                FetchAttr::BodySection { section, .. } => {
                    format!("BODY[{}]", section_name(section))
                }
                _ => String::new(),
            })
            .collect();
        FetchStream {
            mailbox,
            actor,
            labels,
            items,
            targets: targets.into_iter(),
            current: None,
            uidonly,
        }
    }

    /// Appends responses to `out` until it holds at least `limit` bytes (by at most one
    /// chunk or one item's non-literal text) or the answer is complete. Returns true
    /// when complete. After an error nothing of the failed message is in `out`.
    pub(crate) fn fill(
        &mut self,
        store: &Store,
        cache: &MessageCaches,
        out: &mut Vec<u8>,
        limit: usize,
        cover: &mut dyn FnMut(usize) -> bool,
    ) -> Result<bool, FetchError> {
        let ctx = FetchContext {
            store,
            actor: &self.actor,
            mailbox: &self.mailbox,
            cache,
        };
        while out.len() < limit {
            let Some(cur) = self.current.as_mut() else {
                let Some(target) = self.targets.next() else {
                    return Ok(true);
                };
                let cur = prepare(&ctx, target, &self.items, cover)?;
                out.extend_from_slice(b"* ");
                uidonly::put_fetch_head(out, cur.target.seq, cur.target.record.uid, self.uidonly);
                self.current = Some(cur);
                continue;
            };
            if let Some(lit) = cur.literal.as_mut() {
                let take = (lit.end - lit.pos).min(CHUNK).min(limit - out.len());
                let from = out.len();
                match (&lit.data, &cur.raw, &cur.file) {
                    (Some(d), _, _) => {
                        out.extend_from_slice(d.get(lit.pos..lit.pos + take).unwrap_or_default())
                    }
                    (None, Some(raw), _) => {
                        out.extend_from_slice(raw.get(lit.pos..lit.pos + take).unwrap_or_default())
                    }
                    (None, None, Some(file)) => {
                        match file.append_at(lit.pos as u64, take, out) {
                            Ok(n) if n == take => {}
                            // Half a literal is out: nothing can be answered any more.
                            _ => return Err(FetchError::Broken),
                        }
                    }
                    (None, None, None) => {}
                }
                if lit.mask_nul {
                    mime::mask_nul(&mut out[from..]);
                }
                lit.pos += take;
                if lit.pos >= lit.end {
                    cur.literal = None;
                }
                continue;
            }
            let Some(item) = self.items.get(cur.next_item) else {
                out.extend_from_slice(b")\r\n");
                self.current = None;
                continue;
            };
            if cur.next_item > 0 {
                out.push(b' ');
            }
            let label = self.labels.get(cur.next_item).map_or("", String::as_str);
            cur.next_item += 1;
            render_item(cur, item, label, out);
        }
        Ok(self.current.is_none() && self.targets.len() == 0)
    }
}

/// Everything that can fail for one message, done before any of it is written.
///
/// A message read whole (for a section, BINARY) is first covered by `cover` (a share
/// of the process's memory budget, twice its size: the message and a section of it).
fn prepare(
    ctx: &FetchContext<'_>,
    target: Target,
    items: &[FetchAttr],
    cover: &mut dyn FnMut(usize) -> bool,
) -> Result<Current, FetchError> {
    let mut raw = None;
    let mut file = None;
    let mut summary = None;
    if needs_message(items) {
        if items.iter().any(|i| {
            matches!(
                i,
                FetchAttr::Envelope | FetchAttr::BodyStructure | FetchAttr::Body
            )
        }) {
            summary_of(ctx, &target.record, &mut raw, &mut summary)?;
        }
        if body_items(items) > 0 && raw.is_none() && items.iter().all(header_or_no_body) {
            // These items read the message's header alone: `raw` holds just that (or
            // stays empty for the whole read below), and everything after takes it
            // as the message.
            raw = header_of(ctx, &target.record).map(Arc::unwrap_or_clone);
        }
        if body_items(items) > 0 && raw.is_none() && items.iter().all(whole_message_or_no_body) {
            file = Some(ctx.store.open_message(ctx.mailbox, &target.record)?);
        } else if body_items(items) > 0 {
            let size = usize::try_from(target.record.size).unwrap_or(usize::MAX);
            if raw.is_none() && !cover(size.saturating_mul(2)) {
                return Err(FetchError::OverBudget);
            }
            let m = message_of(ctx, &target.record, &mut raw)?;
            let mut checked: Vec<&[u32]> = Vec::new();
            for item in items {
                let (FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part }) = item else {
                    continue;
                };
                if !part.is_empty() && !checked.contains(&part.as_slice()) {
                    tern_message::decoded_part(m, part).map_err(|_| FetchError::UnknownCte)?;
                    checked.push(part);
                }
            }
        }
        if items.contains(&FetchAttr::Preview) && raw.is_none() {
            let size = usize::try_from(target.record.size).unwrap_or(usize::MAX);
            if !cover(size) {
                return Err(FetchError::OverBudget);
            }
            message_of(ctx, &target.record, &mut raw)?;
        }
    }
    Ok(Current {
        raw,
        file,
        summary,
        target,
        next_item: 0,
        literal: None,
    })
}

/// Writes one item (its text, and the announcement of its literal, which
/// [`FetchStream::fill`] then copies out); `label` is the item's `BODY[...]` when it
/// is a BODY section. Cannot fail: [`prepare`] did what can.
fn render_item(cur: &mut Current, item: &FetchAttr, label: &str, out: &mut Vec<u8>) {
    let record = &cur.target.record;
    let raw = cur.raw.as_deref().unwrap_or_default();
    // The whole message's length, whether it is in memory or read by ranges.
    let whole = match &cur.file {
        Some(f) => f.size() as usize,
        None => raw.len(),
    };
    let summary = cur.summary.as_deref();
    let literal = match item {
        FetchAttr::Uid => {
            out.extend_from_slice(b"UID ");
            put_number(out, record.uid.into());
            None
        }
        FetchAttr::Flags => {
            out.extend_from_slice(b"FLAGS ");
            put_flag_list(out, &record.flags, cur.target.recent);
            None
        }
        FetchAttr::InternalDate => {
            out.extend_from_slice(b"INTERNALDATE ");
            put_internal_date(out, record.internaldate);
            None
        }
        FetchAttr::Rfc822Size => {
            out.extend_from_slice(b"RFC822.SIZE ");
            put_number(out, record.size);
            None
        }
        FetchAttr::EmailId => {
            let _ = write!(out, "EMAILID ({})", email_id(&record.guid));
            None
        }
        FetchAttr::ThreadId => {
            out.extend_from_slice(b"THREADID NIL");
            None
        }
        FetchAttr::SaveDate => {
            // RFC 8514 3: a record whose save time tern does not know (stored before
            // schema 10, or replicated) answers with its INTERNALDATE.
            let saved = record.saved_at.unwrap_or(record.internaldate);
            let _ = write!(out, "SAVEDATE {}", internal_date(saved));
            None
        }
        FetchAttr::Preview => {
            out.extend_from_slice(b"PREVIEW ");
            let text = tern_message::preview(raw);
            crate::mime::write_string(out, text.as_bytes());
            None
        }
        FetchAttr::Modseq => {
            out.extend_from_slice(b"MODSEQ (");
            put_number(out, record.modseq);
            out.push(b')');
            None
        }
        FetchAttr::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            out.extend_from_slice(summary.map_or(&b"NIL"[..], |s| &s.envelope));
            None
        }
        FetchAttr::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            out.extend_from_slice(summary.map_or(&b"NIL"[..], |s| &s.body_structure));
            None
        }
        FetchAttr::Body => {
            out.extend_from_slice(b"BODY ");
            out.extend_from_slice(summary.map_or(&b"NIL"[..], |s| &s.body));
            None
        }
        FetchAttr::Rfc822 => {
            out.extend_from_slice(b"RFC822");
            Some(literal_of(out, None, raw, whole, None, false))
        }
        FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
            let (name, text) = if *item == FetchAttr::Rfc822Header {
                ("RFC822.HEADER", SectionText::Header)
            } else {
                ("RFC822.TEXT", SectionText::Text)
            };
            let section = Section {
                part: vec![],
                text: Some(text),
            };
            let data = mime::section(raw, &section).unwrap_or_default();
            out.extend_from_slice(name.as_bytes());
            Some(literal_of(out, Some(data), raw, whole, None, false))
        }
        FetchAttr::BodySection {
            section, partial, ..
        } => {
            out.extend_from_slice(label.as_bytes());
            if section.part.is_empty() && section.text.is_none() {
                // The whole message: straight from the blob, no intermediate copy.
                Some(literal_of(out, None, raw, whole, *partial, false))
            } else {
                let data = mime::section(raw, section).unwrap_or_default();
                Some(literal_of(out, Some(data), raw, whole, *partial, false))
            }
        }
        FetchAttr::Binary { part, partial, .. } => {
            out.extend_from_slice(format!("BINARY[{}]", part_name(part)).as_bytes());
            if part.is_empty() {
                Some(literal_of(out, None, raw, whole, *partial, true))
            } else {
                match tern_message::decoded_part(raw, part) {
                    Ok(Some(d)) => Some(literal_of(out, Some(d), raw, whole, *partial, true)),
                    // No such part; an unknown encoding was refused by `prepare`.
                    Ok(None) | Err(_) => {
                        out.extend_from_slice(b" NIL");
                        None
                    }
                }
            }
        }
        FetchAttr::BinarySize { part } => {
            let size = if part.is_empty() {
                Some(raw.len())
            } else {
                tern_message::decoded_part(raw, part)
                    .ok()
                    .flatten()
                    .map(|d| d.len())
            };
            out.extend_from_slice(
                format!("BINARY.SIZE[{}] {}", part_name(part), size.unwrap_or(0)).as_bytes(),
            );
            None
        }
    };
    if let Some(lit) = literal {
        if lit.end > lit.pos {
            cur.literal = Some(lit);
        }
    }
}

/// Writes ` {n}\r\n` (or `<offset> {n}\r\n` for a partial fetch; `~{n}` for binary
/// content holding NUL, RFC 3516) for `data` (`None`: the whole message, `whole` bytes,
/// in `raw` or read by ranges) and returns what remains to copy.
fn literal_of(
    out: &mut Vec<u8>,
    data: Option<Vec<u8>>,
    raw: &[u8],
    whole: usize,
    partial: Option<(u32, u32)>,
    binary: bool,
) -> Literal {
    let src = data.as_deref().unwrap_or(raw);
    let len = if data.is_some() { src.len() } else { whole };
    let (pos, end) = match partial {
        None => {
            out.push(b' ');
            (0, len)
        }
        Some((offset, length)) => {
            let start = (offset as usize).min(len);
            out.extend_from_slice(format!("<{offset}> ").as_bytes());
            (start, start.saturating_add(length as usize).min(len))
        }
    };
    if binary && src.get(pos..end).unwrap_or_default().contains(&0) {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", end - pos).as_bytes());
    Literal {
        data,
        pos,
        end,
        mask_nul: !binary,
    }
}

pub(crate) fn message_of<'r>(
    ctx: &FetchContext<'_>,
    record: &Record,
    raw: &'r mut Option<Vec<u8>>,
) -> Result<&'r [u8], FetchError> {
    if raw.is_none() {
        *raw = Some(ctx.store.message(ctx.mailbox, record)?);
    }
    Ok(raw.as_deref().unwrap_or_default())
}

pub(crate) fn summary_of(
    ctx: &FetchContext<'_>,
    record: &Record,
    raw: &mut Option<Vec<u8>>,
    summary: &mut Option<Arc<MessageSummary>>,
) -> Result<Arc<MessageSummary>, FetchError> {
    if let Some(s) = summary {
        return Ok(s.clone());
    }
    let key = *record.guid.as_bytes();
    let s = match ctx.cache.summaries.get(&key) {
        Some(s) => s,
        None => {
            let m = message_of(ctx, record, raw)?;
            ctx.cache
                .summaries
                .get_or_insert_with(key, || mime::summarize(m))
        }
    };
    *summary = Some(s.clone());
    Ok(s)
}

/// Puts the summaries of `records` into the cache: those not there yet come from the
/// store's content index in one read. Messages stored before the index existed are
/// parsed on demand by [`summary_of`].
pub(crate) fn prefetch_summaries<'r>(
    ctx: &FetchContext<'_>,
    records: impl Iterator<Item = &'r Record>,
) -> Result<(), FetchError> {
    let missing: Vec<tern_store::Guid> = records
        .map(|r| r.guid)
        .filter(|g| ctx.cache.summaries.get(g.as_bytes()).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Most of a mailbox: one pass over it beats one lookup per message.
    let found = if missing.len() > 256 {
        ctx.store
            .mailbox_summaries(ctx.actor, &ctx.mailbox.uniqueid)?
    } else {
        ctx.store.summaries(&missing)?
    };
    for (guid, bytes) in found {
        if let Some(summary) = MessageSummary::from_stored(&bytes) {
            ctx.cache
                .summaries
                .insert(*guid.as_bytes(), Arc::new(summary));
        }
    }
    Ok(())
}

/// The summaries of `records`, in their order, as [`prefetch_summaries`] leaves the
/// cache: looked up under one hold of the cache's lock, the missing ones read from the
/// store's content index in one read. `None` for a message stored before the index
/// existed ([`summary_of`] parses it).
pub(crate) fn summaries_of<'r>(
    ctx: &FetchContext<'_>,
    records: impl Iterator<Item = &'r Record> + Clone,
) -> Result<Vec<Option<Arc<MessageSummary>>>, FetchError> {
    let mut found = ctx
        .cache
        .summaries
        .get_many(records.clone().map(|r| r.guid.as_bytes()));
    if found.iter().all(Option::is_some) {
        return Ok(found);
    }
    prefetch_summaries(
        ctx,
        records
            .clone()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(r, _)| r),
    )?;
    for (record, slot) in records.zip(found.iter_mut()) {
        if slot.is_none() {
            *slot = ctx.cache.summaries.get(record.guid.as_bytes());
        }
    }
    Ok(found)
}

/// `1.2.HEADER.FIELDS (FROM TO)` as it goes in a response.
pub(crate) fn section_name(section: &Section) -> String {
    let mut name = part_name(&section.part);
    let text = match &section.text {
        None => return name,
        Some(SectionText::Header) => "HEADER".to_owned(),
        Some(SectionText::Text) => "TEXT".to_owned(),
        Some(SectionText::Mime) => "MIME".to_owned(),
        Some(SectionText::HeaderFields(f)) => format!("HEADER.FIELDS ({})", field_list(f)),
        Some(SectionText::HeaderFieldsNot(f)) => format!("HEADER.FIELDS.NOT ({})", field_list(f)),
    };
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(&text);
    name
}

fn field_list(fields: &[String]) -> String {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        crate::mime::write_astring(&mut out, f.to_ascii_uppercase().as_bytes());
    }
    String::from_utf8(out).unwrap_or_default()
}

fn part_name(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}
