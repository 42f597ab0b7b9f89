//! IMAP URLs that name a message or a part of one (RFC 5092 `imessagepart`), as
//! CATENATE (RFC 4469) takes them: `/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.MIME`,
//! relative to this server, or `imap://user@host/...` naming it.
//!
//! Parsing only: whether the mailbox exists, the UIDVALIDITY still holds and the user
//! may read the message is the session's to check.

use crate::types::Section;

/// One message (or part of one) on an IMAP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// The `iuserinfo` user of an absolute URL.
    pub user: Option<String>,
    /// The host of an absolute URL (lower-cased); `None` for a relative one.
    pub host: Option<String>,
    /// The mailbox name (percent-decoded UTF-8).
    pub mailbox: String,
    /// `;UIDVALIDITY=`, when given: the URL is stale unless it still holds.
    pub uidvalidity: Option<u32>,
    /// `;UID=`.
    pub uid: u32,
    /// `;SECTION=`, parsed as a FETCH section; `None` for the whole message.
    pub section: Option<Section>,
    /// `;PARTIAL=offset[.length]`.
    pub partial: Option<(u64, Option<u64>)>,
}

/// Why a URL was refused. The text is for the client's `NO [BADURL ...]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(pub &'static str);

/// Longest URL accepted (RFC 5092 sets none; this bounds the work per URL).
pub const MAX_URL: usize = 4096;

impl MessageUrl {
    /// Parses `url`. Anything but a message or part reference (a mailbox list, a
    /// search, `;URLAUTH=` access) is refused.
    pub fn parse(url: &str) -> Result<MessageUrl, BadUrl> {
        if url.len() > MAX_URL {
            return Err(BadUrl("URL too long"));
        }
        let (user, host, path) = if let Some(rest) = strip_prefix_ci(url, "imap://") {
            let (authority, path) = rest.split_once('/').ok_or(BadUrl("URL has no path"))?;
            let (user, host) = match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    // `user;AUTH=mech`: the mechanism does not matter here.
                    let user = userinfo.split(';').next().unwrap_or("");
                    (Some(decode(user)?), host)
                }
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(BadUrl("URL has no host"));
            }
            (user, Some(host.to_ascii_lowercase()), path)
        } else if let Some(path) = url.strip_prefix('/') {
            (None, None, path)
        } else {
            return Err(BadUrl("not an IMAP URL"));
        };
        let mut segments = path.split('/');
        let mailbox_segment = segments.next().unwrap_or("");
        let (mailbox, uidvalidity) = match split_param(mailbox_segment) {
            (name, Some(("UIDVALIDITY", v))) => (name, Some(nz_u32(v)?)),
            (name, None) => (name, None),
            _ => return Err(BadUrl("unknown mailbox parameter")),
        };
        if mailbox.is_empty() {
            return Err(BadUrl("URL names no mailbox"));
        }
        let mailbox = decode(mailbox)?;
        let mut uid = None;
        let mut section = None;
        let mut partial = None;
        for segment in segments {
            match split_param(segment) {
                ("", Some(("UID", v))) if uid.is_none() => uid = Some(nz_u32(v)?),
                ("", Some(("SECTION", v))) if uid.is_some() && section.is_none() => {
                    let text = decode(v)?;
                    section =
                        Some(crate::parser::parse_section(&text).ok_or(BadUrl("bad SECTION"))?);
                }
                ("", Some(("PARTIAL", v))) if uid.is_some() && partial.is_none() => {
                    let (offset, length) = match v.split_once('.') {
                        Some((o, l)) => (o, Some(l)),
                        None => (v, None),
                    };
                    let offset = offset.parse().map_err(|_| BadUrl("bad PARTIAL"))?;
                    let length = match length {
                        Some(l) => Some(nz_u64(l)?),
                        None => None,
                    };
                    partial = Some((offset, length));
                }
                ("", Some(("URLAUTH", _))) => return Err(BadUrl("URLAUTH is not supported")),
                _ => return Err(BadUrl("not a message URL")),
            }
        }
        Ok(MessageUrl {
            user,
            host,
            mailbox,
            uidvalidity,
            uid: uid.ok_or(BadUrl("URL names no UID"))?,
            section,
            partial,
        })
    }

    /// The bytes this URL names, cut from the whole message `raw`, or `None` when the
    /// section does not exist in it. A PARTIAL beyond the end gives no bytes.
    pub fn cut(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let bytes = match &self.section {
            Some(s) => crate::mime::section(raw, s)?,
            None => raw.to_vec(),
        };
        Some(match self.partial {
            None => bytes,
            Some((offset, length)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = match length {
                    Some(l) => start.saturating_add(usize::try_from(l).unwrap_or(usize::MAX)),
                    None => bytes.len(),
                }
                .min(bytes.len());
                bytes[start..end].to_vec()
            }
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `name;KEY=value` → (`name`, (KEY upper-cased, value)); at most one parameter.
fn split_param(segment: &str) -> (&str, Option<(&'static str, &str)>) {
    let Some((name, param)) = segment.split_once(';') else {
        return (segment, None);
    };
    let (key, value) = param.split_once('=').unwrap_or((param, ""));
    let key = [
        "UIDVALIDITY",
        "UID",
        "SECTION",
        "PARTIAL",
        "URLAUTH",
        "EXPIRE",
    ]
    .into_iter()
    .find(|k| k.eq_ignore_ascii_case(key));
    match key {
        Some(k) => (name, Some((k, value))),
        None => (name, Some(("", value))),
    }
}

fn nz_u32(v: &str) -> Result<u32, BadUrl> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 && !v.starts_with('0') => Ok(n),
        _ => Err(BadUrl("bad number in URL")),
    }
}

fn nz_u64(v: &str) -> Result<u64, BadUrl> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 && !v.starts_with('0') => Ok(n),
        _ => Err(BadUrl("bad number in URL")),
    }
}

