//! Remote read, black-box: Ember's `POST /api/v1/read` answering Prometheus
//! 2.42 (configured with `remote_read` pointing at Ember) and a client that
//! asks for each response type; and Ember's own `remote_read:` client
//! reading from Prometheus into PromQL.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_remote::codec::{FrameReader, compress, decompress};
use ember_remote::prompb::{
    ChunkedReadResponse, Label, LabelMatcher, Query, ReadRequest, ReadResponse, Sample, TimeSeries,
    WriteRequest,
};
use ember_remote::xor::XorIterator;
use ember_tests::{Ember, Options, Prometheus, StaticTarget, http_client};
use prost::Message;
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// 40 samples 15 s apart ending a minute ago, for series `rr_metric{i=...}`
/// (`i` in 0..3), written through the remote-write receiver.
fn seed(ember: &Ember) -> Vec<(i64, f64)> {
    let end = (now_ms() - 60_000) / 1000 * 1000;
    let samples: Vec<(i64, f64)> = (0..40)
        .map(|k| (end - (39 - k) * 15_000, k as f64 * 1.25 + 0.1))
        .collect();
    let timeseries = (0..3)
        .map(|i| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "rr_metric".into(),
                },
                Label {
                    name: "i".into(),
                    value: i.to_string(),
                },
            ],
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample {
                    value: value + f64::from(i),
                    timestamp,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let body = compress(
        &WriteRequest {
            timeseries,
            metadata: vec![],
        }
        .encode_to_vec(),
    );
    let r = http_client(Duration::from_secs(30))
        .post(format!("{}/api/v1/write", ember.base_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    samples
}

fn server() -> Ember {
    Ember::start(
        Options::with_config("global:\n  external_labels:\n    site: ember\n")
            .flag("--web.enable-remote-write-receiver"),
    )
}

fn read(ember: &Ember, request: &ReadRequest) -> reqwest::blocking::Response {
    http_client(Duration::from_secs(30))
        .post(format!("{}/api/v1/read", ember.base_url()))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(compress(&request.encode_to_vec()))
        .send()
        .expect("POST /api/v1/read")
}

fn query(matchers: Vec<LabelMatcher>, accepted: Vec<i32>) -> ReadRequest {
    ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: now_ms() - 3_600_000,
            end_timestamp_ms: now_ms(),
            matchers,
            hints: None,
        }],
        accepted_response_types: accepted,
    }
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: 0,
        name: name.into(),
        value: value.into(),
    }
}

type Got = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

