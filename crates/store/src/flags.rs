//! Message flags: IMAP system flags and keywords.

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
            // Compared in place: parsing runs for every record a flag store or a
            // FETCH FLAGS reads, and lower-casing into a new string cost an allocation.
            return SYSTEM
                .iter()
                .find(|f| {
                    f.system_name()
                        .is_some_and(|n| n.eq_ignore_ascii_case(system))
                })
                .cloned()
                .ok_or_else(|| StoreError::InvalidFlag(s.to_owned()));
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

    /// The flag as IMAP writes it (`\Seen`, `$Label1`): what [`fmt::Display`] shows,
    /// without the formatting machinery.
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
        }
    }

    /// The name of a system flag without its backslash; `None` for a keyword.
    fn system_name(&self) -> Option<&'static str> {
        match self {
            Flag::Seen => Some("Seen"),
            Flag::Answered => Some("Answered"),
            Flag::Flagged => Some("Flagged"),
            Flag::Deleted => Some("Deleted"),
            Flag::Draft => Some("Draft"),
            Flag::Keyword(_) => None,
        }
    }

    /// A system flag's bit in [`Flags`] (its place in [`SYSTEM`]); `None` for a keyword.
    fn bit(&self) -> Option<u8> {
        match self {
            Flag::Seen => Some(1),
            Flag::Answered => Some(1 << 1),
            Flag::Flagged => Some(1 << 2),
            Flag::Deleted => Some(1 << 3),
            Flag::Draft => Some(1 << 4),
            Flag::Keyword(_) => None,
        }
    }
}

