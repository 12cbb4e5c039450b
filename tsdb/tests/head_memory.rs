//! Memory per active series: appends `EMBER_HEAD_MEMORY_SERIES` series
//! (default 200 000) × 2 hours at a 15 s interval (480 samples each), one
//! transaction per scrape of a target of 1 000 series, and reports the growth of the resident set per
//! series from `/proc/self/status`. The target from the TSDB issue is at most
//! 1 KiB per series at one million series.
//!
//! Ignored by default (it takes a while and needs a few hundred MiB):
//!
//! ```text
//! cargo test --release -p ember-tsdb --test head_memory -- --ignored --nocapture
//! ```

use std::time::Instant;

use ember_model::labels::Labels;
use ember_model::storage::{Appendable, SeriesRef};
use ember_tsdb::{Db, DbOptions};

/// Series per scrape target (and transaction).
const SERIES_PER_TARGET: usize = 1_000;

/// `(VmRSS, RssAnon, RssFile)` in bytes.
fn rss() -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?))
}

#[test]
#[ignore = "memory measurement; run explicitly with --release"]
fn rss_per_series_after_two_hours() {
    let Some(before) = rss() else {
        eprintln!("skipping: /proc/self/status is not available");
        return;
    };
    let n: usize = std::env::var("EMBER_HEAD_MEMORY_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    // Labels like node_exporter's: a metric name, job, instance and two
    // more labels (about 100 bytes of names and values).
    let labels: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::new([
                ("__name__", format!("node_cpu_seconds_total_{}", i % 200)),
                ("cpu", (i % 64).to_string()),
                ("instance", format!("host-{:06}.example.org:9100", i / 200)),
                ("job", "node".to_owned()),
                (
                    "mode",
                    ["idle", "user", "system", "iowait"][i % 4].to_owned(),
                ),
            ])
            .expect("labels")
        })
        .collect();
    let labels_bytes: usize = labels.iter().map(Labels::heap_size).sum();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; n];
    let started = Instant::now();
    let scrapes = 2 * 60 * 60 / 15;
    for scrape in 0..scrapes {
        let t = 1_700_000_000_000 + scrape as i64 * 15_000;
        // One transaction per target of 1 000 series, as scrapes commit.
        for (target, (labels, refs)) in labels
            .chunks(SERIES_PER_TARGET)
            .zip(refs.chunks_mut(SERIES_PER_TARGET))
            .enumerate()
        {
            let mut app = db.appender();
            for (j, (l, r)) in labels.iter().zip(refs.iter_mut()).enumerate() {
                let i = target * SERIES_PER_TARGET + j;
                let v = (scrape * (i % 7 + 1)) as f64 + (i % 3) as f64 * 0.25;
                *r = Some(app.append(*r, l, t, v).expect("append"));
            }
            app.commit().expect("commit");
        }
    }
    let elapsed = started.elapsed();
    // The test's own label vector is not part of the head's cost; the
    // head shares the same buffers (`Labels` is reference counted), so
    // count them once, as the head's.
    drop(refs);
    let after = rss().expect("rss");
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
    eprintln!(
        "{n} series x {scrapes} samples in {elapsed:?} ({:.2} M samples/s)",
        (n * scrapes) as f64 / elapsed.as_secs_f64() / 1e6
    );
    eprintln!(
        "RSS growth per series: {:.0} B total (anonymous {:.0} B, file-backed {:.0} B); label sets {:.0} B of it",
        per(after.0, before.0),
        per(after.1, before.1),
        per(after.2, before.2),
        labels_bytes as f64 / n as f64,
    );
    drop(labels);
    db.close().expect("close");
    drop(db);

    // Restart: replay speed at this scale, and the chunk files must not
    // stay in the resident set after the start-up scan.
    let before = rss().expect("rss");
    let started = Instant::now();
    let (db, stats) = Db::open_with_stats(dir.path(), DbOptions::default()).expect("reopen");
    let elapsed = started.elapsed();
    let after = rss().expect("rss");
    eprintln!(
        "reopen: {} WAL samples ({} in mapped chunks) in {elapsed:?} ({:.2} M samples/s); file-backed RSS growth per series {:.0} B",
        stats.samples,
        stats.samples_in_mapped_chunks,
        stats.samples as f64 / elapsed.as_secs_f64() / 1e6,
        per(after.2, before.2),
    );
    assert_eq!(stats.samples, (n * scrapes) as u64);
    db.close().expect("close");
}
