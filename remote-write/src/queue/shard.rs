//! Shards: buffers filled by the watcher, drained by one sending task each;
//! the desired-shards calculation; 1.0 metadata sending.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Mode, Pending, Shared};
use crate::destination::SendOutcome;
use crate::encode::{Batch, BatchSeries, FamilyMetadata, Sample};

/// Prometheus's thresholds: resharding happens only when the desired
/// number is more than 30% away from the current one.
const SHARD_TOLERANCE: f64 = 0.3;
/// Weight of the newest interval in the rate averages (Prometheus's
/// `ewmaWeight`).
const EWMA_WEIGHT: f64 = 0.2;
/// Share of the backlog the shard count aims to clear per update interval
/// (Prometheus's integral gain).
const BACKLOG_GAIN: f64 = 0.1;

/// The shards of a queue at one shard count.
#[derive(Debug)]
pub(crate) struct Shards {
    shards: Vec<Arc<Shard>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct ShardState {
    queue: VecDeque<Pending>,
    /// When the oldest buffered sample arrived (the batch deadline runs
    /// from here).
    first_at: Option<Instant>,
    /// Sequence number of the first sample of the batch being sent.
    inflight_from: Option<u64>,
    closing: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    state: Mutex<ShardState>,
    data: tokio::sync::Notify,
    space: Condvar,
}

impl Shard {
    /// Sequence number of the oldest sample not yet acknowledged.
    pub(crate) fn oldest_unacknowledged(&self) -> Option<u64> {
        let state = self.state.lock().expect("shard lock");
        state
            .inflight_from
            .or_else(|| state.queue.front().map(|p| p.seq))
    }

