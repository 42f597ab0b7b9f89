//! SEARCH, SORT and THREAD as the parser gives them: the keys to match, what to
//! return (RFC 4731 ESEARCH, RFC 9394 PARTIAL) and the sort and thread criteria.

use super::{Date, SequenceSet};

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
