//! A scrape pool: the targets of one job and their loops.

use std::collections::HashMap;
use std::sync::Arc;

use ember_config::ScrapeConfig;
use ember_model::exposition::accept_header;
use ember_model::labels::{Labels, NameValidationScheme};
use ember_model::storage::Storage;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fetch::FetchSettings;
use super::ingest::{IngestSettings, ScrapeState};
use super::metrics::ScrapeMetrics;
use super::scrape_loop::{self, LoopContext, StopReason};
use super::target::{
    Populated, Target, TargetError, discovered_labels, finish_labels, populate_labels,
};
use crate::discovery::TargetGroup;
use crate::http_client::{HttpClient, HttpClientError};
use crate::plugins::PluginManager;
use crate::plugins::relabel::RelabelPipeline;

/// A target relabeling dropped, or that could not be built, kept for the
/// targets API.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub discovered: Labels,
    /// Why it is not scraped when it was not relabeling's choice.
    pub error: Option<String>,
}

#[derive(Debug)]
struct RunningLoop {
    target: Arc<Target>,
    stop: watch::Sender<StopReason>,
    task: JoinHandle<ScrapeState>,
}

/// One discovered target after target relabeling, or why it cannot be
/// scraped (with its discovered labels).
type PopulateResult = Result<Populated, (Labels, TargetError)>;

/// The targets of one scrape job and a loop per target.
pub struct ScrapePool {
    config: Arc<ScrapeConfig>,
    client: HttpClient,
    /// Target relabeling, with its plugin steps.
    target_relabel: RelabelPipeline,
    /// The server's plugins, when it has a plugin runtime.
    plugins: Option<Arc<PluginManager>>,
    fetch: Arc<FetchSettings>,
    ingest: Arc<IngestSettings>,
    storage: Arc<dyn Storage>,
    metrics: ScrapeMetrics,
    loops: HashMap<u64, RunningLoop>,
    /// Targets not started because `target_limit` is exceeded.
    held: Vec<Arc<Target>>,
    /// Set when target relabeling failed in a relabel plugin: the pool keeps
    /// its targets and [`ScrapePool::retry_relabeling`] tries again.
    relabel_failed: bool,
    dropped: Vec<DroppedTarget>,
    dropped_total: usize,
}

impl std::fmt::Debug for ScrapePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapePool")
            .field("job", &self.config.job_name)
            .field("loops", &self.loops.len())
            .field("dropped", &self.dropped_total)
            .finish_non_exhaustive()
    }
}

impl ScrapePool {
    pub fn new(
        config: Arc<ScrapeConfig>,
        storage: Arc<dyn Storage>,
        metrics: ScrapeMetrics,
        plugins: Option<Arc<PluginManager>>,
    ) -> Result<Self, HttpClientError> {
        let client = HttpClient::new(
            &config.http_client,
            &format!("scrape job {}", config.job_name),
        )?;
        let mut ingest = ingest_settings(&config);
        let metric_relabel = RelabelPipeline::new(&config.metric_relabel_configs);
        if metric_relabel.has_plugins()
            && let Some(manager) = &plugins
        {
            ingest.metric_relabel_plugins = Some(super::ingest::PluginRelabel {
                pipeline: metric_relabel,
                manager: manager.clone(),
            });
        }
        Ok(Self {
            fetch: Arc::new(fetch_settings(&config)),
            ingest: Arc::new(ingest),
            target_relabel: RelabelPipeline::new(&config.relabel_configs),
            plugins,
            config,
            client,
            storage,
            metrics,
            loops: HashMap::new(),
            held: Vec::new(),
            relabel_failed: false,
            dropped: Vec::new(),
            dropped_total: 0,
        })
    }

    pub fn config(&self) -> &Arc<ScrapeConfig> {
        &self.config
    }

    /// Whether a loop's cache built under `self` stays valid under `other`.
    pub fn cache_compatible(&self, other: &ScrapePool) -> bool {
        self.ingest.honor_labels == other.ingest.honor_labels
            && self.ingest.metric_relabel_configs == other.ingest.metric_relabel_configs
            && self
                .ingest
                .metric_relabel_plugins
                .as_ref()
                .map(|p| &p.pipeline)
                == other
                    .ingest
                    .metric_relabel_plugins
                    .as_ref()
                    .map(|p| &p.pipeline)
            && self.ingest.validation == other.ingest.validation
    }

