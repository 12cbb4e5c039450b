//! `ember plugin new` -> `build` -> `inspect` -> load and call, for each
//! language: the scaffolds must build as they are and do what their
//! comments say. Rust and C always run; Python and JavaScript run when the
//! tools `scripts/setup.sh --plugin-toolchains` installs are present (else
//! they say so and return).
//!
//! Builds go to `target/plugin-scaffold-tests/` so that a second run reuses
//! cargo's and componentize's work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ember_plugin_host::{
    Capabilities, PluginKind, PluginRuntime, PluginSource, PluginSpec, RuntimeConfig,
};
use ember_plugin_tools::{Kind, Language, build, inspect, scaffold};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn toolchain() -> PathBuf {
    repo().join("target/plugin-toolchain")
}

/// Whether the tool for `language` is installed; prints why not otherwise.
fn tools_present(language: Language) -> bool {
    let (present, what) = match language {
        Language::Rust => (true, ""),
        Language::C => (Path::new("/usr/bin/clang").is_file(), "clang"),
        Language::Python => (
            toolchain().join("python/bin/componentize-py").is_file(),
            "componentize-py",
        ),
        Language::Js => (
            toolchain()
                .join("js/node_modules/@bytecodealliance/componentize-js")
                .is_dir(),
            "componentize-js",
        ),
    };
    if !present {
        eprintln!(
            "skipping {language}: {what} is missing; run scripts/setup.sh --plugin-toolchains"
        );
    }
    present
}

/// Scaffolds, builds and inspects a relabeler in `language`, then checks
/// that it drops sets with a `drop` label and adds `source=plugin` to the
/// others (the template's behaviour with the configuration below).
async fn round_trip(language: Language) {
    if !tools_present(language) {
        return;
    }
    let work = repo().join("target/plugin-scaffold-tests");
    let name = format!("scaffold-{language}");
    let project = work.join(&name);
    // The project is made fresh every run; its build directory is kept.
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&work).unwrap();
    scaffold::new_project(
        &project,
        &scaffold::Options::new(&name, Kind::Relabeler, language),
    )
    .expect("new");
    if language == Language::Rust {
        // The plugins workspace's lock pins the SDK's dependencies to
        // versions known to build here; cargo drops what the project does
        // not use.
        std::fs::copy(
            repo().join("plugins/Cargo.lock"),
            project.join("Cargo.lock"),
        )
        .unwrap();
    }
    let built = build::build(
        &project,
        &build::Options {
            out_dir: Some(work.join("out")),
            target_dir: Some(work.join(format!("build-{language}"))),
            componentize_py: Some(toolchain().join("python/bin/componentize-py")),
            componentize_js_dir: Some(toolchain().join("js")),
        },
    )
    .expect("build");
    assert_eq!(
        built.component,
        work.join("out").join(format!("{name}.wasm"))
    );

    let report = inspect::inspect_file(&built.component).expect("inspect");
    assert_eq!(report.kind, Some(Kind::Relabeler), "{report}");
    assert_eq!(
        report.contract_version.as_deref(),
        Some("0.1.0"),
        "{report}"
    );
    assert!(report.exports.contains(&"relabel".to_owned()), "{report}");
    assert!(report.component, "build writes components: {report}");

    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(repo().join("target/plugin-examples-data/plugin-cache")),
        epoch_tick: Duration::from_millis(5),
    })
    .unwrap();
    let mut config = vec![("drop_label", "secret")];
    if language != Language::C {
        config.push(("add", "source=plugin"));
    }
    let limits = ember_plugin_host::Limits {
        call_timeout: Duration::from_secs(20),
        ..ember_plugin_host::Limits::default()
    };
    let plugin = runtime
        .load(
            PluginSpec::new(
                &name,
                PluginKind::Relabeler,
                PluginSource::Path(built.component),
            )
            .with_config(config)
            .with_limits(limits)
            .with_capabilities(Capabilities::none()),
        )
        .await
        .expect("load");
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect()
    };
    let out = plugin
        .relabel(vec![
            owned(&[("__name__", "up"), ("job", "ünïcode")]),
            owned(&[("__name__", "up"), ("secret", "x")]),
            owned(&[("__name__", "m"), ("zone", "eu")]),
        ])
        .await
        .expect("relabel");
    assert_eq!(out.len(), 3);
    assert!(
        out[1].is_none(),
        "{language}: the set with `secret` is dropped"
    );
    let first = out[0].as_ref().unwrap();
    assert!(
        first.contains(&("job".into(), "ünïcode".into())),
        "{language}: {first:?}"
    );
    if language != Language::C {
        assert!(
            first.contains(&("source".into(), "plugin".into())),
            "{language}: {first:?}"
        );
        assert_eq!(first.len(), 3, "{language}: {first:?}");
    } else {
        assert_eq!(first.len(), 2, "{language}: {first:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_scaffold_builds_inspects_and_runs() {
    round_trip(Language::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_scaffold_builds_inspects_and_runs() {
    round_trip(Language::C).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_scaffold_builds_inspects_and_runs() {
    round_trip(Language::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_scaffold_builds_inspects_and_runs() {
    round_trip(Language::Js).await;
}

#[test]
fn every_kind_scaffolds_in_every_language_it_supports() {
    let dir = tempfile::tempdir().unwrap();
    for language in [Language::Rust, Language::Python, Language::Js, Language::C] {
        for kind in Kind::ALL {
            let project = dir.path().join(format!("{language}-{kind}"));
            let result =
                scaffold::new_project(&project, &scaffold::Options::new("p", kind, language));
            if language == Language::Python && kind == Kind::RemoteStorage {
                assert!(result.is_err());
                continue;
            }
            result.unwrap_or_else(|e| panic!("{language} {kind}: {e}"));
            let manifest = ember_plugin_tools::Manifest::load(&project).unwrap();
            assert_eq!(manifest.language, language);
            assert!(
                manifest.source_path(&project).is_file(),
                "{language} {kind}"
            );
        }
    }
}
