//! Changes logged from a kept read read back, fold, survive a crash and pass a
//! check exactly as if their rows had been written at once.

use crate::content::Dice;
use crate::flags::{Flag, FlagOp, Flags};
use crate::ids::Uid;
use crate::{Actor, Store, UniqueId};

/// Changes logged and not yet folded, in this store's index.
/// Keeps the store's fold thread from folding, so that a test sees its changes
/// logged however slow the machine (reads still fold them).
fn hold_folds(store: &Store) {
    store
        .shared
        .folds_held
        .store(true, std::sync::atomic::Ordering::SeqCst);
}

fn pending(store: &Store) -> i64 {
    store
        .snapshot(|c| Ok(c.query_row("SELECT count(*) FROM pending_changes", [], |r| r.get(0))?))
        .unwrap()
}

/// What a user, a replica or `tern check` can see of INBOX: every record with its
/// flags, modseq and expunge, the mailbox row's counts, HIGHESTMODSEQ and digest,
/// the digest its records give, every change since 0 (the `record_changes` log),
/// the counts a STATUS reports and the owner's usage.
fn everything(store: &Store, actor: &Actor, inbox: &UniqueId) -> String {
    let (mailbox, records) = store.records(actor, inbox, true).unwrap();
    let recomputed = store
        .read(|c| crate::digest::recompute_records_digest(c, mailbox.id))
        .unwrap();
    let (_, changed) = store.changed_since(actor, inbox, 0).unwrap();
    let (_, counts) = store.mailbox_counts(actor, inbox).unwrap();
    let user = store.user("u").unwrap().unwrap();
    let records: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} {} {:?}", r.uid, r.flags, r.modseq, r.expunged_modseq))
        .collect();
    let changed: Vec<(Uid, u64)> = changed.iter().map(|r| (r.uid, r.modseq)).collect();
    format!(
        "records {records:?}\nmessages {} bytes {} highest {} digest {} recomputed {}\n\
         changed {changed:?}\ncounts {counts:?}\nusage {} {}",
        mailbox.messages,
        mailbox.bytes,
        mailbox.highest_modseq,
        mailbox.digest,
        recomputed,
        user.used_messages,
        user.used_storage
    )
}

/// Two stores holding the same 400 messages take the same flag stores and expunges
/// of \Deleted messages; one has INBOX's read kept, so its changes are logged and
/// pile up unfolded (reads from the kept read in between, as a client's FETCH does,
/// fold nothing); the other writes every change into the rows. Every outcome is the
/// same, and so is everything either store shows afterwards, once folded.
#[test]
fn logged_changes_read_back_as_if_written() {
    let (_a, logged, actor, inbox) = crate::content::store_with_inbox(400);
    let (_b, written, _, other) = crate::content::store_with_inbox(400);
    hold_folds(&logged);
    logged.records(&actor, &inbox, false).unwrap();
    let pool = [
        Flag::Seen,
        Flag::Deleted,
        Flag::Flagged,
        Flag::Keyword("$Work".into()),
    ];
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    let mut most_pending = 0;
    for round in 0..90 {
        let what = format!("round {round}");
        if round % 5 == 4 {
            let within: Option<Vec<Uid>> =
                (dice.next(2) == 0).then(|| (0..30).map(|_| 1 + dice.next(400) as Uid).collect());
            let a = logged
                .expunge_deleted(&actor, &inbox, within.as_deref())
                .unwrap();
            let b = written
                .expunge_deleted(&actor, &other, within.as_deref())
                .unwrap();
            assert_eq!(a, b, "{what}: expunge");
        } else {
            let uids: Vec<Uid> = match dice.next(3) {
                0 => (1..=400).collect(),
                1 => (0..1 + dice.next(40))
                    .map(|_| 1 + dice.next(400) as Uid)
                    .collect(),
                _ => vec![1 + dice.next(400) as Uid],
            };
            let flags: Flags = (0..1 + dice.next(2))
                .map(|_| pool[dice.next(pool.len() as u64) as usize].clone())
                .collect();
            let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][dice.next(3) as usize];
            let a = logged
                .store_flags(&actor, &inbox, &uids, op, &flags, None)
                .unwrap();
            let b = written
                .store_flags(&actor, &other, &uids, op, &flags, None)
                .unwrap();
            assert_eq!(a, b, "{what}: {op:?} {flags}");
        }
        // What a session's FETCH reads comes from the kept read, unfolded.
        let (_, seen) = logged.records(&actor, &inbox, false).unwrap();
        let (_, truth) = written.records(&actor, &other, false).unwrap();
        // (Not `saved_at`: the two stores took their messages a moment apart.)
        let shown = |r: &crate::Record| (r.uid, r.flags.to_string(), r.modseq, r.expunged_modseq);
        assert_eq!(
            seen.iter().map(shown).collect::<Vec<_>>(),
            truth.iter().map(shown).collect::<Vec<_>>(),
            "{what}: the live records"
        );
        most_pending = most_pending.max(pending(&logged));
        if round % 30 == 29 {
            // Now and then everything, which folds.
            assert_eq!(
                everything(&logged, &actor, &inbox),
                everything(&written, &actor, &other),
                "{what}"
            );
            assert_eq!(pending(&logged), 0, "{what}: a read folds");
        }
    }
    assert!(
        most_pending >= 5,
        "changes were logged: at most {most_pending} pending"
    );
    assert_eq!(
        pending(&written),
        0,
        "without a kept read nothing is logged"
    );
}

