//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`,
//! `limitk`, `limit_ratio`, ...), evaluated step by step with one cursor
//! per input series and the group of each series computed once.

use std::collections::HashMap;

use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use ember_model::storage::Severity;

use super::QueryError;
use super::binary::point_at;
use super::eval::{Evaluator, HistogramStepPoint, StepPoint, StepSeries, Val};
use super::functions::{kahan_add, quantile};
use crate::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use crate::parser::{AggregateExpr, Expr, LabelModifier};
use crate::value::format_float;
use ember_model::histogram::{CounterResetHint, FloatHistogram};

/// Running state of a `sum`/`avg`/... group at one step.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: f64,
    value: f64,
    kahan: f64,
    mean: f64,
    incremental: bool,
}

impl Evaluator<'_, '_> {
    pub(super) fn eval_aggregate(
        &self,
        node: &Expr,
        agg: &AggregateExpr,
    ) -> Result<Val, QueryError> {
        let op = agg.op.id();
        let param_position = self
            .ctx
            .position_of(node)
            .and_then(|(_, args)| args.first().copied());
        // Parameters are evaluated before the aggregated expression, as in
        // Prometheus.
        let mut scalar_param = None;
        let mut label_param = None;
        if let Some(param) = &agg.param {
            if op == T_COUNT_VALUES {
                label_param = Some(self.eval_string(param)?);
            } else {
                scalar_param = Some(self.eval_scalar(param)?);
            }
        }
        let mut input = self.eval_vector(&agg.expr)?;
        let has_histograms = input.iter().any(|s| !s.histograms.is_empty());
        // Histogram points of every input series by step, for the
        // operators that pass them through (`limitk`, `limit_ratio`).
        let mut passed_histograms: Vec<HashMap<u32, Box<FloatHistogram>>> = Vec::new();
        if has_histograms {
            let position = self.ctx.position_of(node).map(|(p, _)| p);
            match op {
                T_COUNT | T_GROUP | T_LIMITK | T_LIMIT_RATIO => {
                    // These look at presence, not values: histogram points
                    // take part as placeholder floats.
                    for s in &mut input {
                        let histograms = std::mem::take(&mut s.histograms);
                        let placeholders: Vec<StepPoint> = histograms
                            .iter()
                            .map(|p| StepPoint {
                                step: p.step,
                                v: 0.0,
                            })
                            .collect();
                        s.points = merge_steps(std::mem::take(&mut s.points), placeholders);
                        if op == T_LIMITK || op == T_LIMIT_RATIO {
                            let map: HashMap<u32, Box<FloatHistogram>> =
                                histograms.into_iter().map(|p| (p.step, p.h)).collect();
                            passed_histograms.push(map);
                        }
                    }
                }
                T_MIN | T_MAX | T_STDDEV | T_STDVAR | T_QUANTILE | T_TOPK | T_BOTTOMK => {
                    self.ctx.annotate(
                        Severity::Info,
                        format!(
                            "ignored histogram in {} aggregation",
                            agg.op.to_string().to_ascii_lowercase()
                        ),
                        position,
                    );
                }
                _ => {}
            }
        }
        let (by, names): (bool, Vec<String>) = match &agg.modifier {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (true, Vec::new()),
        };
        let mut without_names = names.clone();
        without_names.push(METRIC_NAME.to_owned());
        let group_labels = |labels: &Labels| -> Labels {
            if by {
                labels.keep_only(&names)
            } else {
                labels.without(&without_names)
            }
        };
        // Group of every input series, and groups in first-seen order.
        let mut groups: Vec<Labels> = Vec::new();
        let mut group_drop: Vec<bool> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series_group = Vec::with_capacity(input.len());
        for s in &input {
            let key = group_labels(&s.labels);
            let g = match index.get(&key) {
                Some(&g) => g,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(key);
                    group_drop.push(false);
                    groups.len() - 1
                }
            };
            // A group keeps a name that is still to be dropped only if the
            // grouping kept `__name__`.
            if s.drop_name && groups[g].has(METRIC_NAME) {
                group_drop[g] = true;
            }
            series_group.push(g);
        }
        let steps = self.steps();
        let mut cursors = vec![0usize; input.len()];
        let released: usize = input
            .iter()
            .map(|s| s.points.len() + s.histograms.len())
            .sum();

