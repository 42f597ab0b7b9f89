//! Stored POP3 UIDL overrides: the UIDLs messages had on the server they were imported
//! from, so that POP3 clients moved to tern do not download everything again.
//!
//! An override is set only when its record is created ([`Store::append_with_pop3_uidl`]
//! locally, or a replicated APPEND carrying it) and never changed: the record's
//! creation, with its override, is one transaction on every server.

use rusqlite::{params, Connection, OptionalExtension};

use crate::acl::Actor;
use crate::error::{Result, StoreError};
use crate::flags::Flags;
use crate::ids::UniqueId;
use crate::mailboxes::Mailbox;
use crate::messages::Appended;
use crate::Store;

/// Longest UIDL (RFC 1939 7: "one to 70 characters").
pub const MAX_POP3_UIDL: usize = 70;

/// True when `uidl` may be a POP3 UIDL: 1 to 70 characters in 0x21-0x7E (RFC 1939 7).
pub fn valid_pop3_uidl(uidl: &str) -> bool {
    (1..=MAX_POP3_UIDL).contains(&uidl.len()) && uidl.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Checks `uidl` for a new record of `mailbox`: valid, not of the mailbox's own
/// `uidvalidity.uid` form (which another message may show), and not held by a live
/// record of the mailbox.
pub(crate) fn check_new(conn: &Connection, mailbox: &Mailbox, uidl: &str) -> Result<()> {
    let own_form = uidl
        .strip_prefix(&format!("{}.", mailbox.uidvalidity))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid_pop3_uidl(uidl) || own_form {
        return Err(StoreError::InvalidPop3Uidl(uidl.to_owned()));
    }
    let taken: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM records WHERE mailbox_id = ?1 AND pop3_uidl = ?2 \
             AND expunged_modseq IS NULL",
        )?
        .query_row(params![mailbox.id, uidl], |r| r.get(0))
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Pop3UidlTaken(uidl.to_owned()));
    }
    Ok(())
}

/// Gives the record just inserted at `uid` its override (same transaction).
pub(crate) fn set_new(conn: &Connection, mailbox: &Mailbox, uid: u32, uidl: &str) -> Result<()> {
    check_new(conn, mailbox, uidl)?;
    conn.prepare_cached("UPDATE records SET pop3_uidl = ?3 WHERE mailbox_id = ?1 AND uid = ?2")?
        .execute(params![mailbox.id, uid, uidl])?;
    Ok(())
}

impl Store {
    /// [`Store::append`] with a stored POP3 UIDL (`None`: an ordinary append): the
    /// record and its override commit together, or neither does. Refused with
    /// [`StoreError::InvalidPop3Uidl`] or [`StoreError::Pop3UidlTaken`] before
    /// anything is written that stays.
    pub fn append_with_pop3_uidl(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        flags: &Flags,
        internaldate: i64,
        message: &[u8],
        pop3_uidl: Option<&str>,
    ) -> Result<Appended> {
        if let Some(u) = pop3_uidl {
            if !valid_pop3_uidl(u) {
                return Err(StoreError::InvalidPop3Uidl(u.to_owned()));
            }
        }
        self.append_inner(
            actor,
            mailbox,
            flags,
            internaldate,
            message,
            pop3_uidl.map(str::to_owned),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    #[test]
    fn set_at_creation_unique_among_live_records_and_in_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("alice", Some("pw"), false).unwrap();
        let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
        let alice = Actor {
            name: "alice".into(),
            is_admin: false,
        };
        let append = |msg: &[u8], uidl: Option<&str>| {
            store.append_with_pop3_uidl(&alice, &inbox.uniqueid, &Flags::new(), 1, msg, uidl)
        };
        let a = append(b"A: 1\r\n\r\na\r\n", Some("old-1")).unwrap();
        let plain = append(b"A: 2\r\n\r\nb\r\n", None).unwrap();
        assert!(matches!(
            append(b"A: 3\r\n\r\nc\r\n", Some("old-1")),
            Err(StoreError::Pop3UidlTaken(_))
        ));
        let own = format!("{}.7", inbox.uidvalidity);
        for bad in ["", "a b", own.as_str()] {
            assert!(matches!(
                append(b"A: 4\r\n\r\nd\r\n", Some(bad)),
                Err(StoreError::InvalidPop3Uidl(_))
            ));
        }
        let records = store.records(&alice, &inbox.uniqueid, false).unwrap().1;
        let uidls: Vec<_> = records.iter().map(|r| r.pop3_uidl.as_deref()).collect();
        assert_eq!(
            uidls,
            [Some("old-1"), None],
            "refused appends left no record"
        );
        assert_eq!((records[0].uid, records[1].uid), (a.uid, plain.uid));
        // The maintained digest covers the override and equals the recomputed one.
        let stored = store.mailbox("alice", "INBOX").unwrap().unwrap().digest;
        let computed = store
            .read(|c| crate::digest::recompute_records_digest(c, inbox.id))
            .unwrap();
        assert_eq!(stored, computed);
        let without = store
            .read(|c| crate::digest::recompute_records_digest_before_v9(c, inbox.id))
            .unwrap();
        assert_ne!(stored, without, "a replica missing the override differs");
        // Once the holder is expunged, the UIDL may be given again.
        store.expunge(&alice, &inbox.uniqueid, &[a.uid]).unwrap();
        append(b"A: 5\r\n\r\ne\r\n", Some("old-1")).unwrap();
    }

    #[test]
    fn rfc_1939_uidl_characters_and_length() {
        assert!(valid_pop3_uidl("a"));
        assert!(valid_pop3_uidl(&"~".repeat(70)));
        assert!(valid_pop3_uidl("000001a2b3c4.old-server!"));
        assert!(!valid_pop3_uidl(""));
        assert!(!valid_pop3_uidl(&"x".repeat(71)));
        assert!(!valid_pop3_uidl("with space"));
        assert!(!valid_pop3_uidl("tab\there"));
        assert!(!valid_pop3_uidl("caf\u{e9}"));
        assert!(!valid_pop3_uidl("del\x7f"));
    }
}
