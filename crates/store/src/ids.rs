//! Identifiers: message GUIDs, mailbox unique ids, modseqs and UIDs.

use std::fmt;
use std::str::FromStr;

use sha1::{Digest, Sha1};

/// The content address of a message: the SHA-1 of its raw bytes, as in Cyrus.
///
/// Two messages with the same GUID and size are the same message; blobs are stored
/// once per partition under their GUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 20]);

impl Guid {
    /// The GUID of `message`.
    pub fn of(message: &[u8]) -> Guid {
        Guid(Sha1::digest(message).into())
    }

    /// Wraps 20 raw bytes.
    pub fn from_bytes(bytes: [u8; 20]) -> Guid {
        Guid(bytes)
    }

    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Lower-case hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Guid> {
        <[u8; 20]>::try_from(bytes).ok().map(Guid)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({})", self.to_hex())
    }
}

/// A GUID string was not 40 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("not a GUID (40 hex digits): {0:?}")]
pub struct BadGuid(pub String);

impl FromStr for Guid {
    type Err = BadGuid;
    fn from_str(s: &str) -> Result<Guid, BadGuid> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadGuid(s.to_owned()))?;
        Ok(Guid(out))
    }
}

/// A mailbox's unique id: random, never reused, kept across renames.
///
/// Replication matches mailboxes by unique id, so a rename is seen as a rename and a
/// mailbox deleted and re-created under the same name is a different mailbox.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueId(String);

impl UniqueId {
    /// A fresh random id (128 bits, 32 hex digits).
    pub fn random() -> UniqueId {
        let bytes: [u8; 16] = rand::random();
        UniqueId(hex::encode(bytes))
    }

    /// Accepts an id received from elsewhere (a replication peer): 1 to 64 characters
    /// of `[0-9a-zA-Z_-]`.
    pub fn parse(s: &str) -> Option<UniqueId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| UniqueId(s.to_owned()))
    }

    /// The id as the index holds it, even if malformed (for reporting damage).
    pub(crate) fn unchecked(s: &str) -> UniqueId {
        UniqueId(s.to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_db(s: String) -> UniqueId {
        UniqueId(s)
    }
}

impl fmt::Display for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqueId({})", self.0)
    }
}

/// A modification sequence number (RFC 7162).
///
/// Allocated from one counter per user, only inside a store write transaction, so
/// modseqs are strictly increasing per user and comparable across the user's mailboxes.
/// Zero means "never changed".
pub type Modseq = u64;

/// A message UID within one mailbox and UIDVALIDITY; never reused.
pub type Uid = u32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_sha1_and_round_trips() {
        let g = Guid::of(b"abc");
        assert_eq!(g.to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(g.to_hex().parse::<Guid>().unwrap(), g);
        assert!("xyz".parse::<Guid>().is_err());
    }

    #[test]
    fn unique_ids_are_distinct_and_validated() {
        assert_ne!(UniqueId::random(), UniqueId::random());
        assert!(UniqueId::parse("abc-123_X").is_some());
        assert!(UniqueId::parse("").is_none());
        assert!(UniqueId::parse("a b").is_none());
        assert!(UniqueId::parse(&"a".repeat(65)).is_none());
    }
}
