//! The planning rules against a table of cases, including every case where the cheap
//! signal (equal counters) says "equal" and the records differ.

use tern_store::{Flags, Guid, Record, RecordsDigest, UniqueId};

use super::*;

fn mailbox(last_uid: Uid, highest_modseq: Modseq, digest: u8) -> ReplicaMailbox {
    ReplicaMailbox {
        uniqueid: UniqueId::random(),
        name: "INBOX".into(),
        uidvalidity: 7,
        last_uid,
        highest_modseq,
        deleted_modseq: 0,
        partition: "default".into(),
        digest: RecordsDigest([digest; 16]),
    }
}

fn send(expect: &ReplicaMailbox, since: Modseq, last_uid: Uid) -> MailboxStep {
    MailboxStep::Send(Send {
        expect: Some((expect.highest_modseq, expect.digest)),
        since,
        replica_last_uid: last_uid,
        reset: false,
        rename: false,
    })
}

#[test]
fn mailbox_table() {
    let m = mailbox(6, 20, 1);
    let renamed = ReplicaMailbox {
        name: "Old".into(),
        ..m.clone()
    };
    let other_validity = ReplicaMailbox {
        uidvalidity: 8,
        ..m.clone()
    };
    let purged_past = ReplicaMailbox {
        deleted_modseq: 15,
        ..m.clone()
    };
    let cases: Vec<(
        &str,
        &ReplicaMailbox,
        Option<ReplicaMailbox>,
        bool,
        MailboxStep,
    )> = vec![
        (
            "absent on the replica: create",
            &m,
            None,
            false,
            MailboxStep::Send(Send {
                expect: None,
                since: 0,
                replica_last_uid: 0,
                reset: false,
                rename: false,
            }),
        ),
        (
            "identical: nothing",
            &m,
            Some(m.clone()),
            false,
            MailboxStep::InStep,
        ),
        (
            "equal counters, other digest (split brain): reconcile",
            &m,
            Some(mailbox(6, 20, 2)),
            false,
            MailboxStep::Reconcile,
        ),
        (
            "behind: incremental above its modseq",
            &m,
            Some(mailbox(5, 12, 3)),
            false,
            send(&mailbox(5, 12, 3), 12, 5),
        ),
        (
            "ahead by modseq: reconcile",
            &m,
            Some(mailbox(6, 21, 1)),
            false,
            MailboxStep::Reconcile,
        ),
        (
            "ahead by last UID only: reconcile",
            &m,
            Some(mailbox(7, 20, 1)),
            false,
            MailboxStep::Reconcile,
        ),
        (
            "other UIDVALIDITY, same counters: reconcile",
            &m,
            Some(other_validity.clone()),
            false,
            MailboxStep::Reconcile,
        ),
        (
            "behind the master's purges: reconcile",
            &purged_past,
            Some(mailbox(5, 12, 1)),
            false,
            MailboxStep::Reconcile,
        ),
        (
            "merged in an earlier round: sent whole",
            &m,
            Some(mailbox(6, 20, 2)),
            true,
            MailboxStep::Send(Send {
                expect: Some((20, RecordsDigest([2; 16]))),
                since: 0,
                replica_last_uid: 0,
                reset: true,
                rename: false,
            }),
        ),
    ];
    for (what, master, replica, merged, want) in cases {
        assert_eq!(
            plan_mailbox(master, replica.as_ref(), merged),
            want,
            "{what}"
        );
    }
    // Only the name differs: an UPDATE that carries nothing but the new name.
    assert_eq!(
        plan_mailbox(&m, Some(&renamed), false),
        MailboxStep::Send(Send {
            expect: Some((20, m.digest)),
            since: 20,
            replica_last_uid: 6,
            reset: false,
            rename: true,
        })
    );
}

fn ours(uid: Uid, modseq: Modseq, msg: &str, flags: &str, expunged: Option<Modseq>) -> Record {
    Record {
        uid,
        modseq,
        flags: Flags::parse_list(flags).unwrap(),
        internaldate: 1_700_000_000,
        size: msg.len() as u64,
        guid: Guid::of(msg.as_bytes()),
        expunged_modseq: expunged,
        pop3_uidl: None,
        saved_at: None,
    }
}

