//! The [`Querier`] of a [`crate::Db`]: the blocks that overlap the range and
//! the head, merged by labels, with samples at the same timestamp in several
//! sources (overlapping blocks, a block and the head) returned once.

use std::collections::BTreeSet;

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::sample::Sample;
use ember_model::storage::{
    Annotations, LabelQueryResult, Querier, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError,
};

use super::ReaderGuard;
use crate::block::BlockQuerier;
use crate::head::querier::HeadQuerier;

/// Blocks and head over one range; holds its place in the reader
/// bookkeeping ([`ReaderGuard`]) so head truncation waits for it.
#[derive(Debug)]
pub(crate) struct DbQuerier {
    pub(crate) blocks: Vec<BlockQuerier>,
    pub(crate) head: HeadQuerier,
    pub(crate) _guard: ReaderGuard,
}

impl DbQuerier {
    fn sources(&self) -> impl Iterator<Item = &dyn Querier> + '_ {
        self.blocks
            .iter()
            .map(|b| b as &dyn Querier)
            .chain(std::iter::once(&self.head as &dyn Querier))
    }
}

impl Querier for DbQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        if self.blocks.is_empty() {
            return self.head.select(sorted, hints, matchers);
        }
        let mut sets = Vec::with_capacity(self.blocks.len() + 1);
        for source in self.sources() {
            // Merging needs every source sorted; limits apply after it.
            let mut sub_hints = hints.cloned();
            if let Some(h) = sub_hints.as_mut() {
                h.limit = None;
            }
            sets.push(source.select(true, sub_hints.as_ref(), matchers)?);
        }
        Ok(Box::new(MergeSeriesSet {
            heads: sets.iter().map(|_| None).collect(),
            sources: sets,
            primed: false,
            remaining: hints.and_then(|h| h.limit).unwrap_or(usize::MAX),
            annotations: Annotations::new(),
            done: false,
        }))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        merge_label_results(self.sources(), limit, |q| {
            q.label_values(name, matchers, limit)
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        merge_label_results(self.sources(), limit, |q| q.label_names(matchers, limit))
    }
}

fn merge_label_results<'a>(
    sources: impl Iterator<Item = &'a dyn Querier>,
    limit: Option<usize>,
    query: impl Fn(&dyn Querier) -> Result<LabelQueryResult, StorageError>,
) -> Result<LabelQueryResult, StorageError> {
    let mut values = BTreeSet::new();
    let mut annotations = Annotations::new();
    for source in sources {
        let result = query(source)?;
        values.extend(result.values);
        annotations.merge(result.annotations);
    }
    Ok(LabelQueryResult {
        values: values
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .collect(),
        annotations,
    })
}

/// Merges sorted series sets by labels.
struct MergeSeriesSet<'q> {
    sources: Vec<Box<dyn SeriesSet<'q> + 'q>>,
    /// The next series of each source, not yet returned.
    heads: Vec<Option<Box<dyn Series + 'q>>>,
    primed: bool,
    remaining: usize,
    annotations: Annotations,
    done: bool,
}

impl<'q> MergeSeriesSet<'q> {
    fn refill(&mut self, i: usize) -> Result<(), StorageError> {
        self.heads[i] = match self.sources[i].next() {
            Some(Ok(series)) => Some(series),
            Some(Err(e)) => return Err(e),
            None => {
                self.annotations
                    .merge(self.sources[i].annotations().clone());
                None
            }
        };
        Ok(())
    }
}

