//! The commands and responses of the replication protocol as typed values, and their
//! encoding and decoding (`docs/replication.md`, section 5). Client and server share
//! this module, so what one writes is by construction what the other reads.

use tern_store::{
    Flags, Guid, MailboxState, MailboxUpdate, Modseq, Quota, ReplicaAppend, Uid, UniqueId,
    UserState,
};

use crate::wire::{encode_uid_set, parse_uid_set, Command, Encoder, Token};

/// The protocol version this build speaks (`TERNSYNC=1`).
pub const VERSION: u32 = 1;

/// Most GUIDs in one RESERVE.
pub const MAX_RESERVE: usize = 1000;

/// Most UIDs one uid set may expand to.
const MAX_SET: usize = 1_000_000;

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

/// A command, as the server receives it after authentication.
#[derive(Debug)]
pub enum Request {
    /// `MAILBOXES user ALL | (ids) (names)`
    Mailboxes {
        /// The user.
        user: String,
        /// Which mailboxes.
        selection: Selection,
    },
    /// `RESERVE (ids) guid...`
    Reserve {
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
    /// `RECORDS user uniqueid`
    Records {
        /// Owner.
        user: String,
        /// Mailbox.
        uniqueid: UniqueId,
    },
    /// `MESSAGE guid size`
    Message {
        /// Blob.
        guid: Guid,
        /// Its size.
        size: u64,
    },
}

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
}

/// Why a command could not be decoded: answered `BAD` with this text.
pub type Malformed = String;

fn atom_or_string(t: Option<&Token>, what: &str) -> Result<String, Malformed> {
    t.and_then(Token::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} expected"))
}

fn number(t: Option<&Token>, what: &str) -> Result<u64, Malformed> {
    t.and_then(Token::as_number)
        .ok_or_else(|| format!("{what}: number expected"))
}

fn signed(t: Option<&Token>, what: &str) -> Result<i64, Malformed> {
    match t {
        Some(Token::Number(n)) => i64::try_from(*n).map_err(|_| format!("{what}: too large")),
        Some(Token::Atom(a)) => a.parse().map_err(|_| format!("{what}: number expected")),
        _ => Err(format!("{what}: number expected")),
    }
}

fn uid32(t: Option<&Token>, what: &str) -> Result<u32, Malformed> {
    u32::try_from(number(t, what)?).map_err(|_| format!("{what}: out of range"))
}

fn list<'a>(t: Option<&'a Token>, what: &str) -> Result<&'a [Token], Malformed> {
    t.and_then(Token::as_list)
        .ok_or_else(|| format!("{what}: list expected"))
}

/// Parses a unique id token.
pub fn uniqueid(t: Option<&Token>) -> Result<UniqueId, Malformed> {
    t.and_then(Token::as_str)
        .and_then(UniqueId::parse)
        .ok_or_else(|| "unique id expected".to_owned())
}

/// Parses a GUID token.
pub fn guid(t: Option<&Token>) -> Result<Guid, Malformed> {
    t.and_then(Token::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "GUID expected".to_owned())
}

