//! Replicated writes: a replica store applying what a master store reads, through the
//! public API only, with the guarantees `docs/replication.md` gives.

mod common;

use tern_store::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    (dir, store)
}

fn msg(n: u32) -> Vec<u8> {
    format!("Subject: m{n}\r\nMessage-ID: <m{n}@test>\r\n\r\nbody {n}\r\n").into_bytes()
}

/// The whole of master mailbox `name` of `user` as one UPDATE (expect = `expect`).
fn full_update(master: &Store, user: &str, name: &str, expect: Option<Modseq>) -> MailboxUpdate {
    let m = master.mailbox(user, name).unwrap().unwrap();
    let c = master.changes_since(&m.uniqueid, 0).unwrap();
    let appends = c
        .records
        .iter()
        .map(|r| ReplicaAppend::of(r, Some(master.message(&c.mailbox, r).unwrap())))
        .collect();
    let expunges = c
        .records
        .iter()
        .filter_map(|r| r.expunged_modseq.map(|x| (vec![r.uid], x)))
        .collect();
    MailboxUpdate {
        user: user.into(),
        uniqueid: Some(m.uniqueid.clone()),
        expect,
        state: MailboxState::of(&c.mailbox, c.annotations.clone()),
        appends,
        expunges,
        digest: Some(c.mailbox.digest),
        ..Default::default()
    }
}

fn pair() -> (tempfile::TempDir, Store, tempfile::TempDir, Store) {
    let (d1, master) = open();
    let (d2, replica) = open();
    master.create_user("u", Some("pw"), false).unwrap();
    for n in 1..=5 {
        master
            .append_as_owner(
                "u",
                "INBOX",
                &Flags::new(),
                1_700_000_000 + n as i64,
                &msg(n),
            )
            .unwrap();
    }
    let state = master.user_state("u").unwrap().unwrap();
    replica.replica().apply_user_state(&state).unwrap();
    (d1, master, d2, replica)
}

#[test]
fn a_replica_keeps_the_masters_numbers_and_digest() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let m = master.mailbox("u", "INBOX").unwrap().unwrap();
    let r = replica.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(
        (
            r.uniqueid.clone(),
            r.uidvalidity,
            r.last_uid,
            r.highest_modseq
        ),
        (
            m.uniqueid.clone(),
            m.uidvalidity,
            m.last_uid,
            m.highest_modseq
        )
    );
    assert_eq!(r.messages, 5);
    let (mm, mr) = master.all_records(&m.uniqueid).unwrap();
    let (rm, rr) = replica.all_records(&r.uniqueid).unwrap();
    // Every field but the save time, which each server keeps for itself (IMAP
    // SAVEDATE; not replicated).
    let unsaved = |records: Vec<tern_store::Record>| {
        records
            .into_iter()
            .map(|r| tern_store::Record {
                saved_at: None,
                ..r
            })
            .collect::<Vec<_>>()
    };
    assert!(mr.iter().all(|r| r.saved_at.is_some()));
    assert_eq!(unsaved(mr), unsaved(rr));
    assert_eq!(mm.digest, rm.digest);
    assert_ne!(mm.digest, tern_store::RecordsDigest::EMPTY);
    // The replica's user can log in with the master's password, and its modseq counter
    // is above every replicated modseq.
    assert!(replica.verify_password("u", "pw").unwrap().is_some());
    assert!(replica.user("u").unwrap().unwrap().highest_modseq >= m.highest_modseq);
    // Replicated writes are silent: nothing in the replica's change log for u's INBOX.
    assert!(replica
        .changes_after(0, 100)
        .unwrap()
        .iter()
        .all(|c| c.mailbox.as_ref() != Some(&m.uniqueid)));
}

