//! NNTP command lines (RFC 3977, with the RFC 2980 spellings readers still send:
//! XOVER, XHDR, LIST without a keyword) parsed into [`Command`]s. Pure and bounded:
//! the line is at most what the session read, every argument is checked here, and no
//! input makes it panic (a unit test feeds it random bytes).

use std::fmt;

/// The largest article number (RFC 3977 6: 1 to 2,147,483,647).
pub const MAX_ARTICLE: u32 = i32::MAX as u32;

/// An article named by number or by Message-ID (`<...>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArticleRef {
    /// No argument: the current article.
    Current,
    /// An article number in the selected group.
    Number(u32),
    /// A Message-ID, angle brackets included.
    MessageId(String),
}

/// A range of article numbers: `n`, `n-` or `n-m` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First number.
    pub low: u32,
    /// Last number; `None` for "to the end".
    pub high: Option<u32>,
}

/// What OVER and HDR are asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// No argument: the current article.
    Current,
    /// A range in the selected group.
    Range(Range),
    /// One article by Message-ID.
    MessageId(String),
}

/// The LIST variants (RFC 3977 7.6, RFC 6048).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// `LIST` or `LIST ACTIVE [wildmat]`.
    Active(Option<String>),
    /// `LIST ACTIVE.TIMES [wildmat]`.
    ActiveTimes(Option<String>),
    /// `LIST NEWSGROUPS [wildmat]`.
    Newsgroups(Option<String>),
    /// `LIST OVERVIEW.FMT`.
    OverviewFmt,
    /// `LIST HEADERS [MSGID|RANGE]`.
    Headers,
    /// `LIST DISTRIB.PATS`.
    DistribPats,
}

/// Which part of an article a retrieval command sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrieve {
    /// ARTICLE (220).
    Article,
    /// HEAD (221).
    Head,
    /// BODY (222).
    Body,
    /// STAT (223).
    Stat,
}

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPABILITIES [keyword]
    Capabilities,
    /// MODE READER
    ModeReader,
    /// QUIT
    Quit,
    /// HELP
    Help,
    /// DATE
    Date,
    /// GROUP name
    Group(String),
    /// LISTGROUP [name [range]]
    ListGroup(Option<String>, Option<Range>),
    /// LAST
    Last,
    /// NEXT
    Next,
    /// ARTICLE, HEAD, BODY, STAT
    Retrieve(Retrieve, ArticleRef),
    /// LIST ...
    List(ListKind),
    /// NEWGROUPS date time [GMT]: seconds since the epoch (UTC).
    NewGroups(i64),
    /// NEWNEWS wildmat date time [GMT]
    NewNews(String, i64),
    /// OVER / XOVER
    Over(Selection),
    /// HDR / XHDR field [selection]; `true` for XHDR (answered with 221).
    Hdr(String, Selection, bool),
    /// POST
    Post,
    /// IHAVE message-id
    Ihave(String),
    /// AUTHINFO USER name
    AuthUser(String),
    /// AUTHINFO PASS password
    AuthPass(String),
    /// AUTHINFO SASL mechanism [initial-response]
    AuthSasl(String, Option<String>),
    /// STARTTLS
    StartTls,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command this server knows (`500`).
    Unknown,
    /// A known command with bad arguments (`501`).
    Syntax(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown => f.write_str("Unknown command"),
            ParseError::Syntax(why) => write!(f, "Syntax error: {why}"),
        }
    }
}

