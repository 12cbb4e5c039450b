//! Binary operators: arithmetic, comparison and set operators between
//! scalars and instant vectors, with Prometheus's vector matching
//! (`on`/`ignoring`, `group_left`/`group_right`, `bool`).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use ember_model::histogram::FloatHistogram;
use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use ember_model::storage::Severity;

use super::QueryError;
use super::eval::{Evaluator, HistogramStepPoint, StepPoint, StepSeries, Val, val_type_name};
use crate::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use crate::parser::{BinModifier, BinaryExpr, LabelModifier, TokenType, VectorMatchCardinality};

/// Applies a scalar operator; for comparisons returns whether the
/// comparison holds as `keep`.
pub(super) fn apply(op: TokenType, lhs: f64, rhs: f64) -> (f64, bool) {
    match op.id() {
        T_ADD => (lhs + rhs, true),
        T_SUB => (lhs - rhs, true),
        T_MUL => (lhs * rhs, true),
        T_DIV => (lhs / rhs, true),
        T_POW => (lhs.powf(rhs), true),
        T_MOD => (lhs % rhs, true),
        T_ATAN2 => (lhs.atan2(rhs), true),
        T_EQLC => (lhs, lhs == rhs),
        T_NEQ => (lhs, lhs != rhs),
        T_GTR => (lhs, lhs > rhs),
        T_LSS => (lhs, lhs < rhs),
        T_GTE => (lhs, lhs >= rhs),
        T_LTE => (lhs, lhs <= rhs),
        _ => (f64::NAN, false),
    }
}

/// Matching rules of a vector-vector operation.
struct Matching<'a> {
    card: &'a VectorMatchCardinality,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
    /// `fill_left(v)`: the value of a missing left-hand side sample.
    fill_left: Option<f64>,
    /// `fill_right(v)`: the value of a missing right-hand side sample.
    fill_right: Option<f64>,
}

