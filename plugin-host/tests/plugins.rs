//! Loads the real plugins built by `scripts/build-plugins.sh` and checks
//! their results and their containment.
//!
//! The plugins are WebAssembly modules under `target/plugins/`; when they are
//! missing (the build script was not run) every test here says so and
//! returns without checking anything.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ember_plugin_host::{
    Capabilities, GuestError, Labels, Limits, MatchOp, MetricType, Plugin, PluginCallError,
    PluginError, PluginKind, PluginRuntime, PluginSource, PluginSpec, PluginState, ReadQuery,
    RuntimeConfig, Series, TargetGroup, WriteError,
};
use sha2::{Digest, Sha256};

fn plugin_path(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh to build the test plugins",
            path.display()
        );
        None
    }
}

/// One compile cache for the whole test binary, so each plugin is compiled
/// once per run rather than once per test.
fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory"))
        .path()
        .to_path_buf()
}

fn runtime() -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        epoch_tick: Duration::from_millis(5),
    })
    .expect("runtime")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// Limits that make failures quick to provoke and to recover from.
fn test_limits() -> Limits {
    Limits {
        call_timeout: Duration::from_millis(300),
        host_call_grace: Duration::from_millis(300),
        max_memory_bytes: 32 << 20,
        max_instances: 1,
        max_consecutive_failures: 3,
        restart_backoff: Duration::from_millis(200),
        max_restart_backoff: Duration::from_secs(1),
        ..Limits::default()
    }
}

async fn misbehaving(runtime: &PluginRuntime, name: &str) -> Option<Plugin> {
    let path = plugin_path("misbehaving-relabeler")?;
    let spec = PluginSpec::new(name, PluginKind::Relabeler, PluginSource::Path(path))
        .with_limits(test_limits());
    Some(
        runtime
            .load(spec)
            .await
            .expect("load misbehaving-relabeler"),
    )
}

async fn hash_pii(runtime: &PluginRuntime) -> Option<Plugin> {
    let path = plugin_path("relabel-hash-pii")?;
    let spec = PluginSpec::new("hash-pii", PluginKind::Relabeler, PluginSource::Path(path))
        .with_config([
            ("labels", "email, user"),
            ("salt", "pepper"),
            ("length", "20"),
        ]);
    Some(runtime.load(spec).await.expect("load relabel-hash-pii"))
}

/// A call that asks the misbehaving plugin for `behaviour`.
async fn provoke(plugin: &Plugin, behaviour: &str) -> Result<Vec<Option<Labels>>, PluginCallError> {
    plugin
        .relabel(vec![labels(&[("__behaviour__", behaviour), ("job", "x")])])
        .await
}

/// Waits out the plugin's restart backoff.
async fn after_backoff(plugin: &Plugin) {
    if let PluginState::BackingOff { until } = plugin.status().state {
        tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    }
}

