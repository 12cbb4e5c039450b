//! Queues tailing a real WAL written by `ember-tsdb`, into an in-process
//! destination that records what it receives and can fail on demand. The
//! black-box tests against Prometheus and VictoriaMetrics are in
//! `tests/tests/remote_write_sender.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_model::relabel::{RelabelAction, RelabelConfig, RelabelRegex};
use ember_remote::prost::Message;
use ember_remote::{prompb, writev2};
use ember_remote_write::{
    Batch, Destination, ProgressFile, Protocol, Queue, QueueMetrics, QueueSettings, SendFuture,
    SendOutcome,
};
use ember_tsdb::wal::{
    MetricType, PAGE_SIZE, Record, RefMetadata, RefSample, RefSeries, Wal, WalOptions,
};

/// What the destination does with the next batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Accept,
    Retryable,
    Permanent,
    /// Like Prometheus's receiver (1.0 only): the whole request is refused
    /// when one sample is older than its series' newest; a repeat of the
    /// newest is accepted.
    RefuseOutOfOrder,
}

#[derive(Debug)]
struct Recorder {
    behaviour: Mutex<Behaviour>,
    /// `series labels -> samples` as decoded from the 1.0 wire body.
    received: Mutex<BTreeMap<String, Vec<(i64, f64)>>>,
    /// `metric name -> help` from 1.0 metadata requests and 2.0 series.
    metadata: Mutex<BTreeMap<String, String>>,
    calls: AtomicU32,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            behaviour: Mutex::new(Behaviour::Accept),
            received: Mutex::new(BTreeMap::new()),
            metadata: Mutex::new(BTreeMap::new()),
            calls: AtomicU32::new(0),
        })
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn total(&self) -> usize {
        self.received.lock().unwrap().values().map(Vec::len).sum()
    }
}

impl Recorder {
    fn record_v2(&self, raw: &[u8]) {
        let request = writev2::Request::decode(raw).unwrap();
        let symbol = |r: u32| request.symbols[r as usize].clone();
        let mut received = self.received.lock().unwrap();
        let mut metadata = self.metadata.lock().unwrap();
        for series in &request.timeseries {
            let labels: Vec<String> = series
                .labels_refs
                .chunks(2)
                .map(|p| format!("{}={}", symbol(p[0]), symbol(p[1])))
                .collect();
            if let Some(m) = &series.metadata {
                metadata.insert(labels[0].clone(), symbol(m.help_ref));
            }
            received
                .entry(labels.join(","))
                .or_default()
                .extend(series.samples.iter().map(|s| (s.timestamp, s.value)));
        }
    }
}

impl Destination for Recorder {
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match *self.behaviour.lock().unwrap() {
                Behaviour::Retryable => {
                    return SendOutcome::Retryable {
                        message: "503".into(),
                        retry_after: None,
                    };
                }
                Behaviour::Permanent => {
                    return SendOutcome::Permanent {
                        message: "400".into(),
                    };
                }
                Behaviour::Accept | Behaviour::RefuseOutOfOrder => {}
            }
            let raw = snap::raw::Decoder::new()
                .decompress_vec(batch.payload())
                .unwrap();
            if batch.protocol() == Protocol::V2 {
                self.record_v2(&raw);
                return SendOutcome::Sent;
            }
            let request = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
            if *self.behaviour.lock().unwrap() == Behaviour::RefuseOutOfOrder {
                let received = self.received.lock().unwrap();
                let mut newest: BTreeMap<String, i64> = BTreeMap::new();
                for series in &request.timeseries {
                    let key = series
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect::<Vec<_>>()
                        .join(",");
                    let last = newest.entry(key.clone()).or_insert_with(|| {
                        received
                            .get(&key)
                            .and_then(|s| s.last())
                            .map_or(i64::MIN, |s| s.0)
                    });
                    for sample in &series.samples {
                        if sample.timestamp < *last {
                            return SendOutcome::Permanent {
                                message: "out of order sample".into(),
                            };
                        }
                        *last = sample.timestamp;
                    }
                }
            }
            let mut metadata = self.metadata.lock().unwrap();
            for m in &request.metadata {
                metadata.insert(m.metric_family_name.clone(), m.help.clone());
            }
            let mut received = self.received.lock().unwrap();
            for series in request.timeseries {
                let key = series
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(",");
                received
                    .entry(key)
                    .or_default()
                    .extend(series.samples.iter().map(|s| (s.timestamp, s.value)));
            }
            SendOutcome::Sent
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn settings(dir: &Path) -> QueueSettings {
    let mut settings = QueueSettings::new(
        "test".into(),
        "http://example.invalid/write".into(),
        dir.join("wal"),
        ProgressFile::new(&dir.join("remote_write"), "test"),
    );
    settings.queue.max_samples_per_send = 100;
    settings.queue.capacity = 500;
    settings.queue.batch_send_deadline = Duration::from_millis(50);
    settings.queue.min_backoff = Duration::from_millis(5);
    settings.queue.max_backoff = Duration::from_millis(40);
    settings.poll_interval = Duration::from_millis(5);
    settings
}

fn small_wal(dir: &Path) -> Wal {
    Wal::open(
        &dir.join("wal"),
        WalOptions {
            segment_size: PAGE_SIZE as u64,
            compress: false,
            ..WalOptions::default()
        },
    )
    .unwrap()
}

const SERIES: u64 = 20;

/// Logs the series records once.
fn log_series(wal: &mut Wal) {
    let names: Vec<String> = (0..SERIES).map(|i| format!("s{i}")).collect();
    let labels: Vec<[(&str, &str); 3]> = names
        .iter()
        .map(|n| [("__name__", "m"), ("id", n.as_str()), ("job", "j")])
        .collect();
    let series: Vec<RefSeries<'_>> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| RefSeries {
            series_ref: i as u64 + 1,
            labels: l,
        })
        .collect();
    wal.log(&[Record::Series(&series)]).unwrap();
}

