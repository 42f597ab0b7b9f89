//! The stored form of a [`Summary`]: a version byte, then every field length-prefixed,
//! the MIME structure depth-first. Bytes from another version, or damaged ones, do
//! not decode, and their reader recomputes the summary from the message: decoding is
//! bounded (lengths are checked against what is left, nesting is capped) and never
//! panics.

use crate::address::Address;
use crate::summary::{BodyPart, Content, Disposition, Envelope, SortKeys, Summary};

/// Version 1 held IMAP's rendered ENVELOPE and BODYSTRUCTURE; version 2 the
/// protocol-neutral structure; version 3 adds the Date header's own calendar day.
const VERSION: u8 = 3;

/// Deepest structure decoded: the parser stops nesting at [`crate::MAX_DEPTH`].
const MAX_NESTING: usize = 2 * crate::MAX_DEPTH + 4;

const NONE: u32 = u32::MAX;

impl Summary {
    /// The stored form, which [`Summary::from_bytes`] reads back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(512));
        w.0.push(VERSION);
        w.u64(self.size);
        w.envelope(&self.envelope);
        w.part(&self.structure);
        w.opt(self.from_field.as_deref());
        w.opt(self.references_field.as_deref());
        for value in [self.keys.date, self.keys.sent_day] {
            match value {
                Some(d) => {
                    w.0.push(1);
                    w.0.extend_from_slice(&d.to_le_bytes());
                }
                None => w.0.push(0),
            }
        }
        w.opt(self.keys.subject.as_deref().map(str::as_bytes));
        w.opt(Some(self.keys.base_subject.as_bytes()));
        for s in [
            &self.keys.from_mailbox,
            &self.keys.to_mailbox,
            &self.keys.cc_mailbox,
            &self.keys.display_from,
            &self.keys.display_to,
            &self.keys.message_id,
            &self.keys.in_reply_to,
        ] {
            w.opt(s.as_deref().map(str::as_bytes));
        }
        w.u32(self.keys.references.len() as u32);
        for r in &self.keys.references {
            w.opt(Some(r.as_bytes()));
        }
        w.0
    }

    /// Reads what [`Summary::to_bytes`] wrote; `None` for anything else (another
    /// version, truncated or damaged bytes).
    pub fn from_bytes(bytes: &[u8]) -> Option<Summary> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(1)?[0] != VERSION {
            return None;
        }
        let size = r.u64()?;
        let envelope = r.envelope()?;
        let structure = r.part(0)?;
        let from_field = r.opt()?;
        let references_field = r.opt()?;
        let date = r.optional_i64()?;
        let sent_day = r.optional_i64()?;
        let subject = r.string()?;
        let base_subject = r.string()?.unwrap_or_default();
        let from_mailbox = r.string()?;
        let to_mailbox = r.string()?;
        let cc_mailbox = r.string()?;
        let display_from = r.string()?;
        let display_to = r.string()?;
        let message_id = r.string()?;
        let in_reply_to = r.string()?;
        let n = r.count()?;
        let mut references = Vec::with_capacity(n);
        for _ in 0..n {
            references.push(r.string()??);
        }
        if r.pos != bytes.len() {
            return None;
        }
        Some(Summary {
            size,
            envelope,
            structure,
            from_field,
            references_field,
            keys: SortKeys {
                date,
                sent_day,
                subject,
                base_subject,
                from_mailbox,
                to_mailbox,
                cc_mailbox,
                display_from,
                display_to,
                message_id,
                in_reply_to,
                references,
            },
        })
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u32(b.len() as u32);
                self.0.extend_from_slice(b);
            }
            None => self.u32(NONE),
        }
    }

    fn list(&mut self, items: &[Vec<u8>]) {
        self.u32(items.len() as u32);
        for i in items {
            self.opt(Some(i));
        }
    }

    fn params(&mut self, params: &[(Vec<u8>, Vec<u8>)]) {
        self.u32(params.len() as u32);
        for (n, v) in params {
            self.opt(Some(n));
            self.opt(Some(v));
        }
    }

    fn addresses(&mut self, list: &[Address]) {
        self.u32(list.len() as u32);
        for a in list {
            match a {
                Address::Mailbox {
                    name,
                    adl,
                    mailbox,
                    host,
                } => {
                    self.0.push(0);
                    self.opt(name.as_deref());
                    self.opt(adl.as_deref());
                    self.opt(Some(mailbox));
                    self.opt(Some(host));
                }
                Address::GroupStart(name) => {
                    self.0.push(1);
                    self.opt(Some(name));
                }
                Address::GroupEnd => self.0.push(2),
            }
        }
    }

    fn envelope(&mut self, e: &Envelope) {
        self.opt(e.date.as_deref());
        self.opt(e.subject.as_deref());
        for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
            self.addresses(list);
        }
        self.opt(e.in_reply_to.as_deref());
        self.opt(e.message_id.as_deref());
    }

    fn part(&mut self, p: &BodyPart) {
        self.opt(Some(&p.media_type));
        self.opt(Some(&p.subtype));
        self.params(&p.params);
        self.opt(p.id.as_deref());
        self.opt(p.description.as_deref());
        self.opt(p.encoding.as_deref());
        self.u64(p.size);
        self.u64(p.lines);
        match &p.disposition {
            Some(d) => {
                self.0.push(1);
                self.opt(Some(&d.kind));
                self.params(&d.params);
            }
            None => self.0.push(0),
        }
        self.list(&p.language);
        self.opt(p.location.as_deref());
        match &p.content {
            Content::Single => self.0.push(0),
            Content::Multipart(children) => {
                self.0.push(1);
                self.u32(children.len() as u32);
                for c in children {
                    self.part(c);
                }
            }
            Content::Message { envelope, body } => {
                self.0.push(2);
                self.envelope(envelope);
                self.part(body);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn optional_i64(&mut self) -> Option<Option<i64>> {
        match self.byte()? {
            0 => Some(None),
            _ => Some(Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))),
        }
    }

    /// An element count, refused when it could not fit in what is left (each element
    /// takes at least one byte), so a damaged count allocates nothing large.
    fn count(&mut self) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= self.bytes.len() - self.pos).then_some(n)
    }

    fn opt(&mut self) -> Option<Option<Vec<u8>>> {
        let len = self.u32()?;
        if len == NONE {
            return Some(None);
        }
        Some(Some(self.take(len as usize)?.to_vec()))
    }

    fn some(&mut self) -> Option<Vec<u8>> {
        self.opt()?
    }

    fn string(&mut self) -> Option<Option<String>> {
        match self.opt()? {
            None => Some(None),
            Some(b) => Some(Some(String::from_utf8(b).ok()?)),
        }
    }

    fn list(&mut self) -> Option<Vec<Vec<u8>>> {
        let n = self.count()?;
        (0..n).map(|_| self.some()).collect()
    }

    fn params(&mut self) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let n = self.count()?;
        (0..n).map(|_| Some((self.some()?, self.some()?))).collect()
    }

    fn addresses(&mut self) -> Option<Vec<Address>> {
        let n = self.count()?;
        (0..n)
            .map(|_| match self.byte()? {
                0 => Some(Address::Mailbox {
                    name: self.opt()?,
                    adl: self.opt()?,
                    mailbox: self.some()?,
                    host: self.some()?,
                }),
                1 => Some(Address::GroupStart(self.some()?)),
                2 => Some(Address::GroupEnd),
                _ => None,
            })
            .collect()
    }

    fn envelope(&mut self) -> Option<Envelope> {
        Some(Envelope {
            date: self.opt()?,
            subject: self.opt()?,
            from: self.addresses()?,
            sender: self.addresses()?,
            reply_to: self.addresses()?,
            to: self.addresses()?,
            cc: self.addresses()?,
            bcc: self.addresses()?,
            in_reply_to: self.opt()?,
            message_id: self.opt()?,
        })
    }

    fn part(&mut self, depth: usize) -> Option<BodyPart> {
        if depth > MAX_NESTING {
            return None;
        }
        let media_type = self.some()?;
        let subtype = self.some()?;
        let params = self.params()?;
        let id = self.opt()?;
        let description = self.opt()?;
        let encoding = self.opt()?;
        let size = self.u64()?;
        let lines = self.u64()?;
        let disposition = match self.byte()? {
            0 => None,
            1 => Some(Disposition {
                kind: self.some()?,
                params: self.params()?,
            }),
            _ => return None,
        };
        let language = self.list()?;
        let location = self.opt()?;
        let content = match self.byte()? {
            0 => Content::Single,
            1 => {
                let n = self.count()?;
                let mut children = Vec::with_capacity(n);
                for _ in 0..n {
                    children.push(self.part(depth + 1)?);
                }
                Content::Multipart(children)
            }
            2 => Content::Message {
                envelope: Box::new(self.envelope()?),
                body: Box::new(self.part(depth + 1)?),
            },
            _ => return None,
        };
        Some(BodyPart {
            media_type,
            subtype,
            params,
            id,
            description,
            encoding,
            size,
            lines,
            disposition,
            language,
            location,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::*;
    use crate::summarize;
    use crate::summary::Summary;

    #[test]
    fn summaries_round_trip() {
        for raw in [SIMPLE, ALTERNATIVE, MIXED, GROUPS, &b""[..]] {
            let s = summarize(raw);
            let bytes = s.to_bytes();
            assert_eq!(Summary::from_bytes(&bytes).as_ref(), Some(&s));
            for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
                assert!(Summary::from_bytes(&bytes[..cut]).is_none(), "cut {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Summary::from_bytes(&longer).is_none());
        }
        // Version 1 (rendered IMAP bytes) is not read back.
        assert!(Summary::from_bytes(&[1, 0, 0]).is_none());
    }

    /// Mutated messages (cut, spliced with MIME syntax, garbage): every summary they
    /// give reads back equal.
    #[test]
    fn summaries_of_mutated_messages_round_trip() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rng = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let snippets: [&[u8]; 6] = [
            b"\r\n",
            b"--outer\r\n",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"=?utf-8?b?",
            b"To: g:a@b;\r\n",
            b"\xff\x00",
        ];
        for iter in 0..2000 {
            let mut m = [SIMPLE, ALTERNATIVE, MIXED, GROUPS][iter % 4].to_vec();
            for _ in 0..1 + rng() % 6 {
                let at = (rng() as usize) % (m.len() + 1);
                match rng() % 3 {
                    0 => m.truncate(at),
                    1 => {
                        let sn = snippets[(rng() as usize) % snippets.len()];
                        m.splice(at..at, sn.iter().copied());
                    }
                    _ => m.insert(at, rng() as u8),
                }
            }
            let s = summarize(&m);
            assert_eq!(Summary::from_bytes(&s.to_bytes()).as_ref(), Some(&s));
        }
    }

    #[test]
    fn damaged_bytes_never_panic() {
        let good = summarize(MIXED).to_bytes();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = good.clone();
            let at = (state as usize) % b.len();
            b[at] = (state >> 32) as u8;
            if state.is_multiple_of(3) {
                b.truncate(at + 1);
            }
            let _ = Summary::from_bytes(&b);
        }
        // A huge count is refused before any allocation.
        let mut b = vec![2u8];
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(Summary::from_bytes(&b).is_none());
    }
}
