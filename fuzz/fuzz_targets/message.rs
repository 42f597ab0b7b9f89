//! Fuzzes what tern makes of a message as delivered, which anyone on the Internet can
//! write: the store's summary and its stored form, IMAP's ENVELOPE and BODYSTRUCTURE,
//! body sections, BINARY decoding, the text the full-text index and SEARCH read, the
//! PREVIEW, the Message-ID and base subject. The same bytes are also read as a
//! damaged stored summary. Any panic is a bug. Properties:
//! - a summary reads back from its stored form equal;
//! - `BODY[]` is the message and `BODY[HEADER]` followed by `BODY[TEXT]` is too;
//! - a part's MIME header and body are never longer than the message;
//! - a PREVIEW holds at most `PREVIEW_CHARS` characters;
//! - the header's end found alone (what a FETCH of header fields reads up to) is
//!   where the full header parse ends it, and the header read that way gives the
//!   same HEADER.FIELDS.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_imap::mime::{part_structure, section, MessageSummary};
use tern_imap::types::{Section, SectionText};

const PARTS: [&[u32]; 7] = [&[], &[1], &[2], &[1, 1], &[1, 2], &[2, 1], &[3]];

fuzz_target!(|raw: &[u8]| {
    let summary = tern_message::summarize(raw);
    let stored = summary.to_bytes();
    assert_eq!(
        tern_message::Summary::from_bytes(&stored).as_ref(),
        Some(&summary)
    );
    let _ = tern_message::Summary::from_bytes(raw);
    let rendered = MessageSummary::from(summary);
    assert!(rendered.envelope.starts_with(b"(") && rendered.envelope.ends_with(b")"));
    assert!(rendered.body_structure.starts_with(b"(") && rendered.body_structure.ends_with(b")"));

    let whole = |text| Section {
        part: Vec::new(),
        text,
    };
    assert_eq!(section(raw, &whole(None)).as_deref(), Some(raw));
    let header = section(raw, &whole(Some(SectionText::Header))).unwrap_or_default();
    let text = section(raw, &whole(Some(SectionText::Text))).unwrap_or_default();
    assert_eq!([header, text].concat(), raw);
    if let Some(end) = tern_message::header::header_end(raw) {
        assert_eq!(tern_message::header::parse_header(raw, 0, raw.len()).1, end);
        let fields = whole(Some(SectionText::HeaderFields(vec![
            "subject".into(),
            "to".into(),
        ])));
        assert_eq!(section(&raw[..end], &fields), section(raw, &fields));
    }

    for part in PARTS {
        let at = |text| Section {
            part: part.to_vec(),
            text,
        };
        for text in [
            None,
            Some(SectionText::Mime),
            Some(SectionText::Header),
            Some(SectionText::Text),
            Some(SectionText::HeaderFields(vec![
                "Subject".into(),
                "to".into(),
            ])),
            Some(SectionText::HeaderFieldsNot(vec!["Received".into()])),
        ] {
            let exact = matches!(text, None | Some(SectionText::Mime));
            if let Some(bytes) = section(raw, &at(text)) {
                assert!(!exact || bytes.len() <= raw.len());
            }
        }
        let _ = part_structure(raw, part);
        let _ = tern_message::decoded_part(raw, part);
    }
    let _ = tern_message::with_leaves_decoded(raw);

    let _ = tern_message::body_text(raw);
    let _ = tern_message::header_text(raw);
    assert!(tern_message::preview(raw).chars().count() <= tern_message::PREVIEW_CHARS);
    let _ = tern_message::message_id(raw);
    // SEARCH's header keys: every value `header_values` gives is one `any_field_value`
    // offers, and nothing passes a test that passes nothing.
    assert!(!tern_message::any_field_value(raw, "from", true, |_| false));
    for from in tern_message::header_values(raw, "from") {
        assert!(tern_message::any_field_value(raw, "from", false, |v| v == from));
    }
    // What a server keeps for SEARCH's header keys is exactly what they test.
    let kept = tern_message::search_field_texts(raw);
    for (i, (field, addresses)) in tern_message::SEARCH_FIELDS.iter().enumerate() {
        let mut offered = Vec::new();
        tern_message::any_field_value(raw, field, *addresses, |v| {
            offered.push(v.to_owned());
            false
        });
        let mut texts = kept[i].clone();
        offered.sort();
        texts.sort();
        assert_eq!(offered, texts);
    }
    for subject in tern_message::header_values(raw, "subject") {
        let _ = tern_message::base_subject(&subject);
    }
});
