//! The configuration file: an embedded default, overridden key by key by `--config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

/// The configuration used when no `--config` is given; also the base a file overrides.
pub const DEFAULT_CONFIG: &str = r#"
data_dir = "./tern-data"
hostname = "localhost"

[listen]
imap = "127.0.0.1:1143"
imaps = "127.0.0.1:1993"
pop3 = "127.0.0.1:1110"
pop3s = "127.0.0.1:1995"
lmtp = "127.0.0.1:2424"
nntp = "127.0.0.1:1119"
nntps = "127.0.0.1:1563"
# sync = "127.0.0.1:2005"  (only on a replica: a server that takes replication is one)

[lmtp]
max_message_size = 67108864
max_recipients = 1000
max_connections = 256
max_connections_per_ip = 128
duplicate_window = 259200
over_quota_permanent = false
idle_timeout = 300
data_timeout = 600
# <postuser>+<mailbox>@ (or +<mailbox>@) delivers into a shared mailbox whose ACL
# grants p to anyone
postuser = "bb"

[sync]
max_connections = 64
max_connections_per_ip = 16
require_tls = false
chain = false

[nntp]
# newsgroup comp.lang.rust = shared mailbox news/comp.lang.rust (tern admin newsgroup)
prefix = "news"
max_connections = 1024
max_connections_per_ip = 64
idle_timeout = 600
max_article_size = 4194304

[pop3]
max_connections = 256
max_connections_per_ip = 32
preauth_timeout = 180
idle_timeout = 600

[imap]
max_literal = 67108864
max_connections = 20000
max_connections_per_ip = 500
preauth_timeout = 180
search_budget = 10000000
command_timeout = 120
idle_timeout = 1860

# `tern expire` with no --purge-* option. AGE: a number with s, m, h or d (0 needs --force
# on the command line). Expunged records are counted from their expunge, deleted
# mailboxes' tombstones from their deletion. Blobs no record refers to are collected,
# the duplicate-delivery table is kept for [lmtp] duplicate_window, and a change-log
# consumer (rolling replication) that has not acknowledged for consumer_max_idle is
# dropped and must do a full sync.
#
# schedule: when `tern serve` runs the same itself: "HH:MM" every day (UTC), an
# interval such as "6h", or "off" (then run `tern expire` from cron).
[expire]
purge_expunged = "7d"
purge_deleted = "7d"
consumer_max_idle = "30d"
schedule = "04:00"
"#;

/// The file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    hostname: Option<String>,
    default_partition: Option<String>,
    partitions: Option<BTreeMap<String, PathBuf>>,
    listen: Option<Listen>,
    lmtp: Option<LmtpFile>,
    imap: Option<ImapFile>,
    pop3: Option<Pop3File>,
    nntp: Option<NntpFile>,
    tls: Option<TlsFile>,
    replication: Option<ReplicationFile>,
    sync: Option<SyncFile>,
    store: Option<StoreFile>,
    expire: Option<ExpireFile>,
    /// Bytes all clients together may make the server hold (message bodies and
    /// literals in transit).
    client_memory: Option<u64>,
}

/// `[store]`: bounds of the full-text index.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    /// Bytes of free space the text indexer leaves on its filesystem.
    text_index_headroom: Option<u64>,
    /// Most bytes of text indexed for one user.
    text_index_user_cap: Option<u64>,
}

/// `[expire]`: ages for `tern expire` (see [`parse_age`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireFile {
    purge_expunged: Option<String>,
    purge_deleted: Option<String>,
    consumer_max_idle: Option<String>,
    schedule: Option<String>,
}

/// The `[expire]` section in force: what `tern expire` does with no `--purge-*` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireConfig {
    /// Purge expunged records this long after their expunge.
    pub purge_expunged: Duration,
    /// Remove deleted mailboxes' tombstones this long after their deletion.
    pub purge_deleted: Duration,
    /// Drop a change-log consumer that has not acknowledged for this long.
    pub consumer_max_idle: Duration,
    /// When `tern serve` runs the expire itself; `None`: never (cron runs `tern expire`).
    pub schedule: Option<Schedule>,
}

