//! The plugin host: runs Ember's WebAssembly plugins in a sandbox.
//!
//! Plugins are WebAssembly components implementing one world of the WIT
//! package `ember:plugin` (`wit/` at the repository root): `relabeler`,
//! `exporter`, `discovery` or `remote-storage`. This crate owns wasmtime and
//! gives the server a small, typed API:
//!
//! - [`PluginRuntime`]: one engine (with epoch interruption driven by a
//!   background thread), one linker, an on-disk compile cache. Load plugins
//!   with [`PluginRuntime::load`] from a [`PluginSpec`].
//! - [`Plugin`]: a loaded plugin with typed async calls
//!   ([`relabel`](Plugin::relabel), [`collect`](Plugin::collect),
//!   [`refresh`](Plugin::refresh), [`write`](Plugin::write),
//!   [`read`](Plugin::read)) and [`status`](Plugin::status).
//! - [`PackedBatch`] / [`PackedAnswer`]: relabel batches packed from the
//!   caller's own label storage ([`Plugin::relabel_packed`]), for the
//!   scrape path.
//! - [`Limits`]: deadline, memory cap, concurrency, restart policy.
//! - [`Capabilities`]: what the plugin may reach (HTTP hosts, environment
//!   variables, one read-only directory); nothing by default.
//! - [`PluginError`] (loading) and [`PluginCallError`] (calling).
//!
//! Containment: a plugin that loops is interrupted at its deadline; one that
//! allocates without end hits its memory cap; one that traps loses its
//! instance, which is restarted with backoff, and is disabled after repeated
//! failures. None of this affects other plugins or the calling task: calls
//! run on tokio's blocking pool. See [`plugin`](crate::Plugin) for the
//! instance, failure and deadline model and [`capabilities`] for the
//! sandbox's doors.
//!
//! # Example
//!
//! ```no_run
//! use ember_plugin_host::{
//!     Limits, PluginKind, PluginRuntime, PluginSource, PluginSpec, RuntimeConfig,
//! };
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = PluginRuntime::new(RuntimeConfig {
//!     cache_dir: Some("data/plugin-cache".into()),
//!     ..RuntimeConfig::default()
//! })?;
//! let spec = PluginSpec::new(
//!     "hash-pii",
//!     PluginKind::Relabeler,
//!     PluginSource::Path("target/plugins/relabel-hash-pii.wasm".into()),
//! )
//! .with_config([("labels", "email")])
//! .with_limits(Limits::default());
//! let plugin = runtime.load(spec).await?;
//! let batch = vec![vec![("email".to_owned(), "ann@example.com".to_owned())]];
//! let relabeled = plugin.relabel(batch).await?;
//! assert_ne!(relabeled[0].as_ref().unwrap()[0].1, "ann@example.com");
//! # Ok(())
//! # }
//! ```
//!
//! # Why wasmtime 48
//!
//! The workspace builds with rustc 1.95; wasmtime 49 needs 1.96 and 50 needs
//! 1.97, so 48.0.x is the newest usable release. Compiled artifacts are tied
//! to the exact wasmtime version and configuration (see the cache module).

mod bindings;
mod cache;
pub mod capabilities;
mod error;
mod metrics;
mod packed;
mod plugin;
mod runtime;
mod state;
mod storage;

use std::time::Duration;

pub use capabilities::{Capabilities, CapabilityError, HostPattern, ReadOnlyDir};
pub use error::{GuestError, PluginCallError, PluginError};
pub use metrics::{Labels, MetricFamily, MetricType, Sample};
pub use packed::{AnswerSet, PackedAnswer, PackedBatch};
pub use plugin::{Plugin, PluginKind, PluginState, PluginStatus};
pub use runtime::{PluginRuntime, PluginSource, PluginSpec, RuntimeConfig};
pub use storage::{MatchOp, ReadQuery, Series, TargetGroup, WriteError};

/// What one plugin may consume, and how its failures are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The longest one call (or one instantiation with `init`) may run.
    pub call_timeout: Duration,
    /// Extra time allowed for a guest blocked in a host call (an HTTP
    /// request) before the caller gets a timeout anyway.
    pub host_call_grace: Duration,
    /// Linear memory per instance, in bytes.
    pub max_memory_bytes: usize,
    /// Table elements per table (function references).
    pub max_table_elements: usize,
    /// Core instances per component instance (a component is several core
    /// modules plus adapters and shims).
    pub max_core_instances: usize,
    /// Instances kept, and so calls served at once.
    pub max_instances: usize,
    /// Bytes of strings one call may return (label names and values, sample
    /// names, help texts).
    pub max_output_bytes: usize,
    /// Log lines one call may write; more are dropped.
    pub max_log_lines_per_call: u32,
    /// Failures in a row (traps, timeouts, out-of-memory, failed restarts)
    /// after which the plugin is disabled.
    pub max_consecutive_failures: u32,
    /// Wait before the first restart; doubles with each failure in a row.
    pub restart_backoff: Duration,
    /// Longest wait between restarts.
    pub max_restart_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            call_timeout: Duration::from_secs(5),
            host_call_grace: Duration::from_secs(1),
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_core_instances: 100,
            max_instances: 2,
            max_output_bytes: 256 << 20,
            max_log_lines_per_call: 100,
            max_consecutive_failures: 5,
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_secs(30),
        }
    }
}
