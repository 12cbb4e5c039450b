//! Exposition formats: parsers, writers and content negotiation.
//!
//! Scrape targets answer in one of three formats, and this module reads all
//! of them into one stream of [`Entry`] values:
//!
//! * [`TextParser`]: the Prometheus text format 0.0.4 (and 1.0.0, which
//!   only adds quoted UTF-8 names, also accepted here);
//! * [`OpenMetricsParser`]: OpenMetrics 1.0 text, validated as strictly as
//!   the upstream conformance suite demands, or as leniently as Prometheus
//!   scrapes ([`OpenMetricsOptions::prometheus_compatible`]);
//! * [`ProtobufParser`]: varint-delimited `io.prometheus.client.MetricFamily`
//!   messages ([`proto`] holds the message types).
//!
//! The parsers are *pull* parsers over a borrowed byte slice: each call to
//! `next_entry` returns the next [`Entry`], which borrows from the input or
//! from a scratch buffer inside the parser (label values are unescaped into
//! it only when they contain escapes). The text parsers allocate nothing per
//! sample once their buffers have grown to the largest line (strict
//! OpenMetrics validation adds a few allocations per metric *family*); the
//! protobuf parser allocates what `prost` needs to decode each message.
//! [`Series::raw`] gives a stable byte key for the series so a scrape loop
//! can skip label handling for series it has seen before.
//!
//! The input is validated as UTF-8 once, up front; an invalid byte is
//! reported as [`ParseErrorKind::InvalidUtf8`] on its line when the parser
//! reaches it. Parsers are plain values: `Send`, not shared between threads,
//! and each [`Entry`] borrows the parser until the next call.
//!
//! [`negotiation`] builds the `Accept` header and picks a [`Format`] from a
//! response's `Content-Type`; [`writer`] renders owned [`MetricFamily`]
//! values in the text and OpenMetrics formats (for `/federate` and plugins).
//!
//! # Example
//!
//! ```
//! use ember_model::exposition::{Entry, TextParser};
//!
//! let body = b"# TYPE http_requests_total counter\n\
//!              http_requests_total{code=\"200\"} 1027 1395066363000\n";
//! let mut parser = TextParser::new(body);
//! let mut samples = 0;
//! loop {
//!     match parser.next_entry().expect("valid exposition") {
//!         Entry::Series(series) => {
//!             assert_eq!(series.name, "http_requests_total");
//!             assert_eq!(series.labels.get("code"), Some("200"));
//!             assert_eq!(series.value, 1027.0);
//!             assert_eq!(series.timestamp_ms, Some(1395066363000));
//!             samples += 1;
//!         }
//!         Entry::EndOfFile => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(samples, 1);
//! ```

mod error;
mod lex;
pub mod negotiation;
mod openmetrics;
pub mod proto;
mod protobuf;
mod text;
pub mod writer;

use std::fmt;

pub use crate::metadata::MetricType;

pub use error::{HistogramProblem, ParseError, ParseErrorKind, Violation};
pub use lex::{is_legacy_label_name, is_legacy_metric_name, parse_float};
pub use negotiation::{
    EscapingScheme, Format, Negotiated, ScrapeProtocol, UnsupportedContentType,
    accept_encoding_header, accept_header, accept_header_with_escaping,
};
pub use openmetrics::{OpenMetricsOptions, OpenMetricsParser};
pub use protobuf::ProtobufParser;
pub use text::TextParser;
pub use writer::{FamilyExemplar, FamilySample, MetricFamily, write_openmetrics, write_text};

use lex::LabelSpan;

/// Format-specific spellings of [`MetricType`].
pub(crate) mod type_names {
    use super::MetricType;