        let result = match op {
            T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {
                let mut out: Vec<StepSeries> = groups
                    .iter()
                    .zip(&group_drop)
                    .map(|(labels, &drop_name)| StepSeries {
                        histograms: Vec::new(),
                        labels: labels.clone(),
                        drop_name,
                        points: Vec::new(),
                    })
                    .collect();
                // Steps are processed in blocks, series by series within a
                // block: each series' points are read sequentially instead
                // of one point per series per step, which keeps range
                // queries cache-friendly. Accumulators are bounded to about
                // 256k (10 MB) whatever the number of groups. Within a
                // group and step, series are still added in input order, so
                // results are bit-identical to a step-by-step evaluation.
                let block = (262_144 / groups.len().max(1)).clamp(1, 64);
                let mut acc = vec![Acc::default(); groups.len() * block];
                for block_start in (0..steps).step_by(block) {
                    self.ctx.check()?;
                    let block_end = (block_start + block).min(steps);
                    acc.iter_mut().for_each(|a| *a = Acc::default());
                    for (i, s) in input.iter().enumerate() {
                        let base = series_group[i] * block;
                        let points = &s.points[cursors[i]..];
                        let taken = points.partition_point(|p| (p.step as usize) < block_end);
                        for p in &points[..taken] {
                            accumulate(op, &mut acc[base + p.step as usize - block_start], p.v);
                        }
                        cursors[i] += taken;
                    }
                    for (g, series) in out.iter_mut().enumerate() {
                        for (offset, a) in acc[g * block..g * block + (block_end - block_start)]
                            .iter()
                            .enumerate()
                        {
                            if a.count == 0.0 {
                                continue;
                            }
                            series.points.push(StepPoint {
                                step: (block_start + offset) as u32,
                                v: finish(op, a),
                            });
                        }
                    }
                }
                if has_histograms && matches!(op, T_SUM | T_AVG) {
                    self.aggregate_histograms(node, op, &input, &series_group, &mut out);
                }
                out.retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
                out
            }
            T_QUANTILE => {
                let q = scalar_param.unwrap_or_default();
                let mut out: Vec<StepSeries> = groups
                    .iter()
                    .zip(&group_drop)
                    .map(|(labels, &drop_name)| StepSeries {
                        histograms: Vec::new(),
                        labels: labels.clone(),
                        drop_name,
                        points: Vec::new(),
                    })
                    .collect();
                let mut values: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
                for step in 0..steps {
                    self.ctx.check()?;
                    values.iter_mut().for_each(Vec::clear);
                    for (i, s) in input.iter().enumerate() {
                        if let Some(v) = point_at(&s.points, &mut cursors[i], step) {
                            values[series_group[i]].push(v);
                        }
                    }
                    let q = q.get(step).copied().unwrap_or(f64::NAN);
                    if values.iter().any(|v| !v.is_empty())
                        && (q.is_nan() || !(0.0..=1.0).contains(&q))
                    {
                        self.ctx.annotate(
                            Severity::Warning,
                            format!("quantile value should be between 0 and 1, got {}", go_g(q)),
                            param_position,
                        );
                    }
                    for (g, v) in values.iter_mut().enumerate() {
                        if v.is_empty() {
                            continue;
                        }
                        out[g].points.push(StepPoint {
                            step: step as u32,
                            v: quantile(q, v),
                        });
                    }
                }
                out.retain(|s| !s.points.is_empty());
                out
            }
            T_COUNT_VALUES => {
                let label = label_param.unwrap_or_default();
                if let Some(spelling) = self.ctx.query.invalid_utf8.get(&label) {
                    return Err(QueryError::Execution(format!(
                        "invalid label name {spelling}"
                    )));
                }
                if label.is_empty() {
                    return Err(QueryError::Execution(format!(
                        "invalid label name {label:?}"
                    )));
                }
                let mut out: Vec<StepSeries> = Vec::new();
                let mut out_index: HashMap<Labels, usize> = HashMap::new();
                let mut counts: HashMap<(usize, u64), (String, f64)> = HashMap::new();
                let mut order: Vec<(usize, u64)> = Vec::new();
                for step in 0..steps {
                    self.ctx.check()?;
                    counts.clear();
                    order.clear();
                    for (i, s) in input.iter().enumerate() {
                        if let Some(v) = point_at(&s.points, &mut cursors[i], step) {
                            let key = (series_group[i], v.to_bits());
                            counts
                                .entry(key)
                                .or_insert_with(|| {
                                    order.push(key);
                                    (format_float(v), 0.0)
                                })
                                .1 += 1.0;
                        }
                        // A histogram counts under its text form, as in
                        // Prometheus.
                        if let Ok(index) = s
                            .histograms
                            .binary_search_by_key(&(step as u32), |p| p.step)
                        {
                            let text = s.histograms[index].h.to_string();
                            let key = (series_group[i], histogram_key(&text));
                            counts
                                .entry(key)
                                .or_insert_with(|| {
                                    order.push(key);
                                    (text, 0.0)
                                })
                                .1 += 1.0;
                        }
                    }
                    for key in &order {
                        let (value, count) = &counts[key];
                        let mut builder = LabelsBuilder::new(groups[key.0].clone());
                        builder.set(&label, value);
                        let labels = builder.labels();
                        let o = *out_index.entry(labels.clone()).or_insert_with(|| {
                            out.push(StepSeries {
                                histograms: Vec::new(),
                                labels,
                                drop_name: false,
                                points: Vec::new(),
                            });
                            out.len() - 1
                        });
                        // Groups that differ only in the value label (`by`
                        // it, or not `without` it) merge into one series.
                        match out[o].points.last_mut() {
                            Some(last) if last.step == step as u32 => last.v += *count,
                            _ => out[o].points.push(StepPoint {
                                step: step as u32,
                                v: *count,
                            }),
                        }
                    }
                }
                out
            }
            T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
                let params = scalar_param.unwrap_or_default();
                let mut selected: Vec<Vec<StepPoint>> = vec![Vec::new(); input.len()];
                let mut first_emitted: Vec<Option<(usize, usize)>> = vec![None; input.len()];
                let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); groups.len()];
                let mut emitted = 0usize;
                for step in 0..steps {
                    self.ctx.check()?;
                    members.iter_mut().for_each(Vec::clear);
                    for (i, s) in input.iter().enumerate() {
                        if let Some(v) = point_at(&s.points, &mut cursors[i], step) {
                            members[series_group[i]].push((i, v));
                        }
                    }
                    // The parameter is checked at every step, with or
                    // without input, as Prometheus does.
                    let param = params.get(step).copied().unwrap_or(f64::NAN);
                    if param.is_nan() {
                        return Err(QueryError::Execution(
                            if op == T_LIMIT_RATIO {
                                "Ratio value is NaN"
                            } else {
                                "Parameter value is NaN"
                            }
                            .into(),
                        ));
                    }
                    if members.iter().all(Vec::is_empty) {
                        continue;
                    }
                    let mut chosen: Vec<(usize, f64)> = Vec::new();
                    if op == T_LIMIT_RATIO {
                        if param.is_nan() {
                            return Err(QueryError::Execution("Ratio value is NaN".into()));
                        }
                        let mut ratio = param;
                        if !(-1.0..=1.0).contains(&ratio) {
                            let capped = ratio.clamp(-1.0, 1.0);
                            self.ctx.annotate(
                                Severity::Warning,
                                format!(
                                    "ratio value should be between -1 and 1, got {}, capping to {}",
                                    go_g(ratio),
                                    go_g(capped)
                                ),
                                param_position,
                            );
                            ratio = capped;
                        }
                        for group in &members {
                            for &(i, v) in group {
                                let offset = input[i].labels.hash() as f64 / u64::MAX as f64;
                                if (ratio >= 0.0 && offset < ratio)
                                    || (ratio < 0.0 && offset >= 1.0 + ratio)
                                {
                                    chosen.push((i, v));
                                }
                            }
                        }
                    } else {
                        let k = k_param(param)?;
                        if k < 1 {
                            continue;
                        }
                        for group in &mut members {
                            match op {
                                T_TOPK => group.sort_by(|a, b| desc_nan_last(a.1, b.1)),
                                T_BOTTOMK => group.sort_by(|a, b| asc_nan_last(a.1, b.1)),
                                _ => {}
                            }
                            let k = usize::try_from(k).unwrap_or(usize::MAX).min(group.len());
                            chosen.extend_from_slice(&group[..k]);
                        }
                    }
                    for (i, v) in chosen {
                        if first_emitted[i].is_none() {
                            first_emitted[i] = Some((emitted, i));
                            emitted += 1;
                        }
                        selected[i].push(StepPoint {
                            step: step as u32,
                            v,
                        });
                    }
                }
                // Series come out in the order they were first chosen, so an
                // instant query lists each group's elements best first.
                let mut order: Vec<(usize, usize)> = first_emitted.into_iter().flatten().collect();
                order.sort_unstable();
                let mut input = input;
                order
                    .into_iter()
                    .map(|(_, i)| {
                        let mut points = std::mem::take(&mut selected[i]);
                        let mut histograms = Vec::new();
                        if let Some(passed) = passed_histograms.get_mut(i)
                            && !passed.is_empty()
                        {
                            points.retain(|p| match passed.remove(&p.step) {
                                Some(h) => {
                                    histograms.push(HistogramStepPoint { step: p.step, h });
                                    false
                                }
                                None => true,
                            });
                        }
                        StepSeries {
                            histograms,
                            labels: std::mem::take(&mut input[i].labels),
                            drop_name: input[i].drop_name,
                            points,
                        }
                    })
                    .collect()
            }
            _ => {
                return Err(QueryError::BadData(format!(
                    "unsupported aggregation operator {}",
                    agg.op
                )));
            }
        };
        self.ctx.release(released);
        let held: usize = result
            .iter()
            .map(|s| s.points.len() + s.histograms.len())
            .sum();
        self.ctx.hold(held)?;
        Ok(Val::Vector(result))
    }
}