/// More changes than a mailbox's log holds fold the oldest first: the log never
/// grows past its bound, and nothing is lost on the way.
#[test]
fn a_full_log_folds_before_it_grows() {
    let (_d, store, actor, inbox) = crate::content::store_with_inbox(300);
    store.records(&actor, &inbox, false).unwrap();
    let seen: Flags = [Flag::Seen].into_iter().collect();
    for uid in 1..=150 {
        store
            .store_flags(&actor, &inbox, &[uid], FlagOp::Add, &seen, None)
            .unwrap();
        assert!(pending(&store) <= super::MAX_PER_MAILBOX, "uid {uid}");
    }
    let (_, counts) = store.mailbox_counts(&actor, &inbox).unwrap();
    assert_eq!(counts.unseen, 150);
    assert_eq!(counts.first_unseen, Some(151));
}

/// A login and the full-text indexer (its queue, its Message-ID fill), which run
/// after every delivery and change, read nothing a fold writes: they leave the
/// changes sessions logged to the fold
/// (reading them with `Store::read` folded them at once, under the next command of
/// the session that logged them).
#[test]
fn a_login_or_the_text_indexer_folds_nothing() {
    let (_d, store, actor, inbox) = crate::content::store_with_inbox(300);
    store.set_password("u", Some("pw")).unwrap();
    store.records(&actor, &inbox, false).unwrap();
    let seen: Flags = [Flag::Seen].into_iter().collect();
    let uids: Vec<Uid> = (1..=300).collect();
    hold_folds(&store);
    store
        .store_flags(&actor, &inbox, &uids, FlagOp::Add, &seen, None)
        .unwrap();
    assert!(store.verify_password("u", "pw").unwrap().is_some());
    store.text_index_backlog().unwrap();
    store.flush_text_index().unwrap();
    store.fill_message_ids().unwrap();
    store.user("u").unwrap();
    assert!(pending(&store) > 0, "the change was folded");
}

