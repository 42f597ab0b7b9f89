//! W2's IMAP steps with a client that costs almost nothing itself, so that each step's
//! time is the server's share. Python's line handling (even `imap_w2_lean.py`'s lean
//! client) spends about a millisecond on a 3,000-line answer, which a server answering
//! in a few milliseconds cannot be compared through. Standard library only:
//! `bench/imap_w2_lean.py --client compiled` compiles it with `rustc -O` and runs it
//! against every server.
//!
//!     imap_w2_client HOST:PORT USER PASSWORD REPEAT WORD
//!
//! Runs, on INBOX: LOGIN; SELECT, FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
//! ENVELOPE), FETCH 1:500 BODY.PEEK[] and UID SEARCH BODY WORD, REPEAT times each;
//! then once each STORE 1:* +FLAGS (\Seen), STORE +FLAGS.SILENT (\Deleted) on every
//! 20th message, EXPUNGE. Prints one line of JSON: seconds per step (the median of the
//! repeats for the read-only steps) and what the answers held, for the caller's checks.
//!
//!     imap_w2_client HOST:PORT USER PASSWORD REPEAT --examine COMMAND
//!
//! Logs in, EXAMINEs INBOX and runs one read-only COMMAND (`FETCH 1:* (FLAGS)`,
//! `SEARCH UNSEEN`) REPEAT times after five unmeasured runs; prints the median,
//! lowest and 90th percentile in milliseconds, as JSON.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// A connection with one read buffer, allocated once: literals are skipped by their
/// length without being copied or kept.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The unread octets are `buf[lo..hi]`.
    lo: usize,
    hi: usize,
    tag: u32,
    /// The line being read, literals left out.
    line: Vec<u8>,
}

/// What one command's answer held.
#[derive(Default)]
struct Answer {
    /// Untagged lines with ` FETCH (`.
    fetches: usize,
    /// Untagged lines ending in ` EXPUNGE`.
    expunges: usize,
    /// Numbers in `* SEARCH` lines.
    found: usize,
    /// The number before ` EXISTS`, if any.
    exists: Option<usize>,
}

impl Conn {
    /// Reads more into the buffer.
    fn more(&mut self) {
        if self.lo == self.hi {
            (self.lo, self.hi) = (0, 0);
        } else if self.hi == self.buf.len() {
            self.buf.copy_within(self.lo..self.hi, 0);
            self.hi -= self.lo;
            self.lo = 0;
        }
        if self.hi == self.buf.len() {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.hi..]).expect("read");
        assert!(n > 0, "server closed the connection");
        self.hi += n;
    }

    /// Appends to `self.line` everything up to and including the next LF.
    fn segment(&mut self) {
        loop {
            if let Some(i) = self.buf[self.lo..self.hi].iter().position(|&b| b == b'\n') {
                self.line.extend_from_slice(&self.buf[self.lo..self.lo + i + 1]);
                self.lo += i + 1;
                return;
            }
            self.line.extend_from_slice(&self.buf[self.lo..self.hi]);
            self.lo = self.hi;
            self.more();
        }
    }

    /// Passes over `n` octets.
    fn skip(&mut self, mut n: usize) {
        loop {
            let take = n.min(self.hi - self.lo);
            self.lo += take;
            n -= take;
            if n == 0 {
                return;
            }
            self.more();
        }
    }

    /// Reads the next line into `self.line` (without its CRLF). A literal the line
    /// announces is passed over by its length and the line goes on after it.
    fn read_line(&mut self) {
        self.line.clear();
        loop {
            let from = self.line.len();
            self.segment();
            match literal(&self.line[from..]) {
                Some(n) => self.skip(n),
                None => break,
            }
        }
        let len = self.line.len().saturating_sub(2);
        self.line.truncate(len);
    }

    /// Sends a command and reads its answer up to the tagged line, which must be OK.
    fn cmd(&mut self, text: &str) -> (f64, Answer) {
        self.tag += 1;
        let tag = format!("W{} ", self.tag);
        let t0 = Instant::now();
        self.stream
            .write_all(format!("{tag}{text}\r\n").as_bytes())
            .expect("write");
        let mut answer = Answer::default();
        loop {
            self.read_line();
            let line = &self.line[..];
            if line.starts_with(tag.as_bytes()) {
                let took = t0.elapsed().as_secs_f64();
                let ok = line[tag.len()..].starts_with(b"OK");
                assert!(ok, "{text}: {}", String::from_utf8_lossy(line));
                return (took, answer);
            }
            if !line.starts_with(b"* ") {
                continue;
            }
            if find(line, b" FETCH (").is_some() {
                answer.fetches += 1;
            } else if line.ends_with(b" EXPUNGE") {
                answer.expunges += 1;
            } else if line.ends_with(b" EXISTS") {
                answer.exists = std::str::from_utf8(&line[2..line.len() - 7])
                    .ok()
                    .and_then(|n| n.parse().ok());
            } else if line.starts_with(b"* SEARCH") {
                answer.found += line.split(|&b| b == b' ').count() - 2;
            }
        }
    }
}

