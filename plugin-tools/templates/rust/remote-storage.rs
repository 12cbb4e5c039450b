//! {{name}}: an Ember remote-storage plugin.
//!
//! Logs a summary of each batch; replace `write` with the call to your
//! storage (see `ember_plugin_sdk::http`). Configuration: none.

use ember_plugin_sdk::{Config, PluginError, RemoteStorage, Series, WriteError, export_remote_storage, log};

struct Plugin;

impl RemoteStorage for Plugin {
    fn init(_config: &Config) -> Result<Self, PluginError> {
        Ok(Plugin)
    }

    fn write(&self, batch: Vec<Series>) -> Result<(), WriteError> {
        let samples: usize = batch.iter().map(|series| series.samples.len()).sum();
        log::info(&format!("received {} series, {samples} samples", batch.len()));
        Ok(())
    }
}

export_remote_storage!(Plugin);
