//! One OTLP export request to Prometheus samples, exemplars and metadata.
//!
//! What each OTLP metric becomes (names per [`crate::naming`]):
//!
//! | OTLP | Prometheus |
//! | --- | --- |
//! | gauge | gauge |
//! | sum, monotonic | counter (`_total`) |
//! | sum, not monotonic | gauge |
//! | histogram | `_bucket{le}` (cumulative), `_sum` (when sent), `_count` |
//! | exponential histogram | the same, on power-of-two bounds ([`crate::exponential`]) |
//! | summary | `{quantile}`, `_sum`, `_count` |
//! | delta temporality | cumulated per series ([`crate::delta`]) |
//! | unspecified temporality | rejected |
//!
//! Labels of a data point, later steps overriding earlier ones:
//! 1. its attributes, sorted by key, names translated; keys that collide
//!    after translation join their values with `;` in key order; empty
//!    values are left out;
//! 2. promoted resource attributes (`promote_resource_attributes`, or all
//!    but `ignore_resource_attributes`), where step 1 did not set them;
//! 3. with `promote_scope_metadata`, `otel_scope_name`,
//!    `otel_scope_version`, `otel_scope_schema_url` and
//!    `otel_scope_<attribute>`;
//! 4. `job` = `service.namespace/service.name` (or `service.name`), and
//!    `instance` = `service.instance.id`, when the resource has them;
//! 5. `__name__`, and `le` or `quantile`.
//!
//! Each resource with `service.name` or `service.instance.id` and at least
//! one other attribute also gets a `target_info` gauge (value 1) labelled
//! with those other attributes (and the identifying ones too with
//! `keep_identifying_resource_attributes`), sampled from the resource's
//! earliest to its latest data point every half lookback delta (at most 64
//! samples, the newest), so a join finds it at any time in between.
//!
//! A data point with the "no recorded value" flag becomes staleness markers
//! for all its series. Timestamps are the points' `time_unix_nano`,
//! truncated to milliseconds. Exemplars keep `trace_id`/`span_id` (hex) and
//! their filtered attributes as labels, and go to the series (or, for
//! histograms, the first bucket) that holds their value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ember_model::labels::{Labels, METRIC_NAME};
use ember_model::metadata::{Metadata, MetricType};
use ember_model::sample::{Exemplar, stale_nan};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
    NumberDataPoint, SummaryDataPoint, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::delta::{DeltaState, Total};
use crate::exponential::PowerOfTwoBuckets;
use crate::naming::{LabelNamer, MetricKind, Strategy, metric_name, unit_name};

/// The `otlp:` settings that shape translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Name translation.
    pub strategy: Strategy,
    /// Resource attributes copied onto every series.
    pub promote_resource_attributes: Vec<String>,
    /// Copy every resource attribute but the ignored ones.
    pub promote_all_resource_attributes: bool,
    /// Not copied when promoting all.
    pub ignore_resource_attributes: Vec<String>,
    /// Keep `service.*` on `target_info` as well.
    pub keep_identifying_resource_attributes: bool,
    /// Scope name, version, schema URL and attributes as labels.
    pub promote_scope_metadata: bool,
    /// Prefix `key` to label names starting with one `_`.
    pub label_name_underscore_sanitization: bool,
    /// Keep runs of `_` in label names.
    pub label_name_preserve_multiple_underscores: bool,
    /// The query lookback delta (ms); `target_info` is sampled every half.
    pub lookback_delta_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            keep_identifying_resource_attributes: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
            lookback_delta_ms: 5 * 60 * 1000,
        }
    }
}

impl Settings {
    fn label_namer(&self) -> LabelNamer {
        LabelNamer {
            underscore_sanitization: self.label_name_underscore_sanitization,
            preserve_multiple_underscores: self.label_name_preserve_multiple_underscores,
            ..LabelNamer::new(self.strategy)
        }
    }
}

/// The data point id of samples that do not come from a data point
/// (`target_info`).
pub const NO_POINT: u32 = u32::MAX;

/// One sample to append.
#[derive(Debug, Clone, PartialEq)]
pub struct OutSample {
    /// The series.
    pub labels: Labels,
    /// Timestamp, ms.
    pub t: i64,
    /// Value (a staleness marker for "no recorded value").
    pub v: f64,
    /// Which data point of the request it came from (counting from 0 over
    /// the whole request), or [`NO_POINT`]; a rejected sample rejects its
    /// point in the answer's `partial_success`.
    pub point: u32,
    /// Index of its family's entry in [`Translation::metadata`].
    pub family: u32,
}

