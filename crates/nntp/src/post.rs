//! POST and IHAVE: checking an article and preparing it for storage. Pure functions
//! of the article's bytes (the session reads it and stores the result).

use crate::clock;
use crate::overview::{body_start, field};

/// An article ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The bytes to store.
    pub(crate) message: Vec<u8>,
    /// Its Message-ID.
    pub(crate) message_id: String,
    /// The groups its Newsgroups header names, in order, without duplicates.
    pub(crate) groups: Vec<String>,
}

/// How the article arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival<'a> {
    /// POST: this server injects it.
    Post,
    /// IHAVE with this Message-ID: a peer relays it, already injected.
    Ihave(&'a str),
}

/// Checks an article and adds what an injecting agent adds (RFC 5537 3.5) or, when
/// relayed, this host to its Path. `Err` carries the reason for the client.
pub(crate) fn prepare(
    raw: &[u8],
    arrival: Arrival<'_>,
    hostname: &str,
    now: i64,
) -> Result<Prepared, String> {
    // RFC 5536 articles are RFC 5322 text, which has no NUL, and RFC 3977 answers
    // cannot carry one: a NUL stored would reach every reader's OVER, HDR and ARTICLE.
    if raw.contains(&0) {
        return Err("an article may not contain a NUL octet".into());
    }
    let split = body_start(raw);
    if split >= raw.len() {
        return Err("an article needs a header, an empty line and a body".into());
    }
    for required in ["Newsgroups", "From", "Subject"] {
        if field(raw, required).is_none_or(|v| v.is_empty()) {
            return Err(format!("the {required} header is required"));
        }
    }
    if field(raw, "Control").is_some() {
        return Err("control messages are not supported by this server".into());
    }
    let groups = newsgroups(&field(raw, "Newsgroups").unwrap_or_default())?;
    let given = field(raw, "Message-ID");
    let message_id = match (&given, arrival) {
        (Some(id), _) => tern_store::normalize_message_id(id)
            .ok_or_else(|| "the Message-ID header is not a valid message-id".to_owned())?,
        (None, Arrival::Ihave(_)) => return Err("a relayed article needs its Message-ID".into()),
        (None, Arrival::Post) => generate_id(hostname, now),
    };
    if let Arrival::Ihave(offered) = arrival {
        if offered != message_id {
            return Err("the Message-ID header differs from the one offered".into());
        }
    }
    let mut added = String::new();
    if arrival == Arrival::Post {
        if field(raw, "Injection-Info").is_some() || field(raw, "Injection-Date").is_some() {
            return Err("the article was already injected; offer it with IHAVE".into());
        }
        if given.is_none() {
            added.push_str(&format!("Message-ID: {message_id}\r\n"));
        }
        if field(raw, "Date").is_none() {
            added.push_str(&format!("Date: {}\r\n", clock::rfc5322(now)));
        }
        added.push_str(&format!("Injection-Date: {}\r\n", clock::rfc5322(now)));
    }
    let (path, rest) = take_path(raw);
    let path = match (path, arrival) {
        (Some(p), _) => format!("Path: {hostname}!{p}\r\n"),
        (None, Arrival::Post) => format!("Path: {hostname}!not-for-mail\r\n"),
        (None, Arrival::Ihave(_)) => format!("Path: {hostname}\r\n"),
    };
    let mut message = Vec::with_capacity(raw.len() + path.len() + added.len());
    message.extend_from_slice(path.as_bytes());
    message.extend_from_slice(added.as_bytes());
    message.extend_from_slice(&rest);
    Ok(Prepared {
        message,
        message_id,
        groups,
    })
}

/// The Newsgroups header's names: comma-separated, white space ignored.
fn newsgroups(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let valid = name.len() <= 497
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"*?[]\\!,".contains(&b));
        if !valid {
            return Err(format!("bad newsgroup name in Newsgroups: {name}"));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    if out.is_empty() || out.len() > 100 {
        return Err("Newsgroups must name 1 to 100 groups".into());
    }
    Ok(out)
}

/// A new Message-ID: random, with the time and this host.
fn generate_id(hostname: &str, now: i64) -> String {
    let random: u64 = rand::random();
    format!("<{random:016x}.{now}@{hostname}>")
}

