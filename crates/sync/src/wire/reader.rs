//! [`LineReader`]: cuts a byte stream into logical lines (text plus literals) within
//! [`Limits`].

use std::io::ErrorKind;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::token::is_tag_char;
use super::{Limits, WireError};

/// Size of the reader's buffer, and of the first allocation for a kept literal.
const CHUNK: usize = 64 * 1024;

/// One logical line, already read in full: the text of its lines and the literals they
/// announced. Text line `i` ends with the announcement (`{n}` or `{n+}`) of literal `i`
/// when there is one; the last text line announces none. Holds at most what the
/// reader's [`Limits`] allow, and carries the depth and token bounds for the parser.
#[derive(Debug, Clone)]
pub struct Line {
    /// Text lines without their line endings; never empty.
    pub(crate) texts: Vec<Vec<u8>>,
    /// `literals[i]` follows `texts[i]`; one fewer than `texts`.
    pub(crate) literals: Vec<Vec<u8>>,
    /// [`Limits::max_depth`] of the reader that read the line.
    pub(crate) max_depth: usize,
    /// [`Limits::max_tokens`] of the reader that read the line.
    pub(crate) max_tokens: usize,
}

impl Line {
    /// Octets held (text and literals), for tests of the bounds.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> (usize, usize, usize) {
        let text = self.texts.iter().map(Vec::len).sum();
        let lits = self.literals.iter().map(Vec::len).sum();
        (text, lits, self.literals.len())
    }
}

/// Reads logical lines from a stream: each call to [`LineReader::read_line`] consumes
/// exactly one, or fails.
///
/// Memory is bounded by the [`Limits`]: at most `max_line` octets per text line,
/// `max_literal` per literal, `max_literals_total` for everything after the first text
/// line, and `max_tokens` literals; literals over a bound are skipped in chunks, never
/// held. `read_line` is **not** cancel-safe: dropping its future mid-line loses the
/// position in the stream, so do not race it in `select!` against anything but the
/// connection's end.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    limits: Limits,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader over `inner` enforcing `limits`.
    pub fn new(inner: R, limits: Limits) -> Self {
        LineReader {
            inner: BufReader::with_capacity(CHUNK, inner),
            limits,
        }
    }

    /// The stream back, e.g. for STARTTLS. Bytes already buffered (see
    /// [`LineReader::buffered`]) are lost: call it only when that is zero.
    pub fn into_inner(self) -> R {
        self.inner.into_inner()
    }

    /// Enforces `limits` from the next line on (after authentication, the bounds grow).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// How many bytes were read from the stream but not yet consumed as lines.
    pub fn buffered(&self) -> usize {
        self.inner.buffer().len()
    }

    /// Reads one logical line: a line of text ending in CRLF (or a bare LF), and for
    /// each literal it announces at its end (`{n}` or `{n+}`), the `n` octets and the
    /// line of text after them, and so on.
    ///
    /// For each synchronizing literal `{n}` within the bounds it calls
    /// `on_sync_literal(n)` *before* reading the octets: `true` means the caller has
    /// sent (or queued and will flush) a `+` continuation, and the octets are read;
    /// `false` refuses it. A refused synchronizing literal, or one over a bound (the
    /// callback is then not called), ends the line at once with [`WireError::TooBig`]
    /// without reading the octets, which the peer will not send.
    ///
    /// A non-synchronizing literal over a bound is read and discarded in chunks, and so
    /// is the rest of its logical line; then [`WireError::TooBig`] is returned and the
    /// stream is in step for the next line.
    ///
    /// Errors: [`WireError::Eof`] when the stream ends before any byte of a line;
    /// [`WireError::Io`] (`UnexpectedEof`) when it ends inside one;
    /// [`WireError::LineTooLong`] (fatal) for a text line over `max_line`;
    /// [`WireError::Syntax`] for a literal length over 2^63-1 (the line is consumed).
    pub async fn read_line(
        &mut self,
        on_sync_literal: &mut (dyn FnMut(u64) -> bool + Send),
    ) -> Result<Line, WireError> {
        let limits = self.limits;
        let mut line = Line {
            texts: Vec::new(),
            literals: Vec::new(),
            max_depth: limits.max_depth,
            max_tokens: limits.max_tokens,
        };
        let Some(first) = self.read_text(true).await? else {
            return Err(WireError::Eof);
        };
        let tag = tag_of(&first);
        let mut text = first;
        // Octets after the first text line (literals and continuation text).
        let mut total: u64 = 0;
        // Set once a bound is exceeded: from then on everything is discarded.
        let mut over = false;
        loop {
            let announced = match announcement(&text) {
                Ok(a) => a,
                Err(()) => {
                    return Err(if over {
                        WireError::TooBig { tag }
                    } else {
                        WireError::syntax(tag, "literal length over 2^63-1")
                    });
                }
            };
            let Some((n, sync)) = announced else {
                if over {
                    return Err(WireError::TooBig { tag });
                }
                line.texts.push(text);
                return Ok(line);
            };
            let fits = !over
                && n <= limits.max_literal
                && total.saturating_add(n) <= limits.max_literals_total
                && line.literals.len() < limits.max_tokens;
            if sync && !(fits && on_sync_literal(n)) {
                return Err(WireError::TooBig { tag });
            }
            if !fits && !limits.skip_oversized {
                return Err(WireError::LiteralRefused { tag });
            }
            if fits {
                line.texts.push(text);
                let literal = self.read_octets(n, true).await?;
                line.literals.push(literal);
            } else {
                if !over {
                    over = true;
                    line.texts = Vec::new();
                    line.literals = Vec::new();
                }
                self.read_octets(n, false).await?;
            }
            total = total.saturating_add(n);
            text = self.read_text(false).await?.unwrap_or_default();
            total = total.saturating_add(text.len() as u64);
            if !over && total > limits.max_literals_total {
                over = true;
                line.texts = Vec::new();
                line.literals = Vec::new();
            }
        }
    }

    /// Reads one line of text up to LF, without the LF and a CR before it. `Ok(None)`
    /// when the stream ends before its first byte and `at_start` (a clean end).
    async fn read_text(&mut self, at_start: bool) -> Result<Option<Vec<u8>>, WireError> {
        let max = self.limits.max_line;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                if at_start && buf.is_empty() {
                    return Ok(None);
                }
                return Err(unexpected_eof());
            }
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            // Room for the text and a CR that may precede the LF.
            if buf.len().saturating_add(take) > max.saturating_add(1) {
                return Err(WireError::LineTooLong);
            }
            buf.extend_from_slice(&avail[..take]);
            self.inner.consume(if done { take + 1 } else { take });
            if done {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if buf.len() > max {
                    return Err(WireError::LineTooLong);
                }
                return Ok(Some(buf));
            }
        }
    }

    /// Reads `n` octets, keeping them or not. Memory grows with what actually arrives,
    /// never more than twice the octets received.
    async fn read_octets(&mut self, n: u64, keep: bool) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                return Err(unexpected_eof());
            }
            let take = usize::try_from(left).map_or(avail.len(), |l| l.min(avail.len()));
            if keep {
                if out.capacity() - out.len() < take {
                    let left_usize = usize::try_from(left).unwrap_or(usize::MAX);
                    let want = out.capacity().max(CHUNK).max(take).min(left_usize);
                    out.reserve_exact(want);
                }
                out.extend_from_slice(&avail[..take]);
            }
            self.inner.consume(take);
            left -= take as u64;
        }
        Ok(out)
    }
}

