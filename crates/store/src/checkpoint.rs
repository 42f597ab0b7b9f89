//! Checkpoints of the index's WAL: the copy on a thread of its own, only the short
//! finish in a commit.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) whenever a commit
//! leaves more than 1,000 pages in the WAL, and it does so inside that commit: the
//! write that happens to cross the line also copies up to 4 MB and fsyncs the
//! database file, and in tern every other write is queued behind it (one write
//! connection, see `writer.rs`). On a server store the checkpoint comes in two parts.
//! The write connection's WAL hook wakes a thread of its own, which copies the WAL in
//! PASSIVE mode, beside the writer and the readers, blocking neither, and fsyncs the
//! database file. Then the first commit after it finishes the checkpoint inline: only
//! the frames written meanwhile are left to copy. The inline part is what lets the
//! WAL start over: writes go on during the thread's copy, so it never catches up on
//! its own under steady load (measured: the WAL then grew to its 64 MB limit within
//! seconds). If the thread falls far behind, or never started, the hook checkpoints
//! inline as SQLite would, so the WAL stays bounded either way.

use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::{ffi, Connection};

/// WAL pages after a commit at which the checkpoint thread is woken: SQLite's own
/// default for automatic checkpoints.
const WAKE_AT: c_int = 1000;

/// WAL pages at which the committing writer checkpoints itself, as SQLite would have
/// at [`WAKE_AT`]: the thread is not keeping up (or is gone).
const INLINE_AT: c_int = 16 * WAKE_AT;

/// How often an idle checkpoint thread looks whether its store still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Between the write connection's WAL hook and the checkpoint thread.
#[derive(Default)]
struct Signal {
    /// Raised by the hook: the WAL wants a checkpoint.
    wanted: crate::wakeup::Wakeup,
    /// The thread copied the WAL since the hook last finished a checkpoint.
    copied: AtomicBool,
}

/// Splits the checkpoints of the database behind `writer`: the copy on a new thread,
/// which runs while `alive` can be upgraded, the finish in the next commit (see the
/// module). Durability is unchanged: a checkpoint only copies
/// committed pages into the database file; a commit is durable once its WAL frames
/// are synced, wherever the checkpoint runs. Returns false (and leaves SQLite's own
/// automatic checkpoints in place) when the thread cannot be started.
pub(crate) fn start_thread<T: Send + Sync + 'static>(
    writer: &Connection,
    index_path: PathBuf,
    alive: Weak<T>,
) -> bool {
    let signal = Arc::new(Signal::default());
    let for_thread = signal.clone();
    let spawned = std::thread::Builder::new()
        .name("tern-checkpoint".into())
        .spawn(move || run(&for_thread, &index_path, &alive));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the checkpoint thread; commits checkpoint the index");
        return false;
    }
    // The hook's argument lives as long as the connection may call it: for the life of
    // the process (one small allocation per store opened).
    let arg: *mut c_void = Arc::into_raw(signal).cast_mut().cast();
    // SAFETY: the handle is valid while `writer` lives; `on_commit` matches
    // sqlite3_wal_hook's callback type and only reads `arg`, which is never freed.
    // The hook replaces SQLite's automatic checkpoint hook on this connection only.
    unsafe {
        ffi::sqlite3_wal_hook(writer.handle(), Some(on_commit), arg);
    }
    true
}

/// The write connection's WAL hook: called after each commit with the number of pages
/// in the WAL. Never unwinds into SQLite.
unsafe extern "C" fn on_commit(
    arg: *mut c_void,
    db: *mut ffi::sqlite3,
    name: *const c_char,
    pages: c_int,
) -> c_int {
    if pages < WAKE_AT {
        return ffi::SQLITE_OK;
    }
    // SAFETY: `arg` is the leaked `Arc<Signal>` of `start_thread`.
    let signal = unsafe { &*(arg as *const Signal) };
    if pages >= INLINE_AT || signal.copied.swap(false, Ordering::AcqRel) {
        // The rest of a copy the thread made, or all of it when the thread is not
        // keeping up. No other write can commit meanwhile (one write connection), so
        // this completes, and the next write starts the WAL over.
        // SAFETY: `db` and `name` are the ones SQLite passed for this call.
        unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                db,
                name,
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    } else {
        signal.wanted.raise();
    }
    ffi::SQLITE_OK
}

