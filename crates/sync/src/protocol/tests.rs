//! Round trips of typed commands through the wire encoding.

use super::*;
use crate::wire::{parse_command, Limits, LineReader};
use tern_store::{Flags, MailboxState, ReplicaAppend};

fn command(text: &[u8]) -> Command {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = LineReader::new(text, Limits::default());
        let line = reader.read_line(&mut |_| true).await.unwrap();
        parse_command(&line).unwrap()
    })
}

fn sample() -> MailboxUpdate {
    MailboxUpdate {
        user: "alice".into(),
        uniqueid: Some(UniqueId::random()),
        expect: Some(41),
        state: MailboxState {
            name: "Lists/rust äö".into(),
            partition: "default".into(),
            uidvalidity: 1_700_000_000,
            last_uid: 9,
            highest_modseq: 50,
            acl: "alice\tlrswipkxtecda".into(),
            annotations: vec![("/vendor/tern/expire".into(), "30".into())],
            special_use: Some("\\Archive".into()),
            ..Default::default()
        },
        reset: true,
        appends: vec![ReplicaAppend {
            uid: 9,
            modseq: 50,
            internaldate: -5,
            size: 5,
            guid: Guid::of(b"hello"),
            flags: Flags::parse_list("\\Seen $Label").unwrap(),
            data: Some(b"hello".to_vec()),
            pop3_uidl: None,
        }],
        stores: vec![(
            vec![1, 2, 3, 7],
            44,
            Flags::parse_list("\\Flagged").unwrap(),
        )],
        expunges: vec![(vec![4, 5], 45)],
        digest: Some("ab".repeat(16).parse().unwrap()),
        expect_digest: Some("cd".repeat(16).parse().unwrap()),
    }
}

#[test]
fn update_survives_encoding() {
    let u = sample();
    let mut enc = Encoder::new();
    encode_update(&mut enc, "t1", &u);
    let Request::Update(back) = Request::parse(command(enc.bytes())).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(back.state, u.state);
    assert_eq!(
        (back.expect, back.reset, back.digest, back.expect_digest),
        (u.expect, u.reset, u.digest, u.expect_digest)
    );
    assert_eq!(back.appends, u.appends);
    assert_eq!(back.stores, u.stores);
    assert_eq!(back.expunges, u.expunges);
}

/// A stored POP3 UIDL travels as `UIDL string` after its APPEND's data; an APPEND
/// without one is byte for byte what it was before UIDLs existed; a UIDL RFC 1939
/// forbids (or a dangling keyword) is refused, not stored.
#[test]
fn appends_carry_their_pop3_uidl() {
    let mut u = sample();
    let mut second = u.appends[0].clone();
    second.uid = 10;
    second.data = None;
    second.pop3_uidl = Some("UID4711-1136543321".into());
    u.appends.push(second);
    let mut enc = Encoder::new();
    encode_update(&mut enc, "t1", &u);
    let text = String::from_utf8_lossy(enc.bytes()).into_owned();
    assert_eq!(text.matches(" UIDL ").count(), 1, "{text}");
    let Request::Update(back) = Request::parse(command(enc.bytes())).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(back.appends, u.appends);
    assert!(text.contains("NIL UIDL UID4711-1136543321 STORE"), "{text}");
    let bad = |tail: &str| text.replace("NIL UIDL UID4711-1136543321", &format!("NIL {tail}"));
    for tail in [
        "UIDL \"with space\"",
        "UIDL",
        &format!("UIDL \"{}\"", "x".repeat(71)),
    ] {
        let t = bad(tail);
        assert!(Request::parse(command(t.as_bytes())).is_err(), "{t}");
    }
}

#[test]
fn unknown_state_keys_are_ignored() {
    // A newer master may add keys; this version must skip them.
    let text = format!(
        "t UPDATE alice {} NIL (FUTURE (1 2 3) NAME INBOX PARTITION default UIDVALIDITY 7 LASTUID 0 HIGHESTMODSEQ 3 ALSONEW \"x\") ()\r\n",
        UniqueId::random()
    );
    let Request::Update(u) = Request::parse(command(text.as_bytes())).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(
        (
            u.state.name.as_str(),
            u.state.uidvalidity,
            u.state.highest_modseq
        ),
        ("INBOX", 7, 3)
    );
}

#[test]
fn missing_required_keys_and_bad_items_are_refused() {
    let id = UniqueId::random();
    for text in [
        format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default LASTUID 0 HIGHESTMODSEQ 3) ()\r\n"),
        format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default UIDVALIDITY 1 LASTUID 0 HIGHESTMODSEQ 3) (FROB 1)\r\n"),
        format!("t UPDATE alice {id} NIL (NAME INBOX PARTITION default UIDVALIDITY 1 LASTUID 0 HIGHESTMODSEQ 3) (STORE 5:x 3 ())\r\n"),
        "t UPDATE alice not-an-id NIL () ()\r\n".to_owned(),
        format!("t RESERVE () {}\r\n", "zz".repeat(20)),
    ] {
        assert!(Request::parse(command(text.as_bytes())).is_err(), "{text}");
    }
}

#[test]
fn user_state_survives_encoding() {
    let s = UserState {
        name: "bob".into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        is_admin: false,
        quota: Quota {
            storage: Some(1000),
            messages: None,
        },
        subscriptions: vec!["INBOX".into(), "Lists/rust".into()],
        modseq: 0,
    };
    let mut enc = Encoder::new();
    encode_user(&mut enc, "t2", &s);
    let Request::User(back) = Request::parse(command(enc.bytes())).unwrap() else {
        panic!("not a USER");
    };
    assert_eq!(back, s);
}

#[test]
fn a_digest_that_looks_like_a_number_survives_encoding() {
    let mut u = sample();
    u.digest = Some("12345678901234567890123456789012".parse().unwrap());
    let mut enc = Encoder::new();
    encode_update(&mut enc, "t1", &u);
    let Request::Update(back) = Request::parse(command(enc.bytes())).unwrap() else {
        panic!("not an UPDATE");
    };
    assert_eq!(back.digest, u.digest);
}

#[test]
fn a_digest_sent_as_a_number_is_refused_not_ignored() {
    // Read as "no digest", it would skip the very check it asks for.
    let u = sample();
    let mut enc = Encoder::new();
    encode_update(&mut enc, "t1", &u);
    let text = String::from_utf8(enc.into_bytes()).unwrap();
    let forged = text.replace(&"ab".repeat(16), "123");
    assert!(forged.contains("DIGEST 123"), "{forged}");
    let err = Request::parse(command(forged.as_bytes())).err().unwrap();
    assert!(err.contains("DIGEST"), "{err}");
}
