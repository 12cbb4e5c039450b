//! OpenMetrics 1.0 text format: a validating pull parser.
//!
//! Beyond the line grammar (single spaces, `# EOF` last, exemplars after
//! ` # `, float timestamps in seconds), OpenMetrics constrains whole metric
//! families: metadata before samples and at most once, no family name used
//! twice, units that are a suffix of the name, samples of one metric
//! contiguous with non-decreasing timestamps, counter-like values neither
//! NaN nor negative, histogram buckets ordered with a final `+Inf` that
//! `_count` matches, and so on. Those rules need state that spans lines;
//! it lives in reusable buffers here so that a steady-state parse does not
//! allocate per sample. (Allocation is per metric *family*: one entry in
//! the set of names used so far.)
//!
//! Because the parser streams, an error about a family as a whole (for
//! instance a histogram without a `+Inf` bucket) is reported when the family
//! ends, after its samples were returned. Callers must discard the whole
//! scrape on any error, as Prometheus does.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use super::error::{HistogramProblem, ParseError, ParseErrorKind, Violation};
use super::lex::{
    Cursor, LabelSpan, StrRef, find_duplicate, nanos_to_millis, parse_float, parse_seconds_to_nanos,
};
use super::text::unescape_help;
use super::{Entry, Exemplar, LabelPairs, MetricType, Series, type_names};

/// The longest exemplar label set, in code points of names plus values.
const EXEMPLAR_MAX_CHARS: usize = 128;

/// Switches for [`OpenMetricsParser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenMetricsOptions {
    /// Enforce the family-level rules of OpenMetrics 1.0 (the `Violation`
    /// errors): metadata placement and repetition, name clashes, metric
    /// grouping and timestamp order, counter-like values, bucket, quantile,
    /// stateset and info rules, where exemplars may appear and how long
    /// they may be. The line grammar and `# EOF` are always enforced.
    ///
    /// On by default: this is what the OpenMetrics conformance suite
    /// demands. Prometheus does not enforce these rules when scraping, and
    /// real clients break some of them (client_golang exposes `_sum` on
    /// histograms with negative buckets, for one), so a scrape loop that
    /// must accept what Prometheus accepts uses
    /// [`OpenMetricsOptions::prometheus_compatible`].
    pub strict: bool,
    /// Fill [`Series::created_timestamp_ms`] for counter, summary and
    /// histogram samples from the `_created` sample of the same metric.
    /// This looks ahead once per metric (label set), so it roughly doubles
    /// the work for those families.
    pub created_timestamps: bool,
    /// Do not return `_created` samples as series (they are still parsed
    /// and validated). Prometheus does this when it stores created
    /// timestamps as zero samples instead.
    pub skip_created_series: bool,
}

/// Validating pull parser for OpenMetrics 1.0 text.
///
/// Call [`OpenMetricsParser::next_entry`] until it returns
/// [`Entry::EndOfFile`]; the input is only valid if that happens without an
/// error. After an error, stop parsing.
#[derive(Debug)]
pub struct OpenMetricsParser<'a> {
    cur: Cursor<'a>,
    options: OpenMetricsOptions,
    scratch: String,
    labels: Vec<LabelSpan>,
    exemplar_labels: Vec<LabelSpan>,
    state: FamilyState,
    eof: bool,
}

/// Everything the family-level rules need to remember.
#[derive(Debug, Default)]
struct FamilyState {
    /// Whether a family is open.
    active: bool,
    name: String,
    metric_type: Option<MetricType>,
    help_seen: bool,
    unit: Option<String>,
    has_samples: bool,
    /// Every name claimed by a finished family (`a`, `a_total`, ...).
    seen_names: HashSet<Box<str>>,
    /// Group (metric) tracking within the open family.
    group: GroupTracker,
    histogram: HistogramCheck,
    /// Created-timestamp lookahead cache: the group it was computed for.
    created_key: Vec<u8>,
    created_valid: bool,
    created_ms: Option<i64>,
    /// Reusable buffers for the lookahead.
    lookahead_scratch: String,
    lookahead_labels: Vec<LabelSpan>,
    lookahead_key: Vec<u8>,
    sort_buf: Vec<usize>,
}

/// Tracks the current metric within a family and the ones already seen.
#[derive(Debug, Default)]
struct GroupTracker {
    started: bool,
    key: Vec<u8>,
    previous: Vec<u8>,
    timestamp: Option<i128>,
    seen: KeySet,
}

/// A set of byte strings in one arena: clearing keeps every buffer, so a
/// family's worth of metrics costs no allocation once warmed up.
#[derive(Debug, Default)]
struct KeySet {
    arena: Vec<u8>,
    /// (start, end, next entry with the same hash or `usize::MAX`).
    entries: Vec<(usize, usize, usize)>,
    heads: HashMap<u64, usize, BuildHasherDefault<DefaultHasher>>,
}

