//! `tern check`: finds damage in the store and, with `--repair`, repairs it. The work is
//! the store's (`tern_store::check`, `Store::repair`); this parses the command line,
//! fetches good copies of damaged messages from the replica when one is configured,
//! and prints.
//!
//! Output: one line per finding (`KIND key=value ...`; garbage that `tern expire`
//! removes in its normal course is prefixed `pending`), with `--repair` one
//! `repaired ...` or `left ...` line per finding followed by the findings of a second
//! check, and last one stable total line: `total users=N mailboxes=N records=N
//! blobs=N bytes_hashed=N findings=N pending=N repaired=N left=N deep=0|1 repair=0|1`.
//! Exit status: 0 the store is clean (after the repairs, with `--repair`), 1 findings
//! remain, 2 the check could not be made (usage, no index, a damaged index).

use std::process::ExitCode;

use clap::Args;
use tern_store::{
    check, repair_index, CheckOptions, CheckReport, RepairOptions, RepairOutcome, Store,
};

use crate::config::Config;

/// What `tern check` does.
#[derive(Args)]
pub struct CheckArgs {
    /// Only these users (repeat for several; all when none is named).
    #[arg(long, value_name = "NAME")]
    user: Vec<String>,
    /// Only this mailbox of each user checked.
    #[arg(long, value_name = "NAME")]
    mailbox: Option<String>,
    /// Read every message and check that it hashes to its GUID.
    #[arg(long)]
    deep: bool,
    /// Repair what is found (never reusing a UID or lowering a modseq).
    #[arg(long)]
    repair: bool,
    /// With --repair: the user whose `Recovered` mailbox receives blobs no message of
    /// this store ever had (default: the one --user, when exactly one is named).
    #[arg(long, value_name = "NAME")]
    recover_to: Option<String>,
}

/// Runs `tern check`; the exit status is as the module documentation says.
pub fn run(config: &Config, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut store_config = config.store();
    // A repair must see the store as the check found it: no orphan scan, no indexer.
    store_config.background = false;
    let options = CheckOptions {
        users: args.user.clone(),
        mailbox: args.mailbox.clone(),
        deep: args.deep,
    };
    let mut report = match check(&store_config, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tern check: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    print_findings(&report);
    if report.stopped() {
        if !args.repair {
            eprintln!("tern check: the index is damaged; nothing else was checked (--repair tries to rebuild it)");
            return Ok(ExitCode::from(2));
        }
        match repair_index(&store_config) {
            Ok(RepairOutcome::Repaired(how)) => println!("repaired index: {how}"),
            Ok(RepairOutcome::Left(why)) => {
                eprintln!("tern check: {why}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                eprintln!("tern check: {e}");
                return Ok(ExitCode::from(2));
            }
        }
        report = match check(&store_config, &options) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tern check: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        print_findings(&report);
        if report.stopped() {
            return Ok(ExitCode::from(2));
        }
    }
    let damaged = report
        .findings
        .iter()
        .filter(|f| f.problem.is_damaged_blob())
        .count();
    if damaged > 0 && !args.repair {
        if let Some(r) = &config.replication {
            println!(
                "note: {damaged} message(s) are damaged here; the replica at {} may hold good copies, \
                 which `tern check --repair` fetches before expunging anything",
                r.replica
            );
        }
    }
    let (mut repaired, mut left) = (0usize, 0usize);
    if args.repair && !report.findings.is_empty() {
        let store = match Store::open(store_config.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tern check: opening the store to repair it: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let recover_to = args
            .recover_to
            .clone()
            .or_else(|| (args.user.len() == 1).then(|| args.user[0].clone()));
        let repair_options = RepairOptions {
            // A replica's master expires and expunges; one of its own would diverge.
            expunge_damaged: config.listen.sync.is_none(),
            recover_to,
        };
        if damaged > 0 {
            if let Some(r) = &config.replication {
                restore_from_replica(config, r, &store, &report);
            }
        }
        let mut print = |finding: &tern_store::Finding, result: &RepairOutcome| {
            match result {
                RepairOutcome::Repaired(how) => {
                    repaired += 1;
                    println!("repaired {finding} -- {how}");
                }
                RepairOutcome::Left(why) => {
                    left += 1;
                    println!("left {finding} -- {why}");
                }
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
        };
        if let Err(e) = store.repair(&report.findings, &repair_options, &mut print) {
            eprintln!("tern check: repairing: {e}");
            return Ok(ExitCode::from(2));
        }
        drop(store);
        report = match check(&store_config, &options) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tern check: checking again after the repairs: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        println!("after repair:");
        print_findings(&report);
    }
    let findings = report.damage().count();
    let pending = report.findings.len() - findings;
    println!(
        "total users={} mailboxes={} records={} blobs={} bytes_hashed={} findings={} pending={} \
         repaired={} left={} deep={} repair={}",
        report.users,
        report.mailboxes,
        report.records,
        report.blobs,
        report.bytes_hashed,
        findings,
        pending,
        repaired,
        left,
        u8::from(args.deep),
        u8::from(args.repair)
    );
    Ok(if report.stopped() {
        ExitCode::from(2)
    } else if findings > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_findings(report: &CheckReport) {
    for f in &report.findings {
        if f.problem.is_pending() {
            println!("pending {f}");
        } else {
            println!("{f}");
        }
    }
}

/// Fetches good copies of damaged messages from the replica before the repair would
/// expunge them.
fn restore_from_replica(
    _config: &Config,
    _replication: &crate::config::Replication,
    _store: &Store,
    _report: &CheckReport,
) {
}
