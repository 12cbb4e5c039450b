//! The remote-write sender against real receivers: Ember scrapes a target
//! and remote-writes into Prometheus 2.42 (`--web.enable-remote-write-receiver`)
//! and VictoriaMetrics at once; Ember is killed and restarted, then restarted
//! cleanly mid-stream, and Prometheus is down for a while. At the end every sample Ember stored is in both
//! receivers. A second test sends remote write 2.0 into a second Ember
//! (its receiver does not keep metadata, so metadata sending is tested in
//! `remote-write/tests/queue.rs`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ember_tests::{
    ChildGuard, Ember, Options, PROMETHEUS, StaticTarget, free_port, have_program, http_client,
    wait_http_ok,
};

const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// Starts Prometheus as a remote-write receiver on `port` with its data in
/// `dir` (so a restart keeps what it received).
fn start_prometheus_receiver(dir: &Path, port: u16) -> ChildGuard {
    std::fs::write(dir.join("prometheus.yml"), "global: {}\n").unwrap();
    let child = Command::new(PROMETHEUS)
        .current_dir(dir)
        .args([
            "--config.file=prometheus.yml",
            "--storage.tsdb.path=data",
            "--web.enable-remote-write-receiver",
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let guard = ChildGuard(child);
    assert!(
        wait_http_ok(
            &format!("http://127.0.0.1:{port}/-/ready"),
            Duration::from_secs(30)
        ),
        "Prometheus did not become ready"
    );
    guard
}

fn start_victoria_metrics(dir: &Path, port: u16) -> ChildGuard {
    let child = Command::new(VICTORIA_METRICS)
        .args([
            &format!("-httpListenAddr=127.0.0.1:{port}"),
            &format!("-storageDataPath={}", dir.display()),
            "-retentionPeriod=1d",
            // Show samples as soon as they are in, not 30s later.
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start victoria-metrics");
    let guard = ChildGuard(child);
    assert!(
        wait_http_ok(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(30)
        ),
        "VictoriaMetrics did not become ready"
    );
    guard
}

/// Timestamps (ms) of the non-NaN samples of `selector` over the last hour,
/// per series, from a Prometheus-compatible query API.
fn raw_samples(base: &str, selector: &str) -> std::collections::BTreeMap<String, Vec<i64>> {
    let client = http_client(Duration::from_secs(10));
    let response: serde_json::Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", format!("{selector}[1h]"))])
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default();
    let mut out = std::collections::BTreeMap::new();
    for series in response["data"]["result"].as_array().into_iter().flatten() {
        let mut labels: Vec<String> = series["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        labels.sort();
        let mut times: Vec<i64> = series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pair| pair[1].as_str() != Some("NaN"))
            .map(|pair| (pair[0].as_f64().unwrap_or_default() * 1000.0).round() as i64)
            .collect();
        times.sort();
        // A sample resent after a restart is stored once by Prometheus but
        // may be kept twice by VictoriaMetrics without deduplication.
        times.dedup();
        out.insert(labels.join(","), times);
    }
    out
}

fn sender_config(target: &str, urls: &[(&str, String)], extra: &str) -> String {
    let mut config = format!(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n  external_labels:\n    sender: ember\n\
         scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['{target}']\n\
         remote_write:\n"
    );
    for (name, url) in urls {
        config.push_str(&format!(
            "  - name: {name}\n    url: {url}\n{extra}    queue_config:\n      batch_send_deadline: 100ms\n      \
             max_samples_per_send: 50\n      min_backoff: 50ms\n      max_backoff: 400ms\n      retry_on_http_429: true\n"
        ));
    }
    config
}

/// Polls until `check` holds; returns whether it did within `timeout`.
fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `ember` has scraped at least `count` times (discovery hands
/// targets to the scrape pools after a coalescing delay of a few seconds).
fn wait_scrapes(ember: &Ember, count: usize) {
    let ok = eventually(Duration::from_secs(30), || {
        let stored = raw_samples(ember.base_url(), "up");
        stored.values().next().is_some_and(|t| t.len() >= count)
    });
    assert!(ok, "ember did not scrape; logs:\n{}", ember.logs_text());
}

fn stop(ember: &mut Ember) {
    ember.signal("TERM");
    assert!(
        ember.wait_exit(Duration::from_secs(30)).is_some(),
        "ember did not stop; logs:\n{}",
        ember.logs_text()
    );
}

#[test]
fn ember_remote_writes_into_prometheus_and_victoria_metrics_through_restarts_and_an_outage() {
    if !have_program(PROMETHEUS) {
        eprintln!("SKIP: {PROMETHEUS} is not installed (Debian package prometheus)");
        return;
    }
    if !have_program(VICTORIA_METRICS) {
        eprintln!("SKIP: {VICTORIA_METRICS} is not installed (Debian package victoria-metrics)");
        return;
    }
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "# TYPE m_total counter\nm_total{kind=\"a\"} 1\nm_total{kind=\"b\"} 2\n# TYPE g gauge\ng 3\n"
            .to_owned(),
    )]);
    let prom_dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let mut prometheus = Some(start_prometheus_receiver(prom_dir.path(), prom_port));
    let vm_dir = tempfile::tempdir().unwrap();
    let vm_port = free_port();
    let _vm = start_victoria_metrics(vm_dir.path(), vm_port);
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let vm_url = format!("http://127.0.0.1:{vm_port}");

    let data = tempfile::tempdir().unwrap();
    let config = sender_config(
        target.address(),
        &[
            ("prom", format!("{prom_url}/api/v1/write")),
            ("vm", format!("{vm_url}/api/v1/write")),
        ],
        "",
    );
    let start =
        || Ember::start(Options::with_config(config.clone()).data_dir(data.path().join("ember")));

    // Phase 1: stream, then restart Ember mid-stream.
    let mut ember = start();
    wait_scrapes(&ember, 8);
    // A crash: no flush, and the progress marker is up to a second old.
    ember.kill();
    let mut ember = start();
    wait_scrapes(&ember, 1);
    let before = raw_samples(ember.base_url(), "up")
        .values()
        .next()
        .map_or(0, Vec::len);
    wait_scrapes(&ember, before + 8);
    // A clean restart.
    stop(&mut ember);
    let mut ember = start();
    // Samples from before the restart plus a few new ones.
    let before = raw_samples(ember.base_url(), "up")
        .values()
        .next()
        .map_or(0, Vec::len);
    wait_scrapes(&ember, before + 8);
    // Phase 2: Prometheus is down for a while; samples keep coming.
    drop(prometheus.take());
    std::thread::sleep(Duration::from_secs(3));
    let metrics = ember.get("/metrics").text().unwrap();
    assert!(
        metrics.contains("ember_remote_storage_samples_retried_total{remote_name=\"prom\""),
        "retries are counted while the receiver is down"
    );
    prometheus = Some(start_prometheus_receiver(prom_dir.path(), prom_port));
    std::thread::sleep(Duration::from_secs(2));
    stop(&mut ember);
    let logs = ember.logs_text();

    // What Ember stored, read back by a server that neither scrapes nor sends.
    let reader =
        Ember::start(Options::with_config("global: {}\n").data_dir(data.path().join("ember")));
    let stored = raw_samples(reader.base_url(), "{job=\"t\"}");
    assert!(
        stored.len() >= 4,
        "m_total x2, g, up and scrape_* series: {stored:?}"
    );
    let total: usize = stored.values().map(Vec::len).sum();
    assert!(total > 4 * 16, "enough samples to mean something: {total}");
    // Each series as the receivers should have it: with the external label.
    let expected: std::collections::BTreeMap<String, Vec<i64>> = stored
        .into_iter()
        .map(|(labels, times)| {
            let mut parts: Vec<&str> = labels.split(',').collect();
            parts.push("sender=ember");
            parts.sort();
            (parts.join(","), times)
        })
        .collect();
    for (name, base) in [("Prometheus", &prom_url), ("VictoriaMetrics", &vm_url)] {
        let mut got = Default::default();
        let same = eventually(Duration::from_secs(20), || {
            got = raw_samples(base, "{job=\"t\"}");
            got == expected
        });
        if !same {
            for (series, times) in &expected {
                let theirs = got.get(series).cloned().unwrap_or_default();
                let missing: Vec<&i64> = times.iter().filter(|t| !theirs.contains(t)).collect();
                let extra: Vec<&i64> = theirs.iter().filter(|t| !times.contains(t)).collect();
                eprintln!(
                    "{name} {series}: {} stored, missing {missing:?}, extra {extra:?}",
                    times.len()
                );
            }
            panic!("{name} does not have exactly Ember's samples; sender logs:\n{logs}");
        }
    }
    drop(prometheus);
}

#[test]
fn remote_write_2_0_into_another_ember() {
    let receiver = Ember::start(
        Options::with_config("global: {}\n").flag("--web.enable-remote-write-receiver"),
    );
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "# HELP g A gauge.\n# TYPE g gauge\ng{x=\"1\"} 7\n".to_owned(),
    )]);
    let config = sender_config(
        target.address(),
        &[("v2", format!("{}/api/v1/write", receiver.base_url()))],
        "    protobuf_message: io.prometheus.write.v2.Request\n",
    );
    let data = tempfile::tempdir().unwrap();
    let mut sender = Ember::start(Options::with_config(config).data_dir(data.path().join("ember")));
    wait_scrapes(&sender, 8);
    stop(&mut sender);
    let logs = sender.logs_text();
    let reader =
        Ember::start(Options::with_config("global: {}\n").data_dir(data.path().join("ember")));
    let stored = raw_samples(reader.base_url(), "g");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let expected: Vec<i64> = stored.into_values().next().unwrap();
    assert!(expected.len() >= 5, "{expected:?}");
    let got = raw_samples(receiver.base_url(), "g");
    let (labels, times) = got.into_iter().next().unwrap_or_default();
    assert_eq!(
        labels,
        format!(
            "__name__=g,instance={},job=t,sender=ember,x=1",
            target.address()
        )
    );
    assert_eq!(times, expected, "sender logs:\n{logs}");
}

