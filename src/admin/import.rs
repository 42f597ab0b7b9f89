//! `tern admin import`: a maildir or an mbox into one of a user's mailboxes, each
//! message with the POP3 UIDL it had on the old server, so that POP3 clients of a user
//! moved to tern see the same UIDLs and download nothing again.
//!
//! Messages go in through the store like an IMAP APPEND (durable when counted), line
//! endings normalised to CRLF as LMTP does. Running an import again after a crash or a
//! partial failure imports only what is missing: a message whose UIDL the mailbox
//! already has for the same content, or (without a UIDL) whose content the mailbox
//! already holds as often as the source does up to that point, is skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tern_store::{valid_pop3_uidl, Actor, Flag, Flags, Guid, Store};

/// Most octets of one imported message; a larger one is reported and left out.
const MAX_MESSAGE: usize = 512 << 20;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The user who receives the messages.
    #[arg(long)]
    user: String,
    /// The mailbox they go into (created if missing).
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// A maildir (its cur/ and new/): flags from the `:2,` info, INTERNALDATE from the
    /// file's modification time.
    #[arg(long, conflicts_with = "mbox", required_unless_present = "mbox")]
    maildir: Option<PathBuf>,
    /// An mbox file (mboxrd: `>From ` lines unquoted): INTERNALDATE from each `From `
    /// line, flags from Status and X-Status, UIDL from X-UIDL when present.
    #[arg(long)]
    mbox: Option<PathBuf>,
    /// The old server's UIDLs, one `KEY UIDL` per line (`#` comments and blank lines
    /// ignored): KEY is a maildir file's base name (before `:2,`) or an mbox message's
    /// number, counting from 1. They take precedence over X-UIDL headers.
    #[arg(long, value_name = "FILE")]
    uidls: Option<PathBuf>,
}

/// One message read from the source.
struct Incoming {
    /// What the UIDL list calls it, and what errors name.
    key: String,
    raw: Vec<u8>,
    flags: Flags,
    internaldate: i64,
    /// From the message itself (an mbox's X-UIDL header).
    uidl: Option<String>,
}

/// What the import did so far, and what the mailbox already holds.
struct Import<'a> {
    store: &'a Store,
    actor: Actor,
    mailbox: tern_store::UniqueId,
    /// Copies of each content the mailbox holds that this run has not matched yet.
    present: HashMap<Guid, usize>,
    /// The mailbox's stored UIDLs and the content each names.
    uidls: HashMap<String, Guid>,
    listed: HashMap<String, String>,
    imported: usize,
    skipped: usize,
    failed: usize,
}