#[test]
fn a_stale_expectation_applies_nothing() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let before = replica.mailbox("u", "INBOX").unwrap().unwrap();
    master
        .append_as_owner("u", "INBOX", &Flags::new(), 0, &msg(9))
        .unwrap();
    let err = replica
        .replica()
        .apply_update(full_update(
            &master,
            "u",
            "INBOX",
            Some(before.highest_modseq + 7),
        ))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SyncMismatch { highest_modseq, last_uid, .. } if highest_modseq == before.highest_modseq && last_uid == 5),
        "{err}"
    );
    assert_eq!(replica.mailbox("u", "INBOX").unwrap().unwrap(), before);
}

#[test]
fn a_digest_mismatch_rolls_everything_back() {
    let (_a, master, _b, replica) = pair();
    let mut update = full_update(&master, "u", "INBOX", None);
    update.digest = Some(tern_store::RecordsDigest([7; 16]));
    assert!(matches!(
        replica.replica().apply_update(update).unwrap_err(),
        StoreError::DigestMismatch { .. }
    ));
    assert!(replica.mailbox("u", "INBOX").unwrap().is_none());
}

#[test]
fn a_uid_holding_another_message_is_a_conflict() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let r = replica.mailbox("u", "INBOX").unwrap().unwrap();
    let mut update = full_update(&master, "u", "INBOX", Some(r.highest_modseq));
    update.digest = None;
    let other = msg(77);
    update.appends[0].guid = Guid::of(&other);
    update.appends[0].size = other.len() as u64;
    update.appends[0].data = Some(other);
    let err = replica.replica().apply_update(update).unwrap_err();
    assert!(
        matches!(err, StoreError::SyncConflict { uid: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_literal_that_does_not_hash_to_its_guid_is_refused() {
    let (_a, master, _b, replica) = pair();
    let mut update = full_update(&master, "u", "INBOX", None);
    if let Some(d) = update.appends[2].data.as_mut() {
        d[0] ^= 1;
    }
    assert!(matches!(
        replica.replica().apply_update(update).unwrap_err(),
        StoreError::SyncConflict { uid: 3, .. }
    ));
    assert!(replica.mailbox("u", "INBOX").unwrap().is_none());
}

#[test]
fn nil_data_needs_a_held_blob() {
    let (_a, master, _b, replica) = pair();
    let mut update = full_update(&master, "u", "INBOX", None);
    update.appends[0].data = None;
    assert!(matches!(
        replica.replica().apply_update(update).unwrap_err(),
        StoreError::BlobNotHeld(_)
    ));
}

#[test]
fn reset_replaces_the_records_and_parking_frees_a_name() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    // A mailbox of another unique id holds "Work" on the replica.
    let mut stray = full_update(&master, "u", "INBOX", None);
    stray.uniqueid = Some(UniqueId::random());
    stray.state.name = "Work".into();
    stray.digest = None;
    replica.replica().apply_update(stray).unwrap();
    master.create_mailbox("u", "Work", None).unwrap();
    master
        .append_as_owner("u", "Work", &Flags::new(), 0, &msg(40))
        .unwrap();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "Work", None))
        .unwrap();
    let names: Vec<String> = replica
        .mailboxes("u", false)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.iter().any(|n| n.starts_with("Work~")), "{names:?}");
    assert_eq!(
        replica.mailbox("u", "Work").unwrap().unwrap().uniqueid,
        master.mailbox("u", "Work").unwrap().unwrap().uniqueid
    );
    // RESET: the replica's INBOX is replaced whole.
    let r = replica.mailbox("u", "INBOX").unwrap().unwrap();
    let id = r.uniqueid.clone();
    master
        .expunge(
            &Actor {
                name: "u".into(),
                is_admin: false,
            },
            &id,
            &[1, 2],
        )
        .unwrap();
    let mut update = full_update(&master, "u", "INBOX", Some(r.highest_modseq));
    update.reset = true;
    for a in &mut update.appends {
        a.data = None;
    }
    replica.replica().apply_update(update).unwrap();
    assert_eq!(replica.mailbox("u", "INBOX").unwrap().unwrap().messages, 3);
}

