//! The IMAP command parser.
