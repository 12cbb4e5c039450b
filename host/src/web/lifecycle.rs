//! The management endpoints: health, readiness, reload and quit.
//!
//! Bodies and status codes are Prometheus's, so load balancers, Kubernetes
//! probes and scripts written for Prometheus keep working. `/-/reload` and
//! `/-/quit` change the server and therefore answer 403 unless
//! `--web.enable-lifecycle` is set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::reload::ReloadOutcome;

const LIFECYCLE_DISABLED: &str = "Lifecycle API is not enabled.";

/// `GET|HEAD /-/healthy`: 200 whenever the process can answer at all.
pub(super) async fn healthy() -> &'static str {
    "Ember Server is Healthy.\n"
}

/// `GET|HEAD /-/ready`: 200 once start-up (storage replay) has finished,
/// 503 before that and during shutdown.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "Ember Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

/// `POST|PUT /-/reload`: reload the configuration; 500 with the reason if
/// the new configuration is refused (the old one keeps running).
pub(super) async fn reload(State(state): State<AppState>) -> Response {
    if !state.lifecycle_enabled {
        return (StatusCode::FORBIDDEN, LIFECYCLE_DISABLED).into_response();
    }
    match state.config.reload().await {
        Ok(ReloadOutcome::Applied | ReloadOutcome::Unchanged) => StatusCode::OK.into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {error}\n"),
        )
            .into_response(),
    }
}

/// `POST|PUT /-/quit`: start a graceful shutdown.
pub(super) async fn quit(State(state): State<AppState>) -> Response {
    if !state.lifecycle_enabled {
        return (StatusCode::FORBIDDEN, LIFECYCLE_DISABLED).into_response();
    }
    // A full channel means a shutdown is already under way; that is fine.
    let _ = state.quit.try_send(());
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}

/// `GET /-/reload` and `GET /-/quit`: a clear answer instead of a bare 405.
pub(super) async fn only_post_or_put() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "Only POST or PUT requests allowed",
    )
        .into_response()
}
