//! The server's TLS certificate: configured (`[tls]`) or generated on first start,
//! checked before use, and reloaded on SIGHUP without a restart.
//!
//! Guarantees:
//! - `tern serve` always has a certificate. Without `[tls]` it uses a self-signed one
//!   kept in `<data_dir>/tls/` (`cert.pem`, and `key.pem` with mode 0600), generated
//!   the first time and kept across restarts, so clients that accepted it once keep
//!   accepting it.
//! - A certificate that is missing, unreadable, expired, or does not go with its key
//!   stops the start, and the error names the key (`tls.cert` / `tls.key`) and file.
//! - Every listener shares one `rustls::ServerConfig` whose certificate comes from a
//!   [`ResolvesServerCert`] holding the current pair: a reload (SIGHUP) swaps the pair
//!   for new handshakes; connections already up keep theirs. A reload that fails the
//!   same checks is logged and the certificate in use stays.

mod der;
pub mod trust;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{anyhow, bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::Config;

/// Years a generated certificate is valid. Self-signed certificates are trusted by
/// pinning or by a client's exception, never through a CA's rules (which cap public
/// certificates at about a year); a short life would only break those exceptions.
const SELF_SIGNED_YEARS: i64 = 10;

/// Days before expiry from which every (re)load warns.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The server's TLS: the shared rustls configuration and where its certificate comes from.
pub struct ServerTls {
    source: Source,
    resolver: Arc<Resolver>,
    config: Arc<rustls::ServerConfig>,
}

/// The certificate and key files, and how errors name them.
struct Source {
    cert: PathBuf,
    key: PathBuf,
    /// True for the generated self-signed pair (no `[tls]`).
    generated: bool,
}

impl Source {
    fn cert_name(&self) -> &'static str {
        if self.generated {
            "self-signed certificate"
        } else {
            "tls.cert"
        }
    }

    fn key_name(&self) -> &'static str {
        if self.generated {
            "self-signed certificate's key"
        } else {
            "tls.key"
        }
    }
}

/// A certificate pair read and checked.
struct Loaded {
    key: Arc<CertifiedKey>,
    fingerprint: [u8; 32],
    validity: der::Validity,
}

impl ServerTls {
    /// Loads `[tls]`, or without it the self-signed pair in the data directory
    /// (generating it the first time); logs the certificate's fingerprint and expiry.
    pub fn start(config: &Config) -> anyhow::Result<Arc<ServerTls>> {
        let source = match &config.tls {
            Some(files) => Source {
                cert: files.cert.clone(),
                key: files.key.clone(),
                generated: false,
            },
            None => self_signed(&config.data_dir, &config.hostname)?,
        };
        ServerTls::from_source(source)
    }

    fn from_source(source: Source) -> anyhow::Result<Arc<ServerTls>> {
        let loaded = load(&source, now())?;
        log_loaded(&source, &loaded, "in use");
        let resolver = Arc::new(Resolver {
            current: RwLock::new(loaded.key),
        });
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("tls: setting up the TLS provider")?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        Ok(Arc::new(ServerTls {
            source,
            resolver,
            config: Arc::new(server_config),
        }))
    }

    /// The configuration every TLS listener shares.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// Reads and checks the files again and, if they pass, serves the new pair to new
    /// handshakes; otherwise the pair in use stays. The error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = load(&self.source, now())?;
        log_loaded(&self.source, &loaded, "reloaded");
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = loaded.key;
        Ok(())
    }

    /// Reloads the certificate on every SIGHUP until the process ends. Installed before
    /// the server says it is ready, so a SIGHUP never meets the default action (exit).
    pub fn reload_on_sighup(self: &Arc<Self>) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
        let tls = self.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let tls = tls.clone();
                match tokio::task::spawn_blocking(move || tls.reload()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(
                        "SIGHUP: {e:#}; the certificate in use stays until a reload succeeds"
                    ),
                    Err(e) => tracing::error!("SIGHUP: certificate reload failed: {e}"),
                }
            }
        });
        Ok(())
    }
}

/// Hands every handshake the current pair.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The crypto provider of every TLS configuration of tern (ring: no C crypto build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// SHA-256 of a DER certificate: what `openssl x509 -fingerprint -sha256` prints.
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A fingerprint as colon-separated upper-case hex (`AB:CD:...`), as OpenSSL prints it.
pub fn format_fingerprint(fp: &[u8; 32]) -> String {
    fp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses a SHA-256 fingerprint written as 64 hex digits, with or without colons, in
/// either case; `None` otherwise.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn log_loaded(source: &Source, loaded: &Loaded, what: &str) {
    let expires = tern_message::date::format_utc(loaded.validity.not_after);
    tracing::info!(
        "TLS certificate {what}: {} (SHA-256 fingerprint {}), valid until {expires}",
        source.cert.display(),
        format_fingerprint(&loaded.fingerprint)
    );
    let left = loaded.validity.not_after - now();
    if left < EXPIRY_WARNING_DAYS * 86_400 {
        tracing::warn!(
            "{}: {} expires in {} days ({expires}); replace it and send SIGHUP",
            source.cert_name(),
            source.cert.display(),
            left / 86_400
        );
    }
}

