//! The body of a multi-line answer (POP3 RETR/TOP, NNTP ARTICLE/HEAD/BODY): message
//! bytes, fed in chunks as they are read from the file, dot-stuffed (a `.` at the
//! start of a line doubled, RFC 1939 3 and RFC 3977 3.1.1) and cut to the part asked
//! for, then ended with the `.` line.

/// Which part of the message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All of it.
    Whole,
    /// The header, the blank line and this many body lines (POP3 TOP).
    Top(u32),
    /// The header alone, without the blank line after it (NNTP HEAD).
    Head,
    /// What follows the blank line (NNTP BODY).
    Body,
}

/// Dot-stuffs message bytes fed in chunks; see the module documentation.
pub struct DotStuffer {
    part: Part,
    at_line_start: bool,
    /// Octets of the current line so far, its line ending included once seen.
    line_len: usize,
    /// The current line began with CR (so `\r\n` alone is the blank line, even when
    /// the CR and the LF arrive in different chunks).
    starts_with_cr: bool,
    in_body: bool,
    /// Body lines still to send (`Part::Top`).
    lines_left: Option<u32>,
    /// Bytes of the current line held back until it is known not to be the blank
    /// line (`Part::Head` must not send it).
    held: Vec<u8>,
    done: bool,
}

impl DotStuffer {
    /// A stuffer sending `part`.
    pub fn new(part: Part) -> DotStuffer {
        DotStuffer {
            part,
            at_line_start: true,
            line_len: 0,
            starts_with_cr: false,
            in_body: false,
            lines_left: match part {
                Part::Top(n) => Some(n),
                _ => None,
            },
            held: Vec::new(),
            done: false,
        }
    }

    /// True once the part is complete: the rest of the message is not needed.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Appends the wire form of `chunk` (its share of the part) to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if self.part == Part::Whole {
            self.feed_whole(chunk, out);
            return;
        }
        if self.in_body && self.lines_left == Some(0) {
            self.done = true;
        }
        while !chunk.is_empty() && !self.done {
            let sending = match self.part {
                Part::Body => self.in_body,
                _ => true,
            };
            if self.at_line_start {
                self.starts_with_cr = chunk[0] == b'\r';
                if sending && chunk[0] == b'.' {
                    out.push(b'.');
                }
            }
            let (line, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..=i], true),
                None => (chunk, false),
            };
            chunk = &chunk[line.len()..];
            let whole = self.line_len + line.len();
            // A line that may still turn out to be the blank line is held back from
            // a HEAD (only `\r` so far, or nothing but the line ending).
            let maybe_blank = !self.in_body && (whole == 1 || (whole <= 2 && self.starts_with_cr));
            if self.part == Part::Head && maybe_blank {
                self.held.extend_from_slice(line);
            } else if sending {
                out.append(&mut self.held);
                out.extend_from_slice(line);
            }
            if !ends {
                self.at_line_start = false;
                self.line_len = whole;
                continue;
            }
            let blank = whole == 1 || (whole == 2 && self.starts_with_cr);
            self.at_line_start = true;
            self.line_len = 0;
            if self.in_body {
                if let Some(left) = self.lines_left.as_mut() {
                    *left = left.saturating_sub(1);
                }
            } else if blank {
                self.in_body = true;
                self.held.clear();
                if self.part == Part::Head {
                    self.done = true;
                }
            }
            if self.in_body && self.lines_left == Some(0) {
                self.done = true;
            }
        }
    }

    /// The whole message needs no line bookkeeping: only the line starts that are a
    /// `.`, found with a vectorised search, so a message is copied in a few spans.
    fn feed_whole(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = chunk.last() else {
            return;
        };
        out.reserve(chunk.len() + 8);
        if self.at_line_start && chunk[0] == b'.' {
            out.push(b'.');
        }
        let mut start = 0;
        for i in memchr::memmem::find_iter(chunk, b"\n.") {
            out.extend_from_slice(&chunk[start..=i]);
            out.push(b'.');
            start = i + 1;
        }
        out.extend_from_slice(&chunk[start..]);
        self.at_line_start = last == b'\n';
    }

    /// Ends the answer: a line ending when the part did not end with one, then the
    /// terminating `.` line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.part != Part::Head {
            out.append(&mut self.held);
        }
        let sent_any = match self.part {
            Part::Body => self.in_body,
            _ => true,
        };
        if sent_any && !self.at_line_start && !(self.part == Part::Head && self.done) {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(message: &[u8], part: Part, chunk: usize) -> String {
        let mut s = DotStuffer::new(part);
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
                wire(MSG, Part::Whole, chunk),
                "Subject: x\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n...two\r\nline 4\r\n.\r\n"
            );
        }
    }

    #[test]
    fn top_sends_the_header_blank_line_and_n_lines() {
        for chunk in [1, 3, 1000] {
            assert_eq!(
                wire(MSG, Part::Top(0), chunk),
                "Subject: x\r\nFrom: a\r\n\r\n.\r\n"
            );
            assert_eq!(
                wire(MSG, Part::Top(2), chunk),
                "Subject: x\r\nFrom: a\r\n\r\nline 1\r\n..dot\r\n.\r\n"
            );
            assert_eq!(
                wire(MSG, Part::Top(99), chunk),
                wire(MSG, Part::Whole, chunk)
            );
        }
    }

    #[test]
    fn head_and_body_split_at_the_blank_line() {
        for chunk in 1..MSG.len() + 1 {
            assert_eq!(
                wire(MSG, Part::Head, chunk),
                "Subject: x\r\nFrom: a\r\n.\r\n",
                "chunk {chunk}"
            );
            assert_eq!(
                wire(MSG, Part::Body, chunk),
                "line 1\r\n..dot\r\n...two\r\nline 4\r\n.\r\n",
                "chunk {chunk}"
            );
        }
        assert_eq!(wire(b"A: b\r\n", Part::Head, 2), "A: b\r\n.\r\n");
        assert_eq!(wire(b"A: b\r\n", Part::Body, 2), ".\r\n");
        assert_eq!(wire(b"A: b\n\n.x\n", Part::Body, 1), "..x\n.\r\n");
    }

    #[test]
    fn a_message_without_final_line_ending_gets_one() {
        assert_eq!(
            wire(b"A: b\r\n\r\nend", Part::Whole, 4),
            "A: b\r\n\r\nend\r\n.\r\n"
        );
        assert_eq!(wire(b"", Part::Whole, 4), ".\r\n");
        assert_eq!(wire(b"A: b\r\n\r\nend", Part::Body, 3), "end\r\n.\r\n");
    }

    /// The whole-message fast path agrees with the line-by-line path (TOP of more
    /// lines than the message has) on random messages cut into random chunks.
    #[test]
    fn whole_agrees_with_line_by_line() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rng = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (rng() % 200) as usize;
            let message: Vec<u8> = (0..len).map(|_| b".\r\nab"[(rng() % 5) as usize]).collect();
            let chunk = 1 + (rng() % 40) as usize;
            assert_eq!(
                wire(&message, Part::Whole, chunk),
                wire(&message, Part::Top(u32::MAX), chunk),
                "{message:?} in chunks of {chunk}"
            );
        }
    }
}
