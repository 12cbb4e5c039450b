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

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        self.family
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
