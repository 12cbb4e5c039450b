//! The data life cycle of [`Db`]: the head cut into blocks, head and WAL
//! truncation, queries over blocks and head, compaction, retention, and
//! start-up with blocks (including the remains of interrupted work).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::{AppendError, Appendable, Queryable, collect_samples};
use ember_tsdb::{Db, DbOptions};

/// Block range of the tests: 1 s.
const RANGE: i64 = 1_000;

fn options() -> DbOptions {
    DbOptions {
        block_duration_ms: RANGE,
        max_block_duration_ms: 9 * RANGE,
        retention_ms: 0,
        compaction_interval: None,
        samples_per_chunk: 8,
        chunk_segment_size: 4096,
        wal_segment_size: 32 * 1024,
        ..DbOptions::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::new([
        ("__name__", "m"),
        ("i", &format!("{i:02}")),
        ("odd", if i % 2 == 1 { "yes" } else { "no" }),
    ])
    .expect("labels")
}

type Model = BTreeMap<Labels, Vec<(i64, u64)>>;

/// Appends `n` series at every `step` ms in `[from, to)`, one commit per
/// timestamp, recording what was committed in `model`.
fn append_range(db: &Db, model: &mut Model, n: usize, from: i64, to: i64, step: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n {
            // Series i only lives from i * 100 ms on, so series start and
            // end in different blocks.
            if t < i as i64 * 100 {
                continue;
            }
            let v = (t / step) as f64 * 0.5 + i as f64;
            app.append(None, &series(i), t, v).expect("append");
            model.entry(series(i)).or_default().push((t, v.to_bits()));
        }
        app.commit().expect("commit");
        t += step;
    }
}

fn read_all(db: &Db, mint: i64, maxt: i64, matchers: &[Matcher]) -> Model {
    let querier = db.querier(mint, maxt).expect("querier");
    let mut out = Model::new();
    for s in querier.select(true, None, matchers).expect("select") {
        let s = s.expect("series");
        let samples = collect_samples(s.samples().as_mut()).expect("samples");
        let prev = out.insert(
            s.labels().clone(),
            samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
        );
        assert!(prev.is_none(), "series {} returned twice", s.labels());
    }
    out
}

fn model_range(model: &Model, mint: i64, maxt: i64) -> Model {
    model
        .iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.iter()
                    .copied()
                    .filter(|&(t, _)| t >= mint && t <= maxt)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

fn wal_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn head_is_cut_into_blocks_and_queries_span_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 10, 0, 5_500, 50);
    let series_before = db.num_series();

    let report = db.compact().expect("compact");
    // The head spans 0..5450; blocks are cut while it spans more than
    // 1.5 ranges: [0,1000), [1000,2000), [2000,3000), [3000,4000).
    let ranges: Vec<(i64, i64)> = report
        .head_blocks
        .iter()
        .map(|m| (m.min_time, m.max_time))
        .collect();
    assert_eq!(
        ranges,
        [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000)]
    );
    assert_eq!(report.head_blocks[0].stats.num_series, 10);
    // Compaction then merged the first three into [0, 3000) (the newest
    // block is left alone).
    let blocks: Vec<(i64, i64)> = db
        .blocks()
        .iter()
        .map(|b| (b.meta().min_time, b.meta().max_time))
        .collect();
    assert_eq!(blocks, [(0, 3000), (3000, 4000)]);
    assert_eq!(report.compacted.len(), 1);
    let stats = db.stats();
    assert_eq!(stats.blocks, 2);
    assert_eq!(stats.compactions_total, 5);
    assert_eq!(stats.head_truncations_total, 4);
    assert_eq!(stats.lowest_timestamp, Some(0));
    assert_eq!(stats.head_min_time, Some(4_000));
    assert!(stats.blocks_bytes > 0 && stats.wal_bytes > 0);
    // Nothing was lost or duplicated, whatever the range.
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    for (mint, maxt) in [(0, 999), (950, 1050), (3_990, 4_010), (2_500, 5_400)] {
        assert_eq!(
            read_all(&db, mint, maxt, &[]),
            model_range(&model, mint, maxt),
            "[{mint}, {maxt}]"
        );
    }
    let odd = read_all(&db, 0, 10_000, &[Matcher::equal("odd", "yes")]);
    assert_eq!(odd.len(), 5);
    let q = db.querier(0, 10_000).expect("querier");
    assert_eq!(
        q.label_values("i", &[], None).expect("values").values.len(),
        10
    );
    drop(q);
    // All series still have data after 4000, so none was removed.
    assert_eq!(db.num_series(), series_before);

    // Samples before the newest block's end are refused now.
    let mut app = db.appender();
    let err = app
        .append(None, &series(0), 3_999, 1.0)
        .expect_err("too old");
    assert!(matches!(err, AppendError::OutOfBounds { .. }), "{err:?}");
    drop(app);

    // The WAL was checkpointed and its old segments deleted.
    let wal = wal_files(dir.path());
    assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");

    // Restart: blocks reopened, head replayed from checkpoint + segments.
    db.close().expect("close");
    let (db, stats) = Db::open_with_stats(dir.path(), options()).expect("reopen");
    assert_eq!(stats.blocks, 2);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    // More data, another cut, after the restart.
    append_range(&db, &mut model, 10, 5_500, 7_000, 50);
    let report = db.compact().expect("compact");
    // Head 4000..6950: [4000, 5000) and [5000, 6000).
    assert_eq!(report.head_blocks.len(), 2);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    db.close().expect("close");
}

