//! Tests across the layers: random token trees encoded and read back, and random
//! bytes through the reader and both parsers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::token::classify_atom;
use super::*;

const ATOM_CHARS: &[u8] = b"abcXYZ019\\$:,.-/+=[&!~'";

fn random_atom(rng: &mut StdRng) -> Token {
    let len = rng.random_range(1..12);
    let s: String = (0..len)
        .map(|_| char::from(ATOM_CHARS[rng.random_range(0..ATOM_CHARS.len())]))
        .collect();
    // Normalised the way the parser reads it: "NIL" and small digits are not atoms.
    classify_atom(&s)
}

fn random_text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", " ", "\"", "\\", "é", "日本", "{3}", "(", ")", "]", "\r", "\n", "\0", "NIL", "7",
        "\t", "*", "%",
    ];
    let len = if rng.random_bool(0.02) {
        rng.random_range(900..1100)
    } else {
        rng.random_range(0..12)
    };
    (0..len)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn random_token(rng: &mut StdRng, depth: usize) -> Token {
    match rng.random_range(0..if depth < 8 { 7 } else { 6 }) {
        0 => random_atom(rng),
        1 => Token::Number(if rng.random_bool(0.5) {
            rng.random_range(0..1000)
        } else {
            rng.random_range(0..=i64::MAX as u64)
        }),
        2 | 3 => Token::Str(random_text(rng)),
        4 => {
            let len = rng.random_range(0..40);
            Token::Literal((0..len).map(|_| rng.random::<u8>()).collect())
        }
        5 => Token::Nil,
        _ => {
            let len = rng.random_range(0..5);
            Token::List((0..len).map(|_| random_token(rng, depth + 1)).collect())
        }
    }
}

/// Same value as read back: strings may come back as atoms or literals.
fn same(sent: &Token, got: &Token) -> bool {
    match (sent, got) {
        (Token::List(a), Token::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Token::Str(_), _) | (Token::Atom(_), _) | (Token::Literal(_), _) => {
            sent.as_bytes().is_some() && sent.as_bytes() == got.as_bytes()
        }
        _ => sent == got,
    }
}

fn encode(t: &Token) -> Vec<u8> {
    let mut out = Vec::new();
    t.encode(&mut out);
    out
}

#[tokio::test]
async fn random_token_trees_round_trip_in_one_pipeline() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut sent = Vec::new();
    let mut e = Encoder::new();
    for i in 0..3000 {
        let args: Vec<Token> = (0..rng.random_range(0..6))
            .map(|_| random_token(&mut rng, 1))
            .collect();
        if i % 2 == 0 {
            e.atom(&format!("t{i}")).sp().atom("x-Verb");
        } else {
            e.raw("* KEY");
        }
        for a in &args {
            e.sp().token(a);
        }
        e.crlf();
        sent.push(args);
    }
    let bytes = e.into_bytes();
    let mut reader = LineReader::new(&bytes[..], Limits::default());
    for (i, args) in sent.iter().enumerate() {
        let line = match reader.read_line(&mut |_| panic!("no sync literals")).await {
            Ok(l) => l,
            Err(err) => panic!("line {i}: {err}"),
        };
        let got = if i % 2 == 0 {
            let c = line.into_command();
            assert!(
                matches!(&c, Ok(c) if c.tag == format!("t{i}") && c.verb == "X-VERB"),
                "{c:?}"
            );
            c.map(|c| c.args)
        } else {
            match parse_response(&line) {
                Ok(Response::Untagged { keyword, args }) if keyword == "KEY" => Ok(args),
                other => panic!("line {i}: {other:?}"),
            }
        };
        let Ok(got) = got else {
            panic!("line {i}: {got:?}")
        };
        assert_eq!(got.len(), args.len(), "line {i}");
        for (s, g) in args.iter().zip(&got) {
            assert!(same(s, g), "line {i}: sent {s:?} got {g:?}");
            assert_eq!(encode(s), encode(g), "encoding is canonical");
        }
    }
    assert!(matches!(
        reader.read_line(&mut |_| true).await,
        Err(WireError::Eof)
    ));
}

