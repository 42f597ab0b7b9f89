//! `tern`: one binary for the mail store server and its tools.
//!
//! This crate only parses arguments and configuration and wires the library crates
//! together; every rule about mail lives in those crates.

mod admin;
mod allocator;
mod check;
mod config;
mod expire;
mod serve;
mod sync;
mod tls;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// tern: a mail store server (IMAP, POP3, NNTP, LMTP, replication).
#[derive(Parser)]
#[command(name = "tern", version, about)]
struct Cli {
    /// Configuration file (TOML); its keys override the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every configured listener in one process until SIGTERM or SIGINT.
    Serve,
    /// Administer users, mailboxes and quotas (works with or without a running server).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Replicate to the replica named in [replication]: users, one mailbox, everything,
    /// or rolling from the change log; or verify that the replica matches.
    Sync(sync::SyncArgs),
    /// Purge expunged records and deleted mailboxes past an age, collect blobs no record
    /// refers to, prune the duplicate-delivery table and the change log.
    Expire(expire::ExpireArgs),
    /// Check the store for damage (index, blobs, counters, quota usage); with --repair,
    /// repair it without reusing a UID or lowering a modseq.
    Check(check::CheckArgs),
    /// Print the configuration in force (defaults merged with --config).
    Config,
}

fn main() -> std::process::ExitCode {
    allocator::fix_mmap_threshold();
    let cli = Cli::parse();
    init_logging();
    let result = config::Config::load(cli.config.as_deref()).and_then(|config| match cli.command {
        Command::Serve => serve::run(config).map(|()| std::process::ExitCode::SUCCESS),
        Command::Admin { command } => {
            admin::run(&config, command).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Sync(args) => sync::run(config, args),
        Command::Expire(args) => expire::run(&config, args),
        Command::Check(args) => check::run(&config, args),
        Command::Config => {
            println!("{config:#?}");
            Ok(std::process::ExitCode::SUCCESS)
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tern: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
