//! NOTIFY (RFC 5465): the client names mailboxes and events, and the server tells it
//! of them as they happen, without IDLE or polling: `* STATUS` for message events in
//! mailboxes other than the selected one, `* LIST` for mailboxes created, renamed or
//! deleted and for subscription changes, and the selected mailbox's own EXISTS,
//! EXPUNGE and FETCH at once (SELECTED) or with EXPUNGE held to a command
//! (SELECTED-DELAYED).
//!
//! The session keeps what it last told the client about each watched mailbox and
//! compares at each wake-up: a change to a watched mailbox, to the user's mailbox
//! list, or every [`POLL`] (changes made by another process are not signalled).
//! Events tern does not produce (AnnotationChange, MailboxMetadataChange,
//! ServerMetadataChange) are refused with `NO [BADEVENT]`.

use std::collections::{BTreeSet, HashMap};
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;

use tern_store::{Mailbox, Modseq, StoreError, Uid};
use tokio::sync::watch;

use crate::response::push_mailbox;
use crate::session::{Outcome, Session};
use crate::types::{
    NotifyEvent, NotifyFilter, NotifyGroup, NotifySet, SeqNum, SeqRange, SequenceSet, StatusItem,
};

/// How often a NOTIFY session looks again without being woken.
pub(crate) const POLL: Duration = Duration::from_secs(30);

/// Most mailboxes one session watches one by one; beyond, it relies on [`POLL`].
const MAX_WATCHED: usize = 1000;

/// A session's NOTIFY state.
pub(crate) struct Notifying {
    set: NotifySet,
    /// Each watched mailbox as last reported, by unique id.
    known: HashMap<String, Mailbox>,
    /// The user's subscriptions as last seen.
    subscribed: BTreeSet<String>,
    /// Woken by a change to one of `known`, or to the user's mailbox list.
    watches: Vec<watch::Receiver<Modseq>>,
    names: watch::Receiver<u64>,
}

impl Notifying {
    /// The SELECTED or SELECTED-DELAYED group, if any, and whether it is delayed.
    pub(crate) fn selected(&self) -> Option<(&NotifyGroup, bool)> {
        self.set.groups.iter().find_map(|g| match g.filter {
            NotifyFilter::Selected => Some((g, false)),
            NotifyFilter::SelectedDelayed => Some((g, true)),
            _ => None,
        })
    }

