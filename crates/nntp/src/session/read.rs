//! The reading commands: GROUP, LISTGROUP, NEXT, LAST, ARTICLE/HEAD/BODY/STAT, OVER,
//! HDR, LIST, NEWGROUPS and NEWNEWS. Long answers go out a batch at a time.

use std::collections::HashMap;

use tern_message::Summary;
use tern_net::dotstuff::Part;
use tern_store::{Record, Uid, SHARED_OWNER};
use tokio::io::AsyncWriteExt;

use super::Session;
use crate::article::{self, Found};
use crate::command::{ArticleRef, Command, ListKind, Range, Retrieve, Selection, MAX_ARTICLE};
use crate::groups::{self, Group, Lookup, Selected};
use crate::overview::{self, Source};
use crate::wildmat;

/// Articles read per batch of OVER, HDR and LISTGROUP output.
const BATCH: usize = 256;

/// The annotation holding a group's description (METADATA `/shared/comment`).
const DESCRIPTION: &str = "/comment";

impl Session {
    pub(super) async fn read_command(&mut self, command: Command) -> std::io::Result<()> {
        match command {
            Command::Group(name) => self.group(&name, None).await,
            Command::ListGroup(name, range) => self.listgroup(name, range).await,
            Command::Next => self.step(true).await,
            Command::Last => self.step(false).await,
            Command::Retrieve(kind, target) => self.retrieve(kind, target).await,
            Command::Over(selection) => self.over_or_hdr(None, selection, false).await,
            Command::Hdr(field, selection, xhdr) => {
                self.over_or_hdr(Some(field), selection, xhdr).await
            }
            Command::List(kind) => self.list(kind).await,
            Command::NewGroups(since) => self.newgroups(since).await,
            Command::NewNews(pattern, since) => self.newnews(&pattern, since).await,
            _ => self.reply("500 Unknown command").await,
        }
    }

    /// Selects a group (GROUP, and LISTGROUP with a name); `false` when it answered
    /// with an error instead.
    async fn select(&mut self, name: &str) -> std::io::Result<bool> {
        let prefix = self.config.prefix.clone();
        let name_owned = name.to_owned();
        let found = self
            .blocking(
                move |store, actor| match groups::find(store, actor, &prefix, &name_owned)? {
                    Lookup::Found(g) => Selected::open(store, actor, *g).map(Ok),
                    Lookup::Forbidden => Ok(Err(true)),
                    Lookup::Missing => Ok(Err(false)),
                },
            )
            .await;
        match found {
            Ok(Ok(selected)) => {
                self.current = selected.numbers.first().copied();
                self.selected = Some(selected);
                Ok(true)
            }
            Ok(Err(true)) if !self.authenticated => {
                self.reply("480 Authentication required for this newsgroup")
                    .await?;
                Ok(false)
            }
            Ok(Err(_)) => {
                self.reply("411 No such newsgroup").await?;
                Ok(false)
            }
            Err(e) => {
                self.store_failure(&e).await?;
                Ok(false)
            }
        }
    }

    async fn group(&mut self, name: &str, _range: Option<Range>) -> std::io::Result<()> {
        if self.select(name).await? {
            let line = self.group_line("");
            self.reply(&line).await?;
        }
        Ok(())
    }

    /// `211 count low high group` for the selected group.
    fn group_line(&self, tail: &str) -> String {
        match &self.selected {
            Some(s) => {
                let (count, low, high) = s.watermarks();
                format!("211 {count} {low} {high} {}{tail}", s.group.name)
            }
            None => "412 No newsgroup selected".to_owned(),
        }
    }

