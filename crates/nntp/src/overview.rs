//! What OVER and HDR report about an article: header fields unfolded (RFC 3977 8.3:
//! CR, LF and TAB become spaces), the octet count and the number of body lines. They
//! come from the article's stored [`Summary`] when it has one (no file is read), else
//! from its bytes; both through `tern-message`, so the two agree.

use tern_message::header::{first_field, parse_header};
use tern_message::tree::count_lines;
use tern_message::Summary;

/// The fields OVER reports, in LIST OVERVIEW.FMT's order.
pub(crate) const OVERVIEW_FIELDS: [&str; 5] =
    ["Subject", "From", "Date", "Message-ID", "References"];

/// Where an overview line's values come from.
pub(crate) enum Source<'a> {
    /// The summary the store keeps for the article.
    Summary(&'a Summary),
    /// The article's bytes.
    Raw(&'a [u8]),
}

impl Source<'_> {
    /// The cleaned value of header field `name`; `None` when absent, or when a summary
    /// does not hold that field (see [`answers_from_summary`]).
    fn field(&self, name: &str) -> Option<String> {
        match self {
            Source::Raw(raw) => field(raw, name),
            Source::Summary(s) => {
                let e = &s.envelope;
                let value = match name.to_ascii_lowercase().as_str() {
                    "subject" => e.subject.as_deref(),
                    "from" => s.from_field.as_deref(),
                    "date" => e.date.as_deref(),
                    "message-id" => e.message_id.as_deref(),
                    "references" => s.references_field.as_deref(),
                    _ => None,
                };
                value.map(clean)
            }
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Source::Raw(raw) => raw.len() as u64,
            Source::Summary(s) => s.size,
        }
    }

    fn lines(&self) -> u64 {
        match self {
            Source::Raw(raw) => body_lines(raw) as u64,
            Source::Summary(s) => s.structure.lines,
        }
    }
}

/// Whether a summary holds what OVER (`None`) or HDR of `field` reports.
pub(crate) fn answers_from_summary(field: Option<&str>) -> bool {
    let Some(name) = field else {
        return true;
    };
    let name = name.trim_end_matches(':');
    OVERVIEW_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
        || [":bytes", ":lines", "xref", ""]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
}

/// Where the body starts: after the first empty line (CRLF or LF endings); the
/// message's length when there is none.
pub(crate) fn body_start(raw: &[u8]) -> usize {
    parse_header(raw, 0, raw.len()).1
}

/// The value of the first `name` field of the header, unfolded, CR/LF/TAB as spaces,
/// trimmed; `None` when absent.
pub(crate) fn field(raw: &[u8], name: &str) -> Option<String> {
    let (fields, _) = parse_header(raw, 0, raw.len());
    first_field(raw, &fields, name).map(clean)
}

/// A header value as one line (RFC 3977 8.3.2): unfolded (CR and LF removed), TAB as
/// a space, trimmed; invalid UTF-8 replaced. A NUL (mail delivered by LMTP may hold
/// one; POST refuses it) becomes a space too: no NNTP answer may carry it.
fn clean(value: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(value)
        .chars()
        .filter(|&c| c != '\r' && c != '\n')
        .map(|c| if c == '\t' || c == '\0' { ' ' } else { c })
        .collect();
    text.trim().to_owned()
}

/// Lines of the body (RFC 3977 8.4.2 `:lines`): its line feeds, as IMAP's BODYSTRUCTURE
/// counts them (a last line without its ending is not counted; a posted article always
/// has one).
pub(crate) fn body_lines(raw: &[u8]) -> usize {
    count_lines(&raw[body_start(raw)..])
}

/// One OVER line for article `number`, ending with its Xref (LIST OVERVIEW.FMT's
/// `Xref:full`, which readers such as tin rely on).
pub(crate) fn over_line(number: u32, article: &Source<'_>, xref: &str) -> String {
    let mut line = number.to_string();
    for name in OVERVIEW_FIELDS {
        line.push('\t');
        line.push_str(&article.field(name).unwrap_or_default());
    }
    line.push_str(&format!(
        "\t{}\t{}\tXref: {xref}",
        article.bytes(),
        article.lines()
    ));
    line
}

/// The HDR value of `name` for an article: a header field, the `:bytes` and
/// `:lines` metadata items, or Xref (computed: the stored article has none).
pub(crate) fn hdr_value(article: &Source<'_>, name: &str, xref: &str) -> String {
    if name.trim_end_matches(':').eq_ignore_ascii_case("Xref") {
        return xref.to_owned();
    }
    if name.eq_ignore_ascii_case(":bytes") {
        return article.bytes().to_string();
    }
    if name.eq_ignore_ascii_case(":lines") {
        return article.lines().to_string();
    }
    article
        .field(name.trim_end_matches(':'))
        .unwrap_or_default()
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
        assert_eq!(body_lines(A), 2);
        let line = over_line(7, &Source::Raw(A), "h g:7");
        assert_eq!(
            line,
            format!(
                "7\tlong folded subject\tA <a@x>\t\t<1@x>\t<0@x> <00@x>\t{}\t2\tXref: h g:7",
                A.len()
            )
        );
        assert_eq!(hdr_value(&Source::Raw(A), ":lines", ""), "2");
        assert_eq!(
            hdr_value(&Source::Raw(A), "subject:", ""),
            "long folded subject"
        );
        assert_eq!(hdr_value(&Source::Raw(A), "XREF", "h g:7"), "h g:7");
    }

    /// Every article of the fixtures and variants of it: the line from the stored
    /// summary is the line from the bytes.
    #[test]
    fn summaries_and_bytes_give_the_same_overview() {
        use tern_message::fixtures::{ALTERNATIVE, GROUPS, MIXED, SIMPLE};
        let folded: &[u8] = b"Subject: two\r\n  spaces\r\nFrom: x@y\r\n\r\nbody";
        for raw in [
            SIMPLE,
            ALTERNATIVE,
            MIXED,
            GROUPS,
            A,
            folded,
            &b""[..],
            &b"no blank line"[..],
        ] {
            let summary = tern_message::summarize(raw);
            let from_summary = Source::Summary(&summary);
            assert_eq!(
                over_line(1, &from_summary, "x"),
                over_line(1, &Source::Raw(raw), "x"),
                "{}",
                String::from_utf8_lossy(raw)
            );
            for f in [":lines", ":bytes", "References", "from:"] {
                assert!(answers_from_summary(Some(f)));
                assert_eq!(
                    hdr_value(&from_summary, f, ""),
                    hdr_value(&Source::Raw(raw), f, "")
                );
            }
        }
        assert!(!answers_from_summary(Some("Newsgroups")));
        assert!(answers_from_summary(None));
    }

    #[test]
    fn body_fields_are_not_headers() {
        let m = b"Subject: s\n\nFrom: not a header\n";
        assert_eq!(field(m, "From"), None);
        assert_eq!(body_lines(m), 1);
        assert_eq!(body_start(b"no blank line"), 13);
    }
}
