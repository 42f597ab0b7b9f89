//! The checks of users and their mailboxes, and the store-wide checks, all on a
//! read-only connection.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{blobs, CheckOptions, CheckReport, Finding, Place, Problem};
use crate::blobs::BlobStore;
use crate::digest::{recompute_records_digest, RecordsDigest};
use crate::error::{Result, StoreError};
use crate::ids::{Modseq, UniqueId};
use crate::sql::Cached;

/// Most findings of one kind reported for one mailbox (UIDs above the last, modseqs
/// above the highest): past it, the first ones say enough.
const PER_MAILBOX_LIMIT: i64 = 1000;

/// A user as the check reads it.
pub(super) struct UserRow {
    pub(super) id: i64,
    pub(super) name: String,
    modseq: Modseq,
    used: (u64, u64),
}

/// A mailbox row (live or tombstone) as the check reads it.
pub(super) struct MailboxRow {
    pub(super) id: i64,
    pub(super) uniqueid: UniqueId,
    pub(super) name: String,
    pub(super) partition: String,
    last_uid: u32,
    highest_modseq: Modseq,
    deleted_modseq: Modseq,
    counts: (u64, u64),
    created_modseq: Modseq,
    tombstone_modseq: Option<Modseq>,
    digest: RecordsDigest,
}

impl MailboxRow {
    pub(super) fn place(&self, user: &str) -> Place {
        Place {
            user: Some(user.to_owned()),
            mailbox: Some((self.name.clone(), self.uniqueid.clone())),
            uid: None,
        }
    }
}

