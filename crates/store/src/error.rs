//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the store.
///
/// Variants that a protocol must map to a specific reply (unknown user, over quota,
/// mailbox exists, ...) are distinct so that callers never parse messages.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The index database refused or failed an operation.
    #[error("index database: {0}")]
    Index(#[from] rusqlite::Error),
    /// A file or directory under the data directory could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No user of that name exists.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// A user of that name already exists.
    #[error("user already exists: {0}")]
    UserExists(String),
    /// The user name is not acceptable.
    #[error("invalid user name {name:?}: {reason}")]
    InvalidUserName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The mailbox does not exist (or is deleted).
    #[error("no such mailbox: {user}/{name}")]
    NoSuchMailbox {
        /// Owner of the mailbox.
        user: String,
        /// Mailbox name as given.
        name: String,
    },
    /// A live mailbox of that name already exists.
    #[error("mailbox already exists: {user}/{name}")]
    MailboxExists {
        /// Owner of the mailbox.
        user: String,
        /// Mailbox name as given.
        name: String,
    },
    /// A POP3 UIDL override is not 1-70 characters 0x21-0x7E (RFC 1939 7), or has
    /// the form this mailbox's own UIDLs take (`uidvalidity.uid`).
    #[error("invalid POP3 UIDL {0:?}")]
    InvalidPop3Uidl(String),
    /// Another live message of the mailbox has that POP3 UIDL.
    #[error("POP3 UIDL {0:?} is already used in this mailbox")]
    Pop3UidlTaken(String),
    /// The mailbox name is not acceptable.
    #[error("invalid mailbox name {name:?}: {reason}")]
    InvalidMailboxName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The operation is not allowed on this mailbox (for example deleting INBOX).
    #[error("not permitted on {name}: {reason}")]
    NotPermitted {
        /// The mailbox involved.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The change would take the user over a quota limit.
    #[error("over quota: {resource} would be {would_be}, limit {limit}")]
    OverQuota {
        /// `"storage"` (bytes) or `"messages"`.
        resource: &'static str,
        /// Usage after the change.
        would_be: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A flag or keyword is not a valid IMAP atom.
    #[error("invalid flag {0:?}")]
    InvalidFlag(String),
    /// The write would give the mailbox more distinct keywords than its keyword table
    /// holds ([`crate::MAX_KEYWORDS`]): nothing of it was stored. Not transient: the
    /// table never shrinks while the mailbox exists.
    #[error("mailbox {name} already has {limit} keywords; {keyword:?} would be one more")]
    TooManyKeywords {
        /// The mailbox.
        name: String,
        /// The first keyword that did not fit.
        keyword: String,
        /// The cap.
        limit: usize,
    },
    /// A record referenced by UID does not exist in the mailbox.
    #[error("no such message: uid {uid} in {mailbox}")]
    NoSuchRecord {
        /// Mailbox unique id.
        mailbox: String,
        /// The missing UID.
        uid: u32,
    },
    /// The blob for a record is missing or does not match its GUID and size.
    #[error("blob {guid} (size {size}) missing or damaged in partition {partition}")]
    BlobMissing {
        /// GUID in hex.
        guid: String,
        /// Expected size.
        size: u64,
        /// Partition searched.
        partition: String,
    },
    /// The partition name is not configured.
    #[error("unknown partition {0:?}")]
    UnknownPartition(String),
    /// The actor lacks a right the operation needs.
    #[error("permission denied on {name}: needs rights {needed}")]
    PermissionDenied {
        /// The mailbox.
        name: String,
        /// The missing rights letters.
        needed: String,
    },
    /// A rights string has letters RFC 4314 does not define.
    #[error("invalid rights {0:?}")]
    InvalidRights(String),
    /// A password could not be hashed or a stored hash is malformed.
    #[error("password hash: {0}")]
    PasswordHash(String),
    /// The data directory was written by a newer, incompatible tern.
    #[error("data directory schema version {found} is newer than this tern ({supported})")]
    SchemaTooNew {
        /// Version found on disk.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// The batch this change belonged to could not be committed; nothing of it is stored.
    #[error("index commit failed: {0}")]
    CommitFailed(String),
    /// A replicated update expected the mailbox at another state (optimistic
    /// concurrency): nothing was applied. Carries the replica's actual values (0 when it
    /// has no live mailbox with that unique id).
    #[error("replica state differs: HIGHESTMODSEQ {highest_modseq}, last UID {last_uid}, digest {digest}")]
    SyncMismatch {
        /// The replica's HIGHESTMODSEQ for the mailbox.
        highest_modseq: u64,
        /// The replica's last UID for the mailbox.
        last_uid: u32,
        /// The replica's records digest for the mailbox.
        digest: crate::RecordsDigest,
    },
    /// A replicated update contradicts what the replica holds (a UID with another
    /// GUID, a change to a record it does not have): nothing was applied.
    #[error("replication conflict at uid {uid}: {reason}")]
    SyncConflict {
        /// The record in conflict (0 for the mailbox as a whole).
        uid: u32,
        /// What contradicts.
        reason: &'static str,
    },
    /// After applying a replicated update the mailbox digest differed from the
    /// master's; the update was rolled back.
    #[error("mailbox digest after update is {replica}, master sent {master}")]
    DigestMismatch {
        /// What the replica holds (hex).
        replica: String,
        /// What the master sent (hex).
        master: String,
    },
    /// A replicated append named a blob without sending it, and the replica does not
    /// hold it.
    #[error("blob {0} not held")]
    BlobNotHeld(String),
    /// A record was about to be committed for a blob that is no longer on disk: it was
    /// collected as unreferenced after this write found it present. Nothing was
    /// stored; writing the blob again and retrying succeeds (the store does so once
    /// itself).
    #[error("blob {guid} in partition {partition} was collected before its record was committed")]
    BlobVanished {
        /// GUID in hex.
        guid: String,
        /// The partition.
        partition: String,
    },
    /// The disk holding the index or the blobs is full: nothing of the change was
    /// stored. Transient: the next write after space is freed succeeds (no restart).
    #[error("no space left on the disk: {0}")]
    DiskFull(String),
    /// A METADATA value is larger than the server accepts (RFC 5464 `MAXSIZE`).
    #[error("metadata value larger than {max} bytes")]
    MetadataTooLarge {
        /// The largest value accepted, in bytes.
        max: usize,
    },
    /// Setting the METADATA entries would exceed the number the server keeps per
    /// mailbox (or for the server) for one owner (RFC 5464 `TOOMANY`).
    #[error("too many metadata entries")]
    MetadataTooMany,
    /// The write did not complete: the batch it was in was lost to a panic in another
    /// job (rolled back, nothing of it committed).
    #[error("store writer has stopped")]
    WriterGone,
    /// A read found changes to a mailbox's records not yet folded into their rows
    /// (`pending.rs`) and kept finding them after folding, as others logged more.
    #[error("the index is changing too fast to be read; try again")]
    Unfolded,
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the failure is for lack of disk space (or a filesystem quota), in
    /// the index or the blobs. Such a failure is also [`StoreError::is_transient`];
    /// callers use this to say so (and background work to back off).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull(_) => true,
            StoreError::Io { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
            }
            StoreError::Index(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            _ => false,
        }
    }

    /// True when the failure is temporary and the operation may succeed if retried
    /// (a busy or failing disk, a locked database); false for a refusal that retrying
    /// cannot change (unknown user, over quota, invalid name).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Index(_)
                | StoreError::Io { .. }
                | StoreError::CommitFailed(_)
                | StoreError::BlobVanished { .. }
                | StoreError::DiskFull(_)
                | StoreError::WriterGone
                | StoreError::Unfolded
        )
    }
}
