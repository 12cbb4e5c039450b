//! PromQL answers compared with Prometheus 2.42 on identical data.
//!
//! Both servers scrape one target that hands each scraper (told apart by
//! User-Agent) the next step of a fixed 40 minutes of data, with explicit
//! timestamps on a 15-second grid. After a few seconds of fast scraping both
//! hold exactly the same samples, and a battery of queries covering the
//! language must give equal results: the same series, and values equal
//! within 1e-9 relative. Skips, saying so, without Debian's `prometheus`.
//!
//! Debian ships Prometheus 2.42, whose range selectors include a sample
//! lying exactly on the window's left edge; Prometheus 3, which Ember
//! follows (and whose conformance suite it passes), excludes it. The
//! samples therefore sit 3 s past the 15 s grid and every evaluation time
//! (and subquery step) falls elsewhere, so no sample is ever on an edge.
//! Prometheus 3 also changed the order of `rate()`'s two corrections at the
//! start of a series (extrapolation threshold, then zero point); windows that
//! reach back before the first sample legitimately differ between the
//! versions, so every evaluation starts at least 26 minutes into the data,
//! more than the longest lookback in the battery. Under those two
//! conditions both versions must agree exactly.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_tests::{Ember, Options, Prometheus};
use serde_json::Value;

// 40 minutes at 15s: Prometheus's head refuses samples older than an hour
// before its newest, and the scrapes' own `up` samples are at the present.
const STEPS: i64 = 160;
const STEP_MS: i64 = 15_000;
/// Data every evaluation has behind it: the longest lookback in the battery
/// (a 20m subquery of a 5m rate) plus a margin.
const HISTORY: i64 = 26 * 60_000;

/// The exposition of step `k` of the synthetic data starting at `t0` (ms).
fn exposition(t0: i64, k: i64) -> String {
    let t = t0 + k * STEP_MS;
    let mut out = String::new();
    for (i, method) in ["GET", "POST", "PUT"].iter().enumerate() {
        for (j, code) in ["200", "500"].iter().enumerate() {
            let rate = (i as i64 + 1) * (j as i64 * 3 + 1);
            // A counter reset two thirds through, for rate()'s reset handling.
            let base = if k >= 160 && i == 1 {
                (k - 160) * rate
            } else {
                k * rate + (i * 7 + j) as i64
            };
            out.push_str(&format!(
                "http_requests_total{{method=\"{method}\",code=\"{code}\"}} {base} {t}\n"
            ));
        }
    }
    for (i, room) in ["kitchen", "hall", "attic", "cellar"].iter().enumerate() {
        let v = 18.0 + (i as f64) + ((k as f64) / 10.0 + i as f64).sin() * 2.5;
        out.push_str(&format!("temperature_celsius{{room=\"{room}\"}} {v} {t}\n"));
    }
    for host in 0..5 {
        let v = 1_000_000_000 + host * 50_000_000 + (k * (host + 1) * 1_000_003) % 90_000_000;
        out.push_str(&format!("memory_bytes{{host=\"h{host}\"}} {v} {t}\n"));
    }
    let mut cumulative = 0;
    for (i, le) in ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]
        .iter()
        .enumerate()
    {
        cumulative += k * (6 - i as i64) + i as i64;
        out.push_str(&format!(
            "request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative} {t}\n"
        ));
    }
    out.push_str(&format!(
        "request_duration_seconds_sum {} {t}\n",
        k as f64 * 12.5
    ));
    out.push_str(&format!(
        "request_duration_seconds_count {cumulative} {t}\n"
    ));
    out
}

/// Serves step k to the k-th request of each User-Agent, then the last step.
fn start_replay_target(t0: i64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let counters: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counters = counters.clone();
            std::thread::spawn(move || serve(stream, &counters, t0));
        }
    });
    address
}

