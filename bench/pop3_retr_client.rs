//! A POP3 RETR client with almost no cost of its own, to measure the server's share of
//! `RETR 1..n` (Python's poplib spends more time parsing lines than the servers spend
//! answering). Standard library only: `bench/pop3_nntp_compare.py` compiles it with
//! `rustc -O`.
//!
//!     pop3_retr_client HOST:PORT USER PASSWORD N ITERATIONS
//!
//! Prints one line of JSON: for each iteration the seconds of N NOOPs one at a time
//! (`noop`: the round trip itself, which no server can go below), of N RETRs one at
//! a time (`seq`) and of the same N pipelined (`pipe`), and the octets received per
//! round.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    /// Reads more; positions into the buffer stay valid.
    fn fill(&mut self) {
        let len = self.buf.len();
        self.buf.resize(len + 256 * 1024, 0);
        let n = self.stream.read(&mut self.buf[len..]).expect("read");
        assert!(n > 0, "server closed the connection");
        self.buf.truncate(len + n);
    }

    /// One status line; panics on -ERR.
    fn line(&mut self) -> String {
        // Between answers everything read may be dropped.
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        loop {
            if let Some(i) = find(&self.buf[self.start..], b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.start..self.start + i]).into_owned();
                self.start += i + 2;
                assert!(line.starts_with("+OK"), "{line}");
                return line;
            }
            self.fill();
        }
    }

    /// A multi-line answer after its status line: the octets up to and including the
    /// terminating `.` line. Each byte is looked at once.
    fn multi(&mut self) -> usize {
        self.line();
        let begin = self.start;
        let mut at = self.start;
        loop {
            // `at`: the start of a line not yet examined.
            while let Some(i) = self.buf[at..].iter().position(|&b| b == b'\n') {
                let end = at + i + 1;
                if &self.buf[at..end] == b".\r\n" {
                    self.start = end;
                    return end - begin;
                }
                at = end;
            }
            self.fill();
        }
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("write");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, user, password, n, iterations] = &args[..] else {
        eprintln!("usage: pop3_retr_client HOST:PORT USER PASSWORD N ITERATIONS");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N");
    let iterations: usize = iterations.parse().expect("ITERATIONS");
    let mut rounds = Vec::new();
    for _ in 0..iterations {
        let stream = TcpStream::connect(addr.as_str()).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = Conn {
            stream,
            buf: Vec::with_capacity(1 << 20),
            start: 0,
        };
        c.line();
        c.send(&format!("USER {user}\r\n"));
        c.line();
        c.send(&format!("PASS {password}\r\n"));
        c.line();
        let t = Instant::now();
        for _ in 1..=n {
            c.send("NOOP\r\n");
            c.line();
        }
        let noop = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut octets = 0;
        for i in 1..=n {
            c.send(&format!("RETR {i}\r\n"));
            octets += c.multi();
        }
        let seq = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let all: String = (1..=n).map(|i| format!("RETR {i}\r\n")).collect();
        c.send(&all);
        for _ in 1..=n {
            c.multi();
        }
        let pipe = t.elapsed().as_secs_f64();
        // QUIT and wait for its answer, so the maildrop is free for the next round.
        c.send("QUIT\r\n");
        c.line();
        rounds.push(format!(
            "{{\"noop\": {noop:.6}, \"seq\": {seq:.6}, \"pipe\": {pipe:.6}, \"octets\": {octets}}}"
        ));
    }
    println!("[{}]", rounds.join(", "));
}
