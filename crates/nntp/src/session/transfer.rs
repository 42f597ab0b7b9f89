//! POST and IHAVE: reading an article within the size limit and the process's memory
//! budget, checking it, and storing it in every group it names that the client may
//! post to, in one store transaction.

use tern_net::lines::{read_body, Body};
use tern_net::Input;
use tern_store::{StoreError, UniqueId};
use tokio::io::{AsyncWriteExt, BufReader};

use super::{Next, Session};
use crate::groups::{self, Lookup};
use crate::post::{prepare, Arrival};

/// How an article's storage ended.
enum Filed {
    Stored(String),
    Duplicate,
    NowhereToPost,
    Refused(String),
    Failed(StoreError),
}

impl Session {
    /// True when some group takes articles from this client.
    async fn may_post_somewhere(&self) -> Result<bool, StoreError> {
        let prefix = self.config.prefix.clone();
        self.blocking(move |store, actor| {
            Ok(groups::visible(store, actor, &prefix)?
                .iter()
                .any(|g| g.postable()))
        })
        .await
    }

    /// Refuses a transfer the client may not make at all: `480` before logging in,
    /// `440` (POST) or `502` (IHAVE) after. True when it answered.
    async fn refuse_unless_permitted(&mut self, post: bool) -> std::io::Result<bool> {
        match self.may_post_somewhere().await {
            Ok(true) => Ok(false),
            Ok(false) if !self.authenticated => {
                self.reply("480 Authentication required for posting")
                    .await?;
                Ok(true)
            }
            Ok(false) => {
                self.reply(if post {
                    "440 Posting not permitted"
                } else {
                    "502 Transfer permission denied"
                })
                .await?;
                Ok(true)
            }
            Err(e) => {
                self.store_failure(&e).await?;
                Ok(true)
            }
        }
    }

    /// Reads the article after a `340`/`335`; `Err(reply)` when it cannot be kept, or
    /// `Ok(None)` when the connection ended (nothing is stored).
    async fn read_article(
        &mut self,
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Option<Result<Vec<u8>, &'static str>>> {
        self.out.flush().await?;
        let mut reservation = self.budget.reservation();
        let read = tokio::time::timeout(
            self.config.data_timeout,
            read_body(reader, self.config.max_article_size, &mut reservation),
        )
        .await;
        Ok(match read {
            Err(_) => {
                self.reply("400 Article not received in time").await?;
                None
            }
            Ok(Err(_)) | Ok(Ok(Body::Eof)) => None,
            Ok(Ok(Body::Complete(raw))) => Some(Ok(raw)),
            Ok(Ok(Body::TooBig)) => Some(Err("article too large")),
            Ok(Ok(Body::OverBudget)) => Some(Err("server busy, try again later")),
        })
    }

    /// Stores a prepared article in the named groups the client may post to.
    async fn file(&mut self, raw: Vec<u8>, arrival_id: Option<String>) -> Filed {
        let arrival = match &arrival_id {
            Some(id) => Arrival::Ihave(id),
            None => Arrival::Post,
        };
        let now = crate::clock::now();
        let prepared = match prepare(&raw, arrival, &self.config.hostname, now) {
            Ok(p) => p,
            Err(why) => return Filed::Refused(why),
        };
        drop(raw);
        let prefix = self.config.prefix.clone();
        let stored = self
            .blocking(move |store, actor| {
                if store.message_id_known(&prepared.message_id)? {
                    return Ok(Filed::Duplicate);
                }
                let mut targets: Vec<UniqueId> = Vec::new();
                for name in &prepared.groups {
                    if let Lookup::Found(g) = groups::find(store, actor, &prefix, name)? {
                        if g.postable() {
                            targets.push(g.mailbox.uniqueid.clone());
                        }
                    } else if let Some(m) =
                        store.shared_mailbox(&groups::mailbox_name(&prefix, name))?
                    {
                        // Post-only groups (`p` without `r`) take articles too.
                        if actor.rights(&m).contains(tern_store::Rights::POST) {
                            targets.push(m.uniqueid);
                        }
                    }
                }
                if targets.is_empty() {
                    return Ok(Filed::NowhereToPost);
                }
                store.post(actor, &targets, now, &prepared.message)?;
                Ok(Filed::Stored(prepared.message_id))
            })
            .await;
        stored.unwrap_or_else(Filed::Failed)
    }

    pub(super) async fn post(&mut self, reader: &mut BufReader<Input>) -> std::io::Result<Next> {
        if self.refuse_unless_permitted(true).await? {
            return Ok(Next::Continue);
        }
        self.reply("340 Send article to be posted; end with <CR-LF>.<CR-LF>")
            .await?;
        let raw = match self.read_article(reader).await? {
            None => return Ok(Next::Close),
            Some(Err(why)) => {
                self.reply(&format!("441 Posting failed: {why}")).await?;
                return Ok(Next::Continue);
            }
            Some(Ok(raw)) => raw,
        };
        let reply = match self.file(raw, None).await {
            Filed::Stored(id) => format!("240 Article received {id}"),
            Filed::Duplicate => "441 Posting failed: duplicate message-id".to_owned(),
            Filed::NowhereToPost => {
                "441 Posting failed: no newsgroup named that you may post to".to_owned()
            }
            Filed::Refused(why) => format!("441 Posting failed: {why}"),
            Filed::Failed(e) => {
                tracing::warn!(error = %e, "nntp post failed");
                "441 Posting failed: the article could not be stored, try again later".to_owned()
            }
        };
        self.reply(&reply).await?;
        Ok(Next::Continue)
    }

    pub(super) async fn ihave(
        &mut self,
        id: String,
        reader: &mut BufReader<Input>,
    ) -> std::io::Result<Next> {
        if self.refuse_unless_permitted(false).await? {
            return Ok(Next::Continue);
        }
        let offered = id.clone();
        match self
            .blocking(move |store, _| store.message_id_known(&offered))
            .await
        {
            Ok(true) => {
                self.reply("435 Article not wanted").await?;
                return Ok(Next::Continue);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "nntp ihave lookup failed");
                self.reply("436 Transfer not possible; try again later")
                    .await?;
                return Ok(Next::Continue);
            }
        }
        self.reply("335 Send it; end with <CR-LF>.<CR-LF>").await?;
        let raw = match self.read_article(reader).await? {
            None => return Ok(Next::Close),
            Some(Err("article too large")) => {
                self.reply("437 Transfer rejected: article too large")
                    .await?;
                return Ok(Next::Continue);
            }
            Some(Err(why)) => {
                self.reply(&format!("436 Transfer failed: {why}")).await?;
                return Ok(Next::Continue);
            }
            Some(Ok(raw)) => raw,
        };
        let reply = match self.file(raw, Some(id)).await {
            Filed::Stored(_) => "235 Article transferred OK".to_owned(),
            Filed::Duplicate => "437 Transfer rejected: duplicate".to_owned(),
            Filed::NowhereToPost => "437 Transfer rejected: no newsgroup here takes it".to_owned(),
            Filed::Refused(why) => format!("437 Transfer rejected: {why}"),
            Filed::Failed(e) => {
                tracing::warn!(error = %e, "nntp ihave store failed");
                "436 Transfer failed; try again later".to_owned()
            }
        };
        self.reply(&reply).await?;
        self.out.flush().await?;
        Ok(Next::Continue)
    }
}
