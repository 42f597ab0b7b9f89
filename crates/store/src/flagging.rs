//! Changing records in place: flags (with RFC 7162 UNCHANGEDSINCE), delayed expunge,
//! and the \Recent watermark.

use std::sync::Arc;

use rusqlite::params;

use crate::acl::{Actor, Rights};
use crate::digest::{record_hash, RecordsDigest};
use crate::error::Result;
use crate::error::StoreError;
use crate::flag_targets::{self, for_each_target};
use crate::flags::Flag;
use crate::flags::{FlagOp, Flags};
use crate::ids::{Modseq, Uid, UniqueId};
use crate::record_cache::StateKey;
use crate::records::live_for;
use crate::sql::Cached;
use crate::store::Store;
use crate::txn;
use crate::users::add_usage;

/// A flag change applied to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The record.
    pub uid: Uid,
    /// Its new modseq (unchanged when the flags were already so).
    pub modseq: Modseq,
    /// Its flags after the change.
    pub flags: Flags,
}

/// The outcome of a conditional flag store (RFC 7162 UNCHANGEDSINCE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Records whose flags now differ from before, with their new modseqs.
    pub changed: Vec<FlagChange>,
    /// Records left alone because they changed after the UNCHANGEDSINCE modseq.
    pub modified: Vec<Uid>,
    /// Live records of the set whose flags were already so, with their flags and
    /// modseq as of the same transaction: with `changed`, the state of every live
    /// record of the set once the store committed, so a caller reports it without
    /// reading the records again.
    pub unchanged: Vec<FlagChange>,
    /// The mailbox's HIGHESTMODSEQ just before this store, in its transaction. A
    /// caller that had seen every change up to it knows that the changes up to the
    /// store's own modseq are this store's alone.
    pub before: Modseq,
}

/// What [`Store::expunge_deleted`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expunged {
    /// The UIDs expunged, in UID order.
    pub uids: Vec<Uid>,
    /// The modseq of the expunge (meaningless when `uids` is empty).
    pub modseq: Modseq,
    /// The mailbox's HIGHESTMODSEQ just before the expunge, in its transaction (see
    /// [`StoreOutcome::before`]).
    pub before: Modseq,
}