/// Percent-decoding (RFC 3986 2.1) to UTF-8.
fn decode(s: &str) -> Result<String, BadUrl> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(BadUrl("bad percent-encoding"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadUrl("bad percent-encoding"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| BadUrl("bad percent-encoding"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BadUrl("URL is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SectionText;

    #[test]
    fn rfc_4469_example_urls() {
        let u = MessageUrl::parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME").unwrap();
        assert_eq!(u.mailbox, "Drafts");
        assert_eq!((u.uidvalidity, u.uid), (Some(385_759_045), 20));
        let s = u.section.unwrap();
        assert_eq!((s.part, s.text), (vec![1], Some(SectionText::Mime)));
        let u = MessageUrl::parse("imap://Bob@Example.COM/INBOX/;UID=3/;PARTIAL=100.5").unwrap();
        assert_eq!(u.user.as_deref(), Some("Bob"));
        assert_eq!(u.host.as_deref(), Some("example.com"));
        assert_eq!(u.partial, Some((100, Some(5))));
        let u =
            MessageUrl::parse("/a%20b%C3%A9/;UID=1/;SECTION=HEADER.FIELDS%20(FROM%20TO)").unwrap();
        assert_eq!(u.mailbox, "a bé");
        assert_eq!(
            u.section.unwrap().text,
            Some(SectionText::HeaderFields(vec!["FROM".into(), "TO".into()]))
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=01",
            "/INBOX/;UID=1/;UID=2",
            "/INBOX;UIDVALIDITY=x/;UID=1",
            "/INBOX/;SECTION=1/;UID=1",
            "/INBOX/;UID=1/;SECTION=BOGUS",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0123",
            "/INBOX?SUBJECT%20x",
            "/%ZZ/;UID=1",
            "/%FF/;UID=1",
            "imap:///INBOX/;UID=1",
            "/;UID=1",
        ] {
            assert!(MessageUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(MessageUrl::parse(&format!("/{}/;UID=1", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn cut_applies_section_then_partial() {
        let raw = b"Subject: x\r\n\r\nbody text\r\n";
        let url = |s: &str| MessageUrl::parse(s).unwrap();
        assert_eq!(
            url("/I/;UID=1/;SECTION=TEXT").cut(raw).unwrap(),
            b"body text\r\n"
        );
        assert_eq!(
            url("/I/;UID=1/;SECTION=TEXT/;PARTIAL=5.4")
                .cut(raw)
                .unwrap(),
            b"text"
        );
        assert_eq!(url("/I/;UID=1/;PARTIAL=100000.1").cut(raw).unwrap(), b"");
        assert_eq!(url("/I/;UID=1/;SECTION=2").cut(raw), None);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    /// Mutated URLs never panic, and a URL that parses cuts any message safely.
    #[test]
    fn mutated_urls_never_panic() {
        let seeds = [
            "/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2.HEADER.FIELDS%20(A%20B)/;PARTIAL=3.9",
            "imap://bob;AUTH=*@h.example:143/a%2Fb/;UID=4294967295/;SECTION=TEXT",
        ];
        let pieces = [
            "/", ";", "=", "%", "%4", ".", "0", "9", "UID", "SECTION", "PARTIAL", "@", "\u{e9}", "",
        ];
        let message =
            b"A: b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x--\r\n";
        let mut st = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..50_000 {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let mut s: Vec<char> = seeds[i % 2].chars().collect();
            let at = (st % (s.len() as u64 + 1)) as usize;
            let piece = pieces[((st >> 20) % pieces.len() as u64) as usize];
            match (st >> 40) % 3 {
                0 => {
                    s.splice(at..at, piece.chars());
                }
                1 if at < s.len() => {
                    s.remove(at);
                }
                _ => s.truncate(at),
            }
            let text: String = s.into_iter().collect();
            if let Ok(u) = MessageUrl::parse(&text) {
                assert!(u.uid > 0 && !u.mailbox.is_empty(), "{text}");
                let _ = u.cut(message);
            }
        }
    }
}
