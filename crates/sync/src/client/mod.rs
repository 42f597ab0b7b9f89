//! The replication client (`tern sync`, on the master): one-shot syncs of users or
//! mailboxes, rolling replication from the change log, and verification.
//!
//! Every entry point reads the master's store directly and never changes it, except to
//! merge back what only the replica had after a split brain (see `reconcile.rs`).

mod batch;
mod conn;
mod plan;
mod reconcile;
mod records;
mod restore;
mod rolling;
mod round;
mod updates;
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_store::{Store, StoreError, UniqueId};

pub use conn::Traffic;
pub use restore::fetch_messages;
pub use rolling::{rolling, RollingOptions};
pub use verify::{verify, Difference};

use crate::protocol::Selection;
use crate::wire::WireError;

/// Runs a store call (blocking disk I/O) from async code without stalling the runtime's
/// other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// TLS for the client: the server name to check and the trust configuration.
#[derive(Clone)]
pub struct ClientTls {
    /// Name the replica's certificate must carry (when `config` checks names) and the
    /// name sent in SNI.
    pub server_name: String,
    /// rustls configuration: trusted roots, or a verifier that leaves the identity to
    /// `check`.
    pub config: Arc<rustls::ClientConfig>,
    /// Run on the replica's certificate after the handshake and before the password is
    /// sent: a pinned or remembered fingerprint. `None` when `config` alone decides.
    pub check: Option<Arc<dyn PeerCheck>>,
}

/// Decides whether the replica's certificate is the one expected, once the handshake
/// has proved the replica holds its key.
pub trait PeerCheck: Send + Sync {
    /// `Ok` to go on; `Err` says why the certificate (DER, end entity) is refused.
    /// May block briefly (it may read or write a small file).
    fn check(&self, end_entity: &[u8]) -> Result<(), String>;
}

/// Where and how to reach the replica.
///
/// TLS is used whenever the replica offers STARTTLS and `tls` is set. Without TLS the
/// password travels in clear text, which the client allows only to a loopback address
/// or with `allow_plaintext`, and never with `require_tls`.
#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of the replica's sync listener.
    pub replica: String,
    /// An administrator on the replica.
    pub user: String,
    /// Its password.
    pub password: String,
    /// How to upgrade with STARTTLS when the replica offers it.
    pub tls: Option<ClientTls>,
    /// Refuse a replica that does not offer STARTTLS.
    pub require_tls: bool,
    /// Send the password in clear text to a replica that is not on a loopback address
    /// and offers no TLS.
    pub allow_plaintext: bool,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The replica could not be reached.
    #[error("cannot connect to replica {0}: {1}")]
    Connect(String, String),
    /// The replica refused the credentials.
    #[error("replica refused authentication: {0}")]
    Auth(String),
    /// The session broke (I/O error or the replica went away).
    #[error("replica connection: {0}")]
    Io(String),
    /// The replica said something this client does not understand.
    #[error("replica protocol: {0}")]
    Protocol(String),
    /// The session would not be secure: TLS required but not offered, the password
    /// would go in clear text over the network, or the certificate is not trusted.
    #[error("replica connection not secure: {0}")]
    Insecure(String),
    /// The master's store failed.
    #[error("master store: {0}")]
    Store(#[from] StoreError),
    /// Some users or mailboxes could not be brought in step; the others were. The
    /// summary says what was done and lists each failure (never empty).
    #[error("{}", partial_text(.0))]
    Partial(Box<SyncSummary>),
}

fn partial_text(summary: &SyncSummary) -> String {
    let list = summary
        .failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "{} of {} user(s) failed to sync: {list}",
        summary.failed_users(),
        summary.users
    )
}

/// A user, or one mailbox of a user, that a sync could not bring in step. The failure
/// of one never stopped or undid the others: every other user and mailbox of the run
/// was still synced, and a later sync retries this one from where the replica stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    /// The user.
    pub user: String,
    /// The mailbox's name on the master, when the failure was one mailbox's; `None`
    /// when the user as a whole could not be handled.
    pub mailbox: Option<String>,
    /// What went wrong (the master's store error, or the replica's answer).
    pub error: String,
}

impl SyncFailure {
    pub(crate) fn user(user: &str, error: impl ToString) -> SyncFailure {
        SyncFailure {
            user: user.to_owned(),
            mailbox: None,
            error: error.to_string(),
        }
    }

    pub(crate) fn mailbox(user: &str, mailbox: &str, error: impl ToString) -> SyncFailure {
        SyncFailure {
            user: user.to_owned(),
            mailbox: Some(mailbox.to_owned()),
            error: error.to_string(),
        }
    }
}

