//! The current configuration and how it is replaced.
//!
//! [`ConfigManager`] holds the configuration the server runs on. A reload —
//! from `SIGHUP` or `POST /-/reload` — reads and validates the whole file
//! first; only a configuration that passes every check replaces the running
//! one, so a broken edit never takes the server down or half-applies. The
//! outcome is logged and exported as `ember_config_last_reload_successful`.
//!
//! Subsystems (discovery, scrape, rules, remote write) follow changes through
//! [`ConfigManager::subscribe`], a `tokio::sync::watch` channel: each sees
//! every accepted configuration, in order, and the newest one wins if it lags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ember_config::{Config, ConfigError};
use tokio::sync::{Mutex, watch};

use crate::self_metrics::SelfMetrics;

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file, read again on every reload.
    File(PathBuf),
    /// The configuration compiled into the binary; a reload re-applies it.
    Embedded,
}

impl ConfigSource {
    /// Chooses the source as Prometheus would, but without failing when no
    /// file is there: an explicit `--config.file`, else `./prometheus.yml`
    /// if it exists, else the embedded default.
    pub fn from_flag(flag: Option<&Path>) -> Self {
        match flag {
            Some(path) => Self::File(path.to_path_buf()),
            None if Path::new("prometheus.yml").is_file() => Self::File("prometheus.yml".into()),
            None => Self::Embedded,
        }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        match self {
            Self::File(path) => ember_config::load_file(path),
            Self::Embedded => ember_config::parse(
                ember_config::DEFAULT_CONFIG_YAML,
                Path::new("<embedded default>"),
            ),
        }
    }
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Embedded => f.write_str("<embedded default>"),
        }
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new configuration differs and is now the running one.
    Applied,
    /// The file parsed to the configuration already running; nothing changed.
    Unchanged,
}

/// The running configuration and the single path through which it changes.
#[derive(Debug)]
pub struct ConfigManager {
    source: ConfigSource,
    current: watch::Sender<Arc<Config>>,
    metrics: SelfMetrics,
    /// Serialises reloads so that two concurrent requests cannot interleave
    /// their read-validate-apply steps.
    reload_lock: Mutex<()>,
}

impl ConfigManager {
    /// Loads the initial configuration. Unlike a reload, a failure here is
    /// fatal to start-up: there is no previous configuration to keep.
    pub fn load_initial(source: ConfigSource, metrics: SelfMetrics) -> Result<Self, ConfigError> {
        let config = source.load()?;
        log_warnings(&config);
        record_success(&metrics);
        let (current, _) = watch::channel(Arc::new(config));
        Ok(Self {
            source,
            current,
            metrics,
            reload_lock: Mutex::new(()),
        })
    }

    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every configuration accepted from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.current.subscribe()
    }

    /// Reads and validates the configuration again and, if it is valid and
    /// different, makes it the running one. On error the running
    /// configuration stays in force and the error says why.
    pub async fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        let _serialised = self.reload_lock.lock().await;
        let source = self.source.clone();
        // Reading the file and compiling regexes is blocking work; keep it
        // off the async workers so HTTP and scrapes are not stalled.
        // A panic while loading is a bug in the loader, not a bad file: let
        // it propagate rather than dress it up as a configuration error.
        let loaded = match tokio::task::spawn_blocking(move || source.load()).await {
            Ok(result) => result,
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        };
        match loaded {
            Ok(config) => {
                log_warnings(&config);
                record_success(&self.metrics);
                let changed = self.current.send_if_modified(|running| {
                    if **running == config {
                        false
                    } else {
                        *running = Arc::new(config);
                        true
                    }
                });
                let outcome = if changed {
                    ReloadOutcome::Applied
                } else {
                    ReloadOutcome::Unchanged
                };
                tracing::info!(source = %self.source, ?outcome, "Completed loading of configuration file");
                Ok(outcome)
            }
            Err(error) => {
                self.metrics.config_last_reload_successful.set(0);
                tracing::error!(source = %self.source, %error, "Error reloading config; keeping the running configuration");
                Err(error)
            }
        }
    }
}

fn record_success(metrics: &SelfMetrics) {
    metrics.config_last_reload_successful.set(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics
        .config_last_reload_success_timestamp_seconds
        .set(now.floor());
}

fn log_warnings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!(%warning, "Configuration warning");
    }
}
