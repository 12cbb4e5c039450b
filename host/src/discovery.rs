//! Service discovery: where scrape targets (and, later, Alertmanagers) come from.
//!
//! Discovery turns the `*_sd_configs` of a scrape job or an Alertmanager set into
//! *target groups*: label sets before relabelling, each with an `__address__` and
//! the mechanism's `__meta_*` labels. It works exactly like Prometheus's
//! `discovery` package:
//!
//! - a [`Discoverer`] runs one discovery configuration and sends updates of
//!   [`TargetGroup`]s on a channel. The built-in ones are
//!   [`StaticDiscoverer`] (`static_configs`), [`FileDiscoverer`]
//!   (`file_sd_configs`, files watched for changes and re-read every
//!   `refresh_interval`) and [`HttpDiscoverer`] (`http_sd_configs`, polled);
//! - the [`DiscoveryManager`] runs one provider per distinct configuration,
//!   shares it between the sets (jobs) that use the same configuration, keeps
//!   it running across configuration reloads when its configuration did not
//!   change, merges the groups of every provider per set, and publishes the
//!   whole picture at most once per update interval (5s) on a
//!   [`tokio::sync::watch`] channel.
//!
//! Discovery plugins plug in through the same [`Discoverer`] trait: whoever
//! builds a discoverer for a `plugin_sd_configs` entry hands it to the manager
//! as a [`ProviderConfig::External`]. Mechanisms Ember does not implement
//! (Kubernetes, Consul, ...) find no targets; configuration loading has already
//! warned about them.
//!
//! Deliberate differences from Prometheus, none visible to a consumer that
//! follows the contract: a file discovery refresh sends one update for all
//! its files rather than one per file; the manager publishes only when a
//! group actually changed (or after [`DiscoveryManager::apply`]); groups are
//! in a stable order (by provider, then source); file discovery keeps
//! re-reading every `refresh_interval` when no file watcher can be created,
//! where Prometheus stops; and the URL in HTTP discovery's sources and
//! `__meta_url` is the parsed URL's canonical form (a default port such as
//! `:80` is dropped, an empty path becomes `/`).
//!
//! Self-metrics, Prometheus's with `ember_` for `prometheus_`:
//! `ember_sd_discovered_targets{config, name}`,
//! `ember_sd_received_updates_total{name}`, `ember_sd_updates_total{name}` and
//! `ember_sd_failed_configs{name}` per manager (`name` is the manager's,
//! `config` the set's), and for the mechanisms ([`DiscovererMetrics`])
//! `ember_sd_file_read_errors_total`, `ember_sd_file_mtime_seconds{filename}`,
//! `ember_sd_file_watcher_errors_total`, `ember_sd_http_failures_total`,
//! `ember_sd_refresh_failures_total{mechanism}` and
//! `ember_sd_refresh_duration_histogram_seconds{mechanism}`.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use ember_host::discovery::{DiscovererMetrics, DiscoveryManager, ManagerOptions};
//! # async fn demo(config: ember_config::Config) -> Result<(), ember_host::discovery::DiscoveryError> {
//! let registry = prometheus::Registry::new();
//! let sd_metrics = DiscovererMetrics::register(&registry)?;
//! let manager = DiscoveryManager::new("scrape", &registry, sd_metrics, ManagerOptions::default())?;
//! let mut targets = manager.subscribe();
//! manager.apply(
//!     config
//!         .scrape_configs
//!         .iter()
//!         .map(|job| (job.job_name.clone(), job.service_discovery.clone()))
//!         .collect::<HashMap<_, _>>(),
//! );
//! while targets.changed().await.is_ok() {
//!     for (job, groups) in targets.borrow_and_update().iter() {
//!         println!("{job}: {} groups", groups.len());
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

mod file;
mod http;
mod manager;
mod metrics;
pub mod plugin;
mod static_targets;
mod target_list;
#[cfg(test)]
mod test_support;