/// The `count_values` key of a histogram's text form: a hash inside the
/// negative-NaN bit range, where a float's key would only be a NaN with
/// that exact payload (NaNs from arithmetic have none).
fn histogram_key(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    0xfff8_0000_0000_0000 | (hasher.finish() & 0x0007_ffff_ffff_ffff)
}

/// Merges two step-sorted point lists (steps never repeat).
fn merge_steps(a: Vec<StepPoint>, b: Vec<StepPoint>) -> Vec<StepPoint> {
    if b.is_empty() {
        return a;
    }
    let mut merged: Vec<StepPoint> = a.into_iter().chain(b).collect();
    merged.sort_by_key(|p| p.step);
    merged
}

impl Evaluator<'_, '_> {
    /// `sum` and `avg` of the histogram points of `input` into the groups'
    /// output series `out`; a group whose step holds floats and histograms
    /// yields nothing at that step, with a warning, as in Prometheus.
    fn aggregate_histograms(
        &self,
        node: &Expr,
        op: u16,
        input: &[StepSeries],
        series_group: &[usize],
        out: &mut [StepSeries],
    ) {
        // Prometheus positions these annotations at the aggregated
        // expression.
        let position = self
            .ctx
            .position_of(node)
            .and_then(|(p, args)| args.last().copied().or(Some(p)));
        let mut sums: HashMap<(usize, u32), GroupSum> = HashMap::new();
        let mut order: Vec<(usize, u32)> = Vec::new();
        let (mut collision, mut incompatible, mut reconciled) = (false, false, false);
        for (i, s) in input.iter().enumerate() {
            for p in &s.histograms {
                let key = (series_group[i], p.step);
                match sums.get_mut(&key) {
                    None => {
                        order.push(key);
                        let mut group = GroupSum {
                            sum: (*p.h).clone(),
                            count: 1.0,
                            failed: false,
                            total: p.h.sum,
                            compensation: 0.0,
                            hints: [false; 3],
                        };
                        group.note_hint(p.h.counter_reset_hint);
                        sums.insert(key, group);
                    }
                    Some(group) if group.failed => {}
                    Some(group) => match group.sum.add(&p.h) {
                        Ok(combined) => {
                            reconciled |= combined.custom_buckets_reconciled;
                            group.sum = combined.histogram;
                            group.count += 1.0;
                            (group.total, group.compensation) =
                                kahan_add(p.h.sum, group.total, group.compensation);
                            group.note_hint(p.h.counter_reset_hint);
                        }
                        Err(_) => {
                            incompatible = true;
                            group.failed = true;
                        }
                    },
                }
            }
        }
        let mut mixed = false;
        order.sort_unstable();
        for key in order {
            let Some(group) = sums.remove(&key) else {
                continue;
            };
            // A gauge among the inputs makes the result a gauge; otherwise
            // a reset and a non-reset together collide.
            let [gauge, reset, not_reset] = group.hints;
            collision |= reset && not_reset && !gauge;
            let (mut sum, count, failed) = (group.sum, group.count, group.failed);
            sum.sum = group.total + group.compensation;
            if gauge {
                sum.counter_reset_hint = CounterResetHint::Gauge;
            }
            let series = &mut out[key.0];
            if let Ok(index) = series.points.binary_search_by_key(&key.1, |p| p.step) {
                series.points.remove(index);
                mixed = true;
                continue;
            }
            if failed {
                continue;
            }
            if op == T_AVG {
                sum.div(count);
            }
            sum.compact(0);
            series.histograms.push(HistogramStepPoint {
                step: key.1,
                h: Box::new(sum),
            });
        }
        if mixed {
            self.ctx.annotate(
                Severity::Warning,
                "encountered a mix of histograms and floats for aggregation".to_owned(),
                position,
            );
        }
        if incompatible {
            let name = input
                .iter()
                .find_map(|s| s.labels.metric_name())
                .unwrap_or("");
            self.ctx.annotate(
                Severity::Warning,
                format!(
                    "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"
                ),
                position,
            );
        }
        if collision {
            self.ctx.annotate(
                Severity::Warning,
                "conflicting counter resets during histogram aggregation".to_owned(),
                position,
            );
        }
        if reconciled {
            self.ctx.annotate(
                Severity::Info,
                "mismatched custom buckets were reconciled during aggregation".to_owned(),
                position,
            );
        }
    }
}