fn theirs(
    uid: Uid,
    modseq: Modseq,
    msg: &str,
    flags: &str,
    expunged: Option<Modseq>,
) -> ReplicaRecord {
    ReplicaRecord {
        uid,
        modseq,
        internaldate: 1_700_000_000,
        size: msg.len() as u64,
        guid: Guid::of(msg.as_bytes()),
        flags: Flags::parse_list(flags).unwrap(),
        expunged,
        blob_held: true,
        pop3_uidl: None,
    }
}

#[test]
fn records_table() {
    let m = mailbox(5, 30, 1);
    let r = mailbox(5, 30, 2);
    struct Case {
        what: &'static str,
        ours: Vec<Record>,
        theirs: Vec<ReplicaRecord>,
        renumber: Vec<Uid>,
        adopt: Vec<Uid>,
        flags: Vec<Uid>,
        expunge: Vec<Uid>,
    }
    let cases = vec![
        Case {
            what: "both appended a different message at UID 5: both move",
            ours: vec![ours(5, 30, "Y", "", None)],
            theirs: vec![theirs(5, 30, "X", "", None)],
            renumber: vec![5],
            adopt: vec![5],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "replica appended and expunged UID 5, master appended its own: only the master's moves",
            ours: vec![ours(5, 30, "Y", "", None)],
            theirs: vec![theirs(5, 31, "X", "", Some(31))],
            renumber: vec![5],
            adopt: vec![],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "both expunged different messages at UID 5: nothing moves, nothing adopted",
            ours: vec![ours(5, 30, "Y", "", Some(30))],
            theirs: vec![theirs(5, 30, "X", "", Some(30))],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "each side flagged a different message at equal counters",
            ours: vec![
                ours(1, 30, "A", "\\Seen", None),
                ours(2, 4, "B", "", None),
            ],
            theirs: vec![
                theirs(1, 3, "A", "", None),
                theirs(2, 30, "B", "\\Flagged", None),
            ],
            renumber: vec![],
            adopt: vec![],
            flags: vec![2],
            expunge: vec![],
        },
        Case {
            what: "same record changed on both sides at the same modseq: the master wins",
            ours: vec![ours(1, 30, "A", "\\Seen", None)],
            theirs: vec![theirs(1, 30, "A", "\\Flagged", None)],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "the replica expunged later: taken back",
            ours: vec![ours(1, 10, "A", "", None)],
            theirs: vec![theirs(1, 25, "A", "", Some(25))],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![1],
        },
        Case {
            what: "the replica expunged, the master changed flags later: still expunged",
            ours: vec![ours(1, 40, "A", "\\Seen", None)],
            theirs: vec![theirs(1, 25, "A", "", Some(25))],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![1],
        },
        Case {
            what: "the master expunged; the replica's later flag change does not resurrect it",
            ours: vec![ours(1, 10, "A", "", Some(10))],
            theirs: vec![theirs(1, 25, "A", "\\Seen", None)],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "a UID only the replica has: adopted if live, dropped if expunged",
            ours: vec![ours(1, 10, "A", "", None)],
            theirs: vec![
                theirs(1, 10, "A", "", None),
                theirs(6, 31, "N", "", None),
                theirs(7, 32, "M", "", Some(33)),
            ],
            renumber: vec![],
            adopt: vec![6],
            flags: vec![],
            expunge: vec![],
        },
        Case {
            what: "a merge cut short before the reset: nothing is taken twice",
            // After the first merge: UID 5 expunged (Y), Y renumbered to 31, X adopted
            // as 32; the replica still has X at 5.
            ours: vec![
                ours(5, 40, "Y", "", Some(40)),
                ours(31, 40, "Y", "", None),
                ours(32, 40, "X", "", None),
            ],
            theirs: vec![theirs(5, 30, "X", "", None)],
            renumber: vec![],
            adopt: vec![],
            flags: vec![],
            expunge: vec![],
        },
    ];
    for c in cases {
        let plan = plan_records(&m, &c.ours, &r, &c.theirs);
        let adopted: Vec<Uid> = plan.adopt.iter().map(|&i| c.theirs[i].uid).collect();
        let flagged: Vec<Uid> = plan.flags.iter().map(|(u, _)| *u).collect();
        assert_eq!(plan.renumber, c.renumber, "renumber: {}", c.what);
        assert_eq!(adopted, c.adopt, "adopt: {}", c.what);
        assert_eq!(flagged, c.flags, "flags: {}", c.what);
        assert_eq!(plan.expunge, c.expunge, "expunge: {}", c.what);
    }
}

