//! Calendar arithmetic for DATE, NEWGROUPS and NEWNEWS (UTC, proleptic Gregorian),
//! and for the Date and Injection-Date headers POST adds.

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day, hour, minute, second, weekday 0 = Sunday) of a time.
pub(crate) fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64, usize) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = (days + 4).rem_euclid(7) as usize;
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday)
}

/// `yyyymmddhhmmss` (the DATE response, RFC 3977 7.1).
pub(crate) fn compact(t: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// An RFC 5322 date-time in UTC, e.g. `Sat, 05 Dec 2026 12:09:28 +0000`.
pub(crate) fn rfc5322(t: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd],
        MONTHS[(mo - 1) as usize]
    )
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
