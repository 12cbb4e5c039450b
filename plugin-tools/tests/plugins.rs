//! The example plugins under `plugins/`, loaded and called through
//! ember-plugin-host exactly as the server does, against real peers (an
//! HTTP server in the test, a real InfluxDB for the remote-storage adapter).
//!
//! The plugins are built by `scripts/build-plugins.sh` (which
//! `scripts/test` runs first) into `target/plugins/`; when one is missing
//! its test says so and returns.

use std::path::PathBuf;
use std::time::Duration;

use ember_plugin_host::{
    Capabilities, GuestError, MetricFamily, Plugin, PluginCallError, PluginKind, PluginRuntime,
    PluginSource, PluginSpec, RuntimeConfig, Series, WriteError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `target/plugins/<name>.wasm`, or `None` (with a message) when
/// `scripts/build-plugins.sh` has not built it.
pub fn plugin_path(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh to build the example plugins",
            path.display()
        );
        None
    }
}

/// A compile cache under `target/` that outlives the run: the Python and
/// JavaScript components take seconds each to compile, and the cache is
/// keyed by content hash and engine, so a later run with the same plugins
/// loads them in milliseconds (what the server does on a restart). It is
/// the cache of the black-box examples test's server
/// (`tests/tests/plugin_examples.rs`), which so finds these plugins
/// compiled; writes are atomic, so sharing is safe.
pub fn runtime() -> PluginRuntime {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugin-examples-data/plugin-cache");
    PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(dir),
        epoch_tick: Duration::from_millis(5),
    })
    .expect("runtime")
}

/// Loads the example plugin `name` as `kind` with `config` and `capabilities`.
pub async fn load(
    runtime: &PluginRuntime,
    name: &str,
    kind: PluginKind,
    config: &[(&str, &str)],
    capabilities: Capabilities,
) -> Option<Result<Plugin, ember_plugin_host::PluginError>> {
    let path = plugin_path(name)?;
    // The Python and JavaScript runtimes start slower than Rust under a
    // loaded test machine; the default 5 s is generous, but instantiation
    // of an 18 MB component must not be the thing a test measures.
    let limits = ember_plugin_host::Limits {
        call_timeout: Duration::from_secs(20),
        ..ember_plugin_host::Limits::default()
    };
    let spec = PluginSpec::new(name, kind, PluginSource::Path(path))
        .with_config(config.iter().copied())
        .with_capabilities(capabilities)
        .with_limits(limits);
    Some(runtime.load(spec).await)
}

/// Grants HTTP to exactly `address`.
pub fn allow(address: std::net::SocketAddr) -> Capabilities {
    Capabilities::none()
        .with_allowed_hosts([format!("127.0.0.1:{}", address.port())])
        .expect("pattern")
}

/// Serves `app` on a loopback port.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 request to `address`; returns the status and the body.
pub async fn http(
    address: std::net::SocketAddr,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Percent-encodes a query value.
pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn label<'a>(set: &'a [(String, String)], name: &str) -> Option<&'a str> {
    set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The value of the only sample of family `name`.
fn gauge(families: &[MetricFamily], name: &str) -> f64 {
    let family = families
        .iter()
        .find(|family| family.name == name)
        .unwrap_or_else(|| panic!("no family {name} in {families:?}"));
    assert_eq!(family.samples.len(), 1, "{family:?}");
    family.samples[0].value
}

// --- discovery-http-inventory (Rust) ---------------------------------------

