//! Every request and reply of the protocol through the wire and back: what the client
//! encodes is what the server parses, and what the server encodes the client parses.

use tern_store::{Flags, Guid, MailboxState, MailboxUpdate, Quota, RecordsDigest, UniqueId};

use super::*;
use crate::wire::{parse_command, parse_response, Limits, LineReader, Response};

fn read_line(bytes: &[u8]) -> crate::wire::Line {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = LineReader::new(bytes, Limits::default());
        reader.read_line(&mut |_| true).await.unwrap()
    })
}

fn encoded(r: &Request) -> Vec<u8> {
    let mut enc = Encoder::new();
    r.encode(&mut enc, "t7");
    enc.into_bytes()
}

/// Encodes, parses as the server does, encodes again: the same bytes.
fn round_trip(r: &Request) -> Request {
    let first = encoded(r);
    let back = Request::parse(parse_command(&read_line(&first)).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&first)));
    assert_eq!(back.verb(), r.verb());
    assert_eq!(
        String::from_utf8_lossy(&encoded(&back)),
        String::from_utf8_lossy(&first),
        "re-encoding differs"
    );
    back
}

fn awkward_names() -> Vec<String> {
    vec![
        "INBOX".into(),
        "Lists/rust äö".into(),
        "with \"quotes\" and \\ back".into(),
        "1234".into(),
        "NIL".into(),
        "(paren".into(),
    ]
}

#[test]
fn every_request_survives_the_wire() {
    let id = UniqueId::random();
    let guid = Guid::of(b"hello");
    let requests = vec![
        Request::Mailboxes {
            user: "alice".into(),
            selection: Selection::All,
            same: None,
        },
        Request::Mailboxes {
            user: "bob smith".into(),
            selection: Selection::Some {
                ids: vec![id.clone(), UniqueId::random()],
                names: awkward_names(),
            },
            same: None,
        },
        Request::Mailboxes {
            user: "carol".into(),
            selection: Selection::Some {
                ids: vec![],
                names: vec![],
            },
            same: None,
        },
        Request::Mailboxes {
            user: "frank".into(),
            selection: Selection::All,
            same: Some("0123456789012345678901234567890123456789".into()),
        },
        Request::Reserve {
            mailboxes: vec![id.clone()],
            guids: vec![guid, Guid::of(b"other")],
        },
        Request::Reserve {
            mailboxes: vec![],
            guids: vec![],
        },
        Request::User(UserState {
            name: "dave".into(),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            is_admin: true,
            quota: Quota {
                storage: Some(1 << 30),
                messages: None,
            },
            subscriptions: awkward_names(),
            modseq: 0,
        }),
        Request::Unuser("erin o'neil".into()),
        Request::Update(Box::new(MailboxUpdate {
            user: "alice".into(),
            uniqueid: Some(id.clone()),
            expect: None,
            expect_digest: Some(RecordsDigest([0x12; 16])),
            state: MailboxState {
                name: "Lists/rust äö".into(),
                partition: "default".into(),
                uidvalidity: 7,
                last_uid: 0,
                highest_modseq: 1,
                keywords: vec!["$Label1".into(), "foo".into()],
                ..Default::default()
            },
            digest: Some(RecordsDigest::EMPTY),
            ..Default::default()
        })),
        Request::Rename {
            user: "alice".into(),
            uniqueid: id.clone(),
            name: "New name/with space".into(),
            partition: "archive".into(),
        },
        Request::Delete {
            user: "alice".into(),
            uniqueid: id.clone(),
        },
        Request::Records {
            user: "alice".into(),
            uniqueid: id.clone(),
            from: 1,
        },
        Request::Records {
            user: "alice".into(),
            uniqueid: id.clone(),
            from: 10_001,
        },
        Request::Users,
        Request::Message { guid, size: 5 },
    ];
    for r in &requests {
        round_trip(r);
    }
    // Fields that re-encoding alone would not show.
    let Request::Records { from, .. } = round_trip(&requests[12]) else {
        unreachable!()
    };
    assert_eq!(from, 10_001);
    let Request::Mailboxes {
        selection: Selection::Some { names, .. },
        ..
    } = round_trip(&requests[1])
    else {
        unreachable!()
    };
    assert_eq!(names, awkward_names());
    let Request::Mailboxes { same, .. } = round_trip(&requests[3]) else {
        unreachable!()
    };
    assert_eq!(
        same.as_deref(),
        Some("0123456789012345678901234567890123456789")
    );
}

/// Encodes an untagged reply, reads it as the client does: (keyword, args).
fn untagged(enc: Encoder) -> (String, Vec<Token>) {
    let bytes = enc.into_bytes();
    match read_line(&bytes).into_response().unwrap() {
        Response::Untagged { keyword, args } => (keyword, args),
        other => panic!("not untagged: {other:?}"),
    }
}

