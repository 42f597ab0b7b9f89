//! IMAP through the real `tern serve` binary, driven by the `imap` crate (3.0 alpha,
//! on `imap-proto`'s parser): a Rust client nobody here wrote, which parses every
//! response it reads and fails on any it does not understand. Each test does what a
//! program built on it would do and checks what its user would see.
//!
//! Known limits of the crate, not exercised here: it cannot read a `BINARY[]` literal8
//! holding NUL bytes, nor a `NAMESPACE` response, and it sends mailbox names and search
//! text as raw UTF-8 (which an IMAP4rev1 session must refuse, as Dovecot does).

mod common;

use ::imap::types::{Flag, UnsolicitedResponse};
use common::maildir::*;
use common::*;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

type Session = ::imap::Session<TcpStream>;

fn login(addr: SocketAddr, user: &str) -> Session {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut client = ::imap::Client::new(tcp);
    client.read_greeting().unwrap();
    client.login(user, PASSWORD).map_err(|e| e.0).unwrap()
}

/// A two-part message: a text part mentioning `word`, and a small attachment.
fn multipart(n: u32, word: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: alice@example.org, \"Bob B\" <bob@example.org>\r\n\
         Subject: crate test {n}\r\nDate: Mon, 0{n} Jun 2025 10:00:00 +0200\r\n\
         Message-ID: <crate-{n}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n\
         --b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {n}, {word}.\r\n\
         --b{n}\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
         Content-Disposition: attachment; filename=\"a.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b{n}--\r\n"
    )
    .into_bytes()
}

/// Delivers `message` to alice's INBOX over LMTP; returns it as the server stores it.
fn deliver(server: &TernServer, message: &[u8]) -> Vec<u8> {
    let mut lmtp = Lmtp::connect(server.lmtp).unwrap();
    let r = lmtp
        .deliver("sender@example.org", &["alice@localhost"], message)
        .unwrap();
    assert!(r[0].starts_with("250"), "{r:?}");
    [b"Return-Path: <sender@example.org>\r\n".as_slice(), message].concat()
}

/// A server where alice's INBOX holds [`multipart`] messages 1, 2, ... mentioning
/// `words` in turn; with the messages as stored.
fn server_with_mail(root: &std::path::Path, words: &[&str]) -> (TernServer, Vec<Vec<u8>>) {
    let server = server_with_alice(root);
    let stored = (1..)
        .zip(words)
        .map(|(n, word)| deliver(&server, &multipart(n, word)))
        .collect();
    (server, stored)
}

/// The names LIST "" "*" gives, in its order.
fn listed(s: &mut Session) -> Vec<String> {
    let names = s.list(None, Some("*")).unwrap();
    names.iter().map(|n| n.name().to_owned()).collect()
}

