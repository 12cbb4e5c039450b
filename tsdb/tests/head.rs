//! Behaviour of [`Db`] through the storage traits: typed rejections,
//! isolation (also under concurrent commits), durability across restarts,
//! repair of damaged WAL and chunk files, metadata.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::metadata::{Metadata, MetricType};
use ember_model::sample::{Exemplar, STALE_NAN_BITS};
use ember_model::storage::{
    AppendError, Appendable, Queryable, SelectHints, Storage, StorageError, collect_samples,
};
use ember_tsdb::{Db, DbOptions, SyncPolicy};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).expect("labels")
}

fn up(instance: &str) -> Labels {
    labels(&[("__name__", "up"), ("instance", instance)])
}

fn small_chunks() -> DbOptions {
    DbOptions {
        samples_per_chunk: 4,
        chunk_segment_size: 1024,
        wal_segment_size: 32 * 1024,
        ..DbOptions::default()
    }
}

fn append_all(db: &dyn Storage, series: &Labels, samples: &[(i64, f64)]) {
    let mut app = db.appender();
    for &(t, v) in samples {
        app.append(None, series, t, v).expect("append");
    }
    app.commit().expect("commit");
}

/// `(labels, [(t, v bits)])` of every series matching `matchers`.
fn select_all(
    querier: &dyn ember_model::storage::Querier,
    matchers: &[Matcher],
) -> Vec<(Labels, Vec<(i64, u64)>)> {
    querier
        .select(true, None, matchers)
        .expect("select")
        .map(|s| {
            let s = s.expect("series");
            let samples = collect_samples(s.samples().as_mut()).expect("samples");
            (
                s.labels().clone(),
                samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

fn times(db: &dyn Storage, series: &Labels) -> Vec<i64> {
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let matchers: Vec<Matcher> = series.iter().map(|(n, v)| Matcher::equal(n, v)).collect();
    select_all(querier.as_ref(), &matchers)
        .into_iter()
        .flat_map(|(_, samples)| samples.into_iter().map(|(t, _)| t))
        .collect()
}

#[test]
fn rejections_are_typed_and_leave_the_appender_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        DbOptions {
            min_valid_time: 100,
            ..small_chunks()
        },
    )
    .expect("open");
    append_all(&db, &up("a"), &[(1_000, 1.0)]);
    let mut app = db.appender();
    let err = app.append(None, &up("a"), 999, 1.0).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::OutOfOrder {
                t: 999,
                last_t: 1_000,
                ..
            }
        ),
        "{err}"
    );
    let err = app.append(None, &up("a"), 1_000, 2.0).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::DuplicateSampleForTimestamp { t: 1_000, .. }
        ),
        "{err}"
    );
    app.append(None, &up("a"), 1_000, 1.0)
        .expect("identical sample is a no-op");
    let err = app.append(None, &up("a"), 99, 1.0).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::OutOfBounds {
                t: 99,
                min_valid_t: 100,
                ..
            }
        ),
        "{err}"
    );
    let err = app.append(None, &Labels::EMPTY, 2_000, 1.0).unwrap_err();
    assert!(matches!(err, AppendError::EmptyLabelSet));
    let exemplar = Exemplar {
        labels: labels(&[("trace_id", "x")]),
        value: 1.0,
        ts: Some(1),
    };
    let err = app.append_exemplar(None, &up("a"), &exemplar).unwrap_err();
    assert!(matches!(err, AppendError::ExemplarsDisabled));
    // Against the transaction's own buffer.
    let r = app.append(None, &up("a"), 2_000, 1.0).expect("append");
    let err = app.append(Some(r), &up("a"), 1_500, 1.0).unwrap_err();
    assert!(matches!(
        err,
        AppendError::OutOfOrder {
            t: 1_500,
            last_t: 2_000,
            ..
        }
    ));
    let err = app.append(Some(r), &up("a"), 2_000, 5.0).unwrap_err();
    assert!(matches!(
        err,
        AppendError::DuplicateSampleForTimestamp { .. }
    ));
    app.append(Some(r), &up("a"), 3_000, f64::from_bits(STALE_NAN_BITS))
        .expect("stale marker");
    app.commit().expect("commit");
    assert_eq!(times(&db, &up("a")), [1_000, 2_000, 3_000]);
}

