//! Head benchmarks: batched appends through the `Appender` (WAL included),
//! and WAL replay through `Db::open`.
//!
//! Targets from the TSDB issue: at least 3 million samples/s appended on one
//! core, at least 2 million samples/s replayed on one core.
//!
//! ```text
//! cargo bench -p ember-tsdb --bench head
//! ```

use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::storage::{Appendable, Queryable, SeriesRef};
use ember_tsdb::{Db, DbOptions};

const SERIES: usize = 10_000;
/// Scrapes per replay fixture: 10k series × 240 = 2.4M samples (one hour
/// at 15 s).
const REPLAY_SCRAPES: i64 = 240;

fn series_labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            Labels::new([
                ("__name__", format!("metric_{}", i % 100)),
                ("instance", format!("host-{}:9100", i / 100)),
                ("job", "node".to_owned()),
            ])
            .expect("labels")
        })
        .collect()
}

/// Node-exporter-like values: counters that grow by varying amounts.
fn value(series: usize, scrape: i64) -> f64 {
    (scrape * (series as i64 % 7 + 1) * 13 + (scrape * 31 + series as i64) % 5) as f64
}

/// Appends one scrape of every series as one transaction.
fn scrape(db: &Db, labels: &[Labels], refs: &mut [Option<SeriesRef>], scrape: i64) {
    let mut app = db.appender();
    let t = 1_700_000_000_000 + scrape * 15_000;
    for (i, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
        *r = Some(app.append(*r, l, t, value(i, scrape)).expect("append"));
    }
    app.commit().expect("commit");
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    let labels = series_labels();
    let mut refs = vec![None; SERIES];
    let mut n = 0;
    scrape(&db, &labels, &mut refs, n);
    let mut group = c.benchmark_group("head");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.sample_size(30);
    group.bench_function("append_10k_series_per_commit", |b| {
        b.iter(|| {
            n += 1;
            scrape(&db, &labels, &mut refs, n);
        });
    });
    group.finish();
    db.close().expect("close");
}

fn write_fixture(dir: &Path) -> u64 {
    let db = Db::open(dir, DbOptions::default()).expect("open");
    let labels = series_labels();
    let mut refs = vec![None; SERIES];
    for n in 0..REPLAY_SCRAPES {
        scrape(&db, &labels, &mut refs, n);
    }
    db.close().expect("close");
    SERIES as u64 * REPLAY_SCRAPES as u64
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn replay(c: &mut Criterion) {
    let fixture = tempfile::tempdir().expect("tempdir");
    let samples = write_fixture(fixture.path());
    let mut group = c.benchmark_group("head");
    group.throughput(Throughput::Elements(samples));
    group.sample_size(10);
    // The usual restart: full chunks come from the chunk files, the WAL
    // fills in the open chunks.
    group.bench_function("open_replay_2.4M_with_mapped_chunks", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                copy_dir(fixture.path(), dir.path());
                dir
            },
            |dir| {
                let db = Db::open(dir.path(), DbOptions::default()).expect("open");
                drop(db);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    // Worst case: no chunk files, every sample is re-encoded from the WAL
    // and full chunks are written again.
    group.bench_function("open_replay_2.4M_wal_only", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                copy_dir(&fixture.path().join("wal"), &dir.path().join("wal"));
                dir
            },
            |dir| {
                let db = Db::open(dir.path(), DbOptions::default()).expect("open");
                drop(db);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// Selects 1% of the series (a regex alternation over instances) and
/// reads every sample of them over one hour: postings, sorting, snapshots,
/// mapped-chunk decoding.
fn select(c: &mut Criterion) {
    let fixture = tempfile::tempdir().expect("tempdir");
    write_fixture(fixture.path());
    let db = Db::open(fixture.path(), DbOptions::default()).expect("open");
    let matchers = [
        Matcher::new(
            MatchOp::Regex,
            "instance",
            "host-(1|2|3|4|5|6|7|8|9|10):9100",
        )
        .expect("regex"),
        Matcher::equal("job", "node"),
    ];
    let mut group = c.benchmark_group("head");
    // 10 instances x 100 metrics x 240 samples.
    group.throughput(Throughput::Elements(10 * 100 * REPLAY_SCRAPES as u64));
    group.bench_function("select_1000_series_read_all_samples", |b| {
        b.iter(|| {
            let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
            let mut samples = 0u64;
            for series in querier.select(true, None, &matchers).expect("select") {
                let series = series.expect("series");
                let mut it = series.samples();
                while it.next() {
                    samples += 1;
                }
            }
            assert_eq!(samples, 10 * 100 * REPLAY_SCRAPES as u64);
            samples
        });
    });
    group.finish();
}

criterion_group!(benches, append, replay, select);
criterion_main!(benches);
