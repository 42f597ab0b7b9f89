//! URLAUTH keys (RFC 4467): one secret per mailbox, with which the IMAP server signs
//! URLs that let someone else (a submission server, another user) fetch a message
//! without the owner's password.
//!
//! The key never leaves the store: callers ask for a signature or a verification.
//! Keys are local to this server and not replicated: after a failover, URLs signed by
//! the old master fetch nothing (`NIL`), and the client generates new ones. A key is
//! created on first use and durable before the signature is returned; RESETKEY
//! deletes it, which invalidates every URL signed with it.

use ring::hmac;
use rusqlite::{params, OptionalExtension};

use crate::acl::{Actor, Rights};
use crate::error::Result;
use crate::ids::UniqueId;
use crate::records::live_for;
use crate::sql::Cached;
use crate::store::Store;

/// Bytes of a key (HMAC-SHA256's block-size-independent recommended length).
const KEY_LEN: usize = 32;

impl Store {
    /// The INTERNAL token (64 hex digits, HMAC-SHA256) authorising `rump`, the URL up
    /// to and including `;URLAUTH=access`, for a mailbox the actor may read. The
    /// mailbox's key is created if it has none.
    pub fn urlauth_sign(&self, actor: &Actor, mailbox: &UniqueId, rump: &str) -> Result<String> {
        let (actor, id) = (actor.clone(), mailbox.clone());
        let key = self.write(move |conn| {
            live_for(conn, &actor, &id, Rights::READ)?;
            let existing: Option<Vec<u8>> = conn
                .query_row_cached(
                    "SELECT key FROM urlauth_keys WHERE mailbox = ?1",
                    params![id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(k) = existing {
                return Ok(k);
            }
            let k: [u8; KEY_LEN] = rand::random();
            conn.execute_cached(
                "INSERT INTO urlauth_keys (mailbox, key) VALUES (?1, ?2)",
                params![id.as_str(), &k[..]],
            )?;
            Ok(k.to_vec())
        })?;
        Ok(sign(&key, rump))
    }

    /// Whether `token` authorises `rump` for this mailbox under its current key; false
    /// when the mailbox has no key (never signed, or reset since).
    pub fn urlauth_verify(&self, mailbox: &UniqueId, rump: &str, token: &str) -> Result<bool> {
        let key: Option<Vec<u8>> = self.read(|conn| {
            Ok(conn
                .query_row_cached(
                    "SELECT key FROM urlauth_keys WHERE mailbox = ?1",
                    params![mailbox.as_str()],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        let (Some(key), Ok(tag)) = (key, hex::decode(token)) else {
            return Ok(false);
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        Ok(hmac::verify(&key, rump.as_bytes(), &tag).is_ok())
    }

    /// RESETKEY: forgets the key of one mailbox the actor may read, or of every
    /// mailbox the actor owns, so that every URL signed with them fetches nothing.
    pub fn urlauth_reset(&self, actor: &Actor, mailbox: Option<&UniqueId>) -> Result<()> {
        let (actor, id) = (actor.clone(), mailbox.cloned());
        self.write(move |conn| {
            match id {
                Some(id) => {
                    live_for(conn, &actor, &id, Rights::READ)?;
                    conn.execute_cached(
                        "DELETE FROM urlauth_keys WHERE mailbox = ?1",
                        params![id.as_str()],
                    )?;
                }
                None => {
                    conn.execute_cached(
                        "DELETE FROM urlauth_keys WHERE mailbox IN (SELECT m.uniqueid \
                         FROM mailboxes m JOIN users u ON u.id = m.user_id WHERE u.name = ?1)",
                        params![actor.name],
                    )?;
                }
            }
            Ok(())
        })
    }
}

fn sign(key: &[u8], rump: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hex::encode(hmac::sign(&key, rump.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreConfig};

    #[test]
    fn tokens_verify_until_the_key_is_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
        store.create_user("alice", Some("pw"), false).unwrap();
        let actor = crate::Actor {
            name: "alice".into(),
            is_admin: false,
        };
        let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap().uniqueid;
        let rump = "imap://alice@h/INBOX/;UID=1;URLAUTH=anonymous";
        let token = store.urlauth_sign(&actor, &inbox, rump).unwrap();
        assert_eq!(token.len(), 64);
        assert!(store.urlauth_verify(&inbox, rump, &token).unwrap());
        // The same key signs again: tokens are stable until a reset.
        assert_eq!(store.urlauth_sign(&actor, &inbox, rump).unwrap(), token);
        assert!(!store
            .urlauth_verify(
                &inbox,
                "imap://alice@h/INBOX/;UID=2;URLAUTH=anonymous",
                &token
            )
            .unwrap());
        assert!(!store.urlauth_verify(&inbox, rump, "zz").unwrap());
        store.urlauth_reset(&actor, None).unwrap();
        assert!(!store.urlauth_verify(&inbox, rump, &token).unwrap());
        let again = store.urlauth_sign(&actor, &inbox, rump).unwrap();
        assert_ne!(again, token);
        store.urlauth_reset(&actor, Some(&inbox)).unwrap();
        assert!(!store.urlauth_verify(&inbox, rump, &again).unwrap());
        // Someone without read rights cannot have a URL signed.
        let mallory = crate::Actor {
            name: "mallory".into(),
            is_admin: false,
        };
        assert!(store.urlauth_sign(&mallory, &inbox, rump).is_err());
    }
}