/// When `tern serve` runs `tern expire`'s work by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this many seconds after midnight UTC (`"04:00"`).
    Daily(u64),
    /// Every so often, counted from the start (`"6h"`).
    Every(Duration),
}

impl Schedule {
    /// Parses `"HH:MM"`, an age such as `"6h"` (see [`parse_age`]), or `"off"` (`None`).
    pub fn parse(text: &str) -> anyhow::Result<Option<Schedule>> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        if let Some((h, m)) = text.split_once(':') {
            let shaped = (1..=2).contains(&h.len()) && m.len() == 2;
            let (h, m) = match (h.parse::<u64>(), m.parse::<u64>()) {
                (Ok(h), Ok(m)) if shaped && h < 24 && m < 60 => (h, m),
                _ => bail!("{text:?}: a time of day is HH:MM (00:00 to 23:59, UTC)"),
            };
            return Ok(Some(Schedule::Daily(h * 3600 + m * 60)));
        }
        let every = parse_age(text)?;
        if every.is_zero() {
            bail!("{text:?}: an interval must be longer than 0 (or \"off\")");
        }
        Ok(Some(Schedule::Every(every)))
    }

    /// How long from `now` (Unix seconds) until the next run.
    pub fn wait_from(&self, now: u64) -> Duration {
        match *self {
            Schedule::Every(d) => d,
            Schedule::Daily(at) => {
                let into_day = now % 86400;
                let wait = (at + 86400 - into_day) % 86400;
                Duration::from_secs(if wait == 0 { 86400 } else { wait })
            }
        }
    }
}

/// `[sync]`: the replica's sync listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncFile {
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Refuse authentication without TLS even from loopback.
    require_tls: Option<bool>,
    /// Enter the writes taken by replication in this server's change log.
    chain: Option<bool>,
}

/// The sync listener's settings (`[sync]`).
#[derive(Debug, Clone)]
pub struct SyncListen {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub require_tls: bool,
    /// `chain = true`: writes received by replication are entered in this server's
    /// change log, so its own `tern sync --rolling` passes them on to a further replica.
    pub chain: bool,
}

/// `[replication]` on a master: where `tern sync` sends and how it authenticates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicationFile {
    replica: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    starttls: Option<bool>,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    tls_fingerprint: Option<String>,
    allow_plaintext: Option<bool>,
}

/// Where `tern sync` sends (`[replication]`).
#[derive(Clone)]
pub struct Replication {
    /// `host:port` of the replica's sync listener.
    pub replica: String,
    /// An administrator on the replica.
    pub user: String,
    /// Its password (from `password` or the first line of `password_file`).
    pub password: String,
    /// `starttls = true`: refuse a replica that does not offer STARTTLS. (TLS is used
    /// whenever offered, whatever this says.)
    pub require_tls: bool,
    /// How the replica's certificate is trusted.
    pub trust: ReplicaTrust,
    /// The name the certificate must carry with `ca_file` (default: the replica's host).
    pub server_name: String,
    /// Send the password in clear text to a replica off this host that offers no TLS.
    pub allow_plaintext: bool,
}

/// How `tern sync` trusts the replica's certificate (see `src/tls/trust.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaTrust {
    /// `ca_file`: it must chain to a CA in this PEM file.
    CaFile(PathBuf),
    /// `tls_fingerprint`: its SHA-256 must be this.
    Fingerprint([u8; 32]),
    /// Neither: the first certificate seen is remembered in the data directory.
    FirstUse,
}

