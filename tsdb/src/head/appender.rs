//! The append transaction.
//!
//! An appender buffers samples and metadata, checking each sample as it
//! arrives against the series' committed samples and its own buffer. Commit
//! runs under the commit lock (the mutex around the WAL), so commits are
//! totally ordered:
//!
//! 1. take the next write id;
//! 2. re-check the buffered samples whose series another commit has moved
//!    past them since `append` (rare; such samples are dropped and counted);
//! 3. log one WAL batch: series records for series the WAL does not know
//!    yet, metadata, one samples record — one `write`, fsynced if the
//!    [`crate::SyncPolicy`] says so;
//! 4. publish the samples into the series (stamping each touched series
//!    with the write id, see [`super::isolation`]);
//! 5. mark the write id published: queriers created from now on see it.
//!
//! If the WAL write fails, nothing has been published. Dropping the
//! appender drops its buffer, which is the rollback.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ember_model::labels::Labels;
use ember_model::metadata::{Metadata, MetricType as ModelType};
use ember_model::sample::Exemplar;
use ember_model::storage::{AppendError, Appender, SeriesRef, StorageError};

use super::series::MemSeries;
use super::{Admission, IdMap, PendingView};
use crate::db::DbInner;
use crate::wal::{MetricType, Record, RefMetadata, RefSample, RefSeries};

#[derive(Debug)]
struct PendingSeries {
    series: Arc<MemSeries>,
    /// Newest buffered timestamp and its value bits.
    max_t: i64,
    max_v_bits: u64,
    has_samples: bool,
    metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Copy)]
struct PendingSample {
    id: u64,
    t: i64,
    v: f64,
}

/// The [`Appender`] of a [`crate::Db`].
#[derive(Debug)]
pub(crate) struct HeadAppender {
    db: Arc<DbInner>,
    samples: Vec<PendingSample>,
    series: IdMap<PendingSeries>,
}

struct View<'a> {
    pending: Option<&'a PendingSeries>,
    samples: &'a [PendingSample],
}

impl PendingView for View<'_> {
    fn max_t(&self) -> Option<i64> {
        self.pending.filter(|p| p.has_samples).map(|p| p.max_t)
    }

    fn find(&self, t: i64) -> Option<u64> {
        let pending = self.pending.filter(|p| p.has_samples)?;
        if pending.max_t == t {
            return Some(pending.max_v_bits);
        }
        // Older buffered samples (rare: a re-sent or out-of-order sample)
        // need a scan of the buffer.
        let id = pending.series.id;
        self.samples
            .iter()
            .find(|s| s.id == id && s.t == t)
            .map(|s| s.v.to_bits())
    }
}

impl HeadAppender {
    pub(crate) fn new(db: Arc<DbInner>) -> Self {
        Self {
            db,
            samples: Vec::new(),
            series: IdMap::default(),
        }
    }

    /// The series for `series_ref` (when the head issued it) or `labels`.
    fn resolve(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
    ) -> Result<Arc<MemSeries>, AppendError> {
        if let Some(series_ref) = series_ref {
            let id = series_ref.get();
            if let Some(pending) = self.series.get(&id) {
                return Ok(Arc::clone(&pending.series));
            }
            if let Some(series) = self.db.head.series(id) {
                return Ok(series);
            }
        }
        self.db.head.get_or_create(labels)
    }

    fn pending_for(&mut self, series: Arc<MemSeries>) -> &mut PendingSeries {
        self.series
            .entry(series.id)
            .or_insert_with(|| PendingSeries {
                series,
                max_t: i64::MIN,
                max_v_bits: 0,
                has_samples: false,
                metadata: None,
            })
    }
}

