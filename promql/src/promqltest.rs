//! A runner for Prometheus's promqltest DSL (`promql/promqltest/testdata`).
//!
//! A file is a sequence of commands:
//!
//! - `load <interval>` (and `load_with_nhcb`) followed by indented series
//!   lines in expanding notation (`metric{a="b"} 1+2x3 _ stale NaN`);
//! - `clear`, which empties the storage;
//! - `eval instant at <time> <expr>` and
//!   `eval range from <time> to <time> step <duration> <expr>` (and the
//!   older `eval_fail`, `eval_warn`, `eval_info`, `eval_ordered`), followed
//!   by `expect ...` directives and the expected result.
//!
//! Semantics follow upstream's runner: values are compared with a relative
//! tolerance of 1e-6 (NaN equals NaN), label sets must match exactly, order
//! only with `expect ordered`; every instant evaluation is also run as a
//! range query around the instant (checking the middle step) and, unless
//! it uses a time-dependent function, re-run with `@ <time>` pinned on its
//! selectors at five other evaluation times (upstream's
//! `atModifierTestCases`).
//!
//! Native histograms are written in the `{{schema:0 sum:5 count:4
//! buckets:[1 2 1]}}` notation (with `{{...}}+{{...}}x3` expansion) in
//! series and expected results, and compared as upstream compares them
//! (compacted, floats within the tolerance). `load_with_nhcb` also loads
//! the native histograms with custom buckets that upstream derives from
//! classic `_bucket`/`_count`/`_sum` series.
//!
//! ```
//! use ember_promql::promqltest::run_str;
//!
//! let report = run_str("example", "load 1m\n  up 1 2 3\n\neval instant at 2m up\n  up 3\n")?;
//! assert_eq!(report.passed, 1);
//! # Ok::<(), ember_promql::promqltest::TestError>(())
//! ```

use std::fmt;

use ember_model::histogram::{CounterResetHint, FloatHistogram, Span};
use ember_model::labels::{Labels, METRIC_NAME};
use ember_model::sample::stale_nan;
use ember_model::storage::{Appendable, MemStorage};

use crate::engine::{Engine, EngineOptions, QueryOptions, QueryOutput};
use crate::parser::{self, AtModifier, Expr};
use crate::value::{QueryValue, SampleValue, VectorSample, format_float};

/// Relative tolerance of value comparisons, as upstream's `defaultEpsilon`.
const EPSILON: f64 = 1e-6;

/// A malformed test file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TestError {
    /// The file's name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The outcome of one file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The file's name.
    pub name: String,
    /// Evaluations that passed (with all their variants).
    pub passed: usize,
    /// Evaluations that failed: line, expression and why.
    pub failed: Vec<(usize, String, String)>,
    /// Evaluations not run: line and why.
    pub skipped: Vec<(usize, String)>,
}

impl FileReport {
    /// Evaluations run.
    pub fn total(&self) -> usize {
        self.passed + self.failed.len()
    }
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} {:>5} / {:<5} passed, {:>4} skipped",
            self.name,
            self.passed,
            self.total(),
            self.skipped.len()
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SequenceValue {
    Omitted,
    Value(f64),
    Histogram(Box<FloatHistogram>),
}

#[derive(Debug, Clone)]
struct ExpectedSeries {
    labels: Labels,
    values: Vec<SequenceValue>,
}

#[derive(Debug, Clone, Default)]
struct AnnotationExpectation {
    any: bool,
    none: bool,
    messages: Vec<String>,
    regexes: Vec<String>,
}

#[derive(Debug, Clone)]
enum FailExpectation {
    Any,
    Message(String),
    Regex(String),
}

#[derive(Debug, Clone)]
struct EvalCommand {
    line: usize,
    expr: String,
    /// `Some((start, end, step))` for range evaluations.
    range: Option<(i64, i64, i64)>,
    at: i64,
    fail: Option<FailExpectation>,
    ordered: bool,
    warn: AnnotationExpectation,
    info: AnnotationExpectation,
    expected: Vec<ExpectedSeries>,
    expected_scalar: Option<f64>,
    expected_string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

/// Runs the DSL in `text` (named `name` in reports).
pub fn run_str(name: &str, text: &str) -> Result<FileReport, TestError> {
    // Upstream's test engine enables the experimental functions.
    let engine = Engine::new(EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    });
    let mut report = FileReport {
        name: name.to_owned(),
        ..FileReport::default()
    };
    let lines: Vec<&str> = text.lines().collect();
    let error = |line: usize, message: String| TestError {
        file: name.to_owned(),
        line: line + 1,
        message,
    };
    let mut storage = MemStorage::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let block_end = block_end(&lines, i + 1);
        match word {
            "clear" => {
                storage = MemStorage::new();
            }
            "load" | "load_with_nhcb" => {
                let interval = parse_duration(rest.trim())
                    .ok_or_else(|| error(i, format!("invalid load interval {rest:?}")))?;
                load(
                    &storage,
                    &lines[i + 1..block_end],
                    interval,
                    word == "load_with_nhcb",
                )
                .map_err(|m| error(i, m))?;
            }
            "eval" | "eval_fail" | "eval_warn" | "eval_info" | "eval_ordered" => {
                let command = parse_eval(word, rest, &lines[i + 1..block_end], i + 1)
                    .map_err(|m| error(i, m))?;
                match run_eval(&engine, &storage, &command) {
                    Ok(()) => report.passed += 1,
                    Err(message) => {
                        report
                            .failed
                            .push((command.line, command.expr.clone(), message))
                    }
                }
            }
            other => return Err(error(i, format!("unknown command {other:?}"))),
        }
        i = block_end.max(i + 1);
    }
    Ok(report)
}