impl<'a> Matching<'a> {
    fn of(modifier: Option<&'a BinModifier>, default_card: &'a VectorMatchCardinality) -> Self {
        let (card, matching) = match modifier {
            Some(m) => (&m.card, m.matching.as_ref()),
            None => (default_card, None),
        };
        let (on, labels) = match matching {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        let include = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
        let fill = modifier.map(|m| &m.fill_values);
        Self {
            card,
            on,
            labels,
            include,
            fill_left: fill.and_then(|f| f.lhs),
            fill_right: fill.and_then(|f| f.rhs),
        }
    }

    fn signature(&self, labels: &Labels) -> u64 {
        if self.on {
            labels.hash_for_labels(&self.labels)
        } else {
            labels.hash_without_labels(&self.labels)
        }
    }

    /// The labels a signature is made of, for error messages.
    fn match_labels(&self, labels: &Labels) -> Labels {
        if self.on {
            labels.keep_only(&self.labels)
        } else {
            let mut names = self.labels.clone();
            names.push(METRIC_NAME.to_owned());
            labels.without(&names)
        }
    }
}

impl Evaluator<'_, '_> {
    pub(super) fn eval_binary(&self, b: &BinaryExpr) -> Result<Val, QueryError> {
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let comparison = b.op.is_comparison_operator();
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&l, &r)| {
                        let (v, keep) = apply(b.op, l, r);
                        if comparison {
                            if keep { 1.0 } else { 0.0 }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(series), Val::Scalar(scalar)) => Ok(Val::Vector(self.vector_scalar(
                b,
                b.op,
                series,
                &scalar,
                false,
                return_bool,
            ))),
            (Val::Scalar(scalar), Val::Vector(series)) => Ok(Val::Vector(self.vector_scalar(
                b,
                b.op,
                series,
                &scalar,
                true,
                return_bool,
            ))),
            (Val::Vector(l), Val::Vector(r)) => {
                let default_card = if b.op.is_set_operator() {
                    VectorMatchCardinality::ManyToMany
                } else {
                    VectorMatchCardinality::OneToOne
                };
                let matching = Matching::of(b.modifier.as_ref(), &default_card);
                // The operands' points are released here and the result's
                // held instead.
                let operand_points: usize = l
                    .iter()
                    .chain(&r)
                    .map(|s| s.points.len() + s.histograms.len())
                    .sum();
                self.ctx.release(operand_points);
                let result = match b.op.id() {
                    T_LAND => self.and_unless(l, r, &matching, true),
                    T_LUNLESS => self.and_unless(l, r, &matching, false),
                    T_LOR => self.or(l, r, &matching),
                    _ if l.iter().chain(&r).any(|s| !s.histograms.is_empty()) => {
                        // Histogram points travel through the float
                        // matching code as boxed indexes into a table.
                        let (mut l, mut r) = (l, r);
                        let table = RefCell::new(Boxed::default());
                        box_series(&mut l, &mut table.borrow_mut());
                        box_series(&mut r, &mut table.borrow_mut());
                        let mut result =
                            self.vector_vector(b.op, l, r, &matching, return_bool, Some(&table))?;
                        let mut table = table.into_inner();
                        unbox_series(&mut result, &mut table);
                        self.report(table, b);
                        result
                    }
                    _ => self.vector_vector(b.op, l, r, &matching, return_bool, None)?,
                };
                self.ctx.hold(
                    result
                        .iter()
                        .map(|s| s.points.len() + s.histograms.len())
                        .sum(),
                )?;
                Ok(Val::Vector(result))
            }
            (l, r) => Err(QueryError::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                val_type_name(&l),
                val_type_name(&r)
            ))),
        }
    }

    fn vector_scalar(
        &self,
        node: &BinaryExpr,
        op: TokenType,
        mut series: Vec<StepSeries>,
        scalar: &[f64],
        scalar_on_left: bool,
        return_bool: bool,
    ) -> Vec<StepSeries> {
        let comparison = op.is_comparison_operator();
        for s in &mut series {
            s.points.retain_mut(|p| {
                let other = scalar.get(p.step as usize).copied().unwrap_or(f64::NAN);
                let (l, r) = if scalar_on_left {
                    (other, p.v)
                } else {
                    (p.v, other)
                };
                let (mut v, keep) = apply(op, l, r);
                // A comparison keeps the vector's value even when the
                // scalar is on the left.
                if comparison {
                    v = p.v;
                }
                if return_bool {
                    p.v = if keep { 1.0 } else { 0.0 };
                    true
                } else {
                    p.v = v;
                    keep
                }
            });
            if !comparison || return_bool {
                s.drop_name = true;
            }
        }
        if series.iter().any(|s| !s.histograms.is_empty()) {
            let mut table = Boxed::default();
            for s in &mut series {
                let histograms = std::mem::take(&mut s.histograms);
                for p in histograms {
                    let other = scalar.get(p.step as usize).copied().unwrap_or(f64::NAN);
                    let (l, r) = if scalar_on_left {
                        (other, box_value(&mut table, *p.h))
                    } else {
                        (box_value(&mut table, *p.h), other)
                    };
                    let Some(v) = table.apply(op, l, r, return_bool) else {
                        continue;
                    };
                    s.drop_name = true;
                    match unbox(v) {
                        Some(i) => s.histograms.push(HistogramStepPoint {
                            step: p.step,
                            h: Box::new(table.take(i)),
                        }),
                        None => {
                            let index = s.points.partition_point(|q| q.step < p.step);
                            s.points.insert(index, StepPoint { step: p.step, v });
                        }
                    }
                }
            }
            self.report(table, node);
        }
        series.retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
        series
    }

    /// Adds the annotations a histogram operation collected. Prometheus
    /// positions them at the binary expression, whose start is known here
    /// only when it is the whole query.
    fn report(&self, table: Boxed, node: &BinaryExpr) {
        let op = node.op;
        let position = match &self.ctx.query.expr {
            crate::parser::Expr::Binary(root) if std::ptr::eq(root, node) => {
                Some(self.ctx.query.text.len() - self.ctx.query.text.trim_start().len())
            }
            _ => None,
        };
        for (lhs, rhs) in table.incompatible {
            self.ctx.annotate(
                Severity::Info,
                format!(
                    "incompatible sample types encountered for binary operator {:?}: {lhs} {op} {rhs}",
                    op.to_string()
                ),
                position,
            );
        }
        if table.layout_mismatch {
            self.ctx.annotate(
                Severity::Warning,
                format!("incompatible bucket layout encountered for binary operator {op}"),
                position,
            );
        }
        if let Some(during) = table.reconciled {
            self.ctx.annotate(
                Severity::Info,
                format!("mismatched custom buckets were reconciled during {during}"),
                position,
            );
        }
    }

    /// `and` (`keep_matching`) and `unless` (not `keep_matching`).
    fn and_unless(
        &self,
        mut lhs: Vec<StepSeries>,
        rhs: Vec<StepSeries>,
        matching: &Matching<'_>,
        keep_matching: bool,
    ) -> Vec<StepSeries> {
        let steps = self.steps();
        let mut present: Vec<HashSet<u64>> = vec![HashSet::new(); steps];
        for s in &rhs {
            let sig = matching.signature(&s.labels);
            for p in &s.points {
                present[p.step as usize].insert(sig);
            }
            for p in &s.histograms {
                present[p.step as usize].insert(sig);
            }
        }
        for s in &mut lhs {
            let sig = matching.signature(&s.labels);
            s.points
                .retain(|p| present[p.step as usize].contains(&sig) == keep_matching);
            s.histograms
                .retain(|p| present[p.step as usize].contains(&sig) == keep_matching);
        }
        lhs.retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
        lhs
    }

    fn or(
        &self,
        mut lhs: Vec<StepSeries>,
        mut rhs: Vec<StepSeries>,
        matching: &Matching<'_>,
    ) -> Vec<StepSeries> {
        let steps = self.steps();
        let mut present: Vec<HashSet<u64>> = vec![HashSet::new(); steps];
        for s in &lhs {
            let sig = matching.signature(&s.labels);
            for p in &s.points {
                present[p.step as usize].insert(sig);
            }
            for p in &s.histograms {
                present[p.step as usize].insert(sig);
            }
        }
        for s in &mut rhs {
            let sig = matching.signature(&s.labels);
            s.points
                .retain(|p| !present[p.step as usize].contains(&sig));
            s.histograms
                .retain(|p| !present[p.step as usize].contains(&sig));
        }
        rhs.retain(|s| !s.points.is_empty() || !s.histograms.is_empty());
        lhs.extend(rhs);
        lhs
    }

    fn vector_vector(
        &self,
        op: TokenType,
        lhs: Vec<StepSeries>,
        rhs: Vec<StepSeries>,
        matching: &Matching<'_>,
        return_bool: bool,
        histograms: Option<&RefCell<Boxed>>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        if matches!(matching.card, VectorMatchCardinality::ManyToMany) {
            return Err(QueryError::BadData(
                "many-to-many only allowed for set operators".into(),
            ));
        }
        let one_to_many = matches!(matching.card, VectorMatchCardinality::OneToMany(_));
        let one_to_one = matches!(matching.card, VectorMatchCardinality::OneToOne);
        // The control flow handles one-to-one and many-to-one; for
        // one-to-many the sides are swapped and swapped back for values.
        let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
        // Like Prometheus, the fill values follow the operand positions
        // after the swap: `fill_left` always fills the "many" side and
        // `fill_right` the "one" side.
        let (many_fill, one_fill) = (matching.fill_left, matching.fill_right);
        if (many.is_empty() && many_fill.is_none()) || (one.is_empty() && one_fill.is_none()) {
            return Ok(Vec::new());
        }
        let many_sigs: Vec<u64> = many.iter().map(|s| matching.signature(&s.labels)).collect();
        let one_sigs: Vec<u64> = one.iter().map(|s| matching.signature(&s.labels)).collect();
        let comparison = op.is_comparison_operator();
        let steps = self.steps();
        let mut one_cursor = vec![0usize; one.len()];
        let mut many_cursor = vec![0usize; many.len()];
        let mut out = Output::default();
        // Output series of a (many, one) pair; `None` stands for a filled
        // side.
        let mut pair_index: HashMap<(Option<usize>, Option<usize>), usize> = HashMap::new();
        let mut one_by_sig: HashMap<u64, (usize, f64)> = HashMap::new();
        let mut matched: HashMap<u64, HashSet<u64>> = HashMap::new();
        for step in 0..steps {
            self.ctx.check()?;
            one_by_sig.clear();
            matched.clear();
            for (i, s) in one.iter().enumerate() {
                let Some(v) = point_at(&s.points, &mut one_cursor[i], step) else {
                    continue;
                };
                if let Some(&(previous, _)) = one_by_sig.get(&one_sigs[i]) {
                    let side = if one_to_many { "left" } else { "right" };
                    let mut pair = [&one[previous].labels, &s.labels];
                    pair.sort();
                    return Err(QueryError::Execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        prometheus_string(&matching.match_labels(&s.labels)),
                        prometheus_string(pair[0]),
                        prometheus_string(pair[1])
                    )));
                }
                one_by_sig.insert(one_sigs[i], (i, v));
            }
            for (i, s) in many.iter().enumerate() {
                let Some(v) = point_at(&s.points, &mut many_cursor[i], step) else {
                    continue;
                };
                let sig = many_sigs[i];
                let (j, w) = match one_by_sig.get(&sig) {
                    Some(&(j, w)) => (Some(j), w),
                    None => match one_fill {
                        Some(w) => (None, w),
                        None => continue,
                    },
                };
                // Duplicate matches are an error even when the comparison
                // would filter the sample out, as in Prometheus.
                let inserted = matched.entry(sig).or_default();
                if j.is_some() && one_to_one && !inserted.insert(u64::MAX) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                let Some(value) = combine(op, one_to_many, v, w, return_bool, histograms) else {
                    continue;
                };
                let o = *pair_index.entry((Some(i), j)).or_insert_with(|| {
                    let one_labels = j.map_or(&Labels::EMPTY, |j| &one[j].labels);
                    let labels = result_labels(&s.labels, one_labels, matching);
                    out.series(labels, s.drop_name || !comparison || return_bool)
                });
                if !one_to_one && !matched.entry(sig).or_default().insert(o as u64) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                out.push(o, step, value)?;
            }
            // The "one" side's samples that nothing matched, against a
            // filled "many" side: one result per match group.
            if let Some(v) = many_fill {
                for (&sig, &(j, w)) in &one_by_sig {
                    if matched.contains_key(&sig) {
                        continue;
                    }
                    let Some(value) = combine(op, one_to_many, v, w, return_bool, histograms)
                    else {
                        continue;
                    };
                    let o = *pair_index.entry((None, Some(j))).or_insert_with(|| {
                        let labels = matching.match_labels(&one[j].labels);
                        out.series(labels, !comparison || return_bool)
                    });
                    out.push(o, step, value)?;
                }
            }
        }
        Ok(out.finish())
    }
}

