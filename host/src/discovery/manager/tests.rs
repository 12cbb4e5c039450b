use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ember_config::{PluginSdConfig, UnsupportedSdConfig};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::*;
use crate::discovery::test_support::{PATIENCE, addresses, eventually, metrics, write_atomically};
use crate::discovery::{DiscovererFuture, UpdateSender};

const FAST: Duration = Duration::from_millis(20);

fn manager(registry: &Registry, update_interval: Duration) -> DiscoveryManager {
    DiscoveryManager::new(
        "scrape",
        registry,
        metrics(),
        ManagerOptions { update_interval },
    )
    .expect("manager")
}

fn static_sd(targets: &[&str]) -> ServiceDiscoveryConfigs {
    ServiceDiscoveryConfigs {
        static_configs: vec![StaticConfig {
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            labels: BTreeMap::new(),
        }],
        ..ServiceDiscoveryConfigs::default()
    }
}

fn sets<const N: usize>(
    entries: [(&str, ServiceDiscoveryConfigs); N],
) -> HashMap<String, ServiceDiscoveryConfigs> {
    entries
        .into_iter()
        .map(|(name, configs)| (name.to_owned(), configs))
        .collect()
}

/// The addresses of every target of `set`, sorted; `None` if the set is absent.
fn set_addresses(published: &TargetSets, set: &str) -> Option<Vec<String>> {
    published.get(set).map(|groups| {
        let mut found: Vec<String> = groups
            .iter()
            .flat_map(|group| addresses(group).into_iter().map(str::to_owned))
            .collect();
        found.sort();
        found
    })
}

/// Waits for a publication for which `accept` holds.
async fn publication(
    rx: &mut watch::Receiver<TargetSets>,
    what: &str,
    mut accept: impl FnMut(&TargetSets) -> bool,
) -> TargetSets {
    let deadline = Instant::now() + PATIENCE;
    loop {
        {
            let current = rx.borrow_and_update();
            if accept(&current) {
                return current.clone();
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("manager shut down while waiting for {what}"),
            Err(_) => {
                panic!("no matching publication within {PATIENCE:?} while waiting for {what}")
            }
        }
    }
}

/// A discoverer the test drives: it forwards what the test sends, counts
/// how often it was started, and records when its future is dropped.
struct Scripted {
    script: tokio::sync::mpsc::UnboundedReceiver<Vec<TargetGroup>>,
    starts: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

struct Script {
    sender: UnboundedSender<Vec<TargetGroup>>,
    starts: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Script {
    fn send(&self, groups: Vec<TargetGroup>) {
        self.sender.send(groups).expect("discoverer running");
    }
}

fn scripted() -> (Scripted, Script) {
    let (sender, script) = unbounded_channel();
    let starts = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    (
        Scripted {
            script,
            starts: starts.clone(),
            dropped: dropped.clone(),
        },
        Script {
            sender,
            starts,
            dropped,
        },
    )
}

/// Sets a flag when dropped, i.e. when the discoverer's future is dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Discoverer for Scripted {
    fn mechanism(&self) -> &str {
        "scripted"
    }

    fn run(self: Box<Self>, updates: UpdateSender) -> DiscovererFuture {
        let Scripted {
            mut script,
            starts,
            dropped,
        } = *self;
        Box::pin(async move {
            let _flag = DropFlag(dropped);
            starts.fetch_add(1, Ordering::SeqCst);
            while let Some(groups) = script.recv().await {
                if updates.send(groups).await.is_err() {
                    return;
                }
            }
            // Stay running, as a real discoverer would.
            std::future::pending::<()>().await;
        })
    }
}

fn external(identity: &str, discoverer: Scripted) -> ProviderConfig {
    ProviderConfig::External {
        mechanism: "scripted".to_owned(),
        identity: identity.to_owned(),
        discoverer: Box::new(discoverer),
    }
}

fn providers<const N: usize>(
    entries: [(&str, Vec<ProviderConfig>); N],
) -> HashMap<String, Vec<ProviderConfig>> {
    entries
        .into_iter()
        .map(|(name, configs)| (name.to_owned(), configs))
        .collect()
}

#[tokio::test]
async fn publishes_static_and_file_targets_per_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), r#"[{"targets": ["file:1"]}]"#).unwrap();
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let file_sd = ServiceDiscoveryConfigs {
        file_sd_configs: vec![FileSdConfig {
            files: vec![dir.path().join("*.json")],
            refresh_interval: Duration::from_secs(3600),
        }],
        ..ServiceDiscoveryConfigs::default()
    };
    let summary = manager.apply(sets([
        ("node", static_sd(&["s:1", "s:2"])),
        ("files", file_sd),
    ]));
    assert_eq!(
        summary,
        ApplySummary {
            started: 2,
            ..ApplySummary::default()
        }
    );
    let published = publication(&mut rx, "both sets", |sets| {
        set_addresses(sets, "files").is_some_and(|found| !found.is_empty())
    })
    .await;
    assert_eq!(set_addresses(&published, "node").unwrap(), ["s:1", "s:2"]);
    assert_eq!(set_addresses(&published, "files").unwrap(), ["file:1"]);
    let gauge = &manager.shared.metrics.discovered_targets;
    assert_eq!(gauge.with_label_values(&["node"]).get(), 2);
    assert_eq!(gauge.with_label_values(&["files"]).get(), 1);
}

