//! Native histograms: [`Histogram`] (integer counts, as scraped and
//! stored) and [`FloatHistogram`] (float counts, what PromQL computes
//! with), with the arithmetic the query engine needs.
//!
//! The semantics follow Prometheus's `model/histogram` package:
//!
//! - **Exponential schemas** `-4..=8`: bucket `i` of the positive side
//!   covers `(base^(i-1), base^i]` with `base = 2^(2^-schema)`; the negative
//!   side mirrors it (`[-base^i, -base^(i-1))`). Values with an absolute
//!   value up to the zero threshold count in the zero bucket.
//! - **Custom buckets** (schema [`CUSTOM_BUCKETS_SCHEMA`], "NHCB"): the
//!   upper bounds are listed in `custom_values`; bucket `i` covers
//!   `(custom_values[i-1], custom_values[i]]`, the first one starts at
//!   `-Inf` and the one after the last bound ends at `+Inf`. They have no
//!   zero bucket and no negative buckets.
//! - Buckets are stored sparsely: [`Span`]s say which bucket indexes are
//!   present (each span starts `offset` indexes after the end of the
//!   previous one, the first one at index `offset`), the bucket vectors hold
//!   the counts of those buckets in order. A [`Histogram`] holds its counts
//!   delta-encoded, as the exposition formats and chunks do; a
//!   [`FloatHistogram`] holds absolute counts.
//!
//! ```
//! use ember_model::histogram::{FloatHistogram, Span};
//!
//! let a = FloatHistogram {
//!     count: 4.0,
//!     sum: 5.0,
//!     positive_spans: vec![Span::new(0, 3)],
//!     positive_buckets: vec![1.0, 2.0, 1.0],
//!     ..FloatHistogram::default()
//! };
//! let doubled = a.add(&a)?.histogram;
//! assert_eq!(doubled.count, 8.0);
//! assert_eq!(doubled.positive_buckets, [2.0, 4.0, 2.0]);
//! // Bucket 1 of schema 0 is (1, 2].
//! let second = doubled.positive_buckets_iter().nth(1).expect("a bucket");
//! assert_eq!((second.lower, second.upper, second.count), (1.0, 2.0, 4.0));
//! # Ok::<(), ember_model::histogram::HistogramError>(())
//! ```

use std::fmt;

/// The schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The smallest exponential schema.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
/// The largest exponential schema.
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// The zero threshold Prometheus's clients use by default (2^-128).
pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// What the producer said about counter resets, as Prometheus's
/// `CounterResetHint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CounterResetHint {
    /// Nothing is known; a reader compares with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened right before this sample.
    CounterReset,
    /// No counter reset happened right before this sample.
    NotCounterReset,
    /// The histogram is a gauge: counts may go down without a reset.
    Gauge,
}

/// A run of consecutive buckets: `length` buckets starting `offset`
/// indexes after the end of the previous span (or at index `offset` for
/// the first span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// Gap to the previous span's end (or the first index).
    pub offset: i32,
    /// Number of buckets.
    pub length: u32,
}

impl Span {
    /// A span.
    pub const fn new(offset: i32, length: u32) -> Self {
        Self { offset, length }
    }
}

/// Why a histogram is invalid or two histograms cannot be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HistogramError {
    /// The spans describe a different number of buckets than given.
    #[error("{side} side: spans need {spans} buckets, have {buckets} buckets")]
    SpansBucketsMismatch {
        /// `positive` or `negative`.
        side: &'static str,
        /// Buckets the spans describe.
        spans: usize,
        /// Buckets present.
        buckets: usize,
    },
    /// A span after the first has a negative offset.
    #[error("{side} side: span number {index} with offset {offset}")]
    NegativeSpanOffset {
        /// `positive` or `negative`.
        side: &'static str,
        /// 1-based span number.
        index: usize,
        /// The offset.
        offset: i32,
    },
    /// A bucket has a negative count.
    #[error("{side} side: bucket with negative count {count}")]
    NegativeBucketCount {
        /// `positive` or `negative`.
        side: &'static str,
        /// The count.
        count: f64,
    },
    /// The zero bucket has a negative count.
    #[error("histogram has a negative zero count {0}")]
    NegativeZeroCount(f64),
    /// The overall count is negative.
    #[error("histogram has a negative count {0}")]
    NegativeCount(f64),
    /// The buckets hold more observations than the overall count (only
    /// checked when the sum is not NaN, as Prometheus does).
    #[error("{count} observations found in buckets, but the Count field is {count_field}")]
    CountMismatch {
        /// Observations in the buckets.
        count: f64,
        /// The `count` field.
        count_field: f64,
    },
    /// The schema is neither exponential nor custom.
    #[error("histogram has an invalid schema {0}, must be in the range -4 ... 8")]
    InvalidSchema(i32),
    /// A custom-bucket histogram has negative buckets, a zero bucket or
    /// bounds that do not increase.
    #[error("custom buckets: {0}")]
    InvalidCustomBuckets(String),
    /// A histogram with custom buckets was combined with an exponential
    /// one.
    #[error("histograms have incompatible schemas")]
    IncompatibleSchemas,
}

