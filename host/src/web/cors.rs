//! Cross-origin access to the API, as Prometheus grants it
//! (`--web.cors.origin`, every origin by default), so that browser-based
//! tools (Grafana's browser access mode, PromLens, dashboards served from
//! elsewhere) can query Ember directly.
//!
//! A request with an `Origin` header gets Prometheus's CORS headers on its
//! answer, with `Access-Control-Allow-Origin` set to `*` when every origin
//! is allowed, to the origin itself when the regex accepts it, and left out
//! otherwise. A preflight (`OPTIONS`) is answered `204 No Content` without
//! reaching a handler.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The headers Prometheus sets on every cross-origin answer.
const CORS_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Accept, Authorization, Content-Type, Origin",
    ),
    (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
    (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Date"),
    (header::VARY, "Origin"),
];

/// Adds the CORS headers and answers preflights.
pub(super) async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    if let Some(origin) = origin {
        set_headers(response.headers_mut(), &origin, &state);
    }
    response
}

fn set_headers(headers: &mut HeaderMap, origin: &HeaderValue, state: &AppState) {
    for (name, value) in CORS_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let allowed = &state.flags.cors_origin;
    if allowed.allows_any() {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if origin.to_str().is_ok_and(|origin| allowed.allows(origin)) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}
