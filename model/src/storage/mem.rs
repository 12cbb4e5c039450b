//! [`MemStorage`]: a small in-memory storage, written to be obviously
//! correct rather than fast. It is the oracle that the TSDB's property
//! tests compare against and the storage of PromQL unit tests.
//!
//! Committed data is an immutable snapshot — a `BTreeMap` from [`Labels`]
//! to the series' sorted samples — behind an `Arc`. A querier clones the
//! `Arc` (that is the whole of isolation); a commit builds the next
//! snapshot copy-on-write under a lock and swaps it in (that is the whole
//! of atomicity). Series data sits behind its own `Arc` so a commit copies
//! only the series it touches.
//!
//! Native histogram samples sit in the same timeline as floats, marked by
//! a placeholder value, with their histograms in a per-series map by
//! timestamp; only series that have histograms pay for the lookup.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::{
    AppendError, Appendable, Appender, EXEMPLAR_MAX_LABEL_CHARS, ExemplarQueryResult,
    ExemplarQueryable, LabelQueryResult, ListSeriesSet, Querier, Queryable, SampleIterator,
    SelectHints, Series, SeriesRef, SeriesSet, SliceSampleIterator, StorageError,
};
use crate::histogram::{CounterResetHint, FloatHistogram};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::Metadata;
use crate::sample::{Exemplar, Sample};

/// The value a histogram sample has in a series' timeline: a NaN with a
/// payload of its own, so duplicate checks against floats see a
/// different value. Whether a sample is a histogram is decided by the
/// histogram map, never by these bits.
const HISTOGRAM_PLACEHOLDER_BITS: u64 = 0x7ff0_0000_0000_0b1e;

/// Admission rules of a [`MemStorage`], mirroring the TSDB head's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemStorageOptions {
    /// Samples older than this are refused with
    /// [`AppendError::OutOfBounds`].
    pub min_valid_time: i64,
    /// Out-of-order window in ms. `0` refuses any sample older than its
    /// series' newest ([`AppendError::OutOfOrder`]); otherwise such a sample
    /// is accepted if it is not older than the newest timestamp in the
    /// storage minus the window ([`AppendError::TooOld`] if it is).
    pub out_of_order_window: i64,
}

impl Default for MemStorageOptions {
    fn default() -> Self {
        Self {
            min_valid_time: i64::MIN,
            out_of_order_window: 0,
        }
    }
}

/// An in-memory [`Appendable`] + [`Queryable`] with transactional commits.
///
/// Cloning gives another handle to the same storage. Series refs are
/// never reused or forgotten.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    options: MemStorageOptions,
    /// The committed state. Readers clone the `Arc`; commits replace it.
    committed: RwLock<Arc<Snapshot>>,
    refs: Mutex<RefTable>,
    /// Samples dropped at commit because a concurrent commit made them
    /// invalid (see the [`Appender`] contract).
    dropped_at_commit: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    series: BTreeMap<Labels, Arc<SeriesData>>,
    /// The newest sample timestamp in the storage, for the out-of-order
    /// window.
    max_t: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct SeriesData {
    /// Strictly increasing timestamps.
    samples: Vec<Sample>,
    /// The histograms of the histogram samples in `samples`, by timestamp.
    histograms: BTreeMap<i64, FloatHistogram>,
    exemplars: Vec<Exemplar>,
    metadata: Option<Metadata>,
}

#[derive(Debug, Default)]
struct RefTable {
    by_labels: HashMap<Labels, SeriesRef>,
    /// `by_ref[i]` has ref `i + 1` (0 is never issued).
    by_ref: Vec<Labels>,
}