impl KeySet {
    fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
        self.heads.clear();
    }

    fn contains(&self, key: &[u8]) -> bool {
        let hash = self.heads.hasher().hash_one(key);
        let mut at = self.heads.get(&hash).copied().unwrap_or(usize::MAX);
        while let Some(&(start, end, next)) = self.entries.get(at) {
            if &self.arena[start..end] == key {
                return true;
            }
            at = next;
        }
        false
    }

    fn insert(&mut self, key: &[u8]) {
        if self.contains(key) {
            return;
        }
        let hash = self.heads.hasher().hash_one(key);
        let start = self.arena.len();
        self.arena.extend_from_slice(key);
        let next = self.heads.get(&hash).copied().unwrap_or(usize::MAX);
        self.entries.push((start, self.arena.len(), next));
        self.heads.insert(hash, self.entries.len() - 1);
    }
}

/// Bucket rules, checked incrementally per histogram instance (metric and
/// timestamp).
#[derive(Debug, Default, Clone, Copy)]
struct HistogramCheck {
    started: bool,
    timestamp: Option<i128>,
    count: Option<f64>,
    last_le: Option<f64>,
    last_bucket_value: f64,
    has_negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    has_negative_gsum: bool,
}

impl HistogramCheck {
    fn finish(&self) -> Result<(), HistogramProblem> {
        if !self.started {
            return Ok(());
        }
        if self.last_le != Some(f64::INFINITY) {
            return Err(HistogramProblem::MissingInfBucket);
        }
        if self.count.is_some_and(|c| c != self.last_bucket_value) {
            return Err(HistogramProblem::CountMismatch);
        }
        if (self.has_sum || self.has_gsum) && self.count.is_none() {
            return Err(HistogramProblem::SumWithoutCount);
        }
        if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            return Err(HistogramProblem::CountWithoutSum);
        }
        if self.has_negative_buckets && self.has_sum {
            return Err(HistogramProblem::SumWithNegativeBuckets);
        }
        if !self.has_negative_buckets && self.has_negative_gsum {
            return Err(HistogramProblem::NegativeGsumWithoutNegativeBuckets);
        }
        Ok(())
    }
}

/// The three metadata lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataKind {
    Help,
    Type,
    Unit,
}

impl MetadataKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Help => "HELP",
            Self::Type => "TYPE",
            Self::Unit => "UNIT",
        }
    }
}

/// One parsed sample line, as positions.
#[derive(Debug, Clone, Copy)]
struct SampleLine {
    name: StrRef,
    raw: (usize, usize),
    value: f64,
    timestamp_ns: Option<i128>,
    exemplar: Option<(f64, Option<i128>)>,
}

