//! Statements that change a lot of the index at once: a flag change on every message
//! of a large mailbox, folded into the records by one UPDATE, and an expunge of
//! thousands. SQLite journals what such a statement changes (so that the statement
//! alone can be undone); these tests make sure a journal past 512 KiB is kept and
//! committed, not refused. A statement journal kept in memory up to 512 KiB once
//! failed every such statement past that size with "database or disk is full" (SQLite
//! writes a spilled journal in one piece, which its Unix layer cuts to under 128 KiB),
//! and the mailbox could then not be read at all, every read folding the same change.

mod common;

use common::flags;

use tern_store::*;

fn owner() -> Actor {
    common::owner("u")
}

/// A mailbox "Big" of `n` messages, appended in batches.
fn big_mailbox(store: &Store, n: u32) -> UniqueId {
    store.create_user("u", None, false).unwrap();
    store.create_mailbox("u", "Big", None).unwrap();
    let big = store.mailbox("u", "Big").unwrap().unwrap().uniqueid;
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "From: sender{i}@example.org\r\nTo: u@example.org\r\n\
                 Subject: message number {i} of a large mailbox\r\n\
                 Message-ID: <{i}.large@example.org>\r\n\r\nbody {i}\r\n"
            )
            .into_bytes()
        })
        .collect();
    for batch in bodies.chunks(1000) {
        let messages: Vec<NewMessage<'_>> = batch
            .iter()
            .map(|b| NewMessage {
                // Keywords make each record larger, so that fewer messages (quicker to
                // append) fill as many pages.
                flags: flags(
                    "$AKeywordLongEnoughToFillTheRecord $AnotherKeywordOfTheSameLength \
                     $AThirdKeywordOfAboutThatLength $AndAFourthKeywordToGoWithThem \
                     $AFifthKeywordOfAboutThatLength $AndASixthKeywordToGoWithThem",
                ),
                internaldate: 1_700_000_000,
                bytes: b,
            })
            .collect();
        store.append_all(&owner(), &big, &messages).unwrap();
    }
    big
}

fn seen_count(store: &Store, big: &UniqueId) -> usize {
    let (_, records) = store.records(&owner(), big, false).unwrap();
    records
        .iter()
        .filter(|r| r.flags.contains(&Flag::Seen))
        .count()
}

#[test]
fn a_flag_change_on_every_message_of_a_large_mailbox_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    let n = 2500;
    let big = big_mailbox(&store, n);
    let all: Vec<Uid> = (1..=n).collect();

    let out = store
        .store_flags(&owner(), &big, &all, FlagOp::Add, &flags("\\Seen"), None)
        .unwrap();
    assert_eq!(out.changed.len(), n as usize);
    // The read folds the logged change into the records: one UPDATE of every record.
    assert_eq!(seen_count(&store, &big), n as usize);

    // Several changes over the whole mailbox, folded together.
    for op in [FlagOp::Remove, FlagOp::Add, FlagOp::Remove] {
        store
            .store_flags(&owner(), &big, &all, op, &flags("\\Seen \\Flagged"), None)
            .unwrap();
    }
    assert_eq!(seen_count(&store, &big), 0);

    // Thousands expunged in one call.
    let odd: Vec<Uid> = all.iter().copied().filter(|u| u % 2 == 1).collect();
    store
        .store_flags(&owner(), &big, &odd, FlagOp::Add, &flags("\\Deleted"), None)
        .unwrap();
    let gone = store.expunge(&owner(), &big, &odd).unwrap();
    assert_eq!(gone.len(), odd.len());
    let (_, left) = store.records(&owner(), &big, false).unwrap();
    assert_eq!(left.len(), (n / 2) as usize);
    assert!(left.iter().all(|r| r.uid % 2 == 0));

    // And all of it is what a restart finds.
    drop(store);
    let store = Store::open(StoreConfig::new(dir.path()), common::indexer()).unwrap();
    let (_, left) = store.records(&owner(), &big, false).unwrap();
    assert_eq!(left.len(), (n / 2) as usize);
    assert!(left.iter().all(|r| !r.flags.contains(&Flag::Seen)));

    // Renamed and deleted whole, as a user would at last.
    store.rename_mailbox("u", "Big", "Old", None).unwrap();
    store.delete_mailbox("u", "Old").unwrap();
    assert!(store.mailbox("u", "Old").unwrap().is_none());
    assert!(store.mailbox("u", "Big").unwrap().is_none());
}
