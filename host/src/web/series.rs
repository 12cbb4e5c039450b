//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`:
//! what the storage knows about series, without samples.
//!
//! Semantics are Prometheus's: `match[]` selectors are alternatives whose
//! answers are merged; `start`/`end` default to the whole representable
//! time range; `limit` asks the storage for one more than wanted so that a
//! cut result can be told apart and flagged with a warning. Storage reads
//! run on the blocking pool.

use axum::extract::{Path, State};
use axum::response::Response;
use ember_model::labels::Labels;
use ember_model::matcher::Matcher;
use ember_model::storage::{Annotations, LabelQueryResult, SelectHints, Storage, StorageError};

use super::AppState;
use super::api::{ApiError, success, success_json};
use super::params::{
    Params, Time, parse_limit, parse_match_params, parse_time_param, unescape_label_name,
};
use super::query::TRUNCATED_WARNING;
use super::query::result::write_labels;

/// The time range and limit shared by the three endpoints.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: i64,
    end: i64,
    limit: usize,
}

fn parse_range(params: &Params) -> Result<Range, ApiError> {
    let limit =
        parse_limit(params.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let start = parse_time_param(params, "start", Time::MIN)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(params, "end", Time::MAX)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    Ok(Range {
        start: start.millis(),
        end: end.millis(),
        limit,
    })
}

/// One more than `limit`, so truncation can be detected; `None` for none.
fn hint_limit(limit: usize) -> Option<usize> {
    (limit > 0).then(|| limit.saturating_add(1))
}

/// Runs storage work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("unexpected error: {e}")))?
}

/// `GET|POST /api/v1/series`.
pub(super) async fn series(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let selectors = params.values("match[]");
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let range = parse_range(&params)?;
    let sets = parse_match_params(&selectors).map_err(|e| ApiError::invalid_param("match[]", e))?;
    let storage = state.storage.clone();
    let (series, annotations) =
        blocking(move || select_series(storage.as_ref(), range, &sets)).await?;
    let mut data = Vec::with_capacity(64 * series.len() + 2);
    data.push(b'[');
    for (index, labels) in series.iter().enumerate() {
        if index > 0 {
            data.push(b',');
        }
        write_labels(&mut data, labels);
    }
    data.push(b']');
    Ok(success(&data, &annotations))
}

/// The label sets of the series matching any of `sets`, sorted, distinct,
/// at most `range.limit` of them.
fn select_series(
    storage: &dyn Storage,
    range: Range,
    sets: &[Vec<Matcher>],
) -> Result<(Vec<Labels>, Annotations), ApiError> {
    let querier = storage.querier(range.start, range.end)?;
    let hints = SelectHints {
        start: range.start,
        end: range.end,
        // No PromQL function has this name: it tells the storage that only
        // labels are needed, as Prometheus's API does.
        func: Some("series".to_owned()),
        limit: hint_limit(range.limit),
        ..SelectHints::default()
    };
    let mut annotations = Annotations::new();
    let mut found = Vec::new();
    for matchers in sets {
        let mut set = querier.select(true, Some(&hints), matchers)?;
        for series in set.by_ref() {
            found.push(series?.labels().clone());
        }
        annotations.merge(set.annotations().clone());
    }
    if sets.len() > 1 {
        found.sort();
        found.dedup();
    }
    if range.limit > 0 && found.len() > range.limit {
        found.truncate(range.limit);
        annotations.warn(TRUNCATED_WARNING);
    }
    Ok((found, annotations))
}

/// `GET|POST /api/v1/labels`.
pub(super) async fn label_names(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let range = parse_range(&params)?;
    let sets = parse_match_params(&params.values("match[]"))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let storage = state.storage.clone();
    let (names, annotations) = blocking(move || {
        label_query(range, &sets, |matchers| {
            let querier = storage.querier(range.start, range.end)?;
            querier.label_names(matchers, hint_limit(range.limit))
        })
    })
    .await?;
    success_json(&names, &annotations)
}

/// `GET /api/v1/label/<name>/values`.
pub(super) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let range = parse_range(&params)?;
    let sets = parse_match_params(&params.values("match[]"))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    let storage = state.storage.clone();
    let (values, annotations) = blocking(move || {
        label_query(range, &sets, |matchers| {
            let querier = storage.querier(range.start, range.end)?;
            querier.label_values(&name, matchers, hint_limit(range.limit))
        })
    })
    .await?;
    success_json(&values, &annotations)
}

/// Runs a label query once per matcher set (once without matchers when
/// there are none), merges, sorts and applies the limit.
fn label_query(
    range: Range,
    sets: &[Vec<Matcher>],
    query: impl Fn(&[Matcher]) -> Result<LabelQueryResult, StorageError>,
) -> Result<(Vec<String>, Annotations), ApiError> {
    let mut annotations = Annotations::new();
    let mut values = Vec::new();
    if sets.is_empty() {
        let result = query(&[])?;
        values = result.values;
        annotations.merge(result.annotations);
    } else {
        for matchers in sets {
            let result = query(matchers)?;
            values.extend(result.values);
            annotations.merge(result.annotations);
        }
    }
    values.sort();
    values.dedup();
    if range.limit > 0 && values.len() > range.limit {
        values.truncate(range.limit);
        annotations.warn(TRUNCATED_WARNING);
    }
    Ok((values, annotations))
}
