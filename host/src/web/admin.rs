//! The TSDB admin API (behind `--web.enable-admin-api`), as Prometheus's:
//!
//! - `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=&start=&end=`
//!   deletes the samples of the matching series in the range through
//!   tombstones (204);
//! - `POST|PUT /api/v1/admin/tsdb/clean_tombstones` rewrites the blocks
//!   that have tombstones without the deleted samples (204);
//! - `POST|PUT /api/v1/admin/tsdb/snapshot?skip_head=` writes a snapshot
//!   of hard-linked blocks (plus the head as a block unless `skip_head`)
//!   under `<data>/snapshots/<name>` and answers with its name.
//!
//! With the flag off, every endpoint answers `unavailable` ("admin APIs
//! disabled"). The work runs on the blocking pool.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ember_tsdb::Db;

use super::AppState;
use super::api::{ApiError, ErrorType, success_json};
use super::params::{Params, Time, parse_match_params, parse_time_param};

fn db(state: &AppState) -> Result<Db, ApiError> {
    if !state.flags.enable_admin_api {
        return Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"));
    }
    state
        .tsdb
        .clone()
        .ok_or_else(|| ApiError::new(ErrorType::Unavailable, "no local TSDB"))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("unexpected error: {e}")))?
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`.
pub(super) async fn delete_series(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let db = db(&state)?;
    let selectors = params.values("match[]");
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let sets = parse_match_params(&selectors).map_err(|e| ApiError::invalid_param("match[]", e))?;
    let start = parse_time_param(&params, "start", Time::MIN)
        .map_err(|e| ApiError::invalid_param("start", e))?
        .millis();
    let end = parse_time_param(&params, "end", Time::MAX)
        .map_err(|e| ApiError::invalid_param("end", e))?
        .millis();
    blocking(move || {
        for matchers in &sets {
            db.delete(matchers, start, end)
                .map_err(|e| ApiError::internal(format!("delete series: {e}")))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub(super) async fn clean_tombstones(State(state): State<AppState>) -> Result<Response, ApiError> {
    let db = db(&state)?;
    blocking(move || {
        db.clean_tombstones()
            .map_err(|e| ApiError::internal(format!("clean tombstones: {e}")))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Serialize)]
struct SnapshotData {
    name: String,
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`.
pub(super) async fn snapshot(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let db = db(&state)?;
    let skip_head = match params.value("skip_head") {
        "" => false,
        text => parse_bool(text).ok_or_else(|| {
            ApiError::bad_data(format!(
                "unable to parse boolean 'skip_head' argument: invalid syntax: {text:?}"
            ))
        })?,
    };
    let name = blocking(move || {
        db.snapshot(!skip_head)
            .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))
    })
    .await?;
    success_json(&SnapshotData { name }, &Default::default())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_parse_like_go() {
        assert_eq!(super::parse_bool("true"), Some(true));
        assert_eq!(super::parse_bool("0"), Some(false));
        assert_eq!(super::parse_bool("yes"), None);
    }
}
