//! Query results as Prometheus's API writes them:
//! `{"resultType":"vector","result":[{"metric":{..},"value":[t,"v"]},..]}`.
//!
//! Written by hand rather than through serde because sample timestamps are
//! JSON numbers with Prometheus's exact millisecond digits (`1.500`), which
//! no float serialiser produces.
//!
//! Prometheus encodes the four result types along two paths, and so does
//! this module: vector samples and matrix points go through its jsoniter
//! encoders (`1.500`, values switching to exponent form at the extremes),
//! while scalars and strings use their `MarshalJSON` methods, which write
//! the timestamp as the float `t / 1000` (`1.5`) and a scalar's value with
//! `strconv.FormatFloat(v, 'f', -1, 64)` (never an exponent).

use std::io::Write as _;

use ember_model::labels::Labels;
use ember_promql::value::{Value, format_float};

use crate::web::json::{write_sample_value, write_string, write_timestamp};

/// Appends the `data` object of a query response; `stats` is the
/// serialised `stats` member, present when the request asked for it.
pub fn write_query_data(out: &mut Vec<u8>, value: &Value, stats: Option<&[u8]>) {
    out.extend_from_slice(b"{\"resultType\":\"");
    out.extend_from_slice(value.type_name().as_bytes());
    out.extend_from_slice(b"\",\"result\":");
    write_value(out, value);
    if let Some(stats) = stats {
        out.extend_from_slice(b",\"stats\":");
        out.extend_from_slice(stats);
    }
    out.push(b'}');
}

/// Appends a result value.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Scalar(scalar) => {
            out.push(b'[');
            write_float_seconds(out, scalar.t);
            out.push(b',');
            write_string(out, &format_float(scalar.v));
            out.push(b']');
        }
        Value::String(string) => {
            out.push(b'[');
            write_float_seconds(out, string.t);
            out.push(b',');
            write_string(out, &string.v);
            out.push(b']');
        }
        Value::Vector(samples) => {
            out.push(b'[');
            for (index, sample) in samples.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"metric\":");
                write_labels(out, &sample.metric);
                out.extend_from_slice(b",\"value\":");
                write_point(out, sample.t, sample.v);
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::Matrix(series) => {
            out.push(b'[');
            for (index, one) in series.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"metric\":");
                write_labels(out, &one.metric);
                // Prometheus leaves `values` out of a series without float
                // points (one holding only native histograms).
                if !one.points.is_empty() {
                    out.extend_from_slice(b",\"values\":[");
                    for (index, point) in one.points.iter().enumerate() {
                        if index > 0 {
                            out.push(b',');
                        }
                        write_point(out, point.t, point.v);
                    }
                    out.push(b']');
                }
                out.push(b'}');
            }
            out.push(b']');
        }
    }
}

/// A millisecond timestamp as Go's `encoding/json` writes the float64
/// `t / 1000`: shortest round-trip digits, no trailing zeros. (Go switches
/// to exponent form below 1e-6 and from 1e21; no millisecond timestamp but
/// zero is that small, and none is that large.)
fn write_float_seconds(out: &mut Vec<u8>, t: i64) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", t as f64 / 1000.0);
}

fn write_point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    write_timestamp(out, t);
    out.push(b',');
    write_sample_value(out, v);
    out.push(b']');
}

/// A label set as a JSON object in name order (Go sorts map keys the same
/// way, byte-wise).
pub fn write_labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_string(out, value);
    }
    out.push(b'}');
}

/// Keeps the first `limit` series of a vector or matrix, as Prometheus's
/// `truncateResults`; returns whether any were dropped. Scalars and
/// strings are never truncated.
pub fn truncate(value: &mut Value, limit: usize) -> bool {
    match value {
        Value::Vector(samples) if samples.len() > limit => {
            samples.truncate(limit);
            true
        }
        Value::Matrix(series) if series.len() > limit => {
            series.truncate(limit);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::sample::Sample as Point;
    use ember_promql::value::{Sample, Scalar, Series, StringValue};

    fn render(value: &Value) -> String {
        let mut out = Vec::new();
        write_query_data(&mut out, value, None);
        String::from_utf8(out).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn every_result_type_renders_as_prometheus() {
        assert_eq!(
            render(&Value::Scalar(Scalar { t: 1_500, v: 2.0 })),
            r#"{"resultType":"scalar","result":[1.5,"2"]}"#
        );
        // Scalars never switch to exponent form; vector values do.
        assert_eq!(
            render(&Value::Scalar(Scalar { t: 1_050, v: 1e21 })),
            r#"{"resultType":"scalar","result":[1.05,"1000000000000000000000"]}"#
        );
        assert_eq!(
            render(&Value::Scalar(Scalar {
                t: 0,
                v: f64::NEG_INFINITY
            })),
            r#"{"resultType":"scalar","result":[0,"-Inf"]}"#
        );
        assert_eq!(
            render(&Value::String(StringValue {
                t: 2_000,
                v: "a<b\"".into()
            })),
            r#"{"resultType":"string","result":[2,"a\u003cb\""]}"#
        );
        let vector = Value::Vector(vec![
            Sample {
                metric: labels(&[("__name__", "up"), ("job", "a")]),
                t: 1_435_781_451_781,
                v: 1.0,
            },
            Sample {
                metric: Labels::EMPTY,
                t: 0,
                v: f64::NAN,
            },
        ]);
        assert_eq!(
            render(&vector),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1435781451.781,"1"]},{"metric":{},"value":[0,"NaN"]}]}"#
        );
        let matrix = Value::Matrix(vec![
            Series {
                metric: labels(&[("job", "a")]),
                points: vec![Point::new(1_000, 0.5), Point::new(16_000, f64::INFINITY)],
            },
            Series {
                metric: labels(&[("job", "b")]),
                points: Vec::new(),
            },
        ]);
        assert_eq!(
            render(&matrix),
            r#"{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1,"0.5"],[16,"+Inf"]]},{"metric":{"job":"b"}}]}"#
        );
        assert_eq!(
            render(&Value::Vector(Vec::new())),
            r#"{"resultType":"vector","result":[]}"#
        );
    }

    #[test]
    fn stats_follow_the_result() {
        let mut out = Vec::new();
        write_query_data(
            &mut out,
            &Value::Vector(Vec::new()),
            Some(b"{\"samples\":{}}"),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"resultType":"vector","result":[],"stats":{"samples":{}}}"#
        );
    }

    #[test]
    fn truncation_applies_to_series_only() {
        let mut vector = Value::Vector(vec![
            Sample {
                metric: Labels::EMPTY,
                t: 0,
                v: 1.0,
            },
            Sample {
                metric: Labels::EMPTY,
                t: 0,
                v: 2.0,
            },
        ]);
        assert!(truncate(&mut vector, 1));
        assert!(matches!(&vector, Value::Vector(s) if s.len() == 1));
        assert!(!truncate(&mut vector, 1));
        let mut scalar = Value::Scalar(Scalar { t: 0, v: 1.0 });
        assert!(!truncate(&mut scalar, 1));
    }
}
