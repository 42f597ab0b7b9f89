//! Dates (SEARCH `d-Mon-yyyy`) and date-times (APPEND `"dd-Mon-yyyy hh:mm:ss +zzzz"`),
//! checked against the calendar and converted to a UTC timestamp.

use super::lexer::{fail, P, R};
use crate::types::{Date, DateTime};

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&[u8; 3]; 12] = [
    b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC",
];

impl<'a> P<'a> {
    fn month(&mut self) -> R<u8> {
        let m = self.take_while(|c| c.is_ascii_alphabetic());
        for (i, name) in MONTHS.iter().enumerate() {
            if m.eq_ignore_ascii_case(&name[..]) {
                return Ok(i as u8 + 1);
            }
        }
        fail("bad month")
    }

    fn fixed_digits(&mut self, n: usize) -> R<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.pos += 1;
                }
                _ => return fail("expected a digit"),
            }
        }
        Ok(v)
    }

    /// `date-day "-" date-month "-" date-year` after the day.
    fn month_year(&mut self, day: u32) -> R<Date> {
        self.expect(b'-', "bad date")?;
        let month = self.month()?;
        self.expect(b'-', "bad date")?;
        let year = self.fixed_digits(4)? as i32;
        let day = u8::try_from(day).unwrap_or(0);
        if day == 0 || day > days_in_month(year, month) {
            return fail("no such day");
        }
        Ok(Date { year, month, day })
    }

    /// SEARCH date: `d-Mon-yyyy`, optionally quoted.
    pub(super) fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let d = self.digits()?;
        if d.len() > 2 {
            return fail("bad date");
        }
        let day = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        let date = self.month_year(day)?;
        if quoted {
            self.expect(b'"', "bad date")?;
        }
        Ok(date)
    }

    /// APPEND date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space-padded).
    pub(super) fn date_time(&mut self) -> R<DateTime> {
        self.expect(b'"', "expected date-time")?;
        self.eat(b' ');
        let d = self.digits()?;
        if d.len() > 2 {
            return fail("bad date-time");
        }
        let day = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        let date = self.month_year(day)?;
        self.sp()?;
        let hour = self.fixed_digits(2)?;
        self.expect(b':', "bad time")?;
        let minute = self.fixed_digits(2)?;
        self.expect(b':', "bad time")?;
        let second = self.fixed_digits(2)?;
        if hour > 23 || minute > 59 || second > 60 {
            return fail("bad time");
        }
        self.sp()?;
        let sign: i32 = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return fail("bad zone");
        };
        let zh = self.fixed_digits(2)?;
        let zm = self.fixed_digits(2)?;
        if zh > 23 || zm > 59 {
            return fail("bad zone");
        }
        self.expect(b'"', "bad date-time")?;
        let offset_minutes = sign * (zh as i32 * 60 + zm as i32);
        let days = days_from_civil(
            i64::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        );
        let local =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Ok(DateTime {
            timestamp: local - i64::from(offset_minutes) * 60,
            offset_minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::test_util::*;
    use crate::types::CommandBody;

    #[test]
    fn append_date_time() {
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX () \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi")
        else {
            panic!()
        };
        let crate::types::AppendMessage {
            date,
            flags,
            content,
        } = messages[0].clone();
        assert_eq!(flags, Vec::<String>::new());
        assert_eq!(
            content,
            crate::types::AppendContent::Literal {
                bytes: b"hi".to_vec(),
                binary: false
            }
        );
        // 1996-07-17T09:44:25Z
        assert_eq!(
            date,
            Some(DateTime {
                timestamp: 837_596_665,
                offset_minutes: -420
            })
        );
        // Space-padded day, lower-case month, positive zone.
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX \" 1-jan-2000 00:30:00 +0100\" {1}\r\nx")
        else {
            panic!()
        };
        let date = messages[0].date;
        assert_eq!(
            date,
            Some(DateTime {
                timestamp: 946_683_000,
                offset_minutes: 60
            })
        );
        // Leap day; what imaplib.Time2Internaldate writes.
        let CommandBody::Append { messages, .. } =
            ok("a APPEND INBOX (\\Seen \\Flagged $Label1) \"29-Feb-2024 23:59:59 +0000\" {1}\r\nx")
        else {
            panic!()
        };
        let date = messages[0].date;
        assert_eq!(date.map(|d| d.timestamp), Some(1_709_251_199));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for bad_date in [
            "30-Feb-2024 00:00:00 +0000",
            "29-Feb-2023 00:00:00 +0000",
            "00-Jan-2000 00:00:00 +0000",
            "01-Foo-2000 00:00:00 +0000",
            "01-Jan-2000 24:00:00 +0000",
            "01-Jan-2000 00:60:00 +0000",
            "01-Jan-2000 00:00:00 0000",
            "01-Jan-2000 00:00:00 +0060",
            "01-Jan-00 00:00:00 +0000",
            "01-Jan-2000 0:00:00 +0000",
            "01-Jan-2000 00:00:00",
            "001-Jan-2000 00:00:00 +0000",
        ] {
            bad(&format!("a APPEND INBOX \"{bad_date}\" {{1}}\r\nx"));
        }
    }
}
