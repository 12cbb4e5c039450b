//! The remote-write receiver (`POST /api/v1/write`), black-box: Prometheus
//! 2.42 remote-writing what it scrapes into Ember (both must then hold the
//! same samples), remote write 2.0 with its `-Written` headers, durability
//! across a SIGKILL, and bad input (wrong content type or encoding,
//! truncated snappy, wrong protobuf, out-of-order samples, oversized
//! bodies), each answered with a clear 4xx and nothing half-written.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_remote::codec::compress;
use ember_remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
use ember_remote::writev2;
use ember_tests::{Ember, Options, Prometheus, StaticTarget, http_client};
use prost::Message;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn receiver() -> Ember {
    Ember::start(Options::default().flag("--web.enable-remote-write-receiver"))
}

fn series(name: &str, samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: "rw".into(),
            },
        ],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn v1_body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
    compress(
        &WriteRequest {
            timeseries,
            metadata: vec![],
        }
        .encode_to_vec(),
    )
}

/// POSTs a body with the 1.0 headers (or `content_type`/`encoding`).
fn post(
    ember: &Ember,
    body: Vec<u8>,
    content_type: &str,
    encoding: &str,
) -> reqwest::blocking::Response {
    http_client(Duration::from_secs(30))
        .post(format!("{}/api/v1/write", ember.base_url()))
        .header("Content-Type", content_type)
        .header("Content-Encoding", encoding)
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .expect("POST /api/v1/write")
}

fn post_v1(ember: &Ember, timeseries: Vec<TimeSeries>) -> reqwest::blocking::Response {
    post(
        ember,
        v1_body(timeseries),
        "application/x-protobuf",
        "snappy",
    )
}

/// The raw samples of every series matching `selector` over the last
/// hour before `at` (seconds), as `(labels JSON, [[t, "v"], ...])`.
fn raw(base_url: &str, selector: &str, at: f64) -> Vec<(String, Value)> {
    let body: Value = http_client(Duration::from_secs(30))
        .get(format!("{base_url}/api/v1/query"))
        .query(&[
            ("query", format!("{selector}[1h]")),
            ("time", format!("{at:.3}")),
        ])
        .send()
        .expect("query")
        .json()
        .expect("query JSON");
    assert_eq!(body["status"], "success", "{body}");
    let mut out: Vec<(String, Value)> = body["data"]["result"]
        .as_array()
        .expect("matrix")
        .iter()
        .map(|s| (s["metric"].to_string(), s["values"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn stored(ember: &Ember, selector: &str) -> Vec<(String, Value)> {
    raw(ember.base_url(), selector, now_ms() as f64 / 1000.0 + 1.0)
}

#[test]
fn disabled_receiver_answers_404_like_prometheus() {
    let ember = Ember::start(Options::default());
    let response = post_v1(&ember, vec![series("x", &[(now_ms(), 1.0)])]);
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .unwrap()
            .contains("--web.enable-remote-write-receiver")
    );
}

#[test]
fn v1_samples_are_stored_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms() - 60_000;
    let want = vec![(t, 1.0), (t + 15_000, 2.5), (t + 30_000, f64::MAX)];
    {
        let mut ember = Ember::start(
            Options::default()
                .flag("--web.enable-remote-write-receiver")
                .data_dir(dir.path()),
        );
        let response = post_v1(&ember, vec![series("rw_durable", &want)]);
        assert_eq!(response.status(), 204, "{:?}", response.text());
        // A 1.0 answer carries no -Written headers (1.0 senders ignore them).
        ember.kill();
    }
    let ember = Ember::start(
        Options::default()
            .flag("--web.enable-remote-write-receiver")
            .data_dir(dir.path()),
    );
    let got = stored(&ember, "rw_durable");
    assert_eq!(got.len(), 1, "{got:?}");
    let values: Vec<(i64, f64)> = got[0]
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(values, want);
}

#[test]
fn bad_input_is_refused_with_4xx_and_nothing_is_written() {
    let ember = Ember::start(
        Options::default()
            .flag("--web.enable-remote-write-receiver")
            .flag("--web.remote-write-receiver.max-body-bytes=4096"),
    );
    let t = now_ms() - 60_000;
    let good = || vec![series("rw_bad_probe", &[(t, 1.0)])];

    // Unsupported content type and encoding: 415, as the 2.0 spec says.
    let r = post(&ember, v1_body(good()), "application/json", "snappy");
    assert_eq!(r.status(), 415);
    assert!(r.text().unwrap().contains("Content-Type"));
    let r = post(
        &ember,
        v1_body(good()),
        "application/x-protobuf;proto=foo.Bar",
        "snappy",
    );
    assert_eq!(r.status(), 415);
    let r = post(&ember, v1_body(good()), "application/x-protobuf", "gzip");
    assert_eq!(r.status(), 415);
    assert!(r.text().unwrap().contains("Content-Encoding"));

    // Truncated snappy.
    let body = v1_body(good());
    let r = post(
        &ember,
        body[..body.len() - 3].to_vec(),
        "application/x-protobuf",
        "snappy",
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("snappy"));

    // Valid snappy around bytes that are not a WriteRequest.
    let r = post(
        &ember,
        compress(b"\x0a\xff\xff\xff\xff\x0fnot protobuf"),
        "application/x-protobuf",
        "snappy",
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("prometheus.WriteRequest"));

    // A body over the limit: 413 before anything is decoded.
    let big: Vec<TimeSeries> = (0..1000)
        .map(|i| series(&format!("rw_big_{i}"), &[(t, i as f64)]))
        .collect();
    let r = post_v1(&ember, big);
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains("max-body-bytes"));

    // A series without a metric name.
    let mut nameless = series("x", &[(t, 1.0)]);
    nameless.labels.remove(0);
    let r = post_v1(&ember, vec![series("rw_bad_probe", &[(t, 1.0)]), nameless]);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("no metric name"));

    // Out of order: the request's good series must not be written either.
    assert_eq!(
        post_v1(&ember, vec![series("rw_ooo", &[(t, 1.0), (t + 1000, 2.0)])]).status(),
        204
    );
    let r = post_v1(
        &ember,
        vec![
            series("rw_bad_probe", &[(t, 1.0)]),
            series("rw_ooo", &[(t + 500, 9.0)]),
        ],
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("out of order"));
    // A duplicate timestamp with another value: 400 as well.
    let r = post_v1(&ember, vec![series("rw_ooo", &[(t + 1000, 3.0)])]);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("duplicate sample"));

    assert!(
        stored(&ember, "rw_bad_probe").is_empty(),
        "a refused request left data behind"
    );
    let ooo = stored(&ember, "rw_ooo");
    assert_eq!(ooo.len(), 1);
    assert_eq!(ooo[0].1.as_array().unwrap().len(), 2, "{ooo:?}");
    assert!(stored(&ember, "{__name__=~\"rw_big_.*\"}").is_empty());
}

