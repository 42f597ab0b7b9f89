//! Uid sets: IMAP sequence sets of UIDs without `*` (`1:4,9,12:13`).

use std::fmt::Write;

/// Encodes UIDs as a uid set, ascending ranges joined by commas: `[1,2,3,4,9]` gives
/// `1:4,9`. Expects `uids` sorted ascending; duplicates are dropped, and unsorted input
/// is sorted first (a copy), so the result is always ascending. An empty slice gives
/// the empty string, which is not a valid uid set: callers send none. UIDs are never 0;
/// a 0 given here is encoded but [`parse_uid_set`] rejects it.
pub fn encode_uid_set(uids: &[u32]) -> String {
    let sorted;
    let uids = if uids.windows(2).all(|w| w[0] <= w[1]) {
        uids
    } else {
        let mut copy = uids.to_vec();
        copy.sort_unstable();
        sorted = copy;
        &sorted[..]
    };
    let mut out = String::new();
    let mut iter = uids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(&next) = iter.peek() {
            if next == end || Some(next) == end.checked_add(1) {
                end = next;
                iter.next();
            } else {
                break;
            }
        }
        if !out.is_empty() {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = if start == end {
            write!(out, "{start}")
        } else {
            write!(out, "{start}:{end}")
        };
    }
    out
}

/// Parses a uid set into ascending, distinct UIDs. A descending range (`4:1`) is read
/// as ascending, and elements in any order or overlapping are merged.
///
/// `None` on a syntax error (empty set or element, anything but digits, `:` and `,`,
/// `*`), a UID of 0 or over 2^32-1, or when the ranges, counted before merging, hold
/// more than `max_uids` UIDs: so the work and memory are bounded by `max_uids` whatever
/// the input.
pub fn parse_uid_set(s: &str, max_uids: usize) -> Option<Vec<u32>> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    let mut count: usize = 0;
    for element in s.split(',') {
        let (a, b) = match element.split_once(':') {
            Some((a, b)) => (uid(a)?, uid(b)?),
            None => {
                let u = uid(element)?;
                (u, u)
            }
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let len = usize::try_from(hi - lo).ok()?.checked_add(1)?;
        count = count.checked_add(len)?;
        if count > max_uids {
            return None;
        }
        ranges.push((lo, hi));
    }
    let mut uids = Vec::with_capacity(count);
    for (lo, hi) in ranges {
        uids.extend(lo..=hi);
    }
    uids.sort_unstable();
    uids.dedup();
    Some(uids)
}

/// One UID: 1 to 10 ASCII digits, value 1..=2^32-1.
fn uid(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&u| u != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn encodes_ranges() {
        assert_eq!(encode_uid_set(&[]), "");
        assert_eq!(encode_uid_set(&[5]), "5");
        assert_eq!(encode_uid_set(&[1, 2, 3, 4, 9, 12, 13]), "1:4,9,12:13");
        assert_eq!(encode_uid_set(&[1, 1, 2, 2, 7]), "1:2,7");
        assert_eq!(encode_uid_set(&[9, 1, 3, 2]), "1:3,9");
        assert_eq!(
            encode_uid_set(&[u32::MAX - 1, u32::MAX]),
            "4294967294:4294967295"
        );
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            parse_uid_set("1:4,9,12:13", 100),
            Some(vec![1, 2, 3, 4, 9, 12, 13])
        );
        assert_eq!(parse_uid_set("4:1", 100), Some(vec![1, 2, 3, 4]));
        assert_eq!(parse_uid_set("9,1:3,2", 100), Some(vec![1, 2, 3, 9]));
        assert_eq!(parse_uid_set("4294967295", 1), Some(vec![u32::MAX]));
        assert_eq!(parse_uid_set("1:3", 3), Some(vec![1, 2, 3]));
    }

    #[test]
    fn rejects_bad_sets() {
        for bad in [
            "",
            ",",
            "1,",
            ",1",
            "1,,2",
            "0",
            "0:3",
            "1:0",
            "*",
            "1:*",
            "1:2:3",
            " 1",
            "1 ",
            "a",
            "-1",
            "+1",
            "4294967296",
            "99999999999",
            "1;2",
            "１",
        ] {
            assert_eq!(parse_uid_set(bad, 100), None, "{bad:?}");
        }
        assert_eq!(parse_uid_set("1:4", 3), None);
        assert_eq!(parse_uid_set("1:4294967295", 1_000_000), None);
        assert_eq!(parse_uid_set("1:2,1:2", 3), None);
    }

    #[test]
    fn random_round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let n = rng.random_range(0..50);
            let mut uids: Vec<u32> = (0..n).map(|_| rng.random_range(1..200)).collect();
            uids.sort_unstable();
            let s = encode_uid_set(&uids);
            uids.dedup();
            if uids.is_empty() {
                assert_eq!(s, "");
            } else {
                assert_eq!(parse_uid_set(&s, uids.len()), Some(uids), "{s}");
            }
        }
    }
}
