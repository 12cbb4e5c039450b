//! Ingestion against the in-memory reference storage: what is stored, with
//! which labels and timestamps, what goes stale, and what a failed scrape
//! leaves behind (nothing but staleness markers and the synthetic series).

use ember_model::labels::Labels;
use ember_model::sample::is_stale_nan;
use ember_model::storage::{Appendable, mem::MemStorage};

use super::*;

const T1: i64 = 1_000_000;
const T2: i64 = 1_015_000;

fn settings(job_yaml: &str) -> IngestSettings {
    let text = format!("scrape_configs:\n  - job_name: node\n{job_yaml}");
    let config =
        ember_config::parse(&text, std::path::Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"));
    crate::scrape::pool::ingest_settings(&config.scrape_configs[0])
}

fn target_labels() -> Labels {
    Labels::new([("instance", "host:9100"), ("job", "node")]).unwrap()
}

fn series(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

/// Runs one scrape the way the scrape loop does and returns the error.
fn scrape(
    storage: &MemStorage,
    state: &mut ScrapeState,
    body: &str,
    ts: i64,
    settings: &IngestSettings,
) -> (Option<String>, IngestStats) {
    let mut stats = IngestStats::default();
    let mut app = storage.appender();
    let mut error = None;
    if let Err(e) = state.ingest(
        app.as_mut(),
        body.as_bytes(),
        Format::PrometheusText,
        ts,
        settings,
        &mut stats,
    ) {
        app.rollback().unwrap();
        app = storage.appender();
        state.append_empty(app.as_mut(), ts);
        error = Some(e.to_string());
    }
    state
        .append_report(app.as_mut(), ts, error.is_none(), 0.01, &stats)
        .unwrap();
    app.commit().unwrap();
    (error, stats)
}

fn values(storage: &MemStorage, labels: &Labels) -> Vec<(i64, f64)> {
    storage.samples(labels).iter().map(|s| (s.t, s.v)).collect()
}

#[test]
fn stores_samples_with_target_labels_and_the_synthetic_series() {
    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    let body = "# TYPE a counter\na_total{x=\"1\"} 3\nb 4.5\n";
    let (error, stats) = scrape(&storage, &mut state, body, T1, &settings(""));
    assert_eq!(error, None);
    assert_eq!(
        (stats.scraped, stats.post_relabel, stats.series_added),
        (2, 2, 2)
    );
    let a = series(&[
        ("__name__", "a_total"),
        ("instance", "host:9100"),
        ("job", "node"),
        ("x", "1"),
    ]);
    assert_eq!(values(&storage, &a), vec![(T1, 3.0)]);
    let up = series(&[
        ("__name__", "up"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    assert_eq!(values(&storage, &up), vec![(T1, 1.0)]);
    let scraped = series(&[
        ("__name__", "scrape_samples_scraped"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    assert_eq!(values(&storage, &scraped), vec![(T1, 2.0)]);
    assert_eq!(
        state.take_metadata()["a"].metric_type,
        ember_model::metadata::MetricType::Counter
    );
}

#[test]
fn vanished_series_get_a_staleness_marker_and_known_series_hit_the_cache() {
    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    let settings = settings("");
    scrape(&storage, &mut state, "a 1\nb 2\n", T1, &settings);
    let (_, stats) = scrape(&storage, &mut state, "a 1\n", T2, &settings);
    assert_eq!(stats.series_added, 0, "a was cached");
    let b = series(&[
        ("__name__", "b"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    let samples = storage.samples(&b);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].t, T2);
    assert!(is_stale_nan(samples[1].v));
    // Entries unseen for two scrapes leave the cache.
    scrape(&storage, &mut state, "a 1\n", T2 + 15_000, &settings);
    assert_eq!(state.cached_series(), 1);
}

#[test]
fn clashing_labels_become_exported_unless_honor_labels() {
    let storage = MemStorage::new();
    let body = "m{job=\"pushed\",exported_job=\"x\"} 1\n";
    let mut state = ScrapeState::new(target_labels());
    scrape(&storage, &mut state, body, T1, &settings(""));
    let renamed = series(&[
        ("__name__", "m"),
        ("exported_exported_job", "pushed"),
        ("exported_job", "x"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    assert_eq!(values(&storage, &renamed), vec![(T1, 1.0)]);

    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    scrape(
        &storage,
        &mut state,
        body,
        T1,
        &settings("    honor_labels: true\n"),
    );
    let honored = series(&[
        ("__name__", "m"),
        ("exported_job", "x"),
        ("instance", "host:9100"),
        ("job", "pushed"),
    ]);
    assert_eq!(values(&storage, &honored), vec![(T1, 1.0)]);
}

#[test]
fn metric_relabeling_drops_and_rewrites() {
    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    let settings = settings(
        "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: go_.*\n        action: drop\n      - source_labels: [__name__]\n        target_label: renamed\n        replacement: yes\n",
    );
    let (error, stats) = scrape(
        &storage,
        &mut state,
        "go_goroutines 7\nkept 1\n",
        T1,
        &settings,
    );
    assert_eq!(error, None);
    assert_eq!((stats.scraped, stats.post_relabel), (2, 1));
    let kept = series(&[
        ("__name__", "kept"),
        ("instance", "host:9100"),
        ("job", "node"),
        ("renamed", "yes"),
    ]);
    assert_eq!(values(&storage, &kept), vec![(T1, 1.0)]);
    let dropped = series(&[
        ("__name__", "go_goroutines"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    assert!(storage.samples(&dropped).is_empty());
    // The drop decision is cached too.
    let (_, stats) = scrape(
        &storage,
        &mut state,
        "go_goroutines 8\nkept 2\n",
        T2,
        &settings,
    );
    assert_eq!(
        (stats.scraped, stats.post_relabel, stats.series_added),
        (2, 1, 0)
    );
}

#[test]
fn a_failed_scrape_stores_nothing_but_staleness_and_up_zero() {
    for (body, job_yaml, expected) in [
        (
            "a 1\nb 2\nc 3\n",
            "    sample_limit: 2\n",
            "sample limit exceeded",
        ),
        ("a 1\nb{x=\"1\" 2\n", "", "line 2, column 9"),
        (
            "a 1\nb{x=\"long value\"} 2\n",
            "    label_value_length_limit: 9\n",
            "label_value_length_limit exceeded",
        ),
        (
            "a 1\nb{x=\"1\",y=\"2\"} 2\n",
            "    label_limit: 3\n",
            "label_limit exceeded",
        ),
        ("a 1\nb{x=\"1\",x=\"2\"} 2\n", "", "duplicate label name"),
    ] {
        let storage = MemStorage::new();
        let mut state = ScrapeState::new(target_labels());
        let settings = settings(job_yaml);
        let (error, _) = scrape(&storage, &mut state, "a 0\n", T1, &settings);
        assert_eq!(error, None);
        let (error, _) = scrape(&storage, &mut state, body, T2, &settings);
        let error = error.unwrap_or_else(|| panic!("{body:?} should fail"));
        assert!(error.contains(expected), "{body:?}: {error}");

        let a = series(&[
            ("__name__", "a"),
            ("instance", "host:9100"),
            ("job", "node"),
        ]);
        let samples = storage.samples(&a);
        assert_eq!(samples.len(), 2, "{body:?}: only the marker is added");
        assert!(is_stale_nan(samples[1].v) && samples[1].t == T2);
        let b = series(&[
            ("__name__", "b"),
            ("instance", "host:9100"),
            ("job", "node"),
        ]);
        assert!(storage.samples(&b).is_empty(), "{body:?}: nothing partial");
        let up = series(&[
            ("__name__", "up"),
            ("instance", "host:9100"),
            ("job", "node"),
        ]);
        assert_eq!(values(&storage, &up), vec![(T1, 1.0), (T2, 0.0)]);
    }
}

#[test]
fn explicit_timestamps_are_honored_and_not_made_stale() {
    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    let settings = settings("");
    scrape(&storage, &mut state, "a 1 999000\n", T1, &settings);
    scrape(&storage, &mut state, "", T2, &settings);
    let a = series(&[
        ("__name__", "a"),
        ("instance", "host:9100"),
        ("job", "node"),
    ]);
    assert_eq!(values(&storage, &a), vec![(999_000, 1.0)]);

    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    scrape(
        &storage,
        &mut state,
        "a 1 999000\n",
        T1,
        &self::settings("    honor_timestamps: false\n"),
    );
    assert_eq!(values(&storage, &a), vec![(T1, 1.0)]);
}

#[test]
fn end_of_run_marks_everything_stale_including_up() {
    let storage = MemStorage::new();
    let mut state = ScrapeState::new(target_labels());
    scrape(&storage, &mut state, "a 1\n", T1, &settings(""));
    let mut app = storage.appender();
    state.append_end_of_run(app.as_mut(), T2).unwrap();
    app.commit().unwrap();
    for name in ["a", "up", "scrape_duration_seconds"] {
        let labels = series(&[
            ("__name__", name),
            ("instance", "host:9100"),
            ("job", "node"),
        ]);
        let samples = storage.samples(&labels);
        assert!(is_stale_nan(samples.last().unwrap().v), "{name}");
    }
}
