//! Whole messages (`BODY[]`, `RFC822`, their partials) read back exactly as stored,
//! in order, whatever their sizes (around the FETCH output buffer's 256 KiB and the
//! 64 KiB copy chunk, and far above) and however slowly the client reads (the
//! socket's buffer full again and again); NUL masked in a message that holds it,
//! also once its summary is cached.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use tern_store::Flags;

/// A message of `size` bytes whose body varies with `seed` (so a misplaced or
/// repeated piece shows), in lines of 78.
fn message(seed: u32, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: message {seed}\r\nFrom: a@example.org\r\n\r\n").into_bytes();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(7);
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.push(b'!' + (x % 90) as u8);
        if m.len() % 80 == 78 {
            m.extend_from_slice(b"\r\n");
        }
    }
    m
}

fn store(server: &Server, raw: &[u8]) {
    server
        .store
        .append_as_owner("alice", "INBOX", &Flags::new(), 1_700_000_000, raw)
        .unwrap();
}

/// The literals of one response line, in order.
fn literals(line: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(open) = line[at..].iter().position(|&b| b == b'{') {
        let open = at + open;
        let Some(close) = line[open..].iter().position(|&b| b == b'}') else {
            break;
        };
        let close = open + close;
        let Ok(len) = std::str::from_utf8(&line[open + 1..close])
            .unwrap_or("x")
            .parse::<usize>()
        else {
            at = open + 1;
            continue;
        };
        assert_eq!(&line[close + 1..close + 3], b"\r\n");
        found.push(line[close + 3..close + 3 + len].to_vec());
        at = close + 3 + len;
    }
    found
}

/// Messages of many sizes, one holding NUL, their summaries cached by a FETCH of
/// their ENVELOPEs (as a client's first look does): BODY[], partials of it and
/// RFC822 all read back as stored, the NUL one masked.
#[test]
fn whole_messages_read_back_as_stored() {
    let server = start();
    let mut stored = Vec::new();
    for (seed, size) in [
        (1u32, 300usize),
        (2, 70_000),
        (3, 4_500_000),
        (4, 1_000),
        (5, 262_144),
        (6, 262_145),
        (7, 65_536),
        (8, 12),
    ] {
        let m = message(seed, size);
        store(&server, &m);
        stored.push(m);
    }
    let nul = b"Subject: nul\r\n\r\nbefore\0after\0\r\n".to_vec();
    store(&server, &nul);
    stored.push(nul.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect());
    for n in 0..30u32 {
        let m = message(100 + n, 2_000 + 997 * n as usize);
        store(&server, &m);
        stored.push(m);
    }

    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("FETCH 1:* (ENVELOPE)");
    for round in 0..2 {
        c.send(format!("a{round} FETCH 1:* (BODY.PEEK[])\r\n").as_bytes());
        for (i, want) in stored.iter().enumerate() {
            let line = c.line_bytes();
            let head = format!("* {} FETCH (BODY[] {{{}}}\r\n", i + 1, want.len());
            assert!(
                line.starts_with(head.as_bytes()),
                "message {}: {:?}",
                i + 1,
                &line[..60.min(line.len())]
            );
            assert!(line.ends_with(b")\r\n"), "message {}", i + 1);
            assert_eq!(&literals(&line)[0], want, "message {} round {round}", i + 1);
        }
        assert!(c.line().starts_with(&format!("a{round} OK")));
    }

    // Partials, and two whole-message items in one response.
    c.send(b"p FETCH 1:* (UID BODY.PEEK[]<5.70000> RFC822.SIZE BODY.PEEK[]<0.3>)\r\n");
    for (i, want) in stored.iter().enumerate() {
        let line = c.line_bytes();
        let lits = literals(&line);
        let from = 5.min(want.len());
        let to = (5 + 70_000).min(want.len());
        assert_eq!(lits[0], want[from..to], "message {}", i + 1);
        assert_eq!(lits[1], want[..3.min(want.len())], "message {}", i + 1);
        let size = format!("RFC822.SIZE {}", want.len());
        assert!(
            String::from_utf8_lossy(&line).contains(&size),
            "message {}",
            i + 1
        );
    }
    assert!(c.line().starts_with("p OK"));

    // RFC822 (which also sets \Seen: its FLAGS come in the same response or after).
    c.send(b"r FETCH 1:* RFC822\r\n");
    let mut seen = 0;
    loop {
        let line = c.line_bytes();
        if line.starts_with(b"r OK") {
            break;
        }
        if let Some(lit) = literals(&line).first() {
            let n: usize = String::from_utf8_lossy(&line[2..])
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(lit, &stored[n - 1], "RFC822 of message {n}");
            seen += 1;
        }
    }
    assert_eq!(seen, stored.len());
}

