//! The evaluator: walks the syntax tree once per node for all steps.
//!
//! An instant vector is represented for the whole query as a list of
//! [`StepSeries`], each holding the points of one output series at the
//! steps where it has a value. Functions that work point by point map those
//! points; aggregations and binary operators walk all series step by step
//! with one cursor per series; range functions stream one series at a time
//! from the storage (or from a subquery's result) and slide a window over
//! its samples.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Instant;

use ember_model::histogram::{CounterResetHint, FloatHistogram};
use ember_model::labels::{Labels, METRIC_NAME};
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample as Point;
use ember_model::storage::{Annotation, Annotations, Querier, Queryable, SelectHints, Severity};

use super::{CancellationToken, QueryError, QueryOutput, QueryStats, TimeRange};
use crate::parser::{self, AtModifier, Expr, Offset, Query, SourceMap, ValueType};
use crate::value::{
    HistogramPoint, MatrixSeries, QueryValue, SampleValue, Scalar, StringValue, VectorSample,
};

/// Limits and switches of one query.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub lookback_delta: i64,
    pub max_samples: usize,
    pub default_subquery_step: i64,
    pub enable_experimental: bool,
    pub deadline: Option<Instant>,
    pub cancel: CancellationToken,
}

/// A point of a [`StepSeries`]: the index of its step and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct StepPoint {
    pub step: u32,
    pub v: f64,
}

/// One series of an instant vector evaluated over all steps.
#[derive(Debug, Clone)]
pub(super) struct StepSeries {
    pub labels: Labels,
    /// Prometheus drops `__name__` only at the very end of evaluation (or
    /// never, when a later `label_replace` sets it); this marks series whose
    /// name is to be dropped.
    pub drop_name: bool,
    /// Points in increasing step order.
    pub points: Vec<StepPoint>,
    /// Native histogram points in increasing step order; a step has a
    /// float point or a histogram point, never both. Empty (no allocation)
    /// for float-only series, so the float paths do not pay for it.
    pub histograms: Vec<HistogramStepPoint>,
}

/// A native histogram point of a [`StepSeries`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistogramStepPoint {
    pub step: u32,
    pub h: Box<FloatHistogram>,
}

/// A native histogram sample of a range: its timestamp and histogram.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HPoint {
    pub t: i64,
    pub h: FloatHistogram,
}

/// The value of a node over all steps.
#[derive(Debug)]
pub(super) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<StepSeries>),
    /// A range vector; only produced at the top of an instant query.
    Matrix(Vec<MatrixSeries>),
}

/// Query-wide state shared by the evaluators of a query and its subqueries.
pub(super) struct Ctx<'q> {
    pub querier: Option<Box<dyn Querier + 'q>>,
    pub limits: Limits,
    pub query: &'q Query,
    pub source_map: SourceMap,
    /// Pre-order index of call-like nodes by address: (name, occurrence).
    pub node_occurrence: HashMap<usize, (String, usize)>,
    pub annotations: RefCell<Annotations>,
    pub samples_loaded: Cell<u64>,
    pub current_samples: Cell<usize>,
    pub peak_samples: Cell<usize>,
    /// The outermost query's start and end (for `@ start()`/`@ end()`).
    pub query_start: i64,
    pub query_end: i64,
    /// The outermost query's step (0 for instant queries).
    pub query_step: i64,
    checks: Cell<u32>,
}