pub use file::FileDiscoverer;
pub use http::HttpDiscoverer;
pub use manager::{ApplySummary, DiscoveryManager, ManagerOptions, ProviderConfig, TargetSets};
pub use metrics::DiscovererMetrics;
pub use plugin::PluginDiscoverer;
pub use static_targets::StaticDiscoverer;

/// The label that holds a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";
/// The label file discovery sets to the file a target was read from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";
/// The label HTTP discovery sets to the URL a target was fetched from.
pub const URL_LABEL: &str = "__meta_url";

/// A set of targets with labels in common, as a discovery mechanism found them.
///
/// The labels are those *before* target relabelling: every target has at least
/// [`ADDRESS_LABEL`], and mechanisms add `__meta_*` labels. A target's own
/// labels win over the group's [`labels`](Self::labels) when both have the same
/// name, as in Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Identifies the group within its discoverer, e.g. `"/etc/sd/nodes.json:0"`.
    /// A later group with the same source replaces this one.
    pub source: String,
    /// One label map per target.
    pub targets: Vec<BTreeMap<String, String>>,
    /// Labels common to every target of the group.
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    /// A group whose targets are the given addresses, each as `{__address__="<address>"}`.
    pub fn from_addresses<I, S>(source: impl Into<String>, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            source: source.into(),
            targets: addresses
                .into_iter()
                .map(|address| BTreeMap::from([(ADDRESS_LABEL.to_owned(), address.into())]))
                .collect(),
            labels: BTreeMap::new(),
        }
    }

    /// A group with no targets: sent to say that `source`'s targets are gone.
    pub fn empty(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }
}

/// Where a [`Discoverer`] sends its updates.
pub type UpdateSender = mpsc::Sender<Vec<TargetGroup>>;

/// The future of a running [`Discoverer`].
pub type DiscovererFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One discovery mechanism with its configuration, ready to run.
///
/// # Contract
///
/// - **Construction does no I/O.** Building a discoverer only prepares it
///   (parses settings, builds an HTTP client); work starts in [`run`](Self::run).
///   The manager may build a discoverer and drop it unused when it finds an
///   identical provider already running.
/// - **Updates.** [`run`](Self::run) sends `Vec<TargetGroup>` updates on
///   `updates`. The first update is the discoverer's full state (possibly an
///   empty `Vec` when it found nothing); later updates may carry only the
///   groups that changed. A group replaces the earlier group with the same
///   [`source`](TargetGroup::source); a group with no targets means that
///   source's targets are gone. A discoverer that cannot produce its first
///   state (say, the HTTP endpoint is down) sends nothing until it can, and one
///   that fails later sends nothing, so the previous groups stay in effect.
/// - **Cancellation.** The future runs until it is dropped, which is how the
///   manager stops it (on reload or shutdown). It must therefore be
///   cancel-safe at every `.await`: no state that needs asynchronous clean-up,
///   resources released by `Drop`. It should also return when `updates` is
///   closed. It may return earlier, as the static discoverer does after its one
///   update; the groups it sent stay in effect until the manager stops it.
/// - **Threads.** The future is `Send` and is polled on the tokio runtime; it
///   must not block (file reads are small and fast, and are the one exception
///   the built-in file discoverer allows itself, as Prometheus does).
pub trait Discoverer: Send + 'static {
    /// The mechanism's short name (`"static"`, `"file"`, `"http"`, or a plugin
    /// name), used in logs and provider names.
    fn mechanism(&self) -> &str;

    /// Runs the discoverer, sending updates on `updates`; see the trait's contract.
    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture;
}

/// Why discovery could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A [`DiscoveryManager`] was created outside a tokio runtime.
    #[error("the discovery manager must be created inside a tokio runtime")]
    NoRuntime,
    /// Registering discovery's self-metrics failed (for example, a name clash).
    #[error("registering service discovery metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP client of an `http_sd_configs` entry could not be built.
    #[error("HTTP service discovery for {url}: {source}")]
    HttpClient {
        /// The discovery URL.
        url: String,
        /// What went wrong.
        source: crate::http_client::HttpClientError,
    },
}
