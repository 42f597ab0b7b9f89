//! `tern check --repair`: fixing what the check found.
//!
//! Each repair runs in its own short write transaction and first re-checks, inside it,
//! that the finding still holds (the server may be running). None reuses a UID, lowers
//! a modseq or changes a UIDVALIDITY:
//! - counters only go up: a mailbox's last UID and HIGHESTMODSEQ to what its records
//!   use, a user's modseq counter to every modseq of theirs;
//! - a message whose blob is missing or damaged is healed from another partition's
//!   good copy, else (not on a replica) expunged with a new modseq, so replicas and
//!   QRESYNC clients see it go; a damaged file is moved to `<partition>/damaged/`,
//!   never deleted;
//! - message counts, sizes, quota usage and records digests are recomputed from the
//!   records (after the expunges, in the same run);
//! - a blob a purged message left is collected as `tern expire` would; one no message
//!   of this store ever had is offered back as a new message in the `Recovered`
//!   mailbox of the user named for it, when one is;
//! - rows of messages that are gone (summaries, full-text entries) are dropped.
//!
//! A run killed at any moment leaves each repair done or not done, never half: a
//! damaged file moved aside before its record's expunge committed is simply a missing
//! blob to the next check.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::blobs::{state, BlobState};
use super::{Finding, Problem};
use crate::error::{Result, StoreError};
use crate::ids::{Guid, UniqueId};
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;

/// The mailbox new messages made of orphan blobs are put in.
pub const RECOVERED_MAILBOX: &str = "Recovered";

/// How to repair.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// `None`: records whose blob is gone or damaged and has no good copy here are
    /// expunged. `Some(why)`: they are left, with this reason (on a replica, whose own
    /// expunge would be a divergence its master takes back as a deletion; on a master
    /// whose replica could not be asked for good copies).
    pub keep_damaged: Option<String>,
    /// The user whose `Recovered` mailbox receives orphan blobs no message of this
    /// store ever had (a blob's owner cannot be told from the blob).
    pub recover_to: Option<String>,
}

/// What became of one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// Fixed, and how.
    Repaired(String),
    /// Not fixed, and why (or what the operator can do).
    Left(String),
}

/// Every finding with what became of it.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// In the order repaired.
    pub outcomes: Vec<(Finding, RepairOutcome)>,
}

impl RepairReport {
    /// Findings left unrepaired.
    pub fn left_count(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, RepairOutcome::Left(_)))
            .count()
    }
}

/// The report being built, told to the caller as each outcome is known.
struct Outcomes<'a> {
    report: RepairReport,
    each: &'a mut dyn FnMut(&Finding, &RepairOutcome),
}

impl Outcomes<'_> {
    fn push(&mut self, f: &Finding, outcome: RepairOutcome) {
        (self.each)(f, &outcome);
        self.report.outcomes.push((f.clone(), outcome));
    }

    fn done(&mut self, f: &Finding, how: impl Into<String>) {
        self.push(f, RepairOutcome::Repaired(how.into()));
    }

    fn left(&mut self, f: &Finding, why: impl Into<String>) {
        self.push(f, RepairOutcome::Left(why.into()));
    }
}

impl Store {
    /// Puts back the blob of a message from a good copy (a replica's): `data` must hash
    /// to `guid`; a damaged file in its place is moved to `<partition>/damaged/` first.
    /// Durable on return. False (nothing written) when `data` is not that message.
    pub fn restore_blob(&self, partition: &str, guid: &Guid, data: &[u8]) -> Result<bool> {
        if Guid::of(data) != *guid {
            return Ok(false);
        }
        let blobs = self.blobs();
        let size = data.len() as u64;
        match state(blobs, partition, guid, size, true)?.0 {
            BlobState::Whole => return Ok(true),
            BlobState::Missing => {}
            BlobState::WrongSize(_) | BlobState::WrongContent => {
                quarantine(
                    &blobs.path(partition, guid)?,
                    &blobs.root(partition)?.join("damaged"),
                )?;
            }
        }
        blobs.put_with_guid(partition, guid, data)?;
        Ok(true)
    }

