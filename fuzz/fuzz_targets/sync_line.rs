//! Fuzzes the replication protocol's wire layer (`tern_sync::wire`): the bytes go
//! through `LineReader` (small limits; synchronizing literals accepted or refused by
//! the first input byte) until the end of the stream or a fatal error, and every line
//! read through both `parse_command` and `parse_response`, borrowed and owned, and every
//! command through the protocol's typed decoding (`Request::parse`). Checks
//! that the reader makes progress and that what it holds stays within its limits, and
//! that a command the protocol accepts re-encodes (`Request::encode`) to a line that
//! parses back to the same encoding; any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_sync::protocol::Request;
use tern_sync::wire::{parse_command, parse_response, Encoder, Limits, LineReader, WireError};

/// `request` encoded under tag `t`.
fn encoded(request: &Request) -> Vec<u8> {
    let mut enc = Encoder::new();
    request.encode(&mut enc, "t");
    enc.into_bytes()
}

/// Reads one command line from `bytes` (default limits) and decodes it.
async fn reparse(bytes: &[u8]) -> Request {
    let mut reader = LineReader::new(bytes, Limits::default());
    let line = match reader.read_line(&mut |_| true).await {
        Ok(l) => l,
        Err(e) => panic!("re-encoded command unreadable: {e}"),
    };
    let cmd = match line.into_command() {
        Ok(c) => c,
        Err(e) => panic!("re-encoded command unparsable: {e}"),
    };
    match Request::parse(cmd) {
        Ok(r) => r,
        Err(e) => panic!("re-encoded command refused: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_line: 128,
        max_literal: 64,
        max_literals_total: 256,
        max_depth: 4,
        max_tokens: 64,
        // Both behaviours of an oversized non-synchronizing literal get fuzzed.
        skip_oversized: control & 0x80 == 0,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        let mut reader = LineReader::new(stream, limits);
        let mut reads = 0usize;
        let mut on_sync = |n: u64| control & 1 == 0 || n < u64::from(control >> 1);
        loop {
            reads += 1;
            assert!(reads <= stream.len() + 1, "the reader must make progress");
            match reader.read_line(&mut on_sync).await {
                Ok(line) => {
                    let _ = parse_command(&line);
                    let _ = parse_response(&line);
                    // Authenticated-state decoding (UPDATE items, uid sets, plists) too.
                    if let Ok(cmd) = line.clone().into_command() {
                        if let Ok(request) = Request::parse(cmd) {
                            // What was accepted, once normalised by a round trip,
                            // encodes the same again.
                            let once = encoded(&request);
                            let twice = encoded(&reparse(&once).await);
                            assert_eq!(once, twice, "encoding is not stable");
                        }
                    }
                    let _ = line.into_response();
                }
                Err(e) if e.is_fatal() => {
                    assert!(matches!(
                        e,
                        WireError::Io(_)
                            | WireError::LineTooLong
                            | WireError::LiteralRefused { .. }
                            | WireError::Eof
                    ));
                    break;
                }
                Err(_) => {}
            }
        }
    });
});
