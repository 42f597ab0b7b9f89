//! Each mailbox's keyword table: the keywords (`$Label1`, `Junk`) defined in it.
//!
//! IMAP lists a mailbox's keywords in FLAGS and PERMANENTFLAGS (RFC 3501 7.2.6,
//! 7.1), and clients build their tag lists from it, so the table must hold every
//! keyword any record of the mailbox has. Rules, as in Cyrus:
//!
//! - **It only grows.** Every write that gives a record a keyword (APPEND with flags,
//!   STORE, COPY and MOVE into the mailbox, a replicated UPDATE, the master's merge of
//!   a diverged replica) adds it in the same transaction. A keyword stays when the last message loses it; it goes only with
//!   the mailbox (DELETE, the user's deletion).
//! - **It is capped** at [`MAX_KEYWORDS`]. A client's write that would add one more
//!   is refused whole with [`StoreError::TooManyKeywords`] (IMAP `NO [LIMIT]`).
//!   Replicated writes and merges are never refused: the master decided (or the
//!   replica's clients already did), and refusing would diverge or lose mail.
//! - **It is replicated** as a union: a replica keeps the keywords it had and adds
//!   the master's, so a keyword its own clients saw in FLAGS never disappears.
//!
//! Keywords compare exactly (as the records' flags do): `Foo` and `foo` are two.

use rusqlite::{params, Connection};

use crate::acl::{Actor, Rights};
use crate::error::{Result, StoreError};
use crate::flags::{Flag, Flags};
use crate::ids::UniqueId;
use crate::mailboxes::Mailbox;
use crate::records::{live, live_for};
use crate::replicated::MailboxUpdate;
use crate::sql::Cached;
use crate::store::Store;

/// Most keywords one mailbox's table holds.
///
/// Cyrus's limit (`MAX_USER_FLAGS`, a 128-bit mask per record), so a tern mailbox can
/// always be carried to or from Cyrus; far above what clients use (a handful of
/// labels, `$Forwarded`, `$MDNSent`, `$Junk`, ...). It also bounds what the table
/// costs where it travels whole: a FLAGS and a PERMANENTFLAGS line at every SELECT,
/// and each replicated UPDATE's state, at most 128 × 129 bytes (about 16 KiB).
pub const MAX_KEYWORDS: usize = 128;

impl Store {
    /// The keyword table of the live mailbox `mailbox`, sorted (bytewise), read from
    /// its primary key (no record is read). Acts for the server (replication, tools):
    /// no rights are checked.
    pub fn mailbox_keywords(&self, mailbox: &UniqueId) -> Result<Vec<String>> {
        self.read(|conn| {
            let m = live(conn, mailbox)?;
            keywords_of(conn, m.id)
        })
    }

    /// The keyword table of `mailbox`, sorted, for `actor`, who needs the `r` right
    /// (what SELECT lists in FLAGS).
    pub fn keywords_for(&self, actor: &Actor, mailbox: &UniqueId) -> Result<Vec<String>> {
        self.read(|conn| {
            let m = live_for(conn, actor, mailbox, Rights::READ)?;
            keywords_of(conn, m.id)
        })
    }
}

/// The keyword table of mailbox row `mailbox_id`, sorted, inside a caller's snapshot.
pub(crate) fn keywords_of(conn: &Connection, mailbox_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT keyword FROM mailbox_keywords WHERE mailbox_id = ?1 ORDER BY keyword",
    )?;
    let rows = stmt
        .query_map([mailbox_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Adds `keyword` to the table; true if it was not there.
fn insert(conn: &Connection, mailbox_id: i64, keyword: &str) -> Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword) VALUES (?1, ?2)",
        )?
        .execute(params![mailbox_id, keyword])?;
    Ok(added > 0)
}

/// Adds the keywords among `flags` to `mailbox`'s table, inside the caller's write
/// transaction, holding the cap: when the table would exceed [`MAX_KEYWORDS`], fails
/// with [`StoreError::TooManyKeywords`], and the caller's job (the whole write) is
/// rolled back. For writes a client asked for.
pub(crate) fn add_capped(conn: &Connection, mailbox: &Mailbox, flags: &Flags) -> Result<()> {
    let mut first_new = None;
    for flag in flags.iter() {
        if let Flag::Keyword(k) = flag {
            if insert(conn, mailbox.id, k)? && first_new.is_none() {
                first_new = Some(k);
            }
        }
    }
    let Some(keyword) = first_new else {
        return Ok(());
    };
    let count: i64 = conn.query_row_cached(
        "SELECT count(*) FROM mailbox_keywords WHERE mailbox_id = ?1",
        [mailbox.id],
        |r| r.get(0),
    )?;
    if count as usize > MAX_KEYWORDS {
        return Err(StoreError::TooManyKeywords {
            name: mailbox.name.clone(),
            keyword: keyword.clone(),
            limit: MAX_KEYWORDS,
        });
    }
    Ok(())
}

/// Adds to mailbox row `mailbox_id`'s table, uncapped, the keywords a replicated
/// UPDATE names: the master's table (`state.keywords`; strings that are not valid
/// keywords are skipped) and those of the records it appends or stores, so the table
/// covers every record even when the master sent no table (an older master).
pub(crate) fn absorb_update(
    conn: &Connection,
    mailbox_id: i64,
    update: &MailboxUpdate,
) -> Result<()> {
    absorb_names(conn, mailbox_id, &update.state.keywords)?;
    absorb_flags(
        conn,
        mailbox_id,
        update
            .appends
            .iter()
            .map(|a| &a.flags)
            .chain(update.stores.iter().map(|s| &s.2)),
    )
}

/// Adds every keyword among `flags` to mailbox row `mailbox_id`'s table, uncapped:
/// for writes that must not be refused (what a replica's clients already did, taken
/// back by the master's merge; a replicated UPDATE).
pub(crate) fn absorb_flags<'a>(
    conn: &Connection,
    mailbox_id: i64,
    flags: impl IntoIterator<Item = &'a Flags>,
) -> Result<()> {
    for f in flags {
        for flag in f.iter() {
            if let Flag::Keyword(k) = flag {
                insert(conn, mailbox_id, k)?;
            }
        }
    }
    Ok(())
}

/// Adds each valid keyword of `names` to the table of mailbox row `mailbox_id`,
/// uncapped (what a peer's clients saw is never refused); anything else is skipped.
pub(crate) fn absorb_names(conn: &Connection, mailbox_id: i64, names: &[String]) -> Result<()> {
    for k in names {
        if let Ok(Flag::Keyword(k)) = Flag::parse(k) {
            insert(conn, mailbox_id, &k)?;
        }
    }
    Ok(())
}

/// Forgets the table of mailbox row `mailbox_id` (the mailbox is being deleted).
pub(crate) fn drop_table(conn: &Connection, mailbox_id: i64) -> Result<()> {
    conn.execute_cached(
        "DELETE FROM mailbox_keywords WHERE mailbox_id = ?1",
        [mailbox_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
