//! Exposition parsers against upstream data: the OpenMetrics parser test
//! suite and Prometheus's real-world expositions.
//!
//! Both live in `../shared/conformance/` next to the repository and are read
//! in place; when that folder is absent (a fresh clone) the tests say so and
//! pass vacuously.

use std::path::{Path, PathBuf};

use ember_model::exposition::{
    Entry, FamilySample, MetricFamily, MetricType, OpenMetricsOptions, OpenMetricsParser,
    ParseError, TextParser, write_openmetrics, write_text,
};

fn conformance_dir(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance"
    ))
    .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not found; conformance data is not available",
            dir.display()
        );
        None
    }
}

/// A sample as comparable owned data.
#[derive(Debug, Clone, PartialEq)]
struct Owned {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Summary {
    types: Vec<(String, MetricType)>,
    helps: usize,
    units: usize,
    samples: Vec<Owned>,
    exemplars: usize,
}

fn record(summary: &mut Summary, entry: Entry<'_>) -> bool {
    match entry {
        Entry::Series(s) => {
            summary.exemplars += usize::from(s.exemplar.is_some());
            summary.samples.push(Owned {
                name: s.name.to_owned(),
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            });
        }
        Entry::Type { name, metric_type } => summary.types.push((name.to_owned(), metric_type)),
        Entry::Help { .. } => summary.helps += 1,
        Entry::Unit { .. } => summary.units += 1,
        Entry::Comment(_) => {}
        Entry::EndOfFile => return false,
    }
    true
}

fn parse_text(input: &[u8]) -> Result<Summary, ParseError> {
    let mut summary = Summary::default();
    let mut p = TextParser::new(input);
    while record(&mut summary, p.next_entry()?) {}
    Ok(summary)
}

fn parse_openmetrics(input: &[u8], options: OpenMetricsOptions) -> Result<Summary, ParseError> {
    let mut summary = Summary::default();
    let mut p = OpenMetricsParser::with_options(input, options);
    while record(&mut summary, p.next_entry()?) {}
    Ok(summary)
}

#[test]
fn openmetrics_parser_suite() {
    let Some(dir) = conformance_dir("openmetrics") else {
        return;
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable suite")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("test.json").is_file())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    let (mut good, mut bad) = (0, 0);
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case.join("test.json")).expect("test.json"))
                .expect("test.json is JSON");
        let file = spec["file"].as_str().unwrap_or("metrics");
        let should_parse = spec["shouldParse"].as_bool().expect("shouldParse");
        let input = std::fs::read(case.join(file)).expect("metrics file");
        let result = parse_openmetrics(&input, OpenMetricsOptions::default());
        if should_parse {
            good += 1;
        } else {
            bad += 1;
        }
        match (should_parse, result) {
            (true, Err(e)) => failures.push(format!("{name}: should parse, got error: {e}")),
            (false, Ok(_)) => failures.push(format!("{name}: should be rejected, was accepted")),
            _ => {}
        }
    }
    eprintln!(
        "OpenMetrics suite: {}/{} cases give the expected answer ({good} valid, {bad} invalid inputs)",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(!cases.is_empty(), "no cases found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rejections_explain_themselves() {
    let Some(dir) = conformance_dir("openmetrics") else {
        return;
    };
    for (case, needle) in [
        ("bad_no_eof", "missing \"# EOF\""),
        ("bad_histograms_9", "bucket bounds must increase"),
        ("bad_grouping_or_ordering_4", "timestamps went backwards"),
        ("bad_unit_4", "is not a suffix of metric family name"),
        ("bad_clashing_names_2", "clashes"),
        ("bad_exemplars_6", "exemplar labels are 129 characters long"),
    ] {
        let input = std::fs::read(dir.join(case).join("metrics")).expect("case");
        let err = parse_openmetrics(&input, OpenMetricsOptions::default()).expect_err(case);
        let message = err.to_string();
        assert!(
            message.contains(needle),
            "{case}: {message:?} lacks {needle:?}"
        );
        assert!(message.starts_with("line "), "{case}: {message}");
    }
}

#[test]
fn prometheus_text_expositions() {
    let Some(dir) = conformance_dir("exposition") else {
        return;
    };
    let full = parse_text(&std::fs::read(dir.join("alltypes.237mfs.prom.txt")).expect("file"))
        .expect("alltypes.237mfs.prom.txt parses");
    let bare =
        parse_text(&std::fs::read(dir.join("alltypes.237mfs.nometa.prom.txt")).expect("file"))
            .expect("alltypes.237mfs.nometa.prom.txt parses");
    eprintln!(
        "alltypes.237mfs: {} families, {} HELP, {} samples",
        full.types.len(),
        full.helps,
        full.samples.len()
    );
    assert_eq!(full.types.len(), 237);
    assert_eq!(full.helps, 237);
    assert_eq!(full.samples.len(), 1857);
    // The same samples with and without metadata.
    assert!(bare.types.is_empty());
    assert_eq!(bare.samples.len(), full.samples.len());
    for (a, b) in full.samples.iter().zip(&bare.samples) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.labels, b.labels);
        assert!(
            a.value == b.value || (a.value.is_nan() && b.value.is_nan()),
            "{a:?} vs {b:?}"
        );
    }
    let histograms = full
        .types
        .iter()
        .filter(|(_, t)| *t == MetricType::Histogram)
        .count();
    let summaries = full
        .types
        .iter()
        .filter(|(_, t)| *t == MetricType::Summary)
        .count();
    assert!(
        histograms > 0 && summaries > 0,
        "{histograms} histograms, {summaries} summaries"
    );
}

