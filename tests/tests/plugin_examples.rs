//! The example plugins of `plugins/` through the real `ember` binary, with
//! the configuration their READMEs give: the discovery plugins (Rust HTTP
//! inventory, Python host ranges) feed targets that are scraped, the
//! exporters (Rust HTTP probe, JavaScript JSON) are scraped and their
//! series answer queries, the C relabeler bounds label values of a real
//! scrape, and the InfluxDB adapter receives the server's remote write in a
//! real InfluxDB.
//!
//! The plugins come from `scripts/build-plugins.sh` (`target/plugins/`);
//! without them each test says so and returns. InfluxDB comes from
//! `scripts/setup.sh --test-peers`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ember_tests::{
    ChildGuard, Ember, Options, StaticTarget, built_plugin as plugin, free_port, http_client,
    query, url_escape, wait_for,
};
use serde_json::Value;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A data directory under `target/` that is emptied before each run except
/// for the server's plugin compile cache, so that a second run of this test
/// loads the large Python and JavaScript components in milliseconds
/// instead of compiling them again (a fresh CI clone compiles once).
fn data_dir_keeping_the_plugin_cache() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-examples-data");
    std::fs::create_dir_all(&dir).expect("data directory");
    for entry in std::fs::read_dir(&dir).expect("read data directory") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|name| name == "plugin-cache") {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("clear data directory");
        } else {
            std::fs::remove_file(&path).expect("clear data directory");
        }
    }
    dir
}

