//! How `tern sync` trusts its replica's certificate (`[replication]`):
//!
//! 1. `ca_file`: the certificate must chain to a CA in that file and carry
//!    `server_name` (by default the host of `replica`).
//! 2. otherwise `tls_fingerprint`: the certificate's SHA-256 must be that one.
//! 3. otherwise trust on first use: the first certificate seen is remembered in
//!    `<data_dir>/tls/known_replicas` (one `replica fingerprint` line per replica), and
//!    a different one later is refused. After a deliberate change on the replica,
//!    delete its line (or pin the new fingerprint) and sync again.
//!
//! Once a certificate is expected (cases 1 and 2, or 3 after the first use), a
//! replica that stops offering STARTTLS is refused, as with `starttls = true`: a
//! missing STARTTLS is then a downgrade, not a reason to send the password in clear.
//!
//! In cases 2 and 3 the handshake still proves the replica holds the certificate's key
//! (its signature is checked); only the identity comes from the fingerprint. The check
//! runs before the password is sent.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tern_sync::client::{ClientTls, PeerCheck};

use super::{fingerprint, format_fingerprint, parse_fingerprint, provider};
use crate::config::{ReplicaTrust, Replication};

/// Name of the trust-on-first-use file in `<data_dir>/tls/`.
pub const KNOWN_REPLICAS: &str = "known_replicas";

/// The sync client's configuration for `[replication]`, with the master's data
/// directory (for trust on first use).
pub fn client_config(
    repl: &Replication,
    data_dir: &Path,
) -> anyhow::Result<tern_sync::ClientConfig> {
    let tls = match &repl.trust {
        ReplicaTrust::CaFile(ca) => ClientTls {
            server_name: repl.server_name.clone(),
            config: ca_config(ca)?,
            check: None,
        },
        ReplicaTrust::Fingerprint(pin) => ClientTls {
            server_name: repl.server_name.clone(),
            config: fingerprint_config()?,
            check: Some(Arc::new(Pinned(*pin))),
        },
        ReplicaTrust::FirstUse => ClientTls {
            server_name: repl.server_name.clone(),
            config: fingerprint_config()?,
            check: Some(Arc::new(FirstUse {
                file: super::tls_dir(data_dir)?.join(KNOWN_REPLICAS),
                replica: repl.replica.clone(),
                lock: Mutex::new(()),
            })),
        },
    };
    // Trust configured for a certificate, or one remembered, means the replica is
    // expected to offer TLS: its absence now is a downgrade (or a mistake), not a
    // reason to send the password in clear text.
    let expects_tls = match &repl.trust {
        ReplicaTrust::FirstUse => {
            let file = super::tls_dir(data_dir)?.join(KNOWN_REPLICAS);
            let text = read_known(&file).map_err(anyhow::Error::msg)?;
            entry(&text, &repl.replica).is_some()
        }
        ReplicaTrust::CaFile(_) | ReplicaTrust::Fingerprint(_) => true,
    };
    Ok(tern_sync::ClientConfig {
        replica: repl.replica.clone(),
        user: repl.user.clone(),
        password: repl.password.clone(),
        tls: Some(tls),
        require_tls: repl.require_tls || expects_tls,
        allow_plaintext: repl.allow_plaintext,
    })
}

