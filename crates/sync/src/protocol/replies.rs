//! The untagged responses a replica sends about its mailboxes and records.

use tern_store::{Flags, Guid, Modseq, RecordsDigest, Uid, UniqueId};

use super::encode_flags;
use super::tokens::{
    atom_or_string, flags, guid, list, number, plist_digest, plist_get, pop3_uidl, signed, uid32,
    uniqueid, Malformed,
};
use crate::wire::{Encoder, Token};

/// A replica's view of one mailbox (`* MAILBOX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMailbox {
    /// Unique id.
    pub uniqueid: UniqueId,
    /// Name.
    pub name: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Last UID.
    pub last_uid: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: Modseq,
    /// DELETEDMODSEQ.
    pub deleted_modseq: Modseq,
    /// Partition.
    pub partition: String,
    /// The digest of its records.
    pub digest: RecordsDigest,
}

/// A replica's record (`* RECORD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// UID.
    pub uid: Uid,
    /// Modseq.
    pub modseq: Modseq,
    /// INTERNALDATE.
    pub internaldate: i64,
    /// Size.
    pub size: u64,
    /// GUID.
    pub guid: Guid,
    /// Flags.
    pub flags: Flags,
    /// Expunge modseq.
    pub expunged: Option<Modseq>,
    /// Whether the replica holds the blob in the mailbox's partition.
    pub blob_held: bool,
    /// The record's stored POP3 UIDL, if it has one.
    pub pop3_uidl: Option<String>,
}

impl ReplicaMailbox {
    /// What a replica holding exactly this store mailbox reports for it.
    pub fn of(m: &tern_store::Mailbox) -> ReplicaMailbox {
        ReplicaMailbox {
            uniqueid: m.uniqueid.clone(),
            name: m.name.clone(),
            uidvalidity: m.uidvalidity,
            last_uid: m.last_uid,
            highest_modseq: m.highest_modseq,
            deleted_modseq: m.deleted_modseq,
            partition: m.partition.clone(),
            digest: m.digest,
        }
    }

    /// Decodes the arguments of `* MAILBOX`.
    pub fn parse(args: &[Token]) -> Result<ReplicaMailbox, Malformed> {
        let extra = args.get(5).and_then(Token::as_list).unwrap_or(&[]);
        Ok(ReplicaMailbox {
            uniqueid: uniqueid(args.first())?,
            name: atom_or_string(args.get(1), "name")?,
            uidvalidity: uid32(args.get(2), "uidvalidity")?,
            last_uid: uid32(args.get(3), "lastuid")?,
            highest_modseq: number(args.get(4), "highestmodseq")?,
            deleted_modseq: plist_get(extra, "DELETEDMODSEQ")
                .and_then(Token::as_number)
                .unwrap_or(0),
            partition: plist_get(extra, "PARTITION")
                .and_then(Token::as_str)
                .unwrap_or(tern_store::DEFAULT_PARTITION)
                .to_owned(),
            // Required: without it equal counters could not be told from equal records.
            digest: plist_digest(extra, "DIGEST")?.ok_or("MAILBOX: DIGEST missing")?,
        })
    }

    /// Encodes `* MAILBOX ...` for a store mailbox. Keys at their default value
    /// (DELETEDMODSEQ 0, PARTITION default) are left out: a no-op sync of a user with
    /// many mailboxes stays small.
    pub fn encode(enc: &mut Encoder, m: &tern_store::Mailbox) {
        enc.raw("* MAILBOX ")
            .string(m.uniqueid.as_str())
            .sp()
            .string(&m.name)
            .sp();
        enc.number(u64::from(m.uidvalidity))
            .sp()
            .number(u64::from(m.last_uid))
            .sp();
        enc.number(m.highest_modseq).raw(" (DIGEST ");
        enc.string(&m.digest.to_string());
        if m.deleted_modseq != 0 {
            enc.raw(" DELETEDMODSEQ ").number(m.deleted_modseq);
        }
        if m.partition != tern_store::DEFAULT_PARTITION {
            enc.raw(" PARTITION ").string(&m.partition);
        }
        enc.raw(")").crlf();
    }
}

impl ReplicaRecord {
    /// Decodes the arguments of `* RECORD`.
    pub fn parse(args: &[Token]) -> Result<ReplicaRecord, Malformed> {
        Ok(ReplicaRecord {
            uid: uid32(args.first(), "uid")?,
            modseq: number(args.get(1), "modseq")?,
            internaldate: signed(args.get(2), "internaldate")?,
            size: number(args.get(3), "size")?,
            guid: guid(args.get(4))?,
            flags: flags(args.get(5))?,
            expunged: match args.get(6) {
                Some(Token::Nil) => None,
                t => Some(number(t, "expunged")?),
            },
            blob_held: args
                .get(7)
                .and_then(Token::as_atom)
                .is_some_and(|a| a.eq_ignore_ascii_case("HAVE")),
            pop3_uidl: match args.get(8).and_then(Token::as_atom) {
                Some(a) if a.eq_ignore_ascii_case("UIDL") => Some(pop3_uidl(args.get(9))?),
                Some(_) => return Err("RECORD: UIDL or end expected".into()),
                None => None,
            },
        })
    }

    /// Encodes `* RECORD ...`.
    pub fn encode(enc: &mut Encoder, r: &tern_store::Record, held: bool) {
        enc.raw("* RECORD ")
            .number(u64::from(r.uid))
            .sp()
            .number(r.modseq)
            .sp();
        enc.raw(&r.internaldate.to_string())
            .sp()
            .number(r.size)
            .sp()
            .atom(&r.guid.to_hex())
            .sp();
        encode_flags(enc, &r.flags);
        enc.sp();
        match r.expunged_modseq {
            Some(m) => enc.number(m),
            None => enc.nil(),
        };
        enc.raw(if held { " HAVE" } else { " MISSING" });
        if let Some(uidl) = &r.pop3_uidl {
            enc.raw(" UIDL ").string(uidl);
        }
        enc.crlf();
    }
}

/// `* KEYWORDS (kw ...)`: a mailbox's keyword table (every keyword its messages were
/// ever given), sent with the first piece of a RECORDS answer, so that a master taking
/// back what a diverged replica holds also takes the keywords no message has any more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaKeywords(pub Vec<String>);

impl ReplicaKeywords {
    /// Decodes the arguments of `* KEYWORDS`.
    pub fn parse(args: &[Token]) -> Result<ReplicaKeywords, Malformed> {
        list(args.first(), "KEYWORDS")?
            .iter()
            .map(|k| atom_or_string(Some(k), "keyword"))
            .collect::<Result<_, Malformed>>()
            .map(ReplicaKeywords)
    }

    /// Encodes `* KEYWORDS (...)`.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.raw("* KEYWORDS (");
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                enc.sp();
            }
            enc.string(k);
        }
        enc.raw(")").crlf();
    }
}
