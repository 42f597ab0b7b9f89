//! What OVER and HDR report about an article, from its stored bytes: header fields
//! unfolded (RFC 3977 8.3: CR, LF and TAB become spaces), the octet count and the
//! number of body lines.

/// Header bytes examined at most: a longer header's further fields are not reported.
const MAX_HEADER: usize = 256 * 1024;

/// The fields OVER reports, in LIST OVERVIEW.FMT's order.
pub(crate) const OVERVIEW_FIELDS: [&str; 5] =
    ["Subject", "From", "Date", "Message-ID", "References"];

/// Where the body starts: after the first empty line (CRLF or LF endings); the
/// message's length when there is none.
pub(crate) fn body_start(raw: &[u8]) -> usize {
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        at = end;
    }
    raw.len()
}

/// The value of the first `name` field of the header, unfolded, CR/LF/TAB as spaces,
/// trimmed; `None` when absent.
pub(crate) fn field(raw: &[u8], name: &str) -> Option<String> {
    let head = &raw[..body_start(raw).min(MAX_HEADER)];
    let mut at = 0;
    while at < head.len() {
        let mut end = head[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| at + i + 1);
        // Continuation lines (starting with space or tab) belong to this field.
        while end < head.len() && matches!(head[end], b' ' | b'\t') {
            end = head[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(head.len(), |i| end + i + 1);
        }
        let line = &head[at..end];
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
                return Some(clean(&line[colon + 1..]));
            }
        }
        at = end;
    }
    None
}

/// A header value as one line: CR, LF and TAB become spaces (then a folded line's
/// break is one space), trimmed; invalid UTF-8 replaced. A NUL (mail delivered by LMTP
/// may hold one; POST refuses it) becomes a space too: no NNTP answer may carry it.
fn clean(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    let mut after_break = false;
    for c in text.chars() {
        match c {
            '\r' => {}
            '\n' => after_break = true,
            '\t' | '\0' | ' ' if after_break => {}
            '\t' | '\0' => out.push(' '),
            _ => {
                if after_break {
                    out.push(' ');
                    after_break = false;
                }
                out.push(c);
            }
        }
    }
    out.trim().to_owned()
}

/// Lines of the body (RFC 3977 8.4.2 `:lines`): a last line without its ending counts.
pub(crate) fn body_lines(raw: &[u8]) -> usize {
    let body = &raw[body_start(raw)..];
    let breaks = body.iter().filter(|&&b| b == b'\n').count();
    breaks + usize::from(body.last().is_some_and(|&b| b != b'\n'))
}

/// One OVER line for article `number`, ending with its Xref (LIST OVERVIEW.FMT's
/// `Xref:full`, which readers such as tin rely on).
pub(crate) fn over_line(number: u32, raw: &[u8], xref: &str) -> String {
    let mut line = number.to_string();
    for name in OVERVIEW_FIELDS {
        line.push('\t');
        line.push_str(&field(raw, name).unwrap_or_default());
    }
    line.push_str(&format!(
        "\t{}\t{}\tXref: {xref}",
        raw.len(),
        body_lines(raw)
    ));
    line
}

/// The HDR value of `name` for an article: a header field, the `:bytes` and
/// `:lines` metadata items, or Xref (computed: the stored article has none).
pub(crate) fn hdr_value(raw: &[u8], name: &str, xref: &str) -> String {
    if name.trim_end_matches(':').eq_ignore_ascii_case("Xref") {
        return xref.to_owned();
    }
    if name.eq_ignore_ascii_case(":bytes") {
        return raw.len().to_string();
    }
    if name.eq_ignore_ascii_case(":lines") {
        return body_lines(raw).to_string();
    }
    field(raw, name.trim_end_matches(':')).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_fields_hold_no_tab_nul_or_line_break() {
        assert_eq!(clean(b" a\tb\0c\r\n\td "), "a b c d");
    }

    const A: &[u8] = b"From: A <a@x>\r\nSubject: long\r\n\tfolded\tsubject\r\nmessage-id: <1@x>\r\nReferences: <0@x>\r\n <00@x>\r\n\r\none\r\ntwo\r\nthree";

    #[test]
    fn fields_are_unfolded_and_tabs_removed() {
        assert_eq!(field(A, "subject").as_deref(), Some("long folded subject"));
        assert_eq!(field(A, "Message-ID").as_deref(), Some("<1@x>"));
        assert_eq!(field(A, "References").as_deref(), Some("<0@x> <00@x>"));
        assert_eq!(field(A, "Date"), None);
        assert_eq!(body_lines(A), 3);
        let line = over_line(7, A, "h g:7");
        assert_eq!(
            line,
            format!(
                "7\tlong folded subject\tA <a@x>\t\t<1@x>\t<0@x> <00@x>\t{}\t3\tXref: h g:7",
                A.len()
            )
        );
        assert_eq!(hdr_value(A, ":lines", ""), "3");
        assert_eq!(hdr_value(A, "subject:", ""), "long folded subject");
        assert_eq!(hdr_value(A, "XREF", "h g:7"), "h g:7");
    }

    #[test]
    fn body_fields_are_not_headers() {
        let m = b"Subject: s\n\nFrom: not a header\n";
        assert_eq!(field(m, "From"), None);
        assert_eq!(body_lines(m), 1);
        assert_eq!(body_start(b"no blank line"), 13);
    }
}
