//! [`Summary`]: what every protocol needs to know about a message without reading it
//! again, computed once from its raw bytes. It is protocol-neutral: the envelope and
//! the MIME structure are kept as data (IMAP renders them as ENVELOPE and
//! BODYSTRUCTURE; NNTP's overview takes its fields from the same values).

use crate::address::{display_of, first_mailbox, parse_addresses, parse_ids, Address};
use crate::header::{decode_header_value, first_field, trim, unfold, Field};
use crate::params::{is_token, parse_structured, split_params};
use crate::subject::base_subject;
use crate::transfer::encoding_of;
use crate::tree::{count_lines, parse_tree, Kind, Part};

/// The fields of a message's header that describe it (RFC 3501's ENVELOPE): text
/// values raw (still RFC 2047 encoded) and unfolded; address lists parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Date.
    pub date: Option<Vec<u8>>,
    /// Subject.
    pub subject: Option<Vec<u8>>,
    /// From.
    pub from: Vec<Address>,
    /// Sender; empty when absent (IMAP then shows From).
    pub sender: Vec<Address>,
    /// Reply-To; empty when absent (IMAP then shows From).
    pub reply_to: Vec<Address>,
    /// To.
    pub to: Vec<Address>,
    /// Cc.
    pub cc: Vec<Address>,
    /// Bcc.
    pub bcc: Vec<Address>,
    /// In-Reply-To.
    pub in_reply_to: Option<Vec<u8>>,
    /// Message-ID.
    pub message_id: Option<Vec<u8>>,
}

impl Envelope {
    /// The envelope of the header `fields` of `raw`.
    pub(crate) fn of(raw: &[u8], fields: &[Field]) -> Envelope {
        let text = |name: &str| first_field(raw, fields, name).map(unfold);
        let addrs = |name: &str| {
            first_field(raw, fields, name)
                .map(parse_addresses)
                .unwrap_or_default()
        };
        Envelope {
            date: text("date"),
            subject: text("subject"),
            from: addrs("from"),
            sender: addrs("sender"),
            reply_to: addrs("reply-to"),
            to: addrs("to"),
            cc: addrs("cc"),
            bcc: addrs("bcc"),
            in_reply_to: text("in-reply-to"),
            message_id: text("message-id"),
        }
    }
}

/// A Content-Disposition: its type as written and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ... as written.
    pub kind: Vec<u8>,
    /// Parameters: name as written, value unquoted.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a [`BodyPart`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A single body.
    Single,
    /// The parts of a multipart, in order (empty when no delimiter was found).
    Multipart(Vec<BodyPart>),
    /// An encapsulated message (message/rfc822 or message/global).
    Message {
        /// The encapsulated message's envelope.
        envelope: Box<Envelope>,
        /// The encapsulated message's structure.
        body: Box<BodyPart>,
    },
}

/// One MIME entity's description (RFC 2045): what IMAP's BODYSTRUCTURE reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// The media type, lower-case; defaults applied (text/plain, or message/rfc822
    /// inside multipart/digest); application/octet-stream past [`crate::MAX_DEPTH`].
    pub media_type: Vec<u8>,
    /// The subtype, lower-case.
    pub subtype: Vec<u8>,
    /// Content-Type parameters: name as written, value unquoted.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Content-ID, unfolded.
    pub id: Option<Vec<u8>>,
    /// Content-Description, unfolded.
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding, lower-case; `None` for the default (7bit).
    pub encoding: Option<Vec<u8>>,
    /// Octets of the body as stored (still transfer-encoded).
    pub size: u64,
    /// Lines of the body as stored.
    pub lines: u64,
    /// Content-Disposition, when its type is a token.
    pub disposition: Option<Disposition>,
    /// Content-Language tags.
    pub language: Vec<Vec<u8>>,
    /// Content-Location, unfolded; `None` when absent or empty.
    pub location: Option<Vec<u8>>,
    /// What the body holds.
    pub content: Content,
}