#[test]
fn openmetrics_expositions() {
    let Some(dir) = conformance_dir("exposition") else {
        return;
    };
    let one = std::fs::read(dir.join("1histogram.om.txt")).expect("file");
    let one =
        parse_openmetrics(&one, OpenMetricsOptions::default()).expect("1histogram.om.txt parses");
    assert_eq!(
        one.types,
        [(
            "golang_manual_histogram_seconds".to_owned(),
            MetricType::Histogram
        )]
    );
    assert_eq!(one.samples.len(), 42);

    // client_golang exposes `_sum` on a histogram with negative buckets,
    // which OpenMetrics 1.0 forbids: the strict parser says so, the
    // Prometheus-compatible one accepts it like Prometheus does.
    let five = std::fs::read(dir.join("alltypes.5mfs.om.txt")).expect("file");
    let err = parse_openmetrics(&five, OpenMetricsOptions::default()).expect_err("strict rejects");
    assert_eq!(err.line, 33, "{err}");
    assert!(
        err.to_string()
            .contains("rpc_durations_histogram_seconds_sum"),
        "{err}"
    );

    let lenient = OpenMetricsOptions::prometheus_compatible();
    let all = parse_openmetrics(&five, lenient).expect("alltypes.5mfs.om.txt parses");
    assert_eq!(all.types.len(), 5);
    assert_eq!(all.samples.len(), 53);
    assert!(all.exemplars > 0);
    // With created timestamps folded into their series, the nine
    // `_created` samples disappear.
    let options = OpenMetricsOptions {
        created_timestamps: true,
        skip_created_series: true,
        ..lenient
    };
    let folded = parse_openmetrics(&five, options).expect("parses with created timestamps");
    assert_eq!(folded.samples.len(), 53 - 9);
    assert!(folded.samples.iter().all(|s| !s.name.ends_with("_created")));
}

#[test]
fn created_timestamps_are_attached_to_their_series() {
    let Some(dir) = conformance_dir("exposition") else {
        return;
    };
    let five = std::fs::read(dir.join("alltypes.5mfs.om.txt")).expect("file");
    let options = OpenMetricsOptions {
        created_timestamps: true,
        skip_created_series: true,
        ..OpenMetricsOptions::prometheus_compatible()
    };
    let mut p = OpenMetricsParser::with_options(&five, options);
    let mut with_ct = 0;
    loop {
        match p.next_entry().expect("valid") {
            Entry::Series(s) if s.name == "promhttp_metric_handler_errors_total" => {
                let ct = s
                    .created_timestamp_ms
                    .expect("counter has a created timestamp");
                // 1.726839813016397e+09 and 1.726839813016395e+09 seconds.
                assert_eq!(ct, 1_726_839_813_016, "{:?}", s.labels);
                with_ct += 1;
            }
            Entry::Series(s) if s.created_timestamp_ms.is_some() => with_ct += 1,
            Entry::EndOfFile => break,
            _ => {}
        }
    }
    assert!(with_ct >= 2, "{with_ct}");
}

