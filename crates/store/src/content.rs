//! What protocols learn from a message's content, kept per GUID: a summary (opaque
//! to the store) and a full-text index of its header and body text (built by
//! [`crate::text_index`] in the background, asked here).
//!
//! The store does not parse MIME: it is opened with a [`ContentIndexer`]
//! (`tern-message`'s, in a server), and cannot be opened without one. Every message
//! stored (delivered, appended, copied in) is indexed once per GUID in the same
//! transaction as its record, so a message is never visible without its index entry.
//! Messages without one (stored by a version that predates the index, or whose entry
//! a reader cannot decode) are reported as unindexed, and their readers fall back to
//! the blob.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::ids::{Guid, Uid, UniqueId};
use crate::records::live;
use crate::sql::Cached;
use crate::store::Store;

/// Computes what to keep about a message's content. Implementations must be pure:
/// the same bytes always give the same index.
pub trait ContentIndexer: Send + Sync {
    /// The summary kept with the message (opaque bytes the protocol reads back with
    /// [`Store::summaries`]) and its Message-ID (kept in the store's Message-ID index);
    /// computed when the message is stored.
    fn summarize(&self, message: &[u8]) -> ContentSummary;
    /// The searchable text; computed later, in the background, from the blob.
    fn text(&self, message: &[u8]) -> MessageText;
}

/// What a [`ContentIndexer`] keeps about a message when it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentSummary {
    /// Opaque to the store; read back with [`Store::summaries`].
    pub data: Vec<u8>,
    /// The Message-ID header's value, if any (with or without its angle brackets); the
    /// store keeps it only when it is a well-formed id (see
    /// [`crate::normalize_message_id`]).
    pub message_id: Option<String>,
}

/// The searchable text of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageText {
    /// Header text.
    pub head: String,
    /// Body text.
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
    /// UIDs whose indexed text has every trigram of the needle: a superset of the
    /// indexed messages that contain it. Each must be checked against the message.
    pub candidates: Vec<Uid>,
    /// UIDs the index does not cover, or covers only in part (text beyond the
    /// per-message cap, or not indexed yet, or past the user's cap): the caller must
    /// look at the message itself.
    pub unindexed: Vec<Uid>,
}

/// Shortest needle the trigram index can help with, in characters.
pub const MIN_INDEXED_NEEDLE: usize = 3;

impl Store {
    /// Indexes `message` unless its GUID has an entry already (`known`).
    pub(crate) fn index_for(&self, message: &[u8], known: bool) -> Option<ContentSummary> {
        (!known).then(|| self.shared.indexer.summarize(message))
    }

