use std::sync::Arc;

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample;
use ember_model::storage::collect_samples;

use super::*;

fn labels(i: usize) -> Labels {
    Labels::new([
        (
            "__name__",
            if i.is_multiple_of(2) {
                "node_cpu"
            } else {
                "node_mem"
            },
        ),
        ("instance", &format!("host-{:03}", i / 4)),
        ("job", "node"),
        ("mode", ["idle", "user", "system", "iowait"][i % 4]),
    ])
    .expect("labels")
}

fn samples(i: usize, n: usize) -> Vec<Sample> {
    (0..n)
        .map(|k| Sample::new(k as i64 * 15_000 + i as i64, (k * i) as f64 / 4.0))
        .collect()
}

fn write_block(dir: &Path, n_series: usize, n_samples: usize) -> BlockMeta {
    let mut writer = BlockWriter::new(dir, 0, 7_200_000).expect("writer");
    // Reverse order: the writer sorts.
    for i in (0..n_series).rev() {
        writer
            .add_samples(&labels(i), &samples(i, n_samples))
            .expect("add");
    }
    writer.finish().expect("finish")
}

#[test]
fn write_reopen_select_and_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block(dir.path(), 200, 480);
    assert_eq!(meta.stats.num_series, 200);
    assert_eq!(meta.stats.num_samples, 200 * 480);
    assert_eq!(meta.stats.num_chunks, 200 * 4);
    assert!(is_ulid(&meta.ulid), "{}", meta.ulid);
    let block_dir = dir.path().join(&meta.ulid);
    assert!(
        !dir.path()
            .join(format!("{}{TMP_CREATION_SUFFIX}", meta.ulid))
            .exists()
    );
    let block = Arc::new(Block::open(&block_dir).expect("open"));
    assert_eq!(block.meta(), &meta);
    block.verify().expect("verify");
    assert_eq!(block.num_series(), 200);

    // Ids ascend in label order.
    let all: Vec<Labels> = (0..200)
        .map(|id| block.series(id).expect("series").0)
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);

    let ids = block
        .select(&[
            Matcher::equal("__name__", "node_cpu"),
            Matcher::new(MatchOp::Regex, "mode", "idle|user").expect("matcher"),
            Matcher::new(MatchOp::NotEqual, "instance", "host-000").expect("matcher"),
        ])
        .expect("select");
    // node_cpu: even i; mode idle|user with even i: i % 4 == 0 only (idle).
    let expected: Vec<usize> = (4..200).filter(|i| i % 4 == 0).collect();
    assert_eq!(ids.len(), expected.len());
    for id in &ids {
        let (l, chunks) = block.series(*id).expect("series");
        let i = (0..200).find(|&i| labels(i) == l).expect("known labels");
        assert!(expected.contains(&i));
        assert_eq!(chunks.len(), 4);
    }
    assert_eq!(
        block.label_values("mode").expect("values"),
        ["idle", "iowait", "system", "user"]
    );
    assert_eq!(
        block.label_names().expect("names"),
        ["__name__", "instance", "job", "mode"]
    );
    // A matcher that matches the empty string selects series without the
    // label too; none lack `job`.
    assert_eq!(
        block
            .select(&[Matcher::equal("absent", "")])
            .expect("select")
            .len(),
        200
    );
    assert!(
        block
            .select(&[Matcher::equal("job", "nope")])
            .expect("select")
            .is_empty()
    );

    // Through the querier, trimmed to a range.
    let querier = block.querier(30_000, 60_000);
    let mut set = querier
        .select(true, None, &[Matcher::equal("instance", "host-001")])
        .expect("select");
    let mut n = 0;
    for series in set.by_ref() {
        let series = series.expect("series");
        let i = (0..200)
            .find(|&i| labels(i) == *series.labels())
            .expect("known");
        let got = collect_samples(series.samples().as_mut()).expect("samples");
        let want: Vec<Sample> = samples(i, 480)
            .into_iter()
            .filter(|s| (30_000..=60_000).contains(&s.t))
            .collect();
        assert_eq!(got, want);
        n += 1;
    }
    assert_eq!(n, 4);

    // Seek skips whole chunks.
    let q = block.querier(0, i64::MAX);
    let mut set = q.select(true, None, &[]).expect("select");
    let series = set.next().expect("one").expect("ok");
    let mut it = series.samples();
    assert!(it.seek(5_000_000));
    assert!(it.at().t >= 5_000_000 && it.at().t < 5_015_000);
}

