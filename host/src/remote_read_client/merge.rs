//! Merging queriers: one sorted stream of series out of several sources,
//! series with equal labels merged sample by sample.
//!
//! The first querier is the primary one (the local storage): its failures
//! fail the select, and on equal timestamps its sample is kept. The others
//! report their own failures as annotations (see [`super::RemoteQuerier`]).

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::sample::Sample;
use ember_model::storage::{
    Annotations, LabelQueryResult, Querier, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError,
};

use super::VecSamples;

/// Reads several queriers as one.
pub struct MergeQuerier {
    queriers: Vec<Box<dyn Querier>>,
}

impl std::fmt::Debug for MergeQuerier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeQuerier")
            .field("sources", &self.queriers.len())
            .finish()
    }
}

impl MergeQuerier {
    /// Merges `queriers`; the first is the primary.
    pub fn new(queriers: Vec<Box<dyn Querier>>) -> Self {
        Self { queriers }
    }
}

impl Querier for MergeQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        // Merging needs sorted inputs whatever the caller asked for.
        let sets = self
            .queriers
            .iter()
            .map(|q| q.select(true, hints, matchers))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(MergeSet::new(sets)))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        merge_label_results(
            self.queriers
                .iter()
                .map(|q| q.label_values(name, matchers, limit)),
            limit,
        )
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        merge_label_results(
            self.queriers.iter().map(|q| q.label_names(matchers, limit)),
            limit,
        )
    }
}

fn merge_label_results(
    results: impl Iterator<Item = Result<LabelQueryResult, StorageError>>,
    limit: Option<usize>,
) -> Result<LabelQueryResult, StorageError> {
    let mut out = LabelQueryResult::default();
    for result in results {
        let result = result?;
        out.values.extend(result.values);
        out.annotations.merge(result.annotations);
    }
    out.values.sort();
    out.values.dedup();
    if let Some(limit) = limit {
        out.values.truncate(limit);
    }
    Ok(out)
}

/// The k-way merge of sorted series sets.
struct MergeSet<'q> {
    sets: Vec<Box<dyn SeriesSet<'q> + 'q>>,
    /// The next series of each set; `None` once it is exhausted.
    heads: Vec<Option<Box<dyn Series + 'q>>>,
    started: bool,
    finished: bool,
    annotations: Annotations,
}

impl<'q> MergeSet<'q> {
    fn new(sets: Vec<Box<dyn SeriesSet<'q> + 'q>>) -> Self {
        let heads = sets.iter().map(|_| None).collect();
        Self {
            sets,
            heads,
            started: false,
            finished: false,
            annotations: Annotations::default(),
        }
    }

    fn refill(&mut self, i: usize) -> Result<(), StorageError> {
        self.heads[i] = self.sets[i].next().transpose()?;
        Ok(())
    }

    fn finish(&mut self) {
        self.finished = true;
        for set in &self.sets {
            self.annotations.merge(set.annotations().clone());
        }
    }

    fn step(&mut self) -> Result<Option<Box<dyn Series + 'q>>, StorageError> {
        if !self.started {
            self.started = true;
            for i in 0..self.sets.len() {
                self.refill(i)?;
            }
        }
        let Some(min) = self
            .heads
            .iter()
            .flatten()
            .map(|s| s.labels())
            .min()
            .cloned()
        else {
            return Ok(None);
        };
        let mut parts = Vec::new();
        for i in 0..self.heads.len() {
            if self.heads[i].as_ref().is_some_and(|s| *s.labels() == min) {
                parts.push(self.heads[i].take().expect("checked above"));
                self.refill(i)?;
            }
        }
        if parts.len() == 1 {
            return Ok(parts.pop());
        }
        Ok(Some(Box::new(MergedSeries { labels: min, parts })))
    }
}

impl<'q> Iterator for MergeSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.step() {
            Ok(Some(series)) => Some(Ok(series)),
            Ok(None) => {
                self.finish();
                None
            }
            Err(e) => {
                self.finish();
                Some(Err(e))
            }
        }
    }
}

impl<'q> SeriesSet<'q> for MergeSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

/// One series present in several sources.
struct MergedSeries<'q> {
    labels: Labels,
    parts: Vec<Box<dyn Series + 'q>>,
}

impl Series for MergedSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(MergeSamples {
            cursors: vec![Cursor::Fresh; self.parts.len()],
            its: self.parts.iter().map(|p| p.samples()).collect(),
            current: None,
            error: None,
        })
    }
}

/// Where one merged iterator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Not moved yet.
    Fresh,
    /// On a sample.
    Valid,
    /// Exhausted (or failed).
    Done,
}

/// Merges sample iterators by timestamp; on equal timestamps the earliest
/// iterator's sample is the one seen.
struct MergeSamples<'a> {
    its: Vec<Box<dyn SampleIterator + 'a>>,
    cursors: Vec<Cursor>,
    current: Option<Sample>,
    error: Option<StorageError>,
}

