//! `ember tsdb create-blocks-from openmetrics`, `list` and `analyze` on a
//! small file, then a server started on the output serving the samples.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use ember_tests::{Ember, Options, ember_binary};
use serde_json::Value;

fn ember_tsdb(args: &[&str]) -> Output {
    Command::new(ember_binary())
        .arg("tsdb")
        .args(args)
        .output()
        .expect("run ember tsdb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The start of the 2-hour block range that began about 8 hours ago: old
/// enough to be clear of the head, young enough for default retention.
fn start_seconds() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - 8 * 3600) / 7200 * 7200
}

/// Two series over 3 hours at 15 s: 720 samples each, spanning two blocks.
fn write_input(path: &Path, start: i64) {
    let mut s = String::from("# HELP demo_requests Requests.\n# TYPE demo_requests counter\n");
    for i in 0..720 {
        writeln!(
            s,
            "demo_requests_total{{code=\"200\"}} {} {}",
            i * 7,
            start + i * 15
        )
        .unwrap();
    }
    s.push_str("# TYPE demo_temperature gauge\n");
    for i in 0..720 {
        writeln!(
            s,
            "demo_temperature {}.5 {}.250",
            20 + i % 5,
            start + i * 15
        )
        .unwrap();
    }
    s.push_str("# EOF\n");
    std::fs::write(path, s).unwrap();
}

#[test]
fn backfilled_blocks_are_listed_analyzed_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    let data = dir.path().join("data");
    let start = start_seconds();
    write_input(&input, start);

    let out = ember_tsdb(&[
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("BLOCK ULID"), "{stdout}");
    assert_eq!(lines.len(), 3, "two blocks: {stdout}");
    assert!(lines[1].contains("2h0m0s"), "{stdout}");
    assert!(
        text(&out.stderr).contains("1440/1440 samples"),
        "progress: {}",
        text(&out.stderr)
    );

    let list = ember_tsdb(&["list", "-r", data.to_str().unwrap()]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(listed.contains("+0000 UTC"), "{listed}");
    let samples: u64 = listed
        .lines()
        .skip(1)
        .map(|l| {
            l.split_whitespace()
                .nth(10)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(samples, 1440, "{listed}");

    let analyze = ember_tsdb(&["analyze", data.to_str().unwrap()]);
    assert!(analyze.status.success(), "{}", text(&analyze.stderr));
    let report = text(&analyze.stdout);
    assert!(report.contains("Total Series: 2"), "{report}");
    assert!(report.contains("Bytes per sample: "), "{report}");
    assert!(report.contains("demo_requests_total"), "{report}");

    // A server on the output directory answers from the blocks (at start + 60 s
    // the latest temperature sample is the one at start + 45.25 s: 23.5).
    let ember = Ember::start(Options::default().data_dir(&data));
    let url = format!(
        "/api/v1/query_range?query=demo_requests_total&start={}&end={}&step=15",
        start,
        start + 719 * 15
    );
    let body: Value = ember.get(&url).json().unwrap();
    let values = body["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no result: {body}"));
    assert_eq!(values.len(), 720, "{body}");
    assert_eq!(values[1][1], "7");
    assert_eq!(values[719][1], (719 * 7).to_string());
    let body: Value = ember
        .get(&format!(
            "/api/v1/query?query=demo_temperature&time={}",
            start + 60
        ))
        .json()
        .unwrap();
    assert_eq!(body["data"]["result"][0]["value"][1], "23.5", "{body}");
}

#[test]
fn bad_input_is_refused_with_its_line_and_writes_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (name, content, expected) in [
        ("no-ts.om", "a 1 1\na 2\n# EOF\n", "line 2"),
        ("syntax.om", "a 1 1\na{b=} 2 3\n# EOF\n", "line 2"),
        ("no-eof.om", "a 1 1\n", "EOF"),
        (
            "conflict.om",
            "a 1 1\na 2 1\n# EOF\n",
            "two different values",
        ),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, content).unwrap();
        let out = ember_tsdb(&[
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            data.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name} accepted");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        let blocks = std::fs::read_dir(&data).map_or(0, |d| d.count());
        assert_eq!(blocks, 0, "{name} left a block behind");
    }
    let missing = ember_tsdb(&["create-blocks-from", "openmetrics", "/nonexistent.om"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("/nonexistent.om"));
}
