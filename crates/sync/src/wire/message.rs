//! Commands and responses: [`parse_command`], [`parse_response`] and their types.

use super::parse::{Cursor, End, ParseError};
use super::reader::Line;
use super::token::{is_atom_char, is_tag_char, Token};
use super::WireError;

/// A command: `tag SP verb *(SP token)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The tag: one or more atom characters, never `+`.
    pub tag: String,
    /// The verb, upper-cased.
    pub verb: String,
    /// The arguments.
    pub args: Vec<Token>,
}

/// The status of a tagged response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`: the command succeeded.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: the command was not understood or not allowed.
    Bad,
}

/// A response code: `[CODE args]`, the code upper-cased.
pub type Code = (String, Vec<Token>);

/// A response, as read by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `* KEYWORD token...` (KEYWORD upper-cased). `* OK/NO/BAD/BYE/PREAUTH` are
    /// [`Response::UntaggedStatus`] instead.
    Untagged {
        /// The keyword, upper-cased.
        keyword: String,
        /// The tokens after it.
        args: Vec<Token>,
    },
    /// `* OK [CODE args] text`, `* BYE text` and the like.
    UntaggedStatus {
        /// `OK`, `NO`, `BAD`, `BYE` or `PREAUTH`, upper-cased.
        keyword: String,
        /// The response code, its name upper-cased.
        code: Option<Code>,
        /// The rest of the line (invalid UTF-8 replaced), possibly empty.
        text: String,
    },
    /// `+ text`: a continuation request.
    Continue(String),
    /// `tag OK/NO/BAD [CODE args] text`.
    Tagged {
        /// The tag of the command answered.
        tag: String,
        /// Its status.
        status: Status,
        /// The response code, its name upper-cased.
        code: Option<Code>,
        /// The rest of the line (invalid UTF-8 replaced), possibly empty.
        text: String,
    },
}

/// Parses a command. On success every token of the line is in `args`; on failure the
/// error carries the tag when the line began with one (answer `tag BAD`, or
/// `tag BAD [TOOBIG]` for [`WireError::TooBig`]). Literals are copied out of `line`;
/// [`Line::into_command`] moves them instead.
pub fn parse_command(line: &Line) -> Result<Command, WireError> {
    command(Cursor::new(line))
}

/// Parses a response. Errors carry the tag of a tagged response.
/// Literals are copied out of `line`; [`Line::into_response`] moves them instead.
pub fn parse_response(line: &Line) -> Result<Response, WireError> {
    response(Cursor::new(line))
}

impl Line {
    /// Like [`parse_command`], moving the literals instead of copying them.
    pub fn into_command(mut self) -> Result<Command, WireError> {
        let literals = std::mem::take(&mut self.literals);
        command(Cursor::owned(&self, literals))
    }

    /// Like [`parse_response`], moving the literals instead of copying them.
    pub fn into_response(mut self) -> Result<Response, WireError> {
        let literals = std::mem::take(&mut self.literals);
        response(Cursor::owned(&self, literals))
    }
}

fn with_tag(tag: Option<&str>) -> impl Fn(ParseError) -> WireError + '_ {
    move |e| match e {
        ParseError::Syntax(reason) => WireError::syntax(tag.map(str::to_owned), reason),
        ParseError::TooBig => WireError::TooBig {
            tag: tag.map(str::to_owned),
        },
    }
}

/// An ASCII run as a `String`.
fn ascii(run: &[u8]) -> String {
    String::from_utf8_lossy(run).into_owned()
}

/// The tag that starts a command or a tagged response, and the spaces after it.
fn take_tag(c: &mut Cursor<'_>) -> Result<String, WireError> {
    let tag = ascii(c.take_while(is_tag_char));
    if tag.is_empty() {
        return Err(WireError::syntax(None, "missing tag"));
    }
    if !c.spaces() && !c.at_end() {
        return Err(WireError::syntax(None, "bad character in the tag"));
    }
    Ok(tag)
}

fn command(mut c: Cursor<'_>) -> Result<Command, WireError> {
    let tag = take_tag(&mut c)?;
    let err = with_tag(Some(&tag));
    let verb = c.take_while(is_atom_char).to_ascii_uppercase();
    if verb.is_empty() {
        return Err(err(syntax("missing verb")));
    }
    let args = c.tokens(End::Line, true).map_err(&err)?;
    Ok(Command {
        verb: ascii(&verb),
        args,
        tag: tag.clone(),
    })
}

