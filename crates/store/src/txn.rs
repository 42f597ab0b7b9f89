//! Steps shared by write transactions: looking up rows, allocating modseqs, logging
//! changes. Every function here runs inside a transaction the caller holds.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::ids::{Modseq, UniqueId};
use crate::mailboxes::{mailbox_columns, Mailbox};
use crate::sql::Cached;
use crate::store::now;

/// The id of a user's row, or `NoSuchUser`.
pub(crate) fn user_id(conn: &Connection, user: &str) -> Result<i64> {
    conn.query_row_cached("SELECT id FROM users WHERE name = ?1", [user], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NoSuchUser(user.to_owned()))
}

/// Takes the user's next modseq. The only place a modseq is allocated.
pub(crate) fn next_modseq(conn: &Connection, user_id: i64) -> Result<Modseq> {
    let m: i64 = conn.query_row_cached(
        "UPDATE users SET modseq = modseq + 1 WHERE id = ?1 RETURNING modseq",
        [user_id],
        |r| r.get(0),
    )?;
    Ok(m as Modseq)
}

/// Appends an entry to the change log, in the same transaction as the change, so a
/// committed change is never missing from the log.
pub(crate) fn log_change(conn: &Connection, user: &str, mailbox: Option<&UniqueId>) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO changelog (user_name, mailbox_uniqueid, at) VALUES (?1, ?2, ?3)",
        params![user, mailbox.map(UniqueId::as_str), now()],
    )?;
    Ok(())
}

/// The live mailbox `name` of `user`, or `NoSuchMailbox`.
pub(crate) fn live_mailbox(conn: &Connection, user: &str, name: &str) -> Result<Mailbox> {
    find_live_mailbox(conn, user, name)?.ok_or_else(|| StoreError::NoSuchMailbox {
        user: user.to_owned(),
        name: name.to_owned(),
    })
}

/// The live mailbox `name` of `user`, if any.
pub(crate) fn find_live_mailbox(
    conn: &Connection,
    user: &str,
    name: &str,
) -> Result<Option<Mailbox>> {
    const SQL: &str = concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes m JOIN users u ON u.id = m.user_id \
         WHERE u.name = ?1 AND m.name = ?2 AND m.tombstone_modseq IS NULL"
    );
    Ok(conn
        .query_row_cached(SQL, [user, name], Mailbox::from_row)
        .optional()?)
}

/// The mailbox with this unique id (live or tombstone), if any.
pub(crate) fn mailbox_by_uniqueid(conn: &Connection, id: &UniqueId) -> Result<Option<Mailbox>> {
    const SQL: &str = concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes m JOIN users u ON u.id = m.user_id WHERE m.uniqueid = ?1"
    );
    Ok(conn
        .query_row_cached(SQL, [id.as_str()], Mailbox::from_row)
        .optional()?)
}

/// Records that `mailbox` changed at `modseq`: raises HIGHESTMODSEQ and logs it.
pub(crate) fn touch_mailbox(conn: &Connection, mailbox: &Mailbox, modseq: Modseq) -> Result<()> {
    conn.execute_cached(
        "UPDATE mailboxes SET highest_modseq = max(highest_modseq, ?2) WHERE id = ?1",
        params![mailbox.id, modseq as i64],
    )?;
    log_change(conn, &mailbox.user, Some(&mailbox.uniqueid))
}
