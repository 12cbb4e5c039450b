//! Real WAL files with real damage, under `tsdb/testdata/wal/`:
//!
//! - `valid/`: three segments of series and sample records (64 KiB
//!   segments, snappy on), the last one ending in a partly filled page, as a
//!   crash leaves it;
//! - `torn_tail/`: `valid/` with its last segment cut in the middle of a
//!   record that spans two pages;
//! - `bad_crc/`: `valid/` with one byte flipped inside a record in the
//!   middle of the last segment.
//!
//! Regenerate them (only when the format changes on purpose) with
//! `cargo test -p ember-tsdb --test wal_fixtures -- --ignored generate_fixtures`.
//! The tests below work on copies, because opening a WAL repairs it in place.

use std::fs;
use std::path::{Path, PathBuf};

use ember_tsdb::wal::{
    CorruptionKind, Reader, Record, RecordType, RefSample, RefSeries, SyncPolicy, Wal, WalOptions,
    decode_samples, decode_series,
};

const SEGMENT_SIZE: u64 = 2 * 32 * 1024;
const BATCHES: u64 = 34;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/wal")
}

fn options() -> WalOptions {
    WalOptions {
        segment_size: SEGMENT_SIZE,
        compress: true,
        sync: SyncPolicy::SegmentCut,
    }
}

/// The deterministic content of batch `b`: one series record, then one
/// samples record of a size that varies so that some records span pages.
fn batch_samples(b: u64) -> Vec<RefSample> {
    let n = 50 + (b * 397) % 900;
    (0..n)
        .map(|i| RefSample {
            series_ref: b,
            t: 1_700_000_000_000 + (i as i64) * 15_000 + (i as i64 * 7919) % 5,
            // Counter-like values with a fractional part: compressible, but
            // not trivially.
            v: (b * 1_000 + i * i) as f64 / 8.0,
        })
        .collect()
}

fn batch_labels(b: u64) -> Vec<(String, String)> {
    vec![
        (
            "__name__".to_owned(),
            "node_network_receive_bytes_total".to_owned(),
        ),
        ("device".to_owned(), format!("eth{b}")),
        ("instance".to_owned(), "host-1:9100".to_owned()),
    ]
}

/// Copies a fixture directory to a fresh temporary directory.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let source = fixtures().join(name);
    let target = tempfile::tempdir().expect("temporary directory");
    for entry in fs::read_dir(&source).unwrap_or_else(|e| panic!("fixture {name}: {e}")) {
        let entry = entry.expect("fixture entry");
        fs::copy(entry.path(), target.path().join(entry.file_name())).expect("copy fixture file");
    }
    target
}

/// A replayed record: its position and, for samples records, the batch.
#[derive(Debug, PartialEq)]
struct Replayed {
    segment: u64,
    offset: u64,
    kind: RecordType,
    batch: u64,
}

/// Replays `dir`, checking every record against the generator.
fn replay(dir: &Path) -> Vec<Replayed> {
    let mut reader = Reader::open(dir).expect("reader");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("replay after repair is clean") {
        let kind = RecordType::of(record);
        let batch = match kind {
            RecordType::Series => {
                let mut series = Vec::new();
                decode_series(record, &mut series).expect("series record");
                let b = series[0].series_ref;
                let expected = batch_labels(b);
                let expected: Vec<(&str, &str)> = expected
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                assert_eq!(series[0].labels, expected);
                b
            }
            RecordType::Samples => {
                let mut samples = Vec::new();
                decode_samples(record, &mut samples).expect("samples record");
                let b = samples[0].series_ref;
                assert_eq!(samples, batch_samples(b), "batch {b}");
                b
            }
            other => panic!("unexpected record {other:?}"),
        };
        let (segment, offset) = reader.position();
        out.push(Replayed {
            segment,
            offset,
            kind,
            batch,
        });
    }
    out
}

