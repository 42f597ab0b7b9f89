//! Digests that let two stores prove they hold the same mailbox or user state
//! (`docs/replication.md`, section 4). Both sides compute them the same way from their
//! own index, so a replica can check, inside the transaction that applied an update,
//! that it now holds exactly what the master holds, and a client can tell "nothing to
//! do" from "equal counters but different records" without reading the records.

use rusqlite::{params, Connection};
use sha1::{Digest, Sha1};

use crate::error::Result;
use crate::sql::Cached;

/// The digest of a mailbox's records: the XOR of one 128-bit hash per record
/// (expunged records included), in the spirit of Cyrus's SYNC_CRC.
///
/// Order-independent, so the store keeps it up to date incrementally: triggers on the
/// `records` table fold every inserted, changed or deleted record in or out in the same
/// transaction as the change (see `SCHEMA_V4`), except a change of flags and modseq
/// alone, which its writer folds in itself (`SCHEMA_V12`, [`set_flags`]); reading it
/// costs one row. Two
/// mailboxes with the same records (same UIDs, modseqs, dates, sizes, GUIDs, expunge
/// modseqs and flags) have the same digest whatever order they were written in; any
/// difference in one record changes it (but for a 2^-128 chance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RecordsDigest(pub [u8; 16]);

impl RecordsDigest {
    /// The digest of a mailbox without records.
    pub const EMPTY: RecordsDigest = RecordsDigest([0; 16]);

    /// The digest with `record` folded in (or out: folding twice removes it).
    pub(crate) fn fold(mut self, record: &[u8; 16]) -> RecordsDigest {
        for (a, b) in self.0.iter_mut().zip(record) {
            *a ^= b;
        }
        self
    }

    /// Reads the stored column value (16 bytes; anything else reads as a value no real
    /// digest has, so that a damaged row can never compare equal).
    pub(crate) fn from_column(bytes: &[u8]) -> RecordsDigest {
        match <[u8; 16]>::try_from(bytes) {
            Ok(b) => RecordsDigest(b),
            Err(_) => RecordsDigest([0xff; 16]),
        }
    }
}

impl std::fmt::Display for RecordsDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The text is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a records digest is 32 hex digits")]
pub struct BadDigest;

impl std::str::FromStr for RecordsDigest {
    type Err = BadDigest;
    fn from_str(s: &str) -> std::result::Result<Self, BadDigest> {
        let mut out = [0u8; 16];
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(BadDigest);
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| BadDigest)?;
        Ok(RecordsDigest(out))
    }
}

/// One record's hash: the first 16 bytes of the SHA-1 of its line
/// `uid SP modseq SP internaldate SP size SP guid-hex SP expunged SP flags`, where
/// `expunged` is the expunge modseq or 0 and `flags` the stored canonical text, followed
/// by `LF uidl` when the record has a stored POP3 UIDL (flags never hold a line feed, so
/// the two cannot be confused; a record without one hashes as before version 9)
/// (`docs/replication.md`, section 4).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_hash(
    uid: i64,
    modseq: i64,
    internaldate: i64,
    size: i64,
    guid: &[u8],
    expunged: i64,
    flags: &str,
    pop3_uidl: Option<&str>,
) -> [u8; 16] {
    let mut hash = Sha1::new();
    // The line is built on the stack, digits by hand: this runs twice for every record
    // a write changes, and `write!` formatting cost as much as the hash itself. Five
    // i64s in decimal (at most 20 bytes each), a 20-byte GUID in hex and the separators
    // fit in 160 bytes; a GUID too long for what is left is hashed in a piece of its own.
    let mut line = Line::default();
    line.decimal(uid);
    line.push(b' ');
    line.decimal(modseq);
    line.push(b' ');
    line.decimal(internaldate);
    line.push(b' ');
    line.decimal(size);
    line.push(b' ');
    if !line.hex(guid) {
        hash.update(line.as_bytes());
        hash.update(hex::encode(guid));
        line = Line::default();
    }
    line.push(b' ');
    line.decimal(expunged);
    line.push(b' ');
    // The flags join the line when they fit (nearly always): one update of the hash
    // instead of two, the same bytes hashed.
    if !line.try_extend(flags.as_bytes()) {
        hash.update(line.as_bytes());
        line = Line::default();
        hash.update(flags.as_bytes());
    }
    hash.update(line.as_bytes());
    if let Some(uidl) = pop3_uidl {
        hash.update(b"\n");
        hash.update(uidl.as_bytes());
    }
    let full: [u8; 20] = hash.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A short line assembled without allocation or formatting machinery, for
/// [`record_hash`]. Its 160 bytes hold what the hash line puts in one piece (and the
/// flags when they fit); `push` past the end is a logic error caught in debug builds
/// and dropped in release.
struct Line {
    bytes: [u8; 160],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            bytes: [0; 160],
            len: 0,
        }
    }
}