/// Index of the first line after the indented block starting at `from`.
fn block_end(lines: &[&str], from: usize) -> usize {
    let mut end = from;
    while end < lines.len() {
        let line = lines[end];
        if line.trim().is_empty() {
            break;
        }
        if !line.starts_with(char::is_whitespace) && !line.trim_start().starts_with('#') {
            break;
        }
        end += 1;
    }
    end
}

fn visit_calls(expr: &Expr, f: &mut dyn FnMut(&str)) {
    match expr {
        Expr::Call(call) => {
            f(call.func.name);
            call.args.args.iter().for_each(|a| visit_calls(a, f));
        }
        Expr::Aggregate(agg) => {
            if let Some(param) = &agg.param {
                visit_calls(param, f);
            }
            visit_calls(&agg.expr, f);
        }
        Expr::Binary(b) => {
            visit_calls(&b.lhs, f);
            visit_calls(&b.rhs, f);
        }
        Expr::Unary(u) => visit_calls(&u.expr, f),
        Expr::Paren(p) => visit_calls(&p.expr, f),
        Expr::Subquery(s) => visit_calls(&s.expr, f),
        _ => {}
    }
}

/// Parses a duration as Prometheus's `model.ParseDuration`, also accepting
/// plain (possibly fractional) seconds; ms.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Some((seconds * 1000.0).round() as i64);
    }
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[unit_len..];
    }
    Some(if negative { -total } else { total })
}

/// Splits `metric{labels} rest` into labels and the rest.
fn parse_series(text: &str) -> Result<(Labels, &str), String> {
    let text = text.trim();
    let (name, after_name) = match text.find(|c: char| c == '{' || c.is_whitespace()) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push((METRIC_NAME.to_owned(), name.to_owned()));
    }
    let mut rest = after_name;
    if let Some(inner) = after_name.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        let mut pending_name: Option<String> = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' | ' ' | '\t' | '=' => {}
                '"' | '\'' => {
                    let mut value = String::new();
                    while let Some((_, c2)) = chars.next() {
                        match c2 {
                            '\\' => match chars.next().map(|(_, e)| e) {
                                Some('n') => value.push('\n'),
                                Some('t') => value.push('\t'),
                                Some(other) => value.push(other),
                                None => break,
                            },
                            q if q == c => break,
                            other => value.push(other),
                        }
                    }
                    match pending_name.take() {
                        Some(label) => pairs.push((label, value)),
                        None => {
                            // A quoted name: a label name when `=` follows,
                            // otherwise the metric name.
                            let after =
                                inner[chars.peek().map_or(inner.len(), |(j, _)| *j)..].trim_start();
                            if after.starts_with('=') {
                                pending_name = Some(value);
                            } else {
                                pairs.push((METRIC_NAME.to_owned(), value));
                            }
                        }
                    }
                }
                _ => {
                    let start = i;
                    let mut stop = inner.len();
                    while let Some(&(j, c2)) = chars.peek() {
                        if c2.is_ascii_alphanumeric() || c2 == '_' || c2 == ':' || c2 == '.' {
                            chars.next();
                        } else {
                            stop = j;
                            break;
                        }
                    }
                    pending_name = Some(inner[start..stop].to_owned());
                }
            }
        }
        let end = end.ok_or_else(|| format!("unterminated label set in {text:?}"))?;
        rest = &inner[end + 1..];
    }
    let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
    Ok((labels, rest.trim()))
}

fn parse_number(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        "stale" => return Some(stale_nan()),
        _ => {}
    }
    text.parse().ok()
}