/// The flags of a FETCH response, without \Recent (which only says which session
/// saw the message first).
fn flags_of(fetch: &::imap::types::Fetch<'_>) -> BTreeSet<String> {
    fetch
        .flags()
        .iter()
        .filter(|f| **f != Flag::Recent)
        .map(|f| f.to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn imap_crate_reads_delivered_mail_whole_and_in_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, stored) = server_with_mail(tmp.path(), &["quokka", "wombat", "quokka"]);

    let mut s = login(server.imap, "alice");
    let caps = s.capabilities().unwrap();
    for cap in [
        "IMAP4rev1",
        "IDLE",
        "MOVE",
        "UIDPLUS",
        "CONDSTORE",
        "QRESYNC",
        "SORT",
    ] {
        assert!(caps.has_str(cap), "{cap} not advertised");
    }
    let inbox = s.select("INBOX").unwrap();
    assert_eq!(inbox.exists, 3);
    assert_eq!(inbox.uid_next, Some(4));
    assert!(inbox.uid_validity.is_some());
    assert!(!inbox.is_read_only);

    let fetches = s
        .fetch(
            "1:*",
            "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[])",
        )
        .unwrap();
    assert_eq!(fetches.len(), 3);
    for (i, f) in fetches.iter().enumerate() {
        let n = i as u32 + 1;
        assert_eq!(f.message, n);
        assert_eq!(f.uid, Some(n));
        assert_eq!(
            f.body(),
            Some(stored[i].as_slice()),
            "message {n} byte for byte"
        );
        assert_eq!(f.size, Some(stored[i].len() as u32));
        assert!(f.internal_date().is_some());
        // PEEK: nothing was marked \Seen.
        assert!(!f.flags().contains(&Flag::Seen));
        let env = f.envelope().expect("ENVELOPE");
        assert_eq!(
            env.subject.as_deref(),
            Some(format!("crate test {n}").as_bytes())
        );
        assert_eq!(
            env.message_id.as_deref(),
            Some(format!("<crate-{n}@example.org>").as_bytes())
        );
        let from = &env.from.as_ref().expect("From")[0];
        assert_eq!(from.mailbox.as_deref(), Some(format!("s{n}").as_bytes()));
        assert_eq!(from.host.as_deref(), Some(b"example.org".as_slice()));
        assert_eq!(env.to.as_ref().map(Vec::len), Some(2));
        match f.bodystructure().expect("BODYSTRUCTURE") {
            imap_proto::BodyStructure::Multipart { common, bodies, .. } => {
                assert!(common.ty.subtype.eq_ignore_ascii_case("mixed"));
                assert_eq!(bodies.len(), 2);
            }
            other => panic!("message {n}: not multipart: {other:?}"),
        }
    }

    // One part, the header alone, and the first bytes: what a reader shows first.
    let parts = s
        .fetch("2", "(BODY.PEEK[1] BODY.PEEK[HEADER] BODY.PEEK[]<0.20>)")
        .unwrap();
    let f = parts.iter().next().unwrap();
    let path = imap_proto::SectionPath::Part(vec![1], None);
    assert_eq!(f.section(&path), Some(b"Hello 2, wombat.".as_slice()));
    let header = f.header().unwrap();
    assert!(header.starts_with(b"Return-Path: <sender@example.org>\r\n"));
    assert!(header.ends_with(b"\r\n\r\n"));
    assert!(stored[1].starts_with(header));

    // A FETCH of BODY[] (not PEEK) marks the message \Seen, and says so.
    let seen = s.fetch("3", "BODY[TEXT]").unwrap();
    assert!(seen.iter().next().unwrap().flags().contains(&Flag::Seen));

    let found: BTreeSet<u32> = s.search("TEXT quokka").unwrap().into_iter().collect();
    assert_eq!(found, BTreeSet::from([1, 3]));
    let unseen: BTreeSet<u32> = s.uid_search("UNSEEN").unwrap().into_iter().collect();
    assert_eq!(unseen, BTreeSet::from([1, 2]));
    let from2: BTreeSet<u32> = s
        .search("FROM s2@example.org")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(from2, BTreeSet::from([2]));
    use ::imap::extensions::sort::{SortCharset, SortCriterion};
    let newest_first = s
        .sort(
            &[SortCriterion::Reverse(&SortCriterion::Date)],
            SortCharset::Utf8,
            "ALL",
        )
        .unwrap();
    assert_eq!(newest_first, vec![3, 2, 1]);
    s.logout().unwrap();
}

