//! Plugin call overhead and cached load time.
//!
//! - `relabel_10k/*`: one relabel call on a 10,000-series scrape (6 labels
//!   each) through the `relabel-hash-pii` plugin, against the same work done
//!   in native Rust. `passthrough` configures a label no series has, so the
//!   plugin only scans and returns every set: the difference to native is the
//!   pure cost of crossing the boundary (copying in, copying out, sorting
//!   check, spawn_blocking). `hash` hashes one label per series.
//! - `exporter_call`: one `collect` of the exporter fixture returning three
//!   small families: the fixed cost of a plugin call.
//! - `load_cached`: `PluginRuntime::load_blocking` of the hash-pii plugin
//!   whose compiled artifact is already in the cache: read, hash, deserialize,
//!   link, instantiate, `init`.
//!
//! The plugins come from `scripts/build-plugins.sh`; without them the
//! benchmarks print a message and measure nothing.
//!
//! Measured on the project's 2-core development machine (shared with other
//! builds, so ±10%), `cargo bench -p ember-plugin-host`, wasmtime 48.0.8:
//!
//! | benchmark | plugin | native | per series |
//! | --- | --- | --- | --- |
//! | relabel_10k/passthrough | 3.08 ms | 0.24 ms | +0.28 µs |
//! | relabel_10k/hash | 9.2 ms | 1.8 ms | +0.74 µs (SHA-256 in wasm, no SHA extensions) |
//! | exporter_call | 41 µs | | |
//! | load_cached | 0.18 ms | | |
//!
//! For comparison, the same passthrough with spans as a list of records was
//! 8.1 ms (wasmtime copies records field by field), and with the plain
//! `list<list<label>>` shape about 95 ms in a debug build of this crate.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ember_plugin_host::{
    Labels, Limits, PluginKind, PluginRuntime, PluginSource, PluginSpec, RuntimeConfig,
};
use sha2::{Digest, Sha256};

fn plugin_path(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(format!("{name}.wasm"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is missing; run scripts/build-plugins.sh",
            path.display()
        );
        None
    }
}

fn scrape(series: usize) -> Vec<Labels> {
    (0..series)
        .map(|i| {
            vec![
                ("__name__".to_owned(), format!("http_requests_{}", i % 50)),
                ("email".to_owned(), format!("user{i}@example.com")),
                ("instance".to_owned(), "web-17.example.com:9100".to_owned()),
                ("job".to_owned(), "web".to_owned()),
                (
                    "method".to_owned(),
                    ["GET", "POST", "PUT"][i % 3].to_owned(),
                ),
                ("status".to_owned(), format!("{}", 200 + (i % 5))),
            ]
        })
        .collect()
}

/// What the plugin does, natively: the baseline.
fn native_relabel(batch: Vec<Labels>, hashed: &[&str], salt: &[u8]) -> Vec<Option<Labels>> {
    batch
        .into_iter()
        .map(|mut labels| {
            for (name, value) in &mut labels {
                if !value.is_empty() && hashed.iter().any(|h| h == name) {
                    let digest = Sha256::new()
                        .chain_update(salt)
                        .chain_update(&*value)
                        .finalize();
                    // The plugin's own hex encoding, so both sides do the same work.
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let mut hex = String::with_capacity(64);
                    for byte in digest {
                        hex.push(char::from(HEX[usize::from(byte >> 4)]));
                        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
                    }
                    hex.truncate(16);
                    *value = hex;
                }
            }
            Some(labels)
        })
        .collect()
}

fn runtime(cache: &std::path::Path) -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn benches(c: &mut Criterion) {
    let (Some(hash_pii), Some(fixture)) = (
        plugin_path("relabel-hash-pii"),
        plugin_path("exporter-fixture"),
    ) else {
        return;
    };
    let cache = tempfile::tempdir().expect("temporary directory");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let runtime = runtime(cache.path());
    let limits = Limits {
        call_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let load = |labels: &str| {
        let spec = PluginSpec::new(
            "hash-pii",
            PluginKind::Relabeler,
            PluginSource::Path(hash_pii.clone()),
        )
        .with_config([("labels", labels), ("salt", "pepper")])
        .with_limits(limits.clone());
        runtime.load_blocking(spec).expect("load")
    };
    let passthrough = load("not_present");
    let hashing = load("email");
    let batch = scrape(10_000);

    let mut group = c.benchmark_group("relabel_10k");
    group.sample_size(30);
    group.bench_function("passthrough/plugin", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| tokio.block_on(passthrough.relabel(batch)).expect("relabel"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("passthrough/native", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| native_relabel(batch, &["not_present"], b"pepper"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("hash/plugin", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| tokio.block_on(hashing.relabel(batch)).expect("relabel"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("hash/native", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| native_relabel(batch, &["email"], b"pepper"),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let exporter = runtime
        .load_blocking(
            PluginSpec::new("fixture", PluginKind::Exporter, PluginSource::Path(fixture))
                .with_limits(limits.clone()),
        )
        .expect("load exporter");
    let target: Labels = vec![("__address__".to_owned(), "db:5432".to_owned())];
    c.bench_function("exporter_call", |b| {
        b.iter(|| {
            tokio
                .block_on(exporter.collect(target.clone(), Vec::new()))
                .expect("collect")
        })
    });

    // The loads above filled the cache; every load here is a cache hit.
    c.bench_function("load_cached", |b| {
        b.iter(|| {
            let plugin = load("email");
            assert!(plugin.status().loaded_from_cache);
            plugin
        })
    });
}

criterion_group!(plugin_benches, benches);
criterion_main!(plugin_benches);