/// `user: error` or `user/mailbox: error`, the form `tern sync` prints after `FAILED`.
impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mailbox {
            Some(m) => write!(f, "{}/{}: {}", self.user, m, self.error),
            None => write!(f, "{}: {}", self.user, self.error),
        }
    }
}

impl ClientError {
    fn io(e: std::io::Error) -> ClientError {
        ClientError::Io(e.to_string())
    }

    fn wire(e: WireError) -> ClientError {
        match e {
            WireError::Io(e) => ClientError::Io(e.to_string()),
            WireError::Eof => ClientError::Io("the replica closed the connection".into()),
            other => ClientError::Protocol(other.to_string()),
        }
    }

    /// True when the session itself failed (worth reconnecting), not one user.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Connect(..) | ClientError::Io(_) | ClientError::Protocol(_)
        )
    }
}

/// What a sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncSummary {
    /// Users handled.
    pub users: usize,
    /// Mailboxes that needed an UPDATE, RENAME or DELETE.
    pub mailboxes: usize,
    /// Records sent (APPEND, STORE or EXPUNGE).
    pub records: usize,
    /// Message bytes sent as literals.
    pub message_bytes: u64,
    /// Wire totals.
    pub traffic: Traffic,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Conflicts resolved (split brain, UIDVALIDITY, GUID clashes).
    pub conflicts: usize,
    /// Users and mailboxes not brought in step (empty in a sync that returned `Ok`).
    pub failures: Vec<SyncFailure>,
}

impl SyncSummary {
    /// How many distinct users [`SyncSummary::failures`] names.
    pub fn failed_users(&self) -> usize {
        let users: std::collections::BTreeSet<&str> =
            self.failures.iter().map(|f| f.user.as_str()).collect();
        users.len()
    }
}

impl std::fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "synced {} users, {} mailboxes, {} records, {:.1} MB of messages in {:.2} s; \
             {} bytes sent, {} received, {} round trips",
            self.users,
            self.mailboxes,
            self.records,
            self.message_bytes as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.traffic.bytes_out,
            self.traffic.bytes_in,
            self.traffic.round_trips
        )?;
        if self.conflicts > 0 {
            write!(f, "; {} conflicts resolved", self.conflicts)?;
        }
        if !self.failures.is_empty() {
            write!(
                f,
                "; {} of {} users failed",
                self.failed_users(),
                self.users
            )?;
        }
        Ok(())
    }
}

impl std::ops::AddAssign for SyncSummary {
    fn add_assign(&mut self, o: SyncSummary) {
        self.users += o.users;
        self.mailboxes += o.mailboxes;
        self.records += o.records;
        self.message_bytes += o.message_bytes;
        self.traffic += o.traffic;
        self.conflicts += o.conflicts;
        self.failures.extend(o.failures);
    }
}

/// What to sync.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every user of the master (and removal of users only the replica has).
    All,
    /// These users, whole.
    Users(Vec<String>),
    /// One mailbox of one user, by name.
    Mailbox(String, String),
}

/// Most users in one batch of a `--all` sync.
const USERS_PER_BATCH: usize = 64;

/// Brings the replica in step with the master for `target`, over `parallel` sessions.
///
/// A user or mailbox that fails (a message unreadable on the master, an UPDATE the
/// replica refuses) is set aside and the others go on: the result is then
/// [`ClientError::Partial`], whose summary names each failure. Any other error means the
/// run stopped as a whole (no session, refused login or TLS, session lost): what was
/// acknowledged before stays on the replica, and a new run continues from there.
pub async fn sync(
    store: &Store,
    config: &ClientConfig,
    target: Target,
    parallel: usize,
) -> Result<SyncSummary, ClientError> {
    let started = Instant::now();
    let work: Vec<batch::Work> = match target {
        Target::All => {
            let mut users: Vec<String> = store.users()?.into_iter().map(|u| u.name).collect();
            // Users only the replica has are removed from it (UNUSER), except its
            // administrators (the replica's own accounts, such as the one we log in as).
            for (name, is_admin) in replica_users(config).await? {
                if !is_admin && name != config.user && !users.contains(&name) {
                    users.push(name);
                }
            }
            users.sort();
            users
                .into_iter()
                .map(|u| batch::Work {
                    user: u,
                    selection: Selection::All,
                })
                .collect()
        }
        Target::Users(users) => users
            .into_iter()
            .map(|u| batch::Work {
                user: u,
                selection: Selection::All,
            })
            .collect(),
        Target::Mailbox(user, name) => {
            let ids = store
                .mailbox(&user, &name)?
                .map(|m| vec![m.uniqueid])
                .unwrap_or_default();
            vec![batch::Work {
                user,
                selection: Selection::Some {
                    ids,
                    names: vec![name],
                },
            }]
        }
    };
    let parallel = parallel.max(1);
    let mut summary = if parallel == 1 || work.is_empty() {
        let mut conn = conn::Connection::open(config).await?;
        let mut summary = SyncSummary::default();
        for chunk in work.chunks(USERS_PER_BATCH) {
            let outcome = batch::sync_batch(&mut conn, store, chunk, None).await?;
            summary += outcome.summary;
            summary.failures.extend(outcome.failures);
        }
        summary.traffic = conn.logout().await;
        summary
    } else {
        parallel_sync(store, config, work, parallel).await?
    };
    summary.elapsed = started.elapsed();
    if summary.failures.is_empty() {
        Ok(summary)
    } else {
        Err(ClientError::Partial(Box::new(summary)))
    }
}