#[test]
fn out_of_order_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        out_of_order_window_ms: 100,
        ..small_chunks()
    };
    let db = Db::open(dir.path(), options).expect("open");
    append_all(&db, &up("a"), &[(1_000, 1.0), (2_000, 1.0), (3_000, 1.0)]);
    append_all(&db, &up("b"), &[(1_000, 1.0), (2_000, 1.0), (2_990, 1.0)]);
    let mut app = db.appender();
    app.append(None, &up("a"), 2_950, 2.0)
        .expect("inside the window");
    let err = app.append(None, &up("a"), 2_899, 2.0).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::TooOld {
                min_valid_t: 2_900,
                ..
            }
        ),
        "{err}"
    );
    let err = app.append(None, &up("a"), 2_000, 5.0).unwrap_err();
    assert!(matches!(err, AppendError::TooOld { .. }), "{err}");
    app.append(None, &up("b"), 2_960, 2.0)
        .expect("inside the window");
    let err = app.append(None, &up("b"), 2_050, 5.0).unwrap_err();
    assert!(
        matches!(err, AppendError::TooOld { .. }),
        "window is from the newest sample of any series: {err}"
    );
    app.commit().expect("commit");
    assert_eq!(times(&db, &up("a")), [1_000, 2_000, 2_950, 3_000]);
    db.close().expect("close");
    let db = Db::open(dir.path(), options).expect("reopen");
    assert_eq!(times(&db, &up("a")), [1_000, 2_000, 2_950, 3_000]);
    assert_eq!(times(&db, &up("b")), [1_000, 2_000, 2_960, 2_990]);
    // A duplicate of an out-of-order sample is checked too.
    let mut app = db.appender();
    let err = app.append(None, &up("a"), 2_950, 3.0).unwrap_err();
    assert!(matches!(
        err,
        AppendError::DuplicateSampleForTimestamp { t: 2_950, .. }
    ));
    app.append(None, &up("a"), 2_950, 2.0).expect("identical");
}

#[test]
fn queriers_see_exactly_the_commits_before_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_chunks()).expect("open");
    append_all(&db, &up("a"), &[(1, 1.0), (2, 1.0), (3, 1.0)]);
    let before = db.querier(i64::MIN, i64::MAX).expect("querier");
    let mut app = db.appender();
    for t in 4..=20 {
        app.append(None, &up("a"), t, 2.0).expect("append");
    }
    app.append(None, &up("b"), 4, 2.0).expect("append");
    // Not visible before commit, to anyone.
    assert_eq!(select_all(before.as_ref(), &[]).len(), 1);
    assert_eq!(times(&db, &up("a")), [1, 2, 3]);
    app.commit().expect("commit");
    // The old querier still sees the old state, although several chunks
    // were cut and mapped meanwhile.
    let old = select_all(before.as_ref(), &[]);
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].1.len(), 3);
    let after = db.querier(i64::MIN, i64::MAX).expect("querier");
    let new = select_all(after.as_ref(), &[]);
    assert_eq!(new.len(), 2);
    assert_eq!(new[0].1.len(), 20);
    // Label queries are isolated too.
    assert_eq!(
        before
            .label_values("instance", &[], None)
            .expect("values")
            .values,
        ["a"]
    );
    assert_eq!(
        after
            .label_values("instance", &[], None)
            .expect("values")
            .values,
        ["a", "b"]
    );
    drop(before);
    // Rolled-back and dropped appenders publish nothing; their series exist
    // but are not returned.
    let mut app = db.appender();
    app.append(None, &up("c"), 1, 1.0).expect("append");
    app.rollback().expect("rollback");
    let mut app = db.appender();
    app.append(None, &up("d"), 1, 1.0).expect("append");
    drop(app);
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    assert_eq!(select_all(querier.as_ref(), &[]).len(), 2);
    assert_eq!(
        querier
            .label_values("instance", &[], None)
            .expect("values")
            .values,
        ["a", "b"]
    );
    assert_eq!(db.num_series(), 4);
}

#[test]
fn concurrent_readers_never_see_half_a_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path(), small_chunks()).expect("open"));
    let stop = Arc::new(AtomicBool::new(false));
    let series: Vec<Labels> = (0..20).map(|i| up(&i.to_string())).collect();
    let writer = {
        let (db, stop, series) = (Arc::clone(&db), Arc::clone(&stop), series.clone());
        std::thread::spawn(move || {
            let mut batch = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let mut app = db.appender();
                for s in &series {
                    app.append(None, s, batch, batch as f64).expect("append");
                }
                app.commit().expect("commit");
                batch += 1;
            }
            batch
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(Ordering::Relaxed) {
                    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
                    let all = select_all(querier.as_ref(), &[]);
                    let lengths: Vec<usize> = all.iter().map(|(_, s)| s.len()).collect();
                    assert!(
                        lengths.is_empty()
                            || (lengths.len() == 20 && lengths.iter().all(|&l| l == lengths[0])),
                        "torn commit visible: {lengths:?}"
                    );
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let batches = writer.join().expect("writer");
    for reader in readers {
        assert!(reader.join().expect("reader") > 0);
    }
    assert!(batches > 10, "only {batches} batches");
}

#[test]
fn concurrent_commits_to_one_series_drop_what_became_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_chunks()).expect("open");
    let mut first = db.appender();
    let mut second = db.appender();
    first.append(None, &up("a"), 5, 1.0).expect("append");
    second.append(None, &up("a"), 10, 1.0).expect("append");
    second.commit().expect("commit");
    first.append(None, &up("c"), 5, 1.0).expect("append");
    first.commit().expect("commit");
    assert_eq!(times(&db, &up("a")), [10]);
    assert_eq!(times(&db, &up("c")), [5]);
    assert_eq!(db.dropped_at_commit(), 1);
}

