//! The PromQL engine: [`Engine`] evaluates instant and range queries over a
//! [`Queryable`].
//!
//! Evaluation follows Prometheus's engine: every node of the expression is
//! evaluated once for *all* steps of the query (a range query does not
//! re-select per step), each selector selects its series once over the
//! whole time range it needs, and series are streamed from the storage one
//! at a time, so memory grows with the samples a query touches and its
//! result, not with the data in the storage.
//!
//! Limits: [`EngineOptions::max_samples`] (samples loaded plus points held
//! in intermediate results), [`EngineOptions::timeout`] and
//! [`EngineOptions::max_concurrency`]. A [`CancellationToken`] passed in
//! [`QueryOptions`] lets the caller (e.g. an HTTP handler whose client went
//! away) stop a running query; the engine checks it between series and
//! steps.
//!
//! ```
//! use ember_model::labels::Labels;
//! use ember_model::storage::{Appendable, MemStorage};
//! use ember_promql::engine::{Engine, EngineOptions};
//! use ember_promql::value::Value;
//!
//! let storage = MemStorage::new();
//! let mut app = storage.appender();
//! let up = Labels::new([("__name__", "up"), ("job", "node")])?;
//! app.append(None, &up, 0, 1.0)?;
//! app.commit()?;
//!
//! let engine = Engine::new(EngineOptions::default());
//! let result = engine.instant(&storage, "sum(up)", 10_000)?;
//! let Value::Vector(vector) = result.value else { panic!("a vector") };
//! assert_eq!(vector[0].v, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod binary;
mod eval;
mod functions;
mod histogram;
mod info;
mod native;

pub(crate) use histogram::parse_go_float;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ember_model::storage::{Annotations, Queryable, StorageError};

use crate::parser::{self, ParseError, Query};
use crate::value::{QueryValue, Value};

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus's
    /// `--query.lookback-delta`, 5m by default), ms.
    pub lookback_delta: i64,
    /// The most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// How long a query may run.
    pub timeout: Duration,
    /// How many queries may run at once; further ones wait for a slot
    /// (bounded by their timeout and cancellation). `0` means unlimited.
    pub max_concurrency: usize,
    /// The step of subqueries written without one (`x[1h:]`), ms: the
    /// global evaluation interval, 1m by default.
    pub default_subquery_step: i64,
    /// Whether experimental functions (`mad_over_time`, `sort_by_label`,
    /// `info`, `ts_of_*_over_time`, ...) are allowed, as Prometheus's
    /// `--enable-feature=promql-experimental-functions` (off by default,
    /// as there).
    pub enable_experimental_functions: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            default_subquery_step: 60 * 1000,
            enable_experimental_functions: false,
        }
    }
}

/// Per-query settings.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Overrides [`EngineOptions::lookback_delta`] (the API's
    /// `lookback_delta` parameter), ms.
    pub lookback_delta: Option<i64>,
    /// Overrides [`EngineOptions::timeout`] when shorter.
    pub timeout: Option<Duration>,
    /// Cancels the query when triggered.
    pub cancel: CancellationToken,
}

/// A cheap, cloneable flag that cancels a query when set. The HTTP layer
/// keeps one per request and cancels it when the client disconnects.
#[derive(Debug, Clone, Default)]
pub struct CancellationToken(Arc<AtomicBool>);

impl CancellationToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every query holding a clone of this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a query failed. The variants map onto the HTTP API's `errorType`:
/// `bad_data`, `execution`, `timeout`, `canceled`, `internal`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query does not parse or is invalid for the request (a range
    /// query of a range vector, an unknown function, ...).
    #[error("{0}")]
    BadData(String),
    /// The query is valid but failed while running (many-to-many
    /// matching, duplicate output series, too many samples, ...).
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than its timeout.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query was cancelled by its caller.
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A bug: an invariant of the engine did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ParseError> for QueryError {
    fn from(error: ParseError) -> Self {
        QueryError::BadData(error.to_string())
    }
}

impl QueryError {
    /// The Prometheus HTTP API `errorType` of this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Canceled(_) => "canceled",
            QueryError::Storage(_) | QueryError::Internal(_) => "internal",
        }
    }
}

/// What a query returns.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// Warnings and infos, as the API's `warnings`/`infos`.
    pub annotations: Annotations,
    /// Counters about the evaluation.
    pub stats: QueryStats,
}

/// What a query returns, native histograms included (see
/// [`Engine::instant_query_output`]).
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The value, whose samples are floats or histograms.
    pub value: QueryValue,
    /// Warnings and infos, as the API's `warnings`/`infos`.
    pub annotations: Annotations,
    /// Counters about the evaluation.
    pub stats: QueryStats,
}

