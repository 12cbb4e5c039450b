//! Macro benchmark: the real `ember` binary and, when Debian's `prometheus`
//! is installed, Prometheus, scraping the same synthetic targets at the same
//! time. Reports CPU seconds per million samples scraped and resident memory
//! per active series for each, and their ratios.
//!
//! Run with `cargo build --release --bin ember && cargo bench -p ember-tests
//! --bench scrape_macro`. Sizes come from the environment:
//! `EMBER_BENCH_TARGETS` (default 100) × `EMBER_BENCH_SERIES` (default 1000)
//! series, scraped every `EMBER_BENCH_INTERVAL_S` (10) seconds for
//! `EMBER_BENCH_SECONDS` (60) seconds after a warm-up of two intervals. The
//! benchmark is bounded: it stops by itself and kills what it started.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ember_tests::{Ember, Options, Prometheus};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts `targets` HTTP targets of `series` series each; returns their
/// addresses. Bodies are rendered ahead of time in a few variants with
/// different values, so serving costs the benchmark process little.
fn start_targets(targets: u64, series: u64) -> Vec<String> {
    let mut addresses = Vec::new();
    for target in 0..targets {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
        addresses.push(listener.local_addr().expect("address").to_string());
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..4u64)
                .map(|variant| {
                    let mut body = String::new();
                    for family in 0..series / 10 {
                        body.push_str(&format!("# TYPE bench_metric_{family}_total counter\n"));
                        for i in 0..10 {
                            let value = (target + 1) * 1000 + family * 10 + i + variant * (i + 1);
                            body.push_str(&format!(
                                "bench_metric_{family}_total{{device=\"d{i}\",mode=\"m{}\"}} {value}\n",
                                i % 3
                            ));
                        }
                    }
                    body
                })
                .collect(),
        );
        let hits = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = &bodies[(hits.fetch_add(1, Ordering::Relaxed) % 4) as usize];
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            }
        });
    }
    addresses
}

/// (user + system CPU seconds, resident bytes) of a process, from /proc.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let clock_ticks = 100.0; // USER_HZ on Linux
    let cpu = (ticks(11) + ticks(12)) / clock_ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    (cpu, rss_kib * 1024)
}

fn pid_listening_on(url: &str) -> Option<u32> {
    // Prometheus is started by the harness; find it by its listen address.
    let port = url.rsplit(':').next()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("prometheus") && cmdline.contains(&format!("127.0.0.1:{port}")) {
            return Some(pid);
        }
    }
    None
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let targets = env("EMBER_BENCH_TARGETS", 100);
    let series = env("EMBER_BENCH_SERIES", 1000);
    let interval = env("EMBER_BENCH_INTERVAL_S", 10);
    let seconds = env("EMBER_BENCH_SECONDS", 60);
    let addresses = start_targets(targets, series);
    let list: Vec<String> = addresses.iter().map(|a| format!("'{a}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {}s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{}]\n",
        interval.saturating_sub(1).max(1),
        list.join(", ")
    );

    let ember = Ember::start(Options::with_config(config.clone()));
    let prometheus = Prometheus::start(&config);
    let prometheus_pid = prometheus.as_ref().and_then(|p| pid_listening_on(p.url()));

    let warmup = Duration::from_secs(2 * interval + 5);
    eprintln!(
        "scrape_macro: {targets} targets x {series} series every {interval}s; warming up {warmup:?}"
    );
    std::thread::sleep(warmup);
    let ember_start = usage(ember.pid());
    let prometheus_start = prometheus_pid.map(usage);
    std::thread::sleep(Duration::from_secs(seconds));
    let ember_end = usage(ember.pid());
    let prometheus_end = prometheus_pid.map(usage);

    let samples_millions = (targets * series) as f64 * (seconds as f64 / interval as f64) / 1e6;
    let active = (targets * series) as f64;
    let report = |name: &str, start: (f64, u64), end: (f64, u64)| -> (f64, f64) {
        let cpu_per_million = (end.0 - start.0) / samples_millions;
        let rss_per_series = end.1 as f64 / active;
        println!(
            "{name:<11} cpu {:>7.2} s   {cpu_per_million:>6.3} CPU-s per million samples   rss {:>7.1} MiB   {rss_per_series:>7.0} B per series",
            end.0 - start.0,
            end.1 as f64 / (1 << 20) as f64
        );
        (cpu_per_million, rss_per_series)
    };
    println!(
        "scrape_macro: {targets} targets x {series} series at {interval}s, measured over {seconds}s ({samples_millions:.1} M samples each)"
    );
    let ours = report("ember", ember_start, ember_end);
    match (prometheus_start, prometheus_end) {
        (Some(start), Some(end)) => {
            let theirs = report("prometheus", start, end);
            println!(
                "ratios ember/prometheus: CPU per sample {:.2}, RSS per series {:.2}",
                ours.0 / theirs.0,
                ours.1 / theirs.1
            );
        }
        _ => println!("prometheus: not installed (Debian package prometheus); no comparison"),
    }
    drop(prometheus);
    drop(ember);
}