    /// Resolves once something watched may have changed.
    pub(crate) async fn changed(&mut self) {
        // The futures live across polls: a `changed()` dropped after one poll would
        // take its wake-up registration with it.
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        let mut names = Box::pin(self.names.changed());
        let mut each: Vec<_> = self
            .watches
            .iter_mut()
            .map(|w| Box::pin(w.changed()))
            .collect();
        poll_fn(|cx| {
            if poll.as_mut().poll(cx).is_ready() || names.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            if each.iter_mut().any(|f| f.as_mut().poll(cx).is_ready()) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        drop(each);
        drop(names);
        // Mark every receiver seen, so one change wakes the session once.
        self.names.borrow_and_update();
        for w in self.watches.iter_mut() {
            w.borrow_and_update();
        }
    }
}

/// The events of the first group that names `name` (RFC 5465 6), not counting the
/// SELECTED groups, which apply to the selected mailbox only.
fn events_for<'a>(
    groups: &'a [NotifyGroup],
    name: &str,
    subscribed: &BTreeSet<String>,
) -> Option<&'a [NotifyEvent]> {
    groups
        .iter()
        .find(|g| match &g.filter {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
            NotifyFilter::Inboxes => name == "INBOX",
            NotifyFilter::Personal => true,
            NotifyFilter::Subscribed => subscribed.contains(name),
            NotifyFilter::Subtree(roots) => roots.iter().any(|r| {
                name == r
                    || name
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            NotifyFilter::Mailboxes(names) => names.iter().any(|n| n == name),
        })
        .map(|g| &g.events[..])
}

fn has(events: &[NotifyEvent], wanted: fn(&NotifyEvent) -> bool) -> bool {
    events.iter().any(wanted)
}

/// The STATUS items that report a group's message events (RFC 5465 5.1-5.3).
fn status_items(events: &[NotifyEvent]) -> Vec<StatusItem> {
    let new = has(events, |e| matches!(e, NotifyEvent::MessageNew(_)));
    let expunge = has(events, |e| matches!(e, NotifyEvent::MessageExpunge));
    let flags = has(events, |e| matches!(e, NotifyEvent::FlagChange));
    let mut items = Vec::new();
    if new || expunge {
        items.push(StatusItem::Messages);
    }
    if new {
        items.push(StatusItem::UidNext);
    }
    if new || flags {
        items.push(StatusItem::UidValidity);
    }
    if flags {
        items.push(StatusItem::HighestModseq);
    }
    items
}

/// Whether what `items` reports differs between `old` and `new`.
fn moved(items: &[StatusItem], old: &Mailbox, new: &Mailbox) -> bool {
    items.iter().any(|i| match i {
        StatusItem::Messages => old.messages != new.messages,
        StatusItem::UidNext => old.uidnext() != new.uidnext(),
        StatusItem::UidValidity => old.uidvalidity != new.uidvalidity,
        StatusItem::HighestModseq => old.highest_modseq != new.highest_modseq,
        _ => false,
    })
}

impl<W> Session<W> {
    /// NOTIFY SET / NOTIFY NONE.
    pub(crate) fn notify_cmd(&mut self, set: Option<NotifySet>) -> Outcome {
        let Some(set) = set else {
            self.notifying = None;
            return Outcome::ok("NOTIFY completed");
        };
        let unsupported = set.groups.iter().flat_map(|g| &g.events).any(|e| {
            matches!(
                e,
                NotifyEvent::AnnotationChange
                    | NotifyEvent::MailboxMetadataChange
                    | NotifyEvent::ServerMetadataChange
            )
        });
        if unsupported {
            return Outcome::no(
                "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)] \
                 Event not supported",
            );
        }
        let fetch_outside_selected = set.groups.iter().any(|g| {
            !matches!(
                g.filter,
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed
            ) && has(
                &g.events,
                |e| matches!(e, NotifyEvent::MessageNew(a) if !a.is_empty()),
            )
        });
        if fetch_outside_selected {
            return Outcome::bad("MessageNew FETCH items apply to the selected mailbox only");
        }
        let actor = self.actor();
        let (mailboxes, subscribed) = match self.notify_snapshot() {
            Ok(s) => s,
            Err(e) => return Outcome::store_error(&e),
        };
        let mut notifying = Notifying {
            set,
            known: HashMap::new(),
            subscribed,
            watches: Vec::new(),
            names: self.store.watch_user(&actor.name),
        };
        for m in mailboxes {
            let Some(events) = events_for(&notifying.set.groups, &m.name, &notifying.subscribed)
            else {
                continue;
            };
            let items = status_items(events);
            if notifying.set.status && !items.is_empty() {
                if let Err(e) = self.status_line(&m.name, &m, &items) {
                    return Outcome::store_error(&e);
                }
            }
            notifying.known.insert(m.uniqueid.as_str().to_owned(), m);
        }
        self.watch_known(&mut notifying);
        self.notifying = Some(notifying);
        Outcome::ok("NOTIFY completed")
    }

    /// The user's live mailboxes and subscriptions now.
    fn notify_snapshot(&self) -> Result<(Vec<Mailbox>, BTreeSet<String>), StoreError> {
        let actor = self.actor();
        let mailboxes = self.store.mailboxes(&actor.name, false)?;
        let subscribed = self.store.subscriptions(&actor.name)?.into_iter().collect();
        Ok((mailboxes, subscribed))
    }

    fn watch_known(&self, notifying: &mut Notifying) {
        notifying.watches = notifying
            .known
            .values()
            .take(MAX_WATCHED)
            .map(|m| {
                let mut w = self.store.watch(&m.uniqueid);
                w.borrow_and_update();
                w
            })
            .collect();
    }

    /// Queues what changed since the last report about the mailboxes NOTIFY watches
    /// (the selected mailbox is `report_changes`'s).
    pub(crate) fn notify_changes(&mut self) {
        let Some(mut notifying) = self.notifying.take() else {
            return;
        };
        let (mailboxes, subscribed) = match self.notify_snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY snapshot failed");
                self.notifying = Some(notifying);
                return;
            }
        };
        let groups = notifying.set.groups.clone();
        let watched_before: BTreeSet<String> = notifying.known.keys().cloned().collect();
        let selected = self.selected.as_ref().map(|v| v.id.as_str().to_owned());
        let wants = |events: Option<&[NotifyEvent]>, e: fn(&NotifyEvent) -> bool| {
            events.is_some_and(|ev| has(ev, e))
        };
        let mut now = HashMap::new();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let utf8 = self.enabled.utf8;
        let list = |attrs: &str, name: &str, old: Option<&str>| {
            let mut l = format!("LIST ({attrs}) \"/\" ").into_bytes();
            push_mailbox(&mut l, name, utf8);
            if let Some(old) = old {
                l.extend_from_slice(b" (\"OLDNAME\" (");
                push_mailbox(&mut l, old, utf8);
                l.extend_from_slice(b"))");
            }
            l
        };
        let mut statuses = Vec::new();
        for m in mailboxes {
            let id = m.uniqueid.as_str().to_owned();
            let events = events_for(&groups, &m.name, &subscribed);
            let before = notifying.known.remove(&id);
            match &before {
                None if wants(events, |e| matches!(e, NotifyEvent::MailboxName)) => {
                    lines.push(list("", &m.name, None));
                }
                Some(b) if b.name != m.name => {
                    let old_events = events_for(&groups, &b.name, &notifying.subscribed);
                    if wants(events, |e| matches!(e, NotifyEvent::MailboxName))
                        || wants(old_events, |e| matches!(e, NotifyEvent::MailboxName))
                    {
                        lines.push(list("", &m.name, Some(&b.name)));
                    }
                }
                _ => {}
            }
            let Some(events) = events else {
                continue;
            };
            if let Some(b) = &before {
                let items = status_items(events);
                if Some(&id) != selected.as_ref() && moved(&items, b, &m) {
                    statuses.push((m.clone(), items));
                }
            }
            now.insert(id, m);
        }
        // What is left was deleted.
        for gone in notifying.known.values() {
            let events = events_for(&groups, &gone.name, &notifying.subscribed);
            if wants(events, |e| matches!(e, NotifyEvent::MailboxName)) {
                lines.push(list("\\NonExistent", &gone.name, None));
            }
        }
        for name in notifying.subscribed.symmetric_difference(&subscribed) {
            let events = events_for(&groups, name, &subscribed)
                .or_else(|| events_for(&groups, name, &notifying.subscribed));
            if wants(events, |e| matches!(e, NotifyEvent::SubscriptionChange)) {
                let attrs = if subscribed.contains(name) {
                    "\\Subscribed"
                } else {
                    ""
                };
                lines.push(list(attrs, name, None));
            }
        }
        let rewatch =
            now.len() != watched_before.len() || now.keys().any(|k| !watched_before.contains(k));
        notifying.known = now;
        notifying.subscribed = subscribed;
        if rewatch {
            self.watch_known(&mut notifying);
        }
        for l in lines {
            self.untagged_bytes(&l);
        }
        for (m, items) in statuses {
            if let Err(e) = self.status_line(&m.name, &m, &items) {
                tracing::warn!(error = %e, "NOTIFY status failed");
            }
        }
        self.notifying = Some(notifying);
    }
}

