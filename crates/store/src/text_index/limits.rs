//! The indexer's limits as pure decisions: how much free space it leaves
//! (headroom) and how long it waits after a failure (backoff). Kept apart from the
//! I/O so that they can be tested with a table of cases.

use std::path::Path;
use std::time::{Duration, Instant};

/// The default headroom is 5% of the filesystem, but never more than this.
const DEFAULT_HEADROOM_MAX: u64 = 1 << 30;

/// Free and total bytes of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    /// Bytes an unprivileged writer may still use.
    pub(crate) free: u64,
    /// Size of the filesystem.
    pub(crate) total: u64,
}

/// The free space the indexer leaves: the configured figure, else 5% of the
/// filesystem or 1 GiB, whichever is smaller.
pub(crate) fn headroom(total: u64, configured: Option<u64>) -> u64 {
    configured.unwrap_or_else(|| (total / 20).min(DEFAULT_HEADROOM_MAX))
}

/// True when indexing now would eat into the headroom kept for deliveries.
pub(crate) fn below_headroom(space: Space, configured: Option<u64>) -> bool {
    space.free < headroom(space.total, configured)
}

/// The free space of the filesystem holding `path`; `None` if it cannot be read
/// (then the indexer relies on its backoff alone).
pub(crate) fn space_of(path: &Path) -> Option<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized, zeroed
    // out-parameter that statvfs fills in; nothing is retained after the call.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let frsize = st.f_frsize as u64;
    Some(Space {
        free: (st.f_bavail as u64).saturating_mul(frsize),
        total: (st.f_blocks as u64).saturating_mul(frsize),
    })
}

/// Exponential backoff after failed batches: 1 s after the first failure, doubling
/// up to 60 s; one success ends the episode.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    /// The wait after `failures` consecutive failures.
    pub(crate) fn delay(failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doubled = Self::FIRST.saturating_mul(1u32 << (failures - 1).min(16));
        doubled.min(Self::MAX)
    }

    /// Records a failure at `now`; true if it starts an episode (log it).
    pub(crate) fn failed(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + Self::delay(self.failures));
        self.failures == 1
    }

    /// Records a success; true if it ends an episode (log it).
    pub(crate) fn succeeded(&mut self) -> bool {
        let was = self.failures > 0;
        self.failures = 0;
        self.retry_at = None;
        was
    }

    /// True when the next attempt may run at `now`.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let delays: Vec<u64> = (0..10).map(|f| Backoff::delay(f).as_secs()).collect();
        assert_eq!(delays, vec![0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(Backoff::delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn backoff_logs_once_per_episode_and_waits() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.ready(t0));
        assert!(b.failed(t0), "the first failure starts an episode");
        assert!(!b.ready(t0 + Duration::from_millis(999)));
        assert!(b.ready(t0 + Duration::from_secs(1)));
        assert!(!b.failed(t0), "later failures are the same episode");
        assert!(!b.ready(t0 + Duration::from_millis(1999)));
        assert!(b.ready(t0 + Duration::from_secs(2)));
        assert!(b.succeeded(), "a success ends the episode");
        assert!(!b.succeeded());
        assert!(b.ready(t0));
    }

    #[test]
    fn headroom_is_five_percent_capped_at_one_gib_unless_configured() {
        const GIB: u64 = 1 << 30;
        assert_eq!(headroom(10 * GIB, None), GIB / 2);
        assert_eq!(headroom(100 * GIB, None), GIB);
        assert_eq!(headroom(100 * GIB, Some(7)), 7);
        let space = |free| Space {
            free,
            total: 10 * GIB,
        };
        assert!(below_headroom(space(GIB / 2 - 1), None));
        assert!(!below_headroom(space(GIB / 2), None));
        assert!(
            !below_headroom(space(0), Some(0)),
            "zero headroom: index to the last byte"
        );
        assert!(below_headroom(space(GIB), Some(2 * GIB)));
    }

    #[test]
    fn space_of_reads_a_real_filesystem() {
        let s = space_of(Path::new("/")).unwrap();
        assert!(s.total > 0 && s.free <= s.total);
        assert!(space_of(Path::new("/no/such/dir/here")).is_none());
    }
}
