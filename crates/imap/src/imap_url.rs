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
    /// `;EXPIRE=` (RFC 4467), Unix seconds: the URL authorises nothing after it.
    pub expire: Option<i64>,
    /// `;URLAUTH=...` (RFC 4467), when the URL carries one.
    pub auth: Option<UrlAuth>,
}

/// The authorisation part of a URLAUTH URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    /// Who may fetch it.
    pub access: Access,
    /// The URL up to and including `;URLAUTH=access`: what the token signs.
    pub rump: String,
    /// `:mechanism:token`, absent from a rump given to GENURLAUTH.
    pub verifier: Option<(String, String)>,
}

/// RFC 4467 3: who a URLAUTH URL lets fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `anonymous`: anyone.
    Anonymous,
    /// `authuser`: any authenticated user of this server.
    AuthUser,
    /// `user+name`: that user.
    User(String),
    /// `submit+name`: a submission server acting for that user.
    Submit(String),
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
        // `[;EXPIRE=date-time];URLAUTH=access[:mech:token]` closes the last segment.
        let (url, auth) = match find_ci(url, ";URLAUTH=") {
            Some(at) => {
                let tail = &url[at + ";URLAUTH=".len()..];
                let (access, verifier) = match tail.split_once(':') {
                    Some((access, rest)) => {
                        let (mech, token) =
                            rest.split_once(':').ok_or(BadUrl("bad URLAUTH verifier"))?;
                        let token_ok =
                            token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit());
                        if mech.is_empty() || !token_ok {
                            return Err(BadUrl("bad URLAUTH verifier"));
                        }
                        (access, Some((mech.to_ascii_uppercase(), token.to_owned())))
                    }
                    None => (tail, None),
                };
                let rump = url[..url.len() - tail.len() + access.len()].to_owned();
                let auth = UrlAuth {
                    access: Access::parse(access)?,
                    rump,
                    verifier,
                };
                (&url[..at], Some(auth))
            }
            None => (url, None),
        };
        let (url, expire) = match find_ci(url, ";EXPIRE=") {
            Some(at) if auth.is_some() => {
                let when = rfc3339(&url[at + ";EXPIRE=".len()..])?;
                (&url[..at], Some(when))
            }
            Some(_) => return Err(BadUrl("EXPIRE without URLAUTH")),
            None => (url, None),
        };
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
            expire,
            auth,
        })
    }

    /// The bytes this URL names, cut from the whole message `raw`, or `None` when the
    /// section does not exist in it. A PARTIAL beyond the end gives no bytes.
    pub fn cut(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let bytes = match &self.section {
            Some(s) => crate::mime::section(raw, s)?,
            None => raw.to_vec(),
        };
        Some(self.window(bytes))
    }

    /// The MIME part numbers the URL names (empty: the whole message), or `None` when
    /// its section is a HEADER, TEXT or MIME one, not a part.
    pub fn part(&self) -> Option<&[u32]> {
        match &self.section {
            None => Some(&[]),
            Some(s) if s.text.is_none() => Some(&s.part),
            Some(_) => None,
        }
    }

    /// `bytes` cut to the URL's `;PARTIAL=` (all of them without one).
    pub fn window(&self, bytes: Vec<u8>) -> Vec<u8> {
        match self.partial {
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
        }
    }
}

impl Access {
    fn parse(s: &str) -> Result<Access, BadUrl> {
        let lower = s.to_ascii_lowercase();
        let name = |prefix: &str| -> Result<String, BadUrl> {
            let n = decode(&s[prefix.len()..])?;
            if n.is_empty() {
                return Err(BadUrl("URLAUTH access names no user"));
            }
            Ok(n)
        };
        Ok(match lower.as_str() {
            "anonymous" => Access::Anonymous,
            "authuser" => Access::AuthUser,
            _ if lower.starts_with("user+") => Access::User(name("user+")?),
            _ if lower.starts_with("submit+") => Access::Submit(name("submit+")?),
            _ => return Err(BadUrl("unknown URLAUTH access")),
        })
    }
}

/// Where `needle` (ASCII) starts in `s`, ignoring case.
fn find_ci(s: &str, needle: &str) -> Option<usize> {
    s.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// An RFC 3339 date-time (`2026-12-05T10:00:00Z`, `...T10:00:00.5+01:00`) in Unix
/// seconds.
fn rfc3339(s: &str) -> Result<i64, BadUrl> {
    let bad = || BadUrl("bad EXPIRE date-time");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, BadUrl> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let d = |i: usize| i64::from(digits[i] - b'0');
            let minutes = (d(0) * 10 + d(1)) * 60 + d(2) * 10 + d(3);
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err(bad()),
    };
    let days = tern_message::date::days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60)
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
    u32::try_from(nz_u64(v)?).map_err(|_| BadUrl("bad number in URL"))
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
            "/INBOX/;UID=1;URLAUTH=anonymous:internal:0123",
            "/INBOX/;UID=1;URLAUTH=nobody",
            "/INBOX/;UID=1;URLAUTH=user+",
            "/INBOX/;UID=1;EXPIRE=2020-01-01;URLAUTH=anonymous",
            "/INBOX/;UID=1;EXPIRE=2020-01-01T00:00:00Z",
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
    fn urlauth_rumps_and_verifiers() {
        let token = "0123456789abcdef0123456789abcdef";
        let u = MessageUrl::parse(&format!(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:{token}"
        ))
        .unwrap();
        let auth = u.auth.unwrap();
        assert_eq!(auth.access, Access::Submit("fred".into()));
        assert_eq!(
            auth.rump,
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
        );
        assert_eq!(auth.verifier, Some(("INTERNAL".into(), token.into())));
        assert_eq!(u.section.unwrap().part, vec![1, 2]);
        let u = MessageUrl::parse(
            "imap://joe@h/INBOX/;UID=3;EXPIRE=2026-12-05T10:00:00+01:00;URLAUTH=authuser",
        )
        .unwrap();
        assert_eq!(u.uid, 3);
        assert_eq!(u.expire, Some(1_796_461_200));
        assert_eq!(u.auth.unwrap().verifier, None);
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
