//! Storage size beside Prometheus and VictoriaMetrics on the same samples.
//!
//! Run by hand (it takes a minute or two and needs `promtool` and
//! `victoria-metrics` on the PATH, from `scripts/setup.sh --test-peers`):
//!
//! ```text
//! cargo bench -p ember-tsdb --bench compare
//! EMBER_COMPARE_HOSTS=8 EMBER_COMPARE_HOURS=6 cargo bench -p ember-tsdb --bench compare
//! ```
//!
//! It generates a node_exporter-like fleet ([`ember_tsdb::synth::NodeFleet`],
//! 15 s scrapes, timestamps as a Prometheus-compatible scraper stores them)
//! and a random-walk set, writes each as an OpenMetrics file, and then
//!
//! - backfills it with Ember ([`ember_tsdb::backfill`], the code behind
//!   `ember tsdb create-blocks-from openmetrics`),
//! - backfills it with `promtool tsdb create-blocks-from openmetrics`,
//! - imports it into a fresh VictoriaMetrics through
//!   `/api/v1/import/prometheus`, stops it with SIGINT (which flushes and
//!   finishes its merges) and takes the size of its data directory,
//!
//! and prints bytes per sample for each (everything on disk: index, chunks,
//! metadata) and Ember's ratio to the other two.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ember_tsdb::backfill::{BackfillOptions, create_blocks_from_openmetrics};
use ember_tsdb::synth::{NodeFleet, TimestampStyle, random_walk, write_openmetrics};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn ember(file: &Path, out: &Path) -> (u64, u64) {
    let input = fs::read(file).expect("read input");
    let started = Instant::now();
    let metas = create_blocks_from_openmetrics(&input, out, &BackfillOptions::default(), |_| {})
        .expect("ember backfill");
    let samples = metas.iter().map(|m| m.stats.num_samples).sum();
    eprintln!("  ember backfill: {:.1}s", started.elapsed().as_secs_f64());
    (dir_size(out), samples)
}

fn promtool(file: &Path, out: &Path) -> Option<u64> {
    let started = Instant::now();
    let status = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(file)
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("  promtool failed: {status}");
        return None;
    }
    eprintln!(
        "  promtool backfill: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Some(dir_size(out))
}

/// Imports the samples of the OpenMetrics `file` into a fresh
/// VictoriaMetrics and returns its data directory's size after a clean stop.
fn victoria_metrics(file: &Path, data: &Path) -> Option<u64> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", data.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    // Prometheus text format wants millisecond timestamps; the file has
    // seconds with exactly three decimals.
    let text = file.with_extension("prom");
    {
        let reader = BufReader::new(fs::File::open(file).ok()?);
        let mut out = BufWriter::new(fs::File::create(&text).ok()?);
        for line in reader.lines() {
            let line = line.ok()?;
            if line.starts_with('#') {
                continue;
            }
            let (head, ts) = line.rsplit_once(' ')?;
            writeln!(out, "{head} {}", ts.replace('.', "")).ok()?;
        }
        out.flush().ok()?;
    }
    let mut ready = false;
    for _ in 0..100 {
        let ok = Command::new("curl")
            .args(["-sf", &format!("{base}/health")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut result = None;
    if ready {
        let status = Command::new("curl")
            .args(["-sf", "--data-binary"])
            .arg(format!("@{}", text.display()))
            .arg(format!("{base}/api/v1/import/prometheus"))
            .status()
            .ok()?;
        if status.success() {
            let _ = Command::new("curl")
                .args(["-sf", &format!("{base}/internal/force_flush")])
                .status();
            result = Some(());
        }
    }
    // SIGINT: VictoriaMetrics flushes its in-memory parts and stops.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = fs::remove_file(&text);
    eprintln!(
        "  victoria-metrics import: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    result.map(|()| dir_size(data))
}

fn compare(name: &str, file: &Path, work: &Path) {
    eprintln!(
        "{name}: {} MB of OpenMetrics",
        fs::metadata(file).map_or(0, |m| m.len()) >> 20
    );
    let (ember_bytes, samples) = ember(file, &work.join("ember"));
    let prom = promtool(file, &work.join("prometheus"));
    let vm = victoria_metrics(file, &work.join("vm"));
    let per = |b: u64| b as f64 / samples as f64;
    println!("{name}: {samples} samples");
    println!(
        "  {:<18} {:>12} {:>10} {:>8}",
        "store", "bytes", "B/sample", "ember/x"
    );
    println!(
        "  {:<18} {:>12} {:>10.3} {:>8}",
        "ember",
        ember_bytes,
        per(ember_bytes),
        ""
    );
    for (store, bytes) in [("prometheus 2.42", prom), ("victoria-metrics", vm)] {
        match bytes {
            Some(b) => println!(
                "  {:<18} {:>12} {:>10.3} {:>8.2}",
                store,
                b,
                per(b),
                ember_bytes as f64 / b as f64
            ),
            None => println!("  {store:<18} not measured (not installed or failed)"),
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let hosts = env_usize("EMBER_COMPARE_HOSTS", 4);
    let hours = env_usize("EMBER_COMPARE_HOURS", 4);
    let samples = hours * 240;
    let work = tempfile::tempdir().expect("temp dir");
    let start_ms = 1_700_000_000_000 / 7_200_000 * 7_200_000;

    let fleet = NodeFleet {
        hosts,
        samples,
        start_ms,
        timestamps: TimestampStyle::Snapped,
        ..NodeFleet::default()
    }
    .build();
    let file = work.path().join("node.om");
    let mut out = BufWriter::new(fs::File::create(&file).expect("create"));
    write_openmetrics(&mut out, fleet.iter()).expect("write");
    out.flush().expect("flush");
    drop(out);
    let node_dir = work.path().join("node");
    fs::create_dir_all(&node_dir).expect("mkdir");
    println!(
        "node_exporter-like: {hosts} hosts, {} series, {hours} h at 15 s",
        fleet.len()
    );
    compare("node_exporter-like", &file, &node_dir);
    let _ = fs::remove_file(&file);

    let walk_series = fleet.len().min(2_000);
    let file = work.path().join("walk.om");
    let mut out = BufWriter::new(fs::File::create(&file).expect("create"));
    write_openmetrics(&mut out, random_walk(walk_series, samples, start_ms, 7)).expect("write");
    out.flush().expect("flush");
    drop(out);
    let walk_dir = work.path().join("walk");
    fs::create_dir_all(&walk_dir).expect("mkdir");
    println!("random walk: {walk_series} series, {hours} h at 15 s");
    compare("random walk", &file, &walk_dir);
}
