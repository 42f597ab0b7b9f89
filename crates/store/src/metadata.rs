//! IMAP METADATA (RFC 5464) entries: what GETMETADATA reads and SETMETADATA writes.
//!
//! A mailbox's `/shared` entries are its annotations (the `annotations` table, key
//! without the `/shared` prefix), so they replicate with the mailbox and the expire
//! policy set over IMAP is the one `tern expire` reads. `/private` entries (per user,
//! on a mailbox or the server) and the server's `/shared` entries live in the
//! `metadata` table, local to this server.
//!
//! Access (RFC 5464 section 3.3 with RFC 4314): reading a mailbox's entries and
//! writing one's private entries need `l` and any one of `r`, `s`, `w`, `i`, `p`.
//! Writing a shared entry needs `l`, `r` and `w` (as in Cyrus: shared entries speak for
//! everyone who sees the mailbox), and the expire policy entry also `a`, because
//! setting it expunges messages. On the server, anyone reads the entries and writes
//! their private ones; only administrators write shared ones.

use rusqlite::{params, Connection};

use crate::acl::{Actor, Rights};
use crate::error::{Result, StoreError};
use crate::ids::UniqueId;
use crate::mailboxes::Mailbox;
use crate::maintenance::policy::EXPIRE_ANNOTATION;
use crate::records::live;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// The largest value stored, in bytes (larger ones: [`StoreError::MetadataTooLarge`]).
/// RFC 5464 asks for at least 1024. With [`MAX_METADATA_ENTRIES`] it bounds what one
/// GETMETADATA can make a session hold: 2 x 100 x 16 KiB (shared and private), 3.2 MiB.
pub const MAX_METADATA_VALUE: usize = 16 * 1024;

/// The most entries one owner keeps on one mailbox or on the server (shared entries
/// count for the mailbox as a whole); more: [`StoreError::MetadataTooMany`]. RFC 5464
/// asks for at least 10.
pub const MAX_METADATA_ENTRIES: usize = 100;

/// The longest entry name accepted, in bytes.
pub const MAX_METADATA_ENTRY: usize = 256;

/// Where entries are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataTarget<'a> {
    /// The server as a whole (the IMAP mailbox name "").
    Server,
    /// A mailbox, by unique id.
    Mailbox(&'a UniqueId),
}

/// True for a valid entry name (RFC 5464 section 3.2.1): `/private/...` or
/// `/shared/...`, printable ASCII without `*`, `%`, `//` or a trailing `/`, and at
/// most [`MAX_METADATA_ENTRY`] bytes. Names are compared in lower case (callers
/// lower-case them).
pub fn valid_metadata_entry(entry: &str) -> bool {
    let scoped = entry
        .strip_prefix("/private/")
        .or_else(|| entry.strip_prefix("/shared/"));
    match scoped {
        Some(rest) => {
            !rest.is_empty()
                && entry.len() <= MAX_METADATA_ENTRY
                && !entry.ends_with('/')
                && !entry.contains("//")
                && entry
                    .bytes()
                    .all(|b| (0x21..0x7f).contains(&b) && b != b'*' && b != b'%')
        }
        None => false,
    }
}

/// The live mailbox `id` if `actor` may read its entries or write their own private
/// ones: `l` and any one of `r`, `s`, `w`, `i`, `p` (RFC 5464 section 3.3), plus `more`.
fn accessible(conn: &Connection, actor: &Actor, id: &UniqueId, more: Rights) -> Result<Mailbox> {
    let mailbox = live(conn, id)?;
    let rights = actor.require(&mailbox, Rights::LOOKUP | more)?;
    let any = Rights::READ | Rights::SEEN | Rights::WRITE | Rights::INSERT | Rights::POST;
    if any.without(rights) == any {
        return Err(StoreError::PermissionDenied {
            name: mailbox.name.clone(),
            needed: "r".to_owned(),
        });
    }
    Ok(mailbox)
}

fn bad_entry(entry: &str) -> StoreError {
    StoreError::NotPermitted {
        name: entry.to_owned(),
        reason: "not a valid metadata entry name",
    }
}

