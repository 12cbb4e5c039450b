//! Durability seen from outside: samples scraped before a clean shutdown or
//! a SIGKILL are there after a restart on the same data directory.

use std::time::{Duration, Instant};

use ember_tests::{Ember, Options, StaticTarget};
use serde_json::Value;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How many samples of `durable_metric` the server holds over the last hour.
fn stored_samples(ember: &Ember) -> u64 {
    let body: Value = ember
        .get("/api/v1/query?query=count_over_time(durable_metric%5B1h%5D)")
        .json()
        .expect("query JSON");
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn wait_samples(ember: &Ember, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = stored_samples(ember);
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} samples after 30s\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn samples_survive_a_clean_restart_and_a_crash() {
    let target = StaticTarget::start(vec![("/metrics", TEXT, "durable_metric 42\n".to_owned())]);
    let config = format!(
        "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n  - job_name: d\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let data = tempfile::tempdir().unwrap();

    let mut ember = Ember::start(Options::with_config(config.clone()).data_dir(data.path()));
    let before_stop = wait_samples(&ember, 5);
    ember.signal("TERM");
    assert!(
        ember
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );

    // No scrape target now: whatever is stored came from the first run.
    let empty = "global:\n  scrape_interval: 1h\nscrape_configs: []\n";
    let mut ember = Ember::start(Options::with_config(empty).data_dir(data.path()));
    assert!(
        stored_samples(&ember) >= before_stop,
        "samples lost across a clean restart"
    );
    ember.signal("TERM");
    assert!(
        ember
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );

    let mut ember = Ember::start(Options::with_config(config).data_dir(data.path()));
    let before_crash = wait_samples(&ember, before_stop + 5);
    ember.kill();
    let ember = Ember::start(Options::with_config(empty).data_dir(data.path()));
    let after = stored_samples(&ember);
    assert!(
        after >= before_crash,
        "acknowledged samples lost in a crash: {after} < {before_crash}"
    );
}