/// Parses one command line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("not UTF-8"))?;
    let line = line.trim_end_matches(['\r', '\n']);
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let Some(verb) = words.next() else {
        return Err(ParseError::Unknown);
    };
    let args: Vec<&str> = words.collect();
    let verb = verb.to_ascii_uppercase();
    let n = args.len();
    let at_most = |max: usize| {
        if n > max {
            Err(ParseError::Syntax("too many arguments"))
        } else {
            Ok(())
        }
    };
    Ok(match verb.as_str() {
        "CAPABILITIES" => {
            at_most(1)?;
            Command::Capabilities
        }
        "MODE" => match args.as_slice() {
            [m] if m.eq_ignore_ascii_case("READER") => Command::ModeReader,
            _ => return Err(ParseError::Syntax("only MODE READER is offered")),
        },
        "QUIT" => {
            at_most(0)?;
            Command::Quit
        }
        "HELP" => {
            at_most(0)?;
            Command::Help
        }
        "DATE" => {
            at_most(0)?;
            Command::Date
        }
        "GROUP" => match args.as_slice() {
            [g] => Command::Group(group_name(g)?),
            _ => return Err(ParseError::Syntax("GROUP needs a newsgroup name")),
        },
        "LISTGROUP" => match args.as_slice() {
            [] => Command::ListGroup(None, None),
            [g] => Command::ListGroup(Some(group_name(g)?), None),
            [g, r] => Command::ListGroup(Some(group_name(g)?), Some(range(r)?)),
            _ => return Err(ParseError::Syntax("too many arguments")),
        },
        "LAST" => {
            at_most(0)?;
            Command::Last
        }
        "NEXT" => {
            at_most(0)?;
            Command::Next
        }
        "ARTICLE" | "HEAD" | "BODY" | "STAT" => {
            let kind = match verb.as_str() {
                "ARTICLE" => Retrieve::Article,
                "HEAD" => Retrieve::Head,
                "BODY" => Retrieve::Body,
                _ => Retrieve::Stat,
            };
            let target = match args.as_slice() {
                [] => ArticleRef::Current,
                [a] if a.starts_with('<') => ArticleRef::MessageId(message_id(a)?),
                [a] => ArticleRef::Number(number(a)?),
                _ => return Err(ParseError::Syntax("too many arguments")),
            };
            Command::Retrieve(kind, target)
        }
        "LIST" => Command::List(list(&args)?),
        "NEWGROUPS" => match args.as_slice() {
            [d, t] | [d, t, _] => {
                gmt(args.get(2))?;
                Command::NewGroups(date_time(d, t)?)
            }
            _ => return Err(ParseError::Syntax("NEWGROUPS date time [GMT]")),
        },
        "NEWNEWS" => match args.as_slice() {
            [w, d, t] | [w, d, t, _] => {
                gmt(args.get(3))?;
                Command::NewNews(wildmat_arg(w)?, date_time(d, t)?)
            }
            _ => return Err(ParseError::Syntax("NEWNEWS wildmat date time [GMT]")),
        },
        "OVER" | "XOVER" => match args.as_slice() {
            [] => Command::Over(Selection::Current),
            [a] => Command::Over(selection(a)?),
            _ => return Err(ParseError::Syntax("too many arguments")),
        },
        "HDR" | "XHDR" => {
            let xhdr = verb == "XHDR";
            match args.as_slice() {
                [f] => Command::Hdr(field(f)?, Selection::Current, xhdr),
                [f, a] => Command::Hdr(field(f)?, selection(a)?, xhdr),
                _ => return Err(ParseError::Syntax("HDR field [range|message-id]")),
            }
        }
        "POST" => {
            at_most(0)?;
            Command::Post
        }
        "IHAVE" => match args.as_slice() {
            [id] => Command::Ihave(message_id(id)?),
            _ => return Err(ParseError::Syntax("IHAVE message-id")),
        },
        "AUTHINFO" => authinfo(line, &args)?,
        "STARTTLS" => {
            at_most(0)?;
            Command::StartTls
        }
        _ => return Err(ParseError::Unknown),
    })
}

fn authinfo(line: &str, args: &[&str]) -> Result<Command, ParseError> {
    let Some(sub) = args.first() else {
        return Err(ParseError::Syntax("AUTHINFO USER|PASS|SASL"));
    };
    // The rest of the line after `AUTHINFO PASS `, as typed: a password may hold
    // spaces (RFC 4643 2.3.2 allows any printable text).
    let rest = |keyword: &str| -> Option<String> {
        let upper = line.to_ascii_uppercase();
        let at = upper.find(keyword)? + keyword.len();
        let value = line.get(at..)?.trim_start_matches([' ', '\t']);
        (!value.is_empty()).then(|| value.to_owned())
    };
    match sub.to_ascii_uppercase().as_str() {
        "USER" => rest(" USER")
            .filter(|_| args.len() >= 2)
            .map(Command::AuthUser)
            .ok_or(ParseError::Syntax("AUTHINFO USER name")),
        "PASS" => rest(" PASS")
            .filter(|_| args.len() >= 2)
            .map(Command::AuthPass)
            .ok_or(ParseError::Syntax("AUTHINFO PASS password")),
        "SASL" => match args {
            [_, m] => Ok(Command::AuthSasl(m.to_ascii_uppercase(), None)),
            [_, m, r] => Ok(Command::AuthSasl(
                m.to_ascii_uppercase(),
                Some((*r).to_owned()),
            )),
            _ => Err(ParseError::Syntax(
                "AUTHINFO SASL mechanism [initial-response]",
            )),
        },
        _ => Err(ParseError::Syntax("AUTHINFO USER|PASS|SASL")),
    }
}

