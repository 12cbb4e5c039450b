//! Query results, shaped like Prometheus's `promql.Value` so the HTTP API
//! can render them directly.
//!
//! [`QueryValue`] is the full result: its samples are floats or native
//! histograms ([`SampleValue`]). [`Value`] is the float-only view that
//! existing callers use; [`QueryValue::into_float_value`] derives it by
//! leaving histogram samples out.

use std::fmt;

use ember_model::histogram::FloatHistogram;
use ember_model::labels::Labels;
use ember_model::sample::Sample as Point;

/// A sample's value: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    /// A float.
    Float(f64),
    /// A native histogram.
    Histogram(Box<FloatHistogram>),
}

/// One element of an instant vector of a [`QueryValue`].
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels.
    pub metric: Labels,
    /// Timestamp, ms.
    pub t: i64,
    /// Value.
    pub value: SampleValue,
}

/// A native histogram point of a matrix series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    /// Timestamp, ms.
    pub t: i64,
    /// The histogram.
    pub h: FloatHistogram,
}

/// One series of a matrix of a [`QueryValue`]: float points and histogram
/// points, each in increasing time order (a timestamp has one or the
/// other).
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    /// The series' labels.
    pub metric: Labels,
    /// Float points.
    pub points: Vec<Point>,
    /// Histogram points.
    pub histograms: Vec<HistogramPoint>,
}

/// The full result of a query, with native histograms.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A single number at the evaluation time.
    Scalar(Scalar),
    /// A string literal's value at the evaluation time.
    String(StringValue),
    /// An instant vector.
    Vector(Vec<VectorSample>),
    /// A range vector or the result of a range query.
    Matrix(Vec<MatrixSeries>),
}

impl QueryValue {
    /// The Prometheus name of the value's type (`resultType` in the API).
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar(_) => "scalar",
            QueryValue::String(_) => "string",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
        }
    }

    /// The float-only [`Value`]: histogram samples of vectors are left
    /// out, matrix series keep their float points (possibly none).
    pub fn into_float_value(self) -> Value {
        match self {
            QueryValue::Scalar(s) => Value::Scalar(s),
            QueryValue::String(s) => Value::String(s),
            QueryValue::Vector(samples) => Value::Vector(
                samples
                    .into_iter()
                    .filter_map(|s| match s.value {
                        SampleValue::Float(v) => Some(Sample {
                            metric: s.metric,
                            t: s.t,
                            v,
                        }),
                        SampleValue::Histogram(_) => None,
                    })
                    .collect(),
            ),
            QueryValue::Matrix(series) => Value::Matrix(
                series
                    .into_iter()
                    .map(|s| Series {
                        metric: s.metric,
                        points: s.points,
                    })
                    .collect(),
            ),
        }
    }
}

impl From<Value> for QueryValue {
    fn from(value: Value) -> Self {
        match value {
            Value::Scalar(s) => QueryValue::Scalar(s),
            Value::String(s) => QueryValue::String(s),
            Value::Vector(samples) => QueryValue::Vector(
                samples
                    .into_iter()
                    .map(|s| VectorSample {
                        metric: s.metric,
                        t: s.t,
                        value: SampleValue::Float(s.v),
                    })
                    .collect(),
            ),
            Value::Matrix(series) => QueryValue::Matrix(
                series
                    .into_iter()
                    .map(|s| MatrixSeries {
                        metric: s.metric,
                        points: s.points,
                        histograms: Vec::new(),
                    })
                    .collect(),
            ),
        }
    }
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at the evaluation time.
    Scalar(Scalar),
    /// A string literal's value at the evaluation time.
    String(StringValue),
    /// An instant vector: one sample per series, all at the evaluation time.
    Vector(Vec<Sample>),
    /// A range vector (instant queries of `x[5m]`) or the result of a range
    /// query: series with their points, sorted by labels for range queries.
    Matrix(Vec<Series>),
}

impl Value {
    /// The Prometheus name of the value's type (`resultType` in the API).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A scalar result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scalar {
    /// Evaluation time, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// A string result.
#[derive(Debug, Clone, PartialEq)]
pub struct StringValue {
    /// Evaluation time, ms.
    pub t: i64,
    /// Value.
    pub v: String,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub metric: Labels,
    /// Timestamp, ms.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub metric: Labels,
    /// Points in increasing time order.
    pub points: Vec<Point>,
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does
/// (shortest representation, no exponent, `+Inf`/`-Inf`/`NaN`), which is how
/// PromQL renders values inside labels (`count_values`).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} => {} @[{}]",
            self.metric,
            format_float(self.v),
            self.t
        )
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} =>", self.metric)?;
        for point in &self.points {
            write!(f, " {} @[{}]", format_float(point.v), point.t)?;
        }
        Ok(())
    }
}