    /// The text 0.0.4 spelling; types the format lacks become `untyped`.
    pub fn text(t: MetricType) -> &'static str {
        match t {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::GaugeHistogram
            | MetricType::Info
            | MetricType::StateSet
            | MetricType::Unknown => "untyped",
        }
    }

    /// Parses a text 0.0.4 `# TYPE` (which has no OpenMetrics-only types
    /// and spells `unknown` as `untyped`).
    pub fn parse_text(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// Parses an OpenMetrics `# TYPE` (`untyped` is not one).
    pub fn parse_openmetrics(s: &str) -> Option<MetricType> {
        MetricType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One item of an exposition, borrowed from the parser that produced it.
///
/// The borrow ends at the next call to the parser's `next_entry`, which is
/// what lets the parser reuse its buffers instead of allocating.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'p> {
    /// A sample.
    Series(Series<'p>),
    /// `# HELP name text`, with the text unescaped.
    Help {
        /// The metric family name.
        name: &'p str,
        /// The docstring.
        text: &'p str,
    },
    /// `# TYPE name type`.
    Type {
        /// The metric family name.
        name: &'p str,
        /// The declared type.
        metric_type: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics and protobuf only).
    Unit {
        /// The metric family name.
        name: &'p str,
        /// The unit, e.g. `seconds`.
        unit: &'p str,
    },
    /// Any other comment line (text format only), without the `#`.
    Comment(&'p str),
    /// The end of the exposition; every later call returns it again.
    EndOfFile,
}

/// A sample: a series identity and one value.
#[derive(Debug, Clone, Copy)]
pub struct Series<'p> {
    /// The full sample name, e.g. `http_request_duration_seconds_bucket`.
    pub name: &'p str,
    /// The label pairs, in exposition order, excluding the metric name.
    pub labels: LabelPairs<'p>,
    /// The sample value.
    pub value: f64,
    /// Milliseconds since the epoch, if the exposition gave one.
    pub timestamp_ms: Option<i64>,
    /// The exemplar attached to this sample, if any.
    pub exemplar: Option<Exemplar<'p>>,
    /// The created (start) timestamp of this series in milliseconds:
    /// OpenMetrics `_created` samples (when enabled in
    /// [`OpenMetricsOptions`]) or the protobuf `start_timestamp` fields.
    pub created_timestamp_ms: Option<i64>,
    /// The series as written (name and labels, escapes and all): equal
    /// bytes mean an equal series within one format, so it is a cheap
    /// cache key. For protobuf it is a canonical binary rendering of the
    /// name and labels (separated by bytes that never occur in UTF-8).
    pub raw: &'p [u8],
}

/// An exemplar: a trace-linked example observation.
#[derive(Debug, Clone, Copy)]
pub struct Exemplar<'p> {
    /// The exemplar's labels (typically `trace_id`, `span_id`).
    pub labels: LabelPairs<'p>,
    /// The observed value.
    pub value: f64,
    /// When it was observed, in milliseconds, if known.
    pub timestamp_ms: Option<i64>,
}

/// Borrowed label pairs of a [`Series`] or [`Exemplar`].
///
/// Names and values borrow the input where it held them verbatim and the
/// parser's scratch buffer where escapes had to be resolved.
#[derive(Clone, Copy)]
pub struct LabelPairs<'p> {
    spans: &'p [LabelSpan],
    input: &'p str,
    scratch: &'p str,
}

impl<'p> LabelPairs<'p> {
    pub(crate) fn new(spans: &'p [LabelSpan], input: &'p str, scratch: &'p str) -> Self {
        Self {
            spans,
            input,
            scratch,
        }
    }

    /// No labels.
    pub fn empty() -> Self {
        Self {
            spans: &[],
            input: "",
            scratch: "",
        }
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The `(name, value)` pairs in exposition order.
    pub fn iter(&self) -> LabelPairsIter<'p> {
        LabelPairsIter {
            inner: *self,
            index: 0,
        }
    }

    fn pair(&self, span: &LabelSpan) -> (&'p str, &'p str) {
        (
            span.name.resolve(self.input, self.scratch),
            span.value.resolve(self.input, self.scratch),
        )
    }
}

impl fmt::Debug for LabelPairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'p> IntoIterator for LabelPairs<'p> {
    type Item = (&'p str, &'p str);
    type IntoIter = LabelPairsIter<'p>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`LabelPairs`].
#[derive(Debug, Clone)]
pub struct LabelPairsIter<'p> {
    inner: LabelPairs<'p>,
    index: usize,
}

impl<'p> Iterator for LabelPairsIter<'p> {
    type Item = (&'p str, &'p str);