/// The running `sum`/`avg` of one group's histograms at one step.
struct GroupSum {
    sum: FloatHistogram,
    count: f64,
    failed: bool,
    /// The `sum` field, added with Kahan compensation.
    total: f64,
    compensation: f64,
    /// Whether a gauge, a counter reset and a non-reset were seen.
    hints: [bool; 3],
}

impl GroupSum {
    fn note_hint(&mut self, hint: CounterResetHint) {
        match hint {
            CounterResetHint::Gauge => self.hints[0] = true,
            CounterResetHint::CounterReset => self.hints[1] = true,
            CounterResetHint::NotCounterReset => self.hints[2] = true,
            CounterResetHint::Unknown => {}
        }
    }
}

fn k_param(param: f64) -> Result<i64, QueryError> {
    if param.is_nan() {
        return Err(QueryError::Execution("Parameter value is NaN".into()));
    }
    if param >= i64::MAX as f64 || param <= i64::MIN as f64 {
        return Err(QueryError::Execution(format!(
            "Scalar value {} overflows int64",
            go_g(param)
        )));
    }
    Ok(param as i64)
}

fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Go's `%g` for the values that appear in messages (`1.1`, `NaN`,
/// `+Inf`); the shortest representation, as Go prints these.
pub(super) fn go_g(v: f64) -> String {
    format_float(v)
}

