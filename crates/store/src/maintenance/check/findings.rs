//! What `tern check` reports: one [`Finding`] per problem, each printed on one line
//! that scripts can take apart (`kind key=value ...`).

use std::fmt;

use crate::ids::{Guid, Modseq, Uid, UniqueId};

/// Where a finding was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The user, when the finding belongs to one.
    pub user: Option<String>,
    /// The mailbox's name and unique id, when the finding belongs to one.
    pub mailbox: Option<(String, UniqueId)>,
    /// The record's UID, when the finding belongs to one.
    pub uid: Option<Uid>,
}

/// One problem found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where.
    pub place: Place,
    /// What.
    pub problem: Problem,
}

/// The kinds of problem `tern check` finds. Those marked *fatal* stop the check: what
/// follows could not be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// *Fatal.* The index database (or the full-text database) fails SQLite's
    /// `integrity_check`, or cannot be opened at all.
    IndexDamaged {
        /// The database file.
        file: String,
        /// SQLite's words (the first lines of them).
        detail: String,
    },
    /// A row refers to a row that does not exist (`foreign_key_check`).
    ForeignKey {
        /// The table holding the row.
        table: String,
        /// Its rowid.
        rowid: i64,
        /// The table it refers to.
        parent: String,
    },
    /// A live record's blob is not in its mailbox's partition.
    BlobMissing {
        /// The blob.
        guid: Guid,
        /// The partition looked in.
        partition: String,
        /// The record's size.
        size: u64,
    },
    /// A live record's blob has another size than the record says.
    BlobWrongSize {
        /// The blob.
        guid: Guid,
        /// The partition.
        partition: String,
        /// The record's size.
        expected: u64,
        /// The file's size.
        found: u64,
    },
    /// A live record's blob does not hash to its GUID (found with `--deep`).
    BlobWrongContent {
        /// The blob.
        guid: Guid,
        /// The partition.
        partition: String,
        /// The record's size.
        size: u64,
    },
    /// A blob no record refers to.
    OrphanBlob {
        /// Its name.
        guid: Guid,
        /// The partition it is in.
        partition: String,
        /// Its size.
        size: u64,
        /// True when the store once held it as a message (its summary is still there):
        /// a purged message's blob that `tern expire` has not yet collected. False: no
        /// message of this store was ever committed with it.
        purged: bool,
    },
    /// A record's UID is above its mailbox's last UID.
    UidAboveLast {
        /// The mailbox's last UID.
        last_uid: Uid,
    },
    /// A record's modseq (or the mailbox's DELETEDMODSEQ) is above the mailbox's
    /// HIGHESTMODSEQ.
    ModseqAboveHighest {
        /// The modseq.
        modseq: Modseq,
        /// The mailbox's HIGHESTMODSEQ.
        highest: Modseq,
    },
    /// A record's last change is missing from its mailbox's log of changed ranges, so
    /// sessions and replicas asking what changed since an earlier modseq would not be
    /// told of it.
    ChangeNotLogged {
        /// The record's modseq.
        modseq: Modseq,
    },
    /// The user's modseq counter is below a modseq in use.
    ModseqCounterBehind {
        /// The counter.
        counter: Modseq,
        /// The highest modseq of the user's mailboxes and records.
        highest: Modseq,
    },
    /// A mailbox's message count or size differs from its records'.
    MailboxCounts {
        /// Kept (messages, bytes).
        kept: (u64, u64),
        /// Counted from the records.
        counted: (u64, u64),
    },
    /// A user's quota usage differs from the live mailboxes' messages.
    QuotaUsage {
        /// Kept (messages, bytes).
        kept: (u64, u64),
        /// Counted from the records.
        counted: (u64, u64),
    },
    /// A mailbox's records digest differs from the one its records give.
    Digest {
        /// Kept.
        kept: String,
        /// Computed.
        computed: String,
    },
    /// Several mailboxes carry one unique id.
    DuplicateUniqueId {
        /// How many.
        count: u64,
    },
    /// A deleted mailbox's tombstone still has records or counts.
    TombstoneNotEmpty {
        /// Records left.
        records: u64,
    },
    /// A message summary (or full-text queue entry) of a GUID no record refers to and
    /// no partition holds.
    StaleSummary {
        /// The GUID.
        guid: Guid,
    },
    /// Full-text index entries of messages no record refers to.
    StaleTexts {
        /// How many GUIDs.
        count: u64,
    },
    /// A change-log consumer acknowledged past the end of the log.
    ConsumerAhead {
        /// The consumer.
        consumer: String,
        /// Its acknowledged sequence number.
        acked: i64,
        /// The log's last sequence number.
        last: i64,
    },
}