    async fn listgroup(
        &mut self,
        name: Option<String>,
        range: Option<Range>,
    ) -> std::io::Result<()> {
        match name {
            Some(n) if !self.select(&n).await? => return Ok(()),
            None if self.selected.is_none() => {
                return self.reply("412 No newsgroup selected").await
            }
            _ => {}
        }
        let line = self.group_line(" list follows");
        self.reply(&line).await?;
        let numbers: Vec<Uid> = match (&self.selected, range) {
            (Some(s), Some(r)) => s.within(r.low, r.high.unwrap_or(MAX_ARTICLE)).to_vec(),
            (Some(s), None) => s.numbers.clone(),
            (None, _) => Vec::new(),
        };
        for chunk in numbers.chunks(4096) {
            let mut text = String::with_capacity(chunk.len() * 8);
            for n in chunk {
                text.push_str(&n.to_string());
                text.push_str("\r\n");
            }
            self.out.write_all(text.as_bytes()).await?;
        }
        self.reply(".").await
    }

    /// NEXT (`forward`) and LAST.
    async fn step(&mut self, forward: bool) -> std::io::Result<()> {
        let Some(selected) = &self.selected else {
            return self.reply("412 No newsgroup selected").await;
        };
        let Some(current) = self.current else {
            return self.reply("420 No current article selected").await;
        };
        let target = if forward {
            selected.numbers.iter().find(|&&n| n > current).copied()
        } else {
            selected
                .numbers
                .iter()
                .rev()
                .find(|&&n| n < current)
                .copied()
        };
        let Some(n) = target else {
            let text = if forward {
                "421 No next article"
            } else {
                "422 No previous article"
            };
            return self.reply(text).await;
        };
        let sel = selected.clone();
        let found = self
            .blocking(move |store, actor| article::by_number(store, actor, &sel, n))
            .await;
        match found {
            Ok(found) => {
                self.current = Some(n);
                let id = found
                    .and_then(|f| f.message_id)
                    .unwrap_or_else(|| "<0>".into());
                self.reply(&format!("223 {n} {id} Article found")).await
            }
            Err(e) => self.store_failure(&e).await,
        }
    }

    /// Finds the article a retrieval names, answering the error itself when there is
    /// none.
    async fn locate(&mut self, target: ArticleRef) -> std::io::Result<Option<Found>> {
        let prefix = self.config.prefix.clone();
        let selected = self.selected.clone();
        let number = match target {
            ArticleRef::MessageId(id) => {
                let found = self
                    .blocking(move |store, actor| {
                        article::by_message_id(store, actor, &prefix, &id, selected.as_ref())
                    })
                    .await;
                return match found {
                    Ok(Some(f)) => Ok(Some(f)),
                    Ok(None) => {
                        self.reply("430 No article with that message-id").await?;
                        Ok(None)
                    }
                    Err(e) => {
                        self.store_failure(&e).await?;
                        Ok(None)
                    }
                };
            }
            ArticleRef::Current => match (&self.selected, self.current) {
                (None, _) => {
                    self.reply("412 No newsgroup selected").await?;
                    return Ok(None);
                }
                (Some(_), None) => {
                    self.reply("420 No current article selected").await?;
                    return Ok(None);
                }
                (Some(_), Some(n)) => n,
            },
            ArticleRef::Number(n) => n,
        };
        let Some(selected) = selected else {
            self.reply("412 No newsgroup selected").await?;
            return Ok(None);
        };
        let found = self
            .blocking(move |store, actor| article::by_number(store, actor, &selected, number))
            .await;
        match found {
            Ok(Some(f)) => {
                self.current = Some(number);
                Ok(Some(f))
            }
            Ok(None) => {
                self.reply("423 No article with that number").await?;
                Ok(None)
            }
            Err(e) => {
                self.store_failure(&e).await?;
                Ok(None)
            }
        }
    }

