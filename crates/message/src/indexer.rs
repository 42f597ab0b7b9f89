//! [`MessageIndexer`]: the store's content indexer. What it keeps per message GUID is
//! what lets IMAP's FETCH ENVELOPE/BODYSTRUCTURE, SORT and THREAD and NNTP's OVER read
//! a small summary instead of the message, the store's Message-ID index answer
//! ARTICLE `<id>`, and SEARCH BODY/TEXT use the full-text index.

use tern_store::{ContentIndexer, ContentSummary, MessageText};

use crate::summary::summarize;
use crate::text::{body_text, header_text};

/// The content indexer every store of a tern server is opened with
/// (`Store::open(config, Arc::new(MessageIndexer))`). Pure: the same bytes always
/// give the same summary and text.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageIndexer;

impl ContentIndexer for MessageIndexer {
    fn summarize(&self, message: &[u8]) -> ContentSummary {
        let summary = summarize(message);
        ContentSummary {
            data: summary.to_bytes(),
            message_id: summary.keys.message_id,
        }
    }

    fn text(&self, message: &[u8]) -> MessageText {
        MessageText {
            head: header_text(message),
            body: body_text(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Summary;

    #[test]
    fn the_stored_summary_reads_back_with_its_message_id() {
        let raw = b"From: Ann <ann@example.org>\r\nSubject: Re: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
Message-ID: <a@x>\r\nReferences: <p@x> <q@x>\r\n\r\nhello\r\n";
        let stored = MessageIndexer.summarize(raw);
        assert_eq!(stored.message_id.as_deref(), Some("a@x"));
        let back = Summary::from_bytes(&stored.data).unwrap();
        assert_eq!(back, summarize(raw));
        assert_eq!(back.keys.subject.as_deref(), Some("Re: Grüße"));
    }

    #[test]
    fn head_text_includes_decoded_subject() {
        let raw = b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n";
        assert!(MessageIndexer.text(raw).head.contains("Grüße"));
    }
}