/// A client that reads slowly (its socket's buffer full again and again while a
/// 30 MiB answer is sent) still gets every byte, in order.
#[test]
fn a_slow_reader_gets_every_byte() {
    let server = start();
    let stored = store_large(&server, 500);
    let mut c = Client::login(server.addr, "alice");
    c.ok("SELECT INBOX");
    c.ok("FETCH 1:* (ENVELOPE)");
    let mut raw = ask_for_every_body(&server);
    // Let the server fill the socket's buffers, then read in small pieces with pauses.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    let mut piece = vec![0u8; 64 * 1024];
    let total: usize = stored.iter().map(Vec::len).sum();
    let mut pauses = 0;
    // Message bytes hold no space, so "\r\nc " is the tagged reply.
    while !ends_with_tagged(&got) {
        let n = raw.read(&mut piece).unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&piece[..n]);
        if pauses < 40 && got.len() > pauses * total / 40 {
            pauses += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let rest = after_bodies(&got, &stored);
    assert!(
        rest.starts_with(b"c OK"),
        "{:?}",
        String::from_utf8_lossy(rest)
    );
}

/// A client that asks for 30 MB and reads none of it holds nothing another session
/// needs: with the answer stuck in the socket's buffers, a second session logs in,
/// stores a flag, fetches and NOOPs, and only then does the first read its answer,
/// all of it. (A lone session's FETCH runs its steps on the runtime's thread; only
/// the production of each piece may, never the wait for the reader.)
#[test]
fn a_fetch_waiting_for_its_reader_holds_up_no_one() {
    let server = start();
    let stored = store_large(&server, 700);
    let mut raw = ask_for_every_body(&server);
    std::thread::sleep(Duration::from_millis(300));
    let mut other = Client::login(server.addr, "alice");
    other.ok("SELECT INBOX");
    other.ok("STORE 3 +FLAGS.SILENT (\\Flagged)");
    let flags = other.ok("FETCH 3 (FLAGS)");
    assert!(flags[0].contains("\\Flagged"), "{flags:?}");
    other.ok("NOOP");
    other.ok("LOGOUT");
    let mut got = Vec::new();
    let mut piece = vec![0u8; 256 * 1024];
    while !ends_with_tagged(&got) {
        let n = raw.read(&mut piece).unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&piece[..n]);
    }
    let rest = after_bodies(&got, &stored);
    // The other session's \Flagged may be reported before the tagged reply.
    let rest = String::from_utf8_lossy(rest);
    let tagged = rest.lines().find(|l| !l.starts_with("* ")).unwrap_or("");
    assert!(tagged.starts_with("c OK"), "{rest:?}");
}

/// Twelve messages of about 2.5 MB (30 MB in all) stored in alice's INBOX, their
/// bodies varying with `seed`.
fn store_large(server: &Server, seed: u32) -> Vec<Vec<u8>> {
    (0..12u32)
        .map(|n| {
            let m = message(seed + n, 2_500_000 + 1_234 * n as usize);
            store(server, &m);
            m
        })
        .collect()
}

/// A connection that logs in as alice, examines INBOX and asks for every message's
/// `BODY[]` (tag `c`), with nothing read yet.
fn ask_for_every_body(server: &Server) -> std::net::TcpStream {
    use std::io::Write;
    let mut raw = std::net::TcpStream::connect(server.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.write_all(b"a LOGIN alice pw\r\nb EXAMINE INBOX\r\nc FETCH 1:* (BODY.PEEK[])\r\n")
        .unwrap();
    raw
}

/// Checks that `got` holds `stored` as the `BODY[]` responses of messages 1 to n, in
/// order and byte for byte, and returns what follows them.
fn after_bodies<'a>(got: &'a [u8], stored: &[Vec<u8>]) -> &'a [u8] {
    let mut at = find(got, b"* 1 FETCH").expect("the first response");
    for (i, want) in stored.iter().enumerate() {
        let head = format!("* {} FETCH (BODY[] {{{}}}\r\n", i + 1, want.len());
        assert!(got[at..].starts_with(head.as_bytes()), "message {}", i + 1);
        at += head.len();
        assert!(
            got[at..at + want.len()] == want[..],
            "message {} differs",
            i + 1
        );
        at += want.len();
        assert_eq!(&got[at..at + 3], b")\r\n");
        at += 3;
    }
    &got[at..]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn ends_with_tagged(got: &[u8]) -> bool {
    got.ends_with(b"\r\n") && find(&got[got.len().saturating_sub(200)..], b"\r\nc ").is_some()
}