/// One exemplar to append, for the series `series`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutExemplar {
    /// The series it belongs to (one of the samples' series).
    pub series: Labels,
    /// The exemplar, with its timestamp.
    pub exemplar: Exemplar,
}

/// A metric family's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMetadata {
    /// The family name (`_total` included; without `_bucket`, `_sum`, ...).
    pub name: String,
    /// Type, help (the description) and unit.
    pub metadata: Metadata,
}

/// What a request translates to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    /// Samples in request order; a series' samples are in time order when
    /// the request's points were.
    pub samples: Vec<OutSample>,
    /// Exemplars.
    pub exemplars: Vec<OutExemplar>,
    /// One entry per metric (including `target_info`).
    pub metadata: Vec<FamilyMetadata>,
    /// Data points in the request.
    pub data_points: u64,
    /// Data points refused by translation (not in `samples`).
    pub rejected_points: u64,
    /// Why, for the first few refusals.
    pub errors: Vec<String>,
}

/// How many refusal reasons a [`Translation`] keeps.
const MAX_ERRORS: usize = 8;

/// The most `target_info` samples one resource of one request produces.
const MAX_TARGET_INFO_SAMPLES: i64 = 64;

impl Translation {
    fn reject(&mut self, points: u64, message: impl FnOnce() -> String) {
        self.rejected_points += points;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message());
        }
    }
}

/// An attribute value as text: strings as they are, numbers and booleans
/// as Go prints them, bytes in base64, arrays and maps as JSON.
pub fn value_as_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_float(*d),
        Some(any_value::Value::BytesValue(b)) => base64(b),
        Some(other) => any_to_json(other).to_string(),
    }
}