fn labels(labels: &[Label]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn want(samples: &[(i64, f64)]) -> Got {
    (0..3)
        .map(|i| {
            (
                vec![
                    ("__name__".to_owned(), "rr_metric".to_owned()),
                    ("i".to_owned(), i.to_string()),
                    ("site".to_owned(), "ember".to_owned()),
                ],
                samples
                    .iter()
                    .map(|&(t, v)| (t, v + f64::from(i)))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn both_response_types_return_the_stored_samples() {
    let ember = server();
    let samples = seed(&ember);
    // The external label's matcher is satisfied by the external label.
    let matchers = vec![eq("__name__", "rr_metric"), eq("site", "ember")];

    let r = read(&ember, &query(matchers.clone(), vec![]));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    assert_eq!(r.headers()["content-encoding"], "snappy");
    let body = decompress(&r.bytes().unwrap(), 1 << 26).unwrap();
    let response = ReadResponse::decode(body.as_slice()).unwrap();
    let got: Got = response.results[0]
        .timeseries
        .iter()
        .map(|s| {
            (
                labels(&s.labels),
                s.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            )
        })
        .collect();
    assert_eq!(got, want(&samples));

    let r = read(&ember, &query(matchers.clone(), vec![1, 0]));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    let body = r.bytes().unwrap();
    let mut frames = FrameReader::new(&body, 1 << 20);
    let mut got: Got = vec![];
    while let Some(frame) = frames.next_frame().unwrap() {
        let message = ChunkedReadResponse::decode(frame).unwrap();
        assert_eq!(message.query_index, 0);
        for series in message.chunked_series {
            let mut points = vec![];
            for chunk in series.chunks {
                assert_eq!(chunk.r#type, 1, "XOR");
                points.extend(XorIterator::new(&chunk.data).unwrap().map(Result::unwrap));
            }
            got.push((labels(&series.labels), points));
        }
    }
    assert_eq!(got, want(&samples));

    // An unknown response type, an invalid regex and an undecodable body
    // are 400s.
    assert_eq!(
        read(&ember, &query(matchers.clone(), vec![9])).status(),
        400
    );
    let bad_regex = LabelMatcher {
        r#type: 2,
        name: "i".into(),
        value: "(".into(),
    };
    assert_eq!(read(&ember, &query(vec![bad_regex], vec![])).status(), 400);
    let r = http_client(Duration::from_secs(10))
        .post(format!("{}/api/v1/read", ember.base_url()))
        .body(b"garbage".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn sampled_answers_honour_the_sample_limit() {
    let ember = Ember::start(
        Options::default()
            .flag("--web.enable-remote-write-receiver")
            .flag("--storage.remote.read-sample-limit=100"),
    );
    seed(&ember);
    // 2 x 40 samples fit; 3 x 40 do not.
    let two = LabelMatcher {
        r#type: 2,
        name: "i".into(),
        value: "0|1".into(),
    };
    let r = read(&ember, &query(vec![two], vec![0]));
    assert_eq!(r.status(), 200);
    let r = read(&ember, &query(vec![eq("__name__", "rr_metric")], vec![0]));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("sample limit"));
    // Streamed answers are not limited by it.
    let r = read(&ember, &query(vec![eq("__name__", "rr_metric")], vec![1]));
    assert_eq!(r.status(), 200);
}

/// Prometheus with `remote_read` pointing at Ember answers PromQL over
/// Ember's data.
#[test]
fn prometheus_reads_embers_data() {
    let ember = Ember::start(
        Options::with_config("global:\n  external_labels:\n    site: ember\n")
            .flag("--web.enable-remote-write-receiver"),
    );
    let samples = seed(&ember);
    let config = format!(
        "remote_read:\n  - url: {}/api/v1/read\n    read_recent: true\n",
        ember.base_url()
    );
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let at = (now_ms() as f64) / 1000.0;
    let body: Value = http_client(Duration::from_secs(30))
        .get(format!("{}/api/v1/query", prometheus.url()))
        .query(&[
            ("query", "rr_metric[1h]".to_owned()),
            ("time", format!("{at:.3}")),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    let mut got: Got = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut l: Vec<(String, String)> = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            l.sort();
            let points = s["values"]
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
            (l, points)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want(&samples));
}

/// Ember's `remote_read:` client: PromQL over Prometheus's data merged with
/// Ember's own, with `required_matchers` and `read_recent`.
#[test]
fn ember_reads_from_prometheus() {
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "# TYPE rr_peer_gauge gauge\nrr_peer_gauge 42\n".to_owned(),
    )]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    origin: prom\n\
         scrape_configs:\n  - job_name: peer\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let ember_config = format!(
        "remote_read:\n\
         \x20 - url: {url}/api/v1/read\n    name: all\n    read_recent: true\n\
         \x20 - url: {url}/api/v1/read\n    name: gated\n    read_recent: true\n    required_matchers:\n      job: nope\n",
        url = prometheus.url()
    );
    let ember = Ember::start(Options::with_config(ember_config));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = http_client(Duration::from_secs(30))
            .get(format!("{}/api/v1/query", ember.base_url()))
            .query(&[("query", "rr_peer_gauge")])
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        let result = body["data"]["result"].as_array().unwrap();
        if let Some(series) = result.first() {
            // One series: the gated endpoint is not asked (its required
            // matcher is absent from the query), and Prometheus's external
            // label comes with the data.
            assert_eq!(result.len(), 1, "{body}");
            assert_eq!(series["metric"]["origin"], "prom", "{body}");
            assert_eq!(series["metric"]["job"], "peer", "{body}");
            assert_eq!(series["value"][1], "42", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no remote data: {body}\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The XOR decoder Ember's client uses reads Prometheus's own streamed
/// chunks: the samples equal what Prometheus's query API shows.
#[test]
fn prometheus_streamed_chunks_decode_to_its_samples() {
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "# TYPE rr_chunk_gauge gauge\nrr_chunk_gauge 0.1\n".to_owned(),
    )]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: chunks\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let client = http_client(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = now_ms() as f64 / 1000.0;
        let body: Value = client
            .get(format!("{}/api/v1/query", prometheus.url()))
            .query(&[
                ("query", "{job=\"chunks\"}[1h]".to_owned()),
                ("time", format!("{at:.3}")),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut expected: Got = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let mut l: Vec<(String, String)> = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                l.sort();
                let points = s["values"]
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
                (l, points)
            })
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        if expected.iter().all(|(_, p)| p.len() >= 6) && expected.len() >= 5 {
            let end = (at * 1000.0) as i64;
            let request = ReadRequest {
                queries: vec![Query {
                    start_timestamp_ms: now_ms() - 3_600_000,
                    end_timestamp_ms: end,
                    matchers: vec![eq("job", "chunks")],
                    hints: None,
                }],
                accepted_response_types: vec![1],
            };
            let r = client
                .post(format!("{}/api/v1/read", prometheus.url()))
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "snappy")
                .body(compress(&request.encode_to_vec()))
                .send()
                .unwrap();
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/x-streamed-protobuf")
            );
            let body = r.bytes().unwrap();
            let mut frames = FrameReader::new(&body, 1 << 24);
            let mut got: Got = vec![];
            while let Some(frame) = frames.next_frame().unwrap() {
                for series in ChunkedReadResponse::decode(frame).unwrap().chunked_series {
                    let mut points = vec![];
                    for chunk in series.chunks {
                        points.extend(XorIterator::new(&chunk.data).unwrap().map(Result::unwrap));
                    }
                    // Whole chunks come back; trim to the range as a
                    // client must.
                    points.retain(|&(t, _)| t <= end);
                    got.push((labels(&series.labels), points));
                }
            }
            assert_eq!(got, expected);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus stored too little: {body}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
