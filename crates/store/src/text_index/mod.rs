//! The full-text indexer: a background thread that moves queued messages
//! (`pending_texts` in the main index) into the full-text database (`texts.sqlite3`).
//!
//! What it guarantees:
//! - **Deliveries never wait for it and never need it.** Delivery only queues a GUID
//!   in the main index; the text database is written by this thread alone, and a
//!   search reads whatever the index does not cover.
//! - **Bounded size.** A message contributes at most [`HEAD_TEXT_CAP`] bytes of header
//!   text and [`BODY_TEXT_CAP`] bytes of body text (its beginning; such a message is
//!   marked incomplete and searches read it when the index does not list it); a user
//!   contributes at most [`StoreConfig::text_index_user_cap`] bytes of text in all
//!   (messages past it are not indexed). Texts whose messages are gone (no record
//!   holds the GUID any more) are swept out and given back to their user's cap. The
//!   WAL is truncated after each catch-up and its size limited by
//!   `journal_size_limit`.
//! - **Disk full is a state.** Before each batch the thread checks the free space of
//!   the data directory's filesystem and indexes nothing while it is below the
//!   headroom ([`StoreConfig::text_index_headroom`]); a failed batch (disk full or
//!   anything else) is retried after an exponential backoff, 1 s doubling to 60 s,
//!   logged once when the episode starts and once when it ends.
//!
//! [`StoreConfig::text_index_user_cap`]: crate::StoreConfig::text_index_user_cap
//! [`StoreConfig::text_index_headroom`]: crate::StoreConfig::text_index_headroom

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::ids::Guid;
use crate::schema::{TEXT_DROP, TEXT_SCHEMA, TEXT_VERSION};
use crate::sql::Cached;
use crate::store::Store;

mod limits;

pub(crate) use limits::{below_headroom, space_of, Backoff};

/// Most pending texts moved into the full-text index per transaction.
const TEXT_BATCH: usize = 200;

/// How often the indexing thread looks for pending texts.
const TEXT_INTERVAL: Duration = Duration::from_millis(200);

/// Header text indexed per message, in bytes (the beginning of it).
pub const HEAD_TEXT_CAP: usize = 16 * 1024;

/// Body text indexed per message, in bytes (the beginning of it).
pub const BODY_TEXT_CAP: usize = 64 * 1024;

/// Default per-user cap on indexed text: 1 GiB of text (about 300 MB of index at the
/// ratio measured on the benchmark corpus).
pub const DEFAULT_TEXT_USER_CAP: u64 = 1 << 30;

/// Largest WAL kept after a checkpoint.
const WAL_LIMIT: i64 = 4 << 20;

/// How often the idle indexer looks for texts whose messages are gone.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// GUIDs of the full-text index checked per sweep (the sweep walks them in order and
/// wraps around, so every one is checked within a few sweeps).
const SWEEP_BATCH: i64 = 5000;

/// Opens the full-text database (creating its tables) with a bounded WAL.
pub(crate) fn open_text_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    crate::schema::configure(&conn)?;
    let _: String = conn.query_row_cached("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let _: i64 =
        conn.query_row_cached(&format!("PRAGMA journal_size_limit={WAL_LIMIT}"), [], |r| {
            r.get(0)
        })?;
    conn.execute_batch(TEXT_SCHEMA)?;
    Ok(conn)
}

/// Opens the full-text database; if it has another layout, empties it and creates
/// the current tables, leaving `user_version` for [`mark_current`] once every message
/// is queued again. True if the caller must queue them.
fn open_or_empty(path: &Path) -> Result<(Connection, bool)> {
    let mut conn = Connection::open(path)?;
    crate::schema::configure(&conn)?;
    let _: String = conn.query_row_cached("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row_cached("PRAGMA user_version", [], |r| r.get(0))?;
    if version == TEXT_VERSION {
        tx.execute_batch(TEXT_SCHEMA)?;
        tx.commit()?;
        return Ok((conn, false));
    }
    tx.execute_batch(TEXT_DROP)?;
    tx.execute_batch(TEXT_SCHEMA)?;
    tx.commit()?;
    // Give the old layout's pages back to the filesystem; harmless if it fails
    // (another process reading), the pages are then reused.
    if let Err(e) = conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::debug!(error = %e, "cannot vacuum the rebuilt full-text index");
    }
    Ok((conn, true))
}

/// Marks the full-text database as being in the current layout.
fn mark_current(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "user_version", TEXT_VERSION)?;
    Ok(())
}

