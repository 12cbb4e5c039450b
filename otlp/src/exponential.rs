//! Exponential histograms as classic buckets.
//!
//! Ember has no native histograms yet, so an OTLP exponential histogram is
//! stored as a classic one (`_bucket{le}`, `_sum`, `_count`). The bucket
//! boundaries are **powers of two**, whatever the point's scale: buckets of
//! a positive scale are merged into the scale-0 bucket that contains them
//! (bucket `i` of scale `s` lies in `(2^j, 2^(j+1)]` with `j = i >> s`), and
//! the boundaries of a negative scale (`2^((i+1)·2^-s)`) are powers of two
//! already. So a series' `le` values stay the same from push to push even
//! when the SDK rescales, at the cost of resolution: quantiles are exact to
//! within a factor of two. Negative values get boundaries `-2^j`, the zero
//! bucket `le` = the zero threshold; only boundaries between the lowest and
//! highest populated bucket are written, plus `+Inf` (the point's count).
//! Boundaries beyond `f64` range fold into `+Inf`.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

/// A classic bucket's identity: the sign and exponent of its upper bound,
/// ordered as the bounds are (most negative first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum BucketKey {
    /// Upper bound `-2^e`.
    Negative(Reverse<i32>),
    /// Upper bound the zero threshold.
    Zero,
    /// Upper bound `2^e`.
    Positive(i32),
}

/// Counts per power-of-two bucket: the merged form of one point, and what
/// the delta-to-cumulative table accumulates.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PowerOfTwoBuckets {
    pub(crate) counts: BTreeMap<BucketKey, u64>,
    pub(crate) zero_threshold: f64,
}

/// The exponent range whose powers of two are finite, non-zero `f64`s.
const MIN_EXP: i64 = -1074;
const MAX_EXP: i64 = 1023;

fn exponent(index: i64, scale: i32, upper: bool) -> i32 {
    let e = if scale >= 0 {
        (index >> scale) + i64::from(upper)
    } else {
        let shift = scale.unsigned_abs().min(62);
        (index + i64::from(upper)).saturating_mul(1 << shift)
    };
    // Past MAX_EXP the bound is infinite: one past it marks "fold into
    // +Inf"; below MIN_EXP bounds would round to zero.
    e.clamp(MIN_EXP, MAX_EXP + 1) as i32
}

fn add_side(
    buckets: Option<&Buckets>,
    scale: i32,
    out: &mut BTreeMap<BucketKey, u64>,
    key: fn(i32) -> BucketKey,
    upper: bool,
) {
    let Some(buckets) = buckets else { return };
    for (k, &count) in buckets.bucket_counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let index = i64::from(buckets.offset) + k as i64;
        *out.entry(key(exponent(index, scale, upper))).or_default() += count;
    }
}

impl PowerOfTwoBuckets {
    /// Merges `point`'s buckets onto power-of-two boundaries.
    pub(crate) fn from_point(point: &ExponentialHistogramDataPoint) -> Self {
        let mut counts = BTreeMap::new();
        // Positive bucket i covers (base^i, base^(i+1)]: its upper bound.
        add_side(
            point.positive.as_ref(),
            point.scale,
            &mut counts,
            BucketKey::Positive,
            true,
        );
        // Negative bucket i covers [-base^(i+1), -base^i): the upper bound
        // is -base^i.
        add_side(
            point.negative.as_ref(),
            point.scale,
            &mut counts,
            |e| BucketKey::Negative(Reverse(e)),
            false,
        );
        counts.insert(BucketKey::Zero, point.zero_count);
        Self {
            counts,
            zero_threshold: point.zero_threshold.max(0.0),
        }
    }

    /// Adds `other`'s counts (delta accumulation).
    pub(crate) fn add(&mut self, other: &Self) {
        for (key, count) in &other.counts {
            *self.counts.entry(*key).or_default() += count;
        }
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
    }

    /// Strictly increasing finite upper bounds with cumulative counts; `+Inf`
    /// is left to the caller (it is the point's count).
    pub(crate) fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = Vec::with_capacity(self.counts.len());
        let mut total = 0u64;
        for (key, &count) in &self.counts {
            total = total.saturating_add(count);
            let bound = match *key {
                BucketKey::Negative(Reverse(e)) => -(2f64.powi(e)),
                BucketKey::Zero => self.zero_threshold,
                BucketKey::Positive(e) => 2f64.powi(e),
            };
            if !bound.is_finite() {
                // Folds into +Inf; so does everything after it.
                continue;
            }
            match out.last_mut() {
                // A bound not above the previous one (a zero threshold
                // wider than the smallest buckets) merges into it.
                Some(last) if bound <= last.0 => last.1 = total,
                _ => out.push((bound, total)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: i32, offset: i32, counts: &[u64], zero: u64) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            zero_count: zero,
            positive: Some(Buckets {
                offset,
                bucket_counts: counts.to_vec(),
            }),
            count: zero + counts.iter().sum::<u64>(),
            ..Default::default()
        }
    }

    #[test]
    fn scale_zero_bounds_are_the_buckets_own() {
        // Buckets (1,2], (2,4], (4,8] with 1, 2, 3 observations.
        let b = PowerOfTwoBuckets::from_point(&point(0, 0, &[1, 2, 3], 0));
        assert_eq!(b.cumulative(), vec![(0.0, 0), (2.0, 1), (4.0, 3), (8.0, 6)]);
    }

    #[test]
    fn positive_scales_merge_into_powers_of_two() {
        // Scale 2: base 2^(1/4); indexes 0..8 cover (1, 4]. Indexes 0-3 lie
        // in (1,2], 4-7 in (2,4].
        let b = PowerOfTwoBuckets::from_point(&point(2, 0, &[1, 1, 1, 1, 1, 1, 1, 1], 2));
        assert_eq!(b.cumulative(), vec![(0.0, 2), (2.0, 6), (4.0, 10)]);
        // Negative indexes floor: scale 1, index -1 covers (2^-0.5, 1].
        let b = PowerOfTwoBuckets::from_point(&point(1, -1, &[5], 0));
        assert_eq!(b.cumulative(), vec![(0.0, 0), (1.0, 5)]);
    }

    #[test]
    fn negative_scales_keep_their_power_of_two_bounds() {
        // Scale -1: base 4; index 1 covers (4, 16].
        let b = PowerOfTwoBuckets::from_point(&point(-1, 1, &[7], 0));
        assert_eq!(b.cumulative(), vec![(0.0, 0), (16.0, 7)]);
    }

    #[test]
    fn negative_values_come_first() {
        let mut p = point(0, 0, &[1], 1);
        // Index 1 covers [-4, -2), index 0 [-2, -1).
        p.negative = Some(Buckets {
            offset: 0,
            bucket_counts: vec![3, 4],
        });
        let b = PowerOfTwoBuckets::from_point(&p);
        assert_eq!(
            b.cumulative(),
            vec![(-2.0, 4), (-1.0, 7), (0.0, 8), (2.0, 9)]
        );
    }

    #[test]
    fn huge_indexes_fold_into_inf() {
        let b = PowerOfTwoBuckets::from_point(&point(0, 5000, &[1], 0));
        assert_eq!(b.cumulative(), vec![(0.0, 0)]);
    }

    #[test]
    fn accumulation_adds_counts() {
        let mut a = PowerOfTwoBuckets::from_point(&point(0, 0, &[1], 0));
        a.add(&PowerOfTwoBuckets::from_point(&point(0, 1, &[2], 1)));
        assert_eq!(a.cumulative(), vec![(0.0, 1), (2.0, 2), (4.0, 4)]);
    }
}
