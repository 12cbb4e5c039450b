//! Turning one scrape's body into appended samples.
//!
//! [`ScrapeState`] is owned by one target's scrape loop and carries what
//! must survive from scrape to scrape: the series cache, the set of series
//! the last scrape wrote (for staleness markers) and the refs of the
//! synthetic `up`/`scrape_*` series.
//!
//! The cache is what keeps a steady-state scrape cheap: it maps the series
//! exactly as the target wrote it (the parser's raw bytes) to the final,
//! relabeled label set and the storage's series ref, or to "dropped by
//! metric relabeling". A series seen before therefore costs one hash lookup
//! and one append: no label parsing, sorting, relabeling or label hashing.
//!
//! A scrape is all or nothing: any parse error, limit violation or invalid
//! label set fails it, the caller rolls the appender back, and then writes
//! an empty scrape (staleness markers for everything the last good scrape
//! wrote) plus the synthetic series with `up=0`. Individual samples the
//! storage refuses (out of order, duplicate timestamp) are counted and
//! skipped, as in Prometheus.

use std::collections::{BTreeMap, HashMap};

use ember_config::{RelabelConfig, ScrapeLimits};
use ember_model::exposition::{Entry, Format, OpenMetricsOptions, ParseError, Parser};
use ember_model::labels::{Labels, LabelsBuilder, METRIC_NAME, NameValidationScheme};
use ember_model::metadata::Metadata;
use ember_model::sample::{Exemplar, stale_nan};
use ember_model::storage::{AppendError, Appender, SeriesRef, StorageError};

use ember_model::relabel;

use std::sync::Arc;

use crate::plugins::PluginManager;
use crate::plugins::relabel::{RelabelPipeline, Relabeled};

/// Per-pool settings that shape ingestion.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Metric relabeling when a step calls a relabel plugin: the whole
    /// pipeline, run once per scrape over every series (then
    /// `metric_relabel_configs` is empty).
    pub metric_relabel_plugins: Option<PluginRelabel>,
    pub limits: ScrapeLimits,
    pub validation: NameValidationScheme,
}

/// One parsed sample waiting for the scrape's relabel plugin call.
struct PendingSample {
    /// The series as the target wrote it (its cache key), kept only while
    /// its storage reference is unknown, to record it after the append.
    raw: Option<Box<[u8]>>,
    hash: u64,
    series_ref: Option<SeriesRef>,
    t: i64,
    value: f64,
    explicit: bool,
    exemplar: Option<Exemplar>,
}

/// A metric relabel pipeline with plugin steps, and the plugins it calls.
#[derive(Debug, Clone)]
pub struct PluginRelabel {
    pub pipeline: RelabelPipeline,
    pub manager: Arc<PluginManager>,
}

/// Why a scrape's content was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error(
        "label_limit exceeded (metric: {metric:.50}, number of labels: {count}, limit: {limit})"
    )]
    LabelLimit {
        metric: String,
        count: usize,
        limit: u64,
    },
    #[error(
        "label_name_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, length: {length}, limit: {limit})"
    )]
    LabelNameLength {
        metric: String,
        name: String,
        length: usize,
        limit: u64,
    },
    #[error(
        "label_value_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, value: {value:.50?}, length: {length}, limit: {limit})"
    )]
    LabelValueLength {
        metric: String,
        name: String,
        value: String,
        length: usize,
        limit: u64,
    },
    #[error("invalid metric name or label names: {0}")]
    InvalidNames(String),
    #[error("label name {0:?} is not unique: invalid sample")]
    DuplicateLabel(String),
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("metric relabeling: {0}")]
    Plugin(String),
}

/// Counts from one scrape, reported as the synthetic series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Samples in the exposition (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series this target had not exposed before (`scrape_series_added`).
    pub series_added: u64,
    /// Samples the storage refused, by reason.
    pub out_of_order: u64,
    pub duplicate: u64,
    pub out_of_bounds: u64,
}

