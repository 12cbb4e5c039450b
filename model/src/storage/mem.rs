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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::{
    AppendError, Appendable, Appender, EXEMPLAR_MAX_LABEL_CHARS, LabelQueryResult, ListSeriesSet,
    Querier, Queryable, SampleIterator, SelectHints, Series, SeriesRef, SeriesSet,
    SliceSampleIterator, StorageError,
};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::metadata::Metadata;
use crate::sample::{Exemplar, Sample};

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

    /// The committed samples of `labels` (empty if none).
    pub fn samples(&self, labels: &Labels) -> Vec<Sample> {
        self.snapshot()
            .series
            .get(labels)
            .map(|data| data.samples.clone())
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
        Box::new(SliceSampleIterator::new(samples))
    }
}
