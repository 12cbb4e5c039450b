//! Macro benchmark: remote-write ingestion CPU per million samples, side by
//! side for Ember (the real release binary), VictoriaMetrics (Debian
//! `victoria-metrics`, whose `/api/v1/write` takes Prometheus remote write)
//! and Prometheus 2.42 (`--web.enable-remote-write-receiver`), on the same
//! load.
//!
//! The load is pre-encoded before any server starts: `EMBER_BENCH_SERIES`
//! series (default 10000; 10 labels each, Prometheus-like names) sampled
//! `EMBER_BENCH_ROUNDS` times (default 100) 15 s apart, cut into snappy
//! `WriteRequest`s of `EMBER_BENCH_BATCH` samples (default 2000, Prometheus's
//! `max_samples_per_send`), sent by `EMBER_BENCH_CONNECTIONS` (default 2)
//! concurrent senders in order per series. Each server's CPU (user +
//! system, from `/proc/<pid>/stat`) is read just before the first request
//! and after the last answer plus a settle period of 2 s, so background
//! work caused by the load (VictoriaMetrics flushes asynchronously) is
//! counted. Every answer must be 2xx.
//!
//! Run with `cargo build --release --bin ember && cargo bench -p
//! ember-tests --bench remote_write_macro`. Bounded: it sends a fixed number
//! of requests to loopback servers it starts and kills them at the end.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ember_remote::codec::compress;
use ember_remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
use ember_tests::{Ember, Options, free_port, have_program, http_client, wait_http_ok};
use prost::Message;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here.
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Pre-encoded request bodies, in sending order, and the sample count.
fn build_load(series: usize, rounds: usize, batch: usize) -> (Vec<Vec<u8>>, usize) {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - (rounds as i64) * 15_000
        - 60_000;
    let labels: Vec<Vec<Label>> = (0..series)
        .map(|i| {
            let pairs = [
                ("__name__", format!("bench_metric_{}_total", i / 100)),
                ("instance", format!("host-{}.example:9100", i % 50)),
                ("job", "node".to_owned()),
                ("device", format!("d{}", i % 10)),
                ("mode", format!("m{}", i % 7)),
                ("cluster", "eu-west-1".to_owned()),
                ("namespace", format!("ns{}", i % 20)),
                ("pod", format!("pod-{}", i % 100)),
                ("container", "app".to_owned()),
                ("series", i.to_string()),
            ];
            let mut labels: Vec<Label> = pairs
                .into_iter()
                .map(|(n, v)| Label {
                    name: n.to_owned(),
                    value: v,
                })
                .collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            labels
        })
        .collect();
    let mut bodies = Vec::new();
    let mut total = 0;
    for round in 0..rounds {
        let t = start + round as i64 * 15_000;
        for chunk in (0..series).collect::<Vec<_>>().chunks(batch) {
            let timeseries = chunk
                .iter()
                .map(|&i| TimeSeries {
                    labels: labels[i].clone(),
                    samples: vec![Sample {
                        value: (round * 7 + i) as f64 * 0.5,
                        timestamp: t,
                    }],
                    ..Default::default()
                })
                .collect::<Vec<_>>();
            total += timeseries.len();
            bodies.push(compress(
                &WriteRequest {
                    timeseries,
                    metadata: vec![],
                }
                .encode_to_vec(),
            ));
        }
    }
    (bodies, total)
}

