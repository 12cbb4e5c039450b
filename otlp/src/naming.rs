//! Metric, label and unit names, per the OpenTelemetry specification's
//! Prometheus compatibility document as Prometheus 3 applies it.
//!
//! The rules (the same as Prometheus's `otlptranslator` package):
//!
//! | strategy | metric name | label names | suffixes |
//! | --- | --- | --- | --- |
//! | `UnderscoreEscapingWithSuffixes` | split on every character outside `[a-zA-Z0-9:]` (so runs of `_` and `.` collapse), joined by `_` | characters outside `[a-zA-Z0-9_]` become `_` | unit, `_total`, `_ratio` |
//! | `UnderscoreEscapingWithoutSuffixes` | characters outside `[a-zA-Z0-9:_]` separate words joined by `_` | as above | none |
//! | `NoUTF8EscapingWithSuffixes` | unchanged | unchanged | unit, `_total`, `_ratio` |
//! | `NoTranslation` | unchanged | unchanged | none |
//!
//! Units follow UCUM as OpenTelemetry uses it: `s` becomes `seconds`, `By`
//! `bytes`, `1` nothing (a gauge of unit `1` gets `_ratio`), `%` `percent`,
//! `By/s` `bytes_per_second`; a unit part in braces (`{request}`) is an
//! annotation and adds nothing; an unknown unit is used as it is. A unit
//! word already among the name's words is not added twice.
//!
//! ```
//! use ember_otlp::naming::{metric_name, MetricKind, Strategy};
//!
//! let s = Strategy::UnderscoreEscapingWithSuffixes;
//! assert_eq!(metric_name(s, "http.server.duration", "s", MetricKind::Histogram), "http_server_duration_seconds");
//! assert_eq!(metric_name(s, "requests", "{request}", MetricKind::Counter), "requests_total");
//! assert_eq!(metric_name(s, "cpu.utilization", "1", MetricKind::Gauge), "cpu_utilization_ratio");
//! ```

/// How OTLP names become Prometheus names (the `otlp.translation_strategy`
/// setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Escape to the legacy character set and add unit and type suffixes
    /// (Prometheus's default).
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Escape to the legacy character set; no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// Keep UTF-8 names; add unit and type suffixes.
    NoUtf8EscapingWithSuffixes,
    /// Keep names exactly as sent.
    NoTranslation,
}

impl Strategy {
    /// Whether names are escaped to the legacy character set.
    pub fn escapes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::UnderscoreEscapingWithoutSuffixes
        )
    }

    /// Whether unit and type suffixes are added.
    pub fn adds_suffixes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::NoUtf8EscapingWithSuffixes
        )
    }
}

/// The kind of a metric, as far as naming cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge, or a non-monotonic sum.
    Gauge,
    /// A monotonic sum: gets `_total`.
    Counter,
    /// An explicit-bucket or exponential histogram.
    Histogram,
    /// A summary.
    Summary,
}

/// The Prometheus word for a UCUM unit OpenTelemetry uses; unknown units
/// are kept as they are.
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The Prometheus word for the denominator of a rate unit (`By/s`).
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and `per_` suffixes for `unit`, untouched by escaping: `By/s`
/// gives `("bytes", "per_second")`. Parts in braces are annotations and
/// give nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        main_unit(main).to_owned()
    };
    let per = match parts.next().map(str::trim) {
        Some(per) if !per.is_empty() && !per.contains(['{', '}']) => {
            let word = per_unit(per);
            if word.is_empty() {
                String::new()
            } else {
                format!("per_{word}")
            }
        }
        _ => String::new(),
    };
    (main, per)
}

/// Whether `c` may appear in a legacy metric name word (`_` separates words).
fn is_metric_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces every character outside `[a-zA-Z0-9:]` with `_`, collapses runs
/// of `_` and drops a leading `_` (a unit's cleanup).
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_word_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.strip_prefix('_').map(str::to_owned).unwrap_or(out)
}

/// The Prometheus metric name for an OTLP metric `name` of `unit` and `kind`.
/// May return an empty string (a name of punctuation only), which callers
/// reject.
pub fn metric_name(strategy: Strategy, name: &str, unit: &str, kind: MetricKind) -> String {
    match strategy {
        Strategy::UnderscoreEscapingWithSuffixes => escaped_with_suffixes(name, unit, kind),
        Strategy::UnderscoreEscapingWithoutSuffixes => {
            let words: Vec<&str> = name
                .split(|c: char| !is_metric_word_char(c) && c != '_')
                .filter(|w| !w.is_empty())
                .collect();
            prefix_digit(words.join("_"))
        }
        Strategy::NoUtf8EscapingWithSuffixes => utf8_with_suffixes(name, unit, kind),
        Strategy::NoTranslation => name.to_owned(),
    }
}

