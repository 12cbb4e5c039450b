//! Translation cost of a typical OTLP export: one resource with five
//! attributes, 100 counters × 10 attribute sets and 10 histograms × 10
//! attribute sets with 10 buckets, decoded from protobuf and translated.
//!
//! `cargo bench -p ember-otlp --bench translate`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_otlp::{DeltaState, Encoding, Settings, decode, translate};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// The request and the number of samples it translates to.
pub fn typical_request() -> ExportMetricsServiceRequest {
    let t = 1_700_000_000_000_000_000u64;
    let attrs = |i: usize| {
        vec![
            kv("http.method", ["GET", "POST"][i % 2]),
            kv("http.route", &format!("/api/v{i}")),
            kv("http.status_code", "200"),
        ]
    };
    let mut metrics = Vec::new();
    for m in 0..100 {
        metrics.push(Metric {
            name: format!("app.requests.{m}"),
            unit: "{request}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: (0..10)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsInt(i as i64 * 7)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        });
    }
    for m in 0..10 {
        metrics.push(Metric {
            name: format!("app.latency.{m}"),
            unit: "s".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: (0..10)
                    .map(|i| HistogramDataPoint {
                        attributes: attrs(i),
                        time_unix_nano: t,
                        count: 55,
                        sum: Some(12.0),
                        bucket_counts: (0..11).collect(),
                        explicit_bounds: (1..11).map(|b| b as f64 * 0.01).collect(),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "shop"),
                    kv("service.instance.id", "i-1"),
                    kv("host.name", "box"),
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
    }
}

fn bench(c: &mut Criterion) {
    let request = typical_request();
    let body = prost::Message::encode_to_vec(&request);
    let settings = Settings::default();
    let samples = translate(&request, &settings, &mut DeltaState::new(), 0)
        .samples
        .len();
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("decode_and_translate_typical", |b| {
        b.iter(|| {
            let request = decode(black_box(&body), Encoding::Protobuf).expect("valid");
            translate(&request, &settings, &mut DeltaState::new(), 0)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
