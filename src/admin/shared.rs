//! `tern admin shared`: mailboxes of the shared namespace (`Shared Folders/` in IMAP),
//! which belong to no user and are governed by their ACL alone.

use anyhow::{bail, Context};
use clap::Subcommand;
use tern_store::{Actor, Rights, Store};

/// The annotation holding a mailbox's description: IMAP METADATA `/shared/comment`
/// (RFC 5464), NNTP's LIST NEWSGROUPS. Annotations replicate with the mailbox.
pub const DESCRIPTION: &str = "/comment";

#[derive(Subcommand)]
pub enum SharedCommand {
    /// Create a shared mailbox, e.g. `create lists/team --acl anyone=lrsp`.
    Create {
        name: String,
        /// An ACL entry IDENTIFIER=RIGHTS (RFC 4314 letters); repeatable. `anyone` is
        /// every authenticated user, `anonymous` clients that did not log in; `p` for
        /// anyone lets LMTP deliver to `bb+NAME@`.
        #[arg(long = "acl", value_name = "IDENTIFIER=RIGHTS")]
        acl: Vec<String>,
        /// A description (METADATA /shared/comment).
        #[arg(long)]
        description: Option<String>,
    },
    /// List shared mailboxes with their message count and ACL.
    List,
    /// Delete a shared mailbox and its messages (a tombstone with its unique id stays).
    Delete { name: String },
    /// Set (RIGHTS) or remove ("none") one ACL entry of a shared mailbox.
    Acl {
        name: String,
        identifier: String,
        rights: String,
    },
}

/// The operator running `tern admin`: an administrator, named so that no user is.
pub fn operator() -> Actor {
    Actor {
        name: "#operator".to_owned(),
        is_admin: true,
    }
}

pub fn run(store: &Store, command: SharedCommand) -> anyhow::Result<()> {
    let actor = operator();
    match command {
        SharedCommand::Create {
            name,
            acl,
            description,
        } => {
            let entries = acl
                .iter()
                .map(|e| parse_entry(e))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let m = create(store, &name, &entries, description.as_deref())?;
            println!(
                "created shared mailbox {} uniqueid {} uidvalidity {} acl {}",
                m.name,
                m.uniqueid,
                m.uidvalidity,
                show_acl(&m.acl)
            );
        }
        SharedCommand::List => {
            println!(
                "{:<40} {:>8} {:>11} ACL",
                "MAILBOX", "MESSAGES", "UIDVALIDITY"
            );
            for (m, _) in store.shared_mailboxes(&actor, None)? {
                println!(
                    "{:<40} {:>8} {:>11} {}",
                    m.name,
                    m.messages,
                    m.uidvalidity,
                    show_acl(&m.acl)
                );
            }
        }
        SharedCommand::Delete { name } => {
            let m = store.delete_shared_mailbox(&actor, &name)?;
            println!(
                "deleted shared mailbox {} (uniqueid {})",
                m.name, m.uniqueid
            );
        }
        SharedCommand::Acl {
            name,
            identifier,
            rights,
        } => {
            let Some(m) = store.shared_mailbox(&name)? else {
                bail!("no shared mailbox {name}");
            };
            let rights = match rights.as_str() {
                "none" | "" => None,
                r => Some(Rights::parse(r)?),
            };
            let m = store.set_acl(&actor, &m.uniqueid, &identifier, rights)?;
            println!("acl of {}: {}", m.name, show_acl(&m.acl));
        }
    }
    Ok(())
}

/// Creates a shared mailbox with its ACL and, if given, its description.
pub fn create(
    store: &Store,
    name: &str,
    acl: &[(String, Rights)],
    description: Option<&str>,
) -> anyhow::Result<tern_store::Mailbox> {
    let m = store.create_shared_mailbox(&operator(), name, acl)?;
    if let Some(d) = description {
        store
            .set_annotation(tern_store::SHARED_OWNER, &m.name, DESCRIPTION, Some(d))
            .context("setting the description")?;
    }
    Ok(m)
}

/// `anyone=lrsp` → (`anyone`, rights).
fn parse_entry(entry: &str) -> anyhow::Result<(String, Rights)> {
    let Some((identifier, rights)) = entry.split_once('=') else {
        bail!("--acl {entry:?}: expected IDENTIFIER=RIGHTS, e.g. anyone=lrsp");
    };
    Ok((identifier.to_owned(), Rights::parse(rights)?))
}

/// The stored ACL (`id<TAB>rights...`) as `id=rights id=rights`.
pub fn show_acl(stored: &str) -> String {
    let acl = tern_store::Acl::parse(stored);
    let shown: Vec<String> = acl
        .entries()
        .iter()
        .map(|(id, r)| format!("{id}={r}"))
        .collect();
    if shown.is_empty() {
        "(administrators only)".to_owned()
    } else {
        shown.join(" ")
    }
}
