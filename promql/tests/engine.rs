//! Behaviour of the engine's public API beyond the DSL files: limits,
//! cancellation, error kinds and annotations.

use std::time::Duration;

use ember_model::labels::Labels;
use ember_model::storage::{Appendable, MemStorage};
use ember_promql::engine::{CancellationToken, Engine, EngineOptions, QueryError, QueryOptions};
use ember_promql::value::Value;

fn storage(series: usize, samples: i64) -> MemStorage {
    let storage = MemStorage::new();
    let mut app = storage.appender();
    for s in 0..series {
        let labels = Labels::new([
            ("__name__", "requests_total".to_owned()),
            ("id", s.to_string()),
        ])
        .expect("valid");
        for i in 0..samples {
            app.append(None, &labels, i * 15_000, i as f64)
                .expect("append");
        }
    }
    app.commit().expect("commit");
    storage
}

#[test]
fn instant_and_range_results() {
    let storage = storage(3, 41);
    let engine = Engine::new(EngineOptions::default());
    let result = engine
        .instant(&storage, "sum(rate(requests_total[5m]))", 600_000)
        .expect("query");
    let Value::Vector(vector) = result.value else {
        panic!("vector expected")
    };
    assert_eq!(vector.len(), 1);
    assert!(
        (vector[0].v - 3.0 / 15.0).abs() < 1e-9,
        "got {}",
        vector[0].v
    );

    let result = engine
        .range(&storage, "requests_total", 0, 60_000, 15_000)
        .expect("query");
    let Value::Matrix(matrix) = result.value else {
        panic!("matrix expected")
    };
    assert_eq!(matrix.len(), 3);
    assert!(
        matrix.windows(2).all(|w| w[0].metric < w[1].metric),
        "sorted by labels"
    );
    assert_eq!(matrix[0].points.len(), 5);
}

#[test]
fn errors_have_api_kinds() {
    let storage = storage(1, 5);
    let engine = Engine::new(EngineOptions::default());
    let parse = engine
        .instant(&storage, "sum(", 0)
        .expect_err("parse error");
    assert_eq!(parse.error_type(), "bad_data");
    assert!(parse.to_string().contains("parse error"), "{parse}");

    let range_of_matrix = engine
        .range(&storage, "requests_total[5m]", 0, 60_000, 15_000)
        .expect_err("range vector in range query");
    assert_eq!(range_of_matrix.error_type(), "bad_data");
    assert!(range_of_matrix.to_string().contains("range vector"));

    let zero_step = engine
        .range(&storage, "requests_total", 0, 60_000, 0)
        .expect_err("zero step");
    assert_eq!(zero_step.error_type(), "bad_data");
}

#[test]
fn sample_limit_is_enforced() {
    let storage = storage(20, 100);
    let engine = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    let error = engine
        .range(&storage, "requests_total", 0, 1_500_000, 15_000)
        .expect_err("too many samples");
    assert!(matches!(error, QueryError::Execution(_)), "{error:?}");
    assert!(error.to_string().contains("too many samples"));
}

#[test]
fn cancelled_queries_stop() {
    let storage = storage(5, 10);
    let engine = Engine::new(EngineOptions::default());
    let query = engine.parse("sum(requests_total)").expect("parses");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let options = QueryOptions {
        cancel,
        ..QueryOptions::default()
    };
    let error = engine
        .instant_query(&storage, &query, 0, &options)
        .expect_err("cancelled");
    assert_eq!(error.error_type(), "canceled");
}

#[test]
fn timeouts_stop_queries() {
    let storage = storage(200, 100);
    let engine = Engine::new(EngineOptions::default());
    let query = engine
        .parse("sum(rate(requests_total[1m])) + sum(rate(requests_total[2m]))")
        .expect("parses");
    let options = QueryOptions {
        timeout: Some(Duration::ZERO),
        ..QueryOptions::default()
    };
    let error = engine
        .range_query(&storage, &query, 0, 1_500_000, 1_000, &options)
        .expect_err("timed out");
    assert_eq!(error.error_type(), "timeout");
}

#[test]
fn annotations_carry_positions() {
    let storage = MemStorage::new();
    let mut app = storage.appender();
    let labels = Labels::new([("__name__", "temperature")]).expect("valid");
    for i in 0..10 {
        app.append(None, &labels, i * 15_000, i as f64)
            .expect("append");
    }
    app.commit().expect("commit");
    let engine = Engine::new(EngineOptions::default());
    let result = engine
        .instant(&storage, "sum(rate(temperature[1m]))", 120_000)
        .expect("query");
    let infos: Vec<&str> = result.annotations.infos().collect();
    assert_eq!(
        infos,
        [
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"temperature\" (1:10)"
        ]
    );
}

/// A storage whose querier blocks until released, to hold a query slot.
struct BlockingStorage {
    inner: MemStorage,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl ember_model::storage::Queryable for BlockingStorage {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn ember_model::storage::Querier>, ember_model::storage::StorageError> {
        let _ = self.release.lock().expect("lock").recv();
        self.inner.querier(mint, maxt)
    }
}

#[test]
fn concurrency_limit_queues_queries() {
    let (release, receiver) = std::sync::mpsc::channel();
    let storage = std::sync::Arc::new(BlockingStorage {
        inner: storage(1, 5),
        release: std::sync::Mutex::new(receiver),
    });
    let engine = std::sync::Arc::new(Engine::new(EngineOptions {
        max_concurrency: 1,
        ..EngineOptions::default()
    }));
    let first = {
        let (engine, storage) = (engine.clone(), storage.clone());
        std::thread::spawn(move || engine.instant(storage.as_ref(), "requests_total", 0))
    };
    // Wait until the first query holds the only slot.
    std::thread::sleep(Duration::from_millis(100));
    let query = engine.parse("requests_total").expect("parses");
    let options = QueryOptions {
        timeout: Some(Duration::from_millis(100)),
        ..QueryOptions::default()
    };
    let queued = engine
        .instant_query(storage.as_ref(), &query, 0, &options)
        .expect_err("no free slot");
    assert_eq!(queued.error_type(), "timeout", "{queued}");
    release.send(()).expect("first query waiting");
    let result = first
        .join()
        .expect("no panic")
        .expect("first query succeeds");
    assert!(matches!(result.value, Value::Vector(v) if v.len() == 1));
}

#[test]
fn experimental_functions_are_gated() {
    let storage = storage(1, 5);
    let engine = Engine::new(EngineOptions::default());
    let error = engine
        .instant(&storage, "mad_over_time(requests_total[1m])", 60_000)
        .expect_err("experimental functions are off by default");
    assert_eq!(error.error_type(), "bad_data");
    let engine = Engine::new(EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    });
    engine
        .instant(&storage, "mad_over_time(requests_total[1m])", 60_000)
        .expect("enabled");
}

#[test]
fn non_promql_syntax_is_refused() {
    let storage = storage(1, 5);
    let engine = Engine::new(EngineOptions::default());
    let error = engine
        .instant(&storage, r#"requests_total{id="0" or id="1"}"#, 0)
        .expect_err("\"or\" in matchers is an extension of the parser crate");
    assert_eq!(error.error_type(), "bad_data");
}
