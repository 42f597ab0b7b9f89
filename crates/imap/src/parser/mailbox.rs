//! Mailbox names (modified UTF-7 or, with UTF8=ACCEPT, UTF-8; `INBOX` in any case) and
//! the grammar of the commands about mailboxes: SELECT/EXAMINE (CONDSTORE, QRESYNC),
//! CREATE (special-use), LIST (extended), and the STATUS item list.

use std::borrow::Cow;

use super::lexer::{fail, fail_with, is_list_char, Fail, P, R};
use super::ParseErrorKind;
use crate::mutf7;
use crate::types::{CommandBody, Qresync, SequenceSet, StatusItem};

/// RFC 9051 5.1: no C0/C1 controls, DEL, LINE or PARAGRAPH SEPARATOR in names.
fn valid_name_chars(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

impl<'a> P<'a> {
    /// Decodes a mailbox name or pattern (mUTF-7 unless UTF8=ACCEPT), normalising INBOX.
    /// A name that cannot be decoded is a `BadName` failure (answered NO, not BAD).
    fn name(&self, raw: &[u8]) -> R<String> {
        let bad = |msg: &'static str| {
            Err(Fail {
                msg: msg.into(),
                kind: ParseErrorKind::BadName,
            })
        };
        let s = if self.utf8_names {
            match std::str::from_utf8(raw) {
                Ok(s) => s.to_owned(),
                Err(_) => return bad("mailbox name is not UTF-8"),
            }
        } else {
            let Ok(s) = std::str::from_utf8(raw) else {
                return bad("mailbox name is not modified UTF-7");
            };
            match mutf7::decode(s) {
                Ok(s) => s,
                Err(_) => return bad("mailbox name is not modified UTF-7"),
            }
        };
        if !valid_name_chars(&s) {
            return bad("control character in mailbox name");
        }
        if s.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".to_owned());
        }
        Ok(s)
    }

    pub(super) fn mailbox(&mut self) -> R<String> {
        let raw = self.astring()?;
        self.name(&raw)
    }

    pub(super) fn list_mailbox(&mut self) -> R<String> {
        let raw = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return fail("expected a mailbox pattern");
                }
                Cow::Borrowed(a)
            }
        };
        // A pattern that is not modified UTF-7 is not an error: it matches what it
        // matches (nothing, usually), as LIST of any other unknown name would.
        match self.name(&raw) {
            Err(f) if f.kind == ParseErrorKind::BadName => {
                Ok(String::from_utf8_lossy(&raw).into_owned())
            }
            other => other,
        }
    }

    pub(super) fn sp_mailbox(&mut self) -> R<String> {
        self.sp()?;
        self.mailbox()
    }

    pub(super) fn select(&mut self, read_only: bool) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "CONDSTORE" => condstore = true,
                    "QRESYNC" if qresync.is_none() => {
                        self.sp()?;
                        qresync = Some(self.qresync()?);
                    }
                    _ => return fail_with("bad SELECT parameter", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Select {
            mailbox,
            read_only,
            condstore,
            qresync,
        })
    }

    fn qresync(&mut self) -> R<Qresync> {
        self.open()?;
        let uidvalidity = self.nz_number()?;
        self.sp()?;
        let modseq = self.modseq()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.known_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            } else {
                seq_match = Some(self.seq_match()?);
            }
        }
        self.close()?;
        Ok(Qresync {
            uidvalidity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    fn seq_match(&mut self) -> R<(SequenceSet, SequenceSet)> {
        self.open()?;
        let seqs = self.known_set()?;
        self.sp()?;
        let uids = self.known_set()?;
        self.close()?;
        Ok((seqs, uids))
    }

    pub(super) fn create(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                if k != "USE" {
                    return fail_with("bad CREATE parameter", k.as_bytes());
                }
                self.sp()?;
                self.open()?;
                if !self.eat(b')') {
                    loop {
                        self.expect(b'\\', "expected a special-use attribute")?;
                        special_use.push(special_use_name(self.atom()?));
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        Ok(CommandBody::Create {
            mailbox,
            special_use,
        })
    }

    pub(super) fn list(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mut select = Vec::new();
        if self.eat(b'(') {
            if !self.eat(b')') {
                loop {
                    let k = self.keyword()?;
                    if !matches!(
                        k.as_str(),
                        "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
                    ) {
                        return fail_with("unknown LIST selection option", k.as_bytes());
                    }
                    select.push(k);
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
            if select.iter().any(|s| s == "RECURSIVEMATCH")
                && !select
                    .iter()
                    .any(|s| s == "SUBSCRIBED" || s == "SPECIAL-USE")
            {
                return fail("RECURSIVEMATCH needs another selection option");
            }
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let mut patterns = Vec::new();
        if self.eat(b'(') {
            loop {
                patterns.push(self.list_mailbox()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            patterns.push(self.list_mailbox()?);
        }
        let mut return_opts = Vec::new();
        let mut status = None;
        if self.eat(b' ') {
            let k = self.keyword()?;
            if k != "RETURN" {
                return fail("expected RETURN");
            }
            self.sp()?;
            self.open()?;
            if !self.eat(b')') {
                loop {
                    let k = self.keyword()?;
                    match k.as_str() {
                        "SUBSCRIBED" | "CHILDREN" | "SPECIAL-USE" | "MYRIGHTS" => {
                            return_opts.push(k)
                        }
                        "STATUS" if status.is_none() => {
                            self.sp()?;
                            status = Some(self.status_list()?);
                        }
                        _ => return fail_with("bad LIST return option", k.as_bytes()),
                    }
                    if self.eat(b')') {
                        break;
                    }
                    self.sp()?;
                }
            }
        }
        Ok(CommandBody::List {
            lsub: false,
            reference,
            patterns,
            select,
            return_opts,
            status,
        })
    }

    fn status_att(&mut self) -> R<StatusItem> {
        let k = self.keyword()?;
        Ok(match k.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "HIGHESTMODSEQ" => StatusItem::HighestModseq,
            "SIZE" => StatusItem::Size,
            "DELETED" => StatusItem::Deleted,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return fail_with("unknown STATUS item", k.as_bytes()),
        })
    }

    pub(super) fn status_list(&mut self) -> R<Vec<StatusItem>> {
        self.open()?;
        let mut items = vec![self.status_att()?];
        while self.eat(b' ') {
            items.push(self.status_att()?);
        }
        self.close()?;
        Ok(items)
    }
}

/// Canonical spelling of the RFC 6154 attributes, `\` included; others as written.
fn special_use_name(atom: &[u8]) -> String {
    const KNOWN: [&str; 7] = [
        "All", "Archive", "Drafts", "Flagged", "Junk", "Sent", "Trash",
    ];
    for k in KNOWN {
        if atom.eq_ignore_ascii_case(k.as_bytes()) {
            return format!("\\{k}");
        }
    }
    format!("\\{}", String::from_utf8_lossy(atom))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_command;
    use crate::parser::test_util::*;

    #[test]
    fn mailbox_names() {
        assert_eq!(ok("a DELETE inbox"), CommandBody::Delete(s("INBOX")));
        assert_eq!(ok("a DELETE \"InBoX\""), CommandBody::Delete(s("INBOX")));
        assert_eq!(
            ok("a DELETE INBOX.sub"),
            CommandBody::Delete(s("INBOX.sub"))
        );
        assert_eq!(
            ok("a SUBSCRIBE Entw&APw-rfe"),
            CommandBody::Subscribe(s("Entw\u{fc}rfe"))
        );
        assert_eq!(
            ok("a UNSUBSCRIBE \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\""),
            CommandBody::Unsubscribe(s("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"))
        );
        assert_eq!(
            ok("a DELETE \"Tom &- Jerry\""),
            CommandBody::Delete(s("Tom & Jerry"))
        );
        assert_eq!(
            ok("a RENAME blurdybloop sarasoop"),
            CommandBody::Rename {
                from: s("blurdybloop"),
                to: s("sarasoop")
            }
        );
        // Invalid modified UTF-7.
        bad("a DELETE &ACY-");
        bad("a DELETE \"Entw\u{fc}rfe\"");
        bad("a DELETE Tom&Jerry");
        // With UTF8=ACCEPT names are UTF-8 and '&' is just '&'.
        let c = parse_command("a DELETE \"Entw\u{fc}rfe & Co\"".as_bytes(), true).unwrap();
        assert_eq!(c.body, CommandBody::Delete(s("Entw\u{fc}rfe & Co")));
        let c = parse_command(b"a DELETE Entw&APw-rfe", true).unwrap();
        assert_eq!(c.body, CommandBody::Delete(s("Entw&APw-rfe")));
        assert!(parse_command(b"a DELETE {2}\r\n\xc3(", true).is_err());
        // Control characters are never allowed (RFC 9051 5.1).
        bad("a DELETE {3}\r\na\nb");
        bad("a DELETE &AAk-");
        assert!(parse_command(b"a DELETE {3}\r\na\tb", true).is_err());
        bad("a DELETE");
        bad("a DELETE a b");
        bad("a DELETE (a)");
    }

    #[test]
    fn select_examine() {
        assert_eq!(
            ok("A142 SELECT INBOX"),
            CommandBody::Select {
                mailbox: s("INBOX"),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            ok("A932 EXAMINE blurdybloop"),
            CommandBody::Select {
                mailbox: s("blurdybloop"),
                read_only: true,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            ok("a SELECT \"Sent\" (CONDSTORE)"),
            CommandBody::Select {
                mailbox: s("Sent"),
                read_only: false,
                condstore: true,
                qresync: None
            }
        );
        // RFC 7162 3.2.5.2 examples.
        let CommandBody::Select {
            qresync: Some(q), ..
        } = ok("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
        else {
            panic!()
        };
        assert_eq!(q.uidvalidity, 67890007);
        assert_eq!(q.modseq, 20050715194045000);
        assert_eq!(
            q.known_uids,
            Some(ranges(&[one(41), rng(v(43), v(211)), rng(v(214), v(541))]))
        );
        assert_eq!(q.seq_match, None);
        let CommandBody::Select { qresync: Some(q), .. } = ok(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"
        ) else {
            panic!()
        };
        let (seqs, uids) = q.seq_match.unwrap();
        assert_eq!(q.known_uids, Some(ranges(&[rng(v(1), v(29997))])));
        assert_eq!(
            seqs,
            ranges(&[one(5000), one(7500), one(9000), rng(v(9990), v(9999))])
        );
        let SequenceSet::Ranges(u) = uids else {
            panic!()
        };
        assert_eq!(u.len(), 13);
        let CommandBody::Select {
            qresync: Some(q),
            condstore,
            ..
        } = ok("a EXAMINE x (CONDSTORE QRESYNC (1 2 (1:3 4:6)))")
        else {
            panic!()
        };
        assert!(condstore);
        assert_eq!(q.known_uids, None);
        assert!(q.seq_match.is_some());
        bad("a SELECT INBOX (QRESYNC (0 1))");
        bad("a SELECT INBOX (QRESYNC (1 1 1:*))");
        bad("a SELECT INBOX (QRESYNC (1 1 $))");
        bad("a SELECT INBOX (QRESYNC (1))");
        bad("a SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))");
        bad("a SELECT INBOX (FROB)");
        bad("a SELECT INBOX ()");
        bad("a SELECT INBOX (CONDSTORE");
        bad("a SELECT");
    }

    #[test]
    fn create_special_use() {
        assert_eq!(
            ok("A003 CREATE owatagusiam/"),
            CommandBody::Create {
                mailbox: s("owatagusiam/"),
                special_use: vec![]
            }
        );
        assert_eq!(
            ok("t1 CREATE \"Important Messages\" (USE (\\Important))"),
            CommandBody::Create {
                mailbox: s("Important Messages"),
                special_use: vec![s("\\Important")]
            }
        );
        assert_eq!(
            ok("t1 CREATE MySpecial (USE (\\drafts \\Sent))"),
            CommandBody::Create {
                mailbox: s("MySpecial"),
                special_use: vec![s("\\Drafts"), s("\\Sent")]
            }
        );
        bad("t1 CREATE x (USE (Sent))");
        bad("t1 CREATE x (FOO (\\Sent))");
        bad("t1 CREATE x (USE \\Sent)");
    }

    #[test]
    fn list_and_lsub() {
        assert_eq!(
            ok("A101 LIST \"\" \"\""),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A682 LIST \"\" *"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("*")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A202 LIST ~/Mail/ %"),
            CommandBody::List {
                lsub: false,
                reference: s("~/Mail/"),
                patterns: vec![s("%")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        assert_eq!(
            ok("A002 LSUB \"#news.\" \"comp.mail.*\""),
            CommandBody::List {
                lsub: true,
                reference: s("#news."),
                patterns: vec![s("comp.mail.*")],
                select: vec![],
                return_opts: vec![],
                status: None
            }
        );
        // RFC 5258 / 5819 / 6154.
        assert_eq!(
            ok("A02 LIST (subscribed RECURSIVEMATCH) \"\" (INBOX Entw&APw-rfe* \"%/x\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN)) "
                .trim_end()),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("INBOX"), s("Entw\u{fc}rfe*"), s("%/x")],
                select: vec![s("SUBSCRIBED"), s("RECURSIVEMATCH")],
                return_opts: vec![s("CHILDREN")],
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
            }
        );
        assert_eq!(
            ok("t1 LIST \"\" \"%\" RETURN (SPECIAL-USE)"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("%")],
                select: vec![],
                return_opts: vec![s("SPECIAL-USE")],
                status: None
            }
        );
        assert_eq!(
            ok("t1 LIST (SPECIAL-USE) \"\" \"*\" RETURN ()"),
            CommandBody::List {
                lsub: false,
                reference: s(""),
                patterns: vec![s("*")],
                select: vec![s("SPECIAL-USE")],
                return_opts: vec![],
                status: None
            }
        );
        ok("a LIST () \"\" %");
        ok("a LIST (REMOTE) \"\" %");
        bad("a LIST (RECURSIVEMATCH) \"\" %");
        bad("a LIST (FROB) \"\" %");
        bad("a LIST \"\" () ");
        bad("a LIST \"\" ()");
        bad("a LIST \"\" % RETURN (FROB)");
        bad("a LIST \"\" % RETURN CHILDREN");
        bad("a LIST \"\" % EXTRA (CHILDREN)");
        bad("a LIST \"\"");
        bad("a LSUB \"\" (a b)");
    }

    #[test]
    fn status() {
        assert_eq!(
            ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
            CommandBody::Status {
                mailbox: s("blurdybloop"),
                items: vec![StatusItem::UidNext, StatusItem::Messages]
            }
        );
        assert_eq!(
            ok("a STATUS INBOX (messages recent uidnext uidvalidity unseen highestmodseq size deleted appendlimit)"),
            CommandBody::Status {
                mailbox: s("INBOX"),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::HighestModseq,
                    StatusItem::Size,
                    StatusItem::Deleted,
                    StatusItem::AppendLimit,
                ]
            }
        );
        bad("a STATUS INBOX ()");
        bad("a STATUS INBOX (FOO)");
        bad("a STATUS INBOX MESSAGES");
    }
}
