//! Classic (`_bucket`/`le`) histogram functions: `histogram_quantile`,
//! `histogram_quantiles` and `histogram_fraction`, with Prometheus's bucket
//! coalescing and monotonicity repair.

use std::collections::HashMap;

use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use ember_model::storage::Severity;

use super::QueryError;
use super::aggregate::go_g;
use super::binary::point_at;
use super::eval::{Evaluator, StepPoint, StepSeries, Val};
use super::native;
use crate::parser::Expr;
use crate::value::format_float;

/// The bucket label.
const BUCKET_LABEL: &str = "le";

/// Relative difference below which bucket counts are treated as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    upper_bound: f64,
    count: f64,
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Sorts and merges buckets with equal bounds; `None` without a `+Inf`
/// bucket. Returns whether monotonicity had to be forced.
fn prepare(buckets: &mut Vec<Bucket>) -> Option<bool> {
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets
        .last()
        .is_none_or(|b| b.upper_bound != f64::INFINITY)
    {
        return None;
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    *buckets = merged;
    let mut forced = false;
    let mut previous = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let current = b.count;
        if current == previous {
            continue;
        }
        if almost_equal(previous, current, SMALL_DELTA_TOLERANCE) {
            b.count = previous;
            continue;
        }
        if current < previous {
            b.count = previous;
            forced = true;
            continue;
        }
        previous = current;
    }
    Some(forced)
}