#[test]
fn imap_crate_flags_copies_moves_appends_and_expunges() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = server_with_mail(tmp.path(), &["flagged"; 4]);
    let mut s = login(server.imap, "alice");
    s.create("Projects").unwrap();
    s.create("Archive/2025").unwrap();
    s.subscribe("Projects").unwrap();
    let names: BTreeSet<String> = listed(&mut s).into_iter().collect();
    for want in ["INBOX", "Projects", "Archive/2025"] {
        assert!(names.contains(want), "{want} not in {names:?}");
    }
    let subscribed: Vec<String> = s
        .lsub(None, Some("*"))
        .unwrap()
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    assert!(
        subscribed.contains(&"Projects".to_owned()),
        "{subscribed:?}"
    );

    s.select("INBOX").unwrap();
    let changed = s.store("1:2", "+FLAGS (\\Flagged $Work)").unwrap();
    assert_eq!(changed.len(), 2);
    for f in changed.iter() {
        assert_eq!(flags_of(f), set(&["\\Flagged", "$Work"]));
    }
    assert_eq!(s.uid_store("3", "+FLAGS.SILENT (\\Seen)").unwrap().len(), 0);
    let now: Vec<BTreeSet<String>> = s
        .fetch("1:4", "FLAGS")
        .unwrap()
        .iter()
        .map(flags_of)
        .collect();
    assert_eq!(
        now,
        vec![
            set(&["\\Flagged", "$Work"]),
            set(&["\\Flagged", "$Work"]),
            set(&["\\Seen"]),
            set(&[]),
        ]
    );

    // COPY keeps the flags; MOVE takes the message out of INBOX.
    s.copy("1:2", "Projects").unwrap();
    s.uid_mv("4", "Archive/2025").unwrap();
    let status = s.status("Projects", "(MESSAGES UNSEEN UIDNEXT)").unwrap();
    assert_eq!(
        (status.exists, status.unseen, status.uid_next),
        (2, Some(2), Some(3))
    );
    assert_eq!(s.status("Archive/2025", "(MESSAGES)").unwrap().exists, 1);
    assert_eq!(s.select("INBOX").unwrap().exists, 3);
    let copied = s.examine("Projects").unwrap();
    assert_eq!(copied.exists, 2);
    let copied_flags: Vec<BTreeSet<String>> = s
        .fetch("1:*", "FLAGS")
        .unwrap()
        .iter()
        .map(flags_of)
        .collect();
    assert!(copied_flags
        .iter()
        .all(|f| f.contains("\\Flagged") && f.contains("$Work")));

    // APPEND with flags and a date; UIDPLUS tells the new UID.
    let draft = b"From: alice@example.org\r\nSubject: draft\r\n\r\nNot sent yet.\r\n";
    let date = {
        use chrono::TimeZone;
        chrono::FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2020, 1, 2, 3, 4, 5)
            .unwrap()
    };
    let appended = s
        .append("Projects", draft)
        .flag(Flag::Draft)
        .flag(Flag::Seen)
        .internal_date(date)
        .finish()
        .unwrap();
    let uid = appended.uids.expect("APPENDUID")[0].clone();
    let uid = match uid {
        imap_proto::UidSetMember::Uid(u) => u,
        other => panic!("{other:?}"),
    };
    assert_eq!(uid, 3);
    s.select("Projects").unwrap();
    let back = s
        .uid_fetch(uid.to_string(), "(FLAGS INTERNALDATE BODY.PEEK[])")
        .unwrap();
    let f = back.iter().next().unwrap();
    assert_eq!(f.body(), Some(draft.as_slice()));
    assert_eq!(f.internal_date(), Some(date));
    assert_eq!(flags_of(f), set(&["\\Draft", "\\Seen"]));

    // EXPUNGE removes what is \Deleted and names it; UID EXPUNGE only the UIDs given.
    s.store("1", "+FLAGS.SILENT (\\Deleted)").unwrap();
    let gone = s.expunge().unwrap();
    assert_eq!(gone.seqs().collect::<Vec<_>>(), vec![1]);
    s.uid_store("2:3", "+FLAGS.SILENT (\\Deleted)").unwrap();
    let gone = s.uid_expunge("3").unwrap();
    assert_eq!(gone.seqs().collect::<Vec<_>>(), vec![2]);
    let left = s.uid_search("ALL").unwrap();
    assert_eq!(left.into_iter().collect::<Vec<_>>(), vec![2]);
    s.close().unwrap();

    s.rename("Archive/2025", "Old").unwrap();
    assert_eq!(s.status("Old", "(MESSAGES)").unwrap().exists, 1);
    s.delete("Projects").unwrap();
    assert!(s.select("Projects").is_err());
    s.logout().unwrap();
}

