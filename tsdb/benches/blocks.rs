//! Block benchmarks: writing a block (chunks copied as the head cut does,
//! and samples encoded as backfill does), and selecting from a block
//! against selecting the same amount of data from the head.
//!
//! ```text
//! cargo bench -p ember-tsdb --bench blocks
//! ```

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample;
use ember_model::storage::{Appendable, Queryable, SeriesRef, collect_samples};
use ember_tsdb::block::{BlockChunk, BlockWriter, ENCODING_XOR};
use ember_tsdb::chunkenc::XorChunk;
use ember_tsdb::{Db, DbOptions};

const SERIES: usize = 10_000;
/// Two hours at 15 s.
const SAMPLES: usize = 480;
const T0: i64 = 1_700_006_400_000; // a multiple of 2 h
const HOUR: i64 = 3_600_000;

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

fn value(series: usize, scrape: i64) -> f64 {
    (scrape * (series as i64 % 7 + 1) * 13 + (scrape * 31 + series as i64) % 5) as f64
}

fn samples(series: usize) -> Vec<Sample> {
    (0..SAMPLES as i64)
        .map(|k| {
            Sample::new(
                T0 + k * 15_000 + (k * 7 + series as i64) % 11,
                value(series, k),
            )
        })
        .collect()
}

fn write(c: &mut Criterion) {
    let labels = series_labels();
    let all: Vec<Vec<Sample>> = (0..SERIES).map(samples).collect();
    // Pre-encoded chunks of 120 samples, as the head holds them.
    let encoded: Vec<Vec<(i64, i64, Vec<u8>)>> = all
        .iter()
        .map(|s| {
            s.chunks(120)
                .map(|part| {
                    let mut chunk = XorChunk::new();
                    for x in part {
                        chunk.append(x.t, x.v).expect("append");
                    }
                    (part[0].t, part[part.len() - 1].t, chunk.into_bytes())
                })
                .collect()
        })
        .collect();
    let mut group = c.benchmark_group("block_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements((SERIES * SAMPLES) as u64));
    group.bench_function("copy_chunks_10k_series_2h", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let mut w = BlockWriter::new(dir.path(), T0, T0 + 2 * HOUR).expect("writer");
                for (l, chunks) in labels.iter().zip(&encoded) {
                    let chunks: Vec<BlockChunk<'_>> = chunks
                        .iter()
                        .map(|(min_t, max_t, data)| BlockChunk {
                            min_t: *min_t,
                            max_t: *max_t,
                            num_samples: 120,
                            encoding: ENCODING_XOR,
                            data,
                        })
                        .collect();
                    w.add_series(l, &chunks).expect("add");
                }
                w.finish().expect("finish");
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("encode_samples_10k_series_2h", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let mut w = BlockWriter::new(dir.path(), T0, T0 + 2 * HOUR).expect("writer");
                for (l, s) in labels.iter().zip(&all) {
                    w.add_samples(l, s).expect("add");
                }
                w.finish().expect("finish");
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// A database holding 3 h 10 min of data: after `compact`, the first 2 h
/// are a block and the rest is in the head.
fn fixture(dir: &std::path::Path) -> Db {
    let options = DbOptions {
        compaction_interval: None,
        ..DbOptions::default()
    };
    let db = Db::open(dir, options).expect("open");
    let labels = series_labels();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; SERIES];
    for k in 0..(3 * 240 + 40) {
        let mut app = db.appender();
        let t = T0 + k * 15_000;
        for (i, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
            *r = Some(app.append(*r, l, t, value(i, k)).expect("append"));
        }
        app.commit().expect("commit");
    }
    let report = db.compact().expect("compact");
    assert_eq!(report.head_blocks.len(), 1);
    db
}

fn select(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fixture(dir.path());
    let matchers = [
        Matcher::equal("job", "node"),
        Matcher::new(MatchOp::Regex, "instance", "host-[0-9]:9100").expect("regex"),
    ];
    let mut group = c.benchmark_group("select_1000_series_1h");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1_000 * 240));
    for (name, mint) in [("block", T0 + HOUR / 2), ("head", T0 + 2 * HOUR)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let q = db.querier(mint, mint + HOUR - 1).expect("querier");
                let mut n = 0;
                for s in q.select(true, None, &matchers).expect("select") {
                    let s = s.expect("series");
                    n += collect_samples(s.samples().as_mut())
                        .expect("samples")
                        .len();
                }
                assert_eq!(n, 1_000 * 240);
                n
            });
        });
    }
    group.finish();
}

criterion_group!(benches, write, select);
criterion_main!(benches);
