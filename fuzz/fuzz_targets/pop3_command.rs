//! Fuzzes the POP3 command parser with whole lines, and with every line of the input
//! (as a session reads them, CRLF or LF ended). Any panic is a bug. Properties of
//! what it accepts: names, passwords and SASL arguments are taken from the line as
//! sent, and message numbers start at 1.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_pop3::Command;

fuzz_target!(|data: &[u8]| {
    let _ = tern_pop3::parse(data);
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(command) = tern_pop3::parse(line) else {
            continue;
        };
        let text = String::from_utf8_lossy(line);
        match command {
            Command::User(s) | Command::Pass(s) => {
                assert!(!s.is_empty() && text.ends_with(&s));
            }
            Command::Auth(Some((mechanism, response))) => {
                assert!(text.to_ascii_uppercase().contains(&mechanism));
                if let Some(r) = response {
                    assert!(text.ends_with(&r));
                }
            }
            Command::Retr(n) | Command::Dele(n) | Command::Top(n, _) => assert!(n >= 1),
            Command::List(Some(n)) | Command::Uidl(Some(n)) => assert!(n >= 1),
            _ => {}
        }
    }
});
