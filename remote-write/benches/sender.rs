//! Throughput of the sender's whole local path: the WAL watcher reading
//! and decoding segments, the series cache, sharding, batching, protobuf
//! encoding and snappy compression, into a sink that discards the bodies.
//!
//! The WAL holds 1,000,000 samples (10,000 series of 10 labels, 100
//! scrapes each, compressed records as the TSDB writes them). Each
//! iteration starts a queue at the WAL's beginning and stops it when the
//! sink has every sample. Run pinned to one core to answer "does the sender
//! keep up with a million samples a second on one core":
//!
//! ```text
//! taskset -c 0 cargo bench -p ember-remote-write --bench sender
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_remote_write::{
    Batch, Destination, Position, ProgressFile, Protocol, Queue, QueueMetrics, QueueSettings,
    SendFuture, SendOutcome,
};
use ember_tsdb::wal::{Record, RefSample, RefSeries, Wal, WalOptions};

const SERIES: u64 = 10_000;
const ROUNDS: i64 = 100;
const TOTAL: u64 = SERIES * ROUNDS as u64;

/// Encodes every batch (as an HTTP destination would) and counts samples.
#[derive(Debug, Default)]
struct Sink {
    samples: AtomicU64,
    bytes: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Destination for Sink {
    fn send<'a>(&'a self, batch: &'a Batch) -> SendFuture<'a> {
        Box::pin(async move {
            self.bytes
                .fetch_add(batch.payload().len() as u64, Ordering::Relaxed);
            let total = self
                .samples
                .fetch_add(batch.sample_count() as u64, Ordering::Relaxed)
                + batch.sample_count() as u64;
            if total >= TOTAL {
                self.notify.notify_one();
            }
            SendOutcome::Sent
        })
    }
}

fn write_wal(dir: &std::path::Path) {
    let mut wal = Wal::open(&dir.join("wal"), WalOptions::default()).unwrap();
    let values: Vec<Vec<(String, String)>> = (0..SERIES)
        .map(|i| {
            let mut labels = vec![
                ("__name__".to_owned(), format!("metric_{}", i % 100)),
                ("instance".to_owned(), format!("host-{}:9100", i / 100)),
                ("job".to_owned(), "node".to_owned()),
            ];
            for k in 0..7 {
                labels.push((format!("label_{k}"), format!("value_{}_{}", k, i % 37)));
            }
            labels
        })
        .collect();
    let borrowed: Vec<Vec<(&str, &str)>> = values
        .iter()
        .map(|l| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
        .collect();
    let series: Vec<RefSeries<'_>> = borrowed
        .iter()
        .enumerate()
        .map(|(i, labels)| RefSeries {
            series_ref: i as u64 + 1,
            labels,
        })
        .collect();
    wal.log(&[Record::Series(&series)]).unwrap();
    let start = 1_700_000_000_000;
    for round in 0..ROUNDS {
        // One samples record per 1,000-series target, as scrapes commit.
        for target in 0..SERIES / 1000 {
            let samples: Vec<RefSample> = (target * 1000..(target + 1) * 1000)
                .map(|i| RefSample {
                    series_ref: i + 1,
                    t: start + round * 15_000,
                    v: (round * 7 + i as i64) as f64,
                })
                .collect();
            wal.log(&[Record::Samples(&samples)]).unwrap();
        }
    }
    wal.close().unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("sender");
    group.throughput(Throughput::Elements(TOTAL));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for protocol in [Protocol::V1, Protocol::V2] {
        let name = match protocol {
            Protocol::V1 => "wal_to_encoded_batches_1m_samples_v1",
            Protocol::V2 => "wal_to_encoded_batches_1m_samples_v2",
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let progress = ProgressFile::new(&dir.path().join("rw"), "bench");
                    // A marker at the very start: send the whole WAL.
                    progress
                        .store(Position {
                            segment: 0,
                            offset: 0,
                        })
                        .unwrap();
                    let mut settings = QueueSettings::new(
                        "bench".into(),
                        "sink".into(),
                        dir.path().join("wal"),
                        progress,
                    );
                    settings.protocol = protocol;
                    settings.queue.max_shards = 1;
                    settings.queue.batch_send_deadline = Duration::from_millis(100);
                    settings.metadata.send = false;
                    let sink = Arc::new(Sink::default());
                    let started = Instant::now();
                    runtime.block_on(async {
                        let queue =
                            Queue::start(settings, sink.clone(), QueueMetrics::unregistered())
                                .unwrap();
                        while sink.samples.load(Ordering::Relaxed) < TOTAL {
                            let _ = tokio::time::timeout(
                                Duration::from_millis(50),
                                sink.notify.notified(),
                            )
                            .await;
                        }
                        total += started.elapsed();
                        queue.stop(Duration::from_secs(5)).await;
                    });
                    assert_eq!(sink.samples.load(Ordering::Relaxed), TOTAL);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
