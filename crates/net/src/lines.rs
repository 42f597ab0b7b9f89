//! Bounded reading of command lines and of dot-terminated bodies (LMTP DATA, and the
//! POP3 and NNTP multi-line forms).
//!
//! Nothing here buffers more than the caller's bound: an over-long command line is
//! consumed up to its end and reported as such, and an over-size body is read to
//! its terminating dot (so the session stays in step) without being kept. Neither
//! function has a clock: callers wrap them in their protocol's timeout, which is safe
//! because both only consume bytes they have finished with.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::budget::Reservation;

/// One command line, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its line ending.
    Complete(Vec<u8>),
    /// The line was longer than the bound; it has been consumed and discarded.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Reads one line ending in LF (a preceding CR is removed), holding at most `max` bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + used > max + 2 {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            if too_long {
                return Ok(Line::TooLong);
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // Without its CR, a line may have come one byte over the bound.
            if line.len() > max {
                return Ok(Line::TooLong);
            }
            return Ok(Line::Complete(line));
        }
    }
}

/// A dot-terminated body.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// The message, dot-unstuffed, every line ending normalised to CRLF.
    Complete(Vec<u8>),
    /// The message was larger than the bound; it was consumed up to the final dot.
    TooBig,
    /// The server's [`MemoryBudget`](crate::MemoryBudget) could not hold it; it was
    /// consumed up to the final dot. The client should try again later.
    OverBudget,
    /// The connection closed before the final dot: nothing may be stored.
    Eof,
}

/// Reads a body up to the line holding a single dot.
///
/// Bare LF line endings become CRLF, so what is stored is a valid RFC 5322 message
/// whatever the client's line endings; a leading dot is removed from lines that have
/// one (RFC 5321 4.5.2). The bytes kept are covered by `reservation` as they grow
/// (the caller keeps it as long as it keeps the body).
pub async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    reservation: &mut Reservation,
) -> std::io::Result<Body> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(1024);
    let mut too_big = false;
    let mut over_budget = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Body::Eof);
        }
        let (chunk, ends_line) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let used = chunk.len();
        line.extend_from_slice(chunk);
        reader.consume(used);
        if ends_line && (line == b".\r\n" || line == b".\n") {
            return Ok(if too_big {
                Body::TooBig
            } else if over_budget {
                Body::OverBudget
            } else {
                Body::Complete(body)
            });
        }
        if !too_big && body.len() + line.len() > max {
            too_big = true;
            body = Vec::new();
        }
        // Grow by at most a quarter (or 64 KiB) at a time, and cover the capacity, not
        // only the content: the budget bounds memory allocated, not just bytes kept.
        let needed = body.len() + line.len();
        let capacity = if needed > body.capacity() {
            needed.max(body.capacity() + (body.capacity() / 4).max(64 * 1024))
        } else {
            body.capacity()
        };
        if !too_big && !over_budget && !reservation.cover(capacity) {
            over_budget = true;
            body = Vec::new();
        }
        if !too_big && !over_budget && capacity > body.capacity() {
            body.reserve_exact(capacity - body.len());
        }
        if too_big || over_budget {
            // Only the final dot matters now: forget the line, but remember whether it
            // could still be a lone dot.
            if ends_line {
                line.clear();
            } else if line.len() > 2 {
                line.truncate(2);
                line.fill(b'x');
            }
            continue;
        }
        if !ends_line {
            continue;
        }
        let mut content = &line[..line.len() - 1];
        if let Some(rest) = content.strip_suffix(b"\r") {
            content = rest;
        }
        if let Some(rest) = content.strip_prefix(b".") {
            content = rest;
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::MemoryBudget;

    async fn body(input: &[u8], max: usize) -> Body {
        let mut r = tokio::io::BufReader::with_capacity(7, input);
        let mut held = MemoryBudget::new(1 << 20).reservation();
        read_body(&mut r, max, &mut held).await.unwrap()
    }

    #[tokio::test]
    async fn body_over_budget_is_consumed_to_the_dot() {
        let budget = MemoryBudget::new(128 * 1024);
        let mut other = budget.reservation();
        assert!(other.cover(100 * 1024));
        let mut input = b"y".repeat(50_000);
        input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        let mut r = tokio::io::BufReader::with_capacity(7, &input[..]);
        let mut held = budget.reservation();
        assert_eq!(
            read_body(&mut r, 1 << 20, &mut held).await.unwrap(),
            Body::OverBudget
        );
        assert_eq!(
            read_line(&mut r, 100).await.unwrap(),
            Line::Complete(b"QUIT".to_vec())
        );
        drop(other);
        let mut r = tokio::io::BufReader::with_capacity(7, &input[..]);
        let Body::Complete(body) = read_body(&mut r, 1 << 20, &mut held).await.unwrap() else {
            panic!("not complete");
        };
        // What the vector holds is covered, allocation included.
        assert!(
            held.bytes() >= body.capacity(),
            "{} < {}",
            held.bytes(),
            body.capacity()
        );
    }

    #[tokio::test]
    async fn body_unstuffs_and_normalises_line_endings() {
        let got = body(b"a\r\n..dot\nbare\r\n.\r\nNEXT", 1000).await;
        assert_eq!(got, Body::Complete(b"a\r\n.dot\r\nbare\r\n".to_vec()));
        assert_eq!(body(b".\n", 10).await, Body::Complete(Vec::new()));
    }

    #[tokio::test]
    async fn body_too_big_is_consumed_to_the_dot() {
        let mut input = b"x".repeat(100);
        input.extend_from_slice(b"\r\nline\r\n.\r\nQUIT\r\n");
        let mut r = tokio::io::BufReader::with_capacity(7, &input[..]);
        let mut held = MemoryBudget::new(1 << 20).reservation();
        assert_eq!(
            read_body(&mut r, 10, &mut held).await.unwrap(),
            Body::TooBig
        );
        assert_eq!(
            read_line(&mut r, 100).await.unwrap(),
            Line::Complete(b"QUIT".to_vec())
        );
    }

    #[tokio::test]
    async fn body_eof_is_reported() {
        assert_eq!(body(b"partial\r\n", 1000).await, Body::Eof);
    }

    #[tokio::test]
    async fn a_line_without_cr_is_held_to_the_same_bound() {
        // Found by the fuzzer: 11 bytes and a bare LF came through a bound of 10.
        let mut r = tokio::io::BufReader::with_capacity(7, &b"ABCDEFGHIJK\nNOOP\n"[..]);
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Complete(b"NOOP".to_vec())
        );
    }

    #[tokio::test]
    async fn long_lines_are_discarded_whole() {
        let mut input = b"A".repeat(50);
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut r = tokio::io::BufReader::with_capacity(7, &input[..]);
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut r, 10).await.unwrap(),
            Line::Complete(b"NOOP".to_vec())
        );
        assert_eq!(read_line(&mut r, 10).await.unwrap(), Line::Eof);
    }
}
