//! The discovery manager: runs providers, merges their groups per set, and
//! publishes the result.
//!
//! This is Prometheus's `discovery.Manager`:
//!
//! - a *set* is a name (a job, an Alertmanager set) with its discovery
//!   configurations; each distinct configuration runs as one *provider*,
//!   shared by every set that has an identical configuration;
//! - [`DiscoveryManager::apply`] compares the new configurations with the
//!   running providers: a provider whose configuration is unchanged keeps
//!   running with the groups it has (no re-read, no churn of targets), new
//!   ones are started, and providers no set uses any more are stopped and
//!   their groups dropped;
//! - updates from providers are merged per set and published at most once
//!   per [`ManagerOptions::update_interval`] (5s): changes are collected
//!   and sent on the next tick of a fixed clock, as Prometheus's ticker does,
//!   so a burst of updates costs the consumer one resynchronisation;
//! - every applied set is in every publication, with no groups when nothing
//!   is known for it yet or any more, so the consumer drops stale targets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ember_config::{FileSdConfig, HttpSdConfig, ServiceDiscoveryConfigs, StaticConfig};
use prometheus::Registry;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::metrics::ManagerMetrics;
use super::{
    Discoverer, DiscovererMetrics, DiscoveryError, FileDiscoverer, HttpDiscoverer,
    StaticDiscoverer, TargetGroup,
};

/// What the manager publishes: every set's groups, by set name.
pub type TargetSets = Arc<HashMap<String, Vec<TargetGroup>>>;

/// Settings of a [`DiscoveryManager`].
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// The shortest time between two publications; changes within one
    /// interval are published together. Prometheus uses 5 seconds; tests use
    /// less. Values under a millisecond are treated as one millisecond.
    pub update_interval: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        Self {
            update_interval: Duration::from_secs(5),
        }
    }
}

/// One discovery configuration of a set, as the manager runs it.
///
/// The built-in mechanisms are described by their configuration and built
/// by the manager when no identical provider is running. Other discoverers,
/// such as those of discovery plugins, are built by their owner and handed
/// over as [`ProviderConfig::External`].
pub enum ProviderConfig {
    /// All the `static_configs` of a set, as one provider.
    Static(Vec<StaticConfig>),
    /// One `file_sd_configs` entry.
    File(FileSdConfig),
    /// One `http_sd_configs` entry (boxed: an HTTP client configuration is large).
    Http(Box<HttpSdConfig>),
    /// A discoverer built elsewhere. Two external providers are the same
    /// provider, kept running across [`DiscoveryManager::apply`], when their
    /// `mechanism` and `identity` are equal; `discoverer` is dropped unused
    /// then.
    External {
        /// The mechanism, e.g. the plugin's name.
        mechanism: String,
        /// Everything that distinguishes this configuration from another of
        /// the same mechanism, such as its serialised settings.
        identity: String,
        /// The discoverer to run when no identical provider is running.
        discoverer: Box<dyn Discoverer>,
    },
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(configs) => f.debug_tuple("Static").field(configs).finish(),
            Self::File(config) => f.debug_tuple("File").field(config).finish(),
            Self::Http(config) => f.debug_tuple("Http").field(config).finish(),
            Self::External {
                mechanism,
                identity,
                ..
            } => f
                .debug_struct("External")
                .field("mechanism", mechanism)
                .field("identity", identity)
                .finish_non_exhaustive(),
        }
    }
}

impl ProviderConfig {
    /// The providers of a set's built-in mechanisms: one for all its static
    /// configs (if any), one per file and per HTTP entry, in that order.
    /// `plugin_sd_configs` are not included: their discoverers come from the
    /// plugin runtime as [`ProviderConfig::External`]. Unsupported mechanisms
    /// find no targets.
    pub fn from_configs(configs: &ServiceDiscoveryConfigs) -> Vec<Self> {
        let mut providers = Vec::new();
        if !configs.static_configs.is_empty() {
            providers.push(Self::Static(configs.static_configs.clone()));
        }
        providers.extend(configs.file_sd_configs.iter().cloned().map(Self::File));
        providers.extend(
            configs
                .http_sd_configs
                .iter()
                .map(|config| Self::Http(Box::new(config.clone()))),
        );
        providers
    }

