//! Reading records: a mailbox's messages, what changed since a modseq, message bytes.
//!
//! Every read runs in one snapshot, so the mailbox state returned with records is the
//! state those records belong to.

use std::sync::Arc;

use rusqlite::{params, Connection, Row};

use crate::acl::{Actor, Rights};
use crate::blobs::MessageFile;
use crate::error::{Result, StoreError};
use crate::flags::Flags;
use crate::ids::{Guid, Modseq, Uid, UniqueId};
use crate::mailboxes::{live_by_uniqueid, Mailbox};
use crate::record_cache::{LiveRecordsCache, StateKey};
use crate::sql::Cached;
use crate::store::Store;

/// One message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// UID within the mailbox.
    pub uid: Uid,
    /// Modseq of the last change to this record (append, flags, or expunge).
    pub modseq: Modseq,
    /// Flags set on the message.
    pub flags: Flags,
    /// IMAP INTERNALDATE, Unix seconds.
    pub internaldate: i64,
    /// Size of the raw message in bytes (RFC822.SIZE).
    pub size: u64,
    /// Content address of the raw message.
    pub guid: Guid,
    /// Set once expunged: the modseq of the expunge. The record stays until purged.
    pub expunged_modseq: Option<Modseq>,
    /// The POP3 UIDL this message had on the server it was imported from (valid per
    /// [`crate::valid_pop3_uidl`], unique among the mailbox's live records when set
    /// locally), set at creation and never changed; POP3 shows it instead of
    /// `uidvalidity.uid`.
    pub pop3_uidl: Option<String>,
    /// When the message was stored in this mailbox (RFC 8514 SAVEDATE), Unix seconds;
    /// `None` for records from before schema 10 and for replicated ones, whose save
    /// time on the master is not carried.
    pub saved_at: Option<i64>,
}

/// The columns [`Record::from_row`] reads, as a literal for `concat!` (see
/// `mailboxes::mailbox_columns`).
macro_rules! record_columns {
    () => {
        "uid, modseq, flags, internaldate, size, guid, expunged_modseq, pop3_uidl, saved_at"
    };
}

impl Record {
    pub(crate) const COLUMNS: &'static str = record_columns!();

    pub(crate) fn from_row(r: &Row) -> rusqlite::Result<Record> {
        // Flags and GUID are read in place, not copied out first: this runs for every
        // record a FETCH or SEARCH of a whole mailbox reads.
        let flags = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
        let guid = r.get_ref(5)?.as_blob().map_err(rusqlite::Error::from)?;
        Ok(Record {
            uid: r.get::<_, i64>(0)? as u32,
            modseq: r.get::<_, i64>(1)? as u64,
            // Stored flags were validated on the way in; a damaged value degrades to
            // "no flags" rather than hiding the message.
            flags: Flags::parse_list(flags).unwrap_or_default(),
            internaldate: r.get(3)?,
            size: r.get::<_, i64>(4)? as u64,
            guid: Guid::from_slice(guid).unwrap_or(Guid::from_bytes([0; 20])),
            expunged_modseq: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
            pop3_uidl: r.get(7)?,
            saved_at: r.get(8)?,
        })
    }
}

/// Counts over a mailbox's live records (for STATUS and SELECT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// Messages above the \Recent watermark.
    pub recent: u32,
    /// The lowest UID without `\Seen`.
    pub first_unseen: Option<Uid>,
}

