//! The `io.prometheus.write.v2` protobuf package: remote write 2.0.
//!
//! Written by hand with `prost` derives from the field numbers of
//! Prometheus's `prompb/io/prometheus/write/v2/types.proto`. Strings are
//! interned: every label name and value, help and unit text is an index into
//! [`Request::symbols`], whose first entry must be the empty string. Fields
//! 1 to 3 of `Request` and 6 of `TimeSeries` are reserved upstream and left
//! out.
//!
//! ```
//! use ember_remote::writev2::{Request, Sample, TimeSeries};
//! use prost::Message;
//!
//! let request = Request {
//!     symbols: vec!["".into(), "__name__".into(), "up".into()],
//!     timeseries: vec![TimeSeries {
//!         labels_refs: vec![1, 2],
//!         samples: vec![Sample { value: 1.0, timestamp: 1_000, start_timestamp: 0 }],
//!         ..Default::default()
//!     }],
//! };
//! let bytes = request.encode_to_vec();
//! assert_eq!(Request::decode(bytes.as_slice()).unwrap(), request);
//! ```

pub use crate::prompb::BucketSpan;

/// The content type's `proto` parameter naming this message.
pub const PROTO_NAME: &str = "io.prometheus.write.v2.Request";

/// A remote write 2.0 request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// The symbol table; entry 0 is `""`.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// The series.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series with its samples, histograms, exemplars and metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Label name and value symbol refs, alternating: `[name0, value0,
    /// name1, value1, ...]`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    /// Exemplars.
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    /// The series' metadata.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
}

/// An exemplar; its labels are symbol refs like the series'.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Label name and value symbol refs, alternating.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A float sample with its optional start (created) timestamp.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// When the counter started counting, ms; 0 means unset.
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// Metadata of a series: type, and help and unit as symbol refs.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Metadata {
    /// The type ([`metadata::MetricType`]).
    #[prost(enumeration = "metadata::MetricType", tag = "1")]
    pub r#type: i32,
    /// Symbol ref of the HELP text (0: none).
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Symbol ref of the unit (0: none).
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// Nested types of [`Metadata`].
pub mod metadata {
    /// Metric types.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// No type given.
        Unspecified = 0,
        /// Counter.
        Counter = 1,
        /// Gauge.
        Gauge = 2,
        /// Histogram.
        Histogram = 3,
        /// Gauge histogram.
        Gaugehistogram = 4,
        /// Summary.
        Summary = 5,
        /// Info.
        Info = 6,
        /// State set.
        Stateset = 7,
    }
}

/// A native histogram sample (see [`crate::prompb::Histogram`]; this one
/// adds a start timestamp).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// The count of observations.
    #[prost(oneof = "crate::prompb::histogram::Count", tags = "1, 2")]
    pub count: Option<crate::prompb::histogram::Count>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Breadth of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Count in the zero bucket.
    #[prost(oneof = "crate::prompb::histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<crate::prompb::histogram::ZeroCount>,
    /// Negative bucket spans.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Negative bucket count deltas (integer histograms).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Negative bucket counts (float histograms).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Positive bucket spans.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Positive bucket count deltas (integer histograms).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Positive bucket counts (float histograms).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Custom bucket bounds.
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// Start timestamp, ms; 0 means unset.
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}
