//! The messages of an APPEND (RFC 3502 MULTIAPPEND) and their CATENATE parts
//! (RFC 4469).

use super::DateTime;

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
