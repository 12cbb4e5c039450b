//! Native histograms in the evaluator: windows that hold histogram
//! samples, the statistics PromQL reads from a histogram (quantile,
//! fraction, standard deviation) and the rate of a histogram counter.
//!
//! The formulas follow Prometheus's `promql/quantile.go` and
//! `promql/functions.go`: exponential buckets interpolate exponentially,
//! custom buckets and the zero bucket linearly.

use ember_model::histogram::{Bucket, CounterResetHint, FloatHistogram};
use ember_model::labels::Labels;
use ember_model::sample::Sample as Point;

use super::QueryError;
use super::eval::{
    Evaluator, HPoint, HistogramStepPoint, StepPoint, StepSeries, Window, WindowFunction,
};
use crate::parser::Expr;

/// A step's value: a float or a histogram (boxed, so that the float case
/// returned for every step of every series stays two words).
pub(super) enum StepValue {
    F(f64),
    H(Box<FloatHistogram>),
}

/// Computes a range function's value at a step from the step index, the
/// float and histogram samples of the window, the labels and the window's
/// end.
pub(super) type MixedWindowFunction<'a> =
    dyn FnMut(usize, &[Point], &[HPoint], &Labels, i64) -> Option<StepValue> + 'a;

impl Evaluator<'_, '_> {
    /// Like [`Evaluator::range_map_mixed`], but series without histogram
    /// samples go through `f`, the float-only function, on
    /// [`Evaluator::range_map`]'s loop: float queries pay nothing for
    /// histogram support.
    pub(super) fn range_map_split(
        &self,
        func: &str,
        expr: &Expr,
        drop_name: bool,
        f: &mut WindowFunction<'_>,
        mixed: &mut MixedWindowFunction<'_>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let window = self.window_of(expr)?;
        let mut out = Vec::new();
        self.for_each_range_series(expr, Some(func), &mut |labels, samples, histograms| {
            let (points, hpoints) = if histograms.is_empty() {
                (self.float_windows(&window, samples, labels, f), Vec::new())
            } else {
                self.mixed_windows(&window, samples, histograms, labels, mixed)
            };
            if !points.is_empty() || !hpoints.is_empty() {
                self.ctx.hold(points.len() + hpoints.len())?;
                out.push(StepSeries {
                    labels: labels.clone(),
                    drop_name,
                    points,
                    histograms: hpoints,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Slides the window over a series' float and histogram samples and
    /// applies `f` at every step.
    fn mixed_windows(
        &self,
        window: &Window,
        samples: &[Point],
        histograms: &[HPoint],
        labels: &Labels,
        f: &mut MixedWindowFunction<'_>,
    ) -> (Vec<StepPoint>, Vec<HistogramStepPoint>) {
        let mut points = Vec::new();
        let mut hpoints = Vec::new();
        let (mut lo, mut hi, mut hlo, mut hhi) = (0usize, 0usize, 0usize, 0usize);
        for step in 0..self.steps() {
            let reference = window.reference(self.time(step));
            let start = reference - window.range;
            if window.at.is_some() {
                lo = samples.partition_point(|p| p.t <= start);
                hi = samples.partition_point(|p| p.t <= reference);
                hlo = histograms.partition_point(|p| p.t <= start);
                hhi = histograms.partition_point(|p| p.t <= reference);
            } else {
                while hi < samples.len() && samples[hi].t <= reference {
                    hi += 1;
                }
                while lo < hi && samples[lo].t <= start {
                    lo += 1;
                }
                while hhi < histograms.len() && histograms[hhi].t <= reference {
                    hhi += 1;
                }
                while hlo < hhi && histograms[hlo].t <= start {
                    hlo += 1;
                }
            }
            match f(
                step,
                &samples[lo..hi],
                &histograms[hlo..hhi],
                labels,
                reference,
            ) {
                Some(StepValue::F(v)) => points.push(StepPoint {
                    step: step as u32,
                    v,
                }),
                Some(StepValue::H(h)) => hpoints.push(HistogramStepPoint {
                    step: step as u32,
                    h,
                }),
                None => {}
            }
        }
        (points, hpoints)
    }

    /// [`Evaluator::range_map`] for functions that read histogram samples
    /// too: `f` sees both windows and may return a float or a histogram.
    pub(super) fn range_map_mixed(
        &self,
        func: &str,
        expr: &Expr,
        drop_name: bool,
        f: &mut MixedWindowFunction<'_>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let window = self.window_of(expr)?;
        let mut out = Vec::new();
        self.for_each_range_series(expr, Some(func), &mut |labels, samples, histograms| {
            let (points, hpoints) = self.mixed_windows(&window, samples, histograms, labels, f);
            if !points.is_empty() || !hpoints.is_empty() {
                self.ctx.hold(points.len() + hpoints.len())?;
                out.push(StepSeries {
                    labels: labels.clone(),
                    drop_name,
                    points,
                    histograms: hpoints,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Drops the histogram points of every series, and the series left empty:
/// what functions that only read floats do.
pub(super) fn floats_only(series: &mut Vec<StepSeries>) {
    for s in series.iter_mut() {
        s.histograms = Vec::new();
    }
    series.retain(|s| !s.points.is_empty());
}

/// Whether the zero bucket should be taken to start (or end) at zero: the
/// histogram has observations on one side only.
fn adjust_zero_bucket(h: &FloatHistogram, bucket: &mut Bucket) {
    if !h.uses_custom_buckets() && bucket.lower < 0.0 && bucket.upper > 0.0 {
        let positive = h.positive_buckets.iter().any(|c| *c != 0.0);
        let negative = h.negative_buckets.iter().any(|c| *c != 0.0);
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() || positive && !negative
        {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty()
            || negative && !positive
        {
            bucket.upper = 0.0;
        }
    }
}

/// The `q` quantile of a native histogram, as Prometheus's
/// `HistogramQuantile`.
pub(super) fn histogram_quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let mut buckets = h.all_buckets();
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward {
        q * h.count
    } else {
        buckets.reverse();
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut bucket = None;
    for b in &buckets {
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        bucket = Some(*b);
        if count >= rank {
            break;
        }
    }
    let Some(mut bucket) = bucket else {
        return f64::NAN;
    };
    adjust_zero_bucket(h, &mut bucket);
    if h.uses_custom_buckets() {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return bucket.upper;
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return bucket.lower;
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        // The rank lies among NaN observations (they count but sit in no
        // bucket): the quantile is NaN.
        if has_nan_observations(h) {
            return f64::NAN;
        }
        return if forward { bucket.upper } else { bucket.lower };
    }
    rank -= count - bucket.count;
    let fraction = if forward {
        rank / bucket.count
    } else {
        1.0 - rank / bucket.count
    };
    if h.uses_custom_buckets() || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return bucket.lower + (bucket.upper - bucket.lower) * fraction;
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// The fraction of observations between `lower` and `upper`, as
/// Prometheus's `HistogramFraction`.
pub(super) fn histogram_fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for mut b in h.all_buckets() {
        let zero_bucket = !h.uses_custom_buckets() && b.lower <= 0.0 && b.upper >= 0.0;
        adjust_zero_bucket(h, &mut b);
        if h.uses_custom_buckets() && b.lower == f64::NEG_INFINITY && b.upper > 0.0 {
            b.lower = 0.0;
        }
        let linear = h.uses_custom_buckets() || zero_bucket;
        let interpolate = |v: f64| {
            if b.lower.is_infinite() || b.upper.is_infinite() {
                // No interpolation across an infinite bound: the bucket's
                // observations count as lying at its finite end.
                return if b.upper.is_infinite() {
                    rank
                } else {
                    rank + b.count
                };
            }
            if linear {
                rank + b.count * (v - b.lower) / (b.upper - b.lower)
            } else {
                let log_lower = b.lower.abs().log2();
                let log_upper = b.upper.abs().log2();
                let log_v = v.abs().log2();
                let fraction = if v > 0.0 {
                    (log_v - log_lower) / (log_upper - log_lower)
                } else {
                    1.0 - (log_v - log_upper) / (log_lower - log_upper)
                };
                rank + b.count * fraction
            }
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    // NaN observations lie in no bucket: no range includes them.
    let total = if has_nan_observations(h) {
        bucket_total(h)
    } else {
        h.count
    };
    if !lower_set || lower_rank > total {
        lower_rank = total;
    }
    if !upper_set || upper_rank > total {
        upper_rank = total;
    }
    (upper_rank - lower_rank) / h.count
}

/// Whether some observations were NaN: the sum is NaN and the buckets hold
/// fewer observations than the count.
pub(super) fn has_nan_observations(h: &FloatHistogram) -> bool {
    if !h.sum.is_nan() {
        return false;
    }
    bucket_total(h) < h.count
}

/// The observations in the buckets (zero bucket included).
fn bucket_total(h: &FloatHistogram) -> f64 {
    h.positive_buckets.iter().sum::<f64>() + h.negative_buckets.iter().sum::<f64>() + h.zero_count
}

/// The estimated variance of the observations, as Prometheus's
/// `histogram_stdvar`: bucket midpoints (geometric for exponential
/// buckets, arithmetic for custom ones, zero for the zero bucket).
pub(super) fn histogram_variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut variance, mut compensation) = (0.0, 0.0);
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        let value = if h.uses_custom_buckets() {
            // Infinite bounds are treated as in the quantile: the first
            // bucket starts at zero when it ends above it.
            if b.lower == f64::NEG_INFINITY {
                if b.upper > 0.0 {
                    b.upper / 2.0
                } else {
                    b.upper
                }
            } else if b.upper == f64::INFINITY {
                b.lower
            } else {
                (b.upper + b.lower) / 2.0
            }
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let delta = value - mean;
        (variance, compensation) =
            super::functions::kahan_add(b.count * delta * delta, variance, compensation);
    }
    (variance + compensation) / h.count
}

/// The mean of histograms computed incrementally (`mean += h/n - mean/n`),
/// which stays finite where the plain sum overflows; `None` when their
/// layouts cannot be combined.
pub(super) fn incremental_mean<'a>(
    histograms: impl Iterator<Item = &'a FloatHistogram>,
) -> Option<FloatHistogram> {
    let mut mean: Option<FloatHistogram> = None;
    let mut n = 0.0;
    for h in histograms {
        n += 1.0;
        mean = Some(match mean {
            None => h.clone(),
            Some(current) => {
                let mut left = h.clone();
                left.div(n);
                let mut right = current.clone();
                right.div(n);
                let step = left.sub(&right).ok()?.histogram;
                current.add(&step).ok()?.histogram
            }
        });
    }
    mean
}

/// What went wrong in a histogram rate, for the caller to annotate.
#[derive(Debug, Default)]
pub(super) struct RateIssues {
    pub not_counter: bool,
    pub not_gauge: bool,
    pub mixed_schemas: bool,
    pub reconciled: bool,
}

/// The increase (or, for gauges, the delta) between the first and the
/// last histogram of a window, with counter resets accounted for, as
/// Prometheus's `histogramRate`; `None` when the schemas are
/// incompatible.
pub(super) fn histogram_increase(
    points: &[HPoint],
    is_counter: bool,
    issues: &mut RateIssues,
) -> Option<FloatHistogram> {
    let first = &points[0].h;
    let last = &points[points.len() - 1].h;
    let gauge = CounterResetHint::Gauge;
    let mut h = if is_counter {
        if points.iter().any(|p| p.h.counter_reset_hint == gauge) {
            issues.not_counter = true;
        }
        // The increase is the sum of the increases between neighbours, a
        // reset counting from zero: a change between exponential and
        // custom buckets is such a reset, so the histograms before it only
        // matter through their counts.
        let mut total: Option<FloatHistogram> = None;
        for pair in points.windows(2) {
            let (previous, current) = (&pair[0].h, &pair[1].h);
            let step = if current.detect_reset(previous) {
                current.clone()
            } else {
                let combined = current.sub(previous).ok()?;
                issues.reconciled |= combined.custom_buckets_reconciled;
                combined.histogram
            };
            total = Some(match total {
                None => step,
                Some(sum) => match sum.add(&step) {
                    Ok(combined) => {
                        issues.reconciled |= combined.custom_buckets_reconciled;
                        combined.histogram
                    }
                    Err(_) => {
                        issues.mixed_schemas = true;
                        return None;
                    }
                },
            });
        }
        total?
    } else {
        if first.uses_custom_buckets() != last.uses_custom_buckets() {
            issues.mixed_schemas = true;
            return None;
        }
        if first.counter_reset_hint != gauge || last.counter_reset_hint != gauge {
            issues.not_gauge = true;
        }
        let combined = last.sub(first).ok()?;
        issues.reconciled |= combined.custom_buckets_reconciled;
        combined.histogram
    };
    h.counter_reset_hint = CounterResetHint::Gauge;
    h.compact(0);
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_model::histogram::Span;

    fn h(count: f64, sum: f64, buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            count,
            sum,
            positive_spans: vec![Span::new(0, buckets.len() as u32)],
            positive_buckets: buckets.to_vec(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn quantile_interpolates_exponentially() {
        // Buckets (0.5,1]:1 (1,2]:2 (2,4]:1.
        let histogram = h(4.0, 5.0, &[1.0, 2.0, 1.0]);
        // The median is half way through (1,2] on a log scale: √2.
        assert!((histogram_quantile(0.5, &histogram) - std::f64::consts::SQRT_2).abs() < 1e-12);
        assert!((histogram_quantile(0.25, &histogram) - 1.0).abs() < 1e-12);
        assert_eq!(histogram_quantile(1.5, &histogram), f64::INFINITY);
        assert!(histogram_quantile(0.5, &h(0.0, 0.0, &[])).is_nan());
    }

    #[test]
    fn fraction_and_variance() {
        let histogram = h(4.0, 5.0, &[1.0, 2.0, 1.0]);
        assert_eq!(histogram_fraction(0.0, 2.0, &histogram), 0.75);
        assert_eq!(
            histogram_fraction(f64::NEG_INFINITY, f64::INFINITY, &histogram),
            1.0
        );
        assert_eq!(histogram_fraction(3.0, 2.0, &histogram), 0.0);
        assert!(histogram_variance(&histogram) > 0.0);
    }

    #[test]
    fn increase_accounts_for_resets() {
        let points = [
            HPoint {
                t: 0,
                h: h(4.0, 5.0, &[1.0, 2.0, 1.0]),
            },
            HPoint {
                t: 1,
                h: h(6.0, 8.0, &[1.0, 4.0, 1.0]),
            },
            HPoint {
                t: 2,
                h: h(1.0, 1.0, &[1.0, 0.0, 0.0]),
            },
        ];
        let mut issues = RateIssues::default();
        let increase = histogram_increase(&points, true, &mut issues).expect("increase");
        // 6 - 4 before the reset, then 1 after it.
        assert_eq!(increase.count, 3.0);
        assert_eq!(increase.counter_reset_hint, CounterResetHint::Gauge);
        assert!(!issues.not_counter);
    }
}