#[test]
fn restart_restores_mapped_chunks_wal_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_chunks()).expect("open");
    let mut app = db.appender();
    for t in 0..103 {
        for i in 0..3 {
            app.append(None, &up(&i.to_string()), t * 10, t as f64 * 0.5)
                .expect("append");
        }
    }
    let metadata = Metadata::new(MetricType::Gauge, "Whether up.", "");
    app.update_metadata(None, &up("0"), &metadata)
        .expect("metadata");
    app.commit().expect("commit");
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let expected = select_all(querier.as_ref(), &[]);
    drop(querier);
    db.close().expect("close");
    let err = db.appender().commit();
    assert!(err.is_ok(), "an empty commit needs no WAL");
    let mut app = db.appender();
    app.append(None, &up("0"), 5_000, 1.0).expect("append");
    assert!(matches!(app.commit(), Err(StorageError::Closed)));

    let (db, stats) = Db::open_with_stats(dir.path(), small_chunks()).expect("reopen");
    assert_eq!(stats.series, 3);
    assert_eq!(stats.samples, 309);
    // 25 full chunks of 4 per series were mapped; 3 samples per series
    // were in the open chunk and came from the WAL.
    assert_eq!(stats.mapped_chunks, 75);
    assert_eq!(stats.samples_in_mapped_chunks, 300);
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    assert_eq!(select_all(querier.as_ref(), &[]), expected);
    assert_eq!(db.metadata(&up("0")), Some(metadata));
    drop(querier);
    // New series after a restart get new ids, appends continue.
    append_all(&db, &up("0"), &[(2_000, 1.0)]);
    append_all(&db, &up("new"), &[(1, 1.0)]);
    assert_eq!(times(&db, &up("new")), [1]);
    assert_eq!(times(&db, &up("0")).len(), 104);
}

#[test]
fn damaged_chunk_files_are_rebuilt_from_the_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_chunks()).expect("open");
    for t in 0..50 {
        append_all(&db, &up("a"), &[(t, t as f64)]);
    }
    db.close().expect("close");
    // Flip a byte in the middle of the first chunk segment.
    let segment = dir.path().join("chunks_head").join("00000001");
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[200] ^= 0x55;
    std::fs::write(&segment, bytes).expect("write");
    let (db, stats) = Db::open_with_stats(dir.path(), small_chunks()).expect("reopen");
    assert!(
        stats.mapped_chunks < 12,
        "chunks after the damage are dropped"
    );
    assert_eq!(times(&db, &up("a")), (0..50).collect::<Vec<_>>());
}

#[test]
fn damaged_wal_is_repaired_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        wal_sync: SyncPolicy::Always,
        ..small_chunks()
    };
    let db = Db::open(dir.path(), options).expect("open");
    for t in 0..20 {
        append_all(&db, &up("a"), &[(t, t as f64)]);
    }
    db.close().expect("close");
    // Tear the tail of the last WAL segment with data.
    let wal = dir.path().join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment with data");
    // Cut inside the last record (the page after it is zero padding).
    let bytes = std::fs::read(last).expect("read");
    let end = bytes.iter().rposition(|&b| b != 0).expect("data") as u64;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    file.set_len(end - 3).expect("truncate");
    drop(file);
    let (db, stats) = Db::open_with_stats(dir.path(), options).expect("reopen repairs");
    assert!(stats.wal_repaired);
    let stored = times(&db, &up("a"));
    assert_eq!(stored, (0..stored.len() as i64).collect::<Vec<_>>());
    assert!(
        stored.len() >= 15,
        "only the torn record is lost: {}",
        stored.len()
    );
    // Still writable and durable.
    append_all(&db, &up("a"), &[(100, 1.0)]);
    db.close().expect("close");
    let db = Db::open(dir.path(), options).expect("reopen");
    assert_eq!(times(&db, &up("a")).last(), Some(&100));
}