/// Splits series notation into tokens, keeping `{{...}}` histograms (with
/// their spaces and any `+{{...}}x3` expansion) whole.
fn tokens(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let mut end = 0;
        loop {
            let tail = &rest[end..];
            if tail.starts_with("{{") {
                let close = tail
                    .find("}}")
                    .ok_or_else(|| format!("unterminated histogram in {text:?}"))?;
                end += close + 2;
                continue;
            }
            match tail.chars().next() {
                Some(c) if !c.is_whitespace() => end += c.len_utf8(),
                _ => break,
            }
        }
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

/// Parses the inside of `{{...}}`: `schema:0 sum:5 count:4 z_bucket:1
/// z_bucket_w:0.001 buckets:[1 2] offset:-1 n_buckets:[1] n_offset:0
/// counter_reset_hint:gauge custom_values:[1 2]`.
fn parse_histogram(text: &str) -> Result<FloatHistogram, String> {
    let inner = text
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .ok_or_else(|| format!("bad histogram {text:?}"))?;
    let mut h = FloatHistogram::default();
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = inner.trim();
    let number = |v: &str| parse_number(v).ok_or_else(|| format!("bad number {v:?} in {text:?}"));
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once(':')
            .ok_or_else(|| format!("bad histogram field in {text:?}"))?;
        let after = after.trim_start();
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let close = list
                .find(']')
                .ok_or_else(|| format!("unterminated list in {text:?}"))?;
            (&list[..close], &list[close + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let list =
            || -> Result<Vec<f64>, String> { value.split_whitespace().map(number).collect() };
        match key.trim() {
            "schema" => h.schema = value.parse().map_err(|_| format!("bad schema {value:?}"))?,
            "sum" => h.sum = number(value)?,
            "count" => h.count = number(value)?,
            "z_bucket" => h.zero_count = number(value)?,
            "z_bucket_w" => h.zero_threshold = number(value)?,
            "buckets" => buckets = list()?,
            "n_buckets" => n_buckets = list()?,
            "offset" => offset = value.parse().map_err(|_| format!("bad offset {value:?}"))?,
            "n_offset" => n_offset = value.parse().map_err(|_| format!("bad offset {value:?}"))?,
            "custom_values" => h.custom_values = list()?,
            "counter_reset_hint" => {
                h.counter_reset_hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    other => return Err(format!("bad counter_reset_hint {other:?}")),
                }
            }
            other => return Err(format!("unknown histogram field {other:?}")),
        }
        rest = next.trim_start();
    }
    if !buckets.is_empty() {
        h.positive_spans = vec![Span::new(offset, buckets.len() as u32)];
        h.positive_buckets = buckets;
    }
    if !n_buckets.is_empty() {
        h.negative_spans = vec![Span::new(n_offset, n_buckets.len() as u32)];
        h.negative_buckets = n_buckets;
    }
    Ok(h)
}

/// Expands a histogram token: `{{...}}`, `{{...}}x3`, `{{...}}+{{...}}x3`,
/// `{{...}}-{{...}}x3`.
fn parse_histogram_token(token: &str, values: &mut Vec<SequenceValue>) -> Result<(), String> {
    let first_end = token.find("}}").map(|i| i + 2).unwrap_or(token.len());
    let start = parse_histogram(&token[..first_end])?;
    let rest = &token[first_end..];
    if rest.is_empty() {
        values.push(SequenceValue::Histogram(Box::new(start)));
        return Ok(());
    }
    let (increment, times) = match rest.rsplit_once('x') {
        Some((inc, times)) if inc.is_empty() || inc.ends_with("}}") => (inc, times),
        _ => return Err(format!("bad histogram expansion {token:?}")),
    };
    let times: usize = times
        .parse()
        .map_err(|_| format!("bad repetition {token:?}"))?;
    let step = match increment.chars().next() {
        None => None,
        Some(sign @ ('+' | '-')) => Some((sign, parse_histogram(&increment[1..])?)),
        Some(_) => return Err(format!("bad histogram expansion {token:?}")),
    };
    let mut current = start;
    values.push(SequenceValue::Histogram(Box::new(current.clone())));
    for _ in 0..times {
        if let Some((sign, inc)) = &step {
            let combined = if *sign == '+' {
                current.add(inc)
            } else {
                current.sub(inc)
            }
            .map_err(|e| format!("{token:?}: {e}"))?;
            current = combined.histogram;
        }
        values.push(SequenceValue::Histogram(Box::new(current.clone())));
    }
    Ok(())
}

/// Expands series notation: `1+2x3`, `1-2x3`, `5x2`, `_`, `_x3`, `stale`,
/// and native histograms in `{{...}}` notation.
fn parse_values(text: &str) -> Result<Vec<SequenceValue>, String> {
    let mut values = Vec::new();
    for token in tokens(text)? {
        if token.starts_with("{{") {
            parse_histogram_token(token, &mut values)?;
            continue;
        }
        if token == "_" {
            values.push(SequenceValue::Omitted);
            continue;
        }
        if let Some(times) = token.strip_prefix("_x") {
            let n: usize = times
                .parse()
                .map_err(|_| format!("bad repetition {token:?}"))?;
            values.extend(std::iter::repeat_n(SequenceValue::Omitted, n));
            continue;
        }
        if let Some(v) = parse_number(token) {
            values.push(SequenceValue::Value(v));
            continue;
        }
        let (base, times) = token
            .rsplit_once('x')
            .ok_or_else(|| format!("bad value {token:?}"))?;
        let times: usize = times
            .parse()
            .map_err(|_| format!("bad repetition {token:?}"))?;
        // The operator between start and increment: the last `+`/`-` that
        // is not a sign at the start or after an exponent.
        let bytes = base.as_bytes();
        let split = (1..bytes.len()).rev().find(|&k| {
            (bytes[k] == b'+' || bytes[k] == b'-') && !matches!(bytes[k - 1], b'e' | b'E')
        });
        let (start, increment) = match split {
            Some(k) => {
                let start =
                    parse_number(&base[..k]).ok_or_else(|| format!("bad value {token:?}"))?;
                let magnitude =
                    parse_number(&base[k + 1..]).ok_or_else(|| format!("bad value {token:?}"))?;
                (
                    start,
                    if bytes[k] == b'-' {
                        -magnitude
                    } else {
                        magnitude
                    },
                )
            }
            None => (
                parse_number(base).ok_or_else(|| format!("bad value {token:?}"))?,
                0.0,
            ),
        };
        let mut current = start;
        values.push(SequenceValue::Value(current));
        for _ in 0..times {
            current += increment;
            values.push(SequenceValue::Value(current));
        }
    }
    Ok(values)
}

fn load(
    storage: &MemStorage,
    lines: &[&str],
    interval: i64,
    with_nhcb: bool,
) -> Result<(), String> {
    let mut app = storage.appender();
    let mut series: std::collections::BTreeMap<
        Labels,
        std::collections::BTreeMap<i64, SequenceValue>,
    > = std::collections::BTreeMap::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (labels, values) = parse_series(line)?;
        // A series given twice takes the later line's values, as upstream's
        // loader overwrites them.
        let samples = series.entry(labels).or_default();
        for (i, value) in parse_values(values)?.into_iter().enumerate() {
            if value != SequenceValue::Omitted {
                samples.insert(i as i64 * interval, value);
            }
        }
    }
    for (labels, samples) in &series {
        for (&t, value) in samples {
            match value {
                SequenceValue::Value(v) => app.append(None, labels, t, *v),
                SequenceValue::Histogram(h) => app.append_histogram(None, labels, t, h),
                SequenceValue::Omitted => continue,
            }
            .map_err(|e| e.to_string())?;
        }
    }
    if with_nhcb {
        for (labels, samples) in custom_bucket_histograms(&series)? {
            for (t, h) in samples {
                app.append_histogram(None, &labels, t, &h)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    app.commit().map_err(|e| e.to_string())
}

/// The native histograms with custom buckets (NHCB) that upstream's
/// `load_with_nhcb` appends beside classic histograms: the `_bucket`,
/// `_count` and `_sum` series of a histogram become one series named
/// after it (without `le`), with the finite `le` bounds as custom values
/// and the cumulative bucket counts turned into per-bucket counts.
#[allow(clippy::type_complexity)]
fn custom_bucket_histograms(
    series: &std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, SequenceValue>>,
) -> Result<Vec<(Labels, Vec<(i64, FloatHistogram)>)>, String> {
    #[derive(Default)]
    struct Parts {
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: Option<f64>,
    }
    let mut histograms: std::collections::BTreeMap<Labels, std::collections::BTreeMap<i64, Parts>> =
        std::collections::BTreeMap::new();
    for (labels, samples) in series {
        let name = labels.metric_name().unwrap_or("");
        let Some((base, suffix)) = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).map(|base| (base, *suffix)))
        else {
            continue;
        };
        let le = match suffix {
            "_bucket" => match labels.get("le").and_then(crate::engine::parse_go_float) {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            },
            _ => None,
        };
        let mut builder = ember_model::labels::LabelsBuilder::new(labels.clone());
        builder.del("le");
        builder.set(METRIC_NAME, base);
        let key = builder.labels();
        let by_time = histograms.entry(key).or_default();
        for (&t, value) in samples {
            let SequenceValue::Value(v) = value else {
                continue;
            };
            let parts = by_time.entry(t).or_default();
            match (suffix, le) {
                ("_bucket", Some(le)) => parts.buckets.push((le, *v)),
                ("_count", _) => parts.count = Some(*v),
                _ => parts.sum = Some(*v),
            }
        }
    }
    let mut out = Vec::new();
    for (labels, by_time) in histograms {
        let mut samples = Vec::new();
        for (t, mut parts) in by_time {
            if parts.buckets.is_empty() {
                continue;
            }
            parts
                .buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            // One bucket per bound, however the bound was spelled (the
            // converter keys buckets by their bound).
            parts.buckets.dedup_by(|later, earlier| {
                if later.0 == earlier.0 {
                    earlier.1 = later.1;
                    true
                } else {
                    false
                }
            });
            let mut custom_values = Vec::new();
            let mut counts = Vec::new();
            let mut previous = 0.0;
            for &(le, cumulative) in &parts.buckets {
                if le != f64::INFINITY {
                    custom_values.push(le);
                }
                counts.push(cumulative - previous);
                previous = cumulative;
            }
            let count = parts.count.unwrap_or(previous);
            if parts.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                // No `+Inf` bucket: the overall count fills it.
                counts.push(count - previous);
            }
            let h = FloatHistogram {
                schema: ember_model::histogram::CUSTOM_BUCKETS_SCHEMA,
                count,
                sum: parts.sum.unwrap_or(0.0),
                positive_spans: vec![Span::new(0, counts.len() as u32)],
                positive_buckets: counts,
                custom_values,
                ..FloatHistogram::default()
            };
            samples.push((t, h));
        }
        if !samples.is_empty() {
            out.push((labels, samples));
        }
    }
    Ok(out)
}