/// "00" to "99", two bytes each: [`Line::decimal`] writes two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

impl Line {
    fn push(&mut self, b: u8) {
        debug_assert!(self.len < self.bytes.len());
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Appends `bytes` if they fit, and says whether they did.
    fn try_extend(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.bytes.get_mut(self.len..end) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// Appends `bytes` in lower-case hex if they fit, and says whether they did.
    fn hex(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + 2 * bytes.len();
        let Some(room) = self.bytes.get_mut(self.len..end) else {
            return false;
        };
        if hex::encode_to_slice(bytes, room).is_err() {
            return false;
        }
        self.len = end;
        true
    }

    /// `v` in decimal, as `{}` would write it.
    fn decimal(&mut self, v: i64) {
        if v < 0 {
            self.push(b'-');
        }
        let mut digits = [0u8; 20];
        let mut n = v.unsigned_abs();
        let mut at = digits.len();
        while n >= 10 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if n > 0 || at == digits.len() {
            at -= 1;
            digits[at] = b'0' + n as u8;
        }
        let fitted = self.try_extend(&digits[at..]);
        debug_assert!(fitted);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The columns of one record that its hash covers, but its UID, as stored.
pub(crate) struct HashedColumns {
    pub(crate) modseq: i64,
    pub(crate) internaldate: i64,
    pub(crate) size: i64,
    pub(crate) guid: Vec<u8>,
    /// The expunge modseq, 0 when live.
    pub(crate) expunged: i64,
    pub(crate) flags: String,
    pub(crate) pop3_uidl: Option<String>,
}

impl HashedColumns {
    /// What a query selects for [`HashedColumns::from_row`], of a live record.
    pub(crate) const LIVE: &'static str = "modseq, internaldate, size, guid, 0, flags, pop3_uidl";

    /// Reads the columns a query selected as [`HashedColumns::LIVE`] lists them (or
    /// with the expunge modseq in fifth place), from column `first` of `row` on.
    pub(crate) fn from_row(
        row: &rusqlite::Row<'_>,
        first: usize,
    ) -> rusqlite::Result<HashedColumns> {
        Ok(HashedColumns {
            modseq: row.get(first)?,
            internaldate: row.get(first + 1)?,
            size: row.get(first + 2)?,
            guid: row.get(first + 3)?,
            expunged: row.get(first + 4)?,
            flags: row.get(first + 5)?,
            pop3_uidl: row.get(first + 6)?,
        })
    }

    /// The hash of record `uid` holding these columns, but with `modseq`, `expunged`
    /// and `flags` as given (what a change leaves).
    pub(crate) fn hash_as(&self, uid: i64, modseq: i64, expunged: i64, flags: &str) -> [u8; 16] {
        record_hash(
            uid,
            modseq,
            self.internaldate,
            self.size,
            &self.guid,
            expunged,
            flags,
            self.pop3_uidl.as_deref(),
        )
    }

    /// The hash of record `uid` as stored.
    pub(crate) fn hash(&self, uid: i64) -> [u8; 16] {
        self.hash_as(uid, self.modseq, self.expunged, &self.flags)
    }
}

/// The [`HashedColumns`] of record `uid` of the mailbox row `mailbox_id` (a live one
/// only, with `live_only`), as read in the caller's transaction.
fn hashed_columns(
    conn: &Connection,
    mailbox_id: i64,
    uid: i64,
    live_only: bool,
) -> Result<Option<HashedColumns>> {
    use rusqlite::OptionalExtension;
    static LIVE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = if live_only {
        crate::sql::built_once(&LIVE, || {
            format!(
                "SELECT {} FROM records WHERE mailbox_id = ?1 AND uid = ?2 \
                 AND expunged_modseq IS NULL",
                HashedColumns::LIVE
            )
        })
    } else {
        "SELECT modseq, internaldate, size, guid, coalesce(expunged_modseq, 0), flags, \
         pop3_uidl FROM records WHERE mailbox_id = ?1 AND uid = ?2"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![mailbox_id, uid], |r| HashedColumns::from_row(r, 0))
        .optional()?)
}

/// Sets the flags and modseq of record `uid` of the mailbox row `mailbox_id` (a live
/// one only, with `live_only`) and folds the record's old and new hash into `delta`,
/// which the caller must apply with [`apply_delta`] in the same transaction. Since
/// schema 12 no trigger does that for a change of flags and modseq alone, so every
/// such statement outside a flag store goes through here. Returns whether a record
/// was changed; nothing is written when none matched.
pub(crate) fn set_flags(
    conn: &Connection,
    mailbox_id: i64,
    uid: i64,
    (flags, modseq): (&str, i64),
    live_only: bool,
    delta: &mut RecordsDigest,
) -> Result<bool> {
    let Some(old) = hashed_columns(conn, mailbox_id, uid, live_only)? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE records SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
    )?
    .execute(params![mailbox_id, uid, flags, modseq])?;
    crate::record_changes::note(conn, mailbox_id, modseq, uid, uid)?;
    *delta = delta
        .fold(&old.hash(uid))
        .fold(&old.hash_as(uid, modseq, old.expunged, flags));
    Ok(true)
}

/// Marks record `uid` of the mailbox row `mailbox_id` expunged at `modseq` (live or
/// already expunged: a replica may be told again), notes the change in the log of
/// changed ranges, and folds the record's old and new hash into `delta`, which the
/// caller applies with [`apply_delta`] in the same transaction: since schema 14 no
/// trigger keeps the digest for an expunge. Returns whether the record exists.
pub(crate) fn expunge_record(
    conn: &Connection,
    mailbox_id: i64,
    uid: i64,
    modseq: i64,
    delta: &mut RecordsDigest,
) -> Result<bool> {
    let Some(old) = hashed_columns(conn, mailbox_id, uid, false)? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE records SET expunged_modseq = ?3, modseq = ?3 WHERE mailbox_id = ?1 AND uid = ?2",
    )?
    .execute(params![mailbox_id, uid, modseq])?;
    crate::record_changes::note(conn, mailbox_id, modseq, uid, uid)?;
    *delta = delta
        .fold(&old.hash(uid))
        .fold(&old.hash_as(uid, modseq, modseq, &old.flags));
    Ok(true)
}

/// Folds `delta` (old and new hashes of records changed in place, see [`set_flags`])
/// into the records digest of the mailbox row `mailbox_id`, in the caller's
/// transaction.
pub(crate) fn apply_delta(conn: &Connection, mailbox_id: i64, delta: &RecordsDigest) -> Result<()> {
    if *delta != RecordsDigest::EMPTY {
        conn.prepare_cached(
            "UPDATE mailboxes SET records_digest = tern_xor(records_digest, ?2) WHERE id = ?1",
        )?
        .execute(params![mailbox_id, &delta.0[..]])?;
    }
    Ok(())
}

/// Registers the SQL functions the digest triggers call, on every connection of the
/// store (a connection without them cannot write a record: the trigger fails, so a
/// write can never leave the digest stale).
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // Seven arguments: the triggers of versions 4 to 8, which a migration from an
    // older index runs before version 9 replaces them; eight: with the stored UIDL.
    for arity in [7, 8] {
        conn.create_scalar_function("tern_record_hash", arity, flags, |ctx| {
            let guid = ctx.get_raw(4).as_blob().unwrap_or(&[]).to_vec();
            let flags: String = ctx.get::<Option<String>>(6)?.unwrap_or_default();
            let uidl: Option<String> = if ctx.len() > 7 { ctx.get(7)? } else { None };
            Ok(record_hash(
                ctx.get(0)?,
                ctx.get(1)?,
                ctx.get(2)?,
                ctx.get(3)?,
                &guid,
                ctx.get::<Option<i64>>(5)?.unwrap_or(0),
                &flags,
                uidl.as_deref(),
            )
            .to_vec())
        })?;
    }
    // The version 11 update trigger calls it; a migration from an older index creates
    // that trigger before version 12 replaces it. Since version 12 no trigger defers.
    conn.create_scalar_function("tern_digest_by_caller", 0, flags, |_| Ok(false))?;
    conn.create_scalar_function("tern_xor", 2, flags, |ctx| {
        let a = RecordsDigest::from_column(ctx.get_raw(0).as_blob().unwrap_or(&[]));
        let b = RecordsDigest::from_column(ctx.get_raw(1).as_blob().unwrap_or(&[]));
        Ok(a.fold(&b.0).0.to_vec())
    })
}

