//! The queue of one remote-write endpoint: a WAL watcher thread feeding
//! shards that batch and send.
//!
//! ```text
//! WAL segments --LiveReader--> watcher thread (series cache, external labels,
//!   write_relabel_configs) --series ref % shards--> shard buffers (capacity)
//!   --> shard tasks (max_samples_per_send / batch_send_deadline, backoff)
//!   --> Destination
//! ```
//!
//! Acknowledgement and the progress marker: every samples record read from
//! the WAL gets a sequence number, and each queued sample carries its
//! record's number. Shards send their buffers in order, so the oldest
//! unacknowledged sample of the queue is the smallest of each shard's
//! oldest in-flight or buffered sample. Every record before it is fully
//! acknowledged; the WAL position after the newest such record is the
//! marker, stored once a second and when the queue stops. A restart reads
//! the WAL again for series and sends only samples after the marker.
//!
//! Resent samples: the marker is stored once a second and batches can be
//! in flight when the process dies, so what a restart resends may partly
//! be in the receiver already. Prometheus refuses a whole request (400,
//! "out of order sample") when one sample is older than its series' newest,
//! which would drop the never-delivered samples sharing a batch with
//! delivered ones. A refused batch holding resent samples is therefore
//! split in halves and each half sent again, down to single samples; only
//! samples refused on their own are dropped.
//!
//! Shards and backpressure: a shard buffers at most `capacity` samples;
//! when one is full the watcher waits (counted in
//! `enqueue_retries_total`), so an outage leaves the backlog in the WAL
//! rather than in memory.

mod shard;
mod watcher;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use ember_config::{MetadataConfig, QueueConfig};
use ember_model::relabel::RelabelConfig;

use crate::destination::Destination;
use crate::encode::{Metadata, Protocol, SeriesEntry};
use crate::metrics::QueueMetrics;
use crate::progress::{Position, ProgressFile};

pub(crate) use shard::Shards;

/// How often the progress marker is stored while running.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Everything a queue needs to know, resolved from its `remote_write`
/// entry and the global configuration.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// `remote_name` label and log field: the configured name, or a hash.
    pub remote_name: String,
    /// `url` label and log field.
    pub url: String,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Queue tuning.
    pub queue: QueueConfig,
    /// Metadata sending.
    pub metadata: MetadataConfig,
    /// External labels, added to series that lack them.
    pub external_labels: Vec<(String, String)>,
    /// Applied after external labels.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// The TSDB's WAL directory.
    pub wal_dir: PathBuf,
    /// The queue's progress marker.
    pub progress: ProgressFile,
    /// How often the watcher looks for new WAL data when it has caught up.
    pub poll_interval: Duration,
    /// How often the desired number of shards is computed.
    pub reshard_interval: Duration,
}

impl QueueSettings {
    /// Settings with Ember's defaults for the intervals.
    pub fn new(remote_name: String, url: String, wal_dir: PathBuf, progress: ProgressFile) -> Self {
        Self {
            remote_name,
            url,
            protocol: Protocol::V1,
            queue: QueueConfig::default(),
            metadata: MetadataConfig::default(),
            external_labels: Vec::new(),
            write_relabel_configs: Vec::new(),
            wal_dir,
            progress,
            poll_interval: Duration::from_millis(10),
            reshard_interval: Duration::from_secs(10),
        }
    }
}

/// Errors starting a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The watcher thread could not be started.
    #[error("starting the WAL watcher thread: {0}")]
    Thread(std::io::Error),
    /// The settings are unusable.
    #[error("invalid remote-write queue settings: {0}")]
    Invalid(String),
}

/// What the watcher should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Follow the WAL.
    Run,
    /// Read to the current end of the WAL, then stop.
    Drain,
    /// Stop now.
    Stop,
}

/// One sample waiting in a shard.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) series: Arc<SeriesEntry>,
    pub(crate) t: i64,
    pub(crate) v: f64,
    pub(crate) seq: u64,
}

/// Throughput counters for the shard calculation, reset at each update.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) samples_in: AtomicU64,
    pub(crate) samples_out: AtomicU64,
    pub(crate) send_nanos: AtomicU64,
    /// Milliseconds since `Shared::epoch` of the last retryable failure + 1
    /// (0 = never).
    pub(crate) last_failure: AtomicU64,
    pub(crate) highest_sent_ms: AtomicI64,
}

