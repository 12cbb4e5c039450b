//! Property test of the whole data life cycle: random appends, commits,
//! rollbacks, restarts, compactions (head cut into blocks, head and WAL
//! truncation, block merges), deletions and tombstone cleaning give the
//! same `select` results from a [`Db`] as from `MemStorage` with the
//! deletions applied as interval filters.
//!
//! Blocks are 50 ms long and merged up to 450 ms, chunks are cut every 4
//! samples, so a few dozen samples over 0..600 ms produce many blocks,
//! truncations, checkpoints and compactions.

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample;
use ember_model::storage::{
    AppendError, Appendable, Appender, MemStorage, MemStorageOptions, Storage, collect_samples,
};
use ember_tsdb::{Db, DbOptions, SyncPolicy};
use proptest::prelude::*;

const SERIES: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Appends to a series at its newest timestamp plus `step` (0 repeats
    /// it), or at `t` when `step` is `None`.
    Append {
        series: usize,
        step: Option<i64>,
        t: i64,
        v: u8,
    },
    Commit,
    Rollback,
    Restart,
    Compact,
    Delete {
        matcher: usize,
        from: i64,
        len: i64,
    },
    Clean,
    Check {
        mint: i64,
        maxt: i64,
        matcher: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => (0..SERIES, prop::option::weighted(0.9, 0i64..40), 0i64..600, 0u8..3)
            .prop_map(|(series, step, t, v)| Op::Append { series, step, t, v }),
        4 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Restart),
        3 => Just(Op::Compact),
        1 => (0..4usize, 0i64..600, 0i64..200).prop_map(|(matcher, from, len)| Op::Delete { matcher, from, len }),
        1 => Just(Op::Clean),
        2 => (0i64..700, 0i64..700, 0..4usize).prop_map(|(a, b, matcher)| Op::Check {
            mint: a.min(b),
            maxt: a.max(b),
            matcher,
        }),
    ]
}

fn series_labels(i: usize) -> Labels {
    Labels::new([
        ("__name__", if i < 2 { "up" } else { "other" }),
        ("job", ["api", "web"][i % 2]),
        ("instance", &format!("host-{i}")),
    ])
    .expect("labels")
}

fn matchers(i: usize) -> Vec<Matcher> {
    match i {
        0 => vec![],
        1 => vec![Matcher::equal("__name__", "up")],
        2 => vec![Matcher::new(MatchOp::Regex, "job", "web|db").expect("regex")],
        _ => vec![Matcher::not_equal("instance", "host-0")],
    }
}

type Selected = Vec<(Labels, Vec<(i64, u64)>)>;

