//! Messages as tern's protocols see them: header fields, MIME structure, addresses
//! and message ids parsed from the raw bytes, the per-message [`Summary`] the store
//! keeps, the decoded text the full-text index holds, and the store's content indexer
//! ([`MessageIndexer`]) that computes both.
//!
//! The protocols render from here: IMAP its ENVELOPE, BODYSTRUCTURE and body
//! sections, NNTP its overview; none of them parses MIME itself, and none depends on
//! another.
//!
//! The MIME tree is split on byte offsets of the raw message, so that every part is
//! byte-exact, and malformed input (missing or wrong boundaries, truncation, 8-bit
//! garbage, absurd nesting) never panics: nesting stops at [`MAX_DEPTH`].
//! `mail-parser` does what it does well: RFC 2047 decoding of header text, RFC 5322
//! dates and charset conversion.
//!
//! # Where things are
//!
//! - `header.rs`: header fields, unfolding, RFC 2047 decoding; `params.rs`: structured
//!   values (Content-Type, Content-Disposition); `address.rs`: address lists and
//!   message ids.
//! - `tree.rs`: the MIME tree and MIME part numbers; `transfer.rs`: transfer decoding.
//! - `summary.rs`: [`Summary`] and [`summarize`]; `codec.rs`: its stored form.
//! - `text.rs`: the text searches match; `subject.rs`: RFC 5256 base subjects.
//! - `indexer.rs`: [`MessageIndexer`]; `date.rs`: calendar arithmetic and RFC 5322
//!   date-times.

#![deny(missing_docs)]

pub mod address;
mod codec;
pub mod date;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod header;
mod indexer;
mod params;
mod preview;
mod subject;
mod summary;
mod text;
pub mod transfer;
pub mod tree;

pub use address::Address;
pub use header::decode_header_value;
pub use indexer::MessageIndexer;
pub use params::ContentType;
pub use preview::{preview, PREVIEW_CHARS};
pub use subject::base_subject;
pub use summary::{
    message_id, summarize, BodyPart, Content, Disposition, Envelope, SortKeys, Summary,
};
pub use text::{
    any_field_value, body_text, header_text, header_values, search_field_texts, SEARCH_FIELDS,
};
pub use transfer::{decoded_part, with_leaves_decoded, UnknownEncoding};

/// How deep multiparts and encapsulated messages are followed; deeper parts are
/// reported as `application/octet-stream` leaves.
pub const MAX_DEPTH: usize = 32;
