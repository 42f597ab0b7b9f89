//! What the store's integration tests share: the content indexer they open stores
//! with.

#![allow(dead_code)]

use std::sync::Arc;

use tern_store::{ContentIndexer, ContentSummary, MessageText};

/// A stand-in for `tern-message`'s indexer: the summary is the first line, the
/// Message-ID a `Message-ID:` line's value, the body text everything after the blank
/// line.
pub struct FirstLine;

impl ContentIndexer for FirstLine {
    fn summarize(&self, message: &[u8]) -> ContentSummary {
        let text = String::from_utf8_lossy(message);
        ContentSummary {
            data: text.lines().next().unwrap_or("").as_bytes().to_vec(),
            message_id: text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID:"))
                .map(str::to_owned),
        }
    }

    fn text(&self, message: &[u8]) -> MessageText {
        let text = String::from_utf8_lossy(message);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        MessageText {
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// The indexer to open a test store with.
pub fn indexer() -> Arc<dyn ContentIndexer> {
    Arc::new(FirstLine)
}
