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