#[test]
fn select_limit_range_and_seek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_chunks()).expect("open");
    for i in 0..5 {
        append_all(
            &db,
            &up(&i.to_string()),
            &(0..40).map(|t| (t * 10, t as f64)).collect::<Vec<_>>(),
        );
    }
    let querier = db.querier(95, 305).expect("querier");
    let hints = SelectHints {
        limit: Some(2),
        ..SelectHints::default()
    };
    let set = querier.select(true, Some(&hints), &[]).expect("select");
    assert_eq!(set.count(), 2);
    let mut set = querier
        .select(true, None, &[Matcher::equal("instance", "3")])
        .expect("select");
    let series = set.next().expect("one").expect("ok");
    let mut it = series.samples();
    assert!(it.seek(0));
    assert_eq!(it.at().t, 100, "trimmed to mint");
    assert!(it.seek(251));
    assert_eq!(it.at().t, 260);
    assert!(it.seek(100), "never backwards");
    assert_eq!(it.at().t, 260);
    assert!(it.next());
    assert_eq!(it.at().t, 270);
    assert!(it.seek(300));
    assert!(!it.next(), "trimmed to maxt");
    assert!(!it.seek(0));
    assert!(it.err().is_none());
    assert!(set.next().is_none());
    // Nothing in range: no series.
    let querier = db.querier(1_000, 2_000).expect("querier");
    assert_eq!(querier.select(false, None, &[]).expect("select").count(), 0);
    assert!(
        querier
            .label_names(&[], None)
            .expect("names")
            .values
            .is_empty()
    );
}

#[test]
fn append_throughput_smoke() {
    // Not a benchmark (see benches/head.rs): makes sure a large
    // transaction through the fast path works and replays.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open");
    let series: Vec<Labels> = (0..1_000).map(|i| up(&i.to_string())).collect();
    let mut refs = vec![None; series.len()];
    let started = Instant::now();
    for t in 0..20 {
        let mut app = db.appender();
        for (s, r) in series.iter().zip(refs.iter_mut()) {
            *r = Some(app.append(*r, s, t * 15_000, t as f64).expect("append"));
        }
        app.commit().expect("commit");
    }
    eprintln!("20k samples in {:?}", started.elapsed());
    db.close().expect("close");
    let (_, stats) = Db::open_with_stats(dir.path(), DbOptions::default()).expect("reopen");
    assert_eq!(stats.samples, 20_000);
    assert_eq!(stats.series, 1_000);
}

#[test]
fn concurrent_writers_and_readers() {
    // Two writers on disjoint series sets and a reader: every commit is
    // all-or-nothing for every querier, and all of them survive a restart.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path(), small_chunks()).expect("open"));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let series: Vec<Labels> = (0..10)
                    .map(|i| labels(&[("writer", &w.to_string()), ("i", &i.to_string())]))
                    .collect();
                let mut refs = vec![None; series.len()];
                let mut batch = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let mut app = db.appender();
                    for (s, r) in series.iter().zip(refs.iter_mut()) {
                        *r = Some(app.append(*r, s, batch, batch as f64).expect("append"));
                    }
                    app.commit().expect("commit");
                    batch += 1;
                }
                batch
            })
        })
        .collect();
    let reader = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) {
                let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
                for w in 0..2 {
                    let got =
                        select_all(querier.as_ref(), &[Matcher::equal("writer", w.to_string())]);
                    let lengths: Vec<usize> = got.iter().map(|(_, s)| s.len()).collect();
                    assert!(
                        lengths.is_empty()
                            || (lengths.len() == 10 && lengths.iter().all(|&l| l == lengths[0])),
                        "writer {w}: torn commit visible: {lengths:?}"
                    );
                }
                checks += 1;
            }
            checks
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let batches: Vec<i64> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    assert!(reader.join().expect("reader") > 0);
    // Everything committed is there, and survives a restart.
    db.close().expect("close");
    let db = Db::open(dir.path(), small_chunks()).expect("reopen");
    for (w, &n) in batches.iter().enumerate() {
        let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
        let got = select_all(querier.as_ref(), &[Matcher::equal("writer", w.to_string())]);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(_, s)| s.len() as i64 == n), "writer {w}");
    }
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for options in [
        DbOptions {
            samples_per_chunk: 0,
            ..DbOptions::default()
        },
        DbOptions {
            block_duration_ms: 0,
            ..DbOptions::default()
        },
        DbOptions {
            chunk_segment_size: 8 << 30,
            ..DbOptions::default()
        },
        DbOptions {
            wal_segment_size: 1_000,
            ..DbOptions::default()
        },
    ] {
        assert!(Db::open(dir.path(), options).is_err(), "{options:?}");
    }
}
