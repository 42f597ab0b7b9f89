//! STLS (RFC 2595) and the implicit-TLS port with a certificate made at test time:
//! a rustls client, Python's poplib (stls) and curl's pop3s:// (skipped without curl).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tern_pop3::Pop3Config;

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test CA, and a server certificate for 127.0.0.1 and localhost signed by it.
fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tern test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server: Arc::new(server),
    }
}

fn tls_server(pki: &Pki) -> Server {
    start_with(Pop3Config {
        tls: Some(pki.server.clone()),
        // As from another host: passwords only once TLS is up.
        plaintext_auth: false,
        auth_failure_delay: Duration::from_millis(10),
        ..Pop3Config::default()
    })
}

fn client_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn capa<S: std::io::Read + Write>(c: &mut Client<S>) -> Vec<String> {
    assert_eq!(c.cmd("CAPA"), "+OK Capability list follows");
    c.multi()
}

#[test]
fn stls_then_login_and_capa_changes() {
    let pki = pki();
    let server = tls_server(&pki);
    server.deliver("alice", &message("a", 2));
    let mut c = server.connect();
    let before = capa(&mut c);
    assert!(before.contains(&"STLS".to_owned()), "{before:?}");
    assert!(!before.iter().any(|l| l == "USER" || l.starts_with("SASL")));
    // A command pipelined behind STLS in clear text is never executed.
    c.reader
        .get_mut()
        .write_all(b"STLS\r\nUSER alice\r\n")
        .unwrap();
    assert_eq!(c.line(), "+OK Begin TLS negotiation");
    assert!(c.reader.buffer().is_empty());
    let tcp = c.reader.into_inner();
    let conn = rustls::ClientConnection::new(
        client_config(&pki),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut c = Client {
        reader: std::io::BufReader::new(tls),
    };
    let after = capa(&mut c);
    assert!(!after.contains(&"STLS".to_owned()), "{after:?}");
    assert!(after.contains(&"USER".to_owned()));
    assert!(after.contains(&"SASL PLAIN LOGIN".to_owned()));
    assert_eq!(
        c.cmd("PASS pw"),
        "-ERR Send USER first",
        "the injected USER was dropped"
    );
    assert_eq!(c.cmd("STLS"), "-ERR Already using TLS");
    c.login("alice");
    c.send("RETR 1");
    assert!(c.line().starts_with("+OK"));
    assert_eq!(c.body(), message("a", 2).as_bytes());
    assert!(c.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn implicit_tls_port() {
    let pki = pki();
    let server = tls_server(&pki);
    server.deliver("alice", &message("a", 1));
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(&pki),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut c = Client::new(rustls::StreamOwned::new(conn, tcp));
    let caps = capa(&mut c);
    assert!(!caps.contains(&"STLS".to_owned()));
    c.login("alice");
    assert_eq!(c.cmd("STAT"), format!("+OK 1 {}", message("a", 1).len()));
    assert!(c.cmd("QUIT").starts_with("+OK"));
}

#[test]
fn poplib_stls_and_curl_pop3s() {
    let pki = pki();
    let server = tls_server(&pki);
    let m = message("a", 3);
    server.deliver("alice", &m);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let script = r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3("localhost", int(sys.argv[1]), timeout=10)
p.stls(context=ctx)
p.user("alice")
p.pass_("pw")
print(p.stat())
p.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.addr.port().to_string()])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("(1, {})", m.len())
    );

    let curl_ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !curl_ok {
        eprintln!("SKIPPED: curl is not installed (pop3s part)");
        return;
    }
    let port = server.tls_addr.unwrap().port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-u", "alice:pw", "--cacert"])
        .arg(&ca)
        .arg(format!("pop3s://localhost:{port}/1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), m);
}
