//! Crash safety: a child process logs batches and acknowledges each one after
//! `sync`; the parent kills it with SIGKILL at random moments, reopens the
//! WAL (repairing whatever the kill left) and checks that every acknowledged
//! batch replays, in order, intact.
//!
//! The child is this test binary itself, re-run with `CHILD_ENV` set and a
//! filter selecting `crash_child`. Twenty rounds take a few seconds; the seed
//! is printed so that a failure can be replayed with `EMBER_CRASH_SEED`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ember_tsdb::wal::{
    Reader, Record, RecordType, RefSample, SyncPolicy, Wal, WalOptions, decode_samples,
};

const CHILD_ENV: &str = "EMBER_WAL_CRASH_CHILD_DIR";
const ROUNDS: usize = 20;

fn options() -> WalOptions {
    // Small segments, so that kills also land around segment cuts.
    WalOptions {
        segment_size: 4 * 32 * 1024,
        compress: true,
        sync: SyncPolicy::SegmentCut,
    }
}

/// Batch `b`: a samples record whose size varies from a few bytes to several
/// pages, with values that identify the batch and the sample.
fn batch(b: u64) -> Vec<RefSample> {
    let n = 1 + (b * 7_919) % 4_000;
    (0..n)
        .map(|i| RefSample {
            series_ref: b,
            t: i as i64,
            v: (b * 10_000 + i) as f64,
        })
        .collect()
}

/// Replays the WAL and returns the batch numbers found, checking contents.
fn replayed_batches(dir: &Path) -> Vec<u64> {
    let mut reader = Reader::open(dir).expect("open reader");
    let mut batches = Vec::new();
    let mut samples = Vec::new();
    while let Some(record) = reader.next_record().expect("clean replay after repair") {
        assert_eq!(RecordType::of(record), RecordType::Samples);
        samples.clear();
        decode_samples(record, &mut samples).expect("decodable samples");
        let b = samples[0].series_ref;
        assert_eq!(
            samples,
            batch(b),
            "batch {b} replayed with different content"
        );
        batches.push(b);
    }
    batches
}

/// The child: continue after the last batch on disk, acknowledge each batch
/// on stdout after `sync`, until killed (or after a safety limit).
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Only meaningful when spawned by `sigkill_never_loses_acknowledged_batches`.
    };
    let dir = Path::new(&dir);
    let mut wal = Wal::open(dir, options()).expect("child opens the WAL");
    let mut next = replayed_batches(dir).last().map_or(0, |b| b + 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stdout = std::io::stdout().lock();
    while Instant::now() < deadline {
        let samples = batch(next);
        wal.log(&[Record::Samples(&samples)]).expect("log");
        wal.sync().expect("sync");
        writeln!(stdout, "acked {next}").expect("stdout");
        stdout.flush().expect("flush");
        next += 1;
    }
}

/// A small deterministic generator for kill delays.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_never_loses_acknowledged_batches() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let seed = std::env::var("EMBER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test seed: {seed} (set EMBER_CRASH_SEED to replay)");
    let mut rng = seed;
    let dir = tempfile::tempdir().expect("temporary directory");
    let exe = std::env::current_exe().expect("test binary");
    let mut last_acked: Option<u64> = None;
    let mut repairs = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let lines = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("acked ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the child's first acknowledgement, then kill it after a
        // random delay of 0 to 150 ms.
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(n) => last_acked = Some(last_acked.map_or(n, |l| l.max(n))),
            Err(e) => {
                let _ = child.kill();
                panic!("round {round}: child acknowledged nothing: {e}");
            }
        }
        std::thread::sleep(Duration::from_micros(xorshift(&mut rng) % 150_000));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        lines.join().expect("stdout reader");
        for n in rx.try_iter() {
            last_acked = Some(last_acked.map_or(n, |l| l.max(n)));
        }

        let (wal, report) =
            Wal::open_with_report(dir.path(), options()).expect("reopen after kill");
        if let Some(report) = &report {
            repairs += 1;
            eprintln!(
                "round {round}: repaired segment {} at offset {}, dropped {} bytes ({})",
                report.corruption.segment,
                report.corruption.offset,
                report.total_dropped_bytes(),
                report.corruption.kind
            );
        }
        drop(wal);
        let batches = replayed_batches(dir.path());
        let acked = last_acked.expect("acknowledged at least once");
        // Batches are contiguous from 0 and include every acknowledged one;
        // one more may be there (written, killed before acknowledging).
        let expected: Vec<u64> = (0..batches.len() as u64).collect();
        assert_eq!(
            batches, expected,
            "round {round}: gap or disorder in replayed batches"
        );
        assert!(
            batches.len() as u64 > acked,
            "round {round}: acknowledged batch {acked} lost; replay ends at {:?}",
            batches.last()
        );
        assert!(
            batches.len() as u64 <= acked + 2,
            "round {round}: batches from nowhere"
        );
    }
    eprintln!(
        "{ROUNDS} rounds, {} batches acknowledged, {repairs} repairs",
        last_acked.map_or(0, |n| n + 1)
    );
}