/// Prometheus's `BucketQuantile` over prepared buckets.
fn bucket_quantile(q: f64, buckets: &[Bucket]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.count < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Prometheus's `BucketFraction` over prepared buckets.
fn bucket_fraction(lower: f64, upper: f64, buckets: &[Bucket]) -> f64 {
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        // The first bucket starts at 0 when its upper bound is positive
        // (observations are assumed non-negative then), at -Inf otherwise.
        let lower_bound = match i {
            0 if b.upper_bound > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => buckets[i - 1].upper_bound,
        };
        let upper_bound = b.upper_bound;
        // No interpolation inside a bucket of infinite width: its
        // observations are taken to sit at its finite end.
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else if upper_bound == f64::INFINITY {
                rank
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

impl Evaluator<'_, '_> {
    pub(super) fn eval_histogram_function(
        &self,
        name: &str,
        args: &[&Expr],
        position: Option<(usize, &[usize])>,
    ) -> Result<Val, QueryError> {
        let arg = |i: usize| {
            args.get(i).copied().ok_or_else(|| {
                QueryError::BadData(format!("missing argument {i} in call to {name}"))
            })
        };
        let arg_position = |i: usize| position.and_then(|(_, a)| a.get(i).copied());
        // Parameters and the vector argument, by function.
        let (vector_arg, params): (usize, Vec<Vec<f64>>) = match name {
            "histogram_quantile" => (1, vec![self.eval_scalar(arg(0)?)?]),
            "histogram_fraction" => (
                2,
                vec![self.eval_scalar(arg(0)?)?, self.eval_scalar(arg(1)?)?],
            ),
            _ => {
                let mut qs = Vec::new();
                for e in &args[2..] {
                    qs.push(self.eval_scalar(e)?);
                }
                (0, qs)
            }
        };
        let quantile_label = if name == "histogram_quantiles" {
            Some(self.eval_string(arg(1)?)?)
        } else {
            None
        };
        // Out-of-range quantiles warn even without data, as in Prometheus.
        if name != "histogram_fraction" {
            for (i, q) in params.iter().enumerate() {
                if let Some(q) = q.iter().find(|q| !(0.0..=1.0).contains(*q) || q.is_nan()) {
                    let p = if name == "histogram_quantile" {
                        0
                    } else {
                        2 + i
                    };
                    self.ctx.annotate(
                        Severity::Warning,
                        format!("quantile value should be between 0 and 1, got {}", go_g(*q)),
                        arg_position(p),
                    );
                }
            }
        }
        let input = self.eval_vector(arg(vector_arg)?)?;
        let released: usize = input.iter().map(|s| s.points.len()).sum();
        // Group the buckets: same labels apart from `le`.
        let mut groups: Vec<Labels> = Vec::new();
        let mut group_names: Vec<String> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut members: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
        for s in &input {
            if s.points.is_empty() {
                // A series of native histograms only: no classic bucket.
                members.push(None);
                continue;
            }
            let le = s.labels.get(BUCKET_LABEL).unwrap_or("");
            let Some(bound) = parse_go_float(le) else {
                self.ctx.annotate(
                    Severity::Warning,
                    format!(
                        "bucket label {BUCKET_LABEL:?} is missing or has a malformed value of {le:?} for metric name {:?}",
                        s.labels.metric_name().unwrap_or("")
                    ),
                    arg_position(vector_arg),
                );
                members.push(None);
                continue;
            };
            let key = s.labels.without(&[BUCKET_LABEL]);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                groups.push(key.without(&[METRIC_NAME]));
                group_names.push(s.labels.metric_name().unwrap_or("").to_owned());
                groups.len() - 1
            });
            members.push(Some((g, bound)));
        }
        let outputs = match &quantile_label {
            Some(_) => params.len(),
            None => 1,
        };
        if let Some(label) = &quantile_label
            && groups.iter().any(|g| g.has(label))
        {
            return Err(QueryError::Execution(format!(
                "label {label:?} already exists in the input vector"
            )));
        }
        let mut out: Vec<StepSeries> = Vec::with_capacity(groups.len() * outputs);
        for g in &groups {
            for param in params.iter().take(outputs) {
                let labels = match &quantile_label {
                    Some(label) => {
                        let mut builder = LabelsBuilder::new(g.clone());
                        let q = param.first().copied().unwrap_or(f64::NAN);
                        builder.set(label, &quantile_label_value(q));
                        builder.labels()
                    }
                    None => g.clone(),
                };
                out.push(StepSeries {
                    histograms: Vec::new(),
                    labels,
                    drop_name: false,
                    points: Vec::new(),
                });
            }
        }
        let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
        let mut cursors = vec![0usize; input.len()];
        let mut non_monotonic: Vec<bool> = vec![false; groups.len()];
        #[allow(clippy::needless_range_loop)] // `step` indexes several parallel arrays.
        for step in 0..self.steps() {
            self.ctx.check()?;
            buckets.iter_mut().for_each(Vec::clear);
            for (i, s) in input.iter().enumerate() {
                let Some((g, bound)) = members[i] else {
                    continue;
                };
                if let Some(count) = point_at(&s.points, &mut cursors[i], step) {
                    buckets[g].push(Bucket {
                        upper_bound: bound,
                        count,
                    });
                }
            }
            for (g, b) in buckets.iter_mut().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let prepared = prepare(b);
                if prepared == Some(true) {
                    non_monotonic[g] = true;
                }
                for o in 0..outputs {
                    let v = match (name, prepared) {
                        (_, None) => f64::NAN,
                        ("histogram_fraction", Some(_)) => {
                            bucket_fraction(params[0][step], params[1][step], b)
                        }
                        (_, Some(_)) => bucket_quantile(params[o][step], b),
                    };
                    out[g * outputs + o].points.push(StepPoint {
                        step: step as u32,
                        v,
                    });
                }
            }
        }
        for (g, forced) in non_monotonic.iter().enumerate() {
            if *forced {
                self.ctx.annotate(
                    Severity::Info,
                    format!(
                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                        group_names[g]
                    ),
                    arg_position(vector_arg),
                );
            }
        }
        // Native histograms: each sample answers for itself, unless
        // classic buckets of the same series exist too, in which case
        // neither answers (Prometheus cannot tell which one is meant).
        let mut conflicting: Vec<usize> = Vec::new();
        for s in input.iter().filter(|s| !s.histograms.is_empty()) {
            if let Some(&g) = index.get(&s.labels)
                && !conflicting.contains(&g)
            {
                conflicting.push(g);
                self.ctx.annotate(
                        Severity::Warning,
                        format!(
                            "vector contains a mix of classic and native histograms for metric name {:?}",
                            s.labels.metric_name().unwrap_or("")
                        ),
                        arg_position(vector_arg),
                    );
            }
        }
        for &g in &conflicting {
            for o in 0..outputs {
                out[g * outputs + o].points.clear();
            }
        }
        // (metric name, whether the result was NaN) of histograms with NaN
        // observations.
        let mut nan_infos: Vec<(String, bool)> = Vec::new();
        for s in input
            .iter()
            .filter(|s| !s.histograms.is_empty() && !index.contains_key(&s.labels))
        {
            for o in 0..outputs {
                let labels = match &quantile_label {
                    Some(label) => {
                        let mut builder = LabelsBuilder::new(s.labels.clone());
                        let q = params[o].first().copied().unwrap_or(f64::NAN);
                        builder.set(label, &quantile_label_value(q));
                        builder.labels()
                    }
                    None => s.labels.clone(),
                };
                let points = s
                    .histograms
                    .iter()
                    .map(|p| {
                        let step = p.step as usize;
                        let v = if name == "histogram_fraction" {
                            native::histogram_fraction(params[0][step], params[1][step], &p.h)
                        } else {
                            native::histogram_quantile(params[o][step], &p.h)
                        };
                        if native::has_nan_observations(&p.h) {
                            nan_infos.push((
                                s.labels.metric_name().unwrap_or("").to_owned(),
                                v.is_nan(),
                            ));
                        }
                        StepPoint { step: p.step, v }
                    })
                    .collect();
                out.push(StepSeries {
                    labels,
                    drop_name: true,
                    points,
                    histograms: Vec::new(),
                });
            }
        }
        let mut reported: Vec<&(String, bool)> = Vec::new();
        for info in &nan_infos {
            if reported.contains(&info) {
                continue;
            }
            reported.push(info);
            let (metric, is_nan) = info;
            let message = match (name, is_nan) {
                ("histogram_fraction", _) => format!(
                    "input to histogram_fraction has NaN observations, which are excluded from all fractions for metric name {metric:?}"
                ),
                (_, true) => format!(
                    "input to histogram_quantile has NaN observations, result is NaN for metric name {metric:?}"
                ),
                (_, false) => format!(
                    "input to histogram_quantile has NaN observations, result is skewed higher for metric name {metric:?}"
                ),
            };
            self.ctx
                .annotate(Severity::Info, message, arg_position(vector_arg));
        }
        out.retain(|s| !s.points.is_empty());
        self.ctx.release(released);
        self.ctx.hold(out.iter().map(|s| s.points.len()).sum())?;
        Ok(Val::Vector(out))
    }
}

/// Parses a float as Go's `strconv.ParseFloat` accepts it in `le` labels.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        "" => return None,
        _ => {}
    }
    if t != s {
        return None;
    }
    s.parse::<f64>().ok()
}

/// How `histogram_quantiles` spells a quantile in its label: the shortest
/// decimal, with `.0` on whole numbers (`0.0`, `0.25`, `1.0`).
fn quantile_label_value(q: f64) -> String {
    let text = format_float(q);
    if q.is_finite() && !text.contains('.') {
        format!("{text}.0")
    } else {
        text
    }
}
