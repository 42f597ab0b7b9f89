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

use std::collections::{BTreeSet, HashMap};

use clap::Args;
use tern_store::{
    check, repair_index, CheckOptions, CheckReport, Guid, RepairOptions, RepairOutcome, Store,
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
    let run_check = || match check(&store_config, &options) {
        Ok(r) => {
            print_findings(&r);
            Some(r)
        }
        Err(e) => {
            eprintln!("tern check: {e}");
            None
        }
    };
    let Some(mut report) = run_check() else {
        return Ok(ExitCode::from(2));
    };
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
        let Some(again) = run_check() else {
            return Ok(ExitCode::from(2));
        };
        report = again;
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
        let store = match crate::config::open_store(store_config.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tern check: opening the store to repair it: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        // Messages offered back are summarised like any delivery.
        let recover_to = args
            .recover_to
            .clone()
            .or_else(|| (args.user.len() == 1).then(|| args.user[0].clone()));
        // A replica's master expunges; an expunge of the replica's own would diverge.
        let mut keep_damaged = config.listen.sync.is_some().then(|| {
            "on a replica: not expunged (its master would take that back as a deletion); \
             the master holds the message"
                .to_owned()
        });
        if damaged > 0 && keep_damaged.is_none() {
            if let Some(r) = &config.replication {
                if let Err(why) = restore_from_replica(config, r, &store, &report) {
                    println!("note: {why}");
                    keep_damaged = Some(format!("not expunged: {why}"));
                }
            }
        }
        let repair_options = RepairOptions {
            keep_damaged,
            recover_to,
        };
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
        println!("after repair:");
        let Some(again) = run_check() else {
            return Ok(ExitCode::from(2));
        };
        report = again;
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

/// Fetches good copies of damaged messages from the replica and puts them back, before
/// the repair would expunge them. Fails (with the reason) when the replica could not
/// be asked: the repair must then not expunge what the replica may still hold.
fn restore_from_replica(
    config: &Config,
    replication: &crate::config::Replication,
    store: &Store,
    report: &CheckReport,
) -> Result<(), String> {
    let mut wanted: Vec<(Guid, u64)> = Vec::new();
    let mut places: HashMap<Guid, BTreeSet<String>> = HashMap::new();
    for f in &report.findings {
        if let Some((guid, partition, size)) = f.problem.damaged_blob() {
            if places.entry(guid).or_default().insert(partition.to_owned()) {
                wanted.push((guid, size));
            }
        }
    }
    wanted.sort();
    wanted.dedup_by_key(|(g, _)| *g);
    let asked = format!("the replica at {}", replication.replica);
    let client = crate::tls::trust::client_config(replication, &config.data_dir)
        .map_err(|e| format!("{asked} cannot be asked for good copies ({e:#})"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let fetched = runtime
        .block_on(tern_sync::client::fetch_messages(&client, &wanted))
        .map_err(|e| format!("{asked} cannot be asked for good copies ({e})"))?;
    for (guid, data) in &fetched {
        for partition in places.get(guid).into_iter().flatten() {
            match store.restore_blob(partition, guid, data) {
                Ok(true) => println!("restored guid={guid} partition={partition} from {asked}"),
                Ok(false) => {}
                Err(e) => println!("note: restoring guid={guid} from {asked}: {e}"),
            }
        }
    }
    println!(
        "{asked} held {} of {} damaged message(s)",
        fetched.len(),
        wanted.len()
    );
    Ok(())
}