#[test]
fn v2_writes_with_symbols_metadata_and_written_headers() {
    let ember = receiver();
    let t = now_ms() - 60_000;
    let symbols: Vec<String> = [
        "",
        "__name__",
        "rw2_requests_total",
        "job",
        "rw2",
        "Requests served.",
        "rw2_other",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sample = |timestamp: i64, value: f64| writev2::Sample {
        value,
        timestamp,
        start_timestamp: t - 100_000,
    };
    let request = writev2::Request {
        symbols: symbols.clone(),
        timeseries: vec![writev2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![sample(t, 1.0), sample(t + 15_000, 4.0)],
            metadata: Some(writev2::Metadata {
                r#type: writev2::metadata::MetricType::Counter as i32,
                help_ref: 5,
                unit_ref: 0,
            }),
            ..Default::default()
        }],
    };
    let content_type = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let r = post(
        &ember,
        compress(&request.encode_to_vec()),
        content_type,
        "snappy",
    );
    assert_eq!(r.status(), 204);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(format!("X-Prometheus-Remote-Write-{name}-Written"))
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header(&r, "Samples").as_deref(), Some("2"));
    assert_eq!(header(&r, "Histograms").as_deref(), Some("0"));
    assert_eq!(header(&r, "Exemplars").as_deref(), Some("0"));
    let got = stored(&ember, "rw2_requests_total");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.as_array().unwrap().len(), 2);

    // A partial write: one valid sample, one out of order, one series with
    // a broken symbol ref. 400, and the header counts what was written.
    let partial = writev2::Request {
        symbols,
        timeseries: vec![
            writev2::TimeSeries {
                labels_refs: vec![1, 6, 3, 4],
                samples: vec![sample(t, 7.0)],
                ..Default::default()
            },
            writev2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![sample(t + 1, 9.0)],
                ..Default::default()
            },
            writev2::TimeSeries {
                labels_refs: vec![1, 42],
                samples: vec![sample(t, 1.0)],
                ..Default::default()
            },
        ],
    };
    let r = post(
        &ember,
        compress(&partial.encode_to_vec()),
        content_type,
        "snappy",
    );
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "Samples").as_deref(), Some("1"));
    let text = r.text().unwrap();
    assert!(
        text.contains("out of order") && text.contains("label ref 42"),
        "{text}"
    );
    assert_eq!(stored(&ember, "rw2_other").len(), 1);
    assert_eq!(
        stored(&ember, "rw2_requests_total")[0]
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Prometheus scrapes a target and remote-writes everything it stores into
/// Ember; for any time range Ember has fully received, both hold exactly
/// the same series and samples.
#[test]
fn prometheus_remote_write_lands_in_ember_unchanged() {
    let ember = receiver();
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "# TYPE rw_peer_requests_total counter\n\
         rw_peer_requests_total{code=\"200\"} 1027\n\
         rw_peer_requests_total{code=\"500\"} 3\n\
         # TYPE rw_peer_temperature gauge\n\
         rw_peer_temperature 21.5\n"
            .to_owned(),
    )]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: peer\n    static_configs:\n      - targets: ['{}']\n\
         remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 100ms\n",
        target.address(),
        ember.base_url()
    );
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let selector = "{job=\"peer\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Compare up to a few seconds ago, which Ember has received by now
        // unless the queue is behind.
        std::thread::sleep(Duration::from_secs(2));
        let at = (now_ms() - 4_000) as f64 / 1000.0;
        let ours = raw(ember.base_url(), selector, at);
        let theirs = raw(prometheus.url(), selector, at);
        let samples: usize = theirs.iter().map(|s| s.1.as_array().unwrap().len()).sum();
        if samples >= 5 * theirs.len() && theirs.len() >= 7 && ours == theirs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Ember's data never equalled Prometheus's:\nEmber: {ours:#?}\nPrometheus: {theirs:#?}\nEmber logs:\n{}",
            ember.logs_text()
        );
    }
}