fn parse_eval(word: &str, rest: &str, body: &[&str], line: usize) -> Result<EvalCommand, String> {
    let mut command = EvalCommand {
        line,
        expr: String::new(),
        range: None,
        at: 0,
        fail: (word == "eval_fail").then_some(FailExpectation::Any),
        ordered: word == "eval_ordered",
        warn: AnnotationExpectation {
            any: word == "eval_warn",
            ..Default::default()
        },
        info: AnnotationExpectation {
            any: word == "eval_info",
            ..Default::default()
        },
        expected: Vec::new(),
        expected_scalar: None,
        expected_string: None,
        range_vector: None,
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        ["instant", "at", time, ..] => {
            command.at = parse_duration(time).ok_or_else(|| format!("bad time {time:?}"))?;
            command.expr = after_words(rest, 3).to_owned();
        }
        ["range", "from", start, "to", end, "step", step, ..] => {
            let start = parse_duration(start).ok_or_else(|| format!("bad time {start:?}"))?;
            let end = parse_duration(end).ok_or_else(|| format!("bad time {end:?}"))?;
            let step = parse_duration(step).ok_or_else(|| format!("bad step {step:?}"))?;
            command.range = Some((start, end, step));
            command.expr = after_words(rest, 7).to_owned();
        }
        _ => return Err(format!("invalid evaluation command {rest:?}")),
    }
    for raw in body {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(directive) = text.strip_prefix("expect ") {
            parse_expect(&mut command, directive.trim())?;
            continue;
        }
        if !text.contains('{')
            && !text.contains(char::is_whitespace)
            && let Some(v) = parse_number(text)
        {
            command.expected_scalar = Some(v);
            continue;
        }
        let (labels, values) = parse_series(text)?;
        command.expected.push(ExpectedSeries {
            labels,
            values: parse_values(values)?,
        });
    }
    Ok(command)
}

