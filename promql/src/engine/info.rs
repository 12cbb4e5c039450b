//! `info(v, [selector])` (experimental): enriches each series of `v` with
//! the data labels of the info series (`target_info` by default) that
//! share its identifying labels (`instance`, `job`), as of the same time
//! the series' own samples were read (its `@` and `offset` apply).

use std::collections::{BTreeMap, HashMap};

use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample as Point;
use ember_model::storage::SelectHints;

use super::QueryError;
use super::eval::{Evaluator, StepPoint, StepSeries, Val, offset_ms};
use crate::parser::{self, AtModifier, Expr};

/// Labels that tie a series to its info series.
const IDENTIFYING_LABELS: [&str; 2] = ["instance", "job"];

/// The info metric used when the selector names none.
const DEFAULT_INFO_METRIC: &str = "target_info";

/// An info series and its samples around the reference times.
struct InfoSeries {
    labels: Labels,
    samples: Vec<Point>,
}

impl Evaluator<'_, '_> {
    pub(super) fn eval_info(&self, args: &[&Expr]) -> Result<Val, QueryError> {
        let base_expr = args
            .first()
            .copied()
            .ok_or_else(|| QueryError::BadData("missing argument 0 in call to info".into()))?;
        let (name_matchers, data_matchers) =
            match args.get(1).copied().map(super::eval::strip_parens) {
                None => (Vec::new(), Vec::new()),
                Some(Expr::VectorSelector(vs)) => split_matchers(&self.selector_matchers(vs)?),
                Some(_) => {
                    return Err(QueryError::BadData(
                        "expected label selectors as the second argument to info()".into(),
                    ));
                }
            };
        // Without a name the info metric is `target_info`; with only
        // negative name matchers, any `*_info` metric they leave.
        let mut name_matchers = name_matchers;
        if name_matchers.is_empty() {
            name_matchers.push(Matcher::equal(METRIC_NAME, DEFAULT_INFO_METRIC));
        } else if name_matchers.iter().all(|m| m.op().is_negative()) {
            name_matchers.push(
                Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                    .map_err(|e| QueryError::Internal(e.to_string()))?,
            );
        }
        let base = self.eval_vector(base_expr)?;
        let steps = self.steps();
        // The time each step's samples were read at, for the info lookup.
        let references: Vec<i64> = (0..steps)
            .map(|step| {
                reference_time(
                    base_expr,
                    self.time(step),
                    self.ctx.query_start,
                    self.ctx.query_end,
                )
            })
            .collect();
        let info = self.load_info_series(&name_matchers, &data_matchers, &references)?;
        let by_identity = index_by_identity(&info);
        let requires_match = data_matchers.iter().any(|m| !m.matches(""));
        let lookback = self.ctx.limits.lookback_delta;

        let mut out: Vec<StepSeries> = Vec::new();
        let mut out_index: HashMap<(Labels, bool), usize> = HashMap::new();
        for series in base {
            self.ctx.check()?;
            // A series the info selector itself selects is an info series
            // and is not enriched.
            let is_info_metric = name_matchers
                .iter()
                .all(|m| m.matches_labels(&series.labels));
            let identity = identity_of(&series.labels);
            if is_info_metric || identity.iter().all(String::is_empty) {
                // Info series themselves and series without identifying
                // labels pass through unchanged.
                push(
                    &mut out,
                    &mut out_index,
                    series.labels.clone(),
                    series.drop_name,
                    &series.points,
                );
                continue;
            }
            let candidates = by_identity.get(&identity).map(Vec::as_slice).unwrap_or(&[]);
            for point in &series.points {
                let reference = references[point.step as usize];
                // The newest sample of each info metric wins among series of
                // the same name (a changed info series replaces the old one).
                let mut newest: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
                for &i in candidates {
                    let samples = &info[i].samples;
                    let at = samples.partition_point(|s| s.t <= reference);
                    let Some(sample) = at.checked_sub(1).map(|k| samples[k]) else {
                        continue;
                    };
                    if sample.t <= reference - lookback || sample.is_stale() {
                        continue;
                    }
                    let name = info[i].labels.metric_name().unwrap_or("");
                    if newest.get(name).is_none_or(|(t, _)| sample.t > *t) {
                        newest.insert(name, (sample.t, i));
                    }
                }
                if newest.is_empty() {
                    if !requires_match {
                        push(
                            &mut out,
                            &mut out_index,
                            series.labels.clone(),
                            series.drop_name,
                            &[*point],
                        );
                    }
                    continue;
                }
                let mut added: BTreeMap<&str, &str> = BTreeMap::new();
                for &(_, i) in newest.values() {
                    for (name, value) in info[i].labels.iter() {
                        if name == METRIC_NAME
                            || IDENTIFYING_LABELS.contains(&name)
                            || series.labels.has(name)
                            || (!data_matchers.is_empty()
                                && !data_matchers.iter().any(|m| m.name() == name))
                        {
                            continue;
                        }
                        match added.insert(name, value) {
                            Some(previous) if previous != value => {
                                return Err(QueryError::Execution(format!(
                                    "conflicting label: info metrics give {name} both {previous:?} and {value:?} for {}",
                                    series.labels
                                )));
                            }
                            _ => {}
                        }
                    }
                }
                let mut builder = LabelsBuilder::new(series.labels.clone());
                for (name, value) in added {
                    builder.set(name, value);
                }
                push(
                    &mut out,
                    &mut out_index,
                    builder.labels(),
                    series.drop_name,
                    &[*point],
                );
            }
        }
        Ok(Val::Vector(out))
    }