pub fn run(store: &Store, args: ImportArgs) -> anyhow::Result<()> {
    let listed = match &args.uidls {
        Some(path) => read_uidls(path)?,
        None => HashMap::new(),
    };
    let mailbox = match store.mailbox(&args.user, &args.mailbox)? {
        Some(m) => m,
        None => store
            .create_mailbox(&args.user, &args.mailbox, None)
            .with_context(|| format!("creating {}/{}", args.user, args.mailbox))?,
    };
    let actor = Actor {
        name: args.user.clone(),
        is_admin: false,
    };
    let (_, records) = store.records(&actor, &mailbox.uniqueid, false)?;
    let mut import = Import {
        store,
        actor,
        mailbox: mailbox.uniqueid.clone(),
        present: HashMap::new(),
        uidls: HashMap::new(),
        listed,
        imported: 0,
        skipped: 0,
        failed: 0,
    };
    for r in records {
        *import.present.entry(r.guid).or_default() += 1;
        if let Some(u) = r.pop3_uidl {
            import.uidls.insert(u, r.guid);
        }
    }
    match (&args.maildir, &args.mbox) {
        (Some(dir), _) => read_maildir(dir, &mut |m| import.one(m))?,
        (None, Some(file)) => read_mbox(file, &mut |m| import.one(m))?,
        (None, None) => bail!("give --maildir or --mbox"),
    }
    println!(
        "imported {}, skipped {} already present, failed {}",
        import.imported, import.skipped, import.failed
    );
    if !import.listed.is_empty() {
        let mut keys: Vec<&String> = import.listed.keys().collect();
        keys.sort();
        println!(
            "{} UIDL lines matched no message: {}",
            keys.len(),
            keys.iter()
                .take(10)
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if import.failed > 0 {
        bail!("{} messages were not imported", import.failed);
    }
    Ok(())
}

impl Import<'_> {
    fn one(&mut self, m: Incoming) {
        let key = m.key.clone();
        if let Err(e) = self.store_one(m) {
            self.failed += 1;
            eprintln!("message {key}: {e:#}");
        }
    }

    fn store_one(&mut self, m: Incoming) -> anyhow::Result<()> {
        let uidl = self.listed.remove(&m.key).or(m.uidl);
        let message = to_crlf(&m.raw);
        let guid = Guid::of(&message);
        match &uidl {
            Some(u) if !valid_pop3_uidl(u) => {
                bail!("UIDL {u:?} is not a POP3 unique-id (1 to 70 characters 0x21-0x7E)")
            }
            Some(u) => match self.uidls.get(u) {
                Some(g) if *g == guid => {
                    self.skipped += 1;
                    return Ok(());
                }
                Some(_) => bail!("UIDL {u} is already another message's in this mailbox"),
                None => {}
            },
            None => {
                if let Some(n) = self.present.get_mut(&guid).filter(|n| **n > 0) {
                    *n -= 1;
                    self.skipped += 1;
                    return Ok(());
                }
            }
        }
        self.store.append_with_pop3_uidl(
            &self.actor,
            &self.mailbox,
            &m.flags,
            m.internaldate,
            &message,
            uidl.as_deref(),
        )?;
        if let Some(u) = uidl {
            self.uidls.insert(u, guid);
        }
        self.imported += 1;
        Ok(())
    }
}

/// Reads a `KEY UIDL` list, refusing the whole file at its first bad line.
fn read_uidls(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_uidls(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn parse_uidls(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(uidl), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {}: expected `KEY UIDL`", n + 1));
        };
        if !valid_pop3_uidl(uidl) {
            return Err(format!(
                "line {}: {uidl:?} is not a POP3 unique-id (1 to 70 characters 0x21-0x7E)",
                n + 1
            ));
        }
        if out.insert(key.to_owned(), uidl.to_owned()).is_some() {
            return Err(format!("line {}: {key} is listed twice", n + 1));
        }
    }
    Ok(out)
}

/// Every message of a maildir's cur/ and new/, oldest file first.
fn read_maildir(dir: &Path, each: &mut dyn FnMut(Incoming)) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        let entries =
            std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let mtime = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            files.push((mtime, name, entry.path()));
        }
    }
    files.sort();
    for (mtime, name, path) in files {
        let (key, info) = match name.split_once(":2,") {
            Some((k, i)) => (k.to_owned(), i),
            None => (name.clone(), ""),
        };
        let raw = match std::fs::read(&path) {
            Ok(raw) if raw.len() <= MAX_MESSAGE => raw,
            Ok(_) => {
                eprintln!("message {key}: larger than {MAX_MESSAGE} octets, left out");
                continue;
            }
            Err(e) => bail!("reading {}: {e}", path.display()),
        };
        let mut flags = Flags::new();
        for c in info.chars() {
            let flag = match c {
                'S' => Flag::Seen,
                'R' => Flag::Answered,
                'F' => Flag::Flagged,
                'T' => Flag::Deleted,
                'D' => Flag::Draft,
                _ => continue,
            };
            flags.insert(flag);
        }
        each(Incoming {
            key,
            raw,
            flags,
            internaldate: mtime,
            uidl: None,
        });
    }
    Ok(())
}

/// Every message of an mbox, in order, numbered from 1.
fn read_mbox(path: &Path, each: &mut dyn FnMut(Incoming)) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut input = BufReader::new(file);
    let mut line = Vec::new();
    let mut current: Option<(i64, Vec<u8>, bool)> = None;
    let mut number = 0usize;
    let mut emit = |number: usize, date: i64, raw: Vec<u8>, too_big: bool| {
        if too_big {
            eprintln!("message {number}: larger than {MAX_MESSAGE} octets, left out");
            return;
        }
        each(mbox_message(number, date, raw));
    };
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.starts_with(b"From ") {
            if let Some((date, raw, too_big)) = current.take() {
                emit(number, date, raw, too_big);
            }
            number += 1;
            let date = asctime_of_from_line(&line).unwrap_or_else(now);
            current = Some((date, Vec::new(), false));
            continue;
        }
        let Some((_, raw, too_big)) = current.as_mut() else {
            bail!(
                "{}: not an mbox (it does not start with a From line)",
                path.display()
            );
        };
        if *too_big {
            continue;
        }
        // mboxrd: a body line `>From ` (any number of `>`) was quoted once more.
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        let unquoted = if quoted > 0 && line[quoted..].starts_with(b"From ") {
            &line[1..]
        } else {
            &line[..]
        };
        raw.extend_from_slice(unquoted);
        if raw.len() > MAX_MESSAGE {
            *too_big = true;
            *raw = Vec::new();
        }
    }
    if let Some((date, raw, too_big)) = current.take() {
        emit(number, date, raw, too_big);
    }
    Ok(())
}