fn serve(mut stream: TcpStream, counters: &Mutex<HashMap<String, i64>>, t0: i64) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let agent = head
        .lines()
        .find_map(|l| l.strip_prefix("user-agent:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let k = {
        let mut counters = counters.lock().unwrap();
        let k = counters.entry(agent).or_insert(0);
        let step = (*k).min(STEPS - 1);
        *k += 1;
        step
    };
    let body = exposition(t0, k);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn query(base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let client = ember_tests::http_client(std::time::Duration::from_secs(30));
    let response = client
        .get(format!("{base}{path}"))
        .query(params)
        .send()
        .expect("query");
    response.json().expect("JSON answer")
}

/// Count of `temperature_celsius` samples each server holds.
fn loaded(base: &str, t_end: i64) -> bool {
    let body = query(
        base,
        "/api/v1/query",
        &[
            (
                "query",
                "count_over_time(temperature_celsius{room=\"hall\"}[2h])".into(),
            ),
            ("time", format!("{}", t_end as f64 / 1000.0)),
        ],
    );
    body["data"]["result"][0]["value"][1].as_str() == Some(&STEPS.to_string())
}

/// `result` as a map from the series' labels to its values.
fn by_series(result: &Value) -> BTreeMap<String, Vec<(f64, String)>> {
    let mut out = BTreeMap::new();
    for item in result.as_array().into_iter().flatten() {
        let labels = item["metric"].to_string();
        let values: Vec<(f64, String)> = match (item.get("value"), item.get("values")) {
            (Some(v), _) => vec![(v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_owned())],
            (_, Some(vs)) => vs
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        out.insert(labels, values);
    }
    out
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_nan() && y.is_nan() => true,
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

fn compare(what: &str, ours: &Value, theirs: &Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!(
            "{what}: status differs\nEmber: {ours}\nPrometheus: {theirs}"
        ));
    }
    let (ours, theirs) = (&ours["data"], &theirs["data"]);
    if ours["resultType"] != theirs["resultType"] {
        return Err(format!(
            "{what}: result type {} vs {}",
            ours["resultType"], theirs["resultType"]
        ));
    }
    if ours["resultType"] == "scalar" || ours["resultType"] == "string" {
        let (a, b) = (&ours["result"], &theirs["result"]);
        return if a[0] == b[0]
            && same_value(a[1].as_str().unwrap_or(""), b[1].as_str().unwrap_or(""))
        {
            Ok(())
        } else {
            Err(format!("{what}: {a} vs {b}"))
        };
    }
    let (a, b) = (by_series(&ours["result"]), by_series(&theirs["result"]));
    if a.keys().ne(b.keys()) {
        let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
        return Err(format!(
            "{what}: series differ\nonly in Ember: {only_a:?}\nonly in Prometheus: {only_b:?}"
        ));
    }
    for (series, values) in &a {
        let other = &b[series];
        if values.len() != other.len() {
            return Err(format!(
                "{what} {series}: {} points vs {}",
                values.len(),
                other.len()
            ));
        }
        for ((t1, v1), (t2, v2)) in values.iter().zip(other) {
            if t1 != t2 || !same_value(v1, v2) {
                return Err(format!("{what} {series}: ({t1}, {v1}) vs ({t2}, {v2})"));
            }
        }
    }
    Ok(())
}

const BATTERY: &[&str] = &[
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[1h])",
    "sum by (method) (rate(http_requests_total[5m]))",
    "sum without (code) (rate(http_requests_total[5m]))",
    "avg(rate(http_requests_total[5m]))",
    "count by (code) (http_requests_total)",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    "topk(2, memory_bytes)",
    "bottomk(2, memory_bytes)",
    "quantile(0.25, memory_bytes)",
    "stddev(temperature_celsius)",
    "count_values(\"bucket\", round(temperature_celsius))",
    "avg_over_time(temperature_celsius[10m])",
    "max_over_time(temperature_celsius[10m])",
    "min_over_time(temperature_celsius[10m])",
    "stddev_over_time(temperature_celsius[10m])",
    "quantile_over_time(0.9, temperature_celsius[15m])",
    "changes(temperature_celsius[10m])",
    "deriv(memory_bytes[15m])",
    "predict_linear(memory_bytes[30m], 3600)",
    "delta(temperature_celsius[10m])",
    "idelta(temperature_celsius[5m])",
    "double_exponential_smoothing(temperature_celsius[10m], 0.5, 0.5)",
    "memory_bytes / on() group_left sum(memory_bytes)",
    "memory_bytes > 1.1e9",
    "memory_bytes > bool 1.1e9",
    "temperature_celsius and on(room) temperature_celsius > 19",
    "temperature_celsius unless temperature_celsius > 19",
    "temperature_celsius or vector(1)",
    "label_replace(temperature_celsius, \"floor\", \"$1\", \"room\", \"(.)all\")",
    "label_join(memory_bytes, \"id\", \"-\", \"host\", \"job\")",
    "{__name__=~\"temp.*|mem.*\", room!=\"attic\"}",
    "clamp(temperature_celsius, 18.5, 20)",
    "abs(deriv(temperature_celsius[5m]))",
    "absent(nonexistent_metric)",
    "absent_over_time(temperature_celsius[5m])",
    "scalar(sum(memory_bytes)) * 2",
    "time() - timestamp(temperature_celsius)",
    "sum(rate(http_requests_total[5m] offset 10m))",
    "max_over_time(rate(http_requests_total[5m])[20m:1m])",
    "sort_desc(sum by (method) (http_requests_total))",
    "exp(temperature_celsius / 10) + ln(temperature_celsius) - sqrt(temperature_celsius)",
];