fn type_suffixes(t: MetricType) -> &'static [&'static str] {
    match t {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["_count", "_sum", "_created"],
        MetricType::Histogram => &["_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[],
    }
}

/// The sample-name suffixes a family of type `t` may use.
fn allowed_suffixes(t: Option<MetricType>) -> &'static [&'static str] {
    match t {
        Some(MetricType::Counter) => &["_total", "_created"],
        Some(MetricType::Summary) => &["_count", "_sum", "", "_created"],
        Some(MetricType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
        Some(MetricType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
        Some(MetricType::Info) => &["_info"],
        _ => &[""],
    }
}

impl Default for OpenMetricsOptions {
    fn default() -> Self {
        Self {
            strict: true,
            created_timestamps: false,
            skip_created_series: false,
        }
    }
}

impl OpenMetricsOptions {
    /// Accept what Prometheus's OpenMetrics parser accepts: the grammar and
    /// `# EOF` are checked, the family-level rules are not.
    pub fn prometheus_compatible() -> Self {
        Self {
            strict: false,
            ..Self::default()
        }
    }
}

impl<'a> OpenMetricsParser<'a> {
    /// A parser over `input` with default options.
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_options(input, OpenMetricsOptions::default())
    }

    /// A parser over `input` with `options`.
    pub fn with_options(input: &'a [u8], options: OpenMetricsOptions) -> Self {
        Self {
            cur: Cursor::new(input),
            options,
            scratch: String::new(),
            labels: Vec::new(),
            exemplar_labels: Vec::new(),
            state: FamilyState::default(),
            eof: false,
        }
    }

    /// Parses and returns the next entry.
    pub fn next_entry(&mut self) -> Result<Entry<'_>, ParseError> {
        loop {
            if self.eof {
                return Ok(Entry::EndOfFile);
            }
            self.scratch.clear();
            self.labels.clear();
            self.exemplar_labels.clear();
            match self.cur.peek() {
                None => {
                    if self.cur.invalid_utf8_at.is_some() {
                        return Err(self.cur.error(ParseErrorKind::InvalidUtf8));
                    }
                    self.state
                        .finish(&self.cur, self.cur.pos, self.options.strict)?;
                    return Err(self.cur.error(ParseErrorKind::MissingEof));
                }
                Some(b'\n') => return Err(self.cur.error(ParseErrorKind::BlankLine)),
                Some(b'#') => {
                    let at = self.cur.pos;
                    if self.at_eof_marker()? {
                        self.state.finish(&self.cur, at, self.options.strict)?;
                        self.eof = true;
                        return Ok(Entry::EndOfFile);
                    }
                    return self.parse_metadata();
                }
                Some(_) => {
                    let line = parse_sample_line(
                        &mut self.cur,
                        &mut self.scratch,
                        &mut self.labels,
                        &mut self.exemplar_labels,
                    )?;
                    let skip = self.validate_sample(&line)?;
                    if skip {
                        continue;
                    }
                    let input = self.cur.input;
                    let scratch = self.scratch.as_str();
                    let exemplar = line.exemplar.map(|(value, ts)| Exemplar {
                        labels: LabelPairs::new(&self.exemplar_labels, input, scratch),
                        value,
                        timestamp_ms: ts.map(nanos_to_millis),
                    });
                    return Ok(Entry::Series(Series {
                        name: line.name.resolve(input, scratch),
                        labels: LabelPairs::new(&self.labels, input, scratch),
                        value: line.value,
                        timestamp_ms: line.timestamp_ns.map(nanos_to_millis),
                        exemplar,
                        created_timestamp_ms: self
                            .state
                            .created_ms
                            .filter(|_| self.state.created_valid),
                        raw: &input.as_bytes()[line.raw.0..line.raw.1],
                    }));
                }
            }
        }
    }

    /// Whether the line at the cursor is `# EOF`, the last thing in the input.
    fn at_eof_marker(&mut self) -> Result<bool, ParseError> {
        let c = &mut self.cur;
        let rest = &c.bytes[c.pos..];
        if !rest.starts_with(b"# EOF") || !matches!(rest.get(5), None | Some(b'\n')) {
            return Ok(false);
        }
        let after = c.pos + 5 + usize::from(rest.len() > 5);
        if after < c.bytes.len() || c.invalid_utf8_at.is_some() {
            c.pos = after;
            if rest.len() > 5 {
                c.line += 1;
                c.line_start = after;
            }
            return Err(c.error(ParseErrorKind::DataAfterEof));
        }
        c.pos = after;
        Ok(true)
    }

    fn parse_metadata(&mut self) -> Result<Entry<'_>, ParseError> {
        let c = &mut self.cur;
        let line_start = c.pos;
        let rest = &c.bytes[c.pos..];
        let kind = if rest.starts_with(b"# HELP ") {
            MetadataKind::Help
        } else if rest.starts_with(b"# TYPE ") {
            MetadataKind::Type
        } else if rest.starts_with(b"# UNIT ") {
            MetadataKind::Unit
        } else {
            return Err(c.unexpected("\"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\""));
        };
        c.pos += 7;
        let name = match c.peek() {
            Some(b'"') => {
                let at = c.pos;
                let name = c.scan_quoted(&mut self.scratch)?;
                if name.start == name.end {
                    return Err(c.error_at(at, ParseErrorKind::InvalidMetricName(String::new())));
                }
                name
            }
            _ => c
                .scan_metric_name()
                .ok_or_else(|| c.error(ParseErrorKind::InvalidMetricName(c.describe_here())))?,
        };
        if c.peek() != Some(b' ') {
            return Err(c.unexpected("space after metric name"));
        }
        c.pos += 1;
        let text = c.scan_line_rest();
        if c.peek() == Some(b'\n') {
            c.newline();
        } else if c.invalid_utf8_at.is_some() {
            return Err(c.error(ParseErrorKind::InvalidUtf8));
        }
        let input = c.input;
        let text_str = text.resolve(input, "");

        // Family bookkeeping: a different name starts a new family.
        let same = self.state.active && self.state.name == name.resolve(input, &self.scratch);
        if !same {
            self.state
                .finish(&self.cur, line_start, self.options.strict)?;
            self.state.start(name.resolve(input, &self.scratch), None);
        }
        let st = &mut self.state;
        let cur = &self.cur;
        let violation = |v| cur.error_at(line_start, ParseErrorKind::Violation(v));
        if self.options.strict && st.has_samples {
            return Err(violation(Violation::MetadataAfterSamples {
                kind: kind.as_str(),
                family: st.name.clone(),
            }));
        }
        let already = match kind {
            MetadataKind::Help => st.help_seen,
            MetadataKind::Type => st.metric_type.is_some(),
            MetadataKind::Unit => st.unit.is_some(),
        };
        if self.options.strict && already {
            return Err(violation(Violation::RepeatedMetadata {
                kind: kind.as_str(),
                family: st.name.clone(),
            }));
        }
        match kind {
            MetadataKind::Help => {
                st.help_seen = true;
                let text = unescape_help(text, input, &mut self.scratch, true);
                let scratch = self.scratch.as_str();
                Ok(Entry::Help {
                    name: name.resolve(input, scratch),
                    text: text.resolve(input, scratch),
                })
            }
            MetadataKind::Type => {
                let metric_type = type_names::parse_openmetrics(text_str).ok_or_else(|| {
                    cur.error_at(
                        text.start,
                        ParseErrorKind::InvalidMetricType(text_str.to_owned()),
                    )
                })?;
                st.metric_type = Some(metric_type);
                Ok(Entry::Type {
                    name: name.resolve(input, &self.scratch),
                    metric_type,
                })
            }
            MetadataKind::Unit => {
                // The unit must be a suffix of the family name ("_seconds").
                let matches = text_str.is_empty()
                    || st
                        .name
                        .strip_suffix(text_str)
                        .is_some_and(|prefix| prefix.ends_with('_'));
                if !matches {
                    return Err(violation(Violation::UnitMismatch {
                        family: st.name.clone(),
                        unit: text_str.to_owned(),
                    }));
                }
                st.unit = Some(text_str.to_owned());
                Ok(Entry::Unit {
                    name: name.resolve(input, &self.scratch),
                    unit: text_str,
                })
            }
        }
    }

    /// Applies the per-sample rules; returns whether to skip the sample.
    fn validate_sample(&mut self, line: &SampleLine) -> Result<bool, ParseError> {
        let input = self.cur.input;
        let name = line.name.resolve(input, &self.scratch);
        let allowed = self.state.active
            && name
                .strip_prefix(self.state.name.as_str())
                .is_some_and(|suffix| allowed_suffixes(self.state.metric_type).contains(&suffix));
        if !allowed {
            self.state
                .finish(&self.cur, line.raw.0, self.options.strict)?;
            self.state.start(name, Some(MetricType::Unknown));
        }
        let scratch = self.scratch.as_str();
        let st = &mut self.state;
        st.has_samples = true;
        let family_len = st.name.len();
        let suffix = &name[family_len..];
        let metric_type = st.metric_type.unwrap_or(MetricType::Unknown);
        let labels = LabelPairs::new(&self.labels, input, scratch);
        let value = line.value;
        let cur = &self.cur;
        let fail = |v: Violation| cur.error_at(line.raw.0, ParseErrorKind::Violation(v));
        let strict = self.options.strict;
        let is_bucket = suffix == "_bucket";
        let is_quantile = metric_type == MetricType::Summary && suffix.is_empty();
        let is_created = suffix == "_created"
            && matches!(
                metric_type,
                MetricType::Counter | MetricType::Summary | MetricType::Histogram
            );
        if !strict && !self.options.created_timestamps {
            return Ok(is_created && self.options.skip_created_series);
        }

        let mut le = None;
        if strict {
            let exemplar_labels = line
                .exemplar
                .map(|_| LabelPairs::new(&self.exemplar_labels, input, scratch));
            le = check_sample_values(
                &st.name,
                metric_type,
                name,
                suffix,
                labels,
                exemplar_labels,
                value,
                is_bucket,
                is_quantile,
            )
            .map_err(fail)?;
        }

        // Metric (group) contiguity and timestamp order.
        let special = if is_quantile {
            Some("quantile")
        } else if is_bucket {
            Some("le")
        } else if metric_type == MetricType::StateSet {
            Some(st.name.as_str())
        } else {
            None
        };
        let g = &mut st.group;
        std::mem::swap(&mut g.key, &mut g.previous);
        if metric_type == MetricType::Info {
            // Every info sample is one group: its labels *are* the value.
            g.key.clear();
        } else {
            group_key(
                &self.labels,
                input,
                scratch,
                special,
                &mut st.sort_buf,
                &mut g.key,
            );
        }
        let ts = line.timestamp_ns;
        let same_group = g.started && g.key == g.previous;
        if strict && g.started && !same_group && g.seen.contains(&g.key) {
            return Err(fail(Violation::InterleavedMetric(st.name.clone())));
        }
        if strict && same_group {
            if ts.is_some() != g.timestamp.is_some() {
                return Err(fail(Violation::MixedTimestamps(st.name.clone())));
            }
            if metric_type != MetricType::Info && g.timestamp > ts {
                return Err(fail(Violation::TimestampsBackwards(st.name.clone())));
            }
        } else if strict && !same_group {
            g.seen.insert(&g.key);
        }
        g.started = true;
        g.timestamp = ts;

        if strict
            && matches!(
                metric_type,
                MetricType::Histogram | MetricType::GaugeHistogram
            )
        {
            let h = &mut st.histogram;
            if !same_group || h.timestamp != ts {
                let previous = *h;
                *h = HistogramCheck {
                    started: true,
                    timestamp: ts,
                    ..HistogramCheck::default()
                };
                previous.finish().map_err(|problem| {
                    fail(Violation::Histogram {
                        family: st.name.clone(),
                        problem,
                    })
                })?;
            }
            match suffix {
                "_bucket" => {
                    let b = le.unwrap_or(f64::NAN);
                    if b < 0.0 {
                        h.has_negative_buckets = true;
                    }
                    if h.last_le.is_some_and(|last| b <= last) {
                        return Err(fail(Violation::Histogram {
                            family: st.name.clone(),
                            problem: HistogramProblem::BucketsOutOfOrder,
                        }));
                    }
                    if value < h.last_bucket_value {
                        return Err(fail(Violation::Histogram {
                            family: st.name.clone(),
                            problem: HistogramProblem::BucketCountsDecrease,
                        }));
                    }
                    h.last_le = Some(b);
                    h.last_bucket_value = value;
                }
                "_count" | "_gcount" => h.count = Some(value),
                "_sum" => h.has_sum = true,
                "_gsum" => {
                    h.has_gsum = true;
                    if value < 0.0 {
                        h.has_negative_gsum = true;
                    }
                }
                _ => {}
            }
        }

        if self.options.created_timestamps {
            let wants_ct = matches!(
                metric_type,
                MetricType::Counter | MetricType::Summary | MetricType::Histogram
            );
            if !wants_ct {
                st.created_valid = false;
            } else if is_created {
                st.created_ms = seconds_value_to_millis(value);
                st.created_key.clone_from(&st.group.key);
                st.created_valid = true;
            } else if !(st.created_valid && st.created_key == st.group.key) {
                st.created_ms = lookahead_created(&self.cur, st);
                st.created_key.clone_from(&st.group.key);
                st.created_valid = true;
            }
        }
        Ok(is_created && self.options.skip_created_series)
    }
}

