//! `tern sync`: the replication client on the master (`docs/replication.md`).
//!
//! Exit status, the same for every mode: 0 done (all in step, or `--verify` found no
//! difference, or `--rolling` stopped by a signal); 1 the run went through but some
//! users or mailboxes failed (each printed on a `FAILED` line) or `--verify` found
//! differences (`DIFF` lines); 2 nothing could be done or the run stopped as a whole
//! (configuration, replica unreachable, login or TLS refused, session lost).

use anyhow::{bail, Context};
use clap::Args;
use tern_sync::client::{self, ClientError, RollingOptions, Target};

use crate::config::Config;

/// What `tern sync` does.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").args(["user", "all", "rolling"]).multiple(false)))]
pub struct SyncArgs {
    /// Sync these users (repeat for several).
    #[arg(long, value_name = "NAME")]
    user: Vec<String>,
    /// With one --user: sync only this mailbox of that user.
    #[arg(long, value_name = "NAME", requires = "user")]
    mailbox: Option<String>,
    /// Sync every user (the default when nothing else is named).
    #[arg(long)]
    all: bool,
    /// Tail the change log and replicate every change until SIGTERM or SIGINT.
    #[arg(long)]
    rolling: bool,
    /// Compare master and replica instead of syncing; exit status 1 on any difference,
    /// 2 when the comparison could not be made.
    #[arg(long, conflicts_with = "rolling")]
    verify: bool,
    /// With --verify: compare every record and check every blob on both sides, also
    /// where the counters and records digests are equal (slower: O(records)).
    #[arg(long, requires = "verify")]
    deep: bool,
    /// Sessions to run at once, over disjoint mailboxes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    parallel: usize,
    /// Change-log consumer name for --rolling (one per replica).
    #[arg(long, default_value = "replica", value_name = "NAME")]
    consumer: String,
}

/// Exit status: some users or mailboxes failed, or `--verify` found differences.
const PARTIAL: u8 = 1;
/// Exit status: the run could not be made, or stopped as a whole.
const STOPPED: u8 = 2;

pub fn run(config: Config, args: SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    match run_inner(config, args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("tern: error: {e:#}");
            Ok(std::process::ExitCode::from(STOPPED))
        }
    }
}

fn run_inner(config: Config, args: SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    let Some(repl) = config.replication.clone() else {
        bail!("no [replication] section in the configuration: tern sync needs replica, user and password");
    };
    let client_config = crate::tls::trust::client_config(&repl, &config.data_dir)?;
    let store = crate::config::open_store(config.store())
        .with_context(|| format!("opening data directory {}", config.data_dir.display()))?;
    // Messages taken back from a replica are summarised like any other.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        if args.verify {
            // Exit status: 0 identical, 1 differences, 2 could not compare.
            let (boxes, records, diffs) =
                match client::verify(&store, &client_config, args.user.clone(), args.deep).await {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("tern: error: verify failed: {e}");
                        return Ok(std::process::ExitCode::from(STOPPED));
                    }
                };
            for d in &diffs {
                println!("DIFF {d}");
            }
            println!(
                "verify: {boxes} mailboxes, {records} records compared, {} differences",
                diffs.len()
            );
            return Ok(if diffs.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(PARTIAL)
            });
        }
        if args.rolling {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            match crate::serve::Shutdown::install() {
                Ok(shutdown) => {
                    tokio::spawn(async move {
                        shutdown.wait().await;
                        let _ = stop_tx.send(true);
                    });
                }
                Err(e) => {
                    tracing::warn!("{e:#}: --rolling stops only when killed");
                    // A dropped sender would read as "stop" at once.
                    tokio::spawn(async move {
                        let _held = stop_tx;
                        std::future::pending::<()>().await
                    });
                }
            }
            let options = RollingOptions {
                consumer: args.consumer.clone(),
                ..Default::default()
            };
            tracing::info!(replica = %client_config.replica, "rolling replication started");
            let summary = client::rolling(&store, &client_config, options, stop_rx).await?;
            println!("rolling: {summary}");
            return Ok(std::process::ExitCode::SUCCESS);
        }
        let target = match (&args.mailbox, args.user.as_slice()) {
            (Some(mailbox), [user]) => Target::Mailbox(user.clone(), mailbox.clone()),
            (Some(_), _) => bail!("--mailbox needs exactly one --user"),
            (None, []) => Target::All,
            (None, users) => Target::Users(users.to_vec()),
        };
        match client::sync(&store, &client_config, target, args.parallel).await {
            Ok(summary) => {
                println!("{summary}");
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(ClientError::Partial(summary)) => {
                // The others were synced: say so, and name each failure.
                for f in &summary.failures {
                    println!("FAILED {f}");
                }
                println!("{summary}");
                eprintln!(
                    "tern: error: {} of {} user(s) not in step ({} failure(s) listed as FAILED); \
                     a later sync retries them",
                    summary.failed_users(),
                    summary.users,
                    summary.failures.len()
                );
                Ok(std::process::ExitCode::from(PARTIAL))
            }
            Err(e) => Err(e.into()),
        }
    })
}
