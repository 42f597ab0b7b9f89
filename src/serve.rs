//! `tern serve`: every listener in one tokio process.

use std::time::Duration;

use anyhow::Context;
use tern_store::Store;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::config::{parse_addr, Config};

/// Threads that may run blocking work (store reads and writes, under `block_in_place`
/// and `spawn_blocking`) at once; more work waits for one of them.
///
/// Why: tokio's default (512) let 50 busy IMAP clients grow the server to 336 threads,
/// each with its stack and a share of the allocator's arenas, about 3 MB a client,
/// while two cores gain nothing from more than a few dozen. At 50 clients
/// (`bench/imap_steady.py --clients 50`): 64 threads, 2.0 MB a client; 32, 1.7-1.8 MB
/// with the same throughput; 16, 3.9 MB (work queued for a thread holds its buffers
/// meanwhile).
const MAX_BLOCKING_THREADS: usize = 32;

/// How long sessions get to finish after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    // Deliveries already handed to the store finish (they are blocking tasks); their
    // clients were not yet acknowledged, so cutting them short would lose nothing.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Handlers before anything is bound: once a client can connect, SIGTERM must mean
    // a clean stop, not the default action that kills the process mid-session.
    let shutdown = Shutdown::install()?;
    // Certificate and key first: a bad [tls] stops tern before anything is opened.
    // Without [tls], a self-signed certificate kept in the data directory.
    let server_tls = tokio::task::block_in_place(|| crate::tls::ServerTls::start(&config))?;
    let tls = Some(server_tls.server_config());
    let store = {
        let store_config = config.store();
        tokio::task::spawn_blocking(move || crate::config::open_store(store_config))
            .await?
            .with_context(|| format!("opening data directory {}", config.data_dir.display()))?
    };
    // Every message stored from now on is summarised and text-indexed for IMAP.
    check_open_files(&config);
    // One allowance for what clients make the server hold, and one record of failed
    // logins, shared by every listener.
    let budget = tern_net::MemoryBudget::new(config.client_memory);
    let throttle = std::sync::Arc::new(tern_net::AuthThrottle::new(Default::default()));
    let lmtp = tern_lmtp::LmtpServer::new(store.clone(), config.lmtp.clone(), budget.clone());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    // One IMAP service for both IMAP listeners: one connection limit, one MIME cache.
    let imap = tern_imap::ImapServer::new(
        store.clone(),
        tern_imap::ImapConfig {
            tls: tls.clone(),
            ..config.imap.clone()
        },
    )
    .with_throttle(throttle.clone())
    .with_budget(budget.clone());
    // One POP3 service for both POP3 listeners: one connection limit, one set of
    // maildrop locks ([IN-USE] holds across pop3 and pop3s).
    let pop3 = tern_pop3::Pop3Server::new(
        store.clone(),
        tern_pop3::Pop3Config {
            tls: tls.clone(),
            ..config.pop3.clone()
        },
    )
    .with_throttle(throttle.clone());
    // One NNTP service for both NNTP listeners: one connection limit.
    let nntp = tern_nntp::NntpServer::new(
        store.clone(),
        tern_nntp::NntpConfig {
            tls: tls.clone(),
            ..config.nntp.clone()
        },
    )
    .with_throttle(throttle.clone())
    .with_budget(budget.clone());

    for (key, value) in config.listeners() {
        let addr = parse_addr(key, value)?;
        match key {
            "listen.lmtp" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("lmtp listening on {}", listener.local_addr()?);
                tasks.spawn(
                    lmtp.clone()
                        .serve(tern_net::Bound::Tcp(listener), stopped.clone()),
                );
            }
            "listen.imap" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("imap listening on {}", listener.local_addr()?);
                tasks.spawn(imap.clone().serve_tcp(listener, stopped.clone()));
            }
            "listen.imaps" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("imaps listening on {}", listener.local_addr()?);
                tasks.spawn(imap.clone().serve_tls(listener, stopped.clone()));
            }
            "listen.pop3" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("pop3 listening on {}", listener.local_addr()?);
                tasks.spawn(pop3.clone().serve_tcp(listener, stopped.clone()));
            }
            "listen.pop3s" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("pop3s listening on {}", listener.local_addr()?);
                tasks.spawn(pop3.clone().serve_tls(listener, stopped.clone()));
            }
            "listen.nntp" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("nntp listening on {}", listener.local_addr()?);
                tasks.spawn(nntp.clone().serve_tcp(listener, stopped.clone()));
            }
            "listen.nntps" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("nntps listening on {}", listener.local_addr()?);
                tasks.spawn(nntp.clone().serve_tls(listener, stopped.clone()));
            }
            "listen.sync" => {
                let listener = bind(addr).with_context(|| format!("{key}: binding {addr}"))?;
                tracing::info!("sync listening on {}", listener.local_addr()?);
                tasks.spawn(tern_sync::serve_tcp(
                    listener,
                    store.clone(),
                    tern_sync::SyncServerConfig {
                        tls: tls.clone(),
                        require_tls: config.sync.require_tls,
                        max_connections: config.sync.max_connections,
                        max_connections_per_ip: config.sync.max_connections_per_ip,
                        throttle: throttle.clone(),
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
        tasks.spawn(
            lmtp.clone()
                .serve(tern_net::Bound::Unix(listener), stopped.clone()),
        );
    }
    if tasks.is_empty() {
        anyhow::bail!("no listener configured: add at least one address under [listen]");
    }
    server_tls.reload_on_sighup()?;
    if let Some(schedule) = config.expire.schedule {
        let options = crate::expire::scheduled_options(&config).context("expire.schedule")?;
        tasks.spawn(expire_on_schedule(
            schedule,
            options,
            store.clone(),
            config.clone(),
            stopped.clone(),
        ));
    }
    tracing::info!(data_dir = %config.data_dir.display(), "tern ready");

    shutdown.wait().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Runs the expire (`tern expire` with no option) whenever `schedule` says, until the
/// server stops. A run is ordinary store work beside the deliveries (each of its writes
/// is a short transaction); one still running at shutdown is cut short, which the
/// expire is built to survive (the next run finishes it).
async fn expire_on_schedule(
    schedule: crate::config::Schedule,
    options: tern_store::ExpireOptions,
    store: Store,
    config: Config,
    mut stopped: watch::Receiver<bool>,
) {
    let config = std::sync::Arc::new(config);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let wait = schedule.wait_from(now);
        tracing::debug!(seconds = wait.as_secs(), "next scheduled expire");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
        let (store, config, options) = (store.clone(), config.clone(), options.clone());
        let run = tokio::task::spawn_blocking(move || {
            crate::expire::expire_once(&store, &config, &options, &mut |line| {
                tracing::info!("expire: {line}")
            })
        });
        match run.await {
            Ok(Ok(true)) => tracing::info!("scheduled expire done"),
            Ok(Ok(false)) => tracing::warn!("scheduled expire done, with failures (see above)"),
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "scheduled expire failed"),
            Err(e) => tracing::error!(error = %e, "scheduled expire stopped"),
        }
    }
}

/// Raises the open-file limit as far as allowed and warns when the connection limits
/// configured could still run the process out of file descriptors (each connection is
/// one; the index, blobs being read and the listeners need a few hundred more).
fn check_open_files(config: &Config) {
    let wanted = config.imap.max_connections
        + config.lmtp.max_connections
        + config.pop3.max_connections
        + config.sync.max_connections
        + 512;
    match tern_net::rlimit::raise_open_files() {
        Ok(limit) if (limit as usize) < wanted => tracing::warn!(
            open_files = limit,
            needed = wanted,
            "the open-file limit is below what the connection limits need: \
             raise it (LimitNOFILE=, ulimit -n) or lower max_connections"
        ),
        Ok(limit) => tracing::info!(open_files = limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
}

/// SIGTERM and SIGINT, caught from the moment `install` returns (a signal arriving
/// before `wait` is called is not lost).
pub(crate) struct Shutdown {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers; an error when the runtime cannot.
    pub(crate) fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
        })
    }

    /// Returns when SIGTERM or SIGINT has arrived since `install`.
    pub(crate) async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
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
