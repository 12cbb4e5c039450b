//! Exporter targets: a scrape that is a call to an exporter plugin.
//!
//! A scrape config with `plugin: <name>` collects each of its targets by
//! calling the plugin's `collect` with the target's labels (all of them after
//! target relabeling, `__address__` and the other reserved ones included,
//! except `__param_*`) and the scrape's parameters (the job's `params` with
//! `__param_<name>` labels over them, as a scrape URL's query). The answer is
//! rendered to the Prometheus text format and handed to the same ingestion as
//! an HTTP body: metric relabeling, limits, staleness, the `up`/`scrape_*`
//! series and metadata all behave as for any target. A failed call (the
//! plugin's own error, a trap, a timeout, the plugin restarting, disabled or
//! not loaded) is a failed scrape: `up` is 0 and the error is the target's
//! `lastError`. The call is bounded by the scrape timeout as well as by the
//! plugin's own `call_timeout`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ember_model::exposition::Format;
use ember_model::exposition::negotiation::Negotiated;
use ember_plugin_host::{MetricFamily, MetricType};

use super::fetch::{FetchError, Fetched};
use super::target::{PARAM_LABEL_PREFIX, Target};
use crate::plugins::PluginManager;

/// The exporter plugin of a scrape pool.
#[derive(Debug, Clone)]
pub struct ExporterSource {
    pub manager: Arc<PluginManager>,
    pub plugin: String,
}

impl ExporterSource {
    /// Collects `target` as a text-format body, within `timeout`.
    pub async fn collect(&self, target: &Target, timeout: Duration) -> Result<Fetched, FetchError> {
        let plugin = self
            .manager
            .get(&self.plugin)
            .map_err(|error| FetchError::Plugin(error.to_string()))?;
        let labels: Vec<(String, String)> = target
            .all_labels()
            .iter()
            .filter(|(name, _)| !name.starts_with(PARAM_LABEL_PREFIX))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let call = self
            .manager
            .timed(&plugin, plugin.collect(labels, target.params().to_vec()));
        let families = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(families)) => families,
            Ok(Err(error)) => return Err(FetchError::Plugin(error.to_string())),
            Err(_) => {
                return Err(FetchError::Timeout {
                    url: target.url().to_owned(),
                });
            }
        };
        Ok(Fetched {
            body: render(&families),
            negotiated: Negotiated {
                format: Format::PrometheusText,
                fallback_reason: None,
            },
        })
    }
}

/// Renders families in the Prometheus text format (0.0.4). Types the format
/// lacks (info, stateset, gauge histogram) are written as `untyped`; units
/// are not representable and are left out.
pub fn render(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = String::new();
    for family in families {
        if !family.help.is_empty() {
            let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        }
        let kind = match family.metric_type {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::GaugeHistogram
            | MetricType::Info
            | MetricType::StateSet
            | MetricType::Unknown => "untyped",
        };
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for sample in &family.samples {
            out.push_str(&sample.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (index, (name, value)) in sample.labels.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_value(value));
                }
                out.push('}');
            }
            out.push(' ');
            write_value(&mut out, sample.value);
            if let Some(timestamp) = sample.timestamp_ms {
                let _ = write!(out, " {timestamp}");
            }
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value:?}");
    }
}

fn escape_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_plugin_host::Sample;

    #[test]
    fn families_render_as_parseable_text() {
        let families = vec![
            MetricFamily {
                name: "probe_success".into(),
                metric_type: MetricType::Gauge,
                help: "Whether the probe\\nworked.".into(),
                unit: String::new(),
                samples: vec![Sample {
                    name: "probe_success".into(),
                    labels: vec![("url".into(), "http://a/\"b\"\n".into())],
                    value: 1.0,
                    timestamp_ms: None,
                }],
            },
            MetricFamily {
                name: "odd".into(),
                metric_type: MetricType::StateSet,
                help: String::new(),
                unit: String::new(),
                samples: vec![Sample {
                    name: "odd".into(),
                    labels: vec![],
                    value: f64::NEG_INFINITY,
                    timestamp_ms: Some(1_700_000_000_000),
                }],
            },
        ];
        let text = String::from_utf8(render(&families)).unwrap();
        assert_eq!(
            text,
            "# HELP probe_success Whether the probe\\\\nworked.\n# TYPE probe_success gauge\n\
             probe_success{url=\"http://a/\\\"b\\\"\\n\"} 1.0\n# TYPE odd untyped\nodd -Inf 1700000000000\n"
        );
        let mut parser =
            ember_model::exposition::Parser::new(Format::PrometheusText, text.as_bytes());
        let mut values = Vec::new();
        loop {
            match parser.next_entry().expect("parses") {
                ember_model::exposition::Entry::Series(series) => {
                    let labels: Vec<(String, String)> = series
                        .labels
                        .iter()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect();
                    values.push((series.name.to_owned(), labels, series.value));
                }
                ember_model::exposition::Entry::EndOfFile => break,
                _ => {}
            }
        }
        assert_eq!(
            values[0].1,
            [("url".to_owned(), "http://a/\"b\"\n".to_owned())]
        );
        assert_eq!(values[1].2, f64::NEG_INFINITY);
    }
}
