//! TOP cuts a message while streaming it (`tern_net::dotstuff`), without parsing it;
//! `tern-message` splits header from body for everything else (summaries, sections,
//! NNTP HEAD and BODY sizes). The two must agree on where the header ends, on every
//! message: the fixtures and thousands of mutations of them, cut into chunks of every
//! size the server might read.

use tern_message::fixtures::{ALTERNATIVE, GROUPS, MIXED, SIMPLE};
use tern_net::dotstuff::{DotStuffer, Part};

fn top0(message: &[u8], chunk: usize) -> Vec<u8> {
    let mut s = DotStuffer::new(Part::Top(0));
    let mut out = Vec::new();
    for c in message.chunks(chunk.max(1)) {
        s.feed(c, &mut out);
        if s.done() {
            break;
        }
    }
    s.finish(&mut out);
    out
}

/// What TOP n 0 must send: the header with its blank line, dot-stuffed, then `.`.
fn expected(message: &[u8]) -> Vec<u8> {
    let end = tern_message::header::parse_header(message, 0, message.len()).1;
    let mut s = DotStuffer::new(Part::Whole);
    let mut out = Vec::new();
    s.feed(&message[..end], &mut out);
    s.finish(&mut out);
    out
}

#[test]
fn top_and_the_message_crate_agree_on_the_header() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rng = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let fixtures = [SIMPLE, ALTERNATIVE, MIXED, GROUPS];
    for i in 0..3000 {
        let mut m = fixtures[i % 4].to_vec();
        for _ in 0..rng() % 4 {
            let at = (rng() as usize) % (m.len() + 1);
            let insert: &[u8] =
                [&b"\r\n"[..], b"\n", b"\r", b".", b"\r\n\r\n", b" x"][(rng() % 6) as usize];
            m.splice(at..at, insert.iter().copied());
        }
        let chunk = 1 + (rng() % 64) as usize;
        assert_eq!(
            String::from_utf8_lossy(&top0(&m, chunk)),
            String::from_utf8_lossy(&expected(&m)),
            "{:?} in chunks of {chunk}",
            String::from_utf8_lossy(&m)
        );
    }
}