impl QueryOutput {
    /// The float-only result (histogram samples left out).
    pub fn into_float_result(self) -> QueryResult {
        QueryResult {
            value: self.value.into_float_value(),
            annotations: self.annotations,
            stats: self.stats,
        }
    }
}

/// Counters about one evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples read from the storage.
    pub samples_loaded: u64,
    /// The highest number of samples held at once.
    pub peak_samples: usize,
}

/// The time range of a query: an instant query has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First evaluation time, ms.
    pub start: i64,
    /// Last evaluation time, ms.
    pub end: i64,
    /// Step, ms (ignored for instant queries).
    pub step: i64,
}

/// The PromQL engine. Cheap to share (`Send + Sync`); queries may run
/// concurrently on any threads, up to [`EngineOptions::max_concurrency`].
#[derive(Debug)]
pub struct Engine {
    options: EngineOptions,
    gate: Gate,
}

impl Engine {
    /// An engine with `options`.
    pub fn new(options: EngineOptions) -> Self {
        let gate = Gate::new(options.max_concurrency);
        Self { options, gate }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Parses `text` (a [`QueryError::BadData`] with the position on
    /// failure).
    pub fn parse(&self, text: &str) -> Result<Query, QueryError> {
        Ok(parser::parse_query(text)?)
    }

    /// Evaluates `text` at `time` (ms).
    pub fn instant(
        &self,
        storage: &dyn Queryable,
        text: &str,
        time: i64,
    ) -> Result<QueryResult, QueryError> {
        let query = self.parse(text)?;
        self.instant_query(storage, &query, time, &QueryOptions::default())
    }

    /// Evaluates `text` at every `step` from `start` to `end` (ms).
    pub fn range(
        &self,
        storage: &dyn Queryable,
        text: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let query = self.parse(text)?;
        self.range_query(storage, &query, start, end, step, &QueryOptions::default())
    }

    /// Evaluates a parsed query at `time` (ms). Native histogram samples
    /// are left out of the result; [`Engine::instant_query_output`] keeps
    /// them.
    pub fn instant_query(
        &self,
        storage: &dyn Queryable,
        query: &Query,
        time: i64,
        options: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.instant_query_output(storage, query, time, options)
            .map(QueryOutput::into_float_result)
    }

    /// Evaluates a parsed query at `time` (ms), with native histograms.
    pub fn instant_query_output(
        &self,
        storage: &dyn Queryable,
        query: &Query,
        time: i64,
        options: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let range = TimeRange {
            start: time,
            end: time,
            step: 0,
        };
        self.exec(storage, query, range, options)
    }

    /// Evaluates a parsed query over `[start, end]` every `step` (ms).
    /// Native histogram points are left out of the result;
    /// [`Engine::range_query_output`] keeps them.
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        query: &Query,
        start: i64,
        end: i64,
        step: i64,
        options: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.range_query_output(storage, query, start, end, step, options)
            .map(QueryOutput::into_float_result)
    }

    /// Evaluates a parsed query over `[start, end]` every `step` (ms),
    /// with native histograms.
    pub fn range_query_output(
        &self,
        storage: &dyn Queryable,
        query: &Query,
        start: i64,
        end: i64,
        step: i64,
        options: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let range = TimeRange { start, end, step };
        self.exec(storage, query, range, options)
    }

    fn exec(
        &self,
        storage: &dyn Queryable,
        query: &Query,
        range: TimeRange,
        options: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let timeout = options
            .timeout
            .map_or(self.options.timeout, |t| t.min(self.options.timeout));
        let deadline = Instant::now().checked_add(timeout);
        let _slot = self.gate.acquire(deadline, &options.cancel)?;
        let limits = eval::Limits {
            lookback_delta: options
                .lookback_delta
                .unwrap_or(self.options.lookback_delta),
            max_samples: self.options.max_samples,
            default_subquery_step: self.options.default_subquery_step,
            enable_experimental: self.options.enable_experimental_functions,
            deadline,
            cancel: options.cancel.clone(),
        };
        eval::evaluate(storage, query, range, limits)
    }
}

/// A counting semaphore built on std (the engine knows no async runtime).
#[derive(Debug)]
struct Gate {
    limit: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Gate);

impl Gate {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    fn acquire(
        &self,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Result<Option<Slot<'_>>, QueryError> {
        if self.limit == 0 {
            return Ok(None);
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= self.limit {
            if cancel.is_cancelled() {
                return Err(QueryError::Canceled("queue"));
            }
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(QueryError::Timeout("queue"));
                    }
                    left.min(Duration::from_millis(50))
                }
                None => Duration::from_millis(50),
            };
            running = self
                .freed
                .wait_timeout(running, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *running += 1;
        Ok(Some(Slot(self)))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running -= 1;
        self.0.freed.notify_one();
    }
}
