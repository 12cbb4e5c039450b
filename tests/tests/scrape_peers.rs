//! Scraping real peers: node_exporter, an app instrumented with the
//! official Python client (in OpenMetrics and in the text format), and
//! Prometheus 2.42 scraping the same targets at the same time, whose stored
//! series set must equal Ember's. Each test skips, saying so, when its peer
//! is not installed (scripts/test installs them).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ember_tests::{ChildGuard, Ember, Options, Prometheus, free_port, have_program, wait_http_ok};
use serde_json::Value;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

fn start_node_exporter() -> Option<(ChildGuard, String)> {
    if !have_program(NODE_EXPORTER) {
        eprintln!(
            "SKIP: {NODE_EXPORTER} is not installed (Debian package prometheus-node-exporter)"
        );
        return None;
    }
    let address = format!("127.0.0.1:{}", free_port());
    // A fixed set of collectors keeps the series set stable between the two
    // servers' scrapes.
    let child = Command::new(NODE_EXPORTER)
        .args([
            &format!("--web.listen-address={address}"),
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--collector.loadavg",
            "--collector.filesystem",
            "--collector.netdev",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let guard = ChildGuard(child);
    assert!(
        wait_http_ok(
            &format!("http://{address}/metrics"),
            Duration::from_secs(20)
        ),
        "node_exporter did not start"
    );
    Some((guard, address))
}

fn start_python_app() -> Option<(ChildGuard, String)> {
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: the Python package prometheus-client is not installed");
        return None;
    }
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/instrumented_app.py");
    let child = Command::new("python3")
        .args([script, &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the python app");
    let guard = ChildGuard(child);
    let address = format!("127.0.0.1:{port}");
    assert!(
        wait_http_ok(
            &format!("http://{address}/metrics"),
            Duration::from_secs(20)
        ),
        "python app did not start"
    );
    Some((guard, address))
}

/// The label sets of every stored series matching `selector`, as strings.
fn series_set(base_url: &str, selector: &str) -> BTreeSet<String> {
    let client = ember_tests::http_client(std::time::Duration::from_secs(30));
    let response = client
        .get(format!("{base_url}/api/v1/series"))
        .query(&[("match[]", selector), ("start", "0")])
        .send()
        .expect("series request");
    let body: Value = response.json().expect("series JSON");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]
        .as_array()
        .expect("series list")
        .iter()
        .map(|labels| {
            let map = labels.as_object().expect("label object");
            let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            pairs.join(",")
        })
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn scrape_config(jobs: &[(&str, &str, &str)]) -> String {
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n");
    for (job, address, extra) in jobs {
        config.push_str(&format!(
            "  - job_name: {job}\n{extra}    static_configs:\n      - targets: ['{address}']\n"
        ));
    }
    config
}

#[test]
fn node_exporter_series_are_stored_with_target_labels() {
    let Some((_node, address)) = start_node_exporter() else {
        return;
    };
    let ember = Ember::start(Options::with_config(scrape_config(&[(
        "node", &address, "",
    )])));
    let series = wait_for("node_cpu_seconds_total", Duration::from_secs(30), || {
        let set = series_set(ember.base_url(), "node_cpu_seconds_total");
        (!set.is_empty()).then_some(set)
    });
    let one = series.iter().next().unwrap();
    for label in [
        "__name__=\"node_cpu_seconds_total\"",
        "cpu=",
        "mode=",
        &format!("instance=\"{address}\""),
        "job=\"node\"",
    ] {
        assert!(one.contains(label), "{label} missing in {one}");
    }
    let up = series_set(ember.base_url(), "up");
    assert_eq!(up.len(), 1);
}

#[test]
fn python_client_app_in_openmetrics_and_text_give_the_same_series() {
    let Some((_app, address)) = start_python_app() else {
        return;
    };
    let config = scrape_config(&[
        ("om", &address, ""),
        (
            "text",
            &address,
            "    scrape_protocols: [PrometheusText0.0.4]\n",
        ),
    ]);
    let ember = Ember::start(Options::with_config(config));
    let without_job = |set: BTreeSet<String>| -> BTreeSet<String> {
        set.into_iter()
            .map(|s| {
                s.split(',')
                    .filter(|p| !p.starts_with("job="))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    let (om, text) = wait_for("both jobs scraped", Duration::from_secs(30), || {
        let om = series_set(ember.base_url(), "{job=\"om\",__name__=~\"app_.*\"}");
        let text = series_set(ember.base_url(), "{job=\"text\",__name__=~\"app_.*\"}");
        (!om.is_empty() && !text.is_empty()).then_some((om, text))
    });
    for expected in [
        "app_requests_total",
        "app_temperature_celsius",
        "app_request_duration_seconds_bucket",
        "app_build_info",
    ] {
        assert!(
            om.iter()
                .any(|s| s.contains(&format!("__name__=\"{expected}\""))),
            "{expected} missing: {om:#?}"
        );
    }
    assert!(om.iter().any(|s| s.contains("le=\"+Inf\"")));
    assert_eq!(
        without_job(om),
        without_job(text),
        "OpenMetrics and text scrapes differ"
    );
}

#[test]
fn series_sets_equal_prometheus_scraping_the_same_targets() {
    let Some((_node, node)) = start_node_exporter() else {
        return;
    };
    let Some((_app, app)) = start_python_app() else {
        return;
    };
    let config = scrape_config(&[("node", &node, ""), ("app", &app, "")]);
    let ember = Ember::start(Options::with_config(config.clone()));
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let prometheus_url = prometheus.url().to_owned();

    // Both have scraped every target a few times once each has five `up`
    // samples; compare then, over all time.
    for url in [ember.base_url(), prometheus_url.as_str()] {
        wait_for("three scrapes", Duration::from_secs(40), || {
            let client = ember_tests::http_client(std::time::Duration::from_secs(30));
            let body: Value = client
                .get(format!("{url}/api/v1/query"))
                .query(&[("query", "count_over_time(up[1m])")])
                .send()
                .ok()?
                .json()
                .ok()?;
            let result = body["data"]["result"].as_array()?;
            (result.len() == 2
                && result.iter().all(|r| {
                    r["value"][1]
                        .as_str()
                        .is_some_and(|v| v.parse::<f64>().unwrap_or(0.0) >= 3.0)
                }))
            .then_some(())
        });
    }
    for selector in ["{job=\"node\"}", "{job=\"app\"}"] {
        let ours = series_set(ember.base_url(), selector);
        let theirs = series_set(&prometheus_url, selector);
        let only_ours: Vec<_> = ours.difference(&theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(&ours).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "{selector}: only in Ember: {only_ours:#?}\nonly in Prometheus: {only_theirs:#?}"
        );
        assert!(
            ours.len() > 10,
            "{selector}: too few series to mean anything: {}",
            ours.len()
        );
    }
}
