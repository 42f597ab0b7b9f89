//! The [`Store`] handle: opening a data directory, reading and writing the index.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::blobs::BlobStore;
use crate::content::ContentIndexer;
use tokio::sync::watch;

use crate::error::{Result, StoreError};
use crate::ids::{Modseq, UniqueId};
use crate::sql::Cached;
use crate::writer::{Pending, Writer};

/// Where and how a store keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory: holds the index and, unless configured otherwise, the
    /// partitions.
    pub data_dir: PathBuf,
    /// Partition name to directory. When empty, one partition `default` lives at
    /// `<data_dir>/partitions/default`.
    pub partitions: BTreeMap<String, PathBuf>,
    /// The partition new mailboxes are created in.
    pub default_partition: String,
    /// Free space, in bytes, the full-text indexer leaves on the data directory's
    /// filesystem: below it, nothing is indexed (deliveries go on; searches read the
    /// messages the index lacks), and no flag change or expunge is logged to be
    /// folded later (each writes its records' rows at once, see `pending.rs`).
    /// `None`: 5% of the filesystem or 1 GiB, whichever is smaller.
    pub text_index_headroom: Option<u64>,
    /// Most text bytes indexed for one user (header and body text after the
    /// per-message caps); the user's further messages are not indexed, and searches
    /// read them. Default [`DEFAULT_TEXT_USER_CAP`](crate::DEFAULT_TEXT_USER_CAP).
    pub text_index_user_cap: u64,
    /// Chaining (Cyrus's `sync_log_chain`): when `true`, every write this store takes
    /// from its master by replication (an UPDATE, USER, RENAME or DELETE applied by
    /// [`Store::apply_update`] and its siblings) is entered in this store's own change
    /// log, in the same transaction as the write, so that `tern sync --rolling` run
    /// here passes it on to a further replica. `false` (the default): replicated writes
    /// are silent, and the change log holds only the writes this store's own clients made.
    pub log_replicated: bool,
    /// When false, opening starts no background work (the orphan scan, the full-text
    /// indexer): for `tern check --repair`, which must repair the store as it found it
    /// (an orphan scan would remove blobs it is about to offer back). Default true.
    pub background: bool,
}

impl StoreConfig {
    /// A configuration with one partition, `default`, under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            partitions: BTreeMap::new(),
            default_partition: DEFAULT_PARTITION.to_owned(),
            text_index_headroom: None,
            text_index_user_cap: crate::text_index::DEFAULT_TEXT_USER_CAP,
            log_replicated: false,
            background: true,
        }
    }
}

/// The name of the partition used when none is configured.
pub const DEFAULT_PARTITION: &str = "default";

/// Most idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

/// A handle to one data directory; cheap to clone, safe to share between threads.
///
/// All methods block (they do disk I/O); async callers run them on a blocking thread.
/// Every write method returns only after its change is durable, and each is atomic:
/// it is wholly visible or not at all, also across a crash. Several processes may open
/// the same data directory at once (`tern admin` beside `tern serve`); the index
/// serialises their writes.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: StoreConfig,
    pub(crate) blobs: BlobStore,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    index_path: PathBuf,
    pub(crate) text_path: PathBuf,
    watchers: Mutex<HashMap<UniqueId, watch::Sender<Modseq>>>,
    /// Per user: bumped when a mailbox is created, renamed or deleted, or a
    /// subscription changes (IMAP NOTIFY's MailboxName and SubscriptionChange).
    user_watchers: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// The thread that tells crowds of watchers, started with the first crowd.
    crowd_notifier: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<CrowdNotice>>>,
    /// The thread that folds logged changes once writes pause ([`Store::fold_soon`]),
    /// started with the first logged change.
    folder: std::sync::OnceLock<Arc<crate::fold_timer::FoldTimer>>,
    /// Tests that must see changes logged and unfolded hold the fold thread off:
    /// with it, whether they do depends on the machine's speed.
    #[cfg(test)]
    pub(crate) folds_held: std::sync::atomic::AtomicBool,
    pub(crate) indexer: Arc<dyn ContentIndexer>,
    pub(crate) auth_cache: crate::auth_cache::AuthCache,
    /// Bounds concurrent Argon2 verifications (memory and CPU under a LOGIN flood).
    pub(crate) hash_gate: crate::auth_cache::HashGate,
    /// Set once the orphan scan started at open has finished.
    pub(crate) orphan_scan: Arc<crate::orphans::ScanDone>,
    /// GUIDs being stored by writes in progress, which removals leave alone.
    pub(crate) pins: Arc<crate::orphans::Pins>,
    pub(crate) change_sets: crate::records::ChangeSets,
    /// Whole-mailbox reads of records ([`crate::record_cache`]).
    pub(crate) live_records: crate::record_cache::LiveRecordsCache,
    /// Mailbox counts ([`crate::record_cache::CountsCache`]).
    pub(crate) counts: crate::record_cache::CountsCache,
    /// SELECT's recent scans ([`Store::resolve_selection`]).
    pub(crate) selections: crate::view::SelectionCache,
    /// Tells whether anything was committed since a moment; `None` when the WAL index
    /// cannot be read (nothing is then kept by commit mark).
    pub(crate) commits: Option<crate::commit_mark::CommitWatch>,
    /// SELECT's answers, kept while nothing is committed.
    pub(crate) selected: crate::view::KeptSelections,
    /// Unix milliseconds before which the full-text indexer stays idle: bulk work
    /// (a replica taking a full sync) goes first, the text index catches up after.
    pub(crate) text_pause_until: std::sync::atomic::AtomicU64,
}

