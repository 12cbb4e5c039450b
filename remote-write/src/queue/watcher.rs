//! The WAL watcher: one thread per queue that reads the newest checkpoint
//! for series, then every segment in order, and follows the last one as it
//! is written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ember_model::labels::{Labels, LabelsBuilder};
use ember_model::relabel;
use ember_tsdb::wal::{
    self, DecodedSeries, LiveReader, Reader, RecordType, RefSample, WalError, decode_metadata,
    decode_samples, decode_series,
};

use super::shard::Shards;
use super::{Mode, Pending, Shared};
use crate::encode::{Metadata, SeriesEntry};
use crate::progress::Position;

/// Pause after an error before reading again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct CacheEntry {
    /// `None`: dropped by relabelling.
    series: Option<Arc<SeriesEntry>>,
    /// The newest segment (or checkpoint) that stated the series.
    segment: u64,
}

pub(crate) struct Watcher {
    shared: Arc<Shared>,
    shards: Arc<Shards>,
    cache: HashMap<u64, CacheEntry>,
    /// Samples at or before this position were acknowledged before a
    /// restart.
    marker: Option<Position>,
    /// A queue without a marker sends samples from its start time on, as
    /// Prometheus does.
    start_ms: Option<i64>,
    /// With a marker: the end of the WAL when the queue started. Records
    /// after the marker and up to here may have been delivered by the
    /// previous run.
    replay_end: Option<Position>,
    seq: u64,
    checkpoint_read: Option<u64>,
    samples: Vec<RefSample>,
    local: Vec<Vec<Pending>>,
    highest_ms: i64,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Watcher {
    /// A watcher resuming after `marker`, or sending samples from
    /// `start_ms` on when there is none.
    pub(crate) fn new(shared: Arc<Shared>, marker: Option<Position>, start_ms: i64) -> Self {
        let shards = shared.current_shards();
        Self {
            start_ms: marker.is_none().then_some(start_ms),
            shared,
            shards,
            cache: HashMap::new(),
            marker,
            replay_end: None,
            seq: 0,
            checkpoint_read: None,
            samples: Vec::new(),
            local: Vec::new(),
            highest_ms: i64::MIN,
        }
    }

    pub(crate) fn run(mut self) {
        if self.marker.is_some() {
            self.replay_end = self.wal_end();
        }
        loop {
            match self.follow() {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(
                        remote_name = %self.shared.settings.remote_name,
                        %error,
                        "Remote-write WAL watcher failed; starting over from the checkpoint"
                    );
                    if self.shared.wait_mode(ERROR_BACKOFF) != Mode::Run {
                        return;
                    }
                }
            }
        }
    }

    /// The last segment and its length now; `None` when unreadable (then
    /// nothing counts as resent).
    fn wal_end(&self) -> Option<Position> {
        let segment = *wal::list_segment_indexes(self.wal_dir()).ok()?.last()?;
        let length = std::fs::metadata(self.wal_dir().join(wal::segment_name(segment)))
            .ok()?
            .len();
        Some(Position {
            segment,
            offset: length,
        })
    }

    fn wal_dir(&self) -> &Path {
        &self.shared.settings.wal_dir
    }

    /// Reads the newest checkpoint unless read already; returns the first
    /// segment to read after it.
    fn start_segment(&mut self, at_least: u64) -> Result<u64, WalError> {
        let segments = wal::list_segment_indexes(self.wal_dir())?;
        let mut first = segments.first().copied().unwrap_or(0).max(at_least);
        if let Some((index, dir)) = wal::list_checkpoints(self.wal_dir())?.pop() {
            if self.checkpoint_read != Some(index) {
                self.read_checkpoint(index, &dir)?;
            }
            first = first.max(index + 1);
        }
        if let Some(marker) = self.marker {
            let last = segments.last().copied().unwrap_or(0);
            if marker.segment > last {
                tracing::warn!(
                    remote_name = %self.shared.settings.remote_name,
                    marker = ?marker,
                    last_segment = last,
                    "Remote-write progress marker is ahead of the WAL (a new WAL?); sending from now"
                );
                self.marker = None;
                self.start_ms = Some(now_ms());
            } else if marker.segment < first {
                tracing::warn!(
                    remote_name = %self.shared.settings.remote_name,
                    marker_segment = marker.segment,
                    first_segment = first,
                    "Remote write fell behind the WAL's retention: samples in deleted segments are not sent"
                );
            }
        }
        Ok(first)
    }

