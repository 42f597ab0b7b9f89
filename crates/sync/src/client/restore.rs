//! Fetching good copies of messages from the replica, for a master whose own copies
//! are missing or damaged (`tern check --repair`): the MESSAGE command, pipelined.

use std::collections::HashMap;

use tern_store::Guid;

use super::conn::Connection;
use super::{ClientConfig, ClientError};
use crate::protocol::{MessageData, Request};

/// Most messages asked for before their answers are read, so memory stays bounded.
const WINDOW: usize = 64;

/// Asks the replica for each message of `wanted` (GUID and size) and returns those it
/// holds whose content hashes to their GUID; what it lacks (`NO [NOBLOB]`) or sends
/// wrong is left out. Fails when the replica cannot be reached or speaks wrongly.
pub async fn fetch_messages(
    config: &ClientConfig,
    wanted: &[(Guid, u64)],
) -> Result<HashMap<Guid, Vec<u8>>, ClientError> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let mut conn = Connection::open(config).await?;
    for window in wanted.chunks(WINDOW) {
        for (guid, size) in window {
            conn.queue(&Request::Message {
                guid: *guid,
                size: *size,
            })
            .await?;
        }
        for (guid, size) in window {
            let reply = conn.reply().await?;
            let data = reply
                .untagged
                .into_iter()
                .find(|(k, _)| k == "MESSAGE")
                .and_then(|(_, args)| MessageData::parse(args).ok());
            if let Some(m) = data {
                if m.guid == *guid && m.data.len() as u64 == *size && Guid::of(&m.data) == *guid {
                    out.insert(*guid, m.data);
                }
            }
        }
    }
    let _ = conn.logout().await;
    Ok(out)
}
