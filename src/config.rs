//! The configuration file: an embedded default, overridden key by key by `--config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

/// The configuration used when no `--config` is given; also the base a file overrides.
pub const DEFAULT_CONFIG: &str = r#"
data_dir = "./tern-data"
hostname = "localhost"

[listen]
imap = "127.0.0.1:1143"
pop3 = "127.0.0.1:1110"
lmtp = "127.0.0.1:2424"
nntp = "127.0.0.1:1119"
sync = "127.0.0.1:2005"

[lmtp]
max_message_size = 67108864
max_recipients = 1000
max_connections = 256
max_connections_per_ip = 128
duplicate_window = 259200
over_quota_permanent = false
idle_timeout = 300
data_timeout = 600

[sync]
max_connections = 64
max_connections_per_ip = 16
require_tls = false

[imap]
max_literal = 67108864
max_connections = 20000
max_connections_per_ip = 500
idle_timeout = 1860
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
    tls: Option<TlsFile>,
    replication: Option<ReplicationFile>,
    sync: Option<SyncFile>,
    /// Bytes all clients together may make the server hold (message bodies and
    /// literals in transit).
    client_memory: Option<u64>,
}

/// `[sync]`: the replica's sync listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncFile {
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    /// Refuse authentication without TLS even from loopback.
    require_tls: Option<bool>,
}

/// The sync listener's settings (`[sync]`).
#[derive(Debug, Clone)]
pub struct SyncListen {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub require_tls: bool,
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
    /// Upgrade with STARTTLS, trusting `ca_file` (PEM).
    pub starttls: Option<(PathBuf, String)>,
}

impl std::fmt::Debug for Replication {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("replica", &self.replica)
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .field("starttls", &self.starttls)
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
    /// IMAP over implicit TLS; needs `[tls]`.
    pub imaps: Option<String>,
    pub pop3: Option<String>,
    pub lmtp: Option<String>,
    /// LMTP on a Unix domain socket (a path).
    pub lmtp_socket: Option<PathBuf>,
    pub nntp: Option<String>,
    pub sync: Option<String>,
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
    /// `[tls]`, when given.
    pub tls: Option<TlsFiles>,
    /// `[replication]`, when given (on a master).
    pub replication: Option<Replication>,
    /// `[sync]`.
    pub sync: SyncListen,
    /// Bytes all clients together may make the server hold.
    pub client_memory: usize,
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
            tls: None,
            replication: None,
            sync: SyncListen {
                max_connections: 64,
                max_connections_per_ip: 16,
                require_tls: false,
            },
            client_memory: 256 * 1024 * 1024,
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
            let starttls = if r.starttls.unwrap_or(false) {
                let ca = r
                    .ca_file
                    .ok_or_else(|| anyhow!("replication.ca_file: needed with starttls = true"))?;
                let host = replica
                    .rsplit_once(':')
                    .map_or(replica.as_str(), |(h, _)| h)
                    .to_owned();
                Some((ca, r.server_name.unwrap_or(host)))
            } else {
                None
            };
            self.replication = Some(Replication {
                replica,
                user,
                password,
                starttls,
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
        if self.tls.is_none() {
            if self.listen.imaps.is_some() {
                bail!("listen.imaps: implicit TLS needs a [tls] section with cert and key");
            }
            if !self.imap.plaintext_auth {
                bail!(
                    "imap.plaintext_auth: false needs a [tls] section (cert and key), \
                     or no client could ever log in"
                );
            }
        }
        Ok(())
    }

    /// Reads `[tls]` into a rustls server configuration (ring provider, TLS 1.2 and
    /// 1.3); `None` without `[tls]`. Errors name the key whose file is at fault.
    pub fn tls_server_config(&self) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let Some(files) = &self.tls else {
            return Ok(None);
        };
        let (cert_path, key_path) = (files.cert.display(), files.key.display());
        let cert_pem =
            std::fs::read(&files.cert).with_context(|| format!("tls.cert: reading {cert_path}"))?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("tls.cert: {cert_path}: bad PEM: {e}"))?;
        if certs.is_empty() {
            bail!("tls.cert: {cert_path} holds no CERTIFICATE block");
        }
        let key_pem =
            std::fs::read(&files.key).with_context(|| format!("tls.key: reading {key_path}"))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| anyhow!("tls.key: {key_path}: no usable PEM private key: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("tls: setting up the TLS provider")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                anyhow!("tls.key: {key_path} does not go with tls.cert {cert_path}: {e}")
            })?;
        Ok(Some(Arc::new(config)))
    }

    /// The TCP listeners configured, as (key, address).
    pub fn listeners(&self) -> Vec<(&'static str, &str)> {
        let l = &self.listen;
        [
            ("listen.imap", &l.imap),
            ("listen.imaps", &l.imaps),
            ("listen.pop3", &l.pop3),
            ("listen.lmtp", &l.lmtp),
            ("listen.nntp", &l.nntp),
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
        store
    }
}