fn expected_pseudonym(value: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"pepper")
        .chain_update(value)
        .finalize();
    digest
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>()[..20]
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_pii_replaces_configured_labels_only() {
    let runtime = runtime();
    let Some(plugin) = hash_pii(&runtime).await else {
        return;
    };
    let batch = vec![
        labels(&[
            ("__name__", "logins_total"),
            ("email", "ann@example.com"),
            ("job", "web"),
        ]),
        labels(&[
            ("__name__", "logins_total"),
            ("job", "web"),
            ("user", "bob"),
        ]),
        labels(&[("__name__", "up"), ("email", ""), ("job", "web")]),
    ];
    let out = plugin.relabel(batch).await.expect("relabel");
    assert_eq!(
        out,
        vec![
            Some(labels(&[
                ("__name__", "logins_total"),
                ("email", &expected_pseudonym("ann@example.com")),
                ("job", "web"),
            ])),
            Some(labels(&[
                ("__name__", "logins_total"),
                ("job", "web"),
                ("user", &expected_pseudonym("bob")),
            ])),
            // An empty value is an absent label and stays empty.
            Some(labels(&[("__name__", "up"), ("email", ""), ("job", "web")])),
        ]
    );
    let status = plugin.status();
    assert_eq!((status.calls, status.errors, status.traps), (1, 0, 0));
    assert_eq!(status.state, PluginState::Ready);
    assert_eq!(status.idle_instances, 1);
    // A Rust plugin starts with about a megabyte of linear memory.
    assert!(
        (1 << 20..8 << 20).contains(&status.memory_bytes),
        "{} bytes",
        status.memory_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_pii_handles_a_whole_scrape_in_one_call() {
    let runtime = runtime();
    let Some(plugin) = hash_pii(&runtime).await else {
        return;
    };
    let batch: Vec<Labels> = (0..10_000)
        .map(|i| {
            labels(&[
                ("__name__", "requests_total"),
                ("email", &format!("user{i}@example.com")),
                ("instance", "web-1:9100"),
            ])
        })
        .collect();
    let out = plugin.relabel(batch).await.expect("relabel");
    assert_eq!(out.len(), 10_000);
    let last = out[9_999].as_ref().expect("kept");
    assert_eq!(
        last[1],
        (
            "email".to_owned(),
            expected_pseudonym("user9999@example.com")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_fails_the_load() {
    let runtime = runtime();
    let Some(path) = plugin_path("relabel-hash-pii") else {
        return;
    };
    let spec = PluginSpec::new(
        "hash-pii",
        PluginKind::Relabeler,
        PluginSource::Path(path.clone()),
    )
    .with_config([("length", "20")]);
    let error = runtime.load(spec).await.expect_err("labels is required");
    assert!(
        matches!(&error, PluginError::Init(message) if message.contains("labels")),
        "{error}"
    );
    let spec = PluginSpec::new("hash-pii", PluginKind::Relabeler, PluginSource::Path(path))
        .with_config([("labels", "email"), ("length", "4")]);
    let error = runtime
        .load(spec)
        .await
        .expect_err("length is out of range");
    assert!(
        matches!(&error, PluginError::Init(message) if message.contains("length")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_of_another_world_is_rejected_at_load() {
    let runtime = runtime();
    let Some(path) = plugin_path("misbehaving-relabeler") else {
        return;
    };
    let spec = PluginSpec::new("wrong", PluginKind::Exporter, PluginSource::Path(path));
    let error = runtime
        .load(spec)
        .await
        .expect_err("a relabeler is not an exporter");
    assert!(
        matches!(
            &error,
            PluginError::WrongWorld {
                kind: PluginKind::Exporter,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_the_wrong_kind_are_refused() {
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "kind").await else {
        return;
    };
    let error = plugin
        .collect(Vec::new(), Vec::new())
        .await
        .expect_err("not an exporter");
    assert_eq!(
        error,
        PluginCallError::WrongKind {
            plugin: PluginKind::Relabeler,
            called: PluginKind::Exporter
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let Some(path) = plugin_path("relabel-hash-pii") else {
        return;
    };
    let load = || {
        let runtime = PluginRuntime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let spec = PluginSpec::new("p", PluginKind::Relabeler, PluginSource::Path(path.clone()))
            .with_config([("labels", "email")]);
        runtime.load_blocking(spec).expect("load")
    };
    assert!(
        !load().status().loaded_from_cache,
        "the first load compiles"
    );
    let artifacts: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "one artifact: {artifacts:?}");
    let plugin = load();
    assert!(
        plugin.status().loaded_from_cache,
        "the second load uses the cache"
    );
    let out = plugin
        .relabel(vec![labels(&[("email", "a")])])
        .await
        .expect("relabel");
    assert_ne!(out[0].as_ref().unwrap()[0].1, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out_and_the_plugin_recovers() {
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "looper").await else {
        return;
    };
    let started = Instant::now();
    let error = provoke(&plugin, "loop").await.expect_err("must time out");
    let elapsed = started.elapsed();
    assert_eq!(error, PluginCallError::Timeout(Duration::from_millis(300)));
    assert!(
        elapsed < Duration::from_millis(2000),
        "interrupted after {elapsed:?}"
    );
    let status = plugin.status();
    assert_eq!((status.timeouts, status.consecutive_failures), (1, 1));
    assert!(
        matches!(status.state, PluginState::BackingOff { .. }),
        "{status:?}"
    );

    // During the backoff calls fail fast; afterwards a new instance serves.
    assert!(matches!(
        provoke(&plugin, "echo").await,
        Err(PluginCallError::BackingOff { .. })
    ));
    after_backoff(&plugin).await;
    let out = provoke(&plugin, "echo")
        .await
        .expect("restarted instance works");
    let echoed = out[0].as_ref().unwrap();
    assert!(
        echoed.contains(&("calls".to_owned(), "1".to_owned())),
        "fresh instance: {echoed:?}"
    );
    let status = plugin.status();
    assert_eq!((status.restarts, status.consecutive_failures), (1, 0));
    assert_eq!(status.state, PluginState::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_plugin_keeps_working_while_another_loops() {
    let runtime = runtime();
    let Some(path) = plugin_path("misbehaving-relabeler") else {
        return;
    };
    // A long deadline, so the loop is certainly still running while the good
    // plugin serves, even on a loaded machine.
    let limits = Limits {
        call_timeout: Duration::from_secs(3),
        ..test_limits()
    };
    let spec = PluginSpec::new("looper", PluginKind::Relabeler, PluginSource::Path(path))
        .with_limits(limits);
    let looper = runtime.load(spec).await.expect("load");
    let Some(good) = hash_pii(&runtime).await else {
        return;
    };
    let looping = tokio::spawn(async move { provoke(&looper, "loop").await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    for _ in 0..20 {
        good.relabel(vec![labels(&[("email", "a@b")])])
            .await
            .expect("good plugin works");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "20 calls took {:?}",
        started.elapsed()
    );
    assert!(
        !looping.is_finished(),
        "the loop is still running during the good calls"
    );
    assert!(matches!(
        looping.await.unwrap(),
        Err(PluginCallError::Timeout(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_cap() {
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "bomb").await else {
        return;
    };
    let error = provoke(&plugin, "memory-bomb")
        .await
        .expect_err("must run out of memory");
    assert_eq!(
        error,
        PluginCallError::OutOfMemory {
            limit_bytes: 32 << 20
        }
    );
    assert_eq!(plugin.status().out_of_memory, 1);
    after_backoff(&plugin).await;
    provoke(&plugin, "echo")
        .await
        .expect("a new instance has fresh memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_traps_disable_the_plugin_until_enabled() {
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "panicker").await else {
        return;
    };
    for attempt in 1..=3u32 {
        after_backoff(&plugin).await;
        let error = provoke(&plugin, "panic").await.expect_err("panics trap");
        assert!(
            matches!(&error, PluginCallError::Trap(message) if message.contains("unreachable")),
            "attempt {attempt}: {error}"
        );
        assert_eq!(plugin.status().consecutive_failures, attempt);
    }
    let status = plugin.status();
    assert_eq!(status.state, PluginState::Disabled);
    assert_eq!((status.traps, status.restarts), (3, 2));
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("trapped"),
        "{status:?}"
    );
    assert_eq!(
        provoke(&plugin, "echo").await,
        Err(PluginCallError::Disabled)
    );

    plugin.enable();
    provoke(&plugin, "echo").await.expect("enabled again");
    assert_eq!(plugin.status().state, PluginState::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_violations_and_guest_errors_keep_the_instance() {
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "shapes").await else {
        return;
    };
    let error = plugin
        .relabel(vec![
            labels(&[("__behaviour__", "wrong-count")]),
            labels(&[("a", "1")]),
        ])
        .await
        .expect_err("one answer for two inputs");
    assert_eq!(
        error,
        PluginCallError::InvalidOutput("relabel answered 1 sets for 2 label sets".to_owned())
    );
    let error = provoke(&plugin, "duplicate-labels")
        .await
        .expect_err("a label is named twice");
    assert!(
        matches!(&error, PluginCallError::InvalidOutput(m) if m.contains("\"__behaviour__\" appears twice")),
        "{error}"
    );
    let error = provoke(&plugin, "bad-span")
        .await
        .expect_err("a span past the text");
    assert!(
        matches!(&error, PluginCallError::InvalidOutput(m) if m.contains("outside")),
        "{error}"
    );
    let error = provoke(&plugin, "guest-error")
        .await
        .expect_err("typed error");
    assert!(matches!(
        error,
        PluginCallError::Guest(GuestError::InvalidInput(_))
    ));

    // The same instance served all of these: its call counter went on.
    let out = provoke(&plugin, "echo").await.expect("echo");
    assert!(
        out[0]
            .as_ref()
            .unwrap()
            .contains(&("calls".to_owned(), "5".to_owned()))
    );
    let status = plugin.status();
    assert_eq!(
        (
            status.errors,
            status.traps,
            status.restarts,
            status.consecutive_failures
        ),
        (4, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enormous_output_is_refused() {
    let runtime = runtime();
    let Some(path) = plugin_path("misbehaving-relabeler") else {
        return;
    };
    let limits = Limits {
        max_output_bytes: 4 << 20,
        max_memory_bytes: 64 << 20,
        ..test_limits()
    };
    let spec =
        PluginSpec::new("big", PluginKind::Relabeler, PluginSource::Path(path)).with_limits(limits);
    let plugin = runtime.load(spec).await.expect("load");
    let enormous = |mib: &str| {
        plugin.relabel(vec![labels(&[
            ("__behaviour__", "enormous"),
            ("__size_mib__", mib),
        ])])
    };
    // Within the memory cap, past the output limit: refused after copying.
    let error = enormous("8")
        .await
        .expect_err("8 MiB is over the output limit");
    assert!(
        matches!(&error, PluginCallError::InvalidOutput(m) if m.contains("4194304")),
        "{error}"
    );
    // Past the memory cap: the plugin cannot even build it.
    let error = enormous("64")
        .await
        .expect_err("64 MiB is over the memory cap");
    assert!(
        matches!(error, PluginCallError::OutOfMemory { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_init_fails_the_load() {
    let runtime = runtime();
    let Some(path) = plugin_path("misbehaving-relabeler") else {
        return;
    };
    let spec = PluginSpec::new("init", PluginKind::Relabeler, PluginSource::Path(path))
        .with_config([("fail_init", "yes")]);
    let error = runtime.load(spec).await.expect_err("init fails");
    assert!(
        matches!(&error, PluginError::Init(m) if m.contains("fail_init")),
        "{error}"
    );
}

async fn exporter(runtime: &PluginRuntime, capabilities: Capabilities) -> Option<Plugin> {
    let path = plugin_path("exporter-fixture")?;
    let spec = PluginSpec::new("fixture", PluginKind::Exporter, PluginSource::Path(path))
        .with_limits(test_limits())
        .with_capabilities(capabilities);
    Some(runtime.load(spec).await.expect("load exporter-fixture"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_collects_metric_families() {
    let runtime = runtime();
    let Some(plugin) = exporter(&runtime, Capabilities::none()).await else {
        return;
    };
    let target = labels(&[
        ("__address__", "db:5432"),
        ("instance", "db:5432"),
        ("job", "pg"),
    ]);
    let params = vec![("module".to_owned(), "default".to_owned())];
    let families = plugin
        .collect(target.clone(), params.clone())
        .await
        .expect("collect");
    let names: Vec<_> = families
        .iter()
        .map(|f| (f.name.as_str(), f.metric_type))
        .collect();
    assert_eq!(
        names,
        [
            ("fixture_collections", MetricType::Counter),
            ("fixture_target_labels", MetricType::Gauge),
            ("fixture_param", MetricType::Gauge),
        ]
    );
    assert_eq!(families[0].help, "Calls this instance served.");
    assert_eq!(families[0].samples[0].name, "fixture_collections_total");
    assert_eq!(families[0].samples[0].value, 1.0);
    assert_eq!(families[1].samples[0].value, 3.0);
    assert_eq!(
        families[2].samples[0].labels,
        labels(&[("name", "module"), ("value", "default")])
    );
    let again = plugin.collect(target, params).await.expect("collect");
    assert_eq!(
        again[0].samples[0].value, 2.0,
        "the instance persists between calls"
    );
}

/// Serves `GET /` with "hello" and `GET /slow` after ten seconds, on a
/// loopback port.
async fn http_server() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn http_params(url: String) -> Vec<(String, String)> {
    vec![
        ("behaviour".to_owned(), "http-get".to_owned()),
        ("url".to_owned(), url),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_http_reaches_allowed_hosts_only() {
    let address = http_server().await;
    let allowed = Capabilities::none()
        .with_allowed_hosts([format!("127.0.0.1:{}", address.port())])
        .unwrap();
    let runtime = runtime();
    let Some(plugin) = exporter(&runtime, allowed).await else {
        return;
    };
    let families = plugin
        .collect(Vec::new(), http_params(format!("http://{address}/")))
        .await
        .expect("allowed request");
    assert_eq!(families[0].name, "fixture_http_status");
    assert_eq!(families[0].samples[0].value, 200.0);
    assert_eq!(families[1].samples[0].value, 5.0, "body is \"hello\"");

    // Another port of the same host, and another host, are denied.
    for url in [
        format!("http://127.0.0.1:{}/", address.port() + 1),
        "http://localhost/".into(),
    ] {
        let error = plugin
            .collect(Vec::new(), http_params(url.clone()))
            .await
            .expect_err(&url);
        assert!(
            matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
            "{url}: {error}"
        );
    }
    assert_eq!(plugin.status().traps, 0);

    let Some(closed) = exporter(&runtime, Capabilities::none()).await else {
        return;
    };
    let error = closed
        .collect(Vec::new(), http_params(format!("http://{address}/")))
        .await
        .expect_err("no hosts granted");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_call_is_bounded_by_the_call_deadline() {
    let address = http_server().await;
    let allowed = Capabilities::none()
        .with_allowed_hosts([format!("127.0.0.1:{}", address.port())])
        .unwrap();
    let runtime = runtime();
    let Some(plugin) = exporter(&runtime, allowed).await else {
        return;
    };
    let started = Instant::now();
    let error = plugin
        .collect(Vec::new(), http_params(format!("http://{address}/slow")))
        .await
        .expect_err("the server answers after the deadline");
    let elapsed = started.elapsed();
    // The request's timeouts are capped at the call's remaining time, so the
    // guest sees a timeout error from wasi:http; if it did not, the outer
    // timeout would end the call at call_timeout + host_call_grace.
    assert!(
        matches!(
            error,
            PluginCallError::Guest(GuestError::Unavailable(_)) | PluginCallError::Timeout(_)
        ),
        "{error}"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "ended after {elapsed:?}"
    );
    // The plugin still answers.
    plugin
        .collect(Vec::new(), Vec::new())
        .await
        .expect("collect after a slow call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_panic_is_a_trap_and_a_restart() {
    let runtime = runtime();
    let Some(plugin) = exporter(&runtime, Capabilities::none()).await else {
        return;
    };
    let params = vec![("behaviour".to_owned(), "panic".to_owned())];
    let error = plugin.collect(Vec::new(), params).await.expect_err("panic");
    assert!(matches!(error, PluginCallError::Trap(_)), "{error}");
    after_backoff(&plugin).await;
    let families = plugin
        .collect(Vec::new(), Vec::new())
        .await
        .expect("restarted");
    assert_eq!(
        families[0].samples[0].value, 1.0,
        "a fresh instance counts from one"
    );
    assert_eq!(plugin.status().restarts, 1);
}

fn behaviour(name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = vec![("behaviour".to_owned(), name.to_owned())];
    params.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_environment_variables_are_visible() {
    // PATH and HOME exist in any test environment; only PATH is granted, plus
    // a name that is unset on the host.
    let granted = Capabilities {
        env: vec!["PATH".to_owned(), "EMBER_SURELY_UNSET_VARIABLE".to_owned()],
        ..Capabilities::none()
    };
    let runtime = runtime();
    let Some(plugin) = exporter(&runtime, granted).await else {
        return;
    };
    let families = plugin
        .collect(Vec::new(), behaviour("env", &[]))
        .await
        .expect("env");
    let names: Vec<&str> = families[0]
        .samples
        .iter()
        .filter_map(|s| {
            s.labels
                .iter()
                .find(|(n, _)| n == "name")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert_eq!(names, ["PATH"]);

    let Some(closed) = exporter(&runtime, Capabilities::none()).await else {
        return;
    };
    let families = closed
        .collect(Vec::new(), behaviour("env", &[]))
        .await
        .expect("env");
    assert!(
        families[0].samples.is_empty(),
        "no variables by default: {families:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_is_closed_unless_a_directory_is_granted_read_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.json"), b"[1, 2, 3]").unwrap();
    let runtime = runtime();

    let Some(closed) = exporter(&runtime, Capabilities::none()).await else {
        return;
    };
    let error = closed
        .collect(
            Vec::new(),
            behaviour("read-file", &[("path", "inventory.json")]),
        )
        .await
        .expect_err("no directory granted");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
        "{error}"
    );

    let granted = Capabilities {
        read_only_dir: Some(ember_plugin_host::ReadOnlyDir {
            host_path: dir.path().to_path_buf(),
            guest_path: "/data".to_owned(),
        }),
        ..Capabilities::none()
    };
    let Some(plugin) = exporter(&runtime, granted).await else {
        return;
    };
    let families = plugin
        .collect(
            Vec::new(),
            behaviour("read-file", &[("path", "inventory.json")]),
        )
        .await
        .expect("granted directory is readable");
    assert_eq!(families[0].samples[0].value, 9.0);

    for path in ["new.txt", "inventory.json", "../escape.txt"] {
        let error = plugin
            .collect(Vec::new(), behaviour("write-file", &[("path", path)]))
            .await
            .expect_err("read-only");
        assert!(
            matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
            "{path}: {error}"
        );
    }
    let error = plugin
        .collect(
            Vec::new(),
            behaviour("read-file", &[("path", "../../etc/passwd")]),
        )
        .await
        .expect_err("no escape from the granted directory");
    assert!(
        matches!(error, PluginCallError::Guest(GuestError::Denied(_))),
        "{error}"
    );
    assert!(!dir.path().join("new.txt").exists());
    assert_eq!(
        std::fs::read(dir.path().join("inventory.json")).unwrap(),
        b"[1, 2, 3]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_read_only_directory_fails_the_load() {
    let Some(path) = plugin_path("exporter-fixture") else {
        return;
    };
    let capabilities = Capabilities {
        read_only_dir: Some(ember_plugin_host::ReadOnlyDir {
            host_path: PathBuf::from("/nonexistent/ember/plugin/dir"),
            guest_path: "/data".to_owned(),
        }),
        ..Capabilities::none()
    };
    let spec = PluginSpec::new("fixture", PluginKind::Exporter, PluginSource::Path(path))
        .with_capabilities(capabilities);
    let error = runtime().load(spec).await.expect_err("missing directory");
    assert!(matches!(error, PluginError::Directory { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_plugin_reports_target_groups() {
    let Some(path) = plugin_path("discovery-fixture") else {
        return;
    };
    let runtime = runtime();
    let spec = PluginSpec::new(
        "sd",
        PluginKind::Discovery,
        PluginSource::Path(path.clone()),
    )
    .with_config([("targets", "10.0.0.1:9100, 10.0.0.2:9100"), ("env", "prod")]);
    let plugin = runtime.load(spec).await.expect("load discovery-fixture");
    let groups = plugin.refresh().await.expect("refresh");
    assert_eq!(
        groups,
        [TargetGroup {
            source: "fixture/static".to_owned(),
            targets: vec![
                labels(&[
                    ("__address__", "10.0.0.1:9100"),
                    ("__meta_fixture_index", "0"),
                    ("__meta_fixture_refresh", "1"),
                ]),
                labels(&[
                    ("__address__", "10.0.0.2:9100"),
                    ("__meta_fixture_index", "1"),
                    ("__meta_fixture_refresh", "1"),
                ]),
            ],
            labels: labels(&[("env", "prod")]),
        }]
    );
    let again = plugin.refresh().await.expect("refresh");
    assert_eq!(again[0].targets[0][2].1, "2");

    let spec = PluginSpec::new("sd-empty", PluginKind::Discovery, PluginSource::Path(path));
    let empty = runtime.load(spec).await.expect("load");
    assert!(matches!(
        empty.refresh().await,
        Err(PluginCallError::Guest(GuestError::Unavailable(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_storage_plugin_writes_reads_and_classifies_failures() {
    let Some(path) = plugin_path("remote-storage-fixture") else {
        return;
    };
    let runtime = runtime();
    let spec = PluginSpec::new("rs", PluginKind::RemoteStorage, PluginSource::Path(path));
    let plugin = runtime
        .load(spec)
        .await
        .expect("load remote-storage-fixture");
    let series = |name: &str, extra: &[(&str, &str)], samples: Vec<(i64, f64)>| {
        let mut set = labels(&[("__name__", name)]);
        set.extend(labels(extra));
        Series {
            labels: set,
            samples,
        }
    };
    let batch = vec![
        series(
            "up",
            &[("job", "a")],
            vec![(1_000, 1.0), (2_000, 0.0), (3_000, 1.0)],
        ),
        series("up", &[("job", "b")], vec![(1_000, 1.0)]),
    ];
    assert_eq!(plugin.write(batch).await, Ok(Ok(())));
    assert_eq!(
        plugin
            .write(vec![series("x", &[("fail", "retry")], vec![(1, 1.0)])])
            .await,
        Ok(Err(WriteError::Retryable {
            message: "the fixture asks for a retry".to_owned(),
            retry_after: Some(Duration::from_millis(250)),
        }))
    );
    assert!(matches!(
        plugin
            .write(vec![series("x", &[("fail", "permanent")], vec![(1, 1.0)])])
            .await,
        Ok(Err(WriteError::Permanent(_)))
    ));

    let query = ReadQuery {
        start_ms: 1_500,
        end_ms: 3_000,
        matchers: vec![(MatchOp::Equal, "job".to_owned(), "a".to_owned())],
    };
    let found = plugin.read(query).await.expect("read");
    assert_eq!(
        found,
        [series(
            "up",
            &[("job", "a")],
            vec![(2_000, 0.0), (3_000, 1.0)]
        )]
    );
    let regex = ReadQuery {
        start_ms: 0,
        end_ms: 1,
        matchers: vec![(MatchOp::RegexMatch, "job".to_owned(), ".*".to_owned())],
    };
    assert!(matches!(
        plugin.read(regex).await,
        Err(PluginCallError::Guest(GuestError::Unsupported(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_load_as_well_as_core_modules() {
    let Some(path) = plugin_path("relabel-hash-pii") else {
        return;
    };
    let module = std::fs::read(&path).unwrap();
    let component = PluginRuntime::componentize(&module).expect("componentize");
    assert_ne!(component, module);
    assert_eq!(
        PluginRuntime::componentize(&component).expect("already a component"),
        component
    );
    let spec = PluginSpec::new(
        "component",
        PluginKind::Relabeler,
        PluginSource::Bytes(component),
    )
    .with_config([("labels", "email")]);
    let plugin = runtime().load(spec).await.expect("load a component");
    let out = plugin
        .relabel(vec![labels(&[("email", "a")])])
        .await
        .expect("relabel");
    assert_ne!(out[0].as_ref().unwrap()[0].1, "a");
}

/// Everything logged by this test binary, through a global subscriber (plugin
/// calls log from tokio's blocking threads, so a thread-local one would miss
/// them).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static std::sync::Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> =
            Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        let writer = move || LogWriter(logs);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_logs_reach_the_server_log_within_the_line_limit() {
    let logs = captured_logs();
    let runtime = runtime();
    let Some(plugin) = misbehaving(&runtime, "chatty").await else {
        return;
    };
    let batch = vec![labels(&[
        ("__behaviour__", "log"),
        ("__lines__", "150"),
        ("job", "logtest"),
    ])];
    plugin.relabel(batch).await.expect("log and echo");
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("of logtest"))
        .collect();
    assert_eq!(ours.len(), 100, "the default limit is 100 lines per call");
    assert!(
        ours[0].contains("INFO") && ours[0].contains("plugin=\"chatty\""),
        "{}",
        ours[0]
    );
    assert!(ours[99].contains("line 99 of logtest"));
    assert!(text.contains("plugin reached its log line limit for this call"));
}
