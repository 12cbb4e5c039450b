//! The OTLP receiver seen from outside: the OpenTelemetry Python SDK pushes
//! to the real binary, and what the Prometheus compatibility specification
//! says comes out of `/api/v1/query` and `/api/v1/metadata`; bad bodies get
//! a clear 4xx and store nothing.
//!
//! The SDK tests skip, saying so, when the Python packages
//! `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http` are not
//! installed (`scripts/setup.sh --test-peers` installs them).

use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use ember_tests::{Ember, Options, http_client};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::Value;

const PATH: &str = "/api/v1/otlp/v1/metrics";
const CONFIG: &str = "global:\n  scrape_interval: 1h\nscrape_configs: []\notlp:\n  promote_resource_attributes: [deployment.environment]\n";

fn start() -> Ember {
    Ember::start(Options::with_config(CONFIG).flag("--web.enable-otlp-receiver"))
}

fn have_sdk() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.http.metric_exporter",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIP: the Python packages opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http are not installed"
        );
    }
    ok
}

fn push_with_sdk(ember: &Ember, mode: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/otlp_push.py");
    let output = Command::new("python3")
        .args([script, &format!("{}{PATH}", ember.base_url()), mode])
        .output()
        .expect("run the OTLP push script");
    assert!(
        output.status.success(),
        "push failed: {}\n{}\nember logs:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        ember.logs_text()
    );
}