/// The value of `many op one` (sides swapped back for one-to-many), or
/// `None` when a comparison filters it out.
fn combine(
    op: TokenType,
    one_to_many: bool,
    many: f64,
    one: f64,
    return_bool: bool,
    histograms: Option<&RefCell<Boxed>>,
) -> Option<f64> {
    let (l, r) = if one_to_many {
        (one, many)
    } else {
        (many, one)
    };
    if let Some(table) = histograms
        && (unbox(l).is_some() || unbox(r).is_some())
    {
        return table.borrow_mut().apply(op, l, r, return_bool);
    }
    let (value, keep) = apply(op, l, r);
    if return_bool {
        Some(if keep { 1.0 } else { 0.0 })
    } else {
        keep.then_some(value)
    }
}

/// The tag of a boxed histogram: a signalling NaN whose low 48 bits are an
/// index into a [`Boxed`] table. Boxed values are only ever moved, never
/// computed with, so their bits survive.
const BOX_TAG: u64 = 0x7ff4_0000_0000_0000;
const BOX_MASK: u64 = 0xffff_0000_0000_0000;

fn unbox(v: f64) -> Option<usize> {
    let bits = v.to_bits();
    (bits & BOX_MASK == BOX_TAG).then_some((bits & !BOX_MASK) as usize)
}