    fn identity(&self) -> Identity {
        match self {
            Self::Static(configs) => Identity::Static(configs.clone()),
            Self::File(config) => Identity::File(config.clone()),
            Self::Http(config) => Identity::Http(config.clone()),
            Self::External {
                mechanism,
                identity,
                ..
            } => Identity::External {
                mechanism: mechanism.clone(),
                identity: identity.clone(),
            },
        }
    }

    fn into_discoverer(
        self,
        metrics: &DiscovererMetrics,
    ) -> Result<Box<dyn Discoverer>, DiscoveryError> {
        Ok(match self {
            Self::Static(configs) => Box::new(StaticDiscoverer::new(&configs)),
            Self::File(config) => Box::new(FileDiscoverer::new(&config, metrics)),
            Self::Http(config) => Box::new(HttpDiscoverer::new(&config, metrics)?),
            Self::External { discoverer, .. } => discoverer,
        })
    }
}

/// What makes two providers the same provider.
#[derive(Debug, Clone, PartialEq)]
enum Identity {
    Static(Vec<StaticConfig>),
    File(FileSdConfig),
    Http(Box<HttpSdConfig>),
    External { mechanism: String, identity: String },
}

/// What one [`DiscoveryManager::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplySummary {
    /// Providers started for configurations that were not running.
    pub started: usize,
    /// Providers kept running because some set still has their configuration.
    pub kept: usize,
    /// Providers stopped because no set has their configuration any more.
    pub stopped: usize,
    /// Configurations whose discoverer could not be built; they find no
    /// targets until a later `apply` succeeds in building them.
    pub failed: usize,
}

/// Runs discovery providers for named sets and publishes their targets.
///
/// Create it inside a tokio runtime; it runs its providers on that runtime.
/// All methods take `&self` and may be called from any thread. Dropping the
/// manager shuts it down.
pub struct DiscoveryManager {
    name: String,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    receiver: watch::Receiver<TargetSets>,
    publisher: JoinHandle<()>,
}

impl fmt::Debug for DiscoveryManager {
    /// The name and the providers, without their (possibly many) groups.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        let providers: Vec<&str> = state.providers.iter().map(|p| p.name.as_str()).collect();
        f.debug_struct("DiscoveryManager")
            .field("name", &self.name)
            .field("sets", &state.sets)
            .field("providers", &providers)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Raised whenever the state changes in a way worth publishing.
    changed: Notify,
    metrics: ManagerMetrics,
    discoverer_metrics: DiscovererMetrics,
}

struct State {
    /// Running providers, in the order they were started.
    providers: Vec<Provider>,
    /// Every set of the last `apply`, with or without providers.
    sets: BTreeSet<String>,
    /// Whether something changed since the last publication.
    dirty: bool,
    next_provider: u64,
    /// `None` once the manager is shut down, which closes the channel.
    sender: Option<watch::Sender<TargetSets>>,
}

struct Provider {
    id: u64,
    /// `<mechanism>/<n>`, for logs.
    name: String,
    identity: Identity,
    /// The sets that use this provider.
    subscribers: BTreeSet<String>,
    /// The provider's groups that have targets, by source.
    groups: BTreeMap<String, TargetGroup>,
    task: Option<JoinHandle<()>>,
}

