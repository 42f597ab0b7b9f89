//! The IMAP content indexer: what the store keeps per message GUID so that FETCH of
//! ENVELOPE/BODYSTRUCTURE, SORT and THREAD read a small summary instead of the
//! message, and SEARCH BODY/TEXT is answered from the store's full-text index.
//!
//! The summary is [`MessageSummary`] in a compact, versioned binary form; an entry
//! that does not decode (written by another version) is simply recomputed.

use tern_store::{ContentIndexer, ContentSummary, MessageText};

use crate::mime::{self, MessageSummary};

/// Installed in the store by the binary (`Store::set_indexer`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ImapIndexer;

impl ContentIndexer for ImapIndexer {
    fn summarize(&self, message: &[u8]) -> ContentSummary {
        let summary = mime::summarize(message);
        ContentSummary {
            data: encode(&summary),
            message_id: summary.message_id.clone(),
        }
    }

    fn text(&self, message: &[u8]) -> MessageText {
        MessageText {
            head: head_text(message),
            body: mime::body_text(message),
        }
    }
}

/// The header text SEARCH TEXT looks in (decoded values, machine fields left out).
pub(crate) fn head_text(raw: &[u8]) -> String {
    mime::header_text(raw)
}

const VERSION: u8 = 1;

/// Serialises a summary: a version byte, then each field length-prefixed.
pub(crate) fn encode(s: &MessageSummary) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(s.envelope.len() + s.body_structure.len() + s.body.len() + 256);
    out.push(VERSION);
    out.extend_from_slice(&s.size.to_le_bytes());
    put_bytes(&mut out, Some(&s.envelope));
    put_bytes(&mut out, Some(&s.body_structure));
    put_bytes(&mut out, Some(&s.body));
    match s.date {
        Some(d) => {
            out.push(1);
            out.extend_from_slice(&d.to_le_bytes());
        }
        None => out.push(0),
    }
    put_str(&mut out, s.subject.as_deref());
    put_str(&mut out, Some(&s.base_subject));
    put_str(&mut out, s.from_mailbox.as_deref());
    put_str(&mut out, s.to_mailbox.as_deref());
    put_str(&mut out, s.cc_mailbox.as_deref());
    put_str(&mut out, s.display_from.as_deref());
    put_str(&mut out, s.display_to.as_deref());
    put_str(&mut out, s.message_id.as_deref());
    put_str(&mut out, s.in_reply_to.as_deref());
    out.extend_from_slice(&(s.references.len() as u32).to_le_bytes());
    for r in &s.references {
        put_str(&mut out, Some(r));
    }
    out
}

/// Reads back what [`encode`] wrote; `None` for anything else.
pub(crate) fn decode(bytes: &[u8]) -> Option<MessageSummary> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(1)?[0] != VERSION {
        return None;
    }
    let size = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let envelope = r.bytes()?.unwrap_or_default();
    let body_structure = r.bytes()?.unwrap_or_default();
    let body = r.bytes()?.unwrap_or_default();
    let date = match r.take(1)?[0] {
        0 => None,
        _ => Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
    };
    let subject = r.string()?;
    let base_subject = r.string()?.unwrap_or_default();
    let from_mailbox = r.string()?;
    let to_mailbox = r.string()?;
    let cc_mailbox = r.string()?;
    let display_from = r.string()?;
    let display_to = r.string()?;
    let message_id = r.string()?;
    let in_reply_to = r.string()?;
    let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    let mut references = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        references.push(r.string()??);
    }
    if r.pos != bytes.len() {
        return None;
    }
    Some(MessageSummary {
        size,
        envelope,
        body_structure,
        body,
        date,
        subject,
        base_subject,
        from_mailbox,
        to_mailbox,
        cc_mailbox,
        display_from,
        display_to,
        message_id,
        in_reply_to,
        references,
    })
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    put_bytes(out, s.map(str::as_bytes));
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        if len == u32::MAX {
            return Some(None);
        }
        Some(Some(self.take(len as usize)?.to_vec()))
    }

    fn string(&mut self) -> Option<Option<String>> {
        match self.bytes()? {
            None => Some(None),
            Some(b) => Some(Some(String::from_utf8(b).ok()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip() {
        let raw = b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Re: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <a@x>\r\nReferences: <p@x> <q@x>\r\n\r\nhello\r\n";
        let s = mime::summarize(raw);
        let back = decode(&encode(&s)).unwrap();
        assert_eq!(encode(&back), encode(&s));
        assert_eq!(back.references, s.references);
        assert_eq!(back.date, s.date);
        assert!(decode(&encode(&s)[..10]).is_none());
        assert!(decode(b"").is_none());
    }

    #[test]
    fn head_text_includes_decoded_subject() {
        let raw = b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n";
        assert!(head_text(raw).contains("Grüße"));
    }
}
