//! Property test: random appends, commits, rollbacks and restarts (close +
//! reopen, which replays the WAL and the mapped chunks) give the same
//! answers from a [`Db`] as from `MemStorage`, the obviously correct
//! in-memory model — same accepted and rejected samples, same `select`,
//! `label_names` and `label_values` results.
//!
//! Chunks are cut every 4 samples and at 50 ms block boundaries, and chunk
//! file segments are tiny, so a few dozen samples exercise chunk cutting,
//! memory-mapping, segment cuts and replay of mapped chunks.

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};
use ember_model::sample::Sample;
use ember_model::storage::{
    AppendError, Appendable, Appender, MemStorage, MemStorageOptions, Querier, Queryable, Storage,
    collect_samples,
};
use ember_tsdb::{Db, DbOptions, SyncPolicy};
use proptest::prelude::*;

const SERIES: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Append {
        series: usize,
        t: i64,
        v: u8,
    },
    Commit,
    Rollback,
    Restart,
    /// Opens a querier on both sides and keeps it: later checks compare
    /// what it sees, which must stay what was committed when it opened.
    Hold,
    Check {
        mint: i64,
        maxt: i64,
        matcher: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..SERIES, 0i64..400, 0u8..3).prop_map(|(series, t, v)| Op::Append { series, t, v }),
        3 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Restart),
        1 => Just(Op::Hold),
        2 => (0i64..400, 0i64..400, 0..8usize).prop_map(|(a, b, matcher)| Op::Check {
            mint: a.min(b),
            maxt: a.max(b),
            matcher,
        }),
    ]
}

fn series_labels(i: usize) -> Labels {
    let job = ["api", "web", "db"][i % 3];
    let mut pairs = vec![
        (
            "__name__".to_owned(),
            if i < 3 {
                "up".to_owned()
            } else {
                "other".to_owned()
            },
        ),
        ("job".to_owned(), job.to_owned()),
        ("instance".to_owned(), format!("host-{i}")),
    ];
    if i.is_multiple_of(2) {
        pairs.push(("env".to_owned(), "prod".to_owned()));
    }
    Labels::new(pairs).expect("labels")
}

fn matchers(i: usize) -> Vec<Matcher> {
    let re = |name: &str, value: &str| Matcher::new(MatchOp::Regex, name, value).expect("regex");
    let nre =
        |name: &str, value: &str| Matcher::new(MatchOp::NotRegex, name, value).expect("regex");
    match i {
        0 => vec![],
        1 => vec![Matcher::equal("__name__", "up")],
        2 => vec![re("job", "api|db")],
        3 => vec![Matcher::equal("env", "")],
        4 => vec![Matcher::not_equal("env", "prod"), re("__name__", ".+")],
        5 => vec![re("instance", "host-.*"), nre("job", "web")],
        6 => vec![
            re("instance", "host-[0-2]"),
            Matcher::equal("__name__", "up"),
        ],
        _ => vec![nre("env", "|x")],
    }
}

/// An open transaction on both sides, with the series it started with.
type OpenTransaction = (Box<dyn Appender>, Box<dyn Appender>, usize);

type Selected = Vec<(Labels, Vec<(i64, u64)>)>;

fn select(storage: &dyn Storage, mint: i64, maxt: i64, matchers: &[Matcher]) -> Selected {
    let querier = storage.querier(mint, maxt).expect("querier");
    select_from(querier.as_ref(), matchers)
}

