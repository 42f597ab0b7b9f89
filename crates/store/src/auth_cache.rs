//! A cache of recent successful logins, so that a client reconnecting (or thousands
//! of them at once) does not pay an Argon2 verification each time.
//!
//! An entry is keyed by the user and their stored password hash (so a password change
//! invalidates it) and holds a keyed SHA-1 of the password under a random secret made
//! at start-up: the cache never holds a password, and its contents are useless
//! outside this process. Entries expire after [`TTL`]; failures are never cached.
//!
//! [`HashGate`] bounds the verifications that do run (see its documentation).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::Block;
use sha1::{Digest, Sha1};

/// How long a successful verification is remembered.
pub const TTL: Duration = Duration::from_secs(600);

/// Most entries kept; the cache is cleared when full (it refills at login rate).
const MAX_ENTRIES: usize = 100_000;

/// (user, stored hash) → (keyed hash of the password, when verified).
type Entries = HashMap<(String, String), ([u8; 20], Instant)>;

pub(crate) struct AuthCache {
    secret: [u8; 32],
    entries: Mutex<Entries>,
}

impl AuthCache {
    pub(crate) fn new() -> AuthCache {
        AuthCache {
            secret: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, password: &str) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(self.secret);
        h.update(password.as_bytes());
        h.update(self.secret);
        h.finalize().into()
    }

    /// True if `password` was verified for this user and stored hash recently.
    pub(crate) fn hit(&self, user: &str, stored_hash: &str, password: &str) -> bool {
        let key = (user.to_owned(), stored_hash.to_owned());
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        matches!(entries.get(&key), Some((tag, at)) if at.elapsed() < TTL && *tag == self.tag(password))
    }

    /// Remembers a successful verification.
    pub(crate) fn remember(&self, user: &str, stored_hash: &str, password: &str) {
        let tag = self.tag(password);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (user.to_owned(), stored_hash.to_owned()),
            (tag, Instant::now()),
        );
    }
}

/// Bounds how many Argon2 verifications run at once, store-wide, and lends each its
/// working memory.
///
/// Each verification takes about 19 MiB and a core for tens of milliseconds; without a
/// bound, a flood of LOGINs on blocking threads multiplied both by the number of
/// threads (512). With at most `limit` at once (the number of cores), excess callers
/// wait their turn instead of competing for the same cores. The 19 MiB come from
/// buffers the gate keeps (at most one per slot) rather than from the allocator: freed
/// into per-thread malloc arenas, each thread's copy stayed resident, so memory grew
/// with the number of threads that had ever verified, and was never given back.
pub(crate) struct HashGate {
    limit: usize,
    running: Mutex<usize>,
    /// Argon2 working memory of finished verifications, for the next ones.
    buffers: Mutex<Vec<Vec<Block>>>,
    freed: Condvar,
    /// Most verifications seen running at once (for tests and diagnostics).
    peak: AtomicUsize,
    /// Verifications started since the store was opened.
    started: AtomicU64,
}

impl HashGate {
    /// A gate letting `limit` (at least 1) verifications run at once.
    pub(crate) fn new(limit: usize) -> HashGate {
        HashGate {
            limit: limit.max(1),
            running: Mutex::new(0),
            buffers: Mutex::new(Vec::new()),
            freed: Condvar::new(),
            peak: AtomicUsize::new(0),
            started: AtomicU64::new(0),
        }
    }

    /// A gate sized to the machine: one verification per available core.
    pub(crate) fn per_core() -> HashGate {
        HashGate::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `f` once fewer than `limit` other calls are inside (waits until then),
    /// with a working-memory buffer for Argon2 (reused; `f` resizes it as needed).
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut Vec<Block>) -> T) -> T {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            while *running >= self.limit {
                running = self.freed.wait(running).unwrap_or_else(|p| p.into_inner());
            }
            *running += 1;
            self.peak.fetch_max(*running, Ordering::Relaxed);
            self.started.fetch_add(1, Ordering::Relaxed);
        }
        // Released on unwind too, so a panicking verification cannot shrink the gate.
        struct Release<'a>(&'a HashGate);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut running = self.0.running.lock().unwrap_or_else(|p| p.into_inner());
                *running -= 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        let mut buffer = self
            .buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let out = f(&mut buffer);
        // At most `limit` buffers exist: one per caller inside the gate.
        self.buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buffer);
        out
    }

    /// How many may run at once.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Most ever seen running at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Verifications started so far.
    #[cfg(test)]
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_password_and_hash() {
        let c = AuthCache::new();
        assert!(!c.hit("u", "h1", "pw"));
        c.remember("u", "h1", "pw");
        assert!(c.hit("u", "h1", "pw"));
        assert!(!c.hit("u", "h1", "other"));
        assert!(
            !c.hit("u", "h2", "pw"),
            "a new stored hash (password changed) misses"
        );
        assert!(!c.hit("v", "h1", "pw"));
    }

    #[test]
    fn gate_never_lets_more_than_its_limit_in() {
        let gate = HashGate::new(2);
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..20 {
                        gate.run(|_| {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert!(gate.peak() <= 2);
        assert_eq!(gate.started(), 16 * 20);
        assert_eq!(*gate.running.lock().unwrap(), 0, "every slot given back");
        assert!(
            gate.buffers.lock().unwrap().len() <= 2,
            "one buffer per slot"
        );
    }
}
