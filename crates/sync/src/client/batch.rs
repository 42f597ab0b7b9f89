//! One batch of a sync: rounds (`round.rs`) of MAILBOXES for every user (one round
//! trip), RESERVE for the blobs to append (one round trip, skipped when they are few),
//! then every USER, DELETE, RENAME and UPDATE pipelined (one round trip) —
//! `docs/replication.md`, section 6. What a round could not finish (refused, merged,
//! widened) is retried in the next, up to five rounds.
//!
//! Failures are kept to what failed. The master's store failing for one user (its
//! state unreadable) or one mailbox (its records or a message blob unreadable, a merge
//! back that could not be written) sets that user or mailbox aside as a
//! [`SyncFailure`] and the batch goes on; so does the replica refusing one command.
//! Nothing of a failed mailbox is queued past the failure point (an UPDATE is queued
//! only once all its messages were read), so the pipeline stays in step and every
//! other mailbox's UPDATE, its own transaction on the replica, is applied as if the
//! failed one had not been there. Only a failure of the session itself (I/O, protocol)
//! ends the batch with an error.

use std::collections::HashMap;

use tern_store::{Mailbox, Store, UniqueId};

use super::conn::Connection;
use super::plan::{Marks, View};
use super::round::Round;
use super::{ClientError, SyncFailure, SyncSummary};
use crate::protocol::{ReplicaMailbox, Selection};

/// One user's share of a batch.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    pub user: String,
    pub selection: Selection,
}

/// How a batch ended.
#[derive(Default)]
pub(crate) struct Outcome {
    pub summary: SyncSummary,
    /// Users and mailboxes not brought in step.
    pub failures: Vec<SyncFailure>,
}

/// What the client believes the replica holds: learned from MAILBOXES and from its own
/// acknowledged UPDATEs (rolling mode keeps it between batches).
#[derive(Default)]
pub(crate) struct Cache {
    users: HashMap<String, Option<String>>,
    mailboxes: HashMap<UniqueId, ReplicaMailbox>,
}

impl Cache {
    /// Forgets what it knew of `user` (after a failure): the next batch asks.
    pub fn forget_user(&mut self, user: &str) {
        self.users.remove(user);
    }

    /// Forgets one mailbox.
    pub(super) fn forget_mailbox(&mut self, id: &UniqueId) {
        self.mailboxes.remove(id);
    }

    /// The replica holds this user-level state (it acknowledged USER).
    pub(super) fn user_is(&mut self, user: String, digest: String) {
        self.users.insert(user, Some(digest));
    }

    /// The replica holds this mailbox state (it acknowledged the last UPDATE).
    pub(super) fn mailbox_is(&mut self, state: ReplicaMailbox) {
        self.mailboxes.insert(state.uniqueid.clone(), state);
    }

    /// The remembered view of `user`'s `mailboxes`, if every one of them is known.
    pub(super) fn view(&self, user: &str, mailboxes: &[Mailbox]) -> Option<View> {
        let digest = self.users.get(user)?.clone();
        let mut known = Vec::new();
        for m in mailboxes {
            known.push(self.mailboxes.get(&m.uniqueid)?.clone());
        }
        Some(View {
            digest,
            mailboxes: known,
        })
    }

    /// Takes in what MAILBOXES said about `user` and these master mailboxes.
    pub(super) fn learn(&mut self, user: &str, asked: &[Mailbox], view: &View) {
        self.users.insert(user.to_owned(), view.digest.clone());
        for m in asked {
            self.mailboxes.remove(&m.uniqueid);
        }
        for m in &view.mailboxes {
            self.mailboxes.insert(m.uniqueid.clone(), m.clone());
        }
    }
}
/// Rounds for mailboxes the replica refused or that needed a merge: a mailbox found
/// diverged only by its UPDATE's digest takes three (refused, merged, sent whole),
/// one taken back from the replica two more.
const ROUNDS: usize = 5;

/// Combines works of the same user into one.
pub(crate) fn merge_by_user(works: Vec<Work>) -> Vec<Work> {
    let mut out: Vec<Work> = Vec::new();
    for w in works {
        match out.iter_mut().find(|o| o.user == w.user) {
            Some(o) => {
                if let (Selection::Some { ids, names }, Selection::Some { ids: i2, names: n2 }) =
                    (&mut o.selection, w.selection)
                {
                    ids.extend(i2);
                    names.extend(n2);
                } else {
                    o.selection = Selection::All;
                }
            }
            None => out.push(w),
        }
    }
    out
}

/// Syncs a batch of users (or mailboxes of users).
pub(crate) async fn sync_batch(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
    cache: Option<&mut Cache>,
) -> Result<Outcome, ClientError> {
    run_rounds(conn, store, work, cache, true).await
}

/// Syncs only the user-level state, deletions and replica-only mailboxes of these
/// users, not mailbox contents (the first pass of a parallel sync).
pub(crate) async fn sync_users_only(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
) -> Result<Outcome, ClientError> {
    run_rounds(conn, store, work, None, false).await
}

async fn run_rounds(
    conn: &mut Connection,
    store: &Store,
    work: &[Work],
    mut cache: Option<&mut Cache>,
    contents: bool,
) -> Result<Outcome, ClientError> {
    let mut outcome = Outcome::default();
    let mut pending = work.to_vec();
    let mut marks = Marks::default();
    for round in 0..ROUNDS {
        if pending.is_empty() {
            break;
        }
        let r = Round::new(conn, store, cache.as_deref_mut(), &mut marks)
            .run(&pending, round > 0, contents)
            .await?;
        outcome.summary += r.summary;
        for f in r.failures {
            // A user retried whole fails again on the same mailbox: report it once.
            let seen = outcome
                .failures
                .iter()
                .any(|o| o.user == f.user && o.mailbox == f.mailbox);
            if !seen {
                outcome.failures.push(f);
            }
        }
        pending = merge_by_user(r.retry);
    }
    for w in pending {
        outcome.failures.push(SyncFailure::user(
            &w.user,
            "did not converge after 5 rounds",
        ));
    }
    outcome.summary.users = work.len();
    Ok(outcome)
}
