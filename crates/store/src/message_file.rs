//! One message blob opened for reading by ranges, and the directory handle blobs are
//! opened through.
//!
//! Reading a message is the hot path of RETR, ARTICLE and FETCH BODY[]. Two costs
//! of it are the kernel's, not ours, and avoidable:
//! - opening by full path walks every component of the partition's root for each
//!   message; [`BlobDir`] holds `<partition>/blobs` open, so an open walks two
//!   components (`ab/abcd...`);
//! - reading into a zeroed buffer writes every byte twice; [`MessageFile::append_at`]
//!   and [`MessageFile::append_cached_at`] read straight into a vector's spare
//!   capacity.
//!
//! This is hand-written rather than taken from a crate because it is two system calls
//! (`openat`, `pread`/`preadv2`) that std does not expose, and `libc` is already here.

use std::ffi::CStr;
use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

use crate::ids::Guid;

/// A partition's `blobs` directory, held open.
///
/// Guarantee: [`BlobDir::open`] opens `<first two hex digits>/<guid hex>` in the
/// directory that was at the path when it was opened. Should that directory be
/// replaced under a running server (restored from a backup), the handle still names
/// the old one: a blob not found there (or of another size than its record says) is
/// looked up by path by the caller, and a blob found there whole is the same message,
/// since a blob's name is the digest of its bytes and blobs are never rewritten. A
/// stale handle can cost time, never hide a message.
#[derive(Debug)]
pub(crate) struct BlobDir {
    dir: File,
}

/// Length of a blob's name relative to the `blobs` directory, with its NUL:
/// two hex digits, `/`, forty hex digits.
const RELATIVE_NAME: usize = 2 + 1 + 40 + 1;

impl BlobDir {
    /// Opens the directory at `path`.
    pub(crate) fn new(path: &Path) -> std::io::Result<BlobDir> {
        Ok(BlobDir {
            dir: File::open(path)?,
        })
    }