#[derive(Debug)]
enum CacheEntry {
    Series {
        labels: Labels,
        hash: u64,
        series_ref: Option<SeriesRef>,
        last_seen: u64,
    },
    Dropped {
        last_seen: u64,
    },
    /// With relabel plugins: the labels before metric relabeling, which runs
    /// on every scrape.
    Unrelabeled {
        labels: Labels,
        /// The hash and storage reference of `labels`, for when the
        /// pipeline leaves the set as it is (the common case).
        hash: u64,
        series_ref: Option<SeriesRef>,
        last_seen: u64,
    },
}

/// What one target's scrape loop remembers between scrapes.
#[derive(Debug)]
pub struct ScrapeState {
    /// The target's public labels, attached to every series.
    target_labels: Labels,
    cache: HashMap<Box<[u8]>, CacheEntry>,
    iteration: u64,
    /// Series written with the scrape's own timestamp by the last
    /// successful scrape, by label hash: the candidates for staleness.
    previous: HashMap<u64, (Labels, Option<SeriesRef>)>,
    current: HashMap<u64, (Labels, Option<SeriesRef>)>,
    /// Metric metadata seen in the scrape being processed.
    metadata: BTreeMap<String, Metadata>,
    report: Vec<(Labels, Option<SeriesRef>)>,
    builder: LabelsBuilder,
}

/// The synthetic series every scrape writes, in this order.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

impl ScrapeState {
    pub fn new(target_labels: Labels) -> Self {
        let report = REPORT_SERIES
            .iter()
            .map(|name| {
                let mut builder = LabelsBuilder::new(target_labels.clone());
                builder.set(METRIC_NAME, name);
                (builder.labels(), None)
            })
            .collect();
        Self {
            target_labels,
            cache: HashMap::new(),
            iteration: 0,
            previous: HashMap::new(),
            current: HashMap::new(),
            metadata: BTreeMap::new(),
            report,
            builder: LabelsBuilder::default(),
        }
    }

    /// Metadata of the families in the last processed scrape.
    pub fn take_metadata(&mut self) -> BTreeMap<String, Metadata> {
        std::mem::take(&mut self.metadata)
    }

