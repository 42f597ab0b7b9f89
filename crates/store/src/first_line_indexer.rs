//! A stand-in for `tern-message`'s indexer, for the store's tests (unit tests include
//! it from `content.rs`, integration tests from `tests/common`): the summary is the
//! first line, the Message-ID a `Message-ID:` line's value, the body text everything
//! after the blank line.

use super::{ContentIndexer, ContentSummary, MessageText};

/// See the module documentation.
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