/// An mbox message: the blank line that separates it from the next one removed, its
/// flags from Status (R: seen) and X-Status (A, F, D, T), its UIDL from X-UIDL.
fn mbox_message(number: usize, date: i64, mut raw: Vec<u8>) -> Incoming {
    if raw.ends_with(b"\r\n\r\n") {
        raw.truncate(raw.len() - 2);
    } else if raw.ends_with(b"\n\n") {
        raw.truncate(raw.len() - 1);
    }
    let (fields, _) = tern_message::header::parse_header(&raw, 0, raw.len());
    let value = |name: &str| {
        tern_message::header::first_field(&raw, &fields, name)
            .map(|v| String::from_utf8_lossy(&tern_message::header::unfold(v)).into_owned())
    };
    let mut flags = Flags::new();
    let status = value("status").unwrap_or_default() + &value("x-status").unwrap_or_default();
    for c in status.chars() {
        let flag = match c {
            'R' => Flag::Seen,
            'A' => Flag::Answered,
            'F' => Flag::Flagged,
            'D' => Flag::Deleted,
            'T' => Flag::Draft,
            _ => continue,
        };
        flags.insert(flag);
    }
    let uidl = value("x-uidl").filter(|u| !u.is_empty());
    Incoming {
        key: number.to_string(),
        raw,
        flags,
        internaldate: date,
        uidl,
    }
}

/// The date of a `From sender Tue Jan  2 03:04:05 2024` line (asctime, UTC).
fn asctime_of_from_line(line: &[u8]) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    // From, sender, then weekday month day time year (a timezone may follow).
    let at = words.iter().position(|w| MONTHS.contains(w))?;
    let month = MONTHS.iter().position(|m| *m == words[at])? as i64 + 1;
    let day: i64 = words.get(at + 1)?.parse().ok()?;
    let mut hms = words.get(at + 2)?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().flatten().unwrap_or(0);
    let year: i64 = words.get(at + 3)?.parse().ok()?;
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    Some(tern_message::date::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Line endings as CRLF (a bare LF gains its CR), as LMTP stores messages.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uidl_lists_are_checked_line_by_line() {
        let ok = parse_uidls("# old server\n\n1700000000.M1P2.host UID1-99\n 7   abc\n").unwrap();
        assert_eq!(ok["1700000000.M1P2.host"], "UID1-99");
        assert_eq!(ok["7"], "abc");
        assert_eq!(
            parse_uidls("1 a\n2\n").unwrap_err(),
            "line 2: expected `KEY UIDL`"
        );
        assert!(parse_uidls("1 a b\n").unwrap_err().starts_with("line 1:"));
        assert!(parse_uidls(&format!("1 {}\n", "x".repeat(71)))
            .unwrap_err()
            .starts_with("line 1:"));
        assert_eq!(
            parse_uidls("1 a\n1 b\n").unwrap_err(),
            "line 2: 1 is listed twice"
        );
    }

    #[test]
    fn from_lines_give_dates() {
        assert_eq!(
            asctime_of_from_line(b"From alice@example.org Thu Jan  1 00:00:10 1970\n"),
            Some(10)
        );
        assert_eq!(
            asctime_of_from_line(b"From MAILER-DAEMON Sat Dec  5 16:00:00 2026 +0000\n"),
            Some(tern_message::date::days_from_civil(2026, 12, 5) * 86_400 + 16 * 3600)
        );
        assert_eq!(asctime_of_from_line(b"From nobody\n"), None);
        assert_eq!(
            asctime_of_from_line(b"From x Mon Feb 31 25:00:00 2024\n"),
            None
        );
    }

    #[test]
    fn mbox_messages_lose_their_separator_and_keep_status() {
        let m = mbox_message(
            3,
            0,
            b"Status: RO\nX-Status: F\nX-UIDL: abc123\nSubject: s\n\nbody\n\n".to_vec(),
        );
        assert_eq!(m.key, "3");
        assert!(m.raw.ends_with(b"body\n"));
        assert_eq!(m.uidl.as_deref(), Some("abc123"));
        assert!(m.flags.contains(&Flag::Seen) && m.flags.contains(&Flag::Flagged));
        assert!(!m.flags.contains(&Flag::Answered));
    }

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(to_crlf(b"\n"), b"\r\n");
        assert_eq!(to_crlf(b""), b"");
    }
}
