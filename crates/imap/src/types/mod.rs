//! The IMAP command grammar as types: what the parser produces and the session obeys.
//!
//! Everything here is already validated: a `Command` that exists is syntactically
//! correct. Names (mailboxes) are decoded from modified UTF-7 (or taken as UTF-8 when
//! the client enabled UTF8=ACCEPT) before they get here.

mod append;
mod fetch;
mod notify;
mod search;

pub use append::{AppendContent, AppendMessage, CatPart};
pub use fetch::{FetchAttr, Section, SectionText};
pub use notify::{NotifyEvent, NotifyFilter, NotifyGroup, NotifySet};
pub use search::{PartialRange, SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};

/// One tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the completion response.
    pub tag: String,
    /// What the command asks.
    pub body: CommandBody,
}

/// The commands tern understands (RFC 3501 / 9051 and the extensions tern offers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// CAPABILITY
    Capability,
    /// NOOP
    Noop,
    /// LOGOUT
    Logout,
    /// STARTTLS
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR). The initial
    /// response is still base64 text ("=" for an empty one).
    Authenticate {
        /// SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64), if any.
        initial: Option<String>,
    },
    /// LOGIN user password
    Login {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// ENABLE capability... (RFC 5161)
    Enable(Vec<String>),
    /// ID (params) / ID NIL (RFC 2971)
    Id(Option<Vec<(String, Option<String>)>>),
    /// NAMESPACE (RFC 2342)
    Namespace,
    /// SELECT or EXAMINE with optional parameters.
    Select {
        /// Mailbox to open.
        mailbox: String,
        /// EXAMINE (read-only) rather than SELECT.
        read_only: bool,
        /// `(CONDSTORE)` parameter given.
        condstore: bool,
        /// `(QRESYNC (...))` parameter given.
        qresync: Option<Qresync>,
    },
    /// CREATE mailbox [(USE (\Special ...))] (RFC 6154)
    Create {
        /// New mailbox name.
        mailbox: String,
        /// Special-use attributes requested.
        special_use: Vec<String>,
    },
    /// DELETE mailbox
    Delete(String),
    /// RENAME from to
    Rename {
        /// Existing name.
        from: String,
        /// New name.
        to: String,
    },
    /// SUBSCRIBE mailbox
    Subscribe(String),
    /// UNSUBSCRIBE mailbox
    Unsubscribe(String),
    /// LIST / LSUB, with RFC 5258 LIST-EXTENDED options and RFC 5819 LIST-STATUS.
    List {
        /// True for LSUB.
        lsub: bool,
        /// Reference name.
        reference: String,
        /// One or more mailbox patterns (`*` and `%` wildcards).
        patterns: Vec<String>,
        /// Selection options: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE.
        select: Vec<String>,
        /// Return options other than STATUS: SUBSCRIBED, CHILDREN, SPECIAL-USE.
        return_opts: Vec<String>,
        /// `RETURN (STATUS (...))` items.
        status: Option<Vec<StatusItem>>,
    },
    /// STATUS mailbox (items)
    Status {
        /// Mailbox asked about.
        mailbox: String,
        /// Items wanted.
        items: Vec<StatusItem>,
    },
    /// APPEND mailbox, one message or several (RFC 3502 MULTIAPPEND), each a literal
    /// or assembled from parts (RFC 4469 CATENATE).
    Append {
        /// Target mailbox.
        mailbox: String,
        /// The messages, in the order given (at least one).
        messages: Vec<AppendMessage>,
    },
    /// CHECK
    Check,
    /// CLOSE
    Close,
    /// UNSELECT (RFC 3691)
    Unselect,
    /// GENURLAUTH (rump, mechanism)... (RFC 4467)
    GenUrlAuth(Vec<(String, String)>),
    /// RESETKEY [mailbox [mechanism...]] (RFC 4467)
    ResetKey {
        /// The mailbox whose key to reset; every mailbox's when absent.
        mailbox: Option<String>,
        /// Mechanisms named (upper-cased).
        mechanisms: Vec<String>,
    },
    /// URLFETCH url... (RFC 4467), each perhaps with RFC 5524's parameters.
    UrlFetch(Vec<UrlFetchParam>),
    /// NOTIFY SET [STATUS] groups / NOTIFY NONE (RFC 5465); `None` is NONE.
    Notify(Option<NotifySet>),
    /// UNAUTHENTICATE (RFC 8437)
    Unauthenticate,
    /// REPLACE / UID REPLACE (RFC 8508): append a new version, expunge the old one.
    Replace {
        /// UID REPLACE.
        uid: bool,
        /// The message replaced: a sequence number, or a UID.
        number: u32,
        /// Where the new version goes.
        mailbox: String,
        /// The new version.
        message: AppendMessage,
    },
    /// CANCELUPDATE tag... (RFC 5267 4.3): stop updating these searches' results.
    CancelUpdate(Vec<String>),
    /// EXPUNGE, or UID EXPUNGE set (RFC 4315).
    Expunge {
        /// Only these UIDs (UID EXPUNGE).
        uids: Option<SequenceSet>,
    },
    /// SEARCH / UID SEARCH, with RFC 4731 ESEARCH return options.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// CHARSET given (upper-cased).
        charset: Option<String>,
        /// The criteria, as one key (several top-level keys are `SearchKey::And`).
        criteria: SearchKey,
        /// `RETURN (...)`; `Some(empty)` means `RETURN ()` (= ALL).
        return_opts: Option<Vec<SearchReturn>>,
    },
    /// FETCH / UID FETCH, with RFC 7162 modifiers.
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Items, macros (ALL, FAST, FULL) already expanded.
        items: Vec<FetchAttr>,
        /// `(CHANGEDSINCE m)`.
        changed_since: Option<u64>,
        /// `(VANISHED)` (only valid with UID FETCH and CHANGEDSINCE).
        vanished: bool,
        /// `(PARTIAL range)` (RFC 9394): only this window of the set's messages.
        partial: Option<PartialRange>,
    },
    /// STORE / UID STORE.
    Store {
        /// UID STORE.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// FLAGS, +FLAGS or -FLAGS.
        op: StoreOp,
        /// `.SILENT` given.
        silent: bool,
        /// Flags as written.
        flags: Vec<String>,
        /// `(UNCHANGEDSINCE m)`.
        unchanged_since: Option<u64>,
    },
    /// COPY / UID COPY.
    Copy {
        /// UID COPY.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: String,
    },
    /// MOVE / UID MOVE (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Messages.
        set: SequenceSet,
        /// Target mailbox.
        mailbox: String,
    },
    /// SORT / UID SORT (RFC 5256), with optional ESORT return options.
    Sort {
        /// UID SORT.
        uid: bool,
        /// Sort criteria in order.
        criteria: Vec<SortCriterion>,
        /// Charset (required by the grammar).
        charset: String,
        /// Which messages.
        search: SearchKey,
        /// `RETURN (...)` (RFC 5267 ESORT), if given.
        return_opts: Option<Vec<SearchReturn>>,
    },
    /// THREAD / UID THREAD (RFC 5256).
    Thread {
        /// UID THREAD.
        uid: bool,
        /// The algorithm.
        algorithm: ThreadAlgorithm,
        /// Charset.
        charset: String,
        /// Which messages.
        search: SearchKey,
    },
    /// IDLE (RFC 2177); the session then waits for DONE.
    Idle,
    /// GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries (RFC 5464); mailbox "" is the
    /// server. Entry names are lower-cased.
    GetMetadata {
        /// Mailbox, or "" for the server.
        mailbox: String,
        /// Entries asked for (at least one).
        entries: Vec<String>,
        /// MAXSIZE: values longer than this are left out (and counted in LONGENTRIES).
        maxsize: Option<u64>,
        /// DEPTH.
        depth: MetadataDepth,
    },
    /// SETMETADATA mailbox (entry value ...) (RFC 5464); a `None` value (NIL) removes
    /// the entry. Entry names are lower-cased.
    SetMetadata {
        /// Mailbox, or "" for the server.
        mailbox: String,
        /// (entry, value) pairs in the order given.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// GETQUOTA root (RFC 9208)
    GetQuota(String),
    /// GETQUOTAROOT mailbox
    GetQuotaRoot(String),
    /// SETQUOTA root (resource limit ...)
    SetQuota {
        /// Quota root.
        root: String,
        /// (resource name upper-cased, limit) pairs.
        limits: Vec<(String, u64)>,
    },
    /// SETACL mailbox identifier rights (RFC 4314); rights may start with + or -.
    SetAcl {
        /// Mailbox.
        mailbox: String,
        /// Who.
        identifier: String,
        /// Rights string as given.
        rights: String,
    },
    /// DELETEACL mailbox identifier
    DeleteAcl {
        /// Mailbox.
        mailbox: String,
        /// Who.
        identifier: String,
    },
    /// GETACL mailbox
    GetAcl(String),
    /// LISTRIGHTS mailbox identifier
    ListRights {
        /// Mailbox.
        mailbox: String,
        /// Who.
        identifier: String,
    },
    /// MYRIGHTS mailbox
    MyRights(String),
    /// COMPRESS mechanism (RFC 4978)
    Compress(String),
}