async fn inventory_server() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route(
            "/hosts.json",
            axum::routing::get(|| async {
                r#"[
                    {"address": "10.0.0.1:9100", "labels": {"env": "prod", "rack-id": "r1"}},
                    {"address": "10.0.0.2", "labels": {"env": "staging"}},
                    {"address": "[2001:db8::1]:9100"}
                ]"#
            }),
        )
        .route("/broken.json", axum::routing::get(|| async { "{not json" }));
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_inventory_discovery_reports_the_inventory_as_targets() {
    let address = inventory_server().await;
    let url = format!("http://{address}/hosts.json");
    let runtime = runtime();
    let config = [("url", url.as_str()), ("default_port", "9200")];
    let Some(plugin) = load(
        &runtime,
        "discovery-http-inventory",
        PluginKind::Discovery,
        &config,
        allow(address),
    )
    .await
    else {
        return;
    };
    let plugin = plugin.expect("load");
    let groups = plugin.refresh().await.expect("refresh");
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.source, format!("inventory:{url}"));
    assert_eq!(
        label(&group.labels, "__meta_inventory_url"),
        Some(url.as_str())
    );
    let addresses: Vec<_> = group
        .targets
        .iter()
        .map(|t| label(t, "__address__").unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["10.0.0.1:9100", "10.0.0.2:9200", "[2001:db8::1]:9100"],
        "default_port applies only to addresses without one"
    );
    assert_eq!(
        label(&group.targets[0], "__meta_inventory_label_rack_id"),
        Some("r1"),
        "label names are sanitised"
    );
    assert_eq!(
        label(&group.targets[1], "__meta_inventory_label_env"),
        Some("staging")
    );

    // A broken document is `unavailable` (the server keeps the old targets).
    let broken = format!("http://{address}/broken.json");
    let plugin = load(
        &runtime,
        "discovery-http-inventory",
        PluginKind::Discovery,
        &[("url", broken.as_str())],
        allow(address),
    )
    .await
    .unwrap()
    .expect("load");
    let error = plugin.refresh().await.expect_err("broken inventory");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Unavailable(ref m)) if m.contains("not valid")),
        "{error}"
    );

    // Without the grant the request never leaves: `denied`.
    let plugin = load(
        &runtime,
        "discovery-http-inventory",
        PluginKind::Discovery,
        &[("url", url.as_str())],
        Capabilities::none(),
    )
    .await
    .unwrap()
    .expect("load");
    let error = plugin.refresh().await.expect_err("not granted");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
        "{error}"
    );

    // A missing url fails the load with the key's name.
    let error = load(
        &runtime,
        "discovery-http-inventory",
        PluginKind::Discovery,
        &[],
        Capabilities::none(),
    )
    .await
    .unwrap()
    .expect_err("no url");
    assert!(error.to_string().contains("\"url\""), "{error}");
}

// --- exporter-http-probe (Rust) --------------------------------------------

async fn probe_server() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(|| async { "all good" }))
        .route(
            "/down",
            axum::routing::get(|| async {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance")
            }),
        );
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_reports_success_status_and_duration() {
    let address = probe_server().await;
    let runtime = runtime();
    let Some(plugin) = load(
        &runtime,
        "exporter-http-probe",
        PluginKind::Exporter,
        &[("timeout_ms", "2000")],
        allow(address),
    )
    .await
    else {
        return;
    };
    let plugin = plugin.expect("load");
    let target = |url: String| vec![("target".to_owned(), url)];

    let ok = plugin
        .collect(Vec::new(), target(format!("http://{address}/ok")))
        .await
        .expect("probe /ok");
    assert_eq!(gauge(&ok, "probe_success"), 1.0);
    assert_eq!(gauge(&ok, "probe_http_status_code"), 200.0);
    assert_eq!(gauge(&ok, "probe_http_content_length"), 8.0);
    let duration = gauge(&ok, "probe_duration_seconds");
    assert!(duration > 0.0 && duration < 2.0, "{duration}");

    let down = plugin
        .collect(Vec::new(), target(format!("http://{address}/down")))
        .await
        .expect("probe /down");
    assert_eq!(gauge(&down, "probe_success"), 0.0);
    assert_eq!(gauge(&down, "probe_http_status_code"), 503.0);

    // The URL may come from the target's address instead of a parameter.
    let from_address = plugin
        .collect(
            labels(&[("__address__", &format!("{address}/ok"))]),
            Vec::new(),
        )
        .await
        .expect("probe by address");
    assert_eq!(gauge(&from_address, "probe_success"), 1.0);

    // A refused connection is a failed probe, not a failed scrape.
    let closed = closed_port();
    let plugin_closed = load(
        &runtime,
        "exporter-http-probe",
        PluginKind::Exporter,
        &[],
        Capabilities::none()
            .with_allowed_hosts([format!("127.0.0.1:{closed}")])
            .unwrap(),
    )
    .await
    .unwrap()
    .expect("load");
    let refused = plugin_closed
        .collect(Vec::new(), target(format!("http://127.0.0.1:{closed}/")))
        .await
        .expect("refused probe");
    assert_eq!(gauge(&refused, "probe_success"), 0.0);
    assert_eq!(gauge(&refused, "probe_http_status_code"), 0.0);

    // A destination outside allowed_hosts fails the scrape with `denied`.
    let error = plugin
        .collect(Vec::new(), target("http://127.0.0.2:1/".to_owned()))
        .await
        .expect_err("not granted");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
        "{error}"
    );

    // expect_body and valid_status_codes.
    let strict = load(
        &runtime,
        "exporter-http-probe",
        PluginKind::Exporter,
        &[
            ("expect_body", "maintenance"),
            ("valid_status_codes", "503"),
        ],
        allow(address),
    )
    .await
    .unwrap()
    .expect("load");
    let down = strict
        .collect(Vec::new(), target(format!("http://{address}/down")))
        .await
        .unwrap();
    assert_eq!(
        gauge(&down, "probe_success"),
        1.0,
        "503 is accepted and the body matches"
    );
    let ok = strict
        .collect(Vec::new(), target(format!("http://{address}/ok")))
        .await
        .unwrap();
    assert_eq!(gauge(&ok, "probe_success"), 0.0);
    assert_eq!(
        gauge(&ok, "probe_failed_due_to_body"),
        0.0,
        "the status already failed"
    );
    let error = load(
        &runtime,
        "exporter-http-probe",
        PluginKind::Exporter,
        &[("valid_status_codes", "2xx")],
        Capabilities::none(),
    )
    .await
    .unwrap()
    .expect_err("bad status list");
    assert!(error.to_string().contains("valid_status_codes"), "{error}");
}

