//! STARTTLS, implicit TLS and COMPRESS=DEFLATE against an in-process listener, with a
//! rustls client trusting a certificate made at test time, a flate2 compressor, and
//! Python's imaplib as a real client.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tern_imap::ImapConfig;

/// A test CA, and a server certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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

impl Pki {
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

fn config(pki: &Pki, plaintext_auth: bool) -> ImapConfig {
    ImapConfig {
        auth_failure_delay: Duration::from_millis(10),
        tls: Some(pki.server.clone()),
        plaintext_auth,
        ..ImapConfig::default()
    }
}

trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

/// One stream (TCP or TLS) read and written through separate layers (flate2).
#[derive(Clone)]
struct Shared(Arc<Mutex<Box<dyn Duplex>>>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().read(buf)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

/// A client that can switch to TLS and to DEFLATE mid-connection.
struct Conn {
    tcp: TcpStream,
    stream: Shared,
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
    next_tag: u32,
}

impl Conn {
    fn tcp(addr: SocketAddr) -> TcpStream {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp
    }

    fn over(tcp: TcpStream, stream: Box<dyn Duplex>) -> Conn {
        let stream = Shared(Arc::new(Mutex::new(stream)));
        Conn {
            tcp,
            reader: BufReader::new(Box::new(stream.clone())),
            writer: Box::new(stream.clone()),
            stream,
            next_tag: 1,
        }
    }

    /// A clear-text connection; returns it and the greeting.
    fn plain(addr: SocketAddr) -> (Conn, String) {
        let tcp = Conn::tcp(addr);
        let mut c = Conn::over(tcp.try_clone().unwrap(), Box::new(tcp));
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        (c, greeting)
    }

    fn tls_stream(tcp: &TcpStream, pki: &Pki) -> Box<dyn Duplex> {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(pki.client(), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp.try_clone().unwrap());
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        Box::new(tls)
    }

    /// An implicit-TLS connection; returns it and the greeting.
    fn implicit_tls(addr: SocketAddr, pki: &Pki) -> (Conn, String) {
        let tcp = Conn::tcp(addr);
        let stream = Conn::tls_stream(&tcp, pki);
        let mut c = Conn::over(tcp, stream);
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        (c, greeting)
    }

    /// The TLS handshake on this connection (after `OK` to STARTTLS).
    fn start_tls(&mut self, pki: &Pki) {
        assert!(
            self.reader.buffer().is_empty(),
            "data after the STARTTLS OK"
        );
        let stream = Conn::tls_stream(&self.tcp, pki);
        *self = Conn::over(self.tcp.try_clone().unwrap(), stream);
    }

    /// DEFLATE both ways (after `OK` to COMPRESS); `pending` is sent compressed at once.
    fn start_deflate(&mut self) {
        assert!(
            self.reader.buffer().is_empty(),
            "data after the COMPRESS OK"
        );
        let leftover = self.reader.buffer().to_vec();
        self.reader = BufReader::new(Box::new(Inflater::new(leftover, self.stream.clone())));
        self.writer = Box::new(flate2::write::DeflateEncoder::new(
            self.stream.clone(),
            flate2::Compression::default(),
        ));
    }

    /// Writes and flushes (a sync flush when compressing).
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// One response line, with any literals it announces read into it (as bytes).
    fn line_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).unwrap();
            assert!(
                n > 0,
                "connection closed after {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&line);
            let trimmed = line.strip_suffix(b"\r\n").unwrap_or(&line);
            if let Some(open) = trimmed.iter().rposition(|&b| b == b'{') {
                if trimmed.last() == Some(&b'}') {
                    if let Ok(len) = std::str::from_utf8(&trimmed[open + 1..trimmed.len() - 1])
                        .unwrap_or("x")
                        .parse::<usize>()
                    {
                        let mut lit = vec![0u8; len];
                        self.reader.read_exact(&mut lit).unwrap();
                        out.extend_from_slice(&lit);
                        continue;
                    }
                }
            }
            if out.ends_with(b"\r\n") {
                out.truncate(out.len() - 2);
            }
            return out;
        }
    }

    fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.line_bytes()).into_owned()
    }

    fn tag(&mut self) -> String {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    fn cmd(&mut self, command: &str) -> Vec<String> {
        let tag = self.tag();
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until_tagged(&tag)
    }

    /// `cmd`, asserting a tagged OK; returns the tagged line's text after the status.
    fn ok(&mut self, command: &str) -> Vec<String> {
        let r = self.cmd(command);
        assert_eq!(status(&r), "OK", "{command}: {r:?}");
        r
    }

    /// The capabilities from a CAPABILITY command.
    fn capabilities(&mut self) -> Vec<String> {
        let r = self.ok("CAPABILITY");
        let line = r
            .iter()
            .find(|l| l.starts_with("* CAPABILITY "))
            .expect("CAPABILITY response");
        words(&line["* CAPABILITY ".len()..])
    }

    /// FETCH 1 BODY.PEEK[] in the selected mailbox: the literal's bytes.
    fn fetch_body(&mut self) -> Vec<u8> {
        let tag = self.tag();
        self.send(format!("{tag} FETCH 1 BODY.PEEK[]\r\n").as_bytes());
        let mut body = None;
        loop {
            let line = self.line_bytes();
            if line.starts_with(format!("{tag} ").as_bytes()) {
                assert!(line.starts_with(format!("{tag} OK").as_bytes()));
                return body.expect("no FETCH response");
            }
            if line.starts_with(b"* 1 FETCH") {
                let open = line.iter().position(|&b| b == b'{').unwrap();
                let close = open + line[open..].iter().position(|&b| b == b'}').unwrap();
                let len: usize = std::str::from_utf8(&line[open + 1..close])
                    .unwrap()
                    .parse()
                    .unwrap();
                let start = close + 3;
                body = Some(line[start..start + len].to_vec());
            }
        }
    }
}

fn status(lines: &[String]) -> &str {
    lines.last().unwrap().split(' ').nth(1).unwrap_or("")
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

fn has(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c == cap)
}

/// The capabilities in the greeting's [CAPABILITY ...] code.
fn greeting_caps(greeting: &str) -> Vec<String> {
    let start = greeting.find("[CAPABILITY ").unwrap() + "[CAPABILITY ".len();
    let end = start + greeting[start..].find(']').unwrap();
    words(&greeting[start..end])
}

/// A message big enough to take several TLS records and DEFLATE blocks.
fn big_message() -> String {
    let mut m = String::from("From: bob@example.org\r\nSubject: big\r\n\r\n");
    for i in 0..4000 {
        m.push_str(&format!("line {i} of a long body, {}\r\n", i * 7919 % 1000));
    }
    m
}

