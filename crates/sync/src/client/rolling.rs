//! `tern sync --rolling`: tails the master's change log and keeps the replica in step
//! (`docs/replication.md`, section 8).
//!
//! The log position is acknowledged only after every user of a batch was synced or
//! set aside, so no change is skipped across a crash or restart of either side; a
//! repeated batch is harmless. A user that keeps failing is set aside (durably) and
//! retried with backoff, while the others keep flowing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tern_store::{Store, UniqueId};
use tokio::sync::watch;

use super::batch::{self, Cache, Work};
use super::conn::Connection;
use super::{blocking, ClientConfig, ClientError, SyncSummary};
use crate::protocol::Selection;

/// How the rolling client behaves.
#[derive(Debug, Clone)]
pub struct RollingOptions {
    /// Name under which the log position is kept.
    pub consumer: String,
    /// How often the change log is polled when idle.
    pub poll: Duration,
    /// Most log entries taken into one batch.
    pub max_entries: usize,
    /// Failures in a row after which a user is set aside.
    pub quarantine_after: u32,
    /// First retry delay of a user set aside (doubles up to an hour).
    pub quarantine_delay: Duration,
}

impl Default for RollingOptions {
    fn default() -> Self {
        RollingOptions {
            consumer: "replica".into(),
            // One indexed read of the change log: cheap enough to do often, and what
            // a new message waits for before it travels.
            poll: Duration::from_millis(2),
            max_entries: 5000,
            quarantine_after: 3,
            quarantine_delay: Duration::from_secs(60),
        }
    }
}

/// A user set aside, and when to try again.
struct Quarantined {
    retry_at: Instant,
    delay: Duration,
}

/// Runs until `stop` turns true; returns what it did.
pub async fn rolling(
    store: &Store,
    config: &ClientConfig,
    options: RollingOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<SyncSummary, ClientError> {
    let mut total = SyncSummary::default();
    let mut backoff = Duration::from_millis(100);
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut quarantine: HashMap<String, Quarantined> = HashMap::new();
    // Users set aside by an earlier run are retried first.
    let mut retry_now: BTreeSet<String> = blocking(|| store.deferred_syncs(&options.consumer))?
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    // Our own position: read once, then kept here (this process is its only writer),
    // so an idle poll is one read of the change log.
    let mut acked = blocking(|| store.changes_acked(&options.consumer))?;
    let mut conn: Option<Connection> = None;
    let mut cache = Cache::default();
    while !*stop.borrow() {
        if conn.is_none() {
            match Connection::open(config).await {
                Ok(c) => {
                    tracing::info!(replica = %config.replica, "rolling replication connected");
                    conn = Some(c);
                    backoff = Duration::from_millis(100);
                    cache = Cache::default();
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "replica unreachable");
                    if sleep_or_stop(&mut stop, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        let entries = blocking(|| store.changes_after(acked, options.max_entries))?;
        let now = Instant::now();
        for (user, q) in &quarantine {
            if q.retry_at <= now {
                retry_now.insert(user.clone());
            }
        }
        if entries.is_empty() && retry_now.is_empty() {
            if sleep_or_stop(&mut stop, options.poll).await {
                break;
            }
            continue;
        }
        // Coalesce: per user, either everything or a set of mailboxes.
        let mut touched: BTreeMap<String, Option<BTreeSet<UniqueId>>> = BTreeMap::new();
        for e in &entries {
            let slot = touched
                .entry(e.user.clone())
                .or_insert_with(|| Some(BTreeSet::new()));
            match (&e.mailbox, slot.as_mut()) {
                (Some(m), Some(set)) => {
                    set.insert(m.clone());
                }
                (None, _) => *slot = None,
                (Some(_), None) => {}
            }
        }
        for user in &retry_now {
            touched.insert(user.clone(), None);
        }
        let last_seq = entries.last().map_or(acked, |e| e.seq);
        let mut work = Vec::new();
        let mut set_aside = Vec::new();
        for (user, boxes) in touched {
            if quarantine.get(&user).is_some_and(|q| q.retry_at > now) {
                set_aside.push(user);
                continue;
            }
            let selection = match boxes {
                None => Selection::All,
                Some(ids) => Selection::Some {
                    ids: ids.into_iter().collect(),
                    names: vec![],
                },
            };
            work.push(Work { user, selection });
        }
        for user in &set_aside {
            blocking(|| store.defer_sync(&options.consumer, user, None))?;
        }
        let c = conn.as_mut().expect("connected above");
        let outcome = match batch::sync_batch(c, store, &work, Some(&mut cache)).await {
            Ok(o) => o,
            Err(e) if e.is_connection() => {
                tracing::warn!(error = %e, "replication session lost; reconnecting");
                conn = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        let failed: BTreeSet<String> = outcome.failures.iter().map(|f| f.user.clone()).collect();
        let mut blocked = false;
        let mut counted = BTreeSet::new();
        for f in &outcome.failures {
            let (user, why) = (&f.user, f);
            if !counted.insert(user) {
                // A second failing mailbox of the same user: one failure of the user.
                tracing::warn!(%user, error = %why, "user failed to replicate");
                continue;
            }
            cache.forget_user(user);
            let n = failures.entry(user.clone()).or_insert(0);
            *n += 1;
            tracing::warn!(%user, failures = *n, error = %why, "user failed to replicate");
            if *n >= options.quarantine_after {
                let delay = quarantine.get(user).map_or(options.quarantine_delay, |q| {
                    (q.delay * 2).min(Duration::from_secs(3600))
                });
                tracing::error!(%user, retry_in = ?delay, "user quarantined: set aside, the others go on");
                blocking(|| store.defer_sync(&options.consumer, user, None))?;
                quarantine.insert(
                    user.clone(),
                    Quarantined {
                        retry_at: Instant::now() + delay,
                        delay,
                    },
                );
                retry_now.remove(user);
            } else {
                blocked = true;
            }
        }
        for w in &work {
            if failed.contains(&w.user) {
                continue;
            }
            failures.remove(&w.user);
            if quarantine.remove(&w.user).is_some() || retry_now.remove(&w.user) {
                blocking(|| store.clear_deferred(&options.consumer, &w.user))?;
                tracing::info!(user = %w.user, "user back in step");
            }
        }
        if blocked {
            // Not yet quarantined: retry the same entries (the others are no-ops).
            if sleep_or_stop(&mut stop, Duration::from_millis(200)).await {
                break;
            }
            continue;
        }
        if last_seq > acked {
            blocking(|| store.ack_changes(&options.consumer, last_seq))?;
            acked = last_seq;
        }
        if outcome.summary.mailboxes > 0 {
            tracing::debug!(summary = %outcome.summary, "rolling batch");
        }
        total += outcome.summary;
    }
    if let Some(c) = conn {
        total.traffic += c.logout().await;
    }
    Ok(total)
}

/// Sleeps for `d`; true if asked to stop meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