fn select_from(querier: &dyn Querier, matchers: &[Matcher]) -> Selected {
    let set = querier.select(true, None, matchers).expect("select");
    set.map(|series| {
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

fn labels_of(
    storage: &dyn Storage,
    mint: i64,
    maxt: i64,
    m: &[Matcher],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let querier = storage.querier(mint, maxt).expect("querier");
    (
        querier.label_names(m, None).expect("names").values,
        querier.label_values("job", m, None).expect("values").values,
        querier
            .label_values("instance", m, Some(2))
            .expect("values")
            .values,
    )
}

/// A rejection's kind (the fields name the series, equal on both sides).
fn kind(result: &Result<ember_model::storage::SeriesRef, AppendError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => {
            let text = e.to_string();
            text.split(':').next().unwrap_or_default().to_owned()
        }
    }
}

fn run(ops: Vec<Op>, window: i64, one_series_per_commit: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        wal_segment_size: 32 * 1024,
        wal_sync: SyncPolicy::SegmentCut,
        out_of_order_window_ms: window,
        samples_per_chunk: 4,
        block_duration_ms: 50,
        chunk_segment_size: 256,
        ..DbOptions::default()
    };
    let model = MemStorage::with_options(MemStorageOptions {
        min_valid_time: i64::MIN,
        out_of_order_window: window,
    });
    let mut db = Db::open(dir.path(), options).expect("open");
    // The open transaction: (db appender, model appender, its series).
    let mut open: Option<OpenTransaction> = None;
    let mut held: Option<(Box<dyn Querier>, Box<dyn Querier>)> = None;
    for op in ops {
        match op {
            Op::Append { series, t, v } => {
                if one_series_per_commit
                    && let Some((_, _, s)) = &open
                    && *s != series
                    && let Some((a, b, _)) = open.take()
                {
                    a.commit().expect("db commit");
                    b.commit().expect("model commit");
                }
                let (a, b, _) =
                    open.get_or_insert_with(|| (db.appender(), model.appender(), series));
                let labels = series_labels(series);
                let value = [1.0, 2.5, f64::NAN][usize::from(v)];
                let got = a.append(None, &labels, t, value);
                let want = b.append(None, &labels, t, value);
                prop_assert_eq!(
                    kind(&got),
                    kind(&want),
                    "append {} t={} v={}",
                    labels,
                    t,
                    value
                );
            }
            Op::Commit => {
                if let Some((a, b, _)) = open.take() {
                    a.commit().expect("db commit");
                    b.commit().expect("model commit");
                }
            }
            Op::Rollback => {
                if let Some((a, b, _)) = open.take() {
                    a.rollback().expect("db rollback");
                    b.rollback().expect("model rollback");
                }
            }
            Op::Restart => {
                // An open transaction and queriers die with the process.
                open = None;
                held = None;
                db.close().expect("close");
                db = Db::open(dir.path(), options).expect("reopen");
            }
            Op::Hold => {
                held = Some((
                    db.querier(i64::MIN, i64::MAX).expect("querier"),
                    model.querier(i64::MIN, i64::MAX).expect("querier"),
                ));
            }
            Op::Check {
                mint,
                maxt,
                matcher,
            } => {
                let m = matchers(matcher);
                if let Some((a, b)) = &held {
                    prop_assert_eq!(
                        select_from(a.as_ref(), &m),
                        select_from(b.as_ref(), &m),
                        "held querier"
                    );
                }
                prop_assert_eq!(
                    select(&db, mint, maxt, &m),
                    select(&model, mint, maxt, &m),
                    "select {:?} [{}, {}]",
                    m,
                    mint,
                    maxt
                );
                prop_assert_eq!(
                    labels_of(&db, mint, maxt, &m),
                    labels_of(&model, mint, maxt, &m)
                );
            }
        }
    }
    drop(open);
    drop(held);
    for matcher in 0..8 {
        let m = matchers(matcher);
        prop_assert_eq!(
            select(&db, i64::MIN, i64::MAX, &m),
            select(&model, i64::MIN, i64::MAX, &m)
        );
    }
    db.close().expect("close");
    let db = Db::open(dir.path(), options).expect("final reopen");
    prop_assert_eq!(
        select(&db, i64::MIN, i64::MAX, &[]),
        select(&model, i64::MIN, i64::MAX, &[])
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn db_matches_model_in_order(ops in prop::collection::vec(op(), 1..160)) {
        run(ops, 0, false)?;
    }

    // With an out-of-order window. One series per transaction: `MemStorage`
    // re-checks a commit's samples series by series against the newest
    // timestamp *including the same commit's earlier series*, so it can
    // refuse at commit a sample it accepted at append; the head measures
    // the window from the committed state, as at append time.
    #[test]
    fn db_matches_model_out_of_order(ops in prop::collection::vec(op(), 1..160)) {
        run(ops, 60, true)?;
    }
}