#[tokio::test]
async fn unchanged_providers_keep_running_across_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.json");
    std::fs::write(&file, r#"[{"targets": ["file:1"]}]"#).unwrap();
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let file_sd = ServiceDiscoveryConfigs {
        file_sd_configs: vec![FileSdConfig {
            files: vec![file.clone()],
            refresh_interval: Duration::from_secs(3600),
        }],
        ..ServiceDiscoveryConfigs::default()
    };
    manager.apply(sets([
        ("node", static_sd(&["s:1"])),
        ("files", file_sd.clone()),
    ]));
    publication(&mut rx, "the first targets", |sets| {
        set_addresses(sets, "files").is_some_and(|found| found == ["file:1"])
            && set_addresses(sets, "node").is_some_and(|found| found == ["s:1"])
    })
    .await;
    let received = manager.shared.metrics.received_updates.get();

    // A restarted provider would send its initial state again; kept ones
    // have no reason to send anything (the file provider re-reads hourly).
    let (discoverer, script) = scripted();
    let summary = manager.apply_providers(providers([
        ("node", ProviderConfig::from_configs(&static_sd(&["s:1"]))),
        ("files", ProviderConfig::from_configs(&file_sd)),
        ("new", vec![external("x", discoverer)]),
    ]));
    assert_eq!(
        summary,
        ApplySummary {
            started: 1,
            kept: 2,
            ..ApplySummary::default()
        }
    );
    script.send(vec![TargetGroup::from_addresses("x", ["new:1"])]);
    let published = publication(&mut rx, "the new set", |sets| {
        set_addresses(sets, "new").is_some_and(|found| found == ["new:1"])
    })
    .await;
    assert_eq!(set_addresses(&published, "node").unwrap(), ["s:1"]);
    assert_eq!(set_addresses(&published, "files").unwrap(), ["file:1"]);
    assert_eq!(
        manager.shared.metrics.received_updates.get(),
        received + 1,
        "only the new provider sent anything"
    );

    // An identical external provider is kept too; the new discoverer is not run.
    let (again, unused) = scripted();
    let summary = manager.apply_providers(providers([("new", vec![external("x", again)])]));
    assert_eq!(
        summary,
        ApplySummary {
            kept: 1,
            stopped: 2,
            ..ApplySummary::default()
        }
    );
    publication(&mut rx, "the smaller configuration", |sets| sets.len() == 1).await;
    assert_eq!(script.starts.load(Ordering::SeqCst), 1);
    assert_eq!(unused.starts.load(Ordering::SeqCst), 0);
    assert!(!script.dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn sets_with_identical_configs_share_one_provider() {
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let summary = manager.apply(sets([
        ("a", static_sd(&["same:1"])),
        ("b", static_sd(&["same:1"])),
    ]));
    assert_eq!(summary.started, 1);
    let published = publication(&mut rx, "both sets", |sets| {
        set_addresses(sets, "a").is_some_and(|found| !found.is_empty())
    })
    .await;
    assert_eq!(set_addresses(&published, "a").unwrap(), ["same:1"]);
    assert_eq!(set_addresses(&published, "b").unwrap(), ["same:1"]);
}

#[tokio::test(start_paused = true)]
async fn bursts_of_updates_are_published_once_per_interval() {
    let registry = Registry::new();
    let interval = Duration::from_secs(5);
    let manager = manager(&registry, interval);
    let mut rx = manager.subscribe();
    let start = Instant::now();
    let (discoverer, script) = scripted();
    manager.apply_providers(providers([("burst", vec![external("b", discoverer)])]));
    for index in 0..20 {
        script.send(vec![TargetGroup::from_addresses(
            "g",
            [format!("t:{index}")],
        )]);
    }

    rx.changed().await.expect("a publication");
    assert_eq!(
        set_addresses(&rx.borrow_and_update(), "burst").unwrap(),
        ["t:19"]
    );
    assert_eq!(
        Instant::now() - start,
        interval,
        "published on the first tick"
    );
    assert_eq!(manager.shared.metrics.updates.get(), 1);
    assert_eq!(manager.shared.metrics.received_updates.get(), 20);

    // A later change waits for the next tick of the same clock.
    tokio::time::sleep(Duration::from_secs(1)).await;
    script.send(vec![TargetGroup::from_addresses("g", ["later:1"])]);
    script.send(vec![TargetGroup::from_addresses("h", ["later:2"])]);
    rx.changed().await.expect("a second publication");
    assert_eq!(
        set_addresses(&rx.borrow_and_update(), "burst").unwrap(),
        ["later:1", "later:2"]
    );
    assert_eq!(Instant::now() - start, interval * 2);
    assert_eq!(manager.shared.metrics.updates.get(), 2);

    // An update that changes nothing is not published.
    script.send(vec![TargetGroup::from_addresses("g", ["later:1"])]);
    let counter = manager.shared.metrics.received_updates.clone();
    eventually("the repeated update received", || counter.get() == 23).await;
    tokio::time::sleep(interval * 2).await;
    assert!(!rx.has_changed().unwrap());
    assert_eq!(manager.shared.metrics.updates.get(), 2);
}

#[tokio::test]
async fn removed_sets_disappear_and_their_providers_stop() {
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let (discoverer, script) = scripted();
    manager.apply_providers(providers([
        ("kept", ProviderConfig::from_configs(&static_sd(&["k:1"]))),
        ("removed", vec![external("r", discoverer)]),
        (
            "emptied",
            ProviderConfig::from_configs(&static_sd(&["e:1"])),
        ),
    ]));
    script.send(vec![TargetGroup::from_addresses("r", ["r:1"])]);
    publication(&mut rx, "all three sets", |sets| {
        set_addresses(sets, "removed").is_some_and(|found| found == ["r:1"])
            && set_addresses(sets, "emptied").is_some_and(|found| found == ["e:1"])
    })
    .await;

    let summary = manager.apply(sets([
        ("kept", static_sd(&["k:1"])),
        ("emptied", ServiceDiscoveryConfigs::default()),
    ]));
    assert_eq!(
        summary,
        ApplySummary {
            kept: 1,
            stopped: 2,
            ..ApplySummary::default()
        }
    );
    let published = publication(&mut rx, "the removal", |sets| !sets.contains_key("removed")).await;
    assert_eq!(published.len(), 2);
    assert_eq!(set_addresses(&published, "kept").unwrap(), ["k:1"]);
    // A set without providers is published with no groups, so its consumer
    // drops the targets it had.
    assert_eq!(published["emptied"], []);
    let dropped = script.dropped.clone();
    eventually("the removed provider's discoverer dropped", || {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    let gathered = registry.gather();
    let family = gathered
        .iter()
        .find(|family| family.name() == "ember_sd_discovered_targets")
        .expect("gauge registered");
    let configs: Vec<&str> = family
        .get_metric()
        .iter()
        .flat_map(|metric| metric.get_label())
        .filter(|label| label.name() == "config")
        .map(|label| label.value())
        .collect();
    assert!(!configs.contains(&"removed"), "{configs:?}");
}

#[tokio::test]
async fn empty_groups_remove_their_sources_targets() {
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let (discoverer, script) = scripted();
    manager.apply_providers(providers([("s", vec![external("e", discoverer)])]));
    script.send(vec![
        TargetGroup::from_addresses("one", ["a:1"]),
        TargetGroup::from_addresses("two", ["b:1"]),
    ]);
    publication(&mut rx, "two groups", |sets| {
        set_addresses(sets, "s").is_some_and(|found| found == ["a:1", "b:1"])
    })
    .await;
    script.send(vec![TargetGroup::empty("one")]);
    let published = publication(&mut rx, "one group left", |sets| {
        set_addresses(sets, "s").is_some_and(|found| found == ["b:1"])
    })
    .await;
    assert_eq!(published["s"].len(), 1);
    assert_eq!(published["s"][0].source, "two");
}

#[tokio::test]
async fn unbuildable_unsupported_and_plugin_configs_find_no_targets() {
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let mut http_client = ember_config::HttpClientConfig {
        basic_auth: None,
        authorization: None,
        oauth2: None,
        follow_redirects: true,
        enable_http2: true,
        tls: Default::default(),
        proxy: Default::default(),
        http_headers: BTreeMap::new(),
    };
    http_client.tls.ca = Some(ember_config::ValueSource::File(
        "/nonexistent/ca.pem".into(),
    ));
    let configs = ServiceDiscoveryConfigs {
        http_sd_configs: vec![HttpSdConfig {
            url: reqwest::Url::parse("http://127.0.0.1:1/sd").unwrap(),
            refresh_interval: Duration::from_secs(60),
            http_client,
        }],
        plugin_sd_configs: vec![PluginSdConfig {
            plugin: "inventory".to_owned(),
            config: Default::default(),
            refresh_interval: Duration::from_secs(60),
        }],
        unsupported: vec![UnsupportedSdConfig {
            mechanism: "kubernetes_sd_configs".to_owned(),
            config: Default::default(),
        }],
        ..ServiceDiscoveryConfigs::default()
    };
    let summary = manager.apply(sets([("odd", configs), ("plain", static_sd(&["p:1"]))]));
    assert_eq!(
        summary,
        ApplySummary {
            started: 1,
            failed: 1,
            ..ApplySummary::default()
        }
    );
    assert_eq!(manager.shared.metrics.failed_configs.get(), 1);
    let published = publication(&mut rx, "the plain set", |sets| {
        set_addresses(sets, "plain").is_some_and(|found| !found.is_empty())
    })
    .await;
    assert_eq!(published["odd"], []);
}

#[tokio::test]
async fn shutdown_stops_providers_and_closes_the_channel() {
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    let (discoverer, script) = scripted();
    manager.apply_providers(providers([("s", vec![external("x", discoverer)])]));
    script.send(vec![TargetGroup::from_addresses("g", ["a:1"])]);
    publication(&mut rx, "the target", |sets| {
        set_addresses(sets, "s").is_some_and(|found| found == ["a:1"])
    })
    .await;

    manager.shutdown();
    let closed =
        tokio::time::timeout(PATIENCE, async { while rx.changed().await.is_ok() {} }).await;
    assert!(closed.is_ok(), "the channel closes");
    let dropped = script.dropped.clone();
    eventually("the discoverer dropped", || dropped.load(Ordering::SeqCst)).await;
    let (later, unused) = scripted();
    assert_eq!(
        manager.apply_providers(providers([("s", vec![external("y", later)])])),
        ApplySummary::default()
    );
    assert_eq!(unused.starts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn two_managers_share_a_registry() {
    let registry = Registry::new();
    let sd_metrics = DiscovererMetrics::register(&registry).unwrap();
    let scrape = DiscoveryManager::new(
        "scrape",
        &registry,
        sd_metrics.clone(),
        ManagerOptions::default(),
    )
    .unwrap();
    let notify = DiscoveryManager::new(
        "notify",
        &registry,
        sd_metrics.clone(),
        ManagerOptions::default(),
    )
    .unwrap();
    assert!(
        DiscoveryManager::new("scrape", &registry, sd_metrics, ManagerOptions::default()).is_err(),
        "a second manager with the same name clashes"
    );
    drop((scrape, notify));
}

#[test]
fn a_manager_needs_a_runtime() {
    let registry = Registry::new();
    let error = DiscoveryManager::new("scrape", &registry, metrics(), ManagerOptions::default())
        .unwrap_err();
    assert!(matches!(error, DiscoveryError::NoRuntime), "{error}");
}

#[tokio::test]
async fn file_changes_flow_through_to_publications() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yml");
    std::fs::write(&file, "- targets: [before:1]\n").unwrap();
    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    manager.apply(sets([(
        "job",
        ServiceDiscoveryConfigs {
            file_sd_configs: vec![FileSdConfig {
                files: vec![file.clone()],
                refresh_interval: Duration::from_secs(3600),
            }],
            ..ServiceDiscoveryConfigs::default()
        },
    )]));
    publication(&mut rx, "the file's target", |sets| {
        set_addresses(sets, "job").is_some_and(|found| found == ["before:1"])
    })
    .await;
    write_atomically(&file, "- targets: [after:1, after:2]\n");
    publication(&mut rx, "the changed file's targets", |sets| {
        set_addresses(sets, "job").is_some_and(|found| found == ["after:1", "after:2"])
    })
    .await;
    std::fs::remove_file(&file).unwrap();
    publication(&mut rx, "no targets after deletion", |sets| {
        set_addresses(sets, "job").is_some_and(|found| found.is_empty())
    })
    .await;
}

#[tokio::test]
async fn a_prometheus_configuration_discovers_its_targets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("targets")).unwrap();
    std::fs::write(
        dir.path().join("targets/web.yml"),
        "- targets: ['web-1:8080', 'web-2:8080']\n  labels: {tier: front}\n",
    )
    .unwrap();
    let path = dir.path().join("prometheus.yml");
    std::fs::write(
        &path,
        r#"
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['localhost:9100']
        labels: {env: dev}
  - job_name: web
    file_sd_configs:
      - files: ['targets/*.yml']
  - job_name: k8s
    kubernetes_sd_configs:
      - role: pod
"#,
    )
    .unwrap();
    let config = ember_config::load_file(&path).expect("valid configuration");

    let registry = Registry::new();
    let manager = manager(&registry, FAST);
    let mut rx = manager.subscribe();
    manager.apply(
        config
            .scrape_configs
            .iter()
            .map(|job| (job.job_name.clone(), job.service_discovery.clone()))
            .collect(),
    );
    let published = publication(&mut rx, "the file targets", |sets| {
        set_addresses(sets, "web").is_some_and(|found| !found.is_empty())
    })
    .await;
    assert_eq!(
        set_addresses(&published, "web").unwrap(),
        ["web-1:8080", "web-2:8080"]
    );
    let web = &published["web"][0];
    assert_eq!(web.labels["tier"], "front");
    // Relative patterns are resolved against the configuration's directory.
    assert_eq!(
        web.labels[crate::discovery::FILEPATH_LABEL],
        dir.path().join("targets/web.yml").display().to_string()
    );
    assert_eq!(
        set_addresses(&published, "node").unwrap(),
        ["localhost:9100"]
    );
    assert_eq!(published["node"][0].labels["env"], "dev");
    assert_eq!(published["k8s"], []);
}

#[tokio::test]
async fn a_stopped_file_provider_releases_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.json");
    std::fs::write(&file, r#"[{"targets": ["a:1"]}]"#).unwrap();
    let registry = Registry::new();
    let sd_metrics = DiscovererMetrics::register(&registry).unwrap();
    let manager = DiscoveryManager::new(
        "scrape",
        &registry,
        sd_metrics.clone(),
        ManagerOptions {
            update_interval: FAST,
        },
    )
    .unwrap();
    let mut rx = manager.subscribe();
    let file_sd = ServiceDiscoveryConfigs {
        file_sd_configs: vec![FileSdConfig {
            files: vec![file.clone()],
            refresh_interval: Duration::from_secs(3600),
        }],
        ..ServiceDiscoveryConfigs::default()
    };
    manager.apply(sets([("job", file_sd)]));
    publication(&mut rx, "the file's target", |sets| {
        set_addresses(sets, "job").is_some_and(|found| found == ["a:1"])
    })
    .await;
    let tracked = || {
        use prometheus::core::Collector;
        sd_metrics.file_mtime_seconds.collect()[0]
            .get_metric()
            .len()
    };
    assert_eq!(tracked(), 1);

    // Stopping the provider drops its discoverer, watcher and file state.
    manager.apply(sets([("job", ServiceDiscoveryConfigs::default())]));
    eventually("the file's mtime forgotten", || tracked() == 0).await;
    let published = publication(&mut rx, "no targets", |sets| {
        set_addresses(sets, "job").is_some_and(|found| found.is_empty())
    })
    .await;
    assert_eq!(published["job"], []);
}
