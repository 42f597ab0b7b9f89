//! Writing IMAP response syntax: strings, mailbox names, flags, dates.
//!
//! Every function returns text that the parser side of any client accepts: a string
//! goes out as an atom, a quoted string, or a literal, whichever its bytes allow.

use tern_store::{Flag, Flags};

use crate::mime::write_string;

/// Appends a mailbox name in wire form: modified UTF-7 unless the client enabled
/// UTF8=ACCEPT, then quoted (or a literal).
pub(crate) fn push_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        if name.is_ascii() {
            write_string(out, name.as_bytes());
        } else {
            // RFC 6855: a quoted string may carry UTF-8 once UTF8=ACCEPT is enabled.
            out.push(b'"');
            for b in name.bytes() {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        }
    } else {
        write_string(out, crate::mutf7::encode(name).as_bytes());
    }
}

/// A parenthesised flag list, `\Recent` last when `recent` (RFC 3501 7.4.2 FLAGS),
/// written straight into the response: a STORE over 3,000 messages writes 3,000 of
/// them, and building each as a string first was a fifth of that command.
pub(crate) struct FlagList<'a>(pub(crate) &'a Flags, pub(crate) bool);

impl std::fmt::Display for FlagList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(")?;
        let mut first = true;
        for flag in self.0.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            std::fmt::Display::fmt(flag, f)?;
        }
        if self.1 {
            f.write_str(if first { "\\Recent" } else { " \\Recent" })?;
        }
        f.write_str(")")
    }
}

/// [`FlagList`] as a string.
#[cfg(test)]
pub(crate) fn flag_list(flags: &Flags, recent: bool) -> String {
    FlagList(flags, recent).to_string()
}

/// The system flags every mailbox offers, in FLAGS and PERMANENTFLAGS order.
pub(crate) const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// `FLAGS (...)` and `OK [PERMANENTFLAGS (...)] ...` for a mailbox whose keyword table
/// is `keywords` (RFC 3501 7.1, 7.2.6): the system flags and every keyword. A
/// read-only view may change nothing, so its PERMANENTFLAGS is empty; otherwise `\*`
/// (new keywords may be created) while the table is under the store's cap.
pub(crate) fn flags_lines<'a>(
    keywords: impl IntoIterator<Item = &'a String>,
    read_only: bool,
) -> [String; 2] {
    let mut list = String::from(SYSTEM_FLAGS);
    let mut n = 0;
    for k in keywords {
        list.push(' ');
        list.push_str(k);
        n += 1;
    }
    let flags = format!("FLAGS ({list})");
    let permanent = if read_only {
        "OK [PERMANENTFLAGS ()] No permanent flags permitted".to_owned()
    } else if n < tern_store::MAX_KEYWORDS {
        format!("OK [PERMANENTFLAGS ({list} \\*)] Flags permitted")
    } else {
        format!("OK [PERMANENTFLAGS ({list})] Flags permitted, no new keywords")
    };
    [flags, permanent]
}

/// Whether a string names one of the system flags or a valid keyword.
pub(crate) fn parse_flags(raw: &[String]) -> Result<Flags, String> {
    raw.iter()
        .map(|f| Flag::parse(f).map_err(|_| f.clone()))
        .collect::<Result<Flags, String>>()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `"17-Jul-1996 02:44:25 +0000"` for a Unix timestamp (INTERNALDATE is kept in UTC).
pub(crate) fn internal_date(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let secs = timestamp.rem_euclid(86_400);
    let (y, m, d) = tern_message::date::civil_from_days(days);
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Now, in seconds since the Unix epoch (INTERNALDATE of an APPEND without a date,
/// the reference point of SEARCH YOUNGER/OLDER).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The calendar date (UTC) of a Unix timestamp, for SEARCH BEFORE/ON/SINCE.
pub(crate) fn date_of(timestamp: i64) -> crate::types::Date {
    let (y, m, d) = tern_message::date::civil_from_days(timestamp.div_euclid(86_400));
    crate::types::Date {
        year: y as i32,
        month: m as u8,
        day: d as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        let mut out = Vec::new();
        push_mailbox(&mut out, "Entwürfe", false);
        out.push(b' ');
        push_mailbox(&mut out, "Entwürfe", true);
        assert_eq!(out, "\"Entw&APw-rfe\" \"Entwürfe\"".as_bytes());
    }

    #[test]
    fn dates() {
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(internal_date(837_571_465), "\"17-Jul-1996 02:44:25 +0000\"");
        assert_eq!(
            date_of(951_782_400),
            crate::types::Date {
                year: 2000,
                month: 2,
                day: 29
            }
        );
    }

    #[test]
    fn flags_and_permanentflags() {
        let kw: Vec<String> = vec!["$Label1".into(), "foo".into()];
        assert_eq!(
            flags_lines(&kw, false),
            [
                "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 foo)".to_owned(),
                "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 foo \\*)] Flags permitted".to_owned()
            ]
        );
        assert_eq!(
            flags_lines(&kw, true)[1],
            "OK [PERMANENTFLAGS ()] No permanent flags permitted"
        );
        let full: Vec<String> = (0..tern_store::MAX_KEYWORDS)
            .map(|i| format!("k{i}"))
            .collect();
        assert!(!flags_lines(&full, false)[1].contains("\\*"));
    }

    #[test]
    fn flags() {
        let f = Flags::parse_list("\\Seen $x").unwrap();
        assert_eq!(flag_list(&f, true), "(\\Seen $x \\Recent)");
        assert_eq!(flag_list(&Flags::new(), false), "()");
    }
}