/// Resolves when a NOTIFY session has something to look at; never without NOTIFY.
pub(crate) async fn woken(notifying: &mut Option<Notifying>) {
    match notifying {
        Some(n) => n.changed().await,
        None => std::future::pending().await,
    }
}

impl<W: tokio::io::AsyncWrite + Unpin + Send> Session<W> {
    /// With a mailbox selected and NOTIFY asking MessageNew for FETCH items there, the
    /// view's last UID: the messages above it once changes are reported are the new
    /// ones [`Session::fetch_new_messages`] answers for.
    pub(crate) fn message_new_mark(&self) -> Option<Uid> {
        self.message_new_atts()?;
        let view = self.selected.as_ref()?;
        Some(view.uids.last().copied().unwrap_or(0))
    }

    /// The FETCH items NOTIFY's MessageNew names for the selected mailbox, if any.
    fn message_new_atts(&self) -> Option<Vec<crate::types::FetchAttr>> {
        let (group, _) = self.notifying.as_ref()?.selected()?;
        group.events.iter().find_map(|e| match e {
            NotifyEvent::MessageNew(a) if !a.is_empty() => Some(a.clone()),
            _ => None,
        })
    }

    /// Adds to the output the FETCH responses MessageNew asks for, for the messages of
    /// the view above `last_uid` (RFC 5465 5.2), whether the notifier announced them
    /// between commands or a command's own report did. False when the connection
    /// failed.
    pub(crate) async fn fetch_new_messages(&mut self, last_uid: Uid) -> bool {
        let Some(atts) = self.message_new_atts() else {
            return true;
        };
        let Some((first, last)) = self.selected.as_ref().map(|v| {
            let first = v.uids.partition_point(|&u| u <= last_uid) as u32 + 1;
            (first, v.uids.len() as u32)
        }) else {
            return true;
        };
        if first > last {
            return true;
        }
        let set = SequenceSet::Ranges(vec![SeqRange {
            start: SeqNum::Value(first),
            end: SeqNum::Value(last),
        }]);
        let outcome =
            tokio::task::block_in_place(|| self.fetch(false, &set, &atts, None, false, None));
        match self.fetching.take() {
            Some(stream) => self.stream_fetch(stream, outcome).await.is_some(),
            None => true,
        }
    }