// --- remote-storage-influxdb (Rust) against a real InfluxDB ----------------

/// A real InfluxDB 1.x on loopback ports, in a temporary directory; killed
/// on drop.
struct Influx {
    child: std::process::Child,
    address: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Influx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Influx {
    async fn start() -> Option<Influx> {
        let Some(influxd) = ["/usr/bin/influxd", "/usr/local/bin/influxd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        else {
            eprintln!("skipping: influxd is not installed; run scripts/setup.sh --test-peers");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let http_port = closed_port();
        let rpc_port = closed_port();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc_port}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n",
            d = dir.path().display()
        );
        let config_path = dir.path().join("influxdb.conf");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("influxd.log")).unwrap();
        let child = std::process::Command::new(influxd)
            .arg("-config")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start influxd");
        let influx = Influx {
            child,
            address: ([127, 0, 0, 1], http_port).into(),
            _dir: dir,
        };
        for _ in 0..200 {
            if let Ok((204, _)) = http(influx.address, "GET", "/ping", "").await {
                return Some(influx);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("influxd did not answer /ping within 10 s");
    }

    async fn query(&self, db: &str, q: &str) -> String {
        let path = format!("/query?db={db}&epoch=ms&q={}", query_escape(q));
        let (status, body) = http(self.address, "POST", &path, "").await.expect("query");
        assert_eq!(status, 200, "{q}: {body}");
        body
    }
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series {
        labels: labels(pairs),
        samples: samples.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_adapter_writes_line_protocol_that_influxdb_stores() {
    let Some(path) = plugin_path("remote-storage-influxdb") else {
        return;
    };
    let _ = path;
    let Some(influx) = Influx::start().await else {
        return;
    };
    influx.query("", "CREATE DATABASE ember").await;
    let url = format!("http://{}", influx.address);
    let runtime = runtime();
    let plugin = load(
        &runtime,
        "remote-storage-influxdb",
        PluginKind::RemoteStorage,
        &[("url", url.as_str()), ("database", "ember")],
        allow(influx.address),
    )
    .await
    .unwrap()
    .expect("load");

    let now = 1_700_000_000_000_i64;
    let batch = vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "web, main"),
            ],
            &[(now, 1027.0), (now + 15_000, 1030.5)],
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "web, main"),
            ],
            // A stale marker and an infinity cannot be stored and are skipped.
            &[
                (now, 3.0),
                (now + 15_000, f64::from_bits(0x7ff0_0000_0000_0002)),
                (now + 30_000, f64::INFINITY),
            ],
        ),
        series(
            &[("__name__", "temperature celsius"), ("room", "a=b")],
            &[(now, -4.25)],
        ),
        series(&[("job", "no-name")], &[(now, 1.0)]),
    ];
    plugin.write(batch).await.expect("call").expect("write");

    let body = influx
        .query("ember", "SELECT * FROM http_requests_total ORDER BY time")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = &json["results"][0]["series"][0];
    assert_eq!(
        result["columns"],
        serde_json::json!(["time", "code", "job", "value"]),
        "{body}"
    );
    assert_eq!(
        result["values"],
        serde_json::json!([
            // InfluxDB's JSON writes whole floats without a fraction.
            [now, "200", "web, main", 1027],
            [now, "500", "web, main", 3],
            [now + 15_000, "200", "web, main", 1030.5],
        ]),
        "{body}"
    );
    let body = influx
        .query("ember", "SELECT * FROM \"temperature celsius\"")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["results"][0]["series"][0]["values"],
        serde_json::json!([[now, "a=b", -4.25]]),
        "escaped measurement and tag value: {body}"
    );

    // A database that does not exist: InfluxDB says 404, a permanent error.
    let missing = load(
        &runtime,
        "remote-storage-influxdb",
        PluginKind::RemoteStorage,
        &[("url", url.as_str()), ("database", "absent")],
        allow(influx.address),
    )
    .await
    .unwrap()
    .expect("load");
    let verdict = missing
        .write(vec![series(&[("__name__", "x")], &[(now, 1.0)])])
        .await
        .expect("call");
    assert!(
        matches!(verdict, Err(WriteError::Permanent(ref m)) if m.contains("404")),
        "{verdict:?}"
    );

    // InfluxDB gone: retryable, so the server keeps the batch.
    let address = influx.address;
    drop(influx);
    let verdict = plugin
        .write(vec![series(&[("__name__", "x")], &[(now, 1.0)])])
        .await
        .expect("call");
    assert!(
        matches!(verdict, Err(WriteError::Retryable { .. })),
        "{address}: {verdict:?}"
    );
    assert_eq!(plugin.status().traps, 0);
}

