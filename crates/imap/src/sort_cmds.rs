//! SORT and THREAD (RFC 5256, with RFC 5957 DISPLAYFROM/DISPLAYTO).
//!
//! Both work from the per-GUID MIME summaries (base subject, sent date, first
//! addresses, Message-ID and references), so a sorted view of a mailbox whose
//! summaries are cached parses nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tern_store::{Record, Uid};

use crate::fetch::{summary_of, FetchContext, FetchError};
use crate::mime::MessageSummary;
use crate::search::search_selected;
use crate::session::{Outcome, Session};
use crate::types::{SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};

/// One message taking part in a SORT or THREAD.
struct Item {
    seq: u32,
    uid: Uid,
    record: Record,
    summary: Arc<MessageSummary>,
}

impl Item {
    /// The sent date, or INTERNALDATE when the Date header is missing or broken.
    fn date(&self) -> i64 {
        self.summary.keys.date.unwrap_or(self.record.internaldate)
    }
}

impl<W> Session<W> {
    /// Loads the matching messages with their summaries.
    fn matching(&self, criteria: &SearchKey) -> Result<Vec<Item>, FetchError> {
        let view = self
            .selected
            .as_ref()
            .ok_or(FetchError::Store(tern_store::StoreError::WriterGone))?;
        let (mailbox, hits) = search_selected(
            &self.store,
            &self.cache,
            view,
            criteria,
            self.config.search_budget,
        )?;
        let ctx = FetchContext {
            store: &self.store,
            actor: &view.actor,
            mailbox: &mailbox,
            cache: &self.cache,
        };
        let kept = crate::fetch::summaries_of(&ctx, hits.iter().map(|(_, r)| r))?;
        let mut items = Vec::with_capacity(hits.len());
        for ((seq, record), kept) in hits.into_iter().zip(kept) {
            let uid = record.uid;
            let mut raw = None;
            let mut summary = kept;
            let summary = summary_of(&ctx, &record, &mut raw, &mut summary)?;
            items.push(Item {
                seq,
                uid,
                record,
                summary,
            });
        }
        Ok(items)
    }

    pub(crate) fn sort_cmd(
        &mut self,
        uid: bool,
        criteria: &[SortCriterion],
        search_key: &SearchKey,
        return_opts: Option<&[SearchReturn]>,
        tag: &str,
    ) -> Outcome {
        let items = match self.sorted(criteria, search_key) {
            Ok(i) => i,
            Err(e) => return e.outcome(),
        };
        let number = |i: &(u32, Uid, u64)| if uid { i.1 } else { i.0 };
        let Some(opts) = return_opts else {
            let mut line = String::from("SORT");
            for i in &items {
                let _ = write!(line, " {}", number(i));
            }
            self.untagged(&line);
            return Outcome::ok("SORT completed");
        };
        // RFC 5267 3.2 (ESORT): the same ESEARCH answer as SEARCH, read in sort order.
        let modseq = crate::message_cmds::contains_modseq(search_key);
        self.answer_esearch(tag, uid, opts, &items, search_key, Some(criteria), modseq);
        Outcome::ok("SORT completed")
    }

    /// The messages matching `search_key` in the order of `criteria` (ties in mailbox
    /// order): (sequence number, UID, modseq) each.
    pub(crate) fn sorted(
        &self,
        criteria: &[SortCriterion],
        search_key: &SearchKey,
    ) -> Result<Vec<(u32, Uid, u64)>, FetchError> {
        let items = self.matching(search_key)?;
        // Each message's keys are taken (and case-mapped) once, not at each of the
        // n log n comparisons: numbers and ranges of one text buffer, in one flat list
        // (`keys` values per message). The sequence number breaks every tie, so the
        // order is total and an unstable sort gives the one answer.
        let keys = criteria.len();
        let mut texts = Vec::new();
        let mut values = Vec::with_capacity(items.len() * keys);
        for item in &items {
            values.extend(criteria.iter().map(|c| sort_value(item, c.key, &mut texts)));
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (va, vb) = (&values[a * keys..][..keys], &values[b * keys..][..keys]);
            for (c, (x, y)) in criteria.iter().zip(va.iter().zip(vb)) {
                let ord = x.cmp(y, &texts);
                let ord = if c.reverse { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            items[a].seq.cmp(&items[b].seq)
        });
        Ok(order
            .into_iter()
            .map(|i| {
                let item = &items[i];
                (item.seq, item.uid, item.record.modseq)
            })
            .collect())
    }

    pub(crate) fn thread_cmd(
        &mut self,
        uid: bool,
        algorithm: ThreadAlgorithm,
        search_key: &SearchKey,
    ) -> Outcome {
        let items = match self.matching(search_key) {
            Ok(i) => i,
            Err(e) => return e.outcome(),
        };
        let id = |i: &Item| if uid { i.uid } else { i.seq };
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&items),
            ThreadAlgorithm::References => references(&items),
        };
        let mut line = String::from("THREAD ");
        for t in &threads {
            line.push('(');
            write_node(&mut line, t, &items, &id);
            line.push(')');
        }
        self.untagged(line.trim_end());
        Outcome::ok("THREAD completed")
    }
}

