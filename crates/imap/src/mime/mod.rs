//! MIME for IMAP: ENVELOPE, BODYSTRUCTURE / BODY and body sections rendered from
//! `tern-message`'s protocol-neutral [`tern_message::Summary`] and MIME tree, and a
//! cache of per-message summaries.
//!
//! Output meant for the wire (`envelope`, `body_structure`, `body`) follows the
//! RFC 3501 / RFC 9051 grammar: strings are quoted when that is possible and sent as
//! `{n}\r\n` literals otherwise; absent values are `NIL`. Envelope strings are the
//! raw header values (still RFC 2047 encoded), unfolded.
//!
//! # Where things are
//!
//! - `wire.rs`: the string encoders ([`write_string`], [`write_nstring`],
//!   [`write_astring`]).
//! - `envelope.rs`, `bodystructure.rs`: ENVELOPE and BODYSTRUCTURE / BODY.
//! - `section.rs`: [`section()`], the exact bytes of `BODY[section]`.
//! - `cache.rs`: [`GuidCache`]: [`SummaryCache`] and [`HeaderCache`], together
//!   [`MessageCaches`].
//! - This file: [`MessageSummary`], a [`tern_message::Summary`] with its IMAP
//!   renderings, which FETCH, SORT and THREAD read.

mod bodystructure;
mod cache;
mod envelope;
mod section;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
mod wire;

pub use cache::{
    GuidCache, HeaderCache, MessageCaches, SearchTextCache, SearchTexts, SummaryCache, Weigh,
};
pub use section::section;
pub use wire::{mask_nul, write_astring, write_nstring, write_string};

use bodystructure::write_body;
use envelope::write_envelope;

/// What FETCH, SEARCH, SORT and THREAD need of one message: its summary's facts, with
/// ENVELOPE, BODYSTRUCTURE and BODY rendered once (when the summary enters the
/// cache), not at every FETCH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// Size of the raw message in octets.
    pub size: u64,
    /// ENVELOPE, as wire bytes (`(date subject from ... message-id)`).
    pub envelope: Vec<u8>,
    /// BODYSTRUCTURE (with extension data), as wire bytes.
    pub body_structure: Vec<u8>,
    /// BODY (no extension data), as wire bytes.
    pub body: Vec<u8>,
    /// What SORT and THREAD compare.
    pub keys: tern_message::SortKeys,
}

impl From<tern_message::Summary> for MessageSummary {
    fn from(s: tern_message::Summary) -> MessageSummary {
        let mut envelope = Vec::with_capacity(256);
        write_envelope(&mut envelope, &s.envelope);
        let mut body_structure = Vec::with_capacity(256);
        write_body(&mut body_structure, &s.structure, true);
        let mut body = Vec::with_capacity(256);
        write_body(&mut body, &s.structure, false);
        envelope.shrink_to_fit();
        body_structure.shrink_to_fit();
        body.shrink_to_fit();
        MessageSummary {
            size: s.size,
            envelope,
            body_structure,
            body,
            keys: s.keys,
        }
    }
}

impl MessageSummary {
    /// Approximate heap footprint in bytes (what [`SummaryCache`] budgets).
    pub fn weight(&self) -> usize {
        let s = |o: &Option<String>| o.as_ref().map_or(0, |s| s.capacity());
        let k = &self.keys;
        std::mem::size_of::<Self>()
            + self.envelope.capacity()
            + self.body_structure.capacity()
            + self.body.capacity()
            + s(&k.subject)
            + k.base_subject.capacity()
            + s(&k.from_mailbox)
            + s(&k.to_mailbox)
            + s(&k.cc_mailbox)
            + s(&k.display_from)
            + s(&k.display_to)
            + s(&k.message_id)
            + s(&k.in_reply_to)
            + k.references
                .iter()
                .map(|r| r.capacity() + 24)
                .sum::<usize>()
    }

    /// The summary the store keeps for a message ([`tern_message::Summary::to_bytes`]),
    /// rendered; `None` when those bytes are not a summary this version reads.
    pub fn from_stored(bytes: &[u8]) -> Option<MessageSummary> {
        tern_message::Summary::from_bytes(bytes).map(MessageSummary::from)
    }
}

/// The BODYSTRUCTURE (with extension data) of the part at MIME part numbers `part`
/// of the message `raw` (IMAP section numbering; empty: the whole message), as RFC
/// 5524's BODYPARTSTRUCTURE reports it; `None` when there is no such part.
pub fn part_structure(raw: &[u8], part: &[u32]) -> Option<Vec<u8>> {
    use tern_message::Content;
    let summary = tern_message::summarize(raw);
    let mut node = &summary.structure;
    for (depth, &n) in part.iter().enumerate() {
        // Below the top, the parts of an encapsulated message are its body's.
        let container = match &node.content {
            Content::Message { body, .. } if depth > 0 => body.as_ref(),
            _ => node,
        };
        // A single part numbers its body 1, but only at the top (a message that is
        // not multipart) or inside an encapsulated message: a leaf has no parts.
        let numbered_body = depth == 0 || matches!(node.content, Content::Message { .. });
        node = match &container.content {
            Content::Multipart(children) => {
                children.get(usize::try_from(n).ok()?.checked_sub(1)?)?
            }
            _ if n == 1 && numbered_body => container,
            _ => return None,
        };
    }
    let mut out = Vec::with_capacity(256);
    write_body(&mut out, node, true);
    Some(out)
}

/// Computes a message's [`MessageSummary`] from its raw bytes. Never panics.
pub fn summarize(raw: &[u8]) -> MessageSummary {
    MessageSummary::from(tern_message::summarize(raw))
}
