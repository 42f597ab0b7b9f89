//! Content-addressed message blobs, one copy per partition.
//!
//! A blob lives at `<partition>/blobs/<first two hex digits>/<guid hex>`. It is written
//! to `<partition>/tmp/` first, fsynced, renamed into place and its directory fsynced,
//! so a blob is either absent or complete and durable: a crash can leave a stray temp
//! file or an unreferenced blob, never a torn blob under its final name; both are
//! removed by the orphan scan after the next start (`orphans.rs`). Blobs are
//! immutable; nothing rewrites one in place.
//!
//! A temporary file's name says which process wrote it (its pid and a random token of
//! that process, see [`temp_owner`]), so the scan can tell a file left by a dead
//! process from one another live process (`tern admin` beside `tern serve`) is
//! still writing.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use crate::error::{Result, StoreError};
use crate::ids::Guid;
use crate::message_file::BlobDir;
pub use crate::message_file::MessageFile;

/// The most [`BlobStore::read`] allocates before reading: the size it is given comes
/// from the index, and a damaged row must not make it reserve gigabytes up front.
const PREALLOCATE_AT_MOST: u64 = 64 << 20;

/// The set of partitions and the files in them.
#[derive(Debug, Clone)]
pub struct BlobStore {
    partitions: BTreeMap<String, PathBuf>,
    /// Each partition's `blobs` directory, held open to open blobs through.
    dirs: Arc<BTreeMap<String, BlobDir>>,
}

impl BlobStore {
    /// Opens (creating if needed) every partition directory.
    pub fn open(partitions: BTreeMap<String, PathBuf>) -> Result<BlobStore> {
        for root in partitions.values() {
            for sub in ["blobs", "tmp", TRASH] {
                let dir = root.join(sub);
                fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
            }
        }
        let mut dirs = BTreeMap::new();
        for (name, root) in &partitions {
            let dir = root.join("blobs");
            let held = BlobDir::new(&dir).map_err(|e| StoreError::io("open", &dir, e))?;
            dirs.insert(name.clone(), held);
        }
        Ok(BlobStore {
            partitions,
            dirs: Arc::new(dirs),
        })
    }

    /// The partitions as they are, creating nothing (for `tern check`, which only reads).
    /// Blobs are opened by path, since a `blobs` directory may be missing.
    pub(crate) fn at(partitions: BTreeMap<String, PathBuf>) -> BlobStore {
        BlobStore {
            partitions,
            dirs: Arc::default(),
        }
    }

    /// The configured partition names.
    pub fn partition_names(&self) -> impl Iterator<Item = &str> {
        self.partitions.keys().map(String::as_str)
    }

    /// True if `partition` is configured.
    pub fn has_partition(&self, partition: &str) -> bool {
        self.partitions.contains_key(partition)
    }

