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
