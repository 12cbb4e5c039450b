//! Samples, timestamps, staleness markers and exemplars.
//!
//! A float sample is a millisecond Unix timestamp and an `f64` value
//! ([`Sample`]). Prometheus marks a series as gone by appending a special
//! NaN, the *staleness marker*, whose bit pattern ([`STALE_NAN_BITS`]) must
//! survive storage, remote write and queries unchanged: it is told apart
//! from an ordinary NaN by its bits alone, so code here never launders
//! values through arithmetic.
//!
//! ```
//! use ember_model::sample::{Sample, is_stale_nan, stale_nan};
//!
//! let marker = Sample::new(1_700_000_000_000, stale_nan());
//! assert!(is_stale_nan(marker.v));
//! assert!(!is_stale_nan(f64::NAN));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::labels::Labels;

/// Bits of the staleness-marker NaN, identical to Prometheus's
/// `value.StaleNaN`.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness-marker NaN.
#[inline]
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker, compared bit for bit (any other NaN
/// is an ordinary value).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float sample: `t` in milliseconds since the Unix epoch, value `v`.
///
/// `PartialEq` compares values by their bits so that a sample round-trips
/// exactly (NaN equals the same NaN, `0.0` differs from `-0.0`), which is
/// what storage, deduplication and tests need; use `v == other.v` for
/// arithmetic equality.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Timestamp, milliseconds since the Unix epoch.
    pub t: i64,
    /// Value.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` ms with value `v`.
    pub const fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }

    /// Whether this sample is a staleness marker.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl Eq for Sample {}

/// Millisecond timestamp helpers. Timestamps are `i64` milliseconds since
/// the Unix epoch everywhere in Ember, as in Prometheus.
pub mod timestamp {
    use super::{Duration, SystemTime, UNIX_EPOCH};

    /// The smallest timestamp the HTTP API accepts (Prometheus's
    /// `MinTime`, about year -292 million, chosen so that subtractions of
    /// durations cannot overflow).
    pub const MIN: i64 = i64::MIN / 2;
    /// The largest timestamp the HTTP API accepts (Prometheus's `MaxTime`).
    pub const MAX: i64 = i64::MAX / 2;

    /// Milliseconds since the epoch for `time`; times before the epoch are
    /// negative; out-of-range times saturate.
    pub fn from_system_time(time: SystemTime) -> i64 {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => {
                // Round towards negative infinity, as Go's `UnixMilli`
                // does, and saturate.
                let millis = before.duration().as_nanos().div_ceil(1_000_000);
                i64::try_from(millis).map(|m| -m).unwrap_or(i64::MIN)
            }
        }
    }

    /// The `SystemTime` for millisecond timestamp `t`.
    pub fn to_system_time(t: i64) -> SystemTime {
        let magnitude = Duration::from_millis(t.unsigned_abs());
        if t >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    /// The current time in milliseconds. This reads the clock, which is not
    /// I/O but is not deterministic either: pass timestamps down rather than
    /// calling this deep inside logic that tests need to control.
    pub fn now() -> i64 {
        from_system_time(SystemTime::now())
    }

    /// Milliseconds in `d`, saturating.
    pub fn from_duration(d: Duration) -> i64 {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    /// Seconds (as the HTTP API and PromQL's `time()` use them) for `t`.
    pub fn to_seconds(t: i64) -> f64 {
        t as f64 / 1000.0
    }

    /// Milliseconds for a float seconds value, rounded to the nearest
    /// millisecond (as Prometheus parses API times); `None` when not finite
    /// or out of the `i64` range.
    pub fn from_seconds(seconds: f64) -> Option<i64> {
        let millis = (seconds * 1000.0).round();
        // `i64::MAX as f64` rounds up to 2^63, so compare strictly.
        (millis.is_finite() && millis >= i64::MIN as f64 && millis < i64::MAX as f64)
            .then_some(millis as i64)
    }
}

/// An exemplar: a sample of a trace-carrying event attached to a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's own labels (e.g. `trace_id`); OpenMetrics limits
    /// their combined length to 128 UTF-8 characters.
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// When it was observed, if the exposition said; the scrape loop fills
    /// in the scrape timestamp otherwise before appending.
    pub ts: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_bit_exact() {
        assert_eq!(stale_nan().to_bits(), STALE_NAN_BITS);
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(f64::from_bits(STALE_NAN_BITS | 1)));
        assert!(!is_stale_nan(1.0));
        assert!(Sample::new(0, stale_nan()).is_stale());
    }

    #[test]
    fn sample_equality_is_bitwise() {
        assert_eq!(Sample::new(1, f64::NAN), Sample::new(1, f64::NAN));
        assert_ne!(Sample::new(1, 0.0), Sample::new(1, -0.0));
        assert_ne!(Sample::new(1, stale_nan()), Sample::new(1, f64::NAN));
        assert_ne!(Sample::new(1, 1.0), Sample::new(2, 1.0));
    }

    #[test]
    fn timestamp_round_trips() {
        for t in [0, 1, -1, 1_700_000_000_123, -1_700_000_000_123] {
            assert_eq!(timestamp::from_system_time(timestamp::to_system_time(t)), t);
        }
        assert_eq!(timestamp::from_seconds(1.5), Some(1500));
        assert_eq!(timestamp::from_seconds(-0.0015), Some(-2));
        assert_eq!(timestamp::from_seconds(f64::NAN), None);
        assert_eq!(timestamp::from_seconds(1e300), None);
        assert_eq!(timestamp::to_seconds(1500), 1.5);
        assert_eq!(timestamp::from_duration(Duration::from_secs(15)), 15_000);
        assert!(timestamp::now() > 1_600_000_000_000);
    }
}
