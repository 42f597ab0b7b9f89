//! The commands and responses of the replication protocol as typed values, and their
//! encoding and decoding (`docs/replication.md`, section 5). Client and server share
//! this module, so what one writes is by construction what the other reads.
//!
//! `update.rs` holds UPDATE (the one command that carries messages), `replies.rs` the
//! untagged `* MAILBOX` and `* RECORD` responses, `tokens.rs` the decoding of single
//! tokens (numbers, unique ids, GUIDs, flags, plists).

mod codes;
mod replies;
mod requests;
mod status;
mod tokens;
mod update;

use tern_store::{Guid, MailboxUpdate, Quota, UniqueId, UserState};

use crate::wire::{Command, Encoder, Token};

pub use codes::{Code, MessageData, ReplicaUser, Reserved};
pub use replies::{ReplicaKeywords, ReplicaMailbox, ReplicaRecord};
pub use status::{encode_bye, Capabilities, Completion};
use tokens::{atom_or_string, list, number, plist_string};
pub use tokens::{flags, guid, plist_get, uniqueid, Malformed};
use update::parse_update;
pub use update::{encode_flags, encode_update};

/// The protocol version this build speaks (`TERNSYNC=1`).
pub const VERSION: u32 = 1;

/// Most GUIDs in one RESERVE.
pub const MAX_RESERVE: usize = 1000;

/// Most `* RECORD` lines in one answer to RECORDS; more follow with `[MORE uid]`.
pub const RECORDS_PER_ANSWER: usize = 10_000;

