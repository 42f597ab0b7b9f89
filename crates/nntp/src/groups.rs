//! Newsgroups as shared mailboxes: `<prefix>/<group>` is the group `<group>`; only
//! names without a further `/` below the prefix are groups.

use tern_store::{Actor, Mailbox, MailboxView, Rights, Store, StoreError, Uid};

use crate::command::MAX_ARTICLE;

/// A newsgroup as one client may see it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The group's name (`comp.lang.rust`).
    pub(crate) name: String,
    /// Its shared mailbox.
    pub(crate) mailbox: Mailbox,
    /// The client's rights on it.
    pub(crate) rights: Rights,
}

impl Group {
    /// The client may read it: `l` and `r`.
    pub(crate) fn readable(&self) -> bool {
        self.rights.contains(Rights::LOOKUP | Rights::READ)
    }

    /// The client may post to it (`p`) and it can take another article number.
    pub(crate) fn postable(&self) -> bool {
        self.rights.contains(Rights::POST) && self.mailbox.last_uid < MAX_ARTICLE
    }
}

/// The group's mailbox name.
pub(crate) fn mailbox_name(prefix: &str, group: &str) -> String {
    format!("{prefix}/{group}")
}

/// The group a mailbox name stands for, if it is one.
fn group_of<'a>(prefix: &str, mailbox: &'a str) -> Option<&'a str> {
    let rest = mailbox.strip_prefix(prefix)?.strip_prefix('/')?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Every group `actor` may look up, by name.
pub(crate) fn visible(
    store: &Store,
    actor: &Actor,
    prefix: &str,
) -> Result<Vec<Group>, StoreError> {
    let mut groups: Vec<Group> = store
        .shared_mailboxes(actor, Some(prefix))?
        .into_iter()
        .filter_map(|(mailbox, rights)| {
            let name = group_of(prefix, &mailbox.name)?.to_owned();
            Some(Group {
                name,
                mailbox,
                rights,
            })
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// What naming a group finds.
pub(crate) enum Lookup {
    /// The group, readable by the client.
    Found(Box<Group>),
    /// It exists, but this client may not read it.
    Forbidden,
    /// No such group.
    Missing,
}

/// The group `name` as `actor` sees it.
pub(crate) fn find(
    store: &Store,
    actor: &Actor,
    prefix: &str,
    name: &str,
) -> Result<Lookup, StoreError> {
    let Some(mailbox) = store.shared_mailbox(&mailbox_name(prefix, name))? else {
        return Ok(Lookup::Missing);
    };
    let group = Group {
        name: name.to_owned(),
        rights: actor.rights(&mailbox),
        mailbox,
    };
    Ok(if group.readable() {
        Lookup::Found(Box::new(group))
    } else {
        Lookup::Forbidden
    })
}

/// A group's articles as GROUP selects them: the numbers (UIDs up to RFC 3977's
/// limit) of one store snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    pub(crate) group: Group,
    pub(crate) numbers: Vec<Uid>,
}

impl Selected {
    /// Takes the snapshot.
    pub(crate) fn open(store: &Store, actor: &Actor, group: Group) -> Result<Selected, StoreError> {
        let view: MailboxView = store.mailbox_view(actor, &group.mailbox.uniqueid)?;
        let numbers = view
            .messages
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u <= MAX_ARTICLE)
            .collect();
        Ok(Selected {
            group: Group {
                mailbox: view.mailbox,
                ..group
            },
            numbers,
        })
    }

    /// `count low high` as GROUP and LIST ACTIVE give them: for an empty group
    /// `0 n+1 n`, n being the highest number ever used.
    pub(crate) fn watermarks(&self) -> (usize, Uid, Uid) {
        match (self.numbers.first(), self.numbers.last()) {
            (Some(&lo), Some(&hi)) => (self.numbers.len(), lo, hi),
            _ => {
                let n = self.group.mailbox.last_uid.min(MAX_ARTICLE);
                (0, n + 1, n)
            }
        }
    }

    /// The numbers within `low..=high`.
    pub(crate) fn within(&self, low: Uid, high: Uid) -> &[Uid] {
        let start = self.numbers.partition_point(|&u| u < low);
        let end = self.numbers.partition_point(|&u| u <= high);
        &self.numbers[start..end.max(start)]
    }
}

/// `high low` for LIST ACTIVE without a snapshot of the records: from the mailbox row
/// (the lowest number is not kept there, so it is the first live UID when the group
/// has messages, read through the view).
pub(crate) fn active_line(
    store: &Store,
    actor: &Actor,
    group: &Group,
) -> Result<String, StoreError> {
    let selected = Selected::open(store, actor, group.clone())?;
    let (_, low, high) = selected.watermarks();
    let status = if group.postable() { 'y' } else { 'n' };
    Ok(format!("{} {high} {low} {status}", group.name))
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn groups_are_one_level_below_the_prefix() {
        assert_eq!(
            group_of("news", "news/comp.lang.rust"),
            Some("comp.lang.rust")
        );
        assert_eq!(group_of("news", "news"), None);
        assert_eq!(group_of("news", "news/a/b"), None);
        assert_eq!(group_of("news", "newsx/a"), None);
    }
}