impl<'q> Iterator for MergeSeriesSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.remaining == 0 {
            return None;
        }
        if !self.primed {
            self.primed = true;
            for i in 0..self.sources.len() {
                if let Err(e) = self.refill(i) {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let min: Option<Labels> = self
            .heads
            .iter()
            .flatten()
            .map(|s| s.labels())
            .min()
            .cloned();
        let Some(min) = min else {
            self.done = true;
            return None;
        };
        let mut parts = Vec::new();
        for i in 0..self.heads.len() {
            if self.heads[i].as_ref().is_some_and(|s| *s.labels() == min) {
                parts.extend(self.heads[i].take());
                if let Err(e) = self.refill(i) {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.remaining -= 1;
        if parts.len() == 1 {
            return parts.pop().map(Ok);
        }
        Some(Ok(Box::new(MergedSeries { labels: min, parts })))
    }
}

impl<'q> SeriesSet<'q> for MergeSeriesSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

/// One series found in several sources.
struct MergedSeries<'q> {
    labels: Labels,
    parts: Vec<Box<dyn Series + 'q>>,
}

impl Series for MergedSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(MergeIterator::new(
            self.parts.iter().map(|p| p.samples()).collect(),
        ))
    }
}

/// Merges ascending sample iterators; a timestamp present in several is
/// returned once (from the first source that has it).
pub(crate) struct MergeIterator<'a> {
    iters: Vec<Box<dyn SampleIterator + 'a>>,
    /// Each iterator's current sample; `None` once it is exhausted.
    current: Vec<Option<Sample>>,
    started: bool,
    at: Sample,
    exhausted: bool,
    err: Option<StorageError>,
}

impl<'a> MergeIterator<'a> {
    pub(crate) fn new(iters: Vec<Box<dyn SampleIterator + 'a>>) -> Self {
        let n = iters.len();
        Self {
            iters,
            current: vec![None; n],
            started: false,
            at: Sample::new(i64::MIN, f64::NAN),
            exhausted: false,
            err: None,
        }
    }

    fn record(&mut self, i: usize, ok: bool) {
        self.current[i] = if ok {
            Some(self.iters[i].at())
        } else {
            if self.err.is_none()
                && let Some(e) = self.iters[i].err()
            {
                self.err = Some(e.clone());
            }
            None
        };
    }

    fn pick(&mut self) -> bool {
        if self.err.is_some() {
            self.exhausted = true;
            return false;
        }
        match self.current.iter().flatten().min_by_key(|s| s.t).copied() {
            Some(s) => {
                self.at = s;
                true
            }
            None => {
                self.exhausted = true;
                false
            }
        }
    }
}

impl SampleIterator for MergeIterator<'_> {
    fn next(&mut self) -> bool {
        if self.exhausted {
            return false;
        }
        for i in 0..self.iters.len() {
            let advance = !self.started || self.current[i].is_some_and(|s| s.t <= self.at.t);
            if advance {
                let ok = self.iters[i].next();
                self.record(i, ok);
            }
        }
        self.started = true;
        self.pick()
    }

    fn seek(&mut self, t: i64) -> bool {
        if self.exhausted {
            return false;
        }
        if self.started && self.at.t >= t {
            return true;
        }
        for i in 0..self.iters.len() {
            let advance = !self.started || self.current[i].is_some_and(|s| s.t < t);
            if advance {
                let ok = self.iters[i].seek(t);
                self.record(i, ok);
            }
        }
        self.started = true;
        self.pick()
    }

    fn at(&self) -> Sample {
        self.at
    }

    fn err(&self) -> Option<&StorageError> {
        self.err.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use ember_model::storage::SliceSampleIterator;

    use super::*;

    fn s(ts: &[i64]) -> Vec<Sample> {
        ts.iter().map(|&t| Sample::new(t, t as f64)).collect()
    }

    #[test]
    fn merge_iterator_dedups_and_seeks() {
        let a = s(&[1, 3, 5, 7]);
        let b = s(&[2, 3, 6, 7, 9]);
        let c = s(&[]);
        let mut it = MergeIterator::new(vec![
            Box::new(SliceSampleIterator::new(&a)),
            Box::new(SliceSampleIterator::new(&b)),
            Box::new(SliceSampleIterator::new(&c)),
        ]);
        let mut got = Vec::new();
        while it.next() {
            got.push(it.at().t);
        }
        assert_eq!(got, [1, 2, 3, 5, 6, 7, 9]);
        assert!(!it.next());

        let mut it = MergeIterator::new(vec![
            Box::new(SliceSampleIterator::new(&a)),
            Box::new(SliceSampleIterator::new(&b)),
        ]);
        assert!(it.seek(4));
        assert_eq!(it.at().t, 5);
        assert!(it.seek(2));
        assert_eq!(it.at().t, 5);
        assert!(it.next());
        assert_eq!(it.at().t, 6);
        assert!(it.seek(8));
        assert_eq!(it.at().t, 9);
        assert!(!it.next());
    }
}
