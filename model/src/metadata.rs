//! Metric metadata: type, help and unit of a metric family.
//!
//! ```
//! use ember_model::metadata::{Metadata, MetricType};
//!
//! let t: MetricType = "gaugehistogram".parse().unwrap();
//! assert_eq!(t, MetricType::GaugeHistogram);
//! assert_eq!(t.as_str(), "gaugehistogram");
//! let m = Metadata::new(MetricType::Counter, "Requests served.", "");
//! assert_eq!(m.metric_type.as_str(), "counter");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of a metric family, with the names used by the text
/// exposition formats (`# TYPE`), OpenMetrics and the HTTP API's
/// `/api/v1/metadata` (all lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `unknown`; also the text format's `untyped`.
    #[default]
    Unknown,
}

impl MetricType {
    /// Every type, in declaration order.
    pub const ALL: [MetricType; 8] = [
        Self::Counter,
        Self::Gauge,
        Self::Histogram,
        Self::GaugeHistogram,
        Self::Summary,
        Self::Info,
        Self::StateSet,
        Self::Unknown,
    ];

    /// The canonical lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a metric type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric type {0:?}")]
pub struct ParseMetricTypeError(pub String);

impl FromStr for MetricType {
    type Err = ParseMetricTypeError;

    /// Parses the exact lower-case names, plus `untyped` (the Prometheus
    /// text format's spelling of `unknown`). Case matters, as in the
    /// exposition formats.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "untyped" => Ok(Self::Unknown),
            _ => Self::ALL
                .into_iter()
                .find(|t| t.as_str() == s)
                .ok_or_else(|| ParseMetricTypeError(s.to_owned())),
        }
    }
}

impl Serialize for MetricType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MetricType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What is known about a metric family: its type, help text and unit (empty
/// strings when not given). Serialises as the HTTP API's metadata entry
/// `{"type": ..., "help": ..., "unit": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The family's type.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// The `# HELP` text, unescaped.
    pub help: String,
    /// The `# UNIT` (OpenMetrics), e.g. `seconds`.
    pub unit: String,
}

impl Metadata {
    /// Metadata from its parts.
    pub fn new(metric_type: MetricType, help: impl Into<String>, unit: impl Into<String>) -> Self {
        Self {
            metric_type,
            help: help.into(),
            unit: unit.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        for t in MetricType::ALL {
            assert_eq!(t.as_str().parse::<MetricType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("untyped".parse::<MetricType>(), Ok(MetricType::Unknown));
        assert!("Counter".parse::<MetricType>().is_err());
        assert!("".parse::<MetricType>().is_err());
    }

    #[test]
    fn metadata_json_shape() {
        let m = Metadata::new(MetricType::Histogram, "Latency.", "seconds");
        let json = serde_json::to_string(&m).expect("serialises");
        assert_eq!(
            json,
            r#"{"type":"histogram","help":"Latency.","unit":"seconds"}"#
        );
        assert_eq!(serde_json::from_str::<Metadata>(&json).ok(), Some(m));
    }
}
