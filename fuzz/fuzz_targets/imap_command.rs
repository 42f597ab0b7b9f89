//! Fuzzes both layers of the IMAP command parser: the bytes go through
//! `CommandReader` (small limits, chunked by the first input byte, synchronizing
//! literals sometimes refused) and every assembled command through `parse_command`,
//! in both name modes; the raw input is also parsed directly as one command, and as
//! a CATENATE URL.
//! Any panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_imap::imap_url::MessageUrl;
use tern_imap::parser::{parse_command, CommandReader, Event, Limits};

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data, false);
    let _ = parse_command(data, true);
    if let Ok(url) = MessageUrl::parse(&String::from_utf8_lossy(data)) {
        let _ = url.cut(data);
    }

    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x3f) + 1;
    let refuse = control & 0x40 != 0;
    let limits = Limits {
        max_line: 256,
        max_literal: 128,
        max_nonsync_literal: 64,
        max_command: 512,
        max_discard: 4096,
    };
    let mut reader = CommandReader::new(limits);
    let mut rest = stream;
    while !rest.is_empty() {
        let piece = &rest[..chunk.min(rest.len())];
        let (used, event) = reader.feed(piece);
        assert!(used <= piece.len());
        match event {
            Event::NeedMore => assert_eq!(used, piece.len()),
            Event::Command(bytes) => {
                assert!(used > 0);
                assert!(bytes.len() <= limits.max_command);
                let _ = parse_command(&bytes, false);
                let _ = parse_command(&bytes, true);
            }
            Event::Continue { .. } => {
                assert!(used > 0);
                if refuse {
                    assert!(reader.refuse());
                }
            }
            Event::Rejected { .. } | Event::Fatal { .. } => assert!(used > 0),
        }
        rest = &rest[used..];
    }
});