fn response(mut c: Cursor<'_>) -> Result<Response, WireError> {
    if c.eat(b'+') {
        let err = with_tag(None);
        if !c.at_end() && !c.eat(b' ') {
            return Err(err(syntax("expected a space after +")));
        }
        return c.rest_of_line().map(Response::Continue).map_err(err);
    }
    if c.eat(b'*') {
        let err = with_tag(None);
        if !c.spaces() {
            return Err(err(syntax("expected a space after *")));
        }
        let keyword = ascii(&c.take_while(is_atom_char).to_ascii_uppercase());
        return match keyword.as_str() {
            "" => Err(err(syntax("missing keyword"))),
            "OK" | "NO" | "BAD" | "BYE" | "PREAUTH" => {
                let (code, text) = status_tail(&mut c).map_err(err)?;
                Ok(Response::UntaggedStatus {
                    keyword,
                    code,
                    text,
                })
            }
            _ => {
                let args = c.tokens(End::Line, true).map_err(err)?;
                Ok(Response::Untagged { keyword, args })
            }
        };
    }
    let tag = take_tag(&mut c)?;
    let err = with_tag(Some(&tag));
    let status = match c.take_while(is_atom_char).to_ascii_uppercase().as_slice() {
        b"OK" => Status::Ok,
        b"NO" => Status::No,
        b"BAD" => Status::Bad,
        _ => return Err(err(syntax("expected OK, NO or BAD"))),
    };
    let (code, text) = status_tail(&mut c).map_err(&err)?;
    Ok(Response::Tagged {
        tag: tag.clone(),
        status,
        code,
        text,
    })
}

/// After a status keyword: `[SP ["[" code *(SP token) "]" [SP]] text]`.
fn status_tail(c: &mut Cursor<'_>) -> Result<(Option<Code>, String), ParseError> {
    if c.at_end() {
        return Ok((None, String::new()));
    }
    if !c.eat(b' ') {
        return Err(syntax("expected a space after the status"));
    }
    let mut code = None;
    if c.eat(b'[') {
        let name = ascii(&c.take_while(is_atom_char).to_ascii_uppercase());
        if name.is_empty() {
            return Err(syntax("missing response code"));
        }
        let args = c.tokens(End::Bracket, true)?;
        code = Some((name, args));
        if !c.at_end() && !c.eat(b' ') {
            return Err(syntax("expected a space after ]"));
        }
    }
    Ok((code, c.rest_of_line()?))
}

