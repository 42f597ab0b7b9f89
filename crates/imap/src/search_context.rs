//! RFC 5267 CONTEXT=SEARCH and CONTEXT=SORT: a SEARCH or SORT with `RETURN (UPDATE)`
//! whose result the session keeps, telling the client with `ESEARCH ... ADDTO` and
//! `REMOVEFROM` as messages enter and leave it, until CANCELUPDATE or the mailbox is
//! closed.
//!
//! A context is evaluated again whenever the view has moved (a new modseq or a new
//! message count) at a point where the session reports changes, so the cost is one
//! search per context per change, for at most [`MAX_CONTEXTS`] contexts. Removals
//! are reported before the refresh's own responses, in the numbers the client knew
//! (before any EXPUNGE); additions after them, in the numbers it now knows (after
//! EXISTS).

use std::collections::HashSet;

use tern_store::{Modseq, Uid};

use crate::search::search_selected;
use crate::selected::{compress_uids, Selected};
use crate::session::{Outcome, Session};
use crate::types::{PartialRange, SearchKey, SortCriterion};

/// Most contexts one session keeps; beyond, a new one gets `NO [NOUPDATE]`.
pub(crate) const MAX_CONTEXTS: usize = 10;

/// One kept search.
pub(crate) struct SearchContext {
    /// The tag of the command that opened it (its ESEARCH correlator).
    pub(crate) tag: String,
    /// Numbers are UIDs (UID SEARCH / UID SORT), not sequence numbers.
    pub(crate) uid: bool,
    pub(crate) criteria: SearchKey,
    /// SORT's order; `None` for a SEARCH (mailbox order).
    pub(crate) sort: Option<Vec<SortCriterion>>,
    /// Only this window of the results is watched (RFC 5267 4.4).
    pub(crate) partial: Option<PartialRange>,
    /// The result as the client knows it, in answer order.
    pub(crate) results: Vec<Uid>,
    /// The view's modseq and size when `results` was taken.
    pub(crate) modseq: Modseq,
    pub(crate) exists: usize,
}

/// Results entering or leaving at a position of the list (1-based).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) position: usize,
    pub(crate) uids: Vec<Uid>,
}

/// The runs that leave `old` (those not in `new`), each position counted in the list
/// as it stands once the runs before it have left.
pub(crate) fn removals(old: &[Uid], new: &HashSet<Uid>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut removed = 0;
    let mut last_index = None;
    for (i, u) in old.iter().enumerate() {
        if new.contains(u) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if last_index == Some(i.wrapping_sub(1)) => run.uids.push(*u),
            _ => runs.push(Run {
                position: i + 1 - removed,
                uids: vec![*u],
            }),
        }
        removed += 1;
        last_index = Some(i);
    }
    runs
}

/// The runs that enter `new` (those not in `old`), each at its final position.
pub(crate) fn additions(new: &[Uid], old: &HashSet<Uid>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut last_index = None;
    for (i, u) in new.iter().enumerate() {
        if old.contains(u) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if last_index == Some(i.wrapping_sub(1)) => run.uids.push(*u),
            _ => runs.push(Run {
                position: i + 1,
                uids: vec![*u],
            }),
        }
        last_index = Some(i);
    }
    runs
}

/// The runs as one, at the first run's position.
fn merged(runs: Vec<Run>) -> Vec<Run> {
    let mut runs = runs.into_iter();
    let Some(mut first) = runs.next() else {
        return Vec::new();
    };
    for r in runs {
        first.uids.extend(r.uids);
    }
    vec![first]
}

/// `ESEARCH (TAG "t") [UID] ADDTO (pos set ...)` (or REMOVEFROM).
pub(crate) fn render(
    tag: &str,
    uid: bool,
    item: &str,
    runs: &[Run],
    number: impl Fn(Uid) -> Option<u32>,
) -> String {
    let mut line = format!("ESEARCH (TAG \"{}\")", tag.replace(['"', '\\'], ""));
    if uid {
        line.push_str(" UID");
    }
    line.push_str(&format!(" {item} ("));
    for (i, run) in runs.iter().enumerate() {
        let numbers: Vec<u32> = run.uids.iter().filter_map(|u| number(*u)).collect();
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&format!("{} {}", run.position, compress_uids(&numbers)));
    }
    line.push(')');
    line
}

impl<W> Session<W> {
    /// The context's result now, in answer order, as UIDs.
    fn context_answer(&self, ctx: &SearchContext) -> Option<Vec<Uid>> {
        let view = self.selected.as_ref()?;
        let result = match &ctx.sort {
            Some(criteria) => self
                .sorted(criteria, &ctx.criteria)
                .map(|items| items.into_iter().map(|(_, u, _)| u).collect()),
            None => search_selected(
                &self.store,
                &self.cache,
                view,
                &ctx.criteria,
                self.config.search_budget,
            )
            .map(|(_, hits)| hits.into_iter().map(|(_, r)| r.uid).collect()),
        };
        result
            .inspect_err(|e| tracing::debug!(error = ?e, "search context not updated"))
            .ok()
    }

