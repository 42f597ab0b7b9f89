//! Mailbox and user names: what is accepted and how it is normalised.
//!
//! Mailbox names are UTF-8, relative to their owner, with `/` as the hierarchy
//! separator (`Lists/rust`). `INBOX` is case-insensitive, also as the first component
//! of a child's name, and is always stored as `INBOX`.

use crate::error::{Result, StoreError};

/// The hierarchy separator in mailbox names.
pub const SEPARATOR: char = '/';

/// Longest mailbox name accepted, in bytes.
pub const MAX_MAILBOX_NAME: usize = 1000;

/// Most levels a mailbox name may have.
pub const MAX_MAILBOX_DEPTH: usize = 32;

/// Validates a mailbox name and returns its canonical form.
pub fn normalize_mailbox(name: &str) -> Result<String> {
    let bad = |reason| {
        Err(StoreError::InvalidMailboxName {
            name: name.chars().take(200).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_MAILBOX_NAME {
        return bad("too long");
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return bad("contains a control character or wildcard");
    }
    let parts: Vec<&str> = name.split(SEPARATOR).collect();
    if parts.len() > MAX_MAILBOX_DEPTH {
        return bad("too many levels");
    }
    if parts.iter().any(|p| p.is_empty()) {
        return bad("empty level (leading, trailing or doubled '/')");
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return bad("'.' or '..' as a level");
    }
    if parts[0].eq_ignore_ascii_case("INBOX") {
        let mut out = String::from("INBOX");
        for p in &parts[1..] {
            out.push(SEPARATOR);
            out.push_str(p);
        }
        return Ok(out);
    }
    Ok(name.to_owned())
}

/// Validates a user name and returns its canonical (lower-case) form.
///
/// 1 to 64 characters of `a-z 0-9 . _ - @`; `+` is excluded because it separates the
/// folder in LMTP addresses, `/` because it separates mailbox levels.
pub fn normalize_user(name: &str) -> Result<String> {
    let bad = |reason| {
        Err(StoreError::InvalidUserName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    let lower = name.to_ascii_lowercase();
    if lower == crate::shared::SHARED_OWNER {
        // The shared namespace's owner: addressable inside the store and on the
        // replication wire, refused by every login and user command.
        return Ok(lower);
    }
    if !lower.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
    }) {
        return bad("only letters, digits and . _ - @ are allowed");
    }
    if lower.starts_with(['.', '-']) {
        return bad("must not start with '.' or '-'");
    }
    Ok(lower)
}

/// True if `child` is strictly below `parent` in the hierarchy.
pub fn is_descendant(child: &str, parent: &str) -> bool {
    child.len() > parent.len()
        && child.starts_with(parent)
        && child[parent.len()..].starts_with(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_canonical() {
        assert_eq!(normalize_mailbox("inbox").unwrap(), "INBOX");
        assert_eq!(normalize_mailbox("InBox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(normalize_mailbox("Inboxes").unwrap(), "Inboxes");
        assert_eq!(normalize_mailbox("Lists/rust").unwrap(), "Lists/rust");
        assert_eq!(normalize_mailbox("Entwürfe").unwrap(), "Entwürfe");
    }

    #[test]
    fn bad_mailbox_names() {
        for n in ["", "/a", "a/", "a//b", "a/*", "a%", "a\nb", "../x", "a/./b"] {
            assert!(normalize_mailbox(n).is_err(), "{n:?} accepted");
        }
        assert!(normalize_mailbox("a/".repeat(40).trim_end_matches('/')).is_err());
        assert!(normalize_mailbox(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn user_names() {
        assert_eq!(normalize_user("Bench").unwrap(), "bench");
        for n in ["", "a+b", "a/b", "a b", ".x", &"u".repeat(65)] {
            assert!(normalize_user(n).is_err(), "{n:?} accepted");
        }
    }

    #[test]
    fn descendants() {
        assert!(is_descendant("a/b", "a"));
        assert!(!is_descendant("ab", "a"));
        assert!(!is_descendant("a", "a"));
    }
}
