//! Plugins through the real `ember` binary: a relabel plugin on a real
//! scrape, an exporter plugin as a target, a discovery plugin feeding
//! targets, reloads that add, change and remove plugins, and the
//! misbehaving suite (each failure contained and reported while the server
//! keeps scraping and answering queries).
//!
//! The plugins are the WebAssembly modules `scripts/build-plugins.sh` puts in
//! `target/plugins/`; without them every test here says so and returns.

use std::time::{Duration, Instant};

use ember_tests::{Ember, Options, StaticTarget, built_plugin as plugin, query, wait_for};
use serde_json::Value;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn plugins_api(ember: &Ember) -> Vec<Value> {
    let body: Value = ember.get("/api/v1/plugins").json().expect("plugins JSON");
    assert_eq!(body["status"], "success", "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

fn plugin_report(ember: &Ember, name: &str) -> Option<Value> {
    plugins_api(ember).into_iter().find(|p| p["name"] == name)
}

fn targets(ember: &Ember) -> Vec<Value> {
    let body: Value = ember.get("/api/v1/targets").json().expect("targets JSON");
    body["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn target_of(ember: &Ember, job: &str) -> Option<Value> {
    targets(ember)
        .into_iter()
        .find(|t| t["scrapePool"] == job && t["health"] != "unknown")
}

fn metric_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn relabel_exporter_and_discovery_plugins_work_through_the_server() {
    let (Some(hash), Some(exporter), Some(discovery), Some(tagger)) = (
        plugin("relabel-hash-pii"),
        plugin("exporter-fixture"),
        plugin("discovery-fixture"),
        plugin("misbehaving-relabeler"),
    ) else {
        return;
    };
    let target = StaticTarget::start(vec![(
        "/metrics",
        TEXT,
        "# TYPE user_logins counter\nuser_logins_total{email=\"ann@example.com\"} 3\nother 1\n"
            .to_owned(),
    )]);
    let address = target.address();
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
plugins:
  - name: hash-pii
    kind: relabeler
    path: {hash}
    config: {{labels: email, salt: pepper}}
  - name: tagger
    kind: relabeler
    path: {tagger}
  - name: fixture-exporter
    kind: exporter
    path: {exporter}
  - name: inventory
    kind: discovery
    path: {discovery}
    config:
      targets: ["{address}"]
      env: lab
scrape_configs:
  - job_name: web
    static_configs:
      - targets: ['{address}']
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: other
        action: drop
      - action: plugin
        plugin: hash-pii
  - job_name: exported
    plugin: fixture-exporter
    params: {{module: [basic]}}
    static_configs:
      - targets: ['db-1', 'db-2']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - action: plugin
        plugin: tagger
  - job_name: discovered
    plugin_sd_configs:
      - plugin: inventory
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__meta_fixture_index]
        target_label: index
"#,
        hash = hash.display(),
        exporter = exporter.display(),
        discovery = discovery.display(),
        tagger = tagger.display(),
    );
    let ember = Ember::start(Options::with_config(config));

    // The relabel plugin pseudonymised the email of a real scrape; the
    // built-in rule before it still dropped `other`.
    let logins = wait_for(
        &ember,
        Duration::from_secs(30),
        "hashed user_logins_total",
        || {
            let result = query(&ember, "user_logins_total{job=\"web\"}");
            (!result.is_empty()).then_some(result)
        },
    );
    let email = logins[0]["metric"]["email"].as_str().expect("email label");
    assert_ne!(email, "ann@example.com");
    assert_eq!(email.len(), 16, "{email}");
    assert!(email.bytes().all(|b| b.is_ascii_hexdigit()), "{email}");
    assert!(query(&ember, "other{job=\"web\"}").is_empty());
    assert_eq!(query(&ember, "up{job=\"web\"}")[0]["value"][1], "1");

    // The exporter plugin is scraped like a target: the target's labels and
    // parameters reach it, and up/scrape_* series are written.
    let collections = wait_for(&ember, Duration::from_secs(30), "exporter samples", || {
        let result = query(&ember, "fixture_collections_total{job=\"exported\"}");
        (result.len() == 2).then_some(result)
    });
    let instances: Vec<&str> = collections
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    assert!(
        instances.contains(&"db-1") && instances.contains(&"db-2"),
        "{instances:?}"
    );
    let params = query(&ember, "fixture_param{job=\"exported\",instance=\"db-1\"}");
    let names: Vec<(&str, &str)> = params
        .iter()
        .map(|s| {
            (
                s["metric"]["name"].as_str().unwrap_or_default(),
                s["metric"]["value"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(names.contains(&("module", "basic")), "{names:?}");
    assert!(names.contains(&("target", "db-1")), "{names:?}");
    assert_eq!(
        query(&ember, "up{job=\"exported\"} == 1").len(),
        2,
        "{}",
        ember.logs_text()
    );
    // Target relabeling called the tagger plugin with the whole discovery
    // update at once: both targets carry the label it added, from the same
    // call (the plugin numbers its calls).
    let tagged = query(&ember, "up{job=\"exported\",calls!=\"\"}");
    assert_eq!(tagged.len(), 2, "{tagged:?}");
    assert_eq!(tagged[0]["metric"]["calls"], tagged[1]["metric"]["calls"]);
    assert_eq!(
        query(
            &ember,
            "scrape_samples_scraped{job=\"exported\",instance=\"db-2\"}"
        )
        .len(),
        1
    );
    let exported = target_of(&ember, "exported").expect("exporter target");
    assert!(
        exported["scrapeUrl"]
            .as_str()
            .unwrap_or_default()
            .starts_with("plugin://fixture-exporter/"),
        "{exported:#}"
    );

    // The discovery plugin's target is scraped, its __meta_* label was
    // available to relabeling, and its group label arrived.
    let discovered = wait_for(
        &ember,
        Duration::from_secs(30),
        "discovered target up",
        || {
            let result = query(&ember, "up{job=\"discovered\"}");
            (!result.is_empty()).then_some(result)
        },
    );
    assert_eq!(discovered[0]["metric"]["index"], "0");
    assert_eq!(discovered[0]["metric"]["env"], "lab");
    assert_eq!(discovered[0]["metric"]["instance"], address);
    assert_eq!(discovered[0]["value"][1], "1");

    // Status and self-metrics.
    let reports = plugins_api(&ember);
    assert_eq!(reports.len(), 4, "{reports:#?}");
    for report in &reports {
        assert_eq!(report["state"], "ready", "{report:#}");
        assert_eq!(
            report["sha256"].as_str().map(str::len),
            Some(64),
            "{report:#}"
        );
        assert_eq!(report["witVersion"], "0.1.0", "{report:#}");
        assert!(
            report["calls"].as_u64().unwrap_or_default() > 0,
            "{report:#}"
        );
    }
    let hash_report = plugin_report(&ember, "hash-pii").expect("hash-pii");
    assert_eq!(hash_report["kind"], "relabeler");
    assert_eq!(hash_report["limits"]["callTimeoutSeconds"], 5.0);
    let metrics = ember.get("/metrics").text().expect("metrics");
    let calls = metric_value(
        &metrics,
        "ember_plugin_calls_total{kind=\"relabeler\",plugin=\"hash-pii\"}",
    )
    .expect("relabel calls metric");
    assert!(calls >= 1.0, "{calls}");
    assert!(
        metrics.contains("ember_plugin_call_duration_seconds_count{kind=\"exporter\",plugin=\"fixture-exporter\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ember_plugin_state{kind=\"discovery\",plugin=\"inventory\",state=\"ready\"} 1"
        )
    );
}

#[test]
fn reload_adds_changes_and_removes_plugins_without_restart() {
    let (Some(echo), Some(hash)) = (plugin("misbehaving-relabeler"), plugin("relabel-hash-pii"))
    else {
        return;
    };
    let target = StaticTarget::start(vec![(
        "/metrics",
        TEXT,
        "a{email=\"bob@example.com\"} 1\n".to_owned(),
    )]);
    let address = target.address();
    let dir = tempfile::tempdir().expect("temporary directory");
    // The plugin file is a copy, so that the test can change its content.
    let copy = dir.path().join("relabeler.wasm");
    std::fs::copy(&echo, &copy).expect("copy plugin");
    let job = |plugin: &str| {
        format!(
            "scrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{address}']\n    metric_relabel_configs:\n      - action: plugin\n        plugin: {plugin}\n"
        )
    };
    let global = "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n";
    let first = format!(
        "{global}plugins:\n  - name: tagger\n    kind: relabeler\n    path: {}\n{}",
        copy.display(),
        job("tagger")
    );
    let mut ember = Ember::start(Options::with_config(first));
    let pid = ember.pid();

    // The echo behaviour adds calls="<n>".
    wait_for(&ember, Duration::from_secs(30), "tagged series", || {
        let result = query(&ember, "a{job=\"web\",calls!=\"\"}");
        (!result.is_empty()).then_some(())
    });
    let first_sha = plugin_report(&ember, "tagger").expect("tagger")["sha256"].clone();

    // Change the plugin's file: same declaration, new content -> reloaded.
    std::fs::copy(&hash, &copy).expect("replace plugin");
    let second = format!(
        "{global}plugins:\n  - name: tagger\n    kind: relabeler\n    path: {}\n    config: {{labels: email}}\n{}",
        copy.display(),
        job("tagger")
    );
    ember.write_config(&second);
    ember.signal("HUP");
    let report = wait_for(&ember, Duration::from_secs(30), "reloaded tagger", || {
        plugin_report(&ember, "tagger")
            .filter(|r| r["sha256"] != first_sha && r["state"] == "ready")
    });
    assert_eq!(report["kind"], "relabeler");
    wait_for(
        &ember,
        Duration::from_secs(30),
        "hashed email after reload",
        || {
            let result = query(&ember, "a{job=\"web\"}");
            result
                .iter()
                .any(|s| {
                    s["metric"]["email"]
                        .as_str()
                        .is_some_and(|e| e != "bob@example.com")
                        && s["metric"].get("calls").is_none()
                })
                .then_some(())
        },
    );

    // Add a second plugin and remove the first.
    let third = format!(
        "{global}plugins:\n  - name: hasher\n    kind: relabeler\n    path: {}\n    config: {{labels: email, length: '8'}}\n{}",
        hash.display(),
        job("hasher")
    );
    ember.write_config(&third);
    ember.signal("HUP");
    wait_for(
        &ember,
        Duration::from_secs(30),
        "tagger removed, hasher ready",
        || {
            let reports = plugins_api(&ember);
            (reports.len() == 1 && reports[0]["name"] == "hasher" && reports[0]["state"] == "ready")
                .then_some(())
        },
    );
    wait_for(
        &ember,
        Duration::from_secs(30),
        "8-digit pseudonyms",
        || {
            query(&ember, "a{job=\"web\"}")
                .iter()
                .any(|s| s["metric"]["email"].as_str().is_some_and(|e| e.len() == 8))
                .then_some(())
        },
    );

    // A plugin that cannot load is reported; the server carries on.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm").expect("write");
    let fourth = format!(
        "{global}plugins:\n  - name: hasher\n    kind: relabeler\n    path: {}\n    config: {{labels: email, length: '8'}}\n  - name: broken\n    kind: exporter\n    path: {}\n{}",
        hash.display(),
        broken.display(),
        job("hasher")
    );
    ember.write_config(&fourth);
    ember.signal("HUP");
    let broken_report = wait_for(
        &ember,
        Duration::from_secs(30),
        "broken plugin reported",
        || plugin_report(&ember, "broken").filter(|r| r["state"] == "failed"),
    );
    assert!(
        broken_report["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("not a WebAssembly"),
        "{broken_report:#}"
    );
    let metrics = ember.get("/metrics").text().expect("metrics");
    assert!(
        metric_value(
            &metrics,
            "ember_plugin_load_failures_total{plugin=\"broken\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    assert_eq!(ember.pid(), pid, "the server was not restarted");
    assert!(ember.wait_exit(Duration::ZERO).is_none());
}

#[test]
fn misbehaving_plugins_are_contained_and_reported() {
    let (Some(bad), Some(exporter)) = (plugin("misbehaving-relabeler"), plugin("exporter-fixture"))
    else {
        return;
    };
    let target = StaticTarget::start(vec![("/metrics", TEXT, "healthy_metric 1\n".to_owned())]);
    let address = target.address();
    // A host the exporter may reach that answers only after 10 s: the
    // plugin's HTTP call must end at its call deadline, not hold the scrape.
    let slow = StaticTarget::start_slow(
        vec![("/metrics", TEXT, "late 1\n".to_owned())],
        Duration::from_secs(10),
    );
    let slow_address = slow.address();
    let behaviours = [
        "log",
        "loop",
        "memory-bomb",
        "panic",
        "enormous",
        "wrong-count",
        "duplicate-labels",
    ];
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nplugins:\n  - name: no-http\n    kind: exporter\n    path: {path}\n  - name: slow-http\n    kind: exporter\n    path: {path}\n    limits: {{call_timeout: 500ms}}\n    capabilities: {{allowed_hosts: ['{slow_address}']}}\n",
        path = exporter.display()
    );
    for behaviour in behaviours {
        config.push_str(&format!(
            "  - name: {behaviour}\n    kind: relabeler\n    path: {}\n    config: {{behaviour: {behaviour}}}\n    limits: {{memory: 16MB, call_timeout: 300ms}}\n",
            bad.display()
        ));
    }
    config.push_str(&format!(
        "scrape_configs:\n  - job_name: healthy\n    static_configs:\n      - targets: ['{address}']\n  - job_name: no-http\n    plugin: no-http\n    params:\n      behaviour: [http-get]\n      url: ['http://{address}/metrics']\n    static_configs:\n      - targets: ['probe']\n  - job_name: slow-http\n    plugin: slow-http\n    params:\n      behaviour: [http-get]\n      url: ['http://{slow_address}/metrics']\n    static_configs:\n      - targets: ['probe']\n"
    ));
    // Target relabeling through a plugin that traps: the job gets no
    // targets, lists them as dropped, and the other jobs are unaffected.
    config.push_str(&format!(
        "  - job_name: target-panic\n    static_configs:\n      - targets: ['{address}']\n    relabel_configs:\n      - action: plugin\n        plugin: panic\n"
    ));
    for behaviour in behaviours {
        config.push_str(&format!(
            "  - job_name: {behaviour}\n    static_configs:\n      - targets: ['{address}']\n    metric_relabel_configs:\n      - action: plugin\n        plugin: {behaviour}\n"
        ));
    }
    let ember = Ember::start(Options::with_config(config));

    let expected_error = [
        ("loop", "timed out"),
        ("memory-bomb", "out of memory"),
        ("panic", "trapped"),
        ("enormous", ""),
        ("wrong-count", "answered"),
        ("duplicate-labels", "appears twice"),
    ];
    let started = Instant::now();
    wait_for(&ember, Duration::from_secs(30), "healthy job up", || {
        let up = query(&ember, "up{job=\"healthy\"} == 1");
        (!up.is_empty()).then_some(())
    });
    for (job, message) in expected_error {
        let target = wait_for(&ember, Duration::from_secs(60), job, || {
            target_of(&ember, job).filter(|t| t["health"] == "down")
        });
        let error = target["lastError"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{job}: {error}");
        // Meanwhile the healthy job is scraped and queries are answered.
        let up = query(&ember, "up{job=\"healthy\"}");
        assert_eq!(up[0]["value"][1], "1", "{up:?}");
    }
    // A capability that was not granted: the request is refused and the
    // target is down with the plugin's reason.
    let denied = wait_for(&ember, Duration::from_secs(30), "no-http down", || {
        target_of(&ember, "no-http").filter(|t| t["health"] == "down")
    });
    assert!(
        denied["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("denied"),
        "{denied:#}"
    );

    // A slow host call: the target is down with the plugin's reason and the
    // scrape ended near the call deadline instead of waiting for the host.
    let late = wait_for(&ember, Duration::from_secs(30), "slow-http down", || {
        target_of(&ember, "slow-http").filter(|t| t["health"] == "down")
    });
    assert!(
        !late["lastError"].as_str().unwrap_or_default().is_empty(),
        "{late:#}"
    );
    assert!(
        late["lastScrapeDuration"]
            .as_f64()
            .is_some_and(|seconds| seconds < 2.5),
        "{late:#}"
    );
    assert_eq!(query(&ember, "up{job=\"healthy\"}")[0]["value"][1], "1");

    // Let a few more scrapes fail so restarts and disabling show.
    std::thread::sleep(
        Duration::from_secs(4).saturating_sub(started.elapsed().min(Duration::from_secs(4))),
    );
    let looped = plugin_report(&ember, "loop").expect("loop plugin");
    assert!(
        ["restarting", "disabled", "ready"].contains(&looped["state"].as_str().unwrap_or_default()),
        "{looped:#}"
    );
    assert!(
        looped["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{looped:#}"
    );
    let panicked = plugin_report(&ember, "panic").expect("panic plugin");
    assert!(
        panicked["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("trapped"),
        "{panicked:#}"
    );
    let metrics = ember.get("/metrics").text().expect("metrics");
    for (metric, plugin) in [
        ("ember_plugin_timeouts_total", "loop"),
        ("ember_plugin_out_of_memory_total", "memory-bomb"),
        ("ember_plugin_traps_total", "panic"),
        ("ember_plugin_errors_total", "wrong-count"),
    ] {
        let value = metric_value(
            &metrics,
            &format!("{metric}{{kind=\"relabeler\",plugin=\"{plugin}\"}}"),
        );
        assert!(
            value.is_some_and(|v| v >= 1.0),
            "{metric} for {plugin}: {value:?}"
        );
    }
    // The well-behaved `log` plugin's lines reach the server's log, named.
    let logged = ember.wait_for_log(Duration::from_secs(30), |entry| {
        let text = entry.to_string();
        text.contains("line 0 of log") && text.contains("\"plugin\":\"log\"")
    });
    assert!(
        logged.is_some(),
        "no plugin log line\n{}",
        ember.logs_text()
    );
    assert_eq!(query(&ember, "up{job=\"log\"}")[0]["value"][1], "1");

    let body: Value = ember
        .get("/api/v1/targets?scrapePool=target-panic")
        .json()
        .expect("targets JSON");
    assert!(
        body["data"]["activeTargets"]
            .as_array()
            .is_some_and(|targets| targets.is_empty()),
        "{body:#}"
    );
    assert_eq!(
        body["data"]["droppedTargets"][0]["discoveredLabels"]["__address__"], address,
        "{body:#}"
    );

    // Still healthy at the end, and the healthy job kept its samples.
    assert_eq!(query(&ember, "up{job=\"healthy\"}")[0]["value"][1], "1");
    assert_eq!(query(&ember, "healthy_metric")[0]["value"][1], "1");
    assert!(ember.get("/-/ready").status().is_success());
}

#[test]
fn a_remote_write_entry_can_be_a_remote_storage_plugin() {
    let Some(storage) = plugin("remote-storage-fixture") else {
        return;
    };
    let target = StaticTarget::start(vec![("/metrics", TEXT, "stored_metric 7\n".to_owned())]);
    let address = target.address();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nplugins:\n  - name: store\n    kind: remote-storage\n    path: {}\nscrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{address}']\nremote_write:\n  - plugin: store\n    queue_config:\n      batch_send_deadline: 1s\n",
        storage.display()
    );
    let ember = Ember::start(Options::with_config(config));
    // The queue hands batches to the plugin's write; the plugin keeps them.
    let calls = wait_for(&ember, Duration::from_secs(60), "plugin writes", || {
        let metrics = ember.get("/metrics").text().expect("metrics");
        metric_value(
            &metrics,
            "ember_plugin_calls_total{kind=\"remote-storage\",plugin=\"store\"}",
        )
        .filter(|calls| *calls >= 1.0)
    });
    assert!(calls >= 1.0);
    let report = plugin_report(&ember, "store").expect("store plugin");
    assert_eq!(report["state"], "ready", "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(query(&ember, "stored_metric")[0]["value"][1], "7");
}