    /// Keeps a new context (the caller has answered the command itself), or tells the
    /// client it will not be updated.
    pub(crate) fn keep_context(&mut self, ctx: SearchContext) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        view.contexts.retain(|c| c.tag != ctx.tag);
        if view.contexts.len() >= MAX_CONTEXTS {
            let tag = ctx.tag.replace(['"', '\\'], "");
            self.untagged(&format!(
                "NO [NOUPDATE \"{tag}\"] Too many searches are kept up to date"
            ));
            return;
        }
        view.contexts.push(ctx);
    }

    /// UIDONLY was enabled with a mailbox selected: a kept search answered in sequence
    /// numbers can no longer be updated, so it ends, and the client is told so.
    pub(crate) fn stop_numbered_contexts(&mut self) {
        let Some(view) = self.selected.as_mut() else {
            return;
        };
        let (numbered, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut view.contexts)
            .into_iter()
            .partition(|c| !c.uid);
        view.contexts = kept;
        for ctx in numbered {
            let tag = ctx.tag.replace(['"', '\\'], "");
            self.untagged(&format!(
                "OK [NOUPDATE \"{tag}\"] Searches by message number end with UIDONLY"
            ));
        }
    }

    /// CANCELUPDATE (RFC 5267 4.3): every tag must name a kept search.
    pub(crate) fn cancel_update(&mut self, tags: &[String]) -> Outcome {
        let Some(view) = self.selected.as_mut() else {
            return Outcome::bad("No mailbox selected");
        };
        if let Some(unknown) = tags
            .iter()
            .find(|t| !view.contexts.iter().any(|c| &c.tag == *t))
        {
            return Outcome::bad(&format!("No search is kept under tag {unknown:?}"));
        }
        view.contexts.retain(|c| !tags.contains(&c.tag));
        Outcome::ok("CANCELUPDATE completed")
    }

    /// The ESEARCH updates of every context whose view has moved: the removals (in the
    /// numbers of `before`, the view's UIDs before the refresh) and the additions (in
    /// the numbers of the view now).
    pub(crate) fn update_contexts(&mut self, before: &[Uid]) -> (Vec<String>, Vec<String>) {
        let (mut leaving, mut entering) = (Vec::new(), Vec::new());
        let Some(view) = self.selected.as_mut() else {
            return (leaving, entering);
        };
        let (modseq, exists) = (view.seen_modseq, view.uids.len());
        let current = view.uids.clone();
        let mut contexts = std::mem::take(&mut view.contexts);
        for ctx in contexts.iter_mut() {
            if ctx.modseq == modseq && ctx.exists == exists {
                continue;
            }
            let Some(now) = self.context_answer(ctx) else {
                continue;
            };
            let (old, new) = match ctx.partial {
                Some(w) => (w.select(&ctx.results), w.select(&now)),
                None => (&ctx.results[..], &now[..]),
            };
            let offset = |runs: Vec<Run>| -> Vec<Run> {
                let shift = match ctx.partial {
                    Some(w) if !w.from_end => w.low as usize - 1,
                    _ => 0,
                };
                runs.into_iter()
                    .map(|r| Run {
                        position: r.position + shift,
                        uids: r.uids,
                    })
                    .collect()
            };
            let mut gone = offset(removals(old, &new.iter().copied().collect()));
            let mut came = offset(additions(new, &old.iter().copied().collect()));
            if ctx.sort.is_none() {
                // In mailbox order a number says where it goes: one set, at the first
                // position, as Dovecot sends it (and imaptest expects).
                gone = merged(gone);
                came = merged(came);
            }
            let seq_in = |uids: &[Uid], u: Uid| uids.binary_search(&u).ok().map(|i| i as u32 + 1);
            let number_before = |u: Uid| if ctx.uid { Some(u) } else { seq_in(before, u) };
            let number_now = |u: Uid| {
                if ctx.uid {
                    Some(u)
                } else {
                    seq_in(&current, u)
                }
            };
            if !gone.is_empty() {
                leaving.push(render(
                    &ctx.tag,
                    ctx.uid,
                    "REMOVEFROM",
                    &gone,
                    number_before,
                ));
            }
            if !came.is_empty() {
                entering.push(render(&ctx.tag, ctx.uid, "ADDTO", &came, number_now));
            }
            ctx.results = now;
            ctx.modseq = modseq;
            ctx.exists = exists;
        }
        if let Some(view) = self.selected.as_mut() {
            view.contexts = contexts;
        }
        (leaving, entering)
    }
}

impl Selected {
    /// Whether any search is kept up to date (the refresh must then remember the UIDs
    /// the client knew).
    pub(crate) fn has_contexts(&self) -> bool {
        !self.contexts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(u: &[Uid]) -> HashSet<Uid> {
        u.iter().copied().collect()
    }

    fn run(position: usize, uids: &[Uid]) -> Run {
        Run {
            position,
            uids: uids.to_vec(),
        }
    }

    #[test]
    fn removals_count_positions_as_applied() {
        // [1 2 4 7 9] loses 2, 4 and 9: 2 and 4 at position 2, then 9 at position 3.
        let gone = removals(&[1, 2, 4, 7, 9], &set(&[1, 7]));
        assert_eq!(gone, [run(2, &[2, 4]), run(3, &[9])]);
        assert!(removals(&[1, 2], &set(&[1, 2])).is_empty());
    }

    #[test]
    fn additions_give_final_positions() {
        let came = additions(&[1, 2, 4, 7, 9], &set(&[2, 7]));
        assert_eq!(came, [run(1, &[1]), run(3, &[4]), run(5, &[9])]);
        assert_eq!(additions(&[1, 2, 4], &set(&[])), [run(1, &[1, 2, 4])]);
    }

    #[test]
    fn render_uses_the_numbers_given() {
        let line = render("A", false, "ADDTO", &[run(1, &[10, 11, 13])], |u| {
            Some(u - 9)
        });
        assert_eq!(line, "ESEARCH (TAG \"A\") ADDTO (1 1:2,4)");
        let line = render("B", true, "REMOVEFROM", &[run(2, &[5]), run(4, &[9])], Some);
        assert_eq!(line, "ESEARCH (TAG \"B\") UID REMOVEFROM (2 5 4 9)");
    }
}