/// Drops one pair of surrounding double quotes (upstream accepts
/// `expect fail msg: "..."`).
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn after_words(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim()
}

fn parse_expect(command: &mut EvalCommand, directive: &str) -> Result<(), String> {
    let (kind, rest) = directive
        .split_once(char::is_whitespace)
        .unwrap_or((directive, ""));
    let rest = rest.trim();
    let (mode, argument) = match rest.split_once(':') {
        Some((mode @ ("msg" | "regex"), argument)) => (mode, argument.trim()),
        _ => ("", rest),
    };
    let annotation = |expectation: &mut AnnotationExpectation| match mode {
        "msg" => expectation.messages.push(argument.to_owned()),
        "regex" => expectation.regexes.push(argument.to_owned()),
        _ => expectation.any = true,
    };
    match kind {
        "fail" => {
            command.fail = Some(match mode {
                "msg" => FailExpectation::Message(unquote(argument).to_owned()),
                "regex" => FailExpectation::Regex(unquote(argument).to_owned()),
                _ => FailExpectation::Any,
            });
        }
        "warn" => annotation(&mut command.warn),
        "info" => annotation(&mut command.info),
        "no_warn" => command.warn.none = true,
        "no_info" => command.info.none = true,
        "ordered" => command.ordered = true,
        "string" => {
            let quoted = rest.trim();
            let inner = quoted
                .get(1..quoted.len().saturating_sub(1))
                .ok_or_else(|| format!("bad string expectation {rest:?}"))?;
            command.expected_string = Some(inner.to_owned());
        }
        "range" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["vector", "from", start, "to", end, "step", step] => {
                    command.range_vector = Some((
                        parse_duration(start).ok_or("bad range vector start")?,
                        parse_duration(end).ok_or("bad range vector end")?,
                        parse_duration(step).ok_or("bad range vector step")?,
                    ));
                }
                _ => return Err(format!("bad range vector expectation {rest:?}")),
            }
        }
        other => return Err(format!("unknown expectation {other:?}")),
    }
    Ok(())
}

