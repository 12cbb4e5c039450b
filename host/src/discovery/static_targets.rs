//! `static_configs`: fixed target groups.

use ember_config::StaticConfig;

use super::{Discoverer, DiscovererFuture, TargetGroup, UpdateSender};

/// Discovers the `static_configs` of one job: one group per entry, with source
/// `"0"`, `"1"`, ... in the order written, as Prometheus numbers them.
///
/// It sends its groups once and returns.
#[derive(Debug, Clone)]
pub struct StaticDiscoverer {
    groups: Vec<TargetGroup>,
}

impl StaticDiscoverer {
    /// A discoverer for all the `static_configs` of one job or Alertmanager set.
    pub fn new(configs: &[StaticConfig]) -> Self {
        let groups = configs
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let mut group = TargetGroup::from_addresses(index.to_string(), &config.targets);
                group.labels = config.labels.clone();
                group
            })
            .collect();
        Self { groups }
    }

    /// The groups it will send.
    pub fn groups(&self) -> &[TargetGroup] {
        &self.groups
    }
}

impl Discoverer for StaticDiscoverer {
    fn mechanism(&self) -> &str {
        "static"
    }

    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture {
        Box::pin(async move {
            // A closed channel means the manager no longer wants the groups.
            let _ = updates.send(self.groups).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[tokio::test]
    async fn sends_one_group_per_static_config_numbered_from_zero() {
        let configs = vec![
            StaticConfig {
                targets: vec!["a:1".into(), "b:2".into()],
                labels: BTreeMap::from([("env".into(), "prod".into())]),
            },
            StaticConfig {
                targets: vec!["c:3".into()],
                labels: BTreeMap::new(),
            },
        ];
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        Box::new(StaticDiscoverer::new(&configs)).run(tx).await;
        let groups = rx.recv().await.expect("one update");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].source, "0");
        assert_eq!(groups[0].targets.len(), 2);
        assert_eq!(groups[0].targets[1]["__address__"], "b:2");
        assert_eq!(groups[0].labels["env"], "prod");
        assert_eq!(groups[1].source, "1");
        assert_eq!(groups[1].targets[0]["__address__"], "c:3");
        assert!(rx.recv().await.is_none(), "static discovery sends once");
    }
}
