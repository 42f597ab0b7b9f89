//! Address headers (RFC 5322 with the usual breakage: groups, routes, comments,
//! unterminated angles) parsed into [`Address`] items, as IMAP's ENVELOPE lists them;
//! the first mailbox and its display name (what SORT and summaries use); message-id
//! lists (Message-ID, In-Reply-To, References).

use crate::header::{decode_header_value, trim, unfold};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Literal(Vec<u8>),
    Special(u8),
}

fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c != 0x7f && !b"\"(<>@,:;[".contains(&c)
}

fn tokenize(v: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() {
                    match v[i] {
                        b'\\' if i + 1 < v.len() => {
                            s.push(v[i + 1]);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\r' | b'\n' => i += 1,
                        ch => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Quoted(s));
            }
            b'(' => {
                let mut s = Vec::new();
                let mut depth = 0usize;
                while i < v.len() {
                    match v[i] {
                        b'\\' if i + 1 < v.len() => {
                            s.push(v[i + 1]);
                            i += 2;
                            continue;
                        }
                        b'(' => {
                            if depth > 0 {
                                s.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            s.push(b')');
                        }
                        ch => s.push(ch),
                    }
                    i += 1;
                }
                toks.push(Tok::Comment(s));
            }
            b'[' => {
                let s0 = i;
                i += 1;
                while i < v.len() && v[i] != b']' {
                    i += if v[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(v.len());
                toks.push(Tok::Literal(v[s0..i].to_vec()));
            }
            b'<' | b'>' | b'@' | b',' | b':' | b';' => {
                toks.push(Tok::Special(c));
                i += 1;
            }
            _ if !is_atom_char(c) => i += 1,
            _ => {
                let s0 = i;
                while i < v.len() && is_atom_char(v[i]) {
                    i += 1;
                }
                toks.push(Tok::Atom(v[s0..i].to_vec()));
            }
        }
    }
    toks
}

/// One element of an address list, as RFC 3501's ENVELOPE shows it: a mailbox, or
/// the start or end of a group (RFC 5322 3.4). Byte strings are as written in the
/// header (encoded-words are not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `name <adl:mailbox@host>`.
    Mailbox {
        /// The display name, if any.
        name: Option<Vec<u8>>,
        /// The obsolete source route (`@a,@b`), if any.
        adl: Option<Vec<u8>>,
        /// The local part.
        mailbox: Vec<u8>,
        /// The domain; empty when the address has none.
        host: Vec<u8>,
    },
    /// `name:` opening a group.
    GroupStart(Vec<u8>),
    /// `;` closing a group.
    GroupEnd,
}

fn phrase(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        let w = match t {
            Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => w,
            Tok::Special(c) if *c != b'<' && *c != b'>' => {
                out.push(*c);
                continue;
            }
            _ => continue,
        };
        if !out.is_empty() && !w.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(w);
    }
    out
}

fn join_tokens(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Atom(w) | Tok::Quoted(w) | Tok::Literal(w) => out.extend_from_slice(w),
            Tok::Special(c) => out.push(*c),
            Tok::Comment(_) => {}
        }
    }
    out
}

/// Splits an addr-spec's tokens into (local part, domain).
fn addr_spec(toks: &[Tok]) -> (Vec<u8>, Vec<u8>) {
    let toks: Vec<Tok> = toks
        .iter()
        .filter(|t| !matches!(t, Tok::Comment(_)))
        .cloned()
        .collect();
    match toks.iter().position(|t| *t == Tok::Special(b'@')) {
        Some(at) => (join_tokens(&toks[..at]), join_tokens(&toks[at + 1..])),
        None => (phrase(&toks), Vec::new()),
    }
}

fn mailbox_item(item: &[Tok]) -> Option<Address> {
    // Nothing but comments (`group: (foo) ;`) is no address.
    if item.iter().all(|t| matches!(t, Tok::Comment(_))) {
        return None;
    }
    let (name, adl, mailbox, host) = match item.iter().position(|t| *t == Tok::Special(b'<')) {
        Some(lt) => {
            let name = phrase(&item[..lt]);
            let close = item[lt + 1..]
                .iter()
                .position(|t| *t == Tok::Special(b'>'))
                .map_or(item.len(), |p| lt + 1 + p);
            let angle = &item[lt + 1..close];
            let (adl, spec) = if angle.first() == Some(&Tok::Special(b'@')) {
                match angle.iter().position(|t| *t == Tok::Special(b':')) {
                    Some(colon) => (Some(join_tokens(&angle[..colon])), &angle[colon + 1..]),
                    None => (None, angle),
                }
            } else {
                (None, angle)
            };
            let (mailbox, host) = addr_spec(spec);
            (name, adl, mailbox, host)
        }
        None => {
            let (mailbox, host) = addr_spec(item);
            let name = item
                .iter()
                .find_map(|t| match t {
                    Tok::Comment(c) if !trim(c).is_empty() => Some(trim(c).to_vec()),
                    _ => None,
                })
                .unwrap_or_default();
            (name, None, mailbox, host)
        }
    };
    if name.is_empty() && mailbox.is_empty() && host.is_empty() {
        return None;
    }
    Some(Address::Mailbox {
        name: if name.is_empty() { None } else { Some(name) },
        adl,
        mailbox,
        host,
    })
}