/// Upstream's `AtModifierUnsafeFunctions`: results depend on the
/// evaluation time even when every selector is pinned.
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Pins `@ t` on every selector and subquery outside a subquery; `false`
/// when the expression uses an @-unsafe function.
fn pin_at(expr: &mut Expr, at: &AtModifier) -> bool {
    match expr {
        Expr::VectorSelector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(at.clone());
            }
            true
        }
        Expr::MatrixSelector(ms) => {
            if ms.vs.at.is_none() {
                ms.vs.at = Some(at.clone());
            }
            true
        }
        Expr::Subquery(sq) => {
            if sq.at.is_none() {
                sq.at = Some(at.clone());
            }
            true
        }
        Expr::Call(call) => {
            let safe = !AT_UNSAFE_FUNCTIONS.contains(&call.func.name);
            call.args
                .args
                .iter_mut()
                .fold(safe, |ok, a| pin_at(a, at) && ok)
        }
        Expr::Aggregate(agg) => {
            let mut ok = true;
            if let Some(param) = &mut agg.param {
                ok &= pin_at(param, at);
            }
            pin_at(&mut agg.expr, at) && ok
        }
        Expr::Binary(b) => {
            let ok = pin_at(&mut b.lhs, at);
            pin_at(&mut b.rhs, at) && ok
        }
        Expr::Unary(u) => pin_at(&mut u.expr, at),
        Expr::Paren(p) => pin_at(&mut p.expr, at),
        _ => true,
    }
}

fn run_eval(engine: &Engine, storage: &MemStorage, command: &EvalCommand) -> Result<(), String> {
    let query = match parser::parse_query(&command.expr) {
        Ok(query) => query,
        Err(error) => {
            return match command.fail {
                Some(_) => check_failure(command, &error.to_string()),
                None => Err(format!("parse error: {error}")),
            };
        }
    };
    let options = QueryOptions::default();
    if let Some((start, end, step)) = command.range {
        let result = engine.range_query_output(storage, &query, start, end, step, &options);
        return check(command, result, Some((start, end, step)));
    }
    let result = engine.instant_query_output(storage, &query, command.at, &options);
    check(command, result, None).map_err(|e| format!("instant query at {}: {e}", command.at))?;
    check_range_mode(engine, storage, command, &query, command.at)?;
    // Upstream's `@` variants.
    let Ok(at) = AtModifier::try_from(command.at as f64 / 1000.0) else {
        return Ok(());
    };
    let mut pinned = query.clone();
    if !pin_at(&mut pinned.expr, &at) || pinned.expr == query.expr {
        return Ok(());
    }
    let ts = command.at;
    let times = if ts == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
    };
    for t in times {
        let result = engine.instant_query_output(storage, &pinned, t, &options);
        check(command, result, None).map_err(|e| format!("@ variant at {t}: {e}"))?;
        check_range_mode(engine, storage, command, &pinned, t)
            .map_err(|e| format!("@ variant at {t}: {e}"))?;
    }
    Ok(())
}

/// Upstream also runs each instant query as a range query from one minute
/// before to one minute after and compares the middle step.
fn check_range_mode(
    engine: &Engine,
    storage: &MemStorage,
    command: &EvalCommand,
    query: &parser::Query,
    t: i64,
) -> Result<(), String> {
    if command.fail.is_some() || command.range_vector.is_some() || command.expected_string.is_some()
    {
        return Ok(());
    }
    if !matches!(
        query.expr.value_type(),
        parser::ValueType::Vector | parser::ValueType::Scalar
    ) {
        return Ok(());
    }
    // `start()`, `end()`, `step()` and `range()` describe the query itself,
    // so the range-mode twin of an instant query legitimately differs.
    let mut describes_query = false;
    visit_calls(&query.expr, &mut |name| {
        describes_query |= matches!(name, "start" | "end" | "step" | "range");
    });
    if describes_query {
        return Ok(());
    }
    let result = engine
        .range_query_output(
            storage,
            query,
            t - 60_000,
            t + 60_000,
            60_000,
            &QueryOptions::default(),
        )
        .map_err(|e| format!("range mode: unexpected error {e}"))?;
    // Ordering is not defined for range queries; upstream only requires
    // the range query to succeed.
    if command.ordered {
        return Ok(());
    }
    let QueryValue::Matrix(matrix) = result.value else {
        return Err("range mode: not a matrix".into());
    };
    if matrix.windows(2).any(|w| w[0].metric > w[1].metric) {
        return Err("range mode: matrix not sorted by labels".into());
    }
    let vector: Vec<VectorSample> = matrix
        .into_iter()
        .filter_map(|s| {
            let value = match s.points.iter().find(|p| p.t == t) {
                Some(p) => SampleValue::Float(p.v),
                None => SampleValue::Histogram(Box::new(
                    s.histograms.iter().find(|p| p.t == t)?.h.clone(),
                )),
            };
            Some(VectorSample {
                metric: s.metric.clone(),
                t,
                value,
            })
        })
        .collect();
    let value = if command.expected_scalar.is_some() {
        match vector.first() {
            Some(VectorSample {
                value: SampleValue::Float(v),
                ..
            }) => QueryValue::Scalar(crate::value::Scalar { t, v: *v }),
            _ => return Err("range mode: no scalar".into()),
        }
    } else {
        QueryValue::Vector(vector)
    };
    compare(command, &value, None).map_err(|e| format!("range mode: {e}"))
}