    /// Reconciles the running loops with the discovered `groups`: new
    /// targets start, vanished ones stop (their series are marked stale),
    /// unchanged ones keep running untouched. `inherited` holds warm states
    /// from a previous pool of the same job, by target hash.
    pub async fn sync(&mut self, groups: &[TargetGroup], mut inherited: HashMap<u64, ScrapeState>) {
        let mut wanted: HashMap<u64, Arc<Target>> = HashMap::new();
        self.dropped.clear();
        self.dropped_total = 0;
        let keep_dropped = self.config.limits.keep_dropped_targets as usize;
        let populated = match self.populate(groups).await {
            Ok(populated) => {
                self.relabel_failed = false;
                populated
            }
            Err(error) => {
                self.relabel_failed = true;
                // A relabel plugin failed: nothing can be said about which
                // targets to scrape, so the running ones keep running and
                // every discovered target is listed with the reason.
                tracing::error!(job = %self.config.job_name, %error, "Target relabeling failed; keeping the current targets");
                for group in groups {
                    for target_labels in &group.targets {
                        let discovered =
                            discovered_labels(&self.config, target_labels, &group.labels);
                        self.record_dropped(
                            discovered,
                            Some(TargetError::InvalidLabels(format!(
                                "target relabeling: {error}"
                            ))),
                            keep_dropped,
                        );
                    }
                }
                return;
            }
        };
        for populated in populated {
            match populated {
                Ok(Populated::Active { labels, discovered }) => {
                    match Target::new(
                        labels,
                        discovered.clone(),
                        &self.config.params,
                        self.config.plugin.as_deref(),
                    ) {
                        Ok(target) => {
                            let target = Arc::new(target);
                            wanted.entry(target.hash()).or_insert(target);
                        }
                        Err(error) => self.record_dropped(discovered, Some(error), keep_dropped),
                    }
                }
                Ok(Populated::Dropped { discovered }) => {
                    self.record_dropped(discovered, None, keep_dropped)
                }
                Err((discovered, error)) => {
                    tracing::warn!(job = %self.config.job_name, %error, "Dropping target");
                    self.record_dropped(discovered, Some(error), keep_dropped);
                }
            }
        }
        self.metrics
            .pool_targets
            .with_label_values(&[self.config.job_name.as_str()])
            .set(wanted.len() as i64);

        let limit = self.config.limits.target_limit as usize;
        if limit > 0 && wanted.len() > limit {
            // Prometheus scrapes none of the pool's targets then, and says
            // why on each of them.
            let message = format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                wanted.len()
            );
            tracing::warn!(job = %self.config.job_name, %message, "Not scraping the pool");
            self.stop_loops(StopReason::TargetGone, self.loops.keys().copied().collect());
            self.held = wanted.into_values().collect();
            for target in &self.held {
                target.report(
                    std::time::SystemTime::now(),
                    std::time::Duration::ZERO,
                    Some(&message),
                );
            }
            return;
        }
        self.held.clear();