/// The length of the literal a line (with its CRLF) announces at its end, if it does.
fn literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..].strip_suffix(b"+").unwrap_or(&body[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let one_command = args.len() == 7 && args[5] == "--examine";
    if args.len() != 6 && !one_command {
        eprintln!("usage: imap_w2_client HOST:PORT USER PASSWORD REPEAT (WORD | --examine COMMAND)");
        std::process::exit(2);
    }
    let repeat: usize = args[4].parse().expect("REPEAT");
    let stream = TcpStream::connect(&args[1]).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut c = Conn {
        stream,
        buf: vec![0; 1 << 20],
        lo: 0,
        hi: 0,
        tag: 0,
        line: Vec::new(),
    };
    c.read_line(); // greeting
    let mut out: Vec<(String, String)> = Vec::new();
    let secs = |name: &str, t: f64| (name.to_owned(), format!("{t:.6}"));
    let (t, _) = c.cmd(&format!("LOGIN {} {}", args[2], args[3]));
    if one_command {
        c.cmd("EXAMINE INBOX");
        for _ in 0..5 {
            c.cmd(&args[6]);
        }
        let mut ms: Vec<f64> = (0..repeat.max(1)).map(|_| c.cmd(&args[6]).0 * 1e3).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{{\"median_ms\": {:.3}, \"min_ms\": {:.3}, \"p90_ms\": {:.3}}}",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() * 9 / 10]
        );
        return;
    }
    out.push(secs("login", t));
    let mut times = Vec::new();
    let mut exists = 0;
    for _ in 0..repeat {
        let (t, a) = c.cmd("SELECT INBOX");
        times.push(t);
        exists = a.exists.expect("EXISTS");
    }
    out.push(secs("select", median(times)));
    let steps = [
        ("fetch_meta", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)".to_owned()),
        ("fetch_body500", format!("FETCH 1:{} BODY.PEEK[]", exists.min(500))),
        ("search_body", format!("UID SEARCH BODY {}", args[5])),
    ];
    let mut counts: Vec<(String, usize)> = vec![("exists".into(), exists)];
    for (name, command) in &steps {
        let mut times = Vec::new();
        let mut last = Answer::default();
        for _ in 0..repeat {
            let (t, a) = c.cmd(command);
            times.push(t);
            last = a;
        }
        out.push(secs(name, median(times)));
        let n = if *name == "search_body" { last.found } else { last.fetches };
        counts.push((name.to_string(), n));
    }
    let (t, a) = c.cmd("STORE 1:* +FLAGS (\\Seen)");
    out.push(secs("store_seen_all", t));
    counts.push(("store_seen_all".into(), a.fetches));
    let victims: Vec<String> = (20..=exists).step_by(20).map(|n| n.to_string()).collect();
    let (t, _) = c.cmd(&format!("STORE {} +FLAGS.SILENT (\\Deleted)", victims.join(",")));
    out.push(secs("store_deleted", t));
    let (t, a) = c.cmd("EXPUNGE");
    out.push(secs("expunge", t));
    counts.push(("expunged".into(), a.expunges));
    counts.push(("expunge_target".into(), victims.len()));
    let _ = c.cmd("LOGOUT");
    let times: Vec<String> = out.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    println!(
        "{{\"seconds\": {{{}}}, \"counts\": {{{}}}}}",
        times.join(", "),
        counts.join(", ")
    );
}
