//! Runs the upstream promqltest files (when `../shared/conformance/promql`
//! exists) and the project's own `testdata/*.test` files, printing a
//! per-file table. The core upstream files and our own files must pass
//! completely; the experimental upstream files are reported only.

use std::path::{Path, PathBuf};

use ember_promql::promqltest::{FileReport, run_str};

/// The upstream files that must pass completely.
const CORE: &[&str] = &[
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
    "name_label_dropping",
    "limit",
];

fn run_dir(dir: &Path) -> Vec<FileReport> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "test"));
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_owned();
            let text = std::fs::read_to_string(path).expect("readable test file");
            // A file the runner cannot read (syntax of a feature not
            // implemented) counts as one failure rather than aborting.
            run_str(&name, &text).unwrap_or_else(|e| FileReport {
                name,
                failed: vec![(e.line, String::new(), e.to_string())],
                ..FileReport::default()
            })
        })
        .collect()
}

fn print(reports: &[FileReport]) {
    for report in reports {
        eprintln!("{report}");
        if std::env::var_os("PROMQLTEST_VERBOSE").is_some() {
            for (line, expr, why) in &report.failed {
                eprintln!("    line {line}: {expr}\n        {why}");
            }
        }
    }
}

#[test]
fn upstream_conformance() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/promql"
    ));
    if !dir.exists() {
        eprintln!(
            "skipping upstream PromQL conformance: {} is absent",
            dir.display()
        );
        return;
    }
    let reports = run_dir(dir);
    print(&reports);
    let failing: Vec<String> = reports
        .iter()
        .filter(|r| CORE.contains(&r.name.as_str()) && !r.failed.is_empty())
        .map(|r| format!("{} ({} failed)", r.name, r.failed.len()))
        .collect();
    assert!(failing.is_empty(), "core files failing: {failing:?}");
}

#[test]
fn own_testdata() {
    let reports = run_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")));
    print(&reports);
    assert!(!reports.is_empty(), "no testdata files");
    for report in &reports {
        assert!(
            report.failed.is_empty(),
            "{}: {:?}",
            report.name,
            report.failed
        );
    }
}
