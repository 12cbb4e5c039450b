//! PromQL functions.
//!
//! Instant-vector functions map points; range-vector functions slide a
//! window over each series' samples ([`Evaluator::range_map`]); a few
//! (`scalar`, `absent`, `sort`, `label_*`, `histogram_*`) need the vector
//! of a step as a whole.

use std::collections::HashMap;

use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use ember_model::sample::Sample as Point;
use ember_model::storage::Severity;

use super::QueryError;
use super::eval::{
    Evaluator, HPoint, HistogramStepPoint, StepPoint, StepSeries, Val, merge_points, strip_parens,
};
use super::native::{self, RateIssues, StepValue, floats_only};
use crate::parser::{Call, Expr};
use ember_model::histogram::{CounterResetHint, FloatHistogram};

/// Every function the engine implements.
const SUPPORTED: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_quantiles",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "double_exponential_smoothing",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "first_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "start",
    "end",
    "step",
    "range",
    "min_of",
    "max_of",
    "info",
];

/// Whether the engine implements function `name`.
pub(super) fn is_supported(name: &str) -> bool {
    SUPPORTED.contains(&name)
}

/// Kahan–Babuška–Neumaier summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_add(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `q`-quantile of `values` (sorted in place), as Prometheus's
/// `quantile`: linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaNs sort first, as Go's sort of `vectorByValueHeap` puts them.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Least-squares fit of the samples with x measured in seconds from
/// `intercept_time`, as Prometheus's `linearRegression`.
fn linear_regression(samples: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, sample) in samples.iter().enumerate() {
        if const_y && i > 0 && sample.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (sample.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_add(x, sum_x, c_x);
        (sum_y, c_y) = kahan_add(sample.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_add(x * sample.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_add(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `rate`, `increase` and `delta`: Prometheus's `extrapolatedRate`.
fn extrapolated_rate(
    samples: &[Point],
    range_start: i64,
    range_end: i64,
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut previous = first.v;
        for sample in &samples[1..] {
            if sample.v < previous {
                result += previous;
            }
            previous = sample.v;
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let mut duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (samples.len() - 1) as f64;
    let threshold = average_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`.
fn instant_value(samples: &[Point], is_rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let last = samples[samples.len() - 1];
    let previous = samples[samples.len() - 2];
    let mut result = if is_rate && last.v < previous.v {
        last.v
    } else {
        last.v - previous.v
    };
    let interval = last.t - previous.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

fn avg(samples: &[Point]) -> f64 {
    // The sum starts at the first sample, so that a lone infinity is its
    // own mean.
    let (mut sum, mut mean, mut c) = (samples[0].v, 0.0, 0.0);
    let mut incremental = false;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let count = (i + 1) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_add(s.v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_add(s.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        let count = samples.len() as f64;
        sum / count + c / count
    }
}

fn variance(samples: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in samples {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan_add(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_add(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn double_exponential_smoothing(samples: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, samples[0].v);
    let mut b = samples[1].v - samples[0].v;
    for (i, sample) in samples.iter().enumerate().skip(1) {
        let x = sf * sample.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn date_part(name: &str, seconds: f64) -> f64 {
    if !seconds.is_finite() {
        return f64::NAN;
    }
    let secs = seconds.floor() as i64;
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    match name {
        "year" => year as f64,
        "month" => f64::from(month),
        "day_of_month" => f64::from(day),
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let leap = i64::from(month > 2 && is_leap(year));
            (cumulative[month as usize - 1] + i64::from(day) + leap) as f64
        }
        "days_in_month" => {
            let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let leap = i64::from(month == 2 && is_leap(year));
            (lengths[month as usize - 1] + leap) as f64
        }
        "hour" => (in_day / 3600) as f64,
        "minute" => (in_day % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// The element-wise function called `name`, resolved once per call so
/// that the per-point loop does not compare strings.
fn simple_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        // Go's sign: NaN and ±0 map to themselves.
        "sgn" => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Natural order of strings (runs of digits compare as numbers), as
/// Prometheus's `natsort` used by `sort_by_label`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

impl Evaluator<'_, '_> {
    pub(super) fn eval_call(&self, node: &Expr, call: &Call) -> Result<Val, QueryError> {
        let name = call.func.name;
        let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
        let arg = |i: usize| {
            args.get(i).copied().ok_or_else(|| {
                QueryError::BadData(format!("missing argument {i} in call to {name}"))
            })
        };
        let position = self.ctx.position_of(node);
        let call_position = position.map(|(p, _)| p);
        let arg_position = |i: usize| position.and_then(|(_, a)| a.get(i).copied());
        let steps = self.steps();
        match name {
            "time" => Ok(Val::Scalar(
                (0..steps).map(|i| self.time(i) as f64 / 1000.0).collect(),
            )),
            // The query's own geometry: the outermost query's start and end,
            // its step and its length (0 for instant queries).
            "start" => Ok(Val::Scalar(vec![
                self.ctx.query_start as f64 / 1000.0;
                steps
            ])),
            "end" => Ok(Val::Scalar(vec![self.ctx.query_end as f64 / 1000.0; steps])),
            "step" => Ok(Val::Scalar(vec![
                self.ctx.query_step as f64 / 1000.0;
                steps
            ])),
            "range" => Ok(Val::Scalar(vec![
                (self.ctx.query_end - self.ctx.query_start)
                    as f64
                    / 1000.0;
                steps
            ])),
            "min_of" | "max_of" => {
                let mut values = self.eval_scalar(arg(0)?)?;
                for e in &args[1..] {
                    let other = self.eval_scalar(e)?;
                    for (v, o) in values.iter_mut().zip(other) {
                        *v = if v.is_nan() || o.is_nan() {
                            f64::NAN
                        } else if name == "min_of" {
                            v.min(o)
                        } else {
                            v.max(o)
                        };
                    }
                }
                Ok(Val::Scalar(values))
            }
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; steps])),
            "vector" => {
                let values = self.eval_scalar(arg(0)?)?;
                Ok(Val::Vector(vec![StepSeries {
                    histograms: Vec::new(),
                    labels: Labels::EMPTY,
                    drop_name: false,
                    points: values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| StepPoint { step: i as u32, v })
                        .collect(),
                }]))
            }
            "scalar" => {
                let series = self.eval_vector(arg(0)?)?;
                let mut values = vec![f64::NAN; steps];
                let mut counts = vec![0u32; steps];
                for s in &series {
                    for p in &s.points {
                        counts[p.step as usize] += 1;
                        values[p.step as usize] = p.v;
                    }
                }
                for (v, c) in values.iter_mut().zip(counts) {
                    if c != 1 {
                        *v = f64::NAN;
                    }
                }
                Ok(Val::Scalar(values))
            }
            "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sin" | "cos"
            | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh" | "acosh"
            | "atanh" | "deg" | "rad" | "sgn" => {
                let f = simple_function(name).ok_or_else(|| {
                    QueryError::Internal(format!("no element-wise function {name}"))
                })?;
                let mut series = self.eval_vector(arg(0)?)?;
                floats_only(&mut series);
                for s in &mut series {
                    s.drop_name = true;
                    s.points.iter_mut().for_each(|p| p.v = f(p.v));
                }
                Ok(Val::Vector(series))
            }
            "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
            | "hour" | "minute" => {
                if args.is_empty() {
                    let values = (0..steps)
                        .map(|i| StepPoint {
                            step: i as u32,
                            v: date_part(name, self.time(i) as f64 / 1000.0),
                        })
                        .collect();
                    return Ok(Val::Vector(vec![StepSeries {
                        histograms: Vec::new(),
                        labels: Labels::EMPTY,
                        drop_name: false,
                        points: values,
                    }]));
                }
                let mut series = self.eval_vector(arg(0)?)?;
                floats_only(&mut series);
                for s in &mut series {
                    s.drop_name = true;
                    s.points.iter_mut().for_each(|p| p.v = date_part(name, p.v));
                }
                Ok(Val::Vector(series))
            }
            "round" => {
                let mut series = self.eval_vector(arg(0)?)?;
                floats_only(&mut series);
                let to_nearest = match args.get(1) {
                    Some(e) => self.eval_scalar(e)?,
                    None => vec![1.0; steps],
                };
                for s in &mut series {
                    s.drop_name = true;
                    for p in &mut s.points {
                        let inverse = 1.0 / to_nearest[p.step as usize];
                        p.v = (p.v * inverse + 0.5).floor() / inverse;
                    }
                }
                Ok(Val::Vector(series))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut series = self.eval_vector(arg(0)?)?;
                floats_only(&mut series);
                let (min, max) = match name {
                    "clamp" => (self.eval_scalar(arg(1)?)?, self.eval_scalar(arg(2)?)?),
                    "clamp_min" => (self.eval_scalar(arg(1)?)?, vec![f64::INFINITY; steps]),
                    _ => (vec![f64::NEG_INFINITY; steps], self.eval_scalar(arg(1)?)?),
                };
                for s in &mut series {
                    s.drop_name = true;
                    s.points.retain_mut(|p| {
                        let (lo, hi) = (min[p.step as usize], max[p.step as usize]);
                        if name == "clamp" && hi < lo {
                            return false;
                        }
                        // max(min, min(max, v)) with Go's NaN semantics.
                        let v = if p.v.is_nan() { p.v } else { p.v.min(hi) };
                        p.v = if v.is_nan() || hi.is_nan() || lo.is_nan() {
                            if lo.is_nan() || hi.is_nan() {
                                f64::NAN
                            } else {
                                v
                            }
                        } else {
                            v.max(lo)
                        };
                        true
                    });
                }
                series.retain(|s| !s.points.is_empty());
                Ok(Val::Vector(series))
            }
            "timestamp" => {
                if let Expr::VectorSelector(vs) = strip_parens(arg(0)?) {
                    let mut series = self.select_instant(vs, true)?;
                    series.iter_mut().for_each(|s| s.drop_name = true);
                    return Ok(Val::Vector(series));
                }
                let mut series = self.eval_vector(arg(0)?)?;
                for s in &mut series {
                    s.drop_name = true;
                    for p in &mut s.points {
                        p.v = self.time(p.step as usize) as f64 / 1000.0;
                    }
                }
                Ok(Val::Vector(series))
            }
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
                if steps > 1 || self.start != self.end {
                    self.ctx.annotate(
                        Severity::Warning,
                        "sort is ineffective for range queries since results are always ordered by labels".to_owned(),
                        call_position,
                    );
                }
                let mut series = self.eval_vector(arg(0)?)?;
                if matches!(name, "sort" | "sort_desc") {
                    floats_only(&mut series);
                }
                let value = |s: &StepSeries| s.points.first().map_or(f64::NAN, |p| p.v);
                match name {
                    "sort" => series.sort_by(|a, b| nan_last(value(a), value(b), false)),
                    "sort_desc" => series.sort_by(|a, b| nan_last(value(a), value(b), true)),
                    _ => {
                        let mut names = Vec::new();
                        for e in &args[1..] {
                            names.push(self.eval_string(e)?);
                        }
                        let descending = name == "sort_by_label_desc";
                        series.sort_by(|a, b| {
                            let mut ord = std::cmp::Ordering::Equal;
                            for n in &names {
                                let (x, y) =
                                    (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                                ord = natural_cmp(x, y);
                                if ord != std::cmp::Ordering::Equal {
                                    break;
                                }
                            }
                            if ord == std::cmp::Ordering::Equal {
                                ord = a.labels.cmp(&b.labels);
                            }
                            if descending { ord.reverse() } else { ord }
                        });
                    }
                }
                Ok(Val::Vector(series))
            }
            "label_replace" => {
                let series = self.eval_vector(arg(0)?)?;
                let dst = self.eval_string(arg(1)?)?;
                let replacement = self.eval_string(arg(2)?)?;
                let src = self.eval_string(arg(3)?)?;
                let pattern = self.eval_string(arg(4)?)?;
                let regex = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
                    QueryError::Execution(format!(
                        "invalid regular expression in label_replace(): {pattern}: {e}"
                    ))
                })?;
                if let Some(spelling) = self.ctx.query.invalid_utf8.get(&dst) {
                    return Err(QueryError::Execution(format!(
                        "invalid destination label name in label_replace(): {spelling}"
                    )));
                }
                if !is_valid_label_name(&dst) {
                    return Err(QueryError::Execution(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let relabelled = series.into_iter().map(|mut s| {
                    let value = s.labels.get(&src).unwrap_or("");
                    if let Some(captures) = regex.captures(value) {
                        let mut expanded = String::new();
                        captures.expand(&replacement, &mut expanded);
                        let mut builder = LabelsBuilder::new(s.labels.clone());
                        if expanded.is_empty() {
                            builder.del(&dst);
                        } else {
                            builder.set(&dst, &expanded);
                        }
                        s.labels = builder.labels();
                        if dst == METRIC_NAME {
                            s.drop_name = false;
                        }
                    }
                    s
                });
                Ok(Val::Vector(merge_same_labels(relabelled.collect())?))
            }
            "label_join" => {
                let series = self.eval_vector(arg(0)?)?;
                let dst = self.eval_string(arg(1)?)?;
                let separator = self.eval_string(arg(2)?)?;
                let mut sources = Vec::new();
                for e in &args[3..] {
                    sources.push(self.eval_string(e)?);
                }
                if !is_valid_label_name(&dst) || self.ctx.query.invalid_utf8.contains_key(&dst) {
                    return Err(QueryError::Execution(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let joined = series.into_iter().map(|mut s| {
                    let value = sources
                        .iter()
                        .map(|n| s.labels.get(n).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(&separator);
                    let mut builder = LabelsBuilder::new(s.labels.clone());
                    if value.is_empty() {
                        builder.del(&dst);
                    } else {
                        builder.set(&dst, &value);
                    }
                    s.labels = builder.labels();
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                    s
                });
                Ok(Val::Vector(merge_same_labels(joined.collect())?))
            }
            "absent" => {
                let series = self.eval_vector(arg(0)?)?;
                let mut present = vec![false; steps];
                for s in &series {
                    for p in &s.points {
                        present[p.step as usize] = true;
                    }
                    for p in &s.histograms {
                        present[p.step as usize] = true;
                    }
                }
                let points: Vec<StepPoint> = present
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !**p)
                    .map(|(i, _)| StepPoint {
                        step: i as u32,
                        v: 1.0,
                    })
                    .collect();
                Ok(Val::Vector(absent_result(arg(0)?, points)))
            }
            "absent_over_time" => {
                let series =
                    self.range_map_mixed(name, arg(0)?, true, &mut |_, window, hs, _, _| {
                        (!window.is_empty() || !hs.is_empty()).then_some(StepValue::F(1.0))
                    })?;
                let mut present = vec![false; steps];
                for s in &series {
                    for p in &s.points {
                        present[p.step as usize] = true;
                    }
                }
                let points: Vec<StepPoint> = present
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !**p)
                    .map(|(i, _)| StepPoint {
                        step: i as u32,
                        v: 1.0,
                    })
                    .collect();
                Ok(Val::Vector(absent_result(arg(0)?, points)))
            }
            "rate" | "increase" | "delta" => {
                let window = self.window_of(arg(0)?)?;
                let is_counter = name != "delta";
                let is_rate = name == "rate";
                let mut issues = RateIssues::default();
                let mut mixed: Vec<String> = Vec::new();
                let mut not_counter: Vec<String> = Vec::new();
                let mut not_gauge: Vec<String> = Vec::new();
                let mut mixed_schemas: Vec<String> = Vec::new();
                let result = self.range_map_split(
                    name,
                    arg(0)?,
                    true,
                    &mut |_, samples, _, reference| {
                        extrapolated_rate(
                            samples,
                            reference - window.range,
                            reference,
                            window.range,
                            is_counter,
                            is_rate,
                        )
                    },
                    &mut |_, samples, histograms, labels, reference| {
                        if histograms.is_empty() {
                            return extrapolated_rate(
                                samples,
                                reference - window.range,
                                reference,
                                window.range,
                                is_counter,
                                is_rate,
                            )
                            .map(StepValue::F);
                        }
                        let metric = labels.metric_name().unwrap_or("").to_owned();
                        if !samples.is_empty() {
                            push_unique(&mut mixed, metric);
                            return None;
                        }
                        if histograms.len() < 2 {
                            return None;
                        }
                        let mut found = RateIssues::default();
                        let increase =
                            native::histogram_increase(histograms, is_counter, &mut found);
                        if found.not_counter {
                            push_unique(&mut not_counter, metric.clone());
                        }
                        if found.not_gauge {
                            push_unique(&mut not_gauge, metric.clone());
                        }
                        if found.mixed_schemas {
                            push_unique(&mut mixed_schemas, metric);
                        }
                        issues.reconciled |= found.reconciled;
                        let mut h = increase?;
                        let factor = extrapolation_factor(
                            histograms[0].t,
                            histograms[histograms.len() - 1].t,
                            histograms.len(),
                            reference - window.range,
                            reference,
                            window.range,
                            is_rate,
                            is_counter.then_some((histograms[0].h.count, h.count)),
                        );
                        h.mul(factor);
                        Some(StepValue::H(Box::new(h)))
                    },
                )?;
                for metric in mixed {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!(
                            "encountered a mix of histograms and floats for metric name {metric:?}"
                        ),
                        arg_position(0),
                    );
                }
                for metric in not_counter {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!("this native histogram metric is not a counter: {metric:?}"),
                        arg_position(0),
                    );
                }
                for metric in not_gauge {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!("this native histogram metric is not a gauge: {metric:?}"),
                        arg_position(0),
                    );
                }
                for metric in mixed_schemas {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"),
                        arg_position(0),
                    );
                }
                if issues.reconciled {
                    self.ctx.annotate(
                        Severity::Info,
                        "mismatched custom buckets were reconciled during subtraction".to_owned(),
                        arg_position(0),
                    );
                }
                // Checked once per output series rather than per window.
                if is_counter {
                    let mut reported: Vec<&str> = Vec::new();
                    for series in result.iter().filter(|s| !s.points.is_empty()) {
                        if let Some(metric) = series.labels.metric_name()
                            && !["_total", "_sum", "_count", "_bucket"]
                                .iter()
                                .any(|suffix| metric.ends_with(suffix))
                            && !reported.contains(&metric)
                        {
                            reported.push(metric);
                            self.ctx.annotate(
                                Severity::Info,
                                format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"),
                                arg_position(0),
                            );
                        }
                    }
                }
                Ok(Val::Vector(result))
            }
            "irate" | "idelta" => {
                let is_rate = name == "irate";
                let mut warnings: Vec<String> = Vec::new();
                let mut reconciled = false;
                let result = self.range_map_split(
                    name,
                    arg(0)?,
                    true,
                    &mut |_, samples, _, _| instant_value(samples, is_rate),
                    &mut |_, samples, histograms, labels, _| {
                        if histograms.is_empty() {
                            return instant_value(samples, is_rate).map(StepValue::F);
                        }
                        let metric = labels.metric_name().unwrap_or("");
                        let (value, warning, merged) =
                            instant_histogram_value(samples, histograms, is_rate, metric);
                        if let Some(warning) = warning {
                            push_unique(&mut warnings, warning);
                        }
                        reconciled |= merged;
                        value
                    },
                )?;
                for warning in warnings {
                    self.ctx
                        .annotate(Severity::Warning, warning, arg_position(0));
                }
                if reconciled {
                    self.ctx.annotate(
                        Severity::Info,
                        "mismatched custom buckets were reconciled during subtraction".to_owned(),
                        arg_position(0),
                    );
                }
                Ok(Val::Vector(result))
            }
            "deriv" => Ok(Val::Vector(self.range_map(
                name,
                arg(0)?,
                true,
                &mut |_, samples, _, _| {
                    (samples.len() >= 2).then(|| linear_regression(samples, samples[0].t).0)
                },
            )?)),
            "predict_linear" => {
                let duration = self.eval_scalar(arg(1)?)?;
                Ok(Val::Vector(self.range_map(
                    name,
                    arg(0)?,
                    true,
                    &mut |step, samples, _, _| {
                        if samples.len() < 2 {
                            return None;
                        }
                        let (slope, intercept) = linear_regression(samples, self.time(step));
                        Some(slope * duration[step] + intercept)
                    },
                )?))
            }
            "double_exponential_smoothing" => {
                let sf = self.eval_scalar(arg(1)?)?;
                let tf = self.eval_scalar(arg(2)?)?;
                let mut error = None;
                let result = self.range_map(name, arg(0)?, true, &mut |step, samples, _, _| {
                    let (sf, tf) = (sf[step], tf[step]);
                    if sf <= 0.0 || sf >= 1.0 {
                        error.get_or_insert_with(|| {
                            format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")
                        });
                        return None;
                    }
                    if tf <= 0.0 || tf >= 1.0 {
                        error.get_or_insert_with(|| {
                            format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")
                        });
                        return None;
                    }
                    double_exponential_smoothing(samples, sf, tf)
                })?;
                match error {
                    Some(message) => Err(QueryError::Execution(message)),
                    None => Ok(Val::Vector(result)),
                }
            }
            "quantile_over_time" => {
                let q = self.eval_scalar(arg(0)?)?;
                let mut buffer = Vec::new();
                let mut warned = false;
                let result = self.range_map(name, arg(1)?, true, &mut |step, samples, _, _| {
                    if samples.is_empty() {
                        return None;
                    }
                    let q = q[step];
                    if !(0.0..=1.0).contains(&q) {
                        warned = true;
                    }
                    buffer.clear();
                    buffer.extend(samples.iter().map(|s| s.v));
                    Some(quantile(q, &mut buffer))
                })?;
                if warned && let Some(q) = q.iter().find(|q| !(0.0..=1.0).contains(*q)) {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!(
                            "quantile value should be between 0 and 1, got {}",
                            super::aggregate::go_g(*q)
                        ),
                        arg_position(0),
                    );
                }
                Ok(Val::Vector(result))
            }
            "mad_over_time" => {
                let mut buffer = Vec::new();
                Ok(Val::Vector(self.range_map(
                    name,
                    arg(0)?,
                    true,
                    &mut |_, samples, _, _| {
                        if samples.is_empty() {
                            return None;
                        }
                        if samples.iter().any(|s| s.v.is_nan()) {
                            return Some(f64::NAN);
                        }
                        buffer.clear();
                        buffer.extend(samples.iter().map(|s| s.v));
                        let median = quantile(0.5, &mut buffer);
                        buffer.iter_mut().for_each(|v| *v = (*v - median).abs());
                        Some(quantile(0.5, &mut buffer))
                    },
                )?))
            }
            "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "changes"
            | "resets"
            | "present_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time" => {
                let f = over_time_function(name)
                    .ok_or_else(|| QueryError::Internal(format!("no range function {name}")))?;
                let mut notes = OverTimeNotes::default();
                let result = self.range_map_split(
                    name,
                    arg(0)?,
                    true,
                    &mut |_, samples, _, _| (!samples.is_empty()).then(|| f(samples)),
                    &mut |_, samples, histograms, labels, _| {
                        if histograms.is_empty() {
                            return (!samples.is_empty()).then(|| StepValue::F(f(samples)));
                        }
                        let metric = labels.metric_name().unwrap_or("").to_owned();
                        over_time_with_histograms(name, f, samples, histograms, metric, &mut notes)
                    },
                )?;
                let OverTimeNotes {
                    mixed,
                    ignored,
                    reconciled,
                } = notes;
                if reconciled {
                    self.ctx.annotate(
                        Severity::Info,
                        "mismatched custom buckets were reconciled during aggregation".to_owned(),
                        arg_position(0),
                    );
                }
                for metric in mixed {
                    self.ctx.annotate(
                        Severity::Warning,
                        format!(
                            "encountered a mix of histograms and floats for metric name {metric:?}"
                        ),
                        arg_position(0),
                    );
                }
                for metric in ignored {
                    self.ctx.annotate(
                        Severity::Info,
                        format!("ignored histograms in a range containing both floats and histograms for metric name {metric:?}"),
                        arg_position(0),
                    );
                }
                Ok(Val::Vector(result))
            }
            "last_over_time" | "first_over_time" => {
                let first = name == "first_over_time";
                Ok(Val::Vector(self.range_map_split(
                    name,
                    arg(0)?,
                    false,
                    &mut |_, samples, _, _| {
                        if first {
                            samples.first()
                        } else {
                            samples.last()
                        }
                        .map(|s| s.v)
                    },
                    &mut |_, samples, histograms, _, _| {
                        let float = if first {
                            samples.first()
                        } else {
                            samples.last()
                        };
                        let histogram = if first {
                            histograms.first()
                        } else {
                            histograms.last()
                        };
                        match (float, histogram) {
                            (Some(f), Some(h)) if (f.t < h.t) == first => Some(StepValue::F(f.v)),
                            (_, Some(h)) => Some(StepValue::H(Box::new(h.h.clone()))),
                            (Some(f), None) => Some(StepValue::F(f.v)),
                            (None, None) => None,
                        }
                    },
                )?))
            }
            "info" => self.eval_info(&args),
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                self.eval_histogram_function(name, &args, position)
            }
            "histogram_avg" | "histogram_count" | "histogram_sum" | "histogram_stddev"
            | "histogram_stdvar" => {
                // These read native histograms only; float samples are
                // ignored.
                let series = self.eval_vector(arg(0)?)?;
                let released: usize = series
                    .iter()
                    .map(|s| s.points.len() + s.histograms.len())
                    .sum();
                self.ctx.release(released);
                let read: fn(&FloatHistogram) -> f64 = match name {
                    "histogram_avg" => |h| h.sum / h.count,
                    "histogram_count" => |h| h.count,
                    "histogram_sum" => |h| h.sum,
                    "histogram_stddev" => |h| native::histogram_variance(h).sqrt(),
                    _ => native::histogram_variance,
                };
                let mut out: Vec<StepSeries> = series
                    .into_iter()
                    .filter(|s| !s.histograms.is_empty())
                    .map(|s| StepSeries {
                        points: s
                            .histograms
                            .iter()
                            .map(|p| StepPoint {
                                step: p.step,
                                v: read(&p.h),
                            })
                            .collect(),
                        labels: s.labels,
                        drop_name: true,
                        histograms: Vec::new(),
                    })
                    .collect();
                out.retain(|s| !s.points.is_empty());
                self.ctx.hold(out.iter().map(|s| s.points.len()).sum())?;
                Ok(Val::Vector(out))
            }
            other => Err(QueryError::BadData(format!("unknown function {other:?}"))),
        }
    }
}

/// Adds `item` unless present (annotations name each metric once).
fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The factor by which `extrapolatedRate` scales the increase between the
/// first sample (at `first_t`) and the last (at `last_t`) of a window of
/// `samples` samples. For a counter, `zero` is the first sample's count
/// and the increase's: the extrapolation stops where the count would
/// reach zero, as Prometheus does for histogram counters.
#[allow(clippy::too_many_arguments)]
fn extrapolation_factor(
    first_t: i64,
    last_t: i64,
    samples: usize,
    range_start: i64,
    range_end: i64,
    range: i64,
    is_rate: bool,
    zero: Option<(f64, f64)>,
) -> f64 {
    let mut duration_to_start = (first_t - range_start) as f64 / 1000.0;
    let mut duration_to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_between = sampled_interval / (samples - 1) as f64;
    let threshold = average_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if let Some((first, increase)) = zero
        && increase > 0.0
        && first >= 0.0
    {
        let duration_to_zero = sampled_interval * (first / increase);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    factor
}

/// `irate`/`idelta` over a window holding histograms: from the last two
/// samples, which must both be histograms. Returns the value, a warning,
/// and whether custom bucket bounds were reconciled (an info).
fn instant_histogram_value(
    samples: &[Point],
    histograms: &[HPoint],
    is_rate: bool,
    metric: &str,
) -> (Option<StepValue>, Option<String>, bool) {
    let mixed = || format!("encountered a mix of histograms and floats for metric name {metric:?}");
    let last = &histograms[histograms.len() - 1];
    let newest_float = samples.last().map(|p| p.t);
    if newest_float.is_some_and(|t| t > last.t) {
        return (None, Some(mixed()), false);
    }
    if histograms.len() < 2 {
        return (None, newest_float.map(|_| mixed()), false);
    }
    let previous = &histograms[histograms.len() - 2];
    if newest_float.is_some_and(|t| t > previous.t) {
        return (None, Some(mixed()), false);
    }
    let gauge = CounterResetHint::Gauge;
    let mut reconciled = false;
    let mut result = if is_rate && last.h.detect_reset(&previous.h) {
        last.h.clone()
    } else {
        match last.h.sub(&previous.h) {
            Ok(combined) => {
                reconciled = combined.custom_buckets_reconciled;
                combined.histogram
            }
            Err(_) => {
                return (
                    None,
                    Some(format!(
                        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"
                    )),
                    false,
                );
            }
        }
    };
    let mut warning = None;
    if is_rate && (last.h.counter_reset_hint == gauge || previous.h.counter_reset_hint == gauge) {
        warning = Some(format!(
            "this native histogram metric is not a counter: {metric:?}"
        ));
    }
    if !is_rate && (last.h.counter_reset_hint != gauge || previous.h.counter_reset_hint != gauge) {
        warning = Some(format!(
            "this native histogram metric is not a gauge: {metric:?}"
        ));
    }
    let interval = last.t - previous.t;
    if interval == 0 {
        return (None, warning, reconciled);
    }
    if is_rate {
        result.div(interval as f64 / 1000.0);
    }
    result.counter_reset_hint = gauge;
    result.compact(0);
    (Some(StepValue::H(Box::new(result))), warning, reconciled)
}

/// What the `*_over_time` functions found for annotations.
#[derive(Default)]
struct OverTimeNotes {
    /// Metrics whose windows mixed floats and histograms where that is an
    /// error.
    mixed: Vec<String>,
    /// Metrics whose histograms were ignored beside floats.
    ignored: Vec<String>,
    /// Custom bucket bounds were reconciled.
    reconciled: bool,
}

/// The `*_over_time` functions, `changes` and `resets` over a window that
/// holds histograms.
fn over_time_with_histograms(
    name: &str,
    f: fn(&[Point]) -> f64,
    samples: &[Point],
    histograms: &[HPoint],
    metric: String,
    notes: &mut OverTimeNotes,
) -> Option<StepValue> {
    match name {
        "count_over_time" => Some(StepValue::F((samples.len() + histograms.len()) as f64)),
        "present_over_time" => Some(StepValue::F(1.0)),
        "sum_over_time" | "avg_over_time" => {
            if !samples.is_empty() {
                push_unique(&mut notes.mixed, metric);
                return None;
            }
            let mut sum = histograms[0].h.clone();
            // The `sum` field is added with Kahan compensation, as
            // Prometheus does for floats and histogram sums alike.
            let (mut total, mut compensation) = (sum.sum, 0.0);
            for p in &histograms[1..] {
                let combined = sum.add(&p.h).ok()?;
                notes.reconciled |= combined.custom_buckets_reconciled;
                sum = combined.histogram;
                (total, compensation) = kahan_add(p.h.sum, total, compensation);
            }
            sum.sum = total + compensation;
            if name == "avg_over_time" {
                let n = histograms.len() as f64;
                if !sum.count.is_finite() && histograms.iter().all(|p| p.h.count.is_finite()) {
                    // The plain sum overflowed: Prometheus's incremental
                    // mean stays finite.
                    let mut mean = native::incremental_mean(histograms.iter().map(|p| &p.h))?;
                    mean.sum = sum.sum / n;
                    sum = mean;
                } else {
                    sum.div(n);
                }
            }
            sum.counter_reset_hint = CounterResetHint::Gauge;
            sum.compact(0);
            Some(StepValue::H(Box::new(sum)))
        }
        "ts_of_last_over_time" | "ts_of_first_over_time" => {
            let float = if name == "ts_of_last_over_time" {
                samples.last()
            } else {
                samples.first()
            }
            .map(|p| p.t);
            let histogram = if name == "ts_of_last_over_time" {
                histograms.last()
            } else {
                histograms.first()
            }
            .map(|p| p.t);
            let t = match (float, histogram) {
                (Some(a), Some(b)) if name == "ts_of_last_over_time" => a.max(b),
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            Some(StepValue::F(t as f64 / 1000.0))
        }
        "changes" | "resets" => {
            // Floats and histograms in time order.
            let mut merged: Vec<(i64, Option<&FloatHistogram>, f64)> = samples
                .iter()
                .map(|p| (p.t, None, p.v))
                .chain(histograms.iter().map(|p| (p.t, Some(&p.h), 0.0)))
                .collect();
            merged.sort_by_key(|m| m.0);
            let mut count = 0.0;
            for pair in merged.windows(2) {
                let (previous, current) = (&pair[0], &pair[1]);
                let counted = match (previous.1, current.1, name) {
                    (Some(a), Some(b), "changes") => !a.equals(b),
                    (Some(a), Some(b), _) => b.detect_reset(a),
                    (None, None, "changes") => {
                        !(previous.2 == current.2 || previous.2.is_nan() && current.2.is_nan())
                    }
                    (None, None, _) => current.2 < previous.2,
                    // A switch between floats and histograms is a change
                    // and, as in Prometheus, a reset.
                    _ => true,
                };
                if counted {
                    count += 1.0;
                }
            }
            Some(StepValue::F(count))
        }
        _ => {
            if samples.is_empty() {
                return None;
            }
            push_unique(&mut notes.ignored, metric);
            Some(StepValue::F(f(samples)))
        }
    }
}

fn nan_last(a: f64, b: f64, descending: bool) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ if descending => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// The `*_over_time`-style aggregate of a non-empty window called
/// `name`, resolved once per call.
fn over_time_function(name: &str) -> Option<fn(&[Point]) -> f64> {
    Some(match name {
        "avg_over_time" => avg,
        "sum_over_time" => |samples| {
            let (sum, c) = samples
                .iter()
                .fold((0.0, 0.0), |(sum, c), s| kahan_add(s.v, sum, c));
            sum + c
        },
        "count_over_time" => |samples| samples.len() as f64,
        "present_over_time" => |_| 1.0,
        "min_over_time" => |samples| {
            samples.iter().fold(
                samples[0].v,
                |m, s| {
                    if s.v < m || m.is_nan() { s.v } else { m }
                },
            )
        },
        "max_over_time" => |samples| {
            samples.iter().fold(
                samples[0].v,
                |m, s| {
                    if s.v > m || m.is_nan() { s.v } else { m }
                },
            )
        },
        "stddev_over_time" => |samples| variance(samples).sqrt(),
        "stdvar_over_time" => variance,
        "changes" => |samples| {
            samples
                .windows(2)
                .filter(|w| !(w[1].v == w[0].v || (w[1].v.is_nan() && w[0].v.is_nan())))
                .count() as f64
        },
        "resets" => |samples| samples.windows(2).filter(|w| w[1].v < w[0].v).count() as f64,
        "ts_of_last_over_time" => |samples| samples[samples.len() - 1].t as f64 / 1000.0,
        "ts_of_first_over_time" => |samples| samples[0].t as f64 / 1000.0,
        "ts_of_max_over_time" => |samples| timestamp_of_extreme(samples, true),
        "ts_of_min_over_time" => |samples| timestamp_of_extreme(samples, false),
        _ => return None,
    })
}

/// The timestamp (s) of the last maximum (or minimum) of the window; NaNs
/// lose to any number.
fn timestamp_of_extreme(samples: &[Point], max: bool) -> f64 {
    let mut best = samples[0];
    for s in samples {
        let better = if max { s.v >= best.v } else { s.v <= best.v };
        if better || best.v.is_nan() {
            best = *s;
        }
    }
    best.t as f64 / 1000.0
}

/// The labels `absent(expr)` reports: the equality matchers of a selector
/// argument (a name used by two of them is left out).
fn absent_result(expr: &Expr, points: Vec<StepPoint>) -> Vec<StepSeries> {
    if points.is_empty() {
        return Vec::new();
    }
    let selector = match strip_parens(expr) {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    if let Some(vs) = selector {
        for m in &vs.matchers.matchers {
            *seen.entry(m.name.clone()).or_default() += 1;
        }
        for m in &vs.matchers.matchers {
            if m.name != METRIC_NAME
                && matches!(m.op, crate::parser::AstMatchOp::Equal)
                && seen.get(&m.name) == Some(&1)
            {
                pairs.push((m.name.clone(), m.value.clone()));
            }
        }
    }
    let labels = Labels::new(pairs).unwrap_or_default();
    vec![StepSeries {
        histograms: Vec::new(),
        labels,
        drop_name: false,
        points,
    }]
}

/// Merges series that share labels after relabelling; two values for the
/// same labels at one step are an error, as in Prometheus.
fn merge_same_labels(series: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    let mut index: HashMap<(Labels, bool), usize> = HashMap::new();
    for s in series {
        let key = (s.labels.clone(), s.drop_name);
        match index.get(&key) {
            Some(&i) => {
                let target = &mut out[i];
                let steps = |points: &[StepPoint], histograms: &[HistogramStepPoint]| {
                    points
                        .iter()
                        .map(|p| p.step)
                        .chain(histograms.iter().map(|p| p.step))
                        .collect::<std::collections::HashSet<u32>>()
                };
                if !s.histograms.is_empty() || !target.histograms.is_empty() {
                    let mine = steps(&target.points, &target.histograms);
                    if steps(&s.points, &s.histograms)
                        .iter()
                        .any(|step| mine.contains(step))
                    {
                        return Err(QueryError::Execution(
                            "vector cannot contain metrics with the same labelset".into(),
                        ));
                    }
                    target.histograms.extend(s.histograms);
                    target.histograms.sort_by_key(|p| p.step);
                }
                target.points = merge_points(std::mem::take(&mut target.points), s.points)?;
            }
            None => {
                index.insert(key, out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}