fn box_value(table: &mut Boxed, h: FloatHistogram) -> f64 {
    table.items.push(Some(h));
    f64::from_bits(BOX_TAG | (table.items.len() - 1) as u64)
}

/// The histograms of a vector-vector operation and what combining them
/// found for annotations.
#[derive(Default)]
pub(super) struct Boxed {
    items: Vec<Option<FloatHistogram>>,
    /// Operand type pairs of incompatible operations.
    incompatible: Vec<(&'static str, &'static str)>,
    layout_mismatch: bool,
    reconciled: Option<&'static str>,
}

impl Boxed {
    fn take(&mut self, index: usize) -> FloatHistogram {
        self.items
            .get_mut(index)
            .and_then(Option::take)
            .unwrap_or_default()
    }

    fn get(&self, index: usize) -> FloatHistogram {
        self.items
            .get(index)
            .and_then(Clone::clone)
            .unwrap_or_default()
    }

    fn incompatible(&mut self, lhs: &'static str, rhs: &'static str) -> Option<f64> {
        if !self.incompatible.contains(&(lhs, rhs)) {
            self.incompatible.push((lhs, rhs));
        }
        None
    }

    /// `l op r` where at least one side is a boxed histogram, as
    /// Prometheus's `vectorElemBinop`: histogram + and - histogram,
    /// histogram * and / float, float * histogram, == and != between
    /// histograms; anything else is dropped with an info.
    fn apply(&mut self, op: TokenType, l: f64, r: f64, return_bool: bool) -> Option<f64> {
        let kind = |v: f64| {
            if unbox(v).is_some() {
                "histogram"
            } else {
                "float"
            }
        };
        match (unbox(l), unbox(r)) {
            (Some(a), Some(b)) => match op.id() {
                T_ADD | T_SUB => {
                    let (a, b) = (self.get(a), self.get(b));
                    let combined = if op.id() == T_ADD {
                        a.add(&b)
                    } else {
                        a.sub(&b)
                    };
                    match combined {
                        Ok(c) => {
                            if c.custom_buckets_reconciled {
                                self.reconciled = Some(if op.id() == T_ADD {
                                    "addition"
                                } else {
                                    "subtraction"
                                });
                            }
                            let mut h = c.histogram;
                            h.compact(0);
                            Some(box_value(self, h))
                        }
                        Err(_) => {
                            self.layout_mismatch = true;
                            None
                        }
                    }
                }
                T_EQLC | T_NEQ => {
                    let equal = self.get(a).equals(&self.get(b));
                    let keep = equal == (op.id() == T_EQLC);
                    if return_bool {
                        Some(if keep { 1.0 } else { 0.0 })
                    } else {
                        keep.then_some(l)
                    }
                }
                _ => self.incompatible("histogram", "histogram"),
            },
            (Some(a), None) => match op.id() {
                T_MUL | T_DIV => {
                    let mut h = self.get(a);
                    if op.id() == T_MUL {
                        h.mul(r);
                    } else {
                        h.div(r);
                    }
                    Some(box_value(self, h))
                }
                _ => self.incompatible(kind(l), kind(r)),
            },
            (None, Some(b)) => match op.id() {
                T_MUL => {
                    let mut h = self.get(b);
                    h.mul(l);
                    Some(box_value(self, h))
                }
                _ => self.incompatible(kind(l), kind(r)),
            },
            (None, None) => None,
        }
    }
}