fn prefix_digit(name: String) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

fn escaped_with_suffixes(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut words: Vec<String> = name
        .split(|c: char| !is_metric_word_char(c))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let (main, per) = unit_suffixes(unit);
    let main = clean_unit(&main);
    let per = clean_unit(&per);
    let main = if words.contains(&main) {
        String::new()
    } else {
        main
    };
    let per = if per == "per_" {
        String::new()
    } else {
        let per = per.trim_end_matches('_').to_owned();
        if words.contains(&per) {
            String::new()
        } else {
            per
        }
    };
    let main = if per.is_empty() {
        main
    } else {
        main.trim_end_matches('_').to_owned()
    };
    if !main.is_empty() {
        words.push(main);
    }
    if !per.is_empty() {
        words.push(per);
    }
    if kind == MetricKind::Counter {
        words.retain(|w| w != "total");
        words.push("total".to_owned());
    }
    if unit == "1" && kind == MetricKind::Gauge {
        words.retain(|w| w != "ratio");
        words.push("ratio".to_owned());
    }
    prefix_digit(words.join("_"))
}

/// `name` without a trailing `_suffix` (or other one-character delimiter
/// before `suffix`), when it has one and something is left.
fn trim_suffix_and_delimiter<'a>(name: &'a str, suffix: &str) -> &'a str {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let cut = name.len() - suffix.len();
        // The delimiter is one character, possibly multi-byte.
        let before = &name[..cut];
        let delimiter = before.chars().next_back().map_or(0, char::len_utf8);
        &before[..before.len() - delimiter]
    } else {
        name
    }
}

fn utf8_with_suffixes(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut name = name.to_owned();
    let ratio = unit == "1" && kind == MetricKind::Gauge;
    if ratio {
        name = trim_suffix_and_delimiter(&name, "ratio").to_owned();
    }
    let total = kind == MetricKind::Counter;
    if total {
        name = trim_suffix_and_delimiter(&name, "total").to_owned();
    }
    let (main, per) = unit_suffixes(unit);
    if !per.is_empty() {
        name = trim_suffix_and_delimiter(&name, &per).to_owned();
    }
    if !main.is_empty() && !name.ends_with(&main) {
        name = format!("{name}_{main}");
    }
    if !per.is_empty() {
        name = format!("{name}_{per}");
    }
    if total {
        name.push_str("_total");
    }
    if ratio {
        name.push_str("_ratio");
    }
    name
}

/// The unit as metadata shows it (`s` gives `seconds`, `By/s`
/// `bytes_per_second`, `1` and annotations nothing).
pub fn unit_name(strategy: Strategy, unit: &str) -> String {
    let (mut main, mut per) = unit_suffixes(unit);
    if strategy.escapes() {
        main = clean_unit(&main);
        per = clean_unit(&per);
    }
    let joined = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    joined.trim_matches('_').to_owned()
}

/// How attribute keys become label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelNamer {
    /// Keep names as they are (the UTF-8 strategies).
    pub utf8: bool,
    /// Prefix `key` to names starting with a single `_`.
    pub underscore_sanitization: bool,
    /// Keep runs of `_` instead of collapsing them.
    pub preserve_multiple_underscores: bool,
}

