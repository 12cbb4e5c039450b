//! Reading the head: the [`Querier`] of a [`crate::Db`].
//!
//! A querier registers its read id with [`super::isolation::Isolation`] when
//! it is created and keeps it until it is dropped. `select` evaluates the
//! matchers on the postings (a list of ids), sorts the series by labels if
//! asked to, and returns a lazy set: each series is snapshotted (its chunk
//! references, a copy of the few bytes of its open chunk, its visible
//! out-of-order samples) only when the set reaches it, and its samples are
//! decoded only when iterated.

use std::collections::BTreeSet;
use std::sync::Arc;

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::{
    Annotations, LabelQueryResult, Querier, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError,
};

use super::isolation::ReadGuard;
use super::series::{MemSeries, SeriesSnapshot};
use crate::db::DbInner;

/// The [`Querier`] of a [`crate::Db`] over `[mint, maxt]`.
#[derive(Debug)]
pub(crate) struct HeadQuerier {
    db: Arc<DbInner>,
    guard: ReadGuard,
    mint: i64,
    maxt: i64,
}

impl HeadQuerier {
    pub(crate) fn new(db: Arc<DbInner>, mint: i64, maxt: i64) -> Self {
        let guard = db.head.isolation.reader();
        Self {
            db,
            guard,
            mint,
            maxt,
        }
    }

    fn snapshot(&self, series: &MemSeries) -> SeriesSnapshot {
        let mut snapshot = series.lock().snapshot(
            self.guard.read_id(),
            self.mint,
            self.maxt,
            &self.db.head.files,
        );
        snapshot.set_deleted(self.db.head.deleted(series.id));
        snapshot
    }

    fn has_samples(&self, series: &MemSeries) -> bool {
        self.snapshot(series).has_samples()
    }

    /// The series for sorted `ids`.
    fn series_for(&self, ids: &[u64]) -> Vec<Arc<MemSeries>> {
        ids.iter()
            .filter_map(|&id| self.db.head.series(id))
            .collect()
    }

    fn matching_ids(&self, matchers: &[Matcher]) -> Vec<u64> {
        self.db.head.postings().select(matchers)
    }

    /// Whether any of `ids` has a visible sample in range.
    fn any_has_samples(&self, ids: &[u64]) -> bool {
        ids.iter().any(|&id| {
            self.db
                .head
                .series(id)
                .is_some_and(|series| self.has_samples(&series))
        })
    }
}

impl Querier for HeadQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        let ids = self.matching_ids(matchers);
        let mut series = self.series_for(&ids);
        if sorted {
            series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        }
        Ok(Box::new(HeadSeriesSet {
            querier: self,
            series: series.into_iter(),
            remaining: hints.and_then(|h| h.limit).unwrap_or(usize::MAX),
            annotations: Annotations::new(),
        }))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut values = Vec::new();
        if matchers.is_empty() {
            // Walk the values in order and stop at the limit; a value
            // counts when one of its series has data in range.
            let candidates: Vec<(String, Vec<u64>)> = self
                .db
                .head
                .postings()
                .values(name)
                .filter(|(value, _)| !value.is_empty())
                .map(|(value, ids)| (value.to_owned(), ids.to_vec()))
                .collect();
            for (value, ids) in candidates {
                if values.len() >= limit {
                    break;
                }
                if self.any_has_samples(&ids) {
                    values.push(value);
                }
            }
        } else {
            let ids = self.matching_ids(matchers);
            let mut found = BTreeSet::new();
            for series in self.series_for(&ids) {
                if let Some(value) = series.labels.get(name)
                    && !value.is_empty()
                    && !found.contains(value)
                    && self.has_samples(&series)
                {
                    found.insert(value.to_owned());
                }
            }
            values.extend(found.into_iter().take(limit));
        }
        Ok(LabelQueryResult {
            values,
            annotations: Annotations::new(),
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut names = Vec::new();
        if matchers.is_empty() {
            let candidates: Vec<(String, Vec<Vec<u64>>)> = {
                let postings = self.db.head.postings();
                postings
                    .names()
                    .into_iter()
                    .map(|name| {
                        let lists = postings.values(name).map(|(_, ids)| ids.to_vec()).collect();
                        (name.to_owned(), lists)
                    })
                    .collect()
            };
            for (name, lists) in candidates {
                if names.len() >= limit {
                    break;
                }
                if lists.iter().any(|ids| self.any_has_samples(ids)) {
                    names.push(name);
                }
            }
        } else {
            let ids = self.matching_ids(matchers);
            let mut found = BTreeSet::new();
            for series in self.series_for(&ids) {
                if series.labels.names().all(|n| found.contains(n)) {
                    continue;
                }
                if self.has_samples(&series) {
                    found.extend(series.labels.names().map(str::to_owned));
                }
            }
            names.extend(found.into_iter().take(limit));
        }
        Ok(LabelQueryResult {
            values: names,
            annotations: Annotations::new(),
        })
    }
}

/// The lazy [`SeriesSet`] of a select.
struct HeadSeriesSet<'q> {
    querier: &'q HeadQuerier,
    series: std::vec::IntoIter<Arc<MemSeries>>,
    remaining: usize,
    annotations: Annotations,
}

impl<'q> Iterator for HeadSeriesSet<'q> {
    type Item = Result<Box<dyn Series + 'q>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        for series in self.series.by_ref() {
            let snapshot = self.querier.snapshot(&series);
            if snapshot.has_samples() {
                self.remaining -= 1;
                return Some(Ok(Box::new(HeadSeries {
                    labels: series.labels.clone(),
                    snapshot,
                })));
            }
        }
        None
    }
}

impl<'q> SeriesSet<'q> for HeadSeriesSet<'q> {
    fn annotations(&self) -> &Annotations {
        &self.annotations
    }
}

/// One series of a select.
#[derive(Debug)]
struct HeadSeries {
    labels: Labels,
    snapshot: SeriesSnapshot,
}

impl Series for HeadSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(self.snapshot.iter())
    }
}