impl Appender for HeadAppender {
    fn append(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        // Fast path: a series this transaction already holds, sample newer
        // than everything committed and buffered.
        if let Some(series_ref) = series_ref
            && let Some(pending) = self.series.get_mut(&series_ref.get())
            && pending.has_samples
            && t > pending.max_t
            && t > pending.series.max_t()
            && t >= self.db.head.min_valid()
        {
            pending.max_t = t;
            pending.max_v_bits = v.to_bits();
            self.samples.push(PendingSample {
                id: series_ref.get(),
                t,
                v,
            });
            return Ok(series_ref);
        }
        let series = self.resolve(series_ref, labels)?;
        let id = series.id;
        let view = View {
            pending: self.series.get(&id),
            samples: &self.samples,
        };
        let admission = self.db.head.admit(&series, Some(&view), t, v)?;
        if admission == Admission::Add {
            let pending = self.pending_for(series);
            if !pending.has_samples || t > pending.max_t {
                pending.max_t = t;
                pending.max_v_bits = v.to_bits();
            }
            pending.has_samples = true;
            self.samples.push(PendingSample { id, t, v });
        }
        Ok(SeriesRef::new(id))
    }

    fn append_exemplar(
        &mut self,
        _series: Option<SeriesRef>,
        _labels: &Labels,
        _exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        Err(AppendError::ExemplarsDisabled)
    }