    /// Every partition's name and root directory.
    pub(crate) fn roots(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.partitions
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path()))
    }

    pub(crate) fn root(&self, partition: &str) -> Result<&Path> {
        self.partitions
            .get(partition)
            .map(PathBuf::as_path)
            .ok_or_else(|| StoreError::UnknownPartition(partition.to_owned()))
    }

    /// Where the blob `guid` lives (or would live) in `partition`.
    pub fn path(&self, partition: &str, guid: &Guid) -> Result<PathBuf> {
        let hex = guid.to_hex();
        Ok(self
            .root(partition)?
            .join("blobs")
            .join(&hex[..2])
            .join(hex))
    }

    /// True if the blob is present with exactly `size` bytes.
    pub fn contains(&self, partition: &str, guid: &Guid, size: u64) -> Result<bool> {
        let path = self.path(partition, guid)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len() == size),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("stat", path, e)),
        }
    }

    /// True if a file for the blob is present, whatever its size.
    pub(crate) fn contains_any(&self, partition: &str, guid: &Guid) -> Result<bool> {
        let path = self.path(partition, guid)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("stat", path, e)),
        }
    }

    /// Stores `message` under its GUID in `partition` and returns the GUID.
    ///
    /// When the blob is already present with the same size nothing is written (single
    /// instance). On return the blob is durable: file and directory entry are fsynced.
    ///
    /// A blob written here and never referenced by a committed record is an orphan:
    /// the caller whose transaction fails discards it (`Store::discard_blob`), and the
    /// orphan scan removes what a crash left.
    #[cfg(test)]
    pub(crate) fn put(&self, partition: &str, message: &[u8]) -> Result<Guid> {
        let guid = Guid::of(message);
        self.put_with_guid(partition, &guid, message)?;
        Ok(guid)
    }

    /// As [`BlobStore::put`], for a caller that already knows the GUID of `message`.
    /// Returns true when this call wrote the file, false when it was already there.
    pub(crate) fn put_with_guid(
        &self,
        partition: &str,
        guid: &Guid,
        message: &[u8],
    ) -> Result<bool> {
        let size = message.len() as u64;
        if self.contains(partition, guid, size)? {
            return Ok(false);
        }
        let root = self.root(partition)?;
        let final_path = self.path(partition, guid)?;
        let dir = final_path
            .parent()
            .expect("blob path always has a fan-out directory")
            .to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        let tmp = root
            .join("tmp")
            .join(format!("{}.{}", guid.to_hex(), temp_tag()));
        let result = write_durably(&tmp, message).and_then(|()| {
            fs::rename(&tmp, &final_path).map_err(|e| StoreError::io("rename", &final_path, e))
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        sync_dir(&dir)?;
        Ok(true)
    }

    /// Writes many blobs of `partition` to temporary files beside their final names,
    /// on two threads when there is enough to share, skipping those already present.
    /// They become durable and take their names only when the result is published
    /// ([`StagedBlobs::publish`]): two filesystem syncs in all, however many blobs.
    /// `verify` is called on each blob just before it is written (while its bytes are
    /// in the cache); its error stops the staging and removes what was written.
    pub(crate) fn stage_many(
        &self,
        partition: &str,
        blobs: &[(Guid, &[u8])],
        verify: impl Fn(&Guid, &[u8]) -> Result<()> + Sync,
    ) -> Result<StagedBlobs> {
        let root = self.root(partition)?.to_path_buf();
        let mut seen = std::collections::HashSet::new();
        let mut wanted = Vec::new();
        for &(guid, message) in blobs {
            if seen.insert(guid) && !self.contains(partition, &guid, message.len() as u64)? {
                wanted.push((guid, message));
            }
        }
        // Creating and filling thousands of files is most of a full sync's time on a
        // replica.
        let bytes: usize = wanted.iter().map(|(_, m)| m.len()).sum();
        let (left, right) = if bytes >= 4 << 20 {
            wanted.split_at(wanted.len() / 2)
        } else {
            (&wanted[..], &[][..])
        };
        let (mine, theirs) = std::thread::scope(|s| {
            let other = s.spawn(|| self.stage(partition, right, &verify));
            let mine = self.stage(partition, left, &verify);
            let theirs = other.join().unwrap_or_else(|_| {
                let e = StoreError::CommitFailed("blob writing thread panicked".into());
                (Vec::new(), Err(e))
            });
            (mine, theirs)
        });
        // Built first, so that an error below removes every file written.
        let staged = StagedBlobs {
            root: Some(root),
            files: mine.0.into_iter().chain(theirs.0).collect(),
        };
        mine.1.and(theirs.1).map(|()| staged)
    }

    /// Writes each blob to a temporary file beside its final name, not synced. Returns
    /// the (temporary, final) paths written, also when it stops at an error.
    fn stage(
        &self,
        partition: &str,
        blobs: &[(Guid, &[u8])],
        verify: &(impl Fn(&Guid, &[u8]) -> Result<()> + Sync),
    ) -> (Vec<(PathBuf, PathBuf)>, Result<()>) {
        let mut staged = Vec::with_capacity(blobs.len());
        let mut made: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        let result = (|| {
            for (guid, message) in blobs {
                verify(guid, message)?;
                let final_path = self.path(partition, guid)?;
                let Some(dir) = final_path.parent() else {
                    continue;
                };
                if !made.contains(dir) {
                    fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
                    made.insert(dir.to_path_buf());
                }
                // Staged beside its final name (a dot name nothing else lists): creating
                // thousands of files in one shared directory makes ext4 search one
                // block group's inode table for each.
                let tmp = dir.join(format!(".{}.{}.tmp", guid.to_hex(), temp_tag()));
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(|e| StoreError::io("create", &tmp, e))?;
                staged.push((tmp.clone(), final_path));
                file.write_all(message)
                    .map_err(|e| StoreError::io("write", &tmp, e))?;
            }
            Ok(())
        })();
        (staged, result)
    }

    /// The partitions holding the blob `guid` (of any size), in name order.
    pub fn holders(&self, guid: &Guid) -> Vec<(String, u64)> {
        self.partitions
            .keys()
            .filter_map(|p| {
                let path = self.path(p, guid).ok()?;
                fs::metadata(path).ok().map(|m| (p.clone(), m.len()))
            })
            .collect()
    }

    /// Reads a whole blob, checking its size.
    pub fn read(&self, partition: &str, guid: &Guid, size: u64) -> Result<Vec<u8>> {
        let path = self.path(partition, guid)?;
        let missing = || StoreError::BlobMissing {
            guid: guid.to_hex(),
            size,
            partition: partition.to_owned(),
        };
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        // The index knows the size, so no stat: the buffer is sized from it (within
        // reason, should the index be damaged), and one byte more than the blob
        // should hold is read, so that a longer file is caught without reading it.
        let mut bytes = Vec::with_capacity(size.min(PREALLOCATE_AT_MOST) as usize + 1);
        match (&mut file)
            .take(size.saturating_add(1))
            .read_to_end(&mut bytes)
        {
            Ok(_) if bytes.len() as u64 == size => Ok(bytes),
            Ok(_) => Err(missing()),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    /// Opens a blob for reading by ranges, checking its size.
    pub fn open_blob(&self, partition: &str, guid: &Guid, size: u64) -> Result<MessageFile> {
        let missing = || StoreError::BlobMissing {
            guid: guid.to_hex(),
            size,
            partition: partition.to_owned(),
        };
        if let Some(Ok(file)) = self.dirs.get(partition).map(|dir| dir.open(guid)) {
            if file.metadata().is_ok_and(|m| m.len() == size) {
                return Ok(MessageFile::new(file, size));
            }
        }
        // Not through the held directory (absent there, another size, or any failure):
        // by path, which also covers a `blobs` directory replaced under a running
        // server, whatever the old one still holds.
        let path = self.path(partition, guid)?;
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        match file.metadata() {
            Ok(m) if m.len() == size => Ok(MessageFile::new(file, size)),
            Ok(_) => Err(missing()),
            Err(e) => Err(StoreError::io("stat", path, e)),
        }
    }

    /// Removes a blob. Only the store's collection of unreferenced blobs calls this, in
    /// a writer job after proving no record refers to it (see `orphans.rs`); no
    /// other crate can.
    pub(crate) fn remove(&self, partition: &str, guid: &Guid) -> Result<()> {
        let path = self.path(partition, guid)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", path, e)),
        }
    }

    /// Takes a blob away from its name into the partition's trash (a rename: cheap,
    /// and the moment it counts as removed), for [`BlobStore::empty_trash`] to delete
    /// after the caller's transaction. Only the store's collection of unreferenced
    /// blobs calls this, under the rule of `orphans.rs`. False when it was not there.
    pub(crate) fn condemn(&self, partition: &str, guid: &Guid) -> Result<bool> {
        let path = self.path(partition, guid)?;
        let to =
            self.root(partition)?
                .join(TRASH)
                .join(format!("{}.{}", guid.to_hex(), temp_tag()));
        match fs::rename(&path, &to) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("rename", path, e)),
        }
    }

    /// Deletes everything in a partition's trash: blobs condemned by this or an earlier
    /// process (one killed before it emptied it), on two threads, since each unlink may
    /// wait for the device (a filesystem mounted with `discard`). Returns how many.
    pub(crate) fn empty_trash(&self, partition: &str) -> Result<usize> {
        let dir = self.root(partition)?.join(TRASH);
        let files: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let unlink = |files: &[PathBuf]| -> Result<usize> {
            let mut n = 0;
            for f in files {
                match fs::remove_file(f) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove", f, e)),
                }
            }
            Ok(n)
        };
        let (a, b) = files.split_at(files.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| unlink(a));
            let mine = unlink(b);
            let other = other.join().unwrap_or(Ok(0));
            Ok(mine? + other?)
        })
    }

    /// Lists every blob file in a partition as (GUID, size). Stray names are skipped.
    pub fn list(&self, partition: &str) -> Result<Vec<(Guid, u64)>> {
        Ok(self
            .list_dated(partition)?
            .into_iter()
            .map(|(guid, size, _)| (guid, size))
            .collect())
    }

    /// Lists every blob file in a partition as (GUID, size, modification time). Stray
    /// names are skipped; a partition without a `blobs/` directory holds none.
    pub(crate) fn list_dated(&self, partition: &str) -> Result<Vec<(Guid, u64, SystemTime)>> {
        let blobs = self.root(partition)?.join("blobs");
        let mut out = Vec::new();
        let fanout = match fs::read_dir(&blobs) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io("list", &blobs, e)),
        };
        for entry in fanout {
            let dir = entry.map_err(|e| StoreError::io("list", &blobs, e))?.path();
            let Ok(files) = fs::read_dir(&dir) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(guid) = name.to_str().and_then(|n| n.parse::<Guid>().ok()) else {
                    continue;
                };
                if let Ok(meta) = file.metadata() {
                    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    out.push((guid, meta.len(), modified));
                }
            }
        }
        Ok(out)
    }
}

