//! The configuration file: an embedded default, overridden key by key by `--config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

mod file;
mod schedule;

pub use schedule::{ExpireConfig, Schedule};

use file::FileConfig;

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

/// The server's certificate chain and key (PEM), read when `tern serve` starts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
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
mod tests;