/// Reads a certificate chain and key and checks them: parseable, the key goes with the
/// first certificate, and that certificate has not expired at `now`.
fn load(source: &Source, now: i64) -> anyhow::Result<Loaded> {
    let (cert_name, key_name) = (source.cert_name(), source.key_name());
    let (cert_path, key_path) = (source.cert.display(), source.key.display());
    let cert_pem =
        std::fs::read(&source.cert).with_context(|| format!("{cert_name}: reading {cert_path}"))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{cert_name}: {cert_path}: bad PEM: {e}"))?;
    let Some(first) = certs.first() else {
        bail!("{cert_name}: {cert_path} holds no CERTIFICATE block");
    };
    let validity = der::validity(first)
        .map_err(|e| anyhow!("{cert_name}: {cert_path}: unreadable certificate: {e}"))?;
    if validity.not_after < now {
        bail!(
            "{cert_name}: {cert_path}: the certificate expired on {}{}",
            tern_message::date::format_utc(validity.not_after),
            if source.generated {
                " (remove cert.pem and key.pem there to have a new one generated)"
            } else {
                ""
            }
        );
    }
    let fingerprint = fingerprint(first);
    let key_pem =
        std::fs::read(&source.key).with_context(|| format!("{key_name}: reading {key_path}"))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow!("{key_name}: {key_path}: no usable PEM private key: {e}"))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow!("{key_name}: {key_path}: unsupported private key: {e}"))?;
    let key = CertifiedKey::new(certs, signing_key);
    match key.keys_match() {
        // A key type whose public half rustls cannot derive: nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => bail!("{key_name}: {key_path} does not go with {cert_name} {cert_path}: {e}"),
    }
    Ok(Loaded {
        key: Arc::new(key),
        fingerprint,
        validity,
    })
}

/// The self-signed pair in `<data_dir>/tls/`, generated when `cert.pem` is absent.
/// `cert.pem` is written last, so its presence marks a complete pair: a `key.pem`
/// alone is what an interrupted generation left, and is replaced.
fn self_signed(data_dir: &Path, hostname: &str) -> anyhow::Result<Source> {
    let dir = tls_dir(data_dir)?;
    let source = Source {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        generated: true,
    };
    let exists = source
        .cert
        .try_exists()
        .with_context(|| format!("checking {}", source.cert.display()))?;
    if !exists {
        generate(&source, hostname, now())?;
        tracing::info!(
            "generated a self-signed TLS certificate for {hostname} in {} \
             (configure [tls] cert and key to use your own)",
            dir.display()
        );
    }
    Ok(source)
}

