use super::*;

use std::sync::{Arc, Mutex};

/// Small segments so that tests cross segment boundaries quickly.
fn small(compress: bool) -> WalOptions {
    WalOptions {
        segment_size: 2 * PAGE_SIZE as u64,
        compress,
        sync: SyncPolicy::SegmentCut,
    }
}

/// A samples record whose encoding is roughly `n * 11` bytes and does not
/// compress well, so sizes are predictable.
fn samples(batch: u64, n: usize) -> Vec<RefSample> {
    (0..n)
        .map(|i| RefSample {
            series_ref: batch * 1000 + i as u64,
            t: (batch * 15_000) as i64 + i as i64,
            // Clearing bit 62 keeps the exponent finite: no NaN, so `==` works.
            v: f64::from_bits(scramble(batch * 1_000_003 + i as u64) & !(1 << 62)),
        })
        .collect()
}

/// SplitMix64's finaliser: incompressible, deterministic values.
fn scramble(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every samples record in the WAL, in order.
fn replay(dir: &Path) -> Result<Vec<Vec<RefSample>>, WalError> {
    let mut reader = Reader::open(dir)?;
    let mut out = Vec::new();
    while let Some(record) = reader.next_record()? {
        if RecordType::of(record) == RecordType::Samples {
            let mut batch = Vec::new();
            decode_samples(record, &mut batch)?;
            out.push(batch);
        }
    }
    Ok(out)
}

fn sizes(batches: &[Vec<RefSample>]) -> Vec<usize> {
    batches.iter().map(Vec::len).collect()
}

#[test]
fn records_round_trip_across_pages_and_segments() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), small(compress)).unwrap();
        // Tiny, page-sized, multi-page and larger-than-a-segment records.
        let lengths = [1, 10, 2_900, 3_000, 1, 7_000, 12_000, 1, 50];
        let written: Vec<_> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| samples(i as u64, n))
            .collect();
        for batch in &written {
            wal.log(&[Record::Samples(batch)]).unwrap();
        }
        let last = wal.current_segment();
        wal.close().unwrap();
        assert!(last >= 3, "expected several segments, got {last}");
        assert_eq!(
            replay(dir.path()).unwrap(),
            written,
            "compress = {compress}"
        );
        // Finished segments are whole pages; the record larger than a
        // segment got a segment of its own.
        for (index, path) in segment::list_segments(dir.path()).unwrap() {
            let len = path.metadata().unwrap().len();
            assert_eq!(len % PAGE_SIZE as u64, 0, "segment {index} is {len} bytes");
        }
    }
}

#[test]
fn all_record_types_round_trip_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let labels = [
        ("__name__", "node_cpu_seconds_total"),
        ("cpu", "0"),
        ("mode", "idle"),
    ];
    let series = [RefSeries {
        series_ref: 42,
        labels: &labels,
    }];
    let batch = samples(1, 3);
    let stones = [RefTombstone {
        series_ref: 42,
        mint: 0,
        maxt: 99,
    }];
    let meta = [RefMetadata {
        series_ref: 42,
        metric_type: MetricType::Counter,
        unit: "seconds",
        help: "Seconds the CPUs spent in each mode.",
    }];
    wal.log(&[
        Record::Series(&series),
        Record::Samples(&batch),
        Record::Tombstones(&stones),
        Record::Metadata(&meta),
    ])
    .unwrap();
    drop(wal); // Without close: everything logged is already in the file.

    let mut reader = Reader::open(dir.path()).unwrap();
    let mut types = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        types.push(RecordType::of(record));
        match RecordType::of(record) {
            RecordType::Series => {
                let mut out = Vec::new();
                decode_series(record, &mut out).unwrap();
                assert_eq!(out[0].labels, labels);
            }
            RecordType::Tombstones => {
                let mut out = Vec::new();
                decode_tombstones(record, &mut out).unwrap();
                assert_eq!(out, stones);
            }
            RecordType::Metadata => {
                let mut out = Vec::new();
                decode_metadata(record, &mut out).unwrap();
                assert_eq!(out, meta);
            }
            RecordType::Samples => {
                let mut out = Vec::new();
                decode_samples(record, &mut out).unwrap();
                assert_eq!(out, batch);
            }
            RecordType::Unknown(t) => panic!("unexpected record type {t}"),
        }
    }
    assert_eq!(
        types,
        [
            RecordType::Series,
            RecordType::Samples,
            RecordType::Tombstones,
            RecordType::Metadata
        ]
    );
}

