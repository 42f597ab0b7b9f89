//! One client session with a replica: connecting, STARTTLS, authentication, and
//! pipelined commands whose replies are read back in order.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::{ClientConfig, ClientError, ClientTls};
use crate::protocol::{Capabilities, Code, Request};
use crate::wire::{parse_response, Encoder, Limits, LineReader, Response, Status, Token};
use crate::Io;

/// What travelled over one or more sessions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes the client sent.
    pub bytes_out: u64,
    /// Bytes the client received.
    pub bytes_in: u64,
    /// Times the client waited for the replica after sending.
    pub round_trips: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.bytes_out += o.bytes_out;
        self.bytes_in += o.bytes_in;
        self.round_trips += o.round_trips;
    }
}

/// A command's answer: its untagged responses and its tagged result.
#[derive(Debug)]
pub(crate) struct Reply {
    pub untagged: Vec<(String, Vec<Token>)>,
    pub status: Status,
    pub code: Option<(String, Vec<Token>)>,
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        matches!(self.status, Status::Ok)
    }

    /// The response code, typed (`None` when the reply has none).
    pub fn code(&self) -> Option<Code> {
        self.code
            .as_ref()
            .map(|(name, args)| Code::parse(name, args))
    }

    /// The response code's name, upper-cased ("" when none).
    pub fn code_name(&self) -> &str {
        self.code.as_ref().map_or("", |(c, _)| c.as_str())
    }

    /// "NO [CODE] text", for messages.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        format!("{status} [{}] {}", self.code_name(), self.text)
    }
}

/// A session, authenticated.
pub(crate) struct Connection {
    reader: LineReader<Counted<ReadHalf<Box<dyn Io>>>>,
    writer: WriteHalf<Box<dyn Io>>,
    out: Vec<u8>,
    next_tag: u64,
    pending: std::collections::VecDeque<String>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: u64,
    round_trips: u64,
    waiting: bool,
    auth_tag: Option<String>,
}

