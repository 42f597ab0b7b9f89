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
/// one (RFC 5321 4.5.2). Everything allocated for the body is covered by
/// `reservation` as it grows (the caller keeps it as long as it keeps the body),
/// including a line that never ends: it moves into the body as it arrives rather
/// than piling up beside it.
pub async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    reservation: &mut Reservation,
) -> std::io::Result<Body> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(1024);
    // Part of the current line is already in `body`: it cannot be the final dot, and
    // its leading dot (if any) has been dealt with.
    let mut line_begun = false;
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
        if ends_line && !line_begun && (line == b".\r\n" || line == b".\n") {
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
                line_begun = false;
            } else if line.len() > 2 {
                line.clear();
                line_begun = true;
            }
            continue;
        }
        if !ends_line {
            if line.len() > LINE_HELD_AT_MOST {
                // All but the last byte, which may be the CR of a CRLF still to come.
                let keep = line.len() - 1;
                let mut part = &line[..keep];
                if !line_begun {
                    part = part.strip_prefix(b".").unwrap_or(part);
                }
                body.extend_from_slice(part);
                line.drain(..keep);
                line_begun = true;
            }
            continue;
        }
        let mut content = &line[..line.len() - 1];
        if let Some(rest) = content.strip_suffix(b"\r") {
            content = rest;
        }
        if !line_begun {
            content = content.strip_prefix(b".").unwrap_or(content);
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
        line.clear();
        line_begun = false;
    }
}

/// The most of an unfinished body line [`read_body`] holds apart from the body.
const LINE_HELD_AT_MOST: usize = 4096;

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

    /// Lines far longer than what is held apart from the body arrive whole, with
    /// their leading dot removed once, a CR split from its LF by the reads, and a
    /// dot inside a long line left alone; after them the final dot is still found.
    #[tokio::test]
    async fn long_lines_move_into_the_body_intact() {
        let long = |c: u8| vec![c; 3 * LINE_HELD_AT_MOST + 5];
        let mut input = Vec::new();
        let mut want = Vec::new();
        input.extend_from_slice(b"..");
        input.extend_from_slice(&long(b'a'));
        input.extend_from_slice(b"\r\n");
        want.extend_from_slice(b".");
        want.extend_from_slice(&long(b'a'));
        want.extend_from_slice(b"\r\n");
        input.extend_from_slice(&long(b'b'));
        input.extend_from_slice(b".\r\r\n");
        want.extend_from_slice(&long(b'b'));
        want.extend_from_slice(b".\r\r\n");
        input.extend_from_slice(&long(b'c'));
        input.extend_from_slice(b"\n.\r\nQUIT\r\n");
        want.extend_from_slice(&long(b'c'));
        want.extend_from_slice(b"\r\n");
        for capacity in [7, 4096, 1 << 16] {
            let mut r = tokio::io::BufReader::with_capacity(capacity, &input[..]);
            let mut held = MemoryBudget::new(1 << 20).reservation();
            let got = read_body(&mut r, 1 << 20, &mut held).await.unwrap();
            assert!(
                got == Body::Complete(want.clone()),
                "reader capacity {capacity}"
            );
            assert_eq!(
                read_line(&mut r, 100).await.unwrap(),
                Line::Complete(b"QUIT".to_vec())
            );
        }
    }

    /// The reader against the rule written plainly, on bodies of random lines (long
    /// and short, with dots, CRs and bare LFs where they matter) read in chunks of
    /// random sizes.
    #[tokio::test]
    async fn bodies_match_the_plain_rule() {
        fn plain(input: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for line in input.split_inclusive(|&b| b == b'\n') {
                let mut content = line.strip_suffix(b"\n").unwrap_or(line);
                content = content.strip_suffix(b"\r").unwrap_or(content);
                if content == b"." {
                    break;
                }
                out.extend_from_slice(content.strip_prefix(b".").unwrap_or(content));
                out.extend_from_slice(b"\r\n");
            }
            out
        }
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..200 {
            let mut input = Vec::new();
            for _ in 0..next(8) {
                // A line is never a lone dot here (that would end the body early): a
                // leading dot is followed by something, and dots and CRs come later.
                let len = [
                    1,
                    5,
                    6,
                    LINE_HELD_AT_MOST - 1,
                    LINE_HELD_AT_MOST,
                    3 * LINE_HELD_AT_MOST,
                ][next(6) as usize];
                if next(3) == 0 {
                    input.push(b'.');
                }
                for k in 0..len {
                    input.push(
                        [b'x', b'.', b'\r'][usize::from(k % 97 == 5) * (1 + next(2) as usize)],
                    );
                }
                input.extend_from_slice(if next(2) == 0 { b"\r\n" } else { b"\n" });
            }
            input.extend_from_slice(b".\r\nAFTER\r\n");
            let capacity = [1, 7, 100, 4096, 65536][next(5) as usize];
            let mut r = tokio::io::BufReader::with_capacity(capacity, &input[..]);
            let mut held = MemoryBudget::new(1 << 20).reservation();
            let got = read_body(&mut r, 1 << 20, &mut held).await.unwrap();
            let Body::Complete(got) = got else {
                panic!("not complete")
            };
            let want = plain(&input);
            if got != want {
                let at = got
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len()));
                panic!("capacity {capacity}: got {} want {} bytes, first difference at {at}: got {:?} want {:?}; input {:?}",
                    got.len(), want.len(), String::from_utf8_lossy(&got[at.saturating_sub(5)..(at+5).min(got.len())]),
                    String::from_utf8_lossy(&want[at.saturating_sub(5)..(at+5).min(want.len())]),
                    String::from_utf8_lossy(&input[..input.len().min(60)]));
            }
            assert_eq!(
                read_line(&mut r, 100).await.unwrap(),
                Line::Complete(b"AFTER".to_vec())
            );
        }
    }

    /// A dot that lands at the start of what is still held of a long line, wherever
    /// the reads cut it, is kept: only a line's first dot is removed.
    #[tokio::test]
    async fn a_dot_where_a_long_line_was_cut_is_kept() {
        for at in LINE_HELD_AT_MOST - 10..LINE_HELD_AT_MOST + 20 {
            let mut line = vec![b'x'; LINE_HELD_AT_MOST + 30];
            line[at] = b'.';
            let mut input = line.clone();
            input.extend_from_slice(b"\r\n.\r\n");
            let mut want = line;
            want.extend_from_slice(b"\r\n");
            assert_eq!(
                body(&input, 1 << 20).await,
                Body::Complete(want),
                "dot at {at}"
            );
        }
    }

    /// A line that is only a dot ends the body only at the start of a line: the end
    /// of a long line that happens to be ".\r\n" does not.
    #[tokio::test]
    async fn a_long_line_ending_in_a_dot_is_not_the_end() {
        let mut input = vec![b'z'; 2 * LINE_HELD_AT_MOST];
        input.extend_from_slice(b".\r\n.\r\n");
        let mut want = vec![b'z'; 2 * LINE_HELD_AT_MOST];
        want.extend_from_slice(b".\r\n");
        assert_eq!(body(&input, 1 << 20).await, Body::Complete(want));
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
