//! The grammar of NOTIFY (RFC 5465 8): `NOTIFY NONE`, or `NOTIFY SET [STATUS]` and
//! event groups, each a mailbox filter and its events.

use super::lexer::{fail, fail_with, P, R};
use crate::types::{CommandBody, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet};

/// Most event groups, and mailboxes per filter, one NOTIFY may name.
pub const MAX_NOTIFY_ITEMS: usize = 100;

impl<'a> P<'a> {
    pub(super) fn notify(&mut self) -> R<CommandBody> {
        self.sp()?;
        let k = self.keyword()?;
        match k.as_str() {
            "NONE" => return Ok(CommandBody::Notify(None)),
            "SET" => {}
            _ => return fail_with("expected SET or NONE", k.as_bytes()),
        }
        let mut status = false;
        let mut groups = Vec::new();
        while self.eat(b' ') {
            if groups.is_empty() && !status && self.next_is("STATUS") {
                self.pos += "STATUS".len();
                status = true;
                continue;
            }
            if groups.len() == MAX_NOTIFY_ITEMS {
                return fail("too many event groups");
            }
            groups.push(self.notify_group()?);
        }
        if groups.is_empty() {
            return fail("NOTIFY SET needs an event group");
        }
        Ok(CommandBody::Notify(Some(NotifySet { status, groups })))
    }

    /// `"(" filter-mailboxes SP events ")"`
    fn notify_group(&mut self) -> R<NotifyGroup> {
        self.open()?;
        let k = self.keyword()?;
        let filter = match k.as_str() {
            "SELECTED" => NotifyFilter::Selected,
            "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
            "INBOXES" => NotifyFilter::Inboxes,
            "PERSONAL" => NotifyFilter::Personal,
            "SUBSCRIBED" => NotifyFilter::Subscribed,
            "SUBTREE" => NotifyFilter::Subtree(self.notify_mailboxes()?),
            "MAILBOXES" => NotifyFilter::Mailboxes(self.notify_mailboxes()?),
            _ => return fail_with("unknown NOTIFY filter", k.as_bytes()),
        };
        self.sp()?;
        let mut events = Vec::new();
        if self.next_is("NONE") {
            self.pos += "NONE".len();
        } else {
            self.open()?;
            loop {
                if events.len() == 16 {
                    return fail("too many events");
                }
                let e = self.keyword()?;
                events.push(match e.as_str() {
                    "MESSAGENEW" => {
                        let mut atts = Vec::new();
                        if self.peek_at(0) == Some(b' ') && self.peek_at(1) == Some(b'(') {
                            self.pos += 2;
                            loop {
                                if atts.len() == 32 {
                                    return fail("too many FETCH items");
                                }
                                atts.push(self.fetch_att()?);
                                if self.eat(b')') {
                                    break;
                                }
                                self.sp()?;
                            }
                        }
                        NotifyEvent::MessageNew(atts)
                    }
                    "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
                    "FLAGCHANGE" => NotifyEvent::FlagChange,
                    "ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
                    "MAILBOXNAME" => NotifyEvent::MailboxName,
                    "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
                    "MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
                    "SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
                    _ => return fail_with("unknown NOTIFY event", e.as_bytes()),
                });
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        self.expect(b')', "expected ')'")?;
        Ok(NotifyGroup { filter, events })
    }

    /// `SP (mailbox / "(" mailbox *(SP mailbox) ")")`
    fn notify_mailboxes(&mut self) -> R<Vec<String>> {
        self.sp()?;
        if !self.eat(b'(') {
            return Ok(vec![self.mailbox()?]);
        }
        let mut names = Vec::new();
        loop {
            if names.len() == MAX_NOTIFY_ITEMS {
                return fail("too many mailboxes");
            }
            names.push(self.mailbox()?);
            if self.eat(b')') {
                return Ok(names);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parser::test_util::*;
    use crate::types::{CommandBody, FetchAttr, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet};

    #[test]
    fn rfc_5465_examples() {
        assert_eq!(ok("a NOTIFY NONE"), CommandBody::Notify(None));
        // Events always in parentheses (RFC 5465 8, `events`).
        ok("a notify set status (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew))");
        bad("a notify set (subtree Lists MessageNew)");
        let CommandBody::Notify(Some(NotifySet { status, groups })) = ok(
            "a NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (MAILBOXES (INBOX Lists) (MessageNew MessageExpunge)) (PERSONAL NONE)",
        ) else {
            panic!()
        };
        assert!(status);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0].events[0],
            NotifyEvent::MessageNew(vec![FetchAttr::Uid, FetchAttr::Flags])
        );
        assert_eq!(
            groups[1].filter,
            NotifyFilter::Mailboxes(vec![s("INBOX"), s("Lists")])
        );
        assert_eq!(
            groups[2],
            NotifyGroup {
                filter: NotifyFilter::Personal,
                events: vec![]
            }
        );
        bad("a NOTIFY");
        bad("a NOTIFY SET");
        bad("a NOTIFY SET STATUS");
        bad("a NOTIFY SET (INBOXES (Bogus))");
        bad("a NOTIFY SET (NOWHERE (MessageNew))");
        bad("a NOTIFY SET (SUBTREE (MessageNew))");
        bad("a NOTIFY SET (INBOXES (MessageNew (FOO)))");
    }
}