/// Parses a flag list.
pub fn flags(t: Option<&Token>) -> Result<Flags, Malformed> {
    let items = list(t, "flags")?;
    let mut out = Flags::new();
    for f in items {
        let text = f.as_str().ok_or("flag expected")?;
        out.insert(tern_store::Flag::parse(text).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Looks a key up in a plist; keys are case-insensitive.
pub fn plist_get<'a>(items: &'a [Token], key: &str) -> Option<&'a Token> {
    items
        .chunks(2)
        .find(|kv| kv.len() == 2 && kv[0].as_atom().is_some_and(|k| k.eq_ignore_ascii_case(key)))
        .map(|kv| &kv[1])
}

fn uid_set(t: Option<&Token>) -> Result<Vec<Uid>, Malformed> {
    let text = match t {
        Some(Token::Number(n)) => n.to_string(),
        Some(other) => other.as_str().ok_or("uid set expected")?.to_owned(),
        None => return Err("uid set expected".into()),
    };
    parse_uid_set(&text, MAX_SET).ok_or_else(|| "bad uid set".to_owned())
}

impl Request {
    /// Decodes an authenticated-state command.
    pub fn parse(cmd: Command) -> Result<Request, Malformed> {
        if cmd.verb == "UPDATE" {
            // Taken apart by value: its literals (the messages) move, not copy.
            return Ok(Request::Update(Box::new(parse_update(cmd.args)?)));
        }
        let a = &cmd.args;
        let user = || -> Result<String, Malformed> { atom_or_string(a.first(), "user") };
        Ok(match cmd.verb.as_str() {
            "MAILBOXES" => {
                let selection = match a.get(1) {
                    Some(t) if t.as_atom().is_some_and(|s| s.eq_ignore_ascii_case("ALL")) => {
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
                }
            }
            "RESERVE" => {
                list(a.first(), "mailboxes")?;
                let guids = a[1..]
                    .iter()
                    .map(|t| guid(Some(t)))
                    .collect::<Result<Vec<_>, _>>()?;
                if guids.len() > MAX_RESERVE {
                    return Err(format!("at most {MAX_RESERVE} GUIDs per RESERVE"));
                }
                Request::Reserve { guids }
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
            },
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
    if let Some(d) = plist_get(p, "DIGEST").and_then(Token::as_str) {
        if d != state.digest() {
            return Err("DIGEST does not match the user state sent".into());
        }
    }
    Ok(state)
}

fn parse_update(mut a: Vec<Token>) -> Result<MailboxUpdate, Malformed> {
    let user = atom_or_string(a.first(), "user")?;
    let uniqueid = uniqueid(a.get(1))?;
    let expect = match a.get(2) {
        Some(Token::Nil) => None,
        t => Some(number(t, "expect")?),
    };
    let p = list(a.get(3), "state")?;
    let req_num = |key: &str| number(plist_get(p, key), key);
    let opt_num = |key: &str| plist_get(p, key).map_or(Ok(0), |t| number(Some(t), key));
    let state = MailboxState {
        name: atom_or_string(plist_get(p, "NAME"), "NAME")?,
        partition: atom_or_string(plist_get(p, "PARTITION"), "PARTITION")?,
        uidvalidity: u32::try_from(req_num("UIDVALIDITY")?)
            .map_err(|_| "UIDVALIDITY out of range")?,
        last_uid: u32::try_from(req_num("LASTUID")?).map_err(|_| "LASTUID out of range")?,
        highest_modseq: req_num("HIGHESTMODSEQ")?,
        deleted_modseq: opt_num("DELETEDMODSEQ")?,
        created_modseq: opt_num("CREATEDMODSEQ")?,
        recent_uid: u32::try_from(opt_num("RECENTUID")?).map_err(|_| "RECENTUID out of range")?,
        recent_time: plist_get(p, "RECENTTIME").map_or(Ok(0), |t| signed(Some(t), "RECENTTIME"))?,
        special_use: match plist_get(p, "SPECIALUSE") {
            None | Some(Token::Nil) => None,
            t => Some(atom_or_string(t, "SPECIALUSE")?),
        },
        acl: match plist_get(p, "ACL") {
            None | Some(Token::Nil) => String::new(),
            t => atom_or_string(t, "ACL")?,
        },
        annotations: match plist_get(p, "ANNOTATIONS") {
            None | Some(Token::Nil) => Vec::new(),
            t => list(t, "ANNOTATIONS")?
                .chunks(2)
                .map(|kv| {
                    Ok((
                        atom_or_string(kv.first(), "key")?,
                        atom_or_string(kv.get(1), "value")?,
                    ))
                })
                .collect::<Result<_, Malformed>>()?,
        },
    };
    let digest = plist_get(p, "DIGEST")
        .and_then(Token::as_str)
        .map(str::to_owned);
    let reset = plist_get(p, "RESET")
        .and_then(Token::as_number)
        .unwrap_or(0)
        != 0;
    list(a.get(4), "items")?;
    let Some(Token::List(mut items)) = a.get_mut(4).map(|t| std::mem::replace(t, Token::Nil))
    else {
        return Err("items: list expected".into());
    };
    let mut update = MailboxUpdate {
        user,
        uniqueid: Some(uniqueid),
        expect,
        state,
        reset,
        digest,
        ..Default::default()
    };
    let mut i = 0;
    while i < items.len() {
        let kind = items[i]
            .as_atom()
            .ok_or("item keyword expected")?
            .to_ascii_uppercase();
        if kind == "APPEND" {
            let data = match items
                .get_mut(i + 7)
                .map(|t| std::mem::replace(t, Token::Nil))
            {
                Some(Token::Nil) => None,
                Some(Token::Literal(bytes)) => Some(bytes),
                Some(Token::Str(s)) => Some(s.into_bytes()),
                _ => return Err("APPEND data: literal or NIL expected".into()),
            };
            let at = |k: usize| items.get(i + k);
            update.appends.push(ReplicaAppend {
                uid: uid32(at(1), "APPEND uid")?,
                modseq: number(at(2), "APPEND modseq")?,
                internaldate: signed(at(3), "APPEND internaldate")?,
                size: number(at(4), "APPEND size")?,
                guid: guid(at(5))?,
                flags: flags(at(6))?,
                data,
            });
            i += 8;
            continue;
        }
        let at = |k: usize| items.get(i + k);
        match kind.as_str() {
            "STORE" => {
                update.stores.push((
                    uid_set(at(1))?,
                    number(at(2), "STORE modseq")?,
                    flags(at(3))?,
                ));
                i += 4;
            }
            "EXPUNGE" => {
                update
                    .expunges
                    .push((uid_set(at(1))?, number(at(2), "EXPUNGE modseq")?));
                i += 3;
            }
            other => return Err(format!("unknown UPDATE item {other}")),
        }
    }
    Ok(update)
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
    enc.raw(") DIGEST ").atom(&s.digest()).raw(")").crlf();
}

fn opt_number(enc: &mut Encoder, v: Option<u64>) {
    match v {
        Some(n) => enc.number(n),
        None => enc.nil(),
    };
}

/// Encodes `flags` as a list.
pub fn encode_flags(enc: &mut Encoder, flags: &Flags) {
    enc.open();
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            enc.sp();
        }
        enc.atom(&f.to_string());
    }
    enc.close();
}

/// Encodes `tag UPDATE ...` (the literals inline, non-synchronizing).
pub fn encode_update(enc: &mut Encoder, tag: &str, u: &MailboxUpdate) {
    let s = &u.state;
    let id = u.uniqueid.as_ref().map_or("", UniqueId::as_str);
    enc.atom(tag)
        .raw(" UPDATE ")
        .string(&u.user)
        .sp()
        .atom(id)
        .sp();
    match u.expect {
        Some(m) => enc.number(m),
        None => enc.nil(),
    };
    enc.raw(" (NAME ").string(&s.name);
    enc.raw(" PARTITION ").string(&s.partition);
    enc.raw(" UIDVALIDITY ").number(u64::from(s.uidvalidity));
    enc.raw(" LASTUID ").number(u64::from(s.last_uid));
    enc.raw(" HIGHESTMODSEQ ").number(s.highest_modseq);
    enc.raw(" DELETEDMODSEQ ").number(s.deleted_modseq);
    enc.raw(" CREATEDMODSEQ ").number(s.created_modseq);
    enc.raw(" RECENTUID ").number(u64::from(s.recent_uid));
    enc.raw(" RECENTTIME ").number(s.recent_time.max(0) as u64);
    enc.raw(" SPECIALUSE ");
    match &s.special_use {
        Some(v) => enc.string(v),
        None => enc.nil(),
    };
    enc.raw(" ACL ").string(&s.acl);
    enc.raw(" ANNOTATIONS (");
    for (i, (k, v)) in s.annotations.iter().enumerate() {
        if i > 0 {
            enc.sp();
        }
        enc.string(k).sp().string(v);
    }
    enc.raw(")");
    if u.reset {
        enc.raw(" RESET 1");
    }
    if let Some(d) = &u.digest {
        enc.raw(" DIGEST ").atom(d);
    }
    enc.raw(") (");
    let mut first = true;
    let mut sep = |enc: &mut Encoder| {
        if !first {
            enc.sp();
        }
        first = false;
    };
    for a in &u.appends {
        sep(enc);
        enc.raw("APPEND ")
            .number(u64::from(a.uid))
            .sp()
            .number(a.modseq)
            .sp();
        if a.internaldate < 0 {
            enc.raw(&a.internaldate.to_string());
        } else {
            enc.number(a.internaldate as u64);
        }
        enc.sp().number(a.size).sp().atom(&a.guid.to_hex()).sp();
        encode_flags(enc, &a.flags);
        enc.sp();
        match &a.data {
            Some(d) => enc.literal(d),
            None => enc.nil(),
        };
    }
    for (uids, modseq, f) in &u.stores {
        sep(enc);
        enc.raw("STORE ")
            .atom(&encode_uid_set(uids))
            .sp()
            .number(*modseq)
            .sp();
        encode_flags(enc, f);
    }
    for (uids, modseq) in &u.expunges {
        sep(enc);
        enc.raw("EXPUNGE ")
            .atom(&encode_uid_set(uids))
            .sp()
            .number(*modseq);
    }
    enc.raw(")").crlf();
}

impl ReplicaMailbox {
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
        })
    }

    /// Encodes `* MAILBOX ...` for a store mailbox. Keys at their default value
    /// (DELETEDMODSEQ 0, PARTITION default) are left out: a no-op sync of a user with
    /// many mailboxes stays small.
    pub fn encode(enc: &mut Encoder, m: &tern_store::Mailbox) {
        enc.raw("* MAILBOX ")
            .atom(m.uniqueid.as_str())
            .sp()
            .string(&m.name)
            .sp();
        enc.number(u64::from(m.uidvalidity))
            .sp()
            .number(u64::from(m.last_uid))
            .sp();
        enc.number(m.highest_modseq).raw(" (");
        let mut sep = "";
        if m.deleted_modseq != 0 {
            enc.raw("DELETEDMODSEQ ").number(m.deleted_modseq);
            sep = " ";
        }
        if m.partition != tern_store::DEFAULT_PARTITION {
            enc.raw(sep).raw("PARTITION ").string(&m.partition);
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
        enc.raw(if held { " HAVE" } else { " MISSING" }).crlf();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_command, Limits, LineReader};

    fn command(text: &[u8]) -> Command {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reader = LineReader::new(text, Limits::default());
            let line = reader.read_line(&mut |_| true).await.unwrap();
            parse_command(&line).unwrap()
        })
    }

    fn sample() -> MailboxUpdate {
        MailboxUpdate {
            user: "alice".into(),
            uniqueid: Some(UniqueId::random()),
            expect: Some(41),
            state: MailboxState {
                name: "Lists/rust äö".into(),
                partition: "default".into(),
                uidvalidity: 1_700_000_000,
                last_uid: 9,
                highest_modseq: 50,
                acl: "alice\tlrswipkxtecda".into(),
                annotations: vec![("/vendor/tern/expire".into(), "30".into())],
                special_use: Some("\\Archive".into()),
                ..Default::default()
            },
            reset: true,
            appends: vec![ReplicaAppend {
                uid: 9,
                modseq: 50,
                internaldate: -5,
                size: 5,
                guid: Guid::of(b"hello"),
                flags: Flags::parse_list("\\Seen $Label").unwrap(),
                data: Some(b"hello".to_vec()),
            }],
            stores: vec![(
                vec![1, 2, 3, 7],
                44,
                Flags::parse_list("\\Flagged").unwrap(),
            )],
            expunges: vec![(vec![4, 5], 45)],
            digest: Some("ab".repeat(20)),
        }
    }

    #[test]
    fn update_survives_encoding() {
        let u = sample();
        let mut enc = Encoder::new();
        encode_update(&mut enc, "t1", &u);
        let Request::Update(back) = Request::parse(command(enc.bytes())).unwrap() else {
            panic!("not an UPDATE");
        };
        assert_eq!(back.state, u.state);
        assert_eq!(
            (back.expect, back.reset, &back.digest),
            (u.expect, u.reset, &u.digest)
        );
        assert_eq!(back.appends, u.appends);
        assert_eq!(back.stores, u.stores);
        assert_eq!(back.expunges, u.expunges);
    }

    #[test]
    fn unknown_state_keys_are_ignored() {
        // A newer master may add keys; this version must skip them.
        let text = format!(
            "t UPDATE alice {} NIL (FUTURE (1 2 3) NAME INBOX PARTITION default UIDVALIDITY 7 LASTUID 0 HIGHESTMODSEQ 3 ALSONEW \"x\") ()\r\n",
            UniqueId::random()
        );
        let Request::Update(u) = Request::parse(command(text.as_bytes())).unwrap() else {
            panic!("not an UPDATE");
        };
        assert_eq!(
            (
                u.state.name.as_str(),
                u.state.uidvalidity,
                u.state.highest_modseq
            ),
            ("INBOX", 7, 3)
        );
    }

    #[test]
    fn missing_required_keys_and_bad_items_are_refused() {
        let id = UniqueId::random();
        for text in [
            format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default LASTUID 0 HIGHESTMODSEQ 3) ()\r\n"),
            format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default UIDVALIDITY 1 LASTUID 0 HIGHESTMODSEQ 3) (FROB 1)\r\n"),
            format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default UIDVALIDITY 1 LASTUID 0 HIGHESTMODSEQ 3) (STORE 5:x 3 ())\r\n"),
            "t UPDATE alice not-an-id NIL () ()\r\n".to_owned(),
            format!("t RESERVE () {}\r\n", "zz".repeat(20)),
        ] {
            assert!(Request::parse(command(text.as_bytes())).is_err(), "{text}");
        }
    }

    #[test]
    fn user_state_survives_encoding() {
        let s = UserState {
            name: "bob".into(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            is_admin: false,
            quota: Quota {
                storage: Some(1000),
                messages: None,
            },
            subscriptions: vec!["INBOX".into(), "Lists/rust".into()],
            modseq: 0,
        };
        let mut enc = Encoder::new();
        encode_user(&mut enc, "t2", &s);
        let Request::User(back) = Request::parse(command(enc.bytes())).unwrap() else {
            panic!("not a USER");
        };
        assert_eq!(back, s);
    }
}