#[test]
fn invalid_segment_size_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, 1000, PAGE_SIZE as u64 + 1] {
        let options = WalOptions {
            segment_size: size,
            ..WalOptions::default()
        };
        assert!(matches!(
            Wal::open(dir.path(), options),
            Err(WalError::InvalidArgument(_))
        ));
    }
}

#[test]
fn reopening_starts_a_new_segment_and_keeps_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(true)).unwrap();
    wal.log(&[Record::Samples(&samples(0, 5))]).unwrap();
    assert_eq!(wal.current_segment(), 0);
    drop(wal);
    let (mut wal, report) = Wal::open_with_report(dir.path(), small(true)).unwrap();
    assert!(report.is_none());
    assert_eq!(wal.current_segment(), 1);
    wal.log(&[Record::Samples(&samples(1, 5))]).unwrap();
    wal.close().unwrap();
    assert_eq!(sizes(&replay(dir.path()).unwrap()), [5, 5]);
}

#[test]
fn torn_tail_is_truncated_at_every_cut_point() {
    // Write records that span pages, then cut the last segment at many
    // offsets: every complete record before the cut must survive, and the
    // repair must account for every byte after the last complete record.
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_size: 8 * PAGE_SIZE as u64,
        ..small(false)
    };
    let mut wal = Wal::open(dir.path(), options).unwrap();
    let mut ends = Vec::new();
    let written: Vec<_> = [200, 4_000, 10, 2_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| samples(i as u64, n))
        .collect();
    for batch in &written {
        wal.log(&[Record::Samples(batch)]).unwrap();
        ends.push(
            fs::metadata(segment::segment_path(dir.path(), 0))
                .unwrap()
                .len(),
        );
    }
    drop(wal);
    let original = fs::read(segment::segment_path(dir.path(), 0)).unwrap();
    let mut cuts: Vec<u64> = (1..original.len() as u64).step_by(997).collect();
    cuts.extend(ends.iter().map(|e| e - 1));
    for cut in cuts {
        let case = tempfile::tempdir().unwrap();
        fs::write(
            segment::segment_path(case.path(), 0),
            &original[..cut as usize],
        )
        .unwrap();
        let (wal, report) = Wal::open_with_report(case.path(), options).unwrap();
        drop(wal);
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        let kept_until = if complete == 0 { 0 } else { ends[complete - 1] };
        let report =
            report.unwrap_or_else(|| panic!("cut at {cut} must be repaired (ends {ends:?})"));
        assert_eq!(report.corruption.segment, 0);
        assert_eq!(report.corruption.offset, kept_until, "cut at {cut}");
        assert_eq!(report.dropped_bytes, cut - kept_until);
        assert_eq!(report.segment_size, cut);
        assert!(report.deleted_segments.is_empty());
        let replayed = replay(case.path()).unwrap();
        assert_eq!(replayed, written[..complete], "cut at {cut}");
    }
}

#[test]
fn bad_crc_in_last_segment_drops_the_rest_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(false)).unwrap();
    let mut offsets = Vec::new();
    for i in 0..4 {
        offsets.push(
            fs::metadata(segment::segment_path(dir.path(), 0))
                .unwrap()
                .len(),
        );
        wal.log(&[Record::Samples(&samples(i, 100))]).unwrap();
    }
    drop(wal);
    let path = segment::segment_path(dir.path(), 0);
    let mut bytes = fs::read(&path).unwrap();
    let size = bytes.len() as u64;
    // Flip a data byte of the third record.
    bytes[offsets[2] as usize + HEADER_SIZE + 20] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let (_, report) = Wal::open_with_report(dir.path(), small(false)).unwrap();
    let report = report.unwrap();
    assert_eq!(report.corruption.kind, CorruptionKind::Checksum);
    assert_eq!(report.corruption.offset, offsets[2]);
    assert_eq!(report.dropped_bytes, size - offsets[2]);
    assert_eq!(sizes(&replay(dir.path()).unwrap()), [100, 100]);
    // The repaired segment is padded to whole pages.
    assert_eq!(fs::metadata(&path).unwrap().len() % PAGE_SIZE as u64, 0);
}

