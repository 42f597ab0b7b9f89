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

/// Appends `n` in decimal, as `write!(out, "{n}")` would, without the formatting
/// machinery: a `STORE 1:*` answer or a FETCH of the flags writes several numbers
/// for each of thousands of messages.
pub(crate) fn put_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends what [`FlagList`] displays, as [`put_number`] does for numbers.
pub(crate) fn put_flag_list(out: &mut Vec<u8>, flags: &Flags, recent: bool) {
    out.push(b'(');
    let mut first = true;
    for flag in flags.iter() {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(flag.as_str().as_bytes());
    }
    if recent {
        out.extend_from_slice(if first { b"\\Recent" } else { b" \\Recent" });
    }
    out.push(b')');
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
    let mut out = Vec::with_capacity(28);
    put_internal_date(&mut out, timestamp);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`internal_date`], digits written directly (a FETCH of a mailbox's
/// INTERNALDATEs writes thousands).
pub(crate) fn put_internal_date(out: &mut Vec<u8>, timestamp: i64) {
    let days = timestamp.div_euclid(86_400);
    let secs = timestamp.rem_euclid(86_400);
    let (y, m, d) = tern_message::date::civil_from_days(days);
    let Ok(year) = u16::try_from(y).map(u64::from) else {
        // Outside years 0-65535 (never for a real message): the general path.
        out.extend_from_slice(formatted_internal_date(timestamp).as_bytes());
        return;
    };
    let two = |out: &mut Vec<u8>, n: u64| {
        out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8])
    };
    out.push(b'"');
    two(out, d as u64);
    out.push(b'-');
    out.extend_from_slice(MONTHS[(m - 1) as usize].as_bytes());
    out.push(b'-');
    if year < 1000 {
        out.extend_from_slice(&b"000"[..3 - (year >= 10) as usize - (year >= 100) as usize]);
    }
    put_number(out, year);
    out.push(b' ');
    let secs = secs as u64;
    two(out, secs / 3600);
    out.push(b':');
    two(out, secs / 60 % 60);
    out.push(b':');
    two(out, secs % 60);
    out.extend_from_slice(b" +0000\"");
}

/// [`internal_date`] through the formatting machinery: what [`put_internal_date`]
/// falls back to for years it does not write itself.
fn formatted_internal_date(timestamp: i64) -> String {
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

    /// INTERNALDATE written digit by digit is what the format string writes.
    #[test]
    fn internal_dates_are_formatted() {
        let reference = formatted_internal_date;
        assert_eq!(internal_date(837_571_465), "\"17-Jul-1996 02:44:25 +0000\"");
        let mut t: i64 = -62_167_219_200 - 86_400 * 400;
        while t < 253_402_300_800 + 86_400 * 800 {
            assert_eq!(internal_date(t), reference(t), "{t}");
            t += 86_400 * 37 + 3_671;
        }
        for t in [
            0,
            -1,
            1,
            86_399,
            86_400,
            -62_135_596_800,
            -62_135_596_801,
            4_102_444_800,
        ] {
            assert_eq!(internal_date(t), reference(t), "{t}");
        }
    }

    /// The writers without the formatting machinery write what Display does.
    #[test]
    fn put_number_and_flag_list_are_display() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut numbers = vec![0, 1, 9, 10, 99, 100, u32::MAX as u64, u64::MAX];
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            numbers.push(x >> (x % 64));
        }
        for n in numbers {
            let mut out = b"x".to_vec();
            put_number(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        for text in [
            "",
            "\\Seen",
            "\\Deleted \\Draft $Work",
            "\\Answered \\Flagged \\Seen Junk",
        ] {
            let flags = Flags::parse_list(text).unwrap();
            for recent in [false, true] {
                let mut out = Vec::new();
                put_flag_list(&mut out, &flags, recent);
                assert_eq!(out, FlagList(&flags, recent).to_string().into_bytes());
            }
        }
    }

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