    /// Reads series and metadata of a checkpoint, then forgets series that
    /// only older segments stated (the head dropped them).
    fn read_checkpoint(&mut self, index: u64, dir: &Path) -> Result<(), WalError> {
        let mut reader = Reader::open_range(dir, 0, u64::MAX)?;
        while let Some(record) = reader.next_record()? {
            self.series_or_metadata(record, index)?;
        }
        self.cache.retain(|_, entry| entry.segment >= index);
        self.checkpoint_read = Some(index);
        Ok(())
    }

    fn follow(&mut self) -> Result<(), WalError> {
        let mut segment = self.start_segment(0)?;
        loop {
            let mut reader = match LiveReader::open(self.wal_dir(), segment, 0) {
                Ok(reader) => reader,
                Err(WalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    // Deleted by truncation before we got here, or not
                    // created yet.
                    let next = self.start_segment(segment)?;
                    if next == segment
                        && self.shared.wait_mode(self.shared.settings.poll_interval) != Mode::Run
                    {
                        return Ok(());
                    }
                    segment = next;
                    continue;
                }
                Err(error) => return Err(error),
            };
            loop {
                if !self.read_available(&mut reader)? {
                    return Ok(());
                }
                self.maybe_reshard();
                let next_path = self.wal_dir().join(wal::segment_name(segment + 1));
                let current_path = self.wal_dir().join(wal::segment_name(segment));
                if next_path.exists() || !current_path.exists() {
                    // The writer finished this segment before creating the
                    // next: what is left in it is complete now.
                    if !self.read_available(&mut reader)? {
                        return Ok(());
                    }
                    if reader.in_partial_record() {
                        tracing::warn!(
                            remote_name = %self.shared.settings.remote_name,
                            segment,
                            "WAL segment ends in a torn record; continuing with the next"
                        );
                    }
                    segment += 1;
                    if let Some((index, _)) = wal::list_checkpoints(self.wal_dir())?.last()
                        && self.checkpoint_read != Some(*index)
                        && *index < segment
                    {
                        // A checkpoint replaced segments we have read: use
                        // it to forget series the head no longer has.
                        segment = self.start_segment(segment)?;
                    }
                    break;
                }
                match self.shared.mode() {
                    Mode::Run => {
                        if self.shared.wait_mode(self.shared.settings.poll_interval) == Mode::Stop {
                            return Ok(());
                        }
                    }
                    // Caught up with the writer.
                    Mode::Drain | Mode::Stop => return Ok(()),
                }
            }
        }
    }