impl Store {
    /// Changes flags on the given UIDs (IMAP STORE). With `unchanged_since`, records
    /// whose modseq is above it are left alone and reported in `modified` (RFC 7162).
    /// Every record that changes gets the same new modseq; records already so, expunged
    /// records and UIDs that do not exist are skipped.
    /// Changing \Seen needs the `s` right, \Deleted `t`, any other flag `w`.
    /// The records are taken from the kept read of the mailbox when the mailbox row
    /// shows no change since it was taken, and the store leaves the read of the state
    /// it makes ([`crate::record_cache`]).
    pub fn store_flags(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<Modseq>,
    ) -> Result<StoreOutcome> {
        if uids.is_empty() {
            // Nothing to write: checked on a snapshot, without a turn at the writer.
            self.read(|conn| live_for(conn, actor, mailbox, Rights::READ))?;
            return Ok(StoreOutcome::default());
        }
        let (id, uids, flags, actor) =
            (mailbox.clone(), uids.to_vec(), flags.clone(), actor.clone());
        let shared = Arc::clone(&self.shared);
        let (outcome, keys, logged) = self.write_unfolded(move |conn| {
            let (mailbox, kept, logged) = kept_or_folded(conn, &shared, &actor, &id, Rights::READ)?;
            let rights = actor.rights(&mailbox);
            let before_key = StateKey::of(&mailbox);
            let mut outcome = StoreOutcome {
                before: mailbox.highest_modseq,
                // Most stores change what they name (a STORE 1:* names thousands).
                changed: Vec::with_capacity(uids.len()),
                ..StoreOutcome::default()
            };
            let mut modseq = None;
            let mut runs = crate::flag_runs::FlagRuns::new(conn, mailbox.id);
            // Whether the record before (the previous live one of the mailbox, when
            // `follows` says so) was changed, so that the next may share its write.
            let mut previous_changed = false;
            // The records digest moves by one delta for the whole store, applied once
            // below: no trigger folds a change of flags and modseq (schema 12).
            let mut delta = RecordsDigest::default();
            let live = kept.as_deref().map(Vec::as_slice);
            for_each_target(conn, mailbox.id, live, !logged, uids, |rec| {
                let follows = previous_changed && rec.follows;
                previous_changed = false;
                if unchanged_since.is_some_and(|m| rec.modseq as u64 > m) {
                    outcome.modified.push(rec.uid);
                    return Ok(());
                }
                let new = rec.flags.apply(op, &flags);
                if new == *rec.flags {
                    outcome.unchanged.push(FlagChange {
                        uid: rec.uid,
                        modseq: rec.modseq as Modseq,
                        flags: rec.flags.clone(),
                    });
                    return Ok(());
                }
                needs_rights(&mailbox, rights, rec.flags, &new)?;
                let m = match modseq {
                    Some(m) => m,
                    None => *modseq.insert(txn::next_modseq(conn, mailbox.user_id)?),
                };
                if !logged {
                    let new_text = new.to_string();
                    runs.push(rec.uid, &new_text, m as i64, follows)?;
                    delta = delta
                        .fold(&rec.hash())
                        .fold(&rec.hash_as(m as i64, &new_text));
                }
                previous_changed = true;
                outcome.changed.push(FlagChange {
                    uid: rec.uid,
                    modseq: m,
                    flags: new,
                });
                Ok(())
            })?;
            if logged {
                if let Some(m) = modseq {
                    let uids: Vec<Uid> = outcome.changed.iter().map(|c| c.uid).collect();
                    crate::pending::log_flags(conn, mailbox.id, m, op, &flags, &uids)?;
                }
            } else {
                runs.finish()?;
                crate::digest::apply_delta(conn, mailbox.id, &delta)?;
            }
            let Some(m) = modseq else {
                return Ok((outcome, None, false));
            };
            // Every keyword of `flags` is now on a record (a Remove gives none).
            if op != FlagOp::Remove {
                crate::keywords::add_capped(conn, &mailbox, &flags)?;
            }
            txn::touch_mailbox(conn, &mailbox, m)?;
            let keys = match kept {
                // A logged change moves the mailbox row's HIGHESTMODSEQ alone (the
                // digest moves at the fold): its key needs no second read of the row.
                Some(_) if logged => {
                    let after = before_key.at_modseq(m.max(mailbox.highest_modseq));
                    debug_assert_eq!(Some(after), StateKey::now(conn, &mailbox).ok());
                    Some((before_key, after))
                }
                Some(_) => Some((before_key, StateKey::now(conn, &mailbox)?)),
                None => None,
            };
            Ok((outcome, keys, logged))
        })?;
        // The kept read with this store's changes is the read of the state it left.
        if let Some((before, after)) = keys {
            self.shared.live_records.carry(&before, after, |live| {
                flag_targets::apply_to_kept(live, &outcome.changed)
            });
        }
        if logged {
            self.fold_soon();
        }
        if let Some(c) = outcome.changed.first() {
            self.notify(mailbox, c.modseq);
        }
        Ok(outcome)
    }

    /// Expunges the given UIDs: each record stays, marked with the modseq of the
    /// expunge, until `tern expire` purges it. Returns the UIDs actually expunged.
    pub fn expunge(&self, actor: &Actor, mailbox: &UniqueId, uids: &[Uid]) -> Result<Vec<Uid>> {
        if uids.is_empty() {
            // Nothing to write (an EXPUNGE with nothing \Deleted, the common case):
            // the rights are checked on a snapshot, without a turn at the writer.
            self.read(|conn| live_for(conn, actor, mailbox, Rights::EXPUNGE))?;
            return Ok(Vec::new());
        }
        let (id, uids, actor) = (mailbox.clone(), uids.to_vec(), actor.clone());
        let ((done, modseq), keys) = self.write(move |conn| {
            let mailbox = live_for(conn, &actor, &id, Rights::EXPUNGE)?;
            let done = expunge_in(conn, &mailbox, &uids)?;
            Ok((
                done,
                (StateKey::of(&mailbox), StateKey::now(conn, &mailbox)?),
            ))
        })?;
        if !done.is_empty() {
            self.shared
                .live_records
                .carry_past_expunge(&keys.0, keys.1, &done);
            self.notify(mailbox, modseq);
        }
        Ok(done)
    }