/// Sends every body to `url` with `connections` senders. Requests of one
/// round go out before the next round's, so samples stay in order per
/// series. Panics on a non-2xx answer.
fn send_all(url: &str, bodies: &Arc<Vec<Vec<u8>>>, per_round: usize, connections: usize) {
    let rounds = bodies.len() / per_round;
    for round in 0..rounds {
        let next = Arc::new(AtomicUsize::new(round * per_round));
        let end = (round + 1) * per_round;
        let threads: Vec<_> = (0..connections)
            .map(|_| {
                let (next, bodies, url) = (next.clone(), bodies.clone(), url.to_owned());
                std::thread::spawn(move || {
                    let client = http_client(Duration::from_secs(60));
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            break;
                        }
                        let response = client
                            .post(&url)
                            .header("Content-Type", "application/x-protobuf")
                            .header("Content-Encoding", "snappy")
                            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                            .body(bodies[i].clone())
                            .send()
                            .expect("send");
                        let status = response.status();
                        assert!(
                            status.is_success(),
                            "{url}: HTTP {status}: {}",
                            response.text().unwrap_or_default()
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("sender");
        }
    }
}

struct Peer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_peer(
    program: &str,
    args: impl Fn(&str, &std::path::Path) -> Vec<String>,
    ready: &str,
) -> Option<(Peer, String)> {
    if !have_program(program) {
        eprintln!("SKIP: {program} is not installed");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new(program)
        .current_dir(dir.path())
        .args(args(&address, dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peer");
    let url = format!("http://{address}");
    assert!(
        wait_http_ok(&format!("{url}{ready}"), Duration::from_secs(30)),
        "{program} did not become ready"
    );
    Some((Peer { child, _dir: dir }, url))
}

struct Figure {
    name: &'static str,
    cpu: f64,
    wall: f64,
    rss: f64,
}

fn measure(
    name: &'static str,
    pid: u32,
    url: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    per_round: usize,
    connections: usize,
) -> Figure {
    let before = cpu_seconds(pid);
    let started = Instant::now();
    send_all(
        &format!("{url}/api/v1/write"),
        bodies,
        per_round,
        connections,
    );
    let wall = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    Figure {
        name,
        cpu: cpu_seconds(pid) - before,
        wall,
        rss: rss_mib(pid),
    }
}

fn main() {
    let series = env("EMBER_BENCH_SERIES", 10_000);
    let rounds = env("EMBER_BENCH_ROUNDS", 100);
    let batch = env("EMBER_BENCH_BATCH", 2_000);
    let connections = env("EMBER_BENCH_CONNECTIONS", 2);
    let (bodies, samples) = build_load(series, rounds, batch);
    let per_round = bodies.len() / rounds;
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    println!(
        "load: {series} series x {rounds} rounds = {samples} samples in {} requests of {batch} ({:.1} MiB snappy), {connections} connections",
        bodies.len(),
        bytes as f64 / (1 << 20) as f64
    );
    let mut figures = Vec::new();
    {
        let ember = Ember::start(Options::default().flag("--web.enable-remote-write-receiver"));
        figures.push(measure(
            "ember",
            ember.pid(),
            ember.base_url(),
            &bodies,
            per_round,
            connections,
        ));
    }
    if let Some((peer, url)) = start_peer(
        "/usr/bin/victoria-metrics",
        |address, dir| {
            vec![
                format!("-httpListenAddr={address}"),
                format!("-storageDataPath={}", dir.join("data").display()),
                "-loggerLevel=ERROR".to_owned(),
            ]
        },
        "/health",
    ) {
        figures.push(measure(
            "victoria-metrics",
            peer.child.id(),
            &url,
            &bodies,
            per_round,
            connections,
        ));
    }
    if let Some((peer, url)) = start_peer(
        "/usr/bin/prometheus",
        |address, dir| {
            let config = dir.join("prometheus.yml");
            std::fs::write(&config, "global: {}\n").expect("config");
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address={address}"),
                "--web.enable-remote-write-receiver".to_owned(),
            ]
        },
        "/-/ready",
    ) {
        figures.push(measure(
            "prometheus",
            peer.child.id(),
            &url,
            &bodies,
            per_round,
            connections,
        ));
    }
    let million = samples as f64 / 1e6;
    println!(
        "{:<18} {:>14} {:>12} {:>14} {:>9}",
        "server", "CPU-s/Msample", "wall s", "samples/s", "RSS MiB"
    );
    for f in &figures {
        println!(
            "{:<18} {:>14.3} {:>12.2} {:>14.0} {:>9.0}",
            f.name,
            f.cpu / million,
            f.wall,
            samples as f64 / f.wall,
            f.rss
        );
    }
    if let Some(vm) = figures.iter().find(|f| f.name == "victoria-metrics") {
        println!(
            "ember / victoria-metrics CPU ratio: {:.2}",
            figures[0].cpu / vm.cpu
        );
    }
    if let Some(p) = figures.iter().find(|f| f.name == "prometheus") {
        println!(
            "ember / prometheus CPU ratio: {:.2}",
            figures[0].cpu / p.cpu
        );
    }
}
