//! What protocols learn from a message's content, kept per GUID: a summary (opaque
//! to the store) and a full-text index of its header and body text.
//!
//! The store does not parse MIME; a protocol crate supplies a [`ContentIndexer`] and
//! the binary installs it with [`Store::set_indexer`]. From then on every message
//! stored (delivered, appended, copied in) is indexed once per GUID in the same
//! transaction as its record, so a message is never visible without its index entry.
//! Messages stored before an indexer was installed are reported as unindexed, and
//! their readers fall back to the blob.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::ids::{Guid, Uid, UniqueId};
use crate::records::live;
use crate::store::Store;

/// Computes what to keep about a message's content. Implementations must be pure:
/// the same bytes always give the same index.
pub trait ContentIndexer: Send + Sync {
    /// Indexes one raw message.
    fn index(&self, message: &[u8]) -> MessageIndex;
}

/// The indexed form of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageIndex {
    /// Opaque bytes the indexer's protocol reads back with [`Store::summaries`].
    pub summary: Vec<u8>,
    /// Searchable header text.
    pub head: String,
    /// Searchable body text.
    pub body: String,
}

/// Which text a search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// The body only (IMAP SEARCH BODY).
    Body,
    /// Header and body (IMAP SEARCH TEXT).
    All,
}

/// The answer of [`Store::search_text`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextMatches {
    /// UIDs whose indexed text contains the needle.
    pub matched: Vec<Uid>,
    /// UIDs with no index entry: the caller must look at the message itself.
    pub unindexed: Vec<Uid>,
}

/// Shortest needle the trigram index can answer, in characters.
pub const MIN_INDEXED_NEEDLE: usize = 3;

impl Store {
    /// Installs the content indexer. Only the first call takes effect.
    pub fn set_indexer(&self, indexer: Arc<dyn ContentIndexer>) {
        let _ = self.shared.indexer.set(indexer);
    }

    /// Indexes `message` if an indexer is installed and its GUID has no entry yet
    /// (`known`).
    pub(crate) fn index_for(&self, message: &[u8], known: bool) -> Option<MessageIndex> {
        if known {
            return None;
        }
        Some(self.shared.indexer.get()?.index(message))
    }

    /// The stored summaries of these GUIDs (those that have one).
    pub fn summaries(&self, guids: &[Guid]) -> Result<HashMap<Guid, Vec<u8>>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT summary FROM summaries WHERE guid = ?1")?;
            let mut out = HashMap::with_capacity(guids.len());
            for g in guids {
                if let Some(s) = stmt.query_row([&g.as_bytes()[..]], |r| r.get::<_, Vec<u8>>(0)).optional()? {
                    out.insert(*g, s);
                }
            }
            Ok(out)
        })
    }

    /// Stores the index of a message stored before the indexer was installed.
    pub fn put_index(&self, guid: Guid, index: MessageIndex) -> Result<()> {
        self.write(move |conn| insert_index(conn, &guid, &index))
    }

    /// The UIDs of `mailbox` (expunged records included) whose indexed text contains
    /// `needle`, case-insensitively; `None` when the index cannot answer (a needle
    /// shorter than [`MIN_INDEXED_NEEDLE`] characters).
    pub fn search_text(&self, mailbox: &UniqueId, field: TextField, needle: &str) -> Result<Option<TextMatches>> {
        if needle.chars().count() < MIN_INDEXED_NEEDLE {
            return Ok(None);
        }
        let quoted = format!("\"{}\"", needle.replace('"', "\"\""));
        let query = match field {
            TextField::Body => format!("body : {quoted}"),
            TextField::All => quoted,
        };
        self.read(|conn| {
            let mailbox = live(conn, mailbox)?;
            let mut stmt = conn.prepare_cached(
                "SELECT r.uid FROM records r JOIN summaries s ON s.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND s.text_id IN (SELECT rowid FROM texts WHERE texts MATCH ?2) \
                 ORDER BY r.uid",
            )?;
            let matched = stmt
                .query_map(params![mailbox.id, query], |r| r.get::<_, i64>(0).map(|u| u as Uid))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT r.uid FROM records r LEFT JOIN summaries s ON s.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND s.text_id IS NULL ORDER BY r.uid",
            )?;
            let unindexed = stmt
                .query_map([mailbox.id], |r| r.get::<_, i64>(0).map(|u| u as Uid))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(TextMatches { matched, unindexed }))
        })
    }
}

/// True if `guid` already has an index entry (inside a caller's transaction).
pub(crate) fn has_index(conn: &Connection, guid: &Guid) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM summaries WHERE guid = ?1")?
        .query_row([&guid.as_bytes()[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records a message's index once per GUID, inside the caller's transaction.
pub(crate) fn insert_index(conn: &Connection, guid: &Guid, index: &MessageIndex) -> Result<()> {
    if has_index(conn, guid)? {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO texts (head, body) VALUES (?1, ?2)")?
        .execute(params![index.head, index.body])?;
    let text_id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO summaries (guid, summary, text_id) VALUES (?1, ?2, ?3)")?
        .execute(params![&guid.as_bytes()[..], index.summary, text_id])?;
    Ok(())
}