/// Cuts `s` to at most `cap` bytes at a character boundary; true if it was cut.
fn truncate(s: &mut String, cap: usize) -> bool {
    if s.len() <= cap {
        return false;
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// One pending message as the batch reads it from the main index.
struct PendingText {
    guid: Vec<u8>,
    partition: String,
    size: i64,
    /// The owner of a mailbox holding it (`users.id`); none if no record is left.
    user_id: Option<i64>,
}

impl Store {
    /// Makes sure the full-text database exists in the current layout; when it had to
    /// be (re)built, queues every stored message again. Until this succeeds, searches
    /// read messages and the indexer retries it (a full disk at start).
    pub(crate) fn prepare_text_index(&self) -> Result<()> {
        let (text, rebuilt) = open_or_empty(&self.shared.text_path)?;
        if !rebuilt {
            return Ok(());
        }
        let queued = self.write(|conn| {
            Ok(conn.execute_cached(
                "INSERT OR IGNORE INTO pending_texts (guid, partition, size) \
                 SELECT r.guid, m.partition, r.size FROM records r \
                 JOIN mailboxes m ON m.id = r.mailbox_id \
                 JOIN summaries s ON s.guid = r.guid",
                [],
            )?)
        })?;
        mark_current(&text)?;
        if queued > 0 {
            tracing::info!(
                messages = queued,
                "full-text index rebuilt; messages queued"
            );
        }
        Ok(())
    }

    /// How many messages wait for the full-text index.
    pub fn text_index_backlog(&self) -> Result<u64> {
        self.read_beside_records(|conn| {
            Ok(
                conn.query_row_cached("SELECT count(*) FROM pending_texts", [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        })
    }

    /// True when the data directory's filesystem is below the indexer's headroom.
    fn text_space_low(&self) -> bool {
        space_of(&self.shared.config.data_dir)
            .is_some_and(|s| below_headroom(s, self.shared.config.text_index_headroom))
    }

    /// Moves pending texts into the full-text index until none is left or the disk
    /// reaches the headroom; returns how many were moved. The background thread does
    /// this on its own; tests and `tern check` call it to be sure.
    pub fn flush_text_index(&self) -> Result<usize> {
        self.prepare_text_index()?;
        let mut conn = open_text_db(&self.shared.text_path)?;
        let mut total = 0;
        loop {
            if self.text_space_low() {
                return Ok(total);
            }
            let n = self.move_pending(&mut conn)?;
            total += n;
            if n < TEXT_BATCH {
                checkpoint(&conn);
                return Ok(total);
            }
        }
    }

    /// One batch: read pending texts, add them to the full-text database in one
    /// transaction, then drop them from the main index. A crash in between leaves
    /// them pending; adding them again is skipped by GUID.
    fn move_pending(&self, text: &mut Connection) -> Result<usize> {
        let indexer = &self.shared.indexer;
        let rows: Vec<PendingText> = self.read_beside_records(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT p.guid, p.partition, p.size, \
                     (SELECT m.user_id FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
                      WHERE r.guid = p.guid LIMIT 1) \
                     FROM pending_texts p LIMIT ?1",
                )?
                .query_map([TEXT_BATCH as i64], |r| {
                    Ok(PendingText {
                        guid: r.get(0)?,
                        partition: r.get(1)?,
                        size: r.get(2)?,
                        user_id: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        if rows.is_empty() {
            return Ok(0);
        }
        // The slow part (reading and decoding messages) happens before the transaction.
        let mut texts = Vec::with_capacity(rows.len());
        for row in &rows {
            let (Some(g), Some(user)) = (Guid::from_slice(&row.guid), row.user_id) else {
                continue;
            };
            match self.blobs().read(&row.partition, &g, row.size as u64) {
                Ok(bytes) => {
                    let mut t = indexer.text(&bytes);
                    let cut_head = truncate(&mut t.head, HEAD_TEXT_CAP);
                    let cut_body = truncate(&mut t.body, BODY_TEXT_CAP);
                    texts.push((&row.guid, user, t, !(cut_head || cut_body)));
                }
                // Gone (purged) or unreadable: nothing to index, drop it from the queue.
                Err(e) => tracing::debug!(guid = %g, error = %e, "cannot index message text"),
            }
        }
        let cap = self.shared.config.text_index_user_cap;
        let tx = text.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut known = tx.prepare_cached("SELECT 1 FROM text_guids WHERE guid = ?1")?;
            let mut used = tx.prepare_cached("SELECT bytes FROM text_usage WHERE user_id = ?1")?;
            let mut insert =
                tx.prepare_cached("INSERT INTO texts (rowid, text) VALUES (?1, ?2)")?;
            let mut link = tx.prepare_cached(
                "INSERT INTO text_guids (guid, text_id, user_id, bytes, complete) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut next_id: i64 = tx
                .query_row_cached("SELECT max(rowid) FROM texts_docsize", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })?
                .map_or(1, |max| max / 2 + 1);
            let mut usage: HashMap<i64, u64> = HashMap::new();
            for (guid, user, text, complete) in &texts {
                if known.exists([guid])? {
                    continue;
                }
                let bytes = (text.head.len() + text.body.len()) as u64;
                let so_far = match usage.get(user) {
                    Some(b) => *b,
                    None => used
                        .query_row([user], |r| r.get::<_, i64>(0))
                        .optional()?
                        .unwrap_or(0) as u64,
                };
                if so_far + bytes > cap {
                    // Not indexed: searches read this message, which stays correct.
                    tracing::debug!(user_id = user, so_far, cap, "user's text index is full");
                    usage.insert(*user, so_far);
                    continue;
                }
                usage.insert(*user, so_far + bytes);
                if !text.head.is_empty() {
                    insert.execute(params![next_id * 2, text.head])?;
                }
                // Always present, even empty: the highest rowid is the last text_id.
                insert.execute(params![next_id * 2 + 1, text.body])?;
                link.execute(params![guid, next_id, user, bytes as i64, *complete])?;
                next_id += 1;
            }
            let mut save = tx.prepare_cached(
                "INSERT INTO text_usage (user_id, bytes) VALUES (?1, ?2) \
                 ON CONFLICT (user_id) DO UPDATE SET bytes = excluded.bytes",
            )?;
            for (user, bytes) in &usage {
                save.execute(params![user, *bytes as i64])?;
            }
        }
        tx.commit()?;
        let guids: Vec<Vec<u8>> = rows.into_iter().map(|r| r.guid).collect();
        let n = guids.len();
        self.write_unfolded(move |conn| {
            let mut done = conn.prepare_cached("DELETE FROM pending_texts WHERE guid = ?1")?;
            for g in &guids {
                done.execute([g])?;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// Removes from the full-text index the texts of up to [`SWEEP_BATCH`] GUIDs
    /// after `from` that no record holds any more, and gives their bytes back to their
    /// user's cap; returns the GUID to continue from (`None`: wrap around) and how
    /// many texts were removed. A message stored again later under such a GUID keeps
    /// its summary and is not queued again: searches read it, which stays correct.
    fn sweep_texts(
        &self,
        text: &mut Connection,
        from: Option<Vec<u8>>,
    ) -> Result<(Option<Vec<u8>>, usize)> {
        type Orphan = (Vec<u8>, i64, i64, i64);
        let start = from.unwrap_or_default();
        let (last, orphans): (Option<Vec<u8>>, Vec<Orphan>) = self.read_beside_records(|conn| {
            if !crate::content::text_ready(conn) {
                return Ok((None, Vec::new()));
            }
            let mut stmt = conn.prepare_cached(
                "SELECT g.guid, g.text_id, g.user_id, g.bytes, \
                 NOT EXISTS (SELECT 1 FROM records r WHERE r.guid = g.guid) \
                 FROM text.text_guids g WHERE g.guid > ?1 ORDER BY g.guid LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![start, SWEEP_BATCH])?;
            let (mut last, mut orphans, mut seen) = (None, Vec::new(), 0);
            while let Some(row) = rows.next()? {
                seen += 1;
                let guid: Vec<u8> = row.get(0)?;
                if row.get::<_, bool>(4)? {
                    orphans.push((guid.clone(), row.get(1)?, row.get(2)?, row.get(3)?));
                }
                last = Some(guid);
            }
            Ok((if seen < SWEEP_BATCH { None } else { last }, orphans))
        })?;
        if orphans.is_empty() {
            return Ok((last, 0));
        }
        let tx = text.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Each delete from a contentless-delete table flushes, and every flush does a
        // step of incremental merging: a sweep of thousands of rows spent nearly all of
        // its time merging (10x). Merging is off for the deletes and back on (SQLite's
        // default, 4) before the commit, whose flush then merges once.
        tx.execute_batch("INSERT INTO texts(texts, rank) VALUES ('automerge', 0)")?;
        {
            let mut drop_row = tx.prepare_cached("DELETE FROM texts WHERE rowid = ?1")?;
            let mut unlink = tx.prepare_cached("DELETE FROM text_guids WHERE guid = ?1")?;
            let mut give_back = tx.prepare_cached(
                "UPDATE text_usage SET bytes = max(0, bytes - ?2) WHERE user_id = ?1",
            )?;
            for (guid, text_id, user, bytes) in &orphans {
                if unlink.execute([guid])? == 0 {
                    continue; // swept by another process meanwhile
                }
                drop_row.execute([text_id * 2])?;
                drop_row.execute([text_id * 2 + 1])?;
                give_back.execute(params![user, bytes])?;
            }
        }
        tx.execute_batch("INSERT INTO texts(texts, rank) VALUES ('automerge', 4)")?;
        tx.commit()?;
        Ok((last, orphans.len()))
    }

    /// Sweeps the whole full-text index once (see `sweep_texts`); returns how many
    /// texts were removed. The background thread sweeps a little at a time.
    pub fn sweep_text_index(&self) -> Result<usize> {
        let mut conn = open_text_db(&self.shared.text_path)?;
        let (mut from, mut total) = (None, 0);
        loop {
            let (next, n) = self.sweep_texts(&mut conn, from)?;
            total += n;
            match next {
                Some(g) => from = Some(g),
                None => return Ok(total),
            }
        }
    }

    /// Keeps the full-text indexer idle for `pause` from now (it then catches up).
    pub(crate) fn pause_text_indexing(&self, pause: Duration) {
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
        let spawned = std::thread::Builder::new()
            .name("tern-text-index".into())
            .spawn(move || {
                lower_priority();
                let mut conn = None;
                let mut backoff = Backoff::default();
                let mut low_space = false;
                let mut sweep = Sweep {
                    next_at: Instant::now() + SWEEP_INTERVAL,
                    from: None,
                };
                loop {
                    std::thread::sleep(TEXT_INTERVAL);
                    let Some(shared) = weak.upgrade() else { return };
                    let store = Store { shared };
                    if store.text_indexing_paused() || !backoff.ready(Instant::now()) {
                        continue;
                    }
                    if store.text_space_low() != low_space {
                        low_space = !low_space;
                        if low_space {
                            tracing::warn!(
                                "disk below the full-text index headroom; indexing paused, searches read unindexed messages"
                            );
                        } else {
                            tracing::info!("disk above the full-text index headroom; indexing resumed");
                        }
                    }
                    if low_space {
                        continue;
                    }
                    match store.index_some(&path, &mut conn, &mut sweep) {
                        Ok(()) => {
                            if backoff.succeeded() {
                                tracing::info!("full-text indexing works again");
                            }
                        }
                        Err(e) => {
                            conn = None;
                            if backoff.failed(Instant::now()) {
                                tracing::warn!(error = %e, "full-text indexing failed; retrying with backoff (up to 60 s)");
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start full-text indexing; searches will read messages");
        }
    }

    /// Moves batches until the queue is empty, the indexer is paused or the disk
    /// reaches the headroom; truncates the WAL after a catch-up. With nothing to
    /// move, takes the next step of the sweep when it is due.
    fn index_some(
        &self,
        path: &Path,
        conn: &mut Option<Connection>,
        sweep: &mut Sweep,
    ) -> Result<()> {
        let conn = match conn {
            Some(c) => c,
            None => {
                // A rebuild that failed at start (a full disk) is tried again here.
                self.prepare_text_index()?;
                conn.insert(open_text_db(path)?)
            }
        };
        let mut moved = 0;
        loop {
            let n = self.move_pending(conn)?;
            moved += n;
            if n < TEXT_BATCH || self.text_indexing_paused() || self.text_space_low() {
                break;
            }
        }
        if moved == 0 && !self.text_indexing_paused() {
            // Idle: examine messages stored before the Message-ID index existed.
            let examined = self.fill_message_ids()?;
            if examined > 0 {
                tracing::debug!(examined, "Message-IDs of older messages indexed");
                return Ok(());
            }
        }
        if moved == 0 && Instant::now() >= sweep.next_at {
            sweep.next_at = Instant::now() + SWEEP_INTERVAL;
            let (next, removed) = self.sweep_texts(conn, sweep.from.take())?;
            sweep.from = next;
            if removed > 0 {
                tracing::debug!(
                    removed,
                    "texts of removed messages swept from the full-text index"
                );
            }
            moved = removed;
        }
        if moved > 0 {
            checkpoint(conn);
        }
        Ok(())
    }
}

/// Where the background sweep stands.
struct Sweep {
    next_at: Instant,
    /// The GUID after which the next step starts; `None`: from the beginning.
    from: Option<Vec<u8>>,
}

/// Copies the WAL into the database and truncates it, so that it does not keep the
/// size of the largest catch-up. Best effort: a reader in the way just delays it.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row_cached("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "full-text index checkpoint deferred");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut s = "aé".repeat(3);
        assert!(truncate(&mut s, 4));
        assert_eq!(s, "aéa");
        let mut short = String::from("abc");
        assert!(!truncate(&mut short, 3));
        assert_eq!(short, "abc");
    }
}