#[test]
fn imap_crate_idle_hears_a_delivery_and_qresync_tells_what_vanished() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = server_with_mail(tmp.path(), &["idle"; 3]);
    let mut s = login(server.imap, "alice");
    s.run_command_and_check_ok("ENABLE QRESYNC").unwrap();
    let inbox = s.select("INBOX").unwrap();
    assert_eq!(inbox.exists, 3);
    let modseq = inbox.highest_mod_seq.expect("HIGHESTMODSEQ under QRESYNC");

    // Another session expunges message 2 and flags message 3.
    let mut other = login(server.imap, "alice");
    other.select("INBOX").unwrap();
    other.uid_store("3", "+FLAGS.SILENT (\\Answered)").unwrap();
    other.uid_store("2", "+FLAGS.SILENT (\\Deleted)").unwrap();
    other.expunge().unwrap();

    // What changed since the modseq this session saw: 3's flags, and 2 gone.
    let changed = s
        .uid_fetch("1:*", format!("(FLAGS) (CHANGEDSINCE {modseq} VANISHED)"))
        .unwrap();
    let by_uid: Vec<(u32, BTreeSet<String>)> = changed
        .iter()
        .map(|f| (f.uid.expect("UID under QRESYNC"), flags_of(f)))
        .collect();
    assert!(by_uid.contains(&(3, set(&["\\Answered"]))), "{by_uid:?}");
    assert!(by_uid.iter().all(|(u, _)| *u != 1), "{by_uid:?}");
    let vanished: BTreeSet<u32> = s
        .take_all_unsolicited()
        .flat_map(|r| match r {
            UnsolicitedResponse::Vanished { uids, .. } => {
                uids.into_iter().flatten().collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(vanished, BTreeSet::from([2]));

    // IDLE: a delivery while waiting wakes the session with the new count.
    let lmtp = server.lmtp;
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let mut l = Lmtp::connect(lmtp).unwrap();
        let r = l
            .deliver(
                "sender@example.org",
                &["alice@localhost"],
                &multipart(4, "woken"),
            )
            .unwrap();
        assert!(r[0].starts_with("250"), "{r:?}");
    });
    let mut heard = Vec::new();
    let outcome = s
        .idle()
        .timeout(Duration::from_secs(20))
        .keepalive(false)
        .wait_while(|r| {
            heard.push(format!("{r:?}"));
            !matches!(r, UnsolicitedResponse::Exists(_))
        })
        .unwrap();
    sender.join().unwrap();
    assert!(
        matches!(
            outcome,
            ::imap::extensions::idle::WaitOutcome::MailboxChanged
        ),
        "{outcome:?} after {heard:?}"
    );
    assert!(heard.iter().any(|h| h == "Exists(3)"), "{heard:?}");
    let found: Vec<u32> = s.search("TEXT woken").unwrap().into_iter().collect();
    assert_eq!(found, vec![3]);

    // EXPUNGE under QRESYNC names the UIDs and the mailbox's new modseq (RFC 7162
    // 3.2.7), which the crate hands back.
    s.uid_store("1", "+FLAGS.SILENT (\\Deleted)").unwrap();
    let gone = s.expunge().unwrap();
    assert_eq!(gone.uids().collect::<Vec<_>>(), vec![1]);
    let after = other
        .status("INBOX", "(HIGHESTMODSEQ)")
        .unwrap()
        .highest_mod_seq;
    assert!(after.is_some_and(|m| m > modseq), "{after:?}");
    assert_eq!(gone.mod_seq, after);
    other.logout().unwrap();
    s.logout().unwrap();
}

