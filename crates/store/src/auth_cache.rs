//! A cache of recent successful logins, so that a client reconnecting (or thousands
//! of them at once) does not pay an Argon2 verification each time.
//!
//! An entry is keyed by the user and their stored password hash (so a password change
//! invalidates it) and holds a keyed SHA-1 of the password under a random secret made
//! at start-up: the cache never holds a password, and its contents are useless
//! outside this process. Entries expire after [`TTL`]; failures are never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}
