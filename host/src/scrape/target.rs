//! Scrape targets: from discovered label sets to scrapeable targets.
//!
//! [`populate_labels`] is Prometheus's `PopulateLabels`: it adds the job's
//! defaults (`job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
//! `__scrape_timeout__`, `__param_*`) where discovery did not set them,
//! runs target relabeling, validates the result, drops `__meta_*` labels and
//! defaults `instance` to `__address__`. The resulting [`Target`] keeps the
//! reserved `__*` labels, from which it derives its URL and timing, and shows
//! the others as its public label set.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ember_config::{RelabelConfig, ScrapeConfig, format_duration, parse_duration};
use ember_model::labels::{Labels, LabelsBuilder};
use ember_model::metadata::Metadata;

use ember_model::relabel;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// Why a discovered target cannot be scraped (it is then listed as dropped
/// with this reason, not silently ignored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    #[error("error parsing scrape interval: {0}")]
    BadInterval(String),
    #[error("error parsing scrape timeout: {0}")]
    BadTimeout(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutAboveInterval { timeout: String, interval: String },
    #[error("invalid label set: {0}")]
    InvalidLabels(String),
    #[error("invalid target URL {0}")]
    InvalidUrl(String),
}

/// The outcome of [`populate_labels`] for one discovered label set.
#[derive(Debug)]
pub enum Populated {
    /// A target to scrape: its labels after relabeling (reserved ones
    /// included) and what discovery found.
    Active { labels: Labels, discovered: Labels },
    /// Relabeling dropped it.
    Dropped { discovered: Labels },
}

/// Builds a target's labels from a target's and its group's discovered
/// labels (the target's win) under `config`, with target relabeling by the
/// built-in `rules` (the job's `relabel_configs` when no step calls a
/// plugin; see [`crate::plugins::relabel`] for the other case).
pub fn populate_labels(
    config: &ScrapeConfig,
    rules: &[RelabelConfig],
    target_labels: &BTreeMap<String, String>,
    group_labels: &BTreeMap<String, String>,
) -> Result<Populated, TargetError> {
    let discovered = discovered_labels(config, target_labels, group_labels);
    let mut builder = LabelsBuilder::new(discovered.clone());
    if !relabel::process(&mut builder, rules) {
        return Ok(Populated::Dropped { discovered });
    }
    finish_labels(config, builder, discovered)
}

/// The labels target relabeling starts from: the discovered ones plus the
/// job's defaults (`job`, `__scheme__`, ..., `__param_*`) where discovery did
/// not set them.
pub fn discovered_labels(
    config: &ScrapeConfig,
    target_labels: &BTreeMap<String, String>,
    group_labels: &BTreeMap<String, String>,
) -> Labels {
    let mut builder = LabelsBuilder::default();
    for (name, value) in group_labels.iter().chain(target_labels) {
        builder.set(name, value);
    }
    let interval = format_duration(config.scrape_interval);
    let timeout = format_duration(config.scrape_timeout);
    let defaults = [
        (JOB_LABEL, config.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, interval.as_str()),
        (SCRAPE_TIMEOUT_LABEL, timeout.as_str()),
        (METRICS_PATH_LABEL, config.metrics_path.as_str()),
        (SCHEME_LABEL, config.scheme.as_str()),
    ];
    for (name, value) in defaults {
        if builder.get(name).is_none() {
            builder.set(name, value);
        }
    }
    for (name, values) in &config.params {
        let label = format!("{PARAM_LABEL_PREFIX}{name}");
        if let Some(first) = values.first()
            && builder.get(&label).is_none()
        {
            builder.set(&label, first);
        }
    }
    builder.labels()
}

/// Validates relabeled labels and completes them into a target's labels:
/// an address is required (and must be `host:port` unless the job's targets
/// are an exporter plugin's), the interval and timeout must parse, `__meta_*`
/// labels go and `instance` defaults to the address.
pub fn finish_labels(
    config: &ScrapeConfig,
    mut builder: LabelsBuilder,
    discovered: Labels,
) -> Result<Populated, TargetError> {
    let address = builder
        .get(ADDRESS_LABEL)
        .ok_or(TargetError::NoAddress)?
        .to_owned();
    // An exporter plugin's target is whatever the plugin understands.
    if config.plugin.is_none() && address.contains('/') {
        return Err(TargetError::InvalidAddress(address));
    }
    let interval_text = builder
        .get(SCRAPE_INTERVAL_LABEL)
        .unwrap_or_default()
        .to_owned();
    let interval =
        parse_duration(&interval_text).map_err(|e| TargetError::BadInterval(e.to_string()))?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = builder
        .get(SCRAPE_TIMEOUT_LABEL)
        .unwrap_or_default()
        .to_owned();
    let timeout =
        parse_duration(&timeout_text).map_err(|e| TargetError::BadTimeout(e.to_string()))?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval {
            timeout: timeout_text,
            interval: interval_text,
        });
    }

    // Meta labels served relabeling and go now; other reserved labels stay
    // on the target, which needs them for its URL.
    let meta: Vec<String> = builder
        .iter()
        .filter(|(name, _)| name.starts_with(META_LABEL_PREFIX))
        .map(|(name, _)| name.to_owned())
        .collect();
    for name in &meta {
        builder.del(name);
    }
    if builder.get(INSTANCE_LABEL).is_none() {
        builder.set(INSTANCE_LABEL, &address);
    }
    Ok(Populated::Active {
        labels: builder.labels(),
        discovered,
    })
}