#[test]
fn damage_in_an_earlier_segment_is_repaired_through_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(false)).unwrap();
    for i in 0..24 {
        wal.log(&[Record::Samples(&samples(i, 1_000))]).unwrap();
    }
    wal.close().unwrap();
    let segments = segment::list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 4);
    // Damage the first record of segment 1.
    let victim = segment::segment_path(dir.path(), 1);
    let mut bytes = fs::read(&victim).unwrap();
    bytes[HEADER_SIZE + 3] ^= 1;
    fs::write(&victim, &bytes).unwrap();

    let (mut wal, report) = Wal::open_with_report(dir.path(), small(false)).unwrap();
    assert!(report.is_none(), "only the last segment is scanned at open");
    let err = replay(dir.path()).unwrap_err();
    let WalError::Corruption(corruption) = err else {
        panic!("expected corruption, got {err}")
    };
    assert_eq!((corruption.segment, corruption.offset), (1, 0));
    let report = wal.repair(&corruption).unwrap();
    let deleted: Vec<u64> = report.deleted_segments.iter().map(|&(i, _)| i).collect();
    let expected: Vec<u64> = (2..=segments.last().unwrap().0 + 1).collect();
    assert_eq!(
        deleted, expected,
        "later segments, the new writing one included"
    );
    assert_eq!(wal.current_segment(), 2);
    wal.log(&[Record::Samples(&samples(99, 3))]).unwrap();
    wal.close().unwrap();
    let replayed = replay(dir.path()).unwrap();
    let kept_before = replayed.len() - 1;
    assert!(kept_before >= 1);
    assert_eq!(replayed.last().unwrap().len(), 3);
}

#[test]
fn checkpoint_keeps_live_series_and_recent_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(true)).unwrap();
    let labels_a = [("__name__", "a")];
    let labels_b = [("__name__", "b")];
    wal.log(&[Record::Series(&[
        RefSeries {
            series_ref: 1,
            labels: &labels_a,
        },
        RefSeries {
            series_ref: 2,
            labels: &labels_b,
        },
    ])])
    .unwrap();
    for t in 0..300 {
        wal.log(&[Record::Samples(&[
            RefSample {
                series_ref: 1,
                t,
                v: t as f64,
            },
            RefSample {
                series_ref: 2,
                t,
                v: t as f64,
            },
        ])])
        .unwrap();
    }
    let meta = |help| RefMetadata {
        series_ref: 1,
        metric_type: MetricType::Gauge,
        unit: "",
        help,
    };
    wal.log(&[
        Record::Metadata(&[meta("old")]),
        Record::Metadata(&[meta("new")]),
    ])
    .unwrap();
    wal.log(&[Record::Tombstones(&[
        RefTombstone {
            series_ref: 1,
            mint: 0,
            maxt: 10,
        },
        RefTombstone {
            series_ref: 1,
            mint: 250,
            maxt: 260,
        },
    ])])
    .unwrap();
    let to = wal.cut_segment().unwrap() - 1;
    wal.log(&[Record::Samples(&[RefSample {
        series_ref: 1,
        t: 1000,
        v: 1.0,
    }])])
    .unwrap();

    let stats = wal.checkpoint(0, to, |r| r == 1, 200).unwrap();
    assert_eq!((stats.series_read, stats.series_kept), (2, 1));
    assert_eq!((stats.samples_read, stats.samples_kept), (600, 100));
    assert_eq!((stats.tombstones_read, stats.tombstones_kept), (2, 1));
    assert_eq!((stats.metadata_read, stats.metadata_kept), (2, 1));
    assert_eq!(stats.dir, dir.path().join(checkpoint_name(to)));
    assert_eq!(wal.segment_range().unwrap(), (to + 1, to + 1));
    wal.close().unwrap();

    let mut reader = Reader::open(dir.path()).unwrap();
    let (mut series, mut all_samples, mut metadata, mut stones) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    while let Some(record) = reader.next_record().unwrap() {
        match RecordType::of(record) {
            RecordType::Series => {
                let mut out = Vec::new();
                decode_series(record, &mut out).unwrap();
                series.extend(out.into_iter().map(|s| s.series_ref));
            }
            RecordType::Samples => decode_samples(record, &mut all_samples).unwrap(),
            RecordType::Metadata => {
                let mut out = Vec::new();
                decode_metadata(record, &mut out).unwrap();
                metadata.extend(out.into_iter().map(|m| m.help.to_owned()));
            }
            RecordType::Tombstones => decode_tombstones(record, &mut stones).unwrap(),
            RecordType::Unknown(t) => panic!("unexpected record type {t}"),
        }
    }
    assert_eq!(series, [1]);
    assert_eq!(all_samples.len(), 101);
    assert!(all_samples.iter().all(|s| s.series_ref == 1 && s.t >= 200));
    assert_eq!(metadata, ["new"]);
    assert_eq!(
        stones,
        [RefTombstone {
            series_ref: 1,
            mint: 250,
            maxt: 260
        }]
    );

    // A second checkpoint folds the first one in and replaces it.
    let mut wal = Wal::open(dir.path(), small(true)).unwrap();
    let current = wal.current_segment();
    let stats = wal.checkpoint(to + 1, current - 1, |_| true, 0).unwrap();
    assert_eq!(stats.samples_kept, 101);
    let checkpoints = segment::list_checkpoints(dir.path()).unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].0, current - 1);
}

