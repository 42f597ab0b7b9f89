//! TLS out of the box: the certificate `tern serve` generates and keeps, the checks a
//! configured certificate must pass before the server starts, and SIGHUP reloading it.
//! What a client sees is read with Python's ssl module (the peer certificate's SHA-256).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// SHA-256 of the certificate an implicit-TLS client is shown at `addr`, as
/// colon-separated upper-case hex (how tern logs it).
fn served_fingerprint(addr: SocketAddr) -> String {
    let script = r#"
import hashlib, socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30) as raw:
    with ctx.wrap_socket(raw) as tls:
        greeting = tls.recv(200)
        assert greeting.startswith(b"* OK"), greeting
        der = tls.getpeercert(binary_form=True)
        print(":".join("%02X" % b for b in hashlib.sha256(der).digest()))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "TLS client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The fingerprint a log line names ("... SHA-256 fingerprint AB:CD:...)").
fn logged_fingerprint(lines: &[String], what: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(&format!("TLS certificate {what}")))
        .unwrap_or_else(|| panic!("no 'TLS certificate {what}' line in {lines:#?}"));
    fingerprint_in(line)
}

fn fingerprint_in(line: &str) -> String {
    let after = line
        .split("SHA-256 fingerprint ")
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {line}"));
    after
        .split(|c: char| !(c.is_ascii_hexdigit() || c == ':'))
        .next()
        .unwrap()
        .to_owned()
}

const IMAPS: &str = "imaps = \"127.0.0.1:0\"";

#[test]
fn first_start_generates_a_certificate_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TernServer::start_with(tmp.path(), "", IMAPS);
    let tls_dir = server.data_dir().join("tls");
    let key_mode = std::fs::metadata(tls_dir.join("key.pem"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode) & 0o777,
        0o600
    );
    assert!(
        server
            .startup_log
            .iter()
            .any(|l| l.contains("generated a self-signed TLS certificate")),
        "{:#?}",
        server.startup_log
    );
    let logged = logged_fingerprint(&server.startup_log, "in use");
    assert_eq!(logged.len(), 95, "{logged}");
    let expiry_line = server
        .startup_log
        .iter()
        .find(|l| l.contains("valid until"))
        .unwrap();
    assert!(expiry_line.contains(" UTC"), "{expiry_line}");
    assert_eq!(served_fingerprint(server.imaps.unwrap()), logged);

    // The clear IMAP port offers STARTTLS.
    let mut imap = TcpStream::connect(server.imap).unwrap();
    imap.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(imap.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    imap.write_all(b"a CAPABILITY\r\n").unwrap();
    let mut caps = String::new();
    reader.read_line(&mut caps).unwrap();
    assert!(caps.contains(" STARTTLS"), "{greeting}{caps}");
    drop(reader);
    drop(imap);

    // A restart keeps the certificate: clients that accepted it keep working.
    assert!(server.terminate().success());
    let again = TernServer::start_with(tmp.path(), "", IMAPS);
    assert!(!again
        .startup_log
        .iter()
        .any(|l| l.contains("generated a self-signed")));
    assert_eq!(logged_fingerprint(&again.startup_log, "in use"), logged);
    assert_eq!(served_fingerprint(again.imaps.unwrap()), logged);
}

/// A certificate (PEM) and its key (PEM), valid until `not_after` (y, m, d).
fn pair(not_after: (i32, u8, u8)) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_pair(dir: &Path, name: &str, pem: &(String, String)) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &pem.0).unwrap();
    std::fs::write(&key, &pem.1).unwrap();
    (cert, key)
}

fn tls_section(cert: &Path, key: &Path) -> String {
    format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n")
}

/// `tern serve` on a config that must not start: its output, once it has exited.
fn serve_must_fail(root: &Path, extra: &str) -> Output {
    let config = write_config_with(root, extra, IMAPS);
    let mut child = Command::new(TERN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tern serve started with {extra}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "tern serve succeeded with {extra}");
    out
}

#[test]
fn a_missing_expired_or_mismatched_certificate_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (good_cert, good_key) = write_pair(dir, "good", &pair((2090, 1, 1)));
    let (old_cert, old_key) = write_pair(dir, "old", &pair((2021, 1, 1)));
    let (_, other_key) = write_pair(dir, "other", &pair((2090, 1, 1)));
    let missing = dir.join("missing.crt");
    let cases = [
        (tls_section(&missing, &good_key), "tls.cert", "missing.crt"),
        (tls_section(&good_cert, &missing), "tls.key", "missing.crt"),
        (
            tls_section(&old_cert, &old_key),
            "tls.cert",
            "expired on 2021-01-01",
        ),
        (tls_section(&good_cert, &other_key), "tls.key", "other.key"),
    ];
    for (i, (extra, key, detail)) in cases.iter().enumerate() {
        let root = dir.join(format!("case{i}"));
        std::fs::create_dir(&root).unwrap();
        let out = serve_must_fail(&root, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("tern: error: ") && stderr.contains(key) && stderr.contains(detail),
            "{extra}: {stderr}"
        );
        // Refused before anything was opened: no store was created.
        assert!(!root.join("data").join("index.sqlite3").exists(), "{extra}");
    }
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_is_not_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    let (cert, key) = write_pair(&pki, "live", &pair((2090, 1, 1)));
    let root = tmp.path().join("server");
    std::fs::create_dir(&root).unwrap();
    let server = TernServer::start_with(&root, &tls_section(&cert, &key), IMAPS);
    let imaps = server.imaps.unwrap();
    let first = logged_fingerprint(&server.startup_log, "in use");
    assert_eq!(served_fingerprint(imaps), first);

    // A new pair in place of the old one, then SIGHUP.
    let (key_tmp, cert_tmp) = (pki.join("new.key"), pki.join("new.crt"));
    let new = pair((2091, 1, 1));
    std::fs::write(&cert_tmp, &new.0).unwrap();
    std::fs::write(&key_tmp, &new.1).unwrap();
    std::fs::rename(&key_tmp, &key).unwrap();
    std::fs::rename(&cert_tmp, &cert).unwrap();
    server.signal("HUP");
    let line = server
        .wait_for_log("TLS certificate reloaded", Duration::from_secs(30))
        .expect("no reload logged after SIGHUP");
    let second = fingerprint_in(&line);
    assert_ne!(second, first);
    assert_eq!(served_fingerprint(imaps), second);

    // A broken file: logged, and the certificate in use stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.signal("HUP");
    let line = server
        .wait_for_log("SIGHUP:", Duration::from_secs(30))
        .expect("no error logged for a bad certificate");
    assert!(line.contains("tls.cert"), "{line}");
    assert_eq!(served_fingerprint(imaps), second);
}