impl MemStorage {
    /// An empty storage with default options (no lower bound, no
    /// out-of-order window).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty storage with `options`.
    pub fn with_options(options: MemStorageOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                ..Inner::default()
            }),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(
            &self
                .inner
                .committed
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The committed samples of `labels` (empty if none); histogram
    /// samples appear with a NaN placeholder value (see
    /// [`MemStorage::histograms`]).
    pub fn samples(&self, labels: &Labels) -> Vec<Sample> {
        self.snapshot()
            .series
            .get(labels)
            .map(|data| data.samples.clone())
            .unwrap_or_default()
    }

    /// The committed histogram samples of `labels` (empty if none).
    pub fn histograms(&self, labels: &Labels) -> Vec<(i64, FloatHistogram)> {
        self.snapshot()
            .series
            .get(labels)
            .map(|data| {
                data.histograms
                    .iter()
                    .map(|(t, h)| (*t, h.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The committed exemplars of `labels`, oldest first.
    pub fn exemplars(&self, labels: &Labels) -> Vec<Exemplar> {
        self.snapshot()
            .series
            .get(labels)
            .map(|data| data.exemplars.clone())
            .unwrap_or_default()
    }

    /// The committed metadata of `labels`.
    pub fn metadata(&self, labels: &Labels) -> Option<Metadata> {
        self.snapshot()
            .series
            .get(labels)
            .and_then(|data| data.metadata.clone())
    }

    /// How many committed series have at least one sample.
    pub fn series_count(&self) -> usize {
        self.snapshot()
            .series
            .values()
            .filter(|data| !data.samples.is_empty())
            .count()
    }

    /// Samples dropped at commit because a concurrent commit to the same
    /// series had made them invalid.
    pub fn dropped_at_commit(&self) -> u64 {
        self.inner.dropped_at_commit.load(Ordering::Relaxed)
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            inner: Arc::clone(&self.inner),
            pending: BTreeMap::new(),
        })
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(MemQuerier {
            snapshot: self.snapshot(),
            mint,
            maxt,
        }))
    }
}

impl ExemplarQueryable for MemStorage {
    fn select_exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<ExemplarQueryResult>, StorageError> {
        let snapshot = self.snapshot();
        Ok(snapshot
            .series
            .iter()
            .filter(|(labels, _)| {
                matcher_sets
                    .iter()
                    .any(|set| set.iter().all(|m| m.matches_labels(labels)))
            })
            .filter_map(|(labels, data)| {
                let exemplars: Vec<Exemplar> = data
                    .exemplars
                    .iter()
                    .filter(|e| e.ts.is_some_and(|t| start <= t && t <= end))
                    .cloned()
                    .collect();
                (!exemplars.is_empty()).then(|| ExemplarQueryResult {
                    series: labels.clone(),
                    exemplars,
                })
            })
            .collect())
    }
}

/// What a sample's admission check decided.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Store it.
    Add,
    /// An identical sample is stored already; nothing to do.
    AlreadyPresent,
}

impl Inner {
    /// Applies the admission rules to `(t, v)` for `series`, whose stored
    /// samples are the union of the sorted slices in `existing`.
    fn admit(
        &self,
        series: &Labels,
        existing: [&[Sample]; 2],
        storage_max_t: Option<i64>,
        t: i64,
        v: f64,
    ) -> Result<Admission, AppendError> {
        let options = self.options;
        if t < options.min_valid_time {
            return Err(AppendError::OutOfBounds {
                series: series.clone(),
                t,
                min_valid_t: options.min_valid_time,
            });
        }
        let last_t = existing.iter().filter_map(|s| s.last().map(|s| s.t)).max();
        if let Some(last_t) = last_t
            && t < last_t
        {
            if options.out_of_order_window <= 0 {
                return Err(AppendError::OutOfOrder {
                    series: series.clone(),
                    t,
                    last_t,
                });
            }
            let newest = storage_max_t.map_or(last_t, |max_t| max_t.max(last_t));
            let horizon = newest.saturating_sub(options.out_of_order_window);
            if t < horizon {
                return Err(AppendError::TooOld {
                    series: series.clone(),
                    t,
                    min_valid_t: horizon,
                });
            }
        }
        for samples in existing {
            if let Ok(index) = samples.binary_search_by_key(&t, |s| s.t) {
                let stored = samples[index].v;
                return if stored.to_bits() == v.to_bits() {
                    Ok(Admission::AlreadyPresent)
                } else {
                    Err(AppendError::DuplicateSampleForTimestamp {
                        series: series.clone(),
                        t,
                        existing: stored,
                        new: v,
                    })
                };
            }
        }
        Ok(Admission::Add)
    }

    fn admit_exemplar(
        series: &Labels,
        existing: [&[Exemplar]; 2],
        exemplar: &Exemplar,
    ) -> Result<i64, AppendError> {
        let Some(t) = exemplar.ts else {
            return Err(AppendError::ExemplarMissingTimestamp {
                series: series.clone(),
            });
        };
        let length: usize = exemplar
            .labels
            .iter()
            .map(|(name, value)| name.chars().count() + value.chars().count())
            .sum();
        if length > EXEMPLAR_MAX_LABEL_CHARS {
            return Err(AppendError::ExemplarLabelsTooLong {
                series: series.clone(),
                length,
                limit: EXEMPLAR_MAX_LABEL_CHARS,
            });
        }
        // The newest exemplar is the last of the pending ones, else of the
        // committed ones.
        if let Some(newest) = existing.iter().rev().find_map(|e| e.last()) {
            let newest_t = newest.ts.unwrap_or(i64::MIN);
            if newest_t == t
                && newest.value.to_bits() == exemplar.value.to_bits()
                && newest.labels == exemplar.labels
            {
                return Err(AppendError::DuplicateExemplar {
                    series: series.clone(),
                    t,
                });
            }
            if t < newest_t {
                return Err(AppendError::ExemplarOutOfOrder {
                    series: series.clone(),
                    t,
                    last_t: newest_t,
                });
            }
        }
        Ok(t)
    }

    /// The series for `series_ref` if this storage issued it, else for
    /// `labels` (creating its ref).
    fn resolve(
        &self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
    ) -> Result<(SeriesRef, Labels), AppendError> {
        let mut refs = self.refs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(series_ref) = series_ref
            && let Some(known) = usize::try_from(series_ref.get())
                .ok()
                .and_then(|id| id.checked_sub(1))
                .and_then(|index| refs.by_ref.get(index))
        {
            return Ok((series_ref, known.clone()));
        }
        if labels.is_empty() {
            return Err(AppendError::EmptyLabelSet);
        }
        if let Some(&series_ref) = refs.by_labels.get(labels) {
            return Ok((series_ref, labels.clone()));
        }
        refs.by_ref.push(labels.clone());
        let series_ref = SeriesRef::new(refs.by_ref.len() as u64);
        refs.by_labels.insert(labels.clone(), series_ref);
        Ok((series_ref, labels.clone()))
    }
}

/// Everything one transaction holds for one series.
#[derive(Debug)]
struct Pending {
    labels: Labels,
    /// Strictly increasing timestamps.
    samples: Vec<Sample>,
    /// Histograms of the histogram samples in `samples`.
    histograms: BTreeMap<i64, FloatHistogram>,
    exemplars: Vec<Exemplar>,
    metadata: Option<Metadata>,
}

/// The [`Appender`] of [`MemStorage`]. Its buffer lives in the appender, so
/// dropping it is a rollback with no further code.
#[derive(Debug)]
struct MemAppender {
    inner: Arc<Inner>,
    pending: BTreeMap<SeriesRef, Pending>,
}

impl MemAppender {
    fn pending_for(&mut self, series_ref: SeriesRef, labels: Labels) -> &mut Pending {
        self.pending.entry(series_ref).or_insert_with(|| Pending {
            labels,
            samples: Vec::new(),
            histograms: BTreeMap::new(),
            exemplars: Vec::new(),
            metadata: None,
        })
    }

    fn committed_series(&self, labels: &Labels) -> (Option<Arc<SeriesData>>, Option<i64>) {
        let snapshot = self
            .inner
            .committed
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (snapshot.series.get(labels).cloned(), snapshot.max_t)
    }
}

impl Appender for MemAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let (series_ref, labels) = self.inner.resolve(series, labels)?;
        let (committed, storage_max_t) = self.committed_series(&labels);
        let committed_samples = committed.as_deref().map_or(&[][..], |d| &d.samples);
        let pending_samples = self
            .pending
            .get(&series_ref)
            .map_or(&[][..], |p| &p.samples);
        let admission = self.inner.admit(
            &labels,
            [committed_samples, pending_samples],
            storage_max_t,
            t,
            v,
        )?;
        if admission == Admission::Add {
            let pending = self.pending_for(series_ref, labels);
            let index = pending.samples.partition_point(|s| s.t < t);
            pending.samples.insert(index, Sample::new(t, v));
        }
        Ok(series_ref)
    }

    fn append_histogram(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        histogram: &FloatHistogram,
    ) -> Result<SeriesRef, AppendError> {
        let (series_ref, labels) = self.inner.resolve(series, labels)?;
        histogram
            .validate()
            .map_err(|source| AppendError::InvalidHistogram {
                series: labels.clone(),
                source,
            })?;
        let (committed, storage_max_t) = self.committed_series(&labels);
        let pending = self.pending.get(&series_ref);
        let same_histogram = |data: Option<&BTreeMap<i64, FloatHistogram>>| {
            data.and_then(|h| h.get(&t))
                .map(|stored| stored.equals(histogram))
        };
        match same_histogram(committed.as_deref().map(|d| &d.histograms))
            .or_else(|| same_histogram(pending.map(|p| &p.histograms)))
        {
            Some(true) => return Ok(series_ref),
            Some(false) => {
                return Err(AppendError::DuplicateSampleForTimestamp {
                    series: labels,
                    t,
                    existing: f64::from_bits(HISTOGRAM_PLACEHOLDER_BITS),
                    new: f64::from_bits(HISTOGRAM_PLACEHOLDER_BITS),
                });
            }
            None => {}
        }
        let committed_samples = committed.as_deref().map_or(&[][..], |d| &d.samples);
        let pending_samples = pending.map_or(&[][..], |p| &p.samples);
        self.inner.admit(
            &labels,
            [committed_samples, pending_samples],
            storage_max_t,
            t,
            f64::from_bits(HISTOGRAM_PLACEHOLDER_BITS),
        )?;
        let pending = self.pending_for(series_ref, labels);
        let index = pending.samples.partition_point(|s| s.t < t);
        pending.samples.insert(
            index,
            Sample::new(t, f64::from_bits(HISTOGRAM_PLACEHOLDER_BITS)),
        );
        pending.histograms.insert(t, histogram.clone());
        Ok(series_ref)
    }

    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        let (series_ref, labels) = self.inner.resolve(series, labels)?;
        let (committed, _) = self.committed_series(&labels);
        let committed_exemplars = committed.as_deref().map_or(&[][..], |d| &d.exemplars);
        let pending_exemplars = self
            .pending
            .get(&series_ref)
            .map_or(&[][..], |p| &p.exemplars);
        Inner::admit_exemplar(&labels, [committed_exemplars, pending_exemplars], exemplar)?;
        self.pending_for(series_ref, labels)
            .exemplars
            .push(exemplar.clone());
        Ok(series_ref)
    }

    fn update_metadata(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        metadata: &Metadata,
    ) -> Result<SeriesRef, AppendError> {
        let (series_ref, labels) = self.inner.resolve(series, labels)?;
        self.pending_for(series_ref, labels).metadata = Some(metadata.clone());
        Ok(series_ref)
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let MemAppender { inner, pending } = *self;
        if pending.is_empty() {
            return Ok(());
        }
        let mut committed = inner
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Copy-on-write: if queriers hold the current snapshot, this clones
        // the map (of `Arc`s) and they keep reading the old one.
        let snapshot = Arc::make_mut(&mut committed);
        let mut dropped = 0u64;
        for pending in pending.into_values() {
            let storage_max_t = snapshot.max_t;
            let data = Arc::make_mut(snapshot.series.entry(pending.labels.clone()).or_default());
            let mut new_max_t = storage_max_t;
            // Re-check against what is committed now: another appender may
            // have committed to this series since `append`.
            for sample in pending.samples {
                match inner.admit(
                    &pending.labels,
                    [&data.samples, &[]],
                    storage_max_t,
                    sample.t,
                    sample.v,
                ) {
                    Ok(Admission::Add) => {
                        let index = data.samples.partition_point(|s| s.t < sample.t);
                        data.samples.insert(index, sample);
                        if let Some(histogram) = pending.histograms.get(&sample.t) {
                            data.histograms.insert(sample.t, histogram.clone());
                        }
                        new_max_t = Some(new_max_t.map_or(sample.t, |m| m.max(sample.t)));
                    }
                    Ok(Admission::AlreadyPresent) => {}
                    Err(_) => dropped += 1,
                }
            }
            for exemplar in pending.exemplars {
                if Inner::admit_exemplar(&pending.labels, [&data.exemplars, &[]], &exemplar).is_ok()
                {
                    data.exemplars.push(exemplar);
                }
            }
            if let Some(metadata) = pending.metadata {
                data.metadata = Some(metadata);
            }
            snapshot.max_t = new_max_t;
        }
        if dropped > 0 {
            inner
                .dropped_at_commit
                .fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        // The buffer is dropped with the appender.
        Ok(())
    }
}

