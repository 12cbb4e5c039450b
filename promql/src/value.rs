//! Query results: [`Value`] and its parts, shaped like Prometheus's
//! `promql.Value` so the HTTP API can render them directly.

use std::fmt;

use ember_model::labels::Labels;
use ember_model::sample::Sample as Point;

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
/// order with Go's JSON string escaping.
///
/// ```
/// use ember_model::labels::Labels;
/// use ember_promql::value::{Sample, Value, write_api_result};
///
/// let up = Labels::new([("__name__", "up"), ("job", "node")])?;
/// let value = Value::Vector(vec![Sample { metric: up, t: 1_500, v: 1.0 }]);
/// let mut json = String::new();
/// write_api_result(&value, &mut json);
/// assert_eq!(json, r#"[{"metric":{"__name__":"up","job":"node"},"value":[1.500,"1"]}]"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_api_result(value: &Value, out: &mut String) {
    match value {
        Value::Scalar(s) => write_point(out, s.t, s.v),
        Value::String(s) => {
            out.push('[');
            write_timestamp(out, s.t);
            out.push(',');
            write_json_string(out, &s.v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &sample.metric);
                out.push_str(",\"value\":");
                write_point(out, sample.t, sample.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.metric);
                out.push_str(",\"values\":[");
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
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
        write_api_result(value, &mut out);
        out
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