    /// Expunges the messages of `mailbox` flagged \Deleted (IMAP EXPUNGE and CLOSE),
    /// or with `within` only those among these UIDs (UID EXPUNGE), and returns the UIDs
    /// expunged, in UID order, once durable. A message whose \Deleted flag another
    /// session takes off before the expunge commits stays. Needs the `e` right; with
    /// nothing flagged, the rights are checked on a snapshot and nothing is written.
    pub fn expunge_deleted(
        &self,
        actor: &Actor,
        mailbox: &UniqueId,
        within: Option<&[Uid]>,
    ) -> Result<Expunged> {
        let doomed = self.read_lazily(|conn| {
            let mailbox = live_for(conn, actor, mailbox, Rights::EXPUNGE)?;
            if let Some(kept) = self.shared.live_records.get(&StateKey::of(&mailbox)) {
                return Ok(deleted_among(&kept, within));
            }
            crate::pending::require_folded(conn, mailbox.id)?;
            deleted_in(conn, &mailbox, within)
        })?;
        if doomed.is_empty() {
            return Ok(Expunged::default());
        }
        let (id, actor) = (mailbox.clone(), actor.clone());
        let shared = Arc::clone(&self.shared);
        let (expunged, keys, logged) = self.write_unfolded(move |conn| {
            let (mailbox, kept, logged) =
                kept_or_folded(conn, &shared, &actor, &id, Rights::EXPUNGE)?;
            let before_key = StateKey::of(&mailbox);
            let (uids, modseq) = match kept.as_deref().filter(|_| logged) {
                Some(live) => {
                    // Those still live and \Deleted in the state this transaction
                    // reads: another session may have taken the flag off since.
                    let mut gone = Vec::with_capacity(doomed.len());
                    let mut freed = 0i64;
                    for uid in &doomed {
                        if let Ok(at) = live.binary_search_by_key(uid, |r| r.uid) {
                            if live[at].flags.contains(&Flag::Deleted) {
                                gone.push(*uid);
                                freed += live[at].size as i64;
                            }
                        }
                    }
                    if gone.is_empty() {
                        (gone, 0)
                    } else {
                        let modseq = txn::next_modseq(conn, mailbox.user_id)?;
                        crate::pending::log_expunge(
                            conn,
                            mailbox.id,
                            modseq,
                            crate::store::now(),
                            &gone,
                        )?;
                        count_expunged(conn, &mailbox, gone.len(), freed)?;
                        txn::touch_mailbox(conn, &mailbox, modseq)?;
                        (gone, modseq)
                    }
                }
                None => expunge_where(conn, &mailbox, &doomed, true)?,
            };
            let expunged = Expunged {
                uids,
                modseq,
                before: mailbox.highest_modseq,
            };
            Ok((
                expunged,
                (before_key, StateKey::now(conn, &mailbox)?),
                logged,
            ))
        })?;
        if !expunged.uids.is_empty() {
            self.shared
                .live_records
                .carry_past_expunge(&keys.0, keys.1, &expunged.uids);
            if logged {
                self.fold_soon();
            }
            self.notify(mailbox, expunged.modseq);
        }
        Ok(expunged)
    }

