//! `tern serve` under hostile load, seen from outside: what an operator would check
//! with `/proc` and a client while someone floods a port.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TernServer;

fn proc_limits_open_files(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn first_line(addr: std::net::SocketAddr) -> String {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start(tmp.path(), "");
    let (soft, hard) = proc_limits_open_files(server.pid().unwrap());
    assert_eq!(soft, hard, "soft limit left below the hard limit");
}

#[test]
fn a_flood_of_idle_sync_connections_leaves_imap_and_lmtp_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start_with(
        tmp.path(),
        "[sync]\nmax_connections = 8\nmax_connections_per_ip = 4\n",
        "sync = \"127.0.0.1:0\"",
    );
    let sync = server.sync.unwrap();
    let pid = server.pid().unwrap();
    let before = open_files(pid);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let stream = TcpStream::connect(sync).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("* BYE") {
            refused += 1;
            // The server closes a refused connection at once.
            let mut rest = String::new();
            assert_eq!(reader.read_line(&mut rest).unwrap(), 0);
        } else {
            assert!(line.starts_with("* OK"), "{line}");
            held.push(reader);
        }
    }
    assert_eq!(held.len(), 4, "per-address limit");
    assert_eq!(refused, 196);
    // The server holds the admitted connections only.
    assert!(
        open_files(pid) < before + 20,
        "{} open files",
        open_files(pid)
    );
    // IMAP and LMTP answer as if nothing happened.
    assert!(first_line(server.imap).starts_with("* OK"));
    let mut lmtp = TcpStream::connect(server.lmtp).unwrap();
    lmtp.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(lmtp.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");
    lmtp.write_all(b"LHLO x\r\n").unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("250 ") {
            break;
        }
    }
}