/// Computes the records digest of the mailbox row `mailbox_id` from its records (what
/// the maintained column must equal): for the migration that adds the column, and for
/// checks.
pub(crate) fn recompute_records_digest(
    conn: &Connection,
    mailbox_id: i64,
) -> Result<RecordsDigest> {
    recompute(
        conn,
        mailbox_id,
        "SELECT uid, modseq, internaldate, size, guid, coalesce(expunged_modseq, 0), flags, \
         pop3_uidl FROM records WHERE mailbox_id = ?1",
    )
}

/// [`recompute_records_digest`] for the version 4 migration, when the records have no
/// `pop3_uidl` column yet.
pub(crate) fn recompute_records_digest_before_v9(
    conn: &Connection,
    mailbox_id: i64,
) -> Result<RecordsDigest> {
    recompute(
        conn,
        mailbox_id,
        "SELECT uid, modseq, internaldate, size, guid, coalesce(expunged_modseq, 0), flags, \
         NULL FROM records WHERE mailbox_id = ?1",
    )
}

fn recompute(conn: &Connection, mailbox_id: i64, sql: &str) -> Result<RecordsDigest> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([mailbox_id])?;
    let mut digest = RecordsDigest::EMPTY;
    while let Some(r) = rows.next()? {
        let h = record_hash(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get_ref(4)?.as_blob().unwrap_or(&[]),
            r.get(5)?,
            r.get_ref(6)?.as_str().unwrap_or(""),
            r.get_ref(7)?.as_str_or_null().ok().flatten(),
        );
        digest = digest.fold(&h);
    }
    Ok(digest)
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
    let (hash, admin, qs, qm): (Option<String>, bool, Option<i64>, Option<i64>) = conn
        .query_row_cached(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The line as `docs/replication.md` defines it, built the plain way.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        uid: i64,
        modseq: i64,
        internaldate: i64,
        size: i64,
        guid: &[u8],
        expunged: i64,
        flags: &str,
        pop3_uidl: Option<&str>,
    ) -> [u8; 16] {
        let mut hash = Sha1::new();
        hash.update(format!(
            "{uid} {modseq} {internaldate} {size} {} {expunged} ",
            hex::encode(guid)
        ));
        hash.update(flags.as_bytes());
        if let Some(uidl) = pop3_uidl {
            hash.update(b"\n");
            hash.update(uidl.as_bytes());
        }
        let full: [u8; 20] = hash.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// Digests are compared across servers and kept up to date incrementally, so the
    /// hash must not change by a bit: the stack-built line equals the defined one,
    /// for extreme numbers and for GUIDs of every length.
    #[test]
    fn record_hash_is_the_defined_line() {
        let guid20: Vec<u8> = (0..20).collect();
        let numbers = [
            0,
            1,
            -1,
            9,
            10,
            42,
            99,
            100,
            101,
            1009,
            -100,
            i64::MAX,
            i64::MIN,
            1_700_000_000,
        ];
        // Flags that fit the line beside the rest, and flags that cannot.
        let long_flags = format!("\\Seen {}", "$k".repeat(100));
        for &n in &numbers {
            for guid in [&guid20[..], &[][..], &[0xff; 3][..], &[7; 64][..]] {
                for (uidl, flags) in [
                    (None, "\\Seen $x"),
                    (Some("UIDL-1"), "\\Seen $x"),
                    (None, ""),
                    (None, long_flags.as_str()),
                ] {
                    let args = (
                        n,
                        n.wrapping_add(1),
                        n,
                        n.wrapping_neg(),
                        guid,
                        n,
                        flags,
                        uidl,
                    );
                    assert_eq!(
                        record_hash(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7),
                        reference(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7),
                        "{n} {guid:?} {uidl:?}"
                    );
                }
            }
        }
    }

    /// The two-digits-at-a-time decimal writes what `{}` writes: every number up to
    /// 10,000, each power of ten and its neighbours, and the extremes.
    #[test]
    fn decimal_is_display() {
        let mut numbers: Vec<i64> = (-10_000..=10_000).collect();
        for p in 0..19 {
            let t = 10i64.pow(p);
            // 99...9 of p + 1 digits, where it is an i64.
            let nines = t.checked_mul(10).map_or(i64::MAX, |ten| ten - 1);
            numbers.extend([t - 1, t, t + 1, -t, 5 * t, nines]);
        }
        numbers.extend([i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1]);
        for n in numbers {
            let mut line = Line::default();
            line.decimal(n);
            assert_eq!(line.as_bytes(), n.to_string().as_bytes(), "{n}");
        }
    }

    /// Since schema 12 no trigger folds a change of flags and modseq alone, so
    /// `set_flags` must: on a live record, on an expunged one (whose expunge modseq is
    /// in its hash), and not at all where no record matched. The digest stays what the
    /// records say, and a record expunged and then re-flagged by the trigger path
    /// (an expunge fires it) still agrees.
    #[test]
    fn set_flags_keeps_the_digest() {
        let (_dir, store, actor, inbox) = crate::content::store_with_inbox(5);
        store.expunge(&actor, &inbox, &[2]).unwrap();
        let mailbox = store.mailbox("u", "INBOX").unwrap().unwrap();
        let holds = |when: &str| {
            let m = store.mailbox("u", "INBOX").unwrap().unwrap();
            let recomputed = store.read(|c| recompute_records_digest(c, m.id)).unwrap();
            assert_eq!(m.digest, recomputed, "{when}");
            m.digest
        };
        let before = holds("before");
        let id = mailbox.id;
        let changed = store
            .write(move |c| {
                let mut delta = RecordsDigest::EMPTY;
                let changed = (
                    set_flags(c, id, 1, ("\\Seen", 90), true, &mut delta)?,
                    set_flags(c, id, 2, ("\\Flagged", 91), false, &mut delta)?,
                    // Expunged: not a live record.
                    set_flags(c, id, 2, ("\\Seen", 92), true, &mut delta)?,
                    // No such record.
                    set_flags(c, id, 99, ("\\Seen", 93), false, &mut delta)?,
                );
                apply_delta(c, id, &delta)?;
                Ok(changed)
            })
            .unwrap();
        assert_eq!(changed, (true, true, false, false));
        assert_ne!(holds("after set_flags"), before);
        store.expunge(&actor, &inbox, &[1]).unwrap();
        holds("after an expunge of a re-flagged record");
    }
}