fn check_failure(command: &EvalCommand, message: &str) -> Result<(), String> {
    match &command.fail {
        Some(FailExpectation::Message(expected)) if expected != message => {
            Err(format!("expected error {expected:?}, got {message:?}"))
        }
        Some(FailExpectation::Regex(pattern)) => {
            let regex = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
            if regex.is_match(message) {
                Ok(())
            } else {
                Err(format!(
                    "expected error matching {pattern:?}, got {message:?}"
                ))
            }
        }
        _ => Ok(()),
    }
}

fn check(
    command: &EvalCommand,
    result: Result<QueryOutput, crate::engine::QueryError>,
    range: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    let result = match result {
        Err(error) => {
            return match command.fail {
                Some(_) => check_failure(command, &error.to_string()),
                None => Err(format!("unexpected error: {error}")),
            };
        }
        Ok(result) => result,
    };
    if command.fail.is_some() {
        return Err(format!(
            "expected an error, got {:?}",
            result.value.type_name()
        ));
    }
    let warnings: Vec<&str> = result.annotations.warnings().collect();
    let infos: Vec<&str> = result.annotations.infos().collect();
    check_annotations("warning", &command.warn, &warnings)?;
    check_annotations("info", &command.info, &infos)?;
    compare(command, &result.value, range)
}

