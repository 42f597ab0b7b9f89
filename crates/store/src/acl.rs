//! Access control (RFC 4314): rights, ACLs, and who may do what to a mailbox.
//!
//! The store checks rights itself in every operation that takes an [`Actor`], so no
//! protocol can forget a check. The owner of a mailbox always has every right; an
//! administrator has `l` and `a` on every mailbox (to find and repair it), and more
//! only through the ACL; everyone else has what the ACL grants to their name and to
//! `anyone`, minus what negative entries (`-name`) take away.

use std::fmt;

use crate::error::{Result, StoreError};
use crate::mailboxes::Mailbox;
use crate::sql::Cached;

/// A set of RFC 4314 rights.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Rights(u16);

const LETTERS: &[(char, u16)] = &[
    ('l', 1 << 0),
    ('r', 1 << 1),
    ('s', 1 << 2),
    ('w', 1 << 3),
    ('i', 1 << 4),
    ('p', 1 << 5),
    ('k', 1 << 6),
    ('x', 1 << 7),
    ('t', 1 << 8),
    ('e', 1 << 9),
    ('a', 1 << 10),
];

impl Rights {
    /// `l`: see the mailbox in LIST and learn it exists.
    pub const LOOKUP: Rights = Rights(1 << 0);
    /// `r`: select it, read messages, STATUS, SEARCH, COPY from it.
    pub const READ: Rights = Rights(1 << 1);
    /// `s`: keep \Seen across sessions.
    pub const SEEN: Rights = Rights(1 << 2);
    /// `w`: set flags other than \Seen and \Deleted.
    pub const WRITE: Rights = Rights(1 << 3);
    /// `i`: insert messages (APPEND, COPY into).
    pub const INSERT: Rights = Rights(1 << 4);
    /// `p`: post to it (LMTP folder delivery by others).
    pub const POST: Rights = Rights(1 << 5);
    /// `k`: create mailboxes below it.
    pub const CREATE: Rights = Rights(1 << 6);
    /// `x`: delete or rename it.
    pub const DELETE_MAILBOX: Rights = Rights(1 << 7);
    /// `t`: set or clear \Deleted.
    pub const DELETE_MESSAGES: Rights = Rights(1 << 8);
    /// `e`: expunge.
    pub const EXPUNGE: Rights = Rights(1 << 9);
    /// `a`: administer (change the ACL).
    pub const ADMIN: Rights = Rights(1 << 10);
    /// Every right.
    pub const ALL: Rights = Rights((1 << 11) - 1);
    /// No right.
    pub const NONE: Rights = Rights(0);

    /// Parses rights letters; the obsolete `c` means `k` and `d` means `xte`
    /// (RFC 4314 2.1.1). Unknown letters are an error.
    pub fn parse(s: &str) -> Result<Rights> {
        let mut r = Rights::NONE;
        for ch in s.chars() {
            r = r | match ch {
                'c' => Rights::CREATE,
                'd' => Rights::DELETE_MAILBOX | Rights::DELETE_MESSAGES | Rights::EXPUNGE,
                _ => match LETTERS.iter().find(|(l, _)| *l == ch) {
                    Some((_, bit)) => Rights(*bit),
                    None => return Err(StoreError::InvalidRights(s.chars().take(40).collect())),
                },
            };
        }
        Ok(r)
    }

    /// True if every right in `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no right is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` without the rights in `other`.
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

impl fmt::Display for Rights {
    /// Rights letters in RFC 4314 order, e.g. `lrswipkxtea`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, bit) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

/// The identifier that stands for every authenticated user.
pub const ANYONE: &str = "anyone";

/// A mailbox's access control list: identifier and rights, in the order set.
/// Negative entries have identifiers starting with `-`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl(Vec<(String, Rights)>);

impl Acl {
    /// Parses the stored form: `identifier<TAB>rights<TAB>...`.
    pub fn parse(stored: &str) -> Acl {
        let parts: Vec<&str> = stored.split('\t').filter(|s| !s.is_empty()).collect();
        Acl(parts
            .chunks(2)
            .filter_map(|c| match c {
                [id, rights] => Rights::parse(rights).ok().map(|r| ((*id).to_owned(), r)),
                _ => None,
            })
            .collect())
    }

    /// The entries.
    pub fn entries(&self) -> &[(String, Rights)] {
        &self.0
    }

    /// Sets (`Some`) or removes (`None`) the entry for `identifier`.
    pub fn set(&mut self, identifier: &str, rights: Option<Rights>) {
        self.0.retain(|(id, _)| id != identifier);
        if let Some(r) = rights.filter(|r| !r.is_empty()) {
            self.0.push((identifier.to_owned(), r));
        }
    }