/// Moves every series' histogram points into its float points as boxed
/// indexes.
fn box_series(series: &mut [StepSeries], table: &mut Boxed) {
    for s in series.iter_mut() {
        if s.histograms.is_empty() {
            continue;
        }
        let boxed: Vec<StepPoint> = std::mem::take(&mut s.histograms)
            .into_iter()
            .map(|p| StepPoint {
                step: p.step,
                v: box_value(table, *p.h),
            })
            .collect();
        let mut points: Vec<StepPoint> = std::mem::take(&mut s.points)
            .into_iter()
            .chain(boxed)
            .collect();
        points.sort_by_key(|p| p.step);
        s.points = points;
    }
}

/// Moves boxed points back into the histogram points.
fn unbox_series(series: &mut [StepSeries], table: &mut Boxed) {
    for s in series.iter_mut() {
        if !s.points.iter().any(|p| unbox(p.v).is_some()) {
            continue;
        }
        let points = std::mem::take(&mut s.points);
        for p in points {
            match unbox(p.v) {
                Some(i) => s.histograms.push(HistogramStepPoint {
                    step: p.step,
                    h: Box::new(table.get(i)),
                }),
                None => s.points.push(p),
            }
        }
    }
}

/// Output series of a binary operation, unique by labels.
#[derive(Default)]
struct Output {
    series: Vec<StepSeries>,
    index: HashMap<Labels, usize>,
}