impl Store {
    /// Opens the data directory, creating it, the index and the partitions if needed.
    ///
    /// Then, on a thread of its own, removes what writes that never committed left
    /// behind (temporary files, unreferenced new blobs; see
    /// [`Store::wait_for_orphan_scan`]).
    pub fn open(config: StoreConfig, indexer: Arc<dyn ContentIndexer>) -> Result<Store> {
        crate::schema::configure_process();
        let mut config = config;
        fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::io("create", &config.data_dir, e))?;
        if config.partitions.is_empty() {
            config.partitions.insert(
                DEFAULT_PARTITION.to_owned(),
                config.data_dir.join("partitions").join(DEFAULT_PARTITION),
            );
        }
        if !config.partitions.contains_key(&config.default_partition) {
            return Err(StoreError::UnknownPartition(
                config.default_partition.clone(),
            ));
        }
        let blobs = BlobStore::open(config.partitions.clone())?;
        let index_path = config.data_dir.join("index.sqlite3");
        let mut conn = Connection::open(&index_path)?;
        crate::schema::configure(&conn)?;
        crate::schema::migrate(&mut conn)?;
        let text_path = config.data_dir.join("texts.sqlite3");
        let writer = Writer::start(conn)?;
        // After the index was opened in WAL mode, which creates the file.
        let commits = crate::commit_mark::CommitWatch::open(&index_path);
        let store = Store {
            shared: Arc::new(Shared {
                config,
                blobs,
                writer,
                readers: Mutex::new(Vec::new()),
                index_path,
                text_path,
                watchers: Mutex::new(HashMap::new()),
                user_watchers: Mutex::new(HashMap::new()),
                crowd_notifier: std::sync::OnceLock::new(),
                folder: std::sync::OnceLock::new(),
                #[cfg(test)]
                folds_held: std::sync::atomic::AtomicBool::new(false),
                indexer,
                auth_cache: crate::auth_cache::AuthCache::new(),
                hash_gate: crate::auth_cache::HashGate::per_core(),
                orphan_scan: Default::default(),
                pins: Default::default(),
                change_sets: Default::default(),
                live_records: Default::default(),
                counts: Default::default(),
                selections: Default::default(),
                commits,
                selected: Default::default(),
                text_pause_until: Default::default(),
            }),
        };
        // Before readers attach it; a failure leaves the store without a text index
        // (the indexer retries), never without deliveries.
        if let Err(e) = store.prepare_text_index() {
            tracing::warn!(error = %e, "cannot prepare the full-text index; searches will read messages");
        }
        if store.shared.config.background {
            let alive = Arc::downgrade(&store.shared);
            let path = store.shared.index_path.clone();
            store
                .shared
                .writer
                .with_connection(|c| crate::checkpoint::start_thread(c, path, alive));
            store.start_text_indexing();
            store.start_orphan_scan();
        } else {
            store.shared.orphan_scan.set();
        }
        Ok(store)
    }

    /// The configuration in force (with the default partition filled in).
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// The message blobs, for reading: writing and removing them is the store's own
    /// (other crates read messages through [`Store::message`] and its kin).
    pub fn blobs(&self) -> &BlobStore {
        &self.shared.blobs
    }

    /// Runs `f` in a read transaction: it sees one consistent snapshot and never blocks
    /// or is blocked by the writer. The snapshot has no change waiting to be folded
    /// into the records' rows (`pending.rs`): any there are are folded first.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        for _ in 0..MAX_FOLDS_PER_READ {
            let done = self.snapshot(|conn| {
                if crate::pending::any(conn)? {
                    return Ok(None);
                }
                match f.take() {
                    Some(f) => f(conn).map(Some),
                    None => Err(StoreError::Unfolded),
                }
            })?;
            match done {
                Some(value) => return Ok(value),
                None => match self.fold_pending() {
                    Err(e) if e.is_disk_full() => {
                        let f = f.take().ok_or(StoreError::Unfolded)?;
                        return self.read_folded_in_memory(f);
                    }
                    folded => folded?,
                },
            }
        }
        Err(StoreError::Unfolded)
    }

    /// [`Store::read`] for reads of what a fold never writes (users, the full-text
    /// queue): `f` runs on a snapshot that may hold logged changes, and none are
    /// folded. A login or the text indexer, which run after every delivery and every
    /// change, must not fold the changes sessions just logged (that is the write the
    /// log put off) nor make the next command of those sessions wait for it.
    pub(crate) fn read_beside_records<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.snapshot(f)
    }

    /// [`Store::read`] for reads answered from kept reads when they can be: `f` runs
    /// on a snapshot that may hold changes not yet folded, and must call
    /// [`crate::pending::require_folded`] before it reads a mailbox's records' rows.
    /// When it says so, the changes are folded and `f` runs again on a new snapshot.
    pub(crate) fn read_lazily<T>(&self, f: impl Fn(&Connection) -> Result<T>) -> Result<T> {
        for _ in 0..MAX_FOLDS_PER_READ {
            match self.snapshot(&f) {
                Err(StoreError::Unfolded) => match self.fold_pending() {
                    Err(e) if e.is_disk_full() => return self.read_folded_in_memory(&f),
                    folded => folded?,
                },
                done => return done,
            }
        }
        Err(StoreError::Unfolded)
    }

    /// Folds every change waiting in `pending_changes` into the records' rows, in a
    /// write transaction of its own.
    pub(crate) fn fold_pending(&self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        self.shared
            .writer
            .write(move |conn| crate::pending::fold_all(conn, &shared.live_records))
            .map(|_| ())
    }

    /// Has the changes just logged folded once writes pause for [`FOLD_AFTER`], from
    /// a thread of this store's: a read that must fold (a SELECT elsewhere, a
    /// replication pass) then seldom has to, and a disk that fills up later finds
    /// nothing left to fold.
    pub(crate) fn fold_soon(&self) {
        let timer = self.shared.folder.get_or_init(|| {
            let timer = Arc::new(crate::fold_timer::FoldTimer::default());
            let (for_thread, shared) = (Arc::clone(&timer), Arc::downgrade(&self.shared));
            let spawned = std::thread::Builder::new()
                .name("tern-fold".into())
                .spawn(move || {
                    let alive = || shared.strong_count() > 0;
                    while for_thread.wait(FOLD_AFTER, FOLD_IDLE_CHECK, alive) {
                        let Some(shared) = shared.upgrade() else {
                            return;
                        };
                        #[cfg(test)]
                        if shared.folds_held.load(std::sync::atomic::Ordering::SeqCst) {
                            continue;
                        }
                        if let Err(e) = (Store { shared }).fold_pending() {
                            tracing::warn!(error = %e, "folding logged changes failed; reads will fold them");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the fold thread; reads will fold");
            }
            timer
        });
        timer.changed();
    }

    /// [`Store::read`] when the changes waiting cannot be folded for lack of disk
    /// space (the disk filled before the fold): they are folded in a write
    /// transaction of a connection of its own, `f` runs in it, and the transaction is
    /// rolled back, so nothing is written and every read goes on answering on a full
    /// disk. Holds the index's write lock meanwhile, which only a full disk, where
    /// writes fail anyway, makes acceptable.
    fn read_folded_in_memory<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        tracing::debug!("the disk is full: reading with logged changes folded in memory only");
        // Not pooled afterwards: its page cache must not spill (below).
        let conn = self.take_reader()?;
        // What the fold changes stays in this connection's page cache: spilling it to
        // the WAL would need the room there is not.
        conn.pragma_update(None, "cache_spill", false)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let value =
            crate::pending::fold_all(&conn, &crate::record_cache::LiveRecordsCache::default())
                .and_then(|_| f(&conn));
        conn.execute_batch("ROLLBACK")?;
        value
    }

    /// Runs `f` in a read transaction, as it is.
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take_reader()?;
        // BEGIN and COMMIT from the statement cache too: a read is often a single
        // small query, and parsing its transaction statements cost as much.
        let result = (|| {
            conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
            let value = f(&conn);
            let end = if value.is_ok() { "COMMIT" } else { "ROLLBACK" };
            conn.prepare_cached(end)?.execute([])?;
            value
        })();
        if !conn.is_autocommit() {
            // A statement failed between BEGIN and COMMIT: never pool a connection
            // still inside a transaction.
            return result;
        }
        if let Ok(mut pool) = self.shared.readers.lock() {
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
        result
    }

    fn take_reader(&self) -> Result<Connection> {
        if let Some(conn) = self.shared.readers.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open(&self.shared.index_path)?;
        crate::schema::configure(&conn)?;
        // Without the full-text database (unreadable, or not creatable on a full disk)
        // searches read messages; every other read goes on.
        match conn.execute_cached(
            "ATTACH DATABASE ?1 AS text",
            [self.shared.text_path.to_string_lossy()],
        ) {
            Ok(_) => crate::schema::persist_wal(&conn, "text"),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot attach the full-text index; searches will read messages"
            ),
        }
        Ok(conn)
    }

    /// Runs `f` in a write transaction and returns once it is durably committed. The
    /// transaction folds every change waiting in `pending_changes` before `f` runs.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f).wait()
    }

    /// [`Store::write`] without the fold: for the writes that log a change from a
    /// kept read, and fold themselves when they cannot, and for writes of what a fold
    /// never reads or writes (the full-text queue), which must not fold the changes
    /// sessions just logged.
    pub(crate) fn write_unfolded<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.shared.writer.write(f)
    }

    /// Submits a write without waiting; writes submitted together share one commit.
    /// Like [`Store::write`], it folds first.
    pub(crate) fn submit<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.shared.writer.submit(move |conn| {
            crate::pending::fold_all(conn, &shared.live_records)?;
            f(conn)
        })
    }
}

