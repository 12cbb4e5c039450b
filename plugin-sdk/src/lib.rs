//! The Rust SDK for Ember plugins.
//!
//! An Ember plugin is a WebAssembly component implementing one world of the
//! WIT package `ember:plugin` in the repository's `wit/` folder: `relabeler`,
//! `exporter`, `discovery` or `remote-storage`. This crate wraps the guest
//! bindings that `wit-bindgen` generates from that package in one small trait
//! per world, with defaults where a sensible one exists, and an export macro
//! per world, so a plugin is ordinary Rust that never touches the canonical
//! ABI.
//!
//! Principal items:
//! - [`Relabeler`] + [`export_relabeler!`], [`Exporter`] + [`export_exporter!`],
//!   [`Discoverer`] + [`export_discoverer!`], [`RemoteStorage`] +
//!   [`export_remote_storage!`];
//! - [`Config`], the plugin's configuration as the operator wrote it;
//! - [`Batch`] and [`LabelSetMut`], a relabel batch edited in place (it
//!   crosses the sandbox packed into one string and two integer lists);
//! - builders: [`LabelSetBuilder`] and [`labels`] for label sets,
//!   [`LabelSetExt`] to read and edit them, [`MetricFamilyBuilder`] for an
//!   exporter's answer (counters, gauges, histograms, summaries, info),
//!   [`TargetGroupBuilder`] for a discoverer's;
//! - [`http`], a blocking HTTP client over `wasi:http` (the host checks each
//!   request against the plugin's `allowed_hosts`);
//! - [`log`], which writes to the server's log.
//!
//! A plugin is a `cdylib` crate built for `wasm32-unknown-unknown` (or
//! `wasm32-wasip2`); the host turns the core module into a component when it
//! loads it. `ember plugin new NAME --kind KIND --lang rust` writes a project
//! that builds, and `ember plugin build` builds it with the toolchain route
//! that works on the machine. The plugin author's guide is `docs/plugins.md`
//! in the Ember repository.
//!
//! # One complete example per kind
//!
//! ## Relabeler
//!
//! Drops every series whose `env` label equals the configured `drop_env`:
//!
//! ```
//! use ember_plugin_sdk::{Config, LabelSetMut, PluginError, Relabeler};
//!
//! struct DropEnv {
//!     env: String,
//! }
//!
//! impl Relabeler for DropEnv {
//!     fn init(config: &Config) -> Result<Self, PluginError> {
//!         Ok(DropEnv { env: config.require("drop_env")?.to_owned() })
//!     }
//!
//!     fn relabel_one(&self, labels: &mut LabelSetMut<'_>) {
//!         if labels.get("env") == Some(self.env.as_str()) {
//!             labels.drop_set();
//!         }
//!     }
//! }
//!
//! ember_plugin_sdk::export_relabeler!(DropEnv);
//! # fn main() {}
//! ```
//!
//! ## Discoverer
//!
//! Reads `host:port` lines from an HTTP endpoint (its host must be in the
//! plugin's `allowed_hosts`); a failed fetch is `unavailable`, so the server
//! keeps the previous targets:
//!
//! ```
//! use ember_plugin_sdk::{Config, Discoverer, PluginError, TargetGroup, TargetGroupBuilder, http};
//!
//! struct Lines {
//!     url: String,
//! }
//!
//! impl Discoverer for Lines {
//!     fn init(config: &Config) -> Result<Self, PluginError> {
//!         Ok(Lines { url: config.require("url")?.to_owned() })
//!     }
//!
//!     fn refresh(&self) -> Result<Vec<TargetGroup>, PluginError> {
//!         let body = http::get(&self.url)?.error_for_status()?.text()?;
//!         let mut group = TargetGroupBuilder::new(&self.url).label("__meta_lines_url", &self.url);
//!         for (i, line) in body.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
//!             group = group.target(line, [("__meta_lines_index", i.to_string())]);
//!         }
//!         Ok(vec![group.build()])
//!     }
//! }
//!
//! ember_plugin_sdk::export_discoverer!(Lines);
//! # fn main() {}
//! ```
//!
//! ## Exporter
//!
//! Reports a counter of calls and a histogram per target; the target's
//! labels and the scrape's parameters come in:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use ember_plugin_sdk::{
//!     Config, Exporter, LabelSet, LabelSetExt, MetricFamily, MetricFamilyBuilder, Param,
//!     PluginError,
//! };
//!
//! struct Demo {
//!     calls: AtomicU64,
//! }
//!
//! impl Exporter for Demo {
//!     fn init(_config: &Config) -> Result<Self, PluginError> {
//!         Ok(Demo { calls: AtomicU64::new(0) })
//!     }
//!
//!     fn collect(&self, target: LabelSet, params: Vec<Param>) -> Result<Vec<MetricFamily>, PluginError> {
//!         let address = target
//!             .get("__address__")
//!             .ok_or_else(|| PluginError::InvalidInput("no __address__".into()))?;
//!         let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
//!         Ok(vec![
//!             MetricFamilyBuilder::counter("demo_collections")
//!                 .help("Collections served by this instance.")
//!                 .sample([("address", address)], calls as f64)
//!                 .build(),
//!             MetricFamilyBuilder::histogram_family("demo_latency_seconds")
//!                 .unit("seconds")
//!                 .histogram([("params", params.len().to_string())], &[(0.1, 4.0), (1.0, 9.0)], 3.2, 10.0)
//!                 .build(),
//!         ])
//!     }
//! }
//!
//! ember_plugin_sdk::export_exporter!(Demo);
//! # fn main() {}
//! ```
//!
//! ## Remote storage
//!
//! Posts each batch as JSON lines; 5xx and network errors are retryable,
//! other failures permanent:
//!
//! ```
//! use ember_plugin_sdk::http::{HttpError, Method, Request};
//! use ember_plugin_sdk::{Config, PluginError, RemoteStorage, RetryableError, Series, WriteError};
//!
//! struct JsonLines {
//!     url: String,
//! }
//!
//! impl RemoteStorage for JsonLines {
//!     fn init(config: &Config) -> Result<Self, PluginError> {
//!         Ok(JsonLines { url: config.require("url")?.to_owned() })
//!     }
//!
//!     fn write(&self, batch: Vec<Series>) -> Result<(), WriteError> {
//!         let mut body = String::new();
//!         for series in &batch {
//!             let name = series.labels.iter().find(|l| l.name == "__name__").map_or("", |l| &l.value);
//!             for sample in &series.samples {
//!                 body.push_str(&format!("{{\"name\":{name:?},\"t\":{},\"v\":{}}}\n", sample.timestamp_ms, sample.value));
//!             }
//!         }
//!         let retry = |message: String| WriteError::Retryable(RetryableError { message, retry_after_ms: None });
//!         match Request::new(Method::Post, &self.url).body(body).send() {
//!             Ok(response) if response.is_success() => Ok(()),
//!             Ok(response) if response.status >= 500 => Err(retry(format!("status {}", response.status))),
//!             Ok(response) => Err(WriteError::Permanent(format!("status {}", response.status))),
//!             Err(error @ HttpError::Denied(_)) => Err(WriteError::Permanent(error.to_string())),
//!             Err(error) => Err(retry(error.to_string())),
//!         }
//!     }
//! }
//!
//! ember_plugin_sdk::export_remote_storage!(JsonLines);
//! # fn main() {}
//! ```
//!
//! The examples under `plugins/` in the repository are complete plugins of
//! each kind with tests: an HTTP inventory discoverer, an HTTP prober, an
//! InfluxDB adapter and a PII-hashing relabeler.
//!
//! # Compatibility
//!
//! A plugin carries the contract version it was built against in its
//! imports; the host links every version it supports and picks the world
//! from the component's own exports.
//!
//! | ember (host) | contract (WIT package) | ember-plugin-sdk | wit-bindgen | WASI the host links | notes |
//! | --- | --- | --- | --- | --- | --- |
//! | 0.1.x | `ember:plugin@0.1.0` | 0.1.x | 0.61 | 0.2.0 – 0.2.12 (wasmtime 48) | relabel batches packed (`label-batch`); the SDK's `http` module uses `wasip2` 2.0 (WASI 0.2.12) |
//!
//! Rules (see `wit/README.md`): patch releases of the contract change
//! documentation only; a minor release only adds (new worlds, interfaces or
//! functions), so plugins built for an older minor version of the same major
//! keep loading; before 1.0 a minor release may break, and the release notes
//! say how to migrate. The SDK's major.minor follows the contract's.
//!
//! # Instances and state
//!
//! The host calls `init` once on each new instance, then any number of calls
//! on that instance, one at a time. The value `init` returns lives for the
//! whole instance, so it is the place for parsed configuration and caches
//! (use interior mutability for state that changes between calls). After a
//! trap the host discards the instance and starts a new one, which runs
//! `init` again: nothing survives a crash.

