//! The manager with the real test plugins from `scripts/build-plugins.sh`
//! (skipped with a message when they are missing).

use std::path::{Path, PathBuf};

use super::*;

fn plugin_file(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh",
            path.display()
        );
        None
    }
}

fn config(dir: &Path, plugins: &str) -> Config {
    let text = format!("plugins:\n{plugins}");
    ember_config::parse(&text, &dir.join("ember.yml")).expect("configuration")
}

fn relabeler(name: &str, path: &Path, extra: &str) -> String {
    format!(
        "  - name: {name}\n    kind: relabeler\n    path: {}\n{extra}",
        path.display()
    )
}

async fn echo(manager: &PluginManager, name: &str) -> Vec<Option<ember_plugin_host::Labels>> {
    let plugin = manager.get(name).expect("plugin loaded");
    manager
        .timed(
            &plugin,
            plugin.relabel(vec![vec![("job".to_owned(), "x".to_owned())]]),
        )
        .await
        .expect("relabel")
}

#[tokio::test]
async fn plugins_load_reload_on_change_and_unload() {
    let (Some(misbehaving), Some(hash)) = (
        plugin_file("misbehaving-relabeler"),
        plugin_file("relabel-hash-pii"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("relabeler.wasm");
    std::fs::copy(&misbehaving, &file).expect("copy");
    let registry = prometheus::Registry::new();
    let manager = PluginManager::new(Some(&dir.path().join("cache")), &registry).expect("manager");

    let first = config(dir.path(), &relabeler("tag", &file, ""));
    assert_eq!(manager.apply_config(&first).await, ["tag"]);
    let report = &manager.statuses()[0];
    assert_eq!((report.name.as_str(), report.state), ("tag", "ready"));
    assert_eq!(report.wit_version.as_deref(), Some("0.1.0"));
    let sha = report.sha256.clone().expect("hash");
    // The echo behaviour counts the calls its instance served.
    assert_eq!(
        echo(&manager, "tag").await[0].as_ref().unwrap()[0],
        ("calls".into(), "1".into())
    );

    // The same configuration keeps the same instance.
    assert!(manager.apply_config(&first).await.is_empty());
    assert_eq!(
        echo(&manager, "tag").await[0].as_ref().unwrap()[0],
        ("calls".into(), "2".into())
    );

    // A changed declaration (its config) reloads: a fresh instance.
    let changed = config(
        dir.path(),
        &relabeler("tag", &file, "    config: {behaviour: echo}\n"),
    );
    manager.apply_config(&changed).await;
    assert_eq!(
        echo(&manager, "tag").await[0].as_ref().unwrap()[0],
        ("calls".into(), "1".into())
    );

    // Held across a reload, the old plugin keeps working (in-flight calls
    // finish on it); new lookups get the new one.
    let old = manager.get("tag").expect("plugin");
    std::fs::copy(&hash, &file).expect("replace the file");
    let rehashed = config(
        dir.path(),
        &relabeler("tag", &file, "    config: {behaviour: echo, labels: job}\n"),
    );
    manager.apply_config(&rehashed).await;
    let report = &manager.statuses()[0];
    assert_ne!(report.sha256.as_deref(), Some(sha.as_str()));
    let answer = echo(&manager, "tag").await;
    assert_ne!(
        answer[0].as_ref().unwrap()[0].1,
        "x",
        "hash-pii hashed the job label"
    );
    let from_old = old
        .relabel(vec![vec![("job".to_owned(), "x".to_owned())]])
        .await
        .expect("the old instance still answers");
    assert_eq!(from_old[0].as_ref().unwrap()[0].0, "calls");

    // Removed from the configuration: unloaded.
    assert_eq!(manager.apply_config(&config(dir.path(), "")).await, ["tag"]);
    assert!(manager.statuses().is_empty());
    assert_eq!(
        manager.get("tag").unwrap_err(),
        PluginUseError::Unknown("tag".into())
    );

    // The counters survived the reloads: the four calls made through the
    // manager were counted, on three different instances. (The direct call
    // on the replaced instance came after its last reading: a plugin is read
    // one last time when it is replaced, and calls counted by then are kept.)
    let families = registry.gather();
    let calls: f64 = families
        .iter()
        .find(|family| family.name() == "ember_plugin_calls_total")
        .map(|family| {
            family
                .get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .sum()
        })
        .unwrap_or_default();
    assert_eq!(calls, 4.0);
}

#[tokio::test]
async fn a_plugin_that_cannot_load_is_reported_and_others_load() {
    let Some(hash) = plugin_file("relabel-hash-pii") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").expect("write");
    let registry = prometheus::Registry::new();
    let manager = PluginManager::new(None, &registry).expect("manager");
    let plugins = [
        relabeler("junk", &junk, ""),
        relabeler("missing", &dir.path().join("nope.wasm"), ""),
        // hash-pii refuses to start without `labels`: its init fails.
        relabeler("unconfigured", &hash, ""),
        relabeler("good", &hash, "    config: {labels: email}\n"),
        // Declared as the wrong world.
        format!(
            "  - name: wrong-world\n    kind: exporter\n    path: {}\n",
            hash.display()
        ),
    ]
    .concat();
    manager.apply_config(&config(dir.path(), &plugins)).await;
    let states: Vec<(String, &str)> = manager
        .statuses()
        .into_iter()
        .map(|report| (report.name, report.state))
        .collect();
    assert_eq!(
        states,
        [
            ("good".to_owned(), "ready"),
            ("junk".to_owned(), "failed"),
            ("missing".to_owned(), "failed"),
            ("unconfigured".to_owned(), "failed"),
            ("wrong-world".to_owned(), "failed"),
        ]
    );
    match manager.get("missing") {
        Err(PluginUseError::LoadFailed { error, .. }) => {
            assert!(error.contains("nope.wasm"), "{error}")
        }
        other => panic!("expected a load failure, got {other:?}"),
    }
    let wrong = manager
        .statuses()
        .into_iter()
        .find(|report| report.name == "wrong-world")
        .expect("report");
    assert!(
        wrong
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("exporter"),
        "{wrong:?}"
    );
    let failures = registry
        .gather()
        .into_iter()
        .find(|family| family.name() == "ember_plugin_load_failures_total")
        .map(|family| family.get_metric().len())
        .unwrap_or_default();
    assert_eq!(failures, 4);
}

#[tokio::test]
async fn a_discovery_with_its_own_config_gets_its_own_instance() {
    let Some(discovery) = plugin_file("discovery-fixture") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let manager = PluginManager::new(None, &prometheus::Registry::new()).expect("manager");
    let declared = format!(
        "  - name: inventory\n    kind: discovery\n    path: {}\n    config: {{targets: 'a:1', env: base}}\n",
        discovery.display()
    );
    manager.apply_config(&config(dir.path(), &declared)).await;
    let base = manager
        .get_with_config("inventory", &BTreeMap::new())
        .await
        .expect("base");
    let overrides = BTreeMap::from([("env".to_owned(), "override".to_owned())]);
    let derived = manager
        .get_with_config("inventory", &overrides)
        .await
        .expect("derived");
    let label = |groups: Vec<ember_plugin_host::TargetGroup>| groups[0].labels.clone();
    assert_eq!(
        label(base.refresh().await.expect("refresh")),
        [("env".to_owned(), "base".to_owned())]
    );
    assert_eq!(
        label(derived.refresh().await.expect("refresh")),
        [("env".to_owned(), "override".to_owned())]
    );
    // Asked again, the same derived instance (its refresh counter goes on).
    let again = manager
        .get_with_config("inventory", &overrides)
        .await
        .expect("derived");
    let groups = again.refresh().await.expect("refresh");
    assert!(
        groups[0].targets[0].contains(&("__meta_fixture_refresh".to_owned(), "2".to_owned())),
        "{groups:?}"
    );
}