impl Connection {
    /// Connects, upgrades to TLS whenever the replica offers it (see [`use_tls`]; at
    /// once with DIRECTTLS, after STARTTLS otherwise), and
    /// authenticates (the AUTHENTICATE is queued, so it travels with the first command).
    pub async fn open(config: &ClientConfig) -> Result<Connection, ClientError> {
        let tcp = TcpStream::connect(&config.replica)
            .await
            .map_err(|e| ClientError::Connect(config.replica.clone(), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        // Unknown counts as not loopback: the stricter rule.
        let loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        let mut conn = Connection::over(Box::new(tcp), Limits::default());
        let greeting = conn.read_response().await?;
        let caps = match greeting {
            Response::UntaggedStatus { keyword, code, .. } if keyword == "OK" => {
                match code.map(|(name, args)| Code::parse(&name, &args)) {
                    Some(Code::Capability(caps)) => Capabilities(caps),
                    _ => Capabilities::default(),
                }
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected greeting {other:?}"
                )))
            }
        };
        let version = format!("TERNSYNC={}", crate::protocol::VERSION);
        if !caps.has(&version) {
            return Err(ClientError::Protocol(format!(
                "the replica does not speak {version}"
            )));
        }
        if let Some(tls) = use_tls(caps.has("STARTTLS"), config, loopback)? {
            // With DIRECTTLS the handshake itself asks for TLS, saving STARTTLS's
            // round trip.
            if !caps.has("DIRECTTLS") {
                let tag = conn.queue(&Request::StartTls).await?;
                let reply = conn.reply_for(&tag).await?;
                if !reply.ok() {
                    return Err(ClientError::Protocol(format!(
                        "STARTTLS refused: {}",
                        reply.describe()
                    )));
                }
            }
            let (read, write) = (conn.reader.into_inner().inner, conn.writer);
            let plain = read.unsplit(write);
            let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
                .map_err(|e| ClientError::Protocol(format!("bad TLS server name: {e}")))?;
            let secure = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(name, plain)
                .await
                .map_err(|e| ClientError::Connect(config.replica.clone(), format!("TLS: {e}")))?;
            let session = secure.get_ref().1;
            if let Some(check) = &tls.check {
                let cert = session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| {
                        ClientError::Insecure("the replica sent no certificate".into())
                    })?;
                super::blocking(|| check.check(cert)).map_err(ClientError::Insecure)?;
            }
            tracing::info!(
                replica = %config.replica,
                version = ?session.protocol_version(),
                "sync connection secured with TLS"
            );
            let mut upgraded = Connection::over(Box::new(secure), Limits::default());
            upgraded.bytes_out = conn.bytes_out;
            upgraded.round_trips = conn.round_trips;
            upgraded.next_tag = conn.next_tag;
            conn = upgraded;
        }
        let credentials = format!("\0{}\0{}", config.user, config.password);
        let b64 = base64::engine::general_purpose::STANDARD.encode(credentials);
        let auth = Request::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b64),
        };
        let tag = conn.queue(&auth).await?;
        conn.pending.pop_back();
        conn.auth_tag = Some(tag);
        Ok(conn)
    }

    fn over(stream: Box<dyn Io>, limits: crate::wire::Limits) -> Connection {
        let (r, w) = tokio::io::split(stream);
        let bytes_in = Arc::new(AtomicU64::new(0));
        Connection {
            reader: LineReader::new(
                Counted {
                    inner: r,
                    count: bytes_in.clone(),
                },
                limits,
            ),
            writer: w,
            out: Vec::with_capacity(64 * 1024),
            next_tag: 1,
            pending: Default::default(),
            bytes_in,
            bytes_out: 0,
            round_trips: 0,
            waiting: false,
            auth_tag: None,
        }
    }

    /// What this session moved so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            bytes_out: self.bytes_out,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            round_trips: self.round_trips,
        }
    }

    /// A fresh tag.
    pub fn tag(&mut self) -> String {
        let t = format!("s{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Queues a command (written out once enough is queued, or when a reply is
    /// awaited); returns its tag.
    pub async fn queue(&mut self, request: &Request) -> Result<String, ClientError> {
        let tag = self.tag();
        let mut enc = Encoder::new();
        request.encode(&mut enc, &tag);
        self.queue_encoded(tag.clone(), enc).await?;
        Ok(tag)
    }

    /// Queues an encoded command whose tag the caller took from [`Connection::tag`].
    pub async fn queue_encoded(&mut self, tag: String, enc: Encoder) -> Result<(), ClientError> {
        self.pending.push_back(tag);
        if enc.len() >= 256 * 1024 {
            // Large commands (messages) go out at once, from their own buffer.
            self.write_out().await?;
            self.writer
                .write_all(enc.bytes())
                .await
                .map_err(ClientError::io)?;
            self.bytes_out += enc.len() as u64;
            self.waiting = true;
            return Ok(());
        }
        self.out.extend_from_slice(enc.bytes());
        if self.out.len() >= 256 * 1024 {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn write_out(&mut self) -> Result<(), ClientError> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.writer
            .write_all(&self.out)
            .await
            .map_err(ClientError::io)?;
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        self.waiting = true;
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.write_out().await?;
        self.writer.flush().await.map_err(ClientError::io)
    }

    /// Reads the answer to the oldest command not yet answered (flushing first).
    pub async fn reply(&mut self) -> Result<Reply, ClientError> {
        self.flush().await?;
        if let Some(auth) = self.auth_tag.take() {
            let reply = self.reply_for(&auth).await?;
            if !reply.ok() {
                return Err(ClientError::Auth(reply.describe()));
            }
        }
        let tag = self
            .pending
            .pop_front()
            .ok_or_else(|| ClientError::Protocol("no command awaits a reply".into()))?;
        self.reply_for(&tag).await
    }

    async fn reply_for(&mut self, tag: &str) -> Result<Reply, ClientError> {
        self.flush().await?;
        if std::mem::take(&mut self.waiting) {
            self.round_trips += 1;
        }
        let mut untagged = Vec::new();
        loop {
            match self.read_response().await? {
                Response::Untagged { keyword, args } => untagged.push((keyword, args)),
                Response::UntaggedStatus { keyword, text, .. } if keyword == "BYE" => {
                    return Err(ClientError::Protocol(format!(
                        "replica closed the session: {text}"
                    )));
                }
                Response::UntaggedStatus { .. } | Response::Continue(_) => {}
                Response::Tagged {
                    tag: t,
                    status,
                    code,
                    text,
                } => {
                    if t != tag {
                        return Err(ClientError::Protocol(format!(
                            "reply for {t} while waiting for {tag}"
                        )));
                    }
                    let code = code.map(|(c, a)| (c.to_ascii_uppercase(), a));
                    return Ok(Reply {
                        untagged,
                        status,
                        code,
                        text,
                    });
                }
            }
        }
    }

    async fn read_response(&mut self) -> Result<Response, ClientError> {
        let line = self
            .reader
            .read_line(&mut |_| false)
            .await
            .map_err(ClientError::wire)?;
        parse_response(&line).map_err(ClientError::wire)
    }

    /// Ends the session: every command was answered, so closing our side is enough
    /// (the replica ends a session at end of input); a LOGOUT would cost a round trip.
    pub async fn logout(mut self) -> Traffic {
        let _ = self.writer.shutdown().await;
        self.traffic()
    }
}

/// Whether to upgrade with STARTTLS (`Some`: with this configuration), or why the
/// session must not go on: TLS whenever the replica offers it; without it, the password
/// would travel in clear text, which is allowed only to a loopback address or with
/// `allow_plaintext`, and never with `require_tls`.
fn use_tls(
    offered: bool,
    config: &ClientConfig,
    loopback: bool,
) -> Result<Option<&ClientTls>, ClientError> {
    match &config.tls {
        Some(tls) if offered => Ok(Some(tls)),
        Some(_) if config.require_tls => Err(ClientError::Insecure(format!(
            "TLS is required but replica {} offers no STARTTLS (turned off there, \
             or removed on the way)",
            config.replica
        ))),
        None if config.require_tls => Err(ClientError::Insecure(
            "TLS is required but no TLS configuration was given".into(),
        )),
        _ if loopback || config.allow_plaintext => Ok(None),
        _ => Err(ClientError::Insecure(format!(
            "replica {} is not on this host and {}; refusing to send the password \
             in clear text (allow it with allow_plaintext)",
            config.replica,
            if offered {
                "no TLS configuration was given"
            } else {
                "it offers no STARTTLS"
            }
        ))),
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.count.fetch_add(n, Ordering::Relaxed);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tls: bool, require_tls: bool, allow_plaintext: bool) -> ClientConfig {
        let roots = rustls::RootCertStore::empty();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = tls.then(|| ClientTls {
            server_name: "replica.example".into(),
            config: Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ),
            check: None,
        });
        ClientConfig {
            replica: "replica.example:2005".into(),
            user: "repl".into(),
            password: "secret".into(),
            tls,
            require_tls,
            allow_plaintext,
        }
    }

    /// (offered, have tls, require, allow_plaintext, loopback) → TLS, clear, refused.
    #[test]
    fn tls_when_offered_clear_text_only_where_allowed() {
        #[derive(Debug, PartialEq)]
        enum Then {
            Tls,
            Clear,
            Refused,
        }
        use Then::*;
        let cases = [
            // Offered and configured: always TLS, even on loopback.
            ((true, true, false, false, true), Tls),
            ((true, true, false, false, false), Tls),
            ((true, true, true, false, false), Tls),
            // Not offered: clear text on loopback only, unless allowed; never if required.
            ((false, true, false, false, true), Clear),
            ((false, true, false, false, false), Refused),
            ((false, true, false, true, false), Clear),
            ((false, true, true, false, true), Refused),
            ((false, true, true, true, false), Refused),
            // No TLS configuration: as if nothing were offered.
            ((true, false, false, false, false), Refused),
            ((true, false, false, false, true), Clear),
            ((true, false, true, false, true), Refused),
        ];
        for ((offered, tls, require, allow, loopback), expected) in cases {
            let c = config(tls, require, allow);
            let got = match use_tls(offered, &c, loopback) {
                Ok(Some(_)) => Tls,
                Ok(None) => Clear,
                Err(ClientError::Insecure(_)) => Refused,
                Err(e) => panic!("unexpected error {e}"),
            };
            assert_eq!(
                got, expected,
                "offered {offered}, tls {tls}, require {require}, allow {allow}, loopback {loopback}"
            );
        }
    }
}