impl Store {
    /// A live mailbox and counts of its unseen, deleted and recent messages, from one
    /// snapshot.
    pub fn mailbox_counts(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
    ) -> Result<(Mailbox, MailboxCounts)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            let key = StateKey::of(&mailbox);
            if let Some(counts) = self.shared.counts.get(&key, mailbox.recent_uid) {
                return Ok((mailbox, counts));
            }
            crate::pending::require_folded(conn, mailbox.id)?;
            let sql = format!(
                "SELECT \
                   coalesce(sum(instr(flags, '\\Seen') = 0), 0), \
                   coalesce(sum(instr(flags, '\\Deleted') > 0), 0), \
                   coalesce(sum(uid > ?2), 0), \
                   min(CASE WHEN instr(flags, '\\Seen') = 0 THEN uid END) \
                 FROM records {} WHERE mailbox_id = ?1 AND expunged_modseq IS NULL",
                live_scan(&mailbox)
            );
            let (unseen, deleted, recent, first): (i64, i64, i64, Option<i64>) = conn
                .query_row_cached(&sql, params![mailbox.id, mailbox.recent_uid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let counts = MailboxCounts {
                unseen: unseen as u32,
                deleted: deleted as u32,
                recent: recent as u32,
                first_unseen: first.map(|u| u as Uid),
            };
            self.shared.counts.put(key, mailbox.recent_uid, counts);
            Ok((mailbox, counts))
        })
    }

    /// A live mailbox and every record in it in UID order (expunged ones only when
    /// asked), from one snapshot.
    pub fn records(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        include_expunged: bool,
    ) -> Result<(Mailbox, Vec<Record>)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            let rows = if include_expunged {
                crate::pending::require_folded(conn, mailbox.id)?;
                all_records(conn, mailbox.id)?
            } else {
                let live = live_records(conn, &mailbox, &self.shared.live_records)?;
                Arc::try_unwrap(live).unwrap_or_else(|kept| kept.as_ref().clone())
            };
            Ok((mailbox, rows))
        })
    }

    /// A live mailbox and the records of `uids` (ascending), expunged ones included,
    /// from one snapshot: what a session's view holds (it keeps messages expunged by
    /// others until the client is told). Its cost follows the number of live records
    /// and of `uids`, never the expunged records piling up until `tern expire`.
    pub fn records_of(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        uids: &[Uid],
    ) -> Result<(Mailbox, Vec<Record>)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            let records = records_of_in(conn, &mailbox, uids, &self.shared.live_records)?;
            Ok((mailbox, records))
        })
    }

    /// [`Store::records_of`] and [`Store::changed_since`] from one snapshot: a FETCH
    /// and the report of what changed since the session last looked, for the price of
    /// one read. The changes are those of the same instant as the records, so a
    /// client is never told of a state older than the one it was just shown.
    pub fn records_and_changes(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        uids: &[Uid],
        since: Modseq,
    ) -> Result<(Mailbox, Vec<Record>, Vec<Record>)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            let records = records_of_in(conn, &mailbox, uids, &self.shared.live_records)?;
            let changed = self.changes_in(conn, &mailbox, since)?;
            Ok((mailbox, records, changed))
        })
    }

    /// A live mailbox and the UIDs of its live records, ascending: what a session
    /// needs to open a view, without reading flags and dates.
    pub fn live_uids(&self, actor: &Actor, mailbox: &UniqueId) -> Result<(Mailbox, Vec<Uid>)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            crate::pending::require_folded(conn, mailbox.id)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT uid FROM records {} WHERE mailbox_id = ?1 AND expunged_modseq IS NULL \
                 ORDER BY uid",
                live_scan(&mailbox)
            ))?;
            let uids = stmt
                .query_map([mailbox.id], |r| r.get::<_, i64>(0).map(|u| u as Uid))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((mailbox, uids))
        })
    }

    /// A live mailbox and every record (expunged ones included) whose modseq is above
    /// `since`, in UID order, from one snapshot. Answered from the mailbox's log of
    /// changed UID ranges (`record_changes`), so its cost follows the number of changes,
    /// not the mailbox size; a `since` older than the log reaches scans the mailbox.
    pub fn changed_since(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        since: Modseq,
    ) -> Result<(Mailbox, Vec<Record>)> {
        self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            let changed = self.changes_in(conn, &mailbox, since)?;
            Ok((mailbox, changed))
        })
    }

    /// The records of `mailbox` (as read in this transaction) whose modseq is above
    /// `since`, in UID order.
    fn changes_in(
        &self,
        conn: &Connection,
        mailbox: &Mailbox,
        since: Modseq,
    ) -> Result<Vec<Record>> {
        if mailbox.highest_modseq <= since {
            return Ok(Vec::new());
        }
        // Many sessions watching one mailbox ask the same question after each
        // change; answer it once per (mailbox, since, state).
        let key = (mailbox.id, since, mailbox.highest_modseq);
        if let Some(rows) = self.shared.change_sets.get(&key) {
            return Ok(rows.as_ref().clone());
        }
        crate::pending::require_folded(conn, mailbox.id)?;
        let rows = crate::record_changes::changed_records(conn, mailbox.id, since)?;
        self.shared
            .change_sets
            .put(key, std::sync::Arc::new(rows.clone()));
        Ok(rows)
    }

    /// The records with these UIDs (expunged ones included, for a client that has not
    /// yet been told of the expunge), in the order asked; missing UIDs are skipped.
    pub fn records_by_uid(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        uids: &[Uid],
    ) -> Result<Vec<Record>> {
        self.read(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::READ)?;
            records_in(conn, mailbox.id, uids, true)
        })
    }

    /// The raw bytes of a message, verified against its size. Expunged records stay
    /// readable until `tern expire` purges them.
    pub fn message(&self, mailbox: &Mailbox, record: &Record) -> Result<Vec<u8>> {
        self.blobs()
            .read(&mailbox.partition, &record.guid, record.size)
    }

    /// True when this store holds the message of `record` complete in the mailbox's
    /// partition.
    pub fn holds_message(&self, mailbox: &Mailbox, record: &Record) -> Result<bool> {
        self.blobs()
            .contains(&mailbox.partition, &record.guid, record.size)
    }

    /// The message of `record`, opened to be read by ranges (see [`MessageFile`]).
    pub fn open_message(&self, mailbox: &Mailbox, record: &Record) -> Result<MessageFile> {
        self.blobs()
            .open_blob(&mailbox.partition, &record.guid, record.size)
    }
}