/// Parses a listener address, naming the key in the error.
pub fn parse_addr(key: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value.parse::<SocketAddr>().with_context(|| {
        format!("{key}: {value:?} is not a \"host:port\" address (e.g. \"127.0.0.1:2424\")")
    })
}

fn positive(key: &str, v: u64) -> anyhow::Result<u64> {
    if v == 0 {
        bail!("{key}: must be greater than 0");
    }
    Ok(v)
}

/// A rustls client configuration trusting the certificates in `ca` (PEM), for
/// `[replication] starttls`; errors name `replication.ca_file`.
pub fn replication_client_tls(
    ca: &Path,
    server_name: &str,
) -> anyhow::Result<tern_sync::client::ClientTls> {
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
    Ok(tern_sync::client::ClientTls {
        server_name: server_name.to_owned(),
        config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tls_keys_are_checked_and_loaded() {
        let c = Config::load(None).unwrap();
        assert!(c.tls.is_none() && c.listen.imaps.is_none() && c.imap.plaintext_auth);
        assert!(c.tls_server_config().unwrap().is_none());

        let e = format!(
            "{:#}",
            load_str("[listen]\nimaps = \"127.0.0.1:0\"\n").unwrap_err()
        );
        assert!(e.contains("listen.imaps"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[imap]\nplaintext_auth = false\n").unwrap_err()
        );
        assert!(e.contains("imap.plaintext_auth"), "{e}");
        let e = format!("{:#}", load_str("[tls]\ncert = \"c.pem\"\n").unwrap_err());
        assert!(e.contains("tls.key"), "{e}");
        let e = format!("{:#}", load_str("[tls]\ncrt = \"c.pem\"\n").unwrap_err());
        assert!(e.contains("crt"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let with_tls = |cert: &Path, key: &Path| {
            load_str(&format!(
                "[listen]\nimap = \"127.0.0.1:0\"\nimaps = \"127.0.0.1:0\"\n\
                 [imap]\nplaintext_auth = false\n[tls]\ncert = {cert:?}\nkey = {key:?}\n"
            ))
            .unwrap()
        };
        let c = with_tls(&cert, &key);
        assert!(c.listeners().contains(&("listen.imaps", "127.0.0.1:0")));
        assert!(!c.imap.plaintext_auth);
        assert!(c.tls_server_config().unwrap().is_some());

        // File errors come when the server starts, naming the key.
        let missing = dir.path().join("missing.pem");
        let e = format!(
            "{:#}",
            with_tls(&missing, &key).tls_server_config().unwrap_err()
        );
        assert!(e.contains("tls.cert") && e.contains("missing.pem"), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a key\n").unwrap();
        let e = format!(
            "{:#}",
            with_tls(&cert, &garbage).tls_server_config().unwrap_err()
        );
        assert!(e.contains("tls.key"), "{e}");
        let e = format!(
            "{:#}",
            with_tls(&garbage, &key).tls_server_config().unwrap_err()
        );
        assert!(e.contains("tls.cert"), "{e}");
        // A key that does not belong to the certificate.
        let other = rcgen::KeyPair::generate().unwrap();
        let other_key = dir.path().join("other.pem");
        std::fs::write(&other_key, other.serialize_pem()).unwrap();
        let e = format!(
            "{:#}",
            with_tls(&cert, &other_key).tls_server_config().unwrap_err()
        );
        assert!(e.contains("tls.key"), "{e}");
    }
}
