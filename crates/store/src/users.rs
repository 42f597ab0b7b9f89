//! Users: credentials, administrators, quotas, and the mailboxes every user starts with.

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::mailboxes::create_mailbox_in;
use crate::names::normalize_user;
use crate::sql::Cached;
use crate::store::{now, Store};
use crate::txn;

/// The mailboxes a new user gets, with their RFC 6154 special-use attribute.
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// Limits on what a user may store. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes of messages not expunged.
    pub storage: Option<u64>,
    /// Number of messages not expunged.
    pub messages: Option<u64>,
}

/// A user as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Canonical (lower-case) name.
    pub name: String,
    /// May administer the server and act as a replication peer.
    pub is_admin: bool,
    /// True when a password is set (a user without one cannot log in).
    pub has_password: bool,
    /// The user's limits.
    pub quota: Quota,
    /// Bytes of messages not expunged, across all mailboxes.
    pub used_storage: u64,
    /// Messages not expunged, across all mailboxes.
    pub used_messages: u64,
    /// The user's highest modseq (the last value of the per-user counter).
    pub highest_modseq: u64,
}

impl User {
    const COLUMNS: &'static str = "name, is_admin, password_hash IS NOT NULL, quota_storage, \
         quota_messages, used_storage, used_messages, modseq";

    fn from_row(r: &Row) -> rusqlite::Result<User> {
        User::from_row_at(r, 0)
    }

    /// Reads the [`User::COLUMNS`] starting at column `base`.
    fn from_row_at(r: &Row, base: usize) -> rusqlite::Result<User> {
        Ok(User {
            name: r.get(base)?,
            is_admin: r.get(base + 1)?,
            has_password: r.get(base + 2)?,
            quota: Quota {
                storage: r.get::<_, Option<i64>>(base + 3)?.map(|v| v as u64),
                messages: r.get::<_, Option<i64>>(base + 4)?.map(|v| v as u64),
            },
            used_storage: r.get::<_, i64>(base + 5)? as u64,
            used_messages: r.get::<_, i64>(base + 6)? as u64,
            highest_modseq: r.get::<_, i64>(base + 7)? as u64,
        })
    }
}

/// What an unknown user's password is checked against: a hash with the same Argon2id
/// parameters as [`hash_password`] makes (m=19456 KiB, t=2, p=1) of a password nobody
/// knows, so that the check costs what a real one costs. A unit test keeps its
/// parameters equal to those of `Argon2::default()`.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$iOFHm1o0QXuHOgvSSid2tA$NUz/7XuIiVSzyTABHsDbgD/q7XIcNPloEg7byq5mmMA";

/// A user name that may log in: [`normalize_user`], minus the shared namespace's
/// reserved owner, which no user command can create, change or delete.
fn login_name(name: &str) -> Result<String> {
    let name = normalize_user(name)?;
    if crate::shared::is_reserved_user(&name) {
        return Err(StoreError::InvalidUserName {
            name,
            reason: "reserved for the owner of shared mailboxes",
        });
    }
    Ok(name)
}

/// Hashes a password with Argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| StoreError::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::PasswordHash(e.to_string()))
}

/// Most Argon2 working memory a stored hash may ask for (m = 256 MiB); a hash asking
/// for more is refused rather than computed.
const MAX_VERIFY_BLOCKS: usize = 256 * 1024;

/// Checks `password` against a PHC-format Argon2 hash, as `PasswordVerifier` does, but
/// in `memory` (grown to the hash's block count and kept by the caller for the next
/// verification) instead of a fresh allocation. The comparison of outputs is constant
/// time (`password_hash::Output`'s equality).
fn verify_with_memory(
    hash: &PasswordHash,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<bool> {
    let bad = |e: &dyn std::fmt::Display| StoreError::PasswordHash(e.to_string());
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| bad(&e))?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).map_err(|e| bad(&e))?,
        None => Version::default(),
    };
    let params = Params::try_from(hash).map_err(|e| bad(&e))?;
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return Err(bad(&"hash or salt missing"));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|e| bad(&e))?;
    let blocks = params.block_count();
    if blocks > MAX_VERIFY_BLOCKS {
        return Err(bad(&"memory cost too high"));
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .map_err(|e| bad(&e))?;
    let computed = Output::new(&out).map_err(|e| bad(&e))?;
    Ok(computed == expected)
}

