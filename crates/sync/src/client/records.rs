//! Reading a replica's records of one mailbox, in the bounded pieces RECORDS answers
//! with (`[MORE uid]`), so that a mailbox of millions of records never makes one giant
//! reply.

use tern_store::UniqueId;

use super::conn::Connection;
use super::ClientError;
use crate::protocol::{Code, ReplicaRecord, Request};

/// Every record of the replica's live mailbox `uniqueid` of `user`, in UID order.
/// An error when the replica refuses (no such mailbox) or answers out of order.
pub(crate) async fn replica_records(
    conn: &mut Connection,
    user: &str,
    uniqueid: &UniqueId,
) -> Result<Vec<ReplicaRecord>, ClientError> {
    let mut out: Vec<ReplicaRecord> = Vec::new();
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
            if keyword == "RECORD" {
                out.push(ReplicaRecord::parse(args).map_err(ClientError::Protocol)?);
            }
        }
        match reply.code() {
            // A next piece that does not move forward would loop for ever.
            Some(Code::More(next)) if next > from && out.last().is_some_and(|r| r.uid < next) => {
                from = next
            }
            Some(Code::More(next)) => {
                return Err(ClientError::Protocol(format!(
                    "RECORDS: [MORE {next}] does not move past UID {from}"
                )))
            }
            _ => return Ok(out),
        }
    }
}