/// The live mailbox with this unique id, if `actor` has the `needed` rights on it.
pub(crate) fn live_for(
    conn: &Connection,
    actor: &Actor,
    id: &UniqueId,
    needed: Rights,
) -> Result<Mailbox> {
    let mailbox = live(conn, id)?;
    actor.require(&mailbox, needed)?;
    Ok(mailbox)
}

/// The live mailbox with this unique id, or `NoSuchMailbox`.
pub(crate) fn live(conn: &Connection, id: &UniqueId) -> Result<Mailbox> {
    live_by_uniqueid(conn, id)?.ok_or_else(|| StoreError::NoSuchMailbox {
        user: String::new(),
        name: id.to_string(),
    })
}

/// How to read a mailbox's live records: through `records_live`, the partial index of
/// live records (schema 10), when UIDs gone outnumber the live ones, so expunged
/// records awaiting `tern expire` cost nothing; otherwise by the primary key, which
/// reads the rows in place and is faster when nearly every record is live (measured:
/// 100,000 live records 126 ms by key, 163 ms by the index; 22 live among 14,000
/// expunged 1.6 ms by key, 0.03 ms by the index).
pub(crate) fn live_scan(mailbox: &Mailbox) -> &'static str {
    let gone = u64::from(mailbox.last_uid).saturating_sub(u64::from(mailbox.messages));
    if gone > u64::from(mailbox.messages) + 64 {
        "INDEXED BY records_live"
    } else {
        ""
    }
}

/// Every live record of a mailbox in UID order (see [`live_scan`]), as of the snapshot
/// `mailbox` was read in: from `kept` when it holds a read under the same mailbox
/// state ([`crate::record_cache`]), else read and offered to it.
fn live_records(
    conn: &Connection,
    mailbox: &Mailbox,
    kept: &LiveRecordsCache,
) -> Result<Arc<Vec<Record>>> {
    let key = StateKey::of(mailbox);
    if let Some(records) = kept.get(&key) {
        return Ok(records);
    }
    crate::pending::require_folded(conn, mailbox.id)?;
    let (records, as_stored) = read_live_records(conn, mailbox)?;
    let records = Arc::new(records);
    // A flag store takes a kept record's flags, written out, for the stored text
    // its digest hash covers: a read where that does not hold is not kept.
    if as_stored {
        kept.put(key, Arc::clone(&records));
    }
    Ok(records)
}