/// A histogram with integer counts and delta-encoded buckets, as
/// exposition formats carry it and chunks store it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// Counter-reset hint.
    pub counter_reset_hint: CounterResetHint,
    /// Resolution: `-4..=8`, or [`CUSTOM_BUCKETS_SCHEMA`].
    pub schema: i32,
    /// Width of the zero bucket (absolute values up to it).
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Observations overall.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts, each the delta to the previous one.
    pub positive_buckets: Vec<i64>,
    /// Negative bucket counts, each the delta to the previous one.
    pub negative_buckets: Vec<i64>,
    /// Upper bounds of custom buckets (schema [`CUSTOM_BUCKETS_SCHEMA`]).
    pub custom_values: Vec<f64>,
}

impl Histogram {
    /// The float histogram with the same content (absolute counts).
    pub fn to_float(&self) -> FloatHistogram {
        let undelta = |deltas: &[i64]| {
            let mut current = 0i64;
            deltas
                .iter()
                .map(|d| {
                    current = current.wrapping_add(*d);
                    current as f64
                })
                .collect()
        };
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: undelta(&self.positive_buckets),
            negative_buckets: undelta(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }

    /// Checks the histogram as [`FloatHistogram::validate`] does, and
    /// that the buckets hold no more observations than `count` (unless the
    /// sum is NaN, as Prometheus allows).
    pub fn validate(&self) -> Result<(), HistogramError> {
        let float = self.to_float();
        float.validate()?;
        let in_buckets: f64 = float.positive_buckets.iter().sum::<f64>()
            + float.negative_buckets.iter().sum::<f64>()
            + float.zero_count;
        if !self.sum.is_nan() && in_buckets > float.count {
            return Err(HistogramError::CountMismatch {
                count: in_buckets,
                count_field: float.count,
            });
        }
        Ok(())
    }
}

/// A histogram with float counts and absolute bucket counts: the value
/// type of PromQL's histogram samples.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatHistogram {
    /// Counter-reset hint.
    pub counter_reset_hint: CounterResetHint,
    /// Resolution: `-4..=8`, or [`CUSTOM_BUCKETS_SCHEMA`].
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Observations overall.
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts (absolute).
    pub positive_buckets: Vec<f64>,
    /// Negative bucket counts (absolute).
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of custom buckets (schema [`CUSTOM_BUCKETS_SCHEMA`]).
    pub custom_values: Vec<f64>,
}

impl Default for FloatHistogram {
    fn default() -> Self {
        Self {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive_spans: Vec::new(),
            negative_spans: Vec::new(),
            positive_buckets: Vec::new(),
            negative_buckets: Vec::new(),
            custom_values: Vec::new(),
        }
    }
}

/// One bucket: its bounds, whether they are inclusive, its count and its
/// index in the schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Whether `lower` belongs to the bucket.
    pub lower_inclusive: bool,
    /// Whether `upper` belongs to the bucket.
    pub upper_inclusive: bool,
    /// Observations.
    pub count: f64,
    /// Bucket index (0 for the zero bucket).
    pub index: i32,
}

impl Bucket {
    /// The boundary rule as the HTTP API encodes it: 0 = `(lower, upper]`
    /// (open left), 1 = `[lower, upper)` (open right), 2 = `(lower, upper)`,
    /// 3 = `[lower, upper]` (both closed).
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        }
    }
}

/// The upper bound of bucket `index` of exponential `schema`, as
/// Prometheus's `getBoundExponential` (the last finite bucket ends at
/// `f64::MAX`).
pub fn exponential_bound(index: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(index) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let fraction_index = index & ((1 << schema) - 1);
    let fraction = (f64::from(fraction_index) / f64::from(1 << schema)).exp2() / 2.0;
    let exp = i64::from(index >> schema) + 1;
    if fraction == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(fraction, exp)
}

