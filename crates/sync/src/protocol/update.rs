//! UPDATE: one mailbox's state and changes, the command that carries messages.

use tern_store::{Flags, MailboxState, MailboxUpdate, ReplicaAppend, UniqueId};

use super::tokens::{
    atom_or_string, flags, guid, list, number, plist_digest, plist_get, pop3_uidl, signed, uid32,
    uid_set, uniqueid, Malformed,
};
use crate::wire::{encode_uid_set, Encoder, Token};

pub(crate) fn parse_update(mut a: Vec<Token>) -> Result<MailboxUpdate, Malformed> {
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
        keywords: match plist_get(p, "KEYWORDS") {
            None | Some(Token::Nil) => Vec::new(),
            t => list(t, "KEYWORDS")?
                .iter()
                .map(|k| atom_or_string(Some(k), "keyword"))
                .collect::<Result<_, Malformed>>()?,
        },
    };
    let digest = plist_digest(p, "DIGEST")?;
    let expect_digest = plist_digest(p, "EXPECTDIGEST")?;
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
        expect_digest,
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
                pop3_uidl: None,
            });
            i += 8;
            // Optional: the record's stored POP3 UIDL (`UIDL string`).
            if items
                .get(i)
                .and_then(Token::as_atom)
                .is_some_and(|a| a.eq_ignore_ascii_case("UIDL"))
            {
                let uidl = pop3_uidl(items.get(i + 1))?;
                if let Some(last) = update.appends.last_mut() {
                    last.pop3_uidl = Some(uidl);
                }
                i += 2;
            }
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
        .string(id)
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
    // Keys at their default (0, NIL, empty) are left out: the receiver reads an absent
    // key as its default, and a rolling sync sends this state with every change.
    for (key, value) in [
        (" DELETEDMODSEQ ", s.deleted_modseq),
        (" CREATEDMODSEQ ", s.created_modseq),
        (" RECENTUID ", u64::from(s.recent_uid)),
        (" RECENTTIME ", s.recent_time.max(0) as u64),
    ] {
        if value != 0 {
            enc.raw(key).number(value);
        }
    }
    if let Some(v) = &s.special_use {
        enc.raw(" SPECIALUSE ").string(v);
    }
    if !s.acl.is_empty() {
        enc.raw(" ACL ").string(&s.acl);
    }
    if !s.annotations.is_empty() {
        enc.raw(" ANNOTATIONS (");
        for (i, (k, v)) in s.annotations.iter().enumerate() {
            if i > 0 {
                enc.sp();
            }
            enc.string(k).sp().string(v);
        }
        enc.raw(")");
    }
    if !s.keywords.is_empty() {
        enc.raw(" KEYWORDS (");
        for (i, k) in s.keywords.iter().enumerate() {
            if i > 0 {
                enc.sp();
            }
            enc.string(k);
        }
        enc.raw(")");
    }
    if u.reset {
        enc.raw(" RESET 1");
    }
    if let Some(d) = &u.expect_digest {
        enc.raw(" EXPECTDIGEST ").string(&d.to_string());
    }
    if let Some(d) = &u.digest {
        enc.raw(" DIGEST ").string(&d.to_string());
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
        if let Some(uidl) = &a.pop3_uidl {
            enc.raw(" UIDL ").string(uidl);
        }
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
