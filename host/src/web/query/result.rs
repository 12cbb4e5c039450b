//! Query results as Prometheus's API writes them:
//! `{"resultType":"vector","result":[{"metric":{..},"value":[t,"v"]},..]}`.
//!
//! Written by hand rather than through serde because sample timestamps are
//! JSON numbers with Prometheus's exact millisecond digits (`1.500`), which
//! no float serialiser produces.

use ember_model::labels::Labels;
use ember_promql::value::Value;

use crate::web::json::{write_sample_value, write_string, write_timestamp};

/// Appends the `data` object of a query response.
pub fn write_query_data(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"{\"resultType\":\"");
    out.extend_from_slice(value.type_name().as_bytes());
    out.extend_from_slice(b"\",\"result\":");
    write_value(out, value);
    out.push(b'}');
}

/// Appends a result value.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Scalar(scalar) => write_point(out, scalar.t, scalar.v),
        Value::String(string) => {
            out.push(b'[');
            write_timestamp(out, string.t);
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
        write_query_data(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn every_result_type_renders_as_prometheus() {
        assert_eq!(
            render(&Value::Scalar(Scalar { t: 1_500, v: 2.0 })),
            r#"{"resultType":"scalar","result":[1.500,"2"]}"#
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