#[test]
fn imap_crate_shares_a_folder_and_reads_quota_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_alice(tmp.path());
    add_user(&server, "bob");
    let mut alice = login(server.imap, "alice");
    alice.create("Team").unwrap();
    alice
        .append("Team", b"Subject: shared\r\n\r\nfor bob\r\n")
        .finish()
        .unwrap();
    let lr = "lr".try_into().unwrap();
    alice
        .set_acl("Team", "bob", &lr, ::imap::types::AclModifyMode::Replace)
        .unwrap();
    let acl = alice.get_acl("Team").unwrap();
    let bob_entry = acl
        .parsed()
        .acls()
        .iter()
        .find(|e| e.identifier == "bob")
        .expect("bob in the ACL")
        .rights
        .clone();
    assert!(bob_entry.contains('l') && bob_entry.contains('r'));
    assert!(!bob_entry.contains('i'));
    assert!(alice
        .my_rights("Team")
        .unwrap()
        .parsed()
        .rights()
        .contains('a'));

    // bob finds the folder under alice's name, may read it and may not change it.
    let mut bob = login(server.imap, "bob");
    let names = listed(&mut bob);
    let team = names
        .iter()
        .find(|n| n.ends_with("alice/Team"))
        .unwrap_or_else(|| panic!("alice's Team not listed for bob: {names:?}"))
        .clone();
    let rights = bob.my_rights(&team).unwrap();
    assert!(rights.parsed().rights().contains('r'));
    assert!(!rights.parsed().rights().contains('i'));
    bob.examine(&team).unwrap();
    let body = bob.fetch("1", "BODY.PEEK[TEXT]").unwrap();
    assert_eq!(
        body.iter().next().unwrap().text(),
        Some(b"for bob\r\n".as_slice())
    );
    assert!(bob
        .append(&team, b"Subject: x\r\n\r\ny\r\n")
        .finish()
        .is_err());

    // Quota: INBOX has a root, and GETQUOTA of it answers.
    let root = alice.get_quota_root("INBOX").unwrap();
    let names: Vec<String> = root.quota_root_names().map(str::to_owned).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(alice.get_quota(&names[0]).is_ok());

    // METADATA: a private annotation is read back, and another user cannot see it.
    alice
        .run_command_and_check_ok("SETMETADATA Team (/private/comment \"for the team\")")
        .unwrap();
    let (entries, _) = alice
        .get_metadata(
            Some("Team"),
            &["/private/comment"],
            ::imap::extensions::metadata::MetadataDepth::Zero,
            None,
        )
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].value.as_deref(), Some("for the team"));
    let (entries, _) = bob
        .get_metadata(
            Some(&team),
            &["/private/comment"],
            ::imap::extensions::metadata::MetadataDepth::Zero,
            None,
        )
        .unwrap();
    assert!(entries.iter().all(|e| e.value.is_none()), "{entries:?}");

    // Revoked, the folder is gone from bob's list.
    alice.delete_acl("Team", "bob").unwrap();
    let names = listed(&mut bob);
    assert!(!names.contains(&team), "{names:?}");
    alice.logout().unwrap();
    bob.logout().unwrap();
}

#[test]
fn imap_crate_gets_clear_errors_and_keeps_its_session() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = server_with_mail(tmp.path(), &["grüße"]);
    let mut s = login(server.imap, "alice");
    s.select("INBOX").unwrap();
    // The crate sends search text bare; 8-bit text must be quoted or a literal.
    match s.search("CHARSET UTF-8 TEXT grüße") {
        Err(::imap::Error::Bad(b)) => {
            assert!(
                b.information.contains("quoted string or a literal"),
                "{b:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let found: Vec<u32> = s
        .search("CHARSET UTF-8 TEXT \"grüße\"")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(found, vec![1]);
    match s.select("No/Such/Folder") {
        Err(::imap::Error::No(_)) => {}
        other => panic!("{other:?}"),
    }
    match s.fetch("7", "FLAGS") {
        Err(::imap::Error::Bad(_) | ::imap::Error::No(_)) => {}
        Ok(f) => assert_eq!(f.len(), 0),
        Err(other) => panic!("{other:?}"),
    }
    // A wrong password is a NO, and the connection can try again.
    let tcp = TcpStream::connect(server.imap).unwrap();
    let mut client = ::imap::Client::new(tcp);
    client.read_greeting().unwrap();
    let Err((err, client)) = client.login("alice", "wrong") else {
        panic!("a wrong password was accepted");
    };
    assert!(matches!(err, ::imap::Error::No(_)), "{err:?}");
    let mut again = client.login("alice", PASSWORD).map_err(|e| e.0).unwrap();
    again.noop().unwrap();
    s.noop().unwrap();
    s.logout().unwrap();
    again.logout().unwrap();
}
