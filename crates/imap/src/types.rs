//! The IMAP command grammar as types: what the parser produces and the session obeys.
//!
//! Everything here is already validated: a `Command` that exists is syntactically
//! correct. Names (mailboxes) are decoded from modified UTF-7 (or taken as UTF-8 when
//! the client enabled UTF8=ACCEPT) before they get here.

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

/// A SEARCH key (RFC 3501 6.4.4, RFC 9051, RFC 7162 MODSEQ, RFC 5032 WITHIN).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    /// HEADER field-name string
    Header(String, String),
    Keyword(String),
    Larger(u64),
    /// EMAILID objectid (RFC 8474)
    EmailId(String),
    /// THREADID objectid (RFC 8474): matches nothing, tern keeps no thread ids.
    ThreadId(String),
    /// SAVEDBEFORE date (RFC 8514)
    SavedBefore(Date),
    /// SAVEDON date (RFC 8514)
    SavedOn(Date),
    /// SAVEDSINCE date (RFC 8514)
    SavedSince(Date),
    /// SAVEDATESUPPORTED (RFC 8514): every message, as every mailbox keeps save dates.
    SaveDateSupported,
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// A bare sequence set.
    Sequence(SequenceSet),
    /// Parenthesised list, or several keys in a row: all must match.
    And(Vec<SearchKey>),
    /// MODSEQ [entry-name entry-type] value: the entry is accepted and ignored.
    Modseq(u64),
    /// YOUNGER seconds (RFC 5032)
    Younger(u64),
    /// OLDER seconds (RFC 5032)
    Older(u64),
}

/// What NOTIFY SET asks for (RFC 5465 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: send the current status of the watched mailboxes at once.
    pub status: bool,
    /// The event groups, in the order given (the first that names a mailbox applies).
    pub groups: Vec<NotifyGroup>,
}

/// One `(filter events)` group of NOTIFY SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// Which mailboxes.
    pub filter: NotifyFilter,
    /// Which events; empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

/// A NOTIFY mailbox filter (RFC 5465 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// The selected mailbox, whatever it is at the time.
    Selected,
    /// The selected mailbox, EXPUNGE held until a command allows it.
    SelectedDelayed,
    /// Where new mail is delivered (INBOX).
    Inboxes,
    /// Every mailbox of the user's own namespace.
    Personal,
    /// The mailboxes the user is subscribed to.
    Subscribed,
    /// These mailboxes and every mailbox below them.
    Subtree(Vec<String>),
    /// Exactly these mailboxes.
    Mailboxes(Vec<String>),
}

/// A NOTIFY event (RFC 5465 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the FETCH items to send for a new message in the selected mailbox.
    MessageNew(Vec<FetchAttr>),
    /// A message was expunged.
    MessageExpunge,
    /// A message's flags changed.
    FlagChange,
    /// A message's annotations changed (not produced by tern).
    AnnotationChange,
    /// A mailbox was created, renamed or deleted.
    MailboxName,
    /// A subscription was added or removed.
    SubscriptionChange,
    /// A mailbox's METADATA changed (not produced by tern).
    MailboxMetadataChange,
    /// The server's METADATA changed (not produced by tern).
    ServerMetadataChange,
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set, as written (`\Seen`, `$Label`).
    pub flags: Vec<String>,
    /// INTERNALDATE requested.
    pub date: Option<DateTime>,
    /// Its content.
    pub content: AppendContent,
}

