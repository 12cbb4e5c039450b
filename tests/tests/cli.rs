//! `ember --version` and `ember check config`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember_tests::ember_binary;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/testdata")
        .join(name)
}

#[test]
fn version_reports_version_revision_and_build_date() {
    let output = Command::new(ember_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("ember, version {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("revision: "), "{text}");
    assert!(text.contains("build date:"), "{text}");
}

#[test]
fn check_config_accepts_every_good_fixture_and_rejects_every_bad_one() {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(testdata("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".good.yml") {
            good.push(path);
        } else if name.ends_with(".bad.yml") {
            bad.push(path);
        }
    }
    assert!(
        !good.is_empty() && !bad.is_empty(),
        "fixtures missing in config/testdata"
    );

    let output = Command::new(ember_binary())
        .args(["check", "config"])
        .args(&good)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "good fixtures rejected:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches("SUCCESS")
            .count(),
        good.len()
    );

    for path in &bad {
        let output = Command::new(ember_binary())
            .args(["check", "config"])
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{} was accepted",
            path.display()
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Every bad fixture names its expected error in its first line.
        let expected = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{} has no '# error: ' first line", path.display()));
        assert!(stderr.contains("FAILED"), "{stderr}");
        assert!(
            stderr.contains(expected.trim()),
            "{}: expected {expected:?} in:\n{stderr}",
            path.display()
        );
    }
}

#[test]
fn check_config_fails_if_any_file_is_bad_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&good, "scrape_configs:\n  - job_name: a\n").unwrap();
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
    )
    .unwrap();
    let output = Command::new(ember_binary())
        .args(["check", "config"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("SUCCESS: ") && stdout.contains("good.yml"),
        "{stdout}"
    );
    assert!(stderr.contains("bad.yml:3:"), "{stderr}");
    assert!(stderr.contains("scrape_intervall"), "{stderr}");
}

#[test]
fn check_config_accepts_the_configs_debian_prometheus_ships() {
    let shipped: Vec<&Path> = [
        "/etc/prometheus/prometheus.yml",
        "/usr/share/doc/prometheus/examples/prometheus.yml",
    ]
    .into_iter()
    .map(Path::new)
    .filter(|p| p.is_file())
    .collect();
    if shipped.is_empty() {
        eprintln!(
            "SKIP: Debian's prometheus package is not installed; no shipped configs to check"
        );
        return;
    }
    let output = Command::new(ember_binary())
        .args(["check", "config"])
        .args(&shipped)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
