//! The grammar of METADATA (RFC 5464): GETMETADATA with its MAXSIZE and DEPTH options,
//! and SETMETADATA with NIL to remove an entry.

use super::lexer::{fail, upper, P, R};
use crate::types::{CommandBody, MetadataDepth};

/// The most entries one command may name: far above what a client needs, and it
/// bounds the work a hostile command can ask for.
const MAX_ENTRIES: usize = 256;

impl<'a> P<'a> {
    /// An entry name (astring), lower-cased: RFC 5464 entry names are case-insensitive.
    fn entry(&mut self) -> R<String> {
        let raw = self.astring()?;
        if !raw.iter().all(|&b| (0x21..0x7f).contains(&b)) {
            return fail("entry names are printable ASCII");
        }
        Ok(String::from_utf8_lossy(&raw).to_ascii_lowercase())
    }

    /// GETMETADATA's options after their `(`, through the `)`.
    fn metadata_options(&mut self) -> R<(Option<u64>, MetadataDepth)> {
        let mut maxsize = None;
        let mut depth = MetadataDepth::Zero;
        loop {
            let option = self.keyword()?;
            self.sp()?;
            match option.as_str() {
                "MAXSIZE" => maxsize = Some(self.number64()?),
                "DEPTH" => {
                    depth = match upper(self.atom()?).as_str() {
                        "0" => MetadataDepth::Zero,
                        "1" => MetadataDepth::One,
                        "INFINITY" => MetadataDepth::Infinity,
                        _ => return fail("DEPTH is 0, 1 or infinity"),
                    }
                }
                _ => return fail("unknown GETMETADATA option"),
            }
            if self.eat(b')') {
                return Ok((maxsize, depth));
            }
            self.sp()?;
        }
    }

    /// `GETMETADATA [SP options] SP mailbox SP entries` (RFC 5464 section 5). The
    /// RFC's own examples put the options after the mailbox and list several entries
    /// without parentheses; clients copied them, so both are accepted too. Options
    /// start with a letter and entries with `/` (or a quote), so there is no ambiguity.
    pub(super) fn getmetadata(&mut self) -> R<CommandBody> {
        let mut options = (None, MetadataDepth::Zero);
        if self.peek_at(0) == Some(b' ') && self.peek_at(1) == Some(b'(') {
            self.pos += 2;
            options = self.metadata_options()?;
        }
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        if self.peek() == Some(b'(') && self.peek_at(1).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
            options = self.metadata_options()?;
            self.sp()?;
        }
        let mut entries = Vec::new();
        let list = self.eat(b'(');
        loop {
            entries.push(self.entry()?);
            if entries.len() > MAX_ENTRIES {
                return fail("too many entries");
            }
            if list && self.eat(b')') {
                break;
            }
            if !list && self.peek() != Some(b' ') {
                break;
            }
            self.sp()?;
        }
        let (maxsize, depth) = options;
        Ok(CommandBody::GetMetadata {
            mailbox,
            entries,
            maxsize,
            depth,
        })
    }

    pub(super) fn setmetadata(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        self.open()?;
        let mut entries = Vec::new();
        loop {
            let entry = self.entry()?;
            self.sp()?;
            let value = if self.peek() == Some(b'~') {
                Some(self.literal(true)?.0.to_vec())
            } else {
                self.nstring()?.map(|v| v.into_owned())
            };
            entries.push((entry, value));
            if entries.len() > MAX_ENTRIES {
                return fail("too many entries");
            }
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        Ok(CommandBody::SetMetadata { mailbox, entries })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::ok;
    use crate::types::{CommandBody, MetadataDepth};

    #[test]
    fn getmetadata_forms() {
        assert_eq!(
            ok("a GETMETADATA \"\" /Shared/Comment"),
            CommandBody::GetMetadata {
                mailbox: String::new(),
                entries: vec!["/shared/comment".into()],
                maxsize: None,
                depth: MetadataDepth::Zero,
            }
        );
        assert_eq!(
            ok("a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX (/private /shared/x)"),
            CommandBody::GetMetadata {
                mailbox: "INBOX".into(),
                entries: vec!["/private".into(), "/shared/x".into()],
                maxsize: Some(1024),
                depth: MetadataDepth::Infinity,
            }
        );
    }

    #[test]
    fn getmetadata_as_in_the_rfc_examples() {
        assert_eq!(
            ok("a GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)"),
            CommandBody::GetMetadata {
                mailbox: "INBOX".into(),
                entries: vec!["/shared/comment".into(), "/private/comment".into()],
                maxsize: Some(1024),
                depth: MetadataDepth::Zero,
            }
        );
        assert_eq!(
            ok("a GETMETADATA \"INBOX\" /private/comment /shared/comment"),
            CommandBody::GetMetadata {
                mailbox: "INBOX".into(),
                entries: vec!["/private/comment".into(), "/shared/comment".into()],
                maxsize: None,
                depth: MetadataDepth::Zero,
            }
        );
    }

    #[test]
    fn setmetadata_forms() {
        assert_eq!(
            ok("a SETMETADATA INBOX (/shared/comment \"hi\" /private/x NIL)"),
            CommandBody::SetMetadata {
                mailbox: "INBOX".into(),
                entries: vec![
                    ("/shared/comment".into(), Some(b"hi".to_vec())),
                    ("/private/x".into(), None)
                ],
            }
        );
    }
}