impl std::fmt::Debug for Replication {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("replica", &self.replica)
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .field("require_tls", &self.require_tls)
            .field("trust", &self.trust)
            .field("server_name", &self.server_name)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// `[tls]`: the server's certificate chain and private key, PEM files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// The server's certificate chain and key (PEM), read when `tern serve` starts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImapFile {
    max_literal: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Seconds from connecting to a successful login.
    preauth_timeout: Option<u64>,
    /// Work units (about a microsecond each) one SEARCH, SORT or THREAD may use.
    search_budget: Option<u64>,
    /// Seconds of silence allowed in the middle of a command.
    command_timeout: Option<u64>,
    /// Seconds; RFC 3501 asks for at least 30 minutes.
    idle_timeout: Option<u64>,
    /// Allow LOGIN / AUTHENTICATE PLAIN on a connection that is not TLS.
    plaintext_auth: Option<bool>,
}

/// Listener addresses ("host:port"); a listener left out is off.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub imap: Option<String>,
    /// IMAP over implicit TLS (`[tls]`, or the generated certificate).
    pub imaps: Option<String>,
    pub pop3: Option<String>,
    /// POP3 over implicit TLS (`[tls]`, or the generated certificate).
    pub pop3s: Option<String>,
    pub lmtp: Option<String>,
    /// LMTP on a Unix domain socket (a path).
    pub lmtp_socket: Option<PathBuf>,
    pub nntp: Option<String>,
    /// NNTP over implicit TLS (`[tls]`, or the generated certificate).
    pub nntps: Option<String>,
    pub sync: Option<String>,
}

/// `[nntp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NntpFile {
    /// The shared mailbox newsgroups live under.
    prefix: Option<String>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Seconds; RFC 3977 asks for at least 3 minutes.
    idle_timeout: Option<u64>,
    /// Seconds for a whole POSTed or offered article.
    data_timeout: Option<u64>,
    /// Octets.
    max_article_size: Option<u64>,
    /// Allow AUTHINFO in clear text from loopback.
    plaintext_auth: Option<bool>,
}

/// `[pop3]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pop3File {
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Seconds to log in.
    preauth_timeout: Option<u64>,
    /// Seconds; RFC 1939 asks for at least 10 minutes.
    idle_timeout: Option<u64>,
    /// Allow USER/PASS and AUTH in clear text from loopback.
    plaintext_auth: Option<bool>,
    /// Seconds between two logins of one user (RFC 2449 LOGIN-DELAY); 0 = off.
    login_delay: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LmtpFile {
    max_message_size: Option<u64>,
    max_recipients: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Seconds.
    duplicate_window: Option<u64>,
    over_quota_permanent: Option<bool>,
    /// Seconds.
    idle_timeout: Option<u64>,
    /// Seconds for a whole DATA body.
    data_timeout: Option<u64>,
    /// The local part addressing shared mailboxes (`bb+news/list@`).
    postuser: Option<String>,
}

/// The configuration in force, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub hostname: String,
    pub default_partition: String,
    pub partitions: BTreeMap<String, PathBuf>,
    pub listen: Listen,
    pub lmtp: tern_lmtp::LmtpConfig,
    pub imap: tern_imap::ImapConfig,
    /// `[pop3]` (its TLS configuration is set by `tern serve`).
    pub pop3: tern_pop3::Pop3Config,
    /// `[nntp]` (its TLS configuration is set by `tern serve`).
    pub nntp: tern_nntp::NntpConfig,
    /// `[tls]`, when given; without it `tern serve` uses a self-signed certificate
    /// it generates in the data directory (`src/tls.rs`).
    pub tls: Option<TlsFiles>,
    /// `[replication]`, when given (on a master).
    pub replication: Option<Replication>,
    /// `[sync]`.
    pub sync: SyncListen,
    /// `[expire]`.
    pub expire: ExpireConfig,
    /// Bytes all clients together may make the server hold.
    pub client_memory: usize,
    /// `[store] text_index_headroom`; `None`: 5% of the filesystem or 1 GiB.
    pub text_index_headroom: Option<u64>,
    /// `[store] text_index_user_cap`; `None`: the store's default.
    pub text_index_user_cap: Option<u64>,
}

