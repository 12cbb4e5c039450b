//! The server's WebAssembly plugins: loading, reloading, lookup, status.
//!
//! [`PluginManager`] owns the one [`PluginRuntime`] of the server (engine,
//! epoch thread, compile cache under `<data dir>/plugin-cache`) and the
//! plugins declared in the configuration's `plugins:` section, by name.
//!
//! - **Start-up and reload.** [`PluginManager::apply_config`] runs before the
//!   scrape pools and discovery follow a configuration, so every plugin they
//!   name has been tried. A plugin is (re)loaded when it is new, when its
//!   declaration changed (path, config, limits, capabilities) or when its
//!   file's SHA-256 changed; a plugin no longer declared is unloaded.
//!   Compilation happens here, through the compile cache, on the blocking
//!   pool; never on a scrape.
//! - **Swapping.** Users look plugins up by name for every call
//!   ([`PluginManager::get`]) and get a cheap clone of the current
//!   [`Plugin`]. A reload replaces the map entry; calls already running keep
//!   their clone and finish on the old instance, which is freed when the last
//!   one ends.
//! - **Failures.** A plugin that cannot be loaded (missing file, not a
//!   component, wrong world, failing `init`) is logged, counted in
//!   `ember_plugin_load_failures_total`, shown as `failed` with its error on
//!   `/api/v1/plugins`, and every use of it fails with that reason (a scrape
//!   of an exporter target reports it as the target's error). The server and
//!   the other plugins carry on.
//! - **Observability.** [`PluginManager::statuses`] feeds `/api/v1/plugins`;
//!   the [`metrics`] module exports per-plugin counters, memory and a call
//!   duration histogram. Plugin log lines (`wasi:logging`) reach the server's
//!   log through `tracing`, with a `plugin` field (done by the runtime).
//!
//! The uses live with their subsystems: [`relabel::RelabelPipeline`] (relabel
//! steps), [`crate::discovery::PluginDiscoverer`] (`plugin_sd_configs`),
//! [`crate::scrape::exporter`] (exporter targets) and
//! [`remote_storage::RemoteStoragePlugin`] (a `remote_write` destination).
//!
//! ```no_run
//! # async fn demo(config: &ember_config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let registry = prometheus::Registry::new();
//! let plugins = ember_host::plugins::PluginManager::new(
//!     Some(std::path::Path::new("data/plugin-cache")),
//!     &registry,
//! )?;
//! plugins.apply_config(config).await;
//! for status in plugins.statuses() {
//!     println!("{} {} {:?}", status.name, status.state, status.last_error);
//! }
//! # Ok(()) }
//! ```

pub mod metrics;
pub mod relabel;
pub mod remote_storage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use ember_config::{Config, PluginConfig};
use ember_plugin_host::{
    Capabilities, HostPattern, Limits, Plugin, PluginCallError, PluginKind, PluginRuntime,
    PluginSource, PluginSpec, PluginState, ReadOnlyDir, RuntimeConfig,
};
use sha2::{Digest, Sha256};

use metrics::PluginMetrics;

/// Why a plugin could not be used for a call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginUseError {
    /// No plugin of this name is loaded or being loaded.
    #[error("plugin {0:?} is not declared")]
    Unknown(String),
    /// The plugin's first load has not finished.
    #[error("plugin {0:?} is still loading")]
    Loading(String),
    /// The plugin could not be loaded.
    #[error("plugin {name:?} failed to load: {error}")]
    LoadFailed {
        /// The plugin.
        name: String,
        /// Why.
        error: String,
    },
    /// The call itself failed.
    #[error("plugin {name:?}: {source}")]
    Call {
        /// The plugin.
        name: String,
        /// What the runtime reported.
        source: PluginCallError,
    },
}

/// Where one declared plugin stands.
#[derive(Debug, Clone)]
enum Slot {
    /// First load in progress.
    Loading,
    /// Loaded; calls go here.
    Loaded(Plugin),
    /// The last load attempt failed.
    Failed(String),
}