#[test]
fn series_without_recent_data_leave_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    // Series 0..5 only until 900, series 5..10 throughout.
    append_range(&db, &mut model, 5, 0, 900, 50);
    let mut t = 900;
    while t < 4_000 {
        let mut app = db.appender();
        for i in 5..10 {
            if t < i as i64 * 100 {
                continue;
            }
            app.append(None, &series(i), t, 1.0).expect("append");
            model
                .entry(series(i))
                .or_default()
                .push((t, 1f64.to_bits()));
        }
        app.commit().expect("commit");
        t += 50;
    }
    // An appender holding series 0 across the truncation: its commit must
    // still land (in a re-created series).
    let mut held = db.appender();
    let r = held.append(None, &series(0), 3_950, 7.0).expect("append");
    assert_eq!(db.num_series(), 10);
    db.compact().expect("compact");
    // Series 0..5 are empty and removed, also series 0 that the appender
    // holds (its samples are not committed yet).
    assert_eq!(db.num_series(), 5);
    held.append(Some(r), &series(0), 3_960, 8.0)
        .expect("append");
    held.commit().expect("commit");
    model
        .entry(series(0))
        .or_default()
        .extend([(3_950, 7f64.to_bits()), (3_960, 8f64.to_bits())]);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    db.close().expect("close");
    let db = Db::open(dir.path(), options()).expect("reopen");
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
}

#[test]
fn truncation_waits_for_older_queriers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 4, 0, 3_000, 50);
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let compactor = {
        let db = db.clone();
        std::thread::spawn(move || db.compact().expect("compact"))
    };
    // The block gets written while the old querier is open...
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.blocks().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no block written");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    // ...but the head keeps its data until the querier is gone.
    let mut seen = Model::new();
    for s in querier.select(true, None, &[]).expect("select") {
        let s = s.expect("series");
        let samples = collect_samples(s.samples().as_mut()).expect("samples");
        seen.insert(
            s.labels().clone(),
            samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
        );
    }
    assert_eq!(seen, model);
    assert!(!compactor.is_finished());
    drop(querier);
    let report = compactor.join().expect("compactor");
    assert_eq!(report.head_blocks.len(), 2);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
}

#[test]
fn blocks_are_compacted_and_retention_deletes_old_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 6, 0, 12_000, 100);
    let report = db.compact().expect("compact");
    assert!(report.head_blocks.len() >= 10, "{report:?}");
    assert!(!report.compacted.is_empty());
    let blocks = db.blocks();
    let ranges: Vec<(i64, i64, u32)> = blocks
        .iter()
        .map(|b| {
            (
                b.meta().min_time,
                b.meta().max_time,
                b.meta().compaction.level,
            )
        })
        .collect();
    // 3x steps up to 9 s: [0,9000) at level 3, then [9000,10000) is the
    // newest and stays.
    assert_eq!(ranges[0], (0, 9_000, 3), "{ranges:?}");
    assert!(ranges.iter().all(|&(a, b, _)| b - a <= 9_000));
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "blocks overlap: {ranges:?}");
    }
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    for b in &blocks {
        b.verify().expect("verify");
    }
    // Parents are gone from disk.
    let dirs = std::fs::read_dir(dir.path())
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().len() == 26)
        })
        .count();
    assert_eq!(dirs, blocks.len());
    db.close().expect("close");

    // Retention by time: keep blocks ending after newest end - 2 s.
    let retained = DbOptions {
        retention_ms: 2 * RANGE,
        ..options()
    };
    let db = Db::open(dir.path(), retained).expect("reopen");
    let newest_end = db
        .blocks()
        .iter()
        .map(|b| b.meta().max_time)
        .max()
        .expect("blocks");
    let report = db.compact().expect("compact");
    assert!(!report.retention_deleted.is_empty());
    let blocks = db.blocks();
    assert!(
        blocks
            .iter()
            .all(|b| b.meta().max_time > newest_end - 2 * RANGE)
    );
    let oldest = blocks.first().expect("block").meta().min_time;
    assert_eq!(
        read_all(&db, i64::MIN, i64::MAX, &[]),
        model_range(&model, oldest, i64::MAX)
    );
    db.close().expect("close");

    // Retention by size: a budget smaller than one block leaves none.
    let tiny = DbOptions {
        retention_bytes: 1,
        ..options()
    };
    let db = Db::open(dir.path(), tiny).expect("reopen");
    db.compact().expect("compact");
    assert!(db.blocks().is_empty());
}