    /// Takes the messages of `seen` (a snapshot of the mailbox the caller is about to
    /// show) above the mailbox's \Recent watermark: advances the watermark to the
    /// snapshot's last UID and returns the old one, so the messages above it are
    /// \Recent for the calling session (the first to see them) and for no other. The
    /// read and the advance are one write transaction, so two sessions selecting at
    /// the same instant never both get the same message as \Recent (RFC 3501 2.3.2).
    /// Messages that arrived after the snapshot stay for whichever session sees them
    /// first. When the snapshot shows nothing new, nothing is read or written.
    pub fn take_recent(&self, actor: &Actor, seen: &crate::Mailbox) -> Result<Uid> {
        if seen.recent_uid >= seen.last_uid {
            return Ok(seen.recent_uid);
        }
        let (id, actor, upto) = (seen.uniqueid.clone(), actor.clone(), seen.last_uid);
        self.write(move |conn| {
            let mailbox = live_for(conn, &actor, &id, Rights::READ)?;
            take_recent_in(conn, &mailbox, upto.min(mailbox.last_uid))
        })
    }
}

/// A kept read of a mailbox's live records ([`crate::record_cache`]).
type KeptRead = Arc<Vec<crate::Record>>;

/// In a write transaction that changes records of the live mailbox `id`: the mailbox
/// (checked for `needed`), the kept read of its records when there is one, and
/// whether the change may be logged (`pending.rs`) instead of written into the
/// rows: it may with a kept read to decide it from, room in the mailbox's log and
/// room on disk for the fold.
/// Otherwise every pending change is folded first (the change then reads and
/// writes the rows), and the mailbox and its kept read are as the fold left them.
fn kept_or_folded(
    conn: &rusqlite::Connection,
    shared: &crate::store::Shared,
    actor: &Actor,
    id: &UniqueId,
    needed: Rights,
) -> Result<(crate::Mailbox, Option<KeptRead>, bool)> {
    let mailbox = live_for(conn, actor, id, needed)?;
    let kept = shared.live_records.get(&StateKey::of(&mailbox));
    let room = || -> Result<bool> {
        Ok(crate::pending::count(conn, mailbox.id)? < crate::pending::MAX_PER_MAILBOX)
    };
    if kept.is_some() && room()? && crate::pending::room_to_fold(&shared.config) {
        return Ok((mailbox, kept, true));
    }
    if crate::pending::fold_all(conn, &shared.live_records)? == 0 {
        return Ok((mailbox, kept, false));
    }
    let mailbox = live_for(conn, actor, id, needed)?;
    let kept = shared.live_records.get(&StateKey::of(&mailbox));
    Ok((mailbox, kept, false))
}

/// The records of `live` (a kept read, in UID order) flagged \Deleted; with
/// `within`, only those among these UIDs.
fn deleted_among(live: &[crate::Record], within: Option<&[Uid]>) -> Vec<Uid> {
    let mut within = within.map(<[Uid]>::to_vec);
    if let Some(w) = within.as_mut() {
        w.sort_unstable();
    }
    live.iter()
        .filter(|r| r.flags.contains(&Flag::Deleted))
        .map(|r| r.uid)
        .filter(|u| within.as_ref().is_none_or(|w| w.binary_search(u).is_ok()))
        .collect()
}

/// In a write transaction: advances the \Recent watermark of `mailbox` (as read in
/// this transaction) to `upto`, which must not pass its last UID, and returns the
/// watermark before: the messages above it, up to `upto`, are \Recent for the
/// caller's session only.
pub(crate) fn take_recent_in(
    conn: &rusqlite::Connection,
    mailbox: &crate::Mailbox,
    upto: Uid,
) -> Result<Uid> {
    if mailbox.recent_uid < upto {
        conn.execute_cached(
            "UPDATE mailboxes SET recent_uid = ?3, recent_time = ?2 WHERE id = ?1",
            params![mailbox.id, crate::store::now(), upto],
        )?;
    }
    Ok(mailbox.recent_uid)
}

/// Expunges `uids` of `mailbox` inside a caller's transaction; returns the UIDs
/// expunged, in UID order, and the modseq used.
pub(crate) fn expunge_in(
    conn: &rusqlite::Connection,
    mailbox: &crate::Mailbox,
    uids: &[Uid],
) -> Result<(Vec<Uid>, Modseq)> {
    expunge_where(conn, mailbox, uids, false)
}

