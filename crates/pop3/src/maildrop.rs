//! The maildrop: INBOX as a snapshot of its live records at login, and messages put
//! on the wire (dot-stuffed, whole or as TOP's header and first lines).

use tern_store::{Mailbox, MailboxView, Uid, ViewMessage};

/// One message of the snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) record: ViewMessage,
    /// Marked by DELE in this session (undone by RSET).
    pub(crate) deleted: bool,
    /// Sent by RETR: marked `\Seen` at QUIT.
    pub(crate) retrieved: bool,
}

/// INBOX as it was at login: message `n` is `messages[n - 1]`.
pub(crate) struct Maildrop {
    pub(crate) mailbox: Mailbox,
    pub(crate) messages: Vec<Message>,
}

impl Maildrop {
    /// The maildrop of one [`Store::mailbox_view`](tern_store::Store::mailbox_view)
    /// snapshot.
    pub(crate) fn new(view: MailboxView) -> Maildrop {
        let mailbox = view.mailbox;
        let messages = view
            .messages
            .into_iter()
            .map(|record| Message {
                record,
                deleted: false,
                retrieved: false,
            })
            .collect();
        Maildrop { mailbox, messages }
    }

    /// Message `n` unless out of range or marked deleted.
    pub(crate) fn get(&self, n: u32) -> Option<&Message> {
        let m = self.messages.get((n as usize).checked_sub(1)?)?;
        (!m.deleted).then_some(m)
    }

    pub(crate) fn get_mut(&mut self, n: u32) -> Option<&mut Message> {
        let m = self.messages.get_mut((n as usize).checked_sub(1)?)?;
        (!m.deleted).then_some(m)
    }

    /// Messages not marked deleted, and their octets.
    pub(crate) fn stat(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.record.size))
    }

    /// The UIDL of a message: `<uidvalidity>.<uid>`.
    pub(crate) fn uidl(&self, m: &Message) -> String {
        format!("{}.{}", self.mailbox.uidvalidity, m.record.uid)
    }

    pub(crate) fn deleted_uids(&self) -> Vec<Uid> {
        self.messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.record.uid)
            .collect()
    }

    /// Retrieved messages still there at QUIT (a deleted one needs no flag).
    pub(crate) fn retrieved_uids(&self) -> Vec<Uid> {
        self.messages
            .iter()
            .filter(|m| m.retrieved && !m.deleted && !m.record.seen)
            .map(|m| m.record.uid)
            .collect()
    }
}

/// Turns message bytes, fed in chunks, into the multi-line answer's body: a `.` at the
/// start of a line is doubled (RFC 1939 3), and with a line limit (TOP) the output
/// stops after the header, the blank line and that many body lines.
pub(crate) struct Stuffer {
    at_line_start: bool,
    /// Octets of the current line so far, its line ending included once seen.
    line_len: usize,
    /// The current line began with CR (so `\r\n` alone is the blank line, even when
    /// the CR and the LF arrive in different chunks).
    starts_with_cr: bool,
    in_body: bool,
    /// Body lines still to send; `None` for the whole message.
    lines_left: Option<u32>,
    done: bool,
}

impl Stuffer {
    pub(crate) fn new(body_lines: Option<u32>) -> Stuffer {
        Stuffer {
            at_line_start: true,
            line_len: 0,
            starts_with_cr: false,
            in_body: false,
            lines_left: body_lines,
            done: false,
        }
    }

    /// True once TOP's lines are all out: the rest of the message is not needed.
    pub(crate) fn done(&self) -> bool {
        self.done
    }

    /// Appends the wire form of `chunk` to `out`.
    pub(crate) fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if self.in_body && self.lines_left == Some(0) {
            self.done = true;
        }
        while !chunk.is_empty() && !self.done {
            if self.at_line_start {
                if chunk[0] == b'.' {
                    out.push(b'.');
                }
                self.starts_with_cr = chunk[0] == b'\r';
            }
            let (line, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..=i], true),
                None => (chunk, false),
            };
            out.extend_from_slice(line);
            chunk = &chunk[line.len()..];
            if !ends {
                self.at_line_start = false;
                self.line_len += line.len();
                continue;
            }
            let whole = self.line_len + line.len();
            let blank = whole == 1 || (whole == 2 && self.starts_with_cr);
            self.at_line_start = true;
            self.line_len = 0;
            if self.in_body {
                if let Some(left) = self.lines_left.as_mut() {
                    *left = left.saturating_sub(1);
                }
            } else if blank {
                self.in_body = true;
            }
            if self.in_body && self.lines_left == Some(0) {
                self.done = true;
            }
        }
    }

    /// Ends the answer: a line ending when the message did not end with one, then the
    /// terminating `.` line.
    pub(crate) fn finish(&self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(message: &[u8], lines: Option<u32>, chunk: usize) -> String {
        let mut s = Stuffer::new(lines);
        let mut out = Vec::new();
        for c in message.chunks(chunk) {
            s.feed(c, &mut out);
        }
        s.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    const MSG: &[u8] = b"Subject: x\r\nFrom: a\r\n\r\nline 1\r\n.dot\r\n..two\r\nline 4\r\n";

    #[test]
    fn dots_are_stuffed_across_chunk_boundaries() {
        for chunk in 1..MSG.len() + 1 {
            assert_eq!(
                wire(MSG, None, chunk),
                "Subject: x\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n...two\r\nline 4\r\n.\r\n"
            );
        }
    }

    #[test]
    fn top_sends_the_header_blank_line_and_n_lines() {
        for chunk in [1, 3, 1000] {
            assert_eq!(
                wire(MSG, Some(0), chunk),
                "Subject: x\r\nFrom: a\r\n\r\n.\r\n"
            );
            assert_eq!(
                wire(MSG, Some(2), chunk),
                "Subject: x\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n.\r\n"
            );
            assert_eq!(wire(MSG, Some(99), chunk), wire(MSG, None, chunk));
        }
    }

    #[test]
    fn a_message_without_final_line_ending_gets_one() {
        assert_eq!(
            wire(b"A: b\r\n\r\nend", None, 4),
            "A: b\r\n\r\nend\r\n.\r\n"
        );
        assert_eq!(wire(b"", None, 4), ".\r\n");
    }
}