fn list(args: &[&str]) -> Result<ListKind, ParseError> {
    let Some(keyword) = args.first() else {
        return Ok(ListKind::Active(None));
    };
    let pattern = match args.get(1) {
        Some(w) => Some(wildmat_arg(w)?),
        None => None,
    };
    if args.len() > 2 {
        return Err(ParseError::Syntax("too many arguments"));
    }
    Ok(match keyword.to_ascii_uppercase().as_str() {
        "ACTIVE" => ListKind::Active(pattern),
        "ACTIVE.TIMES" => ListKind::ActiveTimes(pattern),
        "NEWSGROUPS" => ListKind::Newsgroups(pattern),
        "OVERVIEW.FMT" if pattern.is_none() => ListKind::OverviewFmt,
        "HEADERS" => match args.get(1) {
            None => ListKind::Headers,
            Some(a) if a.eq_ignore_ascii_case("MSGID") || a.eq_ignore_ascii_case("RANGE") => {
                ListKind::Headers
            }
            Some(_) => return Err(ParseError::Syntax("LIST HEADERS [MSGID|RANGE]")),
        },
        "DISTRIB.PATS" if pattern.is_none() => ListKind::DistribPats,
        _ => return Err(ParseError::Syntax("unknown LIST keyword")),
    })
}

/// A newsgroup name as RFC 3977 4.1 allows it: printable ASCII without the wildmat
/// specials, at most 497 octets.
fn group_name(g: &str) -> Result<String, ParseError> {
    let fine = !g.is_empty()
        && g.len() <= 497
        && g.bytes()
            .all(|b| b.is_ascii_graphic() && !b"*?[]\\!,".contains(&b));
    if fine {
        Ok(g.to_owned())
    } else {
        Err(ParseError::Syntax("bad newsgroup name"))
    }
}

fn wildmat_arg(w: &str) -> Result<String, ParseError> {
    if w.len() <= 497 && w.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(w.to_owned())
    } else {
        Err(ParseError::Syntax("bad wildmat"))
    }
}

fn field(f: &str) -> Result<String, ParseError> {
    let fine = !f.is_empty() && f.len() <= 100 && f.bytes().all(|b| b.is_ascii_graphic());
    if fine {
        Ok(f.to_owned())
    } else {
        Err(ParseError::Syntax("bad header field name"))
    }
}

fn message_id(a: &str) -> Result<String, ParseError> {
    tern_store::normalize_message_id(a)
        .filter(|_| a.starts_with('<') && a.ends_with('>'))
        .ok_or(ParseError::Syntax("bad message-id"))
}

/// An article number: 1 to 16 digits (RFC 3977 9.8), within [`MAX_ARTICLE`]; larger
/// numbers name no article but are not a syntax error, so they map to the maximum + 1
/// where a range needs them.
fn number(a: &str) -> Result<u32, ParseError> {
    if a.is_empty() || a.len() > 16 || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("bad article number"));
    }
    let n: u64 = a
        .parse()
        .map_err(|_| ParseError::Syntax("bad article number"))?;
    Ok(n.min(MAX_ARTICLE as u64 + 1) as u32)
}

fn range(a: &str) -> Result<Range, ParseError> {
    Ok(match a.split_once('-') {
        None => {
            let n = number(a)?;
            Range {
                low: n,
                high: Some(n),
            }
        }
        Some((l, "")) => Range {
            low: number(l)?,
            high: None,
        },
        Some((l, h)) => Range {
            low: number(l)?,
            high: Some(number(h)?),
        },
    })
}

fn selection(a: &str) -> Result<Selection, ParseError> {
    if a.starts_with('<') {
        Ok(Selection::MessageId(message_id(a)?))
    } else {
        Ok(Selection::Range(range(a)?))
    }
}

fn gmt(word: Option<&&str>) -> Result<(), ParseError> {
    match word {
        None => Ok(()),
        Some(w) if w.eq_ignore_ascii_case("GMT") => Ok(()),
        Some(_) => Err(ParseError::Syntax("expected GMT")),
    }
}