impl Store {
    /// Creates a user with INBOX and the special-use mailboxes of [`DEFAULT_MAILBOXES`],
    /// all in one transaction.
    pub fn create_user(&self, name: &str, password: Option<&str>, is_admin: bool) -> Result<User> {
        let name = login_name(name)?;
        let hash = password.map(hash_password).transpose()?;
        let partition = self.config().default_partition.clone();
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row_cached("SELECT id FROM users WHERE name = ?1", [&name], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::UserExists(name));
            }
            conn.execute_cached(
                "INSERT INTO users (name, password_hash, is_admin, created) VALUES (?1, ?2, ?3, ?4)",
                params![name, hash, is_admin, now()],
            )?;
            let user_id = conn.last_insert_rowid();
            for (mailbox, special_use) in DEFAULT_MAILBOXES {
                create_mailbox_in(conn, user_id, &name, mailbox, &partition, *special_use, None)?;
            }
            txn::log_change(conn, &name, None)?;
            user_in(conn, &name)
        })
    }

    /// Sets (or with `None` clears) a user's password.
    pub fn set_password(&self, name: &str, password: Option<&str>) -> Result<()> {
        let name = login_name(name)?;
        let hash = password.map(hash_password).transpose()?;
        self.write(move |conn| {
            let n = conn.execute_cached(
                "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )?;
            if n == 0 {
                return Err(StoreError::NoSuchUser(name));
            }
            txn::log_change(conn, &name, None)
        })
    }

    /// Grants or revokes administrator rights.
    pub fn set_admin(&self, name: &str, is_admin: bool) -> Result<()> {
        let name = login_name(name)?;
        self.write(move |conn| {
            let n = conn.execute_cached(
                "UPDATE users SET is_admin = ?2 WHERE name = ?1",
                params![name, is_admin],
            )?;
            if n == 0 {
                return Err(StoreError::NoSuchUser(name));
            }
            txn::log_change(conn, &name, None)
        })
    }

    /// Checks a password. Returns the user when it matches, `None` when the user does
    /// not exist, has no password, or the password is wrong (callers must not tell
    /// these apart to the client). A password verified in the last ten minutes is
    /// accepted from memory without a new Argon2 computation (see `auth_cache.rs`).
    ///
    /// Every other call runs exactly one Argon2 verification, also for an unknown
    /// user (against [`DUMMY_HASH`]), so timing does not reveal which names exist; and
    /// at most one per core runs at once in this process (callers wait), which bounds
    /// the memory hashing can take.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let name = normalize_user(name).unwrap_or_default();
        let row = self.read_beside_records(|conn| {
            Ok(conn
                .query_row_cached(
                    &format!(
                        "SELECT password_hash, {} FROM users WHERE name = ?1",
                        User::COLUMNS
                    ),
                    [&name],
                    |r| Ok((r.get::<_, Option<String>>(0)?, User::from_row_at(r, 1)?)),
                )
                .optional()?)
        })?;
        let cache = &self.shared.auth_cache;
        let (hash, user) = match row {
            Some((Some(hash), user)) => (hash, Some(user)),
            // The same Argon2 work as a real check, so that the time taken does not
            // tell an unknown user (or one without a password) from a wrong password.
            _ => (DUMMY_HASH.to_owned(), None),
        };
        if let Some(user) = &user {
            if cache.hit(&name, &hash, password) {
                return Ok(Some(user.clone()));
            }
        }
        let parsed =
            PasswordHash::new(&hash).map_err(|e| StoreError::PasswordHash(e.to_string()))?;
        let ok = self
            .shared
            .hash_gate
            .run(|memory| verify_with_memory(&parsed, password.as_bytes(), memory))?;
        let Some(user) = user else {
            return Ok(None);
        };
        if ok {
            cache.remember(&name, &hash, password);
        }
        Ok(ok.then_some(user))
    }

    /// Deletes a user and everything they own. Their blobs become garbage for
    /// `tern expire`; the change log records the user so a replica drops them too.
    pub fn delete_user(&self, name: &str) -> Result<()> {
        let name = login_name(name)?;
        self.write(move |conn| {
            let id = txn::user_id(conn, &name)?;
            conn.execute_cached(
                "DELETE FROM deliveries WHERE mailbox_uniqueid IN \
                 (SELECT uniqueid FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached(
                "DELETE FROM records WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached(
                "DELETE FROM record_changes WHERE mailbox_id IN \
                 (SELECT id FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached(
                "DELETE FROM annotations WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached(
                "DELETE FROM mailbox_keywords WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached(
                "DELETE FROM metadata WHERE user_id = ?1 OR mailbox_id IN \
                 (SELECT id FROM mailboxes WHERE user_id = ?1)",
                [id],
            )?;
            conn.execute_cached("DELETE FROM mailboxes WHERE user_id = ?1", [id])?;
            conn.execute_cached("DELETE FROM subscriptions WHERE user_id = ?1", [id])?;
            conn.execute_cached("DELETE FROM users WHERE id = ?1", [id])?;
            txn::log_change(conn, &name, None)
        })
    }

    /// One user, if they exist.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        let Ok(name) = normalize_user(name) else {
            return Ok(None);
        };
        self.read_beside_records(|conn| {
            Ok(conn
                .query_row_cached(
                    &format!("SELECT {} FROM users WHERE name = ?1", User::COLUMNS),
                    [&name],
                    User::from_row,
                )
                .optional()?)
        })
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>> {
        self.read_beside_records(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM users ORDER BY name",
                User::COLUMNS
            ))?;
            let users = stmt
                .query_map([], User::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(users)
        })
    }

    /// Sets a user's quota. Existing mail over the new limit stays; new mail is refused.
    pub fn set_quota(&self, name: &str, quota: Quota) -> Result<()> {
        let name = normalize_user(name)?;
        self.write(move |conn| {
            let n = conn.execute_cached(
                "UPDATE users SET quota_storage = ?2, quota_messages = ?3 WHERE name = ?1",
                params![
                    name,
                    quota.storage.map(|v| v as i64),
                    quota.messages.map(|v| v as i64)
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NoSuchUser(name));
            }
            txn::log_change(conn, &name, None)
        })
    }
}

