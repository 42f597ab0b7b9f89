//! Fuzzes what an NNTP client controls: command lines (`tern_nntp::parse`), wildmats
//! (LIST ACTIVE, NEWNEWS) matched against group names, and articles offered by POST
//! and IHAVE. Any panic is a bug. Properties checked on the way:
//! - a wildmat with no special character matches exactly the name it spells, `*`
//!   matches every name and `!*` none;
//! - an article accepted keeps every byte of its body and gets a Path header first;
//!   one with a NUL octet is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_nntp::fuzzing::{prepare_article, wildmat_matches};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    for line in rest.split(|&b| b == b'\n') {
        let _ = tern_nntp::parse(line.strip_suffix(b"\r").unwrap_or(line));
    }

    // The first line is a wildmat, the others group names.
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.lines();
    let wildmat = lines.next().unwrap_or_default();
    for name in lines.take(64) {
        let _ = wildmat_matches(wildmat, name);
        assert!(wildmat_matches("*", name));
        assert!(!wildmat_matches("!*", name));
        let plain = !name.is_empty() && !name.bytes().any(|b| b"*?[]\\!,".contains(&b));
        if plain {
            assert!(
                wildmat_matches(name, name),
                "{name:?} does not match itself"
            );
            let longer = format!("{name}x");
            assert!(!wildmat_matches(name, &longer));
        }
    }

    // The whole input as an article, POSTed or offered by IHAVE.
    let offered = (control & 1 == 1).then_some("<fuzz@example.org>");
    match prepare_article(rest, offered) {
        Ok((stored, groups)) => {
            assert!(!rest.contains(&0));
            assert!(stored.starts_with(b"Path: "));
            assert!(!groups.is_empty() && groups.len() <= 100);
            let body_at = rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
                .or_else(|| rest.windows(2).position(|w| w == b"\n\n").map(|i| i + 2));
            if let Some(at) = body_at {
                assert!(stored.ends_with(&rest[at..]), "the body was changed");
            }
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});
