//! Scraping: pulling `/metrics` from targets into storage.
//!
//! The pieces, in pipeline order:
//! - [`ScrapeManager`] owns one [`pool::ScrapePool`] per scrape job. It
//!   follows configuration reloads (a job whose configuration is unchanged
//!   keeps its pool, loops and caches untouched; a changed job gets a new
//!   pool that inherits the loops' warm caches where they stay valid) and
//!   discovery updates (target groups per job).
//! - [`target::populate_labels`] turns discovered label sets into targets:
//!   job defaults, target relabeling, validation.
//! - [`scrape_loop`] runs one task per target: fetch at a fixed phase of the
//!   interval, then parse and append on the blocking pool.
//! - [`ingest::ScrapeState`] turns a body into samples through a per-target
//!   cache, applies `honor_labels`, metric relabeling and limits, writes
//!   staleness markers and the synthetic `up`/`scrape_*` series.
//!
//! ```no_run
//! # async fn demo(storage: std::sync::Arc<dyn ember_model::storage::Storage>, config: &ember_config::Config) {
//! let registry = prometheus::Registry::new();
//! let manager = ember_host::scrape::ScrapeManager::new(storage, &registry).unwrap();
//! manager.apply_config(config).await;
//! # }
//! ```

pub mod exporter;
pub mod fetch;
pub mod ingest;
pub mod metrics;
pub mod pool;
pub mod scrape_loop;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;

use ember_config::Config;
use ember_model::storage::Storage;
use tokio::sync::Mutex;

use crate::discovery::TargetGroup;
use metrics::ScrapeMetrics;
use pool::ScrapePool;
use target::Target;

/// How often target relabeling is retried after a relabel plugin failed.
pub const RELABEL_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// A job's pool, or why it could not be created (e.g. an unreadable CA
/// file), which the targets API shows on the job's targets.
#[derive(Debug)]
enum PoolSlot {
    Running(Box<ScrapePool>),
    Failed {
        config: Arc<ember_config::ScrapeConfig>,
        error: String,
    },
}

/// The scrape pools of all jobs.
pub struct ScrapeManager {
    storage: Arc<dyn Storage>,
    plugins: Option<Arc<crate::plugins::PluginManager>>,
    metrics: ScrapeMetrics,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pools: HashMap<String, PoolSlot>,
    /// The latest target groups per job, kept so that a pool created by a
    /// reload starts with the current targets at once.
    groups: HashMap<String, Vec<TargetGroup>>,
}

impl std::fmt::Debug for ScrapeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager").finish_non_exhaustive()
    }
}

/// A snapshot of one job's targets for the API.
#[derive(Debug)]
pub struct PoolTargets {
    pub job: String,
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<pool::DroppedTarget>,
    pub dropped_total: usize,
    /// Why the pool is not running, if it is not.
    pub error: Option<String>,
}

