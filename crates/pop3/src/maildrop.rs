//! The maildrop: INBOX as a snapshot of its live records at login, and messages put
//! on the wire (dot-stuffed by `tern_net::dotstuff`, whole or as TOP's header and
//! first lines).

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

    /// The UIDL of a message: its stored override (an imported message's old UIDL),
    /// else `<uidvalidity>.<uid>`.
    pub(crate) fn uidl(&self, m: &Message) -> String {
        match &m.record.pop3_uidl {
            Some(u) => u.clone(),
            None => format!("{}.{}", self.mailbox.uidvalidity, m.record.uid),
        }
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
