//! When logged changes are folded in the background: once writes to the index have
//! paused for a while, on a thread of the store's own.
//!
//! Each logged flag change or expunge tells the [`FoldTimer`]. Only the first change
//! of a busy spell wakes the thread; the changes after it bump a counter the thread
//! reads when its wait ends. A wake-up for every change cost a busy session two
//! context switches per STORE (the thread woke, found more waiting to do, and slept
//! again), which on a VM's vCPUs took longer than the STORE's own work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Tells the fold thread that changes were logged; see the module.
#[derive(Default)]
pub(crate) struct FoldTimer {
    /// Logged changes so far (wrapping; only compared for equality).
    changes: AtomicU64,
    /// The thread was told of a change it has not folded yet: later changes need not
    /// wake it.
    armed: AtomicBool,
    /// Raised by the change that arms it.
    woken: crate::wakeup::Wakeup,
}

impl FoldTimer {
    /// Notes a logged change, already committed. The thread folds it (with every
    /// change logged before the fold begins) once no change has come for the quiet
    /// time given to [`FoldTimer::wait`].
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if self.armed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.woken.raise();
    }

    /// On the fold thread: returns once changes were logged and then none for
    /// `quiet`, or `false` once `alive` says the store is gone (checked at least every
    /// `idle_check`).
    pub(crate) fn wait(
        &self,
        quiet: Duration,
        idle_check: Duration,
        alive: impl Fn() -> bool,
    ) -> bool {
        while !self.woken.wait(idle_check) {
            if !alive() {
                return false;
            }
        }
        loop {
            let seen = self.changes.load(Ordering::Acquire);
            std::thread::sleep(quiet);
            if self.changes.load(Ordering::Acquire) == seen {
                break;
            }
        }
        // Disarmed before the fold starts: a change that finds it disarmed wakes the
        // thread again, and one that found it armed was committed before this point,
        // so the fold that follows includes it.
        self.armed.store(false, Ordering::Release);
        alive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    const QUIET: Duration = Duration::from_millis(30);

    /// A spell of changes wakes the thread once, and it returns only after the spell
    /// has been quiet for the given time; a change after it wakes it again.
    #[test]
    fn waits_for_a_quiet_spell_then_rearms() {
        let timer = Arc::new(FoldTimer::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let timer = Arc::clone(&timer);
            std::thread::spawn(move || {
                for _ in 0..2 {
                    assert!(timer.wait(QUIET, Duration::from_millis(5), || true));
                    tx.send(Instant::now()).unwrap();
                }
            })
        };
        assert!(rx.recv_timeout(QUIET * 3).is_err(), "no change: no fold");
        let mut last = Instant::now();
        for _ in 0..10 {
            timer.changed();
            last = Instant::now();
            std::thread::sleep(QUIET / 5);
        }
        let folded = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(folded >= last + QUIET, "folded before the spell was quiet");
        assert!(!timer.armed.load(Ordering::Acquire));
        timer.changed();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a change after the fold wakes the thread again");
        thread.join().unwrap();
    }

    /// The thread gives up waiting once the store is gone.
    #[test]
    fn stops_when_the_store_is_gone() {
        let timer = FoldTimer::default();
        assert!(!timer.wait(QUIET, Duration::from_millis(1), || false));
    }
}