impl Store {
    /// Watches a mailbox: the receiver's value becomes the mailbox's new HIGHESTMODSEQ
    /// after each change committed through this process's `Store`. Changes made by
    /// another process (`tern admin`) are not signalled; callers that must see them
    /// also poll.
    pub fn watch(&self, mailbox: &UniqueId) -> watch::Receiver<Modseq> {
        let mut watchers = self
            .shared
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watchers.retain(|_, tx| tx.receiver_count() > 0);
        watchers
            .entry(mailbox.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// How many watchers of `mailbox` (from [`Store::watch`]) this process has now.
    /// Only a hint: it may change as soon as it is read.
    pub fn watchers(&self, mailbox: &UniqueId) -> usize {
        let watchers = self
            .shared
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watchers.get(mailbox).map_or(0, |tx| tx.receiver_count())
    }

    /// Watches a user's mailbox list: the receiver is marked changed after each
    /// mailbox creation, rename or deletion, and each subscription change, committed
    /// through this process's `Store` (the value itself means nothing).
    pub fn watch_user(&self, user: &str) -> watch::Receiver<u64> {
        let mut watchers = self
            .shared
            .user_watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watchers.retain(|_, tx| tx.receiver_count() > 0);
        watchers
            .entry(user.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// [`Store::write`] of a change to `user`'s mailbox list, telling the user's
    /// watchers once it is committed.
    pub(crate) fn write_for_user<T, F>(&self, user: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let result = self.write(f)?;
        let watchers = self
            .shared
            .user_watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = watchers.get(user) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(result)
    }

    /// Tells the watchers of `mailbox` that it changed at `modseq`.
    ///
    /// A crowd of watchers (thousands of sessions in IDLE on one shared mailbox) is
    /// told [`CROWD_DELAY`] later, from another thread. Why: woken all at once, their
    /// tasks fill the runtime's queues ahead of the client whose change it was, and an
    /// LMTP delivery's 250 waited behind them (160 ms with 10,000 watchers). The
    /// delay costs the watchers a few milliseconds; a session's own commands read
    /// the store directly and never wait for it.
    pub(crate) fn notify(&self, mailbox: &UniqueId, modseq: Modseq) {
        let tx = {
            let watchers = self
                .shared
                .watchers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match watchers.get(mailbox) {
                Some(tx) => tx.clone(),
                None => return,
            }
        };
        if tx.receiver_count() <= CROWD {
            tx.send_replace(modseq);
            return;
        }
        let later = self.shared.crowd_notifier.get_or_init(|| {
            let (send, recv) = std::sync::mpsc::channel::<CrowdNotice>();
            let spawned = std::thread::Builder::new()
                .name("tern-crowd-notify".into())
                .spawn(move || {
                    for (tx, modseq, at) in recv {
                        std::thread::sleep(at.saturating_duration_since(Instant::now()));
                        tx.send_replace(modseq);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the notifier thread; watchers are told at once");
            }
            std::sync::Mutex::new(send)
        });
        let queued = later.lock().unwrap_or_else(|p| p.into_inner()).send((
            tx.clone(),
            modseq,
            Instant::now() + CROWD_DELAY,
        ));
        if queued.is_err() {
            tx.send_replace(modseq);
        }
    }
}

/// How many times a read folds and starts over before it gives up
/// ([`StoreError::Unfolded`]): each time, a change was logged between the fold and
/// the read's snapshot.
const MAX_FOLDS_PER_READ: usize = 32;

/// How long writes to the index pause before the changes logged are folded.
const FOLD_AFTER: Duration = Duration::from_millis(100);

/// How often the idle fold thread looks whether its store still exists.
const FOLD_IDLE_CHECK: Duration = Duration::from_secs(1);

/// Watchers of one mailbox beyond which a change is announced [`CROWD_DELAY`] later.
const CROWD: usize = 256;

/// How much later a crowd hears of a change.
const CROWD_DELAY: Duration = Duration::from_millis(5);

/// A change to announce to a crowd: its sender, the modseq, and when.
type CrowdNotice = (watch::Sender<Modseq>, Modseq, Instant);

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod crowd_tests {
    use super::*;

    /// The count of watchers follows receivers as they come and go.
    #[test]
    fn watchers_are_counted() {
        let (_dir, store, _actor, inbox) = crate::content::store_with_inbox(0);
        assert_eq!(store.watchers(&inbox), 0);
        let a = store.watch(&inbox);
        let b = store.watch(&inbox);
        assert_eq!(store.watchers(&inbox), 2);
        drop(a);
        assert_eq!(store.watchers(&inbox), 1);
        drop(b);
        assert_eq!(store.watchers(&inbox), 0);
    }

    /// A few watchers hear of a change at once; a crowd hears of it a moment later,
    /// and every one of them does.
    #[test]
    fn crowds_are_told_a_moment_later() {
        let (_dir, store, _actor, inbox) = crate::content::store_with_inbox(0);
        let mut few = store.watch(&inbox);
        store.notify(&inbox, 7);
        assert!(few.has_changed().unwrap());
        assert_eq!(*few.borrow_and_update(), 7);
        let mut crowd: Vec<_> = (0..CROWD).map(|_| store.watch(&inbox)).collect();
        store.notify(&inbox, 8);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !crowd.iter().all(|w| w.has_changed().unwrap()) {
            assert!(Instant::now() < deadline, "the crowd was never told");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(crowd.iter_mut().all(|w| *w.borrow_and_update() == 8));
        assert_eq!(*few.borrow(), 8);
    }
}
