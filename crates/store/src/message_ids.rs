//! The durable Message-ID index: which stored messages carry a given Message-ID.
//!
//! Kept per GUID beside the content summary (`summaries.message_id`) and written in
//! the same transaction as the first record holding the GUID, on a master and on a
//! replica alike, so an article can be found by its id for as long as a record of it
//! exists (unlike the LMTP duplicate table, which forgets after its window). Rows from
//! before schema version 8 carry NULL until the background indexer's idle time fills
//! them in (`fill`); a lookup before that may miss such a message, which
//! [`Store::message_ids_unexamined`] reports.

use rusqlite::{params, Connection};

use crate::acl::{Actor, Rights};
use crate::error::Result;
use crate::ids::{Guid, Uid};
use crate::mailboxes::Mailbox;
use crate::sql::Cached;
use crate::store::Store;

/// Longest Message-ID kept, angle brackets included (RFC 3977 3.6 caps message-ids at
/// 250 octets).
pub const MAX_MESSAGE_ID: usize = 250;

/// A Message-ID in the form the index keeps and looks up: `<local@domain>`, from a
/// value with or without its angle brackets (surrounding white space ignored). `None`
/// for what cannot be a message-id on the wire: empty, longer than
/// [`MAX_MESSAGE_ID`], or holding white space, control characters, non-ASCII or
/// further angle brackets.
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let inner = raw
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(raw);
    let fine = !inner.is_empty()
        && inner.len() + 2 <= MAX_MESSAGE_ID
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fine.then(|| format!("<{inner}>"))
}

/// GUIDs examined per background fill step.
const FILL_BATCH: usize = 200;

impl Store {
    /// The live (not expunged) records carrying `message_id`, in mailboxes `actor` may
    /// read (`l` and `r`), as (mailbox, UID), by mailbox name then UID.
    pub fn records_by_message_id(
        &self,
        actor: &Actor,
        message_id: &str,
    ) -> Result<Vec<(Mailbox, Uid)>> {
        let Some(id) = normalize_message_id(message_id) else {
            return Ok(Vec::new());
        };
        // `message_id != ''` lets SQLite use the partial index on message_id.
        let found: Vec<(Mailbox, Uid)> = self.read(|conn| {
            let sql = format!(
                "SELECT {}, r.uid FROM summaries s JOIN records r ON r.guid = s.guid \
                 JOIN mailboxes m ON m.id = r.mailbox_id JOIN users u ON u.id = m.user_id \
                 WHERE s.message_id = ?1 AND s.message_id != '' AND r.expunged_modseq IS NULL \
                 AND m.tombstone_modseq IS NULL ORDER BY u.name, m.name, r.uid",
                Mailbox::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok((Mailbox::from_row(r)?, r.get::<_, i64>(19)? as Uid))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        Ok(found
            .into_iter()
            .filter(|(m, _)| actor.rights(m).contains(Rights::LOOKUP | Rights::READ))
            .collect())
    }

    /// The live records holding any of `guids`, in mailboxes `actor` may read (`l` and
    /// `r`), as (GUID, mailbox, UID): where else the same message is filed (an NNTP
    /// article cross-posted to several groups is one message in several mailboxes).
    /// One query for the whole batch.
    pub fn records_by_guids(
        &self,
        actor: &Actor,
        guids: &[Guid],
    ) -> Result<Vec<(Guid, Mailbox, Uid)>> {
        if guids.is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<(Vec<u8>, Mailbox, Uid)> = self.read(|conn| {
            let marks = vec!["?"; guids.len()].join(",");
            let sql = format!(
                "SELECT {}, r.uid, r.guid FROM records r JOIN mailboxes m ON m.id = r.mailbox_id \
                 JOIN users u ON u.id = m.user_id WHERE r.guid IN ({marks}) \
                 AND r.expunged_modseq IS NULL AND m.tombstone_modseq IS NULL \
                 ORDER BY u.name, m.name, r.uid",
                Mailbox::COLUMNS
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let keys: Vec<&[u8]> = guids.iter().map(|g| &g.as_bytes()[..]).collect();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(keys), |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(20)?,
                        Mailbox::from_row(r)?,
                        r.get::<_, i64>(19)? as Uid,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })?;
        Ok(found
            .into_iter()
            .filter(|(_, m, _)| actor.rights(m).contains(Rights::LOOKUP | Rights::READ))
            .filter_map(|(g, m, uid)| Some((Guid::from_bytes(g.try_into().ok()?), m, uid)))
            .collect())
    }

    /// True when some stored message with this Message-ID exists anywhere in the
    /// store, whoever may read it (a news server's "have I seen this article" for
    /// IHAVE and POST: an expunged copy still counts, so a cancelled article is not
    /// accepted again).
    pub fn message_id_known(&self, message_id: &str) -> Result<bool> {
        let Some(id) = normalize_message_id(message_id) else {
            return Ok(false);
        };
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT 1 FROM summaries WHERE message_id = ?1 AND message_id != '' LIMIT 1",
                )?
                .exists([&id])?)
        })
    }