#[test]
fn every_reply_survives_the_wire() {
    for user in [
        ReplicaUser {
            name: "alice".into(),
            digest: "0123456789".into(),
            modseq: 42,
            admin: None,
        },
        ReplicaUser {
            name: "bob smith".into(),
            digest: "ab".repeat(20),
            modseq: 0,
            admin: Some(true),
        },
    ] {
        let mut enc = Encoder::new();
        user.encode(&mut enc);
        let (keyword, args) = untagged(enc);
        assert_eq!(keyword, "USER");
        assert_eq!(ReplicaUser::parse(&args).unwrap(), user);
    }
    for reserved in [
        Reserved(vec![]),
        Reserved(vec![Guid::of(b"a"), Guid::of(b"b")]),
    ] {
        let mut enc = Encoder::new();
        reserved.encode(&mut enc);
        let (keyword, args) = untagged(enc);
        assert_eq!(keyword, "RESERVE");
        assert_eq!(Reserved::parse(&args).unwrap(), reserved);
    }
    let data: Vec<u8> = (0..=255u8).chain(b"\r\n.\r\n".iter().copied()).collect();
    let mut enc = Encoder::new();
    MessageData::encode(&Guid::of(&data), &data, &mut enc);
    let (keyword, args) = untagged(enc);
    assert_eq!(keyword, "MESSAGE");
    assert_eq!(
        MessageData::parse(args).unwrap(),
        MessageData {
            guid: Guid::of(&data),
            data
        }
    );
    let record = tern_store::Record {
        uid: 9,
        modseq: 50,
        flags: Flags::parse_list("\\Seen $Label").unwrap(),
        internaldate: -5,
        size: 5,
        guid: Guid::of(b"hello"),
        expunged_modseq: Some(51),
        pop3_uidl: None,
        saved_at: None,
    };
    let mut enc = Encoder::new();
    ReplicaRecord::encode(&mut enc, &record, true);
    let (_, args) = untagged(enc);
    let back = ReplicaRecord::parse(&args).unwrap();
    assert_eq!(
        (
            back.uid,
            back.modseq,
            back.internaldate,
            back.flags,
            back.expunged,
            back.blob_held
        ),
        (9, 50, -5, record.flags.clone(), Some(51), true)
    );
    assert_eq!(back.pop3_uidl, None);
    // A stored POP3 UIDL travels with the record; one RFC 1939 forbids is refused.
    let with_uidl = tern_store::Record {
        pop3_uidl: Some("UID4711-1136543321".into()),
        ..record.clone()
    };
    let mut enc = Encoder::new();
    ReplicaRecord::encode(&mut enc, &with_uidl, false);
    let (_, args) = untagged(enc);
    let back = ReplicaRecord::parse(&args).unwrap();
    assert_eq!(back.pop3_uidl.as_deref(), Some("UID4711-1136543321"));
    assert!(!back.blob_held);
    for bad in [
        "9 50 -5 5 {g} () 51 HAVE UIDL \"has space\"",
        "9 50 -5 5 {g} () 51 HAVE UIDL",
        "9 50 -5 5 {g} () 51 HAVE FROB \"x\"",
    ] {
        let line = format!(
            "* RECORD {}\r\n",
            bad.replace("{g}", &Guid::of(b"hello").to_hex())
        );
        let mut enc = Encoder::new();
        enc.raw(&line);
        let (_, args) = untagged(enc);
        assert!(ReplicaRecord::parse(&args).is_err(), "{bad}");
    }
    for table in [
        vec![],
        vec!["$Label1".to_owned(), "foo".into(), "with space".into()],
    ] {
        let mut enc = Encoder::new();
        ReplicaKeywords(table.clone()).encode(&mut enc);
        let (keyword, args) = untagged(enc);
        assert_eq!(keyword, "KEYWORDS");
        assert_eq!(
            ReplicaKeywords::parse(&args).unwrap(),
            ReplicaKeywords(table)
        );
    }
}

#[test]
fn every_response_code_survives_the_wire() {
    let codes = vec![
        Code::Mismatch {
            highest_modseq: 7,
            last_uid: 3,
            digest: RecordsDigest([0x11; 16]),
        },
        Code::Mismatch {
            highest_modseq: 0,
            last_uid: 0,
            digest: RecordsDigest::EMPTY,
        },
        Code::Conflict(0),
        Code::Conflict(12),
        Code::Digest("1234567890".into()),
        Code::NoBlob(Guid::of(b"x")),
        Code::IoError,
        Code::NoUser,
        Code::NonExistent,
        Code::More(10_001),
        Code::Same,
        Code::TooBig,
        Code::Refused,
        Code::AuthenticationFailed,
        Code::AuthenticationRequired,
        Code::Other("SOMETHINGNEW".into()),
    ];
    for code in codes {
        let mut enc = Encoder::new();
        enc.raw("t1 NO ");
        code.encode(&mut enc);
        enc.raw(" text").crlf();
        let bytes = enc.into_bytes();
        let Response::Tagged {
            code: Some((name, args)),
            ..
        } = parse_response(&read_line(&bytes)).unwrap()
        else {
            panic!("no code in {}", String::from_utf8_lossy(&bytes));
        };
        assert_eq!(Code::parse(&name, &args), code);
    }
}
