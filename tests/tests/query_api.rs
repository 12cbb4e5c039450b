//! The Prometheus HTTP query API of the real binary, as Grafana, promtool
//! and scripts use it: a server scrapes a static target every second, and
//! once samples exist the tests check instant and range queries, the
//! series, label and metadata endpoints, Prometheus's errors, the requests
//! Grafana's Prometheus data source sends, and (when Debian's `prometheus`
//! package provides it) `promtool query` against Ember.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_tests::{Ember, Options, StaticTarget};
use serde_json::{Value, json};

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

const EXPOSITION: &str = "\
# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{code=\"200\"} 10
demo_requests_total{code=\"500\"} 2
# HELP demo_temperature_celsius Current temperature.
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius 21.5
";

fn config(address: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n\
         - job_name: demo\n  static_configs:\n    - targets: ['{address}']\n"
    )
}

/// A server scraping the demo target, returned once `samples` scrapes'
/// worth of samples exist.
fn start(extra_flags: &[&str], samples: usize) -> (Ember, StaticTarget) {
    let target = StaticTarget::start(vec![("/metrics", TEXT, EXPOSITION.to_owned())]);
    let mut options = Options::with_config(config(target.address()));
    for flag in extra_flags {
        options = options.flag(*flag);
    }
    let ember = Ember::start(options);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = query(
            &ember,
            &format!(
                "/api/v1/query?query=count_over_time(demo_temperature_celsius[1m])&time={}",
                now()
            ),
        );
        let count = body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if count >= samples {
            return (ember, target);
        }
        assert!(
            Instant::now() < deadline,
            "no samples after 60s; last answer {body}\n{}",
            ember.logs_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Unix seconds now, with milliseconds.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as f64
        / 1000.0
}

fn query(ember: &Ember, path: &str) -> Value {
    let response = ember.get(path);
    assert_eq!(response.status(), 200, "{path}");
    response.json().expect("JSON body")
}

/// `(status, body)` of a request that is expected to fail.
fn failure(ember: &Ember, path: &str) -> (u16, Value) {
    let response = ember.get(path);
    let status = response.status().as_u16();
    (status, response.json().expect("JSON body"))
}

/// Percent-encodes a form value (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// POSTs `form` as `application/x-www-form-urlencoded`, as Grafana does.
fn form_post(ember: &Ember, path: &str, form: &[(&str, String)]) -> Value {
    let body: Vec<String> = form
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect();
    let client = ember_tests::http_client(std::time::Duration::from_secs(30));
    let response = client
        .post(format!("{}{path}", ember.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .expect("POST");
    assert_eq!(response.status(), 200, "{path}");
    response.json().expect("JSON body")
}

fn target_labels(target: &StaticTarget) -> Value {
    json!({ "instance": target.address(), "job": "demo" })
}

#[test]
fn queries_series_labels_and_metadata_answer_like_prometheus() {
    // Six scrapes: the range queries below reach four seconds back.
    let (ember, target) = start(&[], 6);
    let address = target.address();

    // Instant query: a vector with the scraped value as a string.
    let body = query(&ember, "/api/v1/query?query=demo_temperature_celsius");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    let result = body["data"]["result"].as_array().expect("result");
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(
        result[0]["metric"],
        json!({"__name__": "demo_temperature_celsius", "instance": address, "job": "demo"})
    );
    assert_eq!(result[0]["value"][1], "21.5");
    assert!(result[0]["value"][0].is_f64() || result[0]["value"][0].is_u64());

    // Range query: points at start + k * step, values as strings.
    let end = now().floor();
    let start = end - 4.0;
    let body = query(
        &ember,
        &format!(
            "/api/v1/query_range?query=sum(demo_requests_total)&start={start}&end={end}&step=2s"
        ),
    );
    assert_eq!(body["data"]["resultType"], "matrix");
    let values = body["data"]["result"][0]["values"]
        .as_array()
        .expect("values");
    let times: Vec<f64> = values
        .iter()
        .map(|p| p[0].as_f64().expect("time"))
        .collect();
    assert_eq!(times, [start, start + 2.0, end], "{body}");
    assert!(values.iter().all(|p| p[1] == "12"), "{body}");
    assert_eq!(body["data"]["result"][0]["metric"], json!({}));

    // A fractional start keeps its milliseconds on every step.
    let body = query(
        &ember,
        &format!(
            "/api/v1/query_range?query=demo_temperature_celsius&start={}&end={}&step=1.5",
            start + 0.25,
            end
        ),
    );
    let times: Vec<f64> = body["data"]["result"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| p[0].as_f64().expect("time"))
        .collect();
    assert_eq!(times, [start + 0.25, start + 1.75, start + 3.25], "{body}");

    // Series, label names and values.
    let body = query(&ember, "/api/v1/series?match[]=demo_requests_total");
    assert_eq!(
        body["data"],
        json!([
            {"__name__": "demo_requests_total", "code": "200", "instance": address, "job": "demo"},
            {"__name__": "demo_requests_total", "code": "500", "instance": address, "job": "demo"},
        ])
    );
    let body = query(&ember, "/api/v1/labels");
    let names: Vec<&str> = body["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, ["__name__", "code", "instance", "job"]);
    let body = query(&ember, "/api/v1/label/job/values");
    assert_eq!(body["data"], json!(["demo"]));
    let body = query(
        &ember,
        "/api/v1/label/code/values?match[]=demo_requests_total",
    );
    assert_eq!(body["data"], json!(["200", "500"]));

    // Metadata from the target's last scrape.
    let body = query(&ember, "/api/v1/metadata");
    assert_eq!(
        body["data"]["demo_requests_total"],
        json!([{"type": "counter", "help": "Requests served.", "unit": ""}])
    );
    assert_eq!(
        body["data"]["demo_temperature_celsius"],
        json!([{"type": "gauge", "help": "Current temperature.", "unit": ""}])
    );
    let body = query(&ember, "/api/v1/metadata?metric=demo_temperature_celsius");
    assert_eq!(body["data"].as_object().expect("object").len(), 1);
    let body = query(
        &ember,
        "/api/v1/targets/metadata?metric=demo_requests_total&match_target=%7Bjob%3D%22demo%22%7D",
    );
    assert_eq!(
        body["data"],
        json!([{"target": target_labels(&target), "type": "counter", "help": "Requests served.", "unit": ""}])
    );
    let body = query(
        &ember,
        "/api/v1/targets/metadata?match_target=%7Bjob%3D%22other%22%7D",
    );
    assert_eq!(body["data"], json!([]));

    // The status pages that describe the server.
    let body = query(&ember, "/api/v1/status/tsdb");
    assert!(
        body["data"]["headStats"]["numSeries"]
            .as_u64()
            .expect("numSeries")
            >= 3
    );
    let body = query(&ember, "/api/v1/status/flags");
    assert_eq!(body["data"]["query.lookback-delta"], "5m");
    assert_eq!(body["data"]["query.max-samples"], "50000000");
}

#[test]
fn bad_requests_and_limits_get_prometheus_errors() {
    let (ember, _target) = start(&["--query.max-samples=10"], 2);

    let (status, body) = failure(&ember, "/api/v1/query?query=up%7D");
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert_eq!(
        body["error"], "invalid parameter \"query\": 1:3: parse error: unexpected right brace '}'",
        "the message locates the error"
    );

    let (status, body) = failure(
        &ember,
        "/api/v1/query_range?query=up&start=100&end=50&step=5",
    );
    assert_eq!(status, 400);
    assert_eq!(body["errorType"], "bad_data");
    assert_eq!(
        body["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );

    let (status, body) = failure(
        &ember,
        "/api/v1/query_range?query=up&start=0&end=100&step=-1",
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );

    // 61 points (the lookback finds the latest sample for each of the next
    // 60 seconds): more than --query.max-samples=10 allows.
    let start = now().floor();
    let (status, body) = failure(
        &ember,
        &format!(
            "/api/v1/query_range?query=up&start={start}&end={}&step=1",
            start + 60.0
        ),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errorType"], "execution");

    let (status, body) = failure(&ember, "/api/v1/series?start=0");
    assert_eq!(status, 400);
    assert_eq!(body["error"], "no match[] parameter provided");
}

/// The requests Grafana's Prometheus data source sends while a user builds
/// a panel: build info to detect the server, label names and values scoped
/// by a selector for the query builder, series for the metrics browser,
/// and form-POSTed range and instant queries for the panel itself.
#[test]
fn grafana_data_source_requests() {
    let (ember, target) = start(&[], 5);
    let address = target.address();
    // Whole seconds, so that the timestamps of the answers are integers.
    let end = now().floor() as i64;
    let start = end - 3;

    let body = query(&ember, "/api/v1/status/buildinfo");
    let info = body["data"].as_object().expect("build info");
    let keys: Vec<&str> = info.keys().map(String::as_str).collect();
    for key in [
        "branch",
        "buildDate",
        "buildUser",
        "goVersion",
        "revision",
        "version",
    ] {
        assert!(keys.contains(&key), "{key} missing from {body}");
    }

    let body = query(
        &ember,
        &format!("/api/v1/labels?match%5B%5D=demo_requests_total&start={start}&end={end}"),
    );
    assert_eq!(
        body,
        json!({"status": "success", "data": ["__name__", "code", "instance", "job"]})
    );

    let body = query(
        &ember,
        &format!(
            "/api/v1/label/__name__/values?match%5B%5D=%7Bjob%3D%22demo%22%7D&start={start}&end={end}"
        ),
    );
    let names = body["data"].as_array().expect("names");
    for name in ["demo_requests_total", "demo_temperature_celsius", "up"] {
        assert!(names.contains(&json!(name)), "{name} missing from {body}");
    }

    let body = query(
        &ember,
        &format!(
            "/api/v1/series?match%5B%5D=demo_temperature_celsius%7Bjob%3D%22demo%22%7D&start={start}&end={end}"
        ),
    );
    assert_eq!(
        body,
        json!({"status": "success", "data": [
            {"__name__": "demo_temperature_celsius", "instance": address, "job": "demo"}
        ]})
    );

    let body = form_post(
        &ember,
        "/api/v1/query_range",
        &[
            ("query", "sum by (code) (demo_requests_total)".to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", "1".to_owned()),
        ],
    );
    let points = |value: &str| -> Value {
        json!([
            [start, value],
            [start + 1, value],
            [start + 2, value],
            [end, value]
        ])
    };
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"code": "200"}, "values": points("10")},
            {"metric": {"code": "500"}, "values": points("2")},
        ]}})
    );

    let body = form_post(
        &ember,
        "/api/v1/query",
        &[
            ("query", "demo_temperature_celsius * 2".to_owned()),
            ("time", end.to_string()),
        ],
    );
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"instance": address, "job": "demo"}, "value": [end, "43"]}
        ]}})
    );
}