    /// The Message-IDs of the live records of a mailbox (`r` needed) with a UID in
    /// `uids`, in UID order; records without one are left out.
    pub fn message_ids_of(
        &self,
        actor: &Actor,
        mailbox: &crate::UniqueId,
        uids: std::ops::RangeInclusive<Uid>,
    ) -> Result<Vec<(Uid, String)>> {
        self.read(|conn| {
            let m = crate::records::live_for(conn, actor, mailbox, Rights::READ)?;
            let mut stmt = conn.prepare_cached(
                "SELECT r.uid, s.message_id FROM records r JOIN summaries s ON s.guid = r.guid \
                 WHERE r.mailbox_id = ?1 AND r.uid BETWEEN ?2 AND ?3 \
                 AND r.expunged_modseq IS NULL AND s.message_id != '' ORDER BY r.uid",
            )?;
            let rows = stmt
                .query_map(
                    params![m.id, *uids.start() as i64, *uids.end() as i64],
                    |r| Ok((r.get::<_, i64>(0)? as Uid, r.get(1)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    /// How many stored summaries have not been examined for a Message-ID yet (from
    /// before schema version 8); zero once the background fill is done.
    pub fn message_ids_unexamined(&self) -> Result<u64> {
        self.read(|conn| {
            Ok(conn.query_row_cached(
                "SELECT count(*) FROM summaries WHERE message_id IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    /// Examines up to one batch of unexamined summaries: reads each message from its
    /// blob, asks the indexer for its Message-ID and records it. Returns how many were
    /// examined; zero when none is left. A message whose
    /// blob cannot be read is recorded as having none, so the fill always ends.
    pub(crate) fn fill_message_ids(&self) -> Result<usize> {
        let indexer = self.shared.indexer.clone();
        // Run whenever the indexer idles (after every change): summaries and where a
        // message lies are nothing a fold writes, so the changes sessions logged are
        // left to the fold.
        let todo: Vec<(Guid, Option<Place>)> = self.read_beside_records(unexamined)?;
        if todo.is_empty() {
            return Ok(0);
        }
        let found: Vec<(Guid, String)> = todo
            .iter()
            .map(|(guid, place)| {
                let id = place
                    .as_ref()
                    .and_then(|(partition, size)| self.blobs().read(partition, guid, *size).ok())
                    .and_then(|raw| indexer.summarize(&raw).message_id)
                    .and_then(|id| normalize_message_id(&id))
                    .unwrap_or_default();
                (*guid, id)
            })
            .collect();
        let n = found.len();
        self.write_unfolded(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE summaries SET message_id = ?2 WHERE guid = ?1 AND message_id IS NULL",
            )?;
            for (guid, id) in &found {
                stmt.execute(params![&guid.as_bytes()[..], id])?;
            }
            Ok(())
        })?;
        Ok(n)
    }
}

/// Where a copy of a message lies: partition and size.
type Place = (String, u64);

/// One batch of unexamined GUIDs, each with where a copy of it lies (partition, size),
/// if any record still holds it.
fn unexamined(conn: &Connection) -> Result<Vec<(Guid, Option<Place>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.guid, (SELECT m.partition || char(9) || r.size FROM records r \
           JOIN mailboxes m ON m.id = r.mailbox_id WHERE r.guid = s.guid LIMIT 1) \
         FROM summaries s WHERE s.message_id IS NULL LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([FILL_BATCH as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(guid, place)| {
            let guid = Guid::from_bytes(guid.try_into().ok()?);
            let place = place.and_then(|p| {
                let (partition, size) = p.rsplit_once('\t')?;
                Some((partition.to_owned(), size.parse().ok()?))
            });
            Some((guid, place))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::normalize_message_id as n;
    use crate::{Actor, Flags, Store, StoreConfig};

    #[test]
    fn summaries_from_before_the_index_are_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let store =
                Store::open(StoreConfig::new(dir.path()), crate::content::test_indexer()).unwrap();
            store
        };
        let store = open();
        store.create_user("u", None, false).unwrap();
        for i in 0..250 {
            let m = format!("Message-ID: <m{i}@x>\r\n\r\nbody\r\n");
            store
                .append_as_owner("u", "INBOX", &Flags::new(), 0, m.as_bytes())
                .unwrap();
        }
        drop(store);
        let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
        crate::schema::downgrade_to_v7(&conn);
        drop(conn);
        let store = open();
        let u = Actor {
            name: "u".into(),
            is_admin: false,
        };
        assert_eq!(store.message_ids_unexamined().unwrap(), 250);
        assert!(store
            .records_by_message_id(&u, "<m7@x>")
            .unwrap()
            .is_empty());
        assert_eq!(store.fill_message_ids().unwrap(), super::FILL_BATCH);
        assert_eq!(store.fill_message_ids().unwrap(), 50);
        assert_eq!(store.fill_message_ids().unwrap(), 0);
        assert_eq!(store.message_ids_unexamined().unwrap(), 0);
        assert_eq!(store.records_by_message_id(&u, "<m7@x>").unwrap().len(), 1);
        assert_eq!(
            store.records_by_message_id(&u, "<m249@x>").unwrap().len(),
            1
        );
    }

    #[test]
    fn message_ids_are_kept_in_angle_brackets_and_bounded() {
        assert_eq!(n("<a@b>").as_deref(), Some("<a@b>"));
        assert_eq!(n(" a@b ").as_deref(), Some("<a@b>"));
        assert_eq!(n(""), None);
        assert_eq!(n("<>"), None);
        assert_eq!(n("<a b@c>"), None);
        assert_eq!(n("<a<b@c>"), None);
        assert_eq!(n("<é@c>"), None);
        assert!(n(&format!("<{}>", "x".repeat(248))).is_some());
        assert!(n(&format!("<{}>", "x".repeat(249))).is_none());
    }
}
