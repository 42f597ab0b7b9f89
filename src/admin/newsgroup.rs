//! `tern admin newsgroup`: newsgroups are shared mailboxes under `[nntp] prefix`
//! (`comp.lang.rust` is `news/comp.lang.rust`), readable and postable as their ACL says.

use anyhow::bail;
use clap::Subcommand;
use tern_store::{Rights, Store, ANONYMOUS, ANYONE, SHARED_OWNER};

use super::shared::{create, operator, show_acl, DESCRIPTION};
use crate::config::Config;

#[derive(Subcommand)]
pub enum NewsgroupCommand {
    /// Create a newsgroup: readable by every logged-in user, postable as --post-by says.
    Create {
        /// The group's name: lower-case letters, digits, + - _, dot-separated parts.
        name: String,
        /// LIST NEWSGROUPS's description.
        #[arg(long)]
        description: Option<String>,
        /// Readers that do not log in may read it too.
        #[arg(long)]
        anonymous_read: bool,
        /// Who may post: `anyone` (even without logging in), `authenticated` (the
        /// default), or user names.
        #[arg(long = "post-by", num_args = 1.., value_name = "WHO")]
        post_by: Vec<String>,
    },
    /// List newsgroups with their article count, numbers and ACL.
    List,
    /// Delete a newsgroup and its articles.
    Delete { name: String },
}

pub fn run(config: &Config, store: &Store, command: NewsgroupCommand) -> anyhow::Result<()> {
    let prefix = &config.nntp.prefix;
    match command {
        NewsgroupCommand::Create {
            name,
            description,
            anonymous_read,
            post_by,
        } => {
            check_name(&name)?;
            let lr = Rights::parse("lr")?;
            let mut acl = vec![(ANYONE.to_owned(), lr)];
            if anonymous_read {
                acl.push((ANONYMOUS.to_owned(), lr));
            }
            let post_by = if post_by.is_empty() {
                vec!["authenticated".to_owned()]
            } else {
                post_by
            };
            for who in post_by {
                let ids: Vec<&str> = match who.as_str() {
                    "anyone" => vec![ANYONE, ANONYMOUS],
                    "authenticated" => vec![ANYONE],
                    user => vec![user],
                };
                for id in ids {
                    match acl.iter_mut().find(|(i, _)| i == id) {
                        Some((_, r)) => *r = *r | Rights::POST,
                        None => acl.push((id.to_owned(), Rights::POST)),
                    }
                }
            }
            let m = create(
                store,
                &format!("{prefix}/{name}"),
                &acl,
                description.as_deref(),
            )?;
            println!(
                "created newsgroup {name} (shared mailbox {}) acl {}",
                m.name,
                show_acl(&m.acl)
            );
        }
        NewsgroupCommand::List => {
            println!(
                "{:<32} {:>8} {:>10} {:>10}  ACL / DESCRIPTION",
                "NEWSGROUP", "ARTICLES", "LOW", "HIGH"
            );
            let below = format!("{prefix}/");
            for (m, _) in store.shared_mailboxes(&operator(), Some(prefix))? {
                let Some(group) = m.name.strip_prefix(&below).filter(|g| !g.contains('/')) else {
                    continue;
                };
                let view = store.mailbox_view(&operator(), &m.uniqueid)?;
                let low = view.messages.first().map_or(m.last_uid + 1, |x| x.uid);
                let description = store
                    .annotations(SHARED_OWNER, &m.name)?
                    .into_iter()
                    .find(|(k, _)| k == DESCRIPTION)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                println!(
                    "{group:<32} {:>8} {low:>10} {:>10}  {} / {description}",
                    view.messages.len(),
                    m.last_uid,
                    show_acl(&m.acl)
                );
            }
        }
        NewsgroupCommand::Delete { name } => {
            check_name(&name)?;
            let m = store.delete_shared_mailbox(&operator(), &format!("{prefix}/{name}"))?;
            println!("deleted newsgroup {name} (uniqueid {})", m.uniqueid);
        }
    }
    Ok(())
}

/// RFC 5536 3.1.4 names, as news software expects them: dot-separated parts of
/// lower-case letters, digits, `+`, `-` and `_`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-_".contains(&b))
    };
    if name.is_empty() || name.len() > 250 || !name.split('.').all(part_ok) {
        bail!("{name:?} is not a newsgroup name (lower-case letters, digits, + - _, parts separated by dots)");
    }
    Ok(())
}