#[test]
fn interrupted_checkpoint_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(format!("{}.tmp", checkpoint_name(3)));
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join("00000000"), b"partial").unwrap();
    let wal = Wal::open(dir.path(), small(true)).unwrap();
    assert!(!tmp.exists());
    drop(wal);
}

#[test]
fn checkpoint_range_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(true)).unwrap();
    assert!(matches!(
        wal.checkpoint(0, 0, |_| true, 0),
        Err(WalError::InvalidArgument(_))
    ));
    wal.cut_segment().unwrap();
    assert!(matches!(
        wal.checkpoint(1, 0, |_| true, 0),
        Err(WalError::InvalidArgument(_))
    ));
    wal.checkpoint(0, 0, |_| true, 0).unwrap();
}

#[test]
fn progress_is_reported_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small(false)).unwrap();
    for i in 0..10 {
        wal.log(&[Record::Samples(&samples(i, 1_000))]).unwrap();
    }
    wal.close().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let mut reader = Reader::open(dir.path())
        .unwrap()
        .with_progress(move |p| sink.lock().unwrap().push(p.clone()));
    while reader.next_record().unwrap().is_some() {}
    let seen = seen.lock().unwrap();
    let total = segment::list_segments(dir.path()).unwrap().len();
    assert_eq!(seen.len(), total);
    let last = seen.last().unwrap();
    assert_eq!(last.segments_done, total);
    assert_eq!(last.segments_total, total);
    assert_eq!(last.bytes_done, last.bytes_total);
    assert!(seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert_eq!(last.fraction(), 1.0);
    let line = last.to_string();
    assert!(
        line.contains(&format!("{total}/{total} segments")),
        "{line}"
    );
    assert!(line.ends_with("(100.0%)"), "{line}");
}

#[test]
fn interval_policy_waits_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        ..small(true)
    };
    let mut wal = Wal::open(dir.path(), options).unwrap();
    wal.log(&[Record::Samples(&samples(0, 10))]).unwrap();
    assert!(wal.unsynced, "an hour has not passed");
    wal.sync().unwrap();
    assert!(!wal.unsynced);
}

