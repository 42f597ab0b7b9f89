//! The untagged responses about users and blobs (`* USER`, `* RESERVE`, `* MESSAGE`)
//! and the response codes of tagged replies, as typed values with an encoder and a
//! parser each.

use tern_store::{Guid, Modseq, RecordsDigest, Uid};

use super::tokens::{atom_or_string, guid, number, plist_get, uid32, Malformed};
use crate::wire::{Encoder, Token};

/// `* USER user digest (MODSEQ n [ADMIN 0|1])`: a user of the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaUser {
    /// Canonical user name.
    pub name: String,
    /// The user digest (`docs/replication.md`, section 4).
    pub digest: String,
    /// The user's modseq counter.
    pub modseq: Modseq,
    /// Administrator bit (sent by USERS, absent from MAILBOXES).
    pub admin: Option<bool>,
}

impl ReplicaUser {
    /// Decodes the arguments of `* USER`.
    pub fn parse(args: &[Token]) -> Result<ReplicaUser, Malformed> {
        let extra = args.get(2).and_then(Token::as_list).unwrap_or(&[]);
        Ok(ReplicaUser {
            name: atom_or_string(args.first(), "user")?,
            digest: atom_or_string(args.get(1), "digest")?,
            modseq: plist_get(extra, "MODSEQ")
                .and_then(Token::as_number)
                .unwrap_or(0),
            admin: plist_get(extra, "ADMIN")
                .and_then(Token::as_number)
                .map(|a| a != 0),
        })
    }

    /// Encodes `* USER ...` CRLF.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.raw("* USER ")
            .string(&self.name)
            .sp()
            .string(&self.digest);
        enc.raw(" (MODSEQ ").number(self.modseq);
        if let Some(admin) = self.admin {
            enc.raw(" ADMIN ").number(u64::from(admin));
        }
        enc.raw(")").crlf();
    }
}

/// `* RESERVE guid ...`: the blobs asked about that the replica holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reserved(pub Vec<Guid>);

impl Reserved {
    /// Decodes the arguments of `* RESERVE`.
    pub fn parse(args: &[Token]) -> Result<Reserved, Malformed> {
        args.iter()
            .map(|t| guid(Some(t)))
            .collect::<Result<_, _>>()
            .map(Reserved)
    }

    /// Encodes `* RESERVE ...` CRLF.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.raw("* RESERVE");
        for g in &self.0 {
            enc.sp().atom(&g.to_hex());
        }
        enc.crlf();
    }
}

/// `* MESSAGE guid literal`: a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageData {
    /// Its GUID.
    pub guid: Guid,
    /// The message.
    pub data: Vec<u8>,
}

impl MessageData {
    /// Decodes the arguments of `* MESSAGE` (taking the literal).
    pub fn parse(mut args: Vec<Token>) -> Result<MessageData, Malformed> {
        let g = guid(args.first())?;
        match args.get_mut(1).map(|t| std::mem::replace(t, Token::Nil)) {
            Some(Token::Literal(data)) => Ok(MessageData { guid: g, data }),
            _ => Err("MESSAGE: literal expected".into()),
        }
    }

    /// Encodes `* MESSAGE guid {n+}` and the octets, CRLF.
    pub fn encode(guid: &Guid, data: &[u8], enc: &mut Encoder) {
        enc.raw("* MESSAGE ")
            .atom(&guid.to_hex())
            .sp()
            .literal(data)
            .crlf();
    }
}

/// The response code of a tagged reply (`tag OK|NO|BAD [CODE ...] text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// UPDATE: the replica's state is not the expected one (its actual values).
    Mismatch {
        /// Its HIGHESTMODSEQ (0: no live mailbox).
        highest_modseq: Modseq,
        /// Its last UID.
        last_uid: Uid,
        /// Its records digest.
        digest: RecordsDigest,
    },
    /// UPDATE: an item contradicts what the replica holds (0: the mailbox itself).
    Conflict(Uid),
    /// UPDATE: the records digest after it would differ (the replica's).
    Digest(String),
    /// UPDATE: a blob named without data is not held.
    NoBlob(Guid),
    /// The replica could not store something (a full disk).
    IoError,
    /// The user does not exist on the replica.
    NoUser,
    /// The mailbox or blob does not exist.
    NonExistent,
    /// RECORDS: more records follow from this UID.
    More(Uid),
    /// MAILBOXES: the replica's live mailboxes are exactly the ones the client
    /// described (`same`), so none is listed.
    Same,
    /// A command over a bound.
    TooBig,
    /// Refused for another reason.
    Refused,
    /// AUTHENTICATE failed.
    AuthenticationFailed,
    /// Authenticate first.
    AuthenticationRequired,
    /// AUTHENTICATE refused without TLS (the password may not travel in clear).
    PrivacyRequired,
    /// A mechanism or form the server does not offer.
    Cannot,
    /// Cannot be done now; try again later.
    Unavailable,
    /// The greeting's capability list.
    Capability(Vec<String>),
    /// Any other code, as received (name upper-cased).
    Other(String),
}

