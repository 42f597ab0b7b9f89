//! Slowing down password guessing, per client address and per account, for every
//! protocol that takes a password (IMAP, the sync port, and later POP3 and NNTP).
//!
//! Each attempt counts against the client's address (IPv6: its /64, as the connection
//! limits count it) and against the account it named (known or not: guessing user
//! names is guessing too) from the moment it starts, and stays counted if it fails.
//! An attempt waits `base × 2^(n-1)` before its password is even checked, `n` being
//! the failures plus, once there is a failure, the other attempts in flight on the same
//! address or account, up to `max` (15 s, as Dovecot's `auth_penalty`). So after one
//! wrong password, opening more connections buys no more guesses: the hundredth
//! parallel attempt waits as long as the hundredth serial one. Before any failure,
//! parallel logins are not held back: a guesser gets at most one burst, bounded by the
//! per-address connection limit. An account that logged in from the address within `trust_for` is not guessing:
//! its own attempts there wait only for the address's failures, so a client's parallel
//! connections (or an office behind one NAT address) log in at once. Failures are
//! forgotten `forget_after` the last one; a success forgets nothing, so an attacker who
//! owns one account cannot wash an address clean.
//!
//! An account's penalty would let anyone lock its owner out by failing on purpose, so
//! it does not apply from an address where that account logged in successfully in the
//! last `trust_for` (the owner's usual machine keeps working while a botnet guesses).
//! Tables are bounded (past `max_entries` the oldest entries go) and so are keys
//! (account names are cut to 64 bytes).
//!
//! The throttle also holds the process's password-check slots ([`AuthThrottle::slot`]):
//! about one per core, awaited asynchronously, so a flood of logins waits in the
//! runtime instead of parking a blocking thread each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::listener::address_key;

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

/// The longest account name kept as a key.
const MAX_ACCOUNT_KEY: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Attempts begun and not finished.
    in_flight: u32,
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
    slots: Arc<Semaphore>,
}

/// One login attempt, counted from [`AuthThrottle::begin`] until it is resolved with
/// [`Attempt::failed`] or [`Attempt::succeeded`] (dropped unresolved: it did not
/// happen, as when the client left while waiting).
pub struct Attempt<'t> {
    throttle: &'t AuthThrottle,
    address: Option<IpAddr>,
    account: String,
    /// How long to wait before checking the password.
    pub delay: Duration,
    done: bool,
}

fn account_key(account: &str) -> String {
    let lower = account.to_lowercase();
    let mut end = lower.len().min(MAX_ACCOUNT_KEY);
    while !lower.is_char_boundary(end) {
        end -= 1;
    }
    lower[..end].to_owned()
}

impl AuthThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> AuthThrottle {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        AuthThrottle {
            config,
            tables: Mutex::new(Tables::default()),
            slots: Arc::new(Semaphore::new(cores)),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for one of the process's password-check slots (about one per core).
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Starts an attempt from `ip` at `account`; its [`Attempt::delay`] is how long it
    /// must wait before its password is checked.
    pub fn begin(&self, ip: Option<IpAddr>, account: &str) -> Attempt<'_> {
        self.begin_at(ip, account, Instant::now())
    }

