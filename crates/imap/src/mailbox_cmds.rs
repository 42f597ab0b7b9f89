//! Commands on mailboxes as a whole: SELECT/EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE, LIST/LSUB (with LIST-EXTENDED and LIST-STATUS), STATUS.

use std::collections::BTreeSet;

use tern_store::{strip_shared_folders, Mailbox, Rights, StoreError, OTHER_USERS, SHARED_FOLDERS};

use crate::response::push_mailbox;
use crate::selected::{compress_uids, flag_fetch, Reporting, Selected};
use crate::session::{Outcome, Session};
use crate::types::{Qresync, SequenceSet, StatusItem};

impl<W> Session<W> {
    pub(crate) fn select(
        &mut self,
        mailbox: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    ) -> Outcome {
        let requested = mailbox;
        if self.selected.take().is_some() && (self.enabled.qresync || self.enabled.rev2) {
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        if condstore {
            self.enabled.condstore = true;
        }
        if qresync.is_some() && !self.enabled.qresync {
            return Outcome::bad("QRESYNC must be enabled first");
        }
        let actor = self.actor();
        // The mailbox and what SELECT shows of it, in one read.
        let (rights, selection) = match self.store.resolve_selection(&actor, mailbox) {
            Ok(Some((rights, Some(selection)))) => (rights, selection),
            Ok(Some((_, None))) => return Outcome::no("[NOPERM] You may not read this mailbox"),
            Ok(None) => return Outcome::no("[NONEXISTENT] No such mailbox"),
            Err(e) => return Outcome::store_error(&e),
        };
        let changes = Rights::SEEN
            | Rights::WRITE
            | Rights::DELETE_MESSAGES
            | Rights::EXPUNGE
            | Rights::INSERT;
        let read_only = read_only
            || !rights.contains(Rights::SEEN)
                && rights
                    .without(Rights::SEEN)
                    .without(Rights::ALL.without(changes))
                    .is_empty();
        let id = selection.mailbox.uniqueid.clone();
        // Watched only once the mailbox is known, after the read: a change committed
        // in between would go unsignalled, so IDLE is told to look once first.
        let mut watch = self.store.watch(&id);
        watch.mark_changed();
        let (mut view, mailbox, first_unseen) =
            match Selected::from_selection(&self.store, &actor, &id, watch, selection, read_only) {
                Ok(v) => v,
                Err(e) => return Outcome::store_error(&e),
            };
        for line in view.flags_lines() {
            self.untagged(&line);
        }
        self.untagged(&format!("{} EXISTS", view.exists()));
        if self.enabled.rev2 {
            // RFC 9051 6.3.2: no RECENT and no UNSEEN, but the mailbox's LIST.
            view.rev2 = true;
            view.recent.clear();
            let mut line = b"LIST () \"/\" ".to_vec();
            crate::response::push_mailbox(&mut line, requested, true);
            self.untagged_bytes(&line);
        } else {
            self.untagged(&format!("{} RECENT", view.recent.len()));
            // UNSEEN is a sequence number, which UIDONLY never sends (RFC 9586).
            let unseen = first_unseen.filter(|_| !self.enabled.uidonly);
            if let Some(seq) = unseen.and_then(|u| view.seq_of(u)) {
                self.untagged(&format!("OK [UNSEEN {seq}] First unseen"));
            }
        }
        self.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            mailbox.uidvalidity
        ));
        self.untagged(&format!(
            "OK [UIDNEXT {}] Predicted next UID",
            mailbox.uidnext()
        ));
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            mailbox.highest_modseq
        ));
        // RFC 8474: the mailbox's unique id, which survives renames.
        self.untagged(&format!("OK [MAILBOXID ({})] Ok", mailbox.uniqueid));
        if let Some(q) = qresync {
            if let Err(e) = self.qresync_report(&mut view, &mailbox, &q) {
                return Outcome::store_error(&e);
            }
        }
        self.selected = Some(view);
        if read_only {
            Outcome::ok_code("[READ-ONLY]", "EXAMINE completed")
        } else {
            Outcome::ok_code("[READ-WRITE]", "SELECT completed")
        }
    }

    /// RFC 7162 3.2.5: what changed and what vanished since the client's last visit.
    fn qresync_report(
        &mut self,
        view: &mut Selected,
        mailbox: &Mailbox,
        q: &Qresync,
    ) -> Result<(), StoreError> {
        if q.uidvalidity != mailbox.uidvalidity {
            return Ok(());
        }
        let known = |uid: u32| match &q.known_uids {
            Some(SequenceSet::Ranges(r)) => r.iter().any(|r| {
                let v = |n| match n {
                    crate::types::SeqNum::Value(v) => v,
                    crate::types::SeqNum::Star => u32::MAX,
                };
                (v(r.start).min(v(r.end))..=v(r.start).max(v(r.end))).contains(&uid)
            }),
            _ => true,
        };
        // Only what the view's own snapshot holds (up to the HIGHESTMODSEQ just sent):
        // later changes are the next refresh's to report, as FETCH, VANISHED and
        // EXISTS against the view, so none is told twice and no MODSEQ exceeds the
        // HIGHESTMODSEQ of this answer.
        let (_, mut changed) = self.store.changed_since(&view.actor, &view.id, q.modseq)?;
        changed.retain(|r| r.modseq <= mailbox.highest_modseq);
        // A UID this SELECT counts in EXISTS has not vanished yet, even when it was
        // expunged between the view's snapshot and this read: the view reports it
        // (VANISHED, not EARLIER) at the next chance, and reporting it here as well
        // would count it out twice (imaptest's qresync mode caught that).
        let mut vanished: Vec<u32> = changed
            .iter()
            .filter(|r| r.expunged_modseq.is_some() && known(r.uid) && view.seq_of(r.uid).is_none())
            .map(|r| r.uid)
            .collect();
        if q.modseq < mailbox.deleted_modseq {
            // Expunges older than the purge watermark are gone from the index: every UID
            // the client may know that is not live has vanished.
            let live: BTreeSet<u32> = view.uids.iter().copied().collect();
            let top = mailbox.last_uid;
            vanished = (1..=top)
                .filter(|u| !live.contains(u) && known(*u))
                .collect();
        }
        vanished.sort_unstable();
        vanished.dedup();
        if !vanished.is_empty() {
            self.untagged(&format!("VANISHED (EARLIER) {}", compress_uids(&vanished)));
        }
        // The mailbox size once more, now that the client knows what vanished. A client
        // that resynchronises from a cache replaces its view with the cache at
        // `OK [UIDVALIDITY]`, after the first EXISTS; the FETCHes below may name
        // messages appended since the cache was saved, whose sequence numbers lie past
        // the cache. imaptest's QRESYNC mode is such a client: without this line it
        // indexes past its own view and aborts. Repeating an unchanged EXISTS is
        // allowed at any time (RFC 3501 7.3.1) and changes nothing for other clients.
        self.untagged(&format!("{} EXISTS", view.exists()));
        let live = || changed.iter().filter(|r| r.expunged_modseq.is_none());
        // Records read after SELECT's FLAGS may carry a keyword added since.
        for line in view.announce_for(&self.store, live().map(|r| &r.flags)) {
            self.untagged(&line);
        }
        for r in live() {
            if let Some(seq) = view.seq_of(r.uid) {
                let line = flag_fetch(
                    seq,
                    r,
                    view.recent.contains(&r.uid),
                    true,
                    self.enabled.uidonly,
                );
                self.untagged(&line);
            }
        }
        Ok(())
    }

    pub(crate) fn create(&mut self, name: &str, special_use: &[String]) -> Outcome {
        let name = name.trim_end_matches('/');
        if !special_use.is_empty() {
            return Outcome::no("[USEATTR] Special-use attributes are assigned by the server");
        }
        if in_other_users(name) {
            return Outcome::no("[NOPERM] Mailboxes can only be created in your own namespace");
        }
        if in_shared_folders(name) {
            return self.create_shared(name);
        }
        // The whole name is checked before any parent is made: `CREATE a/b/..` must not
        // leave `a` and `a/b` behind when `a/b/..` is refused.
        if let Err(e) = tern_store::names::normalize_mailbox(name) {
            return Outcome::store_error(&e);
        }
        let user = self.user_name().to_owned();
        // Create missing parents too, as RFC 3501 6.3.3 suggests for hierarchy names.
        let mut path = String::new();
        let mut made: Vec<Mailbox> = Vec::new();
        let levels: Vec<&str> = name.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if i > 0 {
                path.push('/');
            }
            path.push_str(level);
            let last = i + 1 == levels.len();
            let refusal = match self.store.create_mailbox(&user, &path, None) {
                Ok(m) => {
                    made.push(m);
                    continue;
                }
                Err(StoreError::MailboxExists { .. }) if !last => continue,
                Err(StoreError::MailboxExists { .. }) => {
                    Outcome::no("[ALREADYEXISTS] Mailbox already exists")
                }
                Err(e) => Outcome::store_error(&e),
            };
            self.remove_created(&user, made);
            return refusal;
        }
        match made.last() {
            Some(m) => {
                Outcome::ok_code(&format!("[MAILBOXID ({})]", m.uniqueid), "CREATE completed")
            }
            None => Outcome::ok("CREATE completed"),
        }
    }

    /// Undoes the parents a refused CREATE made, deepest first, each only while it is
    /// still the (empty) mailbox this command created.
    ///
    /// Not atomic: a message delivered into such a parent in the instant between its
    /// creation and this check keeps it alive (the check sees it), but one arriving
    /// between the check and the delete would go with it. Creating the parents and the
    /// mailbox in one store transaction would close that window (a store change).
    fn remove_created(&self, user: &str, made: Vec<Mailbox>) {
        for m in made.into_iter().rev() {
            match self.store.mailbox(user, &m.name) {
                Ok(Some(now)) if now.uniqueid == m.uniqueid && now.messages == 0 => {
                    if let Err(e) = self.store.delete_mailbox(user, &m.name) {
                        tracing::warn!(error = %e, mailbox = %m.name, "imap: removing a parent of a refused CREATE failed");
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) fn delete(&mut self, name: &str) -> Outcome {
        if name.starts_with(&format!("{OTHER_USERS}/")) {
            return Outcome::no("[NOPERM] Only the owner may delete a mailbox");
        }
        let user = self.user_name().to_owned();
        let deleted = match strip_shared_folders(name) {
            Some(shared) => self.store.delete_shared_mailbox(&self.actor(), shared),
            None if in_shared_folders(name) => {
                return Outcome::no("[NOPERM] The shared namespace itself cannot be deleted")
            }
            None => self.store.delete_mailbox(&user, name),
        };
        match deleted {
            Ok(deleted) => {
                if self
                    .selected
                    .as_ref()
                    .is_some_and(|s| s.id == deleted.uniqueid)
                {
                    self.selected = None;
                }
                Outcome::ok("DELETE completed")
            }
            Err(e) => Outcome::store_error(&e),
        }
    }

    pub(crate) fn rename(&mut self, from: &str, to: &str) -> Outcome {
        // `RENAME x "Other Users"` would also move x's children under `Other Users/`.
        if in_other_users(from) || in_other_users(to) {
            return Outcome::no(
                "[NOPERM] Only the owner may rename a mailbox, within their namespace",
            );
        }
        if in_shared_folders(from) || in_shared_folders(to) {
            return Outcome::no(
                "[NOPERM] Shared mailboxes are renamed by an administrator with tern admin",
            );
        }
        let user = self.user_name().to_owned();
        if from.eq_ignore_ascii_case("INBOX") {
            return self.rename_inbox(to);
        }
        match self.store.rename_mailbox(&user, from, to, None) {
            Ok(_) => Outcome::ok("RENAME completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// RFC 3501 6.3.5: renaming INBOX moves its messages to a new mailbox and leaves
    /// INBOX empty.
    fn rename_inbox(&mut self, to: &str) -> Outcome {
        let user = self.user_name().to_owned();
        let result = (|| {
            let target = self.store.create_mailbox(&user, to, None)?;
            let inbox =
                self.store
                    .mailbox(&user, "INBOX")?
                    .ok_or_else(|| StoreError::NoSuchMailbox {
                        user: user.clone(),
                        name: "INBOX".into(),
                    })?;
            let actor = self.actor();
            let (_, records) = self.store.records(&actor, &inbox.uniqueid, false)?;
            let uids: Vec<u32> = records.iter().map(|r| r.uid).collect();
            self.store
                .move_records(&actor, &inbox.uniqueid, &uids, &target.uniqueid)?;
            Ok::<_, StoreError>(())
        })();
        match result {
            Ok(()) => Outcome::ok("RENAME completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    pub(crate) fn subscribe(&mut self, name: &str, on: bool) -> Outcome {
        let user = self.user_name().to_owned();
        match self.store.subscribe(&user, name, on) {
            Ok(()) => Outcome::ok(if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            }),
            Err(e) => Outcome::store_error(&e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn list(
        &mut self,
        lsub: bool,
        reference: &str,
        patterns: &[String],
        select: &[String],
        return_opts: &[String],
        status: Option<&[StatusItem]>,
    ) -> Outcome {
        let user = self.user_name().to_owned();
        let has = |opts: &[String], o: &str| opts.iter().any(|x| x.eq_ignore_ascii_case(o));
        let select_subscribed = has(select, "SUBSCRIBED");
        let select_special = has(select, "SPECIAL-USE");
        let return_subscribed = has(return_opts, "SUBSCRIBED") || select_subscribed;
        let verb = if lsub { "LSUB" } else { "LIST" };
        if !lsub && patterns.len() == 1 && patterns[0].is_empty() {
            self.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Outcome::ok("LIST completed");
        }
        let actor = self.actor();
        let mailboxes = match self.store.visible_mailboxes(&actor) {
            Ok(m) => m,
            Err(e) => return Outcome::store_error(&e),
        };
        let subscriptions: BTreeSet<String> = match self.store.subscriptions(&user) {
            Ok(s) => s.into_iter().collect(),
            Err(e) => return Outcome::store_error(&e),
        };
        let names: BTreeSet<&str> = mailboxes.iter().map(|(name, _, _)| name.as_str()).collect();
        let full_patterns: Vec<String> =
            patterns.iter().map(|p| format!("{reference}{p}")).collect();
        let matches = |name: &str| full_patterns.iter().any(|p| pattern_matches(p, name));
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            names
                .range(prefix.as_str()..)
                .next()
                .is_some_and(|n| n.starts_with(&prefix))
        };

        let return_children = has(return_opts, "CHILDREN");
        let return_myrights = has(return_opts, "MYRIGHTS");
        let recursive = has(select, "RECURSIVEMATCH");
        let children_attr = |name: &str| {
            if has_children(name) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }
        };
        // (name, attributes, CHILDINFO ("SUBSCRIBED")).
        let mut listed: Vec<(String, Vec<&str>, bool)> = Vec::new();
        if lsub || select_subscribed {
            // Matching ancestors of subscribed mailboxes the patterns do not match
            // themselves: LSUB `%` shows such a parent (not subscribed) as \Noselect
            // (RFC 3501 6.3.9); LIST (SUBSCRIBED RECURSIVEMATCH) gives it CHILDINFO
            // (RFC 5258 3.5), subscribed or not. A child the answer shows itself
            // earns its parent nothing.
            let mut parents = BTreeSet::new();
            for name in subscriptions.iter().filter(|n| !matches(n)) {
                let mut parent = name.as_str();
                while let Some((p, _)) = parent.rsplit_once('/') {
                    parent = p;
                    if matches(p) {
                        parents.insert(p.to_owned());
                    }
                }
            }
            let childinfo = |name: &str| recursive && parents.contains(name);
            for name in &subscriptions {
                if !matches(name) {
                    continue;
                }
                let mut attrs = Vec::new();
                if !names.contains(name.as_str()) {
                    attrs.push(if lsub { "\\Noselect" } else { "\\NonExistent" });
                } else if return_children {
                    attrs.push(children_attr(name));
                }
                if select_subscribed || return_subscribed {
                    attrs.push("\\Subscribed");
                }
                listed.push((name.clone(), attrs, childinfo(name)));
            }
            for p in parents.iter().filter(|p| !subscriptions.contains(*p)) {
                if !lsub && !recursive {
                    break;
                }
                let mut attrs = Vec::new();
                if lsub {
                    attrs.push("\\Noselect");
                } else if !names.contains(p.as_str()) {
                    attrs.push("\\NonExistent");
                } else if return_children {
                    attrs.push(children_attr(p));
                }
                listed.push((p.clone(), attrs, childinfo(p)));
            }
            listed.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            let mut seen = BTreeSet::new();
            for (name, m, _) in &mailboxes {
                if select_special && m.special_use.is_none() {
                    continue;
                }
                if matches(name) {
                    let mut attrs = vec![if has_children(name) {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    }];
                    if let Some(su) = &m.special_use {
                        attrs.push(su.as_str());
                    }
                    if return_subscribed && subscriptions.contains(name) {
                        attrs.push("\\Subscribed");
                    }
                    seen.insert(name.clone());
                    listed.push((name.clone(), attrs, false));
                }
                // A parent that does not exist itself but matches `%` is listed \Noselect.
                let mut parent = name.as_str();
                while let Some((p, _)) = parent.rsplit_once('/') {
                    parent = p;
                    if !names.contains(p) && !seen.contains(p) && matches(p) && !select_special {
                        seen.insert(p.to_owned());
                        listed.push((p.to_owned(), vec!["\\Noselect", "\\HasChildren"], false));
                    }
                }
            }
            listed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        for (name, attrs, childinfo) in listed {
            let mut line = format!("{verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            push_mailbox(&mut line, &name, self.enabled.utf8);
            if childinfo {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.untagged_bytes(&line);
            let selectable = !(attrs.contains(&"\\Noselect") || attrs.contains(&"\\NonExistent"));
            if selectable && (status.is_some() || return_myrights) {
                if let Ok(Some((m, rights))) = self.store.resolve(&actor, &name) {
                    if let (Some(items), true) = (status, rights.contains(Rights::READ)) {
                        let _ = self.status_line(&name, &m, items);
                    }
                    if return_myrights {
                        // RFC 8440: the rights MYRIGHTS would give, after the LIST.
                        let mut line = b"MYRIGHTS ".to_vec();
                        push_mailbox(&mut line, &name, self.enabled.utf8);
                        line.push(b' ');
                        crate::mime::write_astring(&mut line, rights.to_string().as_bytes());
                        self.untagged_bytes(&line);
                    }
                }
            }
        }
        Outcome::ok(&format!("{verb} completed"))
    }

    pub(crate) fn status(&mut self, name: &str, items: &[StatusItem]) -> Outcome {
        let mailbox = match self.store.resolve(&self.actor(), name) {
            Ok(Some((m, rights))) if rights.contains(Rights::READ) => m,
            Ok(Some(_)) => return Outcome::no("[NOPERM] You may not read this mailbox"),
            Ok(None) => return Outcome::no("[NONEXISTENT] No such mailbox"),
            Err(e) => return Outcome::store_error(&e),
        };
        match self.status_line(name, &mailbox, items) {
            Ok(()) => Outcome::ok("STATUS completed"),
            Err(e) => Outcome::store_error(&e),
        }
    }

    /// `* STATUS name (...)`, `name` being what the client called the mailbox.
    pub(crate) fn status_line(
        &mut self,
        name: &str,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<(), StoreError> {
        let needs_counts = items.iter().any(|i| {
            matches!(
                i,
                StatusItem::Unseen | StatusItem::Deleted | StatusItem::Recent
            )
        });
        let (mailbox, mut counts) = if needs_counts {
            self.store
                .mailbox_counts(&self.actor(), &mailbox.uniqueid)?
        } else {
            (mailbox.clone(), Default::default())
        };
        // The store counts what no session has taken as \Recent yet. On the selected
        // mailbox this session's own \Recent messages carry the flag too (RFC 3501
        // 6.3.10: "messages with the \Recent flag set"), as Dovecot counts them.
        if let Some(view) = self.selected.as_ref().filter(|v| v.id == mailbox.uniqueid) {
            let own = u32::try_from(view.recent.len()).unwrap_or(u32::MAX);
            counts.recent = counts.recent.saturating_add(own);
        }
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", mailbox.messages),
                StatusItem::Recent => format!("RECENT {}", counts.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uidnext()),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusItem::HighestModseq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq),
                StatusItem::Size => format!("SIZE {}", mailbox.bytes),
                StatusItem::Deleted => format!("DELETED {}", counts.deleted),
                StatusItem::AppendLimit => format!("APPENDLIMIT {}", self.config.max_literal),
                StatusItem::MailboxId => format!("MAILBOXID ({})", mailbox.uniqueid),
            });
        }
        let mut line = b"STATUS ".to_vec();
        push_mailbox(&mut line, name, self.enabled.utf8);
        line.extend_from_slice(format!(" ({})", parts.join(" ")).as_bytes());
        self.untagged_bytes(&line);
        Ok(())
    }

    /// Reporting rules for the current command (RFC 3501 7.4.1).
    pub(crate) fn reporting(&self, expunges: bool) -> Reporting {
        Reporting {
            expunges,
            vanished: self.enabled.qresync || self.enabled.uidonly,
            condstore: self.enabled.condstore,
            uidonly: self.enabled.uidonly,
        }
    }
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but the separator.
/// INBOX matches case-insensitively.
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern = if pattern.len() >= 5
        && pattern.is_char_boundary(5)
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_owned()
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Dynamic programming over (pattern prefix, name prefix): linear in both, so a
    // hostile pattern full of wildcards costs no more than a plain one.
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' => {
                next[0] = row[0];
                for j in 1..=n.len() {
                    next[j] = row[j] || next[j - 1];
                }
            }
            '%' => {
                next[0] = row[0];
                for j in 1..=n.len() {
                    next[j] = row[j] || (next[j - 1] && n[j - 1] != '/');
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

/// Whether `name` is the shared namespace's root or inside it (where no user may
/// create or rename a mailbox of their own), trailing separators ignored.
impl<W> Session<W> {
    /// CREATE in `Shared Folders/`: administrators only, the mailbox alone (no parents:
    /// a shared name is a path, not a tree of mailboxes the administrator must create).
    fn create_shared(&mut self, name: &str) -> Outcome {
        let Some(shared) = strip_shared_folders(name) else {
            return Outcome::no("[NOPERM] The shared namespace itself cannot be created");
        };
        let actor = self.actor();
        if !actor.is_admin {
            return Outcome::no("[NOPERM] Only administrators create shared mailboxes");
        }
        match self.store.create_shared_mailbox(&actor, shared, &[]) {
            Ok(_) => Outcome::ok("CREATE completed"),
            Err(StoreError::MailboxExists { .. }) => {
                Outcome::no("[ALREADYEXISTS] Mailbox already exists")
            }
            Err(e) => Outcome::store_error(&e),
        }
    }
}

/// True for `Shared Folders` and any name below it (case-insensitive, as clients type it).
fn in_shared_folders(name: &str) -> bool {
    let name = name.trim_end_matches('/');
    name.eq_ignore_ascii_case(SHARED_FOLDERS) || strip_shared_folders(name).is_some()
}

fn in_other_users(name: &str) -> bool {
    let name = name.trim_end_matches('/');
    name == OTHER_USERS
        || name
            .strip_prefix(OTHER_USERS)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn list_patterns() {
        assert!(pattern_matches("*", "Lists/rust"));
        assert!(pattern_matches("%", "INBOX"));
        assert!(!pattern_matches("%", "Lists/rust"));
        assert!(pattern_matches("Lists/%", "Lists/rust"));
        assert!(pattern_matches("inbox", "INBOX"));
        assert!(!pattern_matches("Lists", "Lists/rust"));
        assert!(pattern_matches("L*t", "Lists/rust"));
    }
}
