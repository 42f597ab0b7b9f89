//! The shared namespace: mailboxes that belong to no user (RFC 2342 "Shared Folders"),
//! such as a team's mailbox, a mailing list's archive, or a newsgroup.
//!
//! A shared mailbox is owned by the reserved owner [`SHARED_OWNER`], a `users` row that
//! no one can log in as (it has no password, and no login, `tern admin user` command or
//! LMTP address can name it). Everything else is an ordinary mailbox of an ordinary
//! owner: its modseqs come from that owner's counter, it has a UIDVALIDITY, records, a
//! change log entry for every change, and it replicates like a user's mailboxes (the
//! owner is one more user to the replication client). Who may do what is the ACL's
//! business alone: nobody is its owner, so nobody has rights the ACL does not grant,
//! except administrators, who may always look it up and administer it (`l`, `a`).
//!
//! A shared mailbox's UIDVALIDITY is the second it was created (strictly increasing
//! across the namespace), so its creation time needs no column of its own and
//! replicates with it: NNTP's NEWGROUPS answers from it.

use rusqlite::{params, OptionalExtension};

use crate::acl::{Acl, Actor, Rights};
use crate::error::{Result, StoreError};
use crate::mailboxes::{create_mailbox_in, Mailbox};
use crate::names::normalize_mailbox;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// The owner of every shared mailbox. A name `names::normalize_user` accepts only for
/// this purpose (`#` is not allowed in user names), valid on the replication wire as an
/// atom.
pub const SHARED_OWNER: &str = "#shared";

/// The IMAP name of the shared namespace: `Shared Folders/<name>` (RFC 2342).
pub const SHARED_FOLDERS: &str = "Shared Folders";

/// The ACL identifier for clients that have not authenticated (NNTP readers where
/// anonymous reading is configured). `anyone` does not include them.
pub const ANONYMOUS: &str = "anonymous";

/// True for the name of the reserved shared owner, which no login may use.
pub fn is_reserved_user(name: &str) -> bool {
    name.eq_ignore_ascii_case(SHARED_OWNER)
}

/// The shared mailbox name inside `Shared Folders/...`, if `name` is in that namespace.
pub fn strip_shared_folders(name: &str) -> Option<&str> {
    let rest = name.get(SHARED_FOLDERS.len()..)?;
    if !name[..SHARED_FOLDERS.len()].eq_ignore_ascii_case(SHARED_FOLDERS) {
        return None;
    }
    rest.strip_prefix('/').filter(|r| !r.is_empty())
}

impl Store {
    /// Creates the shared mailbox `name` with `acl` (identifier, rights), in one
    /// transaction: the mailbox never exists without its ACL. Only administrators may.
    /// Creates the shared owner on first use. Durable when it returns.
    pub fn create_shared_mailbox(
        &self,
        actor: &Actor,
        name: &str,
        acl: &[(String, Rights)],
    ) -> Result<Mailbox> {
        let name = normalize_mailbox(name)?;
        if !actor.is_admin {
            return Err(StoreError::PermissionDenied {
                name,
                needed: "administrator".into(),
            });
        }
        if name == "INBOX" || name.starts_with("INBOX/") {
            return Err(StoreError::NotPermitted {
                name,
                reason: "the shared namespace has no INBOX",
            });
        }
        let mut stored = Acl::default();
        for (identifier, rights) in acl {
            crate::acl::check_identifier(identifier)?;
            stored.set(identifier, Some(*rights));
        }
        let partition = self.config().default_partition.clone();
        self.write(move |conn| {
            let user_id = shared_owner_id(conn)?;
            let mailbox =
                create_mailbox_in(conn, user_id, SHARED_OWNER, &name, &partition, None, None)?;
            conn.execute_cached(
                "UPDATE mailboxes SET acl = ?2 WHERE id = ?1",
                params![mailbox.id, stored.to_string()],
            )?;
            txn::live_mailbox(conn, SHARED_OWNER, &name)
        })
    }

    /// The live shared mailbox `name`, whoever asks (for administrators' tools and for
    /// delivery, which checks the ACL itself).
    pub fn shared_mailbox(&self, name: &str) -> Result<Option<Mailbox>> {
        self.mailbox(SHARED_OWNER, name)
    }