/// `series -> value` of an instant query, series printed as
/// `name{a="b", ...}` with labels in order.
fn query(ember: &Ember, promql: &str) -> Vec<(String, f64)> {
    let body: Value = http_client(Duration::from_secs(10))
        .get(format!("{}/api/v1/query", ember.base_url()))
        .query(&[("query", promql)])
        .send()
        .expect("query")
        .json()
        .expect("query JSON");
    assert_eq!(body["status"], "success", "{body}");
    let mut out: Vec<(String, f64)> = body["data"]["result"]
        .as_array()
        .expect("vector result")
        .iter()
        .map(|r| {
            let metric = r["metric"].as_object().expect("labels");
            let name = metric.get("__name__").and_then(Value::as_str).unwrap_or("");
            let mut labels: Vec<String> = metric
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            let value = r["value"][1]
                .as_str()
                .expect("value")
                .parse()
                .expect("number");
            (format!("{name}{{{}}}", labels.join(", ")), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn q(series: &str, value: f64) -> (String, f64) {
    (series.to_owned(), value)
}

const ID: &str = r#"deployment_environment="test", instance="i-1", job="prod/shop""#;

#[test]
fn python_sdk_cumulative_push_is_translated_per_the_specification() {
    if !have_sdk() {
        return;
    }
    let ember = start();
    push_with_sdk(&ember, "cumulative");

    // Monotonic sum: a counter with `_total`; the `{request}` annotation
    // adds nothing; dots become underscores; resource identity becomes
    // job/instance; the promoted attribute is on every series.
    assert_eq!(
        query(&ember, "http_requests_total"),
        vec![
            q(
                &format!(r#"http_requests_total{{{ID}, http_method="GET"}}"#),
                5.0
            ),
            q(
                &format!(r#"http_requests_total{{{ID}, http_method="POST"}}"#),
                2.0
            ),
        ]
        .into_iter()
        .map(|(s, v)| (reorder(&s), v))
        .collect::<Vec<_>>()
    );
    // Up-down counter: a gauge, no `_total`.
    assert_eq!(
        query(&ember, "queue_items"),
        vec![q(&format!("queue_items{{{ID}}}"), 7.0)]
    );
    // Gauge of unit 1: `_ratio`.
    assert_eq!(
        query(&ember, "cpu_utilization_ratio"),
        vec![q(&format!("cpu_utilization_ratio{{{ID}}}"), 0.25)]
    );
    // Explicit-bucket histogram with unit s: `_seconds`, cumulative buckets.
    let buckets = query(&ember, "request_duration_seconds_bucket");
    let by_le: Vec<(String, f64)> = buckets.iter().map(|(s, v)| (label(s, "le"), *v)).collect();
    assert_eq!(
        sorted(by_le),
        sorted(vec![
            ("0.1".into(), 1.0),
            ("0.5".into(), 2.0),
            ("1".into(), 3.0),
            ("+Inf".into(), 4.0)
        ])
    );
    assert!(buckets.iter().all(|(s, _)| s.contains(r#"route="/a""#)));
    let sum = query(&ember, "request_duration_seconds_sum");
    assert!((sum[0].1 - 3.95).abs() < 1e-9, "{sum:?}");
    assert_eq!(query(&ember, "request_duration_seconds_count")[0].1, 4.0);
    // Exponential histogram: classic buckets on powers of two.
    let exp: Vec<(String, f64)> = query(&ember, "payload_size_bytes_bucket")
        .iter()
        .map(|(s, v)| (label(s, "le"), *v))
        .collect();
    assert_eq!(
        sorted(exp),
        sorted(vec![
            ("0".into(), 0.0),
            ("1".into(), 1.0),
            ("4".into(), 3.0),
            ("128".into(), 4.0),
            ("1024".into(), 5.0),
            ("+Inf".into(), 5.0)
        ])
    );
    assert_eq!(query(&ember, "payload_size_bytes_count")[0].1, 5.0);
    // target_info: the other resource attributes, not the identifying ones.
    let info = query(&ember, "target_info");
    assert_eq!(info.len(), 1, "{info:?}");
    let (series, value) = &info[0];
    assert_eq!(*value, 1.0);
    for expected in [
        r#"host_name="box""#,
        r#"instance="i-1""#,
        r#"job="prod/shop""#,
        r#"telemetry_sdk_language="python""#,
        r#"deployment_environment="test""#,
    ] {
        assert!(
            series.contains(expected),
            "{expected} missing from {series}"
        );
    }
    assert!(!series.contains("service_name"), "{series}");

    // Metadata: type, help (the description) and unit per family.
    let meta: Value = ember.get("/api/v1/metadata").json().expect("metadata JSON");
    let entry = |name: &str| meta["data"][name][0].clone();
    assert_eq!(
        entry("http_requests_total"),
        serde_json::json!({"type": "counter", "help": "Requests served.", "unit": ""})
    );
    assert_eq!(
        entry("request_duration_seconds"),
        serde_json::json!({"type": "histogram", "help": "Request latency.", "unit": "seconds"})
    );
    assert_eq!(entry("queue_items")["type"], "gauge");
    assert_eq!(entry("payload_size_bytes")["type"], "histogram");
    assert_eq!(entry("target_info")["type"], "gauge");
}

#[test]
fn python_sdk_delta_counter_is_stored_cumulative() {
    if !have_sdk() {
        return;
    }
    let ember = start();
    push_with_sdk(&ember, "delta");
    // Pushed 3 then 4 as deltas: stored 3 then 7.
    assert_eq!(
        query(&ember, "http_requests_total")
            .iter()
            .map(|(_, v)| *v)
            .collect::<Vec<_>>(),
        vec![7.0]
    );
    assert_eq!(
        query(&ember, "count_over_time(http_requests_total[1h])")[0].1,
        2.0
    );
}

/// Labels in `name{...}` sorted by name, the order `query` prints.
fn reorder(series: &str) -> String {
    let (name, rest) = series.split_once('{').expect("braces");
    let mut labels: Vec<&str> = rest.trim_end_matches('}').split(", ").collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(", "))
}

fn label(series: &str, name: &str) -> String {
    let start = series.find(&format!("{name}=\"")).expect("label") + name.len() + 2;
    let end = series[start..].find('"').expect("closing quote");
    series[start..start + end].to_owned()
}

fn sorted(mut v: Vec<(String, f64)>) -> Vec<(String, f64)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// A request with one gauge point per `(value, time)`.
fn gauge_request(points: &[(f64, u64)]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "raw")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "raw.gauge".to_owned(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points
                            .iter()
                            .map(|&(v, t)| NumberDataPoint {
                                time_unix_nano: t,
                                value: Some(number_data_point::Value::AsDouble(v)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
}

fn post(
    ember: &Ember,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    let mut request = http_client(Duration::from_secs(30))
        .post(format!("{}{PATH}", ember.base_url()))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("Content-Encoding", encoding);
    }
    request.send().expect("POST")
}

fn nothing_stored(ember: &Ember) -> bool {
    query(ember, r#"count({__name__=~".+"})"#).is_empty()
}

#[test]
fn bad_bodies_get_a_clear_4xx_and_store_nothing() {
    let ember = start();
    let valid = gauge_request(&[(1.0, now_ns())]).encode_to_vec();

    let truncated = post(
        &ember,
        "application/x-protobuf",
        None,
        valid[..valid.len() - 4].to_vec(),
    );
    assert_eq!(truncated.status(), 400);
    assert!(truncated.text().unwrap().contains("protobuf"));

    let json = post(
        &ember,
        "application/json",
        None,
        b"{\"resourceMetrics\": [".to_vec(),
    );
    assert_eq!(json.status(), 400);
    assert!(json.text().unwrap().contains("JSON"));

    let wrong_type = post(&ember, "text/plain", None, valid.clone());
    assert_eq!(wrong_type.status(), 415);
    assert!(wrong_type.text().unwrap().contains("Content-Type"));

    let wrong_encoding = post(&ember, "application/x-protobuf", Some("br"), valid.clone());
    assert_eq!(wrong_encoding.status(), 415);

    let not_gzip = post(
        &ember,
        "application/x-protobuf",
        Some("gzip"),
        valid.clone(),
    );
    assert_eq!(not_gzip.status(), 400);

    // 100 MiB of zeros gzip to about 100 KiB: past the 64 MiB inflation
    // limit, refused without inflating it all.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let answer = post(&ember, "application/x-protobuf", Some("gzip"), bomb);
    assert_eq!(answer.status(), 413);
    assert!(answer.text().unwrap().contains("limit"));

    assert!(nothing_stored(&ember), "{}", ember.logs_text());
}

#[test]
fn gzip_json_and_partial_success() {
    let ember = start();
    let now = now_ns();
    // Protobuf, gzip: stored; the answer is an empty response.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&gauge_request(&[(2.0, now - 30_000_000_000)]).encode_to_vec())
        .unwrap();
    let answer = post(
        &ember,
        "application/x-protobuf",
        Some("gzip"),
        gz.finish().unwrap(),
    );
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/x-protobuf");
    let response = ExportMetricsServiceResponse::decode(answer.bytes().unwrap()).expect("response");
    assert_eq!(response.partial_success, None);
    assert_eq!(
        query(&ember, "raw_gauge"),
        vec![q(r#"raw_gauge{job="raw"}"#, 2.0)]
    );

    // JSON: one point older than the stored one (refused by the storage as
    // out of order) and one newer (stored): 200 with a partial success.
    let older = (now - 60_000_000_000).to_string();
    let newer = now.to_string();
    let body = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"raw"}}}}]}},
          "scopeMetrics":[{{"metrics":[{{"name":"raw.gauge","gauge":{{"dataPoints":[
            {{"timeUnixNano":"{older}","asDouble":9}},{{"timeUnixNano":"{newer}","asDouble":3}}]}}}}]}}]}}]}}"#
    );
    let answer = post(
        &ember,
        "application/json; charset=utf-8",
        None,
        body.into_bytes(),
    );
    assert_eq!(answer.status(), 200);
    let response: Value = answer.json().expect("JSON response");
    let partial = &response["partialSuccess"];
    assert_eq!(
        partial["rejectedDataPoints"].to_string().trim_matches('"'),
        "1",
        "{response}"
    );
    assert!(
        partial["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("out of order")),
        "{response}"
    );
    assert_eq!(
        query(&ember, "raw_gauge"),
        vec![q(r#"raw_gauge{job="raw"}"#, 3.0)]
    );
}

#[test]
fn disabled_receiver_answers_404_like_prometheus() {
    let ember = Ember::start(Options::with_config(CONFIG));
    let answer = post(
        &ember,
        "application/x-protobuf",
        None,
        gauge_request(&[(1.0, now_ns())]).encode_to_vec(),
    );
    assert_eq!(answer.status(), 404);
    assert!(
        answer
            .text()
            .unwrap()
            .contains("--web.enable-otlp-receiver")
    );
    assert!(nothing_stored(&ember));
}