    /// Opens the blob `guid` read-only; `NotFound` when it is not there.
    pub(crate) fn open(&self, guid: &Guid) -> std::io::Result<File> {
        let hex = guid.to_hex();
        let mut name = [0u8; RELATIVE_NAME];
        let (Some(first), Some(rest)) = (hex.get(..2), name.get_mut(3..3 + hex.len())) else {
            return Err(ErrorKind::InvalidInput.into());
        };
        rest.copy_from_slice(hex.as_bytes());
        name[..2].copy_from_slice(first.as_bytes());
        name[2] = b'/';
        let name = CStr::from_bytes_until_nul(&name).map_err(|_| ErrorKind::InvalidInput)?;
        // SAFETY: `name` is NUL-terminated and lives across the call; the directory
        // descriptor is owned by `self` and open.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

/// A message opened for reading by ranges: a reader that needs only parts of a large
/// message at a time (an IMAP FETCH streaming it to a slow client) holds a file
/// descriptor, not the message. Blobs are immutable and an open file keeps its bytes
/// even if the blob is collected meanwhile, so every read sees the same message.
#[derive(Debug)]
pub struct MessageFile {
    file: File,
    size: u64,
}

impl MessageFile {
    pub(crate) fn new(file: File, size: u64) -> MessageFile {
        MessageFile { file, size }
    }

    /// The message's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `buf` from offset `pos`; fewer bytes only at the end of the message.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Appends up to `len` bytes from offset `pos` to `out`, as [`MessageFile::read_at`]
    /// would read them, without zeroing the space first. Returns how many were
    /// appended (fewer only at the end of the message). On error `out` is as it was.
    pub fn append_at(&self, pos: u64, len: usize, out: &mut Vec<u8>) -> std::io::Result<usize> {
        let start = out.len();
        out.reserve(len);
        let mut done = 0;
        while done < len {
            match self.pread_spare(pos + done as u64, len - done, out, false) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Appends `min(len, what is left of the message)` bytes from offset `pos` to `out`
    /// only if that needs no disk I/O (see [`MessageFile::read_cached_at`]): `Some(n)`
    /// when appended, `None` (and `out` as it was) when reading would wait.
    pub fn append_cached_at(&self, pos: u64, len: usize, out: &mut Vec<u8>) -> Option<usize> {
        let want = len.min(usize::try_from(self.size.saturating_sub(pos)).unwrap_or(usize::MAX));
        if want == 0 {
            return Some(0);
        }
        #[cfg(target_os = "linux")]
        {
            let start = out.len();
            out.reserve(want);
            match self.pread_spare(pos, want, out, true) {
                Ok(n) if n == want => Some(want),
                // Short reads (part cached) and errors (EAGAIN: not cached; EOPNOTSUPP:
                // a filesystem without the flag) all mean: read it the blocking way.
                _ => {
                    out.truncate(start);
                    None
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = out;
            None
        }
    }

    /// Fills `buf` from offset `pos` only if that needs no disk I/O: `Some(n)` when the
    /// bytes were all in the page cache (fewer only at the end of the message), `None`
    /// when reading would wait for the disk (then nothing is consumed; read with
    /// [`MessageFile::read_at`] on a thread that may block). On Linux this is one
    /// `preadv2(RWF_NOWAIT)`; elsewhere always `None`. Lets an async server send a
    /// cached message without handing its thread over.
    pub fn read_cached_at(&self, pos: u64, buf: &mut [u8]) -> Option<usize> {
        #[cfg(target_os = "linux")]
        {
            let want = buf
                .len()
                .min(usize::try_from(self.size.saturating_sub(pos)).unwrap_or(usize::MAX));
            if want == 0 {
                return Some(0);
            }
            let iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: want,
            };
            let offset = libc::off_t::try_from(pos).ok()?;
            // SAFETY: `iov` points into `buf`, valid for `want` writable bytes for the
            // whole call; the descriptor is this file's, open for reading.
            let n =
                unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
            // Short reads (part cached) and errors (EAGAIN: not cached; EOPNOTSUPP:
            // a filesystem without the flag) all mean: read it the blocking way.
            (usize::try_from(n).ok() == Some(want)).then_some(want)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (pos, buf);
            None
        }
    }

    /// One read of at most `len` bytes at `pos` into `out`'s spare capacity (at least
    /// `len` reserved by the caller), which then grows by what was read. `nowait`:
    /// fail with `EAGAIN` rather than wait for the disk (Linux's `RWF_NOWAIT`).
    fn pread_spare(
        &self,
        pos: u64,
        len: usize,
        out: &mut Vec<u8>,
        nowait: bool,
    ) -> std::io::Result<usize> {
        let spare = out.spare_capacity_mut();
        let len = len.min(spare.len());
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: len,
        };
        let offset = libc::off_t::try_from(pos).map_err(|_| ErrorKind::InvalidInput)?;
        #[cfg(target_os = "linux")]
        let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
        #[cfg(not(target_os = "linux"))]
        if nowait {
            return Err(ErrorKind::WouldBlock.into());
        }
        // SAFETY: `iov` covers `len` bytes of `out`'s spare capacity, writable and not
        // aliased for the whole call; the descriptor is this file's, open for reading.
        #[cfg(target_os = "linux")]
        let n = unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, offset, flags) };
        // SAFETY: as above.
        #[cfg(not(target_os = "linux"))]
        let n = unsafe { libc::preadv(self.file.as_raw_fd(), &iov, 1, offset) };
        let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
        let n = n.min(len);
        // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
        unsafe { out.set_len(out.len() + n) };
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_in(dir: &Path, bytes: &[u8]) -> Guid {
        let guid = Guid::of(bytes);
        let hex = guid.to_hex();
        std::fs::create_dir_all(dir.join(&hex[..2])).unwrap();
        std::fs::write(dir.join(&hex[..2]).join(&hex), bytes).unwrap();
        guid
    }

    #[test]
    fn opens_what_the_path_names() {
        let tmp = tempfile::tempdir().unwrap();
        let guid = blob_in(tmp.path(), b"Subject: x\r\n\r\nbody\r\n");
        let dir = BlobDir::new(tmp.path()).unwrap();
        let file = MessageFile::new(dir.open(&guid).unwrap(), 20);
        let mut out = b"head".to_vec();
        assert_eq!(file.append_at(0, 100, &mut out).unwrap(), 20);
        assert_eq!(out, b"headSubject: x\r\n\r\nbody\r\n");
        let absent = Guid::of(b"never stored");
        assert_eq!(dir.open(&absent).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn ranged_reads_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let guid = blob_in(tmp.path(), &bytes);
        let dir = BlobDir::new(tmp.path()).unwrap();
        let file = MessageFile::new(dir.open(&guid).unwrap(), bytes.len() as u64);
        for (pos, len) in [
            (0, 10),
            (5, 65_536),
            (69_990, 100),
            (70_000, 5),
            (80_000, 5),
        ] {
            let mut by_append = vec![7u8];
            let n = file.append_at(pos, len, &mut by_append).unwrap();
            let want = bytes
                .get(pos as usize..)
                .map_or(&[][..], |b| &b[..len.min(b.len())]);
            assert_eq!(&by_append[1..], want, "append_at {pos} {len}");
            assert_eq!(n, want.len());
            let mut buf = vec![0u8; len];
            let n = file.read_at(pos, &mut buf).unwrap();
            assert_eq!(&buf[..n], want, "read_at {pos} {len}");
            // Freshly written, so in the page cache.
            let mut cached = Vec::new();
            if let Some(n) = file.append_cached_at(pos, len, &mut cached) {
                assert_eq!(&cached[..n], want, "append_cached_at {pos} {len}");
            }
        }
    }
}
