//! Parsing the arguments of MAIL FROM and RCPT TO (RFC 5321 4.1.2, leniently where
//! real clients differ, strictly where a mistake could misdeliver).

/// Longest address accepted (RFC 5321 4.5.3.1.3 allows 256 for a path).
const MAX_PATH: usize = 256;

/// A parsed `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailFrom {
    /// The reverse path without angle brackets; empty for the null sender `<>`.
    pub(crate) reverse_path: String,
    /// The SIZE parameter, when given.
    pub(crate) size: Option<u64>,
}

/// A parsed `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recipient {
    /// The address as given, for replies.
    pub(crate) address: String,
    /// The user (local part before any `+`).
    pub(crate) user: String,
    /// The detail after `+`: the folder to deliver to.
    pub(crate) folder: Option<String>,
}

/// Splits `FROM:<path> params` / `TO:<path> params` into the path and the parameters.
fn path_and_params<'a>(args: &'a str, keyword: &str) -> Result<(&'a str, &'a str), &'static str> {
    let rest = args
        .get(..keyword.len())
        .filter(|k| k.eq_ignore_ascii_case(keyword))
        .map(|_| &args[keyword.len()..])
        .ok_or("syntax: expected a path after the colon")?
        .trim_start();
    let rest = rest
        .strip_prefix('<')
        .ok_or("syntax: path must be in angle brackets")?;
    let end = rest.find('>').ok_or("syntax: missing '>'")?;
    let path = &rest[..end];
    if path.len() > MAX_PATH {
        return Err("path too long");
    }
    if path.chars().any(|c| c.is_control() || c == '<') {
        return Err("syntax: invalid character in path");
    }
    Ok((path, rest[end + 1..].trim()))
}

/// Parses the arguments of `MAIL` (everything after the command word).
pub(crate) fn parse_mail_from(args: &str) -> Result<MailFrom, &'static str> {
    let (path, params) = path_and_params(args, "FROM:")?;
    let mut size = None;
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("SIZE") {
            size = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| "syntax: SIZE must be a number")?,
            );
        } else if key.eq_ignore_ascii_case("BODY") {
            if !value.eq_ignore_ascii_case("7BIT") && !value.eq_ignore_ascii_case("8BITMIME") {
                return Err("unsupported BODY type");
            }
        } else {
            return Err("unsupported MAIL parameter");
        }
    }
    Ok(MailFrom {
        reverse_path: strip_source_route(path).to_owned(),
        size,
    })
}

/// Parses the arguments of `RCPT` (everything after the command word).
pub(crate) fn parse_rcpt_to(args: &str) -> Result<Recipient, &'static str> {
    let (path, params) = path_and_params(args, "TO:")?;
    if !params.is_empty() {
        return Err("unsupported RCPT parameter");
    }
    let address = strip_source_route(path);
    let local = match address.rfind('@') {
        Some(at) => &address[..at],
        None => address,
    };
    let local = local
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(local);
    if local.is_empty() {
        return Err("empty local part");
    }
    let (user, folder) = match local.split_once('+') {
        Some((user, folder)) if !folder.is_empty() => (user, Some(folder.to_owned())),
        Some((user, _)) => (user, None),
        None => (local, None),
    };
    Ok(Recipient {
        address: address.to_owned(),
        user: user.to_owned(),
        folder,
    })
}

/// Drops an RFC 5321 source route (`@a,@b:user@c` becomes `user@c`).
fn strip_source_route(path: &str) -> &str {
    if path.starts_with('@') {
        path.split_once(':').map_or(path, |(_, rest)| rest)
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_from_with_params() {
        let m = parse_mail_from("FROM:<a@b.c> SIZE=1234 BODY=8BITMIME").unwrap();
        assert_eq!(
            m,
            MailFrom {
                reverse_path: "a@b.c".into(),
                size: Some(1234)
            }
        );
        assert_eq!(parse_mail_from("from: <>").unwrap().reverse_path, "");
        assert!(parse_mail_from("FROM:a@b").is_err());
        assert!(parse_mail_from("FROM:<a@b> SIZE=x").is_err());
        assert!(parse_mail_from("FROM:<a@b> FOO=1").is_err());
        assert!(parse_mail_from("TO:<a@b>").is_err());
    }

    #[test]
    fn rcpt_detail_and_quoting() {
        let r = parse_rcpt_to("TO:<bench+Lists/rust@localhost>").unwrap();
        assert_eq!(
            (r.user.as_str(), r.folder.as_deref()),
            ("bench", Some("Lists/rust"))
        );
        let r = parse_rcpt_to("to:<\"alice\"@x>").unwrap();
        assert_eq!((r.user.as_str(), r.folder), ("alice", None));
        let r = parse_rcpt_to("TO:<@relay:bob@x>").unwrap();
        assert_eq!(r.user, "bob");
        assert!(parse_rcpt_to("TO:<>").is_err());
        assert!(parse_rcpt_to("TO:<a\u{1}b@x>").is_err());
        assert!(parse_rcpt_to(&format!("TO:<{}@x>", "a".repeat(300))).is_err());
    }
}
