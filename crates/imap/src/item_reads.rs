//! What of a message each FETCH item reads (nothing, the header alone, whole ranges
//! of the blob, or the whole message), and reading the header alone. FETCH
//! (`fetch.rs`) prepares each message by these; SEARCH's header keys read headers
//! the same way.

use std::sync::Arc;

use tern_store::Record;

use crate::fetch::FetchContext;
use crate::types::{FetchAttr, SectionText};

/// True when any item sets \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY).
pub(crate) fn sets_seen(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    })
}

/// True when rendering needs the message bytes or its MIME summary.
pub(crate) fn needs_message(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            FetchAttr::Flags
                | FetchAttr::InternalDate
                | FetchAttr::Rfc822Size
                | FetchAttr::Uid
                | FetchAttr::Modseq
                | FetchAttr::EmailId
                | FetchAttr::ThreadId
                | FetchAttr::SaveDate
        )
    })
}

/// Most body sections (BODY[...], BINARY[...], BINARY.SIZE[...], RFC822, RFC822.HEADER,
/// RFC822.TEXT) one FETCH may ask for. Each costs a pass over the message, so without
/// a cap `FETCH 1 (BODY.PEEK[] x400)` of a 16 MB message is 6.4 GB of output for one
/// line of input. 64 is far more than any client sends (they ask for a handful).
pub(crate) const MAX_BODY_ITEMS: usize = 64;

/// How many items of `items` read message content (see [`MAX_BODY_ITEMS`]).
pub(crate) fn body_items(items: &[FetchAttr]) -> usize {
    items
        .iter()
        .filter(|i| {
            matches!(
                i,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
                    | FetchAttr::BodySection { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize { .. }
            )
        })
        .count()
}

/// True for items that read at most the message's own header (`BODY[HEADER]`,
/// `BODY[HEADER.FIELDS (...)]` and `.NOT`, `RFC822.HEADER`, their partials), or no
/// byte of the message at all.
pub(crate) fn header_or_no_body(item: &FetchAttr) -> bool {
    match item {
        FetchAttr::Rfc822Header => true,
        FetchAttr::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    )
                )
        }
        FetchAttr::Rfc822
        | FetchAttr::Rfc822Text
        | FetchAttr::Binary { .. }
        | FetchAttr::BinarySize { .. }
        | FetchAttr::Preview => false,
        _ => true,
    }
}

/// How much of a message is read for its header alone: first, then at most.
const HEADER_READ: (usize, usize) = (8 * 1024, 64 * 1024);

/// The message's header up to and with its blank line, read alone when it ends within
/// the first [`HEADER_READ`] bytes (or the message is no longer): a client opening a
/// folder asks for a few header fields of every message, and reading each message
/// whole for them, attachments and all, cost more than the rest of the answer.
/// `None` when the header is longer or the read failed: the caller reads the whole
/// message as for any section, with its checks and its errors. Headers read are kept
/// in the server's [`crate::mime::HeaderCache`].
pub(crate) fn header_of(ctx: &FetchContext<'_>, record: &Record) -> Option<Arc<Vec<u8>>> {
    // Kept by GUID, whose content never changes: shared out of the cache, a header
    // costs a lookup against an open and a read of its file.
    let guid = *record.guid.as_bytes();
    if let Some(head) = ctx.cache.headers.get(&guid) {
        return Some(head);
    }
    let head = Arc::new(read_header(ctx, record)?);
    ctx.cache.headers.insert(guid, Arc::clone(&head));
    Some(head)
}

/// [`header_of`] from the message file.
fn read_header(ctx: &FetchContext<'_>, record: &Record) -> Option<Vec<u8>> {
    let file = ctx.store.open_message(ctx.mailbox, record).ok()?;
    let mut head = Vec::new();
    let mut want = HEADER_READ.0;
    loop {
        let have = head.len();
        file.append_at(have as u64, want - have, &mut head).ok()?;
        if head.len() as u64 >= file.size() {
            return Some(head);
        }
        if let Some(body_start) = tern_message::header::header_end(&head) {
            head.truncate(body_start);
            return Some(head);
        }
        if want >= HEADER_READ.1 {
            return None;
        }
        want = HEADER_READ.1;
    }
}

/// True for items that need no byte of the message but whole ranges of it
/// (`BODY[]`, `RFC822`, their partials), or none at all.
pub(crate) fn whole_message_or_no_body(item: &FetchAttr) -> bool {
    match item {
        FetchAttr::Rfc822 => true,
        FetchAttr::BodySection { section, .. } => section.part.is_empty() && section.text.is_none(),
        FetchAttr::Rfc822Header
        | FetchAttr::Rfc822Text
        | FetchAttr::Binary { .. }
        | FetchAttr::BinarySize { .. } => false,
        _ => true,
    }
}
