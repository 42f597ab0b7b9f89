//! IMAP4rev1 (RFC 3501) / IMAP4rev2 (RFC 9051) server for tern.

#![deny(missing_docs)]

pub mod mime;
pub mod mutf7;
pub mod parser;
pub mod types;