    /// Processes every complete record in the reader. `false` when told to
    /// stop.
    fn read_available(&mut self, reader: &mut LiveReader) -> Result<bool, WalError> {
        let segment = reader.segment();
        while let Some(record) = reader.next_record()? {
            if RecordType::of(record) != RecordType::Samples {
                self.series_or_metadata(record, segment)?;
                continue;
            }
            self.samples.clear();
            decode_samples(record, &mut self.samples)?;
            let position = Position {
                segment,
                offset: reader.offset(),
            };
            if !self.enqueue(position) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn series_or_metadata(&mut self, record: &[u8], segment: u64) -> Result<(), WalError> {
        match RecordType::of(record) {
            RecordType::Series => {
                let mut series: Vec<DecodedSeries<'_>> = Vec::new();
                decode_series(record, &mut series)?;
                for s in &series {
                    let entry = self.make_entry(&s.labels, s.series_ref);
                    self.cache.insert(
                        s.series_ref,
                        CacheEntry {
                            series: entry,
                            segment,
                        },
                    );
                }
            }
            RecordType::Metadata => {
                if !self.shared.settings.metadata.send {
                    return Ok(());
                }
                let mut entries = Vec::new();
                decode_metadata(record, &mut entries)?;
                for m in entries {
                    let Some(CacheEntry {
                        series: Some(series),
                        ..
                    }) = self.cache.get_mut(&m.series_ref)
                    else {
                        continue;
                    };
                    let metadata = Metadata {
                        metric_type: m.metric_type as u8,
                        unit: m.unit.to_owned(),
                        help: m.help.to_owned(),
                    };
                    if series.metadata.as_deref() == Some(&metadata) {
                        continue;
                    }
                    if let Some(name) = series.labels.metric_name() {
                        self.shared
                            .metadata
                            .lock()
                            .expect("metadata lock")
                            .insert(name.to_owned(), metadata.clone());
                    }
                    *series = Arc::new(SeriesEntry::new(
                        series.labels.clone(),
                        Some(Arc::new(metadata)),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// External labels (where the series lacks them), then
    /// `write_relabel_configs`; `None` when dropped.
    fn make_entry(&self, pairs: &[(&str, &str)], series_ref: u64) -> Option<Arc<SeriesEntry>> {
        let settings = &self.shared.settings;
        let labels = match Labels::new(pairs.iter().copied()) {
            Ok(labels) => labels,
            Err(error) => {
                tracing::warn!(series_ref, %error, "Skipping a WAL series with invalid labels");
                return None;
            }
        };
        let labels = if settings.external_labels.is_empty() {
            labels
        } else {
            let mut builder = LabelsBuilder::new(labels);
            for (name, value) in &settings.external_labels {
                if builder.get(name).is_none() {
                    builder.set(name, value);
                }
            }
            builder.labels()
        };
        let labels = relabel::process_labels(&labels, &settings.write_relabel_configs)?;
        if labels.is_empty() {
            return None;
        }
        // Metadata comes in its own records; an entry restated by a later
        // series record keeps what was known.
        let metadata = self
            .cache
            .get(&series_ref)
            .and_then(|e| e.series.as_ref())
            .and_then(|s| s.metadata.clone());
        Some(Arc::new(SeriesEntry::new(labels, metadata)))
    }

    /// Queues the samples in `self.samples`, read from the record ending at
    /// `position`. `false` when told to stop while waiting for room.
    fn enqueue(&mut self, position: Position) -> bool {
        if self.marker.is_some_and(|marker| position <= marker) {
            return true;
        }
        let shard_count = self.shards.len().max(1);
        self.local.resize_with(shard_count, Vec::new);
        self.seq += 1;
        let seq = self.seq;
        if self.replay_end.is_some_and(|end| position <= end) {
            // Before the samples reach a shard, which looks at it.
            self.shared.replayed_seq.store(seq, Ordering::Release);
        }
        let age_limit = self.shared.settings.queue.sample_age_limit;
        let oldest_ms = (!age_limit.is_zero()).then(|| now_ms() - age_limit.as_millis() as i64);
        let mut dropped = 0u64;
        let mut queued = 0u64;
        for sample in &self.samples {
            if self.start_ms.is_some_and(|start| sample.t < start) {
                continue;
            }
            if oldest_ms.is_some_and(|oldest| sample.t < oldest) {
                dropped += 1;
                continue;
            }
            let Some(series) = self
                .cache
                .get(&sample.series_ref)
                .and_then(|entry| entry.series.as_ref())
            else {
                dropped += 1;
                continue;
            };
            self.highest_ms = self.highest_ms.max(sample.t);
            self.local[(sample.series_ref % shard_count as u64) as usize].push(Pending {
                series: series.clone(),
                t: sample.t,
                v: sample.v,
                seq,
            });
            queued += 1;
        }
        if dropped > 0 {
            self.shared.metrics.samples_dropped_total.inc_by(dropped);
        }
        if self.highest_ms != i64::MIN {
            self.shared
                .metrics
                .highest_timestamp
                .set(self.highest_ms as f64 / 1000.0);
        }
        self.shared
            .positions
            .lock()
            .expect("positions lock")
            .push_back((seq, position));
        for (index, samples) in self.local.iter_mut().enumerate() {
            if samples.is_empty() {
                continue;
            }
            if !self.shards.shards()[index].push(&self.shared, samples) {
                samples.clear();
                return false;
            }
        }
        self.shared
            .counters
            .samples_in
            .fetch_add(queued, Ordering::Relaxed);
        self.shared.last_seq.store(seq, Ordering::Release);
        true
    }

    /// Replaces the shards when the reshard loop asked for another count:
    /// the old shards send everything they hold first, so no series'
    /// samples are sent out of order by two shards.
    fn maybe_reshard(&mut self) {
        let target = self.shared.reshard_to.swap(0, Ordering::AcqRel);
        if target == 0 || target == self.shards.len() {
            return;
        }
        self.shards.close();
        while !self.shards.finished() {
            if self.shared.wait_mode(Duration::from_millis(10)) == Mode::Stop {
                return;
            }
        }
        let shards = Shards::start(&self.shared, target);
        *self.shared.shards.write().expect("shards lock") = shards.clone();
        self.shards = shards;
        self.shared.metrics.shards.set(target as i64);
    }
}
