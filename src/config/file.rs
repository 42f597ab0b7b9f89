//! The configuration file as written (every key optional, unknown keys refused), and
//! how its keys override the configuration in force.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::*;

/// The file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
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

/// `[tls]`: the server's certificate chain and private key, PEM files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
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

impl Config {
    pub(super) fn apply(&mut self, file: FileConfig) -> anyhow::Result<()> {
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
}