/// The [`Querier`] of [`MemStorage`]: a snapshot and a range.
#[derive(Debug)]
struct MemQuerier {
    snapshot: Arc<Snapshot>,
    mint: i64,
    maxt: i64,
}

impl MemQuerier {
    /// Series matching `matchers` with at least one sample in range, in
    /// label order, with the index range of their in-range samples.
    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
    ) -> impl Iterator<Item = (&'a Labels, &'a Arc<SeriesData>, Range<usize>)> + 'a {
        self.snapshot
            .series
            .iter()
            .filter_map(move |(labels, data)| {
                if !matchers.iter().all(|m| m.matches_labels(labels)) {
                    return None;
                }
                let start = data.samples.partition_point(|s| s.t < self.mint);
                let end = data.samples.partition_point(|s| s.t <= self.maxt);
                (start < end).then_some((labels, data, start..end))
            })
    }
}

impl Querier for MemQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<Box<dyn SeriesSet<'_> + '_>, StorageError> {
        // Always sorted: the map is ordered by `Labels`, which is allowed
        // when unsorted output was asked for too.
        let limit = hints.and_then(|h| h.limit).unwrap_or(usize::MAX);
        let series: Vec<Box<dyn Series>> = self
            .matching(matchers)
            .take(limit)
            .map(|(labels, data, range)| {
                Box::new(MemSeries {
                    labels: labels.clone(),
                    data: Arc::clone(data),
                    range,
                }) as Box<dyn Series>
            })
            .collect();
        Ok(Box::new(ListSeriesSet::new(series, Default::default())))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let values: BTreeSet<&str> = self
            .matching(matchers)
            .filter_map(|(labels, _, _)| labels.get(name))
            .filter(|value| !value.is_empty())
            .collect();
        Ok(LabelQueryResult {
            values: values
                .into_iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(str::to_owned)
                .collect(),
            annotations: Default::default(),
        })
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        limit: Option<usize>,
    ) -> Result<LabelQueryResult, StorageError> {
        let names: BTreeSet<&str> = self
            .matching(matchers)
            .flat_map(|(labels, _, _)| labels.names())
            .collect();
        Ok(LabelQueryResult {
            values: names
                .into_iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(str::to_owned)
                .collect(),
            annotations: Default::default(),
        })
    }
}

