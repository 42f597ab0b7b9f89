//! The grammar of the commands that add or change messages: APPEND (flags, date-time,
//! literal or literal8), STORE (with UNCHANGEDSINCE), COPY and MOVE.

use super::lexer::{fail, fail_with, P, R};
use crate::types::{CommandBody, StoreOp};

impl<'a> P<'a> {
    pub(super) fn append(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
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
        if !matches!(self.peek(), Some(b'{' | b'~')) {
            return fail("APPEND needs a literal");
        }
        let (message, binary) = self.literal(true)?;
        Ok(CommandBody::Append {
            mailbox,
            flags,
            date,
            message: message.to_vec(),
            binary,
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
                flags: vec![s("\\Seen")],
                date: None,
                message: RFC3501_MESSAGE.as_bytes().to_vec(),
                binary: false,
            }
        );
    }

    #[test]
    fn append_binary_and_errors() {
        assert_eq!(
            okb(b"a APPEND Drafts (\\Draft) ~{3}\r\na\0b"),
            CommandBody::Append {
                mailbox: s("Drafts"),
                flags: vec![s("\\Draft")],
                date: None,
                message: b"a\0b".to_vec(),
                binary: true
            }
        );
        ok("a APPEND Drafts ~{3+}\r\nabc");
        bad("a APPEND INBOX \"hello\"");
        bad("a APPEND INBOX hello");
        bad("a APPEND INBOX {5}\r\nabc");
        bad("a APPEND INBOX {3}\r\nabc extra");
        bad("a APPEND INBOX (\\*) {1}\r\nx");
        bad("a APPEND INBOX");
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