/// State shared by the watcher thread, the shard tasks and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) settings: QueueSettings,
    pub(crate) destination: Arc<dyn Destination>,
    pub(crate) metrics: QueueMetrics,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) mode: Mutex<Mode>,
    pub(crate) mode_changed: Condvar,
    pub(crate) shards: RwLock<Arc<Shards>>,
    /// `(sequence number, position after the record)` of samples records
    /// not yet known to be acknowledged.
    pub(crate) positions: Mutex<VecDeque<(u64, Position)>>,
    /// The newest record whose samples are all in shard buffers.
    pub(crate) last_seq: AtomicU64,
    /// The newest record resent after a restart (0: none): it was in the
    /// WAL before the queue started and after the marker, so the previous
    /// run may have delivered it already.
    pub(crate) replayed_seq: AtomicU64,
    pub(crate) acked: Mutex<Option<Position>>,
    pub(crate) reshard_to: AtomicUsize,
    pub(crate) counters: Counters,
    pub(crate) epoch: Instant,
    /// Metadata by metric name, for 1.0 metadata requests.
    pub(crate) metadata: Mutex<HashMap<String, Metadata>>,
}

impl Shared {
    pub(crate) fn mode(&self) -> Mode {
        *self.mode.lock().expect("mode lock")
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode lock") = mode;
        self.mode_changed.notify_all();
    }

    /// Waits up to `timeout` for a mode change; returns the mode.
    pub(crate) fn wait_mode(&self, timeout: Duration) -> Mode {
        let guard = self.mode.lock().expect("mode lock");
        if *guard != Mode::Run {
            return *guard;
        }
        let (guard, _) = self
            .mode_changed
            .wait_timeout(guard, timeout)
            .expect("mode lock");
        *guard
    }

    pub(crate) fn current_shards(&self) -> Arc<Shards> {
        self.shards.read().expect("shards lock").clone()
    }

    /// The position up to which every sample is acknowledged, advancing
    /// the stored state; see the module documentation.
    pub(crate) fn acknowledged(&self) -> Option<Position> {
        // Read before looking at the shards: samples of later records may
        // be in the buffers already, which only makes the bound lower.
        let mut safe = self.last_seq.load(Ordering::Acquire);
        for shard in self.current_shards().shards() {
            if let Some(oldest) = shard.oldest_unacknowledged() {
                safe = safe.min(oldest.saturating_sub(1));
            }
        }
        let mut positions = self.positions.lock().expect("positions lock");
        let mut found = None;
        while let Some(&(seq, position)) = positions.front() {
            if seq > safe {
                break;
            }
            found = Some(position);
            positions.pop_front();
        }
        drop(positions);
        let mut acked = self.acked.lock().expect("acked lock");
        if let Some(position) = found {
            *acked = Some(position);
        }
        *acked
    }

    fn store_progress(&self, last_stored: &mut Option<Position>) {
        let Some(position) = self.acknowledged() else {
            return;
        };
        if *last_stored == Some(position) {
            return;
        }
        match self.settings.progress.store(position) {
            Ok(()) => *last_stored = Some(position),
            Err(error) => tracing::warn!(
                remote_name = %self.settings.remote_name,
                path = %self.settings.progress.path().display(),
                %error,
                "Cannot store the remote-write progress marker"
            ),
        }
    }

    pub(crate) fn note_failure(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.counters.last_failure.store(ms, Ordering::Relaxed);
    }
}

/// A running queue. Stop it with [`Queue::stop`]; dropping it stops the
/// watcher and aborts the shards without flushing.
#[derive(Debug)]
pub struct Queue {
    shared: Arc<Shared>,
    watcher: Option<std::thread::JoinHandle<()>>,
    helpers: Vec<tokio::task::JoinHandle<()>>,
}