impl Output {
    fn series(&mut self, labels: Labels, drop_name: bool) -> usize {
        if let Some(&o) = self.index.get(&labels) {
            return o;
        }
        self.index.insert(labels.clone(), self.series.len());
        self.series.push(StepSeries {
            histograms: Vec::new(),
            labels,
            drop_name,
            points: Vec::new(),
        });
        self.series.len() - 1
    }

    fn push(&mut self, o: usize, step: usize, v: f64) -> Result<(), QueryError> {
        let target = &mut self.series[o];
        if target
            .points
            .last()
            .is_some_and(|p| p.step as usize == step)
        {
            return Err(QueryError::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        target.points.push(StepPoint {
            step: step as u32,
            v,
        });
        Ok(())
    }

    fn finish(mut self) -> Vec<StepSeries> {
        self.series.retain(|s| !s.points.is_empty());
        self.series
    }
}

/// The value of `points` at `step`, advancing `cursor` (steps are visited
/// in increasing order).
pub(super) fn point_at(points: &[StepPoint], cursor: &mut usize, step: usize) -> Option<f64> {
    while *cursor < points.len() && (points[*cursor].step as usize) < step {
        *cursor += 1;
    }
    match points.get(*cursor) {
        Some(p) if p.step as usize == step => Some(p.v),
        _ => None,
    }
}

/// The labels of a vector-vector result, as Prometheus's `resultMetric`.
fn result_labels(many: &Labels, one: &Labels, matching: &Matching<'_>) -> Labels {
    let mut builder = LabelsBuilder::new(many.clone());
    if matches!(matching.card, VectorMatchCardinality::OneToOne) {
        if matching.on {
            builder.keep(&matching.labels);
        } else {
            for name in &matching.labels {
                builder.del(name);
            }
        }
    }
    for name in &matching.include {
        match one.get(name) {
            Some(v) if !v.is_empty() => {
                builder.set(name, v);
            }
            _ => {
                builder.del(name);
            }
        }
    }
    builder.labels()
}

/// Labels as Go's `labels.Labels.String()` writes them in error messages:
/// `{__name__="up", job="a"}`, the name as an ordinary label.
pub(super) fn prometheus_string(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&format!("{value:?}"));
    }
    out.push('}');
    out
}