    /// Adds samples, waiting while the buffer is at capacity. Returns
    /// `false` (leaving `samples` partly queued) when the queue is told to
    /// stop while waiting.
    pub(crate) fn push(&self, shared: &Shared, samples: &mut Vec<Pending>) -> bool {
        let capacity = shared.settings.queue.capacity as usize;
        let mut state = self.state.lock().expect("shard lock");
        let mut waited = false;
        while state.queue.len() >= capacity {
            if !waited {
                shared.metrics.enqueue_retries_total.inc();
                waited = true;
            }
            if shared.mode() == Mode::Stop {
                return false;
            }
            state = self
                .space
                .wait_timeout(state, Duration::from_millis(50))
                .expect("shard lock")
                .0;
        }
        if state.queue.is_empty() {
            state.first_at = Some(Instant::now());
        }
        let added = samples.len();
        state.queue.extend(samples.drain(..));
        let len = state.queue.len();
        drop(state);
        shared.metrics.samples_pending.add(added as i64);
        // Wake the sender when a batch is full, or to arm the deadline for
        // a buffer that was empty.
        if len >= shared.settings.queue.max_samples_per_send as usize || len == added {
            self.data.notify_one();
        }
        true
    }
}

impl Shards {
    pub(crate) fn empty() -> Self {
        Self {
            shards: Vec::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// `count` shards, each with its sending task.
    pub(crate) fn start(shared: &Arc<Shared>, count: usize) -> Arc<Shards> {
        let shards = Arc::new(Shards {
            shards: (0..count).map(|_| Arc::new(Shard::default())).collect(),
            tasks: Mutex::new(Vec::new()),
        });
        let tasks = shards
            .shards
            .iter()
            .map(|shard| {
                shared
                    .runtime
                    .spawn(run_shard(shared.clone(), shard.clone()))
            })
            .collect();
        *shards.tasks.lock().expect("tasks lock") = tasks;
        shards
    }

    pub(crate) fn shards(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Tells every shard to send what it holds without waiting for full
    /// batches, and to end when empty.
    pub(crate) fn close(&self) {
        for shard in &self.shards {
            shard.state.lock().expect("shard lock").closing = true;
            shard.data.notify_one();
        }
    }

    /// Whether every shard task has ended.
    pub(crate) fn finished(&self) -> bool {
        self.tasks
            .lock()
            .expect("tasks lock")
            .iter()
            .all(|t| t.is_finished())
    }

    /// Waits for the tasks until `deadline`, then aborts the rest. Returns
    /// whether all ended by themselves.
    pub(crate) async fn join_until(&self, deadline: tokio::time::Instant) -> bool {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        let mut clean = true;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                clean = false;
            }
        }
        clean
    }

    pub(crate) fn abort(&self) {
        for task in self.tasks.lock().expect("tasks lock").iter() {
            task.abort();
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.state.lock().expect("shard lock").queue.len())
            .sum()
    }
}

/// Takes batches from `shard` and sends them until the shard is closed and
/// empty.
async fn run_shard(shared: Arc<Shared>, shard: Arc<Shard>) {
    let max = shared.settings.queue.max_samples_per_send as usize;
    let deadline = shared.settings.queue.batch_send_deadline;
    loop {
        let taken: Vec<Pending> = loop {
            let wake_at = {
                let mut state = shard.state.lock().expect("shard lock");
                let due = state.first_at.map(|t| t + deadline);
                let ready = state.queue.len() >= max
                    || (!state.queue.is_empty()
                        && (state.closing || due.is_some_and(|d| Instant::now() >= d)));
                if ready {
                    let n = state.queue.len().min(max);
                    let batch: Vec<Pending> = state.queue.drain(..n).collect();
                    state.inflight_from = Some(batch[0].seq);
                    state.first_at = (!state.queue.is_empty()).then(Instant::now);
                    drop(state);
                    shard.space.notify_all();
                    break batch;
                }
                if state.closing {
                    return;
                }
                due
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = shard.data.notified() => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => shard.data.notified().await,
            }
        };
        shared.metrics.samples_pending.sub(taken.len() as i64);
        // Samples are in sequence order: the first is the oldest.
        if taken[0].seq <= shared.replayed_seq.load(Ordering::Acquire) {
            send_resent(&shared, taken).await;
        } else {
            let batch = build_batch(&shared, taken);
            send_with_retry(&shared, &batch, true).await;
        }
        shard.state.lock().expect("shard lock").inflight_from = None;
    }
}

/// Sends samples that the previous run may have delivered: a refused batch
/// is split in halves, each sent again (first half first, so each series
/// stays in order), down to single samples, so that the samples a receiver
/// already has (Prometheus refuses the whole request for one of them) do
/// not take never-delivered ones with them. Costs up to twice as many
/// requests as samples for a batch the receiver has in full, which only
/// the resend after a restart (about a second of data) can be.
///
/// Samples refused on their own are counted as failed and logged once per
/// batch rather than each with an error: most likely the receiver has them.
async fn send_resent(shared: &Shared, taken: Vec<Pending>) {
    let mut parts = vec![taken];
    let mut refused = 0u64;
    while let Some(part) = parts.pop() {
        let batch = build_batch(shared, part.clone());
        if send_with_retry(shared, &batch, false).await {
            continue;
        }
        if part.len() == 1 {
            refused += 1;
            continue;
        }
        let mut first = part;
        let second = first.split_off(first.len() / 2);
        parts.push(second);
        parts.push(first);
    }
    if refused > 0 {
        shared.metrics.samples_failed_total.inc_by(refused);
        tracing::warn!(
            remote_name = %shared.settings.remote_name,
            url = %shared.settings.url,
            samples = refused,
            "Resent samples refused one by one after a restart (most likely delivered before it); dropped"
        );
    }
}

/// Turns samples into batch series, merging runs of one series. Samples
/// of a series are not gathered from across the batch: in WAL order a
/// series rarely has two samples in one batch, and hashing every sample
/// cost more than it saved.
fn build_batch(shared: &Shared, taken: Vec<Pending>) -> Batch {
    let mut series: Vec<BatchSeries> = Vec::with_capacity(taken.len());
    for pending in taken {
        let sample = Sample {
            t: pending.t,
            v: pending.v,
        };
        match series.last_mut() {
            Some(last) if Arc::ptr_eq(&last.series, &pending.series) => last.samples.push(sample),
            _ => series.push(BatchSeries {
                series: pending.series,
                samples: vec![sample],
            }),
        }
    }
    Batch::new(shared.settings.protocol, series, Vec::new())
}

/// Sends `batch` until it is sent or refused for good, backing off between
/// retryable failures. Counts everything; a refusal is counted and logged
/// as dropped samples only when `last_resort` (otherwise the caller
/// splits the batch and does that itself).
pub(crate) async fn send_with_retry(shared: &Shared, batch: &Batch, last_resort: bool) -> bool {
    let settings = &shared.settings;
    let metrics = &shared.metrics;
    let samples = batch.sample_count() as u64;
    let metadata_only = batch.series.is_empty();
    let mut backoff = settings.queue.min_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let started = Instant::now();
        let outcome = shared.destination.send(batch).await;
        let took = started.elapsed();
        metrics.sent_batch_duration.observe(took.as_secs_f64());
        if let Some(bytes) = batch.payload_len() {
            metrics.bytes_total.inc_by(bytes as u64);
        }
        if !metadata_only {
            shared
                .counters
                .send_nanos
                .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        }
        match outcome {
            SendOutcome::Sent => {
                if metadata_only {
                    metrics.metadata_total.inc_by(batch.metadata.len() as u64);
                    return true;
                }
                metrics.samples_total.inc_by(samples);
                shared
                    .counters
                    .samples_out
                    .fetch_add(samples, Ordering::Relaxed);
                let newest = batch
                    .series
                    .iter()
                    .flat_map(|s| s.samples.last())
                    .map(|s| s.t)
                    .max()
                    .unwrap_or(i64::MIN);
                let previous = shared
                    .counters
                    .highest_sent_ms
                    .fetch_max(newest, Ordering::Relaxed);
                if newest > previous {
                    metrics.highest_sent_timestamp.set(newest as f64 / 1000.0);
                }
                if attempt > 1 {
                    tracing::info!(remote_name = %settings.remote_name, url = %settings.url, attempts = attempt, "Remote write succeeded after retries");
                }
                return true;
            }
            SendOutcome::Permanent { message } => {
                if !last_resort {
                    tracing::debug!(remote_name = %settings.remote_name, url = %settings.url, samples, error = %message, "Resent batch refused");
                    return false;
                }
                if metadata_only {
                    metrics
                        .metadata_failed_total
                        .inc_by(batch.metadata.len() as u64);
                } else {
                    metrics.samples_failed_total.inc_by(samples);
                }
                tracing::error!(
                    remote_name = %settings.remote_name,
                    url = %settings.url,
                    samples,
                    error = %message,
                    "Non-recoverable error sending to remote storage; the batch is dropped"
                );
                return false;
            }
            SendOutcome::Retryable {
                message,
                retry_after,
            } => {
                if !metadata_only {
                    metrics.samples_retried_total.inc_by(samples);
                }
                shared.note_failure();
                let wait = retry_after.unwrap_or(backoff);
                if attempt == 1 {
                    tracing::warn!(remote_name = %settings.remote_name, url = %settings.url, error = %message, retry_in = ?wait, "Failed to send batch, retrying");
                } else {
                    tracing::debug!(remote_name = %settings.remote_name, url = %settings.url, error = %message, attempt, retry_in = ?wait, "Failed to send batch, retrying");
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(settings.queue.max_backoff);
            }
        }
    }
}

/// Computes the desired number of shards every `reshard_interval` and asks
/// the watcher to reshard when it is far enough from the current one.
///
/// The calculation is Prometheus's, simplified: with `in` the rate of
/// samples read from the WAL, `time per sample` the seconds of send calls
/// per sample sent, and `backlog` the samples buffered in shards,
///
/// ```text
/// desired = time per sample * (in + 0.1 * backlog / interval)
/// ```
///
/// that is the shards needed to keep up with the input and clear a tenth of
/// the backlog per interval. Nothing changes while the desired count is
/// within 30% of the current one, while nothing was sent, or while sends
/// have been failing recently (more shards would only add load on a
/// struggling endpoint). The result is rounded up and clamped to
/// `[min_shards, max_shards]`.
pub(crate) async fn reshard_loop(shared: Arc<Shared>) {
    let interval = shared.settings.reshard_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut in_rate: Option<f64> = None;
    let mut time_per_sample: Option<f64> = None;
    loop {
        tick.tick().await;
        let secs = interval.as_secs_f64();
        let samples_in = shared.counters.samples_in.swap(0, Ordering::Relaxed) as f64;
        let samples_out = shared.counters.samples_out.swap(0, Ordering::Relaxed) as f64;
        let send_secs = shared.counters.send_nanos.swap(0, Ordering::Relaxed) as f64 / 1e9;
        let rate = samples_in / secs;
        let current_in = match in_rate {
            Some(previous) => EWMA_WEIGHT * rate + (1.0 - EWMA_WEIGHT) * previous,
            None => rate,
        };
        in_rate = Some(current_in);
        if samples_out > 0.0 {
            let tps = send_secs / samples_out;
            time_per_sample = Some(match time_per_sample {
                Some(previous) => EWMA_WEIGHT * tps + (1.0 - EWMA_WEIGHT) * previous,
                None => tps,
            });
        }
        let Some(tps) = time_per_sample else {
            continue;
        };
        let shards = shared.current_shards();
        let current = shards.len().max(1);
        let backlog = shards.pending() as f64;
        let desired = tps * (current_in + BACKLOG_GAIN * backlog / secs);
        shared.metrics.shards_desired.set(desired);
        let last_failure = shared.counters.last_failure.load(Ordering::Relaxed);
        let failing = last_failure > 0
            && shared.epoch.elapsed().as_millis() as u64
                <= last_failure + 2 * interval.as_millis() as u64;
        let low = current as f64 * (1.0 - SHARD_TOLERANCE);
        let high = current as f64 * (1.0 + SHARD_TOLERANCE);
        if samples_out == 0.0 || (desired >= low && desired <= high) {
            continue;
        }
        let q = &shared.settings.queue;
        let target = (desired.ceil() as u64).clamp(q.min_shards.max(1), q.max_shards) as usize;
        if target == current || (failing && target > current) {
            continue;
        }
        tracing::info!(
            remote_name = %shared.settings.remote_name,
            from = current,
            to = target,
            desired,
            "Remote-write queue resharding"
        );
        shared.reshard_to.store(target, Ordering::Release);
    }
}

/// Sends the metadata seen in the WAL every `send_interval` (1.0 only; 2.0
/// carries metadata with each series).
pub(crate) async fn metadata_loop(shared: Arc<Shared>) {
    let interval = shared.settings.metadata.send_interval;
    let per_request = shared.settings.metadata.max_samples_per_send.max(1) as usize;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut families: Vec<FamilyMetadata> = shared
            .metadata
            .lock()
            .expect("metadata lock")
            .iter()
            .map(|(name, metadata)| FamilyMetadata {
                name: name.clone(),
                metadata: metadata.clone(),
            })
            .collect();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        for chunk in families.chunks(per_request) {
            let batch = Batch::new(shared.settings.protocol, Vec::new(), chunk.to_vec());
            send_with_retry(&shared, &batch, true).await;
        }
    }
}