/// A series of a [`MemQuerier`]: shares the snapshot's data.
#[derive(Debug)]
struct MemSeries {
    labels: Labels,
    data: Arc<SeriesData>,
    range: Range<usize>,
}

impl Series for MemSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples(&self) -> Box<dyn SampleIterator + '_> {
        let samples = self.data.samples.get(self.range.clone()).unwrap_or(&[]);
        if self.data.histograms.is_empty() {
            Box::new(SliceSampleIterator::new(samples))
        } else {
            Box::new(MemHistogramIterator {
                all: &self.data.samples,
                range: self.range.clone(),
                position: None,
                histograms: &self.data.histograms,
                current: None,
            })
        }
    }

    fn may_have_histograms(&self) -> bool {
        !self.data.histograms.is_empty()
    }
}

/// The iterator of a series that has histogram samples. It reports the
/// counter-reset hint a TSDB read reports: a histogram appended with an
/// unknown hint reads as `CounterReset` or `NotCounterReset` when the
/// sample before it is a histogram (by comparing the two), and stays
/// unknown after a float or at the start of the series, where Prometheus
/// starts a new chunk.
struct MemHistogramIterator<'a> {
    all: &'a [Sample],
    range: Range<usize>,
    /// Index into `all`; `None` before the first `next`/`seek`.
    position: Option<usize>,
    histograms: &'a BTreeMap<i64, FloatHistogram>,
    current: Option<FloatHistogram>,
}