    /// Repairs `findings` (from [`check`](super::check) on this store), as the module
    /// documentation says. Fatal findings are not repaired here (see
    /// [`repair_index`](super::repair_index)). Fails only when the store cannot be written at all; a finding
    /// that cannot be repaired is reported as [`RepairOutcome::Left`]. `each` is told
    /// every outcome as soon as it is durable.
    pub fn repair(
        &self,
        findings: &[Finding],
        options: &RepairOptions,
        each: &mut dyn FnMut(&Finding, &RepairOutcome),
    ) -> Result<RepairReport> {
        let mut report = Outcomes {
            report: RepairReport::default(),
            each,
        };
        let mut recount: BTreeSet<UniqueId> = BTreeSet::new();
        let mut users: BTreeSet<String> = BTreeSet::new();
        // Told once the recounts at the end are durable.
        let mut recounted: Vec<&Finding> = Vec::new();
        // Counters first: the expunges below take modseqs above all that are in use.
        for f in findings {
            let mailbox = f.place.mailbox.as_ref().map(|(_, id)| id.clone());
            if let Some(user) = &f.place.user {
                users.insert(user.clone());
            }
            match (&f.problem, mailbox) {
                (Problem::UidAboveLast { .. } | Problem::ModseqAboveHighest { .. }, Some(id)) => {
                    self.raise_mailbox_counters(&id)?;
                    report.done(
                        f,
                        "raised the mailbox's last UID and HIGHESTMODSEQ to its records'",
                    );
                }
                (Problem::ModseqCounterBehind { .. }, _) => {
                    if let Some(user) = &f.place.user {
                        self.raise_user_counter(user)?;
                    }
                    report.done(f, "raised the user's modseq counter");
                }
                _ => {}
            }
        }
        for f in findings {
            let mailbox = f.place.mailbox.as_ref().map(|(_, id)| id.clone());
            match (&f.problem, mailbox, f.place.uid) {
                (p, Some(id), Some(uid)) if p.is_damaged_blob() => {
                    let outcome = self.repair_blob(&id, uid, p, options)?;
                    recount.insert(id);
                    report.push(f, outcome);
                }
                (Problem::MailboxCounts { .. } | Problem::Digest { .. } | Problem::TombstoneNotEmpty { .. }, Some(id), _) => {
                    recount.insert(id);
                    recounted.push(f);
                }
                (Problem::QuotaUsage { .. }, _, _) => recounted.push(f),
                (Problem::ChangeNotLogged { .. }, Some(id), _) => {
                    self.log_unlogged_changes(&id)?;
                    report.done(f, "logged the record's change");
                }
                (Problem::ForeignKey { table, .. }, _, _) => match self.drop_dangling(table)? {
                    true => report.done(f, "removed the dangling rows"),
                    false => report.left(f, "a mailbox whose user is gone: restore the user from a replica or backup"),
                },
                (Problem::OrphanBlob { guid, partition, size, purged }, _, _) => {
                    let outcome = self.repair_orphan(partition, *guid, *size, *purged, options)?;
                    report.push(f, outcome);
                }
                (Problem::StaleSummary { guid }, _, _) => {
                    self.drop_stale_summary(*guid)?;
                    report.done(f, "removed");
                }
                (Problem::StaleTexts { .. }, _, _) => {
                    let n = self.sweep_text_index()?;
                    report.done(f, format!("swept {n} texts"));
                }
                (Problem::ConsumerAhead { consumer, .. }, _, _) => {
                    self.clamp_consumer(consumer)?;
                    report.done(f, "set back to the log's end");
                }
                (Problem::DuplicateUniqueId { .. }, _, _) => {
                    report.left(f, "two mailboxes share a unique id: rename one away and let `tern sync` settle it")
                }
                (Problem::IndexDamaged { .. }, _, _) => {
                    report.left(f, "the index is damaged: see `tern check --repair` on the whole store")
                }
                _ => {}
            }
        }
        // Recounts last, after every expunge above.
        for id in &recount {
            if let Some(user) = self.recount_mailbox(id)? {
                users.insert(user);
            }
        }
        for user in &users {
            self.recount_usage(user)?;
        }
        for f in recounted {
            report.done(f, "recomputed from the records");
        }
        Ok(report.report)
    }