    /// The stored summaries of these GUIDs (those that have one).
    pub fn summaries(&self, guids: &[Guid]) -> Result<HashMap<Guid, Vec<u8>>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT summary FROM summaries WHERE guid = ?1")?;
            let mut out = HashMap::with_capacity(guids.len());
            for g in guids {
                if let Some(s) = stmt
                    .query_row([&g.as_bytes()[..]], |r| r.get::<_, Vec<u8>>(0))
                    .optional()?
                {
                    out.insert(*g, s);
                }
            }
            Ok(out)
        })
    }

    /// The stored summaries of every message in a mailbox (expunged ones included), in
    /// one pass: cheaper than asking GUID by GUID when a client fetches most of it.
    pub fn mailbox_summaries(
        &self,
        actor: &crate::Actor,
        mailbox: &UniqueId,
    ) -> Result<HashMap<Guid, Vec<u8>>> {
        self.read(|conn| {
            let mailbox = crate::records::live_for(conn, actor, mailbox, crate::Rights::READ)?;
            let mut stmt = conn.prepare_cached(
                "SELECT s.guid, s.summary FROM records r JOIN summaries s ON s.guid = r.guid WHERE r.mailbox_id = ?1",
            )?;
            let mut out = HashMap::new();
            let rows = stmt.query_map([mailbox.id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
            for row in rows {
                let (guid, summary) = row?;
                if let Some(g) = Guid::from_slice(&guid) {
                    out.insert(g, summary);
                }
            }
            Ok(out)
        })
    }

    /// Narrows a substring search of `mailbox` (expunged records included) with the
    /// full-text index. `None` when the index cannot help: a needle without a
    /// trigram of ASCII characters (shorter than [`MIN_INDEXED_NEEDLE`], or all
    /// non-ASCII), or no full-text database. Otherwise the caller must still check
    /// each of `candidates` against the message itself (the index knows which
    /// trigrams a message has, not where), may skip every other message that is not
    /// in `unindexed`, and must read those in `unindexed`.
    pub fn search_text(
        &self,
        mailbox: &UniqueId,
        field: TextField,
        needle: &str,
    ) -> Result<Option<TextMatches>> {
        let Some(query) = trigram_query(needle) else {
            return Ok(None);
        };
        // Rowid 2n is message n's header text, 2n + 1 its body text.
        let sql = match field {
            TextField::Body => {
                "SELECT r.uid FROM records r JOIN text.text_guids g ON g.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND g.text_id IN \
                 (SELECT rowid >> 1 FROM text.texts WHERE texts MATCH ?2 AND rowid & 1 = 1) \
                 ORDER BY r.uid"
            }
            TextField::All => {
                "SELECT r.uid FROM records r JOIN text.text_guids g ON g.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND g.text_id IN \
                 (SELECT rowid >> 1 FROM text.texts WHERE texts MATCH ?2) ORDER BY r.uid"
            }
        };
        self.read(|conn| {
            let mailbox = live(conn, mailbox)?;
            if !text_ready(conn) {
                return Ok(None);
            }
            let candidates = conn
                .prepare_cached(sql)?
                .query_map(params![mailbox.id, query], |r| {
                    r.get::<_, i64>(0).map(|u| u as Uid)
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT r.uid FROM records r LEFT JOIN text.text_guids g ON g.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND (g.guid IS NULL OR g.complete = 0) ORDER BY r.uid",
            )?;
            let unindexed = stmt
                .query_map([mailbox.id], |r| r.get::<_, i64>(0).map(|u| u as Uid))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(TextMatches {
                candidates,
                unindexed,
            }))
        })
    }
}

/// True when the reader connection has the full-text database attached, in the
/// current layout (it may be missing, or not yet rebuilt from an earlier layout
/// because the disk was full: the store then serves without it).
pub(crate) fn text_ready(conn: &Connection) -> bool {
    conn.query_row_cached("PRAGMA text.user_version", [], |r| r.get::<_, i64>(0))
        .is_ok_and(|v| v == crate::schema::TEXT_VERSION)
}

/// Most trigrams a query asks for: more only narrow an already short list.
const MAX_QUERY_TRIGRAMS: usize = 12;

/// The FTS5 query for a needle: every distinct trigram of ASCII characters in it,
/// ANDed (at most [`MAX_QUERY_TRIGRAMS`], spread over the needle). Any message that
/// contains the needle case-insensitively contains each of them, so the rows found
/// are a superset of the matches. Trigrams with non-ASCII characters are left out
/// because SQLite's case folding and Rust's `to_lowercase` (which the final check
/// uses) may differ there; leaving a trigram out can only widen the superset.
pub(crate) fn trigram_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut grams: Vec<String> = Vec::new();
    for w in chars.windows(MIN_INDEXED_NEEDLE) {
        if !w.iter().all(char::is_ascii) {
            continue;
        }
        let g: String = w.iter().collect::<String>().to_ascii_lowercase();
        if !grams.contains(&g) {
            grams.push(g);
        }
    }
    if grams.is_empty() {
        return None;
    }
    let step = grams.len().div_ceil(MAX_QUERY_TRIGRAMS);
    let picked: Vec<String> = grams
        .iter()
        .step_by(step)
        .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
        .collect();
    Some(picked.join(" AND "))
}