fn accumulate(op: u16, acc: &mut Acc, v: f64) {
    if acc.count == 0.0 {
        *acc = Acc {
            count: 1.0,
            value: v,
            kahan: 0.0,
            mean: v,
            incremental: false,
        };
        if matches!(op, T_STDDEV | T_STDVAR) {
            // A lone NaN or infinity has no defined spread.
            acc.value = if v.is_finite() { 0.0 } else { f64::NAN };
        }
        return;
    }
    acc.count += 1.0;
    match op {
        T_SUM => (acc.value, acc.kahan) = kahan_add(v, acc.value, acc.kahan),
        T_AVG => {
            if !acc.incremental {
                let (sum, c) = kahan_add(v, acc.value, acc.kahan);
                if !sum.is_infinite() {
                    acc.value = sum;
                    acc.kahan = c;
                    return;
                }
                acc.incremental = true;
                acc.mean = acc.value / (acc.count - 1.0);
                acc.kahan /= acc.count - 1.0;
            }
            if acc.mean.is_infinite() {
                if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
                    return;
                }
                if !v.is_infinite() && !v.is_nan() {
                    return;
                }
            }
            let current = acc.mean + acc.kahan;
            (acc.mean, acc.kahan) =
                kahan_add(v / acc.count - current / acc.count, acc.mean, acc.kahan);
        }
        T_MIN if v < acc.value || acc.value.is_nan() => acc.value = v,
        T_MAX if v > acc.value || acc.value.is_nan() => acc.value = v,
        T_STDDEV | T_STDVAR => {
            let delta = v - acc.mean;
            acc.mean += delta / acc.count;
            acc.value += delta * (v - acc.mean);
        }
        _ => {}
    }
}

fn finish(op: u16, acc: &Acc) -> f64 {
    match op {
        T_SUM => acc.value + acc.kahan,
        T_AVG if acc.incremental => acc.mean + acc.kahan,
        T_AVG => (acc.value + acc.kahan) / acc.count,
        T_COUNT => acc.count,
        T_GROUP => 1.0,
        T_STDVAR => acc.value / acc.count,
        T_STDDEV => (acc.value / acc.count).sqrt(),
        _ => acc.value,
    }
}