impl DiscoveryManager {
    /// Creates a manager called `name` (Prometheus uses `scrape` and
    /// `notify`), registering its metrics in `registry` with a `name` label.
    /// `discoverer_metrics` are the mechanism metrics, registered once per
    /// registry and shared by every manager.
    ///
    /// Fails outside a tokio runtime or when the metrics cannot be registered
    /// (for instance, a second manager with the same name).
    pub fn new(
        name: &str,
        registry: &Registry,
        discoverer_metrics: DiscovererMetrics,
        options: ManagerOptions,
    ) -> Result<Self, DiscoveryError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| DiscoveryError::NoRuntime)?;
        let metrics = ManagerMetrics::register(registry, name)?;
        let (sender, receiver) = watch::channel(TargetSets::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                providers: Vec::new(),
                sets: BTreeSet::new(),
                dirty: false,
                next_provider: 0,
                sender: Some(sender),
            }),
            changed: Notify::new(),
            metrics,
            discoverer_metrics,
        });
        let interval = options.update_interval.max(Duration::from_millis(1));
        let publisher = runtime.spawn(publish_loop(shared.clone(), interval));
        Ok(Self {
            name: name.to_owned(),
            shared,
            runtime,
            receiver,
            publisher,
        })
    }

    /// The published target sets. The first `changed()` of a new receiver
    /// completes at once if anything was published before, so a consumer that
    /// loops on `changed()` starts from the current state. The channel closes
    /// when the manager shuts down.
    pub fn subscribe(&self) -> watch::Receiver<TargetSets> {
        self.receiver.clone()
    }

    /// Applies the discovery configurations of every set, by set name, for
    /// the built-in mechanisms; see [`ProviderConfig::from_configs`] and
    /// [`apply_providers`](Self::apply_providers). `plugin_sd_configs` are
    /// not run by this method, which logs a warning for each: the server
    /// builds their discoverers with [`super::plugin::providers`] and passes
    /// them, with the built-in providers, to `apply_providers`.
    pub fn apply(&self, sets: HashMap<String, ServiceDiscoveryConfigs>) -> ApplySummary {
        let providers = sets
            .into_iter()
            .map(|(set, configs)| {
                for plugin in &configs.plugin_sd_configs {
                    tracing::warn!(
                        manager = %self.name,
                        config = %set,
                        plugin = %plugin.plugin,
                        "Discovery plugins need the plugin manager (discovery::plugin::providers); the plugin finds no targets"
                    );
                }
                let providers = ProviderConfig::from_configs(&configs);
                (set, providers)
            })
            .collect();
        self.apply_providers(providers)
    }

    /// Applies the providers of every set, by set name: keeps the running
    /// providers whose identity is still used, starts the new ones, stops the
    /// others, and marks the state for publication. Sets not named here are
    /// dropped; a set with no providers is published with no groups.
    pub fn apply_providers(&self, sets: HashMap<String, Vec<ProviderConfig>>) -> ApplySummary {
        let mut summary = ApplySummary::default();
        let mut state = self.shared.lock();
        if state.sender.is_none() {
            tracing::warn!(manager = %self.name, "Discovery manager is shut down; ignoring new configuration");
            return summary;
        }

        // Sorted by set name so that provider numbering is reproducible.
        let sets: BTreeMap<String, Vec<ProviderConfig>> = sets.into_iter().collect();
        let set_names: BTreeSet<String> = sets.keys().cloned().collect();
        let mut subscribers: HashMap<u64, BTreeSet<String>> = HashMap::new();
        let mut to_start = Vec::new();
        for (set, configs) in sets {
            for config in configs {
                let identity = config.identity();
                // Providers started earlier in this loop are found here too,
                // so sets with identical configurations share one provider.
                if let Some(provider) = state.providers.iter().find(|p| p.identity == identity) {
                    subscribers
                        .entry(provider.id)
                        .or_default()
                        .insert(set.clone());
                    continue;
                }
                let mechanism = config_mechanism(&identity);
                match config.into_discoverer(&self.shared.discoverer_metrics) {
                    Ok(discoverer) => {
                        let id = state.next_provider;
                        state.next_provider += 1;
                        let name = format!("{}/{id}", discoverer.mechanism());
                        tracing::debug!(manager = %self.name, provider = %name, config = %set, "Starting provider");
                        state.providers.push(Provider {
                            id,
                            name,
                            identity,
                            subscribers: BTreeSet::new(),
                            groups: BTreeMap::new(),
                            task: None,
                        });
                        subscribers.entry(id).or_default().insert(set.clone());
                        to_start.push((id, discoverer));
                        summary.started += 1;
                    }
                    Err(error) => {
                        summary.failed += 1;
                        tracing::error!(manager = %self.name, config = %set, mechanism, %error, "Cannot create service discovery");
                    }
                }
            }
        }

        let old_sets = std::mem::replace(&mut state.sets, set_names);
        state.providers.retain_mut(|provider| {
            match subscribers.remove(&provider.id) {
                Some(sets) => {
                    provider.subscribers = sets;
                    true
                }
                None => {
                    tracing::debug!(manager = %self.name, provider = %provider.name, "Stopping provider");
                    if let Some(task) = provider.task.take() {
                        task.abort();
                    }
                    summary.stopped += 1;
                    false
                }
            }
        });
        summary.kept = state.providers.len() - summary.started;

        let metrics = &self.shared.metrics;
        for set in old_sets.difference(&state.sets) {
            // The gauge may never have been set for this set; nothing to remove then.
            let _ = metrics.discovered_targets.remove_label_values(&[set]);
        }
        metrics
            .failed_configs
            .set(i64::try_from(summary.failed).unwrap_or(i64::MAX));

        for (id, discoverer) in to_start {
            let task = self
                .runtime
                .spawn(run_provider(self.shared.clone(), id, discoverer));
            if let Some(provider) = state.providers.iter_mut().find(|p| p.id == id) {
                provider.task = Some(task);
            }
        }
        // The consumer expects the full picture after a reload, including
        // sets that lost their providers, even if no provider sends anything.
        state.dirty = true;
        drop(state);
        self.shared.changed.notify_one();
        summary
    }

    /// Stops every provider and the publication; the channel closes. Later
    /// calls to [`apply`](Self::apply) are ignored.
    pub fn shutdown(&self) {
        let mut state = self.shared.lock();
        for provider in state.providers.drain(..) {
            if let Some(task) = provider.task {
                task.abort();
            }
        }
        state.sender = None;
        drop(state);
        self.publisher.abort();
    }
}

