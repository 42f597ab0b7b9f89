//! Where a command's blocking part runs: on the runtime's worker thread itself ("in
//! place"), or under `block_in_place`.
//!
//! `block_in_place` hands the worker's scheduler to another thread, which the VM must
//! wake, and takes it back afterwards: measured on a 2-vCPU VM, about six context
//! switches a command. For a command that reads a little and answers at once, that
//! costs more than the command: W2's SELECT took 0.17-0.23 ms under it and 0.04 ms in
//! place. A command in place, though, holds the worker and every task queued on it
//! for as long as it runs: while it waits for the group commit, or reads message
//! files. Under steady load (imaptest, 10-50 sessions), every command in place cut
//! throughput by a third.
//!
//! So two rules. Commands that only read the index and answer ([`Rule::Always`]) run
//! in place. Commands that wait for an fsync or read message files a bounded piece at
//! a time ([`Rule::Alone`]: STORE, EXPUNGE, a FETCH step) run in place only while no
//! other session of the server is running a command: nobody is then queued behind the
//! worker, and the hand-off is pure cost (STORE of 148 flags on W2's INBOX, back to
//! back: 0.30-0.35 ms in place, 0.37-0.40 ms handed off).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::types::CommandBody;

/// Mailboxes larger than this never run [`Rule::Alone`] commands in place: a STORE
/// or EXPUNGE over all of them could hold the worker for a large fraction of a
/// second (`STORE 1:*` on 80,000 messages took about 0.3 s).
const ALONE_MAX_MESSAGES: u32 = 20_000;

/// How a command's blocking part may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// In place, always.
    Always,
    /// In place while no other session runs a command.
    Alone,
    /// Always under `block_in_place`.
    Never,
}

/// The rule for `body`, in a session whose selected mailbox has `messages` messages.
pub(crate) fn rule(body: &CommandBody, messages: u32) -> Rule {
    match body {
        CommandBody::Noop
        | CommandBody::Capability
        | CommandBody::Namespace
        | CommandBody::Check
        | CommandBody::Select { .. } => Rule::Always,
        CommandBody::Store { .. } | CommandBody::Expunge { .. } | CommandBody::Fetch { .. }
            if messages <= ALONE_MAX_MESSAGES =>
        {
            Rule::Alone
        }
        _ => Rule::Never,
    }
}

/// The commands running in a server's sessions; shared by all of them.
#[derive(Clone, Default)]
pub(crate) struct Running(Arc<AtomicUsize>);

/// One command counted in [`Running`] until dropped.
pub(crate) struct RunningCommand {
    running: Arc<AtomicUsize>,
    /// Commands running when this one started, itself included.
    at_start: usize,
}

impl Running {
    /// Counts a command as running until the returned guard is dropped.
    pub(crate) fn start(&self) -> RunningCommand {
        let at_start = self.0.fetch_add(1, Ordering::AcqRel) + 1;
        RunningCommand {
            running: Arc::clone(&self.0),
            at_start,
        }
    }
}

impl RunningCommand {
    /// No other command is running (nor was when this one started).
    pub(crate) fn alone(&self) -> bool {
        self.at_start == 1 && self.running.load(Ordering::Acquire) == 1
    }

    /// Whether a blocking part governed by `rule` runs in place now.
    pub(crate) fn in_place(&self, rule: Rule) -> bool {
        match rule {
            Rule::Always => true,
            Rule::Alone => self.alone(),
            Rule::Never => false,
        }
    }
}

impl Drop for RunningCommand {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `step` in place or under `block_in_place`.
pub(crate) fn run<T>(in_place: bool, step: impl FnOnce() -> T) -> T {
    if in_place {
        step()
    } else {
        tokio::task::block_in_place(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_only_without_another_command() {
        let running = Running::default();
        let first = running.start();
        assert!(first.alone());
        assert!(first.in_place(Rule::Alone));
        let second = running.start();
        assert!(!first.alone() && !second.alone());
        assert!(first.in_place(Rule::Always) && !first.in_place(Rule::Never));
        drop(first);
        // Started beside another: handed off for its whole run.
        assert!(!second.alone());
        drop(second);
        assert!(running.start().alone());
    }

    #[test]
    fn large_mailboxes_hand_off_stores() {
        let store = CommandBody::Expunge { uids: None };
        assert_eq!(rule(&store, 2_964), Rule::Alone);
        assert_eq!(rule(&store, ALONE_MAX_MESSAGES + 1), Rule::Never);
        assert_eq!(rule(&CommandBody::Noop, u32::MAX), Rule::Always);
    }
}
