//! Whether anything was committed to the index since a moment, told without opening a
//! read transaction: the WAL-index header in the index's `-shm` file.
//!
//! Every SQLite connection to a WAL database, in any process, shares the `-shm` file
//! (memory-mapped). Its first 96 octets are two copies of the WAL-index header, which
//! the writer rewrites at every commit (SQLite's documented WAL file format, which
//! every SQLite version that opens the database must read alike): the second copy
//! first, then the first. The header holds a counter bumped by every transaction, the
//! last valid frame, and the salts that change whenever the WAL starts over, under a
//! checksum. So when two reads of the header are equal, nothing was committed
//! between them; a read caught in the middle of a rewrite finds the two copies
//! different and is no mark at all.
//!
//! Why: a read transaction costs a SELECT most of its time (the shared-memory locks,
//! the mailbox row, the keywords), and a client that opens the same mailbox again
//! while nothing changed may be answered from what the last read found
//! ([`crate::view`]). The mark covers commits of every process (`tern admin` beside
//! the server), not only this one's.
//!
//! The file is read with `pread`, never mapped: a file cut short under a mapping
//! would fault, a read of it only comes back short. The `-shm` file stays the same
//! file while the store is open: SQLite deletes it only when the last connection of
//! the last process closes, and the store's write connection is open throughout; a
//! file unlinked all the same (by hand) gives no mark, because its header would never
//! change again.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// Octets of one copy of the WAL-index header (`WalIndexHdr`).
const HEADER: usize = 48;
/// Offset of `isInit` in the header: 1 once a connection built the WAL index.
const IS_INIT: usize = 12;

/// The index's commit state at one moment; equal marks mean no commit in between.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct CommitMark([u8; HEADER]);

/// Reads [`CommitMark`]s of one index (see the module).
pub(crate) struct CommitWatch {
    shm: File,
}

impl CommitWatch {
    /// Opens the `-shm` file of the WAL database at `index`, read-only; `None` when it
    /// cannot be (then every caller reads the index as before).
    pub(crate) fn open(index: &Path) -> Option<CommitWatch> {
        let mut name = index.as_os_str().to_owned();
        name.push("-shm");
        match File::open(&name) {
            Ok(shm) => Some(CommitWatch { shm }),
            Err(e) => {
                tracing::debug!(error = %e, "no commit marks: cannot open the WAL index");
                None
            }
        }
    }

    /// The mark now, or `None` when the header is being rewritten, not built yet, or
    /// the file is gone.
    pub(crate) fn mark(&self) -> Option<CommitMark> {
        let mut both = [0u8; 2 * HEADER];
        self.shm.read_exact_at(&mut both, 0).ok()?;
        let (first, second) = both.split_at(HEADER);
        if first != second || first[IS_INIT] == 0 {
            return None;
        }
        if self.shm.metadata().ok()?.nlink() == 0 {
            return None;
        }
        let mut mark = [0u8; HEADER];
        mark.copy_from_slice(first);
        Some(CommitMark(mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn wal_database(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("db.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        (path, conn)
    }

    /// Every commit changes the mark, from this connection or another, also after the
    /// WAL started over; reads change nothing.
    #[test]
    fn every_commit_and_only_a_commit_changes_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = wal_database(dir.path());
        let watch = CommitWatch::open(&path).unwrap();
        let before = watch.mark().unwrap();
        let _: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(watch.mark(), Some(before), "a read is no commit");
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let after_one = watch.mark().unwrap();
        assert_ne!(after_one, before);
        let other = Connection::open(&path).unwrap();
        other.execute("UPDATE t SET v = 2", []).unwrap();
        let after_other = watch.mark().unwrap();
        assert_ne!(after_other, after_one, "another connection's commit");
        // A checkpoint copies the WAL back; the next write starts it over, with the
        // same number of frames as an earlier moment: still a new mark.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let restarted = watch.mark().unwrap();
        for earlier in [before, after_one, after_other] {
            assert_ne!(restarted, earlier);
        }
        assert_eq!(watch.mark(), Some(restarted), "nothing since");
    }

    /// A header caught half-rewritten (the two copies differ) is no mark.
    #[test]
    fn a_torn_header_is_no_mark() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = wal_database(dir.path());
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let copy = dir.path().join("copy-shm");
        let mut bytes = std::fs::read(format!("{}-shm", path.display())).unwrap();
        bytes[HEADER + 8] ^= 1;
        std::fs::write(&copy, &bytes).unwrap();
        let torn = CommitWatch {
            shm: File::open(&copy).unwrap(),
        };
        assert_eq!(torn.mark(), None);
        std::fs::write(&copy, &bytes[..HEADER + 3]).unwrap();
        assert_eq!(torn.mark(), None, "a file cut short");
    }
}