impl Ctx<'_> {
    /// Fails when the query was cancelled or ran out of time. Cheap enough
    /// to call per series and per step: the clock is read every 64 calls.
    pub fn check(&self) -> Result<(), QueryError> {
        if self.limits.cancel.is_cancelled() {
            return Err(QueryError::Canceled("query execution"));
        }
        let n = self.checks.get().wrapping_add(1);
        self.checks.set(n);
        if n.is_multiple_of(64)
            && let Some(deadline) = self.limits.deadline
            && Instant::now() >= deadline
        {
            return Err(QueryError::Timeout("query execution"));
        }
        Ok(())
    }

    /// Accounts for `n` more samples held in memory.
    pub fn hold(&self, n: usize) -> Result<(), QueryError> {
        let current = self.current_samples.get() + n;
        self.current_samples.set(current);
        if current > self.peak_samples.get() {
            self.peak_samples.set(current);
        }
        if current > self.limits.max_samples {
            return Err(QueryError::Execution(
                "query processing would load too many samples into memory in query execution"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Accounts for `n` samples released.
    pub fn release(&self, n: usize) {
        self.current_samples
            .set(self.current_samples.get().saturating_sub(n));
    }

    /// Adds a warning or info about `node` (positions are appended as
    /// Prometheus does: `(line:col)`).
    pub fn annotate(&self, severity: Severity, message: String, position: Option<usize>) {
        let prefix = match severity {
            Severity::Warning => "PromQL warning: ",
            Severity::Info => "PromQL info: ",
        };
        let message = match position {
            Some(offset) => {
                let (line, column) = parser::line_column(&self.query.text, offset);
                format!("{prefix}{message} ({line}:{column})")
            }
            None => format!("{prefix}{message}"),
        };
        self.annotations
            .borrow_mut()
            .push(Annotation { severity, message });
    }

    /// The byte offset of a call-like node, and those of its arguments.
    pub fn position_of(&self, node: &Expr) -> Option<(usize, &[usize])> {
        let (name, occurrence) = self.node_occurrence.get(&node_address(node))?;
        self.source_map.call(name, *occurrence)
    }
}

fn node_address(node: &Expr) -> usize {
    std::ptr::from_ref(node) as usize
}

/// Records, for every call and aggregation, its rank among nodes of the
/// same name in a pre-order walk, which is their order in the source.
fn index_calls(
    expr: &Expr,
    counts: &mut HashMap<String, usize>,
    out: &mut HashMap<usize, (String, usize)>,
) {
    let mut record = |name: String, node: &Expr, counts: &mut HashMap<String, usize>| {
        let n = counts.entry(name.clone()).or_default();
        out.insert(node_address(node), (name, *n));
        *n += 1;
    };
    match expr {
        Expr::Aggregate(agg) => {
            record(agg.op.to_string().to_ascii_lowercase(), expr, counts);
            if let Some(param) = &agg.param {
                index_calls(param, counts, out);
            }
            index_calls(&agg.expr, counts, out);
        }
        Expr::Call(call) => {
            record(call.func.name.to_owned(), expr, counts);
            for arg in &call.args.args {
                index_calls(arg, counts, out);
            }
        }
        Expr::Unary(u) => index_calls(&u.expr, counts, out),
        Expr::Binary(b) => {
            index_calls(&b.lhs, counts, out);
            index_calls(&b.rhs, counts, out);
        }
        Expr::Paren(p) => index_calls(&p.expr, counts, out),
        Expr::Subquery(s) => index_calls(&s.expr, counts, out),
        _ => {}
    }
}

/// Evaluates `query` over `range`.
pub(super) fn evaluate(
    storage: &dyn Queryable,
    query: &Query,
    range: TimeRange,
    limits: Limits,
) -> Result<QueryOutput, QueryError> {
    let expr = &query.expr;
    let instant = range.start == range.end && range.step == 0;
    let value_type = expr.value_type();
    if !instant && !matches!(value_type, ValueType::Scalar | ValueType::Vector) {
        return Err(QueryError::BadData(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            type_name(value_type)
        )));
    }
    validate(expr, limits.enable_experimental)?;
    let step = if instant { 1 } else { range.step };
    let bounds = time_bounds(
        expr,
        range.start,
        range.end,
        range.start,
        range.end,
        &limits,
    );
    let querier = match bounds {
        Some((mint, maxt)) => Some(storage.querier(mint, maxt)?),
        None => None,
    };
    let mut node_occurrence = HashMap::new();
    index_calls(expr, &mut HashMap::new(), &mut node_occurrence);
    let ctx = Ctx {
        querier,
        limits,
        query,
        source_map: SourceMap::new(&query.text),
        node_occurrence,
        annotations: RefCell::new(Annotations::new()),
        samples_loaded: Cell::new(0),
        current_samples: Cell::new(0),
        peak_samples: Cell::new(0),
        query_start: range.start,
        query_end: range.end,
        query_step: if instant { 0 } else { range.step },
        checks: Cell::new(0),
    };
    let evaluator = Evaluator {
        ctx: &ctx,
        start: range.start,
        end: range.end,
        step,
    };
    let val = evaluator.eval(expr)?;
    let value = evaluator.finish(val, instant)?;
    let stats = QueryStats {
        samples_loaded: ctx.samples_loaded.get(),
        peak_samples: ctx.peak_samples.get(),
    };
    let annotations = ctx.annotations.into_inner();
    Ok(QueryOutput {
        value,
        annotations,
        stats,
    })
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

/// Rejects what the parser accepts but Prometheus does not evaluate.
fn validate(expr: &Expr, experimental: bool) -> Result<(), QueryError> {
    let mut error = None;
    walk(expr, &mut |node| {
        if error.is_some() {
            return;
        }
        match node {
            Expr::VectorSelector(parser::VectorSelector { matchers, .. })
            | Expr::MatrixSelector(parser::MatrixSelector {
                vs: parser::VectorSelector { matchers, .. },
                ..
            }) if !matchers.or_matchers.is_empty() => {
                error = Some(QueryError::BadData(
                    "parse error: \"or\" inside label matchers is not PromQL".into(),
                ));
            }
            Expr::Call(call) if call.func.experimental && !experimental => {
                error = Some(QueryError::BadData(format!(
                    "parse error: function {:?} is not enabled",
                    call.func.name
                )));
            }
            Expr::Aggregate(agg)
                if !experimental
                    && matches!(
                        agg.op.id(),
                        crate::parser::token::T_LIMITK | crate::parser::token::T_LIMIT_RATIO
                    ) =>
            {
                error = Some(QueryError::BadData(
                    "parse error: limitk() and limit_ratio() are experimental and must be enabled with --enable-feature=promql-experimental-functions".into(),
                ));
            }
            Expr::Call(call) if !super::functions::is_supported(call.func.name) => {
                error = Some(QueryError::BadData(format!(
                    "parse error: function {:?} is not supported",
                    call.func.name
                )));
            }
            _ => {}
        }
    });
    error.map_or(Ok(()), Err)
}

/// Calls `f` on every node, parents first.
pub(super) fn walk(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(agg) => {
            if let Some(param) = &agg.param {
                walk(param, f);
            }
            walk(&agg.expr, f);
        }
        Expr::Call(call) => {
            for arg in &call.args.args {
                walk(arg, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        _ => {}
    }
}

pub(super) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

pub(super) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn at_ms(at: &Option<AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(time)) => Some(ember_model::sample::timestamp::from_system_time(*time)),
    }
}

/// The smallest and largest sample timestamps the expression can read when
/// evaluated from `start` to `end`; `None` when it reads none.
fn time_bounds(
    expr: &Expr,
    start: i64,
    end: i64,
    query_start: i64,
    query_end: i64,
    limits: &Limits,
) -> Option<(i64, i64)> {
    let merge = |a: Option<(i64, i64)>, b: Option<(i64, i64)>| match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, None) => a,
        (None, b) => b,
    };
    let recurse = |e: &Expr| time_bounds(e, start, end, query_start, query_end, limits);
    match expr {
        Expr::VectorSelector(vs) => {
            let (s, e) = shifted(&vs.at, &vs.offset, start, end, query_start, query_end);
            Some((s - limits.lookback_delta, e))
        }
        Expr::MatrixSelector(ms) => {
            let (s, e) = shifted(&ms.vs.at, &ms.vs.offset, start, end, query_start, query_end);
            Some((s - duration_ms(&ms.range), e))
        }
        Expr::Subquery(sq) => {
            let (s, e) = shifted(&sq.at, &sq.offset, start, end, query_start, query_end);
            time_bounds(
                &sq.expr,
                s - duration_ms(&sq.range),
                e,
                query_start,
                query_end,
                limits,
            )
        }
        Expr::Aggregate(agg) => merge(agg.param.as_deref().and_then(recurse), recurse(&agg.expr)),
        Expr::Call(call) => call
            .args
            .args
            .iter()
            .fold(None, |acc, arg| merge(acc, recurse(arg))),
        Expr::Unary(u) => recurse(&u.expr),
        Expr::Binary(b) => merge(recurse(&b.lhs), recurse(&b.rhs)),
        Expr::Paren(p) => recurse(&p.expr),
        _ => None,
    }
}

fn shifted(
    at: &Option<AtModifier>,
    offset: &Option<Offset>,
    start: i64,
    end: i64,
    query_start: i64,
    query_end: i64,
) -> (i64, i64) {
    let offset = offset_ms(offset);
    match at_ms(at, query_start, query_end) {
        Some(t) => (t - offset, t - offset),
        None => (start - offset, end - offset),
    }
}

/// Where a range function's windows lie: the window of step time `ts` is
/// `(reference - range, reference]` with `reference = at.unwrap_or(ts) -
/// offset`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

impl Window {
    pub fn reference(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts) - self.offset
    }
}