impl Code {
    /// Decodes a code from its name and arguments.
    pub fn parse(name: &str, args: &[Token]) -> Code {
        let name = name.to_ascii_uppercase();
        let parsed = match name.as_str() {
            "MISMATCH" => (|| {
                Ok::<_, Malformed>(Code::Mismatch {
                    highest_modseq: number(args.first(), "highestmodseq")?,
                    last_uid: uid32(args.get(1), "lastuid")?,
                    // A digest that does not parse is not taken for the empty one:
                    // the whole code is then unknown (`Other`).
                    digest: args
                        .get(2)
                        .and_then(Token::as_str)
                        .and_then(|d| d.parse().ok())
                        .ok_or("MISMATCH: digest expected")?,
                })
            })()
            .ok(),
            "CONFLICT" => uid32(args.first(), "uid").ok().map(Code::Conflict),
            "DIGEST" => args
                .first()
                .and_then(Token::as_str)
                .map(|d| Code::Digest(d.to_owned())),
            "NOBLOB" => guid(args.first()).ok().map(Code::NoBlob),
            "IOERROR" => Some(Code::IoError),
            "NOUSER" => Some(Code::NoUser),
            "NONEXISTENT" => Some(Code::NonExistent),
            "MORE" => uid32(args.first(), "uid").ok().map(Code::More),
            "SAME" => Some(Code::Same),
            "TOOBIG" => Some(Code::TooBig),
            "REFUSED" => Some(Code::Refused),
            "AUTHENTICATIONFAILED" => Some(Code::AuthenticationFailed),
            "AUTHENTICATIONREQUIRED" => Some(Code::AuthenticationRequired),
            "PRIVACYREQUIRED" => Some(Code::PrivacyRequired),
            "CANNOT" => Some(Code::Cannot),
            "UNAVAILABLE" => Some(Code::Unavailable),
            "CAPABILITY" => args
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .map(Code::Capability),
            _ => None,
        };
        parsed.unwrap_or(Code::Other(name))
    }

    /// Encodes `[CODE ...]`.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.raw("[");
        match self {
            Code::Mismatch {
                highest_modseq,
                last_uid,
                digest,
            } => {
                enc.raw("MISMATCH ").number(*highest_modseq).sp();
                enc.number(u64::from(*last_uid))
                    .sp()
                    .string(&digest.to_string());
            }
            Code::Conflict(uid) => {
                enc.raw("CONFLICT ").number(u64::from(*uid));
            }
            Code::Digest(d) => {
                enc.raw("DIGEST ").string(d);
            }
            Code::NoBlob(g) => {
                enc.raw("NOBLOB ").atom(&g.to_hex());
            }
            Code::More(uid) => {
                enc.raw("MORE ").number(u64::from(*uid));
            }
            Code::Same => {
                enc.raw("SAME");
            }
            Code::IoError => {
                enc.raw("IOERROR");
            }
            Code::NoUser => {
                enc.raw("NOUSER");
            }
            Code::NonExistent => {
                enc.raw("NONEXISTENT");
            }
            Code::TooBig => {
                enc.raw("TOOBIG");
            }
            Code::Refused => {
                enc.raw("REFUSED");
            }
            Code::AuthenticationFailed => {
                enc.raw("AUTHENTICATIONFAILED");
            }
            Code::AuthenticationRequired => {
                enc.raw("AUTHENTICATIONREQUIRED");
            }
            Code::PrivacyRequired => {
                enc.raw("PRIVACYREQUIRED");
            }
            Code::Cannot => {
                enc.raw("CANNOT");
            }
            Code::Unavailable => {
                enc.raw("UNAVAILABLE");
            }
            Code::Capability(caps) => {
                enc.raw("CAPABILITY");
                for c in caps {
                    enc.sp().string(c);
                }
            }
            Code::Other(name) => {
                enc.atom(name);
            }
        }
        enc.raw("]");
    }
}
