//! How the process's allocator (glibc malloc) treats large buffers.
//!
//! glibc serves a large allocation with its own `mmap` and, when one is freed, raises
//! the size from which it does so to that buffer's size (up to 32 MiB). After the
//! first large message buffer is freed, the next ones (an LMTP body of tens of MiB
//! growing a quarter at a time, a blob read whole for the text index) come from the
//! per-thread arenas instead, where freed space is kept and fragments. A flood of
//! DATA commands that were dropped midway left the server holding 141 MB after the
//! connections were gone, and its peak went from 218 MB to 307 MB and on upward, past
//! the memory budget that LMTP is meant to stay within (`bench/lmtp_body_churn.py`).
//! Fixing the size once turns that adjustment off: buffers from [`MMAP_AT`] up are
//! always mapped on their own and returned to the system when freed, and they grow
//! in place (`mremap`) instead of by copying.
//!
//! Fixing it also fixes the size of free space at the top of an arena that glibc
//! gives back (`madvise`) instead of keeping, which the adjustment would otherwise
//! have raised with it: left at its 128 KiB default, a FETCH of a few thousand
//! messages gave back and faulted in again about a megabyte per command, 10-20% more
//! CPU. [`KEEP_FREE`] keeps that space for the next command.

/// Allocations of this size and larger get their own mapping. Well above what a
/// command's hot path allocates, so the extra system calls fall on large messages only.
pub const MMAP_AT: usize = 1 << 20;

/// Free space at the top of an arena kept for reuse rather than given back. Above
/// what one command frees (about a megabyte for the largest FETCH), and small
/// enough that all arenas together keep tens of MiB at most.
pub const KEEP_FREE: usize = 4 << 20;

/// Applies [`MMAP_AT`] and [`KEEP_FREE`], unless the operator set glibc's own `MALLOC_MMAP_THRESHOLD_`.
/// Called first thing in `main`, before any thread is started.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called before any
        // other thread exists, and the value is within glibc's accepted range.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_AT as libc::c_int)
                & libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREE as libc::c_int)
        };
        if set != 1 {
            eprintln!("tern: warning: could not set the allocator's mmap and trim thresholds");
        }
    }
}