    fn begin_at(&self, ip: Option<IpAddr>, account: &str, now: Instant) -> Attempt<'_> {
        let address = ip.map(address_key);
        let account = account_key(account);
        let (forget, trust_for, max) = (
            self.config.forget_after,
            self.config.trust_for,
            self.config.max_entries,
        );
        let mut t = self.tables();
        let trusted = address.is_some_and(|ip| {
            t.trusted
                .get(&(account.clone(), ip))
                .is_some_and(|since| now.duration_since(*since) < trust_for)
        });
        let fresh = Failures {
            count: 0,
            in_flight: 0,
            last: now,
        };
        let mut pressure = 0;
        // (failures, attempts in flight) before this one joins them. Attempts in flight
        // count only once there was a failure: parallel logins on a clean slate (a
        // client opening its connections, a morning at an office behind one NAT
        // address) go through at once, while after a failure a burst of parallel
        // guesses waits as long as serial ones.
        let enter = |f: &mut Failures| {
            if now.duration_since(f.last) >= forget && f.in_flight == 0 {
                f.count = 0;
            }
            let flying = if f.count > 0 { f.in_flight } else { 0 };
            let n = (f.count, flying);
            f.in_flight = f.in_flight.saturating_add(1);
            n
        };
        if let Some(ip) = address {
            make_room(&mut t.by_address, max, |f| f.last);
            let (failed, flying) = enter(t.by_address.entry(ip).or_insert(fresh));
            // An account that logged in from this address lately is no guess: its
            // parallel logins (a client's several connections, an office behind one NAT
            // address, a webmail) wait only for the address's failures, not for each
            // other. Guesses at other accounts still count every attempt in flight.
            pressure = if trusted {
                failed
            } else {
                failed.saturating_add(flying)
            };
        }
        make_room(&mut t.by_account, max, |f| f.last);
        let (failed, flying) = enter(t.by_account.entry(account.clone()).or_insert(fresh));
        if !trusted {
            pressure = pressure.max(failed.saturating_add(flying));
        }
        drop(t);
        Attempt {
            throttle: self,
            address,
            account,
            delay: self.penalty(pressure),
            done: false,
        }
    }

    fn penalty(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(16);
        self.config.base.saturating_mul(factor).min(self.config.max)
    }

    fn finish(&self, attempt: &Attempt<'_>, failed: bool, now: Instant) -> u32 {
        let mut t = self.tables();
        let leave = |f: &mut Failures| {
            f.in_flight = f.in_flight.saturating_sub(1);
            if failed {
                f.count = f.count.saturating_add(1);
                f.last = now;
            }
            f.count
        };
        let mut count = 0;
        if let Some(f) = attempt.address.and_then(|ip| t.by_address.get_mut(&ip)) {
            count = leave(f);
        }
        if let Some(f) = t.by_account.get_mut(&attempt.account) {
            count = count.max(leave(f));
        }
        if !failed {
            if let Some(ip) = attempt.address {
                let max = self.config.max_entries;
                make_room(&mut t.trusted, max, |since| *since);
                t.trusted.insert((attempt.account.clone(), ip), now);
            }
        }
        count
    }
}