/// The directory in each partition where condemned blobs wait to be deleted.
const TRASH: &str = "trash";

/// This process's random token, fixed for its lifetime: with the pid it names the
/// writer of a temporary file, and tells a file of a dead process that had the same pid
/// (a container restarted) from one of ours.
pub(crate) fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(rand::random)
}

/// Blobs written to temporary files beside their final names
/// ([`BlobStore::stage_many`]): not yet durable, not yet under their names. Dropped
/// without being published, the files are removed.
#[derive(Debug, Default)]
pub(crate) struct StagedBlobs {
    root: Option<PathBuf>,
    /// (temporary, final) paths.
    files: Vec<(PathBuf, PathBuf)>,
}

impl StagedBlobs {
    /// Makes the blobs durable under their names: one `syncfs` for the contents, the
    /// renames, one `syncfs` for the renames. A crash at any point leaves each blob
    /// absent or complete under its final name, never torn.
    pub(crate) fn publish(mut self) -> Result<()> {
        let files = std::mem::take(&mut self.files);
        let Some(root) = self.root.as_deref().filter(|_| !files.is_empty()) else {
            return Ok(());
        };
        let result = (|| {
            sync_filesystem(root)?;
            for (tmp, final_path) in &files {
                fs::rename(tmp, final_path).map_err(|e| StoreError::io("rename", final_path, e))?;
            }
            sync_filesystem(root)
        })();
        if result.is_err() {
            // The ones not renamed yet; a renamed one is an unreferenced blob, which
            // the orphan scan removes.
            for (tmp, _) in &files {
                let _ = fs::remove_file(tmp);
            }
        }
        result
    }
}

