//! The grammar of SEARCH (ESEARCH `RETURN` options, `CHARSET`, nested keys up to
//! [`MAX_SEARCH_DEPTH`]), SORT and THREAD.

use super::lexer::{fail, fail_with, upper, Fail, P, R};
use super::{ParseErrorKind, MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS};
use crate::types::{
    CommandBody, PartialRange, SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm,
};

impl<'a> P<'a> {
    /// `[SP "RETURN" SP "(" [opt *(SP opt)] ")"]`
    fn search_return_opts(&mut self) -> R<Option<Vec<SearchReturn>>> {
        if self.peek() != Some(b' ') {
            return Ok(None);
        }
        let save = self.pos;
        self.pos += 1;
        if !(self.next_is("RETURN") && self.peek_at(6) == Some(b' ')) {
            self.pos = save;
            return Ok(None);
        }
        self.pos += 7;
        self.open()?;
        let mut opts = Vec::new();
        if !self.eat(b')') {
            loop {
                let k = self.keyword()?;
                opts.push(match k.as_str() {
                    "MIN" => SearchReturn::Min,
                    "MAX" => SearchReturn::Max,
                    "ALL" => SearchReturn::All,
                    "COUNT" => SearchReturn::Count,
                    "SAVE" => SearchReturn::Save,
                    "UPDATE" => SearchReturn::Update,
                    "PARTIAL" => {
                        self.sp()?;
                        SearchReturn::Partial(self.partial_range()?)
                    }
                    _ => return fail_with("unknown RETURN option", k.as_bytes()),
                });
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        // RFC 9394 3.1: at most one of PARTIAL and ALL.
        let windows = opts
            .iter()
            .filter(|o| matches!(o, SearchReturn::All | SearchReturn::Partial(_)))
            .count();
        if windows > 1 {
            return fail("at most one of ALL and PARTIAL");
        }
        Ok(Some(opts))
    }

    /// `partial-range` (RFC 9394): `nz-number ":" nz-number`, or both negative.
    pub(super) fn partial_range(&mut self) -> R<PartialRange> {
        let from_end = self.eat(b'-');
        let a = self.nz_number()?;
        if !self.eat(b':') {
            return fail("a PARTIAL range needs two ends");
        }
        if self.eat(b'-') != from_end {
            return fail("both ends of a PARTIAL range have the same sign");
        }
        let b = self.nz_number()?;
        Ok(PartialRange {
            from_end,
            low: a.min(b),
            high: a.max(b),
        })
    }

    fn charset(&mut self) -> R<String> {
        let raw = self.astring()?;
        let name = upper(&raw);
        self.set_charset(&name)?;
        Ok(name)
    }

    pub(super) fn search(&mut self, uid: bool) -> R<CommandBody> {
        let return_opts = self.search_return_opts()?;
        self.sp()?;
        let mut charset = None;
        if self.next_is("CHARSET") && self.peek_at(7) == Some(b' ') {
            self.pos += 8;
            charset = Some(self.charset()?);
            self.sp()?;
        }
        let criteria = self.search_program()?;
        Ok(CommandBody::Search {
            uid,
            charset,
            criteria,
            return_opts,
        })
    }

    /// `search-key *(SP search-key)`: one key, or `And` of several.
    fn search_program(&mut self) -> R<SearchKey> {
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        if keys.iter().map(key_count).sum::<usize>() > MAX_SEARCH_KEYS {
            return Err(Fail {
                msg: format!("Search too complex (more than {MAX_SEARCH_KEYS} keys)").into(),
                kind: ParseErrorKind::TooComplex,
            });
        }
        Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        })
    }

    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        if depth >= MAX_SEARCH_DEPTH {
            return fail("search keys nested too deeply");
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut keys = vec![self.search_key(depth + 1)?];
                while self.eat(b' ') {
                    keys.push(self.search_key(depth + 1)?);
                }
                self.close()?;
                return Ok(if keys.len() == 1 {
                    keys.remove(0)
                } else {
                    SearchKey::And(keys)
                });
            }
            Some(b'*' | b'$' | b'0'..=b'9') => {
                return Ok(SearchKey::Sequence(self.sequence_set()?))
            }
            _ => {}
        }
        let k = self.keyword()?;
        Ok(match k.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                let s = self.search_text()?;
                match k.as_str() {
                    "BCC" => SearchKey::Bcc(s),
                    "BODY" => SearchKey::Body(s),
                    "CC" => SearchKey::Cc(s),
                    "FROM" => SearchKey::From(s),
                    "SUBJECT" => SearchKey::Subject(s),
                    "TEXT" => SearchKey::Text(s),
                    _ => SearchKey::To(s),
                }
            }
            "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "SAVEDBEFORE"
            | "SAVEDON" | "SAVEDSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match k.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    "SAVEDBEFORE" => SearchKey::SavedBefore(d),
                    "SAVEDON" => SearchKey::SavedOn(d),
                    "SAVEDSINCE" => SearchKey::SavedSince(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let kw = String::from_utf8_lossy(self.atom()?).into_owned();
                if k == "KEYWORD" {
                    SearchKey::Keyword(kw)
                } else {
                    SearchKey::Unkeyword(kw)
                }
            }
            "HEADER" => {
                self.sp()?;
                let field = self.header_field_name()?;
                self.sp()?;
                SearchKey::Header(field, self.search_text()?)
            }
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "EMAILID" => {
                self.sp()?;
                SearchKey::EmailId(self.objectid()?)
            }
            "THREADID" => {
                self.sp()?;
                SearchKey::ThreadId(self.objectid()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "MODSEQ" => {
                self.sp()?;
                if self.peek() == Some(b'"') {
                    let entry = self.quoted()?;
                    if !entry.starts_with(b"/flags/") || entry.len() <= 7 {
                        return fail("bad MODSEQ entry name");
                    }
                    self.sp()?;
                    let t = self.keyword()?;
                    if !matches!(t.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return fail("bad MODSEQ entry type");
                    }
                    self.sp()?;
                }
                SearchKey::Modseq(self.modseq()?)
            }
            "YOUNGER" => {
                self.sp()?;
                SearchKey::Younger(self.nz_number64()?)
            }
            "OLDER" => {
                self.sp()?;
                SearchKey::Older(self.nz_number64()?)
            }
            _ => return fail_with("unknown search key", k.as_bytes()),
        })
    }

    /// `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 7), possibly quoted.
    fn objectid(&mut self) -> R<String> {
        let raw = self.astring()?;
        let ok = (1..=255).contains(&raw.len())
            && raw
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
        if !ok {
            return fail("bad objectid");
        }
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    pub(super) fn sort(&mut self, uid: bool) -> R<CommandBody> {
        let return_opts = self.search_return_opts()?;
        self.sp()?;
        self.open()?;
        let mut criteria = Vec::new();
        loop {
            let mut k = self.keyword()?;
            let reverse = k == "REVERSE";
            if reverse {
                self.sp()?;
                k = self.keyword()?;
            }
            let key = match k.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                _ => return fail_with("unknown sort key", k.as_bytes()),
            };
            criteria.push(SortCriterion { reverse, key });
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let search = self.search_program()?;
        Ok(CommandBody::Sort {
            uid,
            criteria,
            charset,
            search,
            return_opts,
        })
    }

    pub(super) fn thread(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let k = self.keyword()?;
        let algorithm = match k.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            _ => return fail_with("unknown thread algorithm", k.as_bytes()),
        };
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let search = self.search_program()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            charset,
            search,
        })
    }
}