/// `<data_dir>/tls/`, created (mode 0700) when missing.
pub fn tls_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("tls");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Writes a new ECDSA P-256 key and a certificate for `hostname`, `localhost`,
/// 127.0.0.1 and ::1, valid from yesterday (clocks differ) for
/// [`SELF_SIGNED_YEARS`] years.
fn generate(source: &Source, hostname: &str, now: i64) -> anyhow::Result<()> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose,
    };
    let mut names = vec![hostname.to_owned()];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(extra)) {
            names.push(extra.to_owned());
        }
    }
    let context = || format!("generating a self-signed certificate for hostname {hostname:?}");
    let mut params = CertificateParams::new(names).with_context(context)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, hostname);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let today = now.div_euclid(86_400);
    let (y, m, d) = tern_message::date::civil_from_days(today - 1);
    params.not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    // The same day SELF_SIGNED_YEARS on (the 28th for a 29 February).
    let (y, m, d) = tern_message::date::civil_from_days(today);
    params.not_after =
        rcgen::date_time_ymd((y + SELF_SIGNED_YEARS) as i32, m as u8, d.min(28) as u8);
    let key = KeyPair::generate().with_context(context)?;
    let cert = params.self_signed(&key).with_context(context)?;
    write_atomically(&source.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&source.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one,
/// never a part: a temporary file (created with `mode`) written, synced, renamed over
/// `path`, and the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    // One temporary name per process: two `tern sync` runs may record the same
    // replica at once, and must not rename each other's half-written file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        // A leftover from a crash may have another mode; create afresh.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; never widened it.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(dir: &Path, cert: &str, key: &str) -> Source {
        Source {
            cert: dir.join(cert),
            key: dir.join(key),
            generated: false,
        }
    }

    fn write_pair(dir: &Path, name: &str, not_after: (i32, u8, u8)) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn error(source: &Source) -> String {
        format!("{:#}", load(source, now()).err().expect("load must fail"))
    }

    #[test]
    fn a_good_pair_loads_and_bad_ones_name_the_key_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_pair(dir, "good", (2090, 1, 1));
        write_pair(dir, "old", (2020, 1, 1));
        write_pair(dir, "other", (2090, 1, 1));
        std::fs::write(dir.join("garbage"), "not PEM at all\n").unwrap();

        let good = load(&configured(dir, "good.crt", "good.key"), now()).unwrap();
        assert_eq!(
            tern_message::date::format_utc(good.validity.not_after),
            "2090-01-01 00:00:00 UTC"
        );

        let e = error(&configured(dir, "missing.crt", "good.key"));
        assert!(e.contains("tls.cert") && e.contains("missing.crt"), "{e}");
        let e = error(&configured(dir, "good.crt", "missing.key"));
        assert!(e.contains("tls.key") && e.contains("missing.key"), "{e}");
        let e = error(&configured(dir, "garbage", "good.key"));
        assert!(e.contains("tls.cert") && e.contains("garbage"), "{e}");
        let e = error(&configured(dir, "good.crt", "garbage"));
        assert!(e.contains("tls.key") && e.contains("garbage"), "{e}");
        let e = error(&configured(dir, "old.crt", "old.key"));
        assert!(
            e.contains("tls.cert") && e.contains("expired on 2020-01-01"),
            "{e}"
        );
        let e = error(&configured(dir, "good.crt", "other.key"));
        assert!(
            e.contains("tls.key") && e.contains("other.key") && e.contains("does not go with"),
            "{e}"
        );
    }

    #[test]
    fn generated_pair_is_kept_private_and_valid_for_ten_years() {
        let tmp = tempfile::tempdir().unwrap();
        let source = self_signed(tmp.path(), "mail.example.org").unwrap();
        let mode = std::fs::metadata(&source.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = load(&source, now()).unwrap();
        let years = (first.validity.not_after - now()) as f64 / (365.25 * 86_400.0);
        assert!((9.9..10.1).contains(&years), "{years}");
        // Kept: a second start reads the same certificate.
        let again = self_signed(tmp.path(), "mail.example.org").unwrap();
        assert_eq!(load(&again, now()).unwrap().fingerprint, first.fingerprint);
        // A key left alone by an interrupted generation is replaced with a whole pair.
        std::fs::remove_file(&source.cert).unwrap();
        let redone = self_signed(tmp.path(), "mail.example.org").unwrap();
        assert_ne!(load(&redone, now()).unwrap().fingerprint, first.fingerprint);
    }

    #[test]
    fn reload_swaps_a_good_pair_and_keeps_the_old_one_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write_pair(dir, "a", (2090, 1, 1));
        write_pair(dir, "b", (2090, 1, 1));
        let served = |tls: &ServerTls| {
            let key = tls.resolver.current.read().unwrap().clone();
            fingerprint(key.end_entity_cert().unwrap())
        };
        let source = configured(dir, "live.crt", "live.key");
        std::fs::copy(dir.join("a.crt"), &source.cert).unwrap();
        std::fs::copy(dir.join("a.key"), &source.key).unwrap();
        let tls = ServerTls::from_source(source).unwrap();
        let a = load(&configured(dir, "a.crt", "a.key"), now()).unwrap();
        assert_eq!(served(&tls), a.fingerprint);
        // A new certificate with the old key: refused, the old pair stays.
        std::fs::copy(dir.join("b.crt"), &tls.source.cert).unwrap();
        let e = format!("{:#}", tls.reload().unwrap_err());
        assert!(e.contains("tls.key"), "{e}");
        assert_eq!(served(&tls), a.fingerprint);
        std::fs::copy(dir.join("b.key"), &tls.source.key).unwrap();
        tls.reload().unwrap();
        let b = load(&configured(dir, "b.crt", "b.key"), now()).unwrap();
        assert_eq!(served(&tls), b.fingerprint);
    }

    #[test]
    fn fingerprints_print_and_parse() {
        let fp = fingerprint(b"x");
        let text = format_fingerprint(&fp);
        assert_eq!(text.len(), 95);
        assert_eq!(parse_fingerprint(&text), Some(fp));
        assert_eq!(
            parse_fingerprint(&text.replace(':', "").to_lowercase()),
            Some(fp)
        );
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