/// `yymmdd` or `yyyymmdd` and `hhmmss` (RFC 3977 7.3.2) as seconds since the epoch, UTC.
fn date_time(d: &str, t: &str) -> Result<i64, ParseError> {
    let bad = ParseError::Syntax("bad date or time");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(d) || !digits(t) || t.len() != 6 || !(d.len() == 6 || d.len() == 8) {
        return Err(bad);
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad.clone());
    let (year, rest) = if d.len() == 8 {
        (num(&d[..4])?, &d[4..])
    } else {
        let yy = num(&d[..2])?;
        let this_year = 1970 + crate::clock::now() / 31_556_952;
        // RFC 3977 7.3.2: this century up to the current year, else the previous one.
        let century = this_year - this_year % 100;
        let year = if yy <= this_year % 100 {
            century + yy
        } else {
            century - 100 + yy
        };
        (year, &d[2..])
    };
    let (month, day) = (num(&rest[..2])?, num(&rest[2..])?);
    let (h, m, s) = (num(&t[..2])?, num(&t[2..4])?, num(&t[4..])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(bad);
    }
    Ok(crate::clock::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively_with_their_arguments() {
        assert_eq!(
            parse(b"group comp.lang.rust"),
            Ok(Command::Group("comp.lang.rust".into()))
        );
        assert_eq!(parse(b"mode reader"), Ok(Command::ModeReader));
        assert_eq!(
            parse(b"ARTICLE <a@b>"),
            Ok(Command::Retrieve(
                Retrieve::Article,
                ArticleRef::MessageId("<a@b>".into())
            ))
        );
        assert_eq!(
            parse(b"stat 12"),
            Ok(Command::Retrieve(Retrieve::Stat, ArticleRef::Number(12)))
        );
        assert_eq!(
            parse(b"XOVER 3-"),
            Ok(Command::Over(Selection::Range(Range {
                low: 3,
                high: None
            })))
        );
        assert_eq!(
            parse(b"XHDR subject 1-5"),
            Ok(Command::Hdr(
                "subject".into(),
                Selection::Range(Range {
                    low: 1,
                    high: Some(5)
                }),
                true
            ))
        );
        assert_eq!(parse(b"LIST"), Ok(Command::List(ListKind::Active(None))));
        assert_eq!(
            parse(b"list active comp.*"),
            Ok(Command::List(ListKind::Active(Some("comp.*".into()))))
        );
        assert_eq!(
            parse(b"AUTHINFO PASS two words"),
            Ok(Command::AuthPass("two words".into()))
        );
        assert_eq!(
            parse(b"NEWGROUPS 20260101 000000 GMT"),
            Ok(Command::NewGroups(1_767_225_600))
        );
        assert_eq!(parse(b"NEWGROUPS 700101 000000"), Ok(Command::NewGroups(0)));
        assert_eq!(
            parse(b"LISTGROUP misc.test 1-"),
            Ok(Command::ListGroup(
                Some("misc.test".into()),
                Some(Range { low: 1, high: None })
            ))
        );
    }

    #[test]
    fn bad_arguments_are_501_and_unknown_verbs_500() {
        assert_eq!(parse(b"FROB"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        for bad in [
            &b"GROUP"[..],
            b"GROUP a b",
            b"ARTICLE x",
            b"ARTICLE <nobrackets",
            b"ARTICLE 12345678901234567",
            b"NEWGROUPS 2026 000000",
            b"NEWGROUPS 20261301 000000",
            b"MODE STREAM",
            b"LIST FOO",
            b"IHAVE",
            b"AUTHINFO USER",
            b"QUIT now",
            b"GROUP a*",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Numbers beyond RFC 3977's limit name no article but are not syntax errors.
        assert_eq!(
            parse(b"ARTICLE 9999999999"),
            Ok(Command::Retrieve(
                Retrieve::Article,
                ArticleRef::Number(MAX_ARTICLE + 1)
            ))
        );
    }

    #[test]
    fn random_input_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let words: [&[u8]; 12] = [
            b"ARTICLE ",
            b"LIST ",
            b"<",
            b">",
            b"-",
            b"1",
            b" ",
            b"AUTHINFO ",
            b"NEWNEWS ",
            b"HDR ",
            b"\xc3",
            b"GMT",
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut line = Vec::with_capacity(len * 4);
            for _ in 0..len {
                let r = next();
                if r % 3 == 0 {
                    line.extend_from_slice(words[(r / 3 % words.len() as u64) as usize]);
                } else {
                    line.push((r >> 8) as u8);
                }
            }
            let _ = parse(&line);
        }
    }
}