/// Health of a target as the targets API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// What the last scrape of a target found, for the API.
#[derive(Debug, Clone)]
pub struct ScrapeStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
}

/// A target to scrape.
#[derive(Debug)]
pub struct Target {
    /// All labels after relabeling, reserved `__*` ones included.
    labels: Labels,
    /// The labels discovery produced, before relabeling.
    discovered: Labels,
    url: String,
    /// The scrape's parameters: the job's `params` with `__param_*` labels
    /// over them (what an exporter plugin receives).
    params: Vec<(String, String)>,
    interval: Duration,
    timeout: Duration,
    status: Mutex<ScrapeStatus>,
    metadata: Mutex<BTreeMap<String, Metadata>>,
}

impl Target {
    /// A target from populated labels; `params` are the job's URL parameters.
    ///
    /// With `exporter` (the job's exporter plugin) the target is collected by
    /// the plugin; its URL is then only a name for it,
    /// `plugin://<plugin>/<address>?<params>`, and the address need not be a
    /// host.
    pub fn new(
        labels: Labels,
        discovered: Labels,
        params: &BTreeMap<String, Vec<String>>,
        exporter: Option<&str>,
    ) -> Result<Self, TargetError> {
        let get = |name| labels.get(name).unwrap_or_default();
        let mut query: BTreeMap<String, Vec<String>> = params.clone();
        for (name, value) in labels.iter() {
            if let Some(param) = name.strip_prefix(PARAM_LABEL_PREFIX) {
                match query.get_mut(param) {
                    Some(values) if !values.is_empty() => values[0] = value.to_owned(),
                    _ => {
                        query.insert(param.to_owned(), vec![value.to_owned()]);
                    }
                }
            }
        }
        let params: Vec<(String, String)> = query
            .iter()
            .flat_map(|(name, values)| values.iter().map(|value| (name.clone(), value.clone())))
            .collect();
        let url = match exporter {
            Some(plugin) => {
                let mut url = format!("plugin://{plugin}/{}", get(ADDRESS_LABEL));
                if !params.is_empty() {
                    url.push('?');
                    url.push_str(
                        &url::form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(&params)
                            .finish(),
                    );
                }
                url
            }
            None => {
                let base = format!(
                    "{}://{}{}",
                    get(SCHEME_LABEL),
                    get(ADDRESS_LABEL),
                    get(METRICS_PATH_LABEL)
                );
                let mut url = url::Url::parse(&base)
                    .map_err(|e| TargetError::InvalidUrl(format!("{base}: {e}")))?;
                if !query.is_empty() {
                    let mut pairs = url.query_pairs_mut();
                    for (name, value) in &params {
                        pairs.append_pair(name, value);
                    }
                }
                String::from(url)
            }
        };
        // Both parse: populate_labels validated them.
        let interval =
            parse_duration(get(SCRAPE_INTERVAL_LABEL)).unwrap_or(Duration::from_secs(60));
        let timeout = parse_duration(get(SCRAPE_TIMEOUT_LABEL)).unwrap_or(Duration::from_secs(10));
        Ok(Self {
            labels,
            discovered,
            url,
            params,
            interval,
            timeout,
            status: Mutex::new(ScrapeStatus {
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_scrape_duration: Duration::ZERO,
            }),
            metadata: Mutex::new(BTreeMap::new()),
        })
    }

    /// Labels including the reserved `__*` ones.
    pub fn all_labels(&self) -> &Labels {
        &self.labels
    }

    /// The public labels: those attached to every scraped series.
    pub fn labels(&self) -> Labels {
        self.labels.without(
            &self
                .labels
                .names()
                .filter(|n| n.starts_with(RESERVED_LABEL_PREFIX))
                .collect::<Vec<_>>(),
        )
    }

    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scrape's parameters, in name order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Identity of the target within its pool: labels plus URL, as in
    /// Prometheus (two targets with equal labels but different URLs are
    /// different targets).
    pub fn hash(&self) -> u64 {
        let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
        hasher.update(&self.labels.hash().to_le_bytes());
        hasher.update(self.url.as_bytes());
        hasher.digest()
    }

    pub fn status(&self) -> ScrapeStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn report(&self, started: SystemTime, duration: Duration, error: Option<&str>) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.health = if error.is_some() {
            Health::Down
        } else {
            Health::Up
        };
        status.last_error = error.unwrap_or_default().to_owned();
        status.last_scrape = Some(started);
        status.last_scrape_duration = duration;
    }

    /// Metadata of the metric families the target exposed in its last
    /// successful scrape.
    pub fn metadata(&self) -> BTreeMap<String, Metadata> {
        self.metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_metadata(&self, metadata: BTreeMap<String, Metadata>) {
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = metadata;
    }
}