fn run<T>(signal: &Signal, index_path: &std::path::Path, alive: &Weak<T>) {
    let mut conn: Option<Connection> = None;
    loop {
        let wanted = signal.wanted.wait(IDLE_CHECK);
        if alive.strong_count() == 0 {
            return;
        }
        if !wanted {
            continue;
        }
        if conn.is_none() {
            conn = match Connection::open(index_path).and_then(|c| {
                c.busy_timeout(Duration::from_secs(5))?;
                // The checkpoint syncs the WAL before copying it and the database
                // after, as the writer's commits sync the WAL.
                c.pragma_update(None, "synchronous", "FULL")?;
                Ok(c)
            }) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint thread cannot open the index");
                    continue;
                }
            };
        }
        let Some(c) = conn.as_ref() else { continue };
        // PASSIVE: copies what no reader still needs, waits for no one.
        match c.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => signal.copied.store(true, Ordering::Release),
            Err(e) => {
                tracing::warn!(error = %e, "index checkpoint failed; retried at the next wake-up");
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with table `t`, and its write connection.
    fn database(dir: &std::path::Path) -> (PathBuf, Connection) {
        let path = dir.join("db.sqlite3");
        let writer = Connection::open(&path).unwrap();
        writer
            .query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        writer
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        (path, writer)
    }

    /// [`database`] with its checkpoint thread, which runs while the returned `Arc`
    /// lives.
    fn with_thread(dir: &std::path::Path) -> (PathBuf, Connection, Arc<()>) {
        let (path, writer) = database(dir);
        let alive = Arc::new(());
        assert!(start_thread(&writer, path.clone(), Arc::downgrade(&alive)));
        (path, writer, alive)
    }

    /// About 1,200 pages, in commits of 40 pages each: past [`WAKE_AT`], below
    /// [`INLINE_AT`].
    fn fill(writer: &Connection) {
        for i in 0..30 {
            let tx = writer.unchecked_transaction().unwrap();
            for j in 0..40 {
                tx.execute(
                    "INSERT INTO t (k, v) VALUES (?1, zeroblob(4000))",
                    [i * 100 + j],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
    }

    /// The commits themselves do not checkpoint any more: with the thread gone, a WAL
    /// past SQLite's automatic checkpoint size stays in the WAL (below the inline
    /// limit), and every committed row is still read back.
    #[test]
    fn commits_leave_the_checkpoint_to_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer, alive) = with_thread(dir.path());
        drop(alive);
        fill(&writer);
        std::thread::sleep(Duration::from_millis(200));
        assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 30 * 40);
    }

    /// Under a steady stream of commits the WAL starts over after each checkpoint
    /// instead of growing: the thread copies, the next commit finishes.
    #[test]
    fn the_wal_starts_over_under_steady_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (_path, writer, alive) = with_thread(dir.path());
        // Commit after commit, about 40 pages each and 8,000 in all, with no pause, as
        // on a busy server: the thread's copy never catches up with them on its own.
        for _ in 0..200 {
            let tx = writer.unchecked_transaction().unwrap();
            for k in 0..40 {
                tx.execute(
                    "INSERT OR REPLACE INTO t (k, v) VALUES (?1, zeroblob(4000))",
                    [k],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("db.sqlite3-wal"))
            .unwrap()
            .len();
        // The mark, and what came in while the thread copied: well below the 8,000
        // pages written, which a WAL that never starts over would hold.
        assert!(wal < 4000 * 4096, "WAL of {wal} bytes");
        drop(alive);
    }

    /// Commits that grow the WAL past the wake-up size are checkpointed by the thread,
    /// and every committed row is in the database.
    #[test]
    fn the_thread_checkpoints_what_commits_leave() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer, alive) = with_thread(dir.path());
        fill(&writer);
        // The commit that crossed the wake-up size woke the thread, which copied the
        // WAL into the database file (the commits do not, see above) within moments.
        let other = Connection::open(&path).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let file = std::fs::metadata(&path).unwrap().len();
            if file > 1000 * 4000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint: {file} bytes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 30 * 40);
        drop(alive);
    }
}
