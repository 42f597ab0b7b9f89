//! `tern admin`: users, passwords, mailboxes, quotas, shared mailboxes, newsgroups and
//! imports, on the data directory directly.
//!
//! It opens the same index as a running server; the index serialises the writes of
//! both processes, so administration never needs the server stopped.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use tern_store::{ExpirePolicy, ExpireSetting, Quota, Store};

use crate::config::Config;

pub mod import;
pub mod newsgroup;
pub mod shared;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users and passwords.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// A user's mailboxes.
    Mailbox {
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// Quotas.
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Newsgroups: shared mailboxes under `[nntp] prefix`, served over NNTP.
    Newsgroup {
        #[command(subcommand)]
        command: newsgroup::NewsgroupCommand,
    },
    /// Shared mailboxes (IMAP `Shared Folders/`), governed by their ACL.
    Shared {
        #[command(subcommand)]
        command: shared::SharedCommand,
    },
    /// Import a maildir or an mbox into a user's mailbox, keeping each message's POP3
    /// UIDL from the old server (from --uidls or X-UIDL headers).
    Import(import::ImportArgs),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user with INBOX, Sent, Drafts, Trash, Junk and Archive.
    Add {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Set a user's password, read from the first line of standard input.
    Passwd { name: String },
    /// Delete a user and all their mail.
    Del { name: String },
    /// List users with their quota and usage.
    List,
}

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// Create a mailbox.
    Create {
        user: String,
        name: String,
        #[arg(long)]
        partition: Option<String>,
    },
    /// Rename a mailbox and the mailboxes below it.
    Rename {
        user: String,
        old: String,
        new: String,
        /// Move the mailbox to this partition.
        #[arg(long)]
        partition: Option<String>,
    },
    /// Delete a mailbox (a tombstone with its unique id stays).
    Delete { user: String, name: String },
    /// List a user's mailboxes with message count, UIDVALIDITY, last UID,
    /// HIGHESTMODSEQ and unique id.
    List {
        user: String,
        /// Include tombstones of deleted mailboxes.
        #[arg(long)]
        deleted: bool,
        /// Add an EXPIRE column: the expire policy in force (days, or "-" for never),
        /// with the mailbox it is inherited from in brackets.
        #[arg(long)]
        expire: bool,
    },
    /// Set a mailbox's expire policy: messages older than DAYS (counted from their
    /// arrival time) are expunged by `tern expire`; child mailboxes without a policy of
    /// their own inherit it. "none" never expires (and stops inheritance from a parent);
    /// "inherit" removes the mailbox's own policy.
    SetExpire {
        user: String,
        mailbox: String,
        /// A positive number of days, "none" or "inherit".
        days: String,
    },
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Set a user's limits: bytes (with K, M or G) and message count; "none" for no limit.
    Set {
        user: String,
        #[arg(long)]
        storage: Option<String>,
        #[arg(long)]
        messages: Option<String>,
    },
}

pub fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let store = crate::config::open_store(config.store())
        .with_context(|| format!("opening {}", config.data_dir.display()))?;
    match command {
        AdminCommand::User { command } => user(&store, command),
        AdminCommand::Mailbox { command } => mailbox(&store, command),
        AdminCommand::Quota { command } => quota(&store, command),
        AdminCommand::Shared { command } => shared::run(&store, command),
        AdminCommand::Newsgroup { command } => newsgroup::run(config, &store, command),
        AdminCommand::Import(args) => import::run(&store, args),
    }
}

fn user(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            admin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let user = store.create_user(&name, password.as_deref(), admin)?;
            println!(
                "created user {}{}",
                user.name,
                if admin { " (administrator)" } else { "" }
            );
            if password.is_none() {
                println!(
                    "note: no password set; `tern admin user passwd {}` sets one",
                    user.name
                );
            }
        }
        UserCommand::Passwd { name } => {
            let password = read_password()?;
            store.set_password(&name, Some(&password))?;
            println!("password changed for {name}");
        }
        UserCommand::Del { name } => {
            store.delete_user(&name)?;
            println!("deleted user {name}");
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<5} {:>12} {:>12} {:>9} {:>9}",
                "USER", "ADMIN", "BYTES", "BYTE-LIMIT", "MESSAGES", "MSG-LIMIT"
            );
            for u in store.users()? {
                if tern_store::is_reserved_user(&u.name) {
                    continue;
                }
                println!(
                    "{:<24} {:<5} {:>12} {:>12} {:>9} {:>9}",
                    u.name,
                    if u.is_admin { "yes" } else { "no" },
                    u.used_storage,
                    limit(u.quota.storage),
                    u.used_messages,
                    limit(u.quota.messages)
                );
            }
        }
    }
    Ok(())
}