/// How many keys `key` is made of (itself included).
fn key_count(key: &SearchKey) -> usize {
    1 + match key {
        SearchKey::Not(k) => key_count(k),
        SearchKey::Or(a, b) => key_count(a) + key_count(b),
        SearchKey::And(keys) => keys.iter().map(key_count).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;
    use crate::parser::{parse_command, ParseErrorKind};
    use crate::types::{SeqNum, SequenceSet};

    fn search_of(s: &str) -> SearchKey {
        match ok(s) {
            CommandBody::Search { criteria, .. } => criteria,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_rfc3501_examples() {
        assert_eq!(
            search_of("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
            SearchKey::And(vec![
                SearchKey::Flagged,
                SearchKey::Since(date(1994, 2, 1)),
                SearchKey::Not(Box::new(SearchKey::From(s("Smith")))),
            ])
        );
        assert_eq!(
            search_of("A283 SEARCH TEXT \"string not in mailbox\""),
            SearchKey::Text(s("string not in mailbox"))
        );
        assert_eq!(
            ok("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX"),
            CommandBody::Search {
                uid: false,
                charset: Some(s("UTF-8")),
                criteria: SearchKey::Text(s("XXXXXX")),
                return_opts: None
            }
        );
    }

    #[test]
    fn search_thunderbird_style() {
        let wire =
            b"x UID SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {4+}\r\nt\xc3\xa9t) NOT DELETED";
        assert_eq!(
            okb(wire),
            CommandBody::Search {
                uid: true,
                charset: Some(s("UTF-8")),
                criteria: SearchKey::Or(
                    Box::new(SearchKey::And(vec![
                        SearchKey::From(s("a")),
                        SearchKey::Subject(s("t\u{e9}t")),
                    ])),
                    Box::new(SearchKey::Not(Box::new(SearchKey::Deleted))),
                ),
                return_opts: None
            }
        );
        assert_eq!(
            search_of("a UID SEARCH UID 1:* NOT DELETED"),
            SearchKey::And(vec![
                SearchKey::Uid(ranges(&[rng(v(1), SeqNum::Star)])),
                SearchKey::Not(Box::new(SearchKey::Deleted)),
            ])
        );
    }

    #[test]
    fn search_all_keys() {
        let q = "a SEARCH ALL ANSWERED BCC b BEFORE 1-Feb-1994 BODY x CC c DELETED DRAFT FLAGGED \
                 FROM f HEADER Message-ID <x@y> KEYWORD $Forwarded LARGER 100 NEW NOT SEEN OLD \
                 ON \"31-Dec-1999\" OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 \
                 SENTSINCE 3-Jan-2000 SINCE 04-Jan-2000 SMALLER 5 SUBJECT s TEXT t TO u UID 1,2 \
                 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD Junk UNSEEN 1:3,5 * $ \
                 MODSEQ 620162338 YOUNGER 3600 OLDER 60 (ALL)";
        let SearchKey::And(keys) = search_of(q) else {
            panic!()
        };
        use SearchKey as K;
        let want = vec![
            K::All,
            K::Answered,
            K::Bcc(s("b")),
            K::Before(date(1994, 2, 1)),
            K::Body(s("x")),
            K::Cc(s("c")),
            K::Deleted,
            K::Draft,
            K::Flagged,
            K::From(s("f")),
            K::Header(s("Message-ID"), s("<x@y>")),
            K::Keyword(s("$Forwarded")),
            K::Larger(100),
            K::New,
            K::Not(Box::new(K::Seen)),
            K::Old,
            K::On(date(1999, 12, 31)),
            K::Or(Box::new(K::Seen), Box::new(K::Unseen)),
            K::Recent,
            K::Seen,
            K::SentBefore(date(2000, 1, 1)),
            K::SentOn(date(2000, 1, 2)),
            K::SentSince(date(2000, 1, 3)),
            K::Since(date(2000, 1, 4)),
            K::Smaller(5),
            K::Subject(s("s")),
            K::Text(s("t")),
            K::To(s("u")),
            K::Uid(ranges(&[one(1), one(2)])),
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unkeyword(s("Junk")),
            K::Unseen,
            K::Sequence(ranges(&[rng(v(1), v(3)), one(5)])),
            K::Sequence(ranges(&[rng(SeqNum::Star, SeqNum::Star)])),
            K::Sequence(SequenceSet::Saved),
            K::Modseq(620162338),
            K::Younger(3600),
            K::Older(60),
            K::All,
        ];
        assert_eq!(keys, want);
    }

    #[test]
    fn search_modseq_and_return() {
        // RFC 7162 3.1.5.
        assert_eq!(
            search_of("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
            SearchKey::Modseq(620162338)
        );
        assert_eq!(
            search_of("a SEARCH modseq \"/flags/$Junk\" PRIV 1"),
            SearchKey::Modseq(1)
        );
        bad("a SEARCH MODSEQ \"/foo/x\" all 1");
        bad("a SEARCH MODSEQ \"/flags/x\" other 1");
        bad("a SEARCH MODSEQ 9223372036854775808");
        // RFC 9394: a window from either end, echoed low end first.
        let window = |q: &str| match ok(q) {
            CommandBody::Search { return_opts, .. } | CommandBody::Sort { return_opts, .. } => {
                return_opts
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            window("a SEARCH RETURN (PARTIAL 4:2) ALL"),
            Some(vec![SearchReturn::Partial(PartialRange {
                from_end: false,
                low: 2,
                high: 4
            })])
        );
        assert_eq!(
            window("a UID SORT RETURN (COUNT PARTIAL -1:-100) (DATE) UTF-8 ALL"),
            Some(vec![
                SearchReturn::Count,
                SearchReturn::Partial(PartialRange {
                    from_end: true,
                    low: 1,
                    high: 100
                })
            ])
        );
        for q in [
            "a SEARCH RETURN (PARTIAL 1) ALL",
            "a SEARCH RETURN (PARTIAL 1:*) ALL",
            "a SEARCH RETURN (PARTIAL *:1) ALL",
            "a SEARCH RETURN (PARTIAL 0:3) ALL",
            "a SEARCH RETURN (PARTIAL -1:3) ALL",
            "a SEARCH RETURN (ALL PARTIAL 1:3) ALL",
            "a SORT RETURN (PARTIAL 1) (ARRIVAL) US-ASCII ALL",
        ] {
            bad(q);
        }
        // RFC 4731 / 5182.
        assert_eq!(
            ok("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
            CommandBody::Search {
                uid: false,
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::Flagged,
                    SearchKey::Since(date(1994, 2, 1)),
                    SearchKey::Not(Box::new(SearchKey::From(s("Smith")))),
                ]),
                return_opts: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            }
        );
        let CommandBody::Search {
            return_opts, uid, ..
        } = ok("a UID SEARCH RETURN () ALL")
        else {
            panic!()
        };
        assert_eq!((return_opts, uid), (Some(vec![]), true));
        let CommandBody::Search {
            return_opts,
            charset,
            ..
        } = ok("A301 SEARCH RETURN (SAVE MAX ALL) CHARSET us-ascii SINCE 1-Feb-1994 $")
        else {
            panic!()
        };
        assert_eq!(charset.as_deref(), Some("US-ASCII"));
        assert_eq!(
            return_opts,
            Some(vec![
                SearchReturn::Save,
                SearchReturn::Max,
                SearchReturn::All
            ])
        );
        bad("a SEARCH RETURN ALL");
        bad("a SEARCH CHARSET UTF-8 RETURN (MIN) ALL");
    }

    #[test]
    fn search_charsets() {
        let e = bad("a SEARCH CHARSET KOI8-R SUBJECT x");
        assert_eq!(
            (e.kind, e.tag.as_deref()),
            (ParseErrorKind::BadCharset, Some("a"))
        );
        let CommandBody::Search { criteria, .. } =
            okb(b"a SEARCH CHARSET \"ISO-8859-1\" SUBJECT {3}\r\nt\xe9t")
        else {
            panic!()
        };
        assert_eq!(criteria, SearchKey::Subject(s("t\u{e9}t")));
        assert!(parse_command(b"a SEARCH CHARSET UTF-8 SUBJECT {3}\r\nt\xe9t", false).is_err());
        assert!(parse_command(b"a SEARCH SUBJECT {3}\r\nt\xe9t", false).is_err());
    }

    #[test]
    fn search_errors_and_depth() {
        for q in [
            "a SEARCH",
            "a SEARCH ",
            "a SEARCH ALL ",
            "a SEARCH FOO",
            "a SEARCH (ALL",
            "a SEARCH ALL)",
            "a SEARCH ()",
            "a SEARCH NOT",
            "a SEARCH OR ALL",
            "a SEARCH SINCE 1-Feb-94",
            "a SEARCH SINCE 32-Jan-1994",
            "a SEARCH SINCE 1-Feb-1994x",
            "a SEARCH BEFORE \"1-Feb-1994",
            "a SEARCH 0",
            "a SEARCH 1:0",
            "a SEARCH 01",
            "a SEARCH 4294967296",
            "a SEARCH UID",
            "a SEARCH LARGER x",
            "a SEARCH YOUNGER 0",
            "a SEARCH HEADER \"a:b\" x",
            "a SEARCH HEADER \"\" x",
            "a SEARCH KEYWORD \\Seen",
            "a SEARCH 1,",
            "a SEARCH $:1",
        ] {
            bad(q);
        }
        let deep = |n: usize| format!("a SEARCH {}ALL{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(search_of(&deep(10)), SearchKey::All);
        assert!(bad(&deep(MAX_SEARCH_DEPTH)).message.contains("deep"));
        bad(&deep(100_000));
        bad(&format!("a SEARCH {}ALL", "NOT ".repeat(100_000)));
        bad(&format!("a SEARCH {}ALL", "OR ALL ".repeat(100_000)));
        // Many keys side by side are fine, up to MAX_SEARCH_KEYS (an OR of two keys
        // counts 3; the And around them 1).
        let wide = |n: usize| format!("a SEARCH {}", vec!["OR SEEN ALL"; n].join(" "));
        let n = (MAX_SEARCH_KEYS - 1) / 3;
        let SearchKey::And(keys) = search_of(&wide(n)) else {
            panic!()
        };
        assert_eq!(keys.len(), n);
        let e = bad(&wide(n + 1));
        assert_eq!(e.kind, ParseErrorKind::TooComplex);
        let e = bad(&format!(
            "a SORT (DATE) UTF-8 {}",
            vec!["SEEN"; 1001].join(" ")
        ));
        assert_eq!(e.kind, ParseErrorKind::TooComplex);
    }

    #[test]
    fn sort_and_thread() {
        assert_eq!(
            ok("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
            CommandBody::Sort {
                uid: false,
                criteria: vec![
                    SortCriterion {
                        reverse: false,
                        key: SortKey::Subject
                    },
                    SortCriterion {
                        reverse: true,
                        key: SortKey::Date
                    },
                ],
                charset: s("UTF-8"),
                search: SearchKey::All,
                return_opts: None
            }
        );
        assert_eq!(
            ok("A284 UID SORT (arrival cc from size to displayfrom displayto) US-ASCII SUBJECT \"afternoon meeting\" SINCE 1-Feb-1994"),
            CommandBody::Sort {
                uid: true,
                criteria: [
                    SortKey::Arrival,
                    SortKey::Cc,
                    SortKey::From,
                    SortKey::Size,
                    SortKey::To,
                    SortKey::DisplayFrom,
                    SortKey::DisplayTo
                ]
                .into_iter()
                .map(|key| SortCriterion { reverse: false, key })
                .collect(),
                charset: s("US-ASCII"),
                search: SearchKey::And(vec![
                    SearchKey::Subject(s("afternoon meeting")),
                    SearchKey::Since(date(1994, 2, 1))
                ]),
                return_opts: None
            }
        );
        let CommandBody::Sort { return_opts, .. } =
            ok("C01 UID SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 UNDELETED")
        else {
            panic!()
        };
        assert_eq!(
            return_opts,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Max,
                SearchReturn::Count
            ])
        );
        assert_eq!(
            ok("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000"),
            CommandBody::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::OrderedSubject,
                charset: s("UTF-8"),
                search: SearchKey::Since(date(2000, 3, 5))
            }
        );
        assert_eq!(
            ok("A284 UID THREAD REFERENCES US-ASCII TEXT \"gewp\""),
            CommandBody::Thread {
                uid: true,
                algorithm: ThreadAlgorithm::References,
                charset: s("US-ASCII"),
                search: SearchKey::Text(s("gewp"))
            }
        );
        assert_eq!(
            bad("a SORT (DATE) KOI8-R ALL").kind,
            ParseErrorKind::BadCharset
        );
        bad("a SORT () UTF-8 ALL");
        bad("a SORT (REVERSE) UTF-8 ALL");
        bad("a SORT (REVERSE REVERSE DATE) UTF-8 ALL");
        bad("a SORT DATE UTF-8 ALL");
        bad("a SORT (DATE) ALL");
        bad("a SORT (DATE) UTF-8");
        bad("a THREAD REFS UTF-8 ALL");
        bad("a THREAD REFERENCES ALL");
    }
}