fn select(storage: &dyn Storage, mint: i64, maxt: i64, m: &[Matcher]) -> Selected {
    let querier = storage.querier(mint, maxt).expect("querier");
    querier
        .select(true, None, m)
        .expect("select")
        .map(|series| {
            let series = series.expect("series");
            let samples = collect_samples(series.samples().as_mut()).expect("samples");
            (
                series.labels().clone(),
                samples
                    .iter()
                    .map(|s: &Sample| (s.t, s.v.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

/// The model's answer with the deletions applied.
fn expected(
    model: &MemStorage,
    deleted: &[(usize, i64, i64)],
    mint: i64,
    maxt: i64,
    m: &[Matcher],
) -> Selected {
    select(model, mint, maxt, m)
        .into_iter()
        .map(|(labels, samples)| {
            let samples: Vec<(i64, u64)> = samples
                .into_iter()
                .filter(|&(t, _)| {
                    !deleted.iter().any(|&(dm, a, b)| {
                        t >= a && t <= b && matchers(dm).iter().all(|x| x.matches_labels(&labels))
                    })
                })
                .collect();
            (labels, samples)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

fn kind(result: &Result<ember_model::storage::SeriesRef, AppendError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e
            .to_string()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        wal_segment_size: 32 * 1024,
        wal_sync: SyncPolicy::SegmentCut,
        samples_per_chunk: 4,
        block_duration_ms: 50,
        max_block_duration_ms: 450,
        retention_ms: 0,
        compaction_interval: None,
        chunk_segment_size: 256,
        ..DbOptions::default()
    };
    let model = MemStorage::with_options(MemStorageOptions {
        min_valid_time: i64::MIN,
        out_of_order_window: 0,
    });
    let mut db = Db::open(dir.path(), options).expect("open");
    let mut open: Option<(Box<dyn Appender>, Box<dyn Appender>)> = None;
    // Newest committed or buffered timestamp per series.
    let mut newest = [i64::MIN; SERIES];
    let mut committed_newest = [i64::MIN; SERIES];
    let mut deleted: Vec<(usize, i64, i64)> = Vec::new();
    for op in ops {
        match op {
            Op::Append { series, step, t, v } => {
                let t = match step {
                    Some(step) if newest[series] != i64::MIN => newest[series] + step,
                    _ => t,
                };
                let (a, b) = open.get_or_insert_with(|| (db.appender(), model.appender()));
                let labels = series_labels(series);
                let value = [1.0, 2.5, f64::NAN][usize::from(v)];
                let got = a.append(None, &labels, t, value);
                if let Err(AppendError::OutOfBounds { min_valid_t, .. }) = &got {
                    // Data before the last head cut's end cannot be added;
                    // the model does not know about blocks.
                    prop_assert!(t < *min_valid_t);
                    continue;
                }
                let want = b.append(None, &labels, t, value);
                prop_assert_eq!(kind(&got), kind(&want), "append {} t={}", labels, t);
                if got.is_ok() {
                    newest[series] = newest[series].max(t);
                }
            }
            Op::Commit => {
                if let Some((a, b)) = open.take() {
                    a.commit().expect("db commit");
                    b.commit().expect("model commit");
                    committed_newest = newest;
                }
            }
            Op::Rollback => {
                if let Some((a, b)) = open.take() {
                    a.rollback().expect("db rollback");
                    b.rollback().expect("model rollback");
                    newest = committed_newest;
                }
            }
            Op::Restart => {
                if open.take().is_some() {
                    newest = committed_newest;
                }
                db.close().expect("close");
                db = Db::open(dir.path(), options).expect("reopen");
            }
            Op::Compact => {
                // Only between transactions: a cut while one is open drops
                // its samples before the block's end at commit (counted),
                // which the model cannot know.
                if open.is_none() {
                    db.compact().expect("compact");
                }
            }
            Op::Delete { matcher, from, len } => {
                // Only ranges before every series' newest sample: appends
                // are in order, so no later sample falls into them (a
                // tombstone of a series that leaves the head and comes
                // back does not follow it).
                if open.is_none() && committed_newest.iter().all(|&n| n != i64::MIN) {
                    let frontier = committed_newest.iter().copied().min().unwrap_or(0);
                    let (a, b) = (from.min(frontier), (from + len).min(frontier));
                    db.delete(&matchers(matcher), a, b).expect("delete");
                    deleted.push((matcher, a, b));
                }
            }
            Op::Clean => {
                db.clean_tombstones().expect("clean");
            }
            Op::Check {
                mint,
                maxt,
                matcher,
            } => {
                let m = matchers(matcher);
                prop_assert_eq!(
                    select(&db, mint, maxt, &m),
                    expected(&model, &deleted, mint, maxt, &m),
                    "select {:?} [{}, {}]",
                    m,
                    mint,
                    maxt
                );
            }
        }
    }
    drop(open);
    for matcher in 0..4 {
        let m = matchers(matcher);
        prop_assert_eq!(
            select(&db, i64::MIN, i64::MAX, &m),
            expected(&model, &deleted, i64::MIN, i64::MAX, &m)
        );
    }
    db.compact().expect("compact");
    db.close().expect("close");
    let db = Db::open(dir.path(), options).expect("final reopen");
    prop_assert_eq!(
        select(&db, i64::MIN, i64::MAX, &[]),
        expected(&model, &deleted, i64::MIN, i64::MAX, &[])
    );
    for block in db.blocks() {
        block.verify().expect("verify");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lifecycle_matches_model(ops in prop::collection::vec(op(), 1..150)) {
        run(ops)?;
    }
}