/// One message's value of one sort key, compared as RFC 5256 orders it.
enum SortValue {
    Number(i128),
    /// The text mapped by i;ascii-casemap (RFC 4790 9.2): a-z to upper case, which
    /// orders `_` after the letters (lower-casing would put it before them); a
    /// missing value is the empty string. Where it is in the sort's text buffer.
    Text(std::ops::Range<usize>),
}

impl SortValue {
    /// Compares two values of the same key; `texts` is the buffer they were put in.
    fn cmp(&self, other: &SortValue, texts: &[u8]) -> std::cmp::Ordering {
        match (self, other) {
            (SortValue::Number(a), SortValue::Number(b)) => a.cmp(b),
            (SortValue::Text(a), SortValue::Text(b)) => texts
                .get(a.clone())
                .unwrap_or_default()
                .cmp(texts.get(b.clone()).unwrap_or_default()),
            // Values of one key are all of one kind.
            (SortValue::Number(_), SortValue::Text(_)) => std::cmp::Ordering::Less,
            (SortValue::Text(_), SortValue::Number(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// `item`'s value of `key`; a text goes into `texts`.
fn sort_value(item: &Item, key: SortKey, texts: &mut Vec<u8>) -> SortValue {
    let mut casemap = |x: Option<&str>| {
        let start = texts.len();
        texts.extend(x.unwrap_or("").bytes().map(|c| c.to_ascii_uppercase()));
        SortValue::Text(start..texts.len())
    };
    let keys = &item.summary.keys;
    match key {
        SortKey::Arrival => SortValue::Number(item.record.internaldate.into()),
        SortKey::Date => SortValue::Number(item.date().into()),
        SortKey::Size => SortValue::Number(item.record.size.into()),
        SortKey::Subject => casemap(Some(&keys.base_subject)),
        SortKey::From => casemap(keys.from_mailbox.as_deref()),
        SortKey::To => casemap(keys.to_mailbox.as_deref()),
        SortKey::Cc => casemap(keys.cc_mailbox.as_deref()),
        SortKey::DisplayFrom => casemap(keys.display_from.as_deref()),
        SortKey::DisplayTo => casemap(keys.display_to.as_deref()),
    }
}

/// A node of a thread tree: an index into the items (or none, for a dummy), children.
struct Node {
    item: Option<usize>,
    children: Vec<Node>,
}

fn write_node(out: &mut String, node: &Node, items: &[Item], id: &dyn Fn(&Item) -> Uid) {
    if let Some(i) = node.item {
        out.push_str(&id(&items[i]).to_string());
    }
    match node.children.len() {
        0 => {}
        1 if node.item.is_some() => {
            out.push(' ');
            write_node(out, &node.children[0], items, id);
        }
        _ => {
            if node.item.is_some() {
                out.push(' ');
            }
            for c in &node.children {
                out.push('(');
                write_node(out, c, items, id);
                out.push(')');
            }
        }
    }
}

/// ORDEREDSUBJECT: group by base subject; in each group, by sent date, the first
/// message is the parent of all others; groups by the date of their first message.
fn ordered_subject(items: &[Item]) -> Vec<Node> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].date(), items[i].seq));
    for i in order {
        let subject = items[i].summary.keys.base_subject.to_ascii_lowercase();
        let g = *index.entry(subject.clone()).or_insert_with(|| {
            groups.push((subject, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
        .into_iter()
        .map(|(_, members)| Node {
            item: Some(members[0]),
            children: members[1..]
                .iter()
                .map(|&i| Node {
                    item: Some(i),
                    children: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

/// REFERENCES (RFC 5256 section 3, after Jamie Zawinski's algorithm).
fn references(items: &[Item]) -> Vec<Node> {
    // Containers by Message-ID; a message without one (or with a duplicate) gets its own.
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut item_of: Vec<Option<usize>> = Vec::new();
    let mut parent: Vec<Option<usize>> = Vec::new();
    let container = |id: Option<&str>,
                     ids: &mut HashMap<String, usize>,
                     item_of: &mut Vec<Option<usize>>,
                     parent: &mut Vec<Option<usize>>|
     -> usize {
        if let Some(id) = id {
            if let Some(&c) = ids.get(id) {
                return c;
            }
        }
        item_of.push(None);
        parent.push(None);
        let c = item_of.len() - 1;
        if let Some(id) = id {
            ids.insert(id.to_owned(), c);
        }
        c
    };
    fn is_ancestor(parent: &[Option<usize>], candidate: usize, of: usize) -> bool {
        let mut cur = Some(of);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == candidate {
                return true;
            }
            steps += 1;
            if steps > parent.len() {
                return true;
            }
            cur = parent[c];
        }
        false
    }
    for (i, item) in items.iter().enumerate() {
        let mut c = container(
            item.summary.keys.message_id.as_deref(),
            &mut ids,
            &mut item_of,
            &mut parent,
        );
        if item_of[c].is_some() {
            c = container(None, &mut ids, &mut item_of, &mut parent);
        }
        item_of[c] = Some(i);
        let mut refs: Vec<&str> = item
            .summary
            .keys
            .references
            .iter()
            .map(String::as_str)
            .collect();
        if refs.is_empty() {
            refs.extend(item.summary.keys.in_reply_to.as_deref());
        }
        let mut prev: Option<usize> = None;
        for r in &refs {
            let rc = container(Some(r), &mut ids, &mut item_of, &mut parent);
            if let Some(p) = prev {
                if parent[rc].is_none() && p != rc && !is_ancestor(&parent, rc, p) {
                    parent[rc] = Some(p);
                }
            }
            prev = Some(rc);
        }
        // The message's parent is the last reference, replacing any guess made earlier.
        parent[c] = None;
        if let Some(p) = prev {
            if p != c && !is_ancestor(&parent, c, p) {
                parent[c] = Some(p);
            }
        }
    }
    let n = item_of.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (c, p) in parent.iter().enumerate() {
        match p {
            Some(p) => children[*p].push(c),
            None => roots.push(c),
        }
    }
    fn build(
        c: usize,
        item_of: &[Option<usize>],
        children: &[Vec<usize>],
        depth: usize,
    ) -> Vec<Node> {
        let kids: Vec<Node> = if depth > 256 {
            Vec::new()
        } else {
            children[c]
                .iter()
                .flat_map(|&k| build(k, item_of, children, depth + 1))
                .collect()
        };
        match item_of[c] {
            Some(i) => vec![Node {
                item: Some(i),
                children: kids,
            }],
            // Prune dummies: an empty container without children vanishes; one with
            // children is kept only at the root with two or more, else promoted.
            None if kids.is_empty() => Vec::new(),
            None if depth == 0 && kids.len() > 1 => vec![Node {
                item: None,
                children: kids,
            }],
            None => kids,
        }
    }
    let mut threads: Vec<Node> = roots
        .into_iter()
        .flat_map(|r| build(r, &item_of, &children, 0))
        .collect();
    // Group roots that share a base subject (RFC 5256 step 5, simplified: a root
    // whose subject was already seen becomes a child of the first such root).
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    let mut merged: Vec<Node> = Vec::new();
    for t in threads.drain(..) {
        let subject = first_item(&t)
            .map(|i| items[i].summary.keys.base_subject.to_ascii_lowercase())
            .unwrap_or_default();
        let is_reply = first_item(&t).is_some_and(|i| {
            let s = items[i].summary.keys.subject.as_deref().unwrap_or("");
            s.trim_start().len() != items[i].summary.keys.base_subject.len() && !subject.is_empty()
        });
        match by_subject.get(&subject) {
            Some(&at) if !subject.is_empty() && is_reply => merged[at].children.push(t),
            _ => {
                if !subject.is_empty() {
                    by_subject.entry(subject).or_insert(merged.len());
                }
                merged.push(t);
            }
        }
    }
    fn sort_tree(node: &mut Node, items: &[Item]) {
        for c in node.children.iter_mut() {
            sort_tree(c, items);
        }
        node.children
            .sort_by_key(|c| first_item(c).map(|i| (items[i].date(), items[i].seq)));
    }
    for t in merged.iter_mut() {
        sort_tree(t, items);
    }
    merged.sort_by_key(|t| first_item(t).map(|i| (items[i].date(), items[i].seq)));
    merged
}

fn first_item(node: &Node) -> Option<usize> {
    node.item
        .or_else(|| node.children.iter().find_map(first_item))
}