fn user_in(conn: &Connection, name: &str) -> Result<User> {
    Ok(conn.query_row_cached(
        &format!("SELECT {} FROM users WHERE name = ?1", User::COLUMNS),
        [name],
        User::from_row,
    )?)
}

/// Checks that adding `bytes` in `messages` messages keeps the user within quota.
pub(crate) fn check_quota(
    conn: &Connection,
    user_id: i64,
    bytes: u64,
    messages: u64,
) -> Result<()> {
    let (qs, qm, us, um): (Option<i64>, Option<i64>, i64, i64) = conn.query_row_cached(
        "SELECT quota_storage, quota_messages, used_storage, used_messages FROM users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    if let Some(limit) = qs {
        let would_be = us as u64 + bytes;
        if would_be > limit as u64 {
            return Err(StoreError::OverQuota {
                resource: "storage",
                would_be,
                limit: limit as u64,
            });
        }
    }
    if let Some(limit) = qm {
        let would_be = um as u64 + messages;
        if would_be > limit as u64 {
            return Err(StoreError::OverQuota {
                resource: "messages",
                would_be,
                limit: limit as u64,
            });
        }
    }
    Ok(())
}

/// Adjusts a user's usage counters by signed amounts.
pub(crate) fn add_usage(conn: &Connection, user_id: i64, bytes: i64, messages: i64) -> Result<()> {
    conn.execute_cached(
        "UPDATE users SET used_storage = max(0, used_storage + ?2), \
         used_messages = max(0, used_messages + ?3) WHERE id = ?1",
        params![user_id, bytes, messages],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        (dir, store)
    }

    #[test]
    fn verifying_in_reused_memory_agrees_with_the_argon2_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let stored = hash_password("right").unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        let mut memory = Vec::new();
        for (pw, want) in [
            ("right", true),
            ("wrong", false),
            ("right", true),
            ("", false),
        ] {
            assert_eq!(
                verify_with_memory(&parsed, pw.as_bytes(), &mut memory).unwrap(),
                want
            );
            assert_eq!(
                Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok(),
                want
            );
        }
        assert_eq!(memory.len(), 19456, "m=19456 KiB: one 1 KiB block each");
    }

    #[test]
    fn dummy_hash_costs_what_a_real_hash_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_string = hash_password("x").unwrap();
        let real = PasswordHash::new(&real_string).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
    }

    #[test]
    fn unknown_user_and_user_without_password_still_run_one_verification() {
        let (_d, store) = open();
        store.create_user("nopw", None, false).unwrap();
        let gate = &store.shared.hash_gate;
        assert_eq!(gate.started(), 0);
        assert_eq!(store.verify_password("nobody", "pw").unwrap(), None);
        assert_eq!(gate.started(), 1);
        assert_eq!(store.verify_password("nopw", "pw").unwrap(), None);
        assert_eq!(gate.started(), 2);
        assert_eq!(
            store
                .verify_password("bad name with spaces\r", "pw")
                .unwrap(),
            None
        );
        assert_eq!(gate.started(), 3);
    }

    #[test]
    fn cached_success_skips_the_hash_and_failures_do_not() {
        let (_d, store) = open();
        store.create_user("a", Some("pw"), false).unwrap();
        let gate = &store.shared.hash_gate;
        assert!(store.verify_password("a", "pw").unwrap().is_some());
        assert!(store.verify_password("a", "pw").unwrap().is_some());
        assert_eq!(gate.started(), 1, "the second success came from the cache");
        assert!(store.verify_password("a", "wrong").unwrap().is_none());
        assert!(store.verify_password("a", "wrong").unwrap().is_none());
        assert_eq!(gate.started(), 3, "failures are never cached");
    }

    #[test]
    fn no_more_verifications_run_at_once_than_the_gate_allows() {
        let (_d, store) = open();
        store.create_user("a", Some("pw"), false).unwrap();
        let gate = &store.shared.hash_gate;
        let threads = 4 * gate.limit() + 4;
        std::thread::scope(|s| {
            for i in 0..threads {
                let store = store.clone();
                s.spawn(move || {
                    let user = if i % 2 == 0 { "a" } else { "ghost" };
                    assert!(store.verify_password(user, "wrong").unwrap().is_none());
                });
            }
        });
        assert_eq!(gate.started(), threads as u64);
        assert!(gate.peak() >= 1);
        assert!(
            gate.peak() <= gate.limit(),
            "{} ran at once, limit {}",
            gate.peak(),
            gate.limit()
        );
    }
}
