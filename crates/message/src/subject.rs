//! The RFC 5256 base subject that SORT SUBJECT and THREAD compare: reply and forward
//! markers, `[blob]`s and `(fwd)` trailers stripped, whitespace collapsed.

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

pub(crate) fn skip_wsp(s: &[u8], mut p: usize) -> usize {
    while p < s.len() && (s[p] == b' ' || s[p] == b'\t') {
        p += 1;
    }
    p
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at `p`: its end.
fn match_blob(s: &[u8], p: usize) -> Option<usize> {
    if s.get(p) != Some(&b'[') {
        return None;
    }
    let close = s[p + 1..].iter().position(|&c| c == b']' || c == b'[')?;
    if s[p + 1 + close] != b']' {
        return None;
    }
    Some(skip_wsp(s, p + close + 2))
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"` at `p`: its end.
fn match_refwd(s: &[u8], p: usize) -> Option<usize> {
    let rest = &s[p..];
    let mut q = if starts_with_ci(rest, b"fwd") {
        p + 3
    } else if starts_with_ci(rest, b"fw") || starts_with_ci(rest, b"re") {
        p + 2
    } else {
        return None;
    };
    q = skip_wsp(s, q);
    if let Some(e) = match_blob(s, q) {
        q = e;
    }
    if s.get(q) == Some(&b':') {
        Some(q + 1)
    } else {
        None
    }
}

/// RFC 5256 section 2.1 base subject of an (already RFC 2047 decoded) subject.
pub fn base_subject(subject: &str) -> String {
    // (1) Whitespace: tabs and line breaks to spaces, runs to one space.
    let mut s: Vec<u8> = Vec::with_capacity(subject.len());
    for &c in subject.as_bytes() {
        let c = if c == b'\t' || c == b'\r' || c == b'\n' {
            b' '
        } else {
            c
        };
        if !(c == b' ' && s.last() == Some(&b' ')) {
            s.push(c);
        }
    }
    loop {
        // (2) Trailers: "(fwd)" and WSP.
        loop {
            if s.last() == Some(&b' ') {
                s.pop();
            } else if s.len() >= 5 && s[s.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s.truncate(s.len() - 5);
            } else {
                break;
            }
        }
        // (3)-(5) Leaders and blobs.
        loop {
            let before = s.len();
            loop {
                let ws = skip_wsp(&s, 0);
                if ws > 0 {
                    s.drain(..ws);
                    continue;
                }
                let mut p = 0;
                while let Some(e) = match_blob(&s, p) {
                    p = e;
                }
                match match_refwd(&s, p) {
                    Some(e) => {
                        s.drain(..e);
                    }
                    None => break,
                }
            }
            if let Some(e) = match_blob(&s, 0) {
                if s[e..].iter().any(|&c| c != b' ' && c != b'\t') {
                    s.drain(..e);
                }
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd:" ... "]"
        if starts_with_ci(&s, b"[fwd:") && s.last() == Some(&b']') {
            s.truncate(s.len() - 1);
            s.drain(..5);
            continue;
        }
        break;
    }
    // Only ASCII bytes were removed, at ASCII positions: still UTF-8.
    String::from_utf8(s).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        let cases = [
            ("Re: [PATCH] fix", "fix"),
            ("[fwd: Re: hello]", "hello"),
            ("Fwd: Re: re: hi (fwd) (FWD)", "hi"),
            ("[no-base]", "[no-base]"),
            ("Re:", ""),
            ("  RE [x]:  spaced\t\tout  ", "spaced out"),
            ("[a][b] Re: [c] Fw: x", "x"),
            ("Reply: not a prefix", "Reply: not a prefix"),
            ("R\u{e9}sum\u{e9} (fwd)", "R\u{e9}sum\u{e9}"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(base_subject(input), want, "{input:?}");
        }
    }
}