        let gone: Vec<u64> = self
            .loops
            .keys()
            .filter(|h| !wanted.contains_key(h))
            .copied()
            .collect();
        self.stop_loops(StopReason::TargetGone, gone);
        for (hash, target) in wanted {
            if self.loops.contains_key(&hash) {
                continue;
            }
            let state = inherited.remove(&hash);
            self.start_loop(hash, target, state);
        }
    }

    /// Every discovered target through target relabeling: per target with
    /// the built-in rules, or as one batch when a step calls a plugin.
    async fn populate(&self, groups: &[TargetGroup]) -> Result<Vec<PopulateResult>, String> {
        let config = &self.config;
        let mut out = Vec::new();
        if let Some(rules) = self.target_relabel.rules_only() {
            for group in groups {
                for target_labels in &group.targets {
                    let result = populate_labels(config, rules, target_labels, &group.labels)
                        .map_err(|error| {
                            let discovered = Labels::new(group.labels.iter().chain(target_labels))
                                .unwrap_or_default();
                            (discovered, error)
                        });
                    out.push(result);
                }
            }
            return Ok(out);
        }
        let Some(manager) = &self.plugins else {
            return Err("relabel plugin steps need the plugin runtime".to_owned());
        };
        let mut discovered = Vec::new();
        for group in groups {
            for target_labels in &group.targets {
                discovered.push(discovered_labels(config, target_labels, &group.labels));
            }
        }
        let relabeled = self
            .target_relabel
            .run(manager, discovered.clone())
            .await
            .map_err(|error| error.to_string())?;
        for (discovered, relabeled) in discovered.into_iter().zip(relabeled) {
            let result = match relabeled {
                None => Ok(Populated::Dropped { discovered }),
                Some(labels) => finish_labels(
                    config,
                    ember_model::labels::LabelsBuilder::new(labels),
                    discovered.clone(),
                )
                .map_err(|error| (discovered, error)),
            };
            out.push(result);
        }
        Ok(out)
    }

    /// Whether target relabeling calls any of `plugins`.
    pub fn uses_relabel_plugin(&self, plugins: &[String]) -> bool {
        self.target_relabel
            .plugins()
            .any(|name| plugins.iter().any(|changed| changed == name))
    }

    /// Whether the last target relabeling failed in a plugin, so that the
    /// manager should sync this pool again.
    pub fn relabel_failed(&self) -> bool {
        self.relabel_failed
    }

    fn record_dropped(&mut self, discovered: Labels, error: Option<TargetError>, keep: usize) {
        self.dropped_total += 1;
        if keep == 0 || self.dropped.len() < keep {
            self.dropped.push(DroppedTarget {
                discovered,
                error: error.map(|e| e.to_string()),
            });
        }
    }

    fn start_loop(&mut self, hash: u64, target: Arc<Target>, state: Option<ScrapeState>) {
        let (stop, stop_rx) = watch::channel(StopReason::Running);
        let context = LoopContext {
            target: target.clone(),
            client: self.client.clone(),
            fetch: self.fetch.clone(),
            ingest: self.ingest.clone(),
            storage: self.storage.clone(),
            metrics: self.metrics.clone(),
            exporter: match (&self.config.plugin, &self.plugins) {
                (Some(plugin), Some(manager)) => Some(super::exporter::ExporterSource {
                    manager: manager.clone(),
                    plugin: plugin.clone(),
                }),
                _ => None,
            },
        };
        let task = tokio::spawn(scrape_loop::run(context, state, stop_rx));
        self.loops.insert(hash, RunningLoop { target, stop, task });
    }

    fn stop_loops(&mut self, reason: StopReason, hashes: Vec<u64>) {
        for hash in hashes {
            if let Some(running) = self.loops.remove(&hash) {
                let _ = running.stop.send(reason);
                // The loop finishes by itself (writing staleness markers
                // when the target is gone); nobody needs to wait for it.
                drop(running.task);
            }
        }
    }

    /// Stops every loop without staleness markers and returns their warm
    /// states by target hash, for a reloaded pool or a clean shutdown.
    pub async fn stop(mut self) -> HashMap<u64, ScrapeState> {
        let mut states = HashMap::new();
        for (hash, running) in self.loops.drain() {
            let _ = running.stop.send(StopReason::Restart);
            if let Ok(state) = running.task.await {
                states.insert(hash, state);
            }
        }
        states
    }

    /// Active targets: scraped ones and those held back by `target_limit`.
    pub fn active_targets(&self) -> Vec<Arc<Target>> {
        let mut targets: Vec<Arc<Target>> = self
            .loops
            .values()
            .map(|l| l.target.clone())
            .chain(self.held.iter().cloned())
            .collect();
        targets.sort_by(|a, b| a.all_labels().cmp(b.all_labels()));
        targets
    }

    /// Dropped targets (at most `keep_dropped_targets` when set) and how
    /// many were dropped in all.
    pub fn dropped_targets(&self) -> (&[DroppedTarget], usize) {
        (&self.dropped, self.dropped_total)
    }
}

fn fetch_settings(config: &ScrapeConfig) -> FetchSettings {
    FetchSettings {
        accept: accept_header(&config.scrape_protocols),
        timeout: config.scrape_timeout,
        enable_compression: config.enable_compression,
        body_size_limit: config.limits.body_size_limit,
        fallback: config.fallback_scrape_protocol,
    }
}

/// The ingestion settings a scrape job's configuration implies (public for
/// the ingestion benchmark and tests).
pub fn ingest_settings(config: &ScrapeConfig) -> IngestSettings {
    IngestSettings {
        honor_labels: config.honor_labels,
        honor_timestamps: config.honor_timestamps,
        track_timestamps_staleness: config.track_timestamps_staleness,
        // With plugin steps, the whole pipeline runs as `metric_relabel_plugins`
        // (set by the pool, which has the plugins) and there are no plain rules.
        metric_relabel_configs: ember_config::rules_only(&config.metric_relabel_configs)
            .unwrap_or_default(),
        metric_relabel_plugins: None,
        limits: config.limits,
        validation: match config.metric_name_validation_scheme {
            ember_config::ValidationScheme::Utf8 => NameValidationScheme::Utf8,
            ember_config::ValidationScheme::Legacy => NameValidationScheme::Legacy,
        },
    }
}