    /// True when `anyone` holds the `p` (post) right (and no `-anyone` entry takes it
    /// away): the condition for LMTP `user+folder@` delivery into the mailbox, as in
    /// Cyrus. Without it such mail goes to INBOX, so a stranger cannot put mail into a
    /// user's Sent or Drafts.
    pub fn anyone_may_post(&self) -> bool {
        self.get(ANYONE)
            .without(self.get(&format!("-{ANYONE}")))
            .contains(Rights::POST)
    }

    /// The rights of the entry for `identifier` (none when absent).
    pub fn get(&self, identifier: &str) -> Rights {
        self.0
            .iter()
            .find(|(id, _)| id == identifier)
            .map_or(Rights::NONE, |e| e.1)
    }
}

impl fmt::Display for Acl {
    /// The stored form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (id, rights)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\t")?;
            }
            write!(f, "{id}\t{rights}")?;
        }
        Ok(())
    }
}

/// Who is acting: the authenticated user, and whether they are an administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Canonical user name.
    pub name: String,
    /// An administrator of the server.
    pub is_admin: bool,
}

impl Actor {
    /// A client that has not authenticated: its rights come only from the ACL entry
    /// `anonymous` ([`crate::ANONYMOUS`]); `anyone` does not cover it.
    pub fn anonymous() -> Actor {
        Actor {
            name: String::new(),
            is_admin: false,
        }
    }

    /// True for [`Actor::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        self.name.is_empty()
    }

    /// The rights this actor has on `mailbox`.
    pub fn rights(&self, mailbox: &Mailbox) -> Rights {
        let acl = Acl::parse(&mailbox.acl);
        if self.is_anonymous() {
            let anon = crate::shared::ANONYMOUS;
            return acl.get(anon).without(acl.get(&format!("-{anon}")));
        }
        if mailbox.user == self.name {
            return Rights::ALL;
        }
        let granted = acl.get(&self.name) | acl.get(ANYONE);
        let denied = acl.get(&format!("-{}", self.name)) | acl.get(&format!("-{ANYONE}"));
        let mut rights = granted.without(denied);
        if self.is_admin {
            rights = rights | Rights::LOOKUP | Rights::ADMIN;
        }
        rights
    }

    /// Fails with `NoSuchMailbox` when the actor may not even see the mailbox (so its
    /// existence is not revealed), with `PermissionDenied` when they see it but lack
    /// `needed`.
    pub fn require(&self, mailbox: &Mailbox, needed: Rights) -> Result<Rights> {
        let rights = self.rights(mailbox);
        if !rights.contains(Rights::LOOKUP) && !rights.contains(Rights::READ) {
            return Err(StoreError::NoSuchMailbox {
                user: mailbox.user.clone(),
                name: mailbox.name.clone(),
            });
        }
        if !rights.contains(needed) {
            return Err(StoreError::PermissionDenied {
                name: mailbox.name.clone(),
                needed: needed.without(rights).to_string(),
            });
        }
        Ok(rights)
    }
}

/// The name under which other users' mailboxes appear: `Other Users/<owner>/<name>`.
pub const OTHER_USERS: &str = "Other Users";

impl crate::Store {
    /// Finds a mailbox by the name `actor` uses for it: their own names, or
    /// `Other Users/<owner>/<name>`. `None` when it does not exist or the actor may not
    /// see it (the two are indistinguishable to the actor).
    pub fn resolve(&self, actor: &Actor, name: &str) -> Result<Option<(Mailbox, Rights)>> {
        let Some((owner, name)) = owner_and_name(actor, name) else {
            return Ok(None);
        };
        let Some(mailbox) = self.mailbox(&owner, &name)? else {
            return Ok(None);
        };
        Ok(visible_rights(actor, &mailbox).map(|rights| (mailbox, rights)))
    }