impl LabelNamer {
    /// The namer for `strategy` with the default sanitisation options.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            utf8: !strategy.escapes(),
            underscore_sanitization: true,
            preserve_multiple_underscores: true,
        }
    }

    /// The label name for attribute `key`, or `None` when nothing usable is
    /// left (an empty key, or one of underscores only).
    pub fn build(&self, key: &str) -> Option<String> {
        if key.is_empty() {
            return None;
        }
        if self.utf8 {
            return (!key.chars().all(|c| c == '_')).then(|| key.to_owned());
        }
        let mut name = String::with_capacity(key.len());
        for c in key.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            };
            if c == '_' && !self.preserve_multiple_underscores && name.ends_with('_') {
                continue;
            }
            name.push(c);
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            name.insert_str(0, "key_");
        } else if self.underscore_sanitization && name.starts_with('_') && !name.starts_with("__") {
            name.insert_str(0, "key");
        }
        (!name.chars().all(|c| c == '_')).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_table() {
        use MetricKind::*;
        use Strategy::*;
        let cases: &[(Strategy, &str, &str, MetricKind, &str)] = &[
            // Units become words; annotations add nothing.
            (
                UnderscoreEscapingWithSuffixes,
                "http.server.duration",
                "s",
                Histogram,
                "http_server_duration_seconds",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "http.server.request.duration",
                "ms",
                Histogram,
                "http_server_request_duration_milliseconds",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "memory.usage",
                "By",
                Gauge,
                "memory_usage_bytes",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "net.io",
                "By/s",
                Gauge,
                "net_io_bytes_per_second",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "requests",
                "{request}",
                Counter,
                "requests_total",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "requests",
                "{request}/s",
                Gauge,
                "requests_per_second",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "temp",
                "Cel",
                Gauge,
                "temp_celsius",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "odd",
                "furlongs",
                Gauge,
                "odd_furlongs",
            ),
            // _total only for monotonic sums, once, at the end.
            (
                UnderscoreEscapingWithSuffixes,
                "requests.total",
                "",
                Counter,
                "requests_total",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "total.requests",
                "",
                Counter,
                "requests_total",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "queue.size",
                "",
                Gauge,
                "queue_size",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "cpu.time",
                "s",
                Counter,
                "cpu_time_seconds_total",
            ),
            // _ratio only for gauges of unit 1.
            (
                UnderscoreEscapingWithSuffixes,
                "cpu.utilization",
                "1",
                Gauge,
                "cpu_utilization_ratio",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "hits",
                "1",
                Counter,
                "hits_total",
            ),
            // A unit word already present is not repeated.
            (
                UnderscoreEscapingWithSuffixes,
                "duration_seconds",
                "s",
                Histogram,
                "duration_seconds",
            ),
            // Runs of separators collapse; a leading digit gets `_`.
            (
                UnderscoreEscapingWithSuffixes,
                "a..b__c",
                "",
                Gauge,
                "a_b_c",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "2xx.count",
                "",
                Gauge,
                "_2xx_count",
            ),
            (
                UnderscoreEscapingWithSuffixes,
                "ünïcode.x",
                "",
                Gauge,
                "n_code_x",
            ),
            (UnderscoreEscapingWithSuffixes, "...", "", Gauge, ""),
            // Without suffixes: only escaping, underscores kept.
            (
                UnderscoreEscapingWithoutSuffixes,
                "http.server.duration",
                "s",
                Histogram,
                "http_server_duration",
            ),
            (
                UnderscoreEscapingWithoutSuffixes,
                "a__b",
                "",
                Counter,
                "a__b",
            ),
            // UTF-8: names kept, suffixes added.
            (
                NoUtf8EscapingWithSuffixes,
                "http.server.duration",
                "s",
                Histogram,
                "http.server.duration_seconds",
            ),
            (
                NoUtf8EscapingWithSuffixes,
                "requests.total",
                "",
                Counter,
                "requests_total",
            ),
            (
                NoUtf8EscapingWithSuffixes,
                "net.io",
                "By/s",
                Counter,
                "net.io_bytes_per_second_total",
            ),
            (
                NoUtf8EscapingWithSuffixes,
                "cpu.utilization",
                "1",
                Gauge,
                "cpu.utilization_ratio",
            ),
            (
                NoTranslation,
                "http.server.duration",
                "s",
                Histogram,
                "http.server.duration",
            ),
        ];
        for &(strategy, name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(strategy, name, unit, kind),
                want,
                "{strategy:?} {name:?} {unit:?} {kind:?}"
            );
        }
    }

    #[test]
    fn label_names_table() {
        let legacy = LabelNamer::new(Strategy::UnderscoreEscapingWithSuffixes);
        let collapse = LabelNamer {
            preserve_multiple_underscores: false,
            ..legacy
        };
        let no_key = LabelNamer {
            underscore_sanitization: false,
            ..legacy
        };
        let utf8 = LabelNamer::new(Strategy::NoUtf8EscapingWithSuffixes);
        let cases: &[(LabelNamer, &str, Option<&str>)] = &[
            (legacy, "http.method", Some("http_method")),
            (legacy, "service.instance.id", Some("service_instance_id")),
            (legacy, "123abc", Some("key_123abc")),
            (legacy, "_private", Some("key_private")),
            (legacy, "__reserved__", Some("__reserved__")),
            (legacy, "a..b", Some("a__b")),
            (collapse, "a..b", Some("a_b")),
            (no_key, "_private", Some("_private")),
            (legacy, "___", None),
            (legacy, "", None),
            (legacy, "ä", Some("key_")),
            (utf8, "http.method", Some("http.method")),
            (utf8, "__", None),
        ];
        for (namer, key, want) in cases {
            assert_eq!(namer.build(key).as_deref(), *want, "{namer:?} {key:?}");
        }
    }

    #[test]
    fn unit_names_table() {
        let s = Strategy::UnderscoreEscapingWithSuffixes;
        for (unit, want) in [
            ("s", "seconds"),
            ("By/s", "bytes_per_second"),
            ("1", ""),
            ("{request}", ""),
            ("%", "percent"),
            ("", ""),
            ("{packet}/s", "per_second"),
        ] {
            assert_eq!(unit_name(s, unit), want, "{unit:?}");
        }
    }
}
