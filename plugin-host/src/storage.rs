//! Host-side forms of the discovery and remote-storage records.

use std::time::Duration;

use crate::bindings::types;
use crate::metrics::Labels;

/// A group of targets from a discovery plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group across refreshes.
    pub source: String,
    /// One label set per target, each with `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to the group's targets.
    pub labels: Labels,
}

/// A series with samples, as remote storage exchanges them.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels, including `__name__`, sorted by name.
    pub labels: Labels,
    /// `(timestamp in ms, value)`, oldest first.
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    pub(crate) fn into_wit(self) -> types::Series {
        types::Series {
            labels: self
                .labels
                .into_iter()
                .map(|(name, value)| types::Label { name, value })
                .collect(),
            samples: self
                .samples
                .into_iter()
                .map(|(timestamp_ms, value)| types::TimedValue {
                    timestamp_ms,
                    value,
                })
                .collect(),
        }
    }
}

/// How a read-query matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`.
    Equal,
    /// `!=`.
    NotEqual,
    /// `=~`.
    RegexMatch,
    /// `!~`.
    RegexNoMatch,
}

/// A remote-read query for a remote-storage plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadQuery {
    /// Inclusive start, ms since the epoch.
    pub start_ms: i64,
    /// Inclusive end, ms since the epoch.
    pub end_ms: i64,
    /// `(op, name, value)`; all must match.
    pub matchers: Vec<(MatchOp, String, String)>,
}

impl ReadQuery {
    pub(crate) fn into_wit(self) -> types::ReadQuery {
        types::ReadQuery {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            matchers: self
                .matchers
                .into_iter()
                .map(|(op, name, value)| types::LabelMatcher {
                    op: match op {
                        MatchOp::Equal => types::MatchOp::Equal,
                        MatchOp::NotEqual => types::MatchOp::NotEqual,
                        MatchOp::RegexMatch => types::MatchOp::RegexMatch,
                        MatchOp::RegexNoMatch => types::MatchOp::RegexNoMatch,
                    },
                    name,
                    value,
                })
                .collect(),
        }
    }
}

/// A remote-storage plugin's verdict on a batch it could not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Keep the batch and retry, after `retry_after` if the remote end said so.
    #[error("retryable: {message}")]
    Retryable {
        /// What went wrong.
        message: String,
        /// The wait the remote end asked for.
        retry_after: Option<Duration>,
    },
    /// Drop the batch.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<types::WriteError> for WriteError {
    fn from(error: types::WriteError) -> WriteError {
        match error {
            types::WriteError::Retryable(retryable) => WriteError::Retryable {
                message: retryable.message,
                retry_after: retryable.retry_after_ms.map(Duration::from_millis),
            },
            types::WriteError::Permanent(message) => WriteError::Permanent(message),
        }
    }
}