fn syntax(reason: &str) -> ParseError {
    super::parse::syntax(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Limits, LineReader};

    async fn line(bytes: &[u8]) -> Line {
        let mut r = LineReader::new(bytes, Limits::default());
        match r.read_line(&mut |_| true).await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    async fn cmd(bytes: &[u8]) -> Result<Command, WireError> {
        parse_command(&line(bytes).await)
    }

    async fn resp(bytes: &[u8]) -> Result<Response, WireError> {
        let l = line(bytes).await;
        let borrowed = parse_response(&l);
        let owned = l.into_response();
        assert_eq!(format!("{borrowed:?}"), format!("{owned:?}"));
        borrowed
    }

    fn atom(s: &str) -> Token {
        Token::Atom(s.into())
    }

    #[tokio::test]
    async fn commands() {
        let c = cmd(b"A1 mailboxes fred ALL\r\n").await.ok();
        assert_eq!(
            c,
            Some(Command {
                tag: "A1".into(),
                verb: "MAILBOXES".into(),
                args: vec![atom("fred"), atom("ALL")]
            })
        );
        let c = cmd(b"t.2 update  \"my box\" (\\Seen 12) {3}\r\nabc NIL\r\n")
            .await
            .ok();
        let args = vec![
            Token::Str("my box".into()),
            Token::List(vec![atom("\\Seen"), Token::Number(12)]),
            Token::Literal(b"abc".to_vec()),
            Token::Nil,
        ];
        assert_eq!(
            c.map(|c| (c.tag, c.verb, c.args)),
            Some(("t.2".into(), "UPDATE".into(), args))
        );
        let c = line(b"a NOOP {2+}\r\nxy\r\n").await.into_command().ok();
        assert_eq!(
            c.map(|c| c.args),
            Some(vec![Token::Literal(b"xy".to_vec())])
        );
        assert_eq!(cmd(b"a NOOP \r\n").await.ok().map(|c| c.args), Some(vec![]));
    }

    #[tokio::test]
    async fn command_errors_carry_the_tag() {
        for (input, tag) in [
            (&b"+ NOOP\r\n"[..], None),
            (b"a+b NOOP\r\n", None),
            (b" a NOOP\r\n", None),
            (b"a\r\n", Some("a")),
            (b"a (NOOP\r\n", Some("a")),
            (b"a X (a))\r\n", Some("a")),
            (b"a X a(b)\r\n", Some("a")),
            (b"a X \"ab\r\n", Some("a")),
            (b"a X \"a\\b\"\r\n", Some("a")),
            (b"a X \"\xff\"\r\n", Some("a")),
            (b"a X \"a\0\"\r\n", Some("a")),
            (b"a X a\rb\r\n", Some("a")),
            (b"a X {3} b\r\n", Some("a")),
            (b"a X abc{2+}\r\nxy\r\n", Some("a")),
            (b"a X {2+}\r\nxyz\r\n", Some("a")),
            (b"a X ]\r\n", Some("a")),
            (b"a X caf\xc3\xa9\r\n", Some("a")),
        ] {
            match cmd(input).await {
                Err(WireError::Syntax { tag: t, .. }) => assert_eq!(t.as_deref(), tag, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn depth_and_token_bounds() {
        let limits = Limits {
            max_depth: 2,
            max_tokens: 5,
            ..Limits::default()
        };
        let read = |b: &'static [u8]| async move {
            let mut r = LineReader::new(b, limits);
            r.read_line(&mut |_| true)
                .await
                .and_then(|l| parse_command(&l))
        };
        assert!(read(b"a X ((1))\r\n").await.is_ok());
        assert!(
            matches!(read(b"a X (((1)))\r\n").await, Err(WireError::TooBig { tag: Some(t) }) if t == "a")
        );
        assert!(read(b"a X 1 2 3 4 5\r\n").await.is_ok());
        assert!(matches!(
            read(b"a X 1 2 3 4 5 6\r\n").await,
            Err(WireError::TooBig { .. })
        ));
        assert!(matches!(
            read(b"a X (1 2 3 4 5)\r\n").await,
            Err(WireError::TooBig { .. })
        ));
    }

    #[tokio::test]
    async fn responses() {
        let r = resp(
            b"* OK [CAPABILITY TERNSYNC=1 AUTH=PLAIN STARTTLS LITERAL+] tern replica ready\r\n",
        )
        .await;
        let code = (
            "CAPABILITY".to_string(),
            vec![
                atom("TERNSYNC=1"),
                atom("AUTH=PLAIN"),
                atom("STARTTLS"),
                atom("LITERAL+"),
            ],
        );
        assert_eq!(
            r.ok(),
            Some(Response::UntaggedStatus {
                keyword: "OK".into(),
                code: Some(code),
                text: "tern replica ready".into()
            })
        );
        let r = resp(b"A7 no [mismatch 12 7] stale\r\n").await;
        let code = (
            "MISMATCH".to_string(),
            vec![Token::Number(12), Token::Number(7)],
        );
        assert_eq!(
            r.ok(),
            Some(Response::Tagged {
                tag: "A7".into(),
                status: Status::No,
                code: Some(code),
                text: "stale".into()
            })
        );
        let r = resp(b"A8 OK [NOBLOB a94a8fe5ccb19ba61c4c0873d391e987982fbbd3]\r\n").await;
        assert!(
            matches!(r, Ok(Response::Tagged { code: Some((ref c, ref a)), ref text, .. }) if c == "NOBLOB" && a.len() == 1 && text.is_empty())
        );
        let r = resp(b"a OK\r\n").await;
        assert!(
            matches!(r, Ok(Response::Tagged { status: Status::Ok, code: None, ref text, .. }) if text.is_empty())
        );
        let r = resp(b"* bye [x] so long ] \"{ (\r\n").await;
        assert!(
            matches!(r, Ok(Response::UntaggedStatus { ref keyword, ref text, .. }) if keyword == "BYE" && text == "so long ] \"{ (")
        );
        assert_eq!(
            resp(b"+ go ahead\r\n").await.ok(),
            Some(Response::Continue("go ahead".into()))
        );
        assert_eq!(
            resp(b"+\r\n").await.ok(),
            Some(Response::Continue(String::new()))
        );
        let r = resp(b"* message 0123 {3+}\r\nabc\r\n").await;
        assert_eq!(
            r.ok(),
            Some(Response::Untagged {
                keyword: "MESSAGE".into(),
                args: vec![Token::Number(123), Token::Literal(b"abc".to_vec())]
            })
        );
        assert_eq!(
            resp(b"* RESERVE\r\n").await.ok(),
            Some(Response::Untagged {
                keyword: "RESERVE".into(),
                args: vec![]
            })
        );
    }

    #[tokio::test]
    async fn response_errors() {
        for (input, tag) in [
            (&b"a MAYBE x\r\n"[..], Some("a")),
            (b"a OK [MISMATCH 1 text\r\n", Some("a")),
            (b"a OK []\r\n", Some("a")),
            (b"a OK [X]text\r\n", Some("a")),
            (b"a BYE x\r\n", Some("a")),
            (b"*\r\n", None),
            (b"* \r\n", None),
            (b"+x\r\n", None),
            (b"* OK text {2+}\r\nab\r\n", None),
            (b"(\r\n", None),
        ] {
            match resp(input).await {
                Err(WireError::Syntax { tag: t, .. }) => assert_eq!(t.as_deref(), tag, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }
}
