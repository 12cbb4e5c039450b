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
//! - [`LabelSetExt`] to read and edit plain label sets,
//!   [`MetricFamilyBuilder`] and [`TargetGroupBuilder`] to build an exporter's
//!   or a discoverer's answer;
//! - [`log`], which writes to the server's log.
//!
//! # Example
//!
//! A relabel plugin that drops every series whose `env` label equals the
//! configured `drop_env`:
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
//! Build it as a `cdylib` for `wasm32-unknown-unknown` (or `wasm32-wasip2`);
//! the host turns the core module into a component when it loads it. The
//! repository's `scripts/build-plugins.sh` does this for the plugins under
//! `plugins/`.
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
pub use labels::{LabelSetExt, labels};
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