/// The live records of `mailbox` flagged \Deleted, in UID order; with `within`, only
/// those among these UIDs.
fn deleted_in(
    conn: &rusqlite::Connection,
    mailbox: &crate::Mailbox,
    within: Option<&[Uid]>,
) -> Result<Vec<Uid>> {
    // The condition is the one `records_deleted` (schema 14) is built on, so this
    // reads only the \Deleted records, however large the mailbox.
    let mut stmt = conn.prepare_cached(
        "SELECT uid FROM records INDEXED BY records_deleted WHERE mailbox_id = ?1 \
         AND expunged_modseq IS NULL AND instr(flags, '\\Deleted') > 0 ORDER BY uid",
    )?;
    let mut within = within.map(<[Uid]>::to_vec);
    if let Some(w) = within.as_mut() {
        w.sort_unstable();
    }
    let mut out = Vec::new();
    let mut rows = stmt.query([mailbox.id])?;
    while let Some(row) = rows.next()? {
        let uid = row.get::<_, i64>(0)? as Uid;
        if within
            .as_ref()
            .is_none_or(|w| w.binary_search(&uid).is_ok())
        {
            out.push(uid);
        }
    }
    Ok(out)
}

/// [`expunge_in`], where `only_deleted` leaves alone a record no longer \Deleted.
fn expunge_where(
    conn: &rusqlite::Connection,
    mailbox: &crate::Mailbox,
    uids: &[Uid],
    only_deleted: bool,
) -> Result<(Vec<Uid>, Modseq)> {
    let modseq = txn::next_modseq(conn, mailbox.user_id)?;
    let now = crate::store::now();
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (done, freed) = expunge_rows(conn, mailbox.id, &sorted, modseq, now, only_deleted)?;
    if done.is_empty() {
        // Nothing changed: the modseq taken is simply never used, a harmless gap.
        return Ok((done, modseq));
    }
    count_expunged(conn, mailbox, done.len(), freed)?;
    txn::touch_mailbox(conn, mailbox, modseq)?;
    Ok((done, modseq))
}

/// Takes `n` expunged records of `freed` bytes off the counts of `mailbox` and of
/// its owner's quota usage.
fn count_expunged(
    conn: &rusqlite::Connection,
    mailbox: &crate::Mailbox,
    n: usize,
    freed: i64,
) -> Result<()> {
    let n = n as i64;
    conn.execute_cached(
        "UPDATE mailboxes SET messages = messages - ?2, bytes = bytes - ?3 WHERE id = ?1",
        params![mailbox.id, n, freed],
    )?;
    add_usage(conn, mailbox.user_id, -freed, -n)
}

