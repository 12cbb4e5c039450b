//! Delta temporality converted to cumulative.
//!
//! Prometheus stores cumulative counters and histograms; an OTLP sender with
//! delta temporality sends what happened since its previous report. The
//! [`DeltaState`] table keeps, per series (its labels before the `le`
//! label), the running total: each delta point is added to it and the total
//! is stored, at the point's timestamp. So a delta counter of 3, 4, 5 is
//! stored as 3, 7, 12.
//!
//! Rules, documented for operators in `docs/operations.md`:
//! - The first delta point of a series starts its total at zero, as a new
//!   counter does: `rate()` treats it as a counter that started then.
//! - A point whose end time is not after the previous one's for the same
//!   series (a retried or reordered request) is rejected and counted in
//!   `partial_success`, so a retry never counts twice.
//! - A histogram whose bucket boundaries change starts over from the new
//!   point, which reads as a counter reset.
//! - A series not updated for [`DeltaState::evict_idle`]'s cutoff is
//!   forgotten; its next point starts again from zero (a counter reset).
//! - The table lives in memory: a restart forgets it, which again reads as
//!   a counter reset.

use std::collections::HashMap;

use ember_model::labels::Labels;

use crate::exponential::PowerOfTwoBuckets;

/// A series' running total.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Total {
    /// A sum's value.
    Sum(f64),
    /// An explicit-bucket histogram: per-bucket counts (not cumulative),
    /// sum and count.
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
    /// An exponential histogram, on power-of-two buckets.
    Exponential {
        buckets: PowerOfTwoBuckets,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    total: Total,
    /// End time (ns) of the last point added.
    last_time_ns: u64,
    /// When the entry was last updated, in the caller's clock (ms).
    touched_ms: i64,
}

/// Why a delta point was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The point does not come after the last one added for its series.
    #[error(
        "delta data point at {time_ns}ns is not after the previous one ({last_ns}ns) for {series}"
    )]
    NotAfterPrevious {
        /// The series.
        series: String,
        /// The rejected point's time.
        time_ns: u64,
        /// The previous point's time.
        last_ns: u64,
    },
}

/// The running totals of delta series. See the [module docs](self).
#[derive(Debug, Default)]
pub struct DeltaState {
    entries: HashMap<Labels, Entry>,
}

impl DeltaState {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of series tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets series not updated since `cutoff_ms` (the clock of the
    /// `now_ms` passed to [`crate::translate`]).
    pub fn evict_idle(&mut self, cutoff_ms: i64) {
        self.entries.retain(|_, e| e.touched_ms >= cutoff_ms);
    }

    /// Adds `delta` to the total of `series` and returns the new total.
    pub(crate) fn accumulate(
        &mut self,
        series: &Labels,
        time_ns: u64,
        now_ms: i64,
        delta: Total,
    ) -> Result<Total, DeltaError> {
        let Some(entry) = self.entries.get_mut(series) else {
            self.entries.insert(
                series.clone(),
                Entry {
                    total: delta.clone(),
                    last_time_ns: time_ns,
                    touched_ms: now_ms,
                },
            );
            return Ok(delta);
        };
        if time_ns <= entry.last_time_ns {
            return Err(DeltaError::NotAfterPrevious {
                series: series.to_string(),
                time_ns,
                last_ns: entry.last_time_ns,
            });
        }
        entry.last_time_ns = time_ns;
        entry.touched_ms = now_ms;
        entry.total = match (std::mem::replace(&mut entry.total, Total::Sum(0.0)), delta) {
            (Total::Sum(a), Total::Sum(b)) => Total::Sum(a + b),
            (
                Total::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                },
                Total::Histogram {
                    bounds: new_bounds,
                    counts: new_counts,
                    sum: new_sum,
                    count: new_count,
                },
            ) if bounds == new_bounds && counts.len() == new_counts.len() => Total::Histogram {
                bounds,
                counts: counts
                    .iter()
                    .zip(&new_counts)
                    .map(|(a, b)| a.saturating_add(*b))
                    .collect(),
                sum: sum + new_sum,
                count: count.saturating_add(new_count),
            },
            (
                Total::Exponential {
                    mut buckets,
                    sum,
                    count,
                },
                Total::Exponential {
                    buckets: new_buckets,
                    sum: new_sum,
                    count: new_count,
                },
            ) => {
                buckets.add(&new_buckets);
                Total::Exponential {
                    buckets,
                    sum: sum + new_sum,
                    count: count.saturating_add(new_count),
                }
            }
            // Different shape (bounds changed, or the metric changed type
            // under the same name): start over from this point.
            (_, delta) => delta,
        };
        Ok(entry.total.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::new([("__name__", "x_total")]).unwrap()
    }

    #[test]
    fn sums_accumulate_and_retries_are_refused() {
        let mut state = DeltaState::new();
        let s = labels();
        assert_eq!(
            state.accumulate(&s, 10, 0, Total::Sum(3.0)),
            Ok(Total::Sum(3.0))
        );
        assert_eq!(
            state.accumulate(&s, 20, 0, Total::Sum(4.0)),
            Ok(Total::Sum(7.0))
        );
        assert!(state.accumulate(&s, 20, 0, Total::Sum(4.0)).is_err());
        assert_eq!(
            state.accumulate(&s, 30, 0, Total::Sum(5.0)),
            Ok(Total::Sum(12.0))
        );
    }

    #[test]
    fn histograms_restart_when_bounds_change() {
        let mut state = DeltaState::new();
        let s = labels();
        let h = |bounds: Vec<f64>, counts: Vec<u64>| Total::Histogram {
            sum: 1.0,
            count: counts.iter().sum(),
            bounds,
            counts,
        };
        state
            .accumulate(&s, 1, 0, h(vec![1.0], vec![1, 2]))
            .unwrap();
        assert_eq!(
            state.accumulate(&s, 2, 0, h(vec![1.0], vec![1, 1])),
            Ok(Total::Histogram {
                bounds: vec![1.0],
                counts: vec![2, 3],
                sum: 2.0,
                count: 5
            })
        );
        assert_eq!(
            state.accumulate(&s, 3, 0, h(vec![2.0], vec![1, 1])),
            Ok(h(vec![2.0], vec![1, 1]))
        );
    }

    #[test]
    fn idle_series_are_evicted() {
        let mut state = DeltaState::new();
        state
            .accumulate(&labels(), 1, 100, Total::Sum(1.0))
            .unwrap();
        state.evict_idle(50);
        assert_eq!(state.len(), 1);
        state.evict_idle(101);
        assert!(state.is_empty());
        assert_eq!(
            state.accumulate(&labels(), 2, 200, Total::Sum(1.0)),
            Ok(Total::Sum(1.0))
        );
    }
}
