//! `tern expire`: removes what the store no longer needs (`docs` of the `[expire]`
//! section in `config.rs`). The work is the store's (`Store::expire`); this only parses
//! the command line and prints.
//!
//! First the per-mailbox age policy expunges what has expired (not on a replica), then
//! the purges and collections run.
//!
//! Output: one `policy user NAME ...` line per user the policy expunged from, one
//! `user NAME ...` line per user, a `FAILED ...` line per failure, and last one stable
//! total line, `total messages_expired=N bytes_expired=N records_purged=N
//! mailboxes_removed=N blobs_freed=N bytes_freed=N deliveries_pruned=N changes_pruned=N
//! consumers_dropped=N failures=N dry_run=0|1`. Exit status: 0 done, 1 some part failed (the rest was done), 2 nothing
//! could be done (usage, configuration, the store cannot be opened).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tern_store::{ExpireOptions, Store};

use crate::config::{parse_age, Config};

/// What `tern expire` does.
#[derive(Args)]
pub struct ExpireArgs {
    /// Only these users (repeat for several; all when none is named).
    #[arg(long, value_name = "NAME")]
    user: Vec<String>,
    /// Count and print what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Allow an age of 0 (purge everything eligible now).
    #[arg(long)]
    force: bool,
    /// Purge expunged records expunged at least AGE ago (0, 90m, 12h, 7d).
    #[arg(long, value_name = "AGE")]
    purge_expunged: Option<String>,
    /// Remove deleted mailboxes' tombstones at least AGE old (0, 90m, 12h, 7d).
    #[arg(long, value_name = "AGE")]
    purge_deleted: Option<String>,
}

/// Runs `tern expire`; the exit status is as the module documentation says.
pub fn run(config: &Config, args: ExpireArgs) -> anyhow::Result<ExitCode> {
    let options = match options(config, &args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tern expire: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = match crate::config::open_store(config.store())
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tern expire: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    match expire_once(&store, config, &options, &mut |line| println!("{line}")) {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::from(1)),
        Err(e) => {
            eprintln!("tern expire: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The options `tern serve` runs the expire with on its schedule: the `[expire]`
/// section's ages (an age of 0 is refused: it needs `--force` on a command line).
pub fn scheduled_options(config: &Config) -> anyhow::Result<ExpireOptions> {
    let args = ExpireArgs {
        user: Vec::new(),
        dry_run: false,
        force: false,
        purge_expunged: None,
        purge_deleted: None,
    };
    options(config, &args)
}

/// One whole expire run on an open store: the policy first (not on a replica), then
/// the purges and collections. Every output line goes to `say`, the total line last.
/// Ok(true): all done; Ok(false): some part failed (the rest was done); Err: nothing
/// could be done.
pub fn expire_once(
    store: &Store,
    config: &Config,
    options: &ExpireOptions,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<bool> {
    // First the per-mailbox age policy (`tern admin mailbox set-expire`, METADATA
    // /shared/vendor/cmu/cyrus-imapd/expire): ordinary expunges with new modseqs, so
    // replicas and QRESYNC clients see them. Not on a replica: its master expires and
    // replicates, and an expunge of its own would be a divergence.
    let replica = config.listen.sync.is_some();
    let (expired, expired_bytes, policy_failures) = if replica {
        say("policy skipped: this server is a replica ([listen] sync); its master expires");
        (0, 0, 0)
    } else {
        expire_by_policy(store, options, say).context("the expire policy")?
    };
    let report = store.expire(options)?;
    for user in &report.users {
        say(&format!(
            "user {} records_purged={} mailboxes_removed={} failures={}",
            user.user,
            user.records_purged,
            user.mailboxes_removed,
            user.failures.len()
        ));
        for f in &user.failures {
            say(&format!("FAILED {f}"));
        }
    }
    for f in &report.failures {
        say(&format!("FAILED {f}"));
    }
    for consumer in &report.consumers_dropped {
        say(&format!(
            "dropped consumer {consumer} (idle too long; it must do a full sync)"
        ));
    }
    let failures = report.failures.len()
        + report.users.iter().map(|u| u.failures.len()).sum::<usize>()
        + policy_failures;
    say(&format!(
        "total messages_expired={} bytes_expired={} records_purged={} mailboxes_removed={} \
         blobs_freed={} bytes_freed={} deliveries_pruned={} changes_pruned={} \
         consumers_dropped={} failures={} dry_run={}",
        expired,
        expired_bytes,
        report.records_purged(),
        report.mailboxes_removed(),
        report.blobs_freed,
        report.bytes_freed,
        report.deliveries_pruned,
        report.changes_pruned,
        report.consumers_dropped.len(),
        failures,
        u8::from(options.dry_run)
    ));
    Ok(!report.failed() && policy_failures == 0)
}

/// The run's options: the command line's ages, or with neither `--purge-*` option,
/// the `[expire]` section's.
fn options(config: &Config, args: &ExpireArgs) -> anyhow::Result<ExpireOptions> {
    let age = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        let Some(v) = v else { return Ok(None) };
        let secs = parse_age(v).with_context(|| format!("--{flag}"))?.as_secs();
        if secs == 0 && !args.force {
            anyhow::bail!("--{flag} 0 purges everything eligible now: add --force");
        }
        Ok(Some(secs))
    };
    let (purge_expunged, purge_deleted) =
        if args.purge_expunged.is_none() && args.purge_deleted.is_none() {
            let e = &config.expire;
            if (e.purge_expunged.is_zero() || e.purge_deleted.is_zero()) && !args.force {
                anyhow::bail!("an [expire] age of 0 purges everything eligible now: add --force");
            }
            (
                Some(e.purge_expunged.as_secs()),
                Some(e.purge_deleted.as_secs()),
            )
        } else {
            (
                age("purge-expunged", &args.purge_expunged)?,
                age("purge-deleted", &args.purge_deleted)?,
            )
        };
    Ok(ExpireOptions {
        users: args.user.clone(),
        dry_run: args.dry_run,
        purge_expunged,
        purge_deleted,
        collect_blobs: true,
        delivery_window: Some(config.lmtp.duplicate_window.as_secs()),
        consumer_max_idle: Some(config.expire.consumer_max_idle.as_secs()),
    })
}

/// Expunges what the per-mailbox age policy says has expired, for the run's users (all
/// when none is named), printing one `policy` line per user that has an expired
/// message or a failure. (messages, bytes, failures).
fn expire_by_policy(
    store: &Store,
    options: &ExpireOptions,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(u64, u64, usize)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut reports = Vec::new();
    if options.users.is_empty() {
        reports.push(store.expire_by_policy(None, options.dry_run, now)?);
    } else {
        for user in &options.users {
            reports.push(store.expire_by_policy(Some(user), options.dry_run, now)?);
        }
    }
    let (mut messages, mut bytes, mut failures) = (0, 0, 0);
    for report in &reports {
        for u in &report.users {
            if u.messages > 0 || !u.failures.is_empty() {
                say(&format!(
                    "policy user {} messages_expired={} bytes_expired={} failures={}",
                    u.user,
                    u.messages,
                    u.bytes,
                    u.failures.len()
                ));
            }
        }
        for (user, mailbox, error) in report.failures() {
            say(&format!("FAILED policy {user}/{mailbox}: {error}"));
            failures += 1;
        }
        messages += report.messages();
        bytes += report.bytes();
    }
    Ok((messages, bytes, failures))
}