impl Attempt<'_> {
    /// Waits out [`Attempt::delay`]. With no delay it returns at once: a zero-length
    /// tokio timer would still wait for the timer wheel's next millisecond tick,
    /// which was most of a clean LOGIN's time.
    pub async fn wait_delay(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// The password was wrong (or the account unknown): counted, and logged with the
    /// address and account. Returns the failures now counted.
    pub fn failed(mut self) -> u32 {
        self.done = true;
        let count = self.throttle.finish(&self, true, Instant::now());
        let peer = self
            .address
            .map_or_else(|| "unix".to_owned(), |ip| ip.to_string());
        let account = &self.account;
        if count >= 3 {
            tracing::warn!(%peer, account, failures = count, delay_ms = self.throttle.penalty(count).as_millis() as u64, "repeated authentication failures");
        } else {
            tracing::info!(%peer, account, failures = count, "authentication failed");
        }
        count
    }

    /// The login succeeded: the address becomes trusted for this account (its own
    /// penalty no longer applies from there); no failure is forgotten.
    pub fn succeeded(mut self) {
        self.done = true;
        self.throttle.finish(&self, false, Instant::now());
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Neither failed nor succeeded (the client left, or the check could not
            // run): it only stops being in flight.
            let mut t = self.throttle.tables();
            if let Some(f) = self.address.and_then(|ip| t.by_address.get_mut(&ip)) {
                f.in_flight = f.in_flight.saturating_sub(1);
            }
            if let Some(f) = t.by_account.get_mut(&self.account) {
                f.in_flight = f.in_flight.saturating_sub(1);
            }
        }
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

    /// A clean attempt goes on at its first poll: no timer, whose next tick would add
    /// up to a millisecond to every login. A penalised one does wait.
    #[tokio::test]
    async fn only_a_penalty_waits() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let t = throttle();
        let mut cx = Context::from_waker(Waker::noop());
        let now = Instant::now();
        let clean = t.begin_at(A, "alice", now);
        assert_eq!(clean.delay, Duration::ZERO);
        let mut wait = std::pin::pin!(clean.wait_delay());
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(()));
        for _ in 0..3 {
            fail(&t, B, "mallory", now);
        }
        let penalised = t.begin_at(B, "mallory", now);
        assert!(penalised.delay > Duration::ZERO);
        let mut wait = std::pin::pin!(penalised.wait_delay());
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
    }

    fn fail(t: &AuthThrottle, ip: Option<IpAddr>, account: &str, now: Instant) {
        t.finish(&t.begin_at(ip, account, now), true, now);
    }

    fn delay(t: &AuthThrottle, ip: Option<IpAddr>, account: &str, now: Instant) -> Duration {
        t.begin_at(ip, account, now).delay
    }

    #[test]
    fn penalties_grow_to_the_maximum() {
        let t = throttle();
        let now = Instant::now();
        assert_eq!(delay(&t, A, "alice", now), Duration::ZERO);
        let mut seen = Vec::new();
        for _ in 0..10 {
            fail(&t, A, "alice", now);
            seen.push(delay(&t, A, "someone", now).as_millis());
        }
        assert_eq!(
            seen,
            [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]
        );
    }

    #[test]
    fn after_a_failure_parallel_attempts_wait_as_long_as_serial_ones() {
        let t = throttle();
        let now = Instant::now();
        // On a clean slate, parallel logins go through at once.
        let clean: Vec<_> = (0..8)
            .map(|i| t.begin_at(A, &format!("u{i}"), now))
            .collect();
        assert!(clean.iter().all(|a| a.delay == Duration::ZERO));
        drop(clean);
        fail(&t, A, "u0", now);
        let attempts: Vec<_> = (0..7)
            .map(|i| t.begin_at(A, &format!("u{i}"), now))
            .collect();
        let waits: Vec<u128> = attempts.iter().map(|a| a.delay.as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 15000]);
        drop(attempts);
        // Abandoned attempts leave no failure behind.
        assert_eq!(delay(&t, A, "x", now), Duration::from_millis(250));
    }

    /// An account that logged in from an address may log in from it in parallel
    /// without waiting for itself; guesses at other accounts from there still wait for
    /// every attempt in flight, the trusted ones included.
    #[test]
    fn a_trusted_account_logs_in_in_parallel() {
        let t = throttle();
        let now = Instant::now();
        t.finish(&t.begin_at(A, "alice", now), false, now);
        fail(&t, A, "mallory", now);
        // After a failure at the address, alice's parallel logins wait for that failure
        // only, not for each other...
        let attempts: Vec<_> = (0..8).map(|_| t.begin_at(A, "alice", now)).collect();
        assert!(attempts
            .iter()
            .all(|a| a.delay == Duration::from_millis(250)));
        // ...while a guess at another account waits for them all.
        assert_eq!(delay(&t, A, "mallory", now), Duration::from_secs(15));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let t = throttle();
        let now = Instant::now();
        for i in 1..=4u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i));
            fail(&t, Some(ip), &format!("user{i}"), now);
        }
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 9, 9, 9, 9));
        assert_eq!(delay(&t, Some(other), "new", now), Duration::from_secs(2));
    }

    #[test]
    fn an_account_is_protected_from_every_address_but_trusted_ones() {
        let t = throttle();
        let now = Instant::now();
        t.finish(&t.begin_at(A, "alice", now), false, now);
        for _ in 0..5 {
            fail(&t, B, "Alice", now);
        }
        // A third address guessing alice's password waits...
        let c = Some("192.0.2.3".parse().unwrap());
        assert_eq!(delay(&t, c, "alice", now), Duration::from_secs(4));
        // ...alice's own machine does not.
        assert_eq!(delay(&t, A, "alice", now), Duration::ZERO);
        assert_eq!(delay(&t, B, "bob", now), Duration::from_secs(4));
    }

    #[test]
    fn failures_are_forgotten_but_not_by_a_success() {
        let t = throttle();
        let then = Instant::now();
        fail(&t, A, "x", then);
        // Logging in to another account does not wash the address.
        t.finish(&t.begin_at(A, "mine", then), false, then);
        assert_eq!(delay(&t, A, "y", then), Duration::from_millis(250));
        let later = then + Duration::from_secs(16 * 60);
        assert_eq!(delay(&t, A, "x", later), Duration::ZERO);
    }

    #[test]
    fn tables_and_keys_stay_bounded() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..1000u32 {
            let ip = IpAddr::V4(i.into());
            let name = format!("user{i}-{}", "x".repeat(5000));
            fail(&t, Some(ip), &name, now + Duration::from_millis(i.into()));
        }
        let tables = t.tables();
        assert!(tables.by_address.len() <= 20);
        assert!(tables.by_account.len() <= 20);
        assert!(tables.by_account.keys().all(|k| k.len() <= MAX_ACCOUNT_KEY));
    }
}