/// Receives one series of a range argument: its labels, float samples and
/// histogram samples.
pub(super) type SeriesVisitor<'a> =
    dyn FnMut(&Labels, &[Point], &[HPoint]) -> Result<(), QueryError> + 'a;

/// Computes a range function's value at a step from the step index, the
/// window's samples, the series' labels and the window's end.
pub(super) type WindowFunction<'a> = dyn FnMut(usize, &[Point], &Labels, i64) -> Option<f64> + 'a;

/// Evaluates nodes for the steps `start, start + step, ..., <= end`.
pub(super) struct Evaluator<'c, 'q> {
    pub ctx: &'c Ctx<'q>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Evaluator<'_, '_> {
    pub fn steps(&self) -> usize {
        usize::try_from((self.end - self.start) / self.step + 1).unwrap_or(0)
    }

    pub fn time(&self, step: usize) -> i64 {
        self.start + step as i64 * self.step
    }

    pub fn eval(&self, expr: &Expr) -> Result<Val, QueryError> {
        self.ctx.check()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.steps()])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(mut values) => {
                    values.iter_mut().for_each(|v| *v = -*v);
                    Ok(Val::Scalar(values))
                }
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                        s.histograms.iter_mut().for_each(|p| {
                            p.h.mul(-1.0);
                        });
                    }
                    Ok(Val::Vector(series))
                }
                other => Err(QueryError::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    val_type_name(&other)
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let window = self.window_of(expr)?;
                let mut out = Vec::new();
                let ts = self.start;
                let reference = window.reference(ts);
                self.for_each_range_series(expr, None, &mut |labels, samples, histograms| {
                    let lo = samples.partition_point(|p| p.t <= reference - window.range);
                    let hi = samples.partition_point(|p| p.t <= reference);
                    let hlo = histograms.partition_point(|p| p.t <= reference - window.range);
                    let hhi = histograms.partition_point(|p| p.t <= reference);
                    if lo < hi || hlo < hhi {
                        out.push(MatrixSeries {
                            metric: labels.clone(),
                            points: samples[lo..hi].to_vec(),
                            histograms: histograms[hlo..hhi]
                                .iter()
                                .map(|p| HistogramPoint {
                                    t: p.t,
                                    h: p.h.clone(),
                                })
                                .collect(),
                        });
                    }
                    Ok(())
                })?;
                Ok(Val::Matrix(out))
            }
            Expr::Aggregate(agg) => self.eval_aggregate(expr, agg),
            Expr::Call(call) => self.eval_call(expr, call),
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Extension(_) => Err(QueryError::BadData(
                "unsupported extension expression".into(),
            )),
        }
    }

    /// Evaluates an argument that must be a scalar.
    pub fn eval_scalar(&self, expr: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr)? {
            Val::Scalar(values) => Ok(values),
            other => Err(QueryError::BadData(format!(
                "expected type scalar, got {}",
                val_type_name(&other)
            ))),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn eval_vector(&self, expr: &Expr) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(expr)? {
            Val::Vector(series) => Ok(series),
            other => Err(QueryError::BadData(format!(
                "expected type instant vector, got {}",
                val_type_name(&other)
            ))),
        }
    }

    /// Evaluates an argument that must be a string.
    pub fn eval_string(&self, expr: &Expr) -> Result<String, QueryError> {
        match self.eval(expr)? {
            Val::String(s) => Ok(s),
            other => Err(QueryError::BadData(format!(
                "expected type string, got {}",
                val_type_name(&other)
            ))),
        }
    }

    fn matchers(&self, vs: &parser::VectorSelector) -> Result<Vec<Matcher>, QueryError> {
        let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(name) = &vs.name {
            matchers.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in &vs.matchers.matchers {
            let op = match m.op {
                parser::AstMatchOp::Equal => MatchOp::Equal,
                parser::AstMatchOp::NotEqual => MatchOp::NotEqual,
                parser::AstMatchOp::Re(_) => MatchOp::Regex,
                parser::AstMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            let matcher = Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| QueryError::BadData(e.to_string()))?;
            matchers.push(matcher);
        }
        Ok(matchers)
    }

    /// Selects the series of `vs` with its hints; `f` sees each series.
    fn select(
        &self,
        vs: &parser::VectorSelector,
        range: i64,
        func: Option<&str>,
        f: &mut dyn FnMut(&dyn ember_model::storage::Series) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let Some(querier) = &self.ctx.querier else {
            return Ok(());
        };
        let (start, end) = shifted(
            &vs.at,
            &vs.offset,
            self.start,
            self.end,
            self.ctx.query_start,
            self.ctx.query_end,
        );
        let lookback = if range > 0 {
            range
        } else {
            self.ctx.limits.lookback_delta
        };
        let hints = SelectHints {
            start: start - lookback + 1,
            end,
            step: if self.start == self.end { 0 } else { self.step },
            range,
            func: func.map(str::to_owned),
            ..SelectHints::default()
        };
        let matchers = self.matchers(vs)?;
        let set = querier.select(true, Some(&hints), &matchers)?;
        for series in set {
            self.ctx.check()?;
            f(series?.as_ref())?;
        }
        Ok(())
    }

    /// An instant selector over all steps; with `timestamps` the values are
    /// the samples' timestamps in seconds (for `timestamp()`).
    pub fn select_instant(
        &self,
        vs: &parser::VectorSelector,
        timestamps: bool,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let offset = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, self.ctx.query_start, self.ctx.query_end);
        let lookback = self.ctx.limits.lookback_delta;
        let steps = self.steps();
        let mut out = Vec::new();
        self.select(vs, 0, None, &mut |series| {
            if series.may_have_histograms() {
                if let Some(s) = self.select_instant_histograms(series, offset, at, timestamps)? {
                    out.push(s);
                }
                return Ok(());
            }
            let mut it = series.samples();
            let mut loaded = 0u64;
            let mut current: Option<Point> = None;
            let first_reference = at.unwrap_or(self.start) - offset;
            let mut next = it.seek(first_reference - lookback + 1).then(|| it.at());
            let mut points = Vec::new();
            for step in 0..steps {
                let reference = at.unwrap_or(self.time(step)) - offset;
                // Skip what no window can see any more with a seek rather
                // than sample by sample (long ranges at coarse steps).
                if let Some(sample) = next
                    && sample.t <= reference - lookback
                {
                    current = None;
                    next = it.seek(reference - lookback + 1).then(|| it.at());
                }
                while let Some(sample) = next {
                    if sample.t > reference {
                        break;
                    }
                    loaded += 1;
                    current = Some(sample);
                    next = it.next().then(|| it.at());
                }
                if let Some(sample) = current
                    && sample.t > reference - lookback
                    && !sample.is_stale()
                {
                    let v = if timestamps {
                        sample.t as f64 / 1000.0
                    } else {
                        sample.v
                    };
                    points.push(StepPoint {
                        step: step as u32,
                        v,
                    });
                }
            }
            if let Some(error) = it.err() {
                return Err(error.clone().into());
            }
            self.ctx
                .samples_loaded
                .set(self.ctx.samples_loaded.get() + loaded);
            if !points.is_empty() {
                self.ctx.hold(points.len())?;
                out.push(StepSeries {
                    histograms: Vec::new(),
                    labels: series.labels().clone(),
                    drop_name: false,
                    points,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The slow path of [`select_instant`](Self::select_instant) for a
    /// series that may hold native histograms.
    fn select_instant_histograms(
        &self,
        series: &dyn ember_model::storage::Series,
        offset: i64,
        at: Option<i64>,
        timestamps: bool,
    ) -> Result<Option<StepSeries>, QueryError> {
        let lookback = self.ctx.limits.lookback_delta;
        let mut it = series.samples();
        let mut loaded = 0u64;
        let mut points = Vec::new();
        let mut histograms = Vec::new();
        // The newest sample at or before the step: (t, float or histogram).
        let mut current: Option<(Point, Option<FloatHistogram>)> = None;
        let first_reference = at.unwrap_or(self.start) - offset;
        let mut has_next = it.seek(first_reference - lookback + 1);
        for step in 0..self.steps() {
            let reference = at.unwrap_or(self.time(step)) - offset;
            while has_next {
                let sample = it.at();
                if sample.t > reference {
                    break;
                }
                loaded += 1;
                current = Some((sample, it.at_histogram().cloned()));
                has_next = it.next();
            }
            let Some((sample, histogram)) = &current else {
                continue;
            };
            if sample.t <= reference - lookback {
                continue;
            }
            match histogram {
                _ if timestamps => points.push(StepPoint {
                    step: step as u32,
                    v: sample.t as f64 / 1000.0,
                }),
                Some(h) if !is_stale_histogram(h) => histograms.push(HistogramStepPoint {
                    step: step as u32,
                    h: Box::new(h.clone()),
                }),
                Some(_) => {}
                None if !sample.is_stale() => points.push(StepPoint {
                    step: step as u32,
                    v: sample.v,
                }),
                None => {}
            }
        }
        if let Some(error) = it.err() {
            return Err(error.clone().into());
        }
        self.ctx
            .samples_loaded
            .set(self.ctx.samples_loaded.get() + loaded);
        if points.is_empty() && histograms.is_empty() {
            return Ok(None);
        }
        self.ctx.hold(points.len() + histograms.len())?;
        Ok(Some(StepSeries {
            labels: series.labels().clone(),
            drop_name: false,
            points,
            histograms,
        }))
    }

    /// The window geometry of a range argument (matrix selector or
    /// subquery, possibly in parentheses).
    pub fn window_of(&self, expr: &Expr) -> Result<Window, QueryError> {
        match expr {
            Expr::Paren(p) => self.window_of(&p.expr),
            Expr::MatrixSelector(ms) => Ok(Window {
                range: duration_ms(&ms.range),
                offset: offset_ms(&ms.vs.offset),
                at: at_ms(&ms.vs.at, self.ctx.query_start, self.ctx.query_end),
            }),
            Expr::Subquery(sq) => Ok(Window {
                range: duration_ms(&sq.range),
                offset: offset_ms(&sq.offset),
                at: at_ms(&sq.at, self.ctx.query_start, self.ctx.query_end),
            }),
            _ => Err(QueryError::BadData(
                "expected type range vector in call to function".into(),
            )),
        }
    }

    /// Streams the series of a range argument: labels and all samples the
    /// windows of this evaluator's steps can see (staleness markers
    /// removed), one series at a time. `func` is the function applied, a
    /// hint for the storage.
    pub fn for_each_range_series(
        &self,
        expr: &Expr,
        func: Option<&str>,
        f: &mut SeriesVisitor<'_>,
    ) -> Result<(), QueryError> {
        let window = self.window_of(expr)?;
        let first = window.reference(self.start) - window.range;
        let last = window.reference(self.end);
        match strip_parens(expr) {
            Expr::MatrixSelector(ms) => {
                let mut buffer: Vec<Point> = Vec::new();
                let mut hbuffer: Vec<HPoint> = Vec::new();
                self.select(&ms.vs, window.range, func, &mut |series| {
                    buffer.clear();
                    hbuffer.clear();
                    let with_histograms = series.may_have_histograms();
                    let mut it = series.samples();
                    if !with_histograms {
                        // The float-only loop, kept free of histogram
                        // checks.
                        if it.seek(first + 1) {
                            loop {
                                let sample = it.at();
                                if sample.t > last {
                                    break;
                                }
                                if !sample.is_stale() {
                                    buffer.push(sample);
                                }
                                if !it.next() {
                                    break;
                                }
                            }
                        }
                    } else if it.seek(first + 1) {
                        loop {
                            let sample = it.at();
                            if sample.t > last {
                                break;
                            }
                            match with_histograms.then(|| it.at_histogram()).flatten() {
                                Some(h) => {
                                    if !is_stale_histogram(h) {
                                        hbuffer.push(HPoint {
                                            t: sample.t,
                                            h: h.clone(),
                                        });
                                    }
                                }
                                None => {
                                    if !sample.is_stale() {
                                        buffer.push(sample);
                                    }
                                }
                            }
                            if !it.next() {
                                break;
                            }
                        }
                    }
                    if let Some(error) = it.err() {
                        return Err(error.clone().into());
                    }
                    let held = buffer.len() + hbuffer.len();
                    self.ctx
                        .samples_loaded
                        .set(self.ctx.samples_loaded.get() + held as u64);
                    self.ctx.hold(held)?;
                    let result = if held == 0 {
                        Ok(())
                    } else {
                        f(series.labels(), &buffer, &hbuffer)
                    };
                    self.ctx.release(held);
                    result
                })
            }
            Expr::Subquery(sq) => {
                let step = match &sq.step {
                    Some(step) if !step.is_zero() => duration_ms(step),
                    _ => self.ctx.limits.default_subquery_step,
                }
                .max(1);
                // The first step is the first multiple of `step` after the
                // earliest window's start, as Prometheus aligns subqueries
                // to absolute time so that consecutive evaluations see the
                // same points.
                let mut inner_start = first.div_euclid(step) * step;
                if inner_start <= first {
                    inner_start += step;
                }
                if inner_start > last {
                    return Ok(());
                }
                let inner = Evaluator {
                    ctx: self.ctx,
                    start: inner_start,
                    end: last,
                    step,
                };
                let series = inner.eval_vector(&sq.expr)?;
                let mut buffer = Vec::new();
                let mut hbuffer = Vec::new();
                for s in series {
                    self.ctx.check()?;
                    buffer.clear();
                    buffer.extend(
                        s.points
                            .iter()
                            .map(|p| Point::new(inner.time(p.step as usize), p.v)),
                    );
                    hbuffer.clear();
                    // A subquery repeats a sample at every step that sees
                    // it, so a stored counter-reset hint would count the
                    // same reset again; its points are compared instead.
                    hbuffer.extend(s.histograms.iter().map(|p| {
                        let mut h = (*p.h).clone();
                        if h.counter_reset_hint != CounterResetHint::Gauge {
                            h.counter_reset_hint = CounterResetHint::Unknown;
                        }
                        HPoint {
                            t: inner.time(p.step as usize),
                            h,
                        }
                    }));
                    let labels = if s.drop_name {
                        drop_metric_identity(&s.labels)
                    } else {
                        s.labels.clone()
                    };
                    f(&labels, &buffer, &hbuffer)?;
                    self.ctx.release(s.points.len() + s.histograms.len());
                }
                Ok(())
            }
            _ => Err(QueryError::BadData(
                "expected type range vector in call to function".into(),
            )),
        }
    }

    /// Applies `f` to the window of every step of every series of a range
    /// argument; `f` gets the step index, the window and the window's
    /// reference time, and returns the step's value if any. `func` names
    /// the function for the storage's select hints.
    pub fn range_map(
        &self,
        func: &str,
        expr: &Expr,
        drop_name: bool,
        f: &mut WindowFunction<'_>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let window = self.window_of(expr)?;
        let steps = self.steps();
        let mut out = Vec::new();
        let mut ignored: Vec<String> = Vec::new();
        self.for_each_range_series(expr, Some(func), &mut |labels, samples, histograms| {
            // These functions read floats only: a window holding both is
            // reported, as Prometheus does; histograms alone are skipped.
            if !histograms.is_empty() && !samples.is_empty() {
                let mixed = (0..steps).any(|step| {
                    let reference = window.reference(self.time(step));
                    let start = reference - window.range;
                    let in_window = |t: i64| t > start && t <= reference;
                    histograms.iter().any(|p| in_window(p.t))
                        && samples.iter().any(|p| in_window(p.t))
                });
                let metric = labels.metric_name().unwrap_or("").to_owned();
                if mixed && !ignored.contains(&metric) {
                    ignored.push(metric);
                }
            }
            let points = self.float_windows(&window, samples, labels, f);
            if !points.is_empty() {
                self.ctx.hold(points.len())?;
                out.push(StepSeries {
                    histograms: Vec::new(),
                    labels: labels.clone(),
                    drop_name,
                    points,
                });
            }
            Ok(())
        })?;
        for metric in ignored {
            self.ctx.annotate(
                Severity::Info,
                format!("ignored histograms in a range containing both floats and histograms for metric name {metric:?}"),
                None,
            );
        }
        Ok(out)
    }

    /// Slides the window over a series' float samples and applies `f` at
    /// every step: the hot loop of every range function.
    pub fn float_windows(
        &self,
        window: &Window,
        samples: &[Point],
        labels: &Labels,
        f: &mut WindowFunction<'_>,
    ) -> Vec<StepPoint> {
        let mut points = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        for step in 0..self.steps() {
            let reference = window.reference(self.time(step));
            if window.at.is_some() {
                lo = samples.partition_point(|p| p.t <= reference - window.range);
                hi = samples.partition_point(|p| p.t <= reference);
            } else {
                while hi < samples.len() && samples[hi].t <= reference {
                    hi += 1;
                }
                while lo < hi && samples[lo].t <= reference - window.range {
                    lo += 1;
                }
            }
            if let Some(v) = f(step, &samples[lo..hi], labels, reference) {
                points.push(StepPoint {
                    step: step as u32,
                    v,
                });
            }
        }
        points
    }

    /// Turns the root's value into the API's value, dropping names marked
    /// for dropping and rejecting duplicate series.
    fn finish(&self, val: Val, instant: bool) -> Result<QueryValue, QueryError> {
        match val {
            Val::Scalar(values) => {
                if instant {
                    Ok(QueryValue::Scalar(Scalar {
                        t: self.start,
                        v: values.first().copied().unwrap_or(f64::NAN),
                    }))
                } else {
                    let points = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Point::new(self.time(i), *v))
                        .collect();
                    Ok(QueryValue::Matrix(vec![MatrixSeries {
                        metric: Labels::EMPTY,
                        points,
                        histograms: Vec::new(),
                    }]))
                }
            }
            Val::String(s) => Ok(QueryValue::String(StringValue {
                t: self.start,
                v: s,
            })),
            Val::Matrix(series) => Ok(QueryValue::Matrix(series)),
            Val::Vector(series) => {
                let series = drop_names_and_merge(series)?;
                if instant {
                    Ok(QueryValue::Vector(
                        series
                            .into_iter()
                            .filter_map(|mut s| {
                                let value = match s.points.first() {
                                    Some(p) => SampleValue::Float(p.v),
                                    None => SampleValue::Histogram(s.histograms.pop()?.h),
                                };
                                Some(VectorSample {
                                    metric: s.labels,
                                    t: self.start,
                                    value,
                                })
                            })
                            .collect(),
                    ))
                } else {
                    let mut matrix: Vec<MatrixSeries> = series
                        .into_iter()
                        .map(|s| MatrixSeries {
                            metric: s.labels,
                            points: s
                                .points
                                .iter()
                                .map(|p| Point::new(self.time(p.step as usize), p.v))
                                .collect(),
                            histograms: s
                                .histograms
                                .into_iter()
                                .map(|p| HistogramPoint {
                                    t: self.time(p.step as usize),
                                    h: *p.h,
                                })
                                .collect(),
                        })
                        .collect();
                    matrix.sort_by(|a, b| a.metric.cmp(&b.metric));
                    Ok(QueryValue::Matrix(matrix))
                }
            }
        }
    }
}

/// Whether a histogram sample is a staleness marker (its sum is the
/// staleness NaN, as Prometheus marks stale histogram series).
pub(super) fn is_stale_histogram(h: &FloatHistogram) -> bool {
    ember_model::sample::is_stale_nan(h.sum)
}

pub(super) fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

pub(super) fn val_type_name(val: &Val) -> &'static str {
    match val {
        Val::Scalar(_) => "scalar",
        Val::String(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

/// Drops names marked for dropping, then merges series that now share
/// their labels when their points do not overlap (a series that changed
/// its name mid-query stays one series), failing when they do.
pub(super) fn drop_names_and_merge(series: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    for mut s in series {
        if s.drop_name {
            s.labels = drop_metric_identity(&s.labels);
            s.drop_name = false;
        }
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let target = &mut out[i];
                let overlap = |step: u32, points: &[StepPoint]| {
                    points.binary_search_by_key(&step, |p| p.step).is_ok()
                };
                if s.histograms.iter().any(|p| {
                    overlap(p.step, &target.points)
                        || target.histograms.iter().any(|q| q.step == p.step)
                }) || target.histograms.iter().any(|p| overlap(p.step, &s.points))
                {
                    return Err(QueryError::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
                target.points = merge_points(std::mem::take(&mut target.points), s.points)?;
                if !s.histograms.is_empty() {
                    target.histograms.extend(s.histograms);
                    target.histograms.sort_by_key(|p| p.step);
                }
            }
        }
    }
    Ok(out)
}

/// The labels without the metric's identity: `__name__` and, with it, the
/// `__type__` and `__unit__` labels Prometheus's type-and-unit labels
/// feature attaches (a result that is no longer the metric is no longer of
/// its type or unit either).
pub(super) fn drop_metric_identity(labels: &Labels) -> Labels {
    if labels.has("__type__") || labels.has("__unit__") {
        labels.without(&[METRIC_NAME, "__type__", "__unit__"])
    } else {
        labels.drop_metric_name()
    }
}

/// Merges two step-sorted point lists that must not share a step.
pub(super) fn merge_points(
    a: Vec<StepPoint>,
    b: Vec<StepPoint>,
) -> Result<Vec<StepPoint>, QueryError> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.step == y.step => {
                return Err(QueryError::Execution(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
            (Some(x), Some(y)) if x.step < y.step => {
                merged.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                merged.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                merged.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    Ok(merged)
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("query", &self.query.text)
            .finish_non_exhaustive()
    }
}
