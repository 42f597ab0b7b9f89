//! tern's mail store: the only part of tern that touches the disk.
//!
//! It keeps users, their mailboxes and the records (messages) in them, the message
//! blobs, and the change log that replication consumes. Protocols (LMTP, IMAP, POP3,
//! NNTP, sync) call it and never open a file themselves.
//!
//! Guarantees every caller can rely on:
//! - **Durable before acknowledged**: a write method returns `Ok` only after the blob
//!   (fsync of file and directory) and the index change (fsync of the WAL) are on disk.
//! - **Atomic**: each write is one transaction, visible wholly or not at all, also
//!   after a crash at any instant.
//! - **Modseqs** come from one counter per user and are allocated only inside a write
//!   transaction; a UID is never reused under the same UIDVALIDITY.
//! - **Delayed expunge**: an expunged record stays, marked with its expunge modseq,
//!   until `tern expire` purges it.
//! - **Single instance**: a blob is stored once per partition under its GUID (SHA-1).
//! - **Nothing left behind**: a write that does not commit (refused, failed, or cut
//!   by a crash) leaves no blob or temporary file once the store has been reopened;
//!   a refused write usually writes none at all (see `orphans.rs`).
//! - **A full disk is a state**: the store opens and serves reads on a full disk;
//!   writes fail with [`StoreError::DiskFull`] (transient) until space returns.
//! - **Change log**: every committed change names the user and mailbox it touched.
//!
//! ```
//! use std::sync::Arc;
//! use tern_store::{ContentIndexer, ContentSummary, Flags, MessageText, Store, StoreConfig};
//!
//! /// A server passes `tern-message`'s indexer; this one keeps nothing.
//! struct Nothing;
//! impl ContentIndexer for Nothing {
//!     fn summarize(&self, _: &[u8]) -> ContentSummary { ContentSummary::default() }
//!     fn text(&self, _: &[u8]) -> MessageText { MessageText::default() }
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(StoreConfig::new(dir.path()), Arc::new(Nothing)).unwrap();
//! store.create_user("alice", Some("secret"), false).unwrap();
//! let appended = store
//!     .append_as_owner("alice", "INBOX", &Flags::new(), 0, b"Subject: hi\r\n\r\nhello\r\n")
//!     .unwrap();
//! assert_eq!(appended.uid, 1);
//! let inbox = store.mailbox("alice", "INBOX").unwrap().unwrap();
//! assert_eq!(inbox.messages, 1);
//! ```

#![deny(missing_docs)]

mod acl;
mod append_batch;
mod auth_cache;
mod blobs;
mod changelog;
mod checkpoint;
mod commit_mark;
mod content;
mod digest;
mod error;
mod flag_runs;
mod flag_targets;
mod flagging;
mod flags;
mod fold_timer;
mod ids;
mod incoming;
mod keywords;
mod mailboxes;
mod maintenance;
mod merge;
mod message_file;
mod message_ids;
mod messages;
mod metadata;
pub mod names;
mod orphans;
mod pending;
mod pop3_uidl;
mod posting;
mod record_cache;
mod record_changes;
mod records;
mod replicated;
mod replication;
mod schema;
mod shared;
mod sql;
mod store;
mod text_index;
mod txn;
mod urlauth;
mod users;
mod view;
mod wakeup;
mod writer;

pub use acl::{Acl, Actor, Rights, ANYONE, OTHER_USERS};
pub use append_batch::NewMessage;
pub use blobs::{BlobStore, MessageFile};
pub use changelog::Change;
pub use content::{
    ContentIndexer, ContentSummary, MessageText, TextField, TextMatches, MIN_INDEXED_NEEDLE,
};
pub use digest::{BadDigest, RecordsDigest};
pub use error::{Result, StoreError};
pub use flagging::{Expunged, FlagChange, StoreOutcome};
pub use flags::{Flag, FlagOp, Flags, MAX_KEYWORD_LEN};
pub use ids::{BadGuid, Guid, Modseq, Uid, UniqueId};
pub use incoming::PreparedUpdate;
pub use keywords::MAX_KEYWORDS;
pub use mailboxes::Mailbox;
pub use maintenance::policy::{
    ExpirePolicy, ExpireSetting, PolicyReport, UserPolicyReport, EXPIRE_ANNOTATION,
};
pub use maintenance::{
    check, repair_index, CheckOptions, CheckReport, ExpireOptions, ExpireReport, Finding, Place,
    Problem, RepairOptions, RepairOutcome, RepairReport, UserExpireReport, ORPHAN_GRACE_SECS,
    RECOVERED_MAILBOX,
};
pub use merge::{Adoption, Merge, Merged};
pub use message_ids::{normalize_message_id, MAX_MESSAGE_ID};
pub use messages::{Appended, Delivered, DeliveryOptions, DeliveryTarget};
pub use metadata::{
    valid_metadata_entry, MetadataTarget, MAX_METADATA_ENTRIES, MAX_METADATA_ENTRY,
    MAX_METADATA_VALUE,
};
pub use pop3_uidl::{valid_pop3_uidl, MAX_POP3_UIDL};
pub use records::{MailboxCounts, Record};
pub use replicated::{MailboxState, MailboxUpdate, Replica, ReplicaAppend};
pub use replication::{MailboxChanges, UserState};
pub use shared::{is_reserved_user, strip_shared_folders, ANONYMOUS, SHARED_FOLDERS, SHARED_OWNER};
pub use store::{Store, StoreConfig, DEFAULT_PARTITION};
pub use text_index::{BODY_TEXT_CAP, DEFAULT_TEXT_USER_CAP, HEAD_TEXT_CAP};
pub use users::{hash_password, Quota, User, DEFAULT_MAILBOXES};
pub use view::{MailboxView, Selection, ViewMessage};
