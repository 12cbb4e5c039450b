//! The foundation, seen from outside: health, readiness, the server's own
//! metrics, configuration reload by SIGHUP and HTTP (including a refused
//! broken change), the lifecycle switch, and graceful shutdown.

use std::time::Duration;

use ember_tests::{Ember, Options};

const CONFIG_A: &str = "\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: alpha
    static_configs:
      - targets: ['localhost:9090']
";

const CONFIG_B: &str = "\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: beta
    static_configs:
      - targets: ['localhost:9100']
";

/// Broken on line 5: the timeout exceeds the interval.
const CONFIG_BROKEN: &str = "\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: gamma
    scrape_timeout: 1m
    static_configs:
      - targets: ['localhost:9100']
";

const WAIT: Duration = Duration::from_secs(20);

fn running_config(ember: &Ember) -> String {
    let body: serde_json::Value = ember.get("/api/v1/status/config").json().expect("JSON");
    assert_eq!(body["status"], "success");
    body["data"]["yaml"]
        .as_str()
        .expect("yaml string")
        .to_owned()
}

fn metric_value(ember: &Ember, name: &str) -> Option<f64> {
    let text = ember.get("/metrics").text().expect("metrics body");
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[test]
fn embedded_default_config_serves_health_readiness_and_metrics() {
    let ember = Ember::start(Options::default());

    let healthy = ember.get("/-/healthy");
    assert_eq!(healthy.status(), 200);
    assert!(healthy.text().unwrap().contains("Healthy"));
    assert_eq!(ember.get("/-/ready").status(), 200);

    let metrics = ember.get("/metrics");
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = metrics.text().unwrap();
    for name in [
        "ember_build_info{",
        "ember_config_last_reload_successful 1",
        "ember_config_last_reload_success_timestamp_seconds ",
        "ember_ready 1",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "ember_http_requests_total{code=\"200\",handler=\"/-/healthy\"} 1",
    ] {
        assert!(text.contains(name), "missing {name:?} in /metrics:\n{text}");
    }

    // The embedded default scrapes the server itself.
    let config = running_config(&ember);
    assert!(config.contains("localhost:9090"), "{config}");
}

#[test]
fn lifecycle_endpoints_are_forbidden_unless_enabled() {
    let ember = Ember::start(Options::with_config(CONFIG_A));
    for path in ["/-/reload", "/-/quit"] {
        let response = ember.post(path);
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(response.text().unwrap(), "Lifecycle API is not enabled.");
        assert_eq!(ember.put(path).status(), 403, "{path}");
        assert_eq!(ember.get(path).status(), 405, "{path}");
    }
    // Still serving after the refusals.
    assert_eq!(ember.get("/-/healthy").status(), 200);
}

#[test]
fn sighup_applies_a_changed_config_and_refuses_a_broken_one() {
    let ember = Ember::start(Options::with_config(CONFIG_A));
    assert!(running_config(&ember).contains("job_name: alpha"));

    ember.write_config(CONFIG_B);
    ember.signal("HUP");
    let applied = ember.wait_for_log(WAIT, |e| {
        e["message"] == "Completed loading of configuration file" && e["outcome"] == "Applied"
    });
    assert!(
        applied.is_some(),
        "no reload logged:\n{}",
        ember.logs_text()
    );
    assert!(running_config(&ember).contains("job_name: beta"));
    assert_eq!(
        metric_value(&ember, "ember_config_last_reload_successful"),
        Some(1.0)
    );

    ember.write_config(CONFIG_BROKEN);
    ember.signal("HUP");
    let refused = ember.wait_for_log(WAIT, |e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Error reloading config"))
    });
    let refused = refused.unwrap_or_else(|| panic!("no refusal logged:\n{}", ember.logs_text()));
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains(":5:") && error.contains("scrape_timeout"),
        "{error}"
    );

    // The old configuration keeps running, and the failure is visible.
    assert!(running_config(&ember).contains("job_name: beta"));
    assert_eq!(
        metric_value(&ember, "ember_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(ember.get("/-/healthy").status(), 200);
    assert_eq!(ember.get("/-/ready").status(), 200);
}

#[test]
fn http_reload_applies_a_changed_config_and_refuses_a_broken_one() {
    let ember = Ember::start(Options::with_config(CONFIG_A).flag("--web.enable-lifecycle"));

    ember.write_config(CONFIG_B);
    let response = ember.post("/-/reload");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().unwrap_or_default()
    );
    assert!(running_config(&ember).contains("job_name: beta"));

    ember.write_config(CONFIG_BROKEN);
    let response = ember.put("/-/reload");
    assert_eq!(response.status(), 500);
    let body = response.text().unwrap();
    assert!(body.starts_with("failed to reload config: "), "{body}");
    assert!(
        body.contains(":5:") && body.contains("scrape_timeout"),
        "{body}"
    );
    assert!(running_config(&ember).contains("job_name: beta"));
    assert_eq!(
        metric_value(&ember, "ember_config_last_reload_successful"),
        Some(0.0)
    );

    // Fixing the file makes the next reload succeed again.
    ember.write_config(CONFIG_A);
    assert_eq!(ember.post("/-/reload").status(), 200);
    assert!(running_config(&ember).contains("job_name: alpha"));
    assert_eq!(
        metric_value(&ember, "ember_config_last_reload_successful"),
        Some(1.0)
    );
}

#[test]
fn quit_endpoint_shuts_down_gracefully() {
    let mut ember = Ember::start(Options::with_config(CONFIG_A).flag("--web.enable-lifecycle"));
    let response = ember.post("/-/quit");
    assert_eq!(response.status(), 200);
    let status = ember.wait_exit(WAIT).expect("ember exits after /-/quit");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        ember.logs_text()
    );
    assert!(ember.logs_text().contains("See you next time!"));
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut ember = Ember::start(Options::default());
        ember.signal(signal);
        let status = ember.wait_exit(WAIT).expect("ember exits after the signal");
        assert!(
            status.success(),
            "SIG{signal}: exit status {status:?}\n{}",
            ember.logs_text()
        );
    }
}

#[test]
fn a_broken_config_at_start_up_stops_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yml");
    std::fs::write(&config, CONFIG_BROKEN).unwrap();
    let output = std::process::Command::new(ember_tests::ember_binary())
        .current_dir(dir.path())
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yml:5:") && stderr.contains("scrape_timeout"),
        "{stderr}"
    );
}