/// The system flags in canonical order, which is `Flag`'s order.
static SYSTEM: [Flag; 5] = [
    Flag::Seen,
    Flag::Answered,
    Flag::Flagged,
    Flag::Deleted,
    Flag::Draft,
];

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
///
/// System flags are bits and keywords a sorted list, so a set of system flags alone
/// (most records) holds no allocation: flag sets are built for every record a flag
/// store or a FETCH reads.
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct Flags {
    /// One bit per system flag set ([`Flag::bit`]).
    system: u8,
    /// The keywords set: only `Flag::Keyword`, sorted, no two equal.
    keywords: Vec<Flag>,
}

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
        match flag.bit() {
            Some(bit) => self.system & bit != 0,
            None => self.keywords.binary_search(flag).is_ok(),
        }
    }

    /// Sets `flag`; returns true if it was not set before.
    pub fn insert(&mut self, flag: Flag) -> bool {
        if let Some(bit) = flag.bit() {
            let new = self.system & bit == 0;
            self.system |= bit;
            return new;
        }
        match self.keywords.binary_search(&flag) {
            Ok(_) => false,
            Err(at) => {
                self.keywords.insert(at, flag);
                true
            }
        }
    }

    /// Clears `flag`; returns true if it was set.
    pub fn remove(&mut self, flag: &Flag) -> bool {
        if let Some(bit) = flag.bit() {
            let was = self.system & bit != 0;
            self.system &= !bit;
            return was;
        }
        match self.keywords.binary_search(flag) {
            Ok(at) => {
                self.keywords.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Iterates in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        // A system flag's bit is its place in SYSTEM (see `Flag::bit`).
        let system = self.system;
        SYSTEM
            .iter()
            .enumerate()
            .filter(move |(i, _)| system >> i & 1 != 0)
            .map(|(_, f)| f)
            .chain(self.keywords.iter())
    }

    /// The keywords set, in canonical order (each a [`Flag::Keyword`]).
    pub fn keywords(&self) -> &[Flag] {
        &self.keywords
    }

    /// Number of flags set.
    pub fn len(&self) -> usize {
        self.system.count_ones() as usize + self.keywords.len()
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.system == 0 && self.keywords.is_empty()
    }

    /// True when `text` is exactly how these flags are stored ([`fmt::Display`]): the
    /// canonical order, single spaces, system flags in their canonical spelling. A
    /// kept read of records stands in for the stored text only when this holds.
    pub(crate) fn written_as(&self, text: &str) -> bool {
        if text.is_empty() {
            return self.is_empty();
        }
        let mut tokens = text.split(' ');
        for flag in self.iter() {
            let same = match (flag, tokens.next()) {
                (_, None) => false,
                (Flag::Keyword(k), Some(token)) => k == token,
                (system, Some(token)) => token
                    .strip_prefix('\\')
                    .is_some_and(|name| system.system_name() == Some(name)),
            };
            if !same {
                return false;
            }
        }
        tokens.next().is_none()
    }

    /// Applies a flag change and returns the result.
    pub fn apply(&self, op: FlagOp, flags: &Flags) -> Flags {
        match op {
            FlagOp::Replace => flags.clone(),
            FlagOp::Add => {
                let mut keywords = self.keywords.clone();
                for k in &flags.keywords {
                    if let Err(at) = keywords.binary_search(k) {
                        keywords.insert(at, k.clone());
                    }
                }
                Flags {
                    system: self.system | flags.system,
                    keywords,
                }
            }
            FlagOp::Remove => Flags {
                system: self.system & !flags.system,
                keywords: self
                    .keywords
                    .iter()
                    .filter(|k| flags.keywords.binary_search(k).is_err())
                    .cloned()
                    .collect(),
            },
        }
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Flags {
        let mut flags = Flags::new();
        for flag in iter {
            match flag.bit() {
                Some(bit) => flags.system |= bit,
                None => flags.keywords.push(flag),
            }
        }
        flags.keywords.sort_unstable();
        flags.keywords.dedup();
        flags
    }
}

impl fmt::Display for Flags {
    /// Space-separated, canonical order: the form stored in the index.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, flag) in self.iter().enumerate() {
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

    /// `iter` takes a system flag's bit to be its place in SYSTEM; `as_str` is what
    /// Display shows.
    #[test]
    fn bits_are_places_and_names_are_display() {
        for (i, f) in SYSTEM.iter().enumerate() {
            assert_eq!(f.bit(), Some(1 << i));
        }
        let all: Flags = SYSTEM
            .iter()
            .cloned()
            .chain([Flag::Keyword("$Work".into()), Flag::Keyword("Junk".into())])
            .collect();
        let listed: Vec<&Flag> = all.iter().collect();
        assert_eq!(listed.len(), 7);
        for f in listed {
            assert_eq!(f.as_str(), f.to_string());
        }
        assert_eq!(all.keywords().len(), 2);
    }

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

    /// Every operation agrees with an ordered set of flags (what `Flags` was before it
    /// held bits), over random sequences of system flags and keywords, some differing
    /// only in case: contents, order, length, equality and the text stored.
    #[test]
    fn behaves_as_an_ordered_set() {
        use std::collections::BTreeSet;
        let pool: Vec<Flag> = [
            "\\Seen",
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Draft",
            "$Junk",
            "$junk",
            "Work",
            "a",
            "zz",
            "$MDNSent",
        ]
        .iter()
        .map(|f| Flag::parse(f).unwrap())
        .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..300 {
            let mut flags = Flags::new();
            let mut model = BTreeSet::new();
            for _ in 0..20 {
                let flag = pool[next(pool.len())].clone();
                if next(3) == 0 {
                    assert_eq!(flags.remove(&flag), model.remove(&flag));
                } else {
                    assert_eq!(flags.insert(flag.clone()), model.insert(flag));
                }
                let probe = &pool[next(pool.len())];
                assert_eq!(flags.contains(probe), model.contains(probe));
                assert_eq!(flags.len(), model.len());
                assert_eq!(flags.is_empty(), model.is_empty());
                assert!(flags.iter().eq(model.iter()));
            }
            let other: Vec<Flag> = (0..next(6))
                .map(|_| pool[next(pool.len())].clone())
                .collect();
            let other_set: BTreeSet<Flag> = other.iter().cloned().collect();
            let other = Flags::from_iter(other.into_iter().rev());
            assert!(other.iter().eq(other_set.iter()));
            let added: BTreeSet<Flag> = model.union(&other_set).cloned().collect();
            let removed: BTreeSet<Flag> = model.difference(&other_set).cloned().collect();
            assert!(flags.apply(FlagOp::Add, &other).iter().eq(added.iter()));
            assert!(flags
                .apply(FlagOp::Remove, &other)
                .iter()
                .eq(removed.iter()));
            assert_eq!(flags.apply(FlagOp::Replace, &other), other);
            let text = model
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(flags.to_string(), text);
            assert_eq!(Flags::parse_list(&text).unwrap(), flags);
            assert!(flags.written_as(&text), "{text:?}");
            let shuffled: Flags = model
                .iter()
                .rev()
                .cloned()
                .chain(model.iter().cloned())
                .collect();
            assert_eq!(
                shuffled, flags,
                "equal whatever order and repetition built them"
            );
        }
    }

    #[test]
    fn apply_add_remove_replace() {
        let base = Flags::parse_list("\\Seen a").unwrap();
        let ch = Flags::parse_list("a b").unwrap();
        assert_eq!(base.apply(FlagOp::Add, &ch).to_string(), "\\Seen a b");
        assert_eq!(base.apply(FlagOp::Remove, &ch).to_string(), "\\Seen");
        assert_eq!(base.apply(FlagOp::Replace, &ch).to_string(), "a b");
    }
    /// Only the stored form itself counts as written: another spelling, order or
    /// spacing of the same flags, or text that parses to other flags, does not.
    #[test]
    fn written_as_only_the_stored_text() {
        let flags = Flags::parse_list("\\Seen \\Deleted $Work Junk").unwrap();
        assert!(flags.written_as("\\Seen \\Deleted $Work Junk"));
        for other in [
            "\\seen \\Deleted $Work Junk",
            "\\Deleted \\Seen $Work Junk",
            "\\Seen  \\Deleted $Work Junk",
            "\\Seen \\Deleted $Work Junk ",
            " \\Seen \\Deleted $Work Junk",
            "\\Seen \\Deleted Junk $Work",
            "\\Seen \\Deleted $Work",
            "\\Seen \\Deleted $Work Junk Junk",
            "Seen \\Deleted $Work Junk",
            "",
        ] {
            assert!(!flags.written_as(other), "{other:?}");
        }
        assert!(Flags::new().written_as(""));
        assert!(!Flags::new().written_as(" "));
        assert!(!Flags::new().written_as("\\Seen"));
    }
}
