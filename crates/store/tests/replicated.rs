//! Replicated writes: a replica store applying what a master store reads, through the
//! public API only, with the guarantees `docs/replication.md` gives.

use tern_store::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
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
    replica.apply_user_state(&state).unwrap();
    (d1, master, d2, replica)
}

#[test]
fn a_replica_keeps_the_masters_numbers_and_digest() {
    let (_a, master, _b, replica) = pair();
    replica
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
    assert_eq!(mr, rr);
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
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let before = replica.mailbox("u", "INBOX").unwrap().unwrap();
    master
        .append_as_owner("u", "INBOX", &Flags::new(), 0, &msg(9))
        .unwrap();
    let err = replica
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
        replica.apply_update(update).unwrap_err(),
        StoreError::DigestMismatch { .. }
    ));
    assert!(replica.mailbox("u", "INBOX").unwrap().is_none());
}

#[test]
fn a_uid_holding_another_message_is_a_conflict() {
    let (_a, master, _b, replica) = pair();
    replica
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    let r = replica.mailbox("u", "INBOX").unwrap().unwrap();
    let mut update = full_update(&master, "u", "INBOX", Some(r.highest_modseq));
    update.digest = None;
    let other = msg(77);
    update.appends[0].guid = Guid::of(&other);
    update.appends[0].size = other.len() as u64;
    update.appends[0].data = Some(other);
    let err = replica.apply_update(update).unwrap_err();
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
        replica.apply_update(update).unwrap_err(),
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
        replica.apply_update(update).unwrap_err(),
        StoreError::BlobNotHeld(_)
    ));
}

#[test]
fn reset_replaces_the_records_and_parking_frees_a_name() {
    let (_a, master, _b, replica) = pair();
    replica
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    // A mailbox of another unique id holds "Work" on the replica.
    let mut stray = full_update(&master, "u", "INBOX", None);
    stray.uniqueid = Some(UniqueId::random());
    stray.state.name = "Work".into();
    stray.digest = None;
    replica.apply_update(stray).unwrap();
    master.create_mailbox("u", "Work", None).unwrap();
    master
        .append_as_owner("u", "Work", &Flags::new(), 0, &msg(40))
        .unwrap();
    replica
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
    replica.apply_update(update).unwrap();
    assert_eq!(replica.mailbox("u", "INBOX").unwrap().unwrap().messages, 3);
}

#[test]
fn delete_and_rename_by_unique_id() {
    let (_a, master, _b, replica) = pair();
    replica
        .apply_update(full_update(&master, "u", "INBOX", None))
        .unwrap();
    master.create_mailbox("u", "A", None).unwrap();
    replica
        .apply_update(full_update(&master, "u", "A", None))
        .unwrap();
    let id = replica.mailbox("u", "A").unwrap().unwrap().uniqueid;
    replica
        .replica_rename("u", &id, "B", DEFAULT_PARTITION)
        .unwrap();
    assert!(replica.mailbox("u", "A").unwrap().is_none());
    assert_eq!(replica.mailbox("u", "B").unwrap().unwrap().uniqueid, id);
    // Another user's mailbox is never touched by a command naming this user.
    assert!(replica
        .replica_rename("v", &id, "C", DEFAULT_PARTITION)
        .is_err());
    replica.replica_delete("u", &id).unwrap();
    assert!(replica.mailbox("u", "B").unwrap().is_none());
    // A later create under the same unique id revives it.
    replica
        .apply_update(full_update(&master, "u", "A", None))
        .unwrap();
    assert_eq!(replica.mailbox("u", "A").unwrap().unwrap().uniqueid, id);
}