    /// The live shared mailboxes `actor` may look up (`l`), by name, with the actor's
    /// rights, optionally only those at or below `prefix`.
    pub fn shared_mailboxes(
        &self,
        actor: &Actor,
        prefix: Option<&str>,
    ) -> Result<Vec<(Mailbox, Rights)>> {
        let all: Vec<Mailbox> = self.read(|conn| {
            let sql = format!(
                "SELECT {} FROM mailboxes m JOIN users u ON u.id = m.user_id \
                 WHERE u.name = ?1 AND m.tombstone_modseq IS NULL ORDER BY m.name",
                Mailbox::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map([SHARED_OWNER], Mailbox::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        Ok(all
            .into_iter()
            .filter(|m| {
                prefix.is_none_or(|p| m.name == p || crate::names::is_descendant(&m.name, p))
            })
            .filter_map(|m| {
                let rights = actor.rights(&m);
                rights.contains(Rights::LOOKUP).then_some((m, rights))
            })
            .collect())
    }

    /// Deletes the shared mailbox `name` (leaving a tombstone, like any mailbox); needs
    /// the `x` right, which administrators have only through the ACL unless they are
    /// administrators: an administrator may always delete a shared mailbox.
    pub fn delete_shared_mailbox(&self, actor: &Actor, name: &str) -> Result<Mailbox> {
        let Some(mailbox) = self.shared_mailbox(name)? else {
            return Err(StoreError::NoSuchMailbox {
                user: SHARED_OWNER.into(),
                name: name.into(),
            });
        };
        if !actor.is_admin {
            actor.require(&mailbox, Rights::DELETE_MAILBOX)?;
        }
        self.delete_mailbox(SHARED_OWNER, &mailbox.name)
    }
}

/// The shared owner's row id, creating the row (no password, not an administrator)
/// inside the caller's write transaction when it does not exist yet.
fn shared_owner_id(conn: &rusqlite::Connection) -> Result<i64> {
    let id: Option<i64> = conn
        .query_row_cached(
            "SELECT id FROM users WHERE name = ?1",
            [SHARED_OWNER],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        return Ok(id);
    }
    conn.execute_cached(
        "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?1, NULL, 0, ?2)",
        params![SHARED_OWNER, crate::store::now()],
    )?;
    let id = conn.last_insert_rowid();
    txn::log_change(conn, SHARED_OWNER, None)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn admin() -> Actor {
        Actor {
            name: "root".into(),
            is_admin: true,
        }
    }

    #[test]
    fn rights_come_from_the_acl_and_anonymous_is_not_anyone() {
        let tmp = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(tmp.path()), crate::content::test_indexer()).unwrap();
        let lr = Rights::parse("lr").unwrap();
        let open = [("anyone".to_owned(), lr), (ANONYMOUS.to_owned(), lr)];
        store
            .create_shared_mailbox(&admin(), "news/open", &open)
            .unwrap();
        store
            .create_shared_mailbox(&admin(), "news/members", &[("anyone".to_owned(), lr)])
            .unwrap();
        store.create_shared_mailbox(&admin(), "staff", &[]).unwrap();
        let names = |actor: &Actor, prefix| -> Vec<String> {
            let found = store.shared_mailboxes(actor, prefix).unwrap();
            found.into_iter().map(|(m, _)| m.name).collect()
        };
        let bob = Actor {
            name: "bob".into(),
            is_admin: false,
        };
        assert_eq!(names(&bob, None), ["news/members", "news/open"]);
        assert_eq!(names(&Actor::anonymous(), None), ["news/open"]);
        assert_eq!(names(&admin(), Some("news")), ["news/members", "news/open"]);
        assert_eq!(names(&admin(), None).len(), 3);
        // Only administrators create; the reserved owner is no login.
        assert!(store.create_shared_mailbox(&bob, "x", &[]).is_err());
        assert!(store.create_user(SHARED_OWNER, Some("pw"), false).is_err());
        assert!(store.verify_password(SHARED_OWNER, "").unwrap().is_none());
        // Deleting needs `x` (or an administrator).
        assert!(store.delete_shared_mailbox(&bob, "news/open").is_err());
        store.delete_shared_mailbox(&admin(), "news/open").unwrap();
        assert!(store.shared_mailbox("news/open").unwrap().is_none());
        // A second mailbox of the namespace gets a later UIDVALIDITY (its creation time).
        let a = store.create_shared_mailbox(&admin(), "t1", &[]).unwrap();
        let b = store.create_shared_mailbox(&admin(), "t2", &[]).unwrap();
        assert!(b.uidvalidity > a.uidvalidity);
    }

    #[test]
    fn shared_folders_prefix() {
        assert_eq!(
            strip_shared_folders("Shared Folders/news/a"),
            Some("news/a")
        );
        assert_eq!(strip_shared_folders("shared folders/x"), Some("x"));
        assert_eq!(strip_shared_folders("Shared Folders/"), None);
        assert_eq!(strip_shared_folders("Shared Folders"), None);
        assert_eq!(strip_shared_folders("Shared Foldersx/a"), None);
        assert_eq!(strip_shared_folders("Shär"), None);
    }
}