/// `x * 2^exp` without intermediate overflow for the exponents that occur.
fn ldexp(x: f64, exp: i64) -> f64 {
    if exp > 1023 {
        return ldexp(x * 2f64.powi(1023), exp - 1023);
    }
    if exp < -1022 {
        return ldexp(x * 2f64.powi(-1022), exp + 1022);
    }
    x * 2f64.powi(exp as i32)
}

/// Iterates `(index, count)` over spans and buckets.
fn indexed<'a>(spans: &'a [Span], buckets: &'a [f64]) -> impl Iterator<Item = (i32, f64)> + 'a {
    let mut index = 0i32;
    let mut first = true;
    let indexes = spans.iter().flat_map(move |span| {
        let start = if first {
            first = false;
            span.offset
        } else {
            index + span.offset
        };
        index = start + span.length as i32;
        start..start + span.length as i32
    });
    indexes.zip(buckets.iter().copied())
}

/// Builds spans and buckets from `(index, count)` pairs in ascending index
/// order, leaving out buckets whose count is zero when `drop_empty`.
fn from_indexed(pairs: impl IntoIterator<Item = (i32, f64)>) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::new();
    let mut next_index: Option<i32> = None;
    for (index, count) in pairs {
        match next_index {
            Some(expected) if expected == index => {
                if let Some(last) = spans.last_mut() {
                    last.length += 1;
                }
            }
            Some(expected) => spans.push(Span::new(index - expected, 1)),
            None => spans.push(Span::new(index, 1)),
        }
        buckets.push(count);
        next_index = Some(index + 1);
    }
    (spans, buckets)
}

/// Adds (`sign` 1) or subtracts (`sign` -1) sparse bucket lists with the
/// same schema, returning ascending `(index, count)` pairs.
fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j >= b.len() || (i < a.len() && a[i].0 < b[j].0) {
            out.push(a[i]);
            i += 1;
        } else if i >= a.len() || b[j].0 < a[i].0 {
            out.push((b[j].0, sign * b[j].1));
            j += 1;
        } else {
            out.push((a[i].0, a[i].1 + sign * b[j].1));
            i += 1;
            j += 1;
        }
    }
    out
}

/// Moves sparse exponential buckets to a coarser `target` schema.
fn reduce(pairs: &[(i32, f64)], from: i32, target: i32) -> Vec<(i32, f64)> {
    if from <= target {
        return pairs.to_vec();
    }
    let shift = from - target;
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(pairs.len());
    for &(index, count) in pairs {
        let index = ((index - 1) >> shift) + 1;
        match out.last_mut() {
            Some(last) if last.0 == index => last.1 += count,
            _ => out.push((index, count)),
        }
    }
    out
}

/// The result of combining two histograms, with what Prometheus reports
/// about it as annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    /// The result.
    pub histogram: FloatHistogram,
    /// One operand said counter reset and the other not.
    pub counter_reset_collision: bool,
    /// Custom bucket bounds differed and were reduced to the common ones.
    pub custom_buckets_reconciled: bool,
}