/// [`live_records`] from the index, and whether every record's stored flags text is
/// its flags written out ([`Flags::written_as`]).
fn read_live_records(conn: &Connection, mailbox: &Mailbox) -> Result<(Vec<Record>, bool)> {
    let sql = format!(
        "SELECT {} FROM records {} WHERE mailbox_id = ?1 \
         AND expunged_modseq IS NULL ORDER BY uid",
        Record::COLUMNS,
        live_scan(mailbox)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut as_stored = true;
    let rows = stmt
        .query_map(params![mailbox.id], |row| {
            let record = Record::from_row(row)?;
            let text = row.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
            as_stored &= record.flags.written_as(text);
            Ok(record)
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((rows, as_stored))
}

/// Every record of a mailbox, expunged ones included, in UID order.
fn all_records(conn: &Connection, mailbox_id: i64) -> Result<Vec<Record>> {
    const SQL: &str = concat!(
        "SELECT ",
        record_columns!(),
        " FROM records WHERE mailbox_id = ?1 ORDER BY uid"
    );
    let mut stmt = conn.prepare_cached(SQL)?;
    let rows = stmt
        .query_map(params![mailbox_id], Record::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The records of `uids` in `mailbox`, expunged ones included, ascending. Its cost
/// follows the number of live records and of `uids`, never the expunged records piling
/// up until `tern expire`.
fn records_of_in(
    conn: &Connection,
    mailbox: &Mailbox,
    uids: &[Uid],
    kept: &LiveRecordsCache,
) -> Result<Vec<Record>> {
    // Most of the mailbox: one scan of the live records (or a kept one). A few: a kept
    // scan when there is one, else one lookup each.
    let live = if uids.len() > 256 {
        live_records(conn, mailbox, kept)?
    } else if let Some(live) = kept.get(&StateKey::of(mailbox)) {
        live
    } else {
        crate::pending::require_folded(conn, mailbox.id)?;
        return records_in(conn, mailbox.id, uids, true);
    };
    // UIDs the live records lack were expunged since: looked up one by one.
    let mut out = Vec::with_capacity(uids.len());
    let mut missing = Vec::new();
    for &u in uids {
        match live.binary_search_by_key(&u, |r| r.uid) {
            Ok(i) => out.push(live[i].clone()),
            Err(_) => missing.push(u),
        }
    }
    if !missing.is_empty() {
        crate::pending::require_folded(conn, mailbox.id)?;
        out.extend(records_in(conn, mailbox.id, &missing, true)?);
    }
    if !missing.is_empty() || !uids.is_sorted() {
        out.sort_by_key(|r| r.uid);
    }
    Ok(out)
}

/// Records of a mailbox by UID inside a transaction; missing UIDs are skipped.
pub(crate) fn records_in(
    conn: &Connection,
    mailbox_id: i64,
    uids: &[Uid],
    include_expunged: bool,
) -> Result<Vec<Record>> {
    const SQL: &str = concat!(
        "SELECT ",
        record_columns!(),
        " FROM records WHERE mailbox_id = ?1 AND uid = ?2 AND (?3 OR expunged_modseq IS NULL)"
    );
    let mut stmt = conn.prepare_cached(SQL)?;
    let mut out = Vec::with_capacity(uids.len());
    for uid in uids {
        match stmt.query_row(params![mailbox_id, uid, include_expunged], Record::from_row) {
            Ok(r) => out.push(r),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// (mailbox row, since, HIGHESTMODSEQ) naming one answer of [`Store::changed_since`].
type ChangeSetKey = (i64, Modseq, Modseq);

/// A small memo of recent "changed since" answers, keyed by (mailbox row, since,
/// HIGHESTMODSEQ at the time): a key names one immutable answer, so entries never go
/// stale, they only stop being asked for.
#[derive(Default)]
pub(crate) struct ChangeSets {
    entries: std::sync::Mutex<std::collections::HashMap<ChangeSetKey, std::sync::Arc<Vec<Record>>>>,
}

/// Most memoised answers; the memo is emptied when full.
const MAX_CHANGE_SETS: usize = 1024;

impl ChangeSets {
    fn get(&self, key: &ChangeSetKey) -> Option<std::sync::Arc<Vec<Record>>> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: ChangeSetKey, rows: std::sync::Arc<Vec<Record>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CHANGE_SETS {
            entries.clear();
        }
        entries.insert(key, rows);
    }
}

#[cfg(test)]
mod tests {

    /// A view's records, expunged ones included, read the same whichever way the live
    /// records are scanned; and the scan turns to the live index once expunged
    /// records outnumber live ones.
    #[test]
    fn records_of_a_view_with_expunged_records() {
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(600);
        let view: Vec<u32> = (1..=600).collect();
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        assert_eq!(super::live_scan(&mailbox), "");
        // Expunge all but every tenth message: the view (not yet told) still has them.
        let doomed: Vec<u32> = (1..=600).filter(|u| u % 10 != 0).collect();
        store.expunge(&actor, &inbox, &doomed).unwrap();
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        assert_eq!(super::live_scan(&mailbox), "INDEXED BY records_live");
        let (_, records) = store.records_of(&actor, &inbox, &view).unwrap();
        assert_eq!(records.len(), 600);
        assert!(records.windows(2).all(|w| w[0].uid < w[1].uid));
        assert_eq!(
            records
                .iter()
                .filter(|r| r.expunged_modseq.is_some())
                .count(),
            doomed.len()
        );
        let (_, live) = store.records(&actor, &inbox, false).unwrap();
        assert_eq!(
            live.iter().map(|r| r.uid).collect::<Vec<_>>(),
            (1..=60).map(|i| i * 10).collect::<Vec<_>>()
        );
        let (_, some) = store.records_of(&actor, &inbox, &[10, 11, 20]).unwrap();
        assert_eq!(some.iter().map(|r| r.uid).collect::<Vec<_>>(), [10, 11, 20]);
        let (_, counts) = store.mailbox_counts(&actor, &inbox).unwrap();
        assert_eq!(counts.unseen, 60);
        assert_eq!(store.live_uids(&actor, &inbox).unwrap().1.len(), 60);
        let view = store.mailbox_view(&actor, &inbox).unwrap();
        assert_eq!(view.messages.len(), 60);
        // SELECT's lean snapshot agrees with the full one.
        let selection = store
            .resolve_selection(&actor, "INBOX")
            .unwrap()
            .unwrap()
            .1
            .unwrap();
        assert_eq!(selection.uids, view.uids());
        assert_eq!(selection.first_unseen, view.first_unseen);
        assert_eq!(selection.first_unseen, Some(10));
        assert_eq!(selection.keywords, view.keywords);
    }
}
