//! The host-side form of an exporter's answer.
//!
//! These mirror the WIT records of `ember:plugin/types` in plain Rust, so the
//! server's scrape code never sees generated bindings.

/// A label set as `(name, value)` pairs, sorted by name with unique names
/// when it comes out of the host.
pub type Labels = Vec<(String, String)>;

/// The type of a metric family (OpenMetrics `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram`.
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info`.
    Info,
    /// `stateset`.
    StateSet,
    /// `unknown`.
    Unknown,
}

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name (`http_requests_total`).
    pub name: String,
    /// The sample's labels without `__name__`, sorted by name.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch, or `None` for the scrape's timestamp.
    pub timestamp_ms: Option<i64>,
}

/// A metric family returned by an exporter plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// The family name without suffixes.
    pub name: String,
    /// Its type.
    pub metric_type: MetricType,
    /// Help text, possibly empty.
    pub help: String,
    /// Unit, possibly empty.
    pub unit: String,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl From<crate::bindings::types::MetricType> for MetricType {
    fn from(wit: crate::bindings::types::MetricType) -> MetricType {
        use crate::bindings::types::MetricType as Wit;
        match wit {
            Wit::Counter => MetricType::Counter,
            Wit::Gauge => MetricType::Gauge,
            Wit::Histogram => MetricType::Histogram,
            Wit::GaugeHistogram => MetricType::GaugeHistogram,
            Wit::Summary => MetricType::Summary,
            Wit::Info => MetricType::Info,
            Wit::StateSet => MetricType::StateSet,
            Wit::Unknown => MetricType::Unknown,
        }
    }
}