impl FloatHistogram {
    /// Whether the histogram has custom bucket bounds (NHCB).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Checks the structure as Prometheus's `Validate`: spans agree with
    /// the buckets, no negative counts, a valid schema, custom bounds
    /// strictly increasing and no negative or zero bucket with them. The
    /// bucket total is not checked against `count`: float counts are
    /// results of arithmetic (see [`Histogram::validate`] for that check).
    pub fn validate(&self) -> Result<(), HistogramError> {
        let check_side = |side: &'static str, spans: &[Span], buckets: &[f64]| {
            for (index, span) in spans.iter().enumerate().skip(1) {
                if span.offset < 0 {
                    return Err(HistogramError::NegativeSpanOffset {
                        side,
                        index: index + 1,
                        offset: span.offset,
                    });
                }
            }
            let needed: usize = spans.iter().map(|s| s.length as usize).sum();
            if needed != buckets.len() {
                return Err(HistogramError::SpansBucketsMismatch {
                    side,
                    spans: needed,
                    buckets: buckets.len(),
                });
            }
            if let Some(&count) = buckets.iter().find(|c| **c < 0.0) {
                return Err(HistogramError::NegativeBucketCount { side, count });
            }
            Ok(buckets.iter().sum::<f64>())
        };
        let positive = check_side("positive", &self.positive_spans, &self.positive_buckets)?;
        let negative = check_side("negative", &self.negative_spans, &self.negative_buckets)?;
        if self.uses_custom_buckets() {
            if !self.negative_spans.is_empty() || !self.negative_buckets.is_empty() {
                return Err(HistogramError::InvalidCustomBuckets(
                    "histograms with custom buckets must not have negative buckets".into(),
                ));
            }
            if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
                return Err(HistogramError::InvalidCustomBuckets(
                    "histograms with custom buckets must not have a zero bucket".into(),
                ));
            }
            if self.custom_values.windows(2).any(|w| w[0] >= w[1]) {
                return Err(HistogramError::InvalidCustomBuckets(
                    "custom bounds must be strictly increasing".into(),
                ));
            }
            let max_index = self.custom_values.len() as i32;
            if indexed(&self.positive_spans, &self.positive_buckets)
                .any(|(i, _)| i > max_index || i < 0)
            {
                return Err(HistogramError::InvalidCustomBuckets(
                    "a bucket index is outside the custom bounds".into(),
                ));
            }
        } else if !(EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX).contains(&self.schema) {
            return Err(HistogramError::InvalidSchema(self.schema));
        }
        if self.zero_count < 0.0 {
            return Err(HistogramError::NegativeZeroCount(self.zero_count));
        }
        if self.count < 0.0 {
            return Err(HistogramError::NegativeCount(self.count));
        }
        let _ = (positive, negative);
        Ok(())
    }

    /// Multiplies every count and the sum by `factor`.
    pub fn mul(&mut self, factor: f64) -> &mut Self {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        self.positive_buckets.iter_mut().for_each(|b| *b *= factor);
        self.negative_buckets.iter_mut().for_each(|b| *b *= factor);
        self
    }

    /// Divides every count and the sum by `divisor`. Dividing by zero
    /// leaves, as in Prometheus, only the zero bucket (holding `count / 0`)
    /// of an exponential histogram: every observation becomes infinite or
    /// undefined, and no bucket bound can say where.
    pub fn div(&mut self, divisor: f64) -> &mut Self {
        if divisor == 0.0 && !self.uses_custom_buckets() {
            self.zero_count = self.count / divisor;
            self.count /= divisor;
            self.sum /= divisor;
            self.positive_spans.clear();
            self.positive_buckets.clear();
            self.negative_spans.clear();
            self.negative_buckets.clear();
            return self;
        }
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        self.positive_buckets.iter_mut().for_each(|b| *b /= divisor);
        self.negative_buckets.iter_mut().for_each(|b| *b /= divisor);
        self
    }

    /// The positive buckets as ascending `(index, count)` pairs.
    pub fn positive_indexed(&self) -> Vec<(i32, f64)> {
        indexed(&self.positive_spans, &self.positive_buckets).collect()
    }

    /// The negative buckets as ascending `(index, count)` pairs (index by
    /// absolute value).
    pub fn negative_indexed(&self) -> Vec<(i32, f64)> {
        indexed(&self.negative_spans, &self.negative_buckets).collect()
    }

    /// Removes every bucket whose count is zero and merges the spans
    /// (Prometheus's `Compact(0)`); with `max_empty > 0`, runs of up to
    /// that many empty buckets between populated ones are kept, as
    /// Prometheus's `Compact(maxEmptyBuckets)`.
    pub fn compact(&mut self, max_empty: usize) -> &mut Self {
        let side = |pairs: Vec<(i32, f64)>| {
            let kept: Vec<(i32, f64)> = pairs.into_iter().filter(|p| p.1 != 0.0).collect();
            let mut filled = Vec::with_capacity(kept.len());
            for (k, &(index, count)) in kept.iter().enumerate() {
                if k > 0 {
                    let previous = kept[k - 1].0;
                    let gap = (index - previous - 1) as usize;
                    if gap > 0 && gap <= max_empty {
                        filled.extend((previous + 1..index).map(|i| (i, 0.0)));
                    }
                }
                filled.push((index, count));
            }
            from_indexed(filled)
        };
        (self.positive_spans, self.positive_buckets) = side(self.positive_indexed());
        (self.negative_spans, self.negative_buckets) = side(self.negative_indexed());
        self
    }

    /// A copy at the coarser exponential `schema` (buckets merged); a
    /// custom-bucket histogram or a finer target is returned unchanged.
    pub fn reduced_to(&self, schema: i32) -> FloatHistogram {
        let mut out = self.clone();
        if self.uses_custom_buckets() || schema >= self.schema {
            return out;
        }
        (out.positive_spans, out.positive_buckets) =
            from_indexed(reduce(&self.positive_indexed(), self.schema, schema));
        (out.negative_spans, out.negative_buckets) =
            from_indexed(reduce(&self.negative_indexed(), self.schema, schema));
        out.schema = schema;
        out
    }

    /// Widens the zero bucket to `threshold`, moving every bucket entirely
    /// within it into the zero count; a bucket that straddles the new
    /// threshold widens it to the bucket's upper bound, as Prometheus's
    /// `widestZeroBucket` logic does.
    fn widen_zero_bucket(&mut self, threshold: f64) {
        if threshold <= self.zero_threshold || self.uses_custom_buckets() {
            return;
        }
        let mut threshold = threshold;
        // A bucket straddling the threshold extends it; repeat until stable.
        loop {
            let mut changed = false;
            for (index, _) in self
                .positive_indexed()
                .into_iter()
                .chain(self.negative_indexed())
            {
                let lower = exponential_bound(index - 1, self.schema);
                let upper = exponential_bound(index, self.schema);
                if lower < threshold && upper > threshold {
                    threshold = upper;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let schema = self.schema;
        let mut moved = 0.0;
        let mut keep = |pairs: Vec<(i32, f64)>| {
            let (inside, outside): (Vec<_>, Vec<_>) = pairs
                .into_iter()
                .partition(|(index, _)| exponential_bound(*index, schema) <= threshold);
            moved += inside.iter().map(|p| p.1).sum::<f64>();
            from_indexed(outside)
        };
        (self.positive_spans, self.positive_buckets) = keep(self.positive_indexed());
        (self.negative_spans, self.negative_buckets) = keep(self.negative_indexed());
        self.zero_count += moved;
        self.zero_threshold = threshold;
    }

    /// Rebuckets a custom-bucket histogram onto `bounds`, a subset of its
    /// own bounds.
    fn rebucket_custom(&self, bounds: &[f64]) -> FloatHistogram {
        let mut pairs: Vec<(i32, f64)> = Vec::new();
        for (index, count) in self.positive_indexed() {
            let upper = self
                .custom_values
                .get(index as usize)
                .copied()
                .unwrap_or(f64::INFINITY);
            let target = bounds.partition_point(|b| *b < upper) as i32;
            match pairs.last_mut() {
                Some(last) if last.0 == target => last.1 += count,
                _ => pairs.push((target, count)),
            }
        }
        let mut out = self.clone();
        (out.positive_spans, out.positive_buckets) = from_indexed(pairs);
        out.custom_values = bounds.to_vec();
        out
    }

    fn combine(&self, other: &FloatHistogram, sign: f64) -> Result<Combined, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::IncompatibleSchemas);
        }
        let mut reconciled = false;
        let (mut a, mut b) = (self.clone(), other.clone());
        if a.uses_custom_buckets() {
            if a.custom_values != b.custom_values {
                let common: Vec<f64> = a
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| b.custom_values.contains(v))
                    .collect();
                a = a.rebucket_custom(&common);
                b = b.rebucket_custom(&common);
                reconciled = true;
            }
        } else {
            let schema = a.schema.min(b.schema);
            a = a.reduced_to(schema);
            b = b.reduced_to(schema);
            let threshold = a.zero_threshold.max(b.zero_threshold);
            a.widen_zero_bucket(threshold);
            b.widen_zero_bucket(a.zero_threshold);
            a.widen_zero_bucket(b.zero_threshold);
        }
        let (hint, collision) = combine_hints(self.counter_reset_hint, other.counter_reset_hint);
        let mut out = a.clone();
        out.counter_reset_hint = hint;
        out.zero_count = a.zero_count + sign * b.zero_count;
        out.count = a.count + sign * b.count;
        out.sum = a.sum + sign * b.sum;
        (out.positive_spans, out.positive_buckets) =
            from_indexed(merge(&a.positive_indexed(), &b.positive_indexed(), sign));
        (out.negative_spans, out.negative_buckets) =
            from_indexed(merge(&a.negative_indexed(), &b.negative_indexed(), sign));
        Ok(Combined {
            histogram: out,
            counter_reset_collision: collision,
            custom_buckets_reconciled: reconciled,
        })
    }

    /// `self + other`, at the coarser of the two schemas and the wider of
    /// the two zero buckets; custom bounds that differ are reduced to the
    /// bounds both have. Fails when one has custom buckets and the other
    /// not.
    pub fn add(&self, other: &FloatHistogram) -> Result<Combined, HistogramError> {
        self.combine(other, 1.0)
    }

    /// `self - other`, as [`add`](Self::add) with `other`'s counts negated.
    pub fn sub(&self, other: &FloatHistogram) -> Result<Combined, HistogramError> {
        self.combine(other, -1.0)
    }

    /// Whether a counter reset happened between `previous` and `self`, as
    /// Prometheus's `DetectReset`: the hints decide when they are explicit;
    /// otherwise a smaller count, a finer schema, a narrower zero bucket,
    /// changed custom bounds, or any bucket that shrank means a reset.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset | CounterResetHint::Gauge => return false,
            CounterResetHint::Unknown => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() != previous.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            if self.custom_values != previous.custom_values {
                // Different bounds are compared on the bounds both have,
                // as Prometheus reconciles them.
                let common: Vec<f64> = self
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| previous.custom_values.contains(v))
                    .collect();
                return self
                    .rebucket_custom(&common)
                    .shrank_from(&previous.rebucket_custom(&common));
            }
        } else {
            if self.schema > previous.schema || self.zero_threshold < previous.zero_threshold {
                return true;
            }
        }
        let mut prev = previous.reduced_to(self.schema);
        if !self.uses_custom_buckets() {
            prev.widen_zero_bucket(self.zero_threshold);
            if prev.zero_threshold > self.zero_threshold {
                // The previous buckets straddle this zero bucket's edge:
                // compare with this histogram's zero bucket widened too.
                let mut current = self.clone();
                current.widen_zero_bucket(prev.zero_threshold);
                return current.shrank_from(&prev);
            }
        }
        self.shrank_from(&prev)
    }

    fn shrank_from(&self, prev: &FloatHistogram) -> bool {
        if self.zero_count < prev.zero_count {
            return true;
        }
        let side_shrank = |current: Vec<(i32, f64)>, previous: Vec<(i32, f64)>| {
            previous.iter().any(|&(index, count)| {
                count > 0.0
                    && current
                        .iter()
                        .find(|(i, _)| *i == index)
                        .is_none_or(|(_, c)| *c < count)
            })
        };
        side_shrank(self.positive_indexed(), prev.positive_indexed())
            || side_shrank(self.negative_indexed(), prev.negative_indexed())
    }

    /// Exact equality of the content, as Prometheus's `Equals`: spans
    /// compared after compaction (so empty buckets do not matter), NaN
    /// sums equal by bits; the counter-reset hint is not content and is
    /// not compared.
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.compact(0);
        b.compact(0);
        a.schema == b.schema
            && a.zero_threshold == b.zero_threshold
            && a.zero_count == b.zero_count
            && a.count == b.count
            && a.sum.to_bits() == b.sum.to_bits()
            && a.positive_spans == b.positive_spans
            && a.negative_spans == b.negative_spans
            && a.positive_buckets == b.positive_buckets
            && a.negative_buckets == b.negative_buckets
            && a.custom_values == b.custom_values
    }

    fn bucket_bounds(&self, index: i32) -> (f64, f64) {
        if self.uses_custom_buckets() {
            let lower = if index == 0 {
                f64::NEG_INFINITY
            } else {
                self.custom_values
                    .get(index as usize - 1)
                    .copied()
                    .unwrap_or(f64::INFINITY)
            };
            let upper = self
                .custom_values
                .get(index as usize)
                .copied()
                .unwrap_or(f64::INFINITY);
            (lower, upper)
        } else {
            (
                exponential_bound(index - 1, self.schema),
                exponential_bound(index, self.schema),
            )
        }
    }

    /// The positive buckets in ascending order (`(lower, upper]`; custom
    /// buckets likewise, the first starting at `-Inf`).
    pub fn positive_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        indexed(&self.positive_spans, &self.positive_buckets).map(move |(index, count)| {
            let (lower, upper) = self.bucket_bounds(index);
            let lower = if !self.uses_custom_buckets() {
                lower.max(self.zero_threshold)
            } else {
                lower
            };
            Bucket {
                lower,
                upper,
                lower_inclusive: false,
                upper_inclusive: true,
                count,
                index,
            }
        })
    }

    /// The negative buckets from the one closest to zero outwards
    /// (`[-upper, -lower)`).
    pub fn negative_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        indexed(&self.negative_spans, &self.negative_buckets).map(move |(index, count)| {
            let (lower, upper) = self.bucket_bounds(index);
            Bucket {
                lower: -upper,
                upper: -lower.max(self.zero_threshold),
                lower_inclusive: true,
                upper_inclusive: false,
                count,
                index,
            }
        })
    }

    /// The zero bucket `[-threshold, threshold]`, if the histogram has one
    /// worth reporting (a non-zero count or width).
    pub fn zero_bucket(&self) -> Option<Bucket> {
        (!self.uses_custom_buckets() && (self.zero_count != 0.0 || self.zero_threshold != 0.0))
            .then_some(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
                index: 0,
            })
    }

    /// Every bucket in ascending order of value: negative ones from the
    /// most negative, the zero bucket when its count is not zero, then the
    /// positive ones (as Prometheus's `AllBucketIterator`).
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let mut out: Vec<Bucket> = self.negative_buckets_iter().collect();
        out.reverse();
        if let Some(zero) = self.zero_bucket()
            && zero.count != 0.0
        {
            out.push(zero);
        }
        out.extend(self.positive_buckets_iter());
        out
    }
}

