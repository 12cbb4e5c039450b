//! The scrape pipeline's own cost per sample: parse, cache lookup, label
//! handling and the append call, for a steady-state scrape (every series
//! already cached) and a cold one (every series new). The appender discards
//! samples so that storage cost does not hide the pipeline's.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_host::scrape::ingest::{IngestStats, ScrapeState};
use ember_model::exposition::Format;
use ember_model::labels::Labels;
use ember_model::metadata::Metadata;
use ember_model::sample::Exemplar;
use ember_model::storage::{AppendError, Appender, SeriesRef, StorageError};

/// Accepts everything and keeps nothing, handing out refs as a storage would.
struct NullAppender(u64);

impl Appender for NullAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        _: &Labels,
        _: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        black_box(v);
        Ok(series.unwrap_or_else(|| {
            self.0 += 1;
            SeriesRef::new(self.0)
        }))
    }
    fn append_exemplar(
        &mut self,
        s: Option<SeriesRef>,
        _: &Labels,
        _: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        Ok(s.unwrap_or(SeriesRef::new(0)))
    }
    fn update_metadata(
        &mut self,
        s: Option<SeriesRef>,
        _: &Labels,
        _: &Metadata,
    ) -> Result<SeriesRef, AppendError> {
        Ok(s.unwrap_or(SeriesRef::new(0)))
    }
    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A node_exporter-like exposition of `series` samples.
fn body(series: usize) -> String {
    let mut out = String::new();
    let families = series / 100;
    for f in 0..families {
        out.push_str(&format!(
            "# HELP node_metric_{f}_total Some counter.\n# TYPE node_metric_{f}_total counter\n"
        ));
        for s in 0..100 {
            out.push_str(&format!(
                "node_metric_{f}_total{{device=\"dev{s}\",mode=\"mode{}\"}} {}.{}\n",
                s % 8,
                f * 1000 + s,
                s % 100
            ));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let config = ember_config::parse(
        "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['h:9100']\n",
        std::path::Path::new("bench.yml"),
    )
    .expect("config");
    let settings = ember_host::scrape::pool::ingest_settings(&config.scrape_configs[0]);
    let target = Labels::new([("instance", "h:9100"), ("job", "node")]).expect("labels");
    let text = body(10_000);

    let mut group = c.benchmark_group("scrape_ingest_10k");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("steady_state", |b| {
        let mut state = ScrapeState::new(target.clone());
        let mut ts = 0;
        b.iter(|| {
            ts += 15_000;
            let mut app = NullAppender(0);
            let mut stats = IngestStats::default();
            state
                .ingest(
                    &mut app,
                    text.as_bytes(),
                    Format::PrometheusText,
                    ts,
                    &settings,
                    &mut stats,
                )
                .expect("ingest");
            black_box(stats);
        });
    });
    group.bench_function("cold", |b| {
        b.iter(|| {
            let mut state = ScrapeState::new(target.clone());
            let mut app = NullAppender(0);
            let mut stats = IngestStats::default();
            state
                .ingest(
                    &mut app,
                    text.as_bytes(),
                    Format::PrometheusText,
                    0,
                    &settings,
                    &mut stats,
                )
                .expect("ingest");
            black_box(stats);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
