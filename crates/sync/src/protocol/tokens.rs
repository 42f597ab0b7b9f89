//! Decoding single tokens of a command or response.

use tern_store::{Flags, Guid, Uid, UniqueId};

use crate::wire::{parse_uid_set, Token};

/// Most UIDs one uid set may expand to.
const MAX_SET: usize = 1_000_000;

/// Why a command could not be decoded: answered `BAD` with this text.
pub type Malformed = String;

pub(crate) fn atom_or_string(t: Option<&Token>, what: &str) -> Result<String, Malformed> {
    t.and_then(Token::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} expected"))
}

pub(crate) fn number(t: Option<&Token>, what: &str) -> Result<u64, Malformed> {
    t.and_then(Token::as_number)
        .ok_or_else(|| format!("{what}: number expected"))
}

pub(crate) fn signed(t: Option<&Token>, what: &str) -> Result<i64, Malformed> {
    match t {
        Some(Token::Number(n)) => i64::try_from(*n).map_err(|_| format!("{what}: too large")),
        Some(Token::Atom(a)) => a.parse().map_err(|_| format!("{what}: number expected")),
        _ => Err(format!("{what}: number expected")),
    }
}

pub(crate) fn uid32(t: Option<&Token>, what: &str) -> Result<u32, Malformed> {
    u32::try_from(number(t, what)?).map_err(|_| format!("{what}: out of range"))
}

pub(crate) fn list<'a>(t: Option<&'a Token>, what: &str) -> Result<&'a [Token], Malformed> {
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

/// Parses a stored POP3 UIDL: a string RFC 1939 allows (1 to 70 characters in
/// 0x21-0x7E, `tern_store::valid_pop3_uidl`).
pub fn pop3_uidl(t: Option<&Token>) -> Result<String, Malformed> {
    match t.and_then(Token::as_str) {
        Some(u) if tern_store::valid_pop3_uidl(u) => Ok(u.to_owned()),
        Some(_) => Err("UIDL: not a valid POP3 unique-id".to_owned()),
        None => Err("UIDL: string expected".to_owned()),
    }
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

/// The value of an optional plist key that must be a string when present: `Ok(None)`
/// when the key is absent, an error when it holds anything else (a digest written as
/// a number must not be read as "no digest", which would skip the check it asks for).
pub(crate) fn plist_string<'a>(
    items: &'a [Token],
    key: &str,
) -> Result<Option<&'a str>, Malformed> {
    match plist_get(items, key) {
        None => Ok(None),
        Some(t) => t
            .as_str()
            .map(Some)
            .ok_or_else(|| format!("{key}: string expected")),
    }
}

/// The value of an optional plist key holding a records digest (32 hex digits, as a
/// string): `Ok(None)` when absent, an error when malformed.
pub(crate) fn plist_digest(
    items: &[Token],
    key: &str,
) -> Result<Option<tern_store::RecordsDigest>, Malformed> {
    plist_string(items, key)?
        .map(|t| {
            t.parse()
                .map_err(|_| format!("{key}: 32 hex digits expected"))
        })
        .transpose()
}

pub(crate) fn uid_set(t: Option<&Token>) -> Result<Vec<Uid>, Malformed> {
    let text = match t {
        Some(Token::Number(n)) => n.to_string(),
        Some(other) => other.as_str().ok_or("uid set expected")?.to_owned(),
        None => return Err("uid set expected".into()),
    };
    parse_uid_set(&text, MAX_SET).ok_or_else(|| "bad uid set".to_owned())
}
