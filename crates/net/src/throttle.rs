//! Slowing down password guessing, per client address and per account, for every
//! protocol that takes a password (IMAP, the sync port, and later POP3 and NNTP).
//!
//! Each failed attempt raises a penalty on the client's address and on the account it
//! named (known or not: guessing user names is guessing too); the next attempt from
//! that address, or at that account, waits `base × 2^(failures-1)` before its password
//! is even checked, up to `max` (15 s, as Dovecot's `auth_penalty`). Failures are
//! forgotten `forget_after` the last one. Because parallel connections wait too, an
//! address cannot buy more guesses by opening more connections.
//!
//! An account's penalty would let anyone lock its owner out by failing on purpose, so
//! it does not apply from an address where that account logged in successfully in the
//! last `trust_for` (the owner's usual machine keeps working while a botnet guesses).
//! Both tables are bounded: past `max_entries` the oldest entries are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The throttle's settings.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// The wait after the first failure; it doubles with each further one.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
    /// How long a successful login makes its address trusted for that account.
    pub trust_for: Duration,
    /// Most entries per table.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            base: Duration::from_millis(250),
            max: Duration::from_secs(15),
            forget_after: Duration::from_secs(15 * 60),
            trust_for: Duration::from_secs(24 * 3600),
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct Tables {
    by_address: HashMap<IpAddr, Failures>,
    by_account: HashMap<String, Failures>,
    trusted: HashMap<(String, IpAddr), Instant>,
}

/// The penalties in force; one per process, shared by every listener.
pub struct AuthThrottle {
    config: ThrottleConfig,
    tables: Mutex<Tables>,
}

impl AuthThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            config,
            tables: Mutex::new(Tables::default()),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long an attempt from `ip` at `account` must wait before its password is
    /// checked.
    pub fn delay(&self, ip: Option<IpAddr>, account: &str) -> Duration {
        self.delay_at(ip, account, Instant::now())
    }

    fn delay_at(&self, ip: Option<IpAddr>, account: &str, now: Instant) -> Duration {
        let account = account.to_lowercase();
        let t = self.tables();
        let mut count = 0;
        if let Some(f) = ip.and_then(|ip| t.by_address.get(&ip)) {
            count = count.max(self.live(f, now));
        }
        let trusted = ip.is_some_and(|ip| {
            t.trusted
                .get(&(account.clone(), ip))
                .is_some_and(|since| now.duration_since(*since) < self.config.trust_for)
        });
        if !trusted {
            if let Some(f) = t.by_account.get(&account) {
                count = count.max(self.live(f, now));
            }
        }
        self.penalty(count)
    }

    fn live(&self, f: &Failures, now: Instant) -> u32 {
        if now.duration_since(f.last) < self.config.forget_after {
            f.count
        } else {
            0
        }
    }

    fn penalty(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(16);
        self.config.base.saturating_mul(factor).min(self.config.max)
    }

    /// Records a failed attempt; returns the failures now counted against the address
    /// (or the account, whichever is higher). Logged, with the address and account.
    pub fn failed(&self, ip: Option<IpAddr>, account: &str) -> u32 {
        self.failed_at(ip, account, Instant::now())
    }

    fn failed_at(&self, ip: Option<IpAddr>, account: &str, now: Instant) -> u32 {
        let account = account.to_lowercase();
        let (forget, max) = (self.config.forget_after, self.config.max_entries);
        let mut t = self.tables();
        let bump = |f: &mut Failures| {
            if now.duration_since(f.last) >= forget {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            f.count
        };
        let fresh = Failures {
            count: 0,
            last: now,
        };
        let mut count = 0;
        if let Some(ip) = ip {
            make_room(&mut t.by_address, max, |f| f.last);
            count = bump(t.by_address.entry(ip).or_insert(fresh));
        }
        make_room(&mut t.by_account, max, |f| f.last);
        count = count.max(bump(t.by_account.entry(account.clone()).or_insert(fresh)));
        drop(t);
        let peer = ip.map_or_else(|| "unix".to_owned(), |ip| ip.to_string());
        if count >= 3 {
            tracing::warn!(%peer, account, failures = count, delay_ms = self.penalty(count).as_millis() as u64, "repeated authentication failures");
        } else {
            tracing::info!(%peer, account, failures = count, "authentication failed");
        }
        count
    }

    /// Records a successful login: the address's failures are forgotten, and the
    /// address is trusted for this account.
    pub fn succeeded(&self, ip: Option<IpAddr>, account: &str) {
        self.succeeded_at(ip, account, Instant::now())
    }

    fn succeeded_at(&self, ip: Option<IpAddr>, account: &str, now: Instant) {
        let Some(ip) = ip else { return };
        let max = self.config.max_entries;
        let mut t = self.tables();
        t.by_address.remove(&ip);
        make_room(&mut t.trusted, max, |since| *since);
        t.trusted.insert((account.to_lowercase(), ip), now);
    }
}

/// Keeps a table under `max` entries by dropping the oldest tenth when it is full
/// (amortised: one sort per `max / 10` insertions).
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    table: &mut HashMap<K, V>,
    max: usize,
    last: impl Fn(&V) -> Instant,
) {
    if table.len() < max.max(1) {
        return;
    }
    let mut ages: Vec<(Instant, K)> = table.iter().map(|(k, v)| (last(v), k.clone())).collect();
    ages.sort_by_key(|(t, _)| *t);
    for (_, k) in ages.into_iter().take(max / 10 + 1) {
        table.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(ThrottleConfig {
            max_entries: 20,
            ..ThrottleConfig::default()
        })
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn penalties_grow_to_the_maximum() {
        let t = throttle();
        let now = Instant::now();
        assert_eq!(t.delay_at(A, "alice", now), Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..10 {
            t.failed_at(A, "alice", now);
            seen.push(t.delay_at(A, "someone", now).as_millis());
        }
        assert_eq!(
            seen,
            [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]
        );
    }

    #[test]
    fn an_account_is_protected_from_every_address_but_trusted_ones() {
        let t = throttle();
        let now = Instant::now();
        t.succeeded_at(A, "alice", now);
        for _ in 0..5 {
            t.failed_at(B, "Alice", now);
        }
        // A third address guessing alice's password waits...
        let c = Some("192.0.2.3".parse().unwrap());
        assert_eq!(t.delay_at(c, "alice", now), Duration::from_secs(4));
        // ...alice's own machine does not.
        assert_eq!(t.delay_at(A, "alice", now), Duration::ZERO);
        assert_eq!(t.delay_at(B, "bob", now), Duration::from_secs(4));
    }

    #[test]
    fn failures_are_forgotten() {
        let t = throttle();
        let then = Instant::now();
        t.failed_at(A, "x", then);
        let later = then + Duration::from_secs(16 * 60);
        assert_eq!(t.delay_at(A, "x", later), Duration::ZERO);
        assert_eq!(t.failed_at(A, "x", later), 1);
    }

    #[test]
    fn tables_stay_bounded() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(i.into());
            t.failed_at(
                Some(ip),
                &format!("user{i}"),
                now + Duration::from_millis(i.into()),
            );
        }
        let tables = t.tables();
        assert!(tables.by_address.len() <= 20);
        assert!(tables.by_account.len() <= 20);
    }

    #[test]
    fn success_clears_the_address() {
        let t = throttle();
        let now = Instant::now();
        t.failed_at(A, "alice", now);
        t.succeeded_at(A, "alice", now);
        assert_eq!(t.delay_at(A, "alice", now), Duration::ZERO);
    }
}
