//! The byte stream under a session: a socket ([`Stream`]: TCP or Unix), plain or TLS
//! ([`Transport`]: implicit, or after STARTTLS), optionally with DEFLATE on top
//! (IMAP COMPRESS, RFC 4978).
//!
//! The types stay the same across an upgrade, so a session needs no new type
//! parameters: a [`Transport`] is split into an [`Input`] and an [`Output`], and an
//! upgrade takes the halves apart and builds new ones ([`reunite_plain`] then
//! [`accept_tls`] for STARTTLS, [`deflate`] for COMPRESS).
//!
//! Pitfall handled here: after STARTTLS, bytes the client sent before the handshake
//! were read in clear text and may have been injected by a man in the middle. The
//! caller drops its read buffer when it reunites the halves; nothing read before the
//! handshake is ever executed (RFC 3207 4.2, RFC 9051 6.2.1).

use std::future::Future;
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_compression::tokio::bufread::DeflateDecoder;
use async_compression::tokio::write::DeflateEncoder;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, BufReader, Chain, ReadBuf, ReadHalf, WriteHalf,
};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// A connected socket: TCP, or a Unix domain socket (LMTP from a local MTA).
///
/// A write that makes no progress for the stream's write timeout fails with
/// `TimedOut`: a client that stops reading cannot park a session (and its slot, its
/// buffers) forever on a full socket buffer, in whatever state the protocol is.
pub struct Stream {
    socket: Socket,
    write_timeout: Duration,
    /// Running while a write waits for the client to read.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// A TCP connection whose writes may wait at most `write_timeout` for progress.
    pub fn tcp(stream: TcpStream, write_timeout: Duration) -> Stream {
        Stream {
            socket: Socket::Tcp(stream),
            write_timeout,
            stalled: None,
        }
    }

    /// As [`Stream::tcp`], for a Unix domain socket.
    pub fn unix(stream: UnixStream, write_timeout: Duration) -> Stream {
        Stream {
            socket: Socket::Unix(stream),
            write_timeout,
            stalled: None,
        }
    }

    /// The first byte the peer has sent, left unread, once one has arrived. `None` at
    /// end of input, and on a Unix socket, where nothing is peeked.
    pub async fn peek_first(&self) -> io::Result<Option<u8>> {
        match &self.socket {
            Socket::Tcp(s) => {
                let mut first = [0u8; 1];
                let n = s.peek(&mut first).await?;
                Ok((n == 1).then_some(first[0]))
            }
            Socket::Unix(_) => Ok(None),
        }
    }

    /// Runs one write-side poll under the stall timer.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut Socket>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match op(Pin::new(&mut self.socket), cx) {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let stall = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.stalled = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped reading",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().timed(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .timed(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_shutdown(cx))
    }
}

/// The connection, before any compression.
pub enum Transport<S = Stream> {
    /// Clear text.
    Plain(S),
    /// TLS, implicit or after STARTTLS.
    Tls(Box<TlsStream<S>>),
}

/// Bytes already read off the socket (compressed data the client pipelined after
/// COMPRESS), then the socket.
type Compressed<S> = BufReader<Chain<Cursor<Vec<u8>>, ReadHalf<Transport<S>>>>;

/// What a session reads from.
pub enum Input<S = Stream> {
    /// The transport as it is.
    Plain(ReadHalf<Transport<S>>),
    /// Inflated from raw DEFLATE.
    Deflate(Box<DeflateDecoder<Compressed<S>>>),
    /// Placeholder while an upgrade is under way: reads end of input.
    Closed,
}

/// What a session writes to.
pub enum Output<S = Stream> {
    /// The transport as it is.
    Plain(WriteHalf<Transport<S>>),
    /// Deflated to raw DEFLATE; each flush is a sync flush, so nothing is held back.
    Deflate(Box<DeflateEncoder<WriteHalf<Transport<S>>>>),
    /// Placeholder while an upgrade is under way: every write fails.
    Closed,
}

