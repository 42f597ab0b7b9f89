//! Expiry by policy: a per-mailbox age limit in days, kept (as Cyrus keeps it) in the
//! shared mailbox annotation `/vendor/cmu/cyrus-imapd/expire` and inherited by child
//! mailboxes, and the pass of `tern expire` that expunges the messages older than it.
//!
//! **Inheritance.** A mailbox's limit is the value on the mailbox itself or, when it
//! has none, on its nearest live ancestor that has one (`a/b/c` looks at `a/b/c`, then
//! `a/b`, then `a`). The value `none` (or `0`, as in Cyrus) means "never expire" and
//! stops inheritance, so a child can be exempted from its parent's limit. A value that
//! is not a number of days is treated as `none`: a mistyped policy keeps mail rather
//! than removing it.
//!
//! **Age basis.** A message's age is counted from its arrival time: the INTERNALDATE
//! stored with the record (the delivery time for LMTP, the date the client gave or
//! the append time for APPEND, the original's for COPY and MOVE). A message is expired
//! when `internaldate < now - days * 86400`.
//!
//! **Effect.** Expired messages are expunged as ordinary expunges: each batch takes a
//! new modseq, so QRESYNC clients (VANISHED) and replicas (the next sync) see them,
//! exactly as if a client had expunged them. Purging the expunged records and
//! collecting their blobs is a later, separate step of `tern expire`.

use rusqlite::{params, Connection};

use crate::error::{Result, StoreError};
use crate::flagging::expunge_in;
use crate::ids::{Uid, UniqueId};
use crate::names::{normalize_mailbox, normalize_user};
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// The annotation holding a mailbox's expire policy (days, or `none`), as in Cyrus.
pub const EXPIRE_ANNOTATION: &str = "/vendor/cmu/cyrus-imapd/expire";

/// How many records one expunge transaction takes at most, so that a large expiry
/// never holds the writer (and with it deliveries) for more than one short transaction.
const BATCH: usize = 500;

/// Seconds in a day: the unit of the policy.
const DAY: i64 = 86_400;

/// What a mailbox's own policy annotation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireSetting {
    /// Expire messages older than this many days (at least 1).
    Days(u32),
    /// Never expire here, whatever an ancestor says (stops inheritance).
    Never,
}

impl ExpireSetting {
    /// Parses an annotation value: a positive number of days, or `none` / `0` for never.
    /// Anything else reads as `Never`, so that a bad value keeps mail.
    pub fn parse(value: &str) -> ExpireSetting {
        match value.trim().parse::<u32>() {
            Ok(0) => ExpireSetting::Never,
            Ok(days) => ExpireSetting::Days(days),
            Err(_) => ExpireSetting::Never,
        }
    }

    /// The annotation value this setting is stored as (`none` or the number of days).
    pub fn to_value(self) -> String {
        match self {
            ExpireSetting::Days(d) => d.to_string(),
            ExpireSetting::Never => "none".to_owned(),
        }
    }
}

/// A mailbox's policy as `tern admin` shows it: its own setting and the one in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirePolicy {
    /// The mailbox's own annotation, if it has one (`None`: it inherits).
    pub own: Option<ExpireSetting>,
    /// The limit in force in days (`None`: never expires).
    pub effective: Option<u32>,
    /// The mailbox whose annotation decides (itself or an ancestor), if any does.
    pub from: Option<String>,
}

/// What the policy pass did (or, in a dry run, would do) for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPolicyReport {
    /// Canonical user name.
    pub user: String,
    /// Mailboxes with a limit in force that were examined.
    pub mailboxes: u32,
    /// Messages expunged (dry run: that would be).
    pub messages: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Mailboxes that failed, with the error; the pass went on past them.
    pub failures: Vec<(String, String)>,
}

/// What the policy pass did across the users it covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// One entry per user covered, in name order.
    pub users: Vec<UserPolicyReport>,
}

impl PolicyReport {
    /// Messages expunged (or that would be) in total.
    pub fn messages(&self) -> u64 {
        self.users.iter().map(|u| u.messages).sum()
    }

    /// Their total size in bytes.
    pub fn bytes(&self) -> u64 {
        self.users.iter().map(|u| u.bytes).sum()
    }

