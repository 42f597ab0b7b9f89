//! NOTIFY SET as the parser gives it: which mailboxes, which events (RFC 5465).

use super::FetchAttr;

/// What NOTIFY SET asks for (RFC 5465 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: send the current status of the watched mailboxes at once.
    pub status: bool,
    /// The event groups, in the order given (the first that names a mailbox applies).
    pub groups: Vec<NotifyGroup>,
}

/// One `(filter events)` group of NOTIFY SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// Which mailboxes.
    pub filter: NotifyFilter,
    /// Which events; empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

/// A NOTIFY mailbox filter (RFC 5465 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// The selected mailbox, whatever it is at the time.
    Selected,
    /// The selected mailbox, EXPUNGE held until a command allows it.
    SelectedDelayed,
    /// Where new mail is delivered (INBOX).
    Inboxes,
    /// Every mailbox of the user's own namespace.
    Personal,
    /// The mailboxes the user is subscribed to.
    Subscribed,
    /// These mailboxes and every mailbox below them.
    Subtree(Vec<String>),
    /// Exactly these mailboxes.
    Mailboxes(Vec<String>),
}

/// A NOTIFY event (RFC 5465 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the FETCH items to send for a new message in the selected mailbox.
    MessageNew(Vec<FetchAttr>),
    /// A message was expunged.
    MessageExpunge,
    /// A message's flags changed.
    FlagChange,
    /// A message's annotations changed (not produced by tern).
    AnnotationChange,
    /// A mailbox was created, renamed or deleted.
    MailboxName,
    /// A subscription was added or removed.
    SubscriptionChange,
    /// A mailbox's METADATA changed (not produced by tern).
    MailboxMetadataChange,
    /// The server's METADATA changed (not produced by tern).
    ServerMetadataChange,
}