/// The value and label rules of a single sample (strict mode); returns the
/// parsed `le` of a bucket.
#[allow(clippy::too_many_arguments)]
fn check_sample_values(
    family: &str,
    metric_type: MetricType,
    name: &str,
    suffix: &str,
    labels: LabelPairs<'_>,
    exemplar_labels: Option<LabelPairs<'_>>,
    value: f64,
    is_bucket: bool,
    is_quantile: bool,
) -> Result<Option<f64>, Violation> {
    let mut le = None;
    if metric_type == MetricType::StateSet && labels.get(family).is_none() {
        return Err(Violation::StateSetMissingLabel(family.to_owned()));
    }
    if is_bucket {
        let text = labels.get("le");
        le = text.and_then(parse_float).filter(|v| !v.is_nan());
        let canonical = match (le, text) {
            (Some(v), Some(t)) if v.is_infinite() => t == "+Inf" || t == "-Inf",
            (Some(_), _) => true,
            _ => false,
        };
        if !canonical {
            return Err(Violation::InvalidLe(name.to_owned()));
        }
    }
    if matches!(suffix, "_bucket" | "_count" | "_gcount")
        && !(value.is_finite() && value.fract() == 0.0)
    {
        return Err(Violation::NonIntegerCount(name.to_owned()));
    }
    if is_quantile {
        let q = labels.get("quantile").and_then(parse_float);
        if !q.is_some_and(|q| (0.0..=1.0).contains(&q)) {
            return Err(Violation::InvalidQuantile(name.to_owned()));
        }
        if value < 0.0 {
            return Err(Violation::NegativeQuantileValue);
        }
    }
    match metric_type {
        MetricType::StateSet if value != 0.0 && value != 1.0 => {
            return Err(Violation::StateSetValue(value));
        }
        MetricType::Info if value != 1.0 => return Err(Violation::InfoValue(value)),
        _ => {}
    }
    let counter_like = matches!(
        suffix,
        "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum"
    );
    if counter_like && (value.is_nan() || (value < 0.0 && suffix != "_gsum")) {
        return Err(Violation::InvalidCounterValue {
            sample: name.to_owned(),
            value,
        });
    }
    if let Some(ex_labels) = exemplar_labels {
        let allowed = match metric_type {
            MetricType::Histogram | MetricType::GaugeHistogram => is_bucket,
            MetricType::Counter => suffix == "_total",
            _ => false,
        };
        if !allowed {
            return Err(Violation::ExemplarNotAllowed(name.to_owned()));
        }
        let length: usize = ex_labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if length > EXEMPLAR_MAX_CHARS {
            return Err(Violation::ExemplarTooLong(length));
        }
    }
    Ok(le)
}