#[test]
fn incomplete_block_directories_are_removed_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 3, 0, 3_000, 100);
    db.compact().expect("compact");
    let block = db.blocks()[0].dir().to_path_buf();
    db.close().expect("close");
    drop(db);
    // A block being written (tmp suffix) and one without meta.json.
    let tmp = dir
        .path()
        .join("01JDQ5X8Y3T6K9V2M4N7P0R1S3.tmp-for-creation");
    std::fs::create_dir_all(tmp.join("chunks")).expect("mkdir");
    let no_meta = dir.path().join("01JDQ5X8Y3T6K9V2M4N7P0R1S4");
    std::fs::create_dir_all(&no_meta).expect("mkdir");
    std::fs::write(no_meta.join("index"), b"partial").expect("write");
    let db = Db::open(dir.path(), options()).expect("reopen");
    assert!(!tmp.exists());
    assert!(!no_meta.exists());
    assert!(block.exists());
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
}

#[test]
fn background_thread_compacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(
        Db::open(
            dir.path(),
            DbOptions {
                compaction_interval: Some(Duration::from_millis(20)),
                ..options()
            },
        )
        .expect("open"),
    );
    let mut model = Model::new();
    append_range(&db, &mut model, 2, 0, 3_000, 100);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.blocks().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no block written");
        std::thread::sleep(Duration::from_millis(10));
    }
    db.close().expect("close");
    assert_eq!(read_all_closed_ok(&db), ());
}

fn read_all_closed_ok(db: &Db) {
    assert!(db.querier(0, 1).is_err());
}

fn without(model: &Model, which: impl Fn(&Labels) -> bool, mint: i64, maxt: i64) -> Model {
    model
        .iter()
        .map(|(l, s)| {
            let kept: Vec<(i64, u64)> = s
                .iter()
                .copied()
                .filter(|&(t, _)| !(which(l) && t >= mint && t <= maxt))
                .collect();
            (l.clone(), kept)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

#[test]
fn deletion_spans_blocks_and_head_and_survives_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 6, 0, 4_000, 50);
    db.compact().expect("compact");
    assert!(!db.blocks().is_empty());
    // Odd series lose [500, 3500]: in blocks and in the head.
    let odd = |l: &Labels| l.get("odd") == Some("yes");
    db.delete(&[Matcher::equal("odd", "yes")], 500, 3_500)
        .expect("delete");
    let expected = without(&model, odd, 500, 3_500);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), expected);

    // Restart: block tombstone files and the WAL's tombstones record.
    db.close().expect("close");
    let db = Db::open(dir.path(), options()).expect("reopen");
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), expected);

    // Cleaning rewrites the blocks without the samples or the tombstones.
    let rewritten = db.clean_tombstones().expect("clean");
    assert_eq!(rewritten, db.blocks().len());
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), expected);
    // Cutting the head and compacting keep the deletion.
    let mut more = Model::new();
    append_range(&db, &mut more, 6, 4_000, 6_000, 50);
    for (l, s) in more {
        model.entry(l).or_default().extend(s);
    }
    db.compact().expect("compact");
    let expected = without(&model, odd, 500, 3_500);
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), expected);

    db.close().expect("close");
    let db = Db::open(dir.path(), options()).expect("reopen");
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), expected);
}

#[test]
fn snapshots_hold_blocks_and_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 4, 0, 3_500, 50);
    db.compact().expect("compact");
    let name = db.snapshot(true).expect("snapshot");
    assert_eq!(name.len(), "20241125T120000Z-".len() + 16, "{name}");
    let without_head = db.snapshot(false).expect("snapshot");
    db.close().expect("close");

    let snap = dir.path().join("snapshots").join(&name);
    let copy = Db::open(&snap, options()).expect("open snapshot");
    assert_eq!(read_all(&copy, i64::MIN, i64::MAX, &[]), model);
    drop(copy);
    let snap = dir.path().join("snapshots").join(&without_head);
    let copy = Db::open(&snap, options()).expect("open snapshot");
    let blocks_end = copy
        .blocks()
        .iter()
        .map(|b| b.meta().max_time)
        .max()
        .expect("blocks");
    assert_eq!(
        read_all(&copy, i64::MIN, i64::MAX, &[]),
        model_range(&model, i64::MIN, blocks_end - 1)
    );
}

#[test]
fn closing_stops_a_truncation_waiting_for_a_querier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), options()).expect("open");
    let mut model = Model::new();
    append_range(&db, &mut model, 2, 0, 3_000, 50);
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let compactor = {
        let db = db.clone();
        std::thread::spawn(move || db.compact())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.blocks().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no block written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = std::time::Instant::now();
    db.close().expect("close");
    // The compaction gives up waiting (not after its two-minute timeout).
    let _ = compactor.join().expect("compactor");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(querier);
    // Nothing was lost: the next start truncates what was left.
    let db = Db::open(dir.path(), options()).expect("reopen");
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
    db.compact().expect("compact");
    assert_eq!(read_all(&db, i64::MIN, i64::MAX, &[]), model);
}
