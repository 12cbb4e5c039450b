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
    plugin_bench(c, &target, &text);
}

/// Metric relabeling through a relabel plugin on the server's ingest path,
/// against the same scrape with a built-in rule: `relabel-hash-pii`
/// configured for a label no series has, so the plugin only crosses the
/// boundary with every series and back (one call per scrape). Skipped when
/// `scripts/build-plugins.sh` has not built the plugin.
fn plugin_bench(c: &mut Criterion, target: &Labels, text: &str) {
    let plugin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/relabel-hash-pii.wasm");
    if !plugin.is_file() {
        eprintln!(
            "skipping metric_relabel_10k: {} is missing",
            plugin.display()
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let _context = runtime.enter();
    let yaml = |step: &str| {
        format!(
            "plugins:\n  - name: hash\n    kind: relabeler\n    path: {}\n    config: {{labels: not_present}}\n    limits: {{call_timeout: 30s}}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['h:9100']\n    metric_relabel_configs:\n{step}",
            plugin.display()
        )
    };
    let builtin = ember_config::parse(
        &yaml("      - source_labels: [not_present]\n        regex: x\n        action: drop\n"),
        std::path::Path::new("bench.yml"),
    )
    .expect("config");
    let with_plugin = ember_config::parse(
        &yaml("      - action: plugin\n        plugin: hash\n"),
        std::path::Path::new("bench.yml"),
    )
    .expect("config");
    let cache = tempfile::tempdir().expect("temporary directory");
    let manager =
        ember_host::plugins::PluginManager::new(Some(cache.path()), &prometheus::Registry::new())
            .expect("plugin runtime");
    runtime.block_on(manager.apply_config(&with_plugin));
    let builtin_settings = ember_host::scrape::pool::ingest_settings(&builtin.scrape_configs[0]);
    let mut plugin_settings =
        ember_host::scrape::pool::ingest_settings(&with_plugin.scrape_configs[0]);
    plugin_settings.metric_relabel_plugins = Some(ember_host::scrape::ingest::PluginRelabel {
        pipeline: ember_host::plugins::relabel::RelabelPipeline::new(
            &with_plugin.scrape_configs[0].metric_relabel_configs,
        ),
        manager: manager.clone(),
    });

    let mut group = c.benchmark_group("metric_relabel_10k");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(20);
    for (name, settings) in [("builtin", &builtin_settings), ("plugin", &plugin_settings)] {
        group.bench_function(name, |b| {
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
                        settings,
                        &mut stats,
                    )
                    .expect("ingest");
                assert_eq!(stats.post_relabel, 10_000);
                black_box(stats);
            });
        });
    }
    group.finish();

    // An exporter target's scrape on the server path (lookup, label and
    // parameter conversion, the call, the timing histogram, rendering to
    // text), against the plugin host's bare `collect` (41 µs in
    // plugin-host/benches/plugins.rs).
    let Some(fixture) = Some(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/plugins/exporter-fixture.wasm"),
    )
    .filter(|path| path.is_file()) else {
        return;
    };
    let exporter_config = ember_config::parse(
        &format!(
            "plugins:\n  - name: fixture\n    kind: exporter\n    path: {}\n",
            fixture.display()
        ),
        std::path::Path::new("bench.yml"),
    )
    .expect("config");
    runtime.block_on(manager.apply_config(&exporter_config));
    let source = ember_host::scrape::exporter::ExporterSource {
        manager: manager.clone(),
        plugin: "fixture".to_owned(),
    };
    let target = ember_host::scrape::target::Target::new(
        Labels::new([
            ("__address__", "db:5432"),
            ("__scheme__", "http"),
            ("__metrics_path__", "/metrics"),
            ("instance", "db:5432"),
            ("job", "db"),
        ])
        .expect("labels"),
        Labels::EMPTY,
        &std::collections::BTreeMap::new(),
        Some("fixture"),
    )
    .expect("target");
    c.bench_function("exporter_collect_server_path", |b| {
        b.iter(|| {
            runtime
                .block_on(source.collect(&target, std::time::Duration::from_secs(10)))
                .expect("collect")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
