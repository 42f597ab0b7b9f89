//! METADATA (RFC 5464): GETMETADATA and SETMETADATA on mailboxes and on the server
//! (mailbox ""). The store keeps the entries and checks the rights (see
//! `tern_store`'s metadata module); here are the wire forms, DEPTH, MAXSIZE and the
//! `[METADATA ...]` response codes.

use tern_store::{valid_metadata_entry, MetadataTarget, StoreError, UniqueId, MAX_METADATA_VALUE};

use crate::mime::{write_nstring, write_string};
use crate::response::push_mailbox;
use crate::session::{Outcome, Session};
use crate::types::MetadataDepth;

/// True when `entry` is one a GETMETADATA may name: a valid entry, or the roots
/// `/private` and `/shared` (useful with DEPTH).
fn gettable(entry: &str) -> bool {
    entry == "/private" || entry == "/shared" || valid_metadata_entry(entry)
}

/// True when `name` is `asked` or below it within `depth`.
fn within(name: &str, asked: &str, depth: MetadataDepth) -> bool {
    if name == asked {
        return true;
    }
    let Some(rest) = name.strip_prefix(asked).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

impl<W> Session<W> {
    /// The target named by a METADATA command's mailbox argument.
    fn metadata_target(&self, mailbox: &str) -> Result<Option<UniqueId>, Outcome> {
        if mailbox.is_empty() {
            return Ok(None);
        }
        match self.store.resolve(&self.actor(), mailbox) {
            Ok(Some((m, _))) => Ok(Some(m.uniqueid)),
            Ok(None) => Err(Outcome::no("[NONEXISTENT] No such mailbox")),
            Err(e) => Err(Outcome::store_error(&e)),
        }
    }

    pub(crate) fn getmetadata(
        &mut self,
        mailbox: &str,
        entries: &[String],
        maxsize: Option<u64>,
        depth: MetadataDepth,
    ) -> Outcome {
        if let Some(bad) = entries.iter().find(|e| !gettable(e)) {
            return Outcome::bad(&format!("Invalid entry name {bad}"));
        }
        let id = match self.metadata_target(mailbox) {
            Ok(id) => id,
            Err(o) => return o,
        };
        let target = id
            .as_ref()
            .map_or(MetadataTarget::Server, MetadataTarget::Mailbox);
        let stored = match self.store.metadata(&self.actor(), target) {
            Ok(s) => s,
            Err(e) => return Outcome::store_error(&e),
        };
        let mut out: Vec<(&str, Option<&str>)> = Vec::new();
        let mut longest_left_out: Option<usize> = None;
        for asked in entries {
            let mut found = false;
            for (name, value) in &stored {
                if !within(name, asked, depth) || out.iter().any(|(n, _)| n == name) {
                    continue;
                }
                found |= name == asked;
                if maxsize.is_some_and(|max| value.len() as u64 > max) {
                    longest_left_out = longest_left_out.max(Some(value.len()));
                    found = true;
                    continue;
                }
                out.push((name, Some(value)));
            }
            // An entry asked for by name that has no value is answered with NIL.
            if !found
                && asked != "/private"
                && asked != "/shared"
                && !out.iter().any(|(n, _)| n == asked)
            {
                out.push((asked, None));
            }
        }
        if !out.is_empty() {
            let mut line = b"METADATA ".to_vec();
            push_mailbox(&mut line, mailbox, self.enabled.utf8);
            line.extend_from_slice(b" (");
            for (i, (name, value)) in out.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                write_string(&mut line, name.as_bytes());
                line.push(b' ');
                write_nstring(&mut line, value.map(str::as_bytes));
            }
            line.push(b')');
            self.untagged_bytes(&line);
        }
        match longest_left_out {
            Some(n) => Outcome::ok_code(
                &format!("[METADATA LONGENTRIES {n}]"),
                "GETMETADATA completed",
            ),
            None => Outcome::ok("GETMETADATA completed"),
        }
    }

    pub(crate) fn setmetadata(
        &mut self,
        mailbox: &str,
        entries: &[(String, Option<Vec<u8>>)],
    ) -> Outcome {
        let mut changes = Vec::with_capacity(entries.len());
        for (entry, value) in entries {
            if !valid_metadata_entry(entry) {
                return Outcome::bad(&format!("Invalid entry name {entry}"));
            }
            let value = match value {
                Some(v) if v.len() > MAX_METADATA_VALUE => {
                    return Outcome::no(&format!(
                        "[METADATA MAXSIZE {MAX_METADATA_VALUE}] Value too large"
                    ))
                }
                Some(v) => match String::from_utf8(v.clone()) {
                    Ok(s) if !s.contains('\0') => Some(s),
                    // Values are kept as text (they are replicated as annotations).
                    _ => return Outcome::no("[CANNOT] Values must be UTF-8 text"),
                },
                None => None,
            };
            changes.push((entry.clone(), value));
        }
        let id = match self.metadata_target(mailbox) {
            Ok(id) => id,
            Err(o) => return o,
        };
        let target = id
            .as_ref()
            .map_or(MetadataTarget::Server, MetadataTarget::Mailbox);
        match self.store.set_metadata(&self.actor(), target, &changes) {
            Ok(()) => Outcome::ok("SETMETADATA completed"),
            Err(StoreError::MetadataTooLarge { max }) => {
                Outcome::no(&format!("[METADATA MAXSIZE {max}] Value too large"))
            }
            Err(StoreError::MetadataTooMany) => Outcome::no("[METADATA TOOMANY] Too many entries"),
            Err(e) => Outcome::store_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        use MetadataDepth::*;
        assert!(within("/shared/a", "/shared/a", Zero));
        assert!(!within("/shared/a/b", "/shared/a", Zero));
        assert!(within("/shared/a/b", "/shared/a", One));
        assert!(!within("/shared/a/b/c", "/shared/a", One));
        assert!(within("/shared/a/b/c", "/shared/a", Infinity));
        assert!(!within("/shared/ab", "/shared/a", Infinity));
        assert!(within("/shared/x", "/shared", One));
    }
}