#[test]
fn delete_and_rename_by_unique_id() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    master.create_mailbox("u", "A", None).unwrap();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "A", None))
        .unwrap();
    let id = replica.mailbox("u", "A").unwrap().unwrap().uniqueid;
    replica
        .replica()
        .replica_rename("u", &id, "B", DEFAULT_PARTITION)
        .unwrap();
    assert!(replica.mailbox("u", "A").unwrap().is_none());
    assert_eq!(replica.mailbox("u", "B").unwrap().unwrap().uniqueid, id);
    // Another user's mailbox is never touched by a command naming this user.
    assert!(replica
        .replica()
        .replica_rename("v", &id, "C", DEFAULT_PARTITION)
        .is_err());
    replica.replica().replica_delete("u", &id).unwrap();
    assert!(replica.mailbox("u", "B").unwrap().is_none());
    // Deleted here while the master kept it (a split brain): it cannot come back under
    // the UIDVALIDITY this replica's clients saw it deleted with…
    let err = replica
        .replica()
        .apply_update(full_update(&master, "u", "A", None))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SyncConflict { uid: 0, .. }),
        "{err}"
    );
    assert!(replica.mailbox("u", "A").unwrap().is_none());
    // …but it can under a new one, which the master gives it.
    let old = master.mailbox("u", "A").unwrap().unwrap();
    let renewed = master.renew_uidvalidity(&id, old.uidvalidity).unwrap();
    assert!(renewed > old.uidvalidity);
    replica
        .replica()
        .apply_update(full_update(&master, "u", "A", None))
        .unwrap();
    let back = replica.mailbox("u", "A").unwrap().unwrap();
    assert_eq!((back.uniqueid, back.uidvalidity), (id, renewed));
}

/// The maintained digest of `name` equals one computed afresh from its records.
fn digest_is_true(store: &Store, name: &str) -> RecordsDigest {
    let m = store.mailbox("u", name).unwrap().unwrap();
    let (read, fresh) = store.recompute_digest(&m.uniqueid).unwrap();
    assert_eq!(read.digest, fresh, "{name}: maintained digest is stale");
    fresh
}

/// What changed since each modseq of `name` (as IMAP sessions and replication ask it)
/// is exactly what a scan of its records says.
fn changes_are_complete(store: &Store, name: &str) {
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let m = store.mailbox("u", name).unwrap().unwrap();
    let (_, all) = store.all_records(&m.uniqueid).unwrap();
    for since in 0..=m.highest_modseq {
        let want: Vec<_> = all.iter().filter(|r| r.modseq > since).cloned().collect();
        let (_, got) = store.changed_since(&owner, &m.uniqueid, since).unwrap();
        assert_eq!(got, want, "{name}: changed since {since}");
    }
}

