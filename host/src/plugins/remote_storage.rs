//! A `remote_write` destination that is a remote-storage plugin.
//!
//! The remote-write sender owns queues, sharding, retries and
//! `write_relabel_configs`; for an entry with `plugin: <name>` it sends each
//! batch through [`RemoteStoragePlugin::write`] instead of an HTTP request.
//! The answer says what to do with the batch:
//!
//! - [`WriteOutcome::Ok`]: written, drop it from the queue;
//! - [`WriteOutcome::Retryable`]: keep it and retry after the backoff (or
//!   `retry_after` when given). Besides the plugin's own retryable errors,
//!   every failure of the plugin call itself is retryable: a trap, a timeout,
//!   the plugin restarting (`retry_after` = the remaining restart backoff),
//!   disabled after repeated failures, not loaded (yet) or failed to load —
//!   the data is not at fault and a reload may fix the plugin;
//! - [`WriteOutcome::Permanent`]: drop the batch (the plugin refused it as
//!   such, or answered outside its contract), counting it as failed.
//!
//! The handle resolves the plugin by name on every call, so a configuration
//! reload that changes the plugin takes effect with the next batch, while a
//! batch in flight finishes on the old instance.
//!
//! ```no_run
//! # async fn demo(manager: std::sync::Arc<ember_host::plugins::PluginManager>) {
//! use ember_host::plugins::remote_storage::{RemoteStoragePlugin, Series, WriteOutcome};
//! let influx = RemoteStoragePlugin::new(manager, "influx");
//! let batch = vec![Series {
//!     labels: vec![("__name__".into(), "up".into()), ("job".into(), "node".into())],
//!     samples: vec![(1_700_000_000_000, 1.0)],
//! }];
//! match influx.write(batch).await {
//!     WriteOutcome::Ok => {}
//!     WriteOutcome::Retryable { retry_after, .. } => { /* back off, keep the batch */ let _ = retry_after; }
//!     WriteOutcome::Permanent(reason) => { /* drop the batch */ let _ = reason; }
//! }
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ember_plugin_host::{PluginCallError, WriteError};
pub use ember_plugin_host::{ReadQuery, Series};

use super::{PluginManager, PluginUseError};

/// What to do with a batch after [`RemoteStoragePlugin::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The plugin wrote the batch.
    Ok,
    /// Keep the batch and try again later.
    Retryable {
        /// What went wrong, for logs and metrics.
        message: String,
        /// How long to wait, when the plugin or the runtime knows.
        retry_after: Option<Duration>,
    },
    /// Drop the batch.
    Permanent(String),
}

/// A handle on one remote-storage plugin, by name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteStoragePlugin {
    manager: Arc<PluginManager>,
    name: String,
}

impl RemoteStoragePlugin {
    /// A handle on the declared plugin `name` (a `remote_write[].plugin`).
    pub fn new(manager: Arc<PluginManager>, name: impl Into<String>) -> RemoteStoragePlugin {
        RemoteStoragePlugin {
            manager,
            name: name.into(),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands `batch` to the plugin. Never blocks the async runtime; bounded
    /// by the plugin's `call_timeout`. Cancel-safe: dropping the future lets
    /// the call finish in the background.
    pub async fn write(&self, batch: Vec<Series>) -> WriteOutcome {
        let plugin = match self.manager.get(&self.name) {
            Ok(plugin) => plugin,
            Err(error) => return retryable(error.to_string(), None),
        };
        match self.manager.timed(&plugin, plugin.write(batch)).await {
            Ok(Ok(())) => WriteOutcome::Ok,
            Ok(Err(WriteError::Retryable {
                message,
                retry_after,
            })) => retryable(message, retry_after),
            Ok(Err(WriteError::Permanent(message))) => WriteOutcome::Permanent(message),
            Err(error) => classify(error),
        }
    }

    /// Asks the plugin to answer a remote-read query (`Unsupported` guest
    /// error when it cannot read).
    pub async fn read(&self, query: ReadQuery) -> Result<Vec<Series>, PluginUseError> {
        let plugin = self.manager.get(&self.name)?;
        self.manager.timed(&plugin, plugin.read(query)).await
    }
}

fn retryable(message: String, retry_after: Option<Duration>) -> WriteOutcome {
    WriteOutcome::Retryable {
        message,
        retry_after,
    }
}

fn classify(error: PluginUseError) -> WriteOutcome {
    let message = error.to_string();
    match error {
        PluginUseError::Call {
            source: PluginCallError::BackingOff { retry_in },
            ..
        } => retryable(message, Some(retry_in)),
        PluginUseError::Call {
            source:
                PluginCallError::InvalidOutput(_)
                | PluginCallError::WrongKind { .. }
                | PluginCallError::Guest(_),
            ..
        } => WriteOutcome::Permanent(message),
        _ => retryable(message, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(source: PluginCallError) -> PluginUseError {
        PluginUseError::Call {
            name: "influx".into(),
            source,
        }
    }

    #[test]
    fn call_failures_keep_the_batch_and_contract_breaches_drop_it() {
        assert!(matches!(
            classify(call(PluginCallError::Trap("boom".into()))),
            WriteOutcome::Retryable {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            classify(call(PluginCallError::Disabled)),
            WriteOutcome::Retryable { .. }
        ));
        assert_eq!(
            classify(call(PluginCallError::BackingOff {
                retry_in: Duration::from_millis(300)
            })),
            WriteOutcome::Retryable {
                message: "plugin \"influx\": plugin is restarting after a failure; retry in 300ms"
                    .into(),
                retry_after: Some(Duration::from_millis(300)),
            }
        );
        assert!(matches!(
            classify(PluginUseError::Loading("influx".into())),
            WriteOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(call(PluginCallError::InvalidOutput("x".into()))),
            WriteOutcome::Permanent(_)
        ));
    }
}
