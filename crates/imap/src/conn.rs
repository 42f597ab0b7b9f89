//! The byte stream under a session: plain TCP or TLS (implicit, or after STARTTLS),
//! optionally with DEFLATE (RFC 4978) on top.
//!
//! The types stay the same across an upgrade, so the session needs no new type
//! parameters: a [`Transport`] is split into an [`Input`] and an [`Output`], and an
//! upgrade takes the halves apart and builds new ones (see `session::upgrade`).

use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::DeflateDecoder;
use async_compression::tokio::write::DeflateEncoder;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, BufReader, Chain, ReadBuf, ReadHalf, WriteHalf,
};
use tokio_rustls::server::TlsStream;

/// The connection, before any compression.
pub(crate) enum Transport<S> {
    /// Clear text.
    Plain(S),
    /// TLS, implicit or after STARTTLS.
    Tls(Box<TlsStream<S>>),
}

/// Bytes already read off the socket (compressed data the client pipelined after
/// COMPRESS), then the socket.
type Compressed<S> = BufReader<Chain<Cursor<Vec<u8>>, ReadHalf<Transport<S>>>>;

/// What the session reads from.
pub(crate) enum Input<S> {
    /// The transport as it is.
    Plain(ReadHalf<Transport<S>>),
    /// Inflated from raw DEFLATE.
    Deflate(Box<DeflateDecoder<Compressed<S>>>),
    /// Placeholder while an upgrade is under way: reads end of input.
    Closed,
}

/// What the session writes to.
pub(crate) enum Output<S> {
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
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The uncompressed halves.
    pub(crate) fn split(self) -> (Input<S>, Output<S>) {
        let (r, w) = tokio::io::split(self);
        (Input::Plain(r), Output::Plain(w))
    }
}

/// The clear-text stream again, for a TLS handshake: `None` unless both halves are
/// the plain, uncompressed halves of one clear-text transport.
pub(crate) fn reunite_plain<S>(input: Input<S>, output: Output<S>) -> Option<S>
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
/// from the transport after the COMPRESS command: they are compressed already.
pub(crate) fn deflate<S>(
    input: Input<S>,
    pending: Vec<u8>,
    output: Output<S>,
) -> Option<(Input<S>, Output<S>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (Input::Plain(r), Output::Plain(w)) = (input, output) else {
        return None;
    };
    let source = BufReader::with_capacity(crate::session::IO_BUFFER, Cursor::new(pending).chain(r));
    Some((
        Input::Deflate(Box::new(DeflateDecoder::new(source))),
        Output::Deflate(Box::new(DeflateEncoder::new(w))),
    ))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

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
