//! A bare IMAP client for end-to-end tests: the real protocol text, line by line.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A bare IMAP connection speaking the real protocol text.
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    pub fn login(addr: SocketAddr, user: &str, password: &str) -> Imap {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut c = Imap {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            tag: 0,
        };
        let mut greeting = String::new();
        c.reader.read_line(&mut greeting).unwrap();
        let done = c.cmd(&format!("LOGIN {user} {password}"));
        assert!(done.last().unwrap().contains("OK"), "{done:?}");
        c
    }

    /// Sends one command; returns every line up to and including the tagged one.
    pub fn cmd(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "{lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if last {
                return lines;
            }
        }
    }
}

/// The number after `key` in `text` (`HIGHESTMODSEQ 12`, `UIDVALIDITY 3`).
pub fn number_after(lines: &[String], key: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| {
            let rest = l.split(key).nth(1)?;
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
}
