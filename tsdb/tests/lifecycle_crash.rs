//! Crash safety of the data life cycle: like `head_crash.rs`, a child
//! process appends and commits batches with `SyncPolicy::Always`, printing
//! each batch number after its commit returned, and is killed with SIGKILL
//! at a random moment — but here blocks are 20 ms long and a background
//! thread compacts every 2 ms, so kills also land while blocks are written
//! and merged, while the head and the WAL are truncated and checkpointed.
//! After every kill the database must reopen (removing half-written blocks)
//! with every acknowledged batch there, once, complete.
//!
//! The child is this test binary itself, re-run with `CHILD_ENV` set and a
//! filter selecting `crash_child`. The seed is printed so that a failure
//! can be replayed with `EMBER_LIFECYCLE_CRASH_SEED`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::{Appendable, Queryable, collect_samples};
use ember_tsdb::{Db, DbOptions, SyncPolicy};

const CHILD_ENV: &str = "EMBER_LIFECYCLE_CRASH_CHILD_DIR";
const ROUNDS: usize = 12;
const SERIES_PER_BATCH: u64 = 20;

fn options() -> DbOptions {
    DbOptions {
        // Small WAL segments and chunk files, so that kills also land
        // around segment cuts and chunk writes.
        wal_segment_size: 4 * 32 * 1024,
        wal_sync: SyncPolicy::Always,
        samples_per_chunk: 8,
        chunk_segment_size: 16 * 1024,
        block_duration_ms: 20,
        max_block_duration_ms: 180,
        retention_ms: 0,
        compaction_interval: Some(Duration::from_millis(2)),
        ..DbOptions::default()
    }
}

fn series(i: u64) -> Labels {
    Labels::new([
        ("__name__", "crash_test".to_owned()),
        ("series", i.to_string()),
    ])
    .expect("labels")
}

/// Batch `b` writes sample `(b, b)` to every series.
fn write_batch(db: &Db, b: u64) {
    let mut app = db.appender();
    for i in 0..SERIES_PER_BATCH {
        app.append(None, &series(i), b as i64, b as f64)
            .expect("append");
    }
    app.commit().expect("commit");
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only runs as the child.
    };
    let db = Db::open(Path::new(&dir), options()).expect("child open");
    let start = next_batch(&db);
    for b in start.. {
        write_batch(&db, b);
        println!("{b}");
    }
}

/// The number of batches stored so far (they are consecutive from 0).
fn next_batch(db: &Db) -> u64 {
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let set = querier
        .select(false, None, &[Matcher::equal("series", "0")])
        .expect("select");
    let mut count = 0;
    for s in set {
        let samples = collect_samples(s.expect("series").samples().as_mut()).expect("samples");
        count = samples.len() as u64;
    }
    count
}

/// Checks that batches `0..n` are all present, each in every series, and
/// returns `n`.
fn verify(db: &Db) -> u64 {
    let querier = db.querier(i64::MIN, i64::MAX).expect("querier");
    let set = querier
        .select(true, None, &[Matcher::equal("__name__", "crash_test")])
        .expect("select");
    let mut lengths = Vec::new();
    for s in set {
        let s = s.expect("series");
        let samples = collect_samples(s.samples().as_mut()).expect("samples");
        for (b, sample) in samples.iter().enumerate() {
            assert_eq!((sample.t, sample.v), (b as i64, b as f64), "{}", s.labels());
        }
        lengths.push(samples.len() as u64);
    }
    let n = lengths.first().copied().unwrap_or(0);
    assert!(
        lengths.iter().all(|&l| l == n),
        "a commit is atomic: every series has the same batches, got {lengths:?}"
    );
    assert!(lengths.is_empty() || lengths.len() as u64 == SERIES_PER_BATCH);
    n
}

#[test]
fn killed_writer_loses_no_acknowledged_commit() {
    let seed = std::env::var("EMBER_LIFECYCLE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("life cycle crash test seed: {seed}");
    let mut rng = seed | 1;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged_total = 0;
    let mut blocks_seen = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(b) = line.trim().parse::<u64>()
                    && tx.send(b).is_err()
                {
                    break;
                }
            }
        });
        // Let it run between 50 and 300 ms, then kill it mid-flight.
        let deadline = Instant::now() + Duration::from_millis(50 + random() % 250);
        let mut last_acknowledged = None;
        while Instant::now() < deadline {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(5)) {
                last_acknowledged = Some(b);
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader thread");
        while let Ok(b) = rx.try_recv() {
            last_acknowledged = Some(b);
        }
        let db = Db::open(dir.path(), options()).expect("reopen after kill");
        let stored = verify(&db);
        blocks_seen = blocks_seen.max(db.blocks().len());
        for block in db.blocks() {
            block
                .verify()
                .expect("blocks reopened after a kill are intact");
        }
        if let Some(b) = last_acknowledged {
            assert!(
                stored > b,
                "round {round}: batch {b} was acknowledged but only {stored} batches are stored"
            );
            acknowledged_total = b + 1;
        }
        assert!(stored >= acknowledged_total, "round {round}: lost batches");
        db.close().expect("close");
    }
    eprintln!("{acknowledged_total} batches acknowledged over {ROUNDS} kills, none lost");
    assert!(
        acknowledged_total > 0,
        "the child never acknowledged a batch"
    );
    assert!(blocks_seen > 0, "no block was ever written");
}