#[test]
fn other_uidvalidity_adopts_by_guid() {
    let m = mailbox(3, 30, 1);
    let r = ReplicaMailbox {
        uidvalidity: 99,
        ..mailbox(2, 40, 2)
    };
    let plan = plan_records(
        &m,
        &[ours(1, 5, "A", "", None)],
        &r,
        &[
            theirs(1, 40, "A", "", None),
            theirs(2, 40, "Z", "", None),
            theirs(3, 40, "Q", "", Some(40)),
        ],
    );
    assert_eq!(plan.adopt, vec![1], "only Z: A is held, Q expunged");
    let merge = plan.into_merge(
        &r,
        &[theirs(1, 40, "A", "", None), theirs(2, 40, "Z", "", None)],
        false,
        vec![b"Z".to_vec()],
    );
    assert_eq!(
        merge.replica_last_uid, 0,
        "other UID space: no UID to keep clear"
    );
    assert_eq!(merge.adopt[0].replica_uid, None);
    assert_eq!(merge.replica_highest_modseq, 40);
}

/// A master with alice's INBOX, Kept, Moved (renamed from Old) and a deleted Gone.
fn master() -> (tempfile::TempDir, tern_store::Store, MasterUser) {
    let dir = tempfile::tempdir().unwrap();
    let store = tern_store::Store::open(
        tern_store::StoreConfig::new(dir.path()),
        std::sync::Arc::new(tern_message::MessageIndexer),
    )
    .unwrap();
    store.create_user("alice", Some("pw"), false).unwrap();
    for name in ["Kept", "Gone"] {
        store.create_mailbox("alice", name, None).unwrap();
    }
    store.delete_mailbox("alice", "Gone").unwrap();
    let all = store.mailboxes("alice", true).unwrap();
    let master = MasterUser {
        state: store.user_state("alice").unwrap(),
        mailboxes: all,
        outside: HashMap::new(),
    };
    (dir, store, master)
}

fn as_replica(m: &tern_store::Mailbox) -> ReplicaMailbox {
    ReplicaMailbox::of(m)
}

fn by_name<'a>(m: &'a MasterUser, name: &str) -> &'a tern_store::Mailbox {
    m.mailboxes.iter().find(|x| x.name == name).unwrap()
}