/// The value of the only series `expr` returns, once it returns one. The
/// wait covers compiling an 18 MB component on a busy two-core machine.
fn single_value(ember: &Ember, expr: &str) -> f64 {
    let result = wait_for(ember, Duration::from_secs(300), expr, || {
        let result = query(ember, expr);
        (result.len() == 1).then_some(result)
    });
    result[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{expr}: {result:?}"))
}

#[test]
fn example_discovery_and_exporter_plugins_work_through_the_server() {
    let (Some(inventory), Some(ranges), Some(probe), Some(json)) = (
        plugin("discovery-http-inventory"),
        plugin("discovery-python-ranges"),
        plugin("exporter-http-probe"),
        plugin("exporter-js-json"),
    ) else {
        return;
    };
    // One scrape target, also serving the inventory, a health page and a
    // JSON status document.
    let node = StaticTarget::start(vec![
        (
            "/metrics",
            TEXT,
            "# TYPE node_load1 gauge\nnode_load1 0.5\n".to_owned(),
        ),
        ("/health", "text/plain", "ok".to_owned()),
        (
            "/status.json",
            "application/json",
            r#"{"queue": {"depth": 12}, "healthy": true, "version": "1.2"}"#.to_owned(),
        ),
    ]);
    let address = node.address().to_owned();
    let port = address.rsplit(':').next().unwrap().to_owned();
    let inventory_doc = StaticTarget::start(vec![(
        "/hosts.json",
        "application/json",
        format!(r#"[{{"address": "{address}", "labels": {{"env": "prod", "rack": "r1"}}}}]"#),
    )]);
    let inventory_address = inventory_doc.address().to_owned();
    // The README snippets, with this test's addresses and paths. The server
    // starts with the Rust plugins (milliseconds to compile); the Python and
    // JavaScript ones (18 and 12 MB, seconds to compile on a cold cache)
    // arrive by a configuration reload, which loads them while the server
    // keeps scraping and answering.
    let rust_plugins = format!(
        r#"  - name: inventory
    kind: discovery
    path: {inventory}
    config:
      url: http://{inventory_address}/hosts.json
    capabilities:
      allowed_hosts: ["{inventory_address}"]
  - name: http-probe
    kind: exporter
    path: {probe}
    config:
      timeout_ms: "2000"
    capabilities:
      allowed_hosts: ["127.0.0.1:*"]
"#,
        inventory = inventory.display(),
        probe = probe.display(),
    );
    let rust_jobs = format!(
        r#"  - job_name: inventory
    plugin_sd_configs:
      - plugin: inventory
        refresh_interval: 1s
    relabel_configs:
      - action: labelmap
        regex: __meta_inventory_label_(.+)
  - job_name: probe
    plugin: http-probe
    static_configs:
      - targets: ["http://{address}/health"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
"#
    );
    let other_plugins = format!(
        r#"  - name: ranges
    kind: discovery
    path: {ranges}
    config:
      hosts: "127.0.0.1:[{port}:{port}]"
      labels: "team=storage"
  - name: json
    kind: exporter
    path: {json}
    config:
      prefix: svc
    capabilities:
      allowed_hosts: ["127.0.0.1:*"]
"#,
        ranges = ranges.display(),
        json = json.display(),
    );
    let other_jobs = format!(
        r#"  - job_name: ranges
    plugin_sd_configs:
      - plugin: ranges
        refresh_interval: 1s
    relabel_configs:
      - action: labelmap
        regex: __meta_ranges_label_(.+)
  - job_name: json
    plugin: json
    static_configs:
      - targets: ["{address}"]
    relabel_configs:
      - source_labels: [__address__]
        regex: (.+)
        replacement: http://$1/status.json
        target_label: __param_target
"#
    );
    let global = "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n";
    let ember = Ember::start(
        Options::with_config(format!(
            "{global}plugins:\n{rust_plugins}scrape_configs:\n{rust_jobs}"
        ))
        .data_dir(data_dir_keeping_the_plugin_cache()),
    );

    // Rust discovery: the inventory's host is scraped with its labels.
    assert_eq!(single_value(&ember, r#"up{job="inventory"}"#), 1.0);
    let load = wait_for(&ember, Duration::from_secs(30), "inventory scrape", || {
        let result = query(&ember, r#"node_load1{job="inventory"}"#);
        (!result.is_empty()).then_some(result)
    });
    assert_eq!(load[0]["metric"]["env"], "prod", "{load:?}");
    assert_eq!(load[0]["metric"]["rack"], "r1", "{load:?}");
    assert_eq!(load[0]["metric"]["instance"], address.as_str());

    ember.write_config(&format!(
        "{global}plugins:\n{rust_plugins}{other_plugins}scrape_configs:\n{rust_jobs}{other_jobs}"
    ));
    ember.signal("HUP");

    // Python discovery: the range expanded to the one target.
    assert_eq!(single_value(&ember, r#"up{job="ranges"}"#), 1.0);
    let ranged = query(&ember, r#"node_load1{job="ranges"}"#);
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    assert_eq!(ranged[0]["metric"]["team"], "storage");

    // Rust exporter: the probe's series.
    assert_eq!(single_value(&ember, r#"probe_success{job="probe"}"#), 1.0);
    assert_eq!(
        single_value(&ember, r#"probe_http_status_code{job="probe"}"#),
        200.0
    );
    let duration = single_value(&ember, r#"probe_duration_seconds{job="probe"}"#);
    assert!(duration > 0.0 && duration < 2.0, "{duration}");

    // JavaScript exporter: the JSON document's numbers.
    assert_eq!(single_value(&ember, r#"svc_queue_depth{job="json"}"#), 12.0);
    assert_eq!(single_value(&ember, r#"svc_healthy{job="json"}"#), 1.0);
    assert!(
        query(&ember, r#"svc_version{job="json"}"#).is_empty(),
        "strings are skipped"
    );

    // Every example is reported loaded, with its kind.
    let body: Value = ember.get("/api/v1/plugins").json().expect("plugins JSON");
    let reports = body["data"].as_array().cloned().unwrap_or_default();
    for (name, kind) in [
        ("inventory", "discovery"),
        ("ranges", "discovery"),
        ("http-probe", "exporter"),
        ("json", "exporter"),
    ] {
        let report = reports
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {body}"));
        assert_eq!(report["kind"], kind, "{report}");
    }
}

/// The C relabeler as a metric relabel step of a real scrape: a long label
/// value is cut to `max_length` bytes and series under `drop_prefix` are
/// dropped, while the rest of the scrape is stored unchanged.
#[test]
fn the_c_relabeler_bounds_label_values_of_a_real_scrape() {
    let Some(truncate) = plugin("relabel-c-truncate") else {
        return;
    };
    let target = StaticTarget::start(vec![(
        "/metrics",
        TEXT,
        "# TYPE http_requests_total counter\n\
         http_requests_total{path=\"/a/very/long/path/with/an/id/12345\"} 7\n\
         # TYPE debug_cache_entries gauge\n\
         debug_cache_entries 3\n\
         # TYPE app_ready gauge\n\
         app_ready{zone=\"eu\"} 1\n"
            .to_owned(),
    )]);
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
plugins:
  - name: truncate
    kind: relabeler
    path: {path}
    config:
      max_length: "8"
      drop_prefix: debug_
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{address}"]
    metric_relabel_configs:
      - action: plugin
        plugin: truncate
"#,
        path = truncate.display(),
        address = target.address(),
    );
    let ember = Ember::start(Options::with_config(config));

    assert_eq!(single_value(&ember, r#"up{job="app"}"#), 1.0);
    let requests = wait_for(
        &ember,
        Duration::from_secs(30),
        "the relabeled series",
        || {
            let result = query(&ember, r#"http_requests_total{job="app"}"#);
            (!result.is_empty()).then_some(result)
        },
    );
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["metric"]["path"], "/a/very/", "{requests:?}");
    assert_eq!(requests[0]["value"][1], "7");
    assert_eq!(
        single_value(&ember, r#"app_ready{job="app",zone="eu"}"#),
        1.0
    );
    assert!(
        query(&ember, r#"{__name__=~"debug_.*"}"#).is_empty(),
        "debug_ series are dropped by the plugin"
    );
    assert_eq!(
        single_value(
            &ember,
            r#"scrape_samples_post_metric_relabeling{job="app"}"#
        ),
        2.0
    );
}

/// A real InfluxDB 1.x on loopback ports in a temporary directory.
struct Influx {
    _child: ChildGuard,
    url: String,
    _dir: tempfile::TempDir,
}

impl Influx {
    fn start() -> Option<Influx> {
        let influxd = "/usr/bin/influxd";
        if !std::path::Path::new(influxd).is_file() {
            eprintln!("skipping: {influxd} is missing; run scripts/setup.sh --test-peers");
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let http_port = free_port();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n",
            rpc = free_port(),
            d = dir.path().display()
        );
        let config_path = dir.path().join("influxdb.conf");
        std::fs::write(&config_path, config).expect("write influxdb.conf");
        let child = Command::new(influxd)
            .arg("-config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start influxd");
        let influx = Influx {
            _child: ChildGuard(child),
            url: format!("http://127.0.0.1:{http_port}"),
            _dir: dir,
        };
        let client = http_client(Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/ping", influx.url)).send()
                && response.status().as_u16() == 204
            {
                return Some(influx);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("influxd did not answer /ping within 20 s");
    }

    fn query(&self, db: &str, q: &str) -> Value {
        let response = http_client(Duration::from_secs(10))
            .post(format!(
                "{}/query?db={db}&epoch=ms&q={}",
                self.url,
                url_escape(q)
            ))
            .send()
            .expect("InfluxDB query");
        assert!(response.status().is_success(), "{q}");
        response.json().expect("InfluxDB JSON")
    }
}

#[test]
fn the_influxdb_adapter_receives_the_servers_remote_write() {
    let Some(adapter) = plugin("remote-storage-influxdb") else {
        return;
    };
    let Some(influx) = Influx::start() else {
        return;
    };
    influx.query("", "CREATE DATABASE ember");
    let node = StaticTarget::start(vec![(
        "/metrics",
        TEXT,
        "# TYPE jobs_queued gauge\njobs_queued{queue=\"mail\"} 7\n".to_owned(),
    )]);
    let address = node.address().to_owned();
    let influx_authority = influx.url.trim_start_matches("http://").to_owned();
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
plugins:
  - name: influx
    kind: remote-storage
    path: {adapter}
    config:
      url: {url}
      database: ember
    capabilities:
      allowed_hosts: ["{influx_authority}"]
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{address}"]
remote_write:
  - plugin: influx
    queue_config:
      batch_send_deadline: 1s
"#,
        adapter = adapter.display(),
        url = influx.url,
    );
    let ember = Ember::start(Options::with_config(config));
    let points = wait_for(
        &ember,
        Duration::from_secs(60),
        "points in InfluxDB",
        || {
            let answer = influx.query(
                "ember",
                "SELECT * FROM jobs_queued WHERE job = 'node' ORDER BY time DESC LIMIT 1",
            );
            let series = &answer["results"][0]["series"][0];
            (!series.is_null()).then(|| series.clone())
        },
    );
    let columns = points["columns"].as_array().expect("columns");
    let row = points["values"][0].as_array().expect("a point");
    let field = |name: &str| {
        let index = columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {points}"));
        row[index].clone()
    };
    assert_eq!(field("value"), 7, "{points}");
    assert_eq!(field("queue"), "mail", "{points}");
    assert_eq!(field("instance"), address.as_str(), "{points}");
    // The point carries the scrape's timestamp (milliseconds), recent.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let time = field("time").as_i64().expect("time");
    assert!((now_ms - time).abs() < 120_000, "{time} vs {now_ms}");
    // `up` went the same way.
    let up = influx.query("ember", "SELECT count(value) FROM up");
    assert!(
        up["results"][0]["series"][0]["values"][0][1]
            .as_i64()
            .unwrap_or(0)
            >= 1,
        "{up}"
    );
}

/// Every example's README snippet is a valid configuration as written
/// (with `path:` pointing at the built plugins), so it can be pasted.
#[test]
fn every_example_readme_snippet_passes_ember_check_config() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugins = repo.join("target/plugins");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut checked = 0;
    for entry in std::fs::read_dir(repo.join("plugins")).expect("plugins/") {
        let readme = entry.expect("entry").path().join("README.md");
        let Ok(text) = std::fs::read_to_string(&readme) else {
            continue;
        };
        let mut snippet = String::new();
        let mut inside = false;
        for line in text.lines() {
            match (inside, line.trim_start()) {
                (false, "```yaml") => inside = true,
                (true, "```") => inside = false,
                (true, _) => {
                    snippet.push_str(line);
                    snippet.push('\n');
                }
                _ => {}
            }
        }
        assert!(
            snippet.contains("plugins:"),
            "{} has no ember.yml snippet",
            readme.display()
        );
        let snippet = snippet.replace(
            "path: target/plugins/",
            &format!("path: {}/", plugins.display()),
        );
        let file = dir.path().join("ember.yml");
        std::fs::write(&file, &snippet).expect("write snippet");
        let output = Command::new(ember_tests::ember_binary())
            .args(["check", "config"])
            .arg(&file)
            .output()
            .expect("run ember check config");
        assert!(
            output.status.success(),
            "{}: {}\n{snippet}",
            readme.display(),
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} example READMEs found");
}
