//! The expression query API: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/format_query`, `/api/v1/parse_query` and
//! `/api/v1/query_exemplars`, with Prometheus's parameters, validation
//! order, error texts and response bytes.
//!
//! How a query runs:
//! 1. parameters are parsed and validated on the async worker (cheap);
//! 2. the query waits for a slot of [`QuerySlots`] (`--query.max-concurrency`)
//!    without holding a thread; the wait counts against its timeout, as in
//!    Prometheus's query queue;
//! 3. evaluation runs on tokio's blocking pool, so a heavy query never
//!    stalls the async workers that serve scrapes and other requests;
//! 4. if the client disconnects, axum drops the handler's future, and a
//!    [`CancelOnDrop`] guard cancels the query's
//!    [`CancellationToken`]; the engine notices between series and steps
//!    and gives its thread and slot back.
//!
//! Results are written by [`result::write_query_data`] byte for byte as
//! Prometheus writes them (see [`super::json`]).

pub mod ast;
pub mod result;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::response::Response;
use ember_model::storage::{Annotations, Queryable, Storage};
use ember_promql::engine::{CancellationToken, QueryError, QueryOptions, QueryResult};
use ember_promql::parser::{Expr, VectorSelector};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::api::{ApiError, success};
use super::params::{
    Params, Time, parse_duration, parse_limit, parse_time, parse_time_param, selector_matchers,
};

/// Prometheus's cap on the points per series of a range query.
const MAX_POINTS_PER_SERIES: i128 = 11_000;

/// The warning Prometheus adds when `limit` cut a result short.
pub(crate) const TRUNCATED_WARNING: &str = "results truncated due to limit";

/// Bounds how many API queries evaluate at once (`--query.max-concurrency`).
///
/// Waiting happens here, in async code, so queued queries hold no thread;
/// the engine's own gate (same limit) then never blocks an API query
/// unless other users of the engine (rule evaluation) hold its slots.
#[derive(Debug, Clone)]
pub struct QuerySlots(Option<Arc<Semaphore>>);

impl QuerySlots {
    /// At most `limit` queries at once; `0` means unlimited, as the
    /// engine's option.
    pub fn new(limit: usize) -> Self {
        Self((limit > 0).then(|| Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS)))))
    }

    /// Waits for a slot for at most `timeout`.
    async fn acquire(&self, timeout: Duration) -> Result<Option<OwnedSemaphorePermit>, QueryError> {
        let Some(semaphore) = &self.0 else {
            return Ok(None);
        };
        match tokio::time::timeout(timeout, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // The semaphore is never closed.
            Ok(Err(_)) => Err(QueryError::Internal("query slots closed".into())),
            Err(_) => Err(QueryError::Timeout("query queue")),
        }
    }
}

/// Cancels a query's token when dropped while armed: the handler's future
/// is dropped exactly when the client goes away before the answer.
#[derive(Debug)]
struct CancelOnDrop {
    token: CancellationToken,
    armed: bool,
}

impl CancelOnDrop {
    fn new(token: CancellationToken) -> Self {
        Self { token, armed: true }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.token.cancel();
        }
    }
}

/// What kind of evaluation a request asks for.
#[derive(Debug, Clone, Copy)]
enum Evaluation {
    Instant { time: i64 },
    Range { start: i64, end: i64, step: i64 },
}

/// The settings shared by instant and range queries.
#[derive(Debug)]
struct QueryRequest {
    text: String,
    evaluation: Evaluation,
    limit: usize,
    timeout: Option<Duration>,
    lookback_delta: Option<i64>,
    /// Whether to answer with `stats` (any non-empty `stats` parameter).
    stats: bool,
}

/// Prometheus's `stats` member: phase timings in seconds and sample
/// counts, written as Go writes the numbers. Per-step counts
/// (`stats=all`) need per-step accounting the engine does not keep, so they
/// are left out, as Prometheus leaves them out when per-step statistics
/// are disabled.
#[derive(Debug)]
struct QueryStatsJson {
    eval_total_time: Duration,
    query_preparation_time: Duration,
    exec_queue_time: Duration,
    exec_total_time: Duration,
    total_queryable_samples: u64,
    peak_samples: usize,
}

impl QueryStatsJson {
    fn to_json(&self) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = Vec::with_capacity(256);
        let seconds = |out: &mut Vec<u8>, name: &str, value: Duration| {
            out.extend_from_slice(name.as_bytes());
            super::json::write_go_json_number(out, value.as_secs_f64());
        };
        out.extend_from_slice(b"{\"timings\":{");
        seconds(&mut out, "\"evalTotalTime\":", self.eval_total_time);
        seconds(&mut out, ",\"resultSortTime\":", Duration::ZERO);
        seconds(
            &mut out,
            ",\"queryPreparationTime\":",
            self.query_preparation_time,
        );
        seconds(&mut out, ",\"innerEvalTime\":", self.eval_total_time);
        seconds(&mut out, ",\"execQueueTime\":", self.exec_queue_time);
        seconds(&mut out, ",\"execTotalTime\":", self.exec_total_time);
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "}},\"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}",
            self.total_queryable_samples, self.peak_samples
        );
        out
    }
}

