//! The protobuf scrape format: varint-delimited `MetricFamily` messages.
//!
//! Each family yields `Help`, `Unit` (when set), `Type`, then its samples,
//! expanded the way the text formats spell them: summaries become
//! `name_count`, `name_sum` and `name{quantile=".."}`; classic histograms
//! become `name_count`, `name_sum` and `name_bucket{le=".."}`, with a `+Inf`
//! bucket added when the message leaves it implicit. `le` and `quantile`
//! values use the OpenMetrics float spelling (`1.0`, `+Inf`), as in
//! Prometheus.
//!
//! Native histogram fields are decoded (see [`proto::Histogram`]) but not
//! yet returned: until the storage layer has a native histogram type, only
//! the classic representation (count, sum, explicit buckets) is produced.
//!
//! Decoding a message allocates its strings (prost owns them); the
//! per-sample work after that reuses the parser's buffers.

use prost::Message;

use super::error::{ParseError, ParseErrorKind};
use super::lex::{LabelSpan, StrRef};
use super::proto::{self, MetricType as ProtoType};
use super::writer::push_openmetrics_float;
use super::{Entry, Exemplar, LabelPairs, MetricType, Series};

/// Pull parser for delimited protobuf `MetricFamily` streams.
#[derive(Debug)]
pub struct ProtobufParser<'a> {
    input: &'a [u8],
    pos: usize,
    /// 1-based index of the current message (for errors).
    message_index: usize,
    family: proto::MetricFamily,
    metric_type: MetricType,
    state: State,
    metric: usize,
    /// Position within the current metric's expanded samples.
    field: usize,
    scratch: String,
    labels: Vec<LabelSpan>,
    exemplar_labels: Vec<LabelSpan>,
    raw: Vec<u8>,
    float_buf: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NextFamily,
    Unit,
    Type,
    Samples,
    Done,
}