/// The article's Path value (unfolded) and the article without its Path field.
fn take_path(raw: &[u8]) -> (Option<String>, Vec<u8>) {
    let head_end = body_start(raw);
    let mut at = 0;
    while at < head_end {
        let mut end = line_end(raw, at, head_end);
        while end < head_end && matches!(raw[end], b' ' | b'\t') {
            end = line_end(raw, end, head_end);
        }
        let line = &raw[at..end];
        if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"path:") {
            let value: String = String::from_utf8_lossy(&line[5..])
                .split_whitespace()
                .collect();
            let mut rest = raw[..at].to_vec();
            rest.extend_from_slice(&raw[end..]);
            return ((!value.is_empty()).then_some(value), rest);
        }
        at = end;
    }
    (None, raw.to_vec())
}

fn line_end(raw: &[u8], from: usize, limit: usize) -> usize {
    raw[from..limit]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(limit, |i| from + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ART: &[u8] =
        b"From: a@x\r\nNewsgroups: misc.test, misc.test,local.test\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn post_adds_what_an_injecting_agent_adds() {
        let p = prepare(ART, Arrival::Post, "news.example", 1_796_472_111).unwrap();
        let text = String::from_utf8(p.message).unwrap();
        assert!(
            text.starts_with("Path: news.example!not-for-mail\r\nMessage-ID: <"),
            "{text}"
        );
        assert!(
            text.contains("\r\nDate: Sat, 05 Dec 2026 12:01:51 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nInjection-Date: Sat, 05 Dec 2026 12:01:51 +0000\r\n"));
        assert!(text.ends_with("Subject: hi\r\n\r\nbody\r\n"));
        assert!(p.message_id.ends_with(".1796472111@news.example>"));
        assert_eq!(p.groups, ["misc.test", "local.test"]);
    }

    #[test]
    fn refusals() {
        let no = |raw: &[u8]| prepare(raw, Arrival::Post, "h", 0).unwrap_err();
        assert!(no(b"From: a\r\nSubject: s\r\n\r\nb\r\n").contains("Newsgroups"));
        assert!(no(b"Newsgroups: a\r\nSubject: s\r\n\r\nb\r\n").contains("From"));
        assert!(no(b"Newsgroups: a\r\nFrom: f\r\nSubject: s\r\n").contains("body"));
        assert!(no(b"Newsgroups: a\r\nFrom: f\r\nSubject: s\0\r\n\r\nb\r\n").contains("NUL"));
        assert!(no(b"Newsgroups: a\r\nFrom: f\r\nSubject: s\r\n\r\nb\0\r\n").contains("NUL"));
        assert!(no(
            b"Newsgroups: a\r\nFrom: f\r\nSubject: s\r\nControl: cancel <x@y>\r\n\r\nb\r\n"
        )
        .contains("control"));
        assert!(
            no(b"Newsgroups: a*\r\nFrom: f\r\nSubject: s\r\n\r\nb\r\n").contains("bad newsgroup")
        );
        assert!(no(
            b"Newsgroups: a\r\nFrom: f\r\nSubject: s\r\nMessage-ID: nope nope\r\n\r\nb\r\n"
        )
        .contains("Message-ID"));
        assert!(
            no(b"Newsgroups: a\r\nFrom: f\r\nSubject: s\r\nInjection-Date: x\r\n\r\nb\r\n")
                .contains("injected")
        );
    }

    #[test]
    fn ihave_keeps_the_article_and_prepends_this_host_to_its_path() {
        let art = b"Path: far.example!poster\r\nFrom: a\r\nNewsgroups: misc.test\r\nSubject: s\r\nMessage-ID: <r@far>\r\n\r\nb\r\n";
        let p = prepare(art, Arrival::Ihave("<r@far>"), "near", 0).unwrap();
        let text = String::from_utf8(p.message).unwrap();
        assert!(
            text.starts_with("Path: near!far.example!poster\r\nFrom: a\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("Path:").count(), 1);
        assert!(prepare(art, Arrival::Ihave("<other@far>"), "near", 0).is_err());
    }
}