/// One declared plugin, as last applied. Replaced whole on every change, so
/// that readers never see half an update.
#[derive(Debug, Clone)]
struct Entry {
    config: PluginConfig,
    /// SHA-256 of the file that was loaded (or that failed to load), hex.
    sha256: Option<String>,
    /// The `ember:plugin` contract version found in the component's imports.
    wit_version: Option<String>,
    slot: Slot,
    /// Changes whenever `slot` gets a new plugin: users that derive their own
    /// instances (a discovery with its own config) compare it to know when to
    /// derive again.
    generation: u64,
    /// The metrics registry's id of the loaded plugin.
    tracking_id: Option<u64>,
    loaded_at: Option<SystemTime>,
}

/// A snapshot of one plugin for `/api/v1/plugins`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginReport {
    pub name: String,
    pub kind: &'static str,
    /// `loading`, `ready`, `restarting`, `disabled` or `failed`.
    pub state: &'static str,
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub wit_version: Option<String>,
    pub last_error: Option<String>,
    pub restarts: u64,
    pub calls: u64,
    pub errors: u64,
    pub memory_bytes: usize,
    pub loaded_from_cache: bool,
    pub loaded_at: Option<SystemTime>,
    pub allowed_hosts: Vec<String>,
    pub env: Vec<String>,
    pub read_only_dir: Option<PathBuf>,
    pub memory_limit_bytes: u64,
    pub call_timeout: std::time::Duration,
}

/// An instance derived from a declared plugin: the generation of the
/// plugin it was derived from, the instance, its metrics id.
type Derived = (u64, Plugin, u64);

/// The server's plugins. Share it behind an `Arc`.
pub struct PluginManager {
    runtime: PluginRuntime,
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    metrics: PluginMetrics,
    generation: AtomicU64,
    /// One `apply_config` at a time: reloads are serialised by the config
    /// manager already, but start-up and a racing reload must not interleave.
    apply_lock: tokio::sync::Mutex<()>,
    /// Instances derived from a declared plugin with extra configuration
    /// (`plugin_sd_configs[].config`), by (plugin, configuration key).
    derived: Mutex<BTreeMap<(String, String), Derived>>,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl PluginManager {
    /// Creates the runtime (compile cache in `cache_dir`, when given) and
    /// registers the plugin metrics in `registry`.
    pub fn new(
        cache_dir: Option<&Path>,
        registry: &prometheus::Registry,
    ) -> Result<Arc<PluginManager>, anyhow::Error> {
        let runtime = PluginRuntime::new(RuntimeConfig {
            cache_dir: cache_dir.map(Path::to_path_buf),
            ..RuntimeConfig::default()
        })?;
        let metrics = PluginMetrics::new()?;
        let manager = Arc::new(PluginManager {
            runtime,
            entries: RwLock::new(BTreeMap::new()),
            metrics: metrics.clone(),
            generation: AtomicU64::new(0),
            apply_lock: tokio::sync::Mutex::new(()),
            derived: Mutex::new(BTreeMap::new()),
        });
        registry.register(Box::new(metrics::Collector::new(Arc::downgrade(&manager))))?;
        Ok(manager)
    }

    /// The metrics handles (for the call-duration histogram).
    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    /// Brings the loaded plugins in line with `config.plugins`; see the module
    /// documentation. Never fails: problems are recorded per plugin. Returns
    /// the names of the plugins that were loaded, reloaded, failed or
    /// removed, so that users holding results of the old versions (target
    /// relabeling) can redo them.
    pub async fn apply_config(&self, config: &Config) -> Vec<String> {
        let _serialised = self.apply_lock.lock().await;
        let mut changed = Vec::new();
        for declared in &config.plugins {
            if self.apply_one(declared).await {
                changed.push(declared.name.clone());
            }
        }
        let removed: Vec<Arc<Entry>> = {
            let mut entries = self.write_entries();
            let gone: Vec<String> = entries
                .keys()
                .filter(|name| config.plugin(name).is_none())
                .cloned()
                .collect();
            gone.iter()
                .filter_map(|name| entries.remove(name))
                .collect()
        };
        for entry in removed {
            tracing::info!(plugin = %entry.config.name, "Plugin unloaded: no longer declared");
            self.retire(&entry);
            changed.push(entry.config.name.clone());
        }
        self.derived
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(name, _), (_, plugin, id)| {
                let keep = config.plugin(name).is_some();
                if !keep {
                    self.metrics.retire(*id, plugin);
                }
                keep
            });
        changed
    }