impl FamilyState {
    /// Opens a family named `name`.
    fn start(&mut self, name: &str, metric_type: Option<MetricType>) {
        self.active = true;
        self.name.clear();
        self.name.push_str(name);
        self.metric_type = metric_type;
        self.help_seen = false;
        self.unit = None;
        self.has_samples = false;
        self.group.reset();
        self.histogram = HistogramCheck::default();
        self.created_valid = false;
    }

    /// Closes the open family, checking the rules that need all of it;
    /// errors are reported at byte `pos`.
    fn finish(&mut self, cur: &Cursor<'_>, pos: usize, strict: bool) -> Result<(), ParseError> {
        if !self.active {
            return Ok(());
        }
        self.active = false;
        if !strict {
            return Ok(());
        }
        let violation = |v| cur.error_at(pos, ParseErrorKind::Violation(v));
        let metric_type = self.metric_type.unwrap_or(MetricType::Unknown);
        let mut claimed = String::with_capacity(self.name.len() + 8);
        for suffix in std::iter::once(&"").chain(type_suffixes(metric_type)) {
            claimed.clear();
            claimed.push_str(&self.name);
            claimed.push_str(suffix);
            if self.seen_names.contains(claimed.as_str()) {
                return Err(violation(Violation::ClashingName(claimed)));
            }
            self.seen_names.insert(claimed.as_str().into());
        }
        if self.unit.as_deref().is_some_and(|u| !u.is_empty())
            && matches!(metric_type, MetricType::Info | MetricType::StateSet)
        {
            return Err(violation(Violation::UnitNotAllowed(self.name.clone())));
        }
        if matches!(
            metric_type,
            MetricType::Histogram | MetricType::GaugeHistogram
        ) {
            self.histogram.finish().map_err(|problem| {
                violation(Violation::Histogram {
                    family: self.name.clone(),
                    problem,
                })
            })?;
        }
        Ok(())
    }
}