#[test]
fn corruption_is_reported_not_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block(dir.path(), 10, 200);
    let block_dir = dir.path().join(&meta.ulid);
    // Flip a byte in the middle of the first chunk segment.
    let seg = block_dir.join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, bytes).expect("write");
    let block = Arc::new(Block::open(&block_dir).expect("open still works"));
    assert!(block.verify().is_err());
    let q = block.querier(0, i64::MAX);
    let mut failed = false;
    for series in q.select(true, None, &[]).expect("select") {
        let series = series.expect("series");
        let mut it = series.samples();
        while it.next() {}
        failed |= it.err().is_some();
    }
    assert!(failed, "a CRC mismatch must surface as an iterator error");

    // A damaged TOC refuses to open.
    let index = block_dir.join("index");
    let mut bytes = std::fs::read(&index).expect("read");
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&index, bytes).expect("write");
    assert!(matches!(
        Block::open(&block_dir),
        Err(BlockError::Corrupt { .. })
    ));
}

#[test]
fn writer_rejects_bad_input_and_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(BlockWriter::new(dir.path(), 10, 10).is_err());
    let mut writer = BlockWriter::new(dir.path(), 0, 1_000).expect("writer");
    let l = labels(0);
    let err = writer
        .add_samples(&l, &[Sample::new(5, 1.0), Sample::new(1_000, 2.0)])
        .expect_err("outside range");
    assert!(err.to_string().contains("outside block range"), "{err}");
    assert!(
        writer
            .add_samples(&l, &[Sample::new(5, 1.0), Sample::new(5, 2.0)])
            .is_err()
    );
    writer.add_samples(&l, &[Sample::new(5, 1.0)]).expect("add");
    writer.add_samples(&l, &[Sample::new(6, 1.0)]).expect("add");
    assert!(matches!(writer.finish(), Err(BlockError::Invalid(_))));
    // Nothing is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);

    let writer = BlockWriter::new(dir.path(), 0, 1_000).expect("writer");
    drop(writer);
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}

#[test]
fn empty_block_and_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = BlockWriter::new(dir.path(), 0, 1_000)
        .expect("writer")
        .finish()
        .expect("finish");
    let block = Arc::new(Block::open(&dir.path().join(&meta.ulid)).expect("open"));
    assert_eq!(block.num_series(), 0);
    assert!(block.select(&[]).expect("select").is_empty());

    let meta = write_block(dir.path(), 4, 100);
    let block = Arc::new(Block::open(&dir.path().join(&meta.ulid)).expect("open"));
    let mut t = Tombstones::default();
    t.add(0, 0, 100_000);
    t.add(1, 0, i64::MAX);
    block.set_tombstones(t.clone()).expect("tombstones");
    let block = Arc::new(Block::open(&dir.path().join(&meta.ulid)).expect("reopen"));
    assert_eq!(*block.tombstones(), t);
    let q = block.querier(0, i64::MAX);
    let series: Vec<_> = q
        .select(true, None, &[])
        .expect("select")
        .map(|s| s.expect("series"))
        .collect();
    // Series 1 is deleted completely.
    assert_eq!(series.len(), 3);
    let first = collect_samples(series[0].samples().as_mut()).expect("samples");
    assert!(first.iter().all(|s| s.t > 100_000));
}

#[test]
fn ulids_are_unique_and_sorted_by_time() {
    let a = new_ulid();
    let b = new_ulid();
    assert_ne!(a, b);
    assert!(is_ulid(&a) && is_ulid(&b));
    assert_eq!(a[..8], b[..8]);
}
