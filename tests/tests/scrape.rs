//! Scraping seen from the targets API: a healthy target, malformed and
//! content-type-less ones marked down with the reason, a target dropped by
//! relabeling, and a reload that removes a job.

use std::time::{Duration, Instant};

use ember_tests::{Ember, Options, StaticTarget};
use serde_json::Value;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn targets(ember: &Ember) -> Value {
    let body: Value = ember.get("/api/v1/targets").json().expect("targets JSON");
    assert_eq!(body["status"], "success");
    body["data"].clone()
}

/// Polls the targets API until `done` holds (discovery publishes every 5s).
fn wait_targets(ember: &Ember, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let data = targets(ember);
        if done(&data) {
            return data;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; last answer: {data:#}\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn active<'a>(data: &'a Value, job: &str) -> Option<&'a Value> {
    data["activeTargets"]
        .as_array()?
        .iter()
        .find(|t| t["scrapePool"] == job)
}

#[test]
fn targets_api_reports_health_reasons_and_dropped_targets() {
    let target = StaticTarget::start(vec![
        (
            "/good",
            TEXT,
            "# TYPE a gauge\na{x=\"1\"} 1\nb 2\n".to_owned(),
        ),
        ("/bad", TEXT, "a 1\nb{x=\"1\" 2\n".to_owned()),
        ("/untyped", "", "a 1\n".to_owned()),
    ]);
    let address = target.address();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n\
         - job_name: good\n  metrics_path: /good\n  static_configs:\n    - targets: ['{address}']\n      labels: {{env: test}}\n\
         - job_name: bad\n  metrics_path: /bad\n  static_configs:\n    - targets: ['{address}']\n\
         - job_name: untyped\n  metrics_path: /untyped\n  static_configs:\n    - targets: ['{address}']\n\
         - job_name: dropped\n  relabel_configs:\n    - source_labels: [__address__]\n      regex: '.*'\n      action: drop\n  static_configs:\n    - targets: ['{address}']\n"
    );
    let ember = Ember::start(Options::with_config(config));

    let data = wait_targets(&ember, |d| {
        ["good", "bad", "untyped"]
            .iter()
            .all(|job| active(d, job).is_some_and(|t| t["health"] != "unknown"))
    });

    let good = active(&data, "good").unwrap();
    assert_eq!(good["health"], "up", "{good:#}");
    assert_eq!(good["lastError"], "");
    assert_eq!(
        good["labels"],
        serde_json::json!({"env": "test", "instance": address, "job": "good"})
    );
    assert_eq!(good["discoveredLabels"]["__address__"], address);
    assert_eq!(good["discoveredLabels"]["__metrics_path__"], "/good");
    assert_eq!(good["scrapeUrl"], format!("http://{address}/good"));
    assert_eq!(good["scrapeInterval"], "1s");
    assert_eq!(good["scrapeTimeout"], "500ms");

    let bad = active(&data, "bad").unwrap();
    assert_eq!(bad["health"], "down");
    assert!(
        bad["lastError"].as_str().unwrap().contains("line 2"),
        "{bad:#}"
    );

    let untyped = active(&data, "untyped").unwrap();
    assert_eq!(untyped["health"], "down");
    assert!(
        untyped["lastError"]
            .as_str()
            .unwrap()
            .contains("Content-Type"),
        "{untyped:#}"
    );

    let dropped = data["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{data:#}");
    assert_eq!(dropped[0]["scrapePool"], "dropped");
    assert_eq!(data["droppedTargetCounts"]["dropped"], 1);

    let pools: Value = ember.get("/api/v1/scrape_pools").json().unwrap();
    assert_eq!(
        pools["data"]["scrapePools"],
        serde_json::json!(["bad", "dropped", "good", "untyped"])
    );

    let only_active = ember
        .get("/api/v1/targets?state=active")
        .json::<Value>()
        .unwrap();
    assert!(only_active["data"].get("droppedTargets").is_none());
}

#[test]
fn a_reload_that_removes_a_job_stops_its_targets() {
    let target = StaticTarget::start(vec![("/metrics", TEXT, "a 1\n".to_owned())]);
    let address = target.address();
    let job = |name: &str| {
        format!("- job_name: {name}\n  static_configs:\n    - targets: ['{address}']\n")
    };
    let head = "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n";
    let ember = Ember::start(
        Options::with_config(format!("{head}{}{}", job("one"), job("two")))
            .flag("--web.enable-lifecycle"),
    );
    wait_targets(&ember, |d| {
        active(d, "one").is_some() && active(d, "two").is_some()
    });

    ember.write_config(&format!("{head}{}", job("one")));
    assert_eq!(ember.post("/-/reload").status(), 200);
    let data = wait_targets(&ember, |d| active(d, "two").is_none());
    assert!(active(&data, "one").is_some());
}

#[test]
fn slow_and_oversized_targets_are_down_with_the_reason() {
    let slow = StaticTarget::start_slow(
        vec![("/metrics", TEXT, "a 1\n".to_owned())],
        Duration::from_secs(3),
    );
    let big_body: String = (0..200).map(|i| format!("metric_{i} {i}\n")).collect();
    let big = StaticTarget::start(vec![("/metrics", TEXT, big_body)]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n\
         - job_name: slow\n  static_configs:\n    - targets: ['{}']\n\
         - job_name: big\n  body_size_limit: 1KB\n  static_configs:\n    - targets: ['{}']\n",
        slow.address(),
        big.address()
    );
    let ember = Ember::start(Options::with_config(config));
    let data = wait_targets(&ember, |d| {
        ["slow", "big"]
            .iter()
            .all(|job| active(d, job).is_some_and(|t| t["health"] != "unknown"))
    });
    let slow = active(&data, "slow").unwrap();
    assert_eq!(slow["health"], "down");
    assert!(
        slow["lastError"]
            .as_str()
            .unwrap()
            .contains("context deadline exceeded"),
        "{slow:#}"
    );
    let duration = slow["lastScrapeDuration"].as_f64().unwrap();
    assert!(duration < 1.5, "the timeout bounds the scrape: {duration}");
    let big = active(&data, "big").unwrap();
    assert_eq!(big["health"], "down");
    assert!(
        big["lastError"]
            .as_str()
            .unwrap()
            .contains("body size limit exceeded"),
        "{big:#}"
    );
    // The server keeps serving throughout.
    assert_eq!(ember.get("/-/healthy").status(), 200);
    assert_eq!(ember.get("/-/ready").status(), 200);
}

#[test]
fn federate_serves_the_latest_samples_with_external_labels() {
    let target = StaticTarget::start(vec![("/metrics", TEXT, "a{x=\"1\"} 7\nb 2\n".to_owned())]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\n  external_labels: {{region: eu, job: overridden}}\nscrape_configs:\n\
         - job_name: fed\n  static_configs:\n    - targets: ['{}']\n",
        target.address()
    );
    let ember = Ember::start(Options::with_config(config));
    wait_targets(&ember, |d| {
        active(d, "fed").is_some_and(|t| t["health"] == "up")
    });

    let response = ember.get("/federate?match[]=%7Bjob%3D%22fed%22%2C__name__%3D~%22a%7Cb%22%7D");
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    let instance = target.address();
    assert!(body.contains("# TYPE a untyped"), "{body}");
    // External labels are added only where the series lacks them.
    let line = body
        .lines()
        .find(|l| l.starts_with("a{"))
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        line.starts_with(&format!(
            "a{{instance=\"{instance}\",job=\"fed\",region=\"eu\",x=\"1\"}} 7 "
        )),
        "{line}"
    );
    let timestamp: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(timestamp > 1_600_000_000_000, "{line}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("b{") && l.contains(" 2 ")),
        "{body}"
    );
    assert!(!body.contains("up{"), "only matching series: {body}");

    assert_eq!(ember.get("/federate").status(), 400);
}
