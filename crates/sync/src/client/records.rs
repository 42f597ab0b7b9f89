//! Reading a replica's records of one mailbox, in the bounded pieces RECORDS answers
//! with (`[MORE uid]`), so that a mailbox of millions of records never makes one giant
//! reply; and of several mailboxes at once ([`replica_records_many`]), each round
//! pipelining the next piece of every mailbox not yet complete, so the round trips are
//! those of the largest mailbox, not one per mailbox.

use tern_store::{RecordsDigest, Uid, UniqueId};

use super::conn::Connection;
use super::ClientError;
use crate::protocol::{Code, ReplicaKeywords, ReplicaRecord, Request};

/// Every record of the replica's live mailbox `uniqueid` of `user`, in UID order, and
/// its keyword table. An error when the replica refuses (no such mailbox) or answers
/// out of order.
pub(crate) async fn replica_records(
    conn: &mut Connection,
    user: &str,
    uniqueid: &UniqueId,
) -> Result<ReplicaRecords, ClientError> {
    let mut out = ReplicaRecords::default();
    let mut from = 1;
    loop {
        conn.queue(&Request::Records {
            user: user.to_owned(),
            uniqueid: uniqueid.clone(),
            from,
        })
        .await?;
        let reply = conn.reply().await?;
        if !reply.ok() {
            return Err(ClientError::Protocol(format!(
                "RECORDS: {}",
                reply.describe()
            )));
        }
        for (keyword, args) in &reply.untagged {
            match keyword.as_str() {
                "RECORD" => out
                    .records
                    .push(ReplicaRecord::parse(args).map_err(ClientError::Protocol)?),
                "KEYWORDS" => {
                    out.keywords = ReplicaKeywords::parse(args)
                        .map_err(ClientError::Protocol)?
                        .0
                }
                _ => {}
            }
        }
        match reply.code() {
            // A next piece that does not move forward would loop for ever.
            Some(Code::More(next))
                if next > from && out.records.last().is_some_and(|r| r.uid < next) =>
            {
                from = next
            }
            Some(Code::More(next)) => {
                return Err(ClientError::Protocol(format!(
                    "RECORDS: [MORE {next}] does not move past UID {from}"
                )))
            }
            Some(Code::Digest(hex)) => {
                out.digest = hex.parse().ok();
                return Ok(out);
            }
            _ => return Ok(out),
        }
    }
}

/// A mailbox's records as the replica reported them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplicaRecords {
    /// Every record, in ascending UID order.
    pub records: Vec<ReplicaRecord>,
    /// The records digest the replica sent with its last piece (`None` from a replica
    /// that sent none). Each piece is read in its own snapshot: only when the mailbox
    /// did not change meanwhile does it describe exactly `records`.
    pub digest: Option<RecordsDigest>,
    /// The mailbox's keyword table (`* KEYWORDS`, with the first piece); empty from a
    /// replica that sent none.
    pub keywords: Vec<String>,
}

