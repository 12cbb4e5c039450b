//! Data-driven tests over `testdata/`: every `*.good.yml` must load, and every
//! `*.bad.yml` must fail with the location and field path named on its first line,
//! `# error: <line>:<column>: <field path>[: <start of message>]`.

use std::path::{Path, PathBuf};

use ember_config::{ConfigError, parse_with_env};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn fixtures(suffix: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths
}

/// The environment the fixtures are written against, so results do not depend on the
/// machine running the tests.
fn test_env(name: &str) -> Option<String> {
    match name {
        "EMBER_TEST_REPLICA" => Some("replica-a".to_owned()),
        _ => None,
    }
}

fn load(path: &Path) -> Result<ember_config::Config, ConfigError> {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    parse_with_env(&text, path, &test_env)
}

#[test]
fn good_fixtures_load() {
    let paths = fixtures(".good.yml");
    assert!(
        paths.len() >= 5,
        "expected the good fixtures, found {paths:?}"
    );
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| load(path).err().map(|error| error.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "good fixtures failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_fixtures_fail_where_their_header_says() {
    let paths = fixtures(".bad.yml");
    assert!(
        paths.len() >= 25,
        "expected the bad fixtures, found {}",
        paths.len()
    );
    let mut problems = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("fixture is readable");
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let expected = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# error: "))
            .unwrap_or_else(|| {
                panic!("{file_name}: first line must be `# error: <line>:<col>: <path>`")
            });
        match load(path) {
            Ok(_) => problems.push(format!("{file_name}: loaded, expected error {expected:?}")),
            Err(error) => {
                let rendered = error.to_string();
                let wanted = format!("{file_name}:{expected}");
                if !rendered.contains(&wanted) {
                    problems.push(format!(
                        "{file_name}: expected {wanted:?}\n    got      {rendered:?}"
                    ));
                }
                if error.location().is_none() {
                    problems.push(format!("{file_name}: error has no location: {rendered}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} bad fixtures misbehaved:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn load_file_reports_unreadable_files() {
    let missing = testdata().join("does-not-exist.yml");
    let error = ember_config::load_file(&missing).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("does-not-exist.yml"));
}

#[test]
fn load_file_reads_from_disk() {
    let config = ember_config::load_file(&testdata().join("minimal.good.yml")).expect("loads");
    assert_eq!(config.scrape_configs[0].job_name, "node");
    assert!(config.source.text.contains("job_name: node"));
}