impl Drop for StagedBlobs {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// `<pid>.<process token>.<sequence>`: unique within the process, and names it.
fn temp_tag() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{:016x}.{}",
        std::process::id(),
        process_token(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The writer (pid, process token) of a temporary file name made by [`temp_tag`]
/// (`<guid>.<tag>` in `tmp/`, `.<guid>.<tag>.tmp` beside the blobs); `None` for any
/// other name, including temporary files of older versions, which named no writer.
pub(crate) fn temp_owner(name: &str) -> Option<(u32, u64)> {
    let name = name.strip_prefix('.').unwrap_or(name);
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    let mut parts = name.split('.');
    let (_guid, pid, token, _seq) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((pid.parse().ok()?, u64::from_str_radix(token, 16).ok()?))
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StoreError::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io("write", path, e))?;
    file.sync_all()
        .map_err(|e| StoreError::io("fsync", path, e))
}

/// Flushes every dirty page and metadata change of the filesystem holding `dir` and
/// waits for it (Linux `syncfs`, which reports write-back errors since 5.8).
fn sync_filesystem(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| StoreError::io("open", dir, e))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
            return Err(StoreError::io(
                "syncfs",
                dir,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        handle
            .sync_all()
            .map_err(|e| StoreError::io("fsync", dir, e))
    }
}

/// Makes a directory's entries (a rename into it) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> BlobStore {
        let mut parts = BTreeMap::new();
        parts.insert("default".to_owned(), dir.join("p1"));
        BlobStore::open(parts).unwrap()
    }

    #[test]
    fn blobs_are_found_after_their_directory_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = store(tmp.path());
        let old = blobs.put("default", b"before the restore").unwrap();
        let root = tmp.path().join("p1");
        // A restore from backup under the running server: the directory the store
        // holds open moves away, and a new one, holding one more blob, takes its name.
        fs::rename(root.join("blobs"), root.join("blobs.old")).unwrap();
        // The old directory's copy is damaged (cut short); the restored one is whole.
        let hex = old.to_hex();
        fs::write(root.join("blobs.old").join(&hex[..2]).join(&hex), b"before").unwrap();
        let copy = store(&tmp.path().join("copy"));
        let new = copy.put("default", b"restored only").unwrap();
        copy.put("default", b"before the restore").unwrap();
        fs::rename(tmp.path().join("copy/p1/blobs"), root.join("blobs")).unwrap();
        for (guid, bytes) in [(old, &b"before the restore"[..]), (new, b"restored only")] {
            let file = blobs
                .open_blob("default", &guid, bytes.len() as u64)
                .unwrap();
            let mut got = Vec::new();
            file.append_at(0, 100, &mut got).unwrap();
            assert_eq!(got, bytes);
        }
        let absent = Guid::of(b"never stored");
        assert!(matches!(
            blobs.open_blob("default", &absent, 3),
            Err(StoreError::BlobMissing { .. })
        ));
        // A blob whose file has another size than its record says is missing too.
        assert!(matches!(
            blobs.open_blob("default", &new, 3),
            Err(StoreError::BlobMissing { .. })
        ));
    }

    #[test]
    fn put_is_single_instance_and_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = store(tmp.path());
        let a = blobs.put("default", b"hello").unwrap();
        assert!(!blobs.put_with_guid("default", &a, b"hello").unwrap());
        let b = blobs.put("default", b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(blobs.list("default").unwrap(), vec![(a, 5)]);
        assert_eq!(blobs.read("default", &a, 5).unwrap(), b"hello");
        // A file longer or shorter than the index says is not the blob.
        for wrong in [0, 4, 6, u64::MAX] {
            assert!(
                matches!(
                    blobs.read("default", &a, wrong),
                    Err(StoreError::BlobMissing { .. })
                ),
                "size {wrong}"
            );
        }
        assert!(fs::read_dir(tmp.path().join("p1/tmp"))
            .unwrap()
            .next()
            .is_none());
    }

    /// A read that must not wait for the disk gives the same bytes as a blocking one,
    /// or nothing; never part of them, never past the end.
    #[test]
    fn cached_reads_are_whole_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = store(tmp.path());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let guid = blobs.put("default", &data).unwrap();
        let file = blobs
            .open_blob("default", &guid, data.len() as u64)
            .unwrap();
        for (pos, len) in [(0, 1000), (1000, 200_000), (299_990, 100), (0, 300_000)] {
            let mut buf = vec![0; len];
            if let Some(n) = file.read_cached_at(pos as u64, &mut buf) {
                let end = (pos + len).min(data.len());
                assert_eq!(n, end - pos);
                assert_eq!(&buf[..n], &data[pos..end]);
            }
        }
        let mut buf = vec![0; 10];
        assert_eq!(file.read_cached_at(300_000, &mut buf), Some(0));
    }

    /// A condemned blob is gone from its name at once and from the disk when the trash
    /// is emptied, by this process or, after a kill, the next one.
    #[test]
    fn condemned_blobs_leave_their_name_then_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(dir.path());
        let guid = blobs.put("default", b"condemned").unwrap();
        assert!(blobs.condemn("default", &guid).unwrap());
        assert!(!blobs.contains_any("default", &guid).unwrap());
        assert!(!blobs.condemn("default", &guid).unwrap());
        let trash = dir.path().join("p1").join(TRASH);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 1);
        // A new handle (a later process) empties what an earlier one left.
        assert_eq!(store(dir.path()).empty_trash("default").unwrap(), 1);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
        assert_eq!(blobs.empty_trash("default").unwrap(), 0);
    }

    #[test]
    fn unknown_partition_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = store(tmp.path());
        assert!(matches!(
            blobs.put("nope", b"x"),
            Err(StoreError::UnknownPartition(_))
        ));
    }

    #[test]
    fn temp_names_name_their_writer() {
        let tag = temp_tag();
        let me = (std::process::id(), process_token());
        assert_eq!(temp_owner(&format!("abcd.{tag}")), Some(me));
        assert_eq!(temp_owner(&format!(".abcd.{tag}.tmp")), Some(me));
        assert_eq!(temp_owner("abcd.0123456789abcdef"), None, "old format");
        assert_eq!(temp_owner("abcd"), None);
    }
}