    async fn retrieve(&mut self, kind: Retrieve, target: ArticleRef) -> std::io::Result<()> {
        let Some(found) = self.locate(target).await? else {
            return Ok(());
        };
        let id = found.message_id.clone().unwrap_or_else(|| "<0>".into());
        let (code, part) = match kind {
            Retrieve::Article => (220, Part::Whole),
            Retrieve::Head => (221, Part::Head),
            Retrieve::Body => (222, Part::Body),
            Retrieve::Stat => {
                return self.reply(&format!("223 {} {id}", found.number)).await;
            }
        };
        let (prefix, host) = (self.config.prefix.clone(), self.config.hostname.clone());
        let opened = self
            .blocking(move |store, actor| {
                let xref = match part {
                    Part::Body => None,
                    _ => article::xref(store, actor, &prefix, &host, &found)?,
                };
                Ok((
                    store.open_message(&found.mailbox, &found.record)?,
                    xref,
                    found.number,
                ))
            })
            .await;
        match opened {
            Ok((file, xref, number)) => {
                let status = format!("{code} {number} {id}");
                article::send(&mut self.out, &status, file, xref, part).await
            }
            Err(e) => self.store_failure(&e).await,
        }
    }

    /// OVER (and XOVER) when `field` is `None`, else HDR (and XHDR).
    async fn over_or_hdr(
        &mut self,
        field: Option<String>,
        selection: Selection,
        xhdr: bool,
    ) -> std::io::Result<()> {
        let head = match (&field, xhdr) {
            (None, _) => "224 Overview information follows",
            (Some(_), true) => "221 Header follows",
            (Some(_), false) => "225 Headers follow",
        };
        let from_summary = overview::answers_from_summary(field.as_deref());
        let render = move |number: Uid, article: &Source<'_>, xref: &str| match &field {
            None => overview::over_line(number, article, xref),
            Some(f) => format!("{number} {}", overview::hdr_value(article, f, xref)),
        };
        let (prefix, host) = (self.config.prefix.clone(), self.config.hostname.clone());
        // By Message-ID: one article, reported with number 0.
        if let Selection::MessageId(id) = selection {
            let Some(found) = self.locate(ArticleRef::MessageId(id)).await? else {
                return Ok(());
            };
            let raw = self
                .blocking(move |store, actor| {
                    let xref = match &found.message_id {
                        Some(id) => article::xref_value(store, actor, &prefix, &host, id)?,
                        None => None,
                    };
                    let raw = article::read_whole(store, &found.mailbox, &found.record)?;
                    Ok((raw, xref.unwrap_or_default()))
                })
                .await;
            return match raw {
                Ok((raw, xref)) => {
                    let line = render(0, &Source::Raw(&raw), &xref);
                    self.reply(&format!("{head}\r\n{line}\r\n.")).await
                }
                Err(e) => self.store_failure(&e).await,
            };
        }
        let Some(selected) = self.selected.clone() else {
            return self.reply("412 No newsgroup selected").await;
        };
        let numbers: Vec<Uid> = match selection {
            Selection::Current => match self.current {
                Some(n) => vec![n],
                None => return self.reply("420 No current article selected").await,
            },
            Selection::Range(r) => selected
                .within(r.low, r.high.unwrap_or(MAX_ARTICLE))
                .to_vec(),
            Selection::MessageId(_) => Vec::new(),
        };
        if numbers.is_empty() {
            return self.reply("423 No articles in that range").await;
        }
        self.reply(head).await?;
        let render = std::sync::Arc::new(render);
        for batch in numbers.chunks(BATCH) {
            let (batch, sel, render) = (batch.to_vec(), selected.clone(), render.clone());
            let (prefix, host) = (prefix.clone(), host.clone());
            let lines = self
                .blocking(move |store, actor| {
                    let batch = OverviewBatch {
                        selected: &sel,
                        uids: &batch,
                        prefix: &prefix,
                        host: &host,
                        from_summary,
                    };
                    batch.lines(store, actor, &*render)
                })
                .await;
            match lines {
                Ok(text) => self.out.write_all(text.as_bytes()).await?,
                Err(e) => {
                    // The answer has begun: end it, so the client can go on.
                    tracing::warn!(error = %e, "nntp overview batch failed");
                    break;
                }
            }
        }
        self.reply(".").await
    }

    /// The groups this client may read whose name matches `pattern` (all without one).
    async fn readable_groups(
        &mut self,
        pattern: Option<String>,
    ) -> std::io::Result<Option<Vec<Group>>> {
        let prefix = self.config.prefix.clone();
        let found = self
            .blocking(move |store, actor| groups::visible(store, actor, &prefix))
            .await;
        match found {
            Ok(all) => Ok(Some(
                all.into_iter()
                    .filter(|g| g.readable())
                    .filter(|g| {
                        pattern
                            .as_deref()
                            .is_none_or(|p| wildmat::matches(p, &g.name))
                    })
                    .collect(),
            )),
            Err(e) => {
                self.store_failure(&e).await?;
                Ok(None)
            }
        }
    }

    /// `group high low status` lines for `groups`.
    async fn active_lines(&mut self, groups: Vec<Group>) -> Result<String, tern_store::StoreError> {
        self.blocking(move |store, actor| {
            let mut text = String::new();
            for g in &groups {
                text.push_str(&groups::active_line(store, actor, g)?);
                text.push_str("\r\n");
            }
            Ok(text)
        })
        .await
    }

    async fn list(&mut self, kind: ListKind) -> std::io::Result<()> {
        let fixed = match &kind {
            ListKind::OverviewFmt => Some(
                "215 Order of fields in overview database\r\nSubject:\r\nFrom:\r\nDate:\r\nMessage-ID:\r\nReferences:\r\n:bytes\r\n:lines\r\nXref:full\r\n.",
            ),
            ListKind::Headers => Some("215 Headers and metadata items supported\r\n:\r\n:bytes\r\n:lines\r\n."),
            ListKind::DistribPats => Some("215 Distribution patterns follow (none)\r\n."),
            _ => None,
        };
        if let Some(text) = fixed {
            return self.reply(text).await;
        }
        let pattern = match &kind {
            ListKind::Active(p) | ListKind::ActiveTimes(p) | ListKind::Newsgroups(p) => p.clone(),
            _ => None,
        };
        let Some(groups) = self.readable_groups(pattern).await? else {
            return Ok(());
        };
        let body = match kind {
            ListKind::Active(_) => self.active_lines(groups).await,
            ListKind::ActiveTimes(_) => Ok(groups
                .iter()
                .map(|g| format!("{} {} tern\r\n", g.name, g.mailbox.uidvalidity))
                .collect()),
            _ => {
                self.blocking(move |store, _| {
                    let mut text = String::new();
                    for g in &groups {
                        let notes = store.annotations(SHARED_OWNER, &g.mailbox.name)?;
                        let description = notes
                            .iter()
                            .find(|(k, _)| k == DESCRIPTION)
                            .map(|(_, v)| v.replace(['\r', '\n', '\t'], " "))
                            .unwrap_or_default();
                        text.push_str(&format!("{}\t{description}\r\n", g.name));
                    }
                    Ok(text)
                })
                .await
            }
        };
        match body {
            Ok(text) => {
                self.reply("215 Information follows").await?;
                self.out.write_all(text.as_bytes()).await?;
                self.reply(".").await
            }
            Err(e) => self.store_failure(&e).await,
        }
    }

    /// NEWGROUPS: groups created at or after `since` (a shared mailbox's UIDVALIDITY
    /// is its creation time).
    async fn newgroups(&mut self, since: i64) -> std::io::Result<()> {
        let Some(groups) = self.readable_groups(None).await? else {
            return Ok(());
        };
        let new: Vec<Group> = groups
            .into_iter()
            .filter(|g| i64::from(g.mailbox.uidvalidity) >= since)
            .collect();
        match self.active_lines(new).await {
            Ok(text) => {
                self.reply("231 List of new newsgroups follows").await?;
                self.out.write_all(text.as_bytes()).await?;
                self.reply(".").await
            }
            Err(e) => self.store_failure(&e).await,
        }
    }

    /// NEWNEWS: Message-IDs of articles that arrived at or after `since` in the groups
    /// matching `pattern`, each once.
    async fn newnews(&mut self, pattern: &str, since: i64) -> std::io::Result<()> {
        let Some(groups) = self.readable_groups(Some(pattern.to_owned())).await? else {
            return Ok(());
        };
        let ids = self
            .blocking(move |store, actor| {
                let mut seen = std::collections::BTreeSet::new();
                let mut text = String::new();
                for g in &groups {
                    let (_, records) = store.records(actor, &g.mailbox.uniqueid, false)?;
                    let new: Vec<Uid> = records
                        .iter()
                        .filter(|r| r.internaldate >= since && r.uid <= MAX_ARTICLE)
                        .map(|r| r.uid)
                        .collect();
                    let (Some(&lo), Some(&hi)) = (new.first(), new.last()) else {
                        continue;
                    };
                    for (uid, id) in store.message_ids_of(actor, &g.mailbox.uniqueid, lo..=hi)? {
                        if new.binary_search(&uid).is_ok() && seen.insert(id.clone()) {
                            text.push_str(&id);
                            text.push_str("\r\n");
                        }
                    }
                }
                Ok(text)
            })
            .await;
        match ids {
            Ok(text) => {
                self.reply("230 List of new articles follows").await?;
                self.out.write_all(text.as_bytes()).await?;
                self.reply(".").await
            }
            Err(e) => self.store_failure(&e).await,
        }
    }
}