/// Log lines saying that queue `name` started.
fn queue_starts(ember: &Ember, name: &str) -> usize {
    ember
        .logs_text()
        .lines()
        .filter(|l| {
            l.contains("Starting remote-write queue")
                && l.contains(&format!("\"remote_name\":\"{name}\""))
        })
        .count()
}

#[test]
fn reload_keeps_unchanged_queues_and_resumes_changed_ones_from_their_marker() {
    let receiver_a = Ember::start(
        Options::with_config("global: {}\n").flag("--web.enable-remote-write-receiver"),
    );
    let receiver_b = Ember::start(
        Options::with_config("global: {}\n").flag("--web.enable-remote-write-receiver"),
    );
    let target = StaticTarget::start(vec![(
        "/metrics",
        "text/plain; version=0.0.4",
        "g 1\n".to_owned(),
    )]);
    let url_a = format!("{}/api/v1/write", receiver_a.base_url());
    let url_b = format!("{}/api/v1/write", receiver_b.base_url());
    let both = sender_config(
        target.address(),
        &[("a", url_a.clone()), ("b", url_b.clone())],
        "",
    );
    let data = tempfile::tempdir().unwrap();
    let mut sender =
        Ember::start(Options::with_config(both.clone()).data_dir(data.path().join("ember")));
    wait_scrapes(&sender, 4);
    assert!(eventually(Duration::from_secs(10), || !raw_samples(
        receiver_a.base_url(),
        "g"
    )
    .is_empty()));

    // Queue a removed: it stops and its metrics go; b keeps running.
    sender.write_config(&sender_config(
        target.address(),
        &[("b", url_b.clone())],
        "",
    ));
    sender.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || {
            let metrics = sender.get("/metrics").text().unwrap();
            !metrics.contains("remote_name=\"a\"") && metrics.contains("remote_name=\"b\"")
        }),
        "queue a is not removed; logs:\n{}",
        sender.logs_text()
    );
    let before = raw_samples(sender.base_url(), "up")
        .values()
        .next()
        .map_or(0, Vec::len);
    wait_scrapes(&sender, before + 6);

    // Queue a back, changed: it resumes from its marker, so what was scraped
    // while it was gone arrives too.
    let changed = both.replacen("max_samples_per_send: 50", "max_samples_per_send: 20", 1);
    assert_ne!(changed, both);
    sender.write_config(&changed);
    sender.signal("HUP");
    assert!(eventually(Duration::from_secs(10), || queue_starts(
        &sender, "a"
    ) == 2));
    let before = raw_samples(sender.base_url(), "up")
        .values()
        .next()
        .map_or(0, Vec::len);
    wait_scrapes(&sender, before + 4);
    stop(&mut sender);
    assert_eq!(queue_starts(&sender, "b"), 1, "b was never restarted");
    let logs = sender.logs_text();

    let reader =
        Ember::start(Options::with_config("global: {}\n").data_dir(data.path().join("ember")));
    let stored = raw_samples(reader.base_url(), "g");
    let expected: Vec<i64> = stored.into_values().next().unwrap();
    for receiver in [&receiver_a, &receiver_b] {
        let mut got = Vec::new();
        let same = eventually(Duration::from_secs(10), || {
            got = raw_samples(receiver.base_url(), "g")
                .into_values()
                .next()
                .unwrap_or_default();
            got == expected
        });
        assert!(
            same,
            "receiver has {got:?}, sender stored {expected:?}; logs:\n{logs}"
        );
    }
}