impl Drop for DiscoveryManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn config_mechanism(identity: &Identity) -> &str {
    match identity {
        Identity::Static(_) => "static",
        Identity::File(_) => "file",
        Identity::Http(_) => "http",
        Identity::External { mechanism, .. } => mechanism,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere while
        // holding the lock cannot leave it half-updated in a harmful way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Merges an update of provider `id` into its groups.
    fn update(&self, id: u64, groups: Vec<TargetGroup>) {
        self.metrics.received_updates.inc();
        let mut state = self.lock();
        // A provider stopped by `apply` may deliver one last update; it is void.
        let Some(provider) = state.providers.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let mut changed = false;
        for group in groups {
            if group.targets.is_empty() {
                changed |= provider.groups.remove(&group.source).is_some();
            } else if provider.groups.get(&group.source) != Some(&group) {
                provider.groups.insert(group.source.clone(), group);
                changed = true;
            }
        }
        if changed {
            state.dirty = true;
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Publishes every set's groups if something changed since last time.
    fn publish(&self) {
        let mut state = self.lock();
        if !state.dirty {
            return;
        }
        state.dirty = false;
        let mut sets: HashMap<String, Vec<TargetGroup>> = state
            .sets
            .iter()
            .map(|set| (set.clone(), Vec::new()))
            .collect();
        for provider in &state.providers {
            for set in &provider.subscribers {
                if let Some(groups) = sets.get_mut(set) {
                    groups.extend(provider.groups.values().cloned());
                }
            }
        }
        for (set, groups) in &sets {
            let targets: usize = groups.iter().map(|group| group.targets.len()).sum();
            self.metrics
                .discovered_targets
                .with_label_values(&[set])
                .set(i64::try_from(targets).unwrap_or(i64::MAX));
        }
        if let Some(sender) = &state.sender {
            sender.send_replace(Arc::new(sets));
            self.metrics.updates.inc();
        }
    }
}

/// Runs one provider: its discoverer, and the merging of what it sends.
async fn run_provider(shared: Arc<Shared>, id: u64, discoverer: Box<dyn Discoverer>) {
    let (sender, mut updates) = mpsc::channel(1);
    let run = discoverer.run(sender);
    tokio::pin!(run);
    let mut running = true;
    loop {
        tokio::select! {
            () = &mut run, if running => running = false,
            update = updates.recv() => match update {
                Some(groups) => shared.update(id, groups),
                // The discoverer returned and everything it sent is merged;
                // its groups stay until `apply` stops the provider.
                None => return,
            },
        }
    }
}

/// Publishes changes on the ticks of a clock started with the manager: a
/// change waits for the next tick, and everything that changed by then goes
/// out together.
async fn publish_loop(shared: Arc<Shared>, interval: Duration) {
    let epoch = Instant::now();
    loop {
        shared.changed.notified().await;
        let interval_nanos = interval.as_nanos();
        let next_tick = (epoch.elapsed().as_nanos() / interval_nanos + 1) * interval_nanos;
        let offset = Duration::from_nanos(u64::try_from(next_tick).unwrap_or(u64::MAX));
        tokio::time::sleep_until(epoch + offset).await;
        shared.publish();
    }
}

#[cfg(test)]
mod tests;