/// True if `guid` already has an index entry (inside a caller's transaction).
pub(crate) fn has_index(conn: &Connection, guid: &Guid) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM summaries WHERE guid = ?1")?
        .query_row([&guid.as_bytes()[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records a message's summary once per GUID, inside the caller's transaction, and
/// queues the message for the full-text index (which reads it from its blob later).
pub(crate) fn insert_index(
    conn: &Connection,
    guid: &Guid,
    summary: &ContentSummary,
    partition: &str,
    size: u64,
) -> Result<()> {
    if has_index(conn, guid)? {
        return Ok(());
    }
    // '' marks "no usable Message-ID": NULL is kept for rows not examined yet.
    let message_id = summary
        .message_id
        .as_deref()
        .and_then(crate::message_ids::normalize_message_id)
        .unwrap_or_default();
    conn.prepare_cached("INSERT INTO summaries (guid, summary, message_id) VALUES (?1, ?2, ?3)")?
        .execute(params![&guid.as_bytes()[..], summary.data, message_id])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO pending_texts (guid, partition, size) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![&guid.as_bytes()[..], partition, size as i64])?;
    Ok(())
}

#[cfg(test)]
#[path = "first_line_indexer.rs"]
mod first_line_indexer;

/// The indexer the store's unit tests open stores with (`first_line_indexer.rs`).
#[cfg(test)]
pub(crate) fn test_indexer() -> std::sync::Arc<dyn ContentIndexer> {
    std::sync::Arc::new(first_line_indexer::FirstLine)
}

/// For unit tests: a small deterministic generator (xorshift), so that a failure of
/// a randomised test repeats.
#[cfg(test)]
pub(crate) struct Dice(pub(crate) u64);

#[cfg(test)]
impl Dice {
    /// The next number below `n`.
    pub(crate) fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// For unit tests: a store in a fresh directory with the user `u`, whose INBOX holds
/// `n` messages `Subject: 0` .. `Subject: n-1` (UIDs 1..=n). Returns the directory
/// (keep it alive), the store, the user and the INBOX's unique id.
#[cfg(test)]
pub(crate) fn store_with_inbox(
    n: usize,
) -> (
    tempfile::TempDir,
    crate::Store,
    crate::Actor,
    crate::ids::UniqueId,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::Store::open(crate::StoreConfig::new(dir.path()), test_indexer()).unwrap();
    store.create_user("u", None, false).unwrap();
    let actor = crate::Actor {
        name: "u".into(),
        is_admin: false,
    };
    let inbox = store.mailbox("u", "INBOX").unwrap().unwrap().uniqueid;
    let bodies: Vec<String> = (0..n)
        .map(|i| format!("Subject: {i}\r\n\r\nx\r\n"))
        .collect();
    let batch: Vec<crate::NewMessage<'_>> = bodies
        .iter()
        .map(|b| crate::NewMessage {
            flags: crate::Flags::new(),
            internaldate: 0,
            bytes: b.as_bytes(),
        })
        .collect();
    store.append_all(&actor, &inbox, &batch).unwrap();
    (dir, store, actor, inbox)
}

#[cfg(test)]
mod tests {
    use super::trigram_query;

    #[test]
    fn trigram_queries_and_every_ascii_trigram() {
        assert_eq!(
            trigram_query("Quokka").as_deref(),
            Some(r#""quo" AND "uok" AND "okk" AND "kka""#)
        );
        assert_eq!(trigram_query("abc").as_deref(), Some(r#""abc""#));
        assert_eq!(
            trigram_query("a\"bc").as_deref(),
            Some(r#""a""b" AND """bc""#)
        );
        assert_eq!(trigram_query("ab"), None, "shorter than a trigram");
        assert_eq!(trigram_query("äöüß"), None, "no ASCII trigram");
        assert_eq!(
            trigram_query("Grüße aus").as_deref(),
            Some(r#""e a" AND " au" AND "aus""#)
        );
        assert_eq!(
            trigram_query("aaaaaa").as_deref(),
            Some(r#""aaa""#),
            "distinct only"
        );
        let long = trigram_query(&"abcdefghijklmnopqrstuvwxyz".repeat(3)).unwrap();
        assert!(long.matches(" AND ").count() < 12, "{long}");
    }
}