impl BodyPart {
    fn of(raw: &[u8], part: &Part) -> BodyPart {
        let fields = &part.fields;
        let body = &raw[part.body_start..part.end];
        let content = match &part.kind {
            Kind::Leaf => Content::Single,
            Kind::Multipart(children) => {
                Content::Multipart(children.iter().map(|c| BodyPart::of(raw, c)).collect())
            }
            Kind::Message(inner) => Content::Message {
                envelope: Box::new(Envelope::of(raw, &inner.fields)),
                body: Box::new(BodyPart::of(raw, inner)),
            },
        };
        let disposition = first_field(raw, fields, "content-disposition")
            .map(parse_structured)
            .filter(|(kind, _)| is_token(kind))
            .map(|(kind, params)| Disposition { kind, params });
        let language = first_field(raw, fields, "content-language")
            .map(|v| {
                let no_comments: Vec<u8> = split_params(v).join(&b';');
                no_comments
                    .split(|&c| c == b',')
                    .map(|l| trim(l).to_vec())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        BodyPart {
            media_type: part.ct.ty.clone(),
            subtype: part.ct.sub.clone(),
            params: part.ct.params.clone(),
            id: first_field(raw, fields, "content-id").map(unfold),
            description: first_field(raw, fields, "content-description").map(unfold),
            encoding: encoding_of(raw, fields),
            size: body.len() as u64,
            lines: count_lines(body) as u64,
            disposition,
            language,
            location: first_field(raw, fields, "content-location")
                .map(unfold)
                .filter(|l| !l.is_empty()),
            content,
        }
    }
}

/// What SORT and THREAD (RFC 5256, RFC 5957) compare, the decoded Subject SEARCH
/// and THREAD read, and the message ids THREAD links (the first of them is also what
/// the store's Message-ID index keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// The Date header as seconds since the Unix epoch; `None` when missing or
    /// unparsable (SORT then uses the INTERNALDATE).
    pub date: Option<i64>,
    /// The Date header's calendar day as written, in its own time zone, as days since
    /// 1970-01-01: what SEARCH SENTON and its kin compare (RFC 3501 6.4.4 disregards
    /// the time and the zone); `None` when missing or unparsable.
    pub sent_day: Option<i64>,
    /// The Subject, RFC 2047 decoded; `None` when absent.
    pub subject: Option<String>,
    /// RFC 5256 base subject (compare with i;ascii-casemap); empty without Subject.
    pub base_subject: String,
    /// addr-mailbox (local part) of the first From address (SORT FROM).
    pub from_mailbox: Option<String>,
    /// addr-mailbox of the first To address.
    pub to_mailbox: Option<String>,
    /// addr-mailbox of the first Cc address.
    pub cc_mailbox: Option<String>,
    /// RFC 5957 display value of the first From address (decoded display name, else
    /// `mailbox@host`).
    pub display_from: Option<String>,
    /// RFC 5957 display value of the first To address.
    pub display_to: Option<String>,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// First message id of In-Reply-To, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Message ids of References, in order, without angle brackets.
    pub references: Vec<String>,
}

/// What FETCH, SEARCH, SORT, THREAD, OVER and HDR need of one message, computed once
/// from its raw bytes by [`summarize`] and kept by the store (see
/// [`crate::MessageIndexer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Size of the raw message in octets.
    pub size: u64,
    /// The top-level header's envelope fields.
    pub envelope: Envelope,
    /// The MIME structure; its `lines` are the message body's lines (NNTP `:lines`).
    pub structure: BodyPart,
    /// The From field's value as written, unfolded (NNTP's overview shows it).
    pub from_field: Option<Vec<u8>>,
    /// The References field's value as written, unfolded.
    pub references_field: Option<Vec<u8>>,
    /// What sorting and threading compare.
    pub keys: SortKeys,
}

/// A message's Message-ID without angle brackets, from its top-level header alone:
/// what [`summarize`] reports as [`Summary::message_id`], without the MIME tree.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let (fields, _) = crate::header::parse_header(raw, 0, raw.len());
    first_field(raw, &fields, "message-id").and_then(|v| parse_ids(v).into_iter().next())
}