#[test]
fn user_table() {
    let (_dir, _store, master) = master();
    let digest = master.state.as_ref().unwrap().digest();
    let inbox = as_replica(by_name(&master, "INBOX"));
    let kept = as_replica(by_name(&master, "Kept"));
    let gone = as_replica(by_name(&master, "Gone"));
    let orphan = ReplicaMailbox {
        uniqueid: UniqueId::random(),
        name: "Kept".into(),
        ..kept.clone()
    };
    let live: Vec<ReplicaMailbox> = master
        .mailboxes
        .iter()
        .filter(|m| m.is_live())
        .map(as_replica)
        .collect();
    let live_but = |skip: &str| -> Vec<ReplicaMailbox> {
        live.iter().filter(|m| m.name != skip).cloned().collect()
    };
    let with = |extra: &ReplicaMailbox| -> Vec<ReplicaMailbox> {
        let mut v = live.clone();
        v.push(extra.clone());
        v
    };
    let _ = &inbox;
    let in_step = View {
        digest: Some(digest.clone()),
        mailboxes: live.clone(),
    };

    // Everything in step: nothing at all.
    let plan = plan_user(
        &Selection::All,
        &master,
        &in_step,
        &mut Marks::default(),
        true,
    );
    assert_eq!(plan, UserPlan::default(), "in step");

    // The replica lacks the user, asked about one mailbox: USER, and the whole user
    // next round; its mailboxes are created.
    let one = Selection::Some {
        ids: vec![],
        names: vec!["Kept".into()],
    };
    let lost = View {
        digest: None,
        mailboxes: vec![],
    };
    let plan = plan_user(&one, &master, &lost, &mut Marks::default(), true);
    assert!(plan.send_user && plan.widen && !plan.unuser);
    assert_eq!(plan.mailboxes.len(), live.len(), "every mailbox created");

    // Only the user level: no mailbox contents planned.
    let plan = plan_user(
        &Selection::All,
        &master,
        &lost,
        &mut Marks::default(),
        false,
    );
    assert!(plan.send_user && plan.mailboxes.is_empty());

    // A mailbox the master deleted: DELETE, nothing to take back unless the replica
    // took mail in above the master's last UID.
    let with_gone = View {
        digest: Some(digest.clone()),
        mailboxes: with(&gone),
    };
    let plan = plan_user(
        &Selection::All,
        &master,
        &with_gone,
        &mut Marks::default(),
        true,
    );
    assert_eq!(
        plan.replica,
        vec![ReplicaStep::Delete {
            mailbox: gone.clone(),
            take_new_from: None
        }]
    );
    let grown = ReplicaMailbox {
        last_uid: gone.last_uid + 2,
        ..gone.clone()
    };
    let with_grown = View {
        digest: Some(digest.clone()),
        mailboxes: with(&grown),
    };
    let plan = plan_user(
        &Selection::All,
        &master,
        &with_grown,
        &mut Marks::default(),
        true,
    );
    assert!(matches!(
        &plan.replica[..],
        [ReplicaStep::Delete { take_new_from: Some(t), .. }] if t.name == "Gone"
    ));

    // A mailbox only the replica has, named like one of the master's that the replica
    // lacks, with the same UIDVALIDITY: taken back, and the master's one created under
    // a new UIDVALIDITY.
    let mut twins = live_but("Kept");
    twins.push(orphan.clone());
    let twin_view = View {
        digest: Some(digest.clone()),
        mailboxes: twins,
    };
    let plan = plan_user(
        &Selection::All,
        &master,
        &twin_view,
        &mut Marks::default(),
        true,
    );
    assert_eq!(plan.replica, vec![ReplicaStep::TakeBack(orphan.clone())]);
    let kept_plan = plan
        .mailboxes
        .iter()
        .find(|p| p.mailbox.name == "Kept")
        .unwrap();
    assert!(kept_plan.renew_above.is_some_and(|u| u >= kept.uidvalidity));

    // The master has no such user any more: UNUSER, but only when syncing everything.
    let none = MasterUser {
        state: None,
        mailboxes: vec![],
        outside: HashMap::new(),
    };
    assert!(
        plan_user(
            &Selection::All,
            &none,
            &in_step,
            &mut Marks::default(),
            true
        )
        .unuser
    );
    assert!(!plan_user(&one, &none, &in_step, &mut Marks::default(), true).unuser);

    // Marks from earlier rounds: a refused UPDATE reconciles, a merged mailbox goes
    // whole, and each mark is used once.
    let mut marks = Marks::default();
    marks.merge.insert(kept.uniqueid.clone());
    let plan = plan_user(&Selection::All, &master, &in_step, &mut marks, true);
    assert_eq!(plan.mailboxes[0].step, MailboxStep::Reconcile);
    assert!(marks.merge.is_empty());
    marks.reset.insert(kept.uniqueid.clone());
    let plan = plan_user(&Selection::All, &master, &in_step, &mut marks, true);
    assert!(matches!(&plan.mailboxes[0].step, MailboxStep::Send(s) if s.reset && s.since == 0));
}
