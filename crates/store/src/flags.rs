//! Message flags: IMAP system flags and keywords.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Result, StoreError};

/// One flag on a record.
///
/// System flags compare case-insensitively on input and are stored in their canonical
/// spelling; keywords are kept as given (IMAP atoms without the leading backslash).
/// `\Recent` is per-session state in IMAP and is never stored.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword such as `$Forwarded` or `Junk`.
    Keyword(String),
}

/// Longest keyword accepted, in bytes.
pub const MAX_KEYWORD_LEN: usize = 128;

impl Flag {
    /// Parses a flag as written in IMAP (`\Seen`, `$Label1`).
    ///
    /// Rejects `\Recent`, unknown backslash flags, and keywords that are not IMAP atoms.
    pub fn parse(s: &str) -> Result<Flag> {
        if let Some(system) = s.strip_prefix('\\') {
            return match system.to_ascii_lowercase().as_str() {
                "seen" => Ok(Flag::Seen),
                "answered" => Ok(Flag::Answered),
                "flagged" => Ok(Flag::Flagged),
                "deleted" => Ok(Flag::Deleted),
                "draft" => Ok(Flag::Draft),
                _ => Err(StoreError::InvalidFlag(s.to_owned())),
            };
        }
        let atom_ok = !s.is_empty()
            && s.len() <= MAX_KEYWORD_LEN
            && s.bytes().all(|b| {
                b > 0x20
                    && b < 0x7f
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
            });
        if atom_ok {
            Ok(Flag::Keyword(s.to_owned()))
        } else {
            Err(StoreError::InvalidFlag(s.to_owned()))
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Keyword(k) => f.write_str(k),
        }
    }
}

/// The set of flags on a record, in canonical order (system flags first).
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Flags(BTreeSet<Flag>);

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Parses flags separated by spaces, as stored in the index.
    pub fn parse_list(s: &str) -> Result<Flags> {
        s.split_ascii_whitespace().map(Flag::parse).collect()
    }

    /// True if `flag` is set.
    pub fn contains(&self, flag: &Flag) -> bool {
        self.0.contains(flag)
    }

    /// Sets `flag`; returns true if it was not set before.
    pub fn insert(&mut self, flag: Flag) -> bool {
        self.0.insert(flag)
    }

    /// Clears `flag`; returns true if it was set.
    pub fn remove(&mut self, flag: &Flag) -> bool {
        self.0.remove(flag)
    }

    /// Iterates in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        self.0.iter()
    }

    /// Number of flags set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies a flag change and returns the result.
    pub fn apply(&self, op: FlagOp, flags: &Flags) -> Flags {
        match op {
            FlagOp::Replace => flags.clone(),
            FlagOp::Add => Flags(self.0.union(&flags.0).cloned().collect()),
            FlagOp::Remove => Flags(self.0.difference(&flags.0).cloned().collect()),
        }
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        Flags(iter.into_iter().collect())
    }
}

impl fmt::Display for Flags {
    /// Space-separated, canonical order: the form stored in the index.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, flag) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{flag}")?;
        }
        Ok(())
    }
}

/// How a flag change combines with the flags a record already has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlagOp {
    /// Set exactly these flags (IMAP `FLAGS`).
    Replace,
    /// Add these flags (IMAP `+FLAGS`).
    Add,
    /// Remove these flags (IMAP `-FLAGS`).
    Remove,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_are_case_insensitive_and_canonical() {
        let f = Flags::parse_list("\\SEEN $Label \\flagged").unwrap();
        assert_eq!(f.to_string(), "\\Seen \\Flagged $Label");
    }

    #[test]
    fn rejects_recent_and_non_atoms() {
        assert!(Flag::parse("\\Recent").is_err());
        assert!(Flag::parse("a(b").is_err());
        assert!(Flag::parse("").is_err());
        assert!(Flag::parse(&"k".repeat(MAX_KEYWORD_LEN + 1)).is_err());
    }

    #[test]
    fn apply_add_remove_replace() {
        let base = Flags::parse_list("\\Seen a").unwrap();
        let ch = Flags::parse_list("a b").unwrap();
        assert_eq!(base.apply(FlagOp::Add, &ch).to_string(), "\\Seen a b");
        assert_eq!(base.apply(FlagOp::Remove, &ch).to_string(), "\\Seen");
        assert_eq!(base.apply(FlagOp::Replace, &ch).to_string(), "a b");
    }
}