    fn selector_matchers(&self, vs: &parser::VectorSelector) -> Result<Vec<Matcher>, QueryError> {
        let mut matchers = Vec::new();
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
            matchers.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
        Ok(matchers)
    }

    /// The info series matching all matchers, with their samples from the
    /// earliest reference time's lookback to the latest reference time.
    fn load_info_series(
        &self,
        name_matchers: &[Matcher],
        data_matchers: &[Matcher],
        references: &[i64],
    ) -> Result<Vec<InfoSeries>, QueryError> {
        let Some(querier) = &self.ctx.querier else {
            return Ok(Vec::new());
        };
        let (Some(&first), Some(&last)) = (references.iter().min(), references.iter().max()) else {
            return Ok(Vec::new());
        };
        let from = first - self.ctx.limits.lookback_delta + 1;
        let hints = SelectHints {
            start: from,
            end: last,
            ..SelectHints::default()
        };
        let matchers: Vec<Matcher> = name_matchers.iter().chain(data_matchers).cloned().collect();
        let mut out = Vec::new();
        for series in querier.select(true, Some(&hints), &matchers)? {
            self.ctx.check()?;
            let series = series?;
            let with_histograms = series.may_have_histograms();
            let mut it = series.samples();
            let mut samples = Vec::new();
            if it.seek(from) {
                loop {
                    let sample = it.at();
                    if sample.t > last {
                        break;
                    }
                    // Info metrics carry labels in float samples; a
                    // histogram is not one, and Prometheus refuses it.
                    if with_histograms && it.at_histogram().is_some() {
                        return Err(QueryError::Execution(format!(
                            "info series {} has native histogram samples: info metrics must be floats",
                            series.labels()
                        )));
                    }
                    samples.push(sample);
                    if !it.next() {
                        break;
                    }
                }
            }
            if let Some(error) = it.err() {
                return Err(error.clone().into());
            }
            self.ctx.hold(samples.len())?;
            out.push(InfoSeries {
                labels: series.labels().clone(),
                samples,
            });
        }
        Ok(out)
    }
}

/// Splits matchers into those on `__name__` and the data label matchers.
fn split_matchers(matchers: &[Matcher]) -> (Vec<Matcher>, Vec<Matcher>) {
    matchers
        .iter()
        .cloned()
        .partition(|m| m.name() == METRIC_NAME)
}

fn identity_of(labels: &Labels) -> Vec<String> {
    IDENTIFYING_LABELS
        .iter()
        .map(|name| labels.get(name).unwrap_or("").to_owned())
        .collect()
}

fn index_by_identity(info: &[InfoSeries]) -> HashMap<Vec<String>, Vec<usize>> {
    let mut index: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
    for (i, series) in info.iter().enumerate() {
        index
            .entry(identity_of(&series.labels))
            .or_default()
            .push(i);
    }
    index
}

fn push(
    out: &mut Vec<StepSeries>,
    index: &mut HashMap<(Labels, bool), usize>,
    labels: Labels,
    drop_name: bool,
    points: &[StepPoint],
) {
    let o = *index.entry((labels.clone(), drop_name)).or_insert_with(|| {
        out.push(StepSeries {
            histograms: Vec::new(),
            labels,
            drop_name,
            points: Vec::new(),
        });
        out.len() - 1
    });
    out[o].points.extend_from_slice(points);
}

/// The time the samples of `expr` at evaluation time `ts` were read at:
/// the `@` and `offset` of its first selector, composed through the
/// subqueries on the way to it.
fn reference_time(expr: &Expr, ts: i64, query_start: i64, query_end: i64) -> i64 {
    let shift = |at: &Option<AtModifier>, offset: &Option<parser::Offset>, t: i64| {
        let pinned = match at {
            None => t,
            Some(AtModifier::Start) => query_start,
            Some(AtModifier::End) => query_end,
            Some(AtModifier::At(time)) => ember_model::sample::timestamp::from_system_time(*time),
        };
        pinned - offset_ms(offset)
    };
    match expr {
        Expr::VectorSelector(vs) => shift(&vs.at, &vs.offset, ts),
        Expr::MatrixSelector(ms) => shift(&ms.vs.at, &ms.vs.offset, ts),
        Expr::Subquery(sq) => reference_time(
            &sq.expr,
            shift(&sq.at, &sq.offset, ts),
            query_start,
            query_end,
        ),
        Expr::Paren(p) => reference_time(&p.expr, ts, query_start, query_end),
        Expr::Unary(u) => reference_time(&u.expr, ts, query_start, query_end),
        Expr::Aggregate(agg) => reference_time(&agg.expr, ts, query_start, query_end),
        Expr::Call(call) => call
            .args
            .args
            .iter()
            .find(|a| has_selector(a))
            .map_or(ts, |a| reference_time(a, ts, query_start, query_end)),
        Expr::Binary(b) => {
            let side = if has_selector(&b.lhs) { &b.lhs } else { &b.rhs };
            reference_time(side, ts, query_start, query_end)
        }
        _ => ts,
    }
}

fn has_selector(expr: &Expr) -> bool {
    let mut found = false;
    super::eval::walk(expr, &mut |node| {
        found |= matches!(node, Expr::VectorSelector(_) | Expr::MatrixSelector(_));
    });
    found
}
