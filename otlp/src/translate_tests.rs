//! Table-driven tests of the whole translation.

use ember_model::metadata::MetricType;
use ember_model::sample::is_stale_nan;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::naming::Strategy;
use crate::{DeltaState, Encoding, Settings, Translation, decode, translate};

const T0: u64 = 1_700_000_000_000_000_000;
const MS0: i64 = 1_700_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", "shop"),
        kv("service.namespace", "prod"),
        kv("service.instance.id", "i-1"),
        kv("host.name", "box"),
    ]
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".to_owned(),
                    version: "1.2".to_owned(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn number(attrs: Vec<KeyValue>, t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        description: format!("{name} help"),
        data: Some(data),
        ..Default::default()
    }
}

fn sum(
    points: Vec<NumberDataPoint>,
    monotonic: bool,
    temporality: AggregationTemporality,
) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

fn gauge(points: Vec<NumberDataPoint>) -> metric::Data {
    metric::Data::Gauge(Gauge {
        data_points: points,
    })
}

fn run(req: &ExportMetricsServiceRequest, settings: &Settings) -> Translation {
    translate(req, settings, &mut DeltaState::new(), 0)
}

/// `(series, t, v)` of every sample, as strings, in order.
fn rows(out: &Translation) -> Vec<(String, i64, f64)> {
    out.samples
        .iter()
        .map(|s| (s.labels.to_string(), s.t, s.v))
        .collect()
}

fn row(series: &str, t: i64, v: f64) -> (String, i64, f64) {
    (series.to_owned(), t, v)
}

#[test]
fn numbers_names_labels_and_target_info() {
    let req = request(
        service(),
        vec![
            metric(
                "queue.size",
                "{item}",
                gauge(vec![number(vec![kv("q", "a")], T0, 3.0)]),
            ),
            metric(
                "http.requests",
                "{request}",
                sum(
                    vec![number(vec![kv("http.method", "GET")], T0, 10.0)],
                    true,
                    AggregationTemporality::Cumulative,
                ),
            ),
            metric(
                "active",
                "",
                sum(
                    vec![number(vec![], T0, -2.0)],
                    false,
                    AggregationTemporality::Cumulative,
                ),
            ),
            metric("mem.used", "By", gauge(vec![number(vec![], T0, 1024.0)])),
        ],
    );
    let out = run(&req, &Settings::default());
    let id = r#"instance="i-1", job="prod/shop""#;
    assert_eq!(
        rows(&out),
        vec![
            row(&format!("queue_size{{{id}, q=\"a\"}}"), MS0, 3.0),
            row(
                &format!("http_requests_total{{http_method=\"GET\", {id}}}"),
                MS0,
                10.0
            ),
            row(&format!("active{{{id}}}"), MS0, -2.0),
            row(&format!("mem_used_bytes{{{id}}}"), MS0, 1024.0),
            row(&format!("target_info{{host_name=\"box\", {id}}}"), MS0, 1.0),
        ]
    );
    assert_eq!((out.data_points, out.rejected_points), (4, 0));
    let meta: Vec<(&str, MetricType, &str, &str)> = out
        .metadata
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.metadata.metric_type,
                m.metadata.help.as_str(),
                m.metadata.unit.as_str(),
            )
        })
        .collect();
    assert_eq!(
        meta,
        vec![
            ("queue_size", MetricType::Gauge, "queue.size help", ""),
            (
                "http_requests_total",
                MetricType::Counter,
                "http.requests help",
                ""
            ),
            ("active", MetricType::Gauge, "active help", ""),
            (
                "mem_used_bytes",
                MetricType::Gauge,
                "mem.used help",
                "bytes"
            ),
            ("target_info", MetricType::Gauge, "Target metadata", ""),
        ]
    );
    // Every sample points at its own family's metadata.
    let families: Vec<u32> = out.samples.iter().map(|s| s.family).collect();
    assert_eq!(families, vec![0, 1, 2, 3, 4]);
}

