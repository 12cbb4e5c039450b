//! Writers for the Prometheus text (0.0.4) and OpenMetrics (1.0) formats.
//!
//! Both render an owned [`MetricFamily`]: its metadata and its samples,
//! which carry their full names (`x_bucket`, `x_sum`, ...), so the writer
//! never invents samples. Floats are spelled the way Prometheus's Go
//! libraries spell them (`strconv.FormatFloat(f, 'g', -1, 64)`: `1e+06`,
//! `0.25`, `NaN`, `+Inf`; OpenMetrics adds `.0` to integral values), and
//! names outside the legacy character set are written in the quoted form
//! of the 1.0.0 formats.
//!
//! ```
//! use ember_model::exposition::{FamilySample, MetricFamily, MetricType, write_openmetrics, write_text};
//!
//! let family = MetricFamily {
//!     name: "http_requests_total".into(),
//!     metric_type: MetricType::Counter,
//!     help: Some("Requests served.".into()),
//!     unit: None,
//!     samples: vec![FamilySample::new("http_requests_total", [("code", "200")], 1027.0)],
//! };
//! let mut text = String::new();
//! write_text(&mut text, &[family.clone()]);
//! let expected = concat!(
//!     "# HELP http_requests_total Requests served.\n",
//!     "# TYPE http_requests_total counter\n",
//!     "http_requests_total{code=\"200\"} 1027\n",
//! );
//! assert_eq!(text, expected);
//! let mut om = String::new();
//! write_openmetrics(&mut om, &[family]);
//! let expected = concat!(
//!     "# HELP http_requests Requests served.\n",
//!     "# TYPE http_requests counter\n",
//!     "http_requests_total{code=\"200\"} 1027.0\n",
//!     "# EOF\n",
//! );
//! assert_eq!(om, expected);
//! ```

use std::fmt::Write as _;

use super::lex::{is_legacy_label_name, is_legacy_metric_name};
use super::{MetricType, type_names};

/// A metric family to write.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricFamily {
    /// The family name. For counters either `x` or `x_total` may be given
    /// (and `x` or `x_info` for info metrics): the OpenMetrics writer drops
    /// the suffix from metadata lines.
    pub name: String,
    /// The type.
    pub metric_type: MetricType,
    /// The docstring; `None` writes no `HELP` line.
    pub help: Option<String>,
    /// The unit (OpenMetrics only; the text format has no unit line).
    pub unit: Option<String>,
    /// The samples, in the order to write them.
    pub samples: Vec<FamilySample>,
}

/// One sample of a [`MetricFamily`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilySample {
    /// The full sample name, e.g. `x_bucket`.
    pub name: String,
    /// Label pairs, written in this order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// An exemplar (OpenMetrics only).
    pub exemplar: Option<FamilyExemplar>,
}

impl FamilySample {
    /// A sample without timestamp or exemplar.
    pub fn new<'l>(
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
    ) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            value,
            timestamp_ms: None,
            exemplar: None,
        }
    }
}

/// An exemplar to write after a sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilyExemplar {
    /// LabelPairs such as `trace_id`.
    pub labels: Vec<(String, String)>,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// Appends `families` in the Prometheus text format 0.0.4.
