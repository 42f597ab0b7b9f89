//! Times for DATE, NEWGROUPS and NEWNEWS (UTC), on `tern_message::date`'s calendar
//! arithmetic (which also writes the Date and Injection-Date headers POST adds).

use tern_message::date::civil_from_days;
pub(crate) use tern_message::date::{days_from_civil, rfc5322};

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (year, month, day, hour, minute, second, weekday 0 = Sunday) of a time.
pub(crate) fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64, usize) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday)
}

/// `yyyymmddhhmmss` (the DATE response, RFC 3977 7.1).
pub(crate) fn compact(t: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 12, 5), 20_792);
        assert_eq!(compact(0), "19700101000000");
        assert_eq!(compact(1_796_472_111), "20261205120151");
        assert_eq!(rfc5322(1_796_472_111), "Sat, 05 Dec 2026 12:01:51 +0000");
        for t in [0, 951_782_400, 1_796_472_111, 4_102_444_800] {
            let (y, m, d, h, mi, s, _) = civil(t);
            assert_eq!(
                days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s,
                t
            );
        }
    }
}
