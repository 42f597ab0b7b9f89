//! Fuzzes the arguments of LMTP's MAIL FROM and RCPT TO, the only LMTP command
//! arguments tern parses (DATA bodies go through `net_input`). Any panic is a bug.
//! Properties: an accepted path is at most 256 octets and holds no control
//! character; a recipient's user never holds the `+` that starts the folder (it may
//! be empty: `+folder@` names a shared mailbox).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_lmtp::fuzzing::{mail_from, rcpt_to};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Ok((path, _size)) = mail_from(line) {
            assert!(path.len() <= 256);
            assert!(!path.chars().any(char::is_control));
        }
        if let Ok((address, user, folder)) = rcpt_to(line) {
            assert!(address.len() <= 256);
            assert!(!address.chars().any(char::is_control));
            assert!(!user.contains('+'));
            assert!(folder.is_none_or(|f| !f.is_empty()));
        }
    }
});
