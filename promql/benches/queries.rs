//! Dashboard-style queries over 10k series × 1h at a 15s scrape interval
//! in `MemStorage`: 5,000 counters `http_requests_total{job, instance}` and
//! a 10-bucket classic histogram over 500 targets (5,000 `_bucket` series).
//!
//! Run with `cargo bench -p ember-promql --bench queries`.

use criterion::{Criterion, criterion_group, criterion_main};
use ember_model::labels::Labels;
use ember_model::storage::{Appendable, MemStorage};
use ember_promql::engine::{Engine, EngineOptions};

const SCRAPE_INTERVAL: i64 = 15_000;
const HOUR: i64 = 3_600_000;

fn storage() -> MemStorage {
    let storage = MemStorage::new();
    let mut app = storage.appender();
    let mut series: Vec<(Labels, f64)> = Vec::new();
    for job in 0..10 {
        for instance in 0..500 {
            let labels = Labels::new([
                ("__name__", "http_requests_total".to_owned()),
                ("job", format!("job-{job}")),
                ("instance", format!("host-{instance}")),
            ])
            .expect("valid labels");
            series.push((labels, f64::from(instance % 7 + 1)));
        }
    }
    for target in 0..500 {
        for (i, le) in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
        ]
        .iter()
        .enumerate()
        {
            let labels = Labels::new([
                ("__name__", "request_duration_seconds_bucket".to_owned()),
                ("job", format!("job-{}", target % 10)),
                ("instance", format!("host-{target}")),
                ("le", (*le).to_owned()),
            ])
            .expect("valid labels");
            series.push((labels, (i + 1) as f64));
        }
    }
    for (labels, slope) in &series {
        let mut t = 0;
        let mut v = 0.0;
        while t <= HOUR {
            app.append(None, labels, t, v).expect("append");
            v += slope;
            t += SCRAPE_INTERVAL;
        }
    }
    app.commit().expect("commit");
    storage
}

fn queries(c: &mut Criterion) {
    let storage = storage();
    let engine = Engine::new(EngineOptions::default());
    let instant = [
        ("rate", "rate(http_requests_total[5m])"),
        (
            "sum_by_rate",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))",
        ),
        ("topk", "topk(10, rate(http_requests_total[5m]))"),
        (
            "regex_selector",
            "http_requests_total{instance=~\"host-1.*\"}",
        ),
    ];
    let mut group = c.benchmark_group("instant");
    group.sample_size(10);
    for (name, query) in instant {
        group.bench_function(name, |b| {
            b.iter(|| engine.instant(&storage, query, HOUR).expect("query"))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("range_1h_15s");
    group.sample_size(10);
    for (name, query) in [
        (
            "sum_by_rate",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))",
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                engine
                    .range(&storage, query, 0, HOUR, SCRAPE_INTERVAL)
                    .expect("query")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
