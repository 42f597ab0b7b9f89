//! IDLE (RFC 2177): the session waits for changes to its mailbox, for NOTIFY events,
//! or for the client's DONE, whichever comes first, and reports changes as they
//! happen.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::session::{Outcome, Session};

impl<W: AsyncWrite + Unpin + Send> Session<W> {
    /// IDLE (RFC 2177): report changes as they happen until the client says DONE.
    /// Returns `None` when the connection must close.
    pub(crate) async fn idle<R: AsyncRead + Unpin>(
        &mut self,
        _tag: &str,
        reader: &mut BufReader<R>,
    ) -> Option<Outcome> {
        if self.actor.is_none() {
            return Some(Outcome::no("Log in first"));
        }
        self.writer.write_all(b"+ idling\r\n").await.ok()?;
        self.writer.flush().await.ok()?;
        let mut watch = self.selected.as_ref().map(|s| s.watch.clone());
        // Kept across iterations: a partly read DONE line survives a wake-up.
        let mut line = Vec::new();
        loop {
            let changed = async {
                match watch.as_mut() {
                    Some(w) => w.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let mut watch_closed = false;
            tokio::select! {
                read = read_short_line(reader, &mut line) => {
                    match read {
                        Ok(true) => {}
                        _ => return None,
                    }
                    return Some(if line.eq_ignore_ascii_case(b"DONE") {
                        Outcome::ok("IDLE terminated")
                    } else {
                        Outcome::bad("Expected DONE")
                    });
                }
                alive = changed => {
                    watch_closed = !alive;
                    // Thousands of sessions may watch one mailbox: spread their queries
                    // over a few milliseconds so the one that made the change (a
                    // delivery waiting to send its 250) is not queued behind them all.
                    // A mailbox watched by a few (a user's own INBOX) is told at once.
                    let crowded = self
                        .selected
                        .as_ref()
                        .is_some_and(|s| self.store.watchers(&s.id) > SPREAD_ABOVE);
                    if crowded {
                        tokio::time::sleep(Duration::from_micros(rand_jitter_micros())).await;
                    }
                    tokio::task::block_in_place(|| self.report_changes(true));
                }
                _ = crate::notify::woken(&mut self.notifying) => {
                    if !self.deliver_notifications().await {
                        return None;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(120)) => {
                    // Catch changes made by other processes, and keep NATs awake.
                    tokio::task::block_in_place(|| self.report_changes(true));
                    if self.out.is_empty() {
                        self.untagged("OK Still here");
                    }
                }
            }
            if watch_closed {
                watch = None;
            }
            let out = std::mem::take(&mut self.out);
            if !out.is_empty() {
                self.writer.write_all(&out).await.ok()?;
                self.writer.flush().await.ok()?;
            }
        }
    }
}

/// Reads one line of at most 1 KiB (the DONE of IDLE) into `line`, which may already
/// hold the start of it; false at end of input.
async fn read_short_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    // The line may already hold part of it from before a wake-up: 1 KiB in all.
    let room = 1024u64.saturating_sub(line.len() as u64);
    if room == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long in IDLE",
        ));
    }
    let n = (&mut *reader).take(room).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(false);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(true)
}

/// Watchers of one mailbox above which IDLE sessions spread their wake-ups.
const SPREAD_ABOVE: usize = 64;

/// A pseudo-random delay of up to 50 ms, different for each call.
fn rand_jitter_micros() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % 50_000
}
