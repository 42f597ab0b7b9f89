//! Finding an article (by number in a group, or by Message-ID anywhere the client may
//! read) and sending it: streamed from its file, a chunk at a time, dot-stuffed, with
//! an Xref header naming every group that holds it.

use tern_net::dotstuff::{DotStuffer, Part};
use tern_store::{Actor, Mailbox, MessageFile, Record, Store, StoreError, Uid, SHARED_OWNER};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::command::MAX_ARTICLE;
use crate::groups::Selected;

/// Bytes of an article read from its file at a time.
const CHUNK: usize = 64 * 1024;

/// An article found for a retrieval command.
pub(crate) struct Found {
    pub(crate) mailbox: Mailbox,
    pub(crate) record: Record,
    /// Its number in the selected group, or 0 when found by Message-ID outside it.
    pub(crate) number: Uid,
    /// Its Message-ID, if it has one.
    pub(crate) message_id: Option<String>,
}

/// Article `number` of the selected group, if it exists (arrived after GROUP too) and
/// is not expunged.
pub(crate) fn by_number(
    store: &Store,
    actor: &Actor,
    selected: &Selected,
    number: Uid,
) -> Result<Option<Found>, StoreError> {
    if number == 0 || number > MAX_ARTICLE {
        return Ok(None);
    }
    let id = &selected.group.mailbox.uniqueid;
    let record = store
        .records_by_uid(actor, id, &[number])?
        .into_iter()
        .find(|r| r.expunged_modseq.is_none());
    let Some(record) = record else {
        return Ok(None);
    };
    let message_id = store
        .message_ids_of(actor, id, number..=number)?
        .into_iter()
        .next()
        .map(|(_, m)| m);
    Ok(Some(Found {
        mailbox: selected.group.mailbox.clone(),
        record,
        number,
        message_id,
    }))
}

/// The live articles with `message_id` in groups `actor` may read: (group, mailbox,
/// number), by group name.
pub(crate) fn placements(
    store: &Store,
    actor: &Actor,
    prefix: &str,
    message_id: &str,
) -> Result<Vec<(String, Mailbox, Uid)>, StoreError> {
    let below = format!("{prefix}/");
    Ok(store
        .records_by_message_id(actor, message_id)?
        .into_iter()
        .filter(|(m, uid)| m.user == SHARED_OWNER && *uid <= MAX_ARTICLE)
        .filter_map(|(m, uid)| {
            let group = m.name.strip_prefix(&below)?;
            (!group.contains('/')).then(|| (group.to_owned(), m.clone(), uid))
        })
        .collect())
}

/// The article with `message_id`, preferring its copy in the selected group.
pub(crate) fn by_message_id(
    store: &Store,
    actor: &Actor,
    prefix: &str,
    message_id: &str,
    selected: Option<&Selected>,
) -> Result<Option<Found>, StoreError> {
    let all = placements(store, actor, prefix, message_id)?;
    let current = selected.map(|s| s.group.mailbox.uniqueid.clone());
    let pick = all
        .iter()
        .find(|(_, m, _)| Some(&m.uniqueid) == current.as_ref())
        .or(all.first());
    let Some((_, mailbox, uid)) = pick else {
        return Ok(None);
    };
    let record = store
        .records_by_uid(actor, &mailbox.uniqueid, &[*uid])?
        .into_iter()
        .find(|r| r.expunged_modseq.is_none());
    Ok(record.map(|record| Found {
        number: if Some(&mailbox.uniqueid) == current.as_ref() {
            *uid
        } else {
            0
        },
        mailbox: mailbox.clone(),
        record,
        message_id: Some(message_id.to_owned()),
    }))
}

/// `Xref: host group:n ...` for an article, naming every group the client may read
/// that holds it (RFC 5536 3.2.14); `None` without a Message-ID.
pub(crate) fn xref(
    store: &Store,
    actor: &Actor,
    prefix: &str,
    hostname: &str,
    found: &Found,
) -> Result<Option<String>, StoreError> {
    let Some(id) = &found.message_id else {
        return Ok(None);
    };
    let value = xref_value(store, actor, prefix, hostname, id)?;
    Ok(value.map(|v| format!("Xref: {v}\r\n")))
}

/// The Xref value (`host group:n ...`) of the article with `message_id`: every group
/// the client may read that holds it; `None` when none does.
pub(crate) fn xref_value(
    store: &Store,
    actor: &Actor,
    prefix: &str,
    hostname: &str,
    message_id: &str,
) -> Result<Option<String>, StoreError> {
    let mut value = hostname.to_owned();
    let mut any = false;
    for (group, _, uid) in placements(store, actor, prefix, message_id)? {
        value.push_str(&format!(" {group}:{uid}"));
        any = true;
    }
    Ok(any.then_some(value))
}

/// The article's stored bytes, whole (for OVER and HDR).
pub(crate) fn read_whole(
    store: &Store,
    mailbox: &Mailbox,
    record: &Record,
) -> Result<Vec<u8>, StoreError> {
    let file = store.open_message(mailbox, record)?;
    let mut buf = vec![0; file.size() as usize];
    let mut at = 0;
    while at < buf.len() {
        let got = file.read_at(at as u64, &mut buf[at..]).map_err(io)?;
        if got == 0 {
            break;
        }
        at += got;
    }
    buf.truncate(at);
    Ok(buf)
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io {
        op: "reading article",
        path: std::path::PathBuf::new(),
        source: e,
    }
}

/// Sends the status line `status`, then `part` of an open article, dot-stuffed and
/// ended with `.`: the Xref line (if any) first, then the file, a chunk at a time (from
/// the page cache in place, else on a thread that may block). The status line goes in the same write as the first chunk and
/// the `.` line in the same write as the last: an article of up to a chunk is one write.
pub(crate) async fn send<W: AsyncWrite + Unpin>(
    out: &mut W,
    status: &str,
    file: MessageFile,
    xref: Option<String>,
    part: Part,
) -> std::io::Result<()> {
    let mut stuffer = DotStuffer::new(part);
    let mut wire = Vec::with_capacity(file.size().min(CHUNK as u64) as usize + 1024);
    wire.extend_from_slice(status.as_bytes());
    wire.extend_from_slice(b"\r\n");
    if let Some(x) = xref {
        stuffer.feed(x.as_bytes(), &mut wire);
    }
    let file = std::sync::Arc::new(file);
    let mut pos = 0u64;
    while pos < file.size() && !stuffer.done() {
        let want = (file.size() - pos).min(CHUNK as u64) as usize;
        let mut buf = Vec::with_capacity(want);
        // From the page cache without waiting when it is there; else on a thread that
        // may block.
        let chunk = match file.append_cached_at(pos, want, &mut buf) {
            Some(_) => buf,
            None => {
                let f = file.clone();
                tern_net::run_blocking(move || {
                    f.append_at(pos, want, &mut buf)?;
                    Ok::<_, std::io::Error>(buf)
                })
                .await
                .ok_or_else(|| std::io::Error::other("read task failed"))??
            }
        };
        if chunk.is_empty() {
            // The file is shorter than its record says: end the answer cleanly
            // rather than wait for bytes that will not come.
            break;
        }
        pos += chunk.len() as u64;
        stuffer.feed(&chunk, &mut wire);
        if pos < file.size() && !stuffer.done() {
            out.write_all(&wire).await?;
            wire.clear();
        }
    }
    stuffer.finish(&mut wire);
    out.write_all(&wire).await
}
