//! Fuzzes the connection layer's input side: SASL exchanges (PLAIN and LOGIN, with and
//! without an initial response, then every line of the input as a response) and the
//! bounded line and dot-terminated body readers under a small memory budget. Any
//! panic is a bug; the body reader must never keep more than its budget covers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_net::lines::{read_body, read_line, Body, Line};
use tern_net::sasl::Exchange;
use tern_net::MemoryBudget;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let mechanism = if control & 1 == 0 { "PLAIN" } else { "LOGIN" };
    let mut lines = input.split(|&b| b == b'\n');
    let initial = (control & 2 != 0).then(|| lines.next()).flatten();
    if let Ok((mut exchange, _)) = Exchange::start(mechanism, initial) {
        for line in lines {
            if exchange.respond(line).is_err() {
                break;
            }
        }
    }

    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        let chunk = usize::from(control >> 4) + 1;
        let mut reader = tokio::io::BufReader::with_capacity(chunk, input);
        let budget = MemoryBudget::new(usize::from(control & 0x0c) * 1024 + 1024);
        loop {
            match read_line(&mut reader, 64).await {
                Ok(Line::Eof) | Err(_) => break,
                Ok(Line::TooLong) => {}
                Ok(Line::Complete(l)) => {
                    assert!(l.len() <= 64);
                    if l.eq_ignore_ascii_case(b"DATA") {
                        let mut held = budget.reservation();
                        match read_body(&mut reader, 256, &mut held).await {
                            Ok(Body::Complete(body)) => {
                                assert!(body.len() <= 256 + 2);
                                assert!(held.bytes() >= body.capacity());
                            }
                            Ok(Body::Eof) | Err(_) => break,
                            Ok(Body::TooBig | Body::OverBudget) => {}
                        }
                    }
                }
            }
        }
    });
});