/// The records of each of `ids` (mailboxes of `user`), in the same order, read in
/// pipelined rounds. `Err` in an entry is the replica's refusal for that mailbox
/// (`NO [NONEXISTENT] ...`), which leaves the others unaffected; the error of the whole
/// call is the session's, or an answer out of order.
pub(crate) async fn replica_records_many(
    conn: &mut Connection,
    user: &str,
    ids: &[UniqueId],
) -> Result<Vec<Result<ReplicaRecords, String>>, ClientError> {
    let mut out: Vec<Result<ReplicaRecords, String>> =
        ids.iter().map(|_| Ok(ReplicaRecords::default())).collect();
    // The next UID to ask for, per mailbox; `None` once complete or refused.
    let mut next: Vec<Option<Uid>> = ids.iter().map(|_| Some(1)).collect();
    loop {
        let mut asked = Vec::new();
        for (i, from) in next.iter().enumerate() {
            if let Some(from) = *from {
                conn.queue(&Request::Records {
                    user: user.to_owned(),
                    uniqueid: ids[i].clone(),
                    from,
                })
                .await?;
                asked.push((i, from));
            }
        }
        if asked.is_empty() {
            return Ok(out);
        }
        for (i, from) in asked {
            let reply = conn.reply().await?;
            next[i] = None;
            if !reply.ok() {
                out[i] = Err(reply.describe());
                continue;
            }
            let Ok(have) = &mut out[i] else { continue };
            for (keyword, args) in &reply.untagged {
                if keyword == "KEYWORDS" {
                    have.keywords = ReplicaKeywords::parse(args)
                        .map_err(ClientError::Protocol)?
                        .0;
                }
                if keyword == "RECORD" {
                    let r = ReplicaRecord::parse(args).map_err(ClientError::Protocol)?;
                    // Each piece starts at `from` and goes up: anything else would
                    // duplicate or reorder records.
                    if r.uid < from || have.records.last().is_some_and(|l| l.uid >= r.uid) {
                        return Err(ClientError::Protocol(format!(
                            "RECORDS from {from}: uid {} out of order",
                            r.uid
                        )));
                    }
                    have.records.push(r);
                }
            }
            match reply.code() {
                Some(Code::More(n)) if n > from => next[i] = Some(n),
                Some(Code::More(n)) => {
                    // Asking again from the same place would never end.
                    return Err(ClientError::Protocol(format!(
                        "RECORDS from {from}: [MORE {n}] does not move forward"
                    )));
                }
                Some(Code::Digest(hex)) => have.digest = hex.parse().ok(),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use crate::protocol::RECORDS_PER_ANSWER as MAX_RECORDS_PER_REPLY;
    use tern_store::{Flags, Guid, MailboxState, MailboxUpdate, ReplicaAppend, Store, StoreConfig};

    /// A replica holding `alice/Big` with `n` records (one shared blob, UID 3
    /// expunged), served on a loopback port; the client logs in as `repl`.
    async fn replica(n: u32) -> (tempfile::TempDir, Store, UniqueId, ClientConfig) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            StoreConfig::new(dir.path()),
            std::sync::Arc::new(tern_message::MessageIndexer),
        )
        .unwrap();
        store.create_user("repl", Some("pw"), true).unwrap();
        store.create_user("alice", Some("pw"), false).unwrap();
        let data = b"Subject: shared\r\n\r\nbody\r\n".to_vec();
        let guid = Guid::of(&data);
        let id = UniqueId::random();
        let appends = (1..=n)
            .map(|uid| ReplicaAppend {
                uid,
                modseq: u64::from(uid),
                internaldate: 1_700_000_000,
                size: data.len() as u64,
                guid,
                flags: Flags::parse_list(if uid % 2 == 0 { "\\Seen" } else { "" }).unwrap(),
                // The first item carries the blob; the others name it.
                data: (uid == 1).then(|| data.clone()),
                pop3_uidl: None,
            })
            .collect();
        let update = MailboxUpdate {
            user: "alice".into(),
            uniqueid: Some(id.clone()),
            expect: None,
            state: MailboxState {
                name: "Big".into(),
                partition: tern_store::DEFAULT_PARTITION.into(),
                uidvalidity: 7,
                last_uid: n,
                highest_modseq: u64::from(n) + 1,
                ..Default::default()
            },
            appends,
            expunges: vec![(vec![3], u64::from(n) + 1)],
            ..Default::default()
        };
        store.replica().apply_update(update).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let served = store.clone();
        tokio::spawn(async move {
            crate::serve_tcp(listener, served, Default::default(), stop_rx).await;
            drop(stop_tx);
        });
        let config = ClientConfig {
            replica: addr.to_string(),
            user: "repl".into(),
            password: "pw".into(),
            tls: None,
            require_tls: false,
            allow_plaintext: false,
        };
        (dir, store, id, config)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_come_in_ranges_and_the_helper_reads_them_all() {
        let n = (MAX_RECORDS_PER_REPLY + 5) as u32;
        let (_dir, store, id, config) = replica(n).await;
        let mut conn = Connection::open(&config).await.unwrap();

        // One RECORDS: the first range, and where to go on.
        let ask = |from| Request::Records {
            user: "alice".into(),
            uniqueid: id.clone(),
            from,
        };
        conn.queue(&ask(1)).await.unwrap();
        let reply = conn.reply().await.unwrap();
        assert!(reply.ok(), "{}", reply.describe());
        let first = records_of(&reply);
        assert_eq!(first.len(), MAX_RECORDS_PER_REPLY);
        assert_eq!(
            first.iter().map(|r| r.uid).collect::<Vec<_>>(),
            (1..=MAX_RECORDS_PER_REPLY as u32).collect::<Vec<_>>()
        );
        assert_eq!(
            reply.code(),
            Some(Code::More(MAX_RECORDS_PER_REPLY as u32 + 1))
        );
        // Past the end: nothing, and the digest.
        let digest = store.mailbox("alice", "Big").unwrap().unwrap().digest;
        conn.queue(&ask(n + 1)).await.unwrap();
        let reply = conn.reply().await.unwrap();
        assert!(records_of(&reply).is_empty());
        assert_eq!(reply.code(), Some(Code::Digest(digest.to_string())));

        // The helper: every record once, in order, for several mailboxes at once; a
        // missing mailbox is refused alone.
        let missing = UniqueId::random();
        let all = replica_records_many(&mut conn, "alice", &[missing, id.clone(), id.clone()])
            .await
            .unwrap();
        assert!(
            matches!(&all[0], Err(e) if e.contains("NONEXISTENT")),
            "{:?}",
            all[0].as_ref().err()
        );
        let (_, mine) = store.all_records(&id).unwrap();
        for got in &all[1..] {
            let got = got.as_ref().unwrap();
            assert_eq!(got.digest, Some(digest));
            assert_eq!(got.records.len(), mine.len());
            for (t, r) in got.records.iter().zip(&mine) {
                let want = (r.uid, r.modseq, r.guid, &r.flags, r.expunged_modseq);
                assert_eq!((t.uid, t.modseq, t.guid, &t.flags, t.expunged), want);
                assert!(t.blob_held);
            }
        }
        assert_eq!(got_expunged(&all[1]), vec![3]);
        let one = replica_records(&mut conn, "alice", &id).await.unwrap();
        assert_eq!(one.records.len(), n as usize);
        assert!(one.digest.is_some());
        assert_eq!(one.digest, all[1].as_ref().ok().and_then(|r| r.digest));
        conn.logout().await;
    }

    fn records_of(reply: &crate::client::conn::Reply) -> Vec<ReplicaRecord> {
        reply
            .untagged
            .iter()
            .filter(|(k, _)| k == "RECORD")
            .map(|(_, a)| ReplicaRecord::parse(a).unwrap())
            .collect()
    }

    fn got_expunged(r: &Result<ReplicaRecords, String>) -> Vec<Uid> {
        r.as_ref()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.expunged.is_some())
            .map(|r| r.uid)
            .collect()
    }
}
