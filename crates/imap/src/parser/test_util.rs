//! Helpers shared by the parser's unit tests.

use super::{parse_command, CommandReader, Event, ParseError};
use crate::types::{CommandBody, Date, SeqNum, SeqRange, SequenceSet};

pub(super) fn ok(s: &str) -> CommandBody {
    okb(s.as_bytes())
}

pub(super) fn okb(b: &[u8]) -> CommandBody {
    match parse_command(b, false) {
        Ok(c) => c.body,
        Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(b)),
    }
}

pub(super) fn bad(s: &str) -> ParseError {
    match parse_command(s.as_bytes(), false) {
        Ok(c) => panic!("{s:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

pub(super) fn v(n: u32) -> SeqNum {
    SeqNum::Value(n)
}

pub(super) fn rng(a: SeqNum, b: SeqNum) -> SeqRange {
    SeqRange { start: a, end: b }
}

pub(super) fn one(n: u32) -> SeqRange {
    rng(v(n), v(n))
}

pub(super) fn ranges(r: &[SeqRange]) -> SequenceSet {
    SequenceSet::Ranges(r.to_vec())
}

pub(super) fn s(x: &str) -> String {
    x.to_owned()
}

pub(super) fn date(year: i32, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

/// Feeds everything, in chunks of `chunk` bytes, collecting non-NeedMore events.
/// Synchronizing literals are accepted.
pub(super) fn run(reader: &mut CommandReader, input: &[u8], chunk: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut off = 0;
    while off < input.len() {
        let end = (off + chunk).min(input.len());
        let mut piece = &input[off..end];
        while !piece.is_empty() {
            let (n, ev) = reader.feed(piece);
            assert!(n <= piece.len());
            if ev == Event::NeedMore {
                assert_eq!(n, piece.len());
            } else {
                assert!(n > 0);
                events.push(ev);
            }
            piece = &piece[n..];
        }
        off = end;
    }
    events
}

pub(super) fn corpus() -> Vec<&'static [u8]> {
    vec![
        b"a1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT)])",
        b"x UID SEARCH CHARSET UTF-8 OR (FROM \"a\" SUBJECT {4+}\r\nt\xc3\xa9t) NOT DELETED",
        b"A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5+}\r\nHello",
        b"a APPEND Drafts ~{3+}\r\na\0b",
        b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man",
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 4:6)))",
        b"a EXAMINE Entw&APw-rfe (CONDSTORE)",
        b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted $Junk)",
        b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN HIGHESTMODSEQ))",
        b"A284 UID SORT RETURN (MIN) (REVERSE DATE SUBJECT) UTF-8 SUBJECT \"afternoon meeting\" SINCE 1-Feb-1994",
        b"A283 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000 (OR SEEN (NOT 1:5,7) $)",
        b"a SEARCH RETURN (SAVE MIN) MODSEQ \"/flags/\\\\draft\" all 620162338 HEADER X-Foo {3}\r\nbar",
        b"a fetch 1 (BODY[4.1.HEADER.FIELDS.NOT (To)]<10.20> BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] ENVELOPE)",
        b"t1 CREATE \"Important Messages\" (USE (\\Important \\Sent))",
        b"a023 ID (\"name\" \"sodr\" \"os\" NIL)",
        b"a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0",
        b"S0000 SETQUOTA \"User quota\" (STORAGE 512)",
        b"A035 SETACL INBOX/Drafts John lrQswicda",
        b"a ENABLE QRESYNC UTF8=ACCEPT",
        b"A202 UID EXPUNGE 3000:3002",
        b"a UID MOVE $ Trash",
        b"a STATUS INBOX (MESSAGES SIZE DELETED APPENDLIMIT)",
        b"a COMPRESS DEFLATE",
        b"a SEARCH YOUNGER 3600 OLDER 60 SENTON \"31-Dec-1999\" LARGER 100 UID 1,2:*",
        b"a UID SEARCH RETURN (COUNT PARTIAL -1:-100) UNDELETED",
        b"a SORT RETURN (MIN PARTIAL 2:4) (REVERSE ARRIVAL) US-ASCII ALL",
        b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 PARTIAL -1:-30)",
        b"a APPEND INBOX (\\Seen) {3+}\r\none \"1-Jan-2000 00:00:00 +0000\" ~{3+}\r\nt\0o",
        b"a APPEND Drafts CATENATE (URL \"/INBOX;UIDVALIDITY=7/;UID=2/;SECTION=1.MIME\" TEXT {2+}\r\nhi) CATENATE (URL \"imap://u@h/%41/;UID=1/;PARTIAL=0.9\")",
        b"a NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (subtree (INBOX \"a b\") (MailboxName SubscriptionChange))",
        b"a NOTIFY SET (personal (MessageNew MessageExpunge)) (mailboxes {5+}\r\nTrash NONE)",
        b"a NOTIFY NONE",
        b"a GENURLAUTH \"imap://u@h/INBOX/;UID=1;urlauth=submit+u\" INTERNAL \"imap://u@h/x/;uid=2;expire=2030-01-01T00:00:00Z;urlauth=anonymous\" INTERNAL",
        b"a URLFETCH \"imap://u@h/INBOX/;UID=1;urlauth=submit+u:internal:0123abcd\" (\"imap://u@h/a/;UID=2/;SECTION=1\" BODYPARTSTRUCTURE BINARY)",
        b"a RESETKEY INBOX INTERNAL",
        b"a UID REPLACE 4 INBOX (\\Seen) {3+}\r\nabc",
        b"a REPLACE 1 Drafts CATENATE (TEXT {2+}\r\nhi)",
    ]
}
