//! Memory per series after the head is cut into a block: appends
//! `EMBER_TRUNCATION_MEMORY_SERIES` series (default 100 000) × 3 h 10 min at
//! 15 s (one transaction per 1 000-series target), runs `Db::compact` (one
//! 2 h block written, the head truncated to the last 1 h 10 min), and
//! reports the resident set per series before and after, how long the
//! block write and truncation took, and how fast 1% of the series are read
//! for an hour from the block and from the head.
//!
//! Ignored by default (it takes a while and needs a few hundred MiB):
//!
//! ```text
//! cargo test --release -p ember-tsdb --test truncation_memory -- --ignored --nocapture
//! ```

use std::time::Instant;

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::storage::{Appendable, Queryable, SeriesRef, collect_samples};
use ember_tsdb::{Db, DbOptions};

const SERIES_PER_TARGET: usize = 1_000;
const T0: i64 = 1_700_006_400_000; // a multiple of 2 h
const HOUR: i64 = 3_600_000;

/// `(VmRSS, RssAnon)` in bytes.
fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

#[test]
#[ignore = "memory measurement; run explicitly with --release"]
fn rss_per_series_after_head_truncation() {
    let Some(start) = rss() else {
        eprintln!("skipping: /proc/self/status is not available");
        return;
    };
    let n: usize = std::env::var("EMBER_TRUNCATION_MEMORY_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        compaction_interval: None,
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), options).expect("open");
    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::new([
                ("__name__", format!("node_metric_{}", i % SERIES_PER_TARGET)),
                ("instance", format!("host-{}:9100", i / SERIES_PER_TARGET)),
                ("job", "node".to_owned()),
            ])
            .expect("labels")
        })
        .collect();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; n];
    let started = Instant::now();
    let scrapes = 3 * 240 + 40;
    for k in 0..scrapes {
        let t = T0 + k * 15_000;
        for target in 0..n.div_ceil(SERIES_PER_TARGET) {
            let mut app = db.appender();
            let range = target * SERIES_PER_TARGET..((target + 1) * SERIES_PER_TARGET).min(n);
            for i in range {
                let v = (k * (i as i64 % 7 + 1)) as f64;
                refs[i] = Some(app.append(refs[i], &labels[i], t, v).expect("append"));
            }
            app.commit().expect("commit");
        }
    }
    let appended = started.elapsed();
    let (before, before_anon) = rss().expect("rss");
    let started = Instant::now();
    let report = db.compact().expect("compact");
    let compacted = started.elapsed();
    assert_eq!(report.head_blocks.len(), 1);
    let (after, after_anon) = rss().expect("rss");
    let per = |bytes: u64| bytes.saturating_sub(start.0) as f64 / n as f64;
    let per_anon = |bytes: u64| bytes.saturating_sub(start.1) as f64 / n as f64;
    let stats = db.stats();
    eprintln!(
        "{n} series x {scrapes} scrapes appended in {appended:?}; compaction (2 h block + truncation + checkpoint) took {compacted:?}"
    );
    eprintln!(
        "RSS per series before cut: {:.0} B (anon {:.0} B); after: {:.0} B (anon {:.0} B); block {} bytes = {:.3} bytes/sample",
        per(before),
        per_anon(before_anon),
        per(after),
        per_anon(after_anon),
        stats.blocks_bytes,
        stats.blocks_bytes as f64 / (n as f64 * 480.0)
    );
    // Selecting 1% of the series over one hour: from the block, then from
    // the head.
    let matchers = [Matcher::new(MatchOp::Regex, "instance", "host-[0-9]:9100").expect("regex")];
    for (name, mint) in [("block", T0 + HOUR / 2), ("head", T0 + 2 * HOUR)] {
        let started = Instant::now();
        let mut samples = 0;
        let rounds = 5;
        for _ in 0..rounds {
            let q = db.querier(mint, mint + HOUR - 1).expect("querier");
            for series in q.select(true, None, &matchers).expect("select") {
                let series = series.expect("series");
                samples += collect_samples(series.samples().as_mut())
                    .expect("samples")
                    .len();
            }
        }
        let elapsed = started.elapsed();
        eprintln!(
            "select 1 h of {} series from the {name}: {:.1} M samples/s ({samples} samples in {elapsed:?})",
            samples / rounds / 240,
            samples as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
    db.close().expect("close");
}