impl<S> Transport<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// True for TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The uncompressed halves.
    pub fn split(self) -> (Input<S>, Output<S>) {
        let (r, w) = tokio::io::split(self);
        (Input::Plain(r), Output::Plain(w))
    }
}

impl Transport<Stream> {
    /// The first byte the peer has sent, left unread ([`Stream::peek_first`]); `None`
    /// on a TLS transport.
    pub async fn peek_first(&self) -> io::Result<Option<u8>> {
        match self {
            Transport::Plain(s) => s.peek_first().await,
            Transport::Tls(_) => Ok(None),
        }
    }
}

/// TLS on `stream` as the server, within `timeout`; `None` when the handshake fails or
/// takes too long (the caller closes the connection: there is nothing to answer).
pub async fn accept_tls<S>(
    stream: S,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<Transport<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(s)) => Some(Transport::Tls(Box::new(s))),
        _ => None,
    }
}

/// The clear-text stream again, for a TLS handshake: `None` unless both halves are
/// the plain, uncompressed halves of one clear-text transport. Whatever the caller had
/// buffered from the input is dropped with it (see the module's pitfall).
pub fn reunite_plain<S>(input: Input<S>, output: Output<S>) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (Input::Plain(r), Output::Plain(w)) = (input, output) else {
        return None;
    };
    if !r.is_pair_of(&w) {
        return None;
    }
    match r.unsplit(w) {
        Transport::Plain(s) => Some(s),
        Transport::Tls(_) => None,
    }
}

/// Both directions through DEFLATE from here on. `pending` holds bytes already read
/// from the transport after the command that switched compression on: they are
/// compressed already. `buffer` is the read buffer's size.
pub fn deflate<S>(
    input: Input<S>,
    pending: Vec<u8>,
    output: Output<S>,
    buffer: usize,
) -> Option<(Input<S>, Output<S>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (Input::Plain(r), Output::Plain(w)) = (input, output) else {
        return None;
    };
    let source = BufReader::with_capacity(buffer, Cursor::new(pending).chain(r));
    Some((
        Input::Deflate(Box::new(DeflateDecoder::new(source))),
        Output::Deflate(Box::new(DeflateEncoder::new(w))),
    ))
}

macro_rules! delegate_io {
    (impl[$($generics:tt)*] $ty:ty => $name:ident { $($variant:ident),+ }) => {
        impl<$($generics)*> AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($name::$variant(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }

        impl<$($generics)*> AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($name::$variant(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($name::$variant(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $($name::$variant(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($name::$variant(s) => Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($name::$variant(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

// Sockets and transports forward every call to the stream they hold (a boxed TLS
// stream included: `Box<T>` is itself a stream when `T` is `Unpin`).
delegate_io!(impl[] Socket => Socket { Tcp, Unix });
delegate_io!(impl[S: AsyncRead + AsyncWrite + Unpin] Transport<S> => Transport { Plain, Tls });

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Input<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Input::Plain(r) => Pin::new(r).poll_read(cx, buf),
            Input::Deflate(r) => Pin::new(r.as_mut()).poll_read(cx, buf),
            Input::Closed => Poll::Ready(Ok(())),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection is being upgraded")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Output<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Output::Plain(w) => Pin::new(w).poll_write(cx, buf),
            Output::Deflate(w) => Pin::new(w.as_mut()).poll_write(cx, buf),
            Output::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Plain(w) => Pin::new(w).poll_flush(cx),
            // A sync flush of the compressor, then a flush of the transport.
            Output::Deflate(w) => Pin::new(w.as_mut()).poll_flush(cx),
            Output::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Plain(w) => Pin::new(w).poll_shutdown(cx),
            Output::Deflate(w) => Pin::new(w.as_mut()).poll_shutdown(cx),
            Output::Closed => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_client_that_stops_reading_fails_the_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Connected, and never read from.
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        let mut stream = Stream::tcp(socket, Duration::from_millis(300));
        let chunk = vec![b'x'; 1 << 20];
        let mut written = 0usize;
        let err = loop {
            match stream.write_all(&chunk).await {
                Ok(()) => written += chunk.len(),
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "writes never stalled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