#[test]
fn target_info_rules() {
    let g = || vec![metric("g", "", gauge(vec![number(vec![], T0, 1.0)]))];
    let cases: Vec<(Vec<KeyValue>, bool, Option<&str>)> = vec![
        // Only identifying attributes: no target_info.
        (
            vec![kv("service.name", "a"), kv("service.instance.id", "b")],
            false,
            None,
        ),
        // No service.name nor instance id: no target_info.
        (vec![kv("host.name", "h")], false, None),
        (
            vec![kv("service.name", "a"), kv("host.name", "h")],
            false,
            Some(r#"target_info{host_name="h", job="a"}"#),
        ),
        (
            vec![kv("service.name", "a"), kv("host.name", "h")],
            true,
            Some(r#"target_info{host_name="h", job="a", service_name="a"}"#),
        ),
    ];
    for (resource, keep, want) in cases {
        let settings = Settings {
            keep_identifying_resource_attributes: keep,
            ..Settings::default()
        };
        let out = run(&request(resource.clone(), g()), &settings);
        let info: Vec<String> = out
            .samples
            .iter()
            .filter(|s| s.labels.metric_name() == Some("target_info"))
            .map(|s| s.labels.to_string())
            .collect();
        assert_eq!(
            info,
            want.into_iter().map(str::to_owned).collect::<Vec<_>>(),
            "{resource:?}"
        );
    }
}

#[test]
fn target_info_spans_the_resources_points() {
    let ten_min = 600_000_000_000u64;
    let req = request(
        service(),
        vec![metric(
            "g",
            "",
            gauge(vec![
                number(vec![], T0, 1.0),
                number(vec![kv("a", "b")], T0 + ten_min, 1.0),
            ]),
        )],
    );
    let out = run(&req, &Settings::default());
    let times: Vec<i64> = out
        .samples
        .iter()
        .filter(|s| s.labels.metric_name() == Some("target_info"))
        .map(|s| s.t - MS0)
        .collect();
    assert_eq!(times, vec![0, 150_000, 300_000, 450_000, 600_000]);
}

#[test]
fn promotion_collisions_and_strategies() {
    let resource = vec![
        kv("service.name", "shop"),
        kv("k8s.pod.name", "p1"),
        kv("cloud.region", "eu"),
        kv("dup", "from-resource"),
    ];
    let attrs = vec![
        kv("a.b", "1"),
        kv("a_b", "2"),
        kv("dup", "from-point"),
        kv("empty", ""),
    ];
    let req = request(
        resource,
        vec![metric("m.x", "s", gauge(vec![number(attrs, T0, 1.0)]))],
    );
    let cases: Vec<(Settings, &str)> = vec![
        (
            Settings {
                promote_resource_attributes: vec!["k8s.pod.name".into(), "dup".into()],
                ..Settings::default()
            },
            r#"m_x_seconds{a_b="1;2", dup="from-point", job="shop", k8s_pod_name="p1"}"#,
        ),
        (
            Settings {
                promote_all_resource_attributes: true,
                ignore_resource_attributes: vec!["cloud.region".into()],
                ..Settings::default()
            },
            r#"m_x_seconds{a_b="1;2", dup="from-point", job="shop", k8s_pod_name="p1", service_name="shop"}"#,
        ),
        (
            Settings {
                strategy: Strategy::NoUtf8EscapingWithSuffixes,
                ..Settings::default()
            },
            r#"{"m.x_seconds", "a.b"="1", a_b="2", dup="from-point", job="shop"}"#,
        ),
        (
            Settings {
                strategy: Strategy::NoTranslation,
                ..Settings::default()
            },
            r#"{"m.x", "a.b"="1", a_b="2", dup="from-point", job="shop"}"#,
        ),
        (
            Settings {
                strategy: Strategy::UnderscoreEscapingWithoutSuffixes,
                ..Settings::default()
            },
            r#"m_x{a_b="1;2", dup="from-point", job="shop"}"#,
        ),
        (
            Settings {
                promote_scope_metadata: true,
                ..Settings::default()
            },
            r#"m_x_seconds{a_b="1;2", dup="from-point", job="shop", otel_scope_name="lib", otel_scope_version="1.2"}"#,
        ),
    ];
    for (settings, want) in cases {
        let out = run(&req, &settings);
        assert_eq!(out.samples[0].labels.to_string(), want, "{settings:?}");
    }
}

#[test]
fn explicit_histograms_become_classic_buckets() {
    let point = HistogramDataPoint {
        time_unix_nano: T0,
        count: 6,
        sum: Some(12.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.5, 1.0],
        exemplars: vec![Exemplar {
            time_unix_nano: T0,
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            value: Some(exemplar::Value::AsDouble(0.7)),
            filtered_attributes: vec![kv("user", "x")],
        }],
        ..Default::default()
    };
    let req = request(
        vec![kv("service.name", "s")],
        vec![metric(
            "rpc.duration",
            "s",
            metric::Data::Histogram(Histogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    );
    let out = run(&req, &Settings::default());
    assert_eq!(
        rows(&out),
        vec![
            row(
                r#"rpc_duration_seconds_bucket{job="s", le="0.5"}"#,
                MS0,
                1.0
            ),
            row(r#"rpc_duration_seconds_bucket{job="s", le="1"}"#, MS0, 3.0),
            row(
                r#"rpc_duration_seconds_bucket{job="s", le="+Inf"}"#,
                MS0,
                6.0
            ),
            row(r#"rpc_duration_seconds_sum{job="s"}"#, MS0, 12.5),
            row(r#"rpc_duration_seconds_count{job="s"}"#, MS0, 6.0),
        ]
    );
    assert_eq!(out.metadata[0].metadata.metric_type, MetricType::Histogram);
    assert_eq!(out.metadata[0].metadata.unit, "seconds");
    assert_eq!(out.exemplars.len(), 1);
    let e = &out.exemplars[0];
    assert_eq!(
        e.series.to_string(),
        r#"rpc_duration_seconds_bucket{job="s", le="1"}"#
    );
    assert_eq!(
        e.exemplar.labels.to_string(),
        format!(
            r#"{{span_id="0101010101010101", trace_id="{}", user="x"}}"#,
            "ab".repeat(16)
        )
    );
    assert_eq!((e.exemplar.value, e.exemplar.ts), (0.7, Some(MS0)));
}

#[test]
fn summaries_and_exponential_histograms() {
    let summary = SummaryDataPoint {
        time_unix_nano: T0,
        count: 4,
        sum: 8.0,
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 1.5,
            },
            ValueAtQuantile {
                quantile: 0.99,
                value: 3.0,
            },
        ],
        ..Default::default()
    };
    let exp = ExponentialHistogramDataPoint {
        time_unix_nano: T0,
        count: 5,
        sum: Some(9.0),
        scale: 1,
        zero_count: 1,
        // Scale 1, indexes 0..3: (1, √2], (√2, 2], (2, 2√2], (2√2, 4].
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 1, 0, 2],
        }),
        ..Default::default()
    };
    let req = request(
        vec![kv("service.name", "s")],
        vec![
            metric(
                "lat",
                "ms",
                metric::Data::Summary(Summary {
                    data_points: vec![summary],
                }),
            ),
            metric(
                "size",
                "By",
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![exp],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
        ],
    );
    let out = run(&req, &Settings::default());
    assert_eq!(
        rows(&out),
        vec![
            row(r#"lat_milliseconds{job="s", quantile="0.5"}"#, MS0, 1.5),
            row(r#"lat_milliseconds{job="s", quantile="0.99"}"#, MS0, 3.0),
            row(r#"lat_milliseconds_sum{job="s"}"#, MS0, 8.0),
            row(r#"lat_milliseconds_count{job="s"}"#, MS0, 4.0),
            row(r#"size_bytes_bucket{job="s", le="0"}"#, MS0, 1.0),
            row(r#"size_bytes_bucket{job="s", le="2"}"#, MS0, 3.0),
            row(r#"size_bytes_bucket{job="s", le="4"}"#, MS0, 5.0),
            row(r#"size_bytes_bucket{job="s", le="+Inf"}"#, MS0, 5.0),
            row(r#"size_bytes_sum{job="s"}"#, MS0, 9.0),
            row(r#"size_bytes_count{job="s"}"#, MS0, 5.0),
        ]
    );
    assert_eq!(out.metadata[0].metadata.metric_type, MetricType::Summary);
}

#[test]
fn delta_sums_and_histograms_cumulate_across_requests() {
    let mut state = DeltaState::new();
    let settings = Settings::default();
    let delta_req = |t: u64, v: f64, counts: Vec<u64>| {
        request(
            vec![kv("service.name", "s")],
            vec![
                metric(
                    "hits",
                    "",
                    sum(
                        vec![number(vec![], t, v)],
                        true,
                        AggregationTemporality::Delta,
                    ),
                ),
                metric(
                    "h",
                    "",
                    metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: t,
                            count: counts.iter().sum(),
                            sum: Some(1.0),
                            bucket_counts: counts,
                            explicit_bounds: vec![1.0],
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                    }),
                ),
            ],
        )
    };
    let value = |out: &Translation, series: &str| {
        out.samples
            .iter()
            .find(|s| s.labels.to_string() == series)
            .map(|s| s.v)
    };
    let first = translate(&delta_req(T0, 3.0, vec![1, 0]), &settings, &mut state, 0);
    assert_eq!(value(&first, r#"hits_total{job="s"}"#), Some(3.0));
    let second = translate(
        &delta_req(T0 + 1_000_000_000, 4.0, vec![2, 1]),
        &settings,
        &mut state,
        0,
    );
    assert_eq!(value(&second, r#"hits_total{job="s"}"#), Some(7.0));
    assert_eq!(value(&second, r#"h_bucket{job="s", le="1"}"#), Some(3.0));
    assert_eq!(value(&second, r#"h_bucket{job="s", le="+Inf"}"#), Some(4.0));
    assert_eq!(value(&second, r#"h_sum{job="s"}"#), Some(2.0));
    // A retry of the same request is refused, not counted twice.
    let retry = translate(
        &delta_req(T0 + 1_000_000_000, 4.0, vec![2, 1]),
        &settings,
        &mut state,
        0,
    );
    assert_eq!((retry.data_points, retry.rejected_points), (2, 2));
    assert_eq!(value(&retry, r#"hits_total{job="s"}"#), None);
}

#[test]
fn stale_flag_gives_staleness_markers() {
    let mut p = number(vec![], T0, 5.0);
    p.flags = 1;
    let h = HistogramDataPoint {
        time_unix_nano: T0,
        flags: 1,
        explicit_bounds: vec![1.0],
        bucket_counts: vec![0, 0],
        ..Default::default()
    };
    let req = request(
        vec![kv("service.name", "s")],
        vec![
            metric("g", "", gauge(vec![p])),
            metric(
                "h",
                "",
                metric::Data::Histogram(Histogram {
                    data_points: vec![h],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
        ],
    );
    let out = run(&req, &Settings::default());
    assert_eq!(out.samples.len(), 4);
    assert!(out.samples.iter().all(|s| is_stale_nan(s.v)), "{out:?}");
}

#[test]
fn invalid_points_are_rejected_and_counted() {
    let bad_hist = HistogramDataPoint {
        time_unix_nano: T0,
        explicit_bounds: vec![1.0, 2.0],
        bucket_counts: vec![1],
        ..Default::default()
    };
    let unsorted = HistogramDataPoint {
        time_unix_nano: T0,
        explicit_bounds: vec![2.0, 1.0],
        bucket_counts: vec![1, 1, 1],
        ..Default::default()
    };
    let no_value = NumberDataPoint {
        time_unix_nano: T0,
        ..Default::default()
    };
    let req = request(
        vec![kv("service.name", "s")],
        vec![
            metric(
                "unspecified",
                "",
                sum(
                    vec![number(vec![], T0, 1.0), number(vec![], T0, 2.0)],
                    true,
                    AggregationTemporality::Unspecified,
                ),
            ),
            metric(
                "h",
                "",
                metric::Data::Histogram(Histogram {
                    data_points: vec![bad_hist, unsorted],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
            metric("g", "", gauge(vec![no_value, number(vec![], T0, 1.0)])),
            metric("...", "", gauge(vec![number(vec![], T0, 1.0)])),
        ],
    );
    let out = run(&req, &Settings::default());
    assert_eq!((out.data_points, out.rejected_points), (7, 6));
    assert_eq!(out.errors.len(), 5, "{:?}", out.errors);
    assert!(
        out.errors[0].contains("aggregation temporality"),
        "{:?}",
        out.errors
    );
    assert_eq!(rows(&out)[0], row(r#"g{job="s"}"#, MS0, 1.0));
    // The accepted gauge point is the 6th data point of the request.
    assert_eq!(out.samples[0].point, 5);
}

#[test]
fn json_and_protobuf_decode() {
    let json = br#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"svc"}},
        {"key":"n","value":{"intValue":"42"}}]},
      "scopeMetrics":[{"scope":{"name":"x"},"metrics":[{"name":"c","unit":"s",
        "sum":{"aggregationTemporality":2,"isMonotonic":true,
          "dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1.5,
            "attributes":[{"key":"ok","value":{"boolValue":true}}]}]}}]}]}]}"#;
    let req = decode(json, Encoding::Json).expect("valid JSON");
    let out = run(&req, &Settings::default());
    assert_eq!(
        rows(&out),
        vec![
            row(r#"c_seconds_total{job="svc", ok="true"}"#, MS0, 1.5),
            row(r#"target_info{job="svc", n="42"}"#, MS0, 1.0),
        ]
    );
    let bytes = prost::Message::encode_to_vec(&req);
    assert_eq!(decode(&bytes, Encoding::Protobuf).expect("round trip"), req);
    assert!(decode(&bytes[..bytes.len() - 3], Encoding::Protobuf).is_err());
    assert!(decode(b"{\"resourceMetrics\": [", Encoding::Json).is_err());
    assert!(decode(b"\xff\xff\xff", Encoding::Protobuf).is_err());
}

#[test]
fn target_info_samples_are_bounded() {
    // A point at time zero beside a current one: the newest 64 samples only.
    let req = request(
        service(),
        vec![metric(
            "g",
            "",
            gauge(vec![
                number(vec![], 0, 1.0),
                number(vec![kv("a", "b")], T0, 1.0),
            ]),
        )],
    );
    let out = run(&req, &Settings::default());
    let times: Vec<i64> = out
        .samples
        .iter()
        .filter(|s| s.labels.metric_name() == Some("target_info"))
        .map(|s| s.t)
        .collect();
    assert_eq!(times.len(), 64);
    assert_eq!(times[0], MS0 - 63 * 150_000);
    assert_eq!(times[63], MS0);
}