/// The digest of a set of live mailboxes as MAILBOXES reports them: the SHA-1 (hex) of
/// one line per mailbox, sorted, of every field `* MAILBOX` carries (unique id, name
/// and partition in hex, UIDVALIDITY, last UID, HIGHESTMODSEQ, DELETEDMODSEQ, records
/// digest). Equal digests mean the replica would have listed exactly these.
pub fn mailboxes_digest(mailboxes: &[ReplicaMailbox]) -> String {
    use sha1::{Digest, Sha1};
    let mut lines: Vec<String> = mailboxes
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {} {} {} {} {}\n",
                m.uniqueid,
                hex::encode(&m.name),
                hex::encode(&m.partition),
                m.uidvalidity,
                m.last_uid,
                m.highest_modseq,
                m.deleted_modseq,
                m.digest
            )
        })
        .collect();
    lines.sort();
    let mut hash = Sha1::new();
    for l in &lines {
        hash.update(l.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Which of a user's mailboxes MAILBOXES asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every live mailbox of the user.
    All,
    /// Those with one of these unique ids or names.
    Some {
        /// Unique ids.
        ids: Vec<UniqueId>,
        /// Names.
        names: Vec<String>,
    },
}

/// A command of either state, as the client sends it and the server reads it.
#[derive(Debug)]
pub enum Request {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `STARTTLS`
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (the response in base64, as sent).
    Authenticate {
        /// The SASL mechanism (`PLAIN`).
        mechanism: String,
        /// The initial response, base64.
        initial: Option<String>,
    },
    /// `MAILBOXES user ALL [same] | (ids) (names)`
    Mailboxes {
        /// The user.
        user: String,
        /// Which mailboxes.
        selection: Selection,
        /// With `ALL`: the [`mailboxes_digest`] of the live mailboxes the client expects
        /// the replica to hold. When the replica's is the same, it answers `[SAME]` and
        /// lists none of them: a sync with nothing to do moves one line per user.
        same: Option<String>,
    },
    /// `RESERVE (ids) guid...`
    Reserve {
        /// The mailboxes the blobs are for (informational: the replica looks in all).
        mailboxes: Vec<UniqueId>,
        /// The blobs asked about.
        guids: Vec<Guid>,
    },
    /// `USER user (plist)`
    User(UserState),
    /// `UNUSER user`
    Unuser(String),
    /// `UPDATE user uniqueid expect (state) (items)`
    Update(Box<MailboxUpdate>),
    /// `RENAME user uniqueid name partition`
    Rename {
        /// Owner.
        user: String,
        /// Mailbox.
        uniqueid: UniqueId,
        /// New name.
        name: String,
        /// New partition.
        partition: String,
    },
    /// `DELETE user uniqueid`
    Delete {
        /// Owner.
        user: String,
        /// Mailbox.
        uniqueid: UniqueId,
    },
    /// `RECORDS user uniqueid [from-uid]`
    Records {
        /// Owner.
        user: String,
        /// Mailbox.
        uniqueid: UniqueId,
        /// The first UID wanted (1: from the start).
        from: tern_store::Uid,
    },
    /// `USERS`: every user of the replica, as `* USER` lines.
    Users,
    /// `MESSAGE guid size`
    Message {
        /// Blob.
        guid: Guid,
        /// Its size.
        size: u64,
    },
}

impl Request {
    /// Decodes a command.
    pub fn parse(cmd: Command) -> Result<Request, Malformed> {
        if cmd.verb == "UPDATE" {
            // Taken apart by value: its literals (the messages) move, not copy.
            return Ok(Request::Update(Box::new(parse_update(cmd.args)?)));
        }
        let a = &cmd.args;
        let user = || -> Result<String, Malformed> { atom_or_string(a.first(), "user") };
        Ok(match cmd.verb.as_str() {
            "CAPABILITY" => Request::Capability,
            "NOOP" => Request::Noop,
            "LOGOUT" => Request::Logout,
            "STARTTLS" => Request::StartTls,
            "AUTHENTICATE" => Request::Authenticate {
                mechanism: atom_or_string(a.first(), "mechanism")?,
                initial: a
                    .get(1)
                    .map(|t| atom_or_string(Some(t), "initial response"))
                    .transpose()?,
            },
            "MAILBOXES" => {
                let mut same = None;
                let selection = match a.get(1) {
                    Some(t) if t.as_atom().is_some_and(|s| s.eq_ignore_ascii_case("ALL")) => {
                        same = match a.get(2) {
                            None => None,
                            t => Some(atom_or_string(t, "same")?),
                        };
                        Selection::All
                    }
                    _ => {
                        let ids = list(a.get(1), "unique ids")?
                            .iter()
                            .map(|t| uniqueid(Some(t)))
                            .collect::<Result<_, _>>()?;
                        let names = list(a.get(2), "names")?
                            .iter()
                            .map(|t| atom_or_string(Some(t), "name"))
                            .collect::<Result<_, _>>()?;
                        Selection::Some { ids, names }
                    }
                };
                Request::Mailboxes {
                    user: user()?,
                    selection,
                    same,
                }
            }
            "RESERVE" => {
                let mailboxes = list(a.first(), "mailboxes")?
                    .iter()
                    .map(|t| uniqueid(Some(t)))
                    .collect::<Result<_, _>>()?;
                let guids = a[1..]
                    .iter()
                    .map(|t| guid(Some(t)))
                    .collect::<Result<Vec<_>, _>>()?;
                if guids.len() > MAX_RESERVE {
                    return Err(format!("at most {MAX_RESERVE} GUIDs per RESERVE"));
                }
                Request::Reserve { mailboxes, guids }
            }
            "USER" => Request::User(parse_user_state(user()?, list(a.get(1), "user state")?)?),
            "UNUSER" => Request::Unuser(user()?),
            "RENAME" => Request::Rename {
                user: user()?,
                uniqueid: uniqueid(a.get(1))?,
                name: atom_or_string(a.get(2), "name")?,
                partition: atom_or_string(a.get(3), "partition")?,
            },
            "DELETE" => Request::Delete {
                user: user()?,
                uniqueid: uniqueid(a.get(1))?,
            },
            "RECORDS" => Request::Records {
                user: user()?,
                uniqueid: uniqueid(a.get(1))?,
                from: match a.get(2) {
                    None => 1,
                    t => u32::try_from(number(t, "from")?).map_err(|_| "from: out of range")?,
                },
            },
            "USERS" => Request::Users,
            "MESSAGE" => Request::Message {
                guid: guid(a.first())?,
                size: number(a.get(1), "size")?,
            },
            other => return Err(format!("unknown command {other}")),
        })
    }
}

fn parse_user_state(name: String, p: &[Token]) -> Result<UserState, Malformed> {
    let opt_num = |key: &str| -> Result<Option<u64>, Malformed> {
        match plist_get(p, key) {
            None | Some(Token::Nil) => Ok(None),
            Some(t) => Ok(Some(number(Some(t), key)?)),
        }
    };
    let password_hash = match plist_get(p, "PASSWORD") {
        None | Some(Token::Nil) => None,
        Some(t) => Some(atom_or_string(Some(t), "PASSWORD")?),
    };
    let subscriptions = match plist_get(p, "SUBSCRIPTIONS") {
        None => Vec::new(),
        Some(t) => list(Some(t), "SUBSCRIPTIONS")?
            .iter()
            .map(|t| atom_or_string(Some(t), "subscription"))
            .collect::<Result<_, _>>()?,
    };
    let state = UserState {
        name,
        password_hash,
        is_admin: opt_num("ADMIN")?.unwrap_or(0) != 0,
        quota: Quota {
            storage: opt_num("QUOTASTORAGE")?,
            messages: opt_num("QUOTAMESSAGES")?,
        },
        subscriptions,
        modseq: 0,
    };
    if let Some(d) = plist_string(p, "DIGEST")? {
        if d != state.digest() {
            return Err("DIGEST does not match the user state sent".into());
        }
    }
    Ok(state)
}
/// Encodes `tag USER ...`.
pub fn encode_user(enc: &mut Encoder, tag: &str, s: &UserState) {
    enc.atom(tag)
        .raw(" USER ")
        .string(&s.name)
        .raw(" (PASSWORD ");
    match &s.password_hash {
        Some(h) => enc.string(h),
        None => enc.nil(),
    };
    enc.raw(" ADMIN ").number(u64::from(s.is_admin));
    enc.raw(" QUOTASTORAGE ");
    opt_number(enc, s.quota.storage);
    enc.raw(" QUOTAMESSAGES ");
    opt_number(enc, s.quota.messages);
    enc.raw(" SUBSCRIPTIONS (");
    for (i, sub) in s.subscriptions.iter().enumerate() {
        if i > 0 {
            enc.sp();
        }
        enc.string(sub);
    }
    enc.raw(") DIGEST ").string(&s.digest()).raw(")").crlf();
}

fn opt_number(enc: &mut Encoder, v: Option<u64>) {
    match v {
        Some(n) => enc.number(n),
        None => enc.nil(),
    };
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_typed;

#[cfg(test)]
mod tests_status;