/// `QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]])` (RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client last saw.
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ the client last saw.
    pub modseq: u64,
    /// UIDs the client knows.
    pub known_uids: Option<SequenceSet>,
    /// Message sequence numbers and the UIDs they correspond to.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A set of message numbers or UIDs as written: ranges whose ends may be `*`, or `$`
/// (the saved result of RFC 5182 SEARCHRES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Explicit ranges, in the order written.
    Ranges(Vec<SeqRange>),
    /// `$`
    Saved,
}

/// One element of a sequence set: `a`, `a:b` (either order), where an end may be `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// First end as written.
    pub start: SeqNum,
    /// Second end as written (equal to `start` for a single number).
    pub end: SeqNum,
}

/// A number in a sequence set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    /// A number (never 0).
    Value(u32),
    /// `*`: the largest number in use.
    Star,
}

/// A STATUS item (RFC 3501, 7162, 8438).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES
    Messages,
    /// RECENT
    Recent,
    /// UIDNEXT
    UidNext,
    /// UIDVALIDITY
    UidValidity,
    /// UNSEEN
    Unseen,
    /// HIGHESTMODSEQ
    HighestModseq,
    /// SIZE (RFC 8438)
    Size,
    /// DELETED (RFC 9051)
    Deleted,
    /// APPENDLIMIT (RFC 7889)
    AppendLimit,
    /// MAILBOXID (RFC 8474)
    MailboxId,
}

