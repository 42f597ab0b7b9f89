//! FETCH: rendering the data items of one message.

use std::sync::Arc;

use tern_store::{Mailbox, Record, Store, StoreError};

use crate::mime::{self, MessageSummary, SummaryCache};
use crate::response::{flag_list, internal_date};
use crate::types::{FetchAttr, Section, SectionText};

/// What rendering one message needs besides the record.
pub(crate) struct FetchContext<'a> {
    pub(crate) store: &'a Store,
    pub(crate) actor: &'a tern_store::Actor,
    pub(crate) mailbox: &'a Mailbox,
    pub(crate) cache: &'a SummaryCache,
}

/// Why a message could not be rendered.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Reading the blob failed.
    Store(StoreError),
    /// BINARY of a part with an unknown Content-Transfer-Encoding.
    UnknownCte,
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        FetchError::Store(e)
    }
}

/// True when any item sets \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY).
pub(crate) fn sets_seen(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    })
}

/// True when rendering needs the message bytes or its MIME summary.
pub(crate) fn needs_message(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            FetchAttr::Flags
                | FetchAttr::InternalDate
                | FetchAttr::Rfc822Size
                | FetchAttr::Uid
                | FetchAttr::Modseq
        )
    })
}

/// Appends `* seq FETCH (...)\r\n` for one message.
pub(crate) fn render(
    ctx: &FetchContext<'_>,
    seq: u32,
    record: &Record,
    recent: bool,
    items: &[FetchAttr],
    out: &mut Vec<u8>,
) -> Result<(), FetchError> {
    let mut raw: Option<Vec<u8>> = None;
    let mut summary: Option<Arc<MessageSummary>> = None;
    // Written straight into `out`: on an error the caller drops all of `out`.
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    let body = &mut *out;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b' ');
        }
        match item {
            FetchAttr::Uid => body.extend_from_slice(format!("UID {}", record.uid).as_bytes()),
            FetchAttr::Flags => body.extend_from_slice(
                format!("FLAGS {}", flag_list(&record.flags, recent)).as_bytes(),
            ),
            FetchAttr::InternalDate => body.extend_from_slice(
                format!("INTERNALDATE {}", internal_date(record.internaldate)).as_bytes(),
            ),
            FetchAttr::Rfc822Size => {
                body.extend_from_slice(format!("RFC822.SIZE {}", record.size).as_bytes())
            }
            FetchAttr::Modseq => {
                body.extend_from_slice(format!("MODSEQ ({})", record.modseq).as_bytes())
            }
            FetchAttr::Envelope => {
                let s = summary_of(ctx, record, &mut raw, &mut summary)?;
                body.extend_from_slice(b"ENVELOPE ");
                body.extend_from_slice(&s.envelope);
            }
            FetchAttr::BodyStructure => {
                let s = summary_of(ctx, record, &mut raw, &mut summary)?;
                body.extend_from_slice(b"BODYSTRUCTURE ");
                body.extend_from_slice(&s.body_structure);
            }
            FetchAttr::Body => {
                let s = summary_of(ctx, record, &mut raw, &mut summary)?;
                body.extend_from_slice(b"BODY ");
                body.extend_from_slice(&s.body);
            }
            FetchAttr::Rfc822 => {
                let m = message_of(ctx, record, &mut raw)?;
                body.extend_from_slice(b"RFC822 ");
                push_literal(body, m);
            }
            FetchAttr::Rfc822Header => {
                let m = message_of(ctx, record, &mut raw)?;
                let h = mime::section(
                    m,
                    &Section {
                        part: vec![],
                        text: Some(SectionText::Header),
                    },
                )
                .unwrap_or_default();
                body.extend_from_slice(b"RFC822.HEADER ");
                push_literal(body, &h);
            }
            FetchAttr::Rfc822Text => {
                let m = message_of(ctx, record, &mut raw)?;
                let t = mime::section(
                    m,
                    &Section {
                        part: vec![],
                        text: Some(SectionText::Text),
                    },
                )
                .unwrap_or_default();
                body.extend_from_slice(b"RFC822.TEXT ");
                push_literal(body, &t);
            }
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                let m = message_of(ctx, record, &mut raw)?;
                body.extend_from_slice(format!("BODY[{}]", section_name(section)).as_bytes());
                if section.part.is_empty() && section.text.is_none() {
                    // The whole message: straight from the blob, no intermediate copy.
                    push_partial(body, Some(m), *partial);
                } else {
                    push_partial(body, mime::section(m, section).as_deref(), *partial);
                }
            }
            FetchAttr::Binary { part, partial, .. } => {
                let m = message_of(ctx, record, &mut raw)?;
                let data = if part.is_empty() {
                    Some(m.to_vec())
                } else {
                    mime::binary(m, part).map_err(|_| FetchError::UnknownCte)?
                };
                body.extend_from_slice(format!("BINARY[{}]", part_name(part)).as_bytes());
                match partial {
                    _ if data.is_none() => body.extend_from_slice(b" NIL"),
                    Some(_) => push_partial(body, data.as_deref(), *partial),
                    None => {
                        let d = data.unwrap_or_default();
                        // RFC 3516: binary content goes in a ~{n} literal when it has NULs.
                        if d.contains(&0) {
                            body.extend_from_slice(format!(" ~{{{}}}\r\n", d.len()).as_bytes());
                            body.extend_from_slice(&d);
                        } else {
                            body.push(b' ');
                            push_literal(body, &d);
                        }
                    }
                }
            }
            FetchAttr::BinarySize { part } => {
                let m = message_of(ctx, record, &mut raw)?;
                let size = if part.is_empty() {
                    Some(m.len())
                } else {
                    mime::binary(m, part)
                        .map_err(|_| FetchError::UnknownCte)?
                        .map(|d| d.len())
                };
                body.extend_from_slice(
                    format!("BINARY.SIZE[{}] {}", part_name(part), size.unwrap_or(0)).as_bytes(),
                );
            }
        }
    }
    body.extend_from_slice(b")\r\n");
    Ok(())
}