#[test]
#[ignore = "writes the committed fixtures; run on purpose only"]
fn generate_fixtures() {
    let root = fixtures();
    for name in ["valid", "torn_tail", "bad_crc"] {
        let dir = root.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove old fixture");
        }
    }
    let valid = root.join("valid");
    let mut wal = Wal::open(&valid, options()).expect("open");
    for b in 0..BATCHES {
        let labels = batch_labels(b);
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let samples = batch_samples(b);
        wal.log(&[
            Record::Series(&[RefSeries {
                series_ref: b,
                labels: &pairs,
            }]),
            Record::Samples(&samples),
        ])
        .expect("log");
    }
    // Dropped, not closed: the last page stays partial, as after a crash.
    drop(wal);

    let records = replay(&valid);
    let last_segment = records.last().expect("records").segment;
    let last_path = valid.join(format!("{last_segment:08}"));
    let last_bytes = fs::read(&last_path).expect("last segment");
    let in_last: Vec<&Replayed> = records
        .iter()
        .filter(|r| r.segment == last_segment)
        .collect();
    assert!(in_last.len() >= 6, "the last segment needs several records");

    // Torn tail: cut the last segment inside a samples record that crosses
    // a page boundary (it starts in the first page and ends in the second).
    let torn = root.join("torn_tail");
    copy_dir(&valid, &torn);
    let page = 32 * 1024;
    let ends: Vec<u64> = in_last
        .iter()
        .skip(1)
        .map(|r| r.offset)
        .chain([last_bytes.len() as u64])
        .collect();
    let (spanning, end) = in_last
        .iter()
        .zip(&ends)
        .find(|(r, end)| r.offset < page && **end > page + 16)
        .expect("a record spanning the first page boundary of the last segment");
    // Halfway through the record's second fragment.
    let cut = (page + (end - page) / 2) as usize;
    assert!(spanning.kind == RecordType::Samples, "{spanning:?}");
    fs::write(torn.join(format!("{last_segment:08}")), &last_bytes[..cut]).expect("write torn");

    // Bad CRC: flip a byte inside the middle record of the last segment.
    let bad = root.join("bad_crc");
    copy_dir(&valid, &bad);
    let victim = in_last[in_last.len() / 2];
    let mut damaged = last_bytes.clone();
    damaged[victim.offset as usize + 7 + 2] ^= 0x20;
    fs::write(bad.join(format!("{last_segment:08}")), &damaged).expect("write bad crc");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create fixture dir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// The valid fixture replays completely, batch after batch: this pins the
/// on-disk format (a change to the encoders that breaks old files fails).
#[test]
fn valid_fixture_replays_everything() {
    let dir = copy_fixture("valid");
    let before = replay(dir.path());
    assert_eq!(before.len() as u64, BATCHES * 2);
    for (i, record) in before.iter().enumerate() {
        assert_eq!(record.batch, i as u64 / 2);
    }
    assert_eq!(before.last().map(|r| r.segment), Some(2));
    let (wal, report) = Wal::open_with_report(dir.path(), options()).expect("open");
    assert!(report.is_none(), "nothing to repair: {report:?}");
    assert_eq!(wal.current_segment(), 3);
    drop(wal);
    assert_eq!(replay(dir.path()), before);
}

#[test]
fn torn_tail_fixture_is_truncated_at_the_torn_record() {
    let valid = replay(copy_fixture("valid").path());
    let dir = copy_fixture("torn_tail");
    let torn_len = fs::metadata(dir.path().join("00000002"))
        .expect("segment")
        .len();
    // The torn record is the last one starting before the cut.
    let torn_index = valid
        .iter()
        .rposition(|r| r.segment == 2 && r.offset < torn_len)
        .expect("torn record");
    let torn = &valid[torn_index];

    let (wal, report) = Wal::open_with_report(dir.path(), options()).expect("open repairs");
    drop(wal);
    let report = report.expect("a torn tail is reported");
    assert_eq!(report.corruption.segment, 2);
    assert_eq!(report.corruption.offset, torn.offset);
    assert_eq!(report.corruption.kind, CorruptionKind::TornRecord);
    assert_eq!(report.segment_size, torn_len);
    assert_eq!(report.dropped_bytes, torn_len - torn.offset);
    assert!(report.deleted_segments.is_empty());
    assert_eq!(replay(dir.path()), valid[..torn_index]);
}

#[test]
fn bad_crc_fixture_is_truncated_at_the_damaged_record() {
    let valid = replay(copy_fixture("valid").path());
    let dir = copy_fixture("bad_crc");
    let segment_len = fs::metadata(dir.path().join("00000002"))
        .expect("segment")
        .len();
    let in_last: Vec<usize> = (0..valid.len())
        .filter(|&i| valid[i].segment == 2)
        .collect();
    let damaged_index = in_last[in_last.len() / 2];
    let damaged = &valid[damaged_index];

    let (wal, report) = Wal::open_with_report(dir.path(), options()).expect("open repairs");
    drop(wal);
    let report = report.expect("a bad CRC is reported");
    assert_eq!(report.corruption.segment, 2);
    assert_eq!(report.corruption.offset, damaged.offset);
    assert_eq!(report.corruption.kind, CorruptionKind::Checksum);
    assert_eq!(report.dropped_bytes, segment_len - damaged.offset);
    // Everything before the damage is kept; the intact records after it in
    // the same segment are dropped with it.
    assert_eq!(replay(dir.path()), valid[..damaged_index]);
    assert!(damaged_index < in_last[in_last.len() - 1]);
}
