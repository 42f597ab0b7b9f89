//! `tern`: one binary for the mail store server and its tools.
//!
//! This crate only parses arguments and configuration and wires the library crates
//! together; every rule about mail lives in those crates.

mod admin;
mod config;
mod serve;

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
    /// Print the configuration in force (defaults merged with --config).
    Config,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = config::Config::load(cli.config.as_deref()).and_then(|config| match cli.command {
        Command::Serve => serve::run(config),
        Command::Admin { command } => admin::run(&config, command),
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
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