/// The replica's users, with their administrator bit (`USERS`).
async fn replica_users(config: &ClientConfig) -> Result<Vec<(String, bool)>, ClientError> {
    let mut conn = conn::Connection::open(config).await?;
    conn.queue(&crate::protocol::Request::Users).await?;
    let reply = conn.reply().await?;
    conn.logout().await;
    if !reply.ok() {
        return Err(ClientError::Protocol(format!(
            "USERS: {}",
            reply.describe()
        )));
    }
    reply
        .untagged
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, args)| {
            let user = crate::protocol::ReplicaUser::parse(args).map_err(ClientError::Protocol)?;
            Ok((user.name, user.admin == Some(true)))
        })
        .collect()
}

/// Splits the work over `parallel` sessions: first the user-level state of every user
/// (one session), then the mailboxes, spread by size so the sessions finish together.
/// A user whose first pass failed is left out of the second; the failures are in the
/// summary.
async fn parallel_sync(
    store: &Store,
    config: &ClientConfig,
    work: Vec<batch::Work>,
    parallel: usize,
) -> Result<SyncSummary, ClientError> {
    // Pass 1: users, deletions and conflicts, but no mailbox contents.
    let mut conn = conn::Connection::open(config).await?;
    let mut summary = SyncSummary::default();
    let mut shares: Vec<(u64, Vec<batch::Work>)> = (0..parallel).map(|_| (0, Vec::new())).collect();
    for chunk in work.chunks(USERS_PER_BATCH) {
        let outcome = batch::sync_users_only(&mut conn, store, chunk).await?;
        summary += outcome.summary;
        summary.failures.extend(outcome.failures);
    }
    let mut traffic = conn.logout().await;
    let set_aside: std::collections::HashSet<String> =
        summary.failures.iter().map(|f| f.user.clone()).collect();
    for w in work.iter().filter(|w| !set_aside.contains(&w.user)) {
        let boxes = match blocking(|| store.mailboxes(&w.user, false)) {
            Ok(b) => b,
            Err(e) => {
                summary
                    .failures
                    .push(SyncFailure::user(&w.user, ClientError::Store(e)));
                continue;
            }
        };
        let mut boxes: Vec<(u64, UniqueId)> = boxes
            .into_iter()
            .filter(|m| match &w.selection {
                Selection::All => true,
                Selection::Some { ids, names } => {
                    ids.contains(&m.uniqueid) || names.contains(&m.name)
                }
            })
            .map(|m| (m.bytes + 1, m.uniqueid))
            .collect();
        boxes.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (weight, id) in boxes {
            let lightest = shares
                .iter_mut()
                .min_by_key(|s| s.0)
                .expect("parallel >= 1");
            lightest.0 += weight;
            lightest.1.push(batch::Work {
                user: w.user.clone(),
                selection: Selection::Some {
                    ids: vec![id],
                    names: vec![],
                },
            });
        }
    }
    let mut tasks = Vec::new();
    for (_, share) in shares.into_iter().filter(|s| !s.1.is_empty()) {
        let (store, config) = (store.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = conn::Connection::open(&config).await?;
            let merged = batch::merge_by_user(share);
            let outcome = batch::sync_batch(&mut conn, &store, &merged, None).await?;
            let traffic = conn.logout().await;
            Ok::<_, ClientError>((outcome, traffic))
        }));
    }
    for t in tasks {
        let (outcome, t) = t
            .await
            .map_err(|e| ClientError::Protocol(format!("session task: {e}")))??;
        summary += outcome.summary;
        summary.failures.extend(outcome.failures);
        traffic += t;
    }
    summary.users = work.len();
    summary.traffic = traffic;
    Ok(summary)
}
