//! A discovery plugin for the host's tests.
//!
//! Configuration: `targets`, a comma-separated list of `host:port`; `env`, a
//! label value for the group. `refresh` returns one group, `fixture/static`,
//! with one target per address and a `__meta_fixture_index` label each, plus
//! the number of refreshes this instance served as `__meta_fixture_refresh`.
//! With no targets configured, `refresh` fails with `unavailable`.

use std::sync::atomic::{AtomicU64, Ordering};

use ember_plugin_sdk::{
    Config, Discoverer, PluginError, TargetGroup, TargetGroupBuilder, export_discoverer,
};

struct Fixture {
    targets: Vec<String>,
    env: String,
    refreshes: AtomicU64,
}

impl Discoverer for Fixture {
    fn init(config: &Config) -> Result<Self, PluginError> {
        Ok(Fixture {
            targets: config
                .list("targets")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            env: config.get("env").unwrap_or("test").to_owned(),
            refreshes: AtomicU64::new(0),
        })
    }

    fn refresh(&self) -> Result<Vec<TargetGroup>, PluginError> {
        let refresh = self.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
        if self.targets.is_empty() {
            return Err(PluginError::Unavailable("no targets configured".to_owned()));
        }
        let mut group = TargetGroupBuilder::new("fixture/static").label("env", &self.env);
        for (index, address) in self.targets.iter().enumerate() {
            group = group.target(
                address,
                [
                    ("__meta_fixture_index", index.to_string()),
                    ("__meta_fixture_refresh", refresh.to_string()),
                ],
            );
        }
        Ok(vec![group.build()])
    }
}

export_discoverer!(Fixture);