/// A logged change damaged on disk (its UID runs cut short, its flags not text) is
/// dropped by the fold, with an error in the log: the mailbox stays readable and
/// the other changes are applied.
#[test]
fn a_damaged_logged_change_is_dropped_not_fatal() {
    {
        let (_d, store, actor, inbox) = crate::content::store_with_inbox(300);
        hold_folds(&store);
        store.records(&actor, &inbox, false).unwrap();
        let flag = |f: Flag| -> Flags { [f].into_iter().collect() };
        for (uids, f) in [
            (vec![1, 2, 3], Flag::Seen),
            (vec![4, 5], Flag::Flagged),
            (vec![6], Flag::Answered),
        ] {
            store
                .store_flags(&actor, &inbox, &uids, FlagOp::Add, &flag(f), None)
                .unwrap();
        }
        let damaged = store
            .write_unfolded(|c| {
                let ids: Vec<i64> = c
                    .prepare("SELECT id FROM pending_changes ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if ids.len() != 3 {
                    return Ok(false);
                }
                c.execute(
                    "UPDATE pending_changes SET uids = x'010203' WHERE id = ?1",
                    [ids[0]],
                )?;
                c.execute(
                    "UPDATE pending_changes SET flags = x'00' WHERE id = ?1",
                    [ids[2]],
                )?;
                Ok(true)
            })
            .unwrap();
        assert!(
            damaged,
            "the changes were folded before they could be damaged"
        );
        let (_, records) = store.records(&actor, &inbox, true).unwrap();
        assert_eq!(pending(&store), 0);
        let flags_of = |uid: Uid| records[uid as usize - 1].flags.to_string();
        assert_eq!(flags_of(1), "", "the damaged change is dropped");
        assert_eq!(flags_of(4), "\\Flagged");
        assert_eq!(flags_of(5), "\\Flagged");
        assert_eq!(flags_of(6), "", "the damaged change is dropped");
    }
}

/// A copy of the index taken while changes are logged and unfolded is what a
/// `kill -9` leaves: opened again, it shows every acknowledged change, folds them,
/// and `tern check` finds nothing wrong with it before or after.
#[test]
fn logged_changes_survive_a_crash() {
    {
        let (dir, store, actor, inbox) = crate::content::store_with_inbox(300);
        hold_folds(&store);
        store.records(&actor, &inbox, false).unwrap();
        let deleted: Flags = [Flag::Deleted].into_iter().collect();
        let doomed: Vec<Uid> = (1..=300).filter(|u| u % 7 == 0).collect();
        store
            .store_flags(&actor, &inbox, &doomed, FlagOp::Add, &deleted, None)
            .unwrap();
        let gone = store.expunge_deleted(&actor, &inbox, None).unwrap();
        assert_eq!(gone.uids, doomed);
        let seen: Flags = [Flag::Seen].into_iter().collect();
        store
            .store_flags(&actor, &inbox, &[1, 2, 3], FlagOp::Add, &seen, None)
            .unwrap();
        // The crash: the index as the disk holds it now, the store still open.
        let copy = tempfile::tempdir().unwrap();
        copy_tree(dir.path(), copy.path());
        let expected = everything(&store, &actor, &inbox);
        drop(store);
        let unfolded: i64 = rusqlite::Connection::open(copy.path().join("index.sqlite3"))
            .unwrap()
            .query_row("SELECT count(*) FROM pending_changes", [], |r| r.get(0))
            .unwrap();
        assert!(unfolded > 0, "the copy caught no change unfolded");
        let config = crate::StoreConfig::new(copy.path());
        let report = crate::check(&config, &crate::CheckOptions::default()).unwrap();
        assert!(
            report.damage().next().is_none(),
            "check with changes unfolded: {:?}",
            report.findings
        );
        let reopened = Store::open(config.clone(), crate::content::test_indexer()).unwrap();
        assert_eq!(everything(&reopened, &actor, &inbox), expected);
        assert_eq!(pending(&reopened), 0);
        drop(reopened);
        let report = crate::check(&config, &crate::CheckOptions::default()).unwrap();
        assert!(report.damage().next().is_none(), "{:?}", report.findings);
    }
}

/// Copies the files under `from` into `to`, as they are on disk now.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "index.sqlite3-shm" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