/// Parses an address-list header value (raw) into envelope items, keeping
/// encoded-words in display names as they are.
pub fn parse_addresses(v: &[u8]) -> Vec<Address> {
    let toks = tokenize(v);
    let mut out = Vec::new();
    let mut item: Vec<Tok> = Vec::new();
    let mut in_angle = false;
    let mut in_group = false;
    for tok in toks {
        match tok {
            Tok::Special(b'<') => {
                in_angle = true;
                item.push(tok);
            }
            Tok::Special(b'>') => {
                in_angle = false;
                item.push(tok);
            }
            Tok::Special(b',') if !in_angle => {
                out.extend(mailbox_item(&item));
                item.clear();
            }
            Tok::Special(b':') if !in_angle && !in_group && !item.contains(&Tok::Special(b'@')) => {
                out.push(Address::GroupStart(phrase(&item)));
                item.clear();
                in_group = true;
            }
            Tok::Special(b';') if !in_angle => {
                out.extend(mailbox_item(&item));
                item.clear();
                if in_group {
                    out.push(Address::GroupEnd);
                    in_group = false;
                }
            }
            _ => item.push(tok),
        }
    }
    out.extend(mailbox_item(&item));
    if in_group {
        out.push(Address::GroupEnd);
    }
    out
}

/// (display name, mailbox, host) of one address.
pub(crate) type AddressParts<'a> = (Option<&'a [u8]>, &'a [u8], &'a [u8]);

/// The first address of a list as SORT and the display values read it: (display
/// name, mailbox, host). A group counts as an address whose mailbox is the group's
/// name (RFC 5256 leaves groups open; Dovecot reads them so, and imaptest checks it).
pub(crate) fn first_mailbox(items: &[Address]) -> Option<AddressParts<'_>> {
    items.iter().find_map(|it| match it {
        Address::Mailbox {
            name,
            mailbox,
            host,
            ..
        } => Some((name.as_deref(), mailbox.as_slice(), host.as_slice())),
        Address::GroupStart(name) => Some((None, name.as_slice(), &b""[..])),
        Address::GroupEnd => None,
    })
}

/// RFC 5957 display value: the decoded display name, else `mailbox@host`.
pub(crate) fn display_of(items: &[Address]) -> Option<String> {
    let (name, mailbox, host) = first_mailbox(items)?;
    if let Some(n) = name {
        let d = decode_header_value(n);
        if !d.trim().is_empty() {
            return Some(d);
        }
    }
    let mut s = String::from_utf8_lossy(mailbox).into_owned();
    if !host.is_empty() {
        s.push('@');
        s.push_str(&String::from_utf8_lossy(host));
    }
    Some(s)
}

/// Message ids (without angle brackets) in a Message-ID / In-Reply-To /
/// References value.
pub fn parse_ids(v: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'<' {
            match v[i + 1..].iter().position(|&c| c == b'>') {
                Some(p) => {
                    let id: Vec<u8> = v[i + 1..i + 1 + p]
                        .iter()
                        .copied()
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    if !id.is_empty() {
                        ids.push(String::from_utf8_lossy(&id).into_owned());
                    }
                    i += p + 2;
                }
                None => break,
            }
        } else {
            i += 1;
        }
    }
    if ids.is_empty() {
        let t = unfold(v);
        if !t.is_empty() && !t.iter().any(|c| c.is_ascii_whitespace()) {
            ids.push(String::from_utf8_lossy(&t).into_owned());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_alone_is_no_address() {
        assert_eq!(
            parse_addresses(b"group2: (foo) ;"),
            vec![Address::GroupStart(b"group2".to_vec()), Address::GroupEnd]
        );
        assert!(parse_addresses(b"(just a comment)").is_empty());
        // A comment beside an address still names it.
        assert_eq!(
            parse_addresses(b"a@b.test (Ann)"),
            vec![Address::Mailbox {
                name: Some(b"Ann".to_vec()),
                adl: None,
                mailbox: b"a".to_vec(),
                host: b"b.test".to_vec(),
            }]
        );
    }
}
