//! POP3 command lines (RFC 1939 3, RFC 2449 3): a keyword of up to four letters,
//! case-insensitive, and arguments separated by single spaces.

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(String),
    /// `PASS password`: the rest of the line, spaces included (as most clients send).
    Pass(String),
    /// `QUIT`
    Quit,
    /// `STAT`
    Stat,
    /// `LIST [n]`
    List(Option<u32>),
    /// `RETR n`
    Retr(u32),
    /// `DELE n`
    Dele(u32),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP n lines`
    Top(u32, u32),
    /// `UIDL [n]`
    Uidl(Option<u32>),
    /// `CAPA`
    Capa,
    /// `STLS`
    Stls,
    /// `AUTH` alone (the mechanism list older clients ask for), or `AUTH mechanism
    /// [initial-response]`.
    Auth(Option<(String, Option<String>)>),
    /// `UTF8` (RFC 6856)
    Utf8,
    /// `APOP`, which is not offered.
    Apop,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No such command.
    #[error("Unknown command")]
    Unknown,
    /// A known command with bad arguments.
    #[error("{0}")]
    Syntax(&'static str),
}

/// The longest argument accepted (RFC 2449: 40 octets, but user names, passwords and
/// SASL initial responses are longer in practice).
const MAX_ARG: usize = tern_net::sasl::MAX_RESPONSE + 64;

/// Parses one line (without its line ending). Never panics, whatever the bytes.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("Not UTF-8"))?;
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, Some(r)),
        None => (line, None),
    };
    if verb.len() > 4 || !verb.bytes().all(|b| b.is_ascii_alphanumeric()) || verb.is_empty() {
        return Err(ParseError::Unknown);
    }
    if rest.is_some_and(|r| r.len() > MAX_ARG) {
        return Err(ParseError::Syntax("Argument too long"));
    }
    let args: Vec<&str> = rest.map_or(Vec::new(), |r| r.split(' ').collect());
    let none = |c: Command| {
        if rest.is_some() {
            Err(ParseError::Syntax("No arguments allowed"))
        } else {
            Ok(c)
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "USER" => match rest {
            Some(r) if !r.is_empty() => Ok(Command::User(r.to_owned())),
            _ => Err(ParseError::Syntax("USER needs a name")),
        },
        "PASS" => match rest {
            Some(r) if !r.is_empty() => Ok(Command::Pass(r.to_owned())),
            _ => Err(ParseError::Syntax("PASS needs a password")),
        },
        "QUIT" => none(Command::Quit),
        "STAT" => none(Command::Stat),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "CAPA" => none(Command::Capa),
        "STLS" => none(Command::Stls),
        "UTF8" => none(Command::Utf8),
        "APOP" => Ok(Command::Apop),
        "LIST" => optional_number(&args).map(Command::List),
        "UIDL" => optional_number(&args).map(Command::Uidl),
        "RETR" => one_number(&args).map(Command::Retr),
        "DELE" => one_number(&args).map(Command::Dele),
        "TOP" => match args.as_slice() {
            [n, k] => Ok(Command::Top(number(n)?, lines(k)?)),
            _ => Err(ParseError::Syntax(
                "TOP needs a message number and a line count",
            )),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth(None)),
            [m] if !m.is_empty() => Ok(Command::Auth(Some((m.to_ascii_uppercase(), None)))),
            [m, ir] if !m.is_empty() && !ir.is_empty() => Ok(Command::Auth(Some((
                m.to_ascii_uppercase(),
                Some((*ir).to_owned()),
            )))),
            _ => Err(ParseError::Syntax("AUTH needs a mechanism")),
        },
        _ => Err(ParseError::Unknown),
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(ParseError::Syntax("Too many arguments")),
    }
}

fn one_number(args: &[&str]) -> Result<u32, ParseError> {
    match args {
        [n] => number(n),
        _ => Err(ParseError::Syntax("Needs one message number")),
    }
}

/// A message number: decimal digits only, 1 or more (numbers beyond the maildrop are
/// refused by the session, with the same text as a deleted one).
fn number(s: &str) -> Result<u32, ParseError> {
    let n = digits(s).ok_or(ParseError::Syntax("Invalid message number"))?;
    if n == 0 {
        return Err(ParseError::Syntax("Invalid message number"));
    }
    Ok(n)
}

/// TOP's line count: any non-negative number; beyond u32 means "all of them".
fn lines(s: &str) -> Result<u32, ParseError> {
    if !s.is_empty() && s.len() > 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(u32::MAX);
    }
    digits(s).ok_or(ParseError::Syntax("Invalid line count"))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively() {
        assert_eq!(parse(b"user alice"), Ok(Command::User("alice".into())));
        assert_eq!(
            parse(b"PASS a secret with spaces"),
            Ok(Command::Pass("a secret with spaces".into()))
        );
        assert_eq!(parse(b"StAt"), Ok(Command::Stat));
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(parse(b"TOP 1 99999999999"), Ok(Command::Top(1, u32::MAX)));
        assert_eq!(parse(b"UIDL 2"), Ok(Command::Uidl(Some(2))));
        assert_eq!(parse(b"AUTH"), Ok(Command::Auth(None)));
        assert_eq!(
            parse(b"AUTH plain AGEAYg=="),
            Ok(Command::Auth(Some((
                "PLAIN".into(),
                Some("AGEAYg==".into())
            ))))
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            &b"RETR"[..],
            b"RETR 0",
            b"RETR -1",
            b"RETR +1",
            b"RETR 1 2",
            b"RETR 99999999999",
            b"LIST a",
            b"TOP 1",
            b"TOP 1 -1",
            b"STAT 1",
            b"USER",
            b"DELE  1",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Syntax(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for unknown in [&b""[..], b"HELO", b"XYZZY", b" STAT", b"ST\0T"] {
            assert_eq!(parse(unknown), Err(ParseError::Unknown));
        }
    }

    /// Random bytes, and mutations of real commands, never panic the parser.
    #[test]
    fn random_input_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: [&[u8]; 6] = [
            b"TOP 1 10",
            b"LIST 4",
            b"AUTH PLAIN AGFsaWNlAHB3",
            b"PASS pw",
            b"UIDL",
            b"RETR 4294967295",
        ];
        let mut parsed = 0;
        for i in 0..200_000 {
            let mut line: Vec<u8> = if i % 2 == 0 {
                let len = (next() % 40) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                seeds[(next() % seeds.len() as u64) as usize].to_vec()
            };
            for _ in 0..(next() % 4) {
                if line.is_empty() {
                    break;
                }
                let at = (next() % line.len() as u64) as usize;
                line[at] = next() as u8;
            }
            if parse(&line).is_ok() {
                parsed += 1;
            }
        }
        assert!(parsed > 0, "mutations of valid commands sometimes parse");
    }
}
