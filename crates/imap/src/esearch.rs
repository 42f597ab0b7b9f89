//! The ESEARCH answer shared by SEARCH and SORT (RFC 4731 ESEARCH, RFC 5267 ESORT,
//! RFC 9394 PARTIAL, RFC 7162 3.1.5 MODSEQ).
//!
//! One renderer for both commands, so that a return option means the same thing
//! whichever command carries it: the results arrive in the order the command
//! answers in (mailbox order for SEARCH, sort order for SORT), and MIN, MAX, ALL
//! and PARTIAL are read off that order.

use tern_store::Uid;

use crate::search_context::SearchContext;
use crate::selected::compress_uids;
use crate::session::Session;
use crate::types::{SearchKey, SearchReturn, SortCriterion};

/// One result: the number the client sees (a UID or a sequence number) and the
/// message's modseq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub number: u32,
    pub modseq: u64,
}

/// The `ESEARCH ...` line (without `* `) answering `opts` over `hits`, or `None` when
/// the options ask for nothing to be sent (`RETURN (SAVE)` alone).
///
/// MIN and MAX are the first and last result in answer order, which for SEARCH are
/// the lowest and highest number (RFC 4731) and for SORT the first and last in sort
/// order (RFC 5267 3.2). `modseq` adds RFC 7162's MODSEQ item: the highest modseq of
/// every match when ALL or COUNT is asked for, otherwise of the messages returned.
pub(crate) fn esearch_line(
    tag: &str,
    uid: bool,
    opts: &[SearchReturn],
    hits: &[Hit],
    modseq: bool,
) -> Option<String> {
    let defaulted = [SearchReturn::All];
    let opts = if opts.is_empty() {
        &defaulted[..]
    } else {
        opts
    };
    if opts.iter().all(|o| *o == SearchReturn::Save) {
        return None;
    }
    let mut line = format!("ESEARCH (TAG \"{}\")", tag.replace(['"', '\\'], ""));
    if uid {
        line.push_str(" UID");
    }
    let numbers = |hits: &[Hit]| hits.iter().map(|h| h.number).collect::<Vec<_>>();
    let mut returned_modseq = None::<u64>;
    let mut note = |h: &Hit| returned_modseq = returned_modseq.max(Some(h.modseq));
    for o in opts {
        match o {
            SearchReturn::Min => {
                if let Some(h) = hits.first() {
                    line.push_str(&format!(" MIN {}", h.number));
                    note(h);
                }
            }
            SearchReturn::Max => {
                if let Some(h) = hits.last() {
                    line.push_str(&format!(" MAX {}", h.number));
                    note(h);
                }
            }
            SearchReturn::Count => line.push_str(&format!(" COUNT {}", hits.len())),
            SearchReturn::All if !hits.is_empty() => {
                line.push_str(&format!(" ALL {}", compress_uids(&numbers(hits))));
            }
            SearchReturn::Partial(range) => {
                let window = range.select(hits);
                window.iter().for_each(&mut note);
                if window.is_empty() {
                    line.push_str(&format!(" PARTIAL ({range} NIL)"));
                } else {
                    line.push_str(&format!(
                        " PARTIAL ({range} {})",
                        compress_uids(&numbers(window))
                    ));
                }
            }
            SearchReturn::All | SearchReturn::Save | SearchReturn::Update => {}
        }
    }
    let whole = opts
        .iter()
        .any(|o| matches!(o, SearchReturn::All | SearchReturn::Count));
    let highest = if whole {
        hits.iter().map(|h| h.modseq).max()
    } else {
        returned_modseq
    };
    if let (true, Some(m)) = (modseq, highest) {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    Some(line)
}

/// The UIDs `RETURN (SAVE ...)` keeps as `$`, sorted: with MIN and/or MAX and no
/// other option, the messages those name; otherwise every result (RFC 5182 2.1:
/// `SEARCH RETURN (SAVE MIN)` saves the lowest match alone, and Dovecot does so).
fn saved_uids(opts: &[SearchReturn], results: &[(u32, Uid, u64)]) -> Vec<Uid> {
    let others = || opts.iter().filter(|o| **o != SearchReturn::Save);
    let ends_only = others().next().is_some()
        && others().all(|o| matches!(o, SearchReturn::Min | SearchReturn::Max));
    let mut saved: Vec<Uid> = if ends_only {
        let min = opts.contains(&SearchReturn::Min).then(|| results.first());
        let max = opts.contains(&SearchReturn::Max).then(|| results.last());
        min.into_iter().chain(max).flatten().map(|r| r.1).collect()
    } else {
        results.iter().map(|r| r.1).collect()
    };
    saved.sort_unstable();
    saved.dedup();
    saved
}

impl<W> Session<W> {
    /// Answers a SEARCH or SORT that has RETURN options: `results` are (sequence
    /// number, UID, modseq) in answer order. SAVE keeps them as `$`, the ESEARCH line
    /// goes out, and UPDATE keeps the search (with `sort`, a SORT's order) up to date.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer_esearch(
        &mut self,
        tag: &str,
        uid: bool,
        opts: &[SearchReturn],
        results: &[(u32, Uid, u64)],
        criteria: &SearchKey,
        sort: Option<&[SortCriterion]>,
        modseq: bool,
    ) {
        if opts.contains(&SearchReturn::Save) {
            if let Some(v) = self.selected.as_mut() {
                v.saved = saved_uids(opts, results);
            }
        }
        let hits: Vec<Hit> = results
            .iter()
            .map(|&(seq, u, m)| Hit {
                number: if uid { u } else { seq },
                modseq: m,
            })
            .collect();
        if let Some(line) = esearch_line(tag, uid, opts, &hits, modseq) {
            self.untagged(&line);
        }
        if opts.contains(&SearchReturn::Update) {
            let (seen_modseq, exists) = self
                .selected
                .as_ref()
                .map_or((0, 0), |v| (v.seen_modseq, v.uids.len()));
            self.keep_context(SearchContext {
                tag: tag.to_owned(),
                uid,
                criteria: criteria.clone(),
                sort: sort.map(<[_]>::to_vec),
                partial: opts.iter().find_map(|o| match o {
                    SearchReturn::Partial(w) => Some(*w),
                    _ => None,
                }),
                results: results.iter().map(|r| r.1).collect(),
                modseq: seen_modseq,
                exists,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PartialRange;

    fn hits(numbers: &[u32]) -> Vec<Hit> {
        numbers
            .iter()
            .map(|&n| Hit {
                number: n,
                modseq: 100 + u64::from(n),
            })
            .collect()
    }

    fn partial(from_end: bool, low: u32, high: u32) -> SearchReturn {
        SearchReturn::Partial(PartialRange {
            from_end,
            low,
            high,
        })
    }

    #[test]
    fn partial_windows_count_from_either_end() {
        let h = hits(&[1, 2, 4, 5]);
        let line = |o| esearch_line("A", false, &[o], &h, false).unwrap();
        assert_eq!(
            line(partial(false, 1, 3)),
            "ESEARCH (TAG \"A\") PARTIAL (1:3 1:2,4)"
        );
        assert_eq!(
            line(partial(false, 2, 10)),
            "ESEARCH (TAG \"A\") PARTIAL (2:10 2,4:5)"
        );
        assert_eq!(
            line(partial(false, 5, 6)),
            "ESEARCH (TAG \"A\") PARTIAL (5:6 NIL)"
        );
        assert_eq!(
            line(partial(true, 1, 2)),
            "ESEARCH (TAG \"A\") PARTIAL (-1:-2 4:5)"
        );
        assert_eq!(
            line(partial(true, 3, 9)),
            "ESEARCH (TAG \"A\") PARTIAL (-3:-9 1:2)"
        );
        assert_eq!(
            line(partial(true, 5, 9)),
            "ESEARCH (TAG \"A\") PARTIAL (-5:-9 NIL)"
        );
    }

    #[test]
    fn sort_order_is_kept_and_min_max_follow_it() {
        let h = hits(&[5, 3, 4, 2, 1]);
        let opts = [SearchReturn::Min, SearchReturn::Max, SearchReturn::All];
        assert_eq!(
            esearch_line("t", true, &opts, &h, false).unwrap(),
            "ESEARCH (TAG \"t\") UID MIN 5 MAX 1 ALL 5,3:4,2,1"
        );
    }

    #[test]
    fn modseq_covers_what_was_returned() {
        let h = hits(&[1, 7, 3]);
        let min = esearch_line("t", false, &[SearchReturn::Min], &h, true).unwrap();
        assert!(min.ends_with("MIN 1 MODSEQ 101"), "{min}");
        let count = esearch_line("t", false, &[SearchReturn::Count], &h, true).unwrap();
        assert!(count.ends_with("COUNT 3 MODSEQ 107"), "{count}");
        let window = esearch_line("t", false, &[partial(true, 1, 1)], &h, true).unwrap();
        assert!(window.ends_with("PARTIAL (-1:-1 3) MODSEQ 103"), "{window}");
        let none = esearch_line("t", false, &[SearchReturn::Min], &[], true).unwrap();
        assert_eq!(none, "ESEARCH (TAG \"t\")");
    }

    #[test]
    fn save_with_min_or_max_alone_keeps_those() {
        use SearchReturn::*;
        // (sequence number, UID, modseq) in answer order: a SORT's order here.
        let results = [(3, 30, 1), (1, 10, 1), (2, 20, 1)];
        assert_eq!(saved_uids(&[Save, Min], &results), [30]);
        assert_eq!(saved_uids(&[Max, Save], &results), [20]);
        assert_eq!(saved_uids(&[Save, Min, Max], &results), [20, 30]);
        assert_eq!(saved_uids(&[Save, Min, Count], &results), [10, 20, 30]);
        assert_eq!(saved_uids(&[Save, All], &results), [10, 20, 30]);
        assert_eq!(saved_uids(&[Save], &results), [10, 20, 30]);
        assert_eq!(saved_uids(&[Save, Min], &results[..1]), [30]);
        assert!(saved_uids(&[Save, Min, Max], &[]).is_empty());
    }

    #[test]
    fn save_alone_sends_nothing_and_empty_means_all() {
        assert_eq!(
            esearch_line("t", false, &[SearchReturn::Save], &hits(&[1]), false),
            None
        );
        assert_eq!(
            esearch_line("t", false, &[], &hits(&[1, 2]), false).unwrap(),
            "ESEARCH (TAG \"t\") ALL 1:2"
        );
    }
}