/// Where an appended message's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendContent {
    /// A literal; `binary` when sent as `~{n}` (RFC 3516 literal8).
    Literal {
        /// The message bytes.
        bytes: Vec<u8>,
        /// Sent as literal8.
        binary: bool,
    },
    /// `CATENATE (...)` (RFC 4469): the parts joined in order.
    Catenate(Vec<CatPart>),
}

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal`: bytes as given.
    Text(Vec<u8>),
    /// `URL "..."`: an IMAP URL (RFC 5092) naming a message or part on this server.
    Url(String),
}

/// An ESEARCH return option (RFC 4731, RFC 5182 SAVE, RFC 9394 PARTIAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    Partial(PartialRange),
    /// RFC 5267 CONTEXT: keep the result and report how it changes.
    Update,
}

/// A window of positions in a result list (RFC 9394 `partial-range`): `3:5` is the
/// third to fifth result, `-1:-10` the last ten. Always held with `low <= high`, as
/// the range is echoed in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    /// Counted from the end of the results (`-low:-high`).
    pub from_end: bool,
    /// The nearer end of the window, 1-based.
    pub low: u32,
    /// The farther end of the window, 1-based, at least `low`.
    pub high: u32,
}

impl PartialRange {
    /// The part of `results` the window covers, in the order of `results` (empty when
    /// the window lies wholly beyond them).
    pub fn select<'r, T>(&self, results: &'r [T]) -> &'r [T] {
        let n = results.len();
        let (low, high) = (self.low as usize, self.high as usize);
        if low > n {
            return &[];
        }
        if self.from_end {
            &results[n.saturating_sub(high)..=n - low]
        } else {
            &results[low - 1..high.min(n)]
        }
    }
}

impl std::fmt::Display for PartialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from_end {
            write!(f, "-{}:-{}", self.low, self.high)
        } else {
            write!(f, "{}:{}", self.low, self.high)
        }
    }
}

/// FETCH items (RFC 3501 6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    /// FLAGS
    Flags,
    /// INTERNALDATE
    InternalDate,
    /// RFC822.SIZE
    Rfc822Size,
    /// EMAILID (RFC 8474): an id of the message's content, the same in every mailbox.
    EmailId,
    /// THREADID (RFC 8474): always NIL, tern keeps no thread ids.
    ThreadId,
    /// PREVIEW (RFC 8970), with or without the LAZY modifier.
    Preview,
    /// SAVEDATE (RFC 8514)
    SaveDate,
    /// ENVELOPE
    Envelope,
    /// BODYSTRUCTURE
    BodyStructure,
    /// BODY (without section: the non-extensible BODYSTRUCTURE)
    Body,
    /// UID
    Uid,
    /// MODSEQ
    Modseq,
    /// RFC822 (= BODY[], sets \Seen)
    Rfc822,
    /// RFC822.HEADER (= BODY.PEEK[HEADER])
    Rfc822Header,
    /// RFC822.TEXT (= BODY[TEXT], sets \Seen)
    Rfc822Text,
    /// BODY[section]<partial> or BODY.PEEK[...]
    BodySection {
        /// BODY.PEEK: do not set \Seen.
        peek: bool,
        /// Which part.
        section: Section,
        /// `<offset.length>`.
        partial: Option<(u32, u32)>,
    },
    /// BINARY[part]<partial> or BINARY.PEEK[...]
    Binary {
        /// BINARY.PEEK.
        peek: bool,
        /// Part numbers (empty for the whole message).
        part: Vec<u32>,
        /// `<offset.length>`.
        partial: Option<(u32, u32)>,
    },
    /// BINARY.SIZE[part]
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
    },
}

/// A body section: part numbers, then what of that part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers (`1.2.3`); empty for the whole message.
    pub part: Vec<u32>,
    /// HEADER, HEADER.FIELDS, TEXT or MIME; `None` for the part's whole content.
    pub text: Option<SectionText>,
}

/// The `section-text` of a body section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// HEADER
    Header,
    /// HEADER.FIELDS (names, as written)
    HeaderFields(Vec<String>),
    /// HEADER.FIELDS.NOT (names)
    HeaderFieldsNot(Vec<String>),
    /// TEXT
    Text,
    /// MIME (only with part numbers)
    Mime,
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

/// One SORT criterion (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// REVERSE given.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// SORT keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// THREAD algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// ORDEREDSUBJECT
    OrderedSubject,
    /// REFERENCES
    References,
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
