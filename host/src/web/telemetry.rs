//! `/metrics` and the request metrics middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use super::AppState;
use crate::telemetry::TRACE_TARGET;

/// `GET /metrics`: the server's own metrics in the text format.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error gathering metrics: {error}\n"),
        )
            .into_response(),
    }
}

/// Counts requests and times them, labelled by the matched route (never the
/// raw path, which would let a client create unbounded label values), and
/// runs each in a server span `<METHOD> <route>` for trace export (see
/// `crate::telemetry`).
pub(super) async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "http.request",
        otel.name = format!("{method} {handler}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = handler.as_str(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let metrics = &state.metrics;
    metrics
        .http_request_duration_seconds
        .with_label_values(&[handler.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests_total
        .with_label_values(&[handler.as_str(), response.status().as_str()])
        .inc();
    response
}