/// promtool from Debian's `prometheus` package, when installed, queries
/// Ember as it would query Prometheus.
#[test]
fn promtool_queries_ember() {
    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.is_file() {
        eprintln!(
            "SKIPPED promtool_queries_ember: /usr/bin/promtool is absent (Debian package `prometheus`)"
        );
        return;
    }
    let (ember, target) = start(&[], 5);
    let server = ember.base_url();
    let run = |args: &[&str]| -> String {
        let output = Command::new(promtool)
            .arg("query")
            .args(args)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool query {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    };

    let instant = run(&["instant", server, "demo_temperature_celsius"]);
    let expected_series = format!(
        "demo_temperature_celsius{{instance=\"{}\", job=\"demo\"}} =>",
        target.address()
    );
    assert!(instant.starts_with(&expected_series), "{instant}");
    assert!(instant.contains("=> 21.5 @["), "{instant}");

    let end = now().floor() as i64;
    let range = run(&[
        "range",
        &format!("--start={}", end - 2),
        &format!("--end={end}"),
        "--step=1s",
        server,
        "demo_temperature_celsius",
    ]);
    assert!(range.starts_with(&expected_series), "{range}");
    for t in end - 2..=end {
        assert!(
            range.contains(&format!("21.5 @[{t}]")),
            "{t} missing from {range}"
        );
    }

    let series = run(&["series", "--match=demo_requests_total", server]);
    let lines: Vec<&str> = series.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{{__name__=\"demo_requests_total\", code=\"200\", instance=\"{}\", job=\"demo\"}}",
                target.address()
            ),
            format!(
                "{{__name__=\"demo_requests_total\", code=\"500\", instance=\"{}\", job=\"demo\"}}",
                target.address()
            ),
        ]
    );

    let labels = run(&["labels", server, "job"]);
    assert_eq!(labels.trim(), "demo");
    let codes = run(&["labels", "--match=demo_requests_total", server, "code"]);
    assert_eq!(codes.lines().collect::<Vec<_>>(), ["200", "500"]);
}
