//! `tern sync`: the replication client on the master (`docs/replication.md`).

use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use tern_store::Store;
use tern_sync::client::{self, ClientTls, RollingOptions, Target};

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
    /// Sessions to run at once, over disjoint mailboxes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    parallel: usize,
    /// Change-log consumer name for --rolling (one per replica).
    #[arg(long, default_value = "replica", value_name = "NAME")]
    consumer: String,
}

pub fn run(config: Config, args: SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    let Some(repl) = config.replication.clone() else {
        bail!("no [replication] section in the configuration: tern sync needs replica, user and password");
    };
    let tls = match &repl.starttls {
        None => None,
        Some((ca, name)) => Some(client_tls(ca, name)?),
    };
    let client_config = tern_sync::ClientConfig {
        replica: repl.replica.clone(),
        user: repl.user.clone(),
        password: repl.password.clone(),
        tls,
    };
    let store = Store::open(config.store())
        .with_context(|| format!("opening data directory {}", config.data_dir.display()))?;
    // Messages taken back from a replica are summarised like any other.
    store.set_indexer(Arc::new(tern_imap::ImapIndexer));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        if args.verify {
            // Exit status: 0 identical, 1 differences, 2 could not compare.
            let (boxes, records, diffs) =
                match client::verify(&store, &client_config, args.user.clone()).await {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("tern: error: verify failed: {e}");
                        return Ok(std::process::ExitCode::from(2));
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
                std::process::ExitCode::from(1)
            });
        }
        if args.rolling {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                let _ = stop_tx.send(true);
            });
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
        let summary = client::sync(&store, &client_config, target, args.parallel).await?;
        println!("{summary}");
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// A rustls client configuration trusting the certificates in `ca` (PEM).
fn client_tls(ca: &std::path::Path, server_name: &str) -> anyhow::Result<ClientTls> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let pem = std::fs::read(ca)
        .with_context(|| format!("replication.ca_file: reading {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.with_context(|| format!("replication.ca_file: {}: bad PEM", ca.display()))?)
            .context("replication.ca_file: unusable certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls: setting up the TLS provider")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(ClientTls {
        server_name: server_name.to_owned(),
        config: Arc::new(config),
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