fn any_to_json(value: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(format_float(*d)), J::Number)
        }
        any_value::Value::BytesValue(b) => J::String(base64(b)),
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, any_to_json))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map_or(J::Null, any_to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
        // String-table references (profiles only) have no text here.
        any_value::Value::StringValueStrindex(_) => J::Null,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` prints it, which
/// is how Prometheus writes `le` and `quantile` values: shortest
/// round-trip digits, no exponent, `+Inf`/`-Inf`/`NaN`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "+Inf".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{f}")
    }
}

fn ns_to_ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Labels shared by every series of one resource (and scope).
struct ResourceLabels {
    /// Promoted resource attributes: set unless the point has them.
    promoted: Vec<(String, String)>,
    /// `job` and `instance`: always set.
    identity: Vec<(&'static str, String)>,
}

fn resource_labels(
    resource: &[KeyValue],
    settings: &Settings,
    namer: &LabelNamer,
) -> ResourceLabels {
    let get = |key: &str| {
        resource
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| value_as_string(kv.value.as_ref()))
    };
    let mut identity = Vec::new();
    if let Some(name) = get("service.name") {
        let job = match get("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        identity.push(("job", job));
    }
    if let Some(instance) = get("service.instance.id") {
        identity.push(("instance", instance));
    }
    let mut promoted = Vec::new();
    for kv in resource {
        let wanted = if settings.promote_all_resource_attributes {
            !settings.ignore_resource_attributes.contains(&kv.key)
        } else {
            settings.promote_resource_attributes.contains(&kv.key)
        };
        if !wanted {
            continue;
        }
        if let Some(name) = namer.build(&kv.key) {
            let value = value_as_string(kv.value.as_ref());
            if !value.is_empty() && !promoted.iter().any(|(n, _)| *n == name) {
                promoted.push((name, value));
            }
        }
    }
    ResourceLabels { promoted, identity }
}

fn scope_labels(
    scope: Option<&InstrumentationScope>,
    schema_url: &str,
    namer: &LabelNamer,
) -> Vec<(String, String)> {
    let Some(scope) = scope.filter(|s| !s.name.is_empty()) else {
        return Vec::new();
    };
    let mut out = vec![("otel_scope_name".to_owned(), scope.name.clone())];
    if !scope.version.is_empty() {
        out.push(("otel_scope_version".to_owned(), scope.version.clone()));
    }
    if !schema_url.is_empty() {
        out.push(("otel_scope_schema_url".to_owned(), schema_url.to_owned()));
    }
    for kv in &scope.attributes {
        if let Some(name) = namer.build(&format!("otel_scope_{}", kv.key)) {
            out.push((name, value_as_string(kv.value.as_ref())));
        }
    }
    out
}

/// Builds a series' label set from the point's attributes and the shared
/// parts (see the module docs for the order).
fn point_labels(
    attributes: &[KeyValue],
    resource: &ResourceLabels,
    scope: &[(String, String)],
    namer: &LabelNamer,
    name: &str,
) -> BTreeMap<String, String> {
    let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let value = value_as_string(kv.value.as_ref());
        if value.is_empty() {
            continue;
        }
        let Some(key) = namer.build(&kv.key) else {
            continue;
        };
        match labels.get_mut(&key) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => {
                labels.insert(key, value);
            }
        }
    }
    for (key, value) in &resource.promoted {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    for (key, value) in scope {
        labels.insert(key.clone(), value.clone());
    }
    for (key, value) in &resource.identity {
        labels.insert((*key).to_owned(), value.clone());
    }
    labels.insert(METRIC_NAME.to_owned(), name.to_owned());
    labels
}

fn to_labels(map: &BTreeMap<String, String>) -> Labels {
    // Keys of a map are unique, so this cannot fail.
    Labels::new(map.iter()).unwrap_or(Labels::EMPTY)
}

fn with_label(map: &BTreeMap<String, String>, name: &str, value: &str) -> Labels {
    let mut map = map.clone();
    map.insert(name.to_owned(), value.to_owned());
    to_labels(&map)
}

fn with_name(map: &BTreeMap<String, String>, name: String) -> BTreeMap<String, String> {
    let mut map = map.clone();
    map.insert(METRIC_NAME.to_owned(), name);
    map
}

/// Per-request context while walking metrics.
struct Walk<'a> {
    settings: &'a Settings,
    namer: LabelNamer,
    state: &'a mut DeltaState,
    now_ms: i64,
    out: Translation,
    point: u32,
}

/// Translates `request`. Delta points update `state`; `now_ms` is the
/// caller's clock for its eviction.
pub fn translate(
    request: &ExportMetricsServiceRequest,
    settings: &Settings,
    state: &mut DeltaState,
    now_ms: i64,
) -> Translation {
    let mut walk = Walk {
        settings,
        namer: settings.label_namer(),
        state,
        now_ms,
        out: Translation::default(),
        point: 0,
    };
    for rm in &request.resource_metrics {
        let empty = Resource::default();
        let resource = rm.resource.as_ref().unwrap_or(&empty);
        let shared = resource_labels(&resource.attributes, settings, &walk.namer);
        let mut earliest = i64::MAX;
        let mut latest = i64::MIN;
        for sm in &rm.scope_metrics {
            let scope = if settings.promote_scope_metadata {
                scope_labels(sm.scope.as_ref(), &sm.schema_url, &walk.namer)
            } else {
                Vec::new()
            };
            for m in &sm.metrics {
                let first = walk.out.samples.len();
                walk.metric(m, &shared, &scope);
                for s in &walk.out.samples[first..] {
                    earliest = earliest.min(s.t);
                    latest = latest.max(s.t);
                }
            }
        }
        if earliest <= latest {
            walk.target_info(&resource.attributes, earliest, latest);
        }
    }
    walk.out
}

fn exemplar_value(e: &opentelemetry_proto::tonic::metrics::v1::Exemplar) -> f64 {
    match e.value {
        Some(exemplar::Value::AsDouble(d)) => d,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

impl Walk<'_> {
    fn next_point(&mut self) -> u32 {
        let p = self.point;
        self.point = self.point.saturating_add(1);
        self.out.data_points += 1;
        p
    }

    fn push(&mut self, labels: Labels, t: i64, v: f64, point: u32) {
        let family = (self.out.metadata.len() - 1) as u32;
        self.out.samples.push(OutSample {
            labels,
            t,
            v,
            point,
            family,
        });
    }

    fn exemplars(
        &mut self,
        exemplars: &[opentelemetry_proto::tonic::metrics::v1::Exemplar],
        series: impl Fn(f64) -> Labels,
    ) {
        for e in exemplars {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for kv in &e.filtered_attributes {
                if let Some(name) = self.namer.build(&kv.key) {
                    pairs.push((name, value_as_string(kv.value.as_ref())));
                }
            }
            if !e.trace_id.is_empty() {
                pairs.retain(|(n, _)| n != "trace_id");
                pairs.push(("trace_id".to_owned(), hex(&e.trace_id)));
            }
            if !e.span_id.is_empty() {
                pairs.retain(|(n, _)| n != "span_id");
                pairs.push(("span_id".to_owned(), hex(&e.span_id)));
            }
            pairs.sort();
            pairs.dedup_by(|a, b| a.0 == b.0);
            let Ok(labels) = Labels::new(pairs) else {
                continue;
            };
            let value = exemplar_value(e);
            self.out.exemplars.push(OutExemplar {
                series: series(value),
                exemplar: Exemplar {
                    labels,
                    value,
                    ts: Some(ns_to_ms(e.time_unix_nano)),
                },
            });
        }
    }

    fn metric(&mut self, m: &Metric, shared: &ResourceLabels, scope: &[(String, String)]) {
        let Some(data) = &m.data else {
            // No data at all: nothing to store and no point to reject.
            return;
        };
        let (kind, points, temporality) = match data {
            metric::Data::Gauge(g) => (MetricKind::Gauge, g.data_points.len(), None),
            metric::Data::Sum(s) => (
                if s.is_monotonic {
                    MetricKind::Counter
                } else {
                    MetricKind::Gauge
                },
                s.data_points.len(),
                Some(s.aggregation_temporality),
            ),
            metric::Data::Histogram(h) => (
                MetricKind::Histogram,
                h.data_points.len(),
                Some(h.aggregation_temporality),
            ),
            metric::Data::ExponentialHistogram(h) => (
                MetricKind::Histogram,
                h.data_points.len(),
                Some(h.aggregation_temporality),
            ),
            metric::Data::Summary(s) => (MetricKind::Summary, s.data_points.len(), None),
        };
        let strategy = self.settings.strategy;
        let name = metric_name(strategy, &m.name, &m.unit, kind);
        let delta = match temporality {
            Some(t) if t == AggregationTemporality::Cumulative as i32 => false,
            Some(t) if t == AggregationTemporality::Delta as i32 => true,
            Some(t) => {
                for _ in 0..points {
                    self.next_point();
                }
                let metric_name = &m.name;
                self.out.reject(points as u64, || {
                    format!("metric {metric_name:?}: invalid aggregation temporality {t}")
                });
                return;
            }
            None => false,
        };
        if name.is_empty() {
            for _ in 0..points {
                self.next_point();
            }
            let metric_name = &m.name;
            self.out.reject(points as u64, || {
                format!("metric {metric_name:?}: the translated name is empty")
            });
            return;
        }
        let metric_type = match kind {
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Histogram => MetricType::Histogram,
            MetricKind::Summary => MetricType::Summary,
        };
        self.out.metadata.push(FamilyMetadata {
            name: name.clone(),
            metadata: Metadata::new(
                metric_type,
                m.description.clone(),
                unit_name(strategy, &m.unit),
            ),
        });
        match data {
            metric::Data::Gauge(g) => {
                for p in &g.data_points {
                    self.number(p, shared, scope, &name, false);
                }
            }
            metric::Data::Sum(s) => {
                for p in &s.data_points {
                    self.number(p, shared, scope, &name, delta);
                }
            }
            metric::Data::Histogram(h) => {
                for p in &h.data_points {
                    self.histogram(p, shared, scope, &name, delta);
                }
            }
            metric::Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    self.exponential(p, shared, scope, &name, delta);
                }
            }
            metric::Data::Summary(s) => {
                for p in &s.data_points {
                    self.summary(p, shared, scope, &name);
                }
            }
        }
    }

    /// The running total for a delta point, or `None` (rejected).
    fn cumulate(&mut self, series: &Labels, time_ns: u64, delta: Total) -> Option<Total> {
        match self.state.accumulate(series, time_ns, self.now_ms, delta) {
            Ok(total) => Some(total),
            Err(error) => {
                self.out.reject(1, || error.to_string());
                None
            }
        }
    }

    fn number(
        &mut self,
        p: &NumberDataPoint,
        shared: &ResourceLabels,
        scope: &[(String, String)],
        name: &str,
        delta: bool,
    ) {
        let point = self.next_point();
        let labels = to_labels(&point_labels(
            &p.attributes,
            shared,
            scope,
            &self.namer,
            name,
        ));
        let t = ns_to_ms(p.time_unix_nano);
        let stale = p.flags & 1 != 0;
        let mut v = match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None if stale => 0.0,
            None => {
                self.out
                    .reject(1, || format!("{labels}: data point without a value"));
                return;
            }
        };
        if stale {
            v = stale_nan();
        } else if delta {
            match self.cumulate(&labels, p.time_unix_nano, Total::Sum(v)) {
                Some(Total::Sum(total)) => v = total,
                _ => return,
            }
        }
        self.push(labels.clone(), t, v, point);
        self.exemplars(&p.exemplars, |_| labels.clone());
    }

    /// Writes `_bucket` (from strictly increasing bounds with cumulative
    /// counts, `+Inf` added), `_sum` and `_count`.
    #[allow(clippy::too_many_arguments)]
    fn classic(
        &mut self,
        base: &BTreeMap<String, String>,
        name: &str,
        t: i64,
        point: u32,
        stale: bool,
        cumulative: &[(f64, u64)],
        count: u64,
        sum: Option<f64>,
        exemplars: &[opentelemetry_proto::tonic::metrics::v1::Exemplar],
    ) {
        let value = |x: f64| if stale { stale_nan() } else { x };
        let bucket = with_name(base, format!("{name}_bucket"));
        let mut bucket_series = Vec::with_capacity(cumulative.len() + 1);
        for &(bound, cum) in cumulative {
            let labels = with_label(&bucket, "le", &format_float(bound));
            bucket_series.push((bound, labels.clone()));
            self.push(labels, t, value(cum as f64), point);
        }
        let inf = with_label(&bucket, "le", "+Inf");
        bucket_series.push((f64::INFINITY, inf.clone()));
        self.push(inf, t, value(count as f64), point);
        if let Some(sum) = sum {
            self.push(
                to_labels(&with_name(base, format!("{name}_sum"))),
                t,
                value(sum),
                point,
            );
        }
        self.push(
            to_labels(&with_name(base, format!("{name}_count"))),
            t,
            value(count as f64),
            point,
        );
        if !stale {
            self.exemplars(exemplars, |v| {
                bucket_series
                    .iter()
                    .find(|(bound, _)| v <= *bound)
                    .map_or_else(
                        || bucket_series[bucket_series.len() - 1].1.clone(),
                        |(_, l)| l.clone(),
                    )
            });
        }
    }

    fn histogram(
        &mut self,
        p: &HistogramDataPoint,
        shared: &ResourceLabels,
        scope: &[(String, String)],
        name: &str,
        delta: bool,
    ) {
        let point = self.next_point();
        let base = point_labels(&p.attributes, shared, scope, &self.namer, name);
        let stale = p.flags & 1 != 0;
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            let labels = to_labels(&base);
            let (b, c) = (p.explicit_bounds.len(), p.bucket_counts.len());
            self.out.reject(1, || {
                format!(
                    "{labels}: histogram has {c} bucket counts for {b} bounds (want bounds + 1)"
                )
            });
            return;
        }
        if p.explicit_bounds
            .windows(2)
            .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            || p.explicit_bounds.iter().any(|b| b.is_nan())
        {
            let labels = to_labels(&base);
            self.out.reject(1, || {
                format!("{labels}: histogram bounds are not increasing")
            });
            return;
        }
        let (mut counts, mut sum, mut count) = (p.bucket_counts.clone(), p.sum, p.count);
        if delta && !stale {
            let key = to_labels(&base);
            let total = Total::Histogram {
                bounds: p.explicit_bounds.clone(),
                counts: counts.clone(),
                sum: sum.unwrap_or(0.0),
                count,
            };
            match self.cumulate(&key, p.time_unix_nano, total) {
                Some(Total::Histogram {
                    counts: c,
                    sum: s,
                    count: n,
                    ..
                }) => {
                    counts = c;
                    sum = sum.map(|_| s);
                    count = n;
                }
                _ => return,
            }
        }
        let mut cumulative = Vec::with_capacity(p.explicit_bounds.len());
        let mut running = 0u64;
        for (i, &bound) in p.explicit_bounds.iter().enumerate() {
            running = running.saturating_add(counts.get(i).copied().unwrap_or(0));
            if bound.is_finite() || bound == f64::NEG_INFINITY {
                cumulative.push((bound, running));
            }
        }
        let t = ns_to_ms(p.time_unix_nano);
        self.classic(
            &base,
            name,
            t,
            point,
            stale,
            &cumulative,
            count,
            sum,
            &p.exemplars,
        );
    }

    fn exponential(
        &mut self,
        p: &ExponentialHistogramDataPoint,
        shared: &ResourceLabels,
        scope: &[(String, String)],
        name: &str,
        delta: bool,
    ) {
        let point = self.next_point();
        let base = point_labels(&p.attributes, shared, scope, &self.namer, name);
        let stale = p.flags & 1 != 0;
        let (mut buckets, mut sum, mut count) = (PowerOfTwoBuckets::from_point(p), p.sum, p.count);
        if delta && !stale {
            let key = to_labels(&base);
            let total = Total::Exponential {
                buckets: buckets.clone(),
                sum: sum.unwrap_or(0.0),
                count,
            };
            match self.cumulate(&key, p.time_unix_nano, total) {
                Some(Total::Exponential {
                    buckets: b,
                    sum: s,
                    count: n,
                }) => {
                    buckets = b;
                    sum = sum.map(|_| s);
                    count = n;
                }
                _ => return,
            }
        }
        let t = ns_to_ms(p.time_unix_nano);
        let cumulative = buckets.cumulative();
        self.classic(
            &base,
            name,
            t,
            point,
            stale,
            &cumulative,
            count,
            sum,
            &p.exemplars,
        );
    }

    fn summary(
        &mut self,
        p: &SummaryDataPoint,
        shared: &ResourceLabels,
        scope: &[(String, String)],
        name: &str,
    ) {
        let point = self.next_point();
        let base = point_labels(&p.attributes, shared, scope, &self.namer, name);
        let stale = p.flags & 1 != 0;
        let value = |x: f64| if stale { stale_nan() } else { x };
        let t = ns_to_ms(p.time_unix_nano);
        for q in &p.quantile_values {
            let labels = with_label(&base, "quantile", &format_float(q.quantile));
            self.push(labels, t, value(q.value), point);
        }
        self.push(
            to_labels(&with_name(&base, format!("{name}_sum"))),
            t,
            value(p.sum),
            point,
        );
        self.push(
            to_labels(&with_name(&base, format!("{name}_count"))),
            t,
            value(p.count as f64),
            point,
        );
    }

    fn target_info(&mut self, resource: &[KeyValue], earliest: i64, latest: i64) {
        const IDENTIFYING: [&str; 3] = ["service.namespace", "service.name", "service.instance.id"];
        let others = resource
            .iter()
            .filter(|kv| !IDENTIFYING.contains(&kv.key.as_str()))
            .count();
        if others == 0 {
            return;
        }
        let attributes: Vec<KeyValue> = resource
            .iter()
            .filter(|kv| {
                self.settings.keep_identifying_resource_attributes
                    || !IDENTIFYING.contains(&kv.key.as_str())
            })
            .cloned()
            .collect();
        let identity = resource_labels(
            resource,
            &Settings {
                promote_resource_attributes: Vec::new(),
                promote_all_resource_attributes: false,
                ..self.settings.clone()
            },
            &self.namer,
        );
        if identity.identity.is_empty() {
            return;
        }
        let labels = to_labels(&point_labels(
            &attributes,
            &identity,
            &[],
            &self.namer,
            "target_info",
        ));
        self.out.metadata.push(FamilyMetadata {
            name: "target_info".to_owned(),
            metadata: Metadata::new(MetricType::Gauge, "Target metadata", ""),
        });
        let interval = (self.settings.lookback_delta_ms / 2).max(1);
        // A request whose points span a long time (or carry a zero
        // timestamp next to current ones) would otherwise make a sample per
        // half lookback all the way: keep the newest ones.
        let earliest = earliest
            .max(latest.saturating_sub(interval.saturating_mul(MAX_TARGET_INFO_SAMPLES - 1)));
        let mut t = earliest;
        while t < latest {
            self.push(labels.clone(), t, 1.0, NO_POINT);
            t = t.saturating_add(interval);
        }
        self.push(labels, latest, 1.0, NO_POINT);
    }
}