/// An INTERNALDATE as written in APPEND: a moment and the zone it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub timestamp: i64,
    /// Offset of the written zone from UTC, in minutes.
    pub offset_minutes: i32,
}

/// A calendar date in SEARCH (`1-Feb-1994`), no time or zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31.
    pub day: u8,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

/// GETMETADATA's DEPTH option (RFC 5464 4.2.2): which entries below a requested one
/// are returned too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    /// Only the entry itself (the default).
    Zero,
    /// The entry and its immediate children.
    One,
    /// The entry and everything below it.
    Infinity,
}

/// One URL of URLFETCH: bare (RFC 4467), or in parentheses with what to return of
/// it (RFC 5524, URLAUTH=BINARY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetchParam {
    /// The URL as sent.
    pub url: String,
    /// `None` for a bare URL: the data as a plain nstring.
    pub extended: Option<UrlFetchWants>,
}

/// What an extended URLFETCH asks for (each at most once; BINARY and BODY exclude
/// each other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlFetchWants {
    /// BODYPARTSTRUCTURE: the part's BODYSTRUCTURE.
    pub body_part_structure: bool,
    /// BINARY: the part with its Content-Transfer-Encoding removed.
    pub binary: bool,
    /// BODY: the part as stored.
    pub body: bool,
}