    /// Applies one declaration; returns whether anything changed.
    async fn apply_one(&self, declared: &PluginConfig) -> bool {
        let name = declared.name.clone();
        let path = declared.path.clone();
        let read = tokio::task::spawn_blocking(move || {
            std::fs::read(&path).map(|bytes| {
                let sha = hex(&Sha256::digest(&bytes));
                (bytes, sha)
            })
        })
        .await;
        let previous = self.read_entries().get(&name).cloned();
        let (bytes, sha) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => {
                let error = format!("reading {}: {error}", declared.path.display());
                self.record_failure(declared, None, error);
                return true;
            }
            Err(join) => {
                let error = format!("reading {}: {join}", declared.path.display());
                self.record_failure(declared, None, error);
                return true;
            }
        };
        if let Some(previous) = &previous
            && previous.config == *declared
            && previous.sha256.as_deref() == Some(sha.as_str())
            && matches!(previous.slot, Slot::Loaded(_))
        {
            return false;
        }
        let reloading = previous
            .as_ref()
            .is_some_and(|entry| matches!(entry.slot, Slot::Loaded(_)));
        if !reloading {
            // Users see "loading" rather than "not declared" meanwhile.
            self.write_entries().insert(
                name.clone(),
                Arc::new(Entry {
                    config: declared.clone(),
                    sha256: Some(sha.clone()),
                    wit_version: None,
                    slot: Slot::Loading,
                    generation: 0,
                    tracking_id: None,
                    loaded_at: None,
                }),
            );
        }
        let wit_version = wit_version(&bytes);
        let spec = match spec_for(declared, bytes) {
            Ok(spec) => spec,
            Err(error) => {
                self.record_failure(declared, Some(sha), error);
                return true;
            }
        };
        match self.runtime.load(spec).await {
            Ok(plugin) => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let tracking_id = self.metrics.track(&plugin);
                let entry = Arc::new(Entry {
                    config: declared.clone(),
                    sha256: Some(sha.clone()),
                    wit_version,
                    slot: Slot::Loaded(plugin),
                    generation,
                    tracking_id: Some(tracking_id),
                    loaded_at: Some(SystemTime::now()),
                });
                let replaced = self.write_entries().insert(name.clone(), entry);
                if reloading {
                    tracing::info!(plugin = %name, sha256 = %sha, "Plugin reloaded; calls in flight finish on the previous instance");
                }
                if let Some(replaced) = replaced {
                    self.retire(&replaced);
                }
            }
            Err(error) => self.record_failure(declared, Some(sha), error.to_string()),
        }
        true
    }

    fn record_failure(&self, declared: &PluginConfig, sha256: Option<String>, error: String) {
        tracing::error!(plugin = %declared.name, path = %declared.path.display(), %error,
            "Plugin failed to load; uses of it fail until a reload fixes it");
        self.metrics
            .load_failures
            .with_label_values(&[declared.name.as_str()])
            .inc();
        let entry = Arc::new(Entry {
            config: declared.clone(),
            sha256,
            wit_version: None,
            slot: Slot::Failed(error),
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            tracking_id: None,
            loaded_at: None,
        });
        if let Some(replaced) = self.write_entries().insert(declared.name.clone(), entry) {
            self.retire(&replaced);
        }
    }

    /// Stops counting a replaced or removed entry's plugin (after a last
    /// reading of its counters, so nothing is lost).
    fn retire(&self, entry: &Entry) {
        if let (Slot::Loaded(plugin), Some(id)) = (&entry.slot, entry.tracking_id) {
            self.metrics.retire(id, plugin);
        }
    }

    /// The current plugin called `name`, for one call. Calls in flight on a
    /// previous version are not affected by later reloads.
    pub fn get(&self, name: &str) -> Result<Plugin, PluginUseError> {
        self.get_with_generation(name).map(|(plugin, _)| plugin)
    }

    fn get_with_generation(&self, name: &str) -> Result<(Plugin, u64), PluginUseError> {
        let entries = self.read_entries();
        let entry = entries
            .get(name)
            .ok_or_else(|| PluginUseError::Unknown(name.to_owned()))?;
        match &entry.slot {
            Slot::Loaded(plugin) => Ok((plugin.clone(), entry.generation)),
            Slot::Loading => Err(PluginUseError::Loading(name.to_owned())),
            Slot::Failed(error) => Err(PluginUseError::LoadFailed {
                name: name.to_owned(),
                error: error.clone(),
            }),
        }
    }

    /// The plugin `name`, or an instance of it whose configuration has
    /// `overrides` on top of the declared one (loaded once per plugin
    /// version and overrides, from the compile cache).
    pub async fn get_with_config(
        &self,
        name: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Plugin, PluginUseError> {
        let (base, generation) = self.get_with_generation(name)?;
        if overrides.is_empty() {
            return Ok(base);
        }
        let key = (
            name.to_owned(),
            serde_json::to_string(overrides).unwrap_or_default(),
        );
        if let Some((derived_from, plugin, _)) = self
            .derived
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            && *derived_from == generation
        {
            return Ok(plugin.clone());
        }
        let entry = self
            .read_entries()
            .get(name)
            .cloned()
            .ok_or_else(|| PluginUseError::Unknown(name.to_owned()))?;
        let mut declared = entry.config.clone();
        declared
            .config
            .extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let load_failed = |error: String| PluginUseError::LoadFailed {
            name: name.to_owned(),
            error,
        };
        let bytes = tokio::fs::read(&declared.path).await.map_err(|error| {
            load_failed(format!("reading {}: {error}", declared.path.display()))
        })?;
        let spec = spec_for(&declared, bytes).map_err(load_failed)?;
        let plugin = self
            .runtime
            .load(spec)
            .await
            .map_err(|error| load_failed(error.to_string()))?;
        let id = self.metrics.track(&plugin);
        let replaced = self
            .derived
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, (generation, plugin.clone(), id));
        if let Some((_, old, old_id)) = replaced {
            self.metrics.retire(old_id, &old);
        }
        Ok(plugin)
    }

    /// Every declared plugin's state, sorted by name.
    pub fn statuses(&self) -> Vec<PluginReport> {
        let entries: Vec<Arc<Entry>> = self.read_entries().values().cloned().collect();
        entries.iter().map(|entry| report(entry)).collect()
    }

    /// The loaded plugins with their metrics ids (for the metrics collector).
    fn tracked(&self) -> Vec<(u64, Plugin)> {
        let mut out: Vec<(u64, Plugin)> = self
            .read_entries()
            .values()
            .filter_map(|entry| match (&entry.slot, entry.tracking_id) {
                (Slot::Loaded(plugin), Some(id)) => Some((id, plugin.clone())),
                _ => None,
            })
            .collect();
        out.extend(
            self.derived
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .values()
                .map(|(_, plugin, id)| (*id, plugin.clone())),
        );
        out
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `call` on `plugin`, timing it into the call-duration histogram,
    /// and names the plugin in the error.
    pub async fn timed<R>(
        &self,
        plugin: &Plugin,
        call: impl std::future::Future<Output = Result<R, PluginCallError>>,
    ) -> Result<R, PluginUseError> {
        let started = std::time::Instant::now();
        let result = call.await;
        self.metrics
            .call_duration
            .with_label_values(&[plugin.name(), &plugin.kind().to_string()])
            .observe(started.elapsed().as_secs_f64());
        result.map_err(|source| PluginUseError::Call {
            name: plugin.name().to_owned(),
            source,
        })
    }
}