#[tokio::test]
async fn too_big_then_good_lines_stay_in_step() {
    let limits = Limits {
        max_literal: 100,
        ..Limits::default()
    };
    let mut e = Encoder::new();
    e.atom("a1")
        .sp()
        .atom("UPDATE")
        .sp()
        .literal(&[b'\n'; 101])
        .sp();
    e.literal(b"a2 NOOP\r\n").crlf();
    e.atom("a2").sp().atom("NOOP").crlf();
    e.raw("a3 X (((((((((1)))))))))").crlf();
    e.atom("a4").sp().atom("NOOP").crlf();
    let bytes = e.into_bytes();
    let mut reader = LineReader::new(&bytes[..], limits);
    let first = reader.read_line(&mut |_| true).await;
    assert!(matches!(first, Err(WireError::TooBig { tag: Some(t) }) if t == "a1"));
    let mut results = Vec::new();
    for _ in 0..3 {
        let line = reader.read_line(&mut |_| true).await;
        results.push(line.and_then(|l| parse_command(&l)));
    }
    assert!(matches!(&results[0], Ok(c) if c.tag == "a2"), "{results:?}");
    assert!(matches!(&results[1], Err(WireError::TooBig { tag: Some(t) }) if t == "a3"));
    assert!(matches!(&results[2], Ok(c) if c.tag == "a4"));
    assert!(matches!(
        reader.read_line(&mut |_| true).await,
        Err(WireError::Eof)
    ));
}

/// Bytes that are likely to form grammar, with some noise.
fn random_input(rng: &mut StdRng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"a",
        b"1",
        b"0",
        b"9",
        b" ",
        b"  ",
        b"\r\n",
        b"\n",
        b"\r",
        b"{",
        b"}",
        b"+",
        b"{3}\r\n",
        b"{2+}\r\n",
        b"{0}\r\n",
        b"{99+}\r\n",
        b"\"",
        b"\\",
        b"(",
        b")",
        b"[",
        b"]",
        b"*",
        b"+ ",
        b"* ",
        b"NIL",
        b"OK",
        b"a1 ",
        b"\r\na1 X ",
        b"\r\n* K ",
        b"\r\nb OK [C 1] t",
        b"\xff",
        b"\xc3\xa9",
        b"\0",
        b"9223372036854775808",
    ];
    let len = rng.random_range(0..60);
    let mut out = match rng.random_range(0..3) {
        0 => b"a1 X ".to_vec(),
        1 => b"* K ".to_vec(),
        _ => Vec::new(),
    };
    for _ in 0..len {
        if rng.random_bool(0.1) {
            out.push(rng.random::<u8>());
        } else {
            out.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
        }
    }
    out
}

#[tokio::test]
async fn random_bytes_never_panic_and_stay_bounded() {
    let limits = Limits {
        max_line: 64,
        max_literal: 50,
        max_literals_total: 120,
        max_depth: 4,
        max_tokens: 30,
        skip_oversized: true,
    };
    let mut rng = StdRng::seed_from_u64(2);
    let (mut lines, mut commands, mut responses, mut too_big) = (0u32, 0u32, 0u32, 0u32);
    for _ in 0..100_000 {
        let input = random_input(&mut rng);
        let accept = rng.random_bool(0.7);
        let mut reader = LineReader::new(&input[..], limits);
        let mut reads = 0;
        loop {
            reads += 1;
            assert!(reads <= input.len() + 1, "the reader must make progress");
            match reader.read_line(&mut |n| accept && n < 40).await {
                Ok(line) => {
                    lines += 1;
                    let (text, lits, count) = line.footprint();
                    assert!(text <= limits.max_line * (count + 1));
                    assert!(lits as u64 <= limits.max_literals_total);
                    assert!(count <= limits.max_tokens);
                    commands += u32::from(parse_command(&line).is_ok());
                    responses += u32::from(parse_response(&line).is_ok());
                    let _ = line.clone().into_command();
                    let _ = line.into_response();
                }
                Err(e) if e.is_fatal() => break,
                Err(WireError::TooBig { .. }) => too_big += 1,
                Err(_) => {}
            }
        }
    }
    // The generator reaches every path often enough to mean something.
    assert!(
        lines > 50_000 && commands > 5_000 && responses > 5_000 && too_big > 1_000,
        "{lines} {commands} {responses} {too_big}"
    );
}

#[tokio::test]
async fn before_authentication_literals_are_refused_not_read() {
    let mut input = b"a1 AUTHENTICATE PLAIN {5}\r\n".to_vec();
    input.extend_from_slice(b"a2 AUTHENTICATE PLAIN {1000000+}\r\n");
    input.extend_from_slice(&[b'x'; 100]);
    let mut r = LineReader::new(&input[..], Limits::unauthenticated());
    // A synchronizing literal: refused without a continuation, the session goes on.
    let mut asked = false;
    let e = r
        .read_line(&mut |_| {
            asked = true;
            true
        })
        .await
        .unwrap_err();
    assert!(matches!(e, WireError::TooBig { .. }) && !asked, "{e:?}");
    // A non-synchronizing one: fatal at once, its octets never read.
    let e = r.read_line(&mut |_| true).await.unwrap_err();
    assert!(
        matches!(e, WireError::LiteralRefused { .. }) && e.is_fatal(),
        "{e:?}"
    );
    assert_eq!(r.buffered(), 100);
}