    fn update_metadata(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        metadata: &Metadata,
    ) -> Result<SeriesRef, AppendError> {
        let series = self.resolve(series_ref, labels)?;
        let id = series.id;
        self.pending_for(series).metadata = Some(metadata.clone());
        Ok(SeriesRef::new(id))
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let HeadAppender {
            db,
            mut samples,
            mut series,
        } = *self;
        if samples.is_empty() && series.values().all(|p| p.metadata.is_none()) {
            return Ok(());
        }
        let head = &db.head;
        let mut wal_guard = db.lock_wal();
        let Some(wal) = wal_guard.as_mut() else {
            return Err(StorageError::Closed);
        };
        let write_id = head.isolation.next_write_id();

        // Head truncation (which runs under this lock) may have removed a
        // series this transaction holds since `append`: commit into its
        // successor, created afresh (with a new id and WAL record).
        for pending in series.values_mut() {
            if pending.series.is_removed() {
                pending.series = head.get_or_create(&pending.series.labels).map_err(|e| {
                    StorageError::other(crate::TsdbError::InvalidOptions(e.to_string()))
                })?;
            }
        }

        // Re-check samples that another commit has overtaken since
        // `append`, and drop those that a block now covers (the head was
        // cut since `append`); the others are still valid as they were
        // checked.
        let min_valid = head.min_valid();
        let mut dropped = 0u64;
        let mut retained = Vec::with_capacity(samples.len());
        for sample in samples.drain(..) {
            let Some(pending) = series.get(&sample.id) else {
                continue;
            };
            if sample.t < min_valid {
                dropped += 1;
                continue;
            }
            if sample.t > pending.series.max_t() {
                retained.push(sample);
                continue;
            }
            match head.admit(&pending.series, None, sample.t, sample.v) {
                Ok(Admission::Add) => retained.push(sample),
                Ok(Admission::AlreadyPresent) => {}
                Err(AppendError::Storage(error)) => return Err(error),
                Err(_) => dropped += 1,
            }
        }
        let samples = retained;
        if dropped > 0 {
            db.dropped_at_commit.fetch_add(dropped, Ordering::Relaxed);
        }

        // The WAL batch.
        let mut touched: Vec<&PendingSeries> = Vec::new();
        {
            let mut seen = IdMap::<()>::default();
            for sample in &samples {
                if seen.insert(sample.id, ()).is_none()
                    && let Some(pending) = series.get(&sample.id)
                {
                    touched.push(pending);
                }
            }
            for pending in series.values() {
                if pending.metadata.is_some() && seen.insert(pending.series.id, ()).is_none() {
                    touched.push(pending);
                }
            }
        }
        let new_series: Vec<&PendingSeries> = touched
            .iter()
            .copied()
            .filter(|p| !p.series.wal_logged())
            .collect();
        let label_pairs: Vec<Vec<(&str, &str)>> = new_series
            .iter()
            .map(|p| p.series.labels.iter().collect())
            .collect();
        let series_records: Vec<RefSeries<'_>> = new_series
            .iter()
            .zip(&label_pairs)
            .map(|(p, pairs)| RefSeries {
                series_ref: p.series.id,
                labels: pairs,
            })
            .collect();
        let ref_samples: Vec<RefSample> = samples
            .iter()
            .map(|s| RefSample {
                series_ref: series.get(&s.id).map_or(s.id, |p| p.series.id),
                t: s.t,
                v: s.v,
            })
            .collect();
        let metadata: Vec<RefMetadata<'_>> = touched
            .iter()
            .filter_map(|p| {
                p.metadata.as_ref().map(|m| RefMetadata {
                    series_ref: p.series.id,
                    metric_type: wal_metric_type(m.metric_type),
                    unit: &m.unit,
                    help: &m.help,
                })
            })
            .collect();
        // One samples record, last: the WAL repairs a torn write by
        // dropping the torn record and everything after it, so a commit's
        // samples survive a crash all together or not at all, and never
        // without the series records they refer to.
        let mut records = Vec::new();
        if !series_records.is_empty() {
            records.push(Record::Series(&series_records));
        }
        if !metadata.is_empty() {
            records.push(Record::Metadata(&metadata));
        }
        if !ref_samples.is_empty() {
            records.push(Record::Samples(&ref_samples));
        }
        if !records.is_empty() {
            wal.log(&records)
                .map_err(|e| StorageError::other(crate::TsdbError::from(e)))?;
        }
        for pending in &new_series {
            pending.series.set_wal_logged();
        }

        // Publish.
        let low_watermark = head.isolation.low_watermark();
        let policy = head.options.chunk_policy;
        let mut max_t = i64::MIN;
        let mut min_t = i64::MAX;
        let mut i = 0;
        while i < samples.len() {
            let id = samples[i].id;
            let Some(pending) = series.get(&id) else {
                i += 1;
                continue;
            };
            let memseries = &pending.series;
            let mut state = memseries.lock();
            while let Some(sample) = samples.get(i).filter(|s| s.id == id) {
                if sample.t > memseries.max_t() {
                    state.append_in_order(
                        memseries,
                        sample.t,
                        sample.v,
                        Some((write_id, low_watermark)),
                        policy,
                        &head.files,
                    );
                } else {
                    state.insert_out_of_order(sample.t, sample.v, write_id, low_watermark, policy);
                }
                max_t = max_t.max(sample.t);
                min_t = min_t.min(sample.t);
                i += 1;
            }
        }
        for pending in series.values() {
            if let Some(metadata) = &pending.metadata {
                pending.series.lock().set_metadata(metadata.clone());
            }
        }
        head.observe_max_t(max_t);
        head.observe_min_t(min_t);
        head.isolation.publish(write_id);
        Ok(())
    }

    fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        // The buffer goes with the appender.
        Ok(())
    }
}

fn wal_metric_type(t: ModelType) -> MetricType {
    match t {
        ModelType::Counter => MetricType::Counter,
        ModelType::Gauge => MetricType::Gauge,
        ModelType::Histogram => MetricType::Histogram,
        ModelType::GaugeHistogram => MetricType::GaugeHistogram,
        ModelType::Summary => MetricType::Summary,
        ModelType::Info => MetricType::Info,
        ModelType::StateSet => MetricType::StateSet,
        ModelType::Unknown => MetricType::Unknown,
    }
}

/// The model's metric type for a WAL metadata record.
pub(crate) fn model_metric_type(t: MetricType) -> ModelType {
    match t {
        MetricType::Counter => ModelType::Counter,
        MetricType::Gauge => ModelType::Gauge,
        MetricType::Histogram => ModelType::Histogram,
        MetricType::GaugeHistogram => ModelType::GaugeHistogram,
        MetricType::Summary => ModelType::Summary,
        MetricType::Info => ModelType::Info,
        MetricType::StateSet => ModelType::StateSet,
        MetricType::Unknown => ModelType::Unknown,
    }
}
