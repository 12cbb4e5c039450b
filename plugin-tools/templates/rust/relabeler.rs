//! {{name}}: an Ember relabel plugin.
//!
//! Configuration (the plugin's `config:` map):
//! - `drop_label`: series carrying this label are dropped (default `drop`);
//! - `add`: a `name=value` label added to every other series (optional).

use ember_plugin_sdk::{Config, LabelSetMut, PluginError, Relabeler, export_relabeler};

struct Plugin {
    drop_label: String,
    add: Option<(String, String)>,
}

impl Relabeler for Plugin {
    fn init(config: &Config) -> Result<Self, PluginError> {
        let add = match config.get("add") {
            None => None,
            Some(pair) => {
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    PluginError::InvalidConfig(format!("add: {pair:?} is not name=value"))
                })?;
                Some((name.trim().to_owned(), value.trim().to_owned()))
            }
        };
        Ok(Plugin {
            drop_label: config.get("drop_label").unwrap_or("drop").to_owned(),
            add,
        })
    }

    fn relabel_one(&self, labels: &mut LabelSetMut<'_>) {
        if labels.get(&self.drop_label).is_some() {
            labels.drop_set();
        } else if let Some((name, value)) = &self.add {
            labels.set(name, value);
        }
    }
}

export_relabeler!(Plugin);
