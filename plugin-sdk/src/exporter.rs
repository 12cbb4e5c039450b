//! The `exporter` world: collect metric families for a target.

use crate::{Config, LabelSet, MetricFamily, MetricType, Param, PluginError, Sample, labels};

/// An exporter plugin: a scrape target whose scrape is a plugin call.
///
/// Contract: the host calls `init` once per instance, then `collect` once per
/// scrape of each target that uses the plugin, never concurrently on one
/// instance. Samples without timestamps get the scrape's timestamp. Export
/// the type with [`export_exporter!`](crate::export_exporter).
pub trait Exporter: Sized + Send + Sync + 'static {
    /// Builds the plugin from its configuration. An
    /// [`PluginError::InvalidConfig`] fails the plugin's load.
    fn init(config: &Config) -> Result<Self, PluginError>;

    /// Collects the metrics of the target with labels `target` (after target
    /// relabeling, so with `__address__` and `__param_*`), given the scrape's
    /// URL parameters.
    fn collect(
        &self,
        target: LabelSet,
        params: Vec<Param>,
    ) -> Result<Vec<MetricFamily>, PluginError>;
}

/// Builds one [`MetricFamily`], naming samples after the family's type.
///
/// ```
/// use ember_plugin_sdk::MetricFamilyBuilder;
///
/// let family = MetricFamilyBuilder::counter("http_requests")
///     .help("Requests served.")
///     .sample([("code", "200")], 1027.0)
///     .sample([("code", "500")], 3.0)
///     .build();
/// assert_eq!(family.samples[0].name, "http_requests_total");
/// ```
#[derive(Debug, Clone)]
pub struct MetricFamilyBuilder {
    family: MetricFamily,
}

impl MetricFamilyBuilder {
    /// Starts a family of any type.
    pub fn new(name: impl Into<String>, metric_type: MetricType) -> MetricFamilyBuilder {
        MetricFamilyBuilder {
            family: MetricFamily {
                name: name.into(),
                metric_type,
                help: String::new(),
                unit: String::new(),
                samples: Vec::new(),
            },
        }
    }

