//! The checks of blob files: each live record's blob (present, of its size, and with
//! `--deep` of its content), blobs nothing refers to, and per-GUID rows (summaries, the
//! full-text index) of messages that are gone.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection};

use super::scan::MailboxRow;
use super::{CheckReport, Finding, Place, Problem, ORPHAN_GRACE_SECS};
use crate::blobs::BlobStore;
use crate::error::{Result, StoreError};
use crate::ids::Guid;
use crate::sql::Cached;

/// What the check found of one blob file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlobState {
    /// Present, of the expected size (and with `--deep`, of the right content).
    Whole,
    /// No file.
    Missing,
    /// A file of another size.
    WrongSize(u64),
    /// A file whose content does not hash to its name.
    WrongContent,
}

/// Looks at one blob: stat, and with `deep` read and hash.
pub(super) fn state(
    blobs: &BlobStore,
    partition: &str,
    guid: &Guid,
    size: u64,
    deep: bool,
) -> Result<(BlobState, u64)> {
    let path = blobs.path(partition, guid)?;
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((BlobState::Missing, 0)),
        Err(e) => return Err(StoreError::io("stat", path, e)),
    };
    if meta.len() != size {
        return Ok((BlobState::WrongSize(meta.len()), 0));
    }
    if !deep {
        return Ok((BlobState::Whole, 0));
    }
    let bytes = fs::read(&path).map_err(|e| StoreError::io("read", &path, e))?;
    let state = if Guid::of(&bytes) == *guid {
        BlobState::Whole
    } else {
        BlobState::WrongContent
    };
    Ok((state, bytes.len() as u64))
}

/// Checks the blob of every live record of mailbox `m`. A GUID is looked at once per
/// partition in a run, however many records share it.
pub(super) fn of_mailbox(
    conn: &Connection,
    blobs: &BlobStore,
    user: &str,
    m: &MailboxRow,
    deep: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, guid, size FROM records WHERE mailbox_id = ?1 AND expunged_modseq IS NULL \
         ORDER BY uid",
    )?;
    let mut rows = stmt.query([m.id])?;
    while let Some(r) = rows.next()? {
        let uid: u32 = r.get(0)?;
        let Some(guid) = guid_of(r.get_ref(1)?.as_blob().unwrap_or(&[])) else {
            continue;
        };
        let size = r.get::<_, i64>(2)? as u64;
        let key = (m.partition.clone(), guid);
        let found = match report.seen.get(&key) {
            Some(s) => *s,
            None => {
                let (s, hashed) = state(blobs, &m.partition, &guid, size, deep)?;
                report.blobs += 1;
                report.bytes_hashed += hashed;
                report.seen.insert(key, s);
                s
            }
        };
        let partition = m.partition.clone();
        let problem = match found {
            BlobState::Whole => continue,
            BlobState::Missing => Problem::BlobMissing {
                guid,
                partition,
                size,
            },
            BlobState::WrongSize(found) => Problem::BlobWrongSize {
                guid,
                partition,
                expected: size,
                found,
            },
            BlobState::WrongContent => Problem::BlobWrongContent {
                guid,
                partition,
                size,
            },
        };
        report.findings.push(Finding {
            place: Place {
                uid: Some(uid),
                ..m.place(user)
            },
            problem,
        });
    }
    Ok(())
}

/// A GUID column's value, if it is one.
fn guid_of(bytes: &[u8]) -> Option<Guid> {
    <[u8; 20]>::try_from(bytes).ok().map(Guid::from_bytes)
}

/// Finds blob files no record refers to. The files are listed before the snapshot that
/// looks for their records is taken, so a record committed before the listing is seen;
/// files younger than [`ORPHAN_GRACE_SECS`] are left out (their record may be about to
/// commit).
pub(super) fn orphans(
    conn: &Connection,
    blobs: &BlobStore,
    report: &mut CheckReport,
) -> Result<()> {
    let grace = SystemTime::now()
        .checked_sub(Duration::from_secs(ORPHAN_GRACE_SECS))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut listed = Vec::new();
    for partition in blobs.partition_names() {
        for (guid, size, modified) in blobs.list_dated(partition)? {
            if modified <= grace {
                listed.push((partition.to_owned(), guid, size));
            }
        }
    }
    let tx = conn.unchecked_transaction()?;
    for (partition, guid, size) in listed {
        if crate::orphans::referenced(&tx, &guid)? {
            continue;
        }
        let purged = crate::content::has_index(&tx, &guid)?;
        report.findings.push(Finding {
            place: Place::default(),
            problem: Problem::OrphanBlob {
                guid,
                partition,
                size,
                purged,
            },
        });
    }
    tx.finish()?;
    Ok(())
}

/// Summaries and full-text queue entries of GUIDs that no record refers to and no
/// partition holds (a blob awaiting collection keeps its summary until then).
pub(super) fn stale_summaries(
    conn: &Connection,
    blobs: &BlobStore,
    report: &mut CheckReport,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT guid FROM (SELECT guid FROM summaries UNION SELECT guid FROM pending_texts) g \
         WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.guid = g.guid)",
    )?;
    let guids = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for bytes in guids {
        let Some(guid) = guid_of(&bytes) else {
            continue;
        };
        if blobs.holders(&guid).is_empty() {
            report.findings.push(Finding {
                place: Place::default(),
                problem: Problem::StaleSummary { guid },
            });
        }
    }
    Ok(())
}

/// Counts full-text entries of GUIDs no record refers to. A full-text database that
/// is absent or not yet prepared has none.
pub(super) fn stale_texts(
    conn: &Connection,
    index_path: &Path,
    report: &mut CheckReport,
) -> Result<()> {
    let Some(dir) = index_path.parent() else {
        return Ok(());
    };
    let text = dir.join("texts.sqlite3");
    if !text.exists() {
        return Ok(());
    }
    let uri = format!("file:{}?mode=ro", uri_path(&text));
    if conn
        .execute_cached("ATTACH DATABASE ?1 AS text", [uri])
        .is_err()
    {
        return Ok(());
    }
    let count = conn.query_row_cached(
        "SELECT count(*) FROM text.text_guids g \
         WHERE NOT EXISTS (SELECT 1 FROM main.records r WHERE r.guid = g.guid)",
        params![],
        |r| r.get::<_, i64>(0),
    );
    let _ = conn.execute_cached("DETACH DATABASE text", []);
    if let Ok(count) = count {
        if count > 0 {
            report.findings.push(Finding {
                place: Place::default(),
                problem: Problem::StaleTexts {
                    count: count as u64,
                },
            });
        }
    }
    Ok(())
}

/// A path as the path part of an SQLite URI (`%`, `?` and `#` escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}