pub(crate) fn message_of<'r>(
    ctx: &FetchContext<'_>,
    record: &Record,
    raw: &'r mut Option<Vec<u8>>,
) -> Result<&'r [u8], FetchError> {
    if raw.is_none() {
        *raw = Some(ctx.store.message(ctx.mailbox, record)?);
    }
    Ok(raw.as_deref().unwrap_or_default())
}

pub(crate) fn summary_of(
    ctx: &FetchContext<'_>,
    record: &Record,
    raw: &mut Option<Vec<u8>>,
    summary: &mut Option<Arc<MessageSummary>>,
) -> Result<Arc<MessageSummary>, FetchError> {
    if let Some(s) = summary {
        return Ok(s.clone());
    }
    let key = *record.guid.as_bytes();
    let s = match ctx.cache.get(&key) {
        Some(s) => s,
        None => {
            let m = message_of(ctx, record, raw)?;
            ctx.cache.get_or_insert_with(key, || mime::summarize(m))
        }
    };
    *summary = Some(s.clone());
    Ok(s)
}

/// Puts the summaries of `records` into the cache: those not there yet come from the
/// store's content index in one read. Messages stored before the index existed are
/// parsed on demand by [`summary_of`].
pub(crate) fn prefetch_summaries<'r>(
    ctx: &FetchContext<'_>,
    records: impl Iterator<Item = &'r Record>,
) -> Result<(), FetchError> {
    let missing: Vec<tern_store::Guid> = records
        .map(|r| r.guid)
        .filter(|g| ctx.cache.get(g.as_bytes()).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Most of a mailbox: one pass over it beats one lookup per message.
    let found = if missing.len() > 256 {
        ctx.store
            .mailbox_summaries(ctx.actor, &ctx.mailbox.uniqueid)?
    } else {
        ctx.store.summaries(&missing)?
    };
    for (guid, bytes) in found {
        if let Some(summary) = crate::indexer::decode(&bytes) {
            ctx.cache.insert(*guid.as_bytes(), Arc::new(summary));
        }
    }
    Ok(())
}

fn push_literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

/// ` {n}\r\n...` for the data, cut to `<offset.length>` (then named `<offset>`).
fn push_partial(out: &mut Vec<u8>, data: Option<&[u8]>, partial: Option<(u32, u32)>) {
    let data = data.unwrap_or_default();
    match partial {
        None => {
            out.push(b' ');
            push_literal(out, data);
        }
        Some((offset, length)) => {
            let start = (offset as usize).min(data.len());
            let end = start.saturating_add(length as usize).min(data.len());
            out.extend_from_slice(format!("<{offset}> ").as_bytes());
            push_literal(out, &data[start..end]);
        }
    }
}

/// `1.2.HEADER.FIELDS (FROM TO)` as it goes in a response.
pub(crate) fn section_name(section: &Section) -> String {
    let mut name = part_name(&section.part);
    let text = match &section.text {
        None => return name,
        Some(SectionText::Header) => "HEADER".to_owned(),
        Some(SectionText::Text) => "TEXT".to_owned(),
        Some(SectionText::Mime) => "MIME".to_owned(),
        Some(SectionText::HeaderFields(f)) => format!("HEADER.FIELDS ({})", field_list(f)),
        Some(SectionText::HeaderFieldsNot(f)) => format!("HEADER.FIELDS.NOT ({})", field_list(f)),
    };
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(&text);
    name
}

fn field_list(fields: &[String]) -> String {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        crate::mime::write_astring(&mut out, f.to_ascii_uppercase().as_bytes());
    }
    String::from_utf8(out).unwrap_or_default()
}

fn part_name(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}