impl GroupTracker {
    fn reset(&mut self) {
        self.started = false;
        self.key.clear();
        self.previous.clear();
        self.timestamp = None;
        self.seen.clear();
    }
}

fn seconds_value_to_millis(seconds: f64) -> Option<i64> {
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

/// Writes the canonical key of a metric: its labels except `special`,
/// sorted by name, each as `name 0xFF value 0xFF` (0xFF never occurs in
/// UTF-8, so the encoding is unambiguous).
fn group_key(
    labels: &[LabelSpan],
    input: &str,
    scratch: &str,
    special: Option<&str>,
    order: &mut Vec<usize>,
    key: &mut Vec<u8>,
) {
    key.clear();
    order.clear();
    order.extend(
        (0..labels.len()).filter(|&i| Some(labels[i].name.resolve(input, scratch)) != special),
    );
    order.sort_unstable_by(|&a, &b| {
        labels[a]
            .name
            .resolve(input, scratch)
            .cmp(labels[b].name.resolve(input, scratch))
    });
    for &i in order.iter() {
        key.extend_from_slice(labels[i].name.resolve(input, scratch).as_bytes());
        key.push(0xFF);
        key.extend_from_slice(labels[i].value.resolve(input, scratch).as_bytes());
        key.push(0xFF);
    }
}

/// Scans the rest of the current metric for its `_created` sample.
///
/// Samples of one metric are contiguous (the parser enforces it), so the
/// scan stops at the first line of another metric or family.
fn lookahead_created(cur: &Cursor<'_>, st: &mut FamilyState) -> Option<i64> {
    let mut c = cur.clone();
    let mut exemplar_labels = Vec::new();
    loop {
        if !matches!(c.peek(), Some(b) if b != b'#' && b != b'\n') {
            return None;
        }
        st.lookahead_scratch.clear();
        st.lookahead_labels.clear();
        let line = parse_sample_line(
            &mut c,
            &mut st.lookahead_scratch,
            &mut st.lookahead_labels,
            &mut exemplar_labels,
        )
        .ok()?;
        let name = line.name.resolve(c.input, &st.lookahead_scratch);
        let suffix = name.strip_prefix(st.name.as_str())?;
        if !allowed_suffixes(st.metric_type).contains(&suffix) {
            return None;
        }
        let special = match suffix {
            "_bucket" => Some("le"),
            "" => Some("quantile"),
            _ => None,
        };
        group_key(
            &st.lookahead_labels,
            c.input,
            &st.lookahead_scratch,
            special,
            &mut st.sort_buf,
            &mut st.lookahead_key,
        );
        if st.lookahead_key != st.group.key {
            return None;
        }
        if suffix == "_created" {
            return seconds_value_to_millis(line.value);
        }
    }
}

/// Parses one sample line (strict OpenMetrics spacing) including its
/// newline.
fn parse_sample_line(
    c: &mut Cursor<'_>,
    scratch: &mut String,
    labels: &mut Vec<LabelSpan>,
    exemplar_labels: &mut Vec<LabelSpan>,
) -> Result<SampleLine, ParseError> {
    let start = c.pos;
    let mut name = None;
    if c.peek() != Some(b'{') {
        name = Some(
            c.scan_metric_name()
                .ok_or_else(|| c.error(ParseErrorKind::InvalidMetricName(c.describe_here())))?,
        );
    }
    if c.peek() == Some(b'{') {
        c.pos += 1;
        parse_labels(c, scratch, labels, Some(&mut name))?;
    }
    let name = name.ok_or_else(|| c.error_at(start, ParseErrorKind::MissingMetricName))?;
    let raw = (start, c.pos);
    if c.peek() != Some(b' ') {
        return Err(
            if c.pos == name.end && !matches!(c.peek(), None | Some(b'\n')) {
                c.error(ParseErrorKind::InvalidMetricName(c.describe_here()))
            } else {
                c.unexpected("space before value")
            },
        );
    }
    c.pos += 1;
    let value = scan_number(c, "value")?;
    let mut timestamp_ns = None;
    let mut exemplar = None;
    if c.peek() == Some(b' ') {
        c.pos += 1;
        if c.peek() != Some(b'#') {
            timestamp_ns = Some(scan_timestamp(c)?);
            if c.peek() == Some(b' ') {
                c.pos += 1;
                if c.peek() != Some(b'#') {
                    return Err(c.unexpected("\"#\" starting an exemplar"));
                }
            }
        }
        if c.peek() == Some(b'#') {
            c.pos += 1;
            if c.peek() != Some(b' ') {
                return Err(c.unexpected("space after \"#\""));
            }
            c.pos += 1;
            if c.peek() != Some(b'{') {
                return Err(c.unexpected("\"{\" starting exemplar labels"));
            }
            c.pos += 1;
            parse_labels(c, scratch, exemplar_labels, None)?;
            if c.peek() != Some(b' ') {
                return Err(c.unexpected("space before exemplar value"));
            }
            c.pos += 1;
            let ex_value = scan_number(c, "exemplar value")?;
            let mut ex_ts = None;
            if c.peek() == Some(b' ') {
                c.pos += 1;
                ex_ts = Some(scan_timestamp(c)?);
            }
            exemplar = Some((ex_value, ex_ts));
        }
    }
    match c.peek() {
        Some(b'\n') => c.newline(),
        None if c.invalid_utf8_at.is_none() => {}
        _ => return Err(c.unexpected("end of line")),
    }
    Ok(SampleLine {
        name,
        raw,
        value,
        timestamp_ns,
        exemplar,
    })
}

fn scan_number(c: &mut Cursor<'_>, what: &'static str) -> Result<f64, ParseError> {
    let token = c.scan_until_space();
    if token.start == token.end {
        return Err(c.unexpected(what));
    }
    let text = token.resolve(c.input, "");
    parse_float(text)
        .ok_or_else(|| c.error_at(token.start, ParseErrorKind::InvalidValue(text.to_owned())))
}

fn scan_timestamp(c: &mut Cursor<'_>) -> Result<i128, ParseError> {
    let token = c.scan_until_space();
    if token.start == token.end {
        return Err(c.unexpected("timestamp"));
    }
    let text = token.resolve(c.input, "");
    parse_seconds_to_nanos(text).ok_or_else(|| {
        c.error_at(
            token.start,
            ParseErrorKind::InvalidTimestamp(text.to_owned()),
        )
    })
}

/// Parses `name="value",...}` after the `{` with OpenMetrics strictness: no
/// blanks, no trailing comma. With `metric_name` given, a quoted string in
/// first position not followed by `=` is the (UTF-8) metric name.
fn parse_labels(
    c: &mut Cursor<'_>,
    scratch: &mut String,
    labels: &mut Vec<LabelSpan>,
    mut metric_name: Option<&mut Option<StrRef>>,
) -> Result<(), ParseError> {
    if c.peek() == Some(b'}') {
        c.pos += 1;
        return Ok(());
    }
    let mut first = true;
    loop {
        let at = c.pos;
        let label_name = match c.peek() {
            Some(b'"') => {
                let quoted = c.scan_quoted(scratch)?;
                let is_name_slot = first && matches!(c.peek(), Some(b',' | b'}'));
                match metric_name.as_deref_mut() {
                    Some(slot @ None) if is_name_slot => {
                        if quoted.start == quoted.end {
                            return Err(
                                c.error_at(at, ParseErrorKind::InvalidMetricName(String::new()))
                            );
                        }
                        *slot = Some(quoted);
                        first = false;
                        if c.peek() == Some(b'}') {
                            c.pos += 1;
                            break;
                        }
                        c.pos += 1;
                        continue;
                    }
                    _ => {}
                }
                if quoted.start == quoted.end {
                    return Err(c.error_at(at, ParseErrorKind::InvalidLabelName(String::new())));
                }
                quoted
            }
            _ => c
                .scan_label_name()
                .ok_or_else(|| c.error(ParseErrorKind::InvalidLabelName(c.describe_here())))?,
        };
        first = false;
        if c.peek() != Some(b'=') {
            return Err(c.unexpected("\"=\""));
        }
        c.pos += 1;
        if c.peek() != Some(b'"') {
            return Err(c.unexpected("quoted label value"));
        }
        let value = c.scan_quoted(scratch)?;
        labels.push(LabelSpan {
            name: label_name,
            value,
        });
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {
                c.pos += 1;
                break;
            }
            _ => return Err(c.unexpected("\",\" or \"}\"")),
        }
    }
    if let Some(dup) = find_duplicate(labels, c.input, scratch) {
        let name = labels[dup].name.resolve(c.input, scratch).to_owned();
        return Err(c.error(ParseErrorKind::DuplicateLabel(name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders every entry as a comparable string.
    fn entries(input: &str, options: OpenMetricsOptions) -> Result<Vec<String>, ParseError> {
        let mut p = OpenMetricsParser::with_options(input.as_bytes(), options);
        let mut out = Vec::new();
        loop {
            match p.next_entry()? {
                Entry::EndOfFile => return Ok(out),
                Entry::Series(s) => {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    let mut line = format!("{}{{{}}} {}", s.name, labels.join(","), s.value);
                    if let Some(ts) = s.timestamp_ms {
                        line.push_str(&format!(" @{ts}"));
                    }
                    if let Some(ct) = s.created_timestamp_ms {
                        line.push_str(&format!(" ct={ct}"));
                    }
                    if let Some(e) = s.exemplar {
                        let l: Vec<String> =
                            e.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                        line.push_str(&format!(
                            " # {{{}}} {} {:?}",
                            l.join(","),
                            e.value,
                            e.timestamp_ms
                        ));
                    }
                    out.push(line);
                }
                Entry::Help { name, text } => out.push(format!("HELP {name} {text:?}")),
                Entry::Type { name, metric_type } => out.push(format!("TYPE {name} {metric_type}")),
                Entry::Unit { name, unit } => out.push(format!("UNIT {name} {unit}")),
                Entry::Comment(c) => out.push(format!("COMMENT {c}")),
            }
        }
    }

    fn strict(input: &str) -> Result<Vec<String>, ParseError> {
        entries(input, OpenMetricsOptions::default())
    }

    #[test]
    fn timestamps_exemplars_and_metadata() {
        let got = strict(
            "# TYPE a counter\n# UNIT a \n# HELP a x\\\"y\\\\z\\n\n\
             a_total{b=\"c\"} 1 1.5 # {trace_id=\"t\"} 0.5 2.25\n\
             a_total{b=\"d\"} 2 # {} 3\n# EOF\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "TYPE a counter",
                "UNIT a ",
                r#"HELP a "x\"y\\z\n""#,
                r#"a_total{b="c"} 1 @1500 # {trace_id="t"} 0.5 Some(2250)"#,
                r#"a_total{b="d"} 2 # {} 3 None"#,
            ]
        );
    }

    #[test]
    fn created_timestamps_are_looked_up_and_skipped() {
        let input = "# TYPE h histogram\n\
                     h_bucket{x=\"1\",le=\"1.0\"} 1\nh_bucket{x=\"1\",le=\"+Inf\"} 2\n\
                     h_count{x=\"1\"} 2\nh_sum{x=\"1\"} 3\nh_created{x=\"1\"} 100.5\n\
                     h_bucket{x=\"2\",le=\"+Inf\"} 0\nh_count{x=\"2\"} 0\nh_sum{x=\"2\"} 0\n\
                     # TYPE c counter\nc_total 1\nc_created 7\n# EOF\n";
        let options = OpenMetricsOptions {
            created_timestamps: true,
            skip_created_series: true,
            strict: true,
        };
        let got = entries(input, options).unwrap();
        assert_eq!(
            got,
            [
                "TYPE h histogram",
                r#"h_bucket{x="1",le="1.0"} 1 ct=100500"#,
                r#"h_bucket{x="1",le="+Inf"} 2 ct=100500"#,
                r#"h_count{x="1"} 2 ct=100500"#,
                r#"h_sum{x="1"} 3 ct=100500"#,
                r#"h_bucket{x="2",le="+Inf"} 0"#,
                r#"h_count{x="2"} 0"#,
                r#"h_sum{x="2"} 0"#,
                "TYPE c counter",
                "c_total{} 1 ct=7000",
            ]
        );
        // Without the options `_created` is an ordinary sample.
        let plain = strict(input).unwrap();
        assert!(plain.contains(&r#"h_created{x="1"} 100.5"#.to_owned()));
    }

    #[test]
    fn quoted_utf8_names() {
        let got = strict("# TYPE \"a.b\" gauge\n{\"a.b\",\"c.d\"=\"e\"} 1\n# EOF\n").unwrap();
        assert_eq!(got, ["TYPE a.b gauge", r#"a.b{c.d="e"} 1"#]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = strict("a 1\nb 2\n\n# EOF\n").unwrap_err();
        assert_eq!((e.line, e.kind), (3, ParseErrorKind::BlankLine));
        let e = strict("a 1\nb{c=\"d\"}  2\n# EOF\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        assert_eq!(
            e.to_string(),
            "line 2, column 10: expected value, got \" \""
        );
        let e = strict("# TYPE a histogram\na_bucket{le=\"1\"} 1\n# EOF\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(matches!(
            e.kind,
            ParseErrorKind::Violation(Violation::Histogram {
                problem: HistogramProblem::MissingInfBucket,
                ..
            })
        ));
        let e = strict("a 1\n# EOF\n\n").unwrap_err();
        assert_eq!((e.line, e.kind), (3, ParseErrorKind::DataAfterEof));
        let e = strict("a 1\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::MissingEof));
    }

    #[test]
    fn compatible_mode_keeps_grammar_but_not_family_rules() {
        let lenient = OpenMetricsOptions::prometheus_compatible();
        // Negative buckets with `_sum`, repeated metadata, interleaving.
        let input = "# TYPE a histogram\n# TYPE a histogram\n\
                     a_bucket{le=\"-1.0\"} 1\na_bucket{le=\"+Inf\"} 2\na_sum -3\na_count 2\n\
                     # TYPE g gauge\ng{x=\"1\"} 1\ng{x=\"2\"} 1\ng{x=\"1\"} 2\n# EOF\n";
        assert!(strict(input).is_err());
        assert_eq!(entries(input, lenient).unwrap().len(), 10);
        // The grammar still applies.
        assert!(entries("a  1\n# EOF\n", lenient).is_err());
        assert!(entries("a 1\n", lenient).is_err());
        // As does the unit suffix rule, which Prometheus also checks.
        assert!(entries("# UNIT a_ms seconds\n# EOF\n", lenient).is_err());
    }
}