/// The hint of a sum or difference, and whether the operands' hints
/// collide (one says reset, the other not), as Prometheus's `Add`.
fn combine_hints(a: CounterResetHint, b: CounterResetHint) -> (CounterResetHint, bool) {
    use CounterResetHint::{CounterReset, Gauge, NotCounterReset, Unknown};
    match (a, b) {
        (a, b) if a == b => (a, false),
        (Gauge, _) | (_, Gauge) => (Gauge, false),
        (Unknown, _) | (_, Unknown) => (Unknown, false),
        (CounterReset, NotCounterReset) | (NotCounterReset, CounterReset) => (Unknown, true),
        _ => (Unknown, false),
    }
}

/// Go's `%g` for the `String` form.
fn go_g(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        let abs = v.abs();
        if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
            let s = format!("{v:e}");
            // Go writes the exponent with a sign and at least two digits.
            match s.split_once('e') {
                Some((mantissa, exp)) => {
                    let (sign, digits) = match exp.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', exp),
                    };
                    format!("{mantissa}e{sign}{digits:0>2}")
                }
                None => s,
            }
        } else {
            format!("{v}")
        }
    }
}

impl fmt::Display for FloatHistogram {
    /// Prometheus's `String()` form:
    /// `{count:4, sum:5, [-2,-1):1, [-0.001,0.001]:2, (1,2]:1}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        if self.counter_reset_hint == CounterResetHint::Gauge {
            f.write_str("gauge ")?;
        }
        write!(f, "count:{}, sum:{}", go_g(self.count), go_g(self.sum))?;
        for bucket in self.all_buckets() {
            let open = if bucket.lower_inclusive { '[' } else { '(' };
            let close = if bucket.upper_inclusive { ']' } else { ')' };
            write!(
                f,
                ", {open}{},{}{close}:{}",
                go_g(bucket.lower),
                go_g(bucket.upper),
                go_g(bucket.count)
            )?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, count: f64, sum: f64, offset: i32, buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count,
            sum,
            positive_spans: vec![Span::new(offset, buckets.len() as u32)],
            positive_buckets: buckets.to_vec(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn exponential_bounds() {
        assert_eq!(exponential_bound(0, 0), 1.0);
        assert_eq!(exponential_bound(1, 0), 2.0);
        assert_eq!(exponential_bound(-1, 0), 0.5);
        assert_eq!(exponential_bound(1, -1), 4.0);
        assert!((exponential_bound(1, 1) - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert_eq!(exponential_bound(2, 1), 2.0);
        assert_eq!(exponential_bound(256, -2), f64::MAX);
    }

    #[test]
    fn add_reduces_schema_and_merges() {
        // Schema 1 buckets 1 and 2 ((1,√2] and (√2,2]) merge into schema 0
        // bucket 1 ((1,2]).
        let fine = h(1, 3.0, 3.0, 1, &[1.0, 2.0]);
        let coarse = h(0, 1.0, 1.5, 1, &[1.0]);
        let sum = fine.add(&coarse).expect("compatible").histogram;
        assert_eq!(sum.schema, 0);
        assert_eq!(sum.count, 4.0);
        assert_eq!(sum.positive_indexed(), [(1, 4.0)]);
        let back = sum.sub(&coarse).expect("compatible").histogram;
        assert_eq!(back.positive_indexed(), [(1, 3.0)]);
    }

    #[test]
    fn zero_bucket_widening_moves_buckets() {
        let mut wide = h(0, 2.0, 0.0, 0, &[]);
        wide.zero_threshold = 1.0;
        wide.zero_count = 2.0;
        let narrow = h(0, 3.0, 0.0, -1, &[1.0, 1.0, 1.0]); // (0.25,0.5],(0.5,1],(1,2]
        let sum = wide.add(&narrow).expect("compatible").histogram;
        assert_eq!(sum.zero_threshold, 1.0);
        assert_eq!(sum.zero_count, 4.0);
        assert_eq!(sum.positive_indexed(), [(1, 1.0)]);
    }

    #[test]
    fn custom_buckets_reconcile_and_refuse_exponential() {
        let mut a = h(CUSTOM_BUCKETS_SCHEMA, 3.0, 1.0, 0, &[1.0, 1.0, 1.0]);
        a.custom_values = vec![1.0, 2.0];
        let mut b = h(CUSTOM_BUCKETS_SCHEMA, 2.0, 1.0, 0, &[1.0, 1.0]);
        b.custom_values = vec![2.0];
        let combined = a.add(&b).expect("custom with custom");
        assert!(combined.custom_buckets_reconciled);
        assert_eq!(combined.histogram.custom_values, [2.0]);
        assert_eq!(combined.histogram.positive_indexed(), [(0, 3.0), (1, 2.0)]);
        assert!(a.add(&h(0, 1.0, 1.0, 0, &[1.0])).is_err());
        let bounds: Vec<_> = a
            .positive_buckets_iter()
            .map(|b| (b.lower, b.upper))
            .collect();
        assert_eq!(
            bounds,
            [(f64::NEG_INFINITY, 1.0), (1.0, 2.0), (2.0, f64::INFINITY)]
        );
    }

    #[test]
    fn compaction_and_equality() {
        let mut a = h(0, 2.0, 1.0, 0, &[1.0, 0.0, 0.0, 1.0]);
        a.compact(0);
        assert_eq!(a.positive_spans, [Span::new(0, 1), Span::new(2, 1)]);
        assert!(a.equals(&h(0, 2.0, 1.0, 0, &[1.0, 0.0, 0.0, 1.0])));
        let mut b = h(0, 2.0, 1.0, 0, &[1.0, 0.0, 0.0, 1.0]);
        b.compact(2);
        assert_eq!(b.positive_spans, [Span::new(0, 4)]);
        assert!(!a.equals(&h(0, 2.0, 1.5, 0, &[1.0, 0.0, 0.0, 1.0])));
    }

    #[test]
    fn counter_resets() {
        let previous = h(0, 4.0, 5.0, 0, &[2.0, 2.0]);
        assert!(!h(0, 5.0, 6.0, 0, &[3.0, 2.0]).detect_reset(&previous));
        assert!(h(0, 5.0, 6.0, 0, &[4.0, 1.0]).detect_reset(&previous));
        assert!(h(0, 3.0, 6.0, 0, &[2.0, 1.0]).detect_reset(&previous));
        assert!(h(1, 5.0, 6.0, 0, &[3.0, 2.0]).detect_reset(&previous));
        // A coarser schema compares after merging the previous buckets.
        assert!(!h(-1, 4.0, 5.0, 0, &[2.0, 2.0]).detect_reset(&previous));
        assert!(h(-1, 4.0, 5.0, 1, &[4.0]).detect_reset(&previous));
        let mut gauge = h(0, 1.0, 1.0, 0, &[1.0]);
        gauge.counter_reset_hint = CounterResetHint::Gauge;
        assert!(!gauge.detect_reset(&previous));
    }

    #[test]
    fn validation_and_conversion() {
        let integer = Histogram {
            count: 4,
            sum: 5.0,
            zero_count: 1,
            zero_threshold: 0.001,
            positive_spans: vec![Span::new(0, 2), Span::new(1, 1)],
            positive_buckets: vec![1, 0, -1],
            ..Histogram::default()
        };
        let float = integer.to_float();
        assert_eq!(float.positive_buckets, [1.0, 1.0, 0.0]);
        assert_eq!(float.positive_indexed(), [(0, 1.0), (1, 1.0), (3, 0.0)]);
        float.validate().expect("valid");
        let mut broken = float.clone();
        broken.positive_buckets.pop();
        assert!(matches!(
            broken.validate(),
            Err(HistogramError::SpansBucketsMismatch { .. })
        ));
        let mut negative = float;
        negative.positive_buckets[0] = -1.0;
        assert!(negative.validate().is_err());
        assert_eq!(
            h(0, 4.0, 5.0, 0, &[1.0, 2.0]).to_string(),
            "{count:4, sum:5, (0.5,1]:1, (1,2]:2}"
        );
    }
}