fn mailbox(store: &Store, command: MailboxCommand) -> anyhow::Result<()> {
    match command {
        MailboxCommand::Create {
            user,
            name,
            partition,
        } => {
            let m = store.create_mailbox(&user, &name, partition.as_deref())?;
            println!(
                "created {}/{} uniqueid {} uidvalidity {}",
                m.user, m.name, m.uniqueid, m.uidvalidity
            );
        }
        MailboxCommand::Rename {
            user,
            old,
            new,
            partition,
        } => {
            let m = store.rename_mailbox(&user, &old, &new, partition.as_deref())?;
            println!(
                "renamed {user}/{old} to {}/{} (partition {}, uniqueid {})",
                m.user, m.name, m.partition, m.uniqueid
            );
        }
        MailboxCommand::Delete { user, name } => {
            let m = store.delete_mailbox(&user, &name)?;
            println!("deleted {}/{} (uniqueid {})", m.user, m.name, m.uniqueid);
        }
        MailboxCommand::List {
            user,
            deleted,
            expire,
        } => {
            let policies = if expire {
                store.expire_policies(&user)?
            } else {
                Vec::new()
            };
            println!(
                "{:<32} {:>8} {:>11} {:>8} {:>14} {:<32} PARTITION{}",
                "MAILBOX",
                "MESSAGES",
                "UIDVALIDITY",
                "LASTUID",
                "HIGHESTMODSEQ",
                "UNIQUEID",
                if expire { " EXPIRE" } else { "" }
            );
            for m in store.mailboxes(&user, deleted)? {
                let policy = policies
                    .iter()
                    .find(|(name, _)| expire && m.tombstone_modseq.is_none() && *name == m.name)
                    .map(|(_, p)| format!(" {}", show_policy(&m.name, p)))
                    .unwrap_or_default();
                let name = match m.tombstone_modseq {
                    Some(at) => format!("{} (deleted at {at})", m.name),
                    None => m.name.clone(),
                };
                println!(
                    "{:<32} {:>8} {:>11} {:>8} {:>14} {:<32} {}{}",
                    name,
                    m.messages,
                    m.uidvalidity,
                    m.last_uid,
                    m.highest_modseq,
                    m.uniqueid,
                    m.partition,
                    policy
                );
            }
        }
        MailboxCommand::SetExpire {
            user,
            mailbox,
            days,
        } => {
            let setting = parse_expire(&days)?;
            store.set_expire_policy(&user, &mailbox, setting)?;
            let policy = store.expire_policy(&user, &mailbox)?;
            println!(
                "expire policy of {user}/{mailbox}: {}",
                describe_policy(&mailbox, &policy)
            );
        }
    }
    Ok(())
}

/// Parses `set-expire`'s argument: `Some` setting, or `None` for "inherit".
fn parse_expire(s: &str) -> anyhow::Result<Option<ExpireSetting>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Some(ExpireSetting::Never));
    }
    if s.eq_ignore_ascii_case("inherit") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        // Cyrus reads 0 as "never"; refusing it here avoids anyone reading it as "now".
        Ok(0) => bail!("0 days: use \"none\" for a mailbox that never expires"),
        Ok(days) => Ok(Some(ExpireSetting::Days(days))),
        Err(_) => bail!("{s:?} is not a number of days, \"none\" or \"inherit\""),
    }
}

/// The EXPIRE column: `30d`, `30d(Parent)` when inherited, `-` when never.
fn show_policy(name: &str, p: &ExpirePolicy) -> String {
    let days = p
        .effective
        .map_or_else(|| "-".to_owned(), |d| format!("{d}d"));
    match &p.from {
        Some(from) if from != name => format!("{days}({from})"),
        _ => days,
    }
}

/// A sentence for `set-expire`'s answer.
fn describe_policy(name: &str, p: &ExpirePolicy) -> String {
    let what = p
        .effective
        .map_or_else(|| "never expires".to_owned(), |d| format!("{d} days"));
    match &p.from {
        Some(from) if from == name => format!("{what} (its own)"),
        Some(from) => format!("{what} (inherited from {from})"),
        None => format!("{what} (no policy here or above)"),
    }
}

fn quota(store: &Store, command: QuotaCommand) -> anyhow::Result<()> {
    match command {
        QuotaCommand::Set {
            user,
            storage,
            messages,
        } => {
            let current = store
                .user(&user)?
                .with_context(|| format!("no such user: {user}"))?
                .quota;
            let quota = Quota {
                storage: match storage {
                    Some(s) => parse_limit("--storage", &s, true)?,
                    None => current.storage,
                },
                messages: match messages {
                    Some(s) => parse_limit("--messages", &s, false)?,
                    None => current.messages,
                },
            };
            store.set_quota(&user, quota)?;
            println!(
                "quota for {user}: storage {} bytes, {} messages",
                limit(quota.storage),
                limit(quota.messages)
            );
        }
    }
    Ok(())
}

fn limit(v: Option<u64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// Parses "none", a number, or (for sizes) a number with K, M or G (powers of 1024).
fn parse_limit(flag: &str, s: &str, size: bool) -> anyhow::Result<Option<u64>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if size && c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => bail!("{flag}: unknown unit {c:?} (use K, M or G)"),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{flag}: {s:?} is not a number or \"none\""))?;
    Ok(Some(
        n.checked_mul(mult)
            .with_context(|| format!("{flag}: {s} is too large"))?,
    ))
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("empty password on standard input");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::{parse_expire, parse_limit};
    use tern_store::ExpireSetting;

    #[test]
    fn expire_arguments() {
        assert_eq!(parse_expire("30").unwrap(), Some(ExpireSetting::Days(30)));
        assert_eq!(parse_expire("none").unwrap(), Some(ExpireSetting::Never));
        assert_eq!(parse_expire("inherit").unwrap(), None);
        assert!(parse_expire("0").is_err());
        assert!(parse_expire("-1").is_err());
        assert!(parse_expire("7d").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("x", "none", true).unwrap(), None);
        assert_eq!(parse_limit("x", "10M", true).unwrap(), Some(10 << 20));
        assert_eq!(parse_limit("x", "42", false).unwrap(), Some(42));
        assert!(parse_limit("x", "10M", false).is_err());
        assert!(parse_limit("x", "1Q", true).is_err());
    }
}