    /// Mailboxes that failed, as (user, mailbox, error).
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.users.iter().flat_map(|u| {
            u.failures
                .iter()
                .map(move |(m, e)| (u.user.as_str(), m.as_str(), e.as_str()))
        })
    }
}

/// A live mailbox with its own setting, as read for the pass.
struct Candidate {
    name: String,
    uniqueid: UniqueId,
    own: Option<ExpireSetting>,
}

/// The live mailboxes of `user` with their own settings.
fn candidates(conn: &Connection, user: &str) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.name, m.uniqueid, a.value FROM mailboxes m JOIN users u ON u.id = m.user_id \
         LEFT JOIN annotations a ON a.mailbox_id = m.id AND a.key = ?2 \
         WHERE u.name = ?1 AND m.tombstone_modseq IS NULL ORDER BY m.name",
    )?;
    let mut rows: Vec<Candidate> = stmt
        .query_map(params![user, EXPIRE_ANNOTATION], |r| {
            Ok(Candidate {
                name: r.get(0)?,
                uniqueid: UniqueId::from_db(r.get(1)?),
                own: r
                    .get::<_, Option<String>>(2)?
                    .map(|v| ExpireSetting::parse(&v)),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // `resolve` searches by name; sort here rather than trust the column's collation.
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The setting in force for `name` and the mailbox it comes from: the nearest of
/// `name` and its ancestors with a setting of their own.
fn resolve<'a>(all: &'a [Candidate], name: &str) -> Option<(ExpireSetting, &'a str)> {
    let mut at = name;
    loop {
        if let Ok(i) = all.binary_search_by(|c| c.name.as_str().cmp(at)) {
            if let Some(own) = all[i].own {
                return Some((own, all[i].name.as_str()));
            }
        }
        at = &at[..at.rfind('/')?];
    }
}

impl Store {
    /// Sets a mailbox's own expire policy (`Some`), or removes it (`None`) so that the
    /// mailbox inherits its ancestors'. Stored as the shared annotation
    /// [`EXPIRE_ANNOTATION`], so it replicates like any annotation and clients see it
    /// over IMAP METADATA.
    pub fn set_expire_policy(
        &self,
        user: &str,
        mailbox: &str,
        setting: Option<ExpireSetting>,
    ) -> Result<()> {
        let value = setting.map(ExpireSetting::to_value);
        self.set_annotation(user, mailbox, EXPIRE_ANNOTATION, value.as_deref())
    }

    /// A mailbox's own expire setting and the one in force after inheritance.
    pub fn expire_policy(&self, user: &str, mailbox: &str) -> Result<ExpirePolicy> {
        let user = normalize_user(user)?;
        let name = normalize_mailbox(mailbox)?;
        self.read(|conn| {
            txn::live_mailbox(conn, &user, &name)?;
            let all = candidates(conn, &user)?;
            Ok(policy_of(&all, &name))
        })
    }

    /// The expire policy of every live mailbox of `user`, by name.
    pub fn expire_policies(&self, user: &str) -> Result<Vec<(String, ExpirePolicy)>> {
        let user = normalize_user(user)?;
        self.read(|conn| {
            let all = candidates(conn, &user)?;
            Ok(all
                .iter()
                .map(|c| (c.name.clone(), policy_of(&all, &c.name)))
                .collect())
        })
    }

    /// Expunges, for `user` (or every user), the messages whose arrival time is older
    /// than their mailbox's policy (see the module documentation for inheritance and
    /// the age basis), as of `now` (Unix seconds).
    ///
    /// Each expunge is an ordinary one with a new modseq, in transactions of at most a
    /// few hundred records. With `dry_run` nothing is written and the report counts
    /// what would be expunged. A mailbox that fails is recorded in the report and the
    /// pass goes on; an unknown `user` is an error.
    pub fn expire_by_policy(
        &self,
        user: Option<&str>,
        dry_run: bool,
        now: i64,
    ) -> Result<PolicyReport> {
        let users = match user {
            Some(u) => {
                let u = normalize_user(u)?;
                if self.user(&u)?.is_none() {
                    return Err(StoreError::NoSuchUser(u));
                }
                vec![u]
            }
            None => self.users()?.into_iter().map(|u| u.name).collect(),
        };
        let mut report = PolicyReport {
            dry_run,
            users: Vec::new(),
        };
        for user in users {
            report.users.push(self.expire_user(&user, dry_run, now)?);
        }
        Ok(report)
    }

    /// The policy pass for one user.
    fn expire_user(&self, user: &str, dry_run: bool, now: i64) -> Result<UserPolicyReport> {
        let all = self.read(|conn| candidates(conn, user))?;
        let mut report = UserPolicyReport {
            user: user.to_owned(),
            ..UserPolicyReport::default()
        };
        for c in &all {
            let days = match resolve(&all, &c.name) {
                Some((ExpireSetting::Days(d), _)) => d,
                _ => continue,
            };
            report.mailboxes += 1;
            let cutoff = now.saturating_sub(i64::from(days) * DAY);
            let done = if dry_run {
                self.read(|conn| count_expired(conn, &c.uniqueid, cutoff))
            } else {
                self.expunge_expired(&c.uniqueid, cutoff)
            };
            match done {
                Ok((messages, bytes)) => {
                    report.messages += messages;
                    report.bytes += bytes;
                }
                Err(e) => report.failures.push((c.name.clone(), e.to_string())),
            }
        }
        Ok(report)
    }

    /// Expunges the live records of one mailbox that arrived before `cutoff`, one
    /// bounded transaction at a time; returns how many and their bytes. A mailbox
    /// deleted meanwhile simply ends the work.
    fn expunge_expired(&self, id: &UniqueId, cutoff: i64) -> Result<(u64, u64)> {
        let (mut messages, mut bytes) = (0u64, 0u64);
        loop {
            let id2 = id.clone();
            let (n, size, modseq) = self.write(move |conn| {
                let Some(mailbox) = crate::mailboxes::live_by_uniqueid(conn, &id2)? else {
                    return Ok((0, 0, 0));
                };
                let (uids, size) = expired_batch(conn, mailbox.id, cutoff)?;
                if uids.is_empty() {
                    return Ok((0, 0, 0));
                }
                let (done, modseq) = expunge_in(conn, &mailbox, &uids)?;
                Ok((done.len() as u64, size, modseq))
            })?;
            if n == 0 {
                return Ok((messages, bytes));
            }
            self.notify(id, modseq);
            messages += n;
            bytes += size;
        }
    }
}

/// The policy of `name` among `all`.
fn policy_of(all: &[Candidate], name: &str) -> ExpirePolicy {
    let own = all
        .binary_search_by(|c| c.name.as_str().cmp(name))
        .ok()
        .and_then(|i| all[i].own);
    let found = resolve(all, name);
    ExpirePolicy {
        own,
        effective: match found {
            Some((ExpireSetting::Days(d), _)) => Some(d),
            _ => None,
        },
        from: found.map(|(_, from)| from.to_owned()),
    }
}

/// Up to [`BATCH`] live records of a mailbox that arrived before `cutoff`, and their
/// total size.
fn expired_batch(conn: &Connection, mailbox_id: i64, cutoff: i64) -> Result<(Vec<Uid>, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, size FROM records WHERE mailbox_id = ?1 AND expunged_modseq IS NULL \
         AND internaldate < ?2 ORDER BY uid LIMIT ?3",
    )?;
    let mut uids = Vec::new();
    let mut bytes = 0u64;
    let rows = stmt.query_map(params![mailbox_id, cutoff, BATCH as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (uid, size) = row?;
        uids.push(uid as Uid);
        bytes += size.max(0) as u64;
    }
    Ok((uids, bytes))
}

/// How many live records of a mailbox arrived before `cutoff`, and their bytes.
fn count_expired(conn: &Connection, id: &UniqueId, cutoff: i64) -> Result<(u64, u64)> {
    let Some(mailbox) = crate::mailboxes::live_by_uniqueid(conn, id)? else {
        return Ok((0, 0));
    };
    let (n, bytes): (i64, i64) = conn.query_row_cached(
        "SELECT count(*), coalesce(sum(size), 0) FROM records \
         WHERE mailbox_id = ?1 AND expunged_modseq IS NULL AND internaldate < ?2",
        params![mailbox.id, cutoff],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n.max(0) as u64, bytes.max(0) as u64))
}

#[cfg(test)]
mod tests;