fn check_annotations(
    kind: &str,
    expectation: &AnnotationExpectation,
    got: &[&str],
) -> Result<(), String> {
    if expectation.none && !got.is_empty() {
        return Err(format!("unexpected {kind}s: {got:?}"));
    }
    let expects_some =
        expectation.any || !expectation.messages.is_empty() || !expectation.regexes.is_empty();
    if expects_some && got.is_empty() {
        return Err(format!("expected {kind}s, got none"));
    }
    if expectation.messages.is_empty() && expectation.regexes.is_empty() {
        return Ok(());
    }
    let regexes = expectation
        .regexes
        .iter()
        .map(|p| regex::Regex::new(p).map_err(|e| format!("bad regex {p:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Every expectation must match an annotation, and every annotation an
    // expectation.
    for message in &expectation.messages {
        if !got.contains(&message.as_str()) {
            return Err(format!("expected {kind} {message:?}, got {got:?}"));
        }
    }
    for regex in &regexes {
        if !got.iter().any(|g| regex.is_match(g)) {
            return Err(format!(
                "expected {kind} matching {:?}, got {got:?}",
                regex.as_str()
            ));
        }
    }
    for annotation in got {
        if !expectation.messages.iter().any(|m| m == annotation)
            && !regexes.iter().any(|r| r.is_match(annotation))
        {
            return Err(format!("unexpected {kind} {annotation:?}"));
        }
    }
    Ok(())
}

/// Upstream's `almost.Equal`.
fn almost_equal(a: f64, b: f64) -> bool {
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
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Compares histograms as upstream's runner does: both compacted, floats
/// within the tolerance, the counter-reset hint not compared.
fn histograms_match(expected: &FloatHistogram, got: &FloatHistogram) -> bool {
    let (mut a, mut b) = (expected.clone(), got.clone());
    a.compact(0);
    b.compact(0);
    let floats = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| almost_equal(*p, *q))
    };
    a.schema == b.schema
        && almost_equal(a.zero_threshold, b.zero_threshold)
        && almost_equal(a.zero_count, b.zero_count)
        && almost_equal(a.count, b.count)
        && almost_equal(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && floats(&a.positive_buckets, &b.positive_buckets)
        && floats(&a.negative_buckets, &b.negative_buckets)
        && floats(&a.custom_values, &b.custom_values)
}

fn value_matches(expected: &SequenceValue, got: &SampleValue) -> bool {
    match (expected, got) {
        (SequenceValue::Value(e), SampleValue::Float(g)) => almost_equal(*e, *g),
        (SequenceValue::Histogram(e), SampleValue::Histogram(g)) => histograms_match(e, g),
        _ => false,
    }
}

fn show(value: &SampleValue) -> String {
    match value {
        SampleValue::Float(v) => format_float(*v),
        SampleValue::Histogram(h) => h.to_string(),
    }
}

fn show_expected(value: &SequenceValue) -> String {
    match value {
        SequenceValue::Value(v) => format_float(*v),
        SequenceValue::Histogram(h) => h.to_string(),
        SequenceValue::Omitted => "_".into(),
    }
}

fn compare(
    command: &EvalCommand,
    value: &QueryValue,
    range: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    match value {
        QueryValue::String(s) => match &command.expected_string {
            Some(expected) if *expected == s.v => Ok(()),
            expected => Err(format!("expected string {expected:?}, got {:?}", s.v)),
        },
        QueryValue::Scalar(s) => match command.expected_scalar {
            Some(expected) if almost_equal(expected, s.v) => Ok(()),
            expected => Err(format!(
                "expected scalar {expected:?}, got {}",
                format_float(s.v)
            )),
        },
        QueryValue::Vector(vector) => {
            if command.expected_scalar.is_some() {
                return Err("expected a scalar, got a vector".into());
            }
            if vector.len() != command.expected.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    command.expected.len(),
                    vector.len(),
                    vector
                        .iter()
                        .map(|s| format!("{} => {}", s.metric, show(&s.value)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for (position, sample) in vector.iter().enumerate() {
                let Some(index) = command
                    .expected
                    .iter()
                    .position(|e| e.labels == sample.metric)
                else {
                    return Err(format!(
                        "unexpected metric {} => {} in result",
                        sample.metric,
                        show(&sample.value)
                    ));
                };
                if command.ordered && index != position {
                    return Err(format!(
                        "expected {} at position {index}, got position {position}",
                        sample.metric
                    ));
                }
                let Some(expected) = command.expected[index]
                    .values
                    .first()
                    .filter(|v| **v != SequenceValue::Omitted)
                else {
                    return Err(format!("no expected value for {}", sample.metric));
                };
                if !value_matches(expected, &sample.value) {
                    return Err(format!(
                        "expected {} for {}, got {}",
                        show_expected(expected),
                        sample.metric,
                        show(&sample.value)
                    ));
                }
            }
            Ok(())
        }
        QueryValue::Matrix(matrix) => {
            let (start, end, step) = match (range, command.range_vector) {
                (Some(r), _) | (None, Some(r)) => r,
                (None, None) => return Err("got a matrix, expected no range".into()),
            };
            let describe = |s: &crate::value::MatrixSeries| {
                let mut all: Vec<(i64, String)> = s
                    .points
                    .iter()
                    .map(|p| (p.t, format_float(p.v)))
                    .chain(s.histograms.iter().map(|p| (p.t, p.h.to_string())))
                    .collect();
                all.sort_by_key(|p| p.0);
                let body: Vec<String> = all.iter().map(|(t, v)| format!("{v} @[{t}]")).collect();
                format!("{} => {}", s.metric, body.join(" "))
            };
            if matrix.len() != command.expected.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    command.expected.len(),
                    matrix.len(),
                    matrix.iter().map(describe).collect::<Vec<_>>().join("; ")
                ));
            }
            for series in matrix {
                let Some(expected) = command.expected.iter().find(|e| e.labels == series.metric)
                else {
                    return Err(format!("unexpected series {}", describe(series)));
                };
                let mut floats = Vec::new();
                let mut histograms = Vec::new();
                for (i, value) in expected.values.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!("too many expected points for {}", series.metric));
                    }
                    match value {
                        SequenceValue::Value(v) => floats.push((t, *v)),
                        SequenceValue::Histogram(h) => histograms.push((t, h)),
                        SequenceValue::Omitted => {}
                    }
                }
                let matches = floats.len() == series.points.len()
                    && floats
                        .iter()
                        .zip(&series.points)
                        .all(|((t, v), p)| *t == p.t && almost_equal(*v, p.v))
                    && histograms.len() == series.histograms.len()
                    && histograms
                        .iter()
                        .zip(&series.histograms)
                        .all(|((t, h), p)| *t == p.t && histograms_match(h, &p.h));
                if !matches {
                    let wanted: Vec<String> = expected.values.iter().map(show_expected).collect();
                    return Err(format!(
                        "series {}: expected {}, got {}",
                        series.metric,
                        wanted.join(" "),
                        describe(series)
                    ));
                }
            }
            Ok(())
        }
    }
}