// --- relabel-c-truncate (C) ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_relabeler_truncates_values_on_character_boundaries_and_drops_by_prefix() {
    let runtime = runtime();
    let Some(plugin) = load(
        &runtime,
        "relabel-c-truncate",
        PluginKind::Relabeler,
        &[("max_length", "5"), ("drop_prefix", "debug_")],
        Capabilities::none(),
    )
    .await
    else {
        return;
    };
    let plugin = plugin.expect("load");
    let long_name = "a_metric_name_longer_than_five";
    let batch = vec![
        labels(&[
            ("__name__", long_name),
            ("path", "/api/v1/query"),
            ("zone", "eu"),
        ]),
        labels(&[("__name__", "debug_requests"), ("path", "/x")]),
        // "aé€" is 1 + 2 + 3 bytes: cutting at 5 would split the euro sign.
        labels(&[("__name__", "up"), ("word", "aé€x")]),
        labels(&[("__name__", "up")]),
    ];
    let out = plugin.relabel(batch).await.expect("relabel");
    assert_eq!(out.len(), 4, "one answer per input set");
    let first = out[0].as_ref().expect("kept");
    assert_eq!(
        label(first, "__name__"),
        Some(long_name),
        "__name__ is never cut"
    );
    assert_eq!(label(first, "path"), Some("/api/"));
    assert_eq!(label(first, "zone"), Some("eu"));
    assert!(out[1].is_none(), "debug_ metrics are dropped");
    assert_eq!(label(out[2].as_ref().unwrap(), "word"), Some("aé"));
    assert_eq!(out[3].as_ref().unwrap().len(), 1);

    // A whole scrape in one call.
    let big: Vec<_> = (0..10_000)
        .map(|i| labels(&[("__name__", "m"), ("id", &format!("series-{i:06}"))]))
        .collect();
    let out = plugin.relabel(big).await.expect("10k series");
    assert_eq!(out.len(), 10_000);
    assert_eq!(label(out[9_999].as_ref().unwrap(), "id"), Some("serie"));

    let error = load(
        &runtime,
        "relabel-c-truncate",
        PluginKind::Relabeler,
        &[("max_length", "0")],
        Capabilities::none(),
    )
    .await
    .unwrap()
    .expect_err("max_length 0");
    assert!(error.to_string().contains("max_length"), "{error}");
}