impl Store {
    /// Every entry `actor` may read on `target`, by full name (`/private/...` their own,
    /// `/shared/...`), sorted by name.
    pub fn metadata(
        &self,
        actor: &Actor,
        target: MetadataTarget<'_>,
    ) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            let user_id = txn::user_id(conn, &actor.name)?;
            let mut out = Vec::new();
            let mailbox_id = match target {
                MetadataTarget::Server => 0,
                MetadataTarget::Mailbox(id) => {
                    let m = accessible(conn, actor, id, Rights::NONE)?;
                    let rows = crate::replication::annotations_of(conn, m.id)?;
                    out.extend(rows.into_iter().map(|(k, v)| (format!("/shared{k}"), v)));
                    m.id
                }
            };
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, entry, value FROM metadata WHERE mailbox_id = ?1 \
                 AND (user_id = ?2 OR user_id = 0)",
            )?;
            let rows = stmt.query_map(params![mailbox_id, user_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            for row in rows {
                let (owner, entry, value) = row?;
                let scope = if owner == 0 { "/shared" } else { "/private" };
                out.push((format!("{scope}{entry}"), value));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Sets (`Some`) or removes (`None`) entries on `target` for `actor`, all or none.
    /// Entry names must satisfy [`valid_metadata_entry`] and be in lower case. A
    /// change to a mailbox's shared entries takes a new modseq (it is replicated).
    pub fn set_metadata(
        &self,
        actor: &Actor,
        target: MetadataTarget<'_>,
        changes: &[(String, Option<String>)],
    ) -> Result<()> {
        for (entry, value) in changes {
            if !valid_metadata_entry(entry) || entry.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(bad_entry(entry));
            }
            let policy = entry.strip_prefix("/shared") == Some(EXPIRE_ANNOTATION);
            if let Some(v) = value.as_deref().filter(|_| policy) {
                // Cyrus keeps this entry as a number; a mistyped value is refused here
                // rather than read later as "never".
                if !v.eq_ignore_ascii_case("none") && v.trim().parse::<u32>().is_err() {
                    return Err(StoreError::NotPermitted {
                        name: entry.clone(),
                        reason: "the expire policy is a number of days or \"none\"",
                    });
                }
            }
            if value.as_ref().is_some_and(|v| v.len() > MAX_METADATA_VALUE) {
                return Err(StoreError::MetadataTooLarge {
                    max: MAX_METADATA_VALUE,
                });
            }
        }
        let (actor, changes) = (actor.clone(), changes.to_vec());
        let mailbox = match target {
            MetadataTarget::Server => None,
            MetadataTarget::Mailbox(id) => Some(id.clone()),
        };
        let changed = self.write(move |conn| {
            let user_id = txn::user_id(conn, &actor.name)?;
            let mailbox = match &mailbox {
                Some(id) => {
                    let shared = changes.iter().any(|(e, _)| e.starts_with("/shared/"));
                    let policy = changes
                        .iter()
                        .any(|(e, _)| e.strip_prefix("/shared") == Some(EXPIRE_ANNOTATION));
                    let mut needed = Rights::NONE;
                    if shared {
                        needed = needed | Rights::READ | Rights::WRITE;
                    }
                    if policy {
                        needed = needed | Rights::ADMIN;
                    }
                    Some(accessible(conn, &actor, id, needed)?)
                }
                None => {
                    if !actor.is_admin && changes.iter().any(|(e, _)| e.starts_with("/shared/")) {
                        return Err(StoreError::PermissionDenied {
                            name: String::new(),
                            needed: "admin".to_owned(),
                        });
                    }
                    None
                }
            };
            apply(conn, user_id, mailbox.as_ref(), &changes)
        })?;
        if let Some((id, modseq)) = changed {
            self.notify(&id, modseq);
        }
        Ok(())
    }
}

/// Applies `changes` inside the caller's transaction and enforces the entry count;
/// returns the mailbox and modseq when its shared entries changed.
fn apply(
    conn: &Connection,
    user_id: i64,
    mailbox: Option<&Mailbox>,
    changes: &[(String, Option<String>)],
) -> Result<Option<(UniqueId, crate::Modseq)>> {
    let mailbox_id = mailbox.map_or(0, |m| m.id);
    let mut shared_annotations = false;
    for (entry, value) in changes {
        let (owner, name) = match entry.strip_prefix("/shared") {
            Some(name) => (0, name),
            None => (user_id, entry.strip_prefix("/private").unwrap_or(entry)),
        };
        if owner == 0 && mailbox.is_some() {
            shared_annotations = true;
            match value {
                Some(v) => conn.execute_cached(
                    "INSERT INTO annotations (mailbox_id, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (mailbox_id, key) DO UPDATE SET value = excluded.value",
                    params![mailbox_id, name, v],
                )?,
                None => conn.execute_cached(
                    "DELETE FROM annotations WHERE mailbox_id = ?1 AND key = ?2",
                    params![mailbox_id, name],
                )?,
            };
            continue;
        }
        match value {
            Some(v) => conn.execute_cached(
                "INSERT INTO metadata (user_id, mailbox_id, entry, value) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id, mailbox_id, entry) DO UPDATE SET value = excluded.value",
                params![owner, mailbox_id, name, v],
            )?,
            None => conn.execute_cached(
                "DELETE FROM metadata WHERE user_id = ?1 AND mailbox_id = ?2 AND entry = ?3",
                params![owner, mailbox_id, name],
            )?,
        };
    }
    // The count is checked after the changes, so a request that removes some entries
    // and adds others is judged by its result; an error rolls the whole request back.
    let private: i64 = conn.query_row_cached(
        "SELECT count(*) FROM metadata WHERE user_id = ?1 AND mailbox_id = ?2",
        params![user_id, mailbox_id],
        |r| r.get(0),
    )?;
    let shared: i64 = match mailbox {
        Some(_) => conn.query_row_cached(
            "SELECT count(*) FROM annotations WHERE mailbox_id = ?1",
            [mailbox_id],
            |r| r.get(0),
        )?,
        None => conn.query_row_cached(
            "SELECT count(*) FROM metadata WHERE user_id = 0 AND mailbox_id = 0",
            [],
            |r| r.get(0),
        )?,
    };
    if private.max(shared) as usize > MAX_METADATA_ENTRIES {
        return Err(StoreError::MetadataTooMany);
    }
    match mailbox {
        Some(m) if shared_annotations => {
            let modseq = txn::next_modseq(conn, m.user_id)?;
            txn::touch_mailbox(conn, m, modseq)?;
            Ok(Some((m.uniqueid.clone(), modseq)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn actor(name: &str, is_admin: bool) -> Actor {
        Actor {
            name: name.to_owned(),
            is_admin,
        }
    }

    #[test]
    fn entry_names() {
        for good in ["/private/comment", "/shared/vendor/cmu/cyrus-imapd/expire"] {
            assert!(valid_metadata_entry(good), "{good}");
        }
        for bad in [
            "/private",
            "/shared/",
            "/other/x",
            "/private/a//b",
            "/private/a/",
            "/shared/*",
            "/shared/a%",
            "/shared/a b",
            "comment",
        ] {
            assert!(!valid_metadata_entry(bad), "{bad}");
        }
        assert!(!valid_metadata_entry(&format!(
            "/shared/{}",
            "x".repeat(300)
        )));
    }

    #[test]
    fn shared_entries_are_annotations_private_ones_are_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("ann", None, false).unwrap();
        store.create_user("bob", None, false).unwrap();
        let inbox = store.mailbox("ann", "INBOX").unwrap().unwrap();
        let (ann, bob) = (actor("ann", false), actor("bob", false));
        let before = inbox.highest_modseq;
        store
            .set_metadata(
                &ann,
                MetadataTarget::Mailbox(&inbox.uniqueid),
                &[
                    ("/shared/comment".into(), Some("family".into())),
                    ("/private/comment".into(), Some("mine".into())),
                ],
            )
            .unwrap();
        assert_eq!(
            store.annotations("ann", "INBOX").unwrap(),
            vec![("/comment".to_owned(), "family".to_owned())]
        );
        assert!(
            store
                .mailbox("ann", "INBOX")
                .unwrap()
                .unwrap()
                .highest_modseq
                > before
        );
        assert_eq!(
            store
                .metadata(&ann, MetadataTarget::Mailbox(&inbox.uniqueid))
                .unwrap(),
            vec![
                ("/private/comment".to_owned(), "mine".to_owned()),
                ("/shared/comment".to_owned(), "family".to_owned())
            ]
        );
        // bob cannot see ann's INBOX at all.
        assert!(matches!(
            store.metadata(&bob, MetadataTarget::Mailbox(&inbox.uniqueid)),
            Err(StoreError::NoSuchMailbox { .. })
        ));
        // Server entries: private per user, shared for administrators only.
        let motd = [("/shared/motd".to_owned(), Some("hello".to_owned()))];
        assert!(matches!(
            store.set_metadata(&bob, MetadataTarget::Server, &motd),
            Err(StoreError::PermissionDenied { .. })
        ));
        store
            .set_metadata(&actor("ann", true), MetadataTarget::Server, &motd)
            .unwrap();
        store
            .set_metadata(
                &bob,
                MetadataTarget::Server,
                &[("/private/theme".into(), Some("dark".into()))],
            )
            .unwrap();
        assert_eq!(
            store.metadata(&ann, MetadataTarget::Server).unwrap(),
            vec![("/shared/motd".to_owned(), "hello".to_owned())]
        );
        assert_eq!(
            store.metadata(&bob, MetadataTarget::Server).unwrap().len(),
            2
        );
        // Limits: size, and count (all or nothing).
        let big = "x".repeat(MAX_METADATA_VALUE + 1);
        assert!(matches!(
            store.set_metadata(
                &bob,
                MetadataTarget::Server,
                &[("/private/big".into(), Some(big))]
            ),
            Err(StoreError::MetadataTooLarge { .. })
        ));
        let many: Vec<_> = (0..=MAX_METADATA_ENTRIES)
            .map(|i| (format!("/private/n{i}"), Some("v".to_owned())))
            .collect();
        assert!(matches!(
            store.set_metadata(&bob, MetadataTarget::Server, &many),
            Err(StoreError::MetadataTooMany)
        ));
        assert_eq!(
            store.metadata(&bob, MetadataTarget::Server).unwrap().len(),
            2
        );
        // Deleting the user removes their entries.
        store.delete_user("bob").unwrap();
        store.create_user("bob", None, false).unwrap();
        assert_eq!(
            store.metadata(&bob, MetadataTarget::Server).unwrap().len(),
            1
        );
    }
}
