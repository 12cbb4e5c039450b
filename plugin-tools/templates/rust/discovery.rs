//! {{name}}: an Ember discovery plugin.
//!
//! Configuration (the plugin's `config:` map):
//! - `targets`: comma-separated `host:port` addresses (required).

use ember_plugin_sdk::{
    Config, Discoverer, PluginError, TargetGroup, TargetGroupBuilder, export_discoverer, log,
};

struct Plugin {
    targets: Vec<String>,
}

impl Discoverer for Plugin {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let targets: Vec<String> = config.list("targets").into_iter().map(str::to_owned).collect();
        if targets.is_empty() {
            return Err(PluginError::InvalidConfig("set `targets`".to_owned()));
        }
        log::info(&format!("{} targets configured", targets.len()));
        Ok(Plugin { targets })
    }

    fn refresh(&self) -> Result<Vec<TargetGroup>, PluginError> {
        let mut group = TargetGroupBuilder::new("{{name}}");
        for (index, address) in self.targets.iter().enumerate() {
            group = group.target(address.as_str(), [("__meta_{{ident}}_index", index.to_string())]);
        }
        Ok(vec![group.build()])
    }
}

export_discoverer!(Plugin);