/// Text exposition -> owned families -> OpenMetrics and text writers ->
/// parsers again: the same samples come back.
#[test]
fn text_to_openmetrics_and_back() {
    let Some(dir) = conformance_dir("exposition") else {
        return;
    };
    let input = std::fs::read(dir.join("alltypes.237mfs.prom.txt")).expect("file");
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut p = TextParser::new(&input);
    loop {
        match p.next_entry().expect("valid") {
            Entry::Help { name, text } => families.push(MetricFamily {
                name: name.to_owned(),
                help: Some(text.to_owned()),
                ..Default::default()
            }),
            Entry::Type { metric_type, .. } => {
                families
                    .last_mut()
                    .expect("HELP precedes TYPE here")
                    .metric_type = metric_type;
            }
            Entry::Series(s) => families
                .last_mut()
                .expect("a family")
                .samples
                .push(FamilySample {
                    name: s.name.to_owned(),
                    labels: s
                        .labels
                        .iter()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                    value: s.value,
                    timestamp_ms: s.timestamp_ms,
                    exemplar: None,
                }),
            Entry::EndOfFile => break,
            _ => {}
        }
    }
    let original = parse_text(&input).expect("valid").samples;

    let mut text = String::new();
    write_text(&mut text, &families);
    let again = parse_text(text.as_bytes())
        .expect("own text output parses")
        .samples;
    assert_eq!(again.len(), original.len());
    for (got, want) in again.iter().zip(&original) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.labels, want.labels);
        assert!(
            got.value == want.value || (got.value.is_nan() && want.value.is_nan()),
            "{got:?} vs {want:?}"
        );
    }

    let mut om = String::new();
    write_openmetrics(&mut om, &families);
    // `go_memstats_alloc_bytes` (gauge) and `go_memstats_alloc_bytes_total`
    // (counter, family `go_memstats_alloc_bytes` in OpenMetrics) clash in
    // OpenMetrics, so only the Prometheus-compatible mode reads this back.
    let back = parse_openmetrics(om.as_bytes(), OpenMetricsOptions::prometheus_compatible())
        .unwrap_or_else(|e| panic!("own OpenMetrics output parses: {e}"));
    assert_eq!(back.types.len(), 237);
    assert_eq!(back.samples.len(), original.len());
    for (got, want) in back.samples.iter().zip(&original) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.labels, want.labels);
        assert!(
            got.value == want.value || (got.value.is_nan() && want.value.is_nan()),
            "{got:?} vs {want:?}"
        );
    }
}