/// `GET|POST /api/v1/query`.
pub(super) async fn instant(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit =
        parse_limit(params.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let now = Time::from_millis(now_millis());
    let time =
        parse_time_param(&params, "time", now).map_err(|e| ApiError::invalid_param("time", e))?;
    let timeout = parse_timeout(&params)?;
    let lookback_delta = parse_lookback_delta(&params)?;
    let request = QueryRequest {
        text: params.value("query").to_owned(),
        evaluation: Evaluation::Instant {
            time: time.millis(),
        },
        limit,
        timeout,
        lookback_delta,
        stats: !params.value("stats").is_empty(),
    };
    execute(&state, request).await
}

/// `GET|POST /api/v1/query_range`.
pub(super) async fn range(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit =
        parse_limit(params.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let start =
        parse_time(params.value("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(params.value("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step =
        parse_duration(params.value("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step.as_nanos() <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // For safety, Prometheus limits the points per series: enough for a
    // week at 60s resolution or a year at 1h.
    if (end.nanos() - start.nanos()) / i128::from(step.as_nanos()) > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = parse_timeout(&params)?;
    let lookback_delta = parse_lookback_delta(&params)?;
    let request = QueryRequest {
        text: params.value("query").to_owned(),
        evaluation: Evaluation::Range {
            start: start.millis(),
            end: end.millis(),
            step: step.millis(),
        },
        limit,
        timeout,
        lookback_delta,
        stats: !params.value("stats").is_empty(),
    };
    execute(&state, request).await
}

fn parse_timeout(params: &Params) -> Result<Option<Duration>, ApiError> {
    match params.value("timeout") {
        "" => Ok(None),
        text => {
            let timeout =
                parse_duration(text).map_err(|e| ApiError::invalid_param("timeout", e))?;
            // A negative timeout is a deadline already passed, as in Go.
            Ok(Some(timeout.to_std().unwrap_or(Duration::ZERO)))
        }
    }
}

fn parse_lookback_delta(params: &Params) -> Result<Option<i64>, ApiError> {
    match params.value("lookback_delta") {
        "" => Ok(None),
        text => {
            let delta = parse_duration(text).map_err(|e| {
                ApiError::bad_data(format!("error parsing lookback delta duration: {e}"))
            })?;
            // Zero (or less) means the engine's default, as in Prometheus.
            Ok((delta.millis() > 0).then(|| delta.millis()))
        }
    }
}

/// Parses, waits for a slot, evaluates on the blocking pool, truncates to
/// `limit` and renders.
async fn execute(state: &AppState, request: QueryRequest) -> Result<Response, ApiError> {
    let received = Instant::now();
    let engine = state.engine.clone();
    let query = engine
        .parse(&request.text)
        .map_err(|e| ApiError::invalid_param("query", e))?;
    let prepared = received.elapsed();

    let timeout = request.timeout.map_or(engine.options().timeout, |t| {
        t.min(engine.options().timeout)
    });
    let started = Instant::now();
    let token = CancellationToken::new();
    let mut guard = CancelOnDrop::new(token.clone());
    let permit = state.query_slots.acquire(timeout).await?;
    let queued = started.elapsed();
    let options = QueryOptions {
        lookback_delta: request.lookback_delta,
        timeout: Some(timeout.saturating_sub(started.elapsed())),
        cancel: token,
    };
    let storage = state.storage.clone();
    let evaluation = request.evaluation;
    let (limit, want_stats) = (request.limit, request.stats);
    // The evaluation's span for trace export (see crate::telemetry).
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE_TARGET,
        "promql.query",
        promql.query = request.text.as_str(),
        promql.kind = match evaluation {
            Evaluation::Instant { .. } => "instant",
            Evaluation::Range { .. } => "range",
        },
        promql.time = tracing::field::Empty,
        promql.start = tracing::field::Empty,
        promql.end = tracing::field::Empty,
        promql.step = tracing::field::Empty,
        promql.samples_loaded = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    match evaluation {
        Evaluation::Instant { time } => {
            span.record("promql.time", time);
        }
        Evaluation::Range { start, end, step } => {
            span.record("promql.start", start);
            span.record("promql.end", end);
            span.record("promql.step", step);
        }
    }
    // Rendering runs on the blocking pool too: a large matrix takes a
    // while to encode, and the async workers must stay free.
    let outcome = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _span = span.enter();
        let queryable: &dyn Queryable = as_queryable(storage.as_ref());
        let evaluating = Instant::now();
        let evaluated = match evaluation {
            Evaluation::Instant { time } => engine.instant_query(queryable, &query, time, &options),
            Evaluation::Range { start, end, step } => {
                engine.range_query(queryable, &query, start, end, step, &options)
            }
        };
        match &evaluated {
            Ok(result) => {
                span.record("promql.samples_loaded", result.stats.samples_loaded);
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        let QueryResult {
            mut value,
            mut annotations,
            stats,
        } = evaluated?;
        let evaluated = evaluating.elapsed();
        if limit > 0 && result::truncate(&mut value, limit) {
            annotations.warn(TRUNCATED_WARNING);
        }
        let stats = want_stats.then(|| {
            QueryStatsJson {
                eval_total_time: evaluated,
                query_preparation_time: prepared,
                exec_queue_time: queued,
                exec_total_time: received.elapsed(),
                total_queryable_samples: stats.samples_loaded,
                peak_samples: stats.peak_samples,
            }
            .to_json()
        });
        let mut data = Vec::with_capacity(256);
        result::write_query_data(&mut data, &value, stats.as_deref());
        Ok::<_, QueryError>((data, annotations))
    })
    .await;
    guard.disarm();
    match outcome {
        Ok(Ok((data, annotations))) => Ok(success(&data, &annotations)),
        Ok(Err(error)) => Err(error.into()),
        Err(join_error) => Err(ApiError::internal(format!(
            "unexpected error: {join_error}"
        ))),
    }
}

fn as_queryable(storage: &dyn Storage) -> &dyn Queryable {
    storage
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_millis() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `GET|POST /api/v1/format_query`: the expression pretty-printed.
pub(super) async fn format_query(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = state
        .engine
        .parse(params.value("query"))
        .map_err(|e| ApiError::invalid_param("query", e))?;
    let pretty = query.expr.prettify();
    Ok(success(
        &super::json::to_vec(&pretty).map_err(ApiError::internal)?,
        &Annotations::new(),
    ))
}

/// `GET|POST /api/v1/parse_query`: the syntax tree as JSON.
pub(super) async fn parse_query(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let query = state
        .engine
        .parse(params.value("query"))
        .map_err(|e| ApiError::invalid_param("query", e))?;
    let tree = ast::translate(&query.expr);
    Ok(success(
        &super::json::to_vec(&tree).map_err(ApiError::internal)?,
        &Annotations::new(),
    ))
}

/// `GET|POST /api/v1/query_exemplars`: parameters are validated as
/// Prometheus does; the storage behind the API keeps no queryable
/// exemplars yet, so every valid request finds none.
pub(super) async fn query_exemplars(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let start = parse_time_param(&params, "start", Time::MIN)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(&params, "end", Time::MAX)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let query = state
        .engine
        .parse(params.value("query"))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    // Validate the selectors as the exemplar storage would need them.
    let mut selectors = Vec::new();
    collect_selectors(&query.expr, &mut selectors);
    for selector in selectors {
        selector_matchers(selector).map_err(|e| ApiError::bad_data(e.to_string()))?;
    }
    Ok(success(b"[]", &Annotations::new()))
}

/// Every vector selector of `expr`, matrix selectors' included.
fn collect_selectors<'a>(expr: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::VectorSelector(selector) => out.push(selector),
        Expr::MatrixSelector(matrix) => out.push(&matrix.vs),
        Expr::Aggregate(aggregate) => {
            collect_selectors(&aggregate.expr, out);
            if let Some(param) = &aggregate.param {
                collect_selectors(param, out);
            }
        }
        Expr::Unary(unary) => collect_selectors(&unary.expr, out),
        Expr::Binary(binary) => {
            collect_selectors(&binary.lhs, out);
            collect_selectors(&binary.rhs, out);
        }
        Expr::Paren(paren) => collect_selectors(&paren.expr, out),
        Expr::Subquery(subquery) => collect_selectors(&subquery.expr, out),
        Expr::Call(call) => {
            for arg in &call.args.args {
                collect_selectors(arg, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_guard_cancels_only_when_armed() {
        let token = CancellationToken::new();
        drop(CancelOnDrop::new(token.clone()));
        assert!(token.is_cancelled(), "dropped while armed cancels");

        let token = CancellationToken::new();
        let mut guard = CancelOnDrop::new(token.clone());
        guard.disarm();
        drop(guard);
        assert!(!token.is_cancelled(), "a finished query is not cancelled");
    }

    #[tokio::test]
    async fn query_slots_time_out_in_the_queue() {
        let slots = QuerySlots::new(1);
        let held = slots
            .acquire(Duration::from_secs(1))
            .await
            .expect("free slot");
        let error = slots
            .acquire(Duration::from_millis(20))
            .await
            .expect_err("no slot left");
        assert_eq!(error.to_string(), "query timed out in query queue");
        drop(held);
        assert!(slots.acquire(Duration::from_millis(20)).await.is_ok());
        assert!(
            QuerySlots::new(0)
                .acquire(Duration::ZERO)
                .await
                .unwrap()
                .is_none()
        );
    }
}