impl MemHistogramIterator<'_> {
    fn settle(&mut self) -> bool {
        let Some(index) = self.position.filter(|i| *i < self.range.end) else {
            self.current = None;
            return false;
        };
        let t = self.all[index].t;
        self.current = self.histograms.get(&t).map(|h| {
            let mut h = h.clone();
            if h.counter_reset_hint == CounterResetHint::Unknown
                && let Some(previous) = index
                    .checked_sub(1)
                    .and_then(|p| self.histograms.get(&self.all[p].t))
            {
                h.counter_reset_hint = if h.detect_reset(previous) {
                    CounterResetHint::CounterReset
                } else {
                    CounterResetHint::NotCounterReset
                };
            }
            h
        });
        true
    }
}

impl SampleIterator for MemHistogramIterator<'_> {
    fn next(&mut self) -> bool {
        let next = match self.position {
            None => self.range.start,
            Some(index) if index >= self.range.end => return false,
            Some(index) => index + 1,
        };
        self.position = Some(next);
        self.settle()
    }

    fn seek(&mut self, t: i64) -> bool {
        let start = match self.position {
            None => self.range.start,
            Some(index) if index >= self.range.end => return false,
            Some(index) if self.all[index].t >= t => return true,
            Some(index) => index + 1,
        };
        let index = start + self.all[start..self.range.end].partition_point(|s| s.t < t);
        self.position = Some(index);
        self.settle()
    }

    fn at(&self) -> Sample {
        self.position
            .filter(|i| *i < self.range.end)
            .map_or(Sample::new(i64::MIN, f64::NAN), |i| self.all[i])
    }

    fn at_histogram(&self) -> Option<&FloatHistogram> {
        self.current.as_ref()
    }

    fn err(&self) -> Option<&StorageError> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;
    use crate::metadata::MetricType;
    use crate::sample::{STALE_NAN_BITS, stale_nan};
    use crate::storage::{Storage, collect_samples};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).expect("valid labels")
    }

    fn up(instance: &str) -> Labels {
        labels(&[("__name__", "up"), ("instance", instance), ("job", "node")])
    }

    /// Every series selected by `matchers` over `[mint, maxt]`, with samples.
    fn select(
        storage: &dyn Storage,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Vec<(Labels, Vec<Sample>)> {
        let querier = storage.querier(mint, maxt).expect("querier");
        read_all(querier.as_ref(), matchers)
    }

    fn read_all(querier: &dyn Querier, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        querier
            .select(true, None, matchers)
            .expect("select")
            .map(|series| {
                let series = series.expect("series");
                let samples = collect_samples(series.samples().as_mut()).expect("samples");
                (series.labels().clone(), samples)
            })
            .collect()
    }

    fn append_all(storage: &MemStorage, series: &Labels, samples: &[(i64, f64)]) {
        let mut app = storage.appender();
        for &(t, v) in samples {
            app.append(None, series, t, v).expect("append");
        }
        app.commit().expect("commit");
    }

    #[test]
    fn commit_makes_samples_visible_in_order() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(1, 1.0), (2, 0.0), (3, 1.0)]);
        append_all(&storage, &up("b"), &[(2, 5.0)]);
        let result = select(
            &storage,
            i64::MIN,
            i64::MAX,
            &[Matcher::equal("__name__", "up")],
        );
        assert_eq!(
            result,
            vec![
                (
                    up("a"),
                    vec![
                        Sample::new(1, 1.0),
                        Sample::new(2, 0.0),
                        Sample::new(3, 1.0)
                    ]
                ),
                (up("b"), vec![Sample::new(2, 5.0)]),
            ]
        );
        assert_eq!(storage.series_count(), 2);
    }

    #[test]
    fn nothing_is_visible_before_commit_and_rollback_discards() {
        let storage = MemStorage::new();
        let mut app = storage.appender();
        app.append(None, &up("a"), 1, 1.0).expect("append");
        assert!(select(&storage, 0, 10, &[]).is_empty());
        app.rollback().expect("rollback");
        assert!(select(&storage, 0, 10, &[]).is_empty());

        // Dropping without commit is a rollback too.
        {
            let mut app = storage.appender();
            app.append(None, &up("a"), 1, 1.0).expect("append");
        }
        assert!(select(&storage, 0, 10, &[]).is_empty());
        assert_eq!(storage.series_count(), 0);
    }

    #[test]
    fn queriers_are_isolated_from_later_commits() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(1, 1.0)]);
        let before = storage.querier(0, 100).expect("querier");

        // A multi-series commit after the querier was opened.
        let mut app = storage.appender();
        app.append(None, &up("a"), 2, 2.0).expect("append");
        app.append(None, &up("b"), 2, 2.0).expect("append");
        app.commit().expect("commit");

        assert_eq!(
            read_all(before.as_ref(), &[]),
            vec![(up("a"), vec![Sample::new(1, 1.0)])]
        );
        let names = before.label_values("instance", &[], None).expect("values");
        assert_eq!(names.values, ["a"]);

        let after = storage.querier(0, 100).expect("querier");
        assert_eq!(
            read_all(after.as_ref(), &[]),
            vec![
                (up("a"), vec![Sample::new(1, 1.0), Sample::new(2, 2.0)]),
                (up("b"), vec![Sample::new(2, 2.0)]),
            ]
        );
    }

    #[test]
    fn commits_are_atomic_under_concurrent_readers() {
        // A writer commits batches that each add one sample to every one of
        // 20 series; a reader must always see every series with the same
        // number of samples.
        let storage = MemStorage::new();
        let series: Vec<Labels> = (0..20).map(|i| up(&i.to_string())).collect();
        std::thread::scope(|scope| {
            let writer_storage = storage.clone();
            let writer_series = series.clone();
            scope.spawn(move || {
                for t in 0..200 {
                    let mut app = writer_storage.appender();
                    for s in &writer_series {
                        app.append(None, s, t, t as f64).expect("append");
                    }
                    app.commit().expect("commit");
                }
            });
            for _ in 0..200 {
                let result = select(&storage, i64::MIN, i64::MAX, &[]);
                let counts: BTreeSet<usize> = result.iter().map(|(_, s)| s.len()).collect();
                assert!(
                    result.is_empty() || (result.len() == 20 && counts.len() == 1),
                    "saw a partial commit: {} series, counts {counts:?}",
                    result.len()
                );
            }
        });
        assert_eq!(select(&storage, 0, 1000, &[])[0].1.len(), 200);
    }

    #[test]
    fn out_of_order_and_duplicates_are_typed() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(10, 1.0)]);
        let mut app = storage.appender();
        // Against committed data.
        let err = app.append(None, &up("a"), 9, 1.0).unwrap_err();
        assert!(
            matches!(err, AppendError::OutOfOrder { t: 9, last_t: 10, ref series } if *series == up("a")),
            "{err}"
        );
        let err = app.append(None, &up("a"), 10, 2.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp {
                t: 10,
                existing: 1.0,
                new: 2.0,
                ..
            }
        ));
        assert!(err.is_sample_rejection());
        // The identical sample is a no-op, not an error.
        app.append(None, &up("a"), 10, 1.0)
            .expect("identical sample accepted");
        // Against this appender's own pending samples.
        app.append(None, &up("a"), 20, 1.0).expect("append");
        let err = app.append(None, &up("a"), 15, 1.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::OutOfOrder {
                t: 15,
                last_t: 20,
                ..
            }
        ));
        let err = app.append(None, &up("a"), 20, 3.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 20, .. }
        ));
        // The appender is still usable after rejections.
        app.append(None, &up("a"), 30, 1.0).expect("append");
        app.commit().expect("commit");
        let samples = storage.samples(&up("a"));
        assert_eq!(
            samples.iter().map(|s| s.t).collect::<Vec<_>>(),
            [10, 20, 30]
        );
    }

    #[test]
    fn duplicates_compare_bits() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(1, f64::NAN)]);
        let mut app = storage.appender();
        app.append(None, &up("a"), 1, f64::NAN)
            .expect("same NaN bits");
        let err = app.append(None, &up("a"), 1, stale_nan()).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 1, .. }
        ));
        app.append(None, &up("a"), 2, stale_nan()).expect("append");
        app.append(None, &up("a"), 2, stale_nan())
            .expect("same stale marker");
        let err = app.append(None, &up("a"), 2, f64::NAN).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 2, .. }
        ));
        let err = app.append(None, &up("a"), 2, 0.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 2, .. }
        ));
        app.commit().expect("commit");
        let samples = storage.samples(&up("a"));
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].v.to_bits(), f64::NAN.to_bits());
        assert_eq!(
            samples[1].v.to_bits(),
            STALE_NAN_BITS,
            "stale marker kept bit-exact"
        );
        // Positive and negative zero differ by their bits.
        append_all(&storage, &up("b"), &[(1, 0.0)]);
        let mut app = storage.appender();
        let err = app.append(None, &up("b"), 1, -0.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 1, .. }
        ));
    }

    #[test]
    fn out_of_bounds_and_too_old() {
        let storage = MemStorage::with_options(MemStorageOptions {
            min_valid_time: 1_000,
            out_of_order_window: 100,
        });
        let mut app = storage.appender();
        let err = app.append(None, &up("a"), 999, 1.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::OutOfBounds {
                t: 999,
                min_valid_t: 1_000,
                ..
            }
        ));
        app.append(None, &up("a"), 2_000, 1.0).expect("append");
        app.commit().expect("commit");

        let mut app = storage.appender();
        // Within the window: accepted although out of order.
        app.append(None, &up("a"), 1_950, 2.0).expect("in window");
        app.append(None, &up("a"), 1_900, 3.0)
            .expect("at the window start");
        let err = app.append(None, &up("a"), 1_899, 4.0).unwrap_err();
        assert!(
            matches!(
                err,
                AppendError::TooOld {
                    t: 1_899,
                    min_valid_t: 1_900,
                    ..
                }
            ),
            "{err}"
        );
        // The window is relative to the newest sample in the whole storage.
        app.append(None, &up("b"), 1_850, 1.0)
            .expect("new series, in order");
        app.append(None, &up("b"), 1_800, 1.0)
            .map(drop)
            .unwrap_err();
        let err = app.append(None, &up("a"), 1_950, 9.0).unwrap_err();
        assert!(matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 1_950, .. }
        ));
        app.commit().expect("commit");
        assert_eq!(
            storage
                .samples(&up("a"))
                .iter()
                .map(|s| s.t)
                .collect::<Vec<_>>(),
            [1_900, 1_950, 2_000]
        );
    }

    #[test]
    fn concurrent_commits_drop_samples_that_became_invalid() {
        let storage = MemStorage::new();
        let mut first = storage.appender();
        let mut second = storage.appender();
        first.append(None, &up("a"), 5, 1.0).expect("append");
        second.append(None, &up("a"), 10, 1.0).expect("append");
        second.append(None, &up("b"), 10, 1.0).expect("append");
        second.commit().expect("commit");
        // `first`'s sample is now out of order; the rest of its
        // transaction still commits.
        first.append(None, &up("c"), 5, 1.0).expect("append");
        first.commit().expect("commit");
        assert_eq!(storage.samples(&up("a")), vec![Sample::new(10, 1.0)]);
        assert_eq!(storage.samples(&up("c")), vec![Sample::new(5, 1.0)]);
        assert_eq!(storage.dropped_at_commit(), 1);
    }

    #[test]
    fn series_refs_skip_labels_and_fall_back() {
        let storage = MemStorage::new();
        let mut app = storage.appender();
        let a = app.append(None, &up("a"), 1, 1.0).expect("append");
        let b = app.append(None, &up("b"), 1, 1.0).expect("append");
        assert_ne!(a, b);
        assert_eq!(app.append(None, &up("a"), 2, 1.0).expect("append"), a);
        // A known ref wins over the labels (which the caller must keep
        // consistent; the ref fast path does not re-check them).
        assert_eq!(app.append(Some(a), &up("a"), 3, 1.0).expect("append"), a);
        // An unknown ref falls back to the labels.
        let unknown = SeriesRef::new(9_999);
        assert_eq!(
            app.append(Some(unknown), &up("b"), 2, 1.0).expect("append"),
            b
        );
        let err = app
            .append(Some(unknown), &Labels::EMPTY, 2, 1.0)
            .unwrap_err();
        assert!(matches!(err, AppendError::EmptyLabelSet));
        let err = app.append(None, &Labels::EMPTY, 2, 1.0).unwrap_err();
        assert!(matches!(err, AppendError::EmptyLabelSet));
        app.commit().expect("commit");
        // Refs outlive the transaction.
        let mut app = storage.appender();
        assert_eq!(app.append(Some(a), &up("a"), 4, 1.0).expect("append"), a);
        app.commit().expect("commit");
        assert_eq!(storage.samples(&up("a")).len(), 4);
        assert_eq!(storage.samples(&up("b")).len(), 2);
    }

    #[test]
    fn select_filters_by_matchers_and_range() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(10, 1.0), (20, 1.0), (30, 1.0)]);
        append_all(&storage, &up("b"), &[(40, 1.0)]);
        append_all(
            &storage,
            &labels(&[("__name__", "other"), ("job", "api")]),
            &[(20, 7.0)],
        );
        let re = |name: &str, value: &str| Matcher::new(MatchOp::Regex, name, value).expect("re");

        // Range is inclusive at both ends and trims samples.
        let result = select(&storage, 20, 30, &[Matcher::equal("__name__", "up")]);
        assert_eq!(
            result,
            vec![(up("a"), vec![Sample::new(20, 1.0), Sample::new(30, 1.0)])]
        );
        // Series with no sample in range are not returned.
        assert!(select(&storage, 31, 39, &[Matcher::equal("__name__", "up")]).is_empty());
        // Several matchers all apply; absent labels match "".
        let result = select(
            &storage,
            0,
            100,
            &[re("job", "node|api"), Matcher::equal("instance", "")],
        );
        assert_eq!(result.len(), 1);
        assert_eq!(result[0].0.metric_name(), Some("other"));
        let result = select(
            &storage,
            0,
            100,
            &[Matcher::not_equal("instance", "a"), re("__name__", ".+")],
        );
        assert_eq!(
            result.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
            vec![labels(&[("__name__", "other"), ("job", "api")]), up("b")]
        );

        // Limit from the hints.
        let querier = storage.querier(0, 100).expect("querier");
        let hints = SelectHints {
            limit: Some(1),
            ..SelectHints::default()
        };
        let set = querier.select(false, Some(&hints), &[]).expect("select");
        assert!(set.annotations().is_empty());
        assert_eq!(set.count(), 1);
    }

    #[test]
    fn label_names_and_values() {
        let storage = MemStorage::new();
        append_all(&storage, &up("a"), &[(10, 1.0)]);
        append_all(&storage, &up("b"), &[(50, 1.0)]);
        append_all(
            &storage,
            &labels(&[("__name__", "x"), ("zone", "eu")]),
            &[(10, 1.0)],
        );
        let querier = storage.querier(0, 20).expect("querier");
        assert_eq!(
            querier.label_names(&[], None).expect("names").values,
            ["__name__", "instance", "job", "zone"]
        );
        assert_eq!(
            querier
                .label_names(&[Matcher::equal("__name__", "up")], None)
                .expect("names")
                .values,
            ["__name__", "instance", "job"]
        );
        assert_eq!(
            querier.label_names(&[], Some(2)).expect("names").values,
            ["__name__", "instance"]
        );
        // "b" has no sample in [0, 20].
        assert_eq!(
            querier
                .label_values("instance", &[], None)
                .expect("values")
                .values,
            ["a"]
        );
        assert_eq!(
            querier
                .label_values("__name__", &[], None)
                .expect("values")
                .values,
            ["up", "x"]
        );
        assert_eq!(
            querier
                .label_values("__name__", &[], Some(1))
                .expect("values")
                .values,
            ["up"]
        );
        assert!(
            querier
                .label_values("absent", &[], None)
                .expect("values")
                .values
                .is_empty()
        );
    }

    #[test]
    fn histograms_are_stored_and_iterated_with_floats() {
        use crate::histogram::Span;
        let storage = MemStorage::new();
        let series = labels(&[("__name__", "h")]);
        let histogram = FloatHistogram {
            count: 2.0,
            sum: 3.0,
            positive_spans: vec![Span::new(0, 1)],
            positive_buckets: vec![2.0],
            ..FloatHistogram::default()
        };
        let mut app = storage.appender();
        app.append(None, &series, 1_000, 1.0).expect("float");
        app.append_histogram(None, &series, 2_000, &histogram)
            .expect("histogram");
        assert!(matches!(
            app.append(None, &series, 2_000, 5.0),
            Err(AppendError::DuplicateSampleForTimestamp { .. })
        ));
        app.append_histogram(None, &series, 2_000, &histogram)
            .expect("the identical histogram again is a no-op");
        let mut broken = histogram.clone();
        broken.positive_buckets.clear();
        assert!(matches!(
            app.append_histogram(None, &series, 3_000, &broken),
            Err(AppendError::InvalidHistogram { .. })
        ));
        app.commit().expect("commit");

        let querier = storage.querier(0, 10_000).expect("querier");
        let mut set = querier.select(true, None, &[]).expect("select");
        let one = set.next().expect("a series").expect("ok");
        assert!(one.may_have_histograms());
        let mut it = one.samples();
        assert!(it.next());
        assert_eq!(it.at().v, 1.0);
        assert!(it.at_histogram().is_none());
        assert!(it.next());
        assert_eq!(it.at().t, 2_000);
        assert_eq!(
            it.at_histogram(),
            Some(&histogram),
            "after a float the hint stays unknown"
        );
        assert!(!it.next());
        assert_eq!(storage.histograms(&series), [(2_000, histogram)]);
    }

    #[test]
    fn exemplars_and_metadata_commit_with_the_transaction() {
        let storage = MemStorage::new();
        let series = up("a");
        let trace = labels(&[("trace_id", "abc")]);
        let exemplar = |ts: Option<i64>, value: f64| Exemplar {
            labels: trace.clone(),
            value,
            ts,
        };
        let mut app = storage.appender();
        let series_ref = app.append(None, &series, 10, 1.0).expect("append");
        app.append_exemplar(Some(series_ref), &series, &exemplar(Some(10), 0.5))
            .expect("exemplar");
        let err = app
            .append_exemplar(Some(series_ref), &series, &exemplar(Some(10), 0.5))
            .unwrap_err();
        assert!(matches!(err, AppendError::DuplicateExemplar { t: 10, .. }));
        let err = app
            .append_exemplar(Some(series_ref), &series, &exemplar(Some(9), 0.7))
            .unwrap_err();
        assert!(matches!(
            err,
            AppendError::ExemplarOutOfOrder {
                t: 9,
                last_t: 10,
                ..
            }
        ));
        let err = app
            .append_exemplar(Some(series_ref), &series, &exemplar(None, 0.7))
            .unwrap_err();
        assert!(matches!(err, AppendError::ExemplarMissingTimestamp { .. }));
        let long = Exemplar {
            labels: labels(&[("trace_id", &"x".repeat(121))]),
            value: 1.0,
            ts: Some(11),
        };
        let err = app.append_exemplar(None, &series, &long).unwrap_err();
        assert!(matches!(
            err,
            AppendError::ExemplarLabelsTooLong {
                length: 129,
                limit: 128,
                ..
            }
        ));
        let metadata = Metadata::new(MetricType::Gauge, "Whether up.", "");
        app.update_metadata(Some(series_ref), &series, &metadata)
            .expect("metadata");

        assert!(storage.exemplars(&series).is_empty());
        assert_eq!(storage.metadata(&series), None);
        app.commit().expect("commit");
        assert_eq!(storage.exemplars(&series), vec![exemplar(Some(10), 0.5)]);
        assert_eq!(storage.metadata(&series), Some(metadata));

        // Queried by time range and alternative matcher sets.
        let mut app = storage.appender();
        app.append_exemplar(None, &series, &exemplar(Some(20), 0.9))
            .expect("exemplar");
        app.append_exemplar(None, &up("b"), &exemplar(Some(15), 0.1))
            .expect("exemplar");
        app.commit().expect("commit");
        let query = |start, end, sets: &[Vec<Matcher>]| {
            storage
                .select_exemplars(start, end, sets)
                .expect("select")
                .into_iter()
                .map(|r| {
                    (
                        r.series,
                        r.exemplars.iter().filter_map(|e| e.ts).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let any_up = vec![vec![Matcher::equal("__name__", "up")]];
        assert_eq!(
            query(0, 100, &any_up),
            vec![(up("a"), vec![10, 20]), (up("b"), vec![15])]
        );
        assert_eq!(query(11, 19, &any_up), vec![(up("b"), vec![15])]);
        let alternatives = vec![
            vec![Matcher::equal("instance", "a")],
            vec![Matcher::equal("instance", "zzz")],
        ];
        assert_eq!(query(0, 100, &alternatives), vec![(up("a"), vec![10, 20])]);
        assert!(query(0, 100, &[]).is_empty());
    }
}