/// Marks the live records `sorted` (ascending, distinct) of the mailbox row
/// `mailbox_id` expunged at `modseq` and `at`, with their share of the records digest
/// and their `record_changes` note; with `only_deleted`, only those flagged \Deleted.
/// Returns the UIDs marked, ascending, and their bytes. The mailbox row's counts and
/// HIGHESTMODSEQ are the caller's.
pub(crate) fn expunge_rows(
    conn: &rusqlite::Connection,
    mailbox_id: i64,
    sorted: &[Uid],
    modseq: Modseq,
    at: i64,
    only_deleted: bool,
) -> Result<(Vec<Uid>, i64)> {
    let mut done = Vec::new();
    let mut freed = 0i64;
    // `expunged_at` is set here, so the schema-6 trigger that would set it with a
    // second update of the same row finds it set and does nothing. UIDs go in chunks
    // (see `flag_runs`), one statement for up to 32 records. Since schema 14 no
    // trigger keeps the records digest for an expunge: each chunk's old modseqs are
    // read first and the records' old and new hashes folded here, in one update of
    // the mailbox row.
    static OLD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut old = conn.prepare_cached(crate::sql::built_once(&OLD, || {
        format!(
            "SELECT uid, modseq FROM records WHERE mailbox_id = ?1 AND uid IN ({}) \
             AND expunged_modseq IS NULL",
            crate::flag_runs::uid_params(2)
        )
    }))?;
    static EXPUNGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut stmt = conn.prepare_cached(crate::sql::built_once(&EXPUNGE, || {
        format!(
            "UPDATE records SET expunged_modseq = ?1, modseq = ?1, expunged_at = ?2 \
             WHERE mailbox_id = ?3 AND uid IN ({}) AND expunged_modseq IS NULL \
             AND (?4 = 0 OR instr(flags, '\\Deleted') > 0) \
             RETURNING uid, size, internaldate, guid, flags, pop3_uidl",
            crate::flag_runs::uid_params(5)
        )
    }))?;
    let mut delta = RecordsDigest::EMPTY;
    let mut before: Vec<(i64, i64)> = Vec::with_capacity(crate::flag_runs::CHUNK);
    for chunk in sorted.chunks(crate::flag_runs::CHUNK) {
        let uid_values = || crate::flag_runs::padded(chunk).map(i64::from);
        before.clear();
        let mut rows = old.query(rusqlite::params_from_iter(
            std::iter::once(mailbox_id).chain(uid_values()),
        ))?;
        while let Some(row) = rows.next()? {
            before.push((row.get(0)?, row.get(1)?));
        }
        before.sort_unstable();
        let head = [modseq as i64, at, mailbox_id, i64::from(only_deleted)];
        let mut rows = stmt.query(rusqlite::params_from_iter(
            head.into_iter().chain(uid_values()),
        ))?;
        while let Some(row) = rows.next()? {
            let uid: i64 = row.get(0)?;
            let size: i64 = row.get(1)?;
            let internaldate: i64 = row.get(2)?;
            let guid = row.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
            let flags = row.get_ref(4)?.as_str().map_err(rusqlite::Error::from)?;
            let uidl: Option<&str> = row
                .get_ref(5)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?;
            let Ok(at) = before.binary_search_by_key(&uid, |b| b.0) else {
                return Err(StoreError::CommitFailed(format!(
                    "expunge: uid {uid} was written but not read before"
                )));
            };
            let was = before[at].1;
            let hash = |modseq: i64, expunged: i64| {
                record_hash(uid, modseq, internaldate, size, guid, expunged, flags, uidl)
            };
            delta = delta
                .fold(&hash(was, 0))
                .fold(&hash(modseq as i64, modseq as i64));
            done.push(uid as Uid);
            freed += size;
        }
    }
    done.sort_unstable();
    if done.is_empty() {
        return Ok((done, 0));
    }
    crate::digest::apply_delta(conn, mailbox_id, &delta)?;
    crate::record_changes::note_uids(conn, mailbox_id, modseq as i64, &done)?;
    Ok((done, freed))
}

/// Checks that `rights` allow turning `old` flags into `new` (RFC 4314 2.1).
fn needs_rights(mailbox: &crate::Mailbox, rights: Rights, old: &Flags, new: &Flags) -> Result<()> {
    let changed = |f: &Flag| old.contains(f) != new.contains(f);
    let mut needed = Rights::NONE;
    if changed(&Flag::Seen) {
        needed = needed | Rights::SEEN;
    }
    if changed(&Flag::Deleted) {
        needed = needed | Rights::DELETE_MESSAGES;
    }
    let others = old
        .iter()
        .chain(new.iter())
        .any(|f| !matches!(f, Flag::Seen | Flag::Deleted) && changed(f));
    if others {
        needed = needed | Rights::WRITE;
    }
    if rights.contains(needed) {
        Ok(())
    } else {
        Err(StoreError::PermissionDenied {
            name: mailbox.name.clone(),
            needed: needed.without(rights).to_string(),
        })
    }
}

#[cfg(test)]
#[path = "flagging_tests.rs"]
mod tests;