fn report(entry: &Entry) -> PluginReport {
    let config = &entry.config;
    let mut report = PluginReport {
        name: config.name.clone(),
        kind: config.kind.as_str(),
        state: "loading",
        path: config.path.clone(),
        sha256: entry.sha256.clone(),
        wit_version: entry.wit_version.clone(),
        last_error: None,
        restarts: 0,
        calls: 0,
        errors: 0,
        memory_bytes: 0,
        loaded_from_cache: false,
        loaded_at: entry.loaded_at,
        allowed_hosts: config.capabilities.allowed_hosts.clone(),
        env: config.capabilities.env.clone(),
        read_only_dir: config.capabilities.read_only_dir.clone(),
        memory_limit_bytes: config.limits.memory,
        call_timeout: config.limits.call_timeout,
    };
    match &entry.slot {
        Slot::Loading => {}
        Slot::Failed(error) => {
            report.state = "failed";
            report.last_error = Some(error.clone());
        }
        Slot::Loaded(plugin) => {
            let status = plugin.status();
            report.state = match status.state {
                PluginState::Ready => "ready",
                PluginState::BackingOff { .. } => "restarting",
                PluginState::Disabled => "disabled",
            };
            report.last_error = status.last_error;
            report.restarts = status.restarts;
            report.calls = status.calls;
            report.errors = status.errors;
            report.memory_bytes = status.memory_bytes;
            report.loaded_from_cache = status.loaded_from_cache;
        }
    }
    report
}

