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
    /// The summary kept with the message (opaque bytes the protocol reads back with
    /// [`Store::summaries`]); computed when the message is stored.
    fn summarize(&self, message: &[u8]) -> Vec<u8>;
    /// The searchable text; computed later, in the background, from the blob.
    fn text(&self, message: &[u8]) -> MessageText;
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
    pub(crate) fn index_for(&self, message: &[u8], known: bool) -> Option<Vec<u8>> {
        if known {
            return None;
        }
        Some(self.shared.indexer.get()?.summarize(message))
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

    /// The UIDs of `mailbox` (expunged records included) whose indexed text contains
    /// `needle`, case-insensitively; `None` when the index cannot answer (a needle
    /// shorter than [`MIN_INDEXED_NEEDLE`] characters). Messages whose text has not
    /// reached the full-text index yet are listed in `unindexed`.
    pub fn search_text(
        &self,
        mailbox: &UniqueId,
        field: TextField,
        needle: &str,
    ) -> Result<Option<TextMatches>> {
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
                "SELECT r.uid FROM records r JOIN text.text_guids g ON g.guid = r.guid \
                 WHERE r.mailbox_id = ?1 \
                 AND g.text_id IN (SELECT rowid FROM text.texts WHERE texts MATCH ?2) ORDER BY r.uid",
            )?;
            let matched = stmt
                .query_map(params![mailbox.id, query], |r| r.get::<_, i64>(0).map(|u| u as Uid))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT r.uid FROM records r LEFT JOIN text.text_guids g ON g.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND g.guid IS NULL ORDER BY r.uid",
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

/// Records a message's summary once per GUID, inside the caller's transaction, and
/// queues the message for the full-text index (which reads it from its blob later).
pub(crate) fn insert_index(
    conn: &Connection,
    guid: &Guid,
    summary: &[u8],
    partition: &str,
    size: u64,
) -> Result<()> {
    if has_index(conn, guid)? {
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO summaries (guid, summary) VALUES (?1, ?2)")?
        .execute(params![&guid.as_bytes()[..], summary])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO pending_texts (guid, partition, size) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![&guid.as_bytes()[..], partition, size as i64])?;
    Ok(())
}

/// Most pending texts moved into the full-text index per transaction.
const TEXT_BATCH: usize = 200;

/// How often the indexing thread looks for pending texts.
const TEXT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Opens the full-text database and creates its tables.
pub(crate) fn open_text_db(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    crate::schema::configure(&conn)?;
    let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch(crate::schema::TEXT_SCHEMA)?;
    Ok(conn)
}

impl Store {
    /// Moves pending texts into the full-text index until none is left; returns how
    /// many were moved. The background thread does this on its own; tests and
    /// `tern check` call it to be sure.
    pub fn flush_text_index(&self) -> Result<usize> {
        let mut conn = open_text_db(&self.shared.text_path)?;
        let mut total = 0;
        loop {
            let n = self.move_pending(&mut conn)?;
            total += n;
            if n < TEXT_BATCH {
                return Ok(total);
            }
        }
    }

    /// One batch: read pending texts, add them to the full-text database in one
    /// transaction, then drop them from the main index. A crash in between leaves
    /// them pending; adding them again is skipped by GUID.
    fn move_pending(&self, text: &mut Connection) -> Result<usize> {
        let Some(indexer) = self.shared.indexer.get() else {
            return Ok(0);
        };
        let rows: Vec<(Vec<u8>, String, i64)> = self.read(|conn| {
            let rows = conn
                .prepare_cached("SELECT guid, partition, size FROM pending_texts LIMIT ?1")?
                .query_map([TEXT_BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        if rows.is_empty() {
            return Ok(0);
        }
        // The slow part (reading and decoding messages) happens before the transaction.
        let mut texts = Vec::with_capacity(rows.len());
        for (guid, partition, size) in &rows {
            let Some(g) = Guid::from_slice(guid) else {
                continue;
            };
            match self.blobs().read(partition, &g, *size as u64) {
                Ok(bytes) => texts.push((guid, Some(indexer.text(&bytes)))),
                // Gone (purged) or unreadable: nothing to index, drop it from the queue.
                Err(e) => {
                    tracing::debug!(guid = %g, error = %e, "cannot index message text");
                    texts.push((guid, None));
                }
            }
        }
        let tx = text.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut known = tx.prepare_cached("SELECT 1 FROM text_guids WHERE guid = ?1")?;
            let mut insert = tx.prepare_cached("INSERT INTO texts (head, body) VALUES (?1, ?2)")?;
            let mut link =
                tx.prepare_cached("INSERT INTO text_guids (guid, text_id) VALUES (?1, ?2)")?;
            for (guid, text) in &texts {
                let Some(text) = text else { continue };
                if known.exists([guid])? {
                    continue;
                }
                insert.execute(params![text.head, text.body])?;
                link.execute(params![guid, tx.last_insert_rowid()])?;
            }
        }
        tx.commit()?;
        let guids: Vec<Vec<u8>> = rows.into_iter().map(|r| r.0).collect();
        let n = guids.len();
        self.write(move |conn| {
            let mut done = conn.prepare_cached("DELETE FROM pending_texts WHERE guid = ?1")?;
            for g in &guids {
                done.execute([g])?;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// Keeps the full-text indexer idle for `pause` from now (it then catches up).
    pub(crate) fn pause_text_indexing(&self, pause: std::time::Duration) {
        let until = unix_millis() + pause.as_millis() as u64;
        self.shared
            .text_pause_until
            .fetch_max(until, std::sync::atomic::Ordering::Relaxed);
    }

    fn text_indexing_paused(&self) -> bool {
        self.shared
            .text_pause_until
            .load(std::sync::atomic::Ordering::Relaxed)
            > unix_millis()
    }

    /// Starts the thread that feeds the full-text index from `pending_texts`, with its
    /// own connection to the full-text database so that its work never holds the main
    /// index's write lock. It ends when the last `Store` handle is dropped.
    pub(crate) fn start_text_indexing(&self) {
        let weak = std::sync::Arc::downgrade(&self.shared);
        let path = self.shared.text_path.clone();
        let spawned = std::thread::Builder::new().name("tern-text-index".into()).spawn(move || {
            lower_priority();
            let mut conn = match open_text_db(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the full-text index; searches will read messages");
                    return;
                }
            };
            loop {
                std::thread::sleep(TEXT_INTERVAL);
                let Some(shared) = weak.upgrade() else { return };
                let store = Store { shared };
                if store.text_indexing_paused() {
                    continue;
                }
                while let Ok(n) = store.move_pending(&mut conn).inspect_err(|e| {
                    tracing::warn!(error = %e, "full-text indexing failed; will retry");
                }) {
                    if n < TEXT_BATCH || store.text_indexing_paused() {
                        break;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start full-text indexing; searches will read messages");
        }
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Makes the calling thread run only when the machine has nothing else to do
/// (SCHED_IDLE): indexing is background work, and searches read unindexed messages
/// directly meanwhile. Where that policy is refused, a low nice value instead.
fn lower_priority() {
    // SAFETY: both calls act on the calling thread only and take plain values;
    // failure leaves the default scheduling, which is merely less polite.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
}