impl MergeSamples<'_> {
    fn note(&mut self, i: usize, ok: bool) {
        self.cursors[i] = if ok { Cursor::Valid } else { Cursor::Done };
        if !ok && self.error.is_none() {
            self.error = self.its[i].err().cloned();
        }
    }

    fn pick(&mut self) -> bool {
        let mut best: Option<Sample> = None;
        if self.error.is_none() {
            for (i, it) in self.its.iter().enumerate() {
                if self.cursors[i] == Cursor::Valid {
                    let s = it.at();
                    if best.is_none_or(|b| s.t < b.t) {
                        best = Some(s);
                    }
                }
            }
        }
        self.current = best;
        best.is_some()
    }
}

impl SampleIterator for MergeSamples<'_> {
    fn next(&mut self) -> bool {
        let current = self.current;
        for i in 0..self.its.len() {
            let advance = match self.cursors[i] {
                Cursor::Fresh => true,
                Cursor::Valid => current.is_some_and(|c| self.its[i].at().t == c.t),
                Cursor::Done => false,
            };
            if advance {
                let ok = self.its[i].next();
                self.note(i, ok);
            }
        }
        self.pick()
    }

    fn seek(&mut self, t: i64) -> bool {
        if let Some(c) = self.current
            && c.t >= t
        {
            return true;
        }
        for i in 0..self.its.len() {
            if self.cursors[i] != Cursor::Done {
                let ok = self.its[i].seek(t);
                self.note(i, ok);
            }
        }
        self.pick()
    }

    fn at(&self) -> Sample {
        self.current.unwrap_or(Sample { t: 0, v: 0.0 })
    }

    fn err(&self) -> Option<&StorageError> {
        self.error.as_ref()
    }
}

/// Owned series, sorted by labels.
#[derive(Debug)]
pub struct VecSeriesSet<'q> {
    series: std::vec::IntoIter<(Labels, Vec<Sample>)>,
    annotations: Annotations,
    _borrow: std::marker::PhantomData<&'q ()>,
}

impl VecSeriesSet<'_> {
    /// `series` must be sorted by labels and unique.
    pub fn new(series: Vec<(Labels, Vec<Sample>)>, annotations: Annotations) -> Self {
        Self {
            series: series.into_iter(),
            annotations,
            _borrow: std::marker::PhantomData,
        }
    }
}

impl<'q> Iterator for VecSeriesSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.series.next().map(|(labels, samples)| {
            Ok(Box::new(VecSeries { labels, samples }) as Box<dyn Series + 'q>)
        })
    }
}

impl<'q> SeriesSet<'q> for VecSeriesSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

struct VecSeries {
    labels: Labels,
    samples: Vec<Sample>,
}

impl Series for VecSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(VecSamples::new(&self.samples))
    }
}

/// The labels of every series of a set (errors end the list).
pub fn collect_labels<'q>(set: Box<dyn SeriesSet<'q> + 'q>) -> Vec<Labels> {
    set.filter_map(Result::ok)
        .map(|s| s.labels().clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::storage::{Appendable, MemStorage, Queryable, collect_samples};

    fn storage(series: &[(&str, &[(i64, f64)])]) -> MemStorage {
        let s = MemStorage::new();
        let mut app = s.appender();
        for (name, samples) in series {
            let labels = Labels::new([("__name__", *name)]).unwrap();
            for &(t, v) in *samples {
                app.append(None, &labels, t, v).unwrap();
            }
        }
        app.commit().unwrap();
        s
    }

    #[test]
    fn merges_series_and_samples_with_the_primary_winning() {
        let a = storage(&[("x", &[(1, 1.0), (3, 3.0)]), ("z", &[(1, 1.0)])]);
        let b = storage(&[
            ("x", &[(2, 20.0), (3, 30.0), (4, 40.0)]),
            ("y", &[(5, 5.0)]),
        ]);
        let q = MergeQuerier::new(vec![a.querier(0, 10).unwrap(), b.querier(0, 10).unwrap()]);
        let mut set = q.select(false, None, &[]).unwrap();
        let mut got = vec![];
        for s in set.by_ref() {
            let s = s.unwrap();
            let samples = collect_samples(s.samples().as_mut()).unwrap();
            got.push((
                s.labels().get("__name__").unwrap().to_owned(),
                samples.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(),
            ));
        }
        assert_eq!(
            got,
            vec![
                ("x".into(), vec![(1, 1.0), (2, 20.0), (3, 3.0), (4, 40.0)]),
                ("y".into(), vec![(5, 5.0)]),
                ("z".into(), vec![(1, 1.0)]),
            ]
        );
        let mut set = q.select(true, None, &[]).unwrap();
        let x = set.next().unwrap().unwrap();
        let mut it = x.samples();
        assert!(it.seek(2));
        assert_eq!(it.at().t, 2);
        assert!(it.seek(1), "seek never moves back");
        assert_eq!(it.at().t, 2);
        assert!(it.seek(4));
        assert_eq!(it.at().v, 40.0);
        assert!(!it.seek(5));
        let names = q.label_values("__name__", &[], None).unwrap();
        assert_eq!(names.values, vec!["x", "y", "z"]);
    }
}
