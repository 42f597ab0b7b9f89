//! The token grammar over a [`Line`]: a cursor that walks its text lines and literals,
//! and a parser for sequences of tokens that enforces the depth and token bounds.

use super::reader::Line;
use super::token::{classify_atom, is_atom_char, Token};

/// Why parsing stopped; the caller adds the tag.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The line breaks the grammar.
    Syntax(String),
    /// [`super::Limits::max_depth`] or [`super::Limits::max_tokens`] exceeded.
    TooBig,
}

/// What ends a sequence of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The end of the logical line.
    Line,
    /// A `]` outside any list (a response code); it is consumed.
    Bracket,
}

/// Where the literals come from: borrowed (cloned when taken) or owned (moved out).
enum Literals<'a> {
    Borrowed(&'a [Vec<u8>]),
    Owned(Vec<Vec<u8>>),
}

/// A position in a [`Line`]: text line `seg`, byte `pos`.
pub(crate) struct Cursor<'a> {
    texts: &'a [Vec<u8>],
    literals: Literals<'a>,
    seg: usize,
    pos: usize,
    tokens: usize,
    max_tokens: usize,
    max_depth: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `line`, cloning literals as they are parsed.
    pub(crate) fn new(line: &'a Line) -> Self {
        Cursor::with(line, &line.texts, Literals::Borrowed(&line.literals))
    }

    /// A cursor at the start of `line`'s text, moving `literals` (the line's own) into
    /// the tokens.
    pub(crate) fn owned(line: &'a Line, literals: Vec<Vec<u8>>) -> Self {
        Cursor::with(line, &line.texts, Literals::Owned(literals))
    }

    fn with(line: &Line, texts: &'a [Vec<u8>], literals: Literals<'a>) -> Self {
        Cursor {
            texts,
            literals,
            seg: 0,
            pos: 0,
            tokens: 0,
            max_tokens: line.max_tokens,
            max_depth: line.max_depth,
        }
    }

    fn text(&self) -> &'a [u8] {
        self.texts.get(self.seg).map_or(&[], Vec::as_slice)
    }

    /// The next byte of the current text line; `None` at its end.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text().get(self.pos).copied()
    }

    /// True at the end of the last text line.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text().len() && self.seg + 1 >= self.texts.len()
    }

    /// Consumes the bytes satisfying `f` and returns them (possibly empty).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let text = self.text();
        let start = self.pos.min(text.len());
        let len = text[start..].iter().take_while(|&&b| f(b)).count();
        self.pos = start + len;
        &text[start..start + len]
    }

    /// Consumes one `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes spaces; true if there was at least one.
    pub(crate) fn spaces(&mut self) -> bool {
        !self.take_while(|b| b == b' ').is_empty()
    }

    /// The rest of the current text line, which must be the last: response text.
    pub(crate) fn rest_of_line(&mut self) -> Result<String, ParseError> {
        if self.seg + 1 < self.texts.len() {
            return Err(syntax("literal in response text"));
        }
        let rest = self.take_while(|_| true);
        Ok(String::from_utf8_lossy(rest).into_owned())
    }

    fn count_token(&mut self) -> Result<(), ParseError> {
        self.tokens += 1;
        if self.tokens > self.max_tokens {
            return Err(ParseError::TooBig);
        }
        Ok(())
    }

    /// Parses tokens separated by spaces until `end`. With `need_space`, the first
    /// token must be preceded by a space (it follows a verb or keyword). Lists are
    /// parsed with an explicit stack, so nesting costs no call stack.
    pub(crate) fn tokens(&mut self, end: End, need_space: bool) -> Result<Vec<Token>, ParseError> {
        let mut stack: Vec<Vec<Token>> = Vec::new();
        let mut current: Vec<Token> = Vec::new();
        let mut need_space = need_space;
        loop {
            if self.spaces() {
                need_space = false;
            }
            match self.peek() {
                None if self.at_end() => {
                    if !stack.is_empty() {
                        return Err(syntax("unclosed list"));
                    }
                    if end == End::Bracket {
                        return Err(syntax("missing ]"));
                    }
                    return Ok(current);
                }
                None => return Err(syntax("literal not announced by a token")),
                Some(b')') => {
                    let Some(outer) = stack.pop() else {
                        return Err(syntax("unexpected )"));
                    };
                    self.pos += 1;
                    let list = std::mem::replace(&mut current, outer);
                    current.push(Token::List(list));
                    need_space = true;
                }
                Some(b']') if end == End::Bracket && stack.is_empty() => {
                    self.pos += 1;
                    return Ok(current);
                }
                Some(_) if need_space => return Err(syntax("missing space between tokens")),
                Some(b'(') => {
                    if stack.len() >= self.max_depth {
                        return Err(ParseError::TooBig);
                    }
                    self.count_token()?;
                    self.pos += 1;
                    stack.push(std::mem::take(&mut current));
                }
                Some(_) => {
                    let token = self.simple()?;
                    self.count_token()?;
                    current.push(token);
                    need_space = true;
                }
            }
        }
    }

    /// Parses one token other than a list at the cursor.
    fn simple(&mut self) -> Result<Token, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b) if is_atom_char(b) => {
                let run = self.take_while(is_atom_char);
                // Atom characters are ASCII.
                Ok(classify_atom(&String::from_utf8_lossy(run)))
            }
            Some(b) => Err(syntax(format!("unexpected byte 0x{b:02x}"))),
            None => Err(syntax("missing token")),
        }
    }

    /// `"` *(char / `\"` / `\\`) `"`, UTF-8, no CR, LF or NUL.
    fn quoted(&mut self) -> Result<Token, ParseError> {
        let text = self.text();
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        loop {
            match text.get(i) {
                None => return Err(syntax("unterminated quoted string")),
                Some(b'"') => break,
                Some(b'\\') => match text.get(i + 1) {
                    Some(&c @ (b'"' | b'\\')) => {
                        out.push(c);
                        i += 2;
                    }
                    _ => return Err(syntax("bad escape in quoted string")),
                },
                Some(b'\r' | b'\n' | 0) => return Err(syntax("CR, LF or NUL in quoted string")),
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out)
            .map(Token::Str)
            .map_err(|_| syntax("quoted string is not UTF-8"))
    }

    /// `{n}` or `{n+}` at the end of a text line, then the literal that followed it.
    fn literal(&mut self) -> Result<Token, ParseError> {
        let text = self.text();
        let rest = text.get(self.pos..).unwrap_or(&[]);
        let body = rest
            .strip_prefix(b"{")
            .and_then(|r| r.strip_suffix(b"}"))
            .map(|r| r.strip_suffix(b"+").unwrap_or(r));
        let n = match body {
            Some(d) if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => std::str::from_utf8(d)
                .ok()
                .and_then(|d| d.parse::<u64>().ok()),
            _ => None,
        };
        let (Some(n), true) = (n, self.seg + 1 < self.texts.len()) else {
            return Err(syntax("{ not at the end of a line announcing a literal"));
        };
        let bytes = match &mut self.literals {
            Literals::Borrowed(l) => l.get(self.seg).cloned(),
            Literals::Owned(l) => l.get_mut(self.seg).map(std::mem::take),
        };
        match bytes {
            Some(b) if b.len() as u64 == n => {
                self.seg += 1;
                self.pos = 0;
                Ok(Token::Literal(b))
            }
            _ => Err(syntax("literal length mismatch")),
        }
    }
}

/// A [`ParseError::Syntax`].
pub(crate) fn syntax(reason: impl Into<String>) -> ParseError {
    ParseError::Syntax(reason.into())
}
