//! The grammar of the commands that add or change messages: APPEND (flags, date-time,
//! literal or literal8), STORE (with UNCHANGEDSINCE), COPY and MOVE.

use super::lexer::{fail, fail_with, P, R};
use crate::types::{AppendContent, AppendMessage, CatPart, CommandBody, StoreOp};

/// Most messages one MULTIAPPEND may carry (each is a store write; the command's size
/// limit bounds their bytes).
pub const MAX_APPEND_MESSAGES: usize = 1000;

/// Most parts one CATENATE may join.
pub const MAX_CATENATE_PARTS: usize = 100;

impl<'a> P<'a> {
    pub(super) fn append(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut messages = Vec::new();
        // RFC 3502: `1*(SP append-message)`, each with its own options. A run of spaces
        // counts as one: IMAPClient's MULTIAPPEND sends two after each literal, and
        // Dovecot takes them.
        while self.eat(b' ') {
            while self.eat(b' ') {}
            if messages.len() == MAX_APPEND_MESSAGES {
                return fail("too many messages in one APPEND");
            }
            messages.push(self.append_message()?);
        }
        if messages.is_empty() {
            return fail("APPEND needs a message");
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    /// `[flag-list SP] [date-time SP] (literal / literal8 / utf8-literal / "CATENATE"
    /// SP cat-parts)`
    fn append_message(&mut self) -> R<AppendMessage> {
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        let content = if matches!(self.peek(), Some(b'{' | b'~')) {
            let (bytes, binary) = self.literal(true)?;
            AppendContent::Literal {
                bytes: bytes.to_vec(),
                binary,
            }
        } else if self.next_is("UTF8") {
            AppendContent::Literal {
                bytes: self.utf8_literal()?.to_vec(),
                binary: true,
            }
        } else if self.next_is("CATENATE") {
            self.pos += "CATENATE".len();
            self.sp()?;
            AppendContent::Catenate(self.cat_parts()?)
        } else {
            return fail("APPEND needs a literal or CATENATE");
        };
        Ok(AppendMessage {
            flags,
            date,
            content,
        })
    }

    /// `utf8-literal = "UTF8" SP "(" literal8 ")"`: a message whose header fields may
    /// hold UTF-8 (RFC 6855 4, RFC 9755), stored as sent. Sent by clients after
    /// `ENABLE UTF8=ACCEPT` (Python's imaplib, Horde); taken whether or not the
    /// session enabled it, since tern advertises UTF8=ACCEPT, and with a plain
    /// literal inside as well as a literal8.
    fn utf8_literal(&mut self) -> R<&'a [u8]> {
        self.pos += "UTF8".len();
        self.sp()?;
        self.open()?;
        let (bytes, _) = self.literal(true)?;
        self.expect(b')', "expected ')' after the UTF8 literal")?;
        Ok(bytes)
    }

    /// `"(" cat-part *(SP cat-part) ")"` where `cat-part = "TEXT" SP literal / "URL"
    /// SP astring / utf8-literal` (RFC 4469 5, RFC 6855 4).
    fn cat_parts(&mut self) -> R<Vec<CatPart>> {
        self.open()?;
        let mut parts = Vec::new();
        loop {
            if parts.len() == MAX_CATENATE_PARTS {
                return fail("too many CATENATE parts");
            }
            if self.next_is("UTF8") {
                parts.push(CatPart::Text(self.utf8_literal()?.to_vec()));
                if self.eat(b')') {
                    return Ok(parts);
                }
                self.sp()?;
                continue;
            }
            let k = self.keyword()?;
            self.sp()?;
            parts.push(match k.as_str() {
                "TEXT" => CatPart::Text(self.literal(false)?.0.to_vec()),
                "URL" => CatPart::Url(String::from_utf8_lossy(&self.astring()?).into_owned()),
                _ => return fail_with("unknown CATENATE part", k.as_bytes()),
            });
            if self.eat(b')') {
                return Ok(parts);
            }
            self.sp()?;
        }
    }

    /// `REPLACE SP seq-number SP mailbox SP append-message` (RFC 8508 6), with
    /// `UID REPLACE` naming a UID.
    pub(super) fn replace(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let number = self.nz_number()?;
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        let message = self.append_message()?;
        Ok(CommandBody::Replace {
            uid,
            number,
            mailbox,
            message,
        })
    }

    pub(super) fn copy_move(&mut self, uid: bool, is_move: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.sp_mailbox()?;
        Ok(if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }

    pub(super) fn store(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "UNCHANGEDSINCE" if unchanged_since.is_none() => {
                        self.sp()?;
                        unchanged_since = Some(self.modseq()?);
                    }
                    _ => return fail_with("bad STORE modifier", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            self.sp()?;
        }
        let k = self.keyword()?;
        let (op, rest) = match k.as_bytes().first() {
            Some(b'+') => (StoreOp::Add, k.get(1..).unwrap_or("")),
            Some(b'-') => (StoreOp::Remove, k.get(1..).unwrap_or("")),
            _ => (StoreOp::Replace, k.as_str()),
        };
        let silent = match rest {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return fail_with("bad STORE item", k.as_bytes()),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;
    use crate::parser::{CommandReader, Event, Limits};
    use crate::types::{AppendContent, AppendMessage, CatPart};
    use crate::types::{SeqNum, SequenceSet};

    const RFC3501_MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.COM>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu\r\n\
Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

    #[test]
    fn append_rfc3501_example() {
        assert_eq!(RFC3501_MESSAGE.len(), 310);
        let wire = format!("A003 APPEND saved-messages (\\Seen) {{310}}\r\n{RFC3501_MESSAGE}\r\n");
        let mut r = CommandReader::new(Limits::default());
        let ev = run(&mut r, wire.as_bytes(), 17);
        assert_eq!(ev.len(), 2);
        assert!(matches!(
            ev[0],
            Event::Continue {
                size: 310,
                binary: false,
                ..
            }
        ));
        let Event::Command(c) = &ev[1] else { panic!() };
        assert_eq!(
            okb(c),
            CommandBody::Append {
                mailbox: s("saved-messages"),
                messages: vec![AppendMessage {
                    flags: vec![s("\\Seen")],
                    date: None,
                    content: AppendContent::Literal {
                        bytes: RFC3501_MESSAGE.as_bytes().to_vec(),
                        binary: false,
                    },
                }],
            }
        );
    }

    #[test]
    fn append_binary_and_errors() {
        assert_eq!(
            okb(b"a APPEND Drafts (\\Draft) ~{3}\r\na\0b"),
            CommandBody::Append {
                mailbox: s("Drafts"),
                messages: vec![AppendMessage {
                    flags: vec![s("\\Draft")],
                    date: None,
                    content: AppendContent::Literal {
                        bytes: b"a\0b".to_vec(),
                        binary: true
                    },
                }],
            }
        );
        ok("a APPEND Drafts ~{3+}\r\nabc");
        bad("a APPEND INBOX \"hello\"");
        bad("a APPEND INBOX hello");
        bad("a APPEND INBOX {5}\r\nabc");
        bad("a APPEND INBOX {3}\r\nabc extra");
        bad("a APPEND INBOX (\\*) {1}\r\nx");
        bad("a APPEND INBOX");
        bad("a APPEND INBOX {1}\r\nx ");
        bad("a APPEND INBOX {1}\r\nx {1}");
    }

    #[test]
    fn append_utf8_literal() {
        // RFC 6855 4: as Python's imaplib and Horde send it after ENABLE UTF8=ACCEPT.
        let literal = |bytes: &[u8]| AppendContent::Literal {
            bytes: bytes.to_vec(),
            binary: true,
        };
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX (\\Seen) UTF8 (~{12+}\r\nSubject: é\n)")
        else {
            panic!()
        };
        assert_eq!(messages[0].flags, vec![s("\\Seen")]);
        assert_eq!(messages[0].content, literal("Subject: é\n".as_bytes()));
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX \"1-Jan-2000 00:00:00 +0000\" utf8 ({2}\r\nhi) UTF8 (~{2}\r\nyo)")
        else {
            panic!()
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].content, literal(b"yo"));
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX CATENATE (URL \"/INBOX;UID=1\" UTF8 (~{2}\r\nhi) TEXT {1}\r\n!)")
        else {
            panic!()
        };
        assert_eq!(
            messages[0].content,
            AppendContent::Catenate(vec![
                CatPart::Url(s("/INBOX;UID=1")),
                CatPart::Text(b"hi".to_vec()),
                CatPart::Text(b"!".to_vec()),
            ])
        );
        bad("a APPEND INBOX UTF8 ~{2}\r\nhi");
        bad("a APPEND INBOX UTF8 (~{2}\r\nhi");
        bad("a APPEND INBOX UTF8 (\"hi\")");
        bad("a APPEND INBOX UTF8(~{2}\r\nhi)");
        bad("a APPEND INBOX CATENATE (UTF8 (~{2}\r\nhi)");
    }

    #[test]
    fn replace_takes_one_append_message() {
        let CommandBody::Replace {
            uid,
            number,
            mailbox,
            message,
        } = ok("A003 REPLACE 4 Drafts (\\Seen \\Draft) {3}\r\nnew")
        else {
            panic!()
        };
        assert_eq!((uid, number, mailbox.as_str()), (false, 4, "Drafts"));
        assert_eq!(message.flags.len(), 2);
        let CommandBody::Replace { uid, .. } =
            ok("a UID REPLACE 20 Drafts CATENATE (TEXT {1}\r\nx)")
        else {
            panic!()
        };
        assert!(uid);
        bad("a REPLACE 0 Drafts {1}\r\nx");
        bad("a REPLACE 1 Drafts {1}\r\nx {1}\r\ny");
        bad("a REPLACE * Drafts {1}\r\nx");
    }

    #[test]
    fn multiappend_and_catenate() {
        // RFC 3502 example shape: each message with its own options.
        let CommandBody::Append { mailbox, messages } =
            ok("A003 APPEND saved-messages (\\Seen) {3}\r\none \"1-Jan-2000 00:00:00 +0000\" {3}\r\ntwo {5}\r\nthree")
        else {
            panic!()
        };
        assert_eq!(mailbox, "saved-messages");
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].flags, vec![s("\\Seen")]);
        assert!(messages[1].flags.is_empty() && messages[1].date.is_some());
        assert_eq!(
            messages[2].content,
            AppendContent::Literal {
                bytes: b"three".to_vec(),
                binary: false
            }
        );
        // RFC 4469 5 example.
        let CommandBody::Append { messages, .. } = ok(
            "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {4}\r\n\r\nhi URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME\") {2}\r\nok",
        ) else {
            panic!()
        };
        assert_eq!(
            messages[0].content,
            AppendContent::Catenate(vec![
                CatPart::Url(s("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER")),
                CatPart::Text(b"\r\nhi".to_vec()),
                CatPart::Url(s("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME")),
            ])
        );
        assert_eq!(messages.len(), 2);
        // IMAPClient's MULTIAPPEND: two spaces after each literal.
        let CommandBody::Append { messages, .. } =
            ok("a APPEND \"INBOX\" {3+}\r\none  {3+}\r\ntwo  (\\Seen) {5+}\r\nthree")
        else {
            panic!()
        };
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2].flags, vec![s("\\Seen")]);
        bad("a APPEND INBOX {1}\r\nx  ");
        bad("a APPEND INBOX CATENATE ()");
        bad("a APPEND INBOX CATENATE (TEXT ~{1}\r\nx)");
        bad("a APPEND INBOX CATENATE (FOO \"x\")");
        bad("a APPEND INBOX CATENATE (URL \"x\"");
        let many = format!("a APPEND INBOX CATENATE ({})", vec!["URL x"; 101].join(" "));
        bad(&many);
    }

    #[test]
    fn store() {
        assert_eq!(
            ok("A003 STORE 2:4 +FLAGS (\\Deleted)"),
            CommandBody::Store {
                uid: false,
                set: ranges(&[rng(v(2), v(4))]),
                op: StoreOp::Add,
                silent: false,
                flags: vec![s("\\Deleted")],
                unchanged_since: None
            }
        );
        assert_eq!(
            ok("a UID STORE 1:* -flags.silent \\Seen $Junk"),
            CommandBody::Store {
                uid: true,
                set: ranges(&[rng(v(1), SeqNum::Star)]),
                op: StoreOp::Remove,
                silent: true,
                flags: vec![s("\\Seen"), s("$Junk")],
                unchanged_since: None
            }
        );
        assert_eq!(
            ok("a STORE $ FLAGS ()"),
            CommandBody::Store {
                uid: false,
                set: SequenceSet::Saved,
                op: StoreOp::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None
            }
        );
        // RFC 7162 3.1.3.
        let CommandBody::Store {
            unchanged_since,
            silent,
            ..
        } = ok("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)")
        else {
            panic!()
        };
        assert_eq!((unchanged_since, silent), (Some(12121230045), true));
        bad("a STORE 1 +FLAGS");
        bad("a STORE 1 +FLAGS ");
        bad("a STORE 1 FLAGS.LOUD (\\Seen)");
        bad("a STORE 1 *FLAGS (\\Seen)");
        bad("a STORE 1 +FLAGS (\\Seen");
        bad("a STORE 1 +FLAGS (\\*)");
        bad("a STORE 1 (UNCHANGEDSINCE 1) ");
        bad("a STORE 1 (FOO 1) FLAGS ()");
        bad("a STORE 1 (UNCHANGEDSINCE x) FLAGS ()");
    }
}