#[test]
fn query_battery_matches_prometheus_on_identical_data() {
    // The synthetic 40 minutes end five minutes ago, so every query time is
    // in the past for both servers.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now - 45 * 60_000) / STEP_MS * STEP_MS + 3_000;
    let t_end = t0 + (STEPS - 1) * STEP_MS;
    let address = start_replay_target(t0);
    let config = format!(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\nscrape_configs:\n  - job_name: replay\n    static_configs:\n      - targets: ['{address}']\n"
    );
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let ember = Ember::start(Options::with_config(config));

    let deadline = Instant::now() + Duration::from_secs(90);
    while !(loaded(ember.base_url(), t_end) && loaded(prometheus.url(), t_end)) {
        assert!(
            Instant::now() < deadline,
            "the servers did not load the data in time: Ember {}, Prometheus {}",
            loaded(ember.base_url(), t_end),
            loaded(prometheus.url(), t_end)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let seconds = |ms: i64| format!("{}", ms as f64 / 1000.0);
    let mut failures = Vec::new();
    let mut checked = 0;
    for expr in BATTERY {
        for at in [t_end + 7_000, t0 + HISTORY + 7_000] {
            let params = [("query", (*expr).to_owned()), ("time", seconds(at))];
            let (ours, theirs) = (
                query(ember.base_url(), "/api/v1/query", &params),
                query(prometheus.url(), "/api/v1/query", &params),
            );
            checked += 1;
            if let Err(e) = compare(&format!("instant {expr} @{at}"), &ours, &theirs) {
                failures.push(e);
            }
        }
        for (start, step) in [(t0 + HISTORY + 7_000, "15"), (t0 + HISTORY + 4_000, "60")] {
            let params = [
                ("query", (*expr).to_owned()),
                ("start", seconds(start)),
                ("end", seconds(t_end)),
                ("step", step.to_owned()),
            ];
            let (ours, theirs) = (
                query(ember.base_url(), "/api/v1/query_range", &params),
                query(prometheus.url(), "/api/v1/query_range", &params),
            );
            checked += 1;
            if let Err(e) = compare(&format!("range {expr} step {step}"), &ours, &theirs) {
                failures.push(e);
            }
        }
    }
    eprintln!(
        "compared {checked} queries with Prometheus; {} differ",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