impl Queue {
    /// Starts the queue: resumes after its progress marker (or, for a new
    /// queue, with samples from now on), on the current tokio runtime.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] for zero sizes; [`QueueError::Thread`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(
        settings: QueueSettings,
        destination: Arc<dyn Destination>,
        metrics: QueueMetrics,
    ) -> Result<Queue, QueueError> {
        let q = &settings.queue;
        if q.max_samples_per_send == 0 || q.capacity == 0 || q.max_shards == 0 {
            return Err(QueueError::Invalid(
                "capacity, max_shards and max_samples_per_send must be positive".into(),
            ));
        }
        let runtime = tokio::runtime::Handle::current();
        let min_shards = q.min_shards.clamp(1, q.max_shards) as usize;
        metrics.shards_max.set(q.max_shards as i64);
        metrics.shards_min.set(q.min_shards as i64);
        metrics.shards.set(min_shards as i64);
        metrics.shards_desired.set(min_shards as f64);
        // A queue restarted by a reload reuses its metrics; what its
        // predecessor still held is not pending here (it is re-read from
        // the WAL).
        metrics.samples_pending.set(0);
        let marker = settings.progress.load();
        let shared = Arc::new(Shared {
            destination,
            metrics,
            runtime,
            mode: Mutex::new(Mode::Run),
            mode_changed: Condvar::new(),
            shards: RwLock::new(Arc::new(Shards::empty())),
            positions: Mutex::new(VecDeque::new()),
            last_seq: AtomicU64::new(0),
            replayed_seq: AtomicU64::new(0),
            acked: Mutex::new(marker),
            reshard_to: AtomicUsize::new(0),
            counters: Counters::default(),
            epoch: Instant::now(),
            metadata: Mutex::new(HashMap::new()),
            settings,
        });
        *shared.shards.write().expect("shards lock") = Shards::start(&shared, min_shards);
        tracing::info!(
            remote_name = %shared.settings.remote_name,
            url = %shared.settings.url,
            resume = ?marker,
            "Starting remote-write queue"
        );
        let watcher_shared = shared.clone();
        let start_ms = watcher::now_ms();
        let watcher = std::thread::Builder::new()
            .name(format!("rw-wal-{}", shared.settings.remote_name))
            .spawn(move || watcher::Watcher::new(watcher_shared, marker, start_ms).run())
            .map_err(QueueError::Thread)?;
        let mut helpers = vec![
            tokio::spawn(progress_loop(shared.clone())),
            tokio::spawn(shard::reshard_loop(shared.clone())),
        ];
        if shared.settings.metadata.send && shared.settings.protocol == Protocol::V1 {
            helpers.push(tokio::spawn(shard::metadata_loop(shared.clone())));
        }
        Ok(Queue {
            shared,
            watcher: Some(watcher),
            helpers,
        })
    }

    /// The queue's settings.
    pub fn settings(&self) -> &QueueSettings {
        &self.shared.settings
    }

    /// The position up to which every sample is acknowledged.
    pub fn acknowledged(&self) -> Option<Position> {
        self.shared.acknowledged()
    }

    /// The queue's metrics.
    pub fn metrics(&self) -> &QueueMetrics {
        &self.shared.metrics
    }

    /// Stops the queue: the watcher reads the WAL to its current end, the
    /// shards send what they hold, and whatever is not acknowledged when
    /// `deadline` passes stays unsent (and is resent after a restart, as the
    /// stored marker says).
    pub async fn stop(mut self, deadline: Duration) {
        let give_up = tokio::time::Instant::now() + deadline;
        let shared = self.shared.clone();
        shared.set_mode(Mode::Drain);
        if let Some(watcher) = self.watcher.take() {
            let mut join = tokio::task::spawn_blocking(move || watcher.join());
            if tokio::time::timeout_at(give_up, &mut join).await.is_err() {
                shared.set_mode(Mode::Stop);
                let _ = join.await;
            }
        }
        let shards = shared.current_shards();
        shards.close();
        if !shards.join_until(give_up).await {
            tracing::warn!(
                remote_name = %shared.settings.remote_name,
                url = %shared.settings.url,
                pending = shared.metrics.samples_pending.get(),
                "Remote-write queue did not flush before the deadline; the rest is resent after a restart"
            );
        }
        for helper in self.helpers.drain(..) {
            helper.abort();
        }
        let mut stored = None;
        shared.store_progress(&mut stored);
        tracing::info!(
            remote_name = %shared.settings.remote_name,
            acknowledged = ?stored.or_else(|| shared.acknowledged()),
            "Remote-write queue stopped"
        );
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.watcher.is_some() {
            self.shared.set_mode(Mode::Stop);
            self.shared.current_shards().abort();
            for helper in &self.helpers {
                helper.abort();
            }
        }
    }
}

async fn progress_loop(shared: Arc<Shared>) {
    let mut stored = shared.settings.progress.load();
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let shared = shared.clone();
        let mut last = stored;
        stored = tokio::task::spawn_blocking(move || {
            shared.store_progress(&mut last);
            last
        })
        .await
        .unwrap_or(stored);
    }
}