/// Logs `rounds` scrapes of every series, one sample each, from `start`.
fn log_samples(wal: &mut Wal, start: i64, rounds: std::ops::Range<i64>) {
    for round in rounds {
        let samples: Vec<RefSample> = (0..SERIES)
            .map(|i| RefSample {
                series_ref: i + 1,
                t: start + round * 1000,
                v: round as f64,
            })
            .collect();
        wal.log(&[Record::Samples(&samples)]).unwrap();
    }
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_complete(recorder: &Recorder, start: i64, rounds: i64) {
    let received = recorder.received.lock().unwrap();
    assert_eq!(received.len(), SERIES as usize, "{:?}", received.keys());
    for (series, samples) in received.iter() {
        let mut got: Vec<i64> = samples.iter().map(|s| s.0).collect();
        // Order per series is kept.
        assert!(
            got.windows(2).all(|w| w[0] <= w[1]),
            "{series} out of order"
        );
        got.dedup();
        let want: Vec<i64> = (0..rounds).map(|r| start + r * 1000).collect();
        assert_eq!(got, want, "{series}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_everything_across_segments_with_labels_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    let mut settings = settings(dir.path());
    settings.external_labels = vec![("cluster".into(), "a".into()), ("job".into(), "x".into())];
    let queue = Queue::start(settings, recorder.clone(), QueueMetrics::unregistered()).unwrap();
    let start = now_ms();
    log_series(&mut wal);
    log_samples(&mut wal, start, 0..300);
    wait_for("all samples", Duration::from_secs(20), || {
        recorder.total() >= (SERIES * 300) as usize
    })
    .await;
    assert!(wal.current_segment() > 1, "the test crosses segments");
    assert_complete(&recorder, start, 300);
    let keys: Vec<String> = recorder.received.lock().unwrap().keys().cloned().collect();
    // External labels are added where missing and never override.
    assert!(
        keys[0].starts_with("__name__=m,cluster=a,id=s"),
        "{}",
        keys[0]
    );
    assert!(keys[0].ends_with(",job=j"), "{}", keys[0]);
    assert_eq!(queue.metrics().samples_total.get(), SERIES * 300);
    queue.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_a_permanent_error_drops_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    let queue = Queue::start(
        settings(dir.path()),
        recorder.clone(),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    let start = now_ms();
    log_series(&mut wal);
    recorder.set(Behaviour::Retryable);
    // More than all shard buffers hold: the rest waits in the WAL.
    log_samples(&mut wal, start, 0..200);
    wait_for("retries", Duration::from_secs(10), || {
        queue.metrics().samples_retried_total.get() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.total(), 0);
    assert!(queue.metrics().enqueue_retries_total.get() > 0);
    assert!(queue.metrics().samples_pending.get() > 0);
    recorder.set(Behaviour::Accept);
    wait_for("the backlog", Duration::from_secs(20), || {
        recorder.total() >= (SERIES * 200) as usize
    })
    .await;
    assert_complete(&recorder, start, 200);
    assert_eq!(queue.metrics().samples_failed_total.get(), 0);

    recorder.set(Behaviour::Permanent);
    log_samples(&mut wal, start, 200..201);
    wait_for("the failure", Duration::from_secs(10), || {
        queue.metrics().samples_failed_total.get() == SERIES
    })
    .await;
    recorder.set(Behaviour::Accept);
    log_samples(&mut wal, start, 201..202);
    wait_for("later samples", Duration::from_secs(10), || {
        recorder.total() >= (SERIES * 201) as usize
    })
    .await;
    queue.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resends_what_was_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    let queue = Queue::start(
        settings(dir.path()),
        recorder.clone(),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    let start = now_ms();
    log_series(&mut wal);
    log_samples(&mut wal, start, 0..50);
    wait_for("the first samples", Duration::from_secs(10), || {
        recorder.total() >= (SERIES * 50) as usize
    })
    .await;
    recorder.set(Behaviour::Retryable);
    log_samples(&mut wal, start, 50..150);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The receiver is down when the queue stops: nothing more is
    // acknowledged, and the marker says so.
    queue.stop(Duration::from_millis(300)).await;
    let sent_before = recorder.total();
    assert!(sent_before < (SERIES * 150) as usize);
    // Written while the queue was down.
    log_samples(&mut wal, start, 150..200);
    recorder.set(Behaviour::Accept);
    let queue = Queue::start(
        settings(dir.path()),
        recorder.clone(),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    wait_for(
        "everything after the restart",
        Duration::from_secs(20),
        || {
            let received = recorder.received.lock().unwrap();
            received.values().all(|s| {
                let mut t: Vec<i64> = s.iter().map(|x| x.0).collect();
                t.dedup();
                t.len() == 200
            }) && received.len() == SERIES as usize
        },
    )
    .await;
    assert_complete(&recorder, start, 200);
    // Only the unacknowledged part is sent again: at most one batch per
    // series' worth of duplicates, not the whole WAL.
    let total = recorder.total();
    assert!(
        total < (SERIES * 200) as usize + 2 * 100,
        "resent too much: {total}"
    );
    queue.stop(Duration::from_secs(5)).await;
}

/// After a crash the marker lags behind what was delivered; the resend
/// mixes delivered samples with never-delivered ones in one batch, which a
/// receiver like Prometheus refuses as a whole. The never-delivered ones
/// must arrive all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_refused_for_samples_already_delivered_still_delivers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    recorder.set(Behaviour::RefuseOutOfOrder);
    // Batches that do not end at a scrape's boundary: the resent batch of
    // samples 960..1024 holds round 48 (refused) and rounds 50 and 51.
    let mut settings = settings(dir.path());
    settings.queue.max_samples_per_send = 64;
    let queue = Queue::start(
        settings.clone(),
        recorder.clone(),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    let start = now_ms();
    log_series(&mut wal);
    log_samples(&mut wal, start, 0..50);
    wait_for("the first samples", Duration::from_secs(10), || {
        recorder.total() >= (SERIES * 50) as usize
    })
    .await;
    queue.stop(Duration::from_secs(5)).await;
    // A crash: the marker is older than what was delivered (here: from
    // before everything), and later scrapes were never sent.
    settings
        .progress
        .store(ember_remote_write::Position {
            segment: 0,
            offset: 0,
        })
        .unwrap();
    log_samples(&mut wal, start, 50..60);
    let queue = Queue::start(settings, recorder.clone(), QueueMetrics::unregistered()).unwrap();
    log_samples(&mut wal, start, 60..70);
    wait_for(
        "everything after the restart",
        Duration::from_secs(20),
        || {
            recorder
                .received
                .lock()
                .unwrap()
                .values()
                .all(|s| s.last().is_some_and(|x| x.0 == start + 69 * 1000))
        },
    )
    .await;
    assert_complete(&recorder, start, 70);
    // Only samples older than what the receiver had are dropped, each once
    // on its own (a repeat of a series' newest is accepted).
    assert_eq!(queue.metrics().samples_failed_total.get(), SERIES * 49);
    queue.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelled_away_series_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    let mut settings = settings(dir.path());
    settings.write_relabel_configs = vec![drop_rule()];
    settings.protocol = Protocol::V1;
    settings.queue.min_shards = 2;
    let queue = Queue::start(settings, recorder.clone(), QueueMetrics::unregistered()).unwrap();
    let start = now_ms();
    log_series(&mut wal);
    log_samples(&mut wal, start, 0..10);
    // s1 and s10..s19 are dropped: 9 series remain.
    wait_for("kept series", Duration::from_secs(10), || {
        recorder.total() >= 90
    })
    .await;
    wait_for("drop count", Duration::from_secs(10), || {
        queue.metrics().samples_dropped_total.get() == 110
    })
    .await;
    assert_eq!(recorder.received.lock().unwrap().len(), 9);
    queue.stop(Duration::from_secs(5)).await;
}

fn drop_rule() -> RelabelConfig {
    RelabelConfig {
        source_labels: vec!["id".into()],
        separator: ";".into(),
        target_label: String::new(),
        regex: RelabelRegex::new("s1.*").unwrap(),
        modulus: 0,
        replacement: "$1".into(),
        action: RelabelAction::Drop,
    }
}

/// Logs help text for two series.
fn log_metadata(wal: &mut Wal) {
    let metadata: Vec<RefMetadata<'_>> = [1u64, 2]
        .iter()
        .map(|&series_ref| RefMetadata {
            series_ref,
            metric_type: MetricType::Counter,
            unit: "",
            help: "Things.",
        })
        .collect();
    wal.log(&[Record::Metadata(&metadata)]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_goes_in_its_own_requests_for_1_0_and_with_the_series_for_2_0() {
    for protocol in [Protocol::V1, Protocol::V2] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = small_wal(dir.path());
        let recorder = Recorder::new();
        let mut settings = settings(dir.path());
        settings.protocol = protocol;
        settings.metadata.send_interval = Duration::from_millis(100);
        let queue = Queue::start(settings, recorder.clone(), QueueMetrics::unregistered()).unwrap();
        log_series(&mut wal);
        log_metadata(&mut wal);
        log_samples(&mut wal, now_ms(), 0..5);
        wait_for("samples", Duration::from_secs(10), || {
            recorder.total() >= 100
        })
        .await;
        let key = match protocol {
            Protocol::V1 => "m",
            Protocol::V2 => "__name__=m",
        };
        wait_for("metadata", Duration::from_secs(10), || {
            recorder
                .metadata
                .lock()
                .unwrap()
                .get(key)
                .map(String::as_str)
                == Some("Things.")
        })
        .await;
        if protocol == Protocol::V1 {
            assert!(queue.metrics().metadata_total.get() >= 1);
        }
        queue.stop(Duration::from_secs(5)).await;
    }
}

/// Sends slowly, so one shard cannot keep up.
#[derive(Debug)]
struct Slow(Arc<Recorder>);

impl Destination for Slow {
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.0.send(batch).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_scale_up_with_a_slow_endpoint_and_keep_each_series_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let recorder = Recorder::new();
    let mut settings = settings(dir.path());
    settings.queue.max_shards = 8;
    settings.queue.max_samples_per_send = 20;
    settings.reshard_interval = Duration::from_millis(300);
    let queue = Queue::start(
        settings,
        Arc::new(Slow(recorder.clone())),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    let start = now_ms();
    log_series(&mut wal);
    // One shard sends about 650 samples/s here; write 6,000 over ~3 s.
    for chunk in 0..30 {
        log_samples(&mut wal, start, chunk * 10..(chunk + 1) * 10);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for("all samples", Duration::from_secs(60), || {
        recorder.total() >= (SERIES * 300) as usize
    })
    .await;
    assert!(
        queue.metrics().shards.get() > 1,
        "shards: {}, desired {}",
        queue.metrics().shards.get(),
        queue.metrics().shards_desired.get()
    );
    assert_complete(&recorder, start, 300);
    queue.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_behind_a_checkpoint_takes_series_from_it_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = small_wal(dir.path());
    let start = now_ms();
    log_series(&mut wal);
    log_samples(&mut wal, start, 0..300);
    let last_full = wal.current_segment() - 1;
    assert!(last_full >= 1);
    // The queue was acknowledged up to segment 0 before it went down; the
    // TSDB then checkpointed and deleted the segments it had not read.
    ProgressFile::new(&dir.path().join("remote_write"), "test")
        .store(ember_remote_write::Position {
            segment: 0,
            offset: 0,
        })
        .unwrap();
    wal.checkpoint(0, last_full, |_| true, i64::MAX).unwrap();
    log_samples(&mut wal, start, 300..310);
    let recorder = Recorder::new();
    let queue = Queue::start(
        settings(dir.path()),
        recorder.clone(),
        QueueMetrics::unregistered(),
    )
    .unwrap();
    // Series records are only in the checkpoint now; the new samples still
    // find their labels.
    wait_for(
        "samples after the checkpoint",
        Duration::from_secs(10),
        || {
            recorder
                .received
                .lock()
                .unwrap()
                .values()
                .any(|s| s.iter().any(|&(t, _)| t == start + 309 * 1000))
        },
    )
    .await;
    assert_eq!(recorder.received.lock().unwrap().len(), SERIES as usize);
    assert_eq!(queue.metrics().samples_dropped_total.get(), 0);
    queue.stop(Duration::from_secs(5)).await;
}