#[test]
fn sync_policies_sync() {
    for policy in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::ZERO),
        SyncPolicy::SegmentCut,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions {
            sync: policy,
            ..small(true)
        };
        let mut wal = Wal::open(dir.path(), options).unwrap();
        wal.log(&[Record::Samples(&samples(0, 10))]).unwrap();
        assert_eq!(wal.unsynced, policy == SyncPolicy::SegmentCut, "{policy:?}");
        wal.sync().unwrap();
        assert!(!wal.unsynced);
    }
}

#[test]
fn zstd_records_are_unsupported_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut page = vec![0u8; 16];
    page[0] = FRAGMENT_FULL | segment::ZSTD_FLAG;
    page[2] = 1;
    page[3..7].copy_from_slice(&segment::checksum(&[2]).to_be_bytes());
    page[7] = 2;
    fs::write(segment::segment_path(dir.path(), 0), &page).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small(true)),
        Err(WalError::UnsupportedCompression {
            segment: 0,
            offset: 0
        })
    ));
}

#[test]
fn segment_gaps_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment::segment_path(dir.path(), 0), b"").unwrap();
    fs::write(segment::segment_path(dir.path(), 2), b"").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small(true)),
        Err(WalError::NonSequential {
            before: 0,
            after: 2,
            ..
        })
    ));
}

#[test]
fn wal_and_reader_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Wal>();
    assert_send::<Reader>();
}

mod damage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever byte of the last segment is damaged, opening repairs it
        /// and replay yields an exact prefix of what was written.
        #[test]
        fn any_flipped_byte_leaves_a_clean_prefix(
            lengths in proptest::collection::vec(1usize..4_000, 1..12),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            compress in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let options = WalOptions { segment_size: 16 * PAGE_SIZE as u64, ..small(compress) };
            let mut wal = Wal::open(dir.path(), options).unwrap();
            let written: Vec<_> = lengths.iter().enumerate().map(|(i, &n)| samples(i as u64, n)).collect();
            for batch in &written {
                wal.log(&[Record::Samples(batch)]).unwrap();
            }
            drop(wal);
            let path = segment::segment_path(dir.path(), 0);
            let mut bytes = fs::read(&path).unwrap();
            let at = position.index(bytes.len());
            bytes[at] ^= flip;
            fs::write(&path, &bytes).unwrap();

            let (wal, report) = Wal::open_with_report(dir.path(), options).unwrap();
            drop(wal);
            let replayed = replay(dir.path()).unwrap();
            prop_assert!(replayed.len() <= written.len());
            prop_assert_eq!(&replayed[..], &written[..replayed.len()]);
            if replayed.len() < written.len() {
                let report = report.expect("dropping records must be reported");
                prop_assert!(report.corruption.offset <= at as u64);
            }
        }

        /// Records of any size round-trip, whatever page and segment edges
        /// they happen to meet.
        #[test]
        fn any_record_sizes_round_trip(
            lengths in proptest::collection::vec(0usize..3_000, 1..40),
            pages_per_segment in 1u64..4,
            compress in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let options = WalOptions {
                segment_size: pages_per_segment * PAGE_SIZE as u64,
                ..small(compress)
            };
            let mut wal = Wal::open(dir.path(), options).unwrap();
            let written: Vec<_> = lengths.iter().enumerate().map(|(i, &n)| samples(i as u64, n)).collect();
            // Alternate single-record and two-record batches.
            for pair in written.chunks(2) {
                let records: Vec<_> = pair.iter().map(|b| Record::Samples(b)).collect();
                wal.log(&records).unwrap();
            }
            wal.close().unwrap();
            prop_assert_eq!(replay(dir.path()).unwrap(), written);
        }

        /// Arbitrary bytes as the last segment never panic: open repairs
        /// (or refuses zstd), and replay afterwards is clean.
        #[test]
        fn arbitrary_segment_bytes_are_repaired(bytes in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let dir = tempfile::tempdir().unwrap();
            fs::write(segment::segment_path(dir.path(), 0), &bytes).unwrap();
            match Wal::open_with_report(dir.path(), small(true)) {
                Ok((wal, _)) => {
                    drop(wal);
                    prop_assert!(replay(dir.path()).is_ok());
                }
                Err(WalError::UnsupportedCompression { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