    /// Sends what NOTIFY asks for now, between commands: the selected mailbox's
    /// changes (SELECTED; EXPUNGE held back under SELECTED-DELAYED), the FETCH items
    /// MessageNew names for its new messages, and the other mailboxes' events. False
    /// when the connection failed.
    pub(crate) async fn deliver_notifications(&mut self) -> bool {
        let selected = self
            .notifying
            .as_ref()
            .and_then(|n| n.selected().map(|(g, delayed)| (g.events.clone(), delayed)));
        let last_uid = self
            .selected
            .as_ref()
            .and_then(|v| v.uids.last().copied())
            .unwrap_or(0);
        tokio::task::block_in_place(|| {
            if let Some((events, delayed)) = &selected {
                if !events.is_empty() {
                    self.report_changes(!delayed);
                }
            }
            self.notify_changes();
        });
        if !self.fetch_new_messages(last_uid).await {
            return false;
        }
        let out = std::mem::take(&mut self.out);
        if !out.is_empty() {
            use tokio::io::AsyncWriteExt;
            if self.writer.write_all(&out).await.is_err() || self.writer.flush().await.is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_group_decides() {
        let groups = vec![
            NotifyGroup {
                filter: NotifyFilter::Mailboxes(vec!["Lists/rust".into()]),
                events: vec![],
            },
            NotifyGroup {
                filter: NotifyFilter::Subtree(vec!["Lists".into()]),
                events: vec![NotifyEvent::MessageExpunge],
            },
        ];
        let none = BTreeSet::new();
        assert_eq!(events_for(&groups, "Lists/rust", &none), Some(&[][..]));
        assert_eq!(
            events_for(&groups, "Lists/go", &none),
            Some(&[NotifyEvent::MessageExpunge][..])
        );
        assert_eq!(events_for(&groups, "Lists", &none).map(<[_]>::len), Some(1));
        assert_eq!(events_for(&groups, "Listserv", &none), None);
    }

    #[test]
    fn status_items_follow_the_events() {
        use StatusItem as S;
        assert_eq!(status_items(&[NotifyEvent::MessageExpunge]), [S::Messages]);
        assert_eq!(
            status_items(&[NotifyEvent::MessageNew(vec![])]),
            [S::Messages, S::UidNext, S::UidValidity]
        );
        assert_eq!(
            status_items(&[NotifyEvent::FlagChange]),
            [S::UidValidity, S::HighestModseq]
        );
        assert!(status_items(&[NotifyEvent::MailboxName]).is_empty());
    }
}