/// One batch of articles of the selected group for OVER or HDR.
struct OverviewBatch<'a> {
    selected: &'a Selected,
    uids: &'a [Uid],
    prefix: &'a str,
    host: &'a str,
    /// The stored summaries hold what is asked: no file is read.
    from_summary: bool,
}

type Render = dyn Fn(Uid, &Source<'_>, &str) -> String + Sync;

impl OverviewBatch<'_> {
    /// The OVER or HDR lines, each with its Xref: every readable group holding the
    /// same message (a cross-post is one message in several mailboxes), found for the
    /// whole batch in one store read. Values come from the stored summaries when they
    /// hold them; an article without one (or a field they lack) is read from its file.
    fn lines(
        &self,
        store: &tern_store::Store,
        actor: &tern_store::Actor,
        render: &Render,
    ) -> Result<String, tern_store::StoreError> {
        let mailbox = &self.selected.group.mailbox;
        let records: Vec<Record> = store
            .records_by_uid(actor, &mailbox.uniqueid, self.uids)?
            .into_iter()
            .filter(|r| r.expunged_modseq.is_none())
            .collect();
        let guids: Vec<tern_store::Guid> = records.iter().map(|r| r.guid).collect();
        let below = format!("{}/", self.prefix);
        let mut filed: HashMap<tern_store::Guid, Vec<(String, Uid)>> = HashMap::new();
        for (guid, m, uid) in store.records_by_guids(actor, &guids)? {
            let group = m.name.strip_prefix(&below).filter(|g| !g.contains('/'));
            if let (Some(group), true) = (group, m.user == SHARED_OWNER && uid <= MAX_ARTICLE) {
                filed.entry(guid).or_default().push((group.to_owned(), uid));
            }
        }
        let summaries: HashMap<tern_store::Guid, Summary> = if self.from_summary {
            store
                .summaries(&guids)?
                .into_iter()
                .filter_map(|(g, bytes)| Some((g, Summary::from_bytes(&bytes)?)))
                .collect()
        } else {
            HashMap::new()
        };
        let mut text = String::new();
        for r in &records {
            let mut xref = self.host.to_owned();
            match filed.get(&r.guid) {
                Some(places) => {
                    for (group, uid) in places {
                        xref.push_str(&format!(" {group}:{uid}"));
                    }
                }
                None => xref.push_str(&format!(" {}:{}", self.selected.group.name, r.uid)),
            }
            let line = match summaries.get(&r.guid) {
                Some(summary) => render(r.uid, &Source::Summary(summary), &xref),
                // An article whose file cannot be read is left out, not fatal.
                None => match article::read_whole(store, mailbox, r) {
                    Ok(raw) => render(r.uid, &Source::Raw(&raw), &xref),
                    Err(_) => continue,
                },
            };
            text.push_str(&line);
            text.push_str("\r\n");
        }
        Ok(text)
    }
}