    fn raise_mailbox_counters(&self, id: &UniqueId) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute_cached(
                "UPDATE mailboxes SET \
                 last_uid = max(last_uid, coalesce((SELECT max(uid) FROM records r WHERE r.mailbox_id = mailboxes.id), 0)), \
                 highest_modseq = max(highest_modseq, deleted_modseq, \
                   coalesce((SELECT max(modseq) FROM records r WHERE r.mailbox_id = mailboxes.id), 0)) \
                 WHERE uniqueid = ?1",
                [id.as_str()],
            )?;
            Ok(())
        })
    }

    /// Logs, one row each, the changes of the mailbox's records that its log of changed
    /// ranges is missing. Idempotent: a second run finds them logged.
    fn log_unlogged_changes(&self, id: &UniqueId) -> Result<()> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute_cached(
                "INSERT OR IGNORE INTO record_changes (mailbox_id, modseq, uid_lo, uid_hi) \
                 SELECT r.mailbox_id, r.modseq, r.uid, r.uid FROM records r \
                 JOIN mailboxes m ON m.id = r.mailbox_id \
                 WHERE m.uniqueid = ?1 AND r.modseq > m.changes_from AND NOT EXISTS \
                 (SELECT 1 FROM record_changes c WHERE c.mailbox_id = r.mailbox_id \
                  AND c.modseq = r.modseq AND c.uid_lo <= r.uid AND c.uid_hi >= r.uid)",
                [id.as_str()],
            )?;
            Ok(())
        })
    }

    fn raise_user_counter(&self, user: &str) -> Result<()> {
        let user = user.to_owned();
        self.write(move |conn| raise_counter(conn, &user))
    }

    /// One damaged blob of record `uid`: heal from a good copy in another partition,
    /// else move the damaged file aside and expunge every live record of the mailbox
    /// that has it.
    fn repair_blob(
        &self,
        id: &UniqueId,
        uid: u32,
        problem: &Problem,
        options: &RepairOptions,
    ) -> Result<super::RepairOutcome> {
        let deep = matches!(problem, Problem::BlobWrongContent { .. });
        let (store, mailbox_id) = (self.clone(), id.clone());
        let id = id.clone();
        let keep = options.keep_damaged.clone();
        let (outcome, touched) = self.write(move |conn| {
            let Some(mailbox) = txn::mailbox_by_uniqueid(conn, &id)? else {
                return Ok((RepairOutcome::Left("the mailbox is gone".into()), None));
            };
            let record: Option<(Vec<u8>, i64)> = conn
                .query_row_cached(
                    "SELECT guid, size FROM records WHERE mailbox_id = ?1 AND uid = ?2 \
                     AND expunged_modseq IS NULL",
                    params![mailbox.id, uid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok();
            let Some((guid, size)) = record else {
                return Ok((RepairOutcome::Repaired("already expunged".into()), None));
            };
            let Ok(guid) = <[u8; 20]>::try_from(&guid[..]).map(Guid::from_bytes) else {
                return Ok((RepairOutcome::Left("the record's GUID is malformed".into()), None));
            };
            let size = size as u64;
            let blobs = store.blobs();
            let (now, _) = state(blobs, &mailbox.partition, &guid, size, deep)?;
            if now == BlobState::Whole {
                return Ok((RepairOutcome::Repaired("whole now".into()), None));
            }
            if now != BlobState::Missing {
                quarantine(&blobs.path(&mailbox.partition, &guid)?, &blobs.root(&mailbox.partition)?.join("damaged"))?;
            }
            if let Some(from) = good_copy(blobs, &mailbox.partition, &guid, size)? {
                let bytes = blobs.read(&from, &guid, size)?;
                blobs.put_with_guid(&mailbox.partition, &guid, &bytes)?;
                return Ok((RepairOutcome::Repaired(format!("copied back from partition {from}")), None));
            }
            if let Some(why) = keep {
                return Ok((RepairOutcome::Left(why), None));
            }
            raise_counter(conn, &mailbox.user)?;
            let uids: Vec<u32> = conn
                .prepare_cached(
                    "SELECT uid FROM records WHERE mailbox_id = ?1 AND guid = ?2 AND expunged_modseq IS NULL",
                )?
                .query_map(params![mailbox.id, &guid.as_bytes()[..]], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let (done, modseq) = crate::flagging::expunge_in(conn, &mailbox, &uids)?;
            Ok((
                RepairOutcome::Repaired(format!("expunged (modseq {modseq}, {} record(s))", done.len())),
                Some(modseq),
            ))
        })?;
        if let Some(modseq) = touched {
            self.notify(&mailbox_id, modseq);
        }
        Ok(outcome)
    }
}

/// Raises `user`'s modseq counter to every modseq their mailboxes and records use.
fn raise_counter(conn: &Connection, user: &str) -> Result<()> {
    let user_id = txn::user_id(conn, user)?;
    conn.execute_cached(
        "UPDATE users SET modseq = max(modseq, \
           coalesce((SELECT max(max(highest_modseq, deleted_modseq, created_modseq, coalesce(tombstone_modseq, 0))) \
                     FROM mailboxes WHERE user_id = ?1), 0), \
           coalesce((SELECT max(r.modseq) FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
                     WHERE m.user_id = ?1), 0)) \
         WHERE id = ?1",
        [user_id],
    )?;
    Ok(())
}

/// Another partition holding a copy of `guid` of `size` bytes whose content is right.
fn good_copy(
    blobs: &crate::blobs::BlobStore,
    not: &str,
    guid: &Guid,
    size: u64,
) -> Result<Option<String>> {
    for (partition, len) in blobs.holders(guid) {
        if partition == not || len != size {
            continue;
        }
        if state(blobs, &partition, guid, size, true)?.0 == BlobState::Whole {
            return Ok(Some(partition));
        }
    }
    Ok(None)
}

/// Moves a damaged file into `dir` (created if needed) under a name that says when,
/// and makes the move durable.
pub(super) fn quarantine(path: &Path, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = dir.join(format!("{name}.{}", crate::store::now()));
    fs::rename(path, &to).map_err(|e| StoreError::io("rename", path, e))?;
    crate::blobs::sync_dir(dir)?;
    if let Some(parent) = path.parent() {
        crate::blobs::sync_dir(parent)?;
    }
    Ok(to)
}