/// The text exposition converted to protobuf messages (the way client
/// libraries would send it) parses back to the same samples.
#[test]
fn protobuf_form_of_the_text_exposition() {
    use ember_model::exposition::ProtobufParser;
    use ember_model::exposition::proto::{self, LabelPair};
    use prost::Message;

    let Some(dir) = conformance_dir("exposition") else {
        return;
    };
    let input = std::fs::read(dir.join("alltypes.237mfs.prom.txt")).expect("file");
    let text = parse_text(&input).expect("valid");

    // Group the text samples into families by their TYPE lines.
    let mut families: Vec<(String, MetricType, Vec<Owned>)> = Vec::new();
    let mut p = TextParser::new(&input);
    loop {
        match p.next_entry().expect("valid") {
            Entry::Type { name, metric_type } => {
                families.push((name.to_owned(), metric_type, Vec::new()))
            }
            Entry::Series(s) => families.last_mut().expect("typed").2.push(Owned {
                name: s.name.to_owned(),
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            }),
            Entry::EndOfFile => break,
            _ => {}
        }
    }

    let pairs = |labels: &[(String, String)], skip: &str| -> Vec<LabelPair> {
        labels
            .iter()
            .filter(|(n, _)| n != skip)
            .map(|(n, v)| LabelPair {
                name: n.clone(),
                value: v.clone(),
            })
            .collect()
    };
    let mut bytes = Vec::new();
    for (name, metric_type, samples) in &families {
        let mut family = proto::MetricFamily {
            name: name.clone(),
            ..Default::default()
        };
        match metric_type {
            MetricType::Counter | MetricType::Gauge | MetricType::Unknown => {
                family.r#type = match metric_type {
                    MetricType::Counter => proto::MetricType::Counter,
                    MetricType::Gauge => proto::MetricType::Gauge,
                    _ => proto::MetricType::Untyped,
                } as i32;
                for s in samples {
                    let mut m = proto::Metric {
                        label: pairs(&s.labels, ""),
                        ..Default::default()
                    };
                    match metric_type {
                        MetricType::Counter => {
                            m.counter = Some(proto::Counter {
                                value: s.value,
                                ..Default::default()
                            })
                        }
                        MetricType::Gauge => m.gauge = Some(proto::Gauge { value: s.value }),
                        _ => m.untyped = Some(proto::Untyped { value: s.value }),
                    }
                    family.metric.push(m);
                }
            }
            MetricType::Summary | MetricType::Histogram => {
                let summary = *metric_type == MetricType::Summary;
                family.r#type = if summary {
                    proto::MetricType::Summary
                } else {
                    proto::MetricType::Histogram
                } as i32;
                let special = if summary { "quantile" } else { "le" };
                for s in samples {
                    let key = pairs(&s.labels, special);
                    if family.metric.last().is_none_or(|m| m.label != key) {
                        family.metric.push(proto::Metric {
                            label: key,
                            summary: summary.then(proto::Summary::default),
                            histogram: (!summary).then(proto::Histogram::default),
                            ..Default::default()
                        });
                    }
                    let m = family.metric.last_mut().expect("pushed");
                    let bound = s
                        .labels
                        .iter()
                        .find(|(n, _)| n == special)
                        .map(|(_, v)| v.parse::<f64>());
                    let suffix = &s.name[name.len()..];
                    if let Some(sm) = m.summary.as_mut() {
                        match (suffix, bound) {
                            ("_sum", _) => sm.sample_sum = s.value,
                            ("_count", _) => sm.sample_count = s.value as u64,
                            (_, Some(Ok(q))) => sm.quantile.push(proto::Quantile {
                                quantile: q,
                                value: s.value,
                            }),
                            other => panic!("unexpected summary sample {other:?}"),
                        }
                    } else if let Some(h) = m.histogram.as_mut() {
                        match (suffix, bound) {
                            ("_sum", _) => h.sample_sum = s.value,
                            ("_count", _) => h.sample_count = s.value as u64,
                            ("_bucket", Some(le)) => h.bucket.push(proto::Bucket {
                                cumulative_count: s.value as u64,
                                upper_bound: if s
                                    .labels
                                    .iter()
                                    .any(|(n, v)| n == "le" && v == "+Inf")
                                {
                                    f64::INFINITY
                                } else {
                                    le.expect("numeric le")
                                },
                                ..Default::default()
                            }),
                            other => panic!("unexpected histogram sample {other:?}"),
                        }
                    }
                }
            }
            other => panic!("type {other:?} cannot occur in the text format"),
        }
        family.encode_length_delimited(&mut bytes).expect("encodes");
    }

    let mut from_proto = Vec::new();
    let mut p = ProtobufParser::new(&bytes);
    let mut types = 0;
    loop {
        match p.next_entry().expect("valid protobuf") {
            Entry::Type { .. } => types += 1,
            Entry::Series(s) => from_proto.push(Owned {
                name: s.name.to_owned(),
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            }),
            Entry::EndOfFile => break,
            _ => {}
        }
    }
    assert_eq!(types, 237);

    // Protobuf spells `le`/`quantile` like OpenMetrics ("1.0") and puts
    // `_count` and `_sum` first: compare canonical, sorted forms.
    let canonical = |samples: &[Owned]| -> Vec<String> {
        let mut out: Vec<String> = samples
            .iter()
            .map(|s| {
                let mut labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(n, v)| match n.as_str() {
                        "le" | "quantile" => {
                            format!("{n}={:?}", v.parse::<f64>().unwrap_or(f64::INFINITY))
                        }
                        _ => format!("{n}={v:?}"),
                    })
                    .collect();
                labels.sort();
                format!("{}{{{}}} {:?}", s.name, labels.join(","), s.value)
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(from_proto.len(), text.samples.len());
    assert_eq!(canonical(&from_proto), canonical(&text.samples));
}