    fn next(&mut self) -> Option<Self::Item> {
        let span = self.inner.spans.get(self.index)?;
        self.index += 1;
        Some(self.inner.pair(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.inner.spans.len() - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for LabelPairsIter<'_> {}

/// Any of the three parsers behind one interface, chosen by [`Format`].
///
/// [`Parser::new`] gives the strict OpenMetrics parser; see
/// [`Parser::with_openmetrics_options`].
#[derive(Debug)]
pub enum Parser<'a> {
    /// Prometheus text.
    Text(TextParser<'a>),
    /// OpenMetrics text (boxed: its family-level state is large).
    OpenMetrics(Box<OpenMetricsParser<'a>>),
    /// Delimited protobuf.
    Protobuf(ProtobufParser<'a>),
}

impl<'a> Parser<'a> {
    /// A parser for `input` in `format`.
    pub fn new(format: Format, input: &'a [u8]) -> Self {
        match format {
            Format::PrometheusText => Self::Text(TextParser::new(input)),
            Format::OpenMetrics => Self::OpenMetrics(Box::new(OpenMetricsParser::new(input))),
            Format::Protobuf => Self::Protobuf(ProtobufParser::new(input)),
        }
    }

    /// A parser for `input` in `format`, with `options` for OpenMetrics
    /// (a scrape loop passes [`OpenMetricsOptions::prometheus_compatible`]).
    pub fn with_openmetrics_options(
        format: Format,
        input: &'a [u8],
        options: OpenMetricsOptions,
    ) -> Self {
        match format {
            Format::OpenMetrics => {
                Self::OpenMetrics(Box::new(OpenMetricsParser::with_options(input, options)))
            }
            _ => Self::new(format, input),
        }
    }

    /// The next entry; [`Entry::EndOfFile`] once the input is exhausted.
    pub fn next_entry(&mut self) -> Result<Entry<'_>, ParseError> {
        match self {
            Self::Text(p) => p.next_entry(),
            Self::OpenMetrics(p) => p.next_entry(),
            Self::Protobuf(p) => p.next_entry(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_series_name(parser: &mut Parser<'_>) -> Option<String> {
        loop {
            match parser.next_entry() {
                Ok(Entry::Series(s)) => return Some(s.name.to_owned()),
                Ok(Entry::EndOfFile) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    #[test]
    fn parser_dispatches_on_format() {
        let text = b"# TYPE a gauge\na 1\n";
        let om = b"# TYPE a gauge\na 1\n# EOF\n";
        let ct = |s| Format::from_content_type(Some(s), None).expect("known type");
        let mut p = Parser::new(ct("text/plain; version=0.0.4"), text);
        assert_eq!(first_series_name(&mut p).as_deref(), Some("a"));
        let mut p = Parser::new(ct("application/openmetrics-text; version=1.0.0"), om);
        assert_eq!(first_series_name(&mut p).as_deref(), Some("a"));
        // The text body lacks `# EOF`: not OpenMetrics.
        let mut p = Parser::new(Format::OpenMetrics, text);
        assert!(matches!(p.next_entry(), Ok(Entry::Type { .. })));
        assert!(matches!(p.next_entry(), Ok(Entry::Series(_))));
        assert!(p.next_entry().is_err());
        let options = OpenMetricsOptions::prometheus_compatible();
        let mut p = Parser::with_openmetrics_options(Format::OpenMetrics, om, options);
        assert_eq!(first_series_name(&mut p).as_deref(), Some("a"));
        let mut p = Parser::new(Format::Protobuf, b"");
        assert!(matches!(p.next_entry(), Ok(Entry::EndOfFile)));
    }

    #[test]
    fn label_pairs_accessors() {
        let mut p = TextParser::new(b"a{x=\"1\",y=\"2\"} 1\n");
        let Ok(Entry::Series(s)) = p.next_entry() else {
            panic!("series expected")
        };
        assert_eq!(s.labels.len(), 2);
        assert!(!s.labels.is_empty());
        assert_eq!(s.labels.get("y"), Some("2"));
        assert_eq!(s.labels.get("z"), None);
        assert_eq!(s.labels.iter().len(), 2);
        assert_eq!(format!("{:?}", s.labels), r#"{"x": "1", "y": "2"}"#);
        assert!(LabelPairs::empty().is_empty());
    }
}
