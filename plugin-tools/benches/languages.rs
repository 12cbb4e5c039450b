//! The same relabel plugin in four languages: cached load time and call
//! cost. The plugins are the relabeler scaffolds of `ember plugin new`
//! (drop sets with a `drop` label, add `source=plugin` to the others; the C
//! one only drops), which `cargo test -p ember-plugin-tools --test
//! scaffold` builds into `target/plugin-scaffold-tests/out/`; missing ones
//! are skipped with a message.
//!
//! - `load_cached/<lang>`: `PluginRuntime::load_blocking` with the compiled
//!   artifact already in the cache: read and hash the file, deserialize,
//!   link, instantiate, `init`. What a server restart or a reload of an
//!   unchanged plugin costs.
//! - `relabel_1000/<lang>`: one relabel call with 1,000 series of 3 labels
//!   (packed batch in, answer out, through tokio's blocking pool).
//!
//! Every plugin gets a 256 MiB memory cap: with the default 64 MiB the
//! JavaScript relabeler runs out of memory during the run.
//!
//! Bounded: 10 samples of at most 3 s per benchmark. Figures are recorded
//! in docs/plugins.md.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ember_plugin_host::{
    Limits, PluginKind, PluginRuntime, PluginSource, PluginSpec, RuntimeConfig,
};

const LANGUAGES: [&str; 4] = ["rust", "c", "python", "js"];

fn component(language: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugin-scaffold-tests/out")
        .join(format!("scaffold-{language}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping {language}: {} is missing; run cargo test -p ember-plugin-tools --test scaffold",
            path.display()
        );
        None
    }
}

fn spec(language: &str, path: PathBuf) -> PluginSpec {
    PluginSpec::new(
        format!("scaffold-{language}"),
        PluginKind::Relabeler,
        PluginSource::Path(path),
    )
    .with_config([("drop_label", "drop"), ("add", "source=plugin")])
    .with_limits(Limits {
        call_timeout: Duration::from_secs(30),
        // StarlingMonkey's heap outgrows the default 64 MiB over a few
        // hundred 1,000-series calls (an out-of-memory trap); the same
        // generous cap for every language keeps the comparison fair.
        max_memory_bytes: 256 << 20,
        ..Limits::default()
    })
}

fn batch() -> Vec<Vec<(String, String)>> {
    (0..1000)
        .map(|i| {
            vec![
                ("__name__".to_owned(), format!("http_requests_{}", i % 20)),
                ("instance".to_owned(), "10.0.0.1:9100".to_owned()),
                ("path".to_owned(), format!("/api/{i}")),
            ]
        })
        .collect()
}

fn languages(c: &mut Criterion) {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-bench-cache");
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let mut load = c.benchmark_group("load_cached");
    load.sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let mut plugins = Vec::new();
    for language in LANGUAGES {
        let Some(path) = component(language) else {
            continue;
        };
        // The first load compiles and fills the cache.
        let plugin = runtime
            .load_blocking(spec(language, path.clone()))
            .expect("load");
        load.bench_function(language, |b| {
            b.iter(|| {
                runtime
                    .load_blocking(spec(language, path.clone()))
                    .expect("load")
            })
        });
        plugins.push((language, plugin));
    }
    load.finish();

    let mut call = c.benchmark_group("relabel_1000");
    call.sample_size(10)
        .measurement_time(Duration::from_secs(3));
    let input = batch();
    for (language, plugin) in &plugins {
        let out = tokio
            .block_on(plugin.relabel(input.clone()))
            .expect("relabel");
        assert_eq!(out.len(), input.len());
        call.bench_function(*language, |b| {
            b.iter(|| {
                tokio
                    .block_on(plugin.relabel(input.clone()))
                    .expect("relabel")
            })
        });
    }
    call.finish();
}

criterion_group!(benches, languages);
criterion_main!(benches);
