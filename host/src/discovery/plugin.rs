//! `plugin_sd_configs`: target groups from a discovery plugin.
//!
//! A [`PluginDiscoverer`] calls the plugin's `refresh` once at start and then
//! every `refresh_interval`. The plugin answers with its complete state: the
//! groups are passed on as they are (targets with `__address__` and the
//! plugin's `__meta_*` labels, kept for relabeling like any mechanism's), and
//! sources that were in the previous answer but not in this one are sent as
//! empty groups, so their targets go. A failed refresh (the plugin errs,
//! traps, times out, is restarting, disabled or not loaded) is logged and
//! counted in `ember_sd_refresh_failures_total{mechanism="plugin"}` and sends
//! nothing: the previous groups stay in effect, as for HTTP discovery.
//!
//! The plugin is looked up by name on every refresh, so a reloaded plugin
//! answers the next refresh; an entry with its own `config` gets its own
//! instance with those keys over the plugin's declared configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ember_config::{PluginSdConfig, ServiceDiscoveryConfigs};
use prometheus::{Histogram, IntCounter};
use tokio::time::MissedTickBehavior;

use super::{
    Discoverer, DiscovererFuture, DiscovererMetrics, ProviderConfig, TargetGroup, UpdateSender,
};
use crate::plugins::{PluginManager, PluginUseError};

/// Discovers targets by calling one discovery plugin.
pub struct PluginDiscoverer {
    manager: Arc<PluginManager>,
    config: PluginSdConfig,
    refresh_failures: IntCounter,
    refresh_duration: Histogram,
}

impl std::fmt::Debug for PluginDiscoverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDiscoverer")
            .field("plugin", &self.config.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginDiscoverer {
    /// A discoverer for one `plugin_sd_configs` entry. Does no work until run.
    pub fn new(
        manager: Arc<PluginManager>,
        config: PluginSdConfig,
        metrics: &DiscovererMetrics,
    ) -> PluginDiscoverer {
        PluginDiscoverer {
            manager,
            config,
            refresh_failures: metrics.refresh_failures.with_label_values(&["plugin"]),
            refresh_duration: metrics.refresh_duration.with_label_values(&["plugin"]),
        }
    }

    /// One refresh, converted to the manager's groups.
    async fn refresh(&self) -> Result<Vec<TargetGroup>, PluginUseError> {
        let plugin = self
            .manager
            .get_with_config(&self.config.plugin, &self.config.config)
            .await?;
        let groups = self.manager.timed(&plugin, plugin.refresh()).await?;
        Ok(groups
            .into_iter()
            .map(|group| TargetGroup {
                source: group.source,
                targets: group
                    .targets
                    .into_iter()
                    .map(|target| target.into_iter().collect())
                    .collect(),
                labels: group.labels.into_iter().collect(),
            })
            .collect())
    }
}

impl Discoverer for PluginDiscoverer {
    fn mechanism(&self) -> &str {
        &self.config.plugin
    }

    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture {
        Box::pin(async move {
            let mut ticker = tokio::time::interval(self.config.refresh_interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut last_sources: BTreeSet<String> = BTreeSet::new();
            loop {
                tokio::select! {
                    // The first tick completes at once: the initial refresh.
                    _ = ticker.tick() => {}
                    () = updates.closed() => return,
                }
                let timer = self.refresh_duration.start_timer();
                let refreshed = self.refresh().await;
                timer.observe_duration();
                let mut groups = match refreshed {
                    Ok(groups) => groups,
                    Err(error) => {
                        self.refresh_failures.inc();
                        tracing::error!(plugin = %self.config.plugin, %error, "Discovery plugin could not refresh target groups");
                        continue;
                    }
                };
                let sources: BTreeSet<String> =
                    groups.iter().map(|group| group.source.clone()).collect();
                groups.extend(
                    last_sources
                        .difference(&sources)
                        .map(|source| TargetGroup::empty(source.clone())),
                );
                last_sources = sources;
                if updates.send(groups).await.is_err() {
                    return;
                }
            }
        })
    }
}

/// The providers of one set: the built-in mechanisms' and one per
/// `plugin_sd_configs` entry.
pub fn providers(
    configs: &ServiceDiscoveryConfigs,
    manager: &Arc<PluginManager>,
    metrics: &DiscovererMetrics,
) -> Vec<ProviderConfig> {
    let mut providers = ProviderConfig::from_configs(configs);
    for config in &configs.plugin_sd_configs {
        providers.push(ProviderConfig::External {
            mechanism: config.plugin.clone(),
            identity: identity(config),
            discoverer: Box::new(PluginDiscoverer::new(
                manager.clone(),
                config.clone(),
                metrics,
            )),
        });
    }
    providers
}

/// What makes two entries of the same plugin the same provider.
fn identity(config: &PluginSdConfig) -> String {
    let overrides: &BTreeMap<String, String> = &config.config;
    format!(
        "refresh_interval={:?} config={}",
        config.refresh_interval,
        serde_json::to_string(overrides).unwrap_or_default()
    )
}