/// The runtime's form of a declared plugin.
fn spec_for(declared: &PluginConfig, bytes: Vec<u8>) -> Result<PluginSpec, String> {
    let kind = match declared.kind {
        ember_config::PluginKind::Discovery => PluginKind::Discovery,
        ember_config::PluginKind::Exporter => PluginKind::Exporter,
        ember_config::PluginKind::Relabeler => PluginKind::Relabeler,
        ember_config::PluginKind::RemoteStorage => PluginKind::RemoteStorage,
    };
    let allowed_hosts = declared
        .capabilities
        .allowed_hosts
        .iter()
        .map(|pattern| HostPattern::parse(pattern).map_err(|error| error.to_string()))
        .collect::<Result<Vec<_>, String>>()?;
    let capabilities = Capabilities {
        allowed_hosts,
        env: declared.capabilities.env.clone(),
        // The plugin sees the directory at the path the operator wrote, so
        // paths in its configuration mean the same inside and out.
        read_only_dir: declared
            .capabilities
            .read_only_dir
            .as_ref()
            .map(|dir| ReadOnlyDir {
                host_path: dir.clone(),
                guest_path: dir.to_string_lossy().into_owned(),
            }),
    };
    let limits = Limits {
        call_timeout: declared.limits.call_timeout,
        max_memory_bytes: usize::try_from(declared.limits.memory).unwrap_or(usize::MAX),
        ..Limits::default()
    };
    Ok(
        PluginSpec::new(declared.name.clone(), kind, PluginSource::Bytes(bytes))
            .with_config(declared.config.clone())
            .with_limits(limits)
            .with_capabilities(capabilities),
    )
}

/// The `ember:plugin` contract version a component or core module was built
/// against, read from its import and export names
/// (`ember:plugin/types@0.1.0`), which both forms carry as plain text.
fn wit_version(bytes: &[u8]) -> Option<String> {
    const NEEDLE: &[u8] = b"ember:plugin/types@";
    let start = bytes
        .windows(NEEDLE.len())
        .position(|window| window == NEEDLE)?
        + NEEDLE.len();
    let version: Vec<u8> = bytes[start..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'+'))
        .copied()
        .collect();
    (!version.is_empty()).then(|| String::from_utf8_lossy(&version).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests;
