//! Macro benchmark: OTLP metrics ingestion into the real release binary —
//! samples per second and CPU seconds per million samples.
//!
//! The load is pre-encoded before the server starts: `EMBER_BENCH_INSTANCES`
//! resources (default 10, differing in `service.instance.id`) each export,
//! per round, a typical SDK payload: 100 monotonic sums with 10 attribute
//! sets each (1000 samples) and 10 explicit-bucket histograms with 10
//! attribute sets and 10 bounds (1300 samples), so 2300 samples plus
//! `target_info` per request. `EMBER_BENCH_ROUNDS` rounds (default 40), 15 s
//! of data time apart, are sent by `EMBER_BENCH_CONNECTIONS` (default 2)
//! senders, protobuf, gzip when `EMBER_BENCH_GZIP=1`. Every answer must be
//! 200 without a partial success. The server's CPU (user + system, from
//! `/proc/<pid>/stat`) is read just before the first request and after the
//! last answer.
//!
//! Run with `cargo build --release --bin ember && cargo bench -p
//! ember-tests --bench otlp_macro`. Bounded: a fixed number of requests to
//! a loopback server it starts and stops.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_tests::{Ember, Options, http_client};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of a process (clock ticks are 100 per second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
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

/// One export of instance `instance` at `t` (ns); returns it and its
/// sample count (without `target_info`).
fn payload(instance: usize, round: usize, t: u64) -> (ExportMetricsServiceRequest, usize) {
    let attrs = |i: usize| {
        vec![
            kv("http.request.method", ["GET", "POST"][i % 2]),
            kv("http.route", &format!("/api/v{i}/items")),
            kv("http.response.status_code", "200"),
        ]
    };
    let mut metrics = Vec::new();
    let mut samples = 0;
    for m in 0..100 {
        metrics.push(Metric {
            name: format!("app.requests.{m}"),
            unit: "{request}".to_owned(),
            description: "Requests served.".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: (0..10)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsInt((round * 10 + i) as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        });
        samples += 10;
    }
    for m in 0..10 {
        metrics.push(Metric {
            name: format!("app.latency.{m}"),
            unit: "s".to_owned(),
            description: "Request latency.".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: (0..10)
                    .map(|i| HistogramDataPoint {
                        attributes: attrs(i),
                        time_unix_nano: t,
                        count: (round * 11) as u64,
                        sum: Some(round as f64),
                        bucket_counts: vec![round as u64; 11],
                        explicit_bounds: (1..11).map(|b| b as f64 * 0.025).collect(),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        });
        samples += 10 * 13;
    }
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "shop"),
                    kv("service.instance.id", &format!("instance-{instance}")),
                    kv("host.name", &format!("host-{instance}")),
                    kv("telemetry.sdk.name", "opentelemetry"),
                    kv("telemetry.sdk.language", "python"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    (request, samples)
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test` of benches passes
    // nothing: run only when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let instances = env("EMBER_BENCH_INSTANCES", 10);
    let rounds = env("EMBER_BENCH_ROUNDS", 40);
    let connections = env("EMBER_BENCH_CONNECTIONS", 2).max(1);
    let gzip = env("EMBER_BENCH_GZIP", 0) == 1;

    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let start_ns = now_ns - (rounds as u64) * 15_000_000_000;
    let mut bodies = Vec::with_capacity(instances * rounds);
    let mut samples = 0usize;
    let mut raw_bytes = 0usize;
    for round in 0..rounds {
        for instance in 0..instances {
            let (request, n) = payload(instance, round, start_ns + round as u64 * 15_000_000_000);
            let mut body = request.encode_to_vec();
            raw_bytes += body.len();
            if gzip {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&body).expect("gzip");
                body = encoder.finish().expect("gzip");
            }
            bodies.push(body);
            samples += n;
        }
    }
    let bodies = Arc::new(bodies);
    println!(
        "otlp_macro: {} requests, {} samples ({} per request), {:.1} MiB protobuf{}, {} connections",
        bodies.len(),
        samples,
        samples / bodies.len(),
        raw_bytes as f64 / (1 << 20) as f64,
        if gzip { ", gzip" } else { "" },
        connections
    );

    let ember = Ember::start(
        Options::with_config("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
            .flag("--web.enable-otlp-receiver"),
    );
    let url = format!("{}/api/v1/otlp/v1/metrics", ember.base_url());
    let pid = ember.pid();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    // Requests of one round go before the next round's, so every series
    // receives its samples in order.
    let next = Arc::new(AtomicUsize::new(0));
    let per_round = instances;
    let round_done: Arc<Vec<AtomicUsize>> =
        Arc::new((0..rounds).map(|_| AtomicUsize::new(0)).collect());
    let senders: Vec<_> = (0..connections)
        .map(|_| {
            let (bodies, next, url, round_done) = (
                bodies.clone(),
                next.clone(),
                url.clone(),
                round_done.clone(),
            );
            std::thread::spawn(move || {
                let client = http_client(Duration::from_secs(60));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    let round = i / per_round;
                    if round > 0 {
                        while round_done[round - 1].load(Ordering::Acquire) < per_round {
                            std::thread::yield_now();
                        }
                    }
                    let mut request = client
                        .post(&url)
                        .header("Content-Type", "application/x-protobuf")
                        .body(bodies[i].clone());
                    if gzip {
                        request = request.header("Content-Encoding", "gzip");
                    }
                    let answer = request.send().expect("POST");
                    assert_eq!(answer.status(), 200, "request {i}");
                    let response =
                        ExportMetricsServiceResponse::decode(answer.bytes().expect("answer body"))
                            .expect("response");
                    assert_eq!(response.partial_success, None, "request {i}");
                    round_done[round].fetch_add(1, Ordering::Release);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender");
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    println!(
        "otlp_macro: {:.0} samples/s wall, {:.2} CPU-s per million samples ({:.2} CPU-s over {:.2} s)",
        samples as f64 / wall,
        cpu / (samples as f64 / 1e6),
        cpu,
        wall
    );
}