    /// Starts a counter; its samples are named `<name>_total`.
    pub fn counter(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Counter)
    }

    /// Starts a gauge.
    pub fn gauge(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Gauge)
    }

    /// Starts an untyped family.
    pub fn unknown(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Unknown)
    }

    /// Starts an info family; its samples are named `<name>_info` with
    /// value 1 (see [`info`](Self::info)).
    pub fn info_family(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Info)
    }

    /// Starts a histogram; add observations with
    /// [`histogram`](Self::histogram).
    pub fn histogram_family(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Histogram)
    }

    /// Starts a summary; add observations with [`summary`](Self::summary).
    pub fn summary_family(name: impl Into<String>) -> MetricFamilyBuilder {
        MetricFamilyBuilder::new(name, MetricType::Summary)
    }

    /// Sets the help text.
    pub fn help(mut self, help: impl Into<String>) -> MetricFamilyBuilder {
        self.family.help = help.into();
        self
    }

    /// Sets the unit; the family name should end with `_<unit>`.
    pub fn unit(mut self, unit: impl Into<String>) -> MetricFamilyBuilder {
        self.family.unit = unit.into();
        self
    }

    /// Adds a sample named after the family's type: `<name>_total` for a
    /// counter, `<name>_info` for info, `<name>` otherwise. For histograms and
    /// summaries use [`sample_with_suffix`](Self::sample_with_suffix).
    pub fn sample<N: Into<String>, V: Into<String>>(
        self,
        sample_labels: impl IntoIterator<Item = (N, V)>,
        value: f64,
    ) -> MetricFamilyBuilder {
        let suffix = match self.family.metric_type {
            MetricType::Counter => "_total",
            MetricType::Info => "_info",
            _ => "",
        };
        self.sample_with_suffix(suffix, sample_labels, value)
    }

    /// Adds a sample named `<family name><suffix>` (`_bucket`, `_sum`,
    /// `_count`, `_created`, ...).
    pub fn sample_with_suffix<N: Into<String>, V: Into<String>>(
        mut self,
        suffix: &str,
        sample_labels: impl IntoIterator<Item = (N, V)>,
        value: f64,
    ) -> MetricFamilyBuilder {
        self.family.samples.push(Sample {
            name: format!("{}{suffix}", self.family.name),
            labels: labels(sample_labels),
            value,
            timestamp_ms: None,
        });
        self
    }

    /// Adds an info sample: `<name>_info` with these labels and value 1.
    pub fn info<N: Into<String>, V: Into<String>>(
        self,
        info_labels: impl IntoIterator<Item = (N, V)>,
    ) -> MetricFamilyBuilder {
        self.sample_with_suffix("_info", info_labels, 1.0)
    }

    /// Adds one histogram: a `<name>_bucket` sample per upper bound with its
    /// cumulative count (an `le="+Inf"` bucket equal to `count` is added
    /// when `buckets` has none), then `<name>_sum` and `<name>_count`.
    /// `buckets` are `(upper bound, cumulative count)` in increasing order.
    ///
    /// ```
    /// use ember_plugin_sdk::MetricFamilyBuilder;
    ///
    /// let family = MetricFamilyBuilder::histogram_family("latency_seconds")
    ///     .unit("seconds")
    ///     .histogram([("path", "/")], &[(0.1, 3.0), (1.0, 7.0)], 2.5, 8.0)
    ///     .build();
    /// let names: Vec<_> = family.samples.iter().map(|s| s.name.as_str()).collect();
    /// assert_eq!(names, ["latency_seconds_bucket"; 3].iter().copied()
    ///     .chain(["latency_seconds_sum", "latency_seconds_count"]).collect::<Vec<_>>());
    /// assert_eq!(family.samples[2].labels[1].value, "+Inf");
    /// ```
    pub fn histogram<N: Into<String>, V: Into<String>>(
        mut self,
        sample_labels: impl IntoIterator<Item = (N, V)>,
        buckets: &[(f64, f64)],
        sum: f64,
        count: f64,
    ) -> MetricFamilyBuilder {
        let base = labels(sample_labels);
        let mut bounds: Vec<(String, f64)> = buckets
            .iter()
            .map(|&(le, cumulative)| (format_bound(le), cumulative))
            .collect();
        if !buckets.iter().any(|&(le, _)| le == f64::INFINITY) {
            bounds.push(("+Inf".to_owned(), count));
        }
        for (le, cumulative) in bounds {
            let mut with_le = base.clone();
            with_le.push(crate::Label {
                name: "le".to_owned(),
                value: le,
            });
            self.push_sample("_bucket", with_le, cumulative);
        }
        self.push_sample("_sum", base.clone(), sum);
        self.push_sample("_count", base, count);
        self
    }

    /// Adds one summary: a `<name>` sample per `(quantile, value)` with a
    /// `quantile` label, then `<name>_sum` and `<name>_count`.
    pub fn summary<N: Into<String>, V: Into<String>>(
        mut self,
        sample_labels: impl IntoIterator<Item = (N, V)>,
        quantiles: &[(f64, f64)],
        sum: f64,
        count: f64,
    ) -> MetricFamilyBuilder {
        let base = labels(sample_labels);
        for &(quantile, value) in quantiles {
            let mut with_quantile = base.clone();
            with_quantile.push(crate::Label {
                name: "quantile".to_owned(),
                value: format_bound(quantile),
            });
            self.push_sample("", with_quantile, value);
        }
        self.push_sample("_sum", base.clone(), sum);
        self.push_sample("_count", base, count);
        self
    }

    /// Gives the most recently added sample an explicit timestamp
    /// (milliseconds since the Unix epoch). Exporters normally leave
    /// timestamps out, so that the scrape's time is used.
    pub fn at(mut self, timestamp_ms: i64) -> MetricFamilyBuilder {
        if let Some(sample) = self.family.samples.last_mut() {
            sample.timestamp_ms = Some(timestamp_ms);
        }
        self
    }

    fn push_sample(&mut self, suffix: &str, sample_labels: LabelSet, value: f64) {
        self.family.samples.push(Sample {
            name: format!("{}{suffix}", self.family.name),
            labels: sample_labels,
            value,
            timestamp_ms: None,
        });
    }

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        self.family
    }
}

/// A bucket bound or quantile as Prometheus writes it: `+Inf`, `0.5`, `1`.
fn format_bound(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// Exports an [`Exporter`] implementation as the plugin's `exporter` world.
#[macro_export]
macro_rules! export_exporter {
    ($plugin:ty) => {
        const _: () = {
            static STATE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();

            struct Export;

            impl $crate::bindings::exporter::Guest for Export {
                fn init() -> ::std::result::Result<(), $crate::PluginError> {
                    $crate::__private::init(&STATE, <$plugin as $crate::Exporter>::init)
                }

                fn collect(
                    target: $crate::LabelSet,
                    params: ::std::vec::Vec<$crate::Param>,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::MetricFamily>,
                    $crate::PluginError,
                > {
                    $crate::Exporter::collect($crate::__private::state(&STATE)?, target, params)
                }
            }

            $crate::bindings::exporter::export_exporter_world!(
                Export with_types_in $crate::bindings::exporter
            );
        };
    };
}
