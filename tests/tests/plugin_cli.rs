//! `ember plugin new|build|inspect` through the real `ember` binary: a C
//! relabeler from scaffold to component (clang builds in a fraction of a
//! second), inspection of the repository's Rust example, and clear errors
//! with a failing exit status for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ember(args: &[&str], dir: &Path) -> Output {
    Command::new(ember_tests::ember_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ember")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_c_plugin_goes_from_new_to_build_to_inspect() {
    if !Path::new("/usr/bin/clang").is_file() {
        eprintln!("skipping: clang is missing; run scripts/setup.sh --plugin-toolchains");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let new = ember(
        &[
            "plugin",
            "new",
            "trunc",
            "--kind",
            "relabeler",
            "--lang",
            "c",
        ],
        dir.path(),
    );
    assert!(new.status.success(), "{}", text(&new));
    assert!(
        text(&new).contains("next: ember plugin build trunc"),
        "{}",
        text(&new)
    );
    assert!(dir.path().join("trunc/plugin.c").is_file());
    assert!(dir.path().join("trunc/wit/worlds.wit").is_file());

    let build = ember(&["plugin", "build", "trunc"], dir.path());
    assert!(build.status.success(), "{}", text(&build));
    let component = dir.path().join("trunc/target/trunc.wasm");
    assert!(component.is_file(), "{}", text(&build));

    let inspect = ember(
        &["plugin", "inspect", "--json", component.to_str().unwrap()],
        dir.path(),
    );
    assert!(inspect.status.success(), "{}", text(&inspect));
    let report: Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    assert_eq!(report["kind"], "relabeler", "{report}");
    assert_eq!(report["contract_version"], "0.1.0", "{report}");
    assert_eq!(report["component"], true, "{report}");
    assert_eq!(
        report["exports"],
        serde_json::json!(["init", "relabel"]),
        "{report}"
    );
    assert_eq!(report["capabilities"], serde_json::json!([]), "{report}");
    let bytes = std::fs::read(&component).unwrap();
    assert_eq!(report["size"], bytes.len(), "{report}");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64, "{report}");
}

#[test]
fn inspect_names_the_capabilities_a_rust_example_needs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/discovery-http-inventory.wasm");
    if !path.is_file() {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh",
            path.display()
        );
        return;
    }
    let output = ember(
        &["plugin", "inspect", path.to_str().unwrap()],
        Path::new("."),
    );
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("kind:     discovery"), "{out}");
    assert!(out.contains("contract: ember:plugin@0.1.0"), "{out}");
    assert!(out.contains("core module with a component type"), "{out}");
    assert!(
        out.contains("wasi:http/outgoing-handler") && out.contains("capabilities.allowed_hosts"),
        "{out}"
    );
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let cases: [(&[&str], &str); 5] = [
        (
            &["plugin", "new", "Bad Name", "--kind", "exporter"],
            "lower-case letters",
        ),
        (
            &[
                "plugin",
                "new",
                "x",
                "--kind",
                "remote-storage",
                "--lang",
                "python",
            ],
            "collide with libc",
        ),
        (&["plugin", "build", "."], "not a plugin project"),
        (&["plugin", "inspect", "missing.wasm"], "missing.wasm"),
        (
            &["plugin", "new", "x", "--kind", "sorter"],
            "invalid value 'sorter'",
        ),
    ];
    for (args, expected) in cases {
        let output = ember(args, dir.path());
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            text(&output).contains(expected),
            "{args:?}: {}",
            text(&output)
        );
    }
    std::fs::write(dir.path().join("junk.wasm"), "not wasm").unwrap();
    let output = ember(&["plugin", "inspect", "junk.wasm"], dir.path());
    assert!(!output.status.success());
    assert!(
        text(&output).contains("not a WebAssembly file"),
        "{}",
        text(&output)
    );
}
