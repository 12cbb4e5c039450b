//! The TSDB's data life cycle seen from outside, with a 10 s block length:
//! samples written with old timestamps (remote write) are cut into blocks
//! on disk, queries span blocks and head, blocks survive a restart,
//! retention deletes old blocks, and the admin API deletes series and
//! takes snapshots.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_remote::codec::compress;
use ember_remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
use ember_tests::{Ember, Options, http_client};
use prost::Message;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn write(ember: &Ember, name: &str, samples: &[(i64, f64)]) {
    let series = TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    };
    let body = compress(
        &WriteRequest {
            timeseries: vec![series],
            metadata: vec![],
        }
        .encode_to_vec(),
    );
    let r = http_client(Duration::from_secs(30))
        .post(format!("{}/api/v1/write", ember.base_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .expect("remote write");
    assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
}

/// Timestamps (ms) of the raw samples of `name` in `(at - range, at]`.
fn timestamps(ember: &Ember, name: &str, at_ms: i64, range: &str) -> Vec<i64> {
    let body: Value = http_client(Duration::from_secs(30))
        .get(format!("{}/api/v1/query", ember.base_url()))
        .query(&[
            ("query", format!("{name}[{range}]")),
            ("time", format!("{:.3}", at_ms as f64 / 1000.0)),
        ])
        .send()
        .expect("query")
        .json()
        .expect("JSON");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|s| s["values"].as_array())
        .map(|values| {
            values
                .iter()
                .map(|v| (v[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64)
                .collect()
        })
        .unwrap_or_default()
}

/// Block directories (ULID names with a meta.json) under `data`.
fn blocks(data: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(data)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("meta.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 26)
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn wait_until(what: &str, ember: &Ember, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(ember: &Ember, name: &str) -> f64 {
    let text = ember.get("/metrics").text().expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn start(data: &Path, flags: &[&str]) -> Ember {
    let mut options = Options::default()
        .data_dir(data)
        .flag("--web.enable-remote-write-receiver")
        .flag("--storage.tsdb.min-block-duration=10s")
        // No compaction: retention then has 10 s blocks to delete.
        .flag("--storage.tsdb.max-block-duration=10s");
    for f in flags {
        options = options.flag(*f);
    }
    Ember::start(options)
}

#[test]
fn blocks_appear_queries_span_them_and_retention_deletes_them() {
    let data = tempfile::tempdir().unwrap();
    let ember = start(data.path(), &["--web.enable-admin-api"]);
    // 90 s of data at 1 s, ending now: the head is cut into 10 s blocks.
    let end = now_ms();
    let start_t = end - 90_000;
    let samples: Vec<(i64, f64)> = (0..=90).map(|i| (start_t + i * 1_000, i as f64)).collect();
    write(&ember, "bb_metric", &samples);
    write(&ember, "bb_other", &samples);
    wait_until("blocks on disk", &ember, || blocks(data.path()).len() >= 2);
    wait_until("the blocks metric", &ember, || {
        metric(&ember, "ember_tsdb_blocks_loaded") >= 1.0
    });
    let all: Vec<i64> = samples.iter().map(|s| s.0).collect();
    assert_eq!(timestamps(&ember, "bb_metric", end, "2m"), all);
    // A range wholly inside blocks, and one across the head boundary.
    let early: Vec<i64> = all
        .iter()
        .copied()
        .filter(|&t| t > start_t + 5_000 && t <= start_t + 25_000)
        .collect();
    assert_eq!(
        timestamps(&ember, "bb_metric", start_t + 25_000, "20s"),
        early
    );

    // Samples older than the newest block are refused now.
    let r = http_client(Duration::from_secs(30))
        .post(format!("{}/api/v1/write", ember.base_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(compress(
            &WriteRequest {
                timeseries: vec![TimeSeries {
                    labels: vec![Label {
                        name: "__name__".into(),
                        value: "bb_late".into(),
                    }],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: start_t,
                    }],
                    ..Default::default()
                }],
                metadata: vec![],
            }
            .encode_to_vec(),
        ))
        .send()
        .expect("remote write");
    assert!(r.status().is_client_error(), "{}", r.status());

    // Admin API: a snapshot with the head, then deletion of one series.
    let r = ember.post("/api/v1/admin/tsdb/snapshot");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().expect("JSON");
    let name = body["data"]["name"].as_str().expect("name").to_owned();
    let snapshot = data.path().join("snapshots").join(&name);
    assert!(!blocks(&snapshot).is_empty(), "{}", snapshot.display());
    let r = ember.post("/api/v1/admin/tsdb/delete_series?match[]=bb_other");
    assert_eq!(r.status(), 204);
    assert!(timestamps(&ember, "bb_other", end, "2m").is_empty());
    assert_eq!(
        ember.post("/api/v1/admin/tsdb/clean_tombstones").status(),
        204
    );
    assert!(timestamps(&ember, "bb_other", end, "2m").is_empty());
    assert_eq!(timestamps(&ember, "bb_metric", end, "2m"), all);

    // Restart without the admin API: blocks reopen, nothing is lost.
    let before = blocks(data.path());
    drop(ember);
    let ember = start(data.path(), &[]);
    assert_eq!(timestamps(&ember, "bb_metric", end, "2m"), all);
    let r = ember.post("/api/v1/admin/tsdb/snapshot");
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().expect("JSON")["errorType"], "unavailable");
    assert!(!before.is_empty());
    drop(ember);

    // Retention of 30 s: blocks ending more than 30 s before the newest
    // block's end go, and their samples with them.
    let ember = start(data.path(), &["--storage.tsdb.retention.time=30s"]);
    wait_until("retention", &ember, || {
        metric(&ember, "ember_tsdb_time_retentions_total") >= 1.0
    });
    assert!(ember.logs_text().contains("deleting block past retention"));
    let left = timestamps(&ember, "bb_metric", end, "2m");
    assert!(!left.is_empty() && left.len() < all.len(), "{left:?}");
    assert!(left[0] > start_t, "the oldest samples were deleted");
    assert_eq!(left.last(), all.last(), "the newest are kept");
}
