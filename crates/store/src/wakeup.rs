//! A flag one thread raises to wake another that waits for it: the store's background
//! threads (the WAL checkpoint, the fold of logged changes) sleep on one each, and
//! wait with a timeout so that they notice when their store is gone.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// See the module. Raising it twice before the waiter wakes wakes it once.
#[derive(Default)]
pub(crate) struct Wakeup {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Wakeup {
    /// Raises the flag and wakes the waiter. Never panics: SQLite's WAL hook calls it.
    pub(crate) fn raise(&self) {
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        *raised = true;
        self.cond.notify_one();
    }

    /// Waits at most `timeout` for the flag; returns whether it was raised, and
    /// lowers it.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        let mut raised = match self.cond.wait_timeout_while(raised, timeout, |r| !*r) {
            Ok((guard, _)) => guard,
            Err(p) => p.into_inner().0,
        };
        std::mem::take(&mut *raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raise_wakes_one_wait_once() {
        let wakeup = Wakeup::default();
        assert!(!wakeup.wait(Duration::from_millis(1)));
        wakeup.raise();
        wakeup.raise();
        assert!(wakeup.wait(Duration::from_secs(10)));
        assert!(!wakeup.wait(Duration::from_millis(1)));
    }
}