impl Problem {
    /// The finding's kind as printed (first word of its line).
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::IndexDamaged { .. } => "index-damaged",
            Problem::ForeignKey { .. } => "foreign-key",
            Problem::BlobMissing { .. } => "blob-missing",
            Problem::BlobWrongSize { .. } => "blob-wrong-size",
            Problem::BlobWrongContent { .. } => "blob-wrong-content",
            Problem::OrphanBlob { .. } => "orphan-blob",
            Problem::UidAboveLast { .. } => "uid-above-last",
            Problem::ModseqAboveHighest { .. } => "modseq-above-highest",
            Problem::ChangeNotLogged { .. } => "change-not-logged",
            Problem::ModseqCounterBehind { .. } => "modseq-counter-behind",
            Problem::MailboxCounts { .. } => "mailbox-counts",
            Problem::QuotaUsage { .. } => "quota-usage",
            Problem::Digest { .. } => "digest",
            Problem::DuplicateUniqueId { .. } => "duplicate-uniqueid",
            Problem::TombstoneNotEmpty { .. } => "tombstone-not-empty",
            Problem::StaleSummary { .. } => "stale-summary",
            Problem::StaleTexts { .. } => "stale-texts",
            Problem::ConsumerAhead { .. } => "consumer-ahead",
        }
    }

    /// True when the check cannot go on past this finding.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Problem::IndexDamaged { .. })
    }

    /// True for garbage that `tern expire` (or the background sweep) removes in its
    /// normal course, not damage: a purged message's blob awaiting collection, the
    /// full-text entries of removed messages. Reported, but not counted as findings.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Problem::OrphanBlob { purged: true, .. } | Problem::StaleTexts { .. }
        )
    }

    /// The message (GUID, partition, size) whose content is gone or damaged here.
    pub fn damaged_blob(&self) -> Option<(Guid, &str, u64)> {
        match self {
            Problem::BlobMissing {
                guid,
                partition,
                size,
            }
            | Problem::BlobWrongContent {
                guid,
                partition,
                size,
            } => Some((*guid, partition, *size)),
            Problem::BlobWrongSize {
                guid,
                partition,
                expected,
                ..
            } => Some((*guid, partition, *expected)),
            _ => None,
        }
    }

    /// True when the message's content is gone or damaged here.
    pub fn is_damaged_blob(&self) -> bool {
        self.damaged_blob().is_some()
    }
}

/// A value as printed after `key=`: bare when it is one word, quoted otherwise.
struct Word<'a>(&'a str);

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = !self.0.is_empty()
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
        if bare {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, " user={}", Word(user))?;
        }
        if let Some((name, id)) = &self.mailbox {
            write!(f, " mailbox={} uniqueid={}", Word(name), id)?;
        }
        if let Some(uid) = self.uid {
            write!(f, " uid={uid}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.problem.kind(), self.place)?;
        match &self.problem {
            Problem::IndexDamaged { file, detail } => {
                write!(f, " file={} detail={}", Word(file), Word(detail))
            }
            Problem::ForeignKey {
                table,
                rowid,
                parent,
            } => write!(f, " table={table} rowid={rowid} parent={parent}"),
            Problem::BlobMissing {
                guid,
                partition,
                size,
            } => write!(f, " guid={guid} partition={} size={size}", Word(partition)),
            Problem::BlobWrongSize {
                guid,
                partition,
                expected,
                found,
            } => write!(
                f,
                " guid={guid} partition={} expected={expected} found={found}",
                Word(partition)
            ),
            Problem::BlobWrongContent {
                guid,
                partition,
                size,
            } => write!(f, " guid={guid} partition={} size={size}", Word(partition)),
            Problem::OrphanBlob {
                guid,
                partition,
                size,
                purged,
            } => write!(
                f,
                " guid={guid} partition={} size={size} purged={}",
                Word(partition),
                u8::from(*purged)
            ),
            Problem::UidAboveLast { last_uid } => write!(f, " last_uid={last_uid}"),
            Problem::ModseqAboveHighest { modseq, highest } => {
                write!(f, " modseq={modseq} highestmodseq={highest}")
            }
            Problem::ChangeNotLogged { modseq } => write!(f, " modseq={modseq}"),
            Problem::ModseqCounterBehind { counter, highest } => {
                write!(f, " counter={counter} highest={highest}")
            }
            Problem::MailboxCounts { kept, counted } | Problem::QuotaUsage { kept, counted } => {
                write!(
                    f,
                    " messages={} bytes={} counted_messages={} counted_bytes={}",
                    kept.0, kept.1, counted.0, counted.1
                )
            }
            Problem::Digest { kept, computed } => write!(f, " kept={kept} computed={computed}"),
            Problem::DuplicateUniqueId { count } => write!(f, " count={count}"),
            Problem::TombstoneNotEmpty { records } => write!(f, " records={records}"),
            Problem::StaleSummary { guid } => write!(f, " guid={guid}"),
            Problem::StaleTexts { count } => write!(f, " count={count}"),
            Problem::ConsumerAhead {
                consumer,
                acked,
                last,
            } => write!(f, " consumer={} acked={acked} last={last}", Word(consumer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_is_one_parseable_line() {
        let f = Finding {
            place: Place {
                user: Some("alice".into()),
                mailbox: Some((
                    "Sent Items".into(),
                    UniqueId::parse("0123456789abcdef0123456789abcdef").unwrap(),
                )),
                uid: Some(7),
            },
            problem: Problem::BlobMissing {
                guid: Guid::of(b"x"),
                partition: "default".into(),
                size: 1,
            },
        };
        let line = f.to_string();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("blob-missing user=alice mailbox=\"Sent Items\" uniqueid="));
        assert!(line.ends_with(&format!(
            " uid=7 guid={} partition=default size=1",
            Guid::of(b"x")
        )));
        let damaged = Finding {
            place: Place::default(),
            problem: Problem::IndexDamaged {
                file: "/d/index.sqlite3".into(),
                detail: "line one\nline two".into(),
            },
        };
        assert_eq!(
            damaged.to_string(),
            "index-damaged file=/d/index.sqlite3 detail=\"line one\\nline two\""
        );
    }
}