/// Computes a message's [`Summary`] from its raw bytes. Never panics.
pub fn summarize(raw: &[u8]) -> Summary {
    let root = parse_tree(raw);
    let fields = &root.fields;
    let envelope = Envelope::of(raw, fields);
    let get = |name: &str| first_field(raw, fields, name);
    let mailbox_of = |items: &[Address]| {
        first_mailbox(items).map(|(_, m, _)| String::from_utf8_lossy(m).into_owned())
    };
    let parsed = get("date").and_then(|v| {
        let v = String::from_utf8_lossy(&unfold(v)).into_owned();
        mail_parser::DateTime::parse_rfc822(&v).filter(|d| d.is_valid())
    });
    let date = parsed.as_ref().map(|d| d.to_timestamp());
    let sent_day = parsed.as_ref().map(|d| {
        crate::date::days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day))
    });
    let subject = get("subject").map(decode_header_value);
    let keys = SortKeys {
        date,
        sent_day,
        base_subject: subject.as_deref().map(base_subject).unwrap_or_default(),
        subject,
        from_mailbox: mailbox_of(&envelope.from),
        to_mailbox: mailbox_of(&envelope.to),
        cc_mailbox: mailbox_of(&envelope.cc),
        display_from: display_of(&envelope.from),
        display_to: display_of(&envelope.to),
        message_id: get("message-id").and_then(|v| parse_ids(v).into_iter().next()),
        in_reply_to: get("in-reply-to").and_then(|v| parse_ids(v).into_iter().next()),
        references: get("references").map(parse_ids).unwrap_or_default(),
    };
    Summary {
        size: raw.len() as u64,
        structure: BodyPart::of(raw, &root),
        from_field: get("from").map(unfold),
        references_field: get("references").map(unfold),
        keys,
        envelope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    #[test]
    fn simple_message() {
        let sum = summarize(SIMPLE);
        assert_eq!(sum.size, SIMPLE.len() as u64);
        assert_eq!(sum.keys.date, Some(760686745));
        assert_eq!(sum.keys.subject.as_deref(), Some("Hello world"));
        assert_eq!(sum.keys.base_subject, "Hello world");
        assert_eq!(sum.keys.from_mailbox.as_deref(), Some("john"));
        assert_eq!(sum.keys.to_mailbox.as_deref(), Some("jane"));
        assert_eq!(sum.keys.cc_mailbox, None);
        assert_eq!(sum.keys.display_from.as_deref(), Some("John Doe"));
        assert_eq!(
            sum.keys.message_id.as_deref(),
            Some("B27397-0100000@example.com")
        );
        assert_eq!(
            sum.from_field.as_deref(),
            Some(&b"John Doe <john@example.com>"[..])
        );
        assert_eq!(sum.structure.lines, 2);
        assert_eq!(message_id(SIMPLE), sum.keys.message_id);
        assert_eq!(
            message_id(b"Subject: none\r\n\r\nMessage-ID: <body@x>\r\n"),
            None
        );
        assert_eq!(sum.structure.size, 27);
        assert_eq!(sum.structure.media_type, b"text");
        assert!(sum.envelope.sender.is_empty());
        assert_eq!(sum.envelope.to.len(), 2);
    }

    #[test]
    fn folded_references_and_nested_structure() {
        let sum = summarize(MIXED);
        assert_eq!(
            sum.references_field.as_deref(),
            Some(&b"<m1@example.de> <m2@example.de>"[..])
        );
        assert_eq!(sum.keys.references, ["m1@example.de", "m2@example.de"]);
        let Content::Multipart(parts) = &sum.structure.content else {
            panic!("not multipart: {:?}", sum.structure);
        };
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].encoding.as_deref(), Some(&b"base64"[..]));
        assert_eq!(
            parts[1].disposition.as_ref().map(|d| d.kind.clone()),
            Some(b"attachment".to_vec())
        );
        match &parts[2].content {
            Content::Message { envelope, body } => {
                assert_eq!(envelope.subject.as_deref(), Some(&b"Inner"[..]));
                // "Inner body" right before the boundary: no line feed of its own.
                assert_eq!(body.lines, 0);
            }
            other => panic!("not a message: {other:?}"),
        }
    }
}