/// Writes `value` as the `result` member of a Prometheus HTTP API query
/// response, byte for byte as Prometheus writes it: timestamps as seconds
/// with millisecond fraction (`1435781451.781`), values as strings in Go's
/// shortest form (`"1"`, `"NaN"`, `"+Inf"`), label sets as objects in name
/// order with Go's JSON string escaping. Native histograms are written as
/// Prometheus does: `"histogram": [t, {"count": "4", "sum": "5", "buckets":
/// [[rule, "lower", "upper", "count"], ...]}]` in vectors and a
/// `"histograms"` array beside `"values"` in matrices (each left out when
/// empty); buckets with a zero count are left out, `rule` is
/// [`ember_model::histogram::Bucket::boundary_rule`].
///
/// ```
/// use ember_model::labels::Labels;
/// use ember_promql::value::{Sample, Value, write_api_result};
///
/// let up = Labels::new([("__name__", "up"), ("job", "node")])?;
/// let value = Value::Vector(vec![Sample { metric: up, t: 1_500, v: 1.0 }]);
/// let mut json = String::new();
/// write_api_result(&value.into(), &mut json);
/// assert_eq!(json, r#"[{"metric":{"__name__":"up","job":"node"},"value":[1.500,"1"]}]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_api_result(value: &QueryValue, out: &mut String) {
    match value {
        QueryValue::Scalar(s) => write_point(out, s.t, s.v),
        QueryValue::String(s) => {
            out.push('[');
            write_timestamp(out, s.t);
            out.push(',');
            write_json_string(out, &s.v);
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push('[');
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &sample.metric);
                match &sample.value {
                    SampleValue::Float(v) => {
                        out.push_str(",\"value\":");
                        write_point(out, sample.t, *v);
                    }
                    SampleValue::Histogram(h) => {
                        out.push_str(",\"histogram\":");
                        write_histogram_point(out, sample.t, h);
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.metric);
                if !s.points.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, p) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(out, p.t, p.v);
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, p) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_histogram_point(out, p.t, &p.h);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
}

fn write_histogram_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",{\"count\":\"");
    out.push_str(&format_float(h.count));
    out.push_str("\",\"sum\":\"");
    out.push_str(&format_float(h.sum));
    out.push('"');
    let buckets: Vec<_> = h
        .all_buckets()
        .into_iter()
        .filter(|b| b.count != 0.0)
        .collect();
    if !buckets.is_empty() {
        out.push_str(",\"buckets\":[");
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            out.push_str(&b.boundary_rule().to_string());
            for v in [b.lower, b.upper, b.count] {
                out.push_str(",\"");
                out.push_str(&format_float(v));
                out.push('"');
            }
            out.push(']');
        }
        out.push(']');
    }
    out.push_str("}]");
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_float(v));
    out.push_str("\"]");
}

/// Seconds with the milliseconds as a 3-digit fraction when non-zero, as
/// Prometheus's `marshalTimestamp`.
fn write_timestamp(out: &mut String, t: i64) {
    use std::fmt::Write as _;
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    let _ = write!(out, "{}", t / 1000);
    let fraction = t % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

fn write_labels(out: &mut String, labels: &ember_model::labels::Labels) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, name);
        out.push(':');
        write_json_string(out, value);
    }
    out.push('}');
}

/// A JSON string as Go's `encoding/json` writes it (HTML-sensitive
/// characters and U+2028/U+2029 escaped too).
fn write_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::labels::Labels;

    fn json(value: &Value) -> String {
        let mut out = String::new();
        write_api_result(&value.clone().into(), &mut out);
        out
    }

    #[test]
    fn histograms_render_as_prometheus_does() {
        use ember_model::histogram::Span;
        let h = FloatHistogram {
            count: 4.0,
            sum: 5.0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive_spans: vec![Span::new(0, 2)],
            positive_buckets: vec![0.0, 3.0],
            ..FloatHistogram::default()
        };
        let metric = Labels::new([("__name__", "h")]).expect("valid");
        let mut out = String::new();
        write_api_result(
            &QueryValue::Vector(vec![VectorSample {
                metric: metric.clone(),
                t: 1_000,
                value: SampleValue::Histogram(Box::new(h.clone())),
            }]),
            &mut out,
        );
        assert_eq!(
            out,
            r#"[{"metric":{"__name__":"h"},"histogram":[1,{"count":"4","sum":"5","buckets":[[3,"-0.001","0.001","1"],[0,"1","2","3"]]}]}]"#
        );
        out.clear();
        write_api_result(
            &QueryValue::Matrix(vec![MatrixSeries {
                metric,
                points: vec![Point::new(0, 1.0)],
                histograms: vec![HistogramPoint { t: 2_000, h }],
            }]),
            &mut out,
        );
        assert!(
            out.starts_with(
                r#"[{"metric":{"__name__":"h"},"values":[[0,"1"]],"histograms":[[2,{"count":"4""#
            ),
            "{out}"
        );
    }

    #[test]
    fn floats_render_as_go_does() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(-0.000_001_5), "-0.0000015");
    }

    #[test]
    fn api_shapes() {
        assert_eq!(
            json(&Value::Scalar(Scalar { t: 1_000, v: 2.5 })),
            r#"[1,"2.5"]"#
        );
        assert_eq!(
            json(&Value::String(StringValue {
                t: -1_050,
                v: "a<b\"".into()
            })),
            r#"[-1.050,"a\u003cb\""]"#
        );
        let metric = Labels::new([("job", "x\ny")]).expect("valid");
        let matrix = Value::Matrix(vec![Series {
            metric,
            points: vec![Point::new(1, f64::NAN), Point::new(60_000, 3.0)],
        }]);
        assert_eq!(
            json(&matrix),
            r#"[{"metric":{"job":"x\ny"},"values":[[0.001,"NaN"],[60,"3"]]}]"#
        );
        assert_eq!(json(&Value::Vector(Vec::new())), "[]");
    }
}
