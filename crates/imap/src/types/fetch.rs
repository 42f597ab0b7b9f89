//! FETCH items and body sections as the parser gives them (RFC 3501 6.4.5, RFC 3516
//! BINARY, RFC 7162 MODSEQ).

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