#[test]
fn starttls_then_login_select_fetch() {
    let pki = pki();
    let server = start_with(config(&pki, false));
    let message = big_message();
    server.deliver("alice", "INBOX", &message);

    let (mut c, greeting) = Conn::plain(server.addr);
    let caps = greeting_caps(&greeting);
    assert!(
        has(&caps, "STARTTLS") && has(&caps, "LOGINDISABLED"),
        "{caps:?}"
    );
    assert!(!has(&caps, "AUTH=PLAIN"), "{caps:?}");
    let caps = c.capabilities();
    assert!(
        has(&caps, "STARTTLS") && has(&caps, "LOGINDISABLED"),
        "{caps:?}"
    );
    assert!(!has(&caps, "AUTH=PLAIN"), "{caps:?}");

    // Passwords are refused in clear text.
    let r = c.cmd("LOGIN alice pw");
    assert!(r.last().unwrap().contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    let creds = base64::engine::general_purpose::STANDARD.encode(b"\0alice\0pw");
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {creds}"));
    assert!(r.last().unwrap().contains("NO [PRIVACYREQUIRED]"), "{r:?}");
    assert_eq!(status(&c.cmd("COMPRESS DEFLATE")), "NO");

    let r = c.ok("STARTTLS");
    assert!(r.last().unwrap().ends_with("OK Begin TLS negotiation now"));
    c.start_tls(&pki);

    let caps = c.capabilities();
    assert!(!has(&caps, "STARTTLS"), "{caps:?}");
    assert!(!has(&caps, "LOGINDISABLED"), "{caps:?}");
    assert!(has(&caps, "AUTH=PLAIN"), "{caps:?}");
    assert_eq!(status(&c.cmd("STARTTLS")), "BAD");

    let r = c.ok("LOGIN alice pw");
    assert!(r.last().unwrap().contains("COMPRESS=DEFLATE"), "{r:?}");
    let r = c.ok("SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    assert_eq!(c.fetch_body(), message.as_bytes());
    assert_eq!(status(&c.cmd("STARTTLS")), "BAD", "no STARTTLS after login");

    // DEFLATE on top of TLS.
    c.ok("COMPRESS DEFLATE");
    c.start_deflate();
    assert_eq!(c.fetch_body(), message.as_bytes());
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(
        r.last().unwrap().contains("NO [COMPRESSIONACTIVE]"),
        "{r:?}"
    );
    c.ok("LOGOUT");
}

#[test]
fn bytes_pipelined_after_starttls_are_not_executed() {
    let pki = pki();
    // Clear-text logins allowed, so an injected LOGIN would work if it were executed.
    let server = start_with(config(&pki, true));
    let (mut c, _) = Conn::plain(server.addr);
    c.send(b"a STARTTLS\r\nb LOGIN alice pw\r\nc CREATE Injected\r\n");
    let r = c.until_tagged("a");
    assert_eq!(r, vec!["a OK Begin TLS negotiation now".to_owned()]);
    c.start_tls(&pki);
    // The next response is to the next command: b and c were dropped.
    c.send(b"d CAPABILITY\r\n");
    let first = c.line();
    assert!(first.starts_with("* CAPABILITY "), "{first}");
    let caps = words(&first["* CAPABILITY ".len()..]);
    assert!(
        has(&caps, "AUTH=PLAIN") && !has(&caps, "STARTTLS"),
        "{caps:?}"
    );
    assert!(!has(&caps, "COMPRESS=DEFLATE"), "not logged in: {caps:?}");
    assert_eq!(c.line(), "d OK CAPABILITY completed");
    assert_eq!(status(&c.cmd("SELECT INBOX")), "NO", "not logged in");
    assert!(server.store.mailbox("alice", "Injected").unwrap().is_none());
    c.ok("LOGIN alice pw");
}

#[test]
fn a_failed_handshake_closes_only_that_connection() {
    let pki = pki();
    let server = start_with(config(&pki, true));
    let (mut c, _) = Conn::plain(server.addr);
    c.ok("STARTTLS");
    c.send(b"this is not a TLS ClientHello\r\n");
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(
        !rest.starts_with(b"*"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    // The server is still there.
    let (mut d, _) = Conn::plain(server.addr);
    d.ok("LOGIN alice pw");
}

#[test]
fn implicit_tls_listener() {
    let pki = pki();
    let server = start_with(config(&pki, false));
    let imaps = server.spawn_imaps(config(&pki, false));
    server.deliver("alice", "INBOX", "Subject: hi\r\n\r\nover TLS\r\n");
    let (mut c, greeting) = Conn::implicit_tls(imaps, &pki);
    let caps = greeting_caps(&greeting);
    assert!(
        !has(&caps, "STARTTLS") && !has(&caps, "LOGINDISABLED"),
        "{caps:?}"
    );
    assert!(has(&caps, "AUTH=PLAIN"), "{caps:?}");
    c.ok("LOGIN alice pw");
    c.ok("SELECT INBOX");
    assert_eq!(c.fetch_body(), b"Subject: hi\r\n\r\nover TLS\r\n");
    c.ok("LOGOUT");
}

#[test]
fn compress_deflate_with_a_flate2_client() {
    let server = start();
    let message = big_message();
    server.deliver("alice", "INBOX", &message);
    let (mut c, _) = Conn::plain(server.addr);
    assert_eq!(status(&c.cmd("COMPRESS DEFLATE")), "NO", "before login");
    c.ok("LOGIN alice pw");
    assert!(has(&c.capabilities(), "COMPRESS=DEFLATE"));
    assert!(!has(&c.capabilities(), "STARTTLS"), "no TLS configured");
    assert_eq!(status(&c.cmd("COMPRESS LZ4")), "BAD");

    // The client compresses from the byte after its command: the first compressed
    // command travels in the same packet as COMPRESS itself.
    let mut compressed = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
    compressed.write_all(b"p1 SELECT INBOX\r\n").unwrap();
    compressed.flush().unwrap();
    let first = compressed.get_ref().clone();
    let mut packet = b"z COMPRESS DEFLATE\r\n".to_vec();
    packet.extend_from_slice(&first);
    c.writer.write_all(&packet).unwrap();
    c.writer.flush().unwrap();
    assert_eq!(c.until_tagged("z"), vec!["z OK DEFLATE active".to_owned()]);
    // Go on with the same compressor state.
    let leftover = c.reader.buffer().to_vec();
    c.reader = BufReader::new(Box::new(Inflater::new(leftover, c.stream.clone())));
    c.writer = Box::new(compressed_writer(compressed, c.stream.clone()));
    let r = c.until_tagged("p1");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");

    assert_eq!(c.fetch_body(), message.as_bytes());
    // A synchronizing literal: the continuation must get through the compressor.
    let appended = "Subject: appended\r\n\r\nthrough DEFLATE\r\n";
    c.send(format!("a1 APPEND INBOX {{{}}}\r\n", appended.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(format!("{appended}\r\n").as_bytes());
    let r = c.until_tagged("a1");
    assert!(r.last().unwrap().starts_with("a1 OK"), "{r:?}");
    c.ok("NOOP");
    let r = c.ok("FETCH 2 BODY.PEEK[]");
    assert!(
        r[..r.len() - 1].join("\n").contains("through DEFLATE"),
        "{r:?}"
    );
    let r = c.cmd("COMPRESS DEFLATE");
    assert!(
        r.last().unwrap().contains("NO [COMPRESSIONACTIVE]"),
        "{r:?}"
    );
    // IDLE's continuation and DONE through the compressor too.
    c.send(b"i IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    c.send(b"DONE\r\n");
    assert_eq!(c.until_tagged("i").last().unwrap(), "i OK IDLE terminated");
    c.ok("LOGOUT");
}

/// Raw DEFLATE in, bytes out, returning what is decompressed as soon as it is
/// (`flate2::read::DeflateDecoder` waits for more input before handing over output it
/// already holds, which stalls an interactive protocol).
struct Inflater {
    source: BufReader<std::io::Chain<std::io::Cursor<Vec<u8>>, Shared>>,
    inflate: flate2::Decompress,
}

impl Inflater {
    /// `leftover`: compressed bytes the plain reader had already buffered (the server
    /// may answer the first compressed command before the client switches).
    fn new(leftover: Vec<u8>, stream: Shared) -> Inflater {
        Inflater {
            source: BufReader::new(std::io::Cursor::new(leftover).chain(stream)),
            inflate: flate2::Decompress::new(false),
        }
    }
}

impl Read for Inflater {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            self.inflate
                .decompress(self.source.buffer(), dst, flate2::FlushDecompress::None)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let consumed = (self.inflate.total_in() - before_in) as usize;
            let produced = (self.inflate.total_out() - before_out) as usize;
            self.source.consume(consumed);
            if produced > 0 {
                return Ok(produced);
            }
            if consumed == 0 && self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
        }
    }
}

/// A flate2 encoder that already wrote into a buffer, continued on `stream`.
fn compressed_writer(
    encoder: flate2::write::DeflateEncoder<Vec<u8>>,
    stream: Shared,
) -> impl Write + Send {
    struct Redirect {
        encoder: flate2::write::DeflateEncoder<Vec<u8>>,
        stream: Shared,
    }
    impl Write for Redirect {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.encoder.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.encoder.flush()?;
            let out = std::mem::take(self.encoder.get_mut());
            self.stream.write_all(&out)?;
            self.stream.flush()
        }
    }
    let mut encoder = encoder;
    encoder.get_mut().clear();
    Redirect { encoder, stream }
}

const IMAPLIB_SCRIPT: &str = r#"
import imaplib, ssl, sys
port, imaps_port, cafile, expected = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)

m = imaplib.IMAP4("127.0.0.1", port)
assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities, m.capabilities
try:
    m.login("alice", "pw")
    raise SystemExit("imaplib logged in despite LOGINDISABLED")
except imaplib.IMAP4.error:
    pass
typ, _ = m.starttls(ssl_context=ctx)
assert typ == "OK", typ
assert "STARTTLS" not in m.capabilities and "LOGINDISABLED" not in m.capabilities, m.capabilities
typ, _ = m.login("alice", "pw")
assert typ == "OK", typ
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", (typ, data)
typ, data = m.fetch("1", "(BODY.PEEK[])")
assert typ == "OK" and data[0][1] == expected.encode(), data
m.logout()

m = imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=ctx)
assert "STARTTLS" not in m.capabilities and "AUTH=PLAIN" in m.capabilities, m.capabilities
typ, _ = m.login("alice", "pw")
assert typ == "OK", typ
typ, data = m.select("INBOX", readonly=True)
assert typ == "OK" and data[0] == b"1", (typ, data)
m.logout()
print("imaplib ok")
"#;

#[test]
fn python_imaplib_starttls_and_imaps() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 not found: imaplib test skipped");
        return;
    }
    let pki = pki();
    let server = start_with(config(&pki, false));
    let imaps = server.spawn_imaps(config(&pki, false));
    let message = "Subject: from imaplib\r\n\r\nHello over TLS.\r\n";
    server.deliver("alice", "INBOX", message);
    let dir = tempfile::tempdir().unwrap();
    let cafile = dir.path().join("ca.pem");
    std::fs::write(&cafile, &pki.ca_pem).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(IMAPLIB_SCRIPT)
        .arg(server.addr.port().to_string())
        .arg(imaps.port().to_string())
        .arg(&cafile)
        .arg(message)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("imaplib ok"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}
