//! WAL benchmarks: replay and write throughput in samples per second.
//!
//! Run with `cargo bench -p ember-tsdb --bench wal`. The data imitates a
//! server scraping 20 node_exporter-like targets of 1 000 series each every
//! 15 s: one series record per target up front, then one samples record per
//! scrape (1 000 samples, the shape the head's appender commits).
//!
//! - `replay`: open a [`Reader`] on a WAL of 2 000 000 samples and decode
//!   every record into reused vectors, on one thread.
//! - `write/segment_cut`: log scrape-sized batches with the default policy.
//! - `write/always_sync`: the same with an fsync per batch ("durable before
//!   2xx"), which measures the disk more than the code.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ember_tsdb::wal::{
    Reader, Record, RecordType, RefSample, RefSeries, SyncPolicy, Wal, WalOptions, decode_samples,
    decode_series,
};

const TARGETS: u64 = 20;
const SERIES_PER_TARGET: u64 = 1_000;
const SCRAPES: u64 = 100;

fn target_labels(target: u64, series: u64) -> Vec<(String, String)> {
    vec![
        ("__name__".into(), format!("node_metric_{}", series % 300)),
        ("instance".into(), format!("host-{target}:9100")),
        ("job".into(), "node".into()),
        ("device".into(), format!("dev{}", series / 300)),
    ]
}

/// One scrape of one target: 1 000 samples with node-like values.
fn scrape(target: u64, scrape: u64) -> Vec<RefSample> {
    let t = 1_700_000_000_000 + scrape as i64 * 15_000 + (target as i64 * 7) % 5;
    (0..SERIES_PER_TARGET)
        .map(|s| {
            let series_ref = target * SERIES_PER_TARGET + s;
            let v = match s % 4 {
                0 => 1.0,
                1 => (series_ref * 1_000 + scrape * (s + 1)) as f64,
                2 => (series_ref * 100 + scrape * 37) as f64 / 100.0,
                _ => ((series_ref * 4_096) ^ (scrape * 8_192)) as f64,
            };
            RefSample { series_ref, t, v }
        })
        .collect()
}

fn write_wal(dir: &Path, options: WalOptions, scrapes: u64) -> u64 {
    let mut wal = Wal::open(dir, options).expect("open WAL");
    for target in 0..TARGETS {
        let labels: Vec<_> = (0..SERIES_PER_TARGET)
            .map(|s| target_labels(target, s))
            .collect();
        let pairs: Vec<Vec<(&str, &str)>> = labels
            .iter()
            .map(|l| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect();
        let series: Vec<RefSeries<'_>> = pairs
            .iter()
            .enumerate()
            .map(|(s, labels)| RefSeries {
                series_ref: target * SERIES_PER_TARGET + s as u64,
                labels,
            })
            .collect();
        wal.log(&[Record::Series(&series)]).expect("log series");
    }
    let batches: Vec<Vec<RefSample>> = (0..TARGETS).map(|t| scrape(t, 0)).collect();
    let mut samples = 0;
    for s in 0..scrapes {
        for (target, batch) in batches.iter().enumerate() {
            // Re-stamp the prepared batch rather than rebuilding it, so the
            // write benchmark measures the WAL, not the data generator.
            let batch: Vec<RefSample> = batch
                .iter()
                .map(|x| RefSample {
                    t: x.t + s as i64 * 15_000,
                    v: x.v + (s * (target as u64 + 1)) as f64,
                    ..*x
                })
                .collect();
            wal.log(&[Record::Samples(&batch)]).expect("log samples");
            samples += batch.len() as u64;
        }
    }
    wal.close().expect("close WAL");
    samples
}

fn replay(dir: &Path) -> (u64, u64) {
    let mut reader = Reader::open(dir).expect("reader");
    let mut samples = Vec::with_capacity(SERIES_PER_TARGET as usize);
    let (mut series_count, mut sample_count) = (0, 0);
    while let Some(record) = reader.next_record().expect("replay") {
        match RecordType::of(record) {
            RecordType::Samples => {
                samples.clear();
                decode_samples(record, &mut samples).expect("samples");
                sample_count += samples.len() as u64;
                black_box(&samples);
            }
            RecordType::Series => {
                let mut series = Vec::new();
                decode_series(record, &mut series).expect("series");
                series_count += series.len() as u64;
            }
            _ => {}
        }
    }
    (series_count, sample_count)
}

fn bench_wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let written = write_wal(dir.path(), WalOptions::default(), SCRAPES);
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .expect("WAL dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "WAL of {written} samples and {} series: {on_disk} bytes on disk ({:.2} bytes/sample)",
        TARGETS * SERIES_PER_TARGET,
        on_disk as f64 / written as f64
    );
    assert_eq!(replay(dir.path()), (TARGETS * SERIES_PER_TARGET, written));

    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(written));
    group.bench_function("replay", |b| b.iter(|| replay(dir.path())));

    group.bench_function("write/segment_cut", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = tempfile::tempdir().expect("temporary directory");
                let start = Instant::now();
                black_box(write_wal(out.path(), WalOptions::default(), SCRAPES));
                total += start.elapsed();
            }
            total
        })
    });

    let scrapes = 5;
    group.throughput(Throughput::Elements(scrapes * TARGETS * SERIES_PER_TARGET));
    group.bench_function("write/always_sync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let out = tempfile::tempdir().expect("temporary directory");
                let options = WalOptions {
                    sync: SyncPolicy::Always,
                    ..WalOptions::default()
                };
                let start = Instant::now();
                black_box(write_wal(out.path(), options, scrapes));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_wal(&mut criterion);
    criterion.final_summary();
}
