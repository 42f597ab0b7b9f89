//! The grammar of URLAUTH (RFC 4467, with RFC 5524's URLFETCH parameters):
//! GENURLAUTH, RESETKEY and URLFETCH.

use super::lexer::{fail, P, R};
use crate::types::{CommandBody, UrlFetchParam, UrlFetchWants};

/// Most URLs one GENURLAUTH or URLFETCH may carry.
pub const MAX_URLS: usize = 100;

impl<'a> P<'a> {
    fn url(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(&self.astring()?).into_owned())
    }

    /// `GENURLAUTH 1*(SP url-rump SP mechanism)`
    pub(super) fn genurlauth(&mut self) -> R<CommandBody> {
        let mut pairs = Vec::new();
        while self.eat(b' ') {
            if pairs.len() == MAX_URLS {
                return fail("too many URLs");
            }
            let rump = self.url()?;
            self.sp()?;
            pairs.push((rump, self.keyword()?));
        }
        if pairs.is_empty() {
            return fail("GENURLAUTH needs a URL");
        }
        Ok(CommandBody::GenUrlAuth(pairs))
    }

    /// `RESETKEY [SP mailbox *(SP mechanism)]`
    pub(super) fn resetkey(&mut self) -> R<CommandBody> {
        if self.peek() != Some(b' ') {
            return Ok(CommandBody::ResetKey {
                mailbox: None,
                mechanisms: Vec::new(),
            });
        }
        let mailbox = self.sp_mailbox()?;
        let mut mechanisms = Vec::new();
        while self.eat(b' ') {
            if mechanisms.len() == 10 {
                return fail("too many mechanisms");
            }
            mechanisms.push(self.keyword()?);
        }
        Ok(CommandBody::ResetKey {
            mailbox: Some(mailbox),
            mechanisms,
        })
    }

    /// `URLFETCH 1*(SP (url / "(" url *(SP fetch-arg) ")"))`, the parenthesised form
    /// being RFC 5524's (fetch-arg: BODYPARTSTRUCTURE, BINARY or BODY, each once,
    /// BINARY and BODY not both).
    pub(super) fn urlfetch(&mut self) -> R<CommandBody> {
        let mut urls = Vec::new();
        while self.eat(b' ') {
            if urls.len() == MAX_URLS {
                return fail("too many URLs");
            }
            if !self.eat(b'(') {
                urls.push(UrlFetchParam {
                    url: self.url()?,
                    extended: None,
                });
                continue;
            }
            let url = self.url()?;
            let mut wants = UrlFetchWants::default();
            while self.eat(b' ') {
                let arg = self.keyword()?;
                let slot = match arg.as_str() {
                    "BODYPARTSTRUCTURE" => &mut wants.body_part_structure,
                    "BINARY" => &mut wants.binary,
                    "BODY" => &mut wants.body,
                    _ => return fail("unknown URLFETCH parameter"),
                };
                if std::mem::replace(slot, true) {
                    return fail("URLFETCH parameter given twice");
                }
            }
            if wants.binary && wants.body {
                return fail("URLFETCH may ask for BINARY or BODY, not both");
            }
            if !self.eat(b')') {
                return fail("expected ) after the URLFETCH parameters");
            }
            urls.push(UrlFetchParam {
                url,
                extended: Some(wants),
            });
        }
        if urls.is_empty() {
            return fail("URLFETCH needs a URL");
        }
        Ok(CommandBody::UrlFetch(urls))
    }
}

#[cfg(test)]
mod tests {
    use crate::parser::test_util::*;
    use crate::types::{CommandBody, UrlFetchParam, UrlFetchWants};

    #[test]
    fn rfc_4467_examples() {
        assert_eq!(
            ok("a GENURLAUTH \"imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred\" INTERNAL"),
            CommandBody::GenUrlAuth(vec![(
                s("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"),
                s("INTERNAL")
            )])
        );
        assert_eq!(
            ok("a RESETKEY"),
            CommandBody::ResetKey {
                mailbox: None,
                mechanisms: vec![]
            }
        );
        assert_eq!(
            ok("a RESETKEY INBOX INTERNAL"),
            CommandBody::ResetKey {
                mailbox: Some(s("INBOX")),
                mechanisms: vec![s("INTERNAL")]
            }
        );
        assert_eq!(
            ok("a URLFETCH \"imap://a@h/I/;UID=1;URLAUTH=anonymous:INTERNAL:00\" imap://x"),
            CommandBody::UrlFetch(vec![
                UrlFetchParam {
                    url: s("imap://a@h/I/;UID=1;URLAUTH=anonymous:INTERNAL:00"),
                    extended: None
                },
                UrlFetchParam {
                    url: s("imap://x"),
                    extended: None
                },
            ])
        );
        bad("a GENURLAUTH");
        bad("a GENURLAUTH \"x\"");
        bad("a URLFETCH");
    }

    #[test]
    fn rfc_5524_parameters() {
        assert_eq!(
            ok("a URLFETCH (\"imap://x\" BINARY bodypartstructure) (imap://y) imap://z"),
            CommandBody::UrlFetch(vec![
                UrlFetchParam {
                    url: s("imap://x"),
                    extended: Some(UrlFetchWants {
                        body_part_structure: true,
                        binary: true,
                        body: false
                    })
                },
                UrlFetchParam {
                    url: s("imap://y"),
                    extended: Some(UrlFetchWants::default())
                },
                UrlFetchParam {
                    url: s("imap://z"),
                    extended: None
                },
            ])
        );
        bad("a URLFETCH (\"x\" BINARY BODY)");
        bad("a URLFETCH (\"x\" BINARY BINARY)");
        bad("a URLFETCH (\"x\" HEADER)");
        bad("a URLFETCH (\"x\" BINARY");
        bad("a URLFETCH (\"x\")(y)");
    }
}
