//! {{name}}: an Ember exporter plugin.
//!
//! Configuration (the plugin's `config:` map):
//! - `greeting`: a label value for `{{ident}}_info` (default `hello`).

use ember_plugin_sdk::{
    Config, Exporter, LabelSet, LabelSetExt, MetricFamily, MetricFamilyBuilder, Param,
    PluginError, export_exporter,
};

struct Plugin {
    greeting: String,
}

impl Exporter for Plugin {
    fn init(config: &Config) -> Result<Self, PluginError> {
        Ok(Plugin {
            greeting: config.get("greeting").unwrap_or("hello").to_owned(),
        })
    }

    fn collect(&self, target: LabelSet, params: Vec<Param>) -> Result<Vec<MetricFamily>, PluginError> {
        let address = target.get("__address__").unwrap_or_default();
        Ok(vec![
            MetricFamilyBuilder::new("{{ident}}", ember_plugin_sdk::MetricType::Info)
                .help("Static information about this target.")
                .sample([("greeting", self.greeting.as_str()), ("address", address)], 1.0)
                .build(),
            MetricFamilyBuilder::gauge("{{ident}}_params")
                .help("Number of scrape parameters received.")
                .sample([] as [(&str, &str); 0], params.len() as f64)
                .build(),
        ])
    }
}

export_exporter!(Plugin);
