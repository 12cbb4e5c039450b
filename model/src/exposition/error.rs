//! Typed parse errors shared by every exposition parser.

use std::fmt;

/// A parse failure, located in the input.
///
/// `line` and `column` are 1-based; the column counts Unicode scalar values
/// from the start of the line, so it matches what an editor shows. For the
/// protobuf format, which has no lines, `line` is the 1-based index of the
/// `MetricFamily` message and `column` is 0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number (protobuf: 1-based message index).
    pub line: usize,
    /// 1-based column in characters (protobuf: 0).
    pub column: usize,
    /// Byte offset of the error in the input.
    pub offset: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// What went wrong while parsing an exposition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A token other than the one the grammar requires here.
    #[error("expected {expected}, got {found}")]
    Unexpected {
        /// What the grammar requires, e.g. `"label value"`.
        expected: &'static str,
        /// A short rendering of what was found instead.
        found: String,
    },
    /// The input is not valid UTF-8 at this point.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A metric name outside the legacy character set and not quoted.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A label name outside the legacy character set and not quoted.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// The same label name twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// A sample value that is not a valid number.
    #[error("invalid value {0:?}")]
    InvalidValue(String),
    /// A timestamp that is not a valid integer (text) or finite number (OpenMetrics).
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// A `# TYPE` line naming an unknown metric type.
    #[error("invalid metric type {0:?}")]
    InvalidMetricType(String),
    /// The series has no metric name (e.g. `{a="b"} 1`).
    #[error("metric name missing")]
    MissingMetricName,
    /// OpenMetrics: the input ended without `# EOF`.
    #[error("missing \"# EOF\" at end of input")]
    MissingEof,
    /// OpenMetrics: something follows `# EOF`.
    #[error("unexpected data after \"# EOF\"")]
    DataAfterEof,
    /// OpenMetrics: an empty line.
    #[error("blank line")]
    BlankLine,
    /// An OpenMetrics rule about families, groups or values was broken.
    #[error("{0}")]
    Violation(Violation),
    /// The protobuf stream could not be decoded.
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// A semantic OpenMetrics rule broken by otherwise well-formed lines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A second `HELP`, `TYPE` or `UNIT` line for the same family.
    #[error("more than one {kind} line for metric family {family:?}")]
    RepeatedMetadata {
        /// `HELP`, `TYPE` or `UNIT`.
        kind: &'static str,
        /// The family name.
        family: String,
    },
    /// A metadata line after samples of its family.
    #[error("{kind} line for metric family {family:?} after its samples")]
    MetadataAfterSamples {
        /// `HELP`, `TYPE` or `UNIT`.
        kind: &'static str,
        /// The family name.
        family: String,
    },
    /// A family whose name, or one of its sample names, was already used.
    #[error("metric name {0:?} clashes with an earlier metric family")]
    ClashingName(String),
    /// The `UNIT` is not a suffix of the family name.
    #[error("unit {unit:?} is not a suffix of metric family name {family:?}")]
    UnitMismatch {
        /// The family name.
        family: String,
        /// The declared unit.
        unit: String,
    },
    /// `info` and `stateset` families cannot have a unit.
    #[error("metric family {0:?} of type info or stateset cannot have a unit")]
    UnitNotAllowed(String),
    /// Samples of one metric (label set) are not contiguous.
    #[error("samples of one metric are interleaved with another metric of family {0:?}")]
    InterleavedMetric(String),
    /// Within one metric, some samples have timestamps and some have not.
    #[error("mix of samples with and without timestamps in one metric of family {0:?}")]
    MixedTimestamps(String),
    /// Within one metric, a timestamp is earlier than the previous one.
    #[error("timestamps went backwards in a metric of family {0:?}")]
    TimestampsBackwards(String),
    /// A counter-like sample (`_total`, `_count`, `_sum`, `_bucket`, ...) is NaN or negative.
    #[error(
        "{sample} value {value} is not allowed (counter-like samples cannot be NaN or negative)"
    )]
    InvalidCounterValue {
        /// The sample name.
        sample: String,
        /// The offending value.
        value: f64,
    },
    /// A `_bucket`, `_count` or `_gcount` value that is not an integer.
    #[error("{0} value must be an integer")]
    NonIntegerCount(String),
    /// A missing, NaN or non-canonical `le` label.
    #[error("invalid or missing \"le\" label on histogram bucket {0:?}")]
    InvalidLe(String),
    /// A missing, non-canonical or out-of-range `quantile` label.
    #[error("invalid or missing \"quantile\" label on summary sample {0:?}")]
    InvalidQuantile(String),
    /// A negative summary quantile value.
    #[error("summary quantile value cannot be negative")]
    NegativeQuantileValue,
    /// A stateset sample without the label named after the family.
    #[error("stateset sample lacks the label {0:?}")]
    StateSetMissingLabel(String),
    /// A stateset sample whose value is not 0 or 1.
    #[error("stateset values must be 0 or 1, got {0}")]
    StateSetValue(f64),
    /// An info sample whose value is not 1.
    #[error("info values must be 1, got {0}")]
    InfoValue(f64),
    /// An exemplar on a sample that cannot carry one.
    #[error(
        "exemplars are only allowed on counter _total and histogram _bucket samples, not on {0:?}"
    )]
    ExemplarNotAllowed(String),
    /// Exemplar label names and values longer than 128 code points together.
    #[error("exemplar labels are {0} characters long, the limit is 128")]
    ExemplarTooLong(usize),
    /// A histogram broke a bucket rule.
    #[error("histogram {family:?}: {problem}")]
    Histogram {
        /// The family name.
        family: String,
        /// The rule broken.
        problem: HistogramProblem,
    },
}

/// The bucket rules of OpenMetrics histograms and gauge histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistogramProblem {
    /// No `+Inf` bucket, or it is not the last.
    MissingInfBucket,
    /// `le` values are not strictly increasing.
    BucketsOutOfOrder,
    /// Cumulative bucket counts decrease.
    BucketCountsDecrease,
    /// `_count` differs from the `+Inf` bucket.
    CountMismatch,
    /// `_sum`/`_gsum` without `_count`/`_gcount`.
    SumWithoutCount,
    /// `_count`/`_gcount` without `_sum`/`_gsum`.
    CountWithoutSum,
    /// `_sum` although there are negative buckets.
    SumWithNegativeBuckets,
    /// Negative `_gsum` although no bucket is negative.
    NegativeGsumWithoutNegativeBuckets,
}

impl fmt::Display for HistogramProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingInfBucket => "the last bucket must be le=\"+Inf\"",
            Self::BucketsOutOfOrder => "bucket bounds must increase",
            Self::BucketCountsDecrease => "cumulative bucket counts must not decrease",
            Self::CountMismatch => "_count must equal the +Inf bucket",
            Self::SumWithoutCount => "_sum/_gsum requires _count/_gcount",
            Self::CountWithoutSum => "_count/_gcount requires _sum/_gsum",
            Self::SumWithNegativeBuckets => "_sum is not allowed with negative buckets",
            Self::NegativeGsumWithoutNegativeBuckets => {
                "a negative _gsum requires negative buckets"
            }
        })
    }
}
