//! Digests that let two stores prove they hold the same mailbox or user state
//! (`docs/replication.md`, section 4). Both sides compute them the same way from their
//! own index, so a replica can check, inside the transaction that applied an update,
//! that it now holds exactly what the master holds.

use rusqlite::{params, Connection};
use sha1::{Digest, Sha1};

use crate::error::Result;

/// The mailbox digest of the mailbox row `mailbox_id` with the given header values:
/// SHA-1 over the header line and one line per record (expunged ones included) in UID
/// order, lower-case hex.
pub(crate) fn mailbox_digest(
    conn: &Connection,
    mailbox_id: i64,
    uidvalidity: u32,
    last_uid: u32,
    highest_modseq: u64,
) -> Result<String> {
    let mut hash = Sha1::new();
    hash.update(format!("{uidvalidity} {last_uid} {highest_modseq}\n"));
    let mut stmt = conn.prepare_cached(
        "SELECT uid, modseq, internaldate, size, guid, coalesce(expunged_modseq, 0), flags \
         FROM records WHERE mailbox_id = ?1 ORDER BY uid",
    )?;
    let mut rows = stmt.query([mailbox_id])?;
    let mut line = String::with_capacity(160);
    let mut guid_hex = [0u8; 40];
    while let Some(r) = rows.next()? {
        line.clear();
        use std::fmt::Write;
        let _ = write!(
            line,
            "{} {} {} {} ",
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        );
        let guid = r.get_ref(4)?.as_blob().unwrap_or(&[]);
        if hex::encode_to_slice(guid, &mut guid_hex).is_ok() {
            line.push_str(std::str::from_utf8(&guid_hex).unwrap_or(""));
        }
        let _ = write!(line, " {} ", r.get::<_, i64>(5)?);
        // Every writer stores flags in canonical form (`Flags`'s Display), so the
        // stored text is hashed as it is: this runs over every record of a mailbox at
        // each final UPDATE, on both sides, and must stay cheap.
        line.push_str(r.get_ref(6)?.as_str().unwrap_or(""));
        line.push('\n');
        hash.update(line.as_bytes());
    }
    Ok(hex::encode(hash.finalize()))
}

/// The user digest over user-level state: password hash, administrator bit, quota
/// limits and the sorted subscriptions.
pub(crate) fn user_digest(
    password_hash: Option<&str>,
    is_admin: bool,
    quota_storage: Option<u64>,
    quota_messages: Option<u64>,
    subscriptions: &[String],
) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut hash = Sha1::new();
    hash.update(format!(
        "{}\n{}\n{}\n{}\n",
        password_hash.unwrap_or("-"),
        if is_admin { 1 } else { 0 },
        opt(quota_storage),
        opt(quota_messages)
    ));
    let mut subs: Vec<&String> = subscriptions.iter().collect();
    subs.sort();
    for s in subs {
        hash.update(s.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// The user-level state of `user_id` as (password hash, admin, quota storage, quota
/// messages, subscriptions).
pub(crate) type UserRow = (Option<String>, bool, Option<u64>, Option<u64>, Vec<String>);

/// Reads the user-level state that [`user_digest`] covers.
pub(crate) fn user_row(conn: &Connection, user_id: i64) -> Result<UserRow> {
    let (hash, admin, qs, qm): (Option<String>, bool, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT password_hash, is_admin, quota_storage, quota_messages FROM users WHERE id = ?1",
        params![user_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut stmt =
        conn.prepare_cached("SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name")?;
    let subs = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok((
        hash,
        admin,
        qs.map(|v| v as u64),
        qm.map(|v| v as u64),
        subs,
    ))
}