/// One expanded sample, before its strings are laid out.
#[derive(Debug, Clone, Copy)]
struct Pending {
    suffix: &'static str,
    extra_label: Option<(&'static str, f64)>,
    value: f64,
    exemplar: Option<ExemplarSource>,
    created_timestamp_ms: Option<i64>,
}

/// Where in the current metric a sample's exemplar lives.
#[derive(Debug, Clone, Copy)]
enum ExemplarSource {
    Counter,
    Bucket(usize),
}

fn created_ms(t: Option<&proto::Timestamp>) -> Option<i64> {
    t.filter(|t| t.seconds != 0 || t.nanos != 0)
        .map(proto::Timestamp::as_millis)
}

impl<'a> ProtobufParser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            message_index: 0,
            family: proto::MetricFamily::default(),
            metric_type: MetricType::Unknown,
            state: State::NextFamily,
            metric: 0,
            field: 0,
            scratch: String::new(),
            labels: Vec::new(),
            exemplar_labels: Vec::new(),
            raw: Vec::new(),
            float_buf: String::new(),
        }
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            line: self.message_index,
            column: 0,
            offset: self.pos,
            kind: ParseErrorKind::Protobuf(message),
        }
    }

    /// Parses and returns the next entry.
    pub fn next_entry(&mut self) -> Result<Entry<'_>, ParseError> {
        loop {
            match self.state {
                State::Done => return Ok(Entry::EndOfFile),
                State::NextFamily => {
                    if self.pos >= self.input.len() {
                        self.state = State::Done;
                        return Ok(Entry::EndOfFile);
                    }
                    self.read_family()?;
                    if self.family.metric.is_empty() {
                        continue;
                    }
                    self.state = if self.family.unit.is_empty() {
                        State::Type
                    } else {
                        State::Unit
                    };
                    return Ok(Entry::Help {
                        name: &self.family.name,
                        text: &self.family.help,
                    });
                }
                State::Unit => {
                    self.state = State::Type;
                    return Ok(Entry::Unit {
                        name: &self.family.name,
                        unit: &self.family.unit,
                    });
                }
                State::Type => {
                    self.state = State::Samples;
                    self.metric = 0;
                    self.field = 0;
                    return Ok(Entry::Type {
                        name: &self.family.name,
                        metric_type: self.metric_type,
                    });
                }
                State::Samples => {
                    if self.metric >= self.family.metric.len() {
                        self.state = State::NextFamily;
                        continue;
                    }
                    let Some(pending) = self.pending_sample() else {
                        self.metric += 1;
                        self.field = 0;
                        continue;
                    };
                    self.field += 1;
                    return Ok(self.emit(pending));
                }
            }
        }
    }

    fn read_family(&mut self) -> Result<(), ParseError> {
        self.message_index += 1;
        let mut rest = &self.input[self.pos..];
        let before = rest.len();
        let len = prost::encoding::decode_varint(&mut rest)
            .map_err(|e| self.error(format!("reading message length: {e}")))?;
        let header = before - rest.len();
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| {
                self.error(format!(
                    "message length {len} exceeds the {} bytes left",
                    rest.len()
                ))
            })?;
        self.family.clear();
        self.family
            .merge(&rest[..len])
            .map_err(|e| self.error(format!("decoding MetricFamily: {e}")))?;
        self.pos += header + len;
        let name = &self.family.name;
        if name.is_empty() {
            return Err(self.error("metric family without a name".to_owned()));
        }
        self.metric_type = match ProtoType::try_from(self.family.r#type) {
            Ok(ProtoType::Counter) => MetricType::Counter,
            Ok(ProtoType::Gauge) => MetricType::Gauge,
            Ok(ProtoType::Summary) => MetricType::Summary,
            Ok(ProtoType::Untyped) => MetricType::Unknown,
            Ok(ProtoType::Histogram) => MetricType::Histogram,
            Ok(ProtoType::GaugeHistogram) => MetricType::GaugeHistogram,
            Err(_) => {
                return Err(self.error(format!(
                    "unknown metric type {} for metric {name:?}",
                    self.family.r#type
                )));
            }
        };
        let unit = &self.family.unit;
        if !unit.is_empty() {
            // Counters may carry `_total` after the unit.
            let base = match self.metric_type {
                MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
                _ => name,
            };
            if !base
                .strip_suffix(unit.as_str())
                .is_some_and(|p| p.ends_with('_'))
            {
                return Err(self.error(format!("unit {unit:?} is not a suffix of metric {name:?}")));
            }
        }
        Ok(())
    }

    /// The `field`-th expanded sample of the current metric, if any.
    fn pending_sample(&self) -> Option<Pending> {
        let m = &self.family.metric[self.metric];
        let simple = |value: f64| Pending {
            suffix: "",
            extra_label: None,
            value,
            exemplar: None,
            created_timestamp_ms: None,
        };
        match self.metric_type {
            MetricType::Counter => (self.field == 0).then(|| {
                let c = m.counter.as_ref();
                Pending {
                    exemplar: c
                        .and_then(|c| c.exemplar.as_ref())
                        .map(|_| ExemplarSource::Counter),
                    created_timestamp_ms: created_ms(c.and_then(|c| c.start_timestamp.as_ref())),
                    ..simple(c.map_or(0.0, |c| c.value))
                }
            }),
            MetricType::Gauge => {
                (self.field == 0).then(|| simple(m.gauge.map_or(0.0, |g| g.value)))
            }
            MetricType::Unknown | MetricType::Info | MetricType::StateSet => {
                (self.field == 0).then(|| simple(m.untyped.map_or(0.0, |u| u.value)))
            }
            MetricType::Summary => {
                let s = m.summary.as_ref();
                let created_timestamp_ms = created_ms(s.and_then(|s| s.start_timestamp.as_ref()));
                let quantiles = s.map_or(&[][..], |s| &s.quantile);
                let p = match self.field {
                    0 => Pending {
                        suffix: "_count",
                        ..simple(s.map_or(0.0, |s| s.sample_count as f64))
                    },
                    1 => Pending {
                        suffix: "_sum",
                        ..simple(s.map_or(0.0, |s| s.sample_sum))
                    },
                    i => {
                        let q = quantiles.get(i - 2)?;
                        Pending {
                            extra_label: Some(("quantile", q.quantile)),
                            ..simple(q.value)
                        }
                    }
                };
                Some(Pending {
                    created_timestamp_ms,
                    ..p
                })
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = m.histogram.as_ref();
                let created_timestamp_ms = created_ms(h.and_then(|h| h.start_timestamp.as_ref()));
                let count = h.map_or(0.0, |h| {
                    if h.sample_count_float > 0.0 {
                        h.sample_count_float
                    } else {
                        h.sample_count as f64
                    }
                });
                let buckets = h.map_or(&[][..], |h| &h.bucket);
                let implicit_inf = buckets
                    .last()
                    .is_none_or(|b| b.upper_bound != f64::INFINITY);
                let p = match self.field {
                    0 => Pending {
                        suffix: "_count",
                        ..simple(count)
                    },
                    1 => Pending {
                        suffix: "_sum",
                        ..simple(h.map_or(0.0, |h| h.sample_sum))
                    },
                    i if i - 2 < buckets.len() => {
                        let b = &buckets[i - 2];
                        let value = if b.cumulative_count_float > 0.0 {
                            b.cumulative_count_float
                        } else {
                            b.cumulative_count as f64
                        };
                        Pending {
                            suffix: "_bucket",
                            extra_label: Some(("le", b.upper_bound)),
                            exemplar: b.exemplar.as_ref().map(|_| ExemplarSource::Bucket(i - 2)),
                            ..simple(value)
                        }
                    }
                    i if i - 2 == buckets.len() && implicit_inf => Pending {
                        suffix: "_bucket",
                        extra_label: Some(("le", f64::INFINITY)),
                        ..simple(count)
                    },
                    _ => return None,
                };
                Some(Pending {
                    created_timestamp_ms,
                    ..p
                })
            }
        }
    }

    /// Lays out a pending sample's strings in the scratch buffer.
    fn emit(&mut self, pending: Pending) -> Entry<'_> {
        let Pending {
            suffix,
            extra_label: extra,
            value,
            exemplar: exemplar_source,
            created_timestamp_ms,
        } = pending;

        let scratch = &mut self.scratch;
        scratch.clear();
        self.labels.clear();
        self.exemplar_labels.clear();
        self.raw.clear();
        let m = &self.family.metric[self.metric];
        let exemplar_message = match exemplar_source {
            Some(ExemplarSource::Counter) => m.counter.as_ref().and_then(|c| c.exemplar.as_ref()),
            Some(ExemplarSource::Bucket(i)) => m
                .histogram
                .as_ref()
                .and_then(|h| h.bucket.get(i))
                .and_then(|b| b.exemplar.as_ref()),
            None => None,
        };
        let exemplar = exemplar_message.map(|e| (e.value, e.timestamp.map(|t| t.as_millis())));
        scratch.push_str(&self.family.name);
        scratch.push_str(suffix);
        let name = StrRef {
            start: 0,
            end: scratch.len(),
            in_scratch: true,
        };
        self.raw.extend_from_slice(scratch.as_bytes());
        let push = |scratch: &mut String,
                    raw: &mut Vec<u8>,
                    labels: &mut Vec<LabelSpan>,
                    n: &str,
                    v: &str| {
            let ns = scratch.len();
            scratch.push_str(n);
            let vs = scratch.len();
            scratch.push_str(v);
            labels.push(LabelSpan {
                name: StrRef {
                    start: ns,
                    end: vs,
                    in_scratch: true,
                },
                value: StrRef {
                    start: vs,
                    end: scratch.len(),
                    in_scratch: true,
                },
            });
            // 0xFF and 0xFE never occur in UTF-8: an unambiguous key.
            raw.push(0xFF);
            raw.extend_from_slice(n.as_bytes());
            raw.push(0xFE);
            raw.extend_from_slice(v.as_bytes());
        };
        for lp in &m.label {
            push(
                scratch,
                &mut self.raw,
                &mut self.labels,
                &lp.name,
                &lp.value,
            );
        }
        if let Some((label, bound)) = extra {
            self.float_buf.clear();
            push_openmetrics_float(&mut self.float_buf, bound);
            push(
                scratch,
                &mut self.raw,
                &mut self.labels,
                label,
                &self.float_buf,
            );
        }
        if let Some(e) = exemplar_message {
            // Exemplar labels are not part of the series key.
            let key_len = self.raw.len();
            for lp in &e.label {
                push(
                    scratch,
                    &mut self.raw,
                    &mut self.exemplar_labels,
                    &lp.name,
                    &lp.value,
                );
            }
            self.raw.truncate(key_len);
        }
        let timestamp_ms = (m.timestamp_ms != 0).then_some(m.timestamp_ms);
        let scratch = self.scratch.as_str();
        Entry::Series(Series {
            name: name.resolve("", scratch),
            labels: LabelPairs::new(&self.labels, "", scratch),
            value,
            timestamp_ms,
            exemplar: exemplar.map(|(value, timestamp_ms)| Exemplar {
                labels: LabelPairs::new(&self.exemplar_labels, "", scratch),
                value,
                timestamp_ms,
            }),
            created_timestamp_ms,
            raw: &self.raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::proto::{
        Bucket, Counter, Histogram, LabelPair, Metric, Quantile, Summary, Timestamp,
    };

    fn collect(bytes: &[u8]) -> Result<Vec<String>, ParseError> {
        let mut p = ProtobufParser::new(bytes);
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
                Entry::Help { name, text } => out.push(format!("HELP {name} {text}")),
                Entry::Type { name, metric_type } => out.push(format!("TYPE {name} {metric_type}")),
                Entry::Unit { name, unit } => out.push(format!("UNIT {name} {unit}")),
                Entry::Comment(c) => out.push(format!("COMMENT {c}")),
            }
        }
    }

    fn lp(n: &str, v: &str) -> LabelPair {
        LabelPair {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn expands_families_like_the_text_formats() {
        let mut bytes = Vec::new();
        proto::MetricFamily {
            name: "rpc_seconds".into(),
            help: "RPC latency.".into(),
            r#type: ProtoType::Histogram as i32,
            unit: "seconds".into(),
            metric: vec![Metric {
                label: vec![lp("path", "/a")],
                histogram: Some(Histogram {
                    sample_count: 3,
                    sample_sum: 1.5,
                    bucket: vec![
                        Bucket {
                            cumulative_count: 1,
                            upper_bound: 0.5,
                            ..Default::default()
                        },
                        Bucket {
                            cumulative_count: 2,
                            upper_bound: 1.0,
                            exemplar: Some(proto::Exemplar {
                                label: vec![lp("trace_id", "abc")],
                                value: 0.7,
                                timestamp: Some(Timestamp {
                                    seconds: 10,
                                    nanos: 500_000_000,
                                }),
                            }),
                            ..Default::default()
                        },
                    ],
                    start_timestamp: Some(Timestamp {
                        seconds: 5,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                timestamp_ms: 1234,
                ..Default::default()
            }],
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();
        proto::MetricFamily {
            name: "rpc".into(),
            r#type: ProtoType::Summary as i32,
            metric: vec![Metric {
                summary: Some(Summary {
                    sample_count: 4,
                    sample_sum: 2.0,
                    quantile: vec![Quantile {
                        quantile: 0.5,
                        value: 0.25,
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();
        // An empty family is skipped entirely.
        proto::MetricFamily {
            name: "empty".into(),
            ..Default::default()
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();
        proto::MetricFamily {
            name: "hits_total".into(),
            r#type: ProtoType::Counter as i32,
            metric: vec![Metric {
                counter: Some(Counter {
                    value: 7.0,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();

        let got = collect(&bytes).unwrap();
        assert_eq!(
            got,
            [
                "HELP rpc_seconds RPC latency.",
                "UNIT rpc_seconds seconds",
                "TYPE rpc_seconds histogram",
                r#"rpc_seconds_count{path="/a"} 3 @1234 ct=5000"#,
                r#"rpc_seconds_sum{path="/a"} 1.5 @1234 ct=5000"#,
                r#"rpc_seconds_bucket{path="/a",le="0.5"} 1 @1234 ct=5000"#,
                r#"rpc_seconds_bucket{path="/a",le="1.0"} 2 @1234 ct=5000 # {trace_id="abc"} 0.7 Some(10500)"#,
                r#"rpc_seconds_bucket{path="/a",le="+Inf"} 3 @1234 ct=5000"#,
                "HELP rpc ",
                "TYPE rpc summary",
                "rpc_count{} 4",
                "rpc_sum{} 2",
                r#"rpc{quantile="0.5"} 0.25"#,
                "HELP hits_total ",
                "TYPE hits_total counter",
                "hits_total{} 7",
            ]
        );
    }

    #[test]
    fn series_keys_distinguish_label_sets() {
        let mut bytes = Vec::new();
        proto::MetricFamily {
            name: "g".into(),
            r#type: ProtoType::Gauge as i32,
            metric: vec![
                Metric {
                    label: vec![lp("a", "b,c")],
                    gauge: Some(proto::Gauge { value: 1.0 }),
                    ..Default::default()
                },
                Metric {
                    label: vec![lp("a", "b"), lp("c", "")],
                    gauge: Some(proto::Gauge { value: 2.0 }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();
        let mut p = ProtobufParser::new(&bytes);
        let mut keys = Vec::new();
        loop {
            match p.next_entry().unwrap() {
                Entry::Series(s) => keys.push(s.raw.to_vec()),
                Entry::EndOfFile => break,
                _ => {}
            }
        }
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
    }

    #[test]
    fn truncated_and_invalid_input_is_an_error() {
        let mut bytes = Vec::new();
        proto::MetricFamily {
            name: "g".into(),
            ..Default::default()
        }
        .encode_length_delimited(&mut bytes)
        .unwrap();
        let truncated = &bytes[..bytes.len() - 1];
        let err = collect(truncated).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(matches!(err.kind, ParseErrorKind::Protobuf(_)));

        let mut bad_type = Vec::new();
        proto::MetricFamily {
            name: "g".into(),
            r#type: 42,
            metric: vec![Metric::default()],
            ..Default::default()
        }
        .encode_length_delimited(&mut bad_type)
        .unwrap();
        assert!(collect(&bad_type).is_err());

        let mut bad_unit = Vec::new();
        proto::MetricFamily {
            name: "latency_ms".into(),
            unit: "seconds".into(),
            metric: vec![Metric::default()],
            ..Default::default()
        }
        .encode_length_delimited(&mut bad_unit)
        .unwrap();
        assert!(collect(&bad_unit).is_err());
    }
}