    /// Number of series cached (for tests and metrics).
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }

    /// Appends every sample of `body` and the staleness markers for series
    /// that disappeared since the last scrape. On `Err` the caller must roll
    /// `app` back and then call [`ScrapeState::append_empty`].
    pub fn ingest(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        scrape_ts: i64,
        settings: &IngestSettings,
        stats: &mut IngestStats,
    ) -> Result<(), IngestError> {
        if let Some(plugins) = &settings.metric_relabel_plugins {
            return self
                .ingest_with_plugins(app, body, format, scrape_ts, settings, plugins, stats);
        }
        self.iteration += 1;
        self.current.clear();
        self.metadata.clear();
        let mut parser = Parser::with_openmetrics_options(
            format,
            body,
            OpenMetricsOptions::prometheus_compatible(),
        );
        loop {
            let series = match parser.next_entry()? {
                Entry::Series(series) => series,
                Entry::Help { name, text } => {
                    self.metadata_entry(name).help = text.to_owned();
                    continue;
                }
                Entry::Type { name, metric_type } => {
                    self.metadata_entry(name).metric_type = metric_type;
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.metadata_entry(name).unit = unit.to_owned();
                    continue;
                }
                Entry::Comment(_) => continue,
                Entry::EndOfFile => break,
            };
            stats.scraped += 1;
            let explicit_ts = settings
                .honor_timestamps
                .then_some(series.timestamp_ms)
                .flatten();
            let t = explicit_ts.unwrap_or(scrape_ts);

            let iteration = self.iteration;
            let (labels, hash, cached_ref) = match self.cache.get_mut(series.raw) {
                Some(CacheEntry::Dropped { last_seen }) => {
                    *last_seen = iteration;
                    continue;
                }
                // Left by a plugin pipeline; this scrape has none.
                Some(CacheEntry::Unrelabeled { .. }) => {
                    self.cache.remove(series.raw);
                    let built = self.build_labels(series.name, series.labels, settings)?;
                    let Some(labels) = built else {
                        continue;
                    };
                    check_limits(&labels, &settings.limits)?;
                    let hash = labels.hash();
                    (labels, hash, None)
                }
                Some(CacheEntry::Series {
                    labels,
                    hash,
                    series_ref,
                    last_seen,
                }) => {
                    *last_seen = iteration;
                    (labels.clone(), *hash, *series_ref)
                }
                None => {
                    let built = self.build_labels(series.name, series.labels, settings)?;
                    let Some(labels) = built else {
                        self.cache.insert(
                            series.raw.into(),
                            CacheEntry::Dropped {
                                last_seen: iteration,
                            },
                        );
                        continue;
                    };
                    check_limits(&labels, &settings.limits)?;
                    stats.series_added += 1;
                    let hash = labels.hash();
                    self.cache.insert(
                        series.raw.into(),
                        CacheEntry::Series {
                            labels: labels.clone(),
                            hash,
                            series_ref: None,
                            last_seen: iteration,
                        },
                    );
                    (labels, hash, None)
                }
            };

            stats.post_relabel += 1;
            let limit = settings.limits.sample_limit;
            if limit > 0 && stats.post_relabel > limit {
                return Err(IngestError::SampleLimit);
            }

            match app.append(cached_ref, &labels, t, series.value) {
                Ok(series_ref) => {
                    if cached_ref != Some(series_ref)
                        && let Some(CacheEntry::Series {
                            series_ref: slot, ..
                        }) = self.cache.get_mut(series.raw)
                    {
                        *slot = Some(series_ref);
                    }
                    // Series with their own timestamps are not made stale
                    // by the scrape loop unless asked: their writer knows
                    // better when they end.
                    if explicit_ts.is_none() || settings.track_timestamps_staleness {
                        self.current
                            .insert(hash, (labels.clone(), Some(series_ref)));
                    }
                    if let Some(exemplar) = series.exemplar {
                        let exemplar = Exemplar {
                            labels: Labels::new(exemplar.labels.iter()).unwrap_or_default(),
                            value: exemplar.value,
                            ts: Some(exemplar.timestamp_ms.unwrap_or(t)),
                        };
                        // Exemplars are best effort, as in Prometheus: a
                        // refused one never fails the scrape.
                        let _ = app.append_exemplar(Some(series_ref), &labels, &exemplar);
                    }
                }
                Err(AppendError::OutOfOrder { .. }) => stats.out_of_order += 1,
                Err(AppendError::DuplicateSampleForTimestamp { .. }) => stats.duplicate += 1,
                Err(AppendError::OutOfBounds { .. } | AppendError::TooOld { .. }) => {
                    stats.out_of_bounds += 1
                }
                Err(AppendError::Storage(error)) => return Err(error.into()),
                Err(other) => tracing::debug!(error = %other, "sample refused"),
            }
        }
        self.finish_iteration(app, scrape_ts);
        Ok(())
    }

    /// [`ingest`](Self::ingest) when metric relabeling calls plugins: every
    /// series is parsed and labelled first (the cache keeps the labels before
    /// relabeling), then the pipeline runs once over the whole scrape, then
    /// the survivors are checked and appended. A failed plugin call fails the
    /// scrape: passing series on unrelabeled could leak what the plugin is
    /// there to remove.
    ///
    /// Runs on the blocking pool (as all ingestion does); the plugin call is
    /// awaited with `Handle::block_on`, which is allowed there and itself
    /// runs the guest on another blocking thread.
    #[allow(clippy::too_many_arguments)]
    fn ingest_with_plugins(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        scrape_ts: i64,
        settings: &IngestSettings,
        plugins: &PluginRelabel,
        stats: &mut IngestStats,
    ) -> Result<(), IngestError> {
        self.iteration += 1;
        self.current.clear();
        self.metadata.clear();
        let iteration = self.iteration;
        let mut parser = Parser::with_openmetrics_options(
            format,
            body,
            OpenMetricsOptions::prometheus_compatible(),
        );
        let mut batch: Vec<Labels> = Vec::new();
        let mut samples: Vec<PendingSample> = Vec::new();
        loop {
            let series = match parser.next_entry()? {
                Entry::Series(series) => series,
                Entry::Help { name, text } => {
                    self.metadata_entry(name).help = text.to_owned();
                    continue;
                }
                Entry::Type { name, metric_type } => {
                    self.metadata_entry(name).metric_type = metric_type;
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.metadata_entry(name).unit = unit.to_owned();
                    continue;
                }
                Entry::Comment(_) => continue,
                Entry::EndOfFile => break,
            };
            stats.scraped += 1;
            let explicit_ts = settings
                .honor_timestamps
                .then_some(series.timestamp_ms)
                .flatten();
            let t = explicit_ts.unwrap_or(scrape_ts);
            let (labels, hash, series_ref) = match self.cache.get_mut(series.raw) {
                Some(CacheEntry::Unrelabeled {
                    labels,
                    hash,
                    series_ref,
                    last_seen,
                }) => {
                    *last_seen = iteration;
                    (labels.clone(), *hash, *series_ref)
                }
                _ => {
                    let Some(labels) = self.build_labels(series.name, series.labels, settings)?
                    else {
                        continue;
                    };
                    let hash = labels.hash();
                    self.cache.insert(
                        series.raw.into(),
                        CacheEntry::Unrelabeled {
                            labels: labels.clone(),
                            hash,
                            series_ref: None,
                            last_seen: iteration,
                        },
                    );
                    (labels, hash, None)
                }
            };
            let exemplar = series.exemplar.map(|exemplar| Exemplar {
                labels: Labels::new(exemplar.labels.iter()).unwrap_or_default(),
                value: exemplar.value,
                ts: Some(exemplar.timestamp_ms.unwrap_or(t)),
            });
            batch.push(labels);
            samples.push(PendingSample {
                raw: series_ref.is_none().then(|| series.raw.into()),
                hash,
                series_ref,
                t,
                value: series.value,
                explicit: explicit_ts.is_some(),
                exemplar,
            });
        }
        let relabeled = tokio::runtime::Handle::current()
            .block_on(plugins.pipeline.run_batch(&plugins.manager, &batch))
            .map_err(|error| IngestError::Plugin(error.to_string()))?;
        for ((relabeled, unrelabeled), sample) in relabeled.into_iter().zip(batch).zip(samples) {
            // Unchanged sets keep the hash and storage reference cached with
            // them; rewritten ones are hashed and looked up.
            let (labels, hash, cached_ref, same) = match relabeled {
                Relabeled::Dropped => continue,
                Relabeled::Same => (unrelabeled, sample.hash, sample.series_ref, true),
                Relabeled::Changed(labels) => {
                    let hash = labels.hash();
                    let known = self
                        .previous
                        .get(&hash)
                        .filter(|(previous, _)| *previous == labels)
                        .and_then(|(_, series_ref)| *series_ref);
                    (labels, hash, known, false)
                }
            };
            if labels.is_empty() {
                continue;
            }
            if labels.metric_name().is_none() {
                return Err(IngestError::InvalidNames(format!(
                    "{labels} has no metric name"
                )));
            }
            if !same || cached_ref.is_none() {
                check_limits(&labels, &settings.limits)?;
            }
            stats.post_relabel += 1;
            let limit = settings.limits.sample_limit;
            if limit > 0 && stats.post_relabel > limit {
                return Err(IngestError::SampleLimit);
            }
            // A set appended before under its cached reference is not new.
            let appended_before = same && cached_ref.is_some();
            if !appended_before && !self.previous.contains_key(&hash) {
                stats.series_added += 1;
            }
            match app.append(cached_ref, &labels, sample.t, sample.value) {
                Ok(series_ref) => {
                    if same
                        && cached_ref != Some(series_ref)
                        && let Some(raw) = &sample.raw
                        && let Some(CacheEntry::Unrelabeled {
                            series_ref: slot, ..
                        }) = self.cache.get_mut(raw)
                    {
                        *slot = Some(series_ref);
                    }
                    if let Some(exemplar) = &sample.exemplar {
                        let _ = app.append_exemplar(Some(series_ref), &labels, exemplar);
                    }
                    if !sample.explicit || settings.track_timestamps_staleness {
                        self.current.insert(hash, (labels, Some(series_ref)));
                    }
                }
                Err(AppendError::OutOfOrder { .. }) => stats.out_of_order += 1,
                Err(AppendError::DuplicateSampleForTimestamp { .. }) => stats.duplicate += 1,
                Err(AppendError::OutOfBounds { .. } | AppendError::TooOld { .. }) => {
                    stats.out_of_bounds += 1
                }
                Err(AppendError::Storage(error)) => return Err(error.into()),
                Err(other) => tracing::debug!(error = %other, "sample refused"),
            }
        }
        self.finish_iteration(app, scrape_ts);
        Ok(())
    }

    /// After a failed scrape (and the caller's rollback): marks everything
    /// the last good scrape wrote as stale, as an empty scrape would.
    pub fn append_empty(&mut self, app: &mut dyn Appender, scrape_ts: i64) {
        self.current.clear();
        self.metadata.clear();
        self.finish_iteration(app, scrape_ts);
    }

    /// Writes the synthetic series.
    pub fn append_report(
        &mut self,
        app: &mut dyn Appender,
        scrape_ts: i64,
        up: bool,
        duration_seconds: f64,
        stats: &IngestStats,
    ) -> Result<(), StorageError> {
        let values = [
            if up { 1.0 } else { 0.0 },
            duration_seconds,
            stats.scraped as f64,
            stats.post_relabel as f64,
            stats.series_added as f64,
        ];
        for ((labels, series_ref), value) in self.report.iter_mut().zip(values) {
            match app.append(*series_ref, labels, scrape_ts, value) {
                Ok(r) => *series_ref = Some(r),
                Err(AppendError::Storage(error)) => return Err(error),
                Err(error) => tracing::debug!(%error, "report sample refused"),
            }
        }
        Ok(())
    }

    /// When the target goes away: staleness markers for every series it
    /// last wrote, synthetic ones included, so queries stop showing it at
    /// once instead of after the lookback window.
    pub fn append_end_of_run(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
    ) -> Result<(), StorageError> {
        self.append_empty(app, ts);
        for (labels, series_ref) in &self.report {
            if series_ref.is_some()
                && let Err(AppendError::Storage(error)) =
                    app.append(*series_ref, labels, ts, stale_nan())
            {
                return Err(error);
            }
        }
        Ok(())
    }

    fn metadata_entry(&mut self, name: &str) -> &mut Metadata {
        self.metadata.entry(name.to_owned()).or_default()
    }

    /// Stale markers for series that vanished; then the current set becomes
    /// the previous one, and cache entries unseen for two scrapes go.
    fn finish_iteration(&mut self, app: &mut dyn Appender, scrape_ts: i64) {
        for (hash, (labels, series_ref)) in &self.previous {
            if !self.current.contains_key(hash) {
                // A refusal here (e.g. the series got a newer explicit
                // timestamp) just means no marker is needed.
                let _ = app.append(*series_ref, labels, scrape_ts, stale_nan());
            }
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
        let iteration = self.iteration;
        self.cache.retain(|_, entry| {
            let last_seen = match entry {
                CacheEntry::Series { last_seen, .. }
                | CacheEntry::Dropped { last_seen }
                | CacheEntry::Unrelabeled { last_seen, .. } => *last_seen,
            };
            last_seen + 1 >= iteration
        });
    }

    /// The final label set of a newly seen series, or `None` if metric
    /// relabeling drops it.
    fn build_labels<'p>(
        &mut self,
        name: &str,
        scraped: ember_model::exposition::LabelPairs<'p>,
        settings: &IngestSettings,
    ) -> Result<Option<Labels>, IngestError> {
        let mut seen: Vec<&'p str> = Vec::with_capacity(scraped.len());
        for (label, _) in scraped.iter() {
            if label == METRIC_NAME || seen.contains(&label) {
                return Err(IngestError::DuplicateLabel(label.to_owned()));
            }
            seen.push(label);
        }
        let scheme = settings.validation;
        if !scheme.is_valid_metric_name(name) || seen.iter().any(|l| !scheme.is_valid_label_name(l))
        {
            return Err(IngestError::InvalidNames(describe(name, scraped)));
        }

        let builder = &mut self.builder;
        builder.reset(Labels::EMPTY);
        builder.set(METRIC_NAME, name);
        for (label, value) in scraped.iter() {
            builder.set(label, value);
        }
        if settings.honor_labels {
            for (label, value) in self.target_labels.iter() {
                if builder.get(label).is_none() {
                    builder.set(label, value);
                }
            }
        } else {
            // Scraped labels that clash with target labels are kept as
            // exported_<name> (shortest names first, prefixing again while
            // the new name is taken), then the target's labels win.
            let mut conflicts: Vec<(String, String)> = self
                .target_labels
                .iter()
                .filter_map(|(label, _)| {
                    builder.get(label).map(|v| (label.to_owned(), v.to_owned()))
                })
                .collect();
            for (label, value) in self.target_labels.iter() {
                builder.set(label, value);
            }
            conflicts.sort_by_key(|(label, _)| label.len());
            for (label, value) in conflicts {
                let mut exported = label;
                loop {
                    exported.insert_str(0, "exported_");
                    if builder.get(&exported).is_none() {
                        builder.set(&exported, &value);
                        break;
                    }
                }
            }
        }
        if !relabel::process(builder, &settings.metric_relabel_configs) {
            return Ok(None);
        }
        let labels = builder.labels();
        if labels.is_empty() {
            return Ok(None);
        }
        if labels.metric_name().is_none() {
            return Err(IngestError::InvalidNames(format!(
                "{labels} has no metric name"
            )));
        }
        Ok(Some(labels))
    }
}

fn describe(name: &str, labels: ember_model::exposition::LabelPairs<'_>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{name}{{{}}}", pairs.join(", "))
}

fn check_limits(labels: &Labels, limits: &ScrapeLimits) -> Result<(), IngestError> {
    let metric = || labels.metric_name().unwrap_or_default().to_owned();
    if limits.label_limit > 0 && labels.len() as u64 > limits.label_limit {
        return Err(IngestError::LabelLimit {
            metric: metric(),
            count: labels.len(),
            limit: limits.label_limit,
        });
    }
    for (name, value) in labels.iter() {
        let name_limit = limits.label_name_length_limit;
        if name_limit > 0 && name.len() as u64 > name_limit {
            return Err(IngestError::LabelNameLength {
                metric: metric(),
                name: name.to_owned(),
                length: name.len(),
                limit: name_limit,
            });
        }
        let value_limit = limits.label_value_length_limit;
        if value_limit > 0 && value.len() as u64 > value_limit {
            return Err(IngestError::LabelValueLength {
                metric: metric(),
                name: name.to_owned(),
                value: value.to_owned(),
                length: value.len(),
                limit: value_limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