/// The users to check: those named (each must exist), or all, by name.
pub(super) fn users(conn: &Connection, names: &[String]) -> Result<Vec<UserRow>> {
    let mut stmt = conn
        .prepare("SELECT id, name, modseq, used_messages, used_storage FROM users ORDER BY name")?;
    let all = stmt
        .query_map([], |r| {
            Ok(UserRow {
                id: r.get(0)?,
                name: r.get(1)?,
                modseq: r.get::<_, i64>(2)? as Modseq,
                used: (r.get::<_, i64>(3)? as u64, r.get::<_, i64>(4)? as u64),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if names.is_empty() {
        return Ok(all);
    }
    let mut by_name: HashMap<String, UserRow> =
        all.into_iter().map(|u| (u.name.clone(), u)).collect();
    let mut out = Vec::new();
    for name in names {
        let name = crate::names::normalize_user(name)?;
        match by_name.remove(&name) {
            Some(u) => out.push(u),
            None => return Err(StoreError::NoSuchUser(name)),
        }
    }
    Ok(out)
}

/// Checks one user (or one mailbox of theirs) in one read snapshot.
pub(super) fn user(
    conn: &Connection,
    blobs: &BlobStore,
    user: &UserRow,
    options: &CheckOptions,
    report: &mut CheckReport,
) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    report.users += 1;
    let mut stmt = tx.prepare_cached(
        "SELECT id, uniqueid, name, partition, last_uid, highest_modseq, deleted_modseq, \
         messages, bytes, created_modseq, tombstone_modseq, records_digest \
         FROM mailboxes WHERE user_id = ?1 ORDER BY name, id",
    )?;
    let mailboxes = stmt
        .query_map([user.id], |r| {
            let uniqueid: String = r.get(1)?;
            Ok(MailboxRow {
                id: r.get(0)?,
                uniqueid: UniqueId::parse(&uniqueid)
                    .unwrap_or_else(|| UniqueId::unchecked(&uniqueid)),
                name: r.get(2)?,
                partition: r.get(3)?,
                last_uid: r.get::<_, i64>(4)? as u32,
                highest_modseq: r.get::<_, i64>(5)? as Modseq,
                deleted_modseq: r.get::<_, i64>(6)? as Modseq,
                counts: (r.get::<_, i64>(7)? as u64, r.get::<_, i64>(8)? as u64),
                created_modseq: r.get::<_, i64>(9)? as Modseq,
                tombstone_modseq: r.get::<_, Option<i64>>(10)?.map(|m| m as Modseq),
                digest: RecordsDigest::from_column(r.get_ref(11)?.as_blob().unwrap_or(&[])),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    let wanted = match &options.mailbox {
        Some(name) => {
            let name = crate::names::normalize_mailbox(name)?;
            let one: Vec<&MailboxRow> = mailboxes
                .iter()
                .filter(|m| m.tombstone_modseq.is_none() && m.name == name)
                .collect();
            if one.is_empty() {
                return Err(StoreError::NoSuchMailbox {
                    user: user.name.clone(),
                    name,
                });
            }
            one
        }
        None => mailboxes.iter().collect(),
    };
    let mut highest: Modseq = 0;
    let mut usage = (0u64, 0u64);
    for m in wanted {
        let (top, counted) = mailbox(&tx, blobs, &user.name, m, options.deep, report)?;
        highest = highest.max(top);
        if m.tombstone_modseq.is_none() {
            usage.0 += counted.0;
            usage.1 += counted.1;
        }
    }
    if options.mailbox.is_some() {
        return Ok(());
    }
    let place = Place {
        user: Some(user.name.clone()),
        ..Place::default()
    };
    if user.modseq < highest {
        report.findings.push(Finding {
            place: place.clone(),
            problem: Problem::ModseqCounterBehind {
                counter: user.modseq,
                highest,
            },
        });
    }
    if user.used != usage {
        report.findings.push(Finding {
            place,
            problem: Problem::QuotaUsage {
                kept: user.used,
                counted: usage,
            },
        });
    }
    Ok(())
}

/// Checks one mailbox; returns the highest modseq it uses and its live (messages,
/// bytes) counted from the records.
fn mailbox(
    conn: &Connection,
    blobs: &BlobStore,
    user: &str,
    m: &MailboxRow,
    deep: bool,
    report: &mut CheckReport,
) -> Result<(Modseq, (u64, u64))> {
    report.mailboxes += 1;
    let place = m.place(user);
    let (records, max_modseq, live, live_bytes): (i64, i64, i64, i64) = conn.query_row_cached(
        "SELECT count(*), coalesce(max(modseq), 0), \
         coalesce(sum(expunged_modseq IS NULL), 0), \
         coalesce(sum(CASE WHEN expunged_modseq IS NULL THEN size ELSE 0 END), 0) \
         FROM records WHERE mailbox_id = ?1",
        [m.id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    report.records += records as u64;
    // Expunges logged but not yet folded into the rows (`pending.rs`) are already
    // off the mailbox's counts: the rows they name count as gone.
    let (mut live, mut live_bytes) = (live, live_bytes);
    for uid in crate::pending::expunged_uids(conn, m.id)? {
        let size: Option<i64> = conn
            .query_row_cached(
                "SELECT size FROM records WHERE mailbox_id = ?1 AND uid = ?2 \
                 AND expunged_modseq IS NULL",
                params![m.id, uid],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(size) = size {
            live -= 1;
            live_bytes -= size;
        }
    }
    let counted = (live as u64, live_bytes as u64);
    let highest = [
        m.highest_modseq,
        max_modseq as Modseq,
        m.deleted_modseq,
        m.created_modseq,
        m.tombstone_modseq.unwrap_or(0),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let mut push = |uid: Option<u32>, problem: Problem| {
        report.findings.push(Finding {
            place: Place {
                uid,
                ..place.clone()
            },
            problem,
        })
    };
    if m.tombstone_modseq.is_some() {
        if records > 0 || m.counts != (0, 0) {
            push(
                None,
                Problem::TombstoneNotEmpty {
                    records: records as u64,
                },
            );
        }
        return Ok((highest, (0, 0)));
    }
    let mut above_last = conn.prepare_cached(
        "SELECT uid FROM records WHERE mailbox_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3",
    )?;
    let uids = above_last
        .query_map(params![m.id, m.last_uid, PER_MAILBOX_LIMIT], |r| {
            r.get::<_, u32>(0)
        })?
        .collect::<rusqlite::Result<Vec<u32>>>()?;
    for uid in uids {
        push(
            Some(uid),
            Problem::UidAboveLast {
                last_uid: m.last_uid,
            },
        );
    }
    let mut above_highest = conn.prepare_cached(
        "SELECT uid, modseq FROM records WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid LIMIT ?3",
    )?;
    let modseqs = above_highest
        .query_map(
            params![m.id, m.highest_modseq as i64, PER_MAILBOX_LIMIT],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as Modseq)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (uid, modseq) in modseqs {
        push(
            Some(uid),
            Problem::ModseqAboveHighest {
                modseq,
                highest: m.highest_modseq,
            },
        );
    }
    let mut unlogged = conn.prepare_cached(
        "SELECT r.uid, r.modseq FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
         WHERE r.mailbox_id = ?1 AND r.modseq > m.changes_from AND NOT EXISTS \
         (SELECT 1 FROM record_changes c WHERE c.mailbox_id = ?1 AND c.modseq = r.modseq \
          AND c.uid_lo <= r.uid AND c.uid_hi >= r.uid) ORDER BY r.uid LIMIT ?2",
    )?;
    let missing = unlogged
        .query_map(params![m.id, PER_MAILBOX_LIMIT], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as Modseq))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (uid, modseq) in missing {
        push(Some(uid), Problem::ChangeNotLogged { modseq });
    }
    if m.deleted_modseq > m.highest_modseq {
        push(
            None,
            Problem::ModseqAboveHighest {
                modseq: m.deleted_modseq,
                highest: m.highest_modseq,
            },
        );
    }
    if m.counts != counted {
        push(
            None,
            Problem::MailboxCounts {
                kept: m.counts,
                counted,
            },
        );
    }
    let computed = recompute_records_digest(conn, m.id)?;
    if computed != m.digest {
        push(
            None,
            Problem::Digest {
                kept: m.digest.to_string(),
                computed: computed.to_string(),
            },
        );
    }
    blobs::of_mailbox(conn, blobs, user, m, deep, report)?;
    Ok((highest, counted))
}

/// The checks that span the store: unique ids, stale summaries, the full-text index,
/// change-log consumers.
pub(super) fn store_wide(
    conn: &Connection,
    blobs: &BlobStore,
    index_path: &Path,
    report: &mut CheckReport,
) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare_cached(
        "SELECT uniqueid, count(*) FROM mailboxes GROUP BY uniqueid HAVING count(*) > 1",
    )?;
    let dups = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, count) in dups {
        report.findings.push(Finding {
            place: Place {
                mailbox: Some((String::new(), UniqueId::unchecked(&id))),
                ..Place::default()
            },
            problem: Problem::DuplicateUniqueId {
                count: count as u64,
            },
        });
    }
    drop(stmt);
    blobs::stale_summaries(&tx, blobs, report)?;
    let last: i64 = tx
        .query_row_cached(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changelog'), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let mut stmt = tx.prepare_cached("SELECT consumer, seq FROM changelog_acks WHERE seq > ?1")?;
    let ahead = stmt
        .query_map([last], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (consumer, acked) in ahead {
        report.findings.push(Finding {
            place: Place::default(),
            problem: Problem::ConsumerAhead {
                consumer,
                acked,
                last,
            },
        });
    }
    drop(stmt);
    tx.finish()?;
    blobs::stale_texts(conn, index_path, report)
}