// --- discovery-python-ranges (Python) --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_discovery_expands_host_ranges() {
    let runtime = runtime();
    let Some(plugin) = load(
        &runtime,
        "discovery-python-ranges",
        PluginKind::Discovery,
        &[
            (
                "hosts",
                "web-[08:10].example.net:9100, 10.0.0.[1:9:4]:9100 db:5432",
            ),
            ("labels", "env=prod, team = storage"),
        ],
        Capabilities::none(),
    )
    .await
    else {
        return;
    };
    let plugin = plugin.expect("load");
    let groups = plugin.refresh().await.expect("refresh");
    let sources: Vec<_> = groups.iter().map(|g| g.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "ranges:web-[08:10].example.net:9100",
            "ranges:10.0.0.[1:9:4]:9100",
            "ranges:db:5432"
        ]
    );
    let addresses = |i: usize| -> Vec<String> {
        groups[i]
            .targets
            .iter()
            .map(|t| label(t, "__address__").unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        addresses(0),
        [
            "web-08.example.net:9100",
            "web-09.example.net:9100",
            "web-10.example.net:9100"
        ],
        "zero padding follows the start's width"
    );
    assert_eq!(
        addresses(1),
        ["10.0.0.1:9100", "10.0.0.5:9100", "10.0.0.9:9100"]
    );
    assert_eq!(addresses(2), ["db:5432"]);
    assert_eq!(
        label(&groups[1].targets[2], "__meta_ranges_index"),
        Some("2")
    );
    assert_eq!(
        label(&groups[0].labels, "__meta_ranges_label_team"),
        Some("storage")
    );
    // The instance keeps its answer across calls.
    assert_eq!(plugin.refresh().await.expect("second refresh"), groups);

    for (hosts, expected) in [
        ("web-[5:1]", "start <= end"),
        ("web-[1:20000]", "at most 10000"),
        ("web-[a:b]", "a range is"),
    ] {
        let error = load(
            &runtime,
            "discovery-python-ranges",
            PluginKind::Discovery,
            &[("hosts", hosts)],
            Capabilities::none(),
        )
        .await
        .unwrap()
        .expect_err(hosts);
        assert!(error.to_string().contains(expected), "{hosts}: {error}");
    }
}

// --- exporter-js-json (JavaScript) -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_exporter_turns_json_numbers_into_gauges() {
    let app = axum::Router::new()
        .route(
            "/status",
            axum::routing::get(|| async {
                r#"{"queue": {"depth": 12, "workers": 3}, "healthy": true,
                    "version": "1.2", "ratio": 0.25, "tags": [1, 2], "gone": null}"#
            }),
        )
        .route(
            "/down",
            axum::routing::get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "{}") }),
        );
    let address = serve(app).await;
    let runtime = runtime();
    let url = format!("http://{address}/status");
    let Some(plugin) = load(
        &runtime,
        "exporter-js-json",
        PluginKind::Exporter,
        &[("url", url.as_str()), ("prefix", "svc")],
        allow(address),
    )
    .await
    else {
        return;
    };
    let plugin = plugin.expect("load");
    let families = plugin
        .collect(Vec::new(), Vec::new())
        .await
        .expect("collect");
    let mut names: Vec<_> = families.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "svc_document_bytes",
            "svc_healthy",
            "svc_queue_depth",
            "svc_queue_workers",
            "svc_ratio",
            "svc_scrape_duration_seconds"
        ]
    );
    assert_eq!(gauge(&families, "svc_queue_depth"), 12.0);
    assert_eq!(gauge(&families, "svc_healthy"), 1.0);
    assert_eq!(gauge(&families, "svc_ratio"), 0.25);

    // The `target` parameter overrides the configured URL; a bad status
    // fails the scrape as `unavailable`.
    let error = plugin
        .collect(
            Vec::new(),
            vec![("target".into(), format!("http://{address}/down"))],
        )
        .await
        .expect_err("502");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Unavailable(ref m)) if m.contains("502")),
        "{error}"
    );
    // Hosts outside allowed_hosts are unreachable.
    let error = plugin
        .collect(
            Vec::new(),
            vec![("target".into(), "http://127.0.0.2:9/x".into())],
        )
        .await
        .expect_err("not allowed");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Unavailable(_))),
        "{error}"
    );

    let fields = load(
        &runtime,
        "exporter-js-json",
        PluginKind::Exporter,
        &[
            ("url", url.as_str()),
            ("fields", "queue.depth, missing.field"),
        ],
        allow(address),
    )
    .await
    .unwrap()
    .expect("load");
    let error = fields
        .collect(Vec::new(), Vec::new())
        .await
        .expect_err("missing field");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::InvalidInput(ref m)) if m.contains("missing.field")),
        "{error}"
    );
    assert_eq!(plugin.status().traps, 0);
}