impl ScrapeManager {
    pub fn new(
        storage: Arc<dyn Storage>,
        registry: &prometheus::Registry,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            storage,
            plugins: None,
            metrics: ScrapeMetrics::new(registry)?,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Gives the pools the server's plugins: exporter targets, relabel plugin
    /// steps.
    pub fn with_plugins(mut self, plugins: Arc<crate::plugins::PluginManager>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// Brings the pools in line with `config`'s scrape jobs.
    pub async fn apply_config(&self, config: &Config) {
        let mut inner = self.inner.lock().await;
        let mut old = std::mem::take(&mut inner.pools);
        for scrape_config in &config.scrape_configs {
            let job = scrape_config.job_name.clone();
            let unchanged = match old.get(&job) {
                Some(PoolSlot::Running(pool)) => **pool.config() == *scrape_config,
                Some(PoolSlot::Failed { config, .. }) => **config == *scrape_config,
                None => false,
            };
            if unchanged && let Some(slot) = old.remove(&job) {
                inner.pools.insert(job, slot);
                continue;
            }
            let config = Arc::new(scrape_config.clone());
            let slot = match ScrapePool::new(
                config.clone(),
                self.storage.clone(),
                self.metrics.clone(),
                self.plugins.clone(),
            ) {
                Ok(mut pool) => {
                    let inherited = match old.remove(&job) {
                        Some(PoolSlot::Running(previous)) => {
                            let compatible = previous.cache_compatible(&pool);
                            let states = previous.stop().await;
                            if compatible { states } else { HashMap::new() }
                        }
                        _ => HashMap::new(),
                    };
                    let groups = inner.groups.get(&job).cloned().unwrap_or_default();
                    pool.sync(&groups, inherited).await;
                    PoolSlot::Running(Box::new(pool))
                }
                Err(error) => {
                    tracing::error!(%job, %error, "Cannot create scrape pool");
                    if let Some(PoolSlot::Running(previous)) = old.remove(&job) {
                        previous.stop().await;
                    }
                    PoolSlot::Failed {
                        config,
                        error: error.to_string(),
                    }
                }
            };
            inner.pools.insert(job, slot);
        }
        // Jobs that left the configuration: their targets are gone.
        for (job, slot) in old {
            if let PoolSlot::Running(mut pool) = slot {
                tracing::info!(%job, "Stopping scrape pool removed from the configuration");
                pool.sync(&[], HashMap::new()).await;
            }
            inner.groups.remove(&job);
        }
    }

    /// Applies discovery's latest target groups (all jobs at once).
    pub async fn sync(&self, groups: &HashMap<String, Vec<TargetGroup>>) {
        let mut inner = self.inner.lock().await;
        inner.groups = groups.clone();
        let Inner { pools, groups } = &mut *inner;
        for (job, slot) in pools.iter_mut() {
            if let PoolSlot::Running(pool) = slot {
                pool.sync(
                    groups.get(job).map(Vec::as_slice).unwrap_or_default(),
                    HashMap::new(),
                )
                .await;
            }
        }
    }

    /// Starts the task that retries target relabeling for pools whose
    /// relabel plugin failed (every [`RELABEL_RETRY_INTERVAL`]): a static
    /// target list is never published again by discovery, so without it a
    /// plugin that failed once would leave the job without targets. The task
    /// ends when the manager is dropped.
    pub fn spawn_relabel_retries(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let manager = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RELABEL_RETRY_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                let mut inner = manager.inner.lock().await;
                let Inner { pools, groups } = &mut *inner;
                for (job, slot) in pools.iter_mut() {
                    if let PoolSlot::Running(pool) = slot
                        && pool.relabel_failed()
                    {
                        tracing::info!(%job, "Retrying target relabeling");
                        pool.sync(
                            groups.get(job).map(Vec::as_slice).unwrap_or_default(),
                            HashMap::new(),
                        )
                        .await;
                    }
                }
            }
        })
    }

    /// Redoes target relabeling for the pools whose relabel steps call one
    /// of `plugins` (plugins a configuration reload loaded, reloaded or
    /// removed), so their targets reflect the plugin now in place.
    pub async fn resync_plugin_users(&self, plugins: &[String]) {
        if plugins.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().await;
        let Inner { pools, groups } = &mut *inner;
        for (job, slot) in pools.iter_mut() {
            if let PoolSlot::Running(pool) = slot
                && pool.uses_relabel_plugin(plugins)
            {
                pool.sync(
                    groups.get(job).map(Vec::as_slice).unwrap_or_default(),
                    HashMap::new(),
                )
                .await;
            }
        }
    }

    /// Every job's targets, sorted by job.
    pub async fn targets(&self) -> Vec<PoolTargets> {
        let inner = self.inner.lock().await;
        let mut out: Vec<PoolTargets> = inner
            .pools
            .iter()
            .map(|(job, slot)| match slot {
                PoolSlot::Running(pool) => {
                    let (dropped, dropped_total) = pool.dropped_targets();
                    PoolTargets {
                        job: job.clone(),
                        active: pool.active_targets(),
                        dropped: dropped.to_vec(),
                        dropped_total,
                        error: None,
                    }
                }
                PoolSlot::Failed { error, .. } => PoolTargets {
                    job: job.clone(),
                    active: Vec::new(),
                    dropped: Vec::new(),
                    dropped_total: 0,
                    error: Some(error.clone()),
                },
            })
            .collect();
        out.sort_by(|a, b| a.job.cmp(&b.job));
        out
    }

    /// Stops every loop (no staleness markers: the series may continue
    /// after a restart).
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        for (_, slot) in inner.pools.drain() {
            if let PoolSlot::Running(pool) = slot {
                pool.stop().await;
            }
        }
    }
}