impl Config {
    /// The embedded defaults, overridden by `file` when given.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let base: FileConfig = toml::from_str(DEFAULT_CONFIG).context("embedded default config")?;
        let mut config = Config::from_file(base)?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let overrides: FileConfig = toml::from_str(&text)
                .with_context(|| format!("in config file {}", path.display()))?;
            config.apply(overrides)?;
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(file: FileConfig) -> anyhow::Result<Config> {
        let mut config = Config {
            data_dir: PathBuf::from("./tern-data"),
            hostname: "localhost".into(),
            default_partition: tern_store::DEFAULT_PARTITION.into(),
            partitions: BTreeMap::new(),
            listen: Listen::default(),
            lmtp: tern_lmtp::LmtpConfig::default(),
            imap: tern_imap::ImapConfig::default(),
            pop3: tern_pop3::Pop3Config::default(),
            nntp: tern_nntp::NntpConfig::default(),
            tls: None,
            replication: None,
            sync: SyncListen {
                max_connections: 64,
                max_connections_per_ip: 16,
                require_tls: false,
                chain: false,
            },
            client_memory: 256 * 1024 * 1024,
            expire: ExpireConfig {
                purge_expunged: Duration::from_secs(7 * 86400),
                purge_deleted: Duration::from_secs(7 * 86400),
                consumer_max_idle: Duration::from_secs(30 * 86400),
                schedule: None,
            },
            text_index_headroom: None,
            text_index_user_cap: None,
        };
        config.apply(file)?;
        Ok(config)
    }

