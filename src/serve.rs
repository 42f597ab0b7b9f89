//! `tern serve`: every listener in one tokio process.

use std::time::Duration;

use anyhow::Context;
use tern_store::Store;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::config::{parse_addr, Config};

/// How long sessions get to finish after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    // Deliveries already handed to the store finish (they are blocking tasks); their
    // clients were not yet acknowledged, so cutting them short would lose nothing.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Certificate and key first: a bad [tls] stops tern before anything is opened.
    // Without [tls], a self-signed certificate kept in the data directory.
    let server_tls = tokio::task::block_in_place(|| crate::tls::ServerTls::start(&config))?;
    let tls = Some(server_tls.server_config());
    let store = {
        let store_config = config.store();
        tokio::task::spawn_blocking(move || Store::open(store_config))
            .await?
            .with_context(|| format!("opening data directory {}", config.data_dir.display()))?
    };
    // Every message stored from now on is summarised and text-indexed for IMAP.
    store.set_indexer(std::sync::Arc::new(tern_imap::ImapIndexer));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    // One IMAP service for both IMAP listeners: one connection limit, one MIME cache.
    let imap = tern_imap::ImapServer::new(
        store.clone(),
        tern_imap::ImapConfig {
            tls: tls.clone(),
            ..config.imap.clone()
        },
    );

    for (key, value) in config.listeners() {
        let addr = parse_addr(key, value)?;
        match key {
            "listen.lmtp" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("lmtp listening on {}", listener.local_addr()?);
                tasks.spawn(tern_lmtp::serve_tcp(
                    listener,
                    store.clone(),
                    config.lmtp.clone(),
                    stopped.clone(),
                ));
            }
            "listen.imap" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("imap listening on {}", listener.local_addr()?);
                if config.imap.plaintext_auth && !addr.ip().is_loopback() {
                    tracing::warn!(
                        "{key} = {addr}: passwords are accepted in clear text \
                         (set imap.plaintext_auth = false)"
                    );
                }
                tasks.spawn(imap.clone().serve_tcp(listener, stopped.clone()));
            }
            "listen.imaps" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("imaps listening on {}", listener.local_addr()?);
                tasks.spawn(imap.clone().serve_tls(listener, stopped.clone()));
            }
            "listen.sync" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("sync listening on {}", listener.local_addr()?);
                tasks.spawn(tern_sync::serve_tcp(
                    listener,
                    store.clone(),
                    tern_sync::SyncServerConfig {
                        tls: tls.clone(),
                        ..Default::default()
                    },
                    stopped.clone(),
                ));
            }
            _ => tracing::info!("{key} = {value}: this build has no such listener yet; ignored"),
        }
    }
    if let Some(path) = &config.listen.lmtp_socket {
        // A socket file left by a previous run would make bind fail.
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .with_context(|| format!("listen.lmtp_socket: binding {}", path.display()))?;
        tracing::info!("lmtp listening on unix:{}", path.display());
        tasks.spawn(tern_lmtp::serve_unix(
            listener,
            store.clone(),
            config.lmtp.clone(),
            stopped.clone(),
        ));
    }
    if tasks.is_empty() {
        anyhow::bail!("no listener configured: add at least one address under [listen]");
    }
    server_tls.reload_on_sighup()?;
    tracing::info!(data_dir = %config.data_dir.display(), "tern ready");

    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Waits for SIGTERM or SIGINT; an error when the handlers cannot be installed.
pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}

/// Binds a listening socket with a deep accept queue: thousands of clients
/// reconnecting at once (after a restart, or a network blip) must queue, not be
/// dropped.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