pub mod bindings;
mod config;
mod discovery;
mod exporter;
pub mod http;
mod labels;
pub mod log;
mod relabeler;
mod remote_storage;

pub use config::Config;
pub use discovery::{Discoverer, TargetGroupBuilder};
pub use exporter::{Exporter, MetricFamilyBuilder};
pub use labels::{LabelSetBuilder, LabelSetExt, labels};
pub use relabeler::{Batch, LabelSetMut, Relabeler};
pub use remote_storage::RemoteStorage;

pub use bindings::relabeler::ember::plugin::types::{
    Label, LabelBatch, LabelMatcher, MatchOp, MetricFamily, MetricType, Param, PluginError,
    ReadQuery, RelabeledBatch, RetryableError, Sample, Series, TargetGroup, TimedValue, WriteError,
};

/// A set of labels; see [`LabelSetExt`] for reading and editing one.
pub type LabelSet = Vec<Label>;

/// Support for the export macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::sync::OnceLock;

    use crate::{Config, PluginError};

    /// Runs the plugin type's `init` once per instance and keeps its value.
    pub fn init<T: Send + Sync + 'static>(
        slot: &OnceLock<T>,
        make: impl FnOnce(&Config) -> Result<T, PluginError>,
    ) -> Result<(), PluginError> {
        if slot.get().is_some() {
            // The host calls init once per instance; a second call changes
            // nothing rather than replacing state other calls may be using.
            return Ok(());
        }
        let config = Config::load()?;
        let value = make(&config)?;
        // A wasm instance has one thread, so no other init can race this one.
        let _ = slot.set(value);
        Ok(())
    }

    /// The plugin's value, or an error when the host skipped `init`.
    pub fn state<T>(slot: &OnceLock<T>) -> Result<&T, PluginError> {
        slot.get().ok_or_else(|| {
            PluginError::Internal("the host called the plugin before init".to_owned())
        })
    }
}