    /// Every live mailbox `actor` may see, with the name they see it under and their
    /// rights: their own, then other users' (`Other Users/<owner>/<name>`) and shared
    /// ones (`Shared Folders/<name>`) that the ACL lets them look up.
    pub fn visible_mailboxes(&self, actor: &Actor) -> Result<Vec<(String, Mailbox, Rights)>> {
        let mut out: Vec<(String, Mailbox, Rights)> = self
            .mailboxes(&actor.name, false)?
            .into_iter()
            .map(|m| (m.name.clone(), m, Rights::ALL))
            .collect();
        let shared: Vec<Mailbox> = self.read(|conn| {
            let sql = format!(
                "SELECT {} FROM mailboxes m JOIN users u ON u.id = m.user_id \
                 WHERE m.tombstone_modseq IS NULL AND u.name != ?1 \
                 AND (m.acl != '' OR (?2 AND u.name = ?3)) ORDER BY u.name, m.name",
                Mailbox::COLUMNS
            );
            // Administrators see every shared mailbox (one without an ACL is theirs to
            // open up), but other users' mailboxes only where an ACL shares them.
            let mut stmt = conn.prepare_cached(&sql)?;
            let params = rusqlite::params![actor.name, actor.is_admin, crate::shared::SHARED_OWNER];
            let rows = stmt
                .query_map(params, Mailbox::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        for m in shared {
            let rights = actor.rights(&m);
            if !rights.contains(Rights::LOOKUP) {
                continue;
            }
            let seen_as = if m.user == crate::shared::SHARED_OWNER {
                format!("{}/{}", crate::shared::SHARED_FOLDERS, m.name)
            } else {
                format!("{OTHER_USERS}/{}/{}", m.user, m.name)
            };
            out.push((seen_as, m, rights));
        }
        Ok(out)
    }

    /// Sets (`Some`) or removes (`None`) the ACL entry of `identifier` on a mailbox;
    /// needs the `a` right. The owner's own rights cannot be taken away.
    pub fn set_acl(
        &self,
        actor: &Actor,
        mailbox: &crate::UniqueId,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<Mailbox> {
        let (id, actor, identifier) = (mailbox.clone(), actor.clone(), identifier.to_owned());
        check_identifier(&identifier)?;
        self.write(move |conn| {
            let mailbox = crate::records::live_for(conn, &actor, &id, Rights::ADMIN)?;
            let mut acl = Acl::parse(&mailbox.acl);
            acl.set(&identifier, rights);
            conn.execute_cached(
                "UPDATE mailboxes SET acl = ?2 WHERE id = ?1",
                rusqlite::params![mailbox.id, acl.to_string()],
            )?;
            let modseq = crate::txn::next_modseq(conn, mailbox.user_id)?;
            crate::txn::touch_mailbox(conn, &mailbox, modseq)?;
            Ok(crate::txn::mailbox_by_uniqueid(conn, &id)?.unwrap_or(mailbox))
        })
    }
}

/// Fails unless `identifier` can be stored in an ACL: 1 to 128 characters, no tab or
/// line break.
pub(crate) fn check_identifier(identifier: &str) -> Result<()> {
    if identifier.is_empty() || identifier.len() > 128 || identifier.contains(['\t', '\r', '\n']) {
        return Err(StoreError::InvalidRights(identifier.to_owned()));
    }
    Ok(())
}

/// `actor`'s rights on `mailbox` when they may see it at all (`l` or `r`): a
/// mailbox they may not see is answered as one that does not exist.
pub(crate) fn visible_rights(actor: &Actor, mailbox: &Mailbox) -> Option<Rights> {
    let rights = actor.rights(mailbox);
    (rights.contains(Rights::LOOKUP) || rights.contains(Rights::READ)).then_some(rights)
}

/// The owner and the normalized mailbox name that `actor` means by `name` (their own,
/// `Other Users/<owner>/<name>` or `Shared Folders/<name>`); `None` when either is not
/// a valid name, so no such mailbox can exist.
pub(crate) fn owner_and_name(actor: &Actor, name: &str) -> Option<(String, String)> {
    let (owner, rest) = match crate::shared::strip_shared_folders(name) {
        Some(shared) => (crate::shared::SHARED_OWNER, shared),
        None => split_other(name).unwrap_or((actor.name.as_str(), name)),
    };
    match (
        crate::names::normalize_user(owner),
        crate::names::normalize_mailbox(rest),
    ) {
        (Ok(owner), Ok(name)) => Some((owner, name)),
        _ => None,
    }
}

/// `Other Users/bob/Folder` → (`bob`, `Folder`).
fn split_other(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(OTHER_USERS)?.strip_prefix('/')?;
    let (owner, mailbox) = rest.split_once('/')?;
    (!owner.is_empty() && !mailbox.is_empty()).then_some((owner, mailbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print_in_rfc_order() {
        assert_eq!(Rights::parse("alr").unwrap().to_string(), "lra");
        assert_eq!(Rights::parse("cd").unwrap().to_string(), "kxte");
        assert!(Rights::parse("lrz").is_err());
        assert_eq!(Rights::ALL.to_string(), "lrswipkxtea");
    }

    #[test]
    fn posting_needs_p_for_anyone_and_no_negative_entry() {
        let may = |acl: &str| Acl::parse(acl).anyone_may_post();
        assert!(!may(""));
        assert!(!may("bob\tp"), "p for one user is not enough");
        assert!(!may("anyone\tlr"));
        assert!(may("anyone\tp"));
        assert!(!may("anyone\tlrp\t-anyone\tp"));
    }

    #[test]
    fn acl_round_trips_and_replaces_entries() {
        let mut acl = Acl::parse("bob\tlr\tanyone\tp");
        assert_eq!(acl.get("bob").to_string(), "lr");
        acl.set("bob", Some(Rights::parse("lrs").unwrap()));
        acl.set("anyone", None);
        assert_eq!(acl.to_string(), "bob\tlrs");
        assert_eq!(Acl::parse(&acl.to_string()), acl);
    }
}