    fn apply(&mut self, file: FileConfig) -> anyhow::Result<()> {
        if let Some(v) = file.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = file.hostname {
            self.hostname = v.clone();
            self.lmtp.hostname = v.clone();
            self.pop3.hostname = v.clone();
            self.nntp.hostname = v.clone();
            self.imap.hostname = v;
        }
        if let Some(v) = file.default_partition {
            self.default_partition = v;
        }
        if let Some(v) = file.partitions {
            self.partitions = v;
        }
        // A [listen] table replaces the whole set, so that a listener left out is off.
        if let Some(v) = file.listen {
            self.listen = v;
        }
        if let Some(l) = file.lmtp {
            let lmtp = &mut self.lmtp;
            if let Some(v) = l.max_message_size {
                lmtp.max_message_size = positive("lmtp.max_message_size", v)? as usize;
            }
            if let Some(v) = l.max_recipients {
                lmtp.max_recipients = positive("lmtp.max_recipients", v)? as usize;
            }
            if let Some(v) = l.max_connections {
                lmtp.max_connections = positive("lmtp.max_connections", v)? as usize;
            }
            if let Some(v) = l.duplicate_window {
                lmtp.duplicate_window = Duration::from_secs(v);
            }
            if let Some(v) = l.over_quota_permanent {
                lmtp.over_quota_permanent = v;
            }
            if let Some(v) = l.idle_timeout {
                lmtp.idle_timeout = Duration::from_secs(positive("lmtp.idle_timeout", v)?);
            }
            if let Some(v) = l.max_connections_per_ip {
                lmtp.max_connections_per_ip = v as usize;
            }
            if let Some(v) = l.data_timeout {
                lmtp.data_timeout = Duration::from_secs(positive("lmtp.data_timeout", v)?);
            }
            if let Some(v) = l.postuser {
                if v.is_empty() || v.contains(['+', '@']) || v.len() > 64 {
                    bail!("lmtp.postuser: {v:?} must be 1 to 64 characters without + or @");
                }
                lmtp.postuser = v;
            }
        }
        if let Some(v) = file.sync {
            if let Some(n) = v.max_connections {
                self.sync.max_connections = positive("sync.max_connections", n)? as usize;
            }
            if let Some(n) = v.max_connections_per_ip {
                self.sync.max_connections_per_ip = n as usize;
            }
            if let Some(b) = v.require_tls {
                self.sync.require_tls = b;
            }
            if let Some(b) = v.chain {
                self.sync.chain = b;
            }
        }
        if let Some(v) = file.expire {
            let age = |key: &str, v: &str| parse_age(v).with_context(|| format!("expire.{key}"));
            if let Some(a) = v.purge_expunged {
                self.expire.purge_expunged = age("purge_expunged", &a)?;
            }
            if let Some(a) = v.purge_deleted {
                self.expire.purge_deleted = age("purge_deleted", &a)?;
            }
            if let Some(a) = v.consumer_max_idle {
                self.expire.consumer_max_idle = age("consumer_max_idle", &a)?;
            }
            if let Some(a) = v.schedule {
                self.expire.schedule = Schedule::parse(&a).context("expire.schedule")?;
            }
        }
        if let Some(v) = file.store {
            if let Some(n) = v.text_index_headroom {
                self.text_index_headroom = Some(n);
            }
            if let Some(n) = v.text_index_user_cap {
                self.text_index_user_cap = Some(positive("store.text_index_user_cap", n)?);
            }
        }
        if let Some(v) = file.client_memory {
            self.client_memory = positive("client_memory", v)? as usize;
        }
        if let Some(i) = file.imap {
            let imap = &mut self.imap;
            if let Some(v) = i.max_literal {
                imap.max_literal = positive("imap.max_literal", v)? as usize;
            }
            if let Some(v) = i.max_connections {
                imap.max_connections = positive("imap.max_connections", v)? as usize;
            }
            if let Some(v) = i.max_connections_per_ip {
                imap.max_connections_per_ip = v as usize;
            }
            if let Some(v) = i.preauth_timeout {
                imap.preauth_timeout = Duration::from_secs(positive("imap.preauth_timeout", v)?);
            }
            if let Some(v) = i.search_budget {
                imap.search_budget = positive("imap.search_budget", v)?;
            }
            if let Some(v) = i.command_timeout {
                imap.command_timeout = Duration::from_secs(positive("imap.command_timeout", v)?);
            }
            if let Some(v) = i.idle_timeout {
                if v < 1800 {
                    bail!("imap.idle_timeout: {v} is under the 1800 seconds RFC 3501 requires");
                }
                imap.idle_timeout = Duration::from_secs(v);
            }
            if let Some(v) = i.plaintext_auth {
                imap.plaintext_auth = v;
            }
        }
        if let Some(p) = file.pop3 {
            let pop3 = &mut self.pop3;
            if let Some(v) = p.max_connections {
                pop3.max_connections = positive("pop3.max_connections", v)? as usize;
            }
            if let Some(v) = p.max_connections_per_ip {
                pop3.max_connections_per_ip = v as usize;
            }
            if let Some(v) = p.preauth_timeout {
                pop3.preauth_timeout = Duration::from_secs(positive("pop3.preauth_timeout", v)?);
            }
            if let Some(v) = p.idle_timeout {
                if v < 600 {
                    bail!("pop3.idle_timeout: {v} is under the 600 seconds RFC 1939 requires");
                }
                pop3.idle_timeout = Duration::from_secs(v);
            }
            if let Some(v) = p.plaintext_auth {
                pop3.plaintext_auth = v;
            }
            if let Some(v) = p.login_delay {
                pop3.login_delay = (v > 0).then(|| Duration::from_secs(v));
            }
        }
        if let Some(n) = file.nntp {
            let nntp = &mut self.nntp;
            if let Some(v) = n.prefix {
                tern_store::names::normalize_mailbox(&v)
                    .map_err(|e| anyhow!("nntp.prefix: {e}"))?;
                nntp.prefix = v;
            }
            if let Some(v) = n.max_connections {
                nntp.max_connections = positive("nntp.max_connections", v)? as usize;
            }
            if let Some(v) = n.max_connections_per_ip {
                nntp.max_connections_per_ip = v as usize;
            }
            if let Some(v) = n.idle_timeout {
                if v < 180 {
                    bail!("nntp.idle_timeout: {v} is under the 180 seconds RFC 3977 requires");
                }
                nntp.idle_timeout = Duration::from_secs(v);
            }
            if let Some(v) = n.data_timeout {
                nntp.data_timeout = Duration::from_secs(positive("nntp.data_timeout", v)?);
            }
            if let Some(v) = n.max_article_size {
                nntp.max_article_size = positive("nntp.max_article_size", v)? as usize;
            }
            if let Some(v) = n.plaintext_auth {
                nntp.plaintext_auth = v;
            }
        }
        if let Some(r) = file.replication {
            let replica = r.replica.ok_or_else(|| {
                anyhow!("replication.replica: missing (host:port of the replica's sync listener)")
            })?;
            let user = r.user.ok_or_else(|| {
                anyhow!("replication.user: missing (an administrator on the replica)")
            })?;
            let password = match (r.password, r.password_file) {
                (Some(p), None) => p,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!("replication.password_file: reading {}", path.display())
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                _ => bail!("replication: give exactly one of password and password_file"),
            };
            let trust = match (r.ca_file, r.tls_fingerprint) {
                (Some(_), Some(_)) => {
                    bail!("replication: give at most one of ca_file and tls_fingerprint")
                }
                (Some(ca), None) => ReplicaTrust::CaFile(ca),
                (None, Some(fp)) => ReplicaTrust::Fingerprint(
                    crate::tls::parse_fingerprint(&fp).ok_or_else(|| {
                        anyhow!(
                            "replication.tls_fingerprint: {fp:?} is not a SHA-256 fingerprint \
                             (64 hex digits, colons allowed)"
                        )
                    })?,
                ),
                (None, None) => ReplicaTrust::FirstUse,
            };
            let require_tls = r.starttls.unwrap_or(false);
            let allow_plaintext = r.allow_plaintext.unwrap_or(false);
            if require_tls && allow_plaintext {
                bail!("replication.allow_plaintext: true contradicts starttls = true");
            }
            // "[::1]:2005" -> "::1", "host:2005" -> "host".
            let host = replica
                .rsplit_once(':')
                .map_or(replica.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            self.replication = Some(Replication {
                replica,
                user,
                password,
                require_tls,
                trust,
                server_name: r.server_name.unwrap_or(host),
                allow_plaintext,
            });
        }
        if let Some(t) = file.tls {
            let Some(cert) = t.cert else {
                bail!("tls.cert: missing (the [tls] section needs both cert and key)");
            };
            let Some(key) = t.key else {
                bail!("tls.key: missing (the [tls] section needs both cert and key)");
            };
            self.tls = Some(TlsFiles { cert, key });
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        for (key, value) in self.listeners() {
            parse_addr(key, value)?;
        }
        if self.hostname.is_empty()
            || self
                .hostname
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("hostname: {:?} is not a host name", self.hostname);
        }
        if !self.partitions.is_empty() && !self.partitions.contains_key(&self.default_partition) {
            bail!(
                "default_partition: {:?} is not one of [partitions]",
                self.default_partition
            );
        }
        Ok(())
    }

    /// The TCP listeners configured, as (key, address).
    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        let l = &self.listen;
        [
            ("listen.imap", &l.imap),
            ("listen.imaps", &l.imaps),
            ("listen.pop3", &l.pop3),
            ("listen.pop3s", &l.pop3s),
            ("listen.lmtp", &l.lmtp),
            ("listen.nntp", &l.nntp),
            ("listen.nntps", &l.nntps),
            ("listen.sync", &l.sync),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// The store's configuration.
    pub fn store(&self) -> tern_store::StoreConfig {
        let mut store = tern_store::StoreConfig::new(&self.data_dir);
        store.partitions = self.partitions.clone();
        store.default_partition = self.default_partition.clone();
        store.text_index_headroom = self.text_index_headroom;
        store.log_replicated = self.sync.chain;
        if let Some(cap) = self.text_index_user_cap {
            store.text_index_user_cap = cap;
        }
        store
    }
}

/// Parses a listener address, naming the key in the error.
pub fn parse_addr(key: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value.parse::<SocketAddr>().with_context(|| {
        format!("{key}: {value:?} is not a \"host:port\" address (e.g. \"127.0.0.1:2424\")")
    })
}

/// Parses an age: a whole number followed by `s`, `m`, `h` or `d` (`90m`, `12h`, `7d`);
/// a bare number is seconds, and `0` is zero.
pub fn parse_age(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow!("{text:?}: an age is a number and a unit (90m, 12h, 7d)"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("{text:?}: unknown unit {unit:?} (s, m, h or d)"),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| anyhow!("{text:?}: too long"))
}

fn positive(key: &str, v: u64) -> anyhow::Result<u64> {
    if v == 0 {
        bail!("{key}: must be greater than 0");
    }
    Ok(v)
}

/// Opens a store with tern's content indexer (`tern-message`'s): every command that
/// opens a store opens it here, so none can store a message without its summary and
/// Message-ID.
pub fn open_store(
    config: tern_store::StoreConfig,
) -> Result<tern_store::Store, tern_store::StoreError> {
    tern_store::Store::open(config, std::sync::Arc::new(tern_message::MessageIndexer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_schedules_parse_and_say_when_the_next_run_is() {
        assert_eq!(Schedule::parse("off").unwrap(), None);
        assert_eq!(
            Schedule::parse("04:00").unwrap(),
            Some(Schedule::Daily(4 * 3600))
        );
        assert_eq!(
            Schedule::parse("6h").unwrap(),
            Some(Schedule::Every(Duration::from_secs(6 * 3600)))
        );
        for bad in ["24:00", "4:60", "0", "x", "04:000"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        let daily = Schedule::Daily(4 * 3600);
        // 03:00 -> 1 h; 04:00 exactly -> a day; 05:00 -> 23 h.
        assert_eq!(daily.wait_from(3 * 3600), Duration::from_secs(3600));
        assert_eq!(
            daily.wait_from(86400 + 4 * 3600),
            Duration::from_secs(86400)
        );
        assert_eq!(daily.wait_from(5 * 3600), Duration::from_secs(23 * 3600));
        assert_eq!(
            Config::load(None).unwrap().expire.schedule,
            Some(Schedule::Daily(4 * 3600))
        );
    }

    fn load_str(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    #[test]
    fn defaults_have_every_listener_on_loopback() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.listen.lmtp.as_deref(), Some("127.0.0.1:2424"));
        assert_eq!(c.listen.imap.as_deref(), Some("127.0.0.1:1143"));
        assert_eq!(c.data_dir, PathBuf::from("./tern-data"));
    }

    #[test]
    fn chaining_is_off_unless_asked_for() {
        assert!(!Config::load(None).unwrap().store().log_replicated);
        let c = load_str("[sync]\nchain = true\n").unwrap();
        assert!(c.sync.chain && c.store().log_replicated);
    }

    #[test]
    fn listen_table_replaces_the_default_set() {
        let c = load_str("data_dir = \"/tmp/x\"\n[listen]\nlmtp = \"127.0.0.1:0\"\n").unwrap();
        assert_eq!(c.listeners(), vec![("listen.lmtp", "127.0.0.1:0")]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.lmtp.max_recipients, 1000);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = format!("{:#}", load_str("[listen]\nimapp = \"x\"\n").unwrap_err());
        assert!(e.contains("imapp"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[listen]\nlmtp = \"nonsense\"\n").unwrap_err()
        );
        assert!(e.contains("listen.lmtp"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[lmtp]\nmax_recipients = 0\n").unwrap_err()
        );
        assert!(e.contains("lmtp.max_recipients"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[lmtp]\nidle_timeout = \"x\"\n").unwrap_err()
        );
        assert!(e.contains("idle_timeout"), "{e}");
    }

    #[test]
    fn tls_keys_are_checked() {
        // TLS is always available (a generated certificate without [tls]).
        let c = Config::load(None).unwrap();
        assert!(c.tls.is_none() && c.imap.plaintext_auth);
        assert_eq!(c.listen.imaps.as_deref(), Some("127.0.0.1:1993"));
        assert_eq!(c.listen.pop3s.as_deref(), Some("127.0.0.1:1995"));
        let c = load_str("[pop3]\nplaintext_auth = false\nmax_connections = 3\n").unwrap();
        assert!(!c.pop3.plaintext_auth && c.pop3.max_connections == 3);
        let e = format!("{:#}", load_str("[pop3]\nidle_timeout = 60\n").unwrap_err());
        assert!(e.contains("pop3.idle_timeout"), "{e}");
        let c = load_str("[listen]\nimaps = \"127.0.0.1:0\"\n[imap]\nplaintext_auth = false\n")
            .unwrap();
        assert!(c.listeners().contains(&("listen.imaps", "127.0.0.1:0")));
        assert!(!c.imap.plaintext_auth);

        let e = format!("{:#}", load_str("[tls]\ncert = \"c.pem\"\n").unwrap_err());
        assert!(e.contains("tls.key"), "{e}");
        let e = format!("{:#}", load_str("[tls]\ncrt = \"c.pem\"\n").unwrap_err());
        assert!(e.contains("crt"), "{e}");
        let c = load_str("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
        let files = c.tls.unwrap();
        assert_eq!((files.cert, files.key), ("c.pem".into(), "k.pem".into()));
    }

    #[test]
    fn replication_trust_and_plaintext_keys() {
        let base = "[replication]\nreplica = \"[::1]:2005\"\nuser = \"repl\"\npassword = \"p\"\n";
        let r = load_str(base).unwrap().replication.unwrap();
        assert_eq!(r.trust, ReplicaTrust::FirstUse);
        assert!(!r.require_tls && !r.allow_plaintext);
        assert_eq!(r.server_name, "::1");

        let fp = "ab".repeat(32);
        let r = load_str(&format!(
            "{base}tls_fingerprint = \"{fp}\"\nstarttls = true\n"
        ))
        .unwrap()
        .replication
        .unwrap();
        assert_eq!(r.trust, ReplicaTrust::Fingerprint([0xAB; 32]));
        assert!(r.require_tls);

        let r = load_str(&format!(
            "{base}ca_file = \"ca.pem\"\nserver_name = \"r.example\"\n"
        ))
        .unwrap()
        .replication
        .unwrap();
        assert_eq!(r.trust, ReplicaTrust::CaFile("ca.pem".into()));
        assert_eq!(r.server_name, "r.example");

        for (extra, key) in [
            (
                "tls_fingerprint = \"AB:CD\"\n",
                "replication.tls_fingerprint",
            ),
            (
                "ca_file = \"ca.pem\"\ntls_fingerprint = \"AB\"\n",
                "ca_file and tls_fingerprint",
            ),
            (
                "starttls = true\nallow_plaintext = true\n",
                "replication.allow_plaintext",
            ),
        ] {
            let e = format!("{:#}", load_str(&format!("{base}{extra}")).unwrap_err());
            assert!(e.contains(key), "{extra}: {e}");
        }
    }

    #[test]
    fn ages_parse_with_their_units_and_the_expire_defaults_are_a_week() {
        assert_eq!(parse_age("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(43200));
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(604800));
        for bad in ["", "d", "7w", "-1d", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
        let config = Config::load(None).unwrap();
        assert_eq!(config.expire.purge_expunged, Duration::from_secs(7 * 86400));
        assert_eq!(
            config.expire.consumer_max_idle,
            Duration::from_secs(30 * 86400)
        );
    }
}
