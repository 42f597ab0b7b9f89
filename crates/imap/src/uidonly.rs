//! UIDONLY (RFC 9586): once a client enables it, no message sequence number crosses
//! the wire in either direction.
//!
//! Commands that name messages by number (FETCH, STORE, SEARCH, SORT, THREAD, COPY,
//! MOVE, REPLACE without UID, a bare sequence set inside a search program, and the
//! sequence-match data of SELECT ... QRESYNC) are refused with `BAD [UIDREQUIRED]`
//! before they touch the mailbox. Responses that would carry a number are sent in
//! their UID form instead: `* uid UIDFETCH (...)` for FETCH, `* VANISHED` for
//! EXPUNGE, and no `OK [UNSEEN n]` at SELECT. EXISTS stays: it is a count.
//!
//! The session keeps its sequence map all the same; it is cheap next to the records,
//! and keeps one code path for both modes.

use tern_store::Uid;

use crate::session::Outcome;
use crate::types::{CommandBody, SearchKey, SequenceSet};

/// `5 FETCH (` or, under UIDONLY, `9 UIDFETCH (`: the head of a FETCH response for
/// the message at `seq` with `uid`, without the `* `.
pub(crate) fn fetch_head(seq: u32, uid: Uid, uidonly: bool) -> String {
    let mut head = Vec::with_capacity(24);
    put_fetch_head(&mut head, seq, uid, uidonly);
    String::from_utf8(head).unwrap_or_default()
}

/// [`fetch_head`], appended to an answer being built in bytes (a FETCH's stream),
/// without a string of its own per message.
pub(crate) fn put_fetch_head(out: &mut Vec<u8>, seq: u32, uid: Uid, uidonly: bool) {
    match uidonly {
        true => {
            crate::response::put_number(out, uid.into());
            out.extend_from_slice(b" UIDFETCH (");
        }
        false => {
            crate::response::put_number(out, seq.into());
            out.extend_from_slice(b" FETCH (");
        }
    }
}

/// `BAD [UIDREQUIRED]` for a command that names messages by sequence number; `None`
/// for one UIDONLY allows.
pub(crate) fn refusal(body: &CommandBody) -> Option<Outcome> {
    let by_number = match body {
        CommandBody::Fetch { uid, .. }
        | CommandBody::Store { uid, .. }
        | CommandBody::Copy { uid, .. }
        | CommandBody::Move { uid, .. }
        | CommandBody::Replace { uid, .. } => !uid,
        CommandBody::Search { uid, criteria, .. } => !uid || names_numbers(criteria),
        CommandBody::Sort { uid, search, .. } | CommandBody::Thread { uid, search, .. } => {
            !uid || names_numbers(search)
        }
        CommandBody::Select {
            qresync: Some(q), ..
        } => q.seq_match.is_some(),
        _ => false,
    };
    by_number.then(|| {
        Outcome::bad("[UIDREQUIRED] Message sequence numbers are off (UIDONLY is enabled)")
    })
}

/// Does the search program contain a bare sequence set anywhere? (`$` is the saved
/// result, UIDs already.)
fn names_numbers(key: &SearchKey) -> bool {
    match key {
        SearchKey::Sequence(set) => *set != SequenceSet::Saved,
        SearchKey::Not(k) => names_numbers(k),
        SearchKey::Or(a, b) => names_numbers(a) || names_numbers(b),
        SearchKey::And(keys) => keys.iter().any(names_numbers),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_command;

    fn refused(line: &str) -> bool {
        let command = parse_command(line.as_bytes(), false).expect("parses");
        refusal(&command.body).is_some()
    }

    #[test]
    fn numbers_refused_uids_allowed() {
        for line in [
            "a FETCH 1:* FLAGS",
            "a STORE 1 +FLAGS (\\Seen)",
            "a SEARCH UNSEEN",
            "a COPY 1 Trash",
            "a MOVE 2:3 Trash",
            "a SORT (ARRIVAL) UTF-8 ALL",
            "a THREAD REFERENCES UTF-8 ALL",
            "a UID SEARCH 1:10",
            "a UID SEARCH NOT (OR SEEN 4)",
            "a UID SORT (DATE) UTF-8 1:*",
            "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:3 4:6)))",
        ] {
            assert!(refused(line), "{line}");
        }
        for line in [
            "a UID FETCH 1:* FLAGS",
            "a UID STORE 1 +FLAGS (\\Seen)",
            "a UID SEARCH UID 1:10 UNSEEN",
            "a UID SEARCH $",
            "a UID MOVE 2:3 Trash",
            "a EXPUNGE",
            "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211))",
            "a NOOP",
        ] {
            assert!(!refused(line), "{line}");
        }
    }
}
