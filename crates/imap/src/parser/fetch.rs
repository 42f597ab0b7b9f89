//! The grammar of FETCH: the macros (ALL, FAST, FULL), the items, body sections
//! (`BODY[1.2.HEADER.FIELDS (...)]<0.100>`), BINARY parts, and the CONDSTORE/QRESYNC
//! modifiers.

use super::lexer::{fail, fail_with, upper, utf8, P, R};
use crate::types::{CommandBody, FetchAttr, Section, SectionText};

impl<'a> P<'a> {
    pub(super) fn fetch(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.eat(b'(') {
            loop {
                items.push(self.fetch_att()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.next_is("ALL") {
            self.pos += 3;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
            ];
        } else if self.next_is("FAST") {
            self.pos += 4;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
            ];
        } else if self.next_is("FULL") {
            self.pos += 4;
            items = vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body,
            ];
        } else {
            items.push(self.fetch_att()?);
        }
        let mut changed_since = None;
        let mut vanished = false;
        let mut partial = None;
        if self.eat(b' ') {
            self.open()?;
            loop {
                let k = self.keyword()?;
                match k.as_str() {
                    "CHANGEDSINCE" if changed_since.is_none() => {
                        self.sp()?;
                        changed_since = Some(self.modseq()?);
                    }
                    "VANISHED" if !vanished => vanished = true,
                    "PARTIAL" if partial.is_none() => {
                        self.sp()?;
                        partial = Some(self.partial_range()?);
                    }
                    _ => return fail_with("bad FETCH modifier", k.as_bytes()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            if vanished && (!uid || changed_since.is_none()) {
                return fail("VANISHED needs UID FETCH and CHANGEDSINCE");
            }
        }
        Ok(CommandBody::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
            partial,
        })
    }

    pub(super) fn fetch_att(&mut self) -> R<FetchAttr> {
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'.');
        let k = upper(name);
        Ok(match k.as_str() {
            "ENVELOPE" => FetchAttr::Envelope,
            "FLAGS" => FetchAttr::Flags,
            "INTERNALDATE" => FetchAttr::InternalDate,
            "RFC822" => FetchAttr::Rfc822,
            "RFC822.HEADER" => FetchAttr::Rfc822Header,
            "RFC822.SIZE" => FetchAttr::Rfc822Size,
            "EMAILID" => FetchAttr::EmailId,
            "SAVEDATE" => FetchAttr::SaveDate,
            "THREADID" => FetchAttr::ThreadId,
            "PREVIEW" => {
                // RFC 8970 3.2: `PREVIEW [SP "(" "LAZY" ")"]`; computing it is cheap
                // enough that LAZY changes nothing.
                if self.peek_at(0) == Some(b' ') && self.peek_at(1) == Some(b'(') {
                    self.pos += 2;
                    if self.keyword()? != "LAZY" {
                        return fail("unknown PREVIEW modifier");
                    }
                    self.expect(b')', "expected ')'")?;
                }
                FetchAttr::Preview
            }
            "RFC822.TEXT" => FetchAttr::Rfc822Text,
            "BODYSTRUCTURE" => FetchAttr::BodyStructure,
            "UID" => FetchAttr::Uid,
            "MODSEQ" => FetchAttr::Modseq,
            "BODY" if self.peek() != Some(b'[') => FetchAttr::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAttr::BodySection {
                    peek: k == "BODY.PEEK",
                    section,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                let partial = self.partial()?;
                FetchAttr::Binary {
                    peek: k == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" => FetchAttr::BinarySize {
                part: self.section_binary()?,
            },
            _ => return fail_with("unknown FETCH item", name),
        })
    }

    pub(super) fn section(&mut self) -> R<Section> {
        self.expect(b'[', "expected '['")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        let mut want_text = true;
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    want_text = false;
                    break;
                }
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    break;
                }
            }
        }
        if want_text {
            let name = self.take_while(|c| c.is_ascii_alphabetic() || c == b'.');
            let k = upper(name);
            section.text = Some(match k.as_str() {
                "HEADER" => SectionText::Header,
                "TEXT" => SectionText::Text,
                "MIME" if !section.part.is_empty() => SectionText::Mime,
                "HEADER.FIELDS" => {
                    self.sp()?;
                    SectionText::HeaderFields(self.header_list()?)
                }
                "HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    SectionText::HeaderFieldsNot(self.header_list()?)
                }
                _ => return fail_with("bad section", name),
            });
        }
        self.expect(b']', "expected ']'")?;
        Ok(section)
    }

    fn section_binary(&mut self) -> R<Vec<u32>> {
        self.expect(b'[', "expected '['")?;
        let mut part = Vec::new();
        if !self.eat(b']') {
            part.push(self.nz_number()?);
            while self.eat(b'.') {
                part.push(self.nz_number()?);
            }
            self.expect(b']', "expected ']'")?;
        }
        Ok(part)
    }

    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.expect(b'.', "expected '.' in partial")?;
        let len = self.nz_number()?;
        self.expect(b'>', "expected '>'")?;
        Ok(Some((offset, len)))
    }

    fn header_list(&mut self) -> R<Vec<String>> {
        self.open()?;
        let mut names = vec![self.header_field_name()?];
        while self.eat(b' ') {
            names.push(self.header_field_name()?);
        }
        self.close()?;
        Ok(names)
    }

    pub(super) fn header_field_name(&mut self) -> R<String> {
        let raw = self.astring()?;
        if raw.is_empty() || !raw.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b':') {
            return fail("bad header field name");
        }
        utf8(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;
    use crate::types::SeqNum;

    fn fetch_items(s: &str) -> Vec<FetchAttr> {
        match ok(s) {
            CommandBody::Fetch { items, .. } => items,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fetch_macros() {
        use FetchAttr as F;
        assert_eq!(
            fetch_items("a FETCH 1 ALL"),
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]
        );
        assert_eq!(
            fetch_items("a FETCH 1 fast"),
            vec![F::Flags, F::InternalDate, F::Rfc822Size]
        );
        assert_eq!(
            fetch_items("a FETCH 1 FULL"),
            vec![
                F::Flags,
                F::InternalDate,
                F::Rfc822Size,
                F::Envelope,
                F::Body
            ]
        );
        bad("a FETCH 1 (ALL)");
        bad("a FETCH 1 (FLAGS ALL)");
        bad("a FETCH 1 ALLX");
        bad("a FETCH 1 ()");
        bad("a FETCH 1");
        bad("a FETCH 1 FLAGS UID");
    }

    #[test]
    fn fetch_items_all_forms() {
        use FetchAttr as F;
        let hf = |names: &[&str]| SectionText::HeaderFields(names.iter().map(|n| s(n)).collect());
        assert_eq!(
            ok("a1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT)])"),
            CommandBody::Fetch {
                uid: true,
                set: ranges(&[rng(v(1), SeqNum::Star)]),
                items: vec![
                    F::Uid,
                    F::Flags,
                    F::InternalDate,
                    F::Rfc822Size,
                    F::BodySection {
                        peek: true,
                        section: Section { part: vec![], text: Some(hf(&["DATE", "FROM", "SUBJECT"])) },
                        partial: None
                    },
                ],
                changed_since: None,
                vanished: false,
                partial: None,
            }
        );
        assert_eq!(
            fetch_items("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")[1],
            F::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(hf(&["DATE", "FROM"]))
                },
                partial: None
            }
        );
        let items = fetch_items(
            "a fetch 1 (envelope bodystructure body rfc822 rfc822.header rfc822.text modseq \
             body[] body.peek[1.2.3] BODY[TEXT]<0.2048> BODY[1.MIME] BODY[2.HEADER] body[3.text] \
             BODY.PEEK[HEADER.FIELDS.NOT (Received \"X-Spam\" {4}\r\nDKIM)] BODY[4.1.HEADER.FIELDS (To)]<10.20> \
             BINARY[] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] binary.size[])",
        );
        let sec = |part: &[u32], text: Option<SectionText>| Section {
            part: part.to_vec(),
            text,
        };
        assert_eq!(
            items,
            vec![
                F::Envelope,
                F::BodyStructure,
                F::Body,
                F::Rfc822,
                F::Rfc822Header,
                F::Rfc822Text,
                F::Modseq,
                F::BodySection {
                    peek: false,
                    section: sec(&[], None),
                    partial: None
                },
                F::BodySection {
                    peek: true,
                    section: sec(&[1, 2, 3], None),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[], Some(SectionText::Text)),
                    partial: Some((0, 2048))
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[1], Some(SectionText::Mime)),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[2], Some(SectionText::Header)),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[3], Some(SectionText::Text)),
                    partial: None
                },
                F::BodySection {
                    peek: true,
                    section: sec(
                        &[],
                        Some(SectionText::HeaderFieldsNot(vec![
                            s("Received"),
                            s("X-Spam"),
                            s("DKIM")
                        ]))
                    ),
                    partial: None
                },
                F::BodySection {
                    peek: false,
                    section: sec(&[4, 1], Some(hf(&["To"]))),
                    partial: Some((10, 20))
                },
                F::Binary {
                    peek: false,
                    part: vec![],
                    partial: None
                },
                F::Binary {
                    peek: true,
                    part: vec![1, 2],
                    partial: Some((0, 100))
                },
                F::BinarySize { part: vec![3] },
                F::BinarySize { part: vec![] },
            ]
        );
        for q in [
            "a FETCH 1 BODY[MIME]",
            "a FETCH 1 BODY[0]",
            "a FETCH 1 BODY[1.]",
            "a FETCH 1 BODY[1.2.FOO]",
            "a FETCH 1 BODY[HEADER.FIELDS]",
            "a FETCH 1 BODY[HEADER.FIELDS ()]",
            "a FETCH 1 BODY[HEADER.FIELDS (a:b)]",
            "a FETCH 1 BODY[TEXT",
            "a FETCH 1 BODY[]<0>",
            "a FETCH 1 BODY[]<0.0>",
            "a FETCH 1 BODY[]<1.2",
            "a FETCH 1 BODY[]<4294967296.1>",
            "a FETCH 1 BODY.PEEK",
            "a FETCH 1 BINARY[TEXT]",
            "a FETCH 1 BINARY.SIZE[1]<0.1>",
            "a FETCH 1 BINARY",
            "a FETCH 1 RFC822.FOO",
            "a FETCH 1 (FLAGS",
            "a FETCH 1 (FLAGS  UID)",
            "a FETCH * FLAGS ",
            "a FETCH 1 BODY[HEADER.FIELDS (DATE FROM)",
        ] {
            bad(q);
        }
    }

    #[test]
    fn fetch_modifiers() {
        let CommandBody::Fetch {
            changed_since,
            vanished,
            uid,
            ..
        } = ok("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
        else {
            panic!()
        };
        assert_eq!((changed_since, vanished, uid), (Some(12345), true, true));
        let CommandBody::Fetch {
            changed_since,
            vanished,
            ..
        } = ok("a003 FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)")
        else {
            panic!()
        };
        assert_eq!((changed_since, vanished), (Some(12345), false));
        let CommandBody::Fetch { changed_since, .. } = ok("a FETCH 1:* FAST (changedsince 0)")
        else {
            panic!()
        };
        assert_eq!(changed_since, Some(0));
        bad("a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)");
        bad("a UID FETCH 1 FLAGS (VANISHED)");
        bad("a UID FETCH 1 FLAGS (CHANGEDSINCE)");
        bad("a UID FETCH 1 FLAGS (FOO 1)");
        // RFC 9394 3.2.
        let CommandBody::Fetch { partial, .. } = ok("a UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)")
        else {
            panic!()
        };
        assert_eq!(
            partial,
            Some(crate::types::PartialRange {
                from_end: true,
                low: 1,
                high: 30
            })
        );
        bad("a UID FETCH 1:* (FLAGS) (PARTIAL 1:-30)");
        bad("a UID FETCH 1:* (FLAGS) (PARTIAL 5)");
        bad("a UID FETCH 1:* (FLAGS) (PARTIAL 1:2 PARTIAL 3:4)");
        bad("a UID FETCH 1 FLAGS ()");
        bad("a UID FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)");
    }
}