#[test]
fn the_records_digest_follows_every_kind_of_write() {
    let (_a, master, _b, replica) = pair();
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let inbox = master.mailbox("u", "INBOX").unwrap().unwrap().uniqueid;
    let empty = digest_is_true(&master, "INBOX");
    assert_ne!(empty, RecordsDigest::EMPTY);
    let before = empty;
    master
        .store_flags(
            &owner,
            &inbox,
            &[2],
            FlagOp::Add,
            &Flags::parse_list("\\Seen $x").unwrap(),
            None,
        )
        .unwrap();
    assert_ne!(
        digest_is_true(&master, "INBOX"),
        before,
        "a flag change changes it"
    );
    master.expunge(&owner, &inbox, &[3]).unwrap();
    digest_is_true(&master, "INBOX");
    let other = master.create_mailbox("u", "Other", None).unwrap();
    master
        .move_records(&owner, &inbox, &[4], &other.uniqueid)
        .unwrap();
    master.copy(&owner, &inbox, &[1], &other.uniqueid).unwrap();
    digest_is_true(&master, "INBOX");
    digest_is_true(&master, "Other");
    // A merge (renumber + adopt + flags + expunge) in one transaction.
    master
        .merge_replica(
            &inbox,
            Merge {
                replica_highest_modseq: 100,
                replica_last_uid: 9,
                renumber: vec![5],
                adopt: vec![Adoption {
                    replica_uid: Some(7),
                    internaldate: 1,
                    size: msg(70).len() as u64,
                    guid: Guid::of(&msg(70)),
                    flags: Flags::parse_list("\\Flagged").unwrap(),
                    data: msg(70),
                }],
                flags: vec![(1, Flags::parse_list("\\Answered").unwrap())],
                expunge: vec![2],
                keywords: vec![],
            },
        )
        .unwrap();
    let merged = master.mailbox("u", "INBOX").unwrap().unwrap();
    assert!(
        merged.highest_modseq > 100 && merged.last_uid == 11,
        "{merged:?}"
    );
    digest_is_true(&master, "INBOX");
    changes_are_complete(&master, "INBOX");
    changes_are_complete(&master, "Other");
    // The replica, sent everything, holds the same digest; so does a reset.
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    assert_eq!(
        digest_is_true(&replica, "INBOX"),
        digest_is_true(&master, "INBOX")
    );
    changes_are_complete(&replica, "INBOX");
    let r = replica.mailbox("u", "INBOX").unwrap().unwrap();
    let mut again = full_update(&master, "u", "INBOX", Some(r.highest_modseq));
    again.reset = true;
    again.expect_digest = Some(r.digest);
    replica.replica().apply_update(again).unwrap();
    assert_eq!(
        digest_is_true(&replica, "INBOX"),
        digest_is_true(&master, "INBOX")
    );
    changes_are_complete(&replica, "INBOX");
    // Then only what changed since: a flag store and an expunge of records the
    // replica already holds.
    let since = replica
        .mailbox("u", "INBOX")
        .unwrap()
        .unwrap()
        .highest_modseq;
    master
        .store_flags(
            &owner,
            &inbox,
            &[1],
            FlagOp::Add,
            &Flags::parse_list("$y").unwrap(),
            None,
        )
        .unwrap();
    let (_, held) = master.all_records(&inbox).unwrap();
    let last_live = held
        .iter()
        .rev()
        .find(|r| r.expunged_modseq.is_none())
        .unwrap()
        .uid;
    assert_eq!(
        master.expunge(&owner, &inbox, &[last_live]).unwrap(),
        vec![last_live]
    );
    let c = master.changes_since(&inbox, since).unwrap();
    let mut update = MailboxUpdate {
        user: "u".into(),
        uniqueid: Some(inbox.clone()),
        expect: Some(since),
        state: MailboxState::of(&c.mailbox, c.annotations.clone()),
        digest: Some(c.mailbox.digest),
        ..Default::default()
    };
    for r in &c.records {
        match r.expunged_modseq {
            Some(x) => update.expunges.push((vec![r.uid], x)),
            None => update.stores.push((vec![r.uid], r.modseq, r.flags.clone())),
        }
    }
    assert_eq!(
        (update.stores.len(), update.expunges.len()),
        (1, 1),
        "{:?}",
        c.records
    );
    replica.replica().apply_update(update).unwrap();
    assert_eq!(
        digest_is_true(&replica, "INBOX"),
        digest_is_true(&master, "INBOX")
    );
    changes_are_complete(&replica, "INBOX");
}

#[test]
fn an_expected_digest_that_does_not_hold_applies_nothing() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let before = replica.mailbox("u", "INBOX").unwrap().unwrap();
    master
        .append_as_owner("u", "INBOX", &Flags::new(), 0, &msg(9))
        .unwrap();
    let mut update = full_update(&master, "u", "INBOX", Some(before.highest_modseq));
    update.reset = true;
    // Right counters, wrong records: what a split brain at equal counters looks like.
    update.expect_digest = Some(RecordsDigest([9; 16]));
    let err = replica.replica().apply_update(update).unwrap_err();
    assert!(
        matches!(err, StoreError::SyncMismatch { digest, .. } if digest == before.digest),
        "{err}"
    );
    assert_eq!(replica.mailbox("u", "INBOX").unwrap().unwrap(), before);
}