///
/// Units and exemplars have no place in this format and are left out;
/// OpenMetrics-only types are declared `untyped`.
pub fn write_text(out: &mut String, families: &[MetricFamily]) {
    for family in families {
        if let Some(help) = &family.help {
            out.push_str("# HELP ");
            push_metadata_name(out, &family.name);
            out.push(' ');
            push_escaped(out, help, false);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        push_metadata_name(out, &family.name);
        out.push(' ');
        out.push_str(type_names::text(family.metric_type));
        out.push('\n');
        for sample in &family.samples {
            push_series(out, &sample.name, &sample.labels);
            out.push(' ');
            push_go_float(out, sample.value);
            if let Some(ts) = sample.timestamp_ms {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
}

/// Appends `families` in the OpenMetrics 1.0 text format, ending with
/// `# EOF`.
pub fn write_openmetrics(out: &mut String, families: &[MetricFamily]) {
    for family in families {
        // OpenMetrics names counter and info families without the
        // suffix their samples carry.
        let name = match family.metric_type {
            MetricType::Counter => family.name.strip_suffix("_total").unwrap_or(&family.name),
            MetricType::Info => family.name.strip_suffix("_info").unwrap_or(&family.name),
            _ => &family.name,
        };
        if let Some(help) = &family.help {
            out.push_str("# HELP ");
            push_metadata_name(out, name);
            out.push(' ');
            push_escaped(out, help, true);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        push_metadata_name(out, name);
        out.push(' ');
        out.push_str(family.metric_type.as_str());
        out.push('\n');
        if let Some(unit) = family.unit.as_deref().filter(|u| !u.is_empty()) {
            out.push_str("# UNIT ");
            push_metadata_name(out, name);
            out.push(' ');
            out.push_str(unit);
            out.push('\n');
        }
        for sample in &family.samples {
            push_series(out, &sample.name, &sample.labels);
            out.push(' ');
            push_openmetrics_float(out, sample.value);
            if let Some(ts) = sample.timestamp_ms {
                out.push(' ');
                push_millis_as_seconds(out, ts);
            }
            if let Some(exemplar) = &sample.exemplar {
                out.push_str(" # {");
                push_label_pairs(out, &exemplar.labels);
                out.push_str("} ");
                push_openmetrics_float(out, exemplar.value);
                if let Some(ts) = exemplar.timestamp_ms {
                    out.push(' ');
                    push_millis_as_seconds(out, ts);
                }
            }
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
}

fn push_metadata_name(out: &mut String, name: &str) {
    if is_legacy_metric_name(name) {
        out.push_str(name);
    } else {
        push_quoted(out, name);
    }
}

/// `name{a="b"}`, or `{"name",a="b"}` for a name that needs quoting.
fn push_series(out: &mut String, name: &str, labels: &[(String, String)]) {
    if is_legacy_metric_name(name) {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            push_label_pairs(out, labels);
            out.push('}');
        }
    } else {
        out.push('{');
        push_quoted(out, name);
        if !labels.is_empty() {
            out.push(',');
            push_label_pairs(out, labels);
        }
        out.push('}');
    }
}

fn push_label_pairs(out: &mut String, labels: &[(String, String)]) {
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if is_legacy_label_name(name) {
            out.push_str(name);
        } else {
            push_quoted(out, name);
        }
        out.push('=');
        push_quoted(out, value);
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s, true);
    out.push('"');
}

/// Escapes backslash and newline, and the double quote when `quote`.
fn push_escaped(out: &mut String, s: &str, quote: bool) {
    let mut rest = s;
    while let Some(i) = rest.find(|c| c == '\\' || c == '\n' || (quote && c == '"')) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            _ => "\\\"",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Milliseconds as exact decimal seconds (`1.5`, `-0.25`, `12`).
fn push_millis_as_seconds(out: &mut String, ms: i64) {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (secs, mut frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        let _ = write!(out, "{sign}{secs}");
        return;
    }
    let mut width = 3;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    let _ = write!(out, "{sign}{secs}.{frac:0width$}");
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, with `+Inf`, `-Inf`, `NaN`.
pub(crate) fn push_go_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, like Go's
    // shortest mode; only the layout differs. It is written to `out`,
    // copied to the stack (at most 24 bytes, e.g. `-2.2250738585072014e-308`)
    // and replaced, so nothing is allocated.
    let start = out.len();
    let _ = write!(out, "{f:e}");
    let mut sci_buf = [0u8; 32];
    let sci_len = (out.len() - start).min(sci_buf.len());
    sci_buf[..sci_len].copy_from_slice(&out.as_bytes()[start..start + sci_len]);
    out.truncate(start);
    let sci = std::str::from_utf8(&sci_buf[..sci_len]).unwrap_or("0e0");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let mut digit_buf = [0u8; 24];
    let mut digit_len = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if digit_len < digit_buf.len() {
            digit_buf[digit_len] = b;
            digit_len += 1;
        }
    }
    let digits = std::str::from_utf8(&digit_buf[..digit_len]).unwrap_or("0");
    if negative {
        out.push('-');
    }
    // In shortest mode Go's 'g' uses the exponent form when the decimal
    // exponent is below -4 or at least 6, whatever the digit count.
    let eprec = 6;
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// The OpenMetrics spelling used by Prometheus: Go's `'g'` format with
/// `.0` appended to integral values (`1.0`, `1e+06`, `+Inf`).
pub(crate) fn push_openmetrics_float(out: &mut String, f: f64) {
    let start = out.len();
    push_go_float(out, f);
    if f.is_finite() && !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Entry, OpenMetricsParser, TextParser};

    fn go(f: f64) -> String {
        let mut s = String::new();
        push_go_float(&mut s, f);
        s
    }

    #[test]
    fn floats_are_spelled_like_go() {
        for (f, want) in [
            (1.0, "1"),
            (0.25, "0.25"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
            (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(go(f), want, "{f:?}");
        }
        let mut s = String::new();
        push_openmetrics_float(&mut s, 1.0);
        s.push(' ');
        push_openmetrics_float(&mut s, 1e6);
        s.push(' ');
        push_openmetrics_float(&mut s, f64::INFINITY);
        assert_eq!(s, "1.0 1e+06 +Inf");
    }

    fn families() -> Vec<MetricFamily> {
        let mut bucket = FamilySample::new(
            "lat_seconds_bucket",
            [("path", "/a\"b\\c\nd"), ("le", "0.5")],
            1.0,
        );
        bucket.exemplar = Some(FamilyExemplar {
            labels: vec![("trace_id".into(), "abc".into())],
            value: 0.25,
            timestamp_ms: Some(1_500),
        });
        let mut utf8 = FamilySample::new("my.metric", [("label.with.dots", "v")], -0.5);
        utf8.timestamp_ms = Some(-1_250);
        vec![
            MetricFamily {
                name: "lat_seconds".into(),
                metric_type: MetricType::Histogram,
                help: Some("Latency with \\ and\nnewline.".into()),
                unit: Some("seconds".into()),
                samples: vec![
                    bucket,
                    FamilySample::new(
                        "lat_seconds_bucket",
                        [("path", "/a\"b\\c\nd"), ("le", "+Inf")],
                        2.0,
                    ),
                    FamilySample::new("lat_seconds_count", [("path", "/a\"b\\c\nd")], 2.0),
                    FamilySample::new("lat_seconds_sum", [("path", "/a\"b\\c\nd")], 0.75),
                ],
            },
            MetricFamily {
                name: "my.metric".into(),
                metric_type: MetricType::Gauge,
                help: None,
                unit: None,
                samples: vec![utf8],
            },
            MetricFamily {
                name: "up".into(),
                metric_type: MetricType::Unknown,
                help: Some(String::new()),
                unit: None,
                samples: vec![FamilySample::new("up", [], 1.0)],
            },
        ]
    }

    /// Rebuilds families from parser entries (the inverse of the writers).
    fn read_back(mut next: impl FnMut(&mut dyn FnMut(Entry<'_>))) -> Vec<MetricFamily> {
        let mut out: Vec<MetricFamily> = Vec::new();
        let mut push = |e: Entry<'_>| {
            let open = |out: &mut Vec<MetricFamily>, name: &str| {
                if out
                    .last()
                    .is_none_or(|f| f.name != name || !f.samples.is_empty())
                {
                    out.push(MetricFamily {
                        name: name.to_owned(),
                        ..Default::default()
                    });
                }
            };
            match e {
                Entry::Help { name, text } => {
                    open(&mut out, name);
                    if let Some(f) = out.last_mut() {
                        f.help = Some(text.to_owned());
                    }
                }
                Entry::Type { name, metric_type } => {
                    open(&mut out, name);
                    if let Some(f) = out.last_mut() {
                        f.metric_type = metric_type;
                    }
                }
                Entry::Unit { name, unit } => {
                    open(&mut out, name);
                    if let Some(f) = out.last_mut() {
                        f.unit = Some(unit.to_owned());
                    }
                }
                Entry::Series(s) => {
                    if out.is_empty() {
                        out.push(MetricFamily {
                            name: s.name.to_owned(),
                            ..Default::default()
                        });
                    }
                    let family = out.last_mut().expect("a family");
                    family.samples.push(FamilySample {
                        name: s.name.to_owned(),
                        labels: s
                            .labels
                            .iter()
                            .map(|(n, v)| (n.to_owned(), v.to_owned()))
                            .collect(),
                        value: s.value,
                        timestamp_ms: s.timestamp_ms,
                        exemplar: s.exemplar.map(|e| FamilyExemplar {
                            labels: e
                                .labels
                                .iter()
                                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                                .collect(),
                            value: e.value,
                            timestamp_ms: e.timestamp_ms,
                        }),
                    });
                }
                Entry::Comment(_) | Entry::EndOfFile => {}
            }
        };
        next(&mut push);
        out
    }

    #[test]
    fn openmetrics_round_trip() {
        let families = families();
        let mut text = String::new();
        write_openmetrics(&mut text, &families);
        let got = read_back(|push| {
            let mut p = OpenMetricsParser::new(text.as_bytes());
            loop {
                let e = p.next_entry().unwrap_or_else(|e| panic!("{e}\n{text}"));
                let end = matches!(e, Entry::EndOfFile);
                push(e);
                if end {
                    break;
                }
            }
        });
        assert_eq!(got, families, "\n{text}");
    }

    #[test]
    fn text_round_trip() {
        let mut families = families();
        // The text format has no units or exemplars.
        for f in &mut families {
            f.unit = None;
            for s in &mut f.samples {
                s.exemplar = None;
            }
        }
        let mut text = String::new();
        write_text(&mut text, &families);
        let got = read_back(|push| {
            let mut p = TextParser::new(text.as_bytes());
            loop {
                let e = p.next_entry().unwrap_or_else(|e| panic!("{e}\n{text}"));
                let end = matches!(e, Entry::EndOfFile);
                push(e);
                if end {
                    break;
                }
            }
        });
        assert_eq!(got, families, "\n{text}");
    }

    #[test]
    fn millisecond_timestamps_as_exact_seconds() {
        for (ms, want) in [
            (0, "0"),
            (1500, "1.5"),
            (-1250, "-1.25"),
            (-5, "-0.005"),
            (1010, "1.01"),
        ] {
            let mut s = String::new();
            push_millis_as_seconds(&mut s, ms);
            assert_eq!(s, want, "{ms}");
        }
    }

    #[test]
    fn escaping_in_output() {
        let mut out = String::new();
        write_text(&mut out, &families()[..1]);
        assert!(
            out.starts_with("# HELP lat_seconds Latency with \\\\ and\\nnewline.\n"),
            "{out}"
        );
        assert!(
            out.contains("lat_seconds_bucket{path=\"/a\\\"b\\\\c\\nd\",le=\"0.5\"} 1\n"),
            "{out}"
        );
        let mut om = String::new();
        write_openmetrics(&mut om, &families()[1..2]);
        assert_eq!(
            om,
            "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"label.with.dots\"=\"v\"} -0.5 -1.25\n# EOF\n"
        );
    }
}