/// Trusts the certificates in `ca` (PEM); errors name `replication.ca_file`.
fn ca_config(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca)
        .with_context(|| format!("replication.ca_file: reading {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.with_context(|| format!("replication.ca_file: {}: bad PEM", ca.display()))?)
            .context("replication.ca_file: unusable certificate")?;
    }
    if roots.is_empty() {
        anyhow::bail!(
            "replication.ca_file: {} holds no CERTIFICATE block",
            ca.display()
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("tls: setting up the TLS provider")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A configuration whose verifier checks the handshake's signatures but leaves the
/// certificate's identity to a [`PeerCheck`].
fn fingerprint_config() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("tls: setting up the TLS provider")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(IdentityByFingerprint(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any certificate during the handshake (the fingerprint is checked right
/// after it, before anything is sent), but only with a valid signature by its key.
#[derive(Debug)]
struct IdentityByFingerprint(Arc<CryptoProvider>);

impl ServerCertVerifier for IdentityByFingerprint {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `[replication] tls_fingerprint`.
struct Pinned([u8; 32]);

impl PeerCheck for Pinned {
    fn check(&self, end_entity: &[u8]) -> Result<(), String> {
        let seen = fingerprint(end_entity);
        if seen == self.0 {
            return Ok(());
        }
        Err(format!(
            "the replica's certificate has SHA-256 fingerprint {}, not the \
             replication.tls_fingerprint {}",
            format_fingerprint(&seen),
            format_fingerprint(&self.0)
        ))
    }
}

/// Trust on first use, remembered in `file`.
struct FirstUse {
    file: PathBuf,
    replica: String,
    /// Sessions of one `tern sync --parallel` check and record one at a time.
    lock: Mutex<()>,
}

impl PeerCheck for FirstUse {
    fn check(&self, end_entity: &[u8]) -> Result<(), String> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = fingerprint(end_entity);
        let text = read_known(&self.file)?;
        match entry(&text, &self.replica) {
            Some(Some(fp)) if parse_fingerprint(fp) == Some(seen) => Ok(()),
            Some(fp) => Err(format!(
                "the replica's certificate changed: {} now presents SHA-256 fingerprint {}, \
                 but {} was remembered in {}. If the replica's certificate was replaced on \
                 purpose, delete that line (or set replication.tls_fingerprint) and sync again",
                self.replica,
                format_fingerprint(&seen),
                fp.unwrap_or("(unreadable)"),
                self.file.display()
            )),
            None => {
                let mut text = text;
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("{} {}\n", self.replica, format_fingerprint(&seen)));
                super::write_atomically(&self.file, text.as_bytes(), 0o644)
                    .map_err(|e| format!("{e:#}"))?;
                tracing::warn!(
                    "trusting replica {} on first use: SHA-256 fingerprint {} remembered in {}",
                    self.replica,
                    format_fingerprint(&seen),
                    self.file.display()
                );
                Ok(())
            }
        }
    }
}

/// The known-replicas file's text ("" when there is none yet).
fn read_known(file: &Path) -> Result<String, String> {
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("reading {}: {e}", file.display())),
    }
}

/// The line for `replica`: `Some(fingerprint)` (`Some(None)` when the line has none).
fn entry<'t>(text: &'t str, replica: &str) -> Option<Option<&'t str>> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(replica)).then(|| words.next())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_remembers_then_refuses_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(KNOWN_REPLICAS);
        std::fs::write(&file, "# comment\nother:1 AA:BB").unwrap();
        let check = FirstUse {
            file: file.clone(),
            replica: "replica:2005".into(),
            lock: Mutex::new(()),
        };
        check.check(b"first").unwrap();
        check.check(b"first").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# comment\nother:1 AA:BB\nreplica:2005 "),
            "{text}"
        );
        let e = check.check(b"second").unwrap_err();
        assert!(
            e.contains("changed") && e.contains(&format_fingerprint(&fingerprint(b"second"))),
            "{e}"
        );
        assert!(e.contains(&file.display().to_string()), "{e}");
        // Another replica is remembered on its own.
        let other = FirstUse {
            file,
            replica: "replica:2006".into(),
            lock: Mutex::new(()),
        };
        other.check(b"second").unwrap();
        check.check(b"first").unwrap();
    }

    #[test]
    fn tls_is_required_once_a_certificate_is_expected() {
        let tmp = tempfile::tempdir().unwrap();
        let mut repl = Replication {
            replica: "replica:2005".into(),
            user: "repl".into(),
            password: "p".into(),
            require_tls: false,
            trust: ReplicaTrust::FirstUse,
            server_name: "replica".into(),
            allow_plaintext: false,
        };
        // Not yet seen: TLS when offered, clear text to loopback otherwise.
        assert!(!client_config(&repl, tmp.path()).unwrap().require_tls);
        let config = client_config(&repl, tmp.path()).unwrap();
        let check = config.tls.unwrap().check.unwrap();
        check.check(b"cert").unwrap();
        // Seen once: a replica that stops offering TLS is refused.
        assert!(client_config(&repl, tmp.path()).unwrap().require_tls);
        repl.replica = "other:2005".into();
        assert!(!client_config(&repl, tmp.path()).unwrap().require_tls);
        repl.trust = ReplicaTrust::Fingerprint(fingerprint(b"cert"));
        assert!(client_config(&repl, tmp.path()).unwrap().require_tls);
    }

    #[test]
    fn a_pin_accepts_only_its_certificate() {
        let pin = Pinned(fingerprint(b"cert"));
        pin.check(b"cert").unwrap();
        let e = pin.check(b"other").unwrap_err();
        assert!(e.contains("replication.tls_fingerprint"), "{e}");
    }
}
