//! What the store's integration tests share: the content indexer they open stores
//! with (the same stand-in the unit tests use).

#![allow(dead_code)]

use std::sync::Arc;

use tern_store::{Actor, ContentIndexer, ContentSummary, Flags, MessageText};

#[path = "../../src/first_line_indexer.rs"]
mod first_line_indexer;

pub use first_line_indexer::FirstLine;

/// The indexer to open a test store with.
pub fn indexer() -> Arc<dyn ContentIndexer> {
    Arc::new(FirstLine)
}

/// The owner of user `name`'s mailboxes (not an administrator).
pub fn owner(name: &str) -> Actor {
    Actor {
        name: name.into(),
        is_admin: false,
    }
}

/// Flags from their IMAP list text (`\Seen $Work`); panics on bad text.
pub fn flags(s: &str) -> Flags {
    Flags::parse_list(s).unwrap()
}