fn unexpected_eof() -> WireError {
    WireError::Io(std::io::Error::new(
        ErrorKind::UnexpectedEof,
        "stream ended inside a line",
    ))
}

/// The tag a line of text begins with: tag characters up to a space or the end.
fn tag_of(text: &[u8]) -> Option<String> {
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    let tag = &text[..end];
    if tag.is_empty() || !tag.iter().all(|&b| is_tag_char(b)) {
        return None;
    }
    // Tag characters are ASCII.
    Some(String::from_utf8_lossy(tag).into_owned())
}

/// The literal a line of text announces at its end: `Ok(Some((n, synchronizing)))`,
/// `Ok(None)` when none, `Err(())` when the length is over 2^63-1.
pub(crate) fn announcement(text: &[u8]) -> Result<Option<(u64, bool)>, ()> {
    let Some(rest) = text.strip_suffix(b"}") else {
        return Ok(None);
    };
    let (rest, sync) = match rest.strip_suffix(b"+") {
        Some(r) => (r, false),
        None => (rest, true),
    };
    let digits = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (head, digits) = rest.split_at(rest.len() - digits);
    if digits.is_empty() || head.last() != Some(&b'{') {
        return Ok(None);
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or(())?;
    }
    Ok(Some((n, sync)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_line: 32,
            max_literal: 10,
            max_literals_total: 40,
            max_depth: 3,
            max_tokens: 20,
            skip_oversized: true,
        }
    }

    async fn read_all(input: &[u8], limits: Limits, accept: bool) -> Vec<Result<Line, String>> {
        let mut r = LineReader::new(input, limits);
        let mut out = Vec::new();
        loop {
            match r.read_line(&mut |_| accept).await {
                Ok(l) => out.push(Ok(l)),
                Err(WireError::Eof) => return out,
                Err(e) if e.is_fatal() => {
                    out.push(Err(format!("fatal {e}")));
                    return out;
                }
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn announcements() {
        assert_eq!(announcement(b"a X {3}"), Ok(Some((3, true))));
        assert_eq!(announcement(b"{0+}"), Ok(Some((0, false))));
        assert_eq!(announcement(b"a {+}"), Ok(None));
        assert_eq!(announcement(b"a 3}"), Ok(None));
        assert_eq!(announcement(b"a {x3}"), Ok(None));
        assert_eq!(
            announcement(b"{9223372036854775807}"),
            Ok(Some((i64::MAX as u64, true)))
        );
        assert_eq!(announcement(b"{9223372036854775808}"), Err(()));
        assert_eq!(announcement(b"{99999999999999999999999+}"), Err(()));
    }

    #[tokio::test]
    async fn crlf_and_bare_lf_and_eof() {
        let lines = read_all(b"a NOOP\r\nb NOOP\nc {2+}\r\nxy\n", small(), true).await;
        assert_eq!(lines.len(), 3);
        let Ok(l) = &lines[2] else {
            panic!("{:?}", lines[2])
        };
        assert_eq!(l.texts, vec![b"c {2+}".to_vec(), Vec::new()]);
        assert_eq!(l.literals, vec![b"xy".to_vec()]);
        let lines = read_all(b"a NOOP", small(), true).await;
        assert!(
            matches!(&lines[..], [Err(e)] if e.contains("i/o")),
            "{lines:?}"
        );
        let lines = read_all(b"a {5+}\r\nab", small(), true).await;
        assert!(
            matches!(&lines[..], [Err(e)] if e.contains("i/o")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn sync_literal_accepted_and_refused() {
        let mut asked = Vec::new();
        let mut r = LineReader::new(&b"a X {3}\r\nabc Y\r\nb X {4}\r\nc NOOP\r\n"[..], small());
        let line = r
            .read_line(&mut |n| {
                asked.push(n);
                true
            })
            .await;
        assert!(matches!(&line, Ok(l) if l.literals == vec![b"abc".to_vec()]));
        let refused = r
            .read_line(&mut |n| {
                asked.push(n);
                false
            })
            .await;
        assert!(matches!(refused, Err(WireError::TooBig { tag: Some(ref t) }) if t == "b"));
        // The refused octets were never sent: the next line is read in step.
        let next = r.read_line(&mut |_| true).await;
        assert!(matches!(&next, Ok(l) if l.texts == vec![b"c NOOP".to_vec()]));
        assert_eq!(asked, vec![3, 4]);
        // A synchronizing literal over the bound is refused without asking.
        let mut r = LineReader::new(&b"a X {11}\r\nb NOOP\r\n"[..], small());
        let line = r.read_line(&mut |_| panic!("must not ask")).await;
        assert!(matches!(line, Err(WireError::TooBig { .. })));
        assert!(r.read_line(&mut |_| true).await.is_ok());
    }

    #[tokio::test]
    async fn too_big_nonsync_literal_is_skipped_in_step() {
        let input = b"a X {11+}\r\n01234567890 {2+}\r\nxy Z\r\nb NOOP\r\n";
        let lines = read_all(input, small(), true).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(matches!(&lines[0], Err(e) if e.contains("too big") && e.contains("tag a")));
        assert!(matches!(&lines[1], Ok(l) if l.texts == vec![b"b NOOP".to_vec()]));
    }

    #[tokio::test]
    async fn total_and_count_bounds() {
        // Four literals of 10 plus continuation text exceed 40 in total.
        let input = b"a {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789 {10+}\r\n0123456789\r\nb NOOP\r\n";
        let lines = read_all(input, small(), true).await;
        assert!(matches!(&lines[..], [Err(_), Ok(_)]), "{lines:?}");
        // Many empty literals exceed max_tokens.
        let mut input = b"a".to_vec();
        for _ in 0..25 {
            input.extend_from_slice(b" {0+}\r\n");
        }
        input.extend_from_slice(b"\r\nb NOOP\r\n");
        let lines = read_all(&input, small(), true).await;
        assert!(matches!(&lines[..], [Err(_), Ok(_)]), "{lines:?}");
    }

    #[tokio::test]
    async fn line_too_long_is_fatal() {
        let ok = format!("{}\r\n", "x".repeat(32));
        assert!(matches!(
            &read_all(ok.as_bytes(), small(), true).await[..],
            [Ok(_)]
        ));
        let long = format!("{}\r\nb NOOP\r\n", "x".repeat(33));
        let lines = read_all(long.as_bytes(), small(), true).await;
        assert!(matches!(&lines[..], [Err(e)] if e.contains("fatal line too long")));
        let unterminated = "x".repeat(100);
        let lines = read_all(unterminated.as_bytes(), small(), true).await;
        assert!(matches!(&lines[..], [Err(e)] if e.contains("fatal line too long")));
    }

    #[tokio::test]
    async fn huge_length_is_syntax_and_into_inner() {
        let lines = read_all(b"a {99999999999999999999+}\r\nb NOOP\r\n", small(), true).await;
        assert!(
            matches!(&lines[..], [Err(e), Ok(_)] if e.contains("2^63")),
            "{lines:?}"
        );
        let mut r = LineReader::new(&b"a NOOP\r\nrest"[..], small());
        assert!(r.read_line(&mut |_| true).await.is_ok());
        assert_eq!(r.buffered(), 4);
        assert_eq!(r.into_inner(), b"");
    }
}