/// A replica session prepares the next UPDATEs while an earlier one commits. A later
/// UPDATE may name, without data, a message an earlier one of the same stream carries:
/// prepared before that one is applied, it still applies, in order.
#[test]
fn an_update_prepared_early_may_name_a_message_an_earlier_one_carries() {
    let (_a, master, _b, replica) = pair();
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let inbox = master.mailbox("u", "INBOX").unwrap().unwrap();
    let copy = master.create_mailbox("u", "Copy", None).unwrap();
    master
        .copy(&owner, &inbox.uniqueid, &[1, 2, 3, 4, 5], &copy.uniqueid)
        .unwrap();
    let first = full_update(&master, "u", "INBOX", None);
    let mut second = full_update(&master, "u", "Copy", None);
    for a in &mut second.appends {
        a.data = None;
    }
    let first = replica.replica().prepare_update(first).unwrap();
    let second = replica.replica().prepare_update(second).unwrap();
    replica.replica().apply_prepared(first).unwrap();
    replica.replica().apply_prepared(second).unwrap();
    for name in ["INBOX", "Copy"] {
        let m = master.mailbox("u", name).unwrap().unwrap();
        let r = replica.mailbox("u", name).unwrap().unwrap();
        assert_eq!((r.messages, r.digest), (m.messages, m.digest), "{name}");
        assert_eq!(digest_is_true(&replica, name), r.digest);
    }
    assert_eq!(replica.blobs().list(DEFAULT_PARTITION).unwrap().len(), 5);
}

/// A prepared UPDATE that is never applied (its session ended) leaves no file behind,
/// neither temporary nor under a blob's name.
#[test]
fn a_prepared_update_dropped_unapplied_leaves_no_file() {
    let (_a, master, b, replica) = pair();
    let prepared = replica
        .replica()
        .prepare_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    drop(prepared);
    assert!(replica.blobs().list(DEFAULT_PARTITION).unwrap().is_empty());
    let stray: Vec<_> = walk(b.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(replica.mailbox("u", "INBOX").unwrap().is_none());
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A record the replica expunged on its own (cut off from the master) and the master
/// then sends back live is live again in every respect: `tern expire` neither counts
/// it as expired in a dry run nor purges it, and its blob stays.
#[test]
fn a_record_the_master_sends_back_live_is_not_expired() {
    let (_a, master, _b, replica) = pair();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let owner = Actor {
        name: "u".into(),
        is_admin: false,
    };
    let inbox = replica.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(replica.expunge(&owner, &inbox.uniqueid, &[2]).unwrap(), [2]);
    let now = replica.mailbox("u", "INBOX").unwrap().unwrap();
    replica
        .replica()
        .apply_update(full_update(&master, "u", "INBOX", Some(now.highest_modseq)))
        .unwrap();
    let revived = replica.mailbox("u", "INBOX").unwrap().unwrap();
    assert_eq!(revived.messages, 5, "{revived:?}");
    assert_eq!(
        digest_is_true(&replica, "INBOX"),
        digest_is_true(&master, "INBOX")
    );

    let options = |dry_run| ExpireOptions {
        dry_run,
        purge_expunged: Some(0),
        collect_blobs: true,
        ..Default::default()
    };
    let dry = replica.expire(&options(true)).unwrap();
    assert_eq!(dry.records_purged(), 0, "{dry:?}");
    assert_eq!(dry.blobs_freed, 0, "{dry:?}");
    let done = replica.expire(&options(false)).unwrap();
    assert_eq!(done.records_purged(), 0, "{done:?}");
    assert_eq!(done.blobs_freed, 0, "{done:?}");
    let c = replica.changes_since(&revived.uniqueid, 0).unwrap();
    let two = c.records.iter().find(|r| r.uid == 2).unwrap();
    assert_eq!(two.expunged_modseq, None);
    assert_eq!(replica.message(&c.mailbox, two).unwrap(), msg(2));
}
